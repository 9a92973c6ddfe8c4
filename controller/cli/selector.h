/* selector.h — kubectl-style label selectors for `banger get/describe/
 * delete/wait -l`. Pure: no I/O.
 *
 * Grammar (a subset of kubectl's equality-based selectors):
 *   selector    := requirement ("," requirement)*
 *   requirement := key "=" value | key "==" value | key "!=" value
 *                | key | "!" key
 * Keys and values use the spec's label alphabet (a-z, A-Z, 0-9, '-', '_',
 * '.'; at most SPEC_LABEL_MAX characters; a value may be empty). Spaces
 * around tokens are ignored. "key!=value" also matches objects without the
 * label (as in kubectl); "key" matches when the label exists, "!key" when
 * it does not. An empty selector matches everything. */
#pragma once

#include "spec/spec.h"

typedef enum {
	SEL_EQ,
	SEL_NEQ,
	SEL_EXISTS,
	SEL_NOT_EXISTS,
} SelOp;

typedef struct {
	char *key;
	char *value; /* NULL for SEL_EXISTS / SEL_NOT_EXISTS */
	SelOp op;
} SelRequirement;

typedef struct {
	SelRequirement *reqs;
	size_t n;
} Selector;

#define SELECTOR_MAX_REQUIREMENTS 64

/* Parse text. On a syntax error returns -EINVAL and, when ret_err is not
 * NULL, a message saying what was expected where (caller frees). */
int selector_parse(const char *text, Selector **ret, char **ret_err);
void selector_free(Selector *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Selector *, selector_free)
/* True when labels (any order) satisfy every requirement. */
bool selector_matches(const Selector *s, const SpecLabel *labels, size_t n_labels);
