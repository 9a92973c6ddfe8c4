/* spec-internal.h — glue between the spec/ files; not for other modules. */
#pragma once

#include "spec/spec.h"
#include "spec/ytree.h"

/* Validate one document tree. Fills doc->name/name_valid/name_line/col
 * always (when readable) and doc->spec only when no problem was found in
 * this call. Problems are appended to d. Returns the number of problems. */
size_t spec_validate_document(const char *file, const YNode *root, SpecDoc *doc, Diags *d);

/* Index of the first byte that breaks UTF-8 (overlong forms, surrogates and
 * code points above U+10FFFF included), or len when data is valid. */
size_t spec_utf8_invalid_offset(const char *data, size_t len);
