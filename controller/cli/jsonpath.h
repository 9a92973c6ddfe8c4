/* jsonpath.h — the simple part of kubectl's JSONPath templates, for
 * `banger get -o jsonpath=...`, `-o custom-columns=...` and
 * `banger wait --for=jsonpath=...`. Pure: no I/O.
 *
 * A template is literal text with {…} expressions:
 *   {.phase}  {.runtime.pid}  {.conditions[0].status}  {.items[*].name}
 *   {.conditions[-1].type}  {['name']}  {$}  {"\n"}
 * A path starts at the document ('$' or '.'); steps are .key, ['key'], [N]
 * (negative counts from the end) and [*] (every element or member). A
 * quoted string inside braces is printed with \n, \t, \\ and \" escapes.
 * Not supported (refused with a message): filters [?()], slices [a:b],
 * recursive descent (..), range/end.
 *
 * Output: each value a path yields, separated by one space; strings as they
 * are, null and missing keys as nothing, numbers and booleans as JSON,
 * objects and arrays as compact JSON. */
#pragma once

#include "util/util.h"

#include <json.h>

#define JSONPATH_MAX_TEMPLATE 4096
#define JSONPATH_MAX_STEPS    64

typedef struct JsonPath JsonPath;

/* -EINVAL and a message (caller frees) when the template is not understood. */
int jsonpath_compile(const char *tmpl, JsonPath **ret, char **ret_err);
void jsonpath_free(JsonPath *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(JsonPath *, jsonpath_free)
/* The template applied to doc; caller frees. Never NULL. */
char *jsonpath_render(const JsonPath *p, json_object *doc);
/* A bare path ("{.phase}" or ".phase") to the one value it yields (borrowed
 * from doc), or NULL when it yields nothing. For custom-columns and wait. */
json_object *jsonpath_first(const JsonPath *p, json_object *doc);
