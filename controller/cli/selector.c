/* selector.c — see selector.h. */
#include "cli/selector.h"

#include <stdio.h>

static bool tok_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_' || c == '.';
}

static const char *skip_spaces(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/* A token of the label alphabet at *p: copied to *ret (may be empty). */
static int read_token(const char **p, char **ret)
{
	const char *s = skip_spaces(*p), *e = s;
	while (tok_char(*e))
		e++;
	if (e - s > SPEC_LABEL_MAX)
		return -E2BIG;
	*ret = xstrndup(s, (size_t)(e - s));
	*p = skip_spaces(e);
	return 0;
}

void selector_free(Selector *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++) {
		free(s->reqs[i].key);
		free(s->reqs[i].value);
	}
	free(s->reqs);
	free(s);
}

static int fail(char **ret_err, const char *text, const char *at, const char *what)
{
	if (ret_err)
		*ret_err = xasprintf("selector \"%s\": at character %zu: %s", text,
				     (size_t)(at - text) + 1, what);
	return -EINVAL;
}

/* The operator after a key: "=", "==", "!=", or none (end or ','). */
static int read_op(const char **p, SelOp *op)
{
	const char *s = *p;
	if (s[0] == '!' && s[1] == '=') {
		*op = SEL_NEQ;
		*p = s + 2;
	} else if (s[0] == '=') {
		*op = SEL_EQ;
		*p = s + (s[1] == '=' ? 2 : 1);
	} else if (s[0] == ',' || s[0] == 0) {
		*op = SEL_EXISTS;
	} else
		return -EINVAL;
	return 0;
}

/* One requirement at *p; advances past it. */
static int parse_requirement(const char *text, const char **p, SelRequirement *r, char **ret_err)
{
	const char *s = skip_spaces(*p);
	bool negate = *s == '!';
	if (negate)
		s++;
	const char *at = skip_spaces(s);
	if (read_token(&s, &r->key) < 0)
		return fail(ret_err, text, at, "label key longer than 63 characters");
	if (!r->key[0])
		return fail(ret_err, text, at,
			    "expected a label key (a-z, A-Z, 0-9, '-', '_', '.')");
	at = s;
	if (read_op(&s, &r->op) < 0)
		return fail(ret_err, text, at, "expected '=', '==', '!=', ',' or the end");
	if (negate && r->op != SEL_EXISTS)
		return fail(ret_err, text, at, "'!key' takes no value");
	if (negate)
		r->op = SEL_NOT_EXISTS;
	if (r->op == SEL_EQ || r->op == SEL_NEQ) {
		at = skip_spaces(s);
		if (read_token(&s, &r->value) < 0)
			return fail(ret_err, text, at, "label value longer than 63 characters");
	}
	if (*s != ',' && *s != 0)
		return fail(ret_err, text, s, "expected ',' or the end of the selector");
	*p = s;
	return 0;
}

int selector_parse(const char *text, Selector **ret, char **ret_err)
{
	_cleanup_(selector_freep) Selector *sel = xcalloc(1, sizeof(Selector));
	const char *p = skip_spaces(text);
	if (!*p) {
		*ret = TAKE_PTR(sel);
		return 0;
	}
	for (;;) {
		if (sel->n == SELECTOR_MAX_REQUIREMENTS)
			return fail(ret_err, text, p, "more than 64 requirements");
		sel->reqs = xrealloc(sel->reqs, (sel->n + 1) * sizeof(SelRequirement));
		sel->reqs[sel->n] = (SelRequirement){ 0 };
		int r = parse_requirement(text, &p, &sel->reqs[sel->n], ret_err);
		sel->n++; /* freed with the rest, even half-parsed */
		if (r < 0)
			return r;
		if (*p == 0)
			break;
		p++; /* ',' */
	}
	*ret = TAKE_PTR(sel);
	return 0;
}

static const char *label_value(const SpecLabel *labels, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (streq(labels[i].key, key))
			return labels[i].value ? labels[i].value : "";
	return NULL;
}

bool selector_matches(const Selector *s, const SpecLabel *labels, size_t n_labels)
{
	for (size_t i = 0; s && i < s->n; i++) {
		const SelRequirement *r = &s->reqs[i];
		const char *v = label_value(labels, n_labels, r->key);
		bool ok;
		switch (r->op) {
		case SEL_EQ: ok = v && streq(v, r->value); break;
		case SEL_NEQ: ok = !v || !streq(v, r->value); break;
		case SEL_EXISTS: ok = v != NULL; break;
		default: ok = v == NULL; break;
		}
		if (!ok)
			return false;
	}
	return true;
}
