/* apply.c — `banger apply` and `banger delete`: the spec dir is the API.
 *
 * apply validates every input first and writes nothing unless all of it is
 * valid; then each VM becomes <spec-dir>/<name>.yaml, written atomically so
 * bangerd never reads half a file. A VM already defined by another file is
 * refused: two files must never fight over one name. */
#include "cli/cli.h"
#include "cli/common.h"
#include "spec/spec.h"
#include "spec/specdir.h"
#include "status/status.h"
#include "util/escape.h"
#include "util/fileio.h"
#include "util/hashmap.h"
#include "util/log.h"
#include "util/timeutil.h"

#include <getopt.h>
#include <stdio.h>
#include <sys/stat.h>

/* ---- YAML rendering of a validated spec --------------------------------- */

static void put_str(FILE *f, const char *indent, const char *key, const char *v)
{
	if (!v)
		return;
	fprintf(f, "%s%s: \"", indent, key);
	escape_fputs(f, v, ESCAPE_QUOTED);
	fputs("\"\n", f);
}

char *cli_spec_to_yaml(const VmSpec *s)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	if (!f)
		abort();
	/* Only for inputs with several VMs: a single-VM YAML input is written as
	 * the user wrote it, comments and all (see write_one). */
	fprintf(f, "# Written by `banger apply`, normalised: the input held several VMs or was\n"
		   "# JSON, so comments of the input are not kept. Edit freely; bangerd watches\n"
		   "# this file.\n");
	fprintf(f, "apiVersion: %s\nkind: %s\nmetadata:\n", SPEC_API_VERSION, SPEC_KIND);
	put_str(f, "  ", "name", s->name);
	if (s->n_labels) {
		fprintf(f, "  labels:\n");
		for (size_t i = 0; i < s->n_labels; i++) {
			_cleanup_free_ char *k = xasprintf("\"%s\"", s->labels[i].key);
			put_str(f, "    ", k, s->labels[i].value);
		}
	}
	fprintf(f, "spec:\n  state: %s\n", vm_desired_state_to_string(s->state));
	put_str(f, "  ", "node", s->node);
	if (s->vmm != VMM_KIND_DEFAULT)
		fprintf(f, "  vmm: %s\n", vmm_kind_to_string(s->vmm));
	fprintf(f, "  vcpus: %u\n  memoryMiB: %u\n  kernel:\n", s->vcpus, s->memory_mib);
	put_str(f, "    ", "path", s->kernel_path);
	put_str(f, "    ", "args", s->kernel_args);
	put_str(f, "    ", "initrd", s->initrd_path);
	fprintf(f, "  rootfs:\n");
	put_str(f, "    ", "path", s->rootfs_path);
	if (s->work_disk_mib)
		fprintf(f, "  workDisk:\n    sizeMiB: %llu\n",
			(unsigned long long)s->work_disk_mib);
	fprintf(f, "  network:\n    enabled: %s\n", s->network_enabled ? "true" : "false");
	put_str(f, "    ", "guestIP", s->guest_ip);
	put_str(f, "    ", "mac", s->mac);
	fprintf(f, "  readiness:\n");
	if (s->readiness_tcp_port)
		fprintf(f, "    tcpPort: %u\n", s->readiness_tcp_port);
	fprintf(f, "    timeoutSeconds: %u\n", s->readiness_timeout_s);
	fprintf(f, "  restartPolicy: %s\n", restart_policy_to_string(s->restart_policy));
	fclose(f);
	return out;
}

/* ---- inputs ------------------------------------------------------------- */

void spec_inputs_clear(SpecInputs *in)
{
	for (size_t i = 0; i < in->n; i++) {
		vm_spec_free(in->specs[i]);
		free(in->raw[i]);
	}
	free(in->specs);
	free(in->raw);
	*in = (SpecInputs){ 0 };
}

/* The user's bytes are kept for a YAML input with exactly one VM: JSON input
 * is normalised, as <name>.yaml must be YAML. */
static bool keep_raw(const char *path, const char *data, const SpecFile *sf)
{
	if (!data || sf->n_docs != 1 || endswith(path, ".json"))
		return false;
	const char *p = data + strspn(data, " \t\r\n");
	return *p != '{';
}

static void add_spec(SpecInputs *in, VmSpec *s, char *raw)
{
	in->specs = xrealloc(in->specs, (in->n + 1) * sizeof(VmSpec *));
	in->raw = xrealloc(in->raw, (in->n + 1) * sizeof(char *));
	in->specs[in->n] = s;
	in->raw[in->n++] = raw;
}

int cli_read_specs(char *const *paths, SpecInputs *ret)
{
	SpecInputs in = { 0 };
	bool bad = false;
	_cleanup_(hashmap_freep) Hashmap *seen = hashmap_new(); /* name → file */
	_cleanup_strv_free_ char **files = NULL;

	for (size_t i = 0; paths && paths[i]; i++)
		if (cli_expand_input(paths[i], &files) < 0)
			bad = true;
	for (size_t i = 0; files && files[i]; i++) {
		_cleanup_(spec_file_freep) SpecFile *sf = NULL;
		_cleanup_free_ char *data = NULL;
		if (cli_parse_input(files[i], &sf, &data) < 0 || sf->diags.n > 0) {
			bad = true;
			continue;
		}
		bool raw = keep_raw(files[i], data, sf);
		for (size_t k = 0; k < sf->n_docs; k++) {
			VmSpec *s = sf->docs[k].spec;
			const char *first = hashmap_get(seen, s->name);
			if (first) {
				_cleanup_free_ char *a = escape_str(files[i], ESCAPE_DISPLAY),
						    *b = escape_str(first, ESCAPE_DISPLAY);
				fprintf(stderr,
					"%s:%u:1: metadata.name: %s is also defined in %s\n", a,
					sf->docs[k].line, s->name, b);
				bad = true;
				continue;
			}
			hashmap_put(seen, s->name, files[i]);
			add_spec(&in, TAKE_PTR(sf->docs[k].spec), raw ? TAKE_PTR(data) : NULL);
		}
	}
	if (bad || in.n == 0) {
		if (!bad)
			cli_error("no VM specs found in the input");
		spec_inputs_clear(&in);
		return -EINVAL;
	}
	*ret = in;
	return 0;
}

/* ---- apply -------------------------------------------------------------- */

static void apply_usage(FILE *f)
{
	fprintf(f,
		"Usage: banger apply -f FILE|DIR|- [-f ...] [--dry-run] [--wait [--timeout D]]\n"
		"\n"
		"Validate the specs (all of them, reporting every problem), then write each VM\n"
		"atomically as <spec-dir>/<name>.yaml. A YAML input holding one VM is written\n"
		"as it is, comments and all; an input with several VMs is split and written\n"
		"normalised. A VM defined by another file in the spec dir is refused. Prints\n"
		"vm/NAME created|configured|unchanged (by meaning: a comment-only change is\n"
		"unchanged). --dry-run checks and prints the same with (dry run), writing\n"
		"nothing. --wait waits (inotify on the status dir) until bangerd reports each\n"
		"VM settled on this spec (Running and Ready, Stopped, Suspended, Failed or Invalid);\n"
		"--timeout bounds the wait (default 300s; 30s, 5m or seconds).\n"
		"Exit status: 0 applied, 1 invalid input/refused/failed/timed out, 2 usage.\n");
}

typedef struct {
	bool dry_run, wait;
	uint64_t timeout_ms;
	char **inputs;
} ApplyArgs;

static int parse_apply_args(int argc, char **argv, ApplyArgs *a)
{
	static const struct option opts[] = { { "filename", required_argument, NULL, 'f' },
					      { "dry-run", no_argument, NULL, 'n' },
					      { "wait", no_argument, NULL, 'w' },
					      { "timeout", required_argument, NULL, 'T' },
					      { "help", no_argument, NULL, 'h' },
					      {} };
	int c;
	a->timeout_ms = 300000;
	while ((c = getopt_long(argc, argv, "f:h", opts, NULL)) != -1) {
		switch (c) {
		case 'f': strv_push(&a->inputs, xstrdup(optarg)); break;
		case 'n': a->dry_run = true; break;
		case 'w': a->wait = true; break;
		case 'T':
			if (cli_parse_duration_ms(optarg, &a->timeout_ms) < 0 || !a->timeout_ms) {
				cli_error("--timeout: expected a duration such as 300, 30s, 5m (at "
					  "most 24h), got '%s'",
					  optarg);
				return -EINVAL;
			}
			break;
		case 'h': apply_usage(stdout); return 1;
		default: apply_usage(stderr); return -EINVAL;
		}
	}
	if (optind < argc || !a->inputs) {
		cli_error("give the input with -f FILE|DIR|-");
		apply_usage(stderr);
		return -EINVAL;
	}
	return 0;
}

/* Refuse to take a name another file owns, or to clobber a file that holds
 * other VMs. */
static int check_owner(const CliDirs *dirs, SpecDirIndex *idx, const VmSpec *s,
		       const char *target_rel)
{
	char *const *definers = spec_dir_index_definers(idx, s->name);
	for (size_t i = 0; definers && definers[i]; i++) {
		if (streq(definers[i], target_rel))
			continue;
		cli_error("%s is defined in %s/%s; edit or delete that file instead (refusing to "
			  "define it twice)",
			  s->name, dirs->spec_dir, definers[i]);
		return -EEXIST;
	}
	char *const *others = spec_dir_index_names(idx, target_rel);
	for (size_t i = 0; others && others[i]; i++) {
		if (streq(others[i], s->name))
			continue;
		cli_error("%s/%s also defines %s; refusing to overwrite it", dirs->spec_dir,
			  target_rel, others[i]);
		return -EEXIST;
	}
	return 0;
}

/* created, configured or unchanged: by meaning (the spec hash), not bytes,
 * so a comment-only edit reports unchanged, as kubectl does. */
static const char *apply_verb(SpecDirIndex *idx, const VmSpec *s, const char *rel)
{
	char *const *definers = spec_dir_index_definers(idx, s->name);
	if (!strv_contains(definers, rel))
		return "created";
	const VmSpec *cur = spec_dir_index_spec(idx, s->name);
	char a[65], b[65];
	if (!cur)
		return "configured"; /* the file there is invalid */
	vm_spec_hash(cur, a);
	vm_spec_hash(s, b);
	return streq(a, b) ? "unchanged" : "configured";
}

/* Write one VM: the user's own bytes when there are any, else normalised. */
static int write_one(const CliDirs *dirs, const VmSpec *s, const char *raw, const char *verb)
{
	_cleanup_free_ char *path = xasprintf("%s/%s.yaml", dirs->spec_dir, s->name);
	_cleanup_free_ char *yaml = raw ? NULL : cli_spec_to_yaml(s);
	const char *bytes = raw ? raw : yaml;
	int r = write_file_atomic_if_changed(path, bytes, strlen(bytes), 0644);
	if (r < 0) {
		cli_error("write %s: %s", path, strerror(-r));
		return r;
	}
	printf("vm/%s %s\n", s->name, verb);
	return 0;
}

int cli_apply(const CliDirs *dirs, int argc, char **argv)
{
	ApplyArgs a = { 0 };
	SpecInputs in = { 0 };
	int r = parse_apply_args(argc, argv, &a), rc = 0;

	if (r != 0) {
		strv_free(a.inputs);
		return r > 0 ? 0 : 2;
	}
	if (cli_read_specs(a.inputs, &in) < 0) {
		strv_free(a.inputs);
		return 1;
	}
	_cleanup_(spec_dir_index_freep) SpecDirIndex *idx = NULL;
	if ((r = spec_dir_index_build(dirs->spec_dir, &idx)) < 0) {
		cli_error("spec dir %s: %s", dirs->spec_dir, strerror(-r));
		rc = 1;
		goto out;
	}
	/* Every check first: nothing is written unless everything can be. */
	for (size_t i = 0; i < in.n; i++) {
		_cleanup_free_ char *rel = xasprintf("%s.yaml", in.specs[i]->name);
		if (check_owner(dirs, idx, in.specs[i], rel) < 0)
			rc = 1;
	}
	if (rc)
		goto out;
	for (size_t i = 0; i < in.n; i++) {
		_cleanup_free_ char *rel = xasprintf("%s.yaml", in.specs[i]->name);
		const char *verb = apply_verb(idx, in.specs[i], rel);
		if (a.dry_run)
			printf("vm/%s %s (dry run)\n", in.specs[i]->name, verb);
		else if (write_one(dirs, in.specs[i], in.raw[i], verb) < 0)
			rc = 1;
	}
	fflush(stdout);
	if (!rc && a.wait && !a.dry_run)
		rc = cli_wait_settled(dirs, in.specs, in.n, a.timeout_ms) < 0 ? 1 : 0;
out:
	spec_inputs_clear(&in);
	strv_free(a.inputs);
	return rc;
}

/* ---- delete ------------------------------------------------------------- */

static void delete_usage(FILE *f)
{
	fprintf(f,
		"Usage: banger delete NAME... | -f FILE|DIR|- | -l SELECTOR [--wait [--timeout D]]\n"
		"\n"
		"Remove the spec file that defines each VM; bangerd then stops it and removes\n"
		"everything it made (disks, tap, status). A file that also defines other VMs\n"
		"is refused (edit it instead). -l deletes the VMs whose spec labels match\n"
		"(key=value, key!=value, key, !key; comma = and). --wait waits until each\n"
		"status file is gone (inotify on the status dir); --timeout bounds the wait\n"
		"(default 300s; 30s, 5m or seconds).\n"
		"Exit status: 0 deleted, 1 not found/refused/timed out, 2 usage.\n");
}

static int delete_one(const CliDirs *dirs, SpecDirIndex *idx, const char *name)
{
	char *const *definers = spec_dir_index_definers(idx, name);
	if (!definers || !definers[0]) {
		cli_error("no spec file in %s defines %s", dirs->spec_dir, name);
		return -ENOENT;
	}
	for (size_t i = 0; definers[i]; i++) {
		char *const *names = spec_dir_index_names(idx, definers[i]);
		if (strv_length(names) > 1) {
			_cleanup_free_ char *file = escape_str(definers[i], ESCAPE_DISPLAY);
			cli_error("%s/%s defines %s together with other VMs; edit that file to "
				  "remove it",
				  dirs->spec_dir, file, name);
			return -EBUSY;
		}
	}
	for (size_t i = 0; definers[i]; i++) {
		_cleanup_free_ char *p = path_join(dirs->spec_dir, definers[i]);
		int r = unlink_durable(p);
		if (r < 0) {
			cli_error("remove %s: %s", p, strerror(-r));
			return r;
		}
	}
	printf("vm/%s deleted\n", name);
	return 0;
}

typedef struct {
	char **names, **inputs;
	char *selector;
	bool wait;
	uint64_t timeout_ms;
} DeleteArgs;

static void delete_args_clear(DeleteArgs *a)
{
	strv_free(a->names);
	strv_free(a->inputs);
	free(a->selector);
}

/* 0 to go on, 1 after --help, -EINVAL after a usage message. */
static int parse_delete_args(int argc, char **argv, DeleteArgs *a)
{
	static const struct option opts[] = { { "filename", required_argument, NULL, 'f' },
					      { "selector", required_argument, NULL, 'l' },
					      { "wait", no_argument, NULL, 'w' },
					      { "timeout", required_argument, NULL, 'T' },
					      { "help", no_argument, NULL, 'h' },
					      {} };
	int c;
	a->timeout_ms = 300000;
	while ((c = getopt_long(argc, argv, "f:l:h", opts, NULL)) != -1) {
		switch (c) {
		case 'f': strv_push(&a->inputs, xstrdup(optarg)); break;
		case 'l':
			free(a->selector);
			a->selector = xstrdup(optarg);
			break;
		case 'w': a->wait = true; break;
		case 'T':
			if (cli_parse_duration_ms(optarg, &a->timeout_ms) < 0 || !a->timeout_ms) {
				cli_error("--timeout: expected a duration such as 300, 30s, 5m (at "
					  "most 24h), got '%s'",
					  optarg);
				return -EINVAL;
			}
			break;
		case 'h': delete_usage(stdout); return 1;
		default: delete_usage(stderr); return -EINVAL;
		}
	}
	for (int i = optind; i < argc; i++)
		strv_push(&a->names, xstrdup(argv[i]));
	if (!a->names && !a->inputs && !a->selector) {
		cli_error("give VM names, -f FILE or -l SELECTOR");
		delete_usage(stderr);
		return -EINVAL;
	}
	return 0;
}

/* Names from -f inputs and -l, added to a->names. */
static int collect_names(const CliDirs *dirs, DeleteArgs *a)
{
	if (a->inputs) {
		SpecInputs in = { 0 };
		if (cli_read_specs(a->inputs, &in) < 0)
			return -EINVAL;
		for (size_t i = 0; i < in.n; i++)
			strv_push(&a->names, xstrdup(in.specs[i]->name));
		spec_inputs_clear(&in);
	}
	if (a->selector) {
		_cleanup_strv_free_ char **sel = NULL;
		int r = cli_select_names(dirs, a->selector, &sel);
		if (r < 0)
			return r;
		for (size_t i = 0; sel[i]; i++)
			if (!strv_contains(a->names, sel[i]))
				strv_push(&a->names, xstrdup(sel[i]));
	}
	return 0;
}

int cli_delete(const CliDirs *dirs, int argc, char **argv)
{
	DeleteArgs a = { 0 };
	int r = parse_delete_args(argc, argv, &a), rc = 0;
	if (r != 0) {
		delete_args_clear(&a);
		return r > 0 ? 0 : 2;
	}
	if ((r = collect_names(dirs, &a)) < 0) {
		delete_args_clear(&a);
		return r == -EDOM ? 2 : 1;
	}
	_cleanup_(spec_dir_index_freep) SpecDirIndex *idx = NULL;
	r = spec_dir_index_build(dirs->spec_dir, &idx);
	if (r < 0) {
		cli_error("spec dir %s: %s", dirs->spec_dir, strerror(-r));
		delete_args_clear(&a);
		return 1;
	}
	for (size_t i = 0; a.names[i]; i++)
		if (!cli_check_name(a.names[i]) || delete_one(dirs, idx, a.names[i]) < 0)
			rc = 1;
	fflush(stdout);
	if (!rc && a.wait)
		rc = cli_wait_gone(dirs, a.names, a.timeout_ms) < 0 ? 1 : 0;
	delete_args_clear(&a);
	return rc;
}
