/* escape.h — the one escaper for text that came from outside: file names,
 * spec scalars, guest console output. Every place that shows such text to a
 * person (log lines, CLI output, diagnostics) or embeds it in a quoted
 * string (JSON, YAML) goes through here, so a file named "a\n2026-… ERROR"
 * cannot forge a log line and a console line with ESC [ 2 J cannot clear the
 * operator's terminal.
 *
 * Styles:
 *   ESCAPE_DISPLAY  control bytes (< 0x20, 0x7f) become \xhh and C1 controls
 *                   encoded in UTF-8 (U+0080..U+009F) become \u0080..\u009f;
 *                   everything else, backslash included, is kept so paths
 *                   stay readable.
 *   ESCAPE_QUOTED   as DISPLAY, and " and \ get a backslash: the inside of a
 *                   double-quoted YAML scalar or a C-style string.
 *   ESCAPE_JSON     the inside of a JSON string: " and \ backslashed, bytes
 *                   < 0x20 as \u00hh; nothing else changes (the canonical
 *                   spec JSON, and so every spec hash, depends on exactly
 *                   this, so it must never change). */
#pragma once

#include "util.h"

#include <stdio.h>

typedef enum {
	ESCAPE_DISPLAY,
	ESCAPE_QUOTED,
	ESCAPE_JSON,
	_ESCAPE_MAX,
} EscapeStyle;

/* Worst-case output size for len input bytes, terminating NUL included. */
#define ESCAPE_BUFSIZE(len) ((len)*6 + 1)

/* Escape s[0..len) into out, which has room for ESCAPE_BUFSIZE(len) bytes;
 * NUL-terminates and returns the length written. Embedded NULs are escaped. */
size_t escape_mem(char *out, const char *s, size_t len, EscapeStyle style);

/* Escaped copy of a NUL-terminated string (NULL gives NULL). Caller frees. */
char *escape_str(const char *s, EscapeStyle style);

/* Write the escaped form of s to f. */
void escape_fputs(FILE *f, const char *s, EscapeStyle style);

/* True when escape_str(s, style) would differ from s. */
bool escape_needed(const char *s, EscapeStyle style);
