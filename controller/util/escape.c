/* escape.c — see escape.h. */
#include "util/escape.h"

static bool is_c1(const unsigned char *p, size_t left)
{
	return left >= 2 && p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f;
}

size_t escape_mem(char *out, const char *s, size_t len, EscapeStyle style)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	char *o = out;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = p[i];
		bool quote = style != ESCAPE_DISPLAY && (c == '"' || c == '\\');
		if (quote) {
			*o++ = '\\';
			*o++ = (char)c;
		} else if (style == ESCAPE_JSON && c < 0x20) {
			o += sprintf(o, "\\u%04x", c);
		} else if (style != ESCAPE_JSON && (c < 0x20 || c == 0x7f)) {
			*o++ = '\\';
			*o++ = 'x';
			*o++ = hex[c >> 4];
			*o++ = hex[c & 15];
		} else if (style != ESCAPE_JSON && is_c1(p + i, len - i)) {
			/* U+0080..U+009F: some terminals act on these as C1. */
			o += sprintf(o, "\\u%04x", p[i + 1]);
			i++;
		} else {
			*o++ = (char)c;
		}
	}
	*o = 0;
	return (size_t)(o - out);
}

char *escape_str(const char *s, EscapeStyle style)
{
	if (!s)
		return NULL;
	size_t len = strlen(s);
	char *out = xmalloc(ESCAPE_BUFSIZE(len));
	escape_mem(out, s, len, style);
	return out;
}

void escape_fputs(FILE *f, const char *s, EscapeStyle style)
{
	if (!escape_needed(s, style)) {
		fputs(s, f);
		return;
	}
	_cleanup_free_ char *e = escape_str(s, style);
	fputs(e, f);
}

bool escape_needed(const char *s, EscapeStyle style)
{
	const unsigned char *p = (const unsigned char *)s;
	for (; *p; p++) {
		if (*p < 0x20 || (style != ESCAPE_DISPLAY && (*p == '"' || *p == '\\')))
			return true;
		if (style != ESCAPE_JSON && (*p == 0x7f || is_c1(p, 2)))
			return true;
	}
	return false;
}
