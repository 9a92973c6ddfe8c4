/* diag.h — diagnostics collected while reading spec files.
 *
 * Parsers keep going after an error so one `banger validate` run reports
 * every problem at once (OpenBSD vmd -n). Each entry renders as
 *     file:line:col: field.path: message
 * with line/col 1-based (0 when unknown). The list owns its strings. */
#pragma once

#include "util/util.h"

typedef struct {
	char *file;
	unsigned line, col;
	char *field; /* dotted path, e.g. "spec.kernel.path"; "" for file-level */
	char *message;
} Diag;

typedef struct {
	Diag *items;
	size_t n, cap;
} Diags;

void diags_add(Diags *d, const char *file, unsigned line, unsigned col, const char *field,
	       const char *fmt, ...) _printf_(6, 7);
/* Render one diagnostic as "file:line:col: field: message" (newly allocated). */
char *diag_format(const Diag *d);
void diags_clear(Diags *d); /* frees entries, keeps the struct usable */
