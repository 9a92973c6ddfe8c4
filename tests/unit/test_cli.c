/* Pure pieces of the banger CLI: label selectors and JSONPath templates. */
#include "cli/cli.h"
#include "cli/jsonpath.h"
#include "cli/selector.h"
#include "tap.h"

#include <stdio.h>

static bool sel_match(const char *text, const SpecLabel *l, size_t n)
{
	Selector *s = NULL;
	if (selector_parse(text, &s, NULL) < 0)
		return false;
	bool m = selector_matches(s, l, n);
	selector_free(s);
	return m;
}

static void test_selector(void)
{
	SpecLabel l[] = { { "app", "web" }, { "team", "a" }, { "tier", "" } };
	const struct {
		const char *sel;
		bool match;
	} t[] = {
		{ "", true },
		{ "app=web", true },
		{ "app==web", true },
		{ "app=db", false },
		{ "app!=db", true },
		{ "app!=web", false },
		{ "missing!=x", true }, /* kubectl: != matches an absent label */
		{ "app=web,team=a", true },
		{ "app=web,team=b", false },
		{ " app = web , team != b ", true },
		{ "app", true },
		{ "missing", false },
		{ "!missing", true },
		{ "!app", false },
		{ "tier=", true }, /* empty value */
		{ "tier!=", false },
	};
	for (size_t i = 0; i < ELEMENTSOF(t); i++)
		CHECK(sel_match(t[i].sel, l, ELEMENTSOF(l)) == t[i].match, "selector '%s' %s",
		      t[i].sel, t[i].match ? "matches" : "does not match");
	CHECK(sel_match("app=web", NULL, 0) == false, "no labels: app=web does not match");
	CHECK(sel_match("app!=web", NULL, 0) == true, "no labels: app!=web matches");

	const char *bad[] = { "=web",  "app=web,", "app=w b",    "!app=web",
			      "app<3", ",",        "app=web,,x", "a/b=c" };
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		Selector *s = NULL;
		char *msg = NULL;
		CHECK_INTEQ(selector_parse(bad[i], &s, &msg), -EINVAL, "'%s' is refused", bad[i]);
		CHECK(msg && strstr(msg, "at character"), "'%s': message says where: %s", bad[i],
		      msg ? msg : "(none)");
		CHECK(s == NULL, "'%s': nothing returned", bad[i]);
		free(msg);
	}
	char longkey[80];
	memset(longkey, 'k', 64);
	longkey[64] = 0;
	Selector *s = NULL;
	CHECK_INTEQ(selector_parse(longkey, &s, NULL), -EINVAL, "a 64-character key is refused");
	_cleanup_free_ char *many = NULL;
	for (int i = 0; i < 65; i++) {
		char *n = xasprintf("%s%sk%d=v", many ? many : "", many ? "," : "", i);
		free(many);
		many = n;
	}
	CHECK_INTEQ(selector_parse(many, &s, NULL), -EINVAL, "65 requirements are refused");
}

static const char *doc_json =
	"{\"name\":\"web-1\",\"phase\":\"Running\",\"generation\":3,\"lastError\":null,"
	"\"conditions\":[{\"type\":\"SpecValid\",\"status\":\"True\"},"
	"{\"type\":\"Ready\",\"status\":\"False\"}],"
	"\"runtime\":{\"pid\":42,\"tap\":\"bgr-1\"},\"items\":[{\"name\":\"a\"},{\"name\":\"b\"}],"
	"\"odd key\":\"x\"}";

static char *render(const char *tmpl, json_object *doc)
{
	JsonPath *p = NULL;
	char *e = NULL;
	if (jsonpath_compile(tmpl, &p, &e) < 0) {
		char *r = xasprintf("ERROR %s", e);
		free(e);
		return r;
	}
	char *out = jsonpath_render(p, doc);
	jsonpath_free(p);
	return out;
}

static void test_jsonpath(void)
{
	json_object *doc = json_tokener_parse(doc_json);
	const struct {
		const char *tmpl, *want;
	} t[] = {
		{ "{.phase}", "Running" },
		{ "{$.phase}", "Running" },
		{ ".phase", "Running" },
		{ "{.generation}", "3" },
		{ "{.lastError}", "" },
		{ "{.missing}", "" },
		{ "{.runtime.pid}", "42" },
		{ "{.conditions[0].status}", "True" },
		{ "{.conditions[1].type}", "Ready" },
		{ "{.conditions[-1].type}", "Ready" },
		{ "{.conditions[5].type}", "" },
		{ "{.conditions[*].type}", "SpecValid Ready" },
		{ "{.items[*].name}", "a b" },
		{ "{['odd key']}", "x" },
		{ "{.runtime}", "{\"pid\":42,\"tap\":\"bgr-1\"}" },
		{ "name={.name} pid={.runtime.pid}{\"\\n\"}", "name=web-1 pid=42\n" },
		{ "{.phase.deeper}", "" },
		{ "plain text", "plain text" },
	};
	for (size_t i = 0; i < ELEMENTSOF(t); i++) {
		_cleanup_free_ char *got = render(t[i].tmpl, doc);
		CHECK_STREQ(got, t[i].want, "jsonpath %s", t[i].tmpl);
	}
	const char *bad[] = { "{.phase",          "{phase}",       "{..name}",
			      "{.items[?(@.x)]}", "{.items[0:1]}", "{range .items[*]}",
			      "{.a[x]}",          "{\"\\q\"}",     "{\"open}" };
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		JsonPath *p = NULL;
		char *e = NULL;
		CHECK_INTEQ(jsonpath_compile(bad[i], &p, &e), -EINVAL, "'%s' is refused", bad[i]);
		CHECK(e && strstr(e, "at character"), "'%s': says where: %s", bad[i], e ? e : "-");
		free(e);
		jsonpath_free(p);
	}
	JsonPath *p = NULL;
	CHECK_INTEQ(jsonpath_compile("{.conditions[1].status}", &p, NULL), 0, "compile");
	json_object *v = jsonpath_first(p, doc);
	CHECK(v && streq(json_object_get_string(v), "False"), "first value");
	jsonpath_free(p);
	CHECK_INTEQ(jsonpath_compile(".nope", &p, NULL), 0, "compile bare");
	CHECK(jsonpath_first(p, doc) == NULL, "missing: NULL");
	jsonpath_free(p);
	json_object_put(doc);
}

static void test_duration(void)
{
	const struct {
		const char *s;
		int r;
		uint64_t ms;
	} t[] = {
		{ "30", 0, 30000 },    { "30s", 0, 30000 },    { "500ms", 0, 500 },
		{ "2m", 0, 120000 },   { "1h", 0, 3600000 },   { "24h", 0, 86400000 },
		{ "0", 0, 0 },         { "25h", -ERANGE, 0 },  { "86401", -ERANGE, 0 },
		{ "", -EINVAL, 0 },    { "s", -EINVAL, 0 },    { "10x", -EINVAL, 0 },
		{ "-5s", -EINVAL, 0 }, { "1.5s", -EINVAL, 0 }, { "99999999999999s", -EINVAL, 0 },
	};
	for (size_t i = 0; i < ELEMENTSOF(t); i++) {
		uint64_t ms = 12345;
		int r = cli_parse_duration_ms(t[i].s, &ms);
		CHECK(r == t[i].r && (r < 0 ? ms == 12345 : ms == t[i].ms),
		      "duration '%s' → %d, %llu ms", t[i].s, r, (unsigned long long)ms);
	}
}

/* The forms an option takes (cli_form_match): words match whole, a KEY=
 * form needs a value after its '='. The table is get -o's shape. */
static void test_forms(void)
{
	static const CliForm forms[] = { { "table", NULL, NULL },
					 { "json", NULL, NULL },
					 { "jsonpath=", "jsonpath=TEMPLATE", NULL },
					 { "custom-columns=", "custom-columns=SPEC", NULL } };
	const struct {
		const char *arg;
		int want;
		const char *value;
	} t[] = {
		{ "table", 0, "" },
		{ "json", 1, "" },
		{ "jsonpath={.phase}", 2, "{.phase}" },
		{ "jsonpath==", 2, "=" },
		{ "custom-columns=A:.a", 3, "A:.a" },
		{ "jsonpath=", -EINVAL, NULL }, /* a KEY= form without its value */
		{ "jsonpath", -EINVAL, NULL },
		{ "tab", -EINVAL, NULL },
		{ "tables", -EINVAL, NULL },
		{ "json=x", -EINVAL, NULL }, /* a word takes no value */
		{ "", -EINVAL, NULL },
	};
	for (size_t i = 0; i < ELEMENTSOF(t); i++) {
		const char *value = "untouched";
		int r = cli_form_match(forms, ELEMENTSOF(forms), t[i].arg, &value);
		CHECK(r == t[i].want && streq(value, t[i].value ?: "untouched"),
		      "form of '%s' → %d, value '%s'", t[i].arg, r, value);
	}
	char *e = cli_forms_expected(forms, ELEMENTSOF(forms));
	CHECK_STREQ(e, "table, json, jsonpath=TEMPLATE or custom-columns=SPEC", "expected list");
	free(e);
	e = cli_forms_expected(forms, 1);
	CHECK_STREQ(e, "table", "expected list of one");
	free(e);
	e = cli_forms_expected(forms + 2, 2);
	CHECK_STREQ(e, "jsonpath=TEMPLATE or custom-columns=SPEC", "expected list of two");
	free(e);

	/* The real tables: what completion offers is accepted, as that form. */
	const struct {
		const CliForm *forms;
		size_t n;
	} real[] = { { cli_output_forms, cli_n_output_forms }, { cli_for_forms, cli_n_for_forms } };
	for (size_t r = 0; r < ELEMENTSOF(real); r++)
		for (size_t i = 0; i < real[r].n; i++) {
			const CliForm *f = &real[r].forms[i];
			const char *c = f->complete ?: f->form, *value;
			_cleanup_free_ char *arg =
				xasprintf("%s%s", c, c[strlen(c) - 1] == '=' ? "x" : "");
			CHECK_INTEQ(cli_form_match(real[r].forms, real[r].n, arg, &value), (int)i,
				    "completion '%s' is form %zu", arg, i);
		}
}

int main(void)
{
	test_duration();
	test_forms();
	test_selector();
	test_jsonpath();
	return tap_done();
}
