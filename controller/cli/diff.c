/* diff.c — `banger diff -f FILE|DIR|-`: what `banger apply` with the same
 * input would change, field by field, and whether it restarts the VM.
 *
 * It compares with the intent bangerd holds (banger.db, read-only) when a
 * bangerd holds the state dir's lock, else with the spec files in the spec
 * dir, which is what bangerd would read when it starts. Exit codes follow
 * kubectl diff: 0 nothing differs, 1 something does, 2 an error. */
#include "cli/cli.h"
#include "cli/common.h"
#include "cli/staleness.h"
#include "store/store.h"
#include "util/layout.h"

#include <getopt.h>
#include <json.h>
#include <stdio.h>

static void diff_usage(FILE *f)
{
	fprintf(f, "Usage: banger diff -f FILE|DIR|- [-f ...]\n"
		   "\n"
		   "Show what `banger apply` with this input would change, field by field, per\n"
		   "VM, and whether it would restart, start or stop the VM. The input is\n"
		   "validated as apply does. It is compared with the intent the running bangerd\n"
		   "holds (<state-dir>/banger.db, read-only), or with the spec files in the spec\n"
		   "dir when no bangerd holds the state dir's lock.\n"
		   "Exit status: 0 no differences, 1 differences, 2 invalid input or error.\n");
}

/* Leaves of a JSON object as "a.b.c" → compact JSON value, into m. */
static void flatten(json_object *o, const char *prefix, Hashmap *m)
{
	json_object_object_foreach (o, k, v) {
		_cleanup_free_ char *path = prefix ? xasprintf("%s.%s", prefix, k) : xstrdup(k);
		if (json_object_is_type(v, json_type_object) && json_object_object_length(v) > 0)
			flatten(v, path, m);
		else
			free(hashmap_put(m, path,
					 xstrdup(json_object_to_json_string_ext(
						 v, JSON_C_TO_STRING_PLAIN |
							    JSON_C_TO_STRING_NOSLASHESCAPE))));
	}
}

static Hashmap *fields_of(const VmSpec *s)
{
	Hashmap *m = hashmap_new();
	if (!s)
		return m;
	_cleanup_free_ char *j = vm_spec_to_canonical_json(s);
	json_object *o = json_tokener_parse(j);
	if (o)
		flatten(o, NULL, m);
	json_object_put(o);
	return m;
}

static void fields_free(Hashmap *m)
{
	size_t st = 0;
	void *v;
	while (hashmap_iter(m, &st, NULL, &v))
		free(v);
	hashmap_free(m);
}

static void add_keys(char ***all, Hashmap *m)
{
	_cleanup_strv_free_ char **k = hashmap_keys_sorted(m);
	for (size_t i = 0; k[i]; i++)
		if (!strv_contains(*all, k[i]))
			strv_push(all, xstrdup(k[i]));
}

/* Print the changed fields; returns how many. */
static size_t print_fields(const VmSpec *cur, const VmSpec *next)
{
	Hashmap *a = fields_of(cur), *b = fields_of(next);
	_cleanup_strv_free_ char **keys = NULL;
	size_t n = 0;
	add_keys(&keys, a);
	add_keys(&keys, b);
	if (keys)
		strv_sort(keys);
	for (size_t i = 0; keys && keys[i]; i++) {
		const char *x = hashmap_get(a, keys[i]), *y = hashmap_get(b, keys[i]);
		if (streq_ptr(x, y))
			continue;
		printf("  %s: %s \xe2\x86\x92 %s\n", keys[i], x ? x : "(unset)", y ? y : "(unset)");
		n++;
	}
	fields_free(a);
	fields_free(b);
	return n;
}

/* What applying does to the VM itself. */
static void print_effect(const VmSpec *cur, const VmSpec *next)
{
	_cleanup_free_ char *why = NULL;
	if (!cur) {
		printf("  => creates the VM%s\n",
		       next->state == VM_STATE_RUNNING ? " and starts it" : "");
		return;
	}
	bool was = cur->state == VM_STATE_RUNNING, will = next->state == VM_STATE_RUNNING;
	if (next->state == VM_STATE_SUSPENDED && cur->state != VM_STATE_SUSPENDED)
		printf("  => suspends the VM (saves its memory, ends its VMM)\n");
	else if (cur->state == VM_STATE_SUSPENDED && will)
		printf("  => resumes the VM%s\n",
		       vm_spec_boot_equal(cur, next, &why)
			       ? " from its saved state"
			       : " with a cold boot (boot-relevant change)");
	else if (was && !will)
		printf("  => stops the VM\n");
	else if (!was && will)
		printf("  => starts the VM\n");
	else if (!vm_spec_boot_equal(cur, next, &why))
		printf("  => restarts the VM%s (%s)\n", was ? "" : " at its next start", why);
	else
		printf("  => no restart (labels, node, readiness or restartPolicy only)\n");
}

typedef struct {
	Store *store;      /* non-NULL: compare with bangerd's intent */
	SpecDirIndex *idx; /* else with the spec files */
	const CliDirs *dirs;
} Against;

/* The current intent for name (NULL: not defined); *ret_where says whence. */
static int current_of(Against *ag, const char *name, VmSpec **ret, char **ret_where)
{
	*ret = NULL;
	if (ag->store) {
		_cleanup_(vm_record_freep) VmRecord *rec = NULL;
		int r = store_get_vm(ag->store, name, &rec);
		if (r == -ENOENT || (r >= 0 && rec->deleted)) {
			*ret_where = xstrdup("not in bangerd's intent");
			return 0;
		}
		if (r < 0 || (r = vm_spec_from_json(rec->spec_json, ret)) < 0)
			return r;
		*ret_where = xasprintf("against bangerd's intent, generation %lld",
				       (long long)rec->generation);
		return 0;
	}
	const VmSpec *s = spec_dir_index_spec(ag->idx, name);
	char *const *definers = spec_dir_index_definers(ag->idx, name);
	if (!s) {
		*ret_where =
			xstrdup(definers ? "its spec file is invalid" : "no spec file defines it");
		return 0;
	}
	*ret = vm_spec_dup(s);
	*ret_where = xasprintf("against %s/%s", ag->dirs->spec_dir, definers ? definers[0] : "?");
	return 0;
}

/* Open what to compare with; -errno after a message. */
static int open_against(const CliDirs *dirs, Against *ag)
{
	DaemonProbe pr;
	ag->dirs = dirs;
	cli_probe_daemon(dirs->state_dir, &pr);
	if (pr.state == DAEMON_RUNNING) {
		_cleanup_free_ char *db = layout_db_path(dirs->state_dir);
		int r = store_open_readonly(db, &ag->store);
		if (r >= 0)
			return 0;
		cli_warn("bangerd runs but %s cannot be read (%s): comparing with the spec files",
			 db, strerror(-r));
	} else if (pr.state == DAEMON_UNKNOWN)
		cli_warn("cannot tell whether bangerd runs (%s is not readable): comparing with "
			 "the spec files",
			 dirs->state_dir);
	int r = spec_dir_index_build(dirs->spec_dir, &ag->idx);
	if (r < 0)
		cli_error("spec dir %s: %s", dirs->spec_dir, strerror(-r));
	return r;
}

int cli_diff(const CliDirs *dirs, int argc, char **argv)
{
	static const struct option opts[] = { { "filename", required_argument, NULL, 'f' },
					      { "help", no_argument, NULL, 'h' },
					      {} };
	_cleanup_strv_free_ char **inputs = NULL;
	SpecInputs in = { 0 };
	Against ag = { 0 };
	int c, rc = 0;
	while ((c = getopt_long(argc, argv, "f:h", opts, NULL)) != -1) {
		switch (c) {
		case 'f': strv_push(&inputs, xstrdup(optarg)); break;
		case 'h': diff_usage(stdout); return 0;
		default: diff_usage(stderr); return 2;
		}
	}
	if (optind < argc || !inputs) {
		cli_error("give the input with -f FILE|DIR|-");
		diff_usage(stderr);
		return 2;
	}
	if (cli_read_specs(inputs, &in) < 0)
		return 2;
	if (open_against(dirs, &ag) < 0) {
		spec_inputs_clear(&in);
		return 2;
	}
	for (size_t i = 0; i < in.n && rc < 2; i++) {
		_cleanup_(vm_spec_freep) VmSpec *cur = NULL;
		_cleanup_free_ char *where = NULL;
		const char *name = in.specs[i]->name;
		int r = current_of(&ag, name, &cur, &where);
		if (r < 0) {
			cli_error("vm/%s: read the current intent: %s", name, strerror(-r));
			rc = 2;
			break;
		}
		char a[65], b[65];
		if (cur) {
			vm_spec_hash(cur, a);
			vm_spec_hash(in.specs[i], b);
			if (streq(a, b))
				continue;
		}
		printf("vm/%s (%s):\n", name, where);
		print_fields(cur, in.specs[i]);
		print_effect(cur, in.specs[i]);
		rc = 1;
	}
	store_close(ag.store);
	spec_dir_index_free(ag.idx);
	spec_inputs_clear(&in);
	return rc;
}
