/* ytree.h — internal to spec/: a small YAML node tree that remembers the
 * line:col of every node, plus the scalar typing rules banger applies.
 *
 * The tree is built from libyaml events by spec.c under hard limits (depth,
 * total nodes, documents); validate.c walks it. Anchors, aliases and tags are
 * refused while building (see docs/spec.md), so a tree is always a plain
 * finite tree whose size is bounded by the input size.
 *
 * Scalars are typed by the YAML 1.2 core schema, restricted to decimal
 * integers: a quoted scalar is always a string; a plain scalar is null
 * ("", ~, null), a boolean (true/false in three spellings), an integer
 * ([-+]?[0-9]+), a float, or else a string. YAML 1.1 oddities (yes/no,
 * 0x1f, 1:20, dates) are strings. */
#pragma once

#include "util/util.h"

typedef enum {
	YNODE_SCALAR,
	YNODE_MAP, /* items alternate key, value */
	YNODE_SEQ,
	YNODE_ALIAS, /* kept only so the tree stays well-formed after an error */
	_YNODE_MAX,
} YNodeKind;

typedef enum {
	YSCALAR_NULL,
	YSCALAR_BOOL,
	YSCALAR_INT,
	YSCALAR_FLOAT,
	YSCALAR_STRING,
	_YSCALAR_MAX,
} YScalarType;

typedef struct YNode {
	YNodeKind kind;
	unsigned line, col; /* 1-based */
	bool plain;         /* scalar written without quotes or block style */
	char *value;        /* scalar bytes, NUL-terminated; may contain NULs */
	size_t len;
	struct YNode **items;
	size_t n, cap;
} YNode;

YNode *ynode_new(YNodeKind kind, unsigned line, unsigned col);
void ynode_append(YNode *parent, YNode *child);
void ynode_free(YNode *n);
DEFINE_TRIVIAL_CLEANUP_FUNC(YNode *, ynode_free)

YScalarType ynode_scalar_type(const YNode *n);
bool ynode_is_null(const YNode *n);

/* Describe a node for a diagnostic ("a mapping", "the number 3", "\"abc\"");
 * scalars are quoted with control bytes escaped and cut at 60 bytes. */
char *ynode_describe(const YNode *n);
/* The scalar's text quoted and escaped the same way. */
char *ynode_quote(const YNode *n);
