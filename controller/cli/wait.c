/* wait.c — waiting on status files without polling: `banger wait`, and the
 * engine behind `apply --wait` and `delete --wait` (common.h).
 *
 * The watch on the status dir is opened before the first read, so a status
 * written between the read and the wait still wakes us. Each wake-up
 * re-reads only the VMs whose file changed (all of them after a queue
 * overflow). */
#include "cli/cli.h"
#include "cli/common.h"
#include "cli/jsonpath.h"
#include "cli/selector.h"
#include "cli/statuswatch.h"
#include "util/timeutil.h"

#include <getopt.h>
#include <json.h>
#include <stdio.h>

typedef struct {
	/* true when name's status (NULL: no status file) meets the wait */
	bool (*met)(const char *name, const VmStatus *st, void *ud);
	/* called once per name when met */
	void (*report)(const char *name, const VmStatus *st, void *ud);
	void *ud;
} WaitFor;

/* Re-check names[i] for each i still pending; returns how many are left. */
static size_t check(const CliDirs *dirs, char *const *names, bool *done, const WaitFor *w,
		    char *const *only)
{
	size_t left = 0;
	for (size_t i = 0; names[i]; i++) {
		if (done[i])
			continue;
		if (only && !strv_contains(only, names[i])) {
			left++;
			continue;
		}
		_cleanup_(vm_status_freep) VmStatus *st = NULL;
		(void)vm_status_read(dirs->status_dir, names[i], &st); /* absent: NULL */
		if (w->met(names[i], st, w->ud)) {
			done[i] = true;
			w->report(names[i], st, w->ud);
		} else
			left++;
	}
	return left;
}

/* Wait until every name meets w, or timeout_ms passes. 0, -ETIMEDOUT (done
 * says which were met), or -errno (after an error message). */
static int wait_for(const CliDirs *dirs, char *const *names, bool *done, const WaitFor *w,
		    uint64_t timeout_ms)
{
	_cleanup_(status_watch_freep) StatusWatch *sw = NULL;
	int r = status_watch_open(dirs->status_dir, &sw);
	if (r < 0) {
		cli_error("watch status dir %s: %s", dirs->status_dir, strerror(-r));
		return r;
	}
	uint64_t deadline = time_now_ms() + timeout_ms;
	size_t left = check(dirs, names, done, w, NULL);
	while (left > 0) {
		uint64_t now = time_now_ms();
		if (now >= deadline)
			return -ETIMEDOUT;
		_cleanup_strv_free_ char **changed = NULL;
		bool all = false;
		r = status_watch_next(sw, (int)MIN(deadline - now, (uint64_t)INT32_MAX), &changed,
				      &all);
		if (r == -EINTR || r == 0)
			continue;
		if (r < 0) {
			cli_error("watch status dir %s: %s", dirs->status_dir,
				  r == -ENOENT ? "the directory went away" : strerror(-r));
			return r;
		}
		if (all || changed)
			left = check(dirs, names, done, w, all ? NULL : changed);
	}
	return 0;
}

static void say_timeout(const CliDirs *dirs, char *const *names, const bool *done,
			uint64_t timeout_ms)
{
	for (size_t i = 0; names[i]; i++) {
		if (done[i])
			continue;
		_cleanup_(vm_status_freep) VmStatus *st = NULL;
		(void)vm_status_read(dirs->status_dir, names[i], &st);
		cli_error("timed out after %.1fs waiting for vm/%s (%s%s)", timeout_ms / 1000.0,
			  names[i], st ? "phase " : "no status file",
			  st ? vm_phase_to_string(st->phase) : "");
	}
}

/* ---- apply --wait / delete --wait --------------------------------------- */

typedef struct {
	VmSpec **specs;
	char (*hashes)[65];
	size_t n;
	int failed;
} SettleCtx;

static size_t spec_index(const SettleCtx *c, const char *name)
{
	for (size_t i = 0; i < c->n; i++)
		if (streq(c->specs[i]->name, name))
			return i;
	return 0; /* not reached: names come from specs */
}

/* Only a status about exactly this spec counts: an older one may still be on
 * disk while bangerd works. */
static bool settled(const char *name, const VmStatus *st, void *ud)
{
	SettleCtx *c = ud;
	size_t i = spec_index(c, name);
	if (!st || !streq_ptr(st->spec_hash, c->hashes[i]) ||
	    st->observed_generation != st->generation)
		return false;
	switch (st->phase) {
	case VM_PHASE_RUNNING: {
		const Condition *cond = vm_status_get_condition(st, "Ready");
		return cond && cond->status == COND_TRUE;
	}
	case VM_PHASE_STOPPED: return c->specs[i]->state != VM_STATE_RUNNING;
	case VM_PHASE_SUSPENDED: return c->specs[i]->state == VM_STATE_SUSPENDED;
	case VM_PHASE_FAILED:
	case VM_PHASE_INVALID: return true;
	default: return false;
	}
}

static void report_settled(const char *name, const VmStatus *st, void *ud)
{
	SettleCtx *c = ud;
	bool ok = st->phase == VM_PHASE_RUNNING || st->phase == VM_PHASE_STOPPED ||
		  st->phase == VM_PHASE_SUSPENDED;
	printf("vm/%s %s%s%s\n", name, vm_phase_to_string(st->phase),
	       st->last_error && !ok ? ": " : "", st->last_error && !ok ? st->last_error : "");
	fflush(stdout);
	if (!ok)
		c->failed++;
}

int cli_wait_settled(const CliDirs *dirs, VmSpec **specs, size_t n, uint64_t timeout_ms)
{
	SettleCtx c = { specs, xcalloc(n, 65), n, 0 };
	_cleanup_strv_free_ char **names = NULL;
	_cleanup_free_ bool *done = xcalloc(n + 1, sizeof(bool));
	for (size_t i = 0; i < n; i++) {
		vm_spec_hash(specs[i], c.hashes[i]);
		strv_push(&names, xstrdup(specs[i]->name));
	}
	WaitFor w = { settled, report_settled, &c };
	int r = wait_for(dirs, names, done, &w, timeout_ms);
	if (r == -ETIMEDOUT)
		say_timeout(dirs, names, done, timeout_ms);
	free(c.hashes);
	return r < 0 ? r : c.failed ? -EIO : 0;
}

static bool gone(const char *name, const VmStatus *st, void *ud)
{
	return st == NULL;
}

static void report_nothing(const char *name, const VmStatus *st, void *ud)
{
}

int cli_wait_gone(const CliDirs *dirs, char **names, uint64_t timeout_ms)
{
	_cleanup_free_ bool *done = xcalloc(strv_length(names) + 1, sizeof(bool));
	WaitFor w = { gone, report_nothing, NULL };
	int r = wait_for(dirs, names, done, &w, timeout_ms);
	if (r == -ETIMEDOUT)
		say_timeout(dirs, names, done, timeout_ms);
	return r;
}

/* ---- banger wait ---------------------------------------------------------- */

typedef enum { FOR_CONDITION, FOR_PHASE, FOR_DELETE, FOR_JSONPATH } ForKind;

typedef struct {
	ForKind kind;
	char *what;     /* condition type, phase name or JSONPath template */
	char *value;    /* condition status or JSONPath value */
	JsonPath *path; /* FOR_JSONPATH */
	VmPhase phase;  /* FOR_PHASE */
} ForSpec;

static void wait_usage(FILE *f)
{
	fprintf(f,
		"Usage: banger wait NAME... | -l SELECTOR --for=CONDITION [--timeout D]\n"
		"\n"
		"Wait until each VM meets CONDITION, watching the status dir with inotify:\n"
		"  --for=condition=TYPE[=STATUS]  a status condition (STATUS True by default),\n"
		"                                 e.g. --for=condition=Ready\n"
		"  --for=phase=PHASE              Pending, Starting, Running, Stopping, Stopped,\n"
		"                                 Suspended, Failed or Invalid\n"
		"  --for=delete                   the status file is gone (met at once when\n"
		"                                 there is none)\n"
		"  --for=jsonpath=TEMPLATE=VALUE  a value of the status document, e.g.\n"
		"                                 --for=jsonpath='{.runtime.restartCount}'=0\n"
		"  -l, --selector SELECTOR        the VMs whose spec labels match (key=value,\n"
		"                                 key!=value, key, !key; comma = and)\n"
		"  --timeout D                    30s by default; 500ms, 10s, 2m, 1h or seconds\n"
		"Prints vm/NAME condition met (or deleted) for each VM as it is met.\n"
		"Exit status: 0 all met, 1 timed out or a VM not found, 2 usage.\n");
}

static void for_spec_clear(ForSpec *f)
{
	free(f->what);
	free(f->value);
	jsonpath_free(f->path);
}

static int parse_for_jsonpath(const char *arg, ForSpec *f)
{
	/* TEMPLATE=VALUE: the '=' after the last '}' */
	const char *close = strrchr(arg, '}'), *eq = close ? strchr(close, '=') : NULL;
	if (!eq) {
		cli_error("--for=jsonpath: expected jsonpath='{.path}'=VALUE");
		return -EINVAL;
	}
	f->what = xstrndup(arg, (size_t)(eq - arg));
	f->value = xstrdup(eq + 1);
	return cli_compile_jsonpath("--for", f->what, &f->path);
}

/* TYPE[=STATUS] */
static int parse_for_condition(const char *arg, ForSpec *f)
{
	const char *eq = strchr(arg, '=');
	f->what = eq ? xstrndup(arg, (size_t)(eq - arg)) : xstrdup(arg);
	f->value = xstrdup(eq ? eq + 1 : "True");
	if (!streq(f->value, "True") && !streq(f->value, "False") && !streq(f->value, "Unknown")) {
		cli_error("--for=condition: status must be True, False or Unknown, got '%s'",
			  f->value);
		return -EINVAL;
	}
	return 0;
}

static int parse_for_phase(const char *arg, ForSpec *f)
{
	int p = vm_phase_from_string(arg);
	if (p < 0) {
		cli_error("--for=phase: '%s' is not a phase (Pending, Starting, Running, "
			  "Stopping, Stopped, Suspended, Failed, Invalid)",
			  arg);
		return -EINVAL;
	}
	f->phase = (VmPhase)p;
	return 0;
}

/* What --for takes, in ForKind order. */
const CliForm cli_for_forms[] = {
	[FOR_CONDITION] = { "condition=", "condition=TYPE[=STATUS]", "condition=Ready" },
	[FOR_PHASE] = { "phase=", "phase=PHASE", NULL },
	[FOR_DELETE] = { "delete", NULL, NULL },
	[FOR_JSONPATH] = { "jsonpath=", "jsonpath=TEMPLATE=VALUE", NULL },
};
const size_t cli_n_for_forms = ELEMENTSOF(cli_for_forms);

static int parse_for(const char *arg, ForSpec *f)
{
	const char *value;
	int k = cli_parse_form("--for", cli_for_forms, cli_n_for_forms, arg, &value);
	if (k < 0)
		return k;
	f->kind = (ForKind)k;
	switch (f->kind) {
	case FOR_CONDITION: return parse_for_condition(value, f);
	case FOR_PHASE: return parse_for_phase(value, f);
	case FOR_JSONPATH: return parse_for_jsonpath(value, f);
	default: return 0;
	}
}

static bool jsonpath_met(const ForSpec *f, const VmStatus *st)
{
	_cleanup_free_ char *j = vm_status_to_json(st);
	json_object *doc = json_tokener_parse(j);
	_cleanup_free_ char *got = doc ? jsonpath_render(f->path, doc) : NULL;
	json_object_put(doc);
	return got && streq(got, f->value);
}

static bool for_met(const char *name, const VmStatus *st, void *ud)
{
	const ForSpec *f = ud;
	if (f->kind == FOR_DELETE)
		return st == NULL;
	if (!st)
		return false;
	switch (f->kind) {
	case FOR_CONDITION: {
		const Condition *c = vm_status_get_condition(st, f->what);
		return c && streq(cond_status_to_string(c->status), f->value);
	}
	case FOR_PHASE: return st->phase == f->phase;
	default: return jsonpath_met(f, st);
	}
}

static void for_report(const char *name, const VmStatus *st, void *ud)
{
	const ForSpec *f = ud;
	printf("vm/%s %s\n", name, f->kind == FOR_DELETE ? "deleted" : "condition met");
	fflush(stdout);
}

typedef struct {
	ForSpec f;
	bool have_for;
	uint64_t timeout_ms;
	char *selector;
	char **names;
} WaitArgs;

/* 0 to go on, 1 after --help, -EINVAL after a usage message. */
static int parse_wait_args(int argc, char **argv, WaitArgs *a)
{
	static const struct option opts[] = { { "for", required_argument, NULL, 'F' },
					      { "timeout", required_argument, NULL, 'T' },
					      { "selector", required_argument, NULL, 'l' },
					      { "help", no_argument, NULL, 'h' },
					      {} };
	int c;
	a->timeout_ms = 30000;
	while ((c = getopt_long(argc, argv, "l:h", opts, NULL)) != -1) {
		switch (c) {
		case 'F':
			if (a->have_for) {
				cli_error("--for: give it once");
				return -EINVAL;
			}
			a->have_for = true;
			if (parse_for(optarg, &a->f) < 0)
				return -EINVAL;
			break;
		case 'T':
			if (cli_parse_duration_ms(optarg, &a->timeout_ms) < 0) {
				cli_error("--timeout: expected a duration such as 30s, 2m or 500ms "
					  "(at most 24h), got '%s'",
					  optarg);
				return -EINVAL;
			}
			break;
		case 'l':
			free(a->selector);
			a->selector = xstrdup(optarg);
			break;
		case 'h': wait_usage(stdout); return 1;
		default: wait_usage(stderr); return -EINVAL;
		}
	}
	for (int i = optind; i < argc; i++)
		strv_push(&a->names, xstrdup(argv[i]));
	if (!a->have_for || (!a->names && !a->selector) || (a->names && a->selector)) {
		cli_error("%s", !a->have_for  ? "--for is required"
				: a->selector ? "give VM names or -l SELECTOR, not both"
					      : "give VM names or -l SELECTOR");
		wait_usage(stderr);
		return -EINVAL;
	}
	return 0;
}

int cli_wait(const CliDirs *dirs, int argc, char **argv)
{
	WaitArgs a = { 0 };
	_cleanup_free_ bool *done = NULL;
	int r = parse_wait_args(argc, argv, &a), rc;
	if (r != 0) {
		rc = r > 0 ? 0 : 2;
		goto out;
	}
	if (a.selector)
		r = cli_select_names(dirs, a.selector, &a.names);
	else
		r = cli_resolve_names(dirs, a.names, a.f.kind != FOR_DELETE);
	if (r < 0) {
		rc = r == -EDOM ? 2 : 1;
		goto out;
	}
	done = xcalloc(strv_length(a.names) + 1, sizeof(bool));
	WaitFor w = { for_met, for_report, &a.f };
	r = wait_for(dirs, a.names, done, &w, a.timeout_ms);
	if (r == -ETIMEDOUT)
		say_timeout(dirs, a.names, done, a.timeout_ms);
	rc = r < 0 ? 1 : 0;
out:
	for_spec_clear(&a.f);
	free(a.selector);
	strv_free(a.names);
	return rc;
}
