/* ytree.c — node tree and scalar typing (see ytree.h). */
#include "spec/ytree.h"
#include "util/escape.h"

#include <stdio.h>

YNode *ynode_new(YNodeKind kind, unsigned line, unsigned col)
{
	YNode *n = xcalloc(1, sizeof(YNode));
	n->kind = kind;
	n->line = line;
	n->col = col;
	return n;
}

void ynode_append(YNode *parent, YNode *child)
{
	if (parent->n == parent->cap) {
		parent->cap = parent->cap ? parent->cap * 2 : 4;
		parent->items = xrealloc(parent->items, parent->cap * sizeof(YNode *));
	}
	parent->items[parent->n++] = child;
}

/* Iterative so that a deep tree cannot exhaust the C stack (depth is also
 * bounded while building, but freeing should never be the weak spot). */
void ynode_free(YNode *n)
{
	while (n) {
		if (n->n == 0) {
			free(n->items);
			free(n->value);
			free(n);
			return;
		}
		/* Hoist the last child's children into n, then free that child. */
		YNode *c = n->items[--n->n];
		for (size_t i = 0; i < c->n; i++)
			ynode_append(n, c->items[i]);
		c->n = 0;
		ynode_free(c);
	}
}

static bool all_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

static bool is_int(const char *s)
{
	if (*s == '-' || *s == '+')
		s++;
	return all_digits(s);
}

static const char *skip_digits(const char *s)
{
	while (*s >= '0' && *s <= '9')
		s++;
	return s;
}

/* [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? and .inf/.nan. */
static bool is_float(const char *s)
{
	static const char *const special[] = { ".inf", ".Inf", ".INF" };
	static const char *const nan[] = { ".nan", ".NaN", ".NAN" };
	const char *p;

	for (size_t i = 0; i < ELEMENTSOF(nan); i++)
		if (streq(s, nan[i]))
			return true;
	if (*s == '-' || *s == '+')
		s++;
	for (size_t i = 0; i < ELEMENTSOF(special); i++)
		if (streq(s, special[i]))
			return true;
	if (*s == '.') {
		p = skip_digits(s + 1);
		if (p == s + 1)
			return false;
	} else {
		p = skip_digits(s);
		if (p == s)
			return false;
		if (*p == '.')
			p = skip_digits(p + 1);
	}
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '-' || *p == '+')
			p++;
		const char *q = skip_digits(p);
		if (q == p)
			return false;
		p = q;
	}
	return *p == 0;
}

YScalarType ynode_scalar_type(const YNode *n)
{
	static const char *const nulls[] = { "", "~", "null", "Null", "NULL" };
	static const char *const bools[] = { "true", "True", "TRUE", "false", "False", "FALSE" };
	const char *v = n->value;

	if (!n->plain || strlen(v) != n->len)
		return YSCALAR_STRING;
	for (size_t i = 0; i < ELEMENTSOF(nulls); i++)
		if (streq(v, nulls[i]))
			return YSCALAR_NULL;
	for (size_t i = 0; i < ELEMENTSOF(bools); i++)
		if (streq(v, bools[i]))
			return YSCALAR_BOOL;
	if (is_int(v))
		return YSCALAR_INT;
	if (is_float(v))
		return YSCALAR_FLOAT;
	return YSCALAR_STRING;
}

bool ynode_is_null(const YNode *n)
{
	return n->kind == YNODE_SCALAR && ynode_scalar_type(n) == YSCALAR_NULL;
}

char *ynode_quote(const YNode *n)
{
	const size_t cut = 60;
	size_t len = MIN(n->len, cut);
	char *out = xmalloc(ESCAPE_BUFSIZE(len) + 5), *p = out;

	*p++ = '"';
	p += escape_mem(p, n->value, len, ESCAPE_QUOTED);
	/* Do not cut a UTF-8 sequence in half. */
	if (n->len > cut) {
		while (p > out + 1 && ((unsigned char)p[-1] & 0xc0) == 0x80)
			p--;
		if (p > out + 1 && ((unsigned char)p[-1] & 0xc0) == 0xc0)
			p--;
		p += sprintf(p, "...");
	}
	*p++ = '"';
	*p = 0;
	return out;
}

char *ynode_describe(const YNode *n)
{
	_cleanup_free_ char *q = NULL;

	switch (n->kind) {
	case YNODE_MAP: return xstrdup("a mapping");
	case YNODE_SEQ: return xstrdup("a sequence");
	case YNODE_ALIAS: return xstrdup("an alias");
	default: break;
	}
	q = ynode_quote(n);
	switch (ynode_scalar_type(n)) {
	case YSCALAR_NULL: return xstrdup("null (an empty value)");
	case YSCALAR_BOOL: return xasprintf("the boolean %s", n->value);
	case YSCALAR_INT:
	case YSCALAR_FLOAT: return xasprintf("the number %s", n->value);
	default: return n->plain ? TAKE_PTR(q) : xasprintf("the quoted string %s", q);
	}
}
