/* get.c — `banger get` and `banger describe`: status files, plus the spec
 * dir for labels (-l) and for VMs bangerd has not written a status for yet
 * (listed as Pending), plus banger.db read-only for describe. */
#include "cli/cli.h"
#include "cli/common.h"
#include "cli/jsonpath.h"
#include "cli/selector.h"
#include "cli/staleness.h"
#include "cli/statuswatch.h"
#include "store/store.h"
#include "util/escape.h"
#include "util/fileio.h"
#include "util/hashmap.h"
#include "util/layout.h"
#include "util/timeutil.h"

#include <fcntl.h>
#include <getopt.h>
#include <json.h>
#include <signal.h>
#include <stdio.h>

typedef enum {
	OUT_TABLE,
	OUT_WIDE,
	OUT_JSON,
	OUT_YAML,
	OUT_NAME,
	OUT_JSONPATH,
	OUT_COLUMNS
} OutFormat;

typedef struct {
	char *header;
	JsonPath *path;
} Column;

typedef struct {
	OutFormat fmt;
	JsonPath *jsonpath;
	Column *cols;
	size_t n_cols;
	char *selector;
	bool watch;
	char **names;
} GetArgs;

static void get_usage(FILE *f)
{
	fprintf(f, "Usage: banger get [NAME...] [-l SELECTOR] [-w] [-o FORMAT]\n"
		   "\n"
		   "Show VM status as bangerd last wrote it (<status-dir>/<name>.status.json).\n"
		   "A VM whose spec file bangerd has not reported on yet is listed as Pending.\n"
		   "  -o table|wide|json|yaml  the table (default), with more columns, or the\n"
		   "                           status documents (a VMStatusList without NAME)\n"
		   "  -o name                  vm/NAME, one a line\n"
		   "  -o jsonpath=TEMPLATE     e.g. '{.phase}' or '{.items[*].name}', over the\n"
		   "                           document -o json prints\n"
		   "  -o custom-columns=SPEC   HEADER:.path,... per VM, e.g.\n"
		   "                           NAME:.name,PID:.runtime.pid\n"
		   "  -l, --selector SELECTOR  VMs whose spec labels match: key=value,\n"
		   "                           key!=value, key, !key (comma = and)\n"
		   "  -w, --watch              after the list, a row each time a status changes\n"
		   "                           (table, wide, name, custom-columns) until\n"
		   "                           interrupted\n"
		   "Warns on stderr when no bangerd holds the state dir's lock or a status was\n"
		   "last confirmed (observedAt) more than two resync periods ago.\n"
		   "Exit status: 0 ok, 1 NAME not found, 2 usage.\n");
}

static const char *ready_of(const VmStatus *s)
{
	const Condition *c = vm_status_get_condition(s, "Ready");
	return c ? cond_status_to_string(c->status) : "Unknown";
}

/* YAML from JSON: every scalar as JSON (valid YAML flow scalars). */
static void yaml_emit(json_object *o, int indent, bool in_list)
{
	json_object_iter it;
	bool first = true;
	switch (json_object_get_type(o)) {
	case json_type_object:
		if (json_object_object_length(o) == 0) {
			printf(" {}\n");
			break;
		}
		if (!in_list)
			printf("\n");
		json_object_object_foreachC (o, it) {
			printf("%*s%s:", (in_list && first) ? 0 : indent, "", it.key);
			first = false;
			json_type t = json_object_get_type(it.val);
			if (t == json_type_object || t == json_type_array)
				yaml_emit(it.val, indent + 2, false);
			else
				printf(" %s\n",
				       it.val ? json_object_to_json_string_ext(
							it.val, JSON_C_TO_STRING_NOSLASHESCAPE)
					      : "null");
		}
		break;
	case json_type_array:
		if (json_object_array_length(o) == 0) {
			printf(" []\n");
			break;
		}
		printf("\n");
		for (size_t i = 0; i < json_object_array_length(o); i++) {
			json_object *e = json_object_array_get_idx(o, i);
			printf("%*s- ", indent, "");
			if (json_object_is_type(e, json_type_object))
				yaml_emit(e, indent + 2, true);
			else
				printf("%s\n", json_object_to_json_string(e));
		}
		break;
	default: printf(" %s\n", json_object_to_json_string(o));
	}
}

static void print_header(const GetArgs *a)
{
	if (a->fmt == OUT_WIDE)
		printf("%-24s %-9s %-7s %-15s %-8s %-14s %-8s %-7s %-5s %s\n", "NAME", "PHASE",
		       "READY", "IP", "PID", "TAP", "RESTARTS", "GEN", "AGE", "SOURCE");
	else if (a->fmt == OUT_TABLE)
		printf("%-24s %-9s %-7s %-15s %-8s %s\n", "NAME", "PHASE", "READY", "IP",
		       "RESTARTS", "AGE");
	else if (a->fmt == OUT_COLUMNS) {
		for (size_t i = 0; i < a->n_cols; i++)
			printf(i + 1 < a->n_cols ? "%-20s " : "%s\n", a->cols[i].header);
	}
}

static void print_columns(const GetArgs *a, const VmStatus *s)
{
	_cleanup_free_ char *j = vm_status_to_json(s);
	json_object *doc = json_tokener_parse(j);
	for (size_t i = 0; i < a->n_cols; i++) {
		json_object *v = jsonpath_first(a->cols[i].path, doc);
		const char *txt =
			!v ? "<none>"
			: json_object_is_type(v, json_type_string)
				? json_object_get_string(v)
				: json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
		printf(i + 1 < a->n_cols ? "%-20s " : "%s\n", txt);
	}
	json_object_put(doc);
}

/* One row; phase_override for a deleted VM in -w. */
static void print_row(const GetArgs *a, const VmStatus *s, const char *phase_override)
{
	char age[16], pid[16], gen[32];
	const char *phase = phase_override ? phase_override : vm_phase_to_string(s->phase);
	if (a->fmt == OUT_NAME) {
		printf("vm/%s\n", s->name);
		return;
	}
	if (a->fmt == OUT_COLUMNS) {
		print_columns(a, s);
		return;
	}
	cli_format_age(s->started_at_ms, age, sizeof(age));
	snprintf(pid, sizeof(pid), "%d", (int)s->pid);
	snprintf(gen, sizeof(gen), "%lld/%lld", (long long)s->observed_generation,
		 (long long)s->generation);
	if (a->fmt == OUT_WIDE) {
		/* A file name is anyone's: never let it drive the terminal. */
		_cleanup_free_ char *src =
			escape_str(s->source_file ? s->source_file : "-", ESCAPE_DISPLAY);
		printf("%-24s %-9s %-7s %-15s %-8s %-14s %-8lld %-7s %-5s %s\n", s->name, phase,
		       ready_of(s), s->guest_ip ? s->guest_ip : "-", s->pid > 0 ? pid : "-",
		       s->tap ? s->tap : "-", (long long)s->restart_count, gen, age, src);
	} else
		printf("%-24s %-9s %-7s %-15s %-8lld %s\n", s->name, phase, ready_of(s),
		       s->guest_ip ? s->guest_ip : "-", (long long)s->restart_count, age);
}

static json_object *status_doc(VmStatus *const *v, size_t n, bool single)
{
	if (single && n == 1) {
		_cleanup_free_ char *j = vm_status_to_json(v[0]);
		return json_tokener_parse(j);
	}
	json_object *arr = json_object_new_array();
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *j = vm_status_to_json(v[i]);
		json_object_array_add(arr, json_tokener_parse(j));
	}
	json_object *out = json_object_new_object();
	json_object_object_add(out, "apiVersion", json_object_new_string("banger/v1"));
	json_object_object_add(out, "kind", json_object_new_string("VMStatusList"));
	json_object_object_add(out, "items", arr);
	return out;
}

static void print_list(const GetArgs *a, VmStatus *const *v, size_t n, bool single)
{
	if (a->fmt == OUT_JSON || a->fmt == OUT_YAML || a->fmt == OUT_JSONPATH) {
		json_object *out = status_doc(v, n, single);
		if (a->fmt == OUT_JSON)
			printf("%s\n",
			       json_object_to_json_string_ext(
				       out, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
						    JSON_C_TO_STRING_NOSLASHESCAPE));
		else if (a->fmt == OUT_YAML) {
			printf("---");
			yaml_emit(out, 0, false);
		} else {
			_cleanup_free_ char *txt = jsonpath_render(a->jsonpath, out);
			printf("%s\n", txt);
		}
		json_object_put(out);
		return;
	}
	print_header(a);
	for (size_t i = 0; i < n; i++)
		print_row(a, v[i], NULL);
}

static void get_args_clear(GetArgs *a)
{
	jsonpath_free(a->jsonpath);
	for (size_t i = 0; i < a->n_cols; i++) {
		free(a->cols[i].header);
		jsonpath_free(a->cols[i].path);
	}
	free(a->cols);
	free(a->selector);
	strv_free(a->names);
}

/* HEADER:.path,HEADER:.path */
static int parse_columns(const char *spec, GetArgs *a)
{
	_cleanup_free_ char *copy = xstrdup(spec);
	for (char *tok = copy, *save = NULL; (tok = strtok_r(tok, ",", &save)); tok = NULL) {
		char *colon = strchr(tok, ':');
		if (!colon || colon == tok) {
			cli_error("-o custom-columns: expected HEADER:.path, got '%s'", tok);
			return -EINVAL;
		}
		*colon = 0;
		a->cols = xrealloc(a->cols, (a->n_cols + 1) * sizeof(Column));
		Column *c = &a->cols[a->n_cols++];
		*c = (Column){ xstrdup(tok), NULL };
		if (cli_compile_jsonpath("-o custom-columns", colon + 1, &c->path) < 0)
			return -EINVAL;
	}
	if (!a->n_cols) {
		cli_error("-o custom-columns: expected HEADER:.path,...");
		return -EINVAL;
	}
	return 0;
}

/* What -o takes, in OutFormat order. */
const CliForm cli_output_forms[] = {
	[OUT_TABLE] = { "table", NULL, NULL },
	[OUT_WIDE] = { "wide", NULL, NULL },
	[OUT_JSON] = { "json", NULL, NULL },
	[OUT_YAML] = { "yaml", NULL, NULL },
	[OUT_NAME] = { "name", NULL, NULL },
	[OUT_JSONPATH] = { "jsonpath=", "jsonpath=TEMPLATE", NULL },
	[OUT_COLUMNS] = { "custom-columns=", "custom-columns=SPEC", NULL },
};
const size_t cli_n_output_forms = ELEMENTSOF(cli_output_forms);

static int parse_format(const char *o, GetArgs *a)
{
	const char *value;
	int f = cli_parse_form("-o", cli_output_forms, cli_n_output_forms, o, &value);
	if (f < 0)
		return f;
	a->fmt = (OutFormat)f;
	if (a->fmt == OUT_JSONPATH) {
		jsonpath_free(TAKE_PTR(a->jsonpath));
		return cli_compile_jsonpath("-o", value, &a->jsonpath);
	}
	if (a->fmt == OUT_COLUMNS)
		return parse_columns(value, a);
	return 0;
}

/* 0 to go on, 1 after --help, -EINVAL after a message. */
static int parse_get_args(int argc, char **argv, GetArgs *a)
{
	static const struct option opts[] = { { "output", required_argument, NULL, 'o' },
					      { "selector", required_argument, NULL, 'l' },
					      { "watch", no_argument, NULL, 'w' },
					      { "help", no_argument, NULL, 'h' },
					      {} };
	int c;
	while ((c = getopt_long(argc, argv, "o:l:wh", opts, NULL)) != -1) {
		switch (c) {
		case 'o':
			if (parse_format(optarg, a) < 0)
				return -EINVAL;
			break;
		case 'l':
			free(a->selector);
			a->selector = xstrdup(optarg);
			break;
		case 'w': a->watch = true; break;
		case 'h': get_usage(stdout); return 1;
		default: get_usage(stderr); return -EINVAL;
		}
	}
	for (int i = optind; i < argc; i++)
		strv_push(&a->names, xstrdup(argv[i]));
	if (a->names && a->selector) {
		cli_error("give VM names or -l SELECTOR, not both");
		return -EINVAL;
	}
	if (a->watch && (a->fmt == OUT_JSON || a->fmt == OUT_YAML || a->fmt == OUT_JSONPATH)) {
		cli_error("-w prints rows: use it with -o table, wide, name or custom-columns");
		return -EINVAL;
	}
	return 0;
}

/* ---- what to show ------------------------------------------------------- */

/* What bangerd has not reported on yet: a status made up from a spec file. */
static VmStatus *pending_status(SpecDirIndex *idx, const char *name)
{
	char *const *definers = spec_dir_index_definers(idx, name);
	VmStatus *st = vm_status_new(name);
	st->phase = VM_PHASE_PENDING;
	st->source_file = xstrdup(definers ? definers[0] : NULL);
	return st;
}

typedef struct {
	VmStatus **v;
	size_t n;
} StatusList;

static void list_push(StatusList *l, VmStatus *s)
{
	l->v = xrealloc(l->v, (l->n + 1) * sizeof(VmStatus *));
	l->v[l->n++] = s;
}

static void list_clear(StatusList *l)
{
	for (size_t i = 0; i < l->n; i++)
		vm_status_free(l->v[i]);
	free(l->v);
	*l = (StatusList){ 0 };
}

static int cmp_status_name(const void *a, const void *b)
{
	return strcmp((*(VmStatus *const *)a)->name, (*(VmStatus *const *)b)->name);
}

/* The statuses of names (each a status file, else Pending when a spec file
 * defines it). -ENOENT after saying which are unknown; found ones are kept. */
static int collect_named(const CliDirs *dirs, char *const *names, StatusList *l)
{
	_cleanup_(spec_dir_index_freep) SpecDirIndex *idx = NULL;
	int rc = 0;
	for (size_t i = 0; names[i]; i++) {
		VmStatus *st = NULL;
		if (!cli_check_name(names[i])) {
			rc = -EINVAL;
			continue;
		}
		int r = vm_status_read(dirs->status_dir, names[i], &st);
		if (r == -ENOENT && (idx || spec_dir_index_build(dirs->spec_dir, &idx) >= 0) &&
		    spec_dir_index_definers(idx, names[i]))
			st = pending_status(idx, names[i]), r = 0;
		if (r < 0) {
			cli_error("vm/%s: %s", names[i],
				  r == -ENOENT   ? "not found (no status file, no spec file)"
				  : r == -EINVAL ? "status file is not a VMStatus document"
						 : strerror(-r));
			rc = rc ? rc : r;
			continue;
		}
		list_push(l, st);
	}
	return rc;
}

/* Every status, plus Pending for spec-defined names without one; only
 * those whose spec labels match sel when sel is not NULL. */
static int collect_all(const CliDirs *dirs, const Selector *sel, StatusList *l)
{
	_cleanup_(spec_dir_index_freep) SpecDirIndex *idx = NULL;
	VmStatus **v = NULL;
	size_t n = 0;
	int r = cli_load_statuses(dirs->status_dir, &v, &n);
	if (r == -ENOENT && !streq(dirs->status_dir, dirs->spec_dir))
		r = 0; /* bangerd has not made it yet: every spec is Pending */
	if (r < 0) {
		cli_error("status dir %s: %s", dirs->status_dir, strerror(-r));
		return r;
	}
	if (spec_dir_index_build(dirs->spec_dir, &idx) < 0)
		idx = NULL; /* no spec dir: statuses only, no labels */
	_cleanup_(hashmap_freep) Hashmap *have = hashmap_new();
	for (size_t i = 0; i < n; i++) {
		hashmap_put(have, v[i]->name, v[i]);
		list_push(l, v[i]);
	}
	free(v);
	_cleanup_strv_free_ char **names = idx ? spec_dir_index_all_names(idx) : NULL;
	for (size_t i = 0; names && names[i]; i++)
		if (!hashmap_contains(have, names[i]))
			list_push(l, pending_status(idx, names[i]));
	size_t keep = 0;
	for (size_t i = 0; i < l->n; i++) {
		const VmSpec *s = idx ? spec_dir_index_spec(idx, l->v[i]->name) : NULL;
		if (!sel || selector_matches(sel, s ? s->labels : NULL, s ? s->n_labels : 0))
			l->v[keep++] = l->v[i];
		else
			vm_status_free(l->v[i]);
	}
	l->n = keep;
	if (l->n)
		qsort(l->v, l->n, sizeof(VmStatus *), cmp_status_name);
	return 0;
}

/* ---- -w ------------------------------------------------------------------ */

/* What a status says, without when it was said: -w prints a row only when
 * this changes (bangerd's observedAt refresh is no change). */
static char *content_of(const VmStatus *s)
{
	_cleanup_(vm_status_freep) VmStatus *c = vm_status_dup(s);
	c->observed_at_ms = 0;
	return vm_status_to_json(c);
}

typedef struct {
	const GetArgs *a;
	const CliDirs *dirs;
	Selector *sel;
	Hashmap *last;     /* name → content string last printed */
	SpecDirIndex *idx; /* labels for -l, re-read only when a spec changed */
} Watch;

/* The spec dir index is re-read when it does not know name or knows another
 * spec than the one the status is about (a label edit changes the spec
 * hash): not once per event, which at 10,000 VMs would parse every spec
 * file for every status write. */
static const VmSpec *watch_spec(Watch *w, const VmStatus *st)
{
	const VmSpec *s = w->idx ? spec_dir_index_spec(w->idx, st->name) : NULL;
	char hash[65];
	if (s)
		vm_spec_hash(s, hash);
	if (!s || !streq_ptr(st->spec_hash, hash)) {
		spec_dir_index_free(TAKE_PTR(w->idx));
		if (spec_dir_index_build(w->dirs->spec_dir, &w->idx) < 0)
			w->idx = NULL;
		s = w->idx ? spec_dir_index_spec(w->idx, st->name) : NULL;
	}
	return s;
}

static bool watch_wants(Watch *w, const VmStatus *st)
{
	if (w->a->names)
		return strv_contains(w->a->names, st->name);
	if (!w->sel)
		return true;
	const VmSpec *s = watch_spec(w, st);
	return selector_matches(w->sel, s ? s->labels : NULL, s ? s->n_labels : 0);
}

static void watch_one(Watch *w, const char *name)
{
	_cleanup_(vm_status_freep) VmStatus *st = NULL;
	char *prev = hashmap_get(w->last, name);
	if (vm_status_read(w->dirs->status_dir, name, &st) < 0) {
		if (!prev)
			return;
		/* gone: one last row, then forget it */
		_cleanup_(vm_status_freep) VmStatus *old = NULL;
		if (vm_status_from_json(prev, &old) == 0)
			print_row(w->a, old, "Deleted");
		free(hashmap_remove(w->last, name));
		return;
	}
	char *now = content_of(st);
	if ((prev && streq(prev, now)) || !watch_wants(w, st)) {
		free(now);
		return;
	}
	free(hashmap_put(w->last, name, now));
	print_row(w->a, st, NULL);
}

static int watch_loop(const CliDirs *dirs, const GetArgs *a, Selector *sel, StatusWatch *sw,
		      const StatusList *l)
{
	Watch w = { a, dirs, sel, hashmap_new(), NULL };
	int r;
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i]->observed_at_ms > 0 || l->v[i]->generation > 0)
			free(hashmap_put(w.last, l->v[i]->name, content_of(l->v[i])));
	fflush(stdout);
	for (;;) {
		_cleanup_strv_free_ char **changed = NULL;
		bool all = false;
		r = status_watch_next(sw, -1, &changed, &all);
		if (r == -EINTR || r == 0)
			continue;
		if (r < 0)
			break;
		if (all) {
			strv_free(changed);
			changed = hashmap_keys_sorted(w.last);
			cli_warn("event queue overflowed: rows may have been missed");
		}
		for (size_t i = 0; changed && changed[i]; i++)
			watch_one(&w, changed[i]);
		fflush(stdout);
	}
	cli_error("watch status dir %s: %s", dirs->status_dir,
		  r == -ENOENT ? "the directory went away" : strerror(-r));
	size_t st = 0;
	void *v;
	while (hashmap_iter(w.last, &st, NULL, &v))
		free(v);
	hashmap_free(w.last);
	spec_dir_index_free(w.idx);
	return 1;
}

int cli_get(const CliDirs *dirs, int argc, char **argv)
{
	GetArgs a = { 0 };
	StatusList l = { 0 };
	_cleanup_(selector_freep) Selector *sel = NULL;
	_cleanup_(status_watch_freep) StatusWatch *sw = NULL;
	_cleanup_free_ char *err = NULL;
	int r = parse_get_args(argc, argv, &a), rc = 0;
	if (r != 0) {
		get_args_clear(&a);
		return r > 0 ? 0 : 2;
	}
	if (a.selector && selector_parse(a.selector, &sel, &err) < 0) {
		cli_error("-l: %s", err);
		get_args_clear(&a);
		return 2;
	}
	/* before the first read, so no change falls between list and watch */
	if (a.watch && (r = status_watch_open(dirs->status_dir, &sw)) < 0) {
		cli_error("watch status dir %s: %s", dirs->status_dir, strerror(-r));
		get_args_clear(&a);
		return 1;
	}
	if (a.names)
		rc = collect_named(dirs, a.names, &l) < 0 ? 1 : 0;
	else if (collect_all(dirs, sel, &l) < 0)
		rc = 1;
	if (l.n)
		cli_warn_stale(dirs, l.v, l.n);
	if (l.n || (!a.names && !rc))
		print_list(&a, l.v, l.n, a.names && strv_length(a.names) == 1);
	if (a.watch && !rc) {
		signal(SIGPIPE, SIG_DFL);
		rc = watch_loop(dirs, &a, sel, sw, &l);
	}
	list_clear(&l);
	get_args_clear(&a);
	return rc;
}

/* What the store knows (read-only) and the end of the guest console. Quietly
 * skipped when the state dir is not readable by this user. */
static void describe_durable(const CliDirs *dirs, const char *name)
{
	_cleanup_free_ char *db = layout_db_path(dirs->state_dir);
	_cleanup_(store_closep) Store *st = NULL;
	_cleanup_(vm_record_freep) VmRecord *r = NULL;
	if (access(db, R_OK) < 0 || store_open_readonly(db, &st) < 0 ||
	    store_get_vm(st, name, &r) < 0)
		return;
	printf("Durable:\n");
	printf("  %-18s %s\n", "UID:", r->uid);
	printf("  %-18s %s\n", "VM dir:", r->vm_dir ? r->vm_dir : "- (never started)");
	printf("  %-18s %s\n", "API socket:", r->api_sock ? r->api_sock : "-");
	printf("  %-18s %s\n", "VMM log:", r->log_path ? r->log_path : "-");
	if (r->deleted)
		printf("  %-18s %s\n", "Deleted:", "yes (teardown pending)");
	if (!r->vm_dir)
		return;
	_cleanup_free_ char *console = layout_vm_file(r->vm_dir, LAYOUT_CONSOLE_LOG);
	_cleanup_close_ int fd = open(console, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return;
	char buf[1025];
	off_t size = lseek(fd, 0, SEEK_END);
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, size > 1024 ? size - 1024 : 0);
	if (n <= 0)
		return;
	buf[n] = 0;
	char *start = size > 1024 ? strchr(buf, '\n') : buf; /* from a line start */
	printf("Console (%s, last lines):\n", console);
	for (char *line = start ? start + (start != buf) : buf, *save = NULL;
	     (line = strtok_r(line, "\n", &save)); line = NULL) {
		printf("  ");
		escape_fputs(stdout, line, ESCAPE_DISPLAY); /* guest text: no terminal escapes */
		putchar('\n');
	}
}

static void describe_usage(FILE *f)
{
	fprintf(f, "Usage: banger describe NAME... | -l SELECTOR\n"
		   "\n"
		   "Everything banger knows about a VM, for people: the status file, when it\n"
		   "was last confirmed, the durable facts from banger.db (read-only, when the\n"
		   "state dir is readable) and the end of the guest console. A VM with a spec\n"
		   "file but no status yet is shown as Pending. Warns on stderr as `get` does.\n"
		   "Exit status: 0 ok, 1 not found, 2 usage.\n");
}

static void print_time(const char *label, int64_t ms)
{
	char buf[40];
	if (ms <= 0)
		return;
	time_format_rfc3339(ms, buf, sizeof(buf));
	printf("%-20s %s\n", label, buf);
}

static void describe_one(const CliDirs *dirs, const VmStatus *s)
{
	printf("%-20s %s\n", "Name:", s->name);
	printf("%-20s %s\n", "Source:", s->source_file ? s->source_file : "-");
	printf("%-20s %s%s\n", "Phase:", vm_phase_to_string(s->phase),
	       s->observed_at_ms || s->generation ? "" : " (no status from bangerd yet)");
	printf("%-20s ", "Source:");
	escape_fputs(stdout, s->source_file ? s->source_file : "-", ESCAPE_DISPLAY);
	putchar('\n');
	printf("%-20s %s\n", "Phase:", vm_phase_to_string(s->phase));
	printf("%-20s %lld (observed %lld)\n", "Generation:", (long long)s->generation,
	       (long long)s->observed_generation);
	printf("%-20s %s\n", "Spec hash:", s->spec_hash ? s->spec_hash : "-");
	print_time("Observed at:", s->observed_at_ms);
	printf("Runtime:\n");
	if (s->pid > 0)
		printf("  %-18s %d\n", "PID:", (int)s->pid);
	printf("  %-18s %s\n", "Guest IP:", s->guest_ip ? s->guest_ip : "-");
	printf("  %-18s %s\n", "Tap:", s->tap ? s->tap : "-");
	print_time("  Started:", s->started_at_ms);
	printf("  %-18s %lld\n", "Restarts:", (long long)s->restart_count);
	printf("Conditions:\n");
	printf("  %-14s %-8s %-22s %-21s %s\n", "TYPE", "STATUS", "REASON", "SINCE", "MESSAGE");
	for (size_t i = 0; i < s->n_conditions; i++) {
		const Condition *c = &s->conditions[i];
		char since[40] = "-";
		if (c->last_transition_ms > 0)
			time_format_rfc3339(c->last_transition_ms, since, sizeof(since));
		/* Messages quote file names and console text. */
		_cleanup_free_ char *msg = escape_str(c->message ? c->message : "", ESCAPE_DISPLAY);
		printf("  %-14s %-8s %-22s %-21s %s\n", c->type, cond_status_to_string(c->status),
		       c->reason, since, msg);
	}
	if (s->last_error) {
		_cleanup_free_ char *err = escape_str(s->last_error, ESCAPE_DISPLAY);
		printf("%-20s %s\n", "Last error:", err);
	}
	describe_durable(dirs, s->name);
	cli_print_events(dirs->status_dir, s->name, 10);
}

int cli_describe(const CliDirs *dirs, int argc, char **argv)
{
	static const struct option opts[] = { { "selector", required_argument, NULL, 'l' },
					      { "help", no_argument, NULL, 'h' },
					      {} };
	_cleanup_strv_free_ char **names = NULL;
	_cleanup_free_ char *selector = NULL;
	StatusList l = { 0 };
	int c, r, rc = 0;
	while ((c = getopt_long(argc, argv, "l:h", opts, NULL)) != -1) {
		switch (c) {
		case 'l':
			free(selector);
			selector = xstrdup(optarg);
			break;
		case 'h': describe_usage(stdout); return 0;
		default: describe_usage(stderr); return 2;
		}
	}
	for (int i = optind; i < argc; i++)
		strv_push(&names, xstrdup(argv[i]));
	if (!names == !selector) {
		cli_error("give VM names or -l SELECTOR%s", names ? ", not both" : "");
		describe_usage(stderr);
		return 2;
	}
	if (selector && (r = cli_select_names(dirs, selector, &names)) < 0)
		return r == -EDOM ? 2 : 1;
	if (collect_named(dirs, names, &l) < 0)
		rc = 1;
	if (l.n)
		cli_warn_stale(dirs, l.v, l.n);
	for (size_t i = 0; i < l.n; i++) {
		if (i)
			printf("\n");
		describe_one(dirs, l.v[i]);
	}
	list_clear(&l);
	return rc;
}
