/* jsonpath.c — see jsonpath.h. */
#include "cli/jsonpath.h"

#include <limits.h>
#include <stdio.h>

typedef enum { STEP_KEY, STEP_INDEX, STEP_ALL } StepKind;

typedef struct {
	StepKind kind;
	char *key;
	long index;
} Step;

typedef struct {
	char *literal; /* non-NULL: text to print */
	Step *steps;
	size_t n_steps;
} Part;

struct JsonPath {
	Part *parts;
	size_t n_parts;
};

void jsonpath_free(JsonPath *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n_parts; i++) {
		free(p->parts[i].literal);
		for (size_t k = 0; k < p->parts[i].n_steps; k++)
			free(p->parts[i].steps[k].key);
		free(p->parts[i].steps);
	}
	free(p->parts);
	free(p);
}

static Part *add_part(JsonPath *p)
{
	p->parts = xrealloc(p->parts, (p->n_parts + 1) * sizeof(Part));
	p->parts[p->n_parts] = (Part){ 0 };
	return &p->parts[p->n_parts++];
}

static int err(char **ret_err, const char *tmpl, const char *at, const char *what)
{
	if (ret_err)
		*ret_err = xasprintf("jsonpath \"%s\": at character %zu: %s", tmpl,
				     (size_t)(at - tmpl) + 1, what);
	return -EINVAL;
}

static void add_step(Part *part, StepKind kind, char *key, long index)
{
	part->steps = xrealloc(part->steps, (part->n_steps + 1) * sizeof(Step));
	part->steps[part->n_steps++] = (Step){ kind, key, index };
}

/* [N], [*] or ['key'] at s (s points at '['); returns the end or NULL. */
static const char *parse_bracket(const char *s, Part *part)
{
	s++;
	if (s[0] == '*' && s[1] == ']') {
		add_step(part, STEP_ALL, NULL, 0);
		return s + 2;
	}
	if (*s == '\'' || *s == '"') {
		const char *e = strchr(s + 1, *s);
		if (!e || e[1] != ']')
			return NULL;
		add_step(part, STEP_KEY, xstrndup(s + 1, (size_t)(e - s - 1)), 0);
		return e + 2;
	}
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (end == s || *end != ']' || errno || v < -INT_MAX || v > INT_MAX)
		return NULL;
	add_step(part, STEP_INDEX, NULL, v);
	return end + 1;
}

static bool key_char(char c)
{
	return c && !strchr(".[]{}()?@$*,:'\" \t\n", c);
}

/* A path expression from s up to '}'; returns the '}' or NULL with *ret_err. */
static const char *parse_path(const char *tmpl, const char *s, Part *part, char **ret_err)
{
	if (*s == '$')
		s++;
	if (*s == '.' && (s[1] == '}' || s[1] == 0))
		s++; /* "{.}" is the whole document */
	while (*s && *s != '}') {
		if (part->n_steps >= JSONPATH_MAX_STEPS) {
			err(ret_err, tmpl, s, "more than 64 steps");
			return NULL;
		}
		if (*s == '[') {
			const char *e = parse_bracket(s, part);
			if (!e) {
				err(ret_err, tmpl, s,
				    "expected [N], [*] or ['key'] (filters and "
				    "slices are not supported)");
				return NULL;
			}
			s = e;
		} else if (*s == '.' && key_char(s[1])) {
			const char *e = s + 1;
			while (key_char(*e))
				e++;
			add_step(part, STEP_KEY, xstrndup(s + 1, (size_t)(e - s - 1)), 0);
			s = e;
		} else {
			err(ret_err, tmpl, s,
			    *s == '.' ? "expected a key after '.' ('..' is not supported)"
				      : "expected .key, [N], [*] or ['key']");
			return NULL;
		}
	}
	return s;
}

/* A quoted literal inside braces: {"\n"}. s points at '"'. */
static const char *parse_quoted(const char *tmpl, const char *s, Part *part, char **ret_err)
{
	size_t cap = strlen(s), n = 0;
	char *out = xmalloc(cap + 1);
	for (s++; *s && *s != '"'; s++) {
		if (*s != '\\') {
			out[n++] = *s;
			continue;
		}
		s++;
		switch (*s) {
		case 'n': out[n++] = '\n'; break;
		case 't': out[n++] = '\t'; break;
		case '\\':
		case '"': out[n++] = *s; break;
		default:
			free(out);
			err(ret_err, tmpl, s, "expected \\n, \\t, \\\\ or \\\" in a quoted string");
			return NULL;
		}
	}
	out[n] = 0;
	if (*s != '"' || s[1] != '}') {
		free(out);
		err(ret_err, tmpl, s, "unterminated quoted string (expected \"})");
		return NULL;
	}
	part->literal = out;
	return s + 1;
}

static int compile_expr(const char *tmpl, const char **p, JsonPath *jp, char **ret_err)
{
	const char *s = *p + 1, *start = s;
	while (*s == ' ')
		s++;
	Part *part = add_part(jp);
	if (*s == '"')
		s = parse_quoted(tmpl, s, part, ret_err);
	else if (*s == '.' || *s == '$' || *s == '[')
		s = parse_path(tmpl, s, part, ret_err);
	else
		return err(
			ret_err, tmpl, start,
			startswith(s, "range") || startswith(s, "end")
				? "range/end is not supported"
				: "expected a path starting with '.' or '$', or a quoted string");
	if (!s)
		return -EINVAL;
	if (*s != '}')
		return err(ret_err, tmpl, s, "expected '}'");
	*p = s + 1;
	return 0;
}

int jsonpath_compile(const char *tmpl, JsonPath **ret, char **ret_err)
{
	if (strlen(tmpl) > JSONPATH_MAX_TEMPLATE)
		return err(ret_err, tmpl, tmpl, "template longer than 4096 characters");
	_cleanup_(jsonpath_freep) JsonPath *jp = xcalloc(1, sizeof(JsonPath));
	const char *s = tmpl;
	bool bare = *s == '.' || *s == '$'; /* custom-columns style: no braces */
	if (bare) {
		Part *part = add_part(jp);
		const char *e = parse_path(tmpl, s, part, ret_err);
		if (!e)
			return -EINVAL;
		if (*e)
			return err(ret_err, tmpl, e, "unexpected '}'");
		*ret = TAKE_PTR(jp);
		return 0;
	}
	while (*s) {
		if (*s == '{') {
			int r = compile_expr(tmpl, &s, jp, ret_err);
			if (r < 0)
				return r;
			continue;
		}
		const char *e = s;
		while (*e && *e != '{')
			e++;
		add_part(jp)->literal = xstrndup(s, (size_t)(e - s));
		s = e;
	}
	*ret = TAKE_PTR(jp);
	return 0;
}

/* Apply one step to every value in v (n values); returns the new set. */
static json_object **apply_step(const Step *st, json_object **v, size_t n, size_t *ret_n)
{
	json_object **out = NULL;
	size_t m = 0;
	for (size_t i = 0; i < n; i++) {
		json_object *o = v[i], *x = NULL;
		if (st->kind == STEP_KEY) {
			if (!json_object_is_type(o, json_type_object) ||
			    !json_object_object_get_ex(o, st->key, &x))
				continue;
			out = xrealloc(out, (m + 1) * sizeof(*out));
			out[m++] = x;
		} else if (st->kind == STEP_INDEX) {
			if (!json_object_is_type(o, json_type_array))
				continue;
			long len = (long)json_object_array_length(o);
			long k = st->index < 0 ? len + st->index : st->index;
			if (k < 0 || k >= len)
				continue;
			out = xrealloc(out, (m + 1) * sizeof(*out));
			out[m++] = json_object_array_get_idx(o, (size_t)k);
		} else if (json_object_is_type(o, json_type_array)) {
			size_t len = json_object_array_length(o);
			out = xrealloc(out, (m + len + 1) * sizeof(*out));
			for (size_t k = 0; k < len; k++)
				out[m++] = json_object_array_get_idx(o, k);
		} else if (json_object_is_type(o, json_type_object)) {
			json_object_object_foreach (o, key, val) {
				(void)key;
				out = xrealloc(out, (m + 1) * sizeof(*out));
				out[m++] = val;
			}
		}
	}
	*ret_n = m;
	return out;
}

/* Every value the path of part yields (borrowed); caller frees the array. */
static json_object **eval_part(const Part *part, json_object *doc, size_t *ret_n)
{
	json_object **v = xmalloc(sizeof(*v));
	size_t n = 1;
	v[0] = doc;
	for (size_t i = 0; i < part->n_steps && n > 0; i++) {
		size_t m;
		json_object **next = apply_step(&part->steps[i], v, n, &m);
		free(v);
		v = next;
		n = m;
	}
	*ret_n = n;
	return v;
}

static void print_value(FILE *f, json_object *o)
{
	switch (json_object_get_type(o)) {
	case json_type_null: break;
	case json_type_string: fputs(json_object_get_string(o), f); break;
	default:
		fputs(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
								JSON_C_TO_STRING_NOSLASHESCAPE),
		      f);
	}
}

char *jsonpath_render(const JsonPath *p, json_object *doc)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	if (!f)
		abort();
	for (size_t i = 0; i < p->n_parts; i++) {
		const Part *part = &p->parts[i];
		if (part->literal) {
			fputs(part->literal, f);
			continue;
		}
		size_t n;
		_cleanup_free_ json_object **v = eval_part(part, doc, &n);
		for (size_t k = 0; k < n; k++) {
			if (k)
				fputc(' ', f);
			print_value(f, v[k]);
		}
	}
	fclose(f);
	return out;
}

json_object *jsonpath_first(const JsonPath *p, json_object *doc)
{
	for (size_t i = 0; i < p->n_parts; i++) {
		if (p->parts[i].literal)
			continue;
		size_t n;
		_cleanup_free_ json_object **v = eval_part(&p->parts[i], doc, &n);
		return n > 0 ? v[0] : NULL;
	}
	return NULL;
}
