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
#include "util/fileio.h"
#include "util/escape.h"
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
	fprintf(f, "# Written by `banger apply`. Edit freely; bangerd watches this file.\n");
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
		fprintf(f, "  workDisk:\n    sizeMiB: %llu\n", (unsigned long long)s->work_disk_mib);
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

/* Parse every input (file, directory, "-"), print all diagnostics. Returns
 * the valid specs (strong refs) only when everything was valid. */
static int read_inputs(char **paths, size_t n, VmSpec ***ret, size_t *ret_n)
{
	VmSpec **specs = NULL;
	size_t ns = 0;
	bool bad = false;
	_cleanup_(hashmap_freep) Hashmap *seen = hashmap_new(); /* name → file */
	_cleanup_strv_free_ char **files = NULL;

	for (size_t i = 0; i < n; i++) {
		if (cli_expand_input(paths[i], &files) < 0)
			bad = true;
	}
	for (size_t i = 0; files && files[i]; i++) {
		_cleanup_(spec_file_freep) SpecFile *sf = NULL;
		if (cli_parse_input(files[i], &sf) < 0 || sf->diags.n > 0) {
			bad = true;
			continue;
		}
		for (size_t k = 0; k < sf->n_docs; k++) {
			VmSpec *s = sf->docs[k].spec;
			const char *first = hashmap_get(seen, s->name);
			if (first) {
				_cleanup_free_ char *a = escape_str(files[i], ESCAPE_DISPLAY),
						    *b = escape_str(first, ESCAPE_DISPLAY);
				fprintf(stderr, "%s:%u:1: metadata.name: %s is also defined in %s\n",
					a, sf->docs[k].line, s->name, b);
				bad = true;
				continue;
			}
			hashmap_put(seen, s->name, files[i]);
			specs = xrealloc(specs, (ns + 1) * sizeof(VmSpec *));
			specs[ns++] = TAKE_PTR(sf->docs[k].spec);
		}
	}
	if (bad || ns == 0) {
		if (!bad)
			fprintf(stderr, "banger apply: no VM specs found in the input\n");
		for (size_t i = 0; i < ns; i++)
			vm_spec_free(specs[i]);
		free(specs);
		return -EINVAL;
	}
	*ret = specs;
	*ret_n = ns;
	return 0;
}

/* ---- apply -------------------------------------------------------------- */

static void apply_usage(FILE *f)
{
	fprintf(f, "Usage: banger apply -f FILE|DIR|- [-f ...] [--dry-run] [--wait [--timeout S]]\n"
		   "\n"
		   "Validate the specs (all of them, reporting every problem), then write each VM\n"
		   "atomically as <spec-dir>/<name>.yaml. A VM defined by another file in the spec\n"
		   "dir is refused. --dry-run checks and reports without writing. --wait waits\n"
		   "until bangerd reports each VM settled on this spec (Running and Ready, Stopped,\n"
		   "Failed or Invalid); --timeout bounds the wait (default 300 s).\n"
		   "Exit status: 0 applied, 1 invalid input/refused/failed/timed out, 2 usage.\n");
}

typedef struct {
	bool dry_run, wait;
	unsigned timeout_s;
	char **inputs;
} ApplyArgs;

static int parse_apply_args(int argc, char **argv, ApplyArgs *a)
{
	static const struct option opts[] = {
		{ "filename", required_argument, NULL, 'f' }, { "dry-run", no_argument, NULL, 'n' },
		{ "wait", no_argument, NULL, 'w' },	      { "timeout", required_argument, NULL, 'T' },
		{ "help", no_argument, NULL, 'h' },	      {}
	};
	int c;
	uint64_t t;
	a->timeout_s = 300;
	while ((c = getopt_long(argc, argv, "f:h", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			strv_push(&a->inputs, xstrdup(optarg));
			break;
		case 'n':
			a->dry_run = true;
			break;
		case 'w':
			a->wait = true;
			break;
		case 'T':
			if (parse_u64(optarg, 1, 86400, &t) < 0) {
				fprintf(stderr, "banger apply: --timeout: expected 1..86400 seconds\n");
				return -EINVAL;
			}
			a->timeout_s = (unsigned)t;
			break;
		case 'h':
			apply_usage(stdout);
			return 1;
		default:
			apply_usage(stderr);
			return -EINVAL;
		}
	}
	if (optind < argc || !a->inputs) {
		fprintf(stderr, "banger apply: give the input with -f FILE|DIR|-\n");
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
		fprintf(stderr,
			"banger apply: %s is defined in %s/%s; edit or delete that file instead "
			"(refusing to define it twice)\n",
			s->name, dirs->spec_dir, definers[i]);
		return -EEXIST;
	}
	char *const *others = spec_dir_index_names(idx, target_rel);
	for (size_t i = 0; others && others[i]; i++) {
		if (streq(others[i], s->name))
			continue;
		fprintf(stderr,
			"banger apply: %s/%s also defines %s; refusing to overwrite it\n",
			dirs->spec_dir, target_rel, others[i]);
		return -EEXIST;
	}
	return 0;
}

int cli_apply(const CliDirs *dirs, int argc, char **argv)
{
	ApplyArgs a = { 0 };
	VmSpec **specs = NULL;
	size_t n = 0;
	int r = parse_apply_args(argc, argv, &a), rc = 0;

	if (r != 0) {
		strv_free(a.inputs);
		return r > 0 ? 0 : 2;
	}
	if (read_inputs(a.inputs, strv_length(a.inputs), &specs, &n) < 0) {
		strv_free(a.inputs);
		return 1;
	}
	_cleanup_(spec_dir_index_freep) SpecDirIndex *idx = NULL;
	if ((r = spec_dir_index_build(dirs->spec_dir, &idx)) < 0) {
		fprintf(stderr, "banger apply: spec dir %s: %s\n", dirs->spec_dir, strerror(-r));
		rc = 1;
		goto out;
	}
	/* Every check first: nothing is written unless everything can be. */
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *rel = xasprintf("%s.yaml", specs[i]->name);
		if (check_owner(dirs, idx, specs[i], rel) < 0)
			rc = 1;
	}
	if (rc)
		goto out;
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *path = xasprintf("%s/%s.yaml", dirs->spec_dir, specs[i]->name);
		_cleanup_free_ char *yaml = cli_spec_to_yaml(specs[i]);
		struct stat st;
		bool exists = stat(path, &st) == 0;
		if (a.dry_run) {
			printf("vm/%s %s (dry run)\n", specs[i]->name,
			       exists ? "would be configured" : "would be created");
			continue;
		}
		r = write_file_atomic_if_changed(path, yaml, strlen(yaml), 0644);
		if (r < 0) {
			fprintf(stderr, "banger apply: write %s: %s\n", path, strerror(-r));
			rc = 1;
			continue;
		}
		printf("vm/%s %s\n", specs[i]->name,
		       r == 0 ? "unchanged" : exists ? "configured" : "created");
	}
	if (!rc && a.wait && !a.dry_run)
		rc = cli_wait_settled(dirs, specs, n, a.timeout_s) < 0 ? 1 : 0;
out:
	for (size_t i = 0; i < n; i++)
		vm_spec_free(specs[i]);
	free(specs);
	strv_free(a.inputs);
	return rc;
}

/* ---- delete ------------------------------------------------------------- */

static void delete_usage(FILE *f)
{
	fprintf(f, "Usage: banger delete NAME... | -f FILE|DIR|- [--wait [--timeout S]]\n"
		   "\n"
		   "Remove the spec file that defines each VM; bangerd then stops it and removes\n"
		   "everything it made (disks, tap, status). A file that also defines other VMs\n"
		   "is refused (edit it instead). --wait waits until the status file is gone.\n"
		   "Exit status: 0 deleted, 1 not found/refused/timed out, 2 usage.\n");
}

static int delete_one(const CliDirs *dirs, SpecDirIndex *idx, const char *name)
{
	char *const *definers = spec_dir_index_definers(idx, name);
	if (!definers || !definers[0]) {
		fprintf(stderr, "banger delete: no spec file in %s defines %s\n", dirs->spec_dir,
			name);
		return -ENOENT;
	}
	for (size_t i = 0; definers[i]; i++) {
		char *const *names = spec_dir_index_names(idx, definers[i]);
		if (strv_length(names) > 1) {
			_cleanup_free_ char *file = escape_str(definers[i], ESCAPE_DISPLAY);
			fprintf(stderr,
				"banger delete: %s/%s defines %s together with other VMs; edit that "
				"file to remove it\n",
				dirs->spec_dir, file, name);
			return -EBUSY;
		}
	}
	for (size_t i = 0; definers[i]; i++) {
		_cleanup_free_ char *p = path_join(dirs->spec_dir, definers[i]);
		int r = unlink_durable(p);
		if (r < 0) {
			fprintf(stderr, "banger delete: remove %s: %s\n", p, strerror(-r));
			return r;
		}
	}
	printf("vm/%s deleted\n", name);
	return 0;
}

int cli_delete(const CliDirs *dirs, int argc, char **argv)
{
	static const struct option opts[] = { { "filename", required_argument, NULL, 'f' },
					      { "wait", no_argument, NULL, 'w' },
					      { "timeout", required_argument, NULL, 'T' },
					      { "help", no_argument, NULL, 'h' },
					      {} };
	_cleanup_strv_free_ char **names = NULL, **inputs = NULL;
	bool wait = false;
	unsigned timeout_s = 300;
	uint64_t t;
	int c, rc = 0;

	while ((c = getopt_long(argc, argv, "f:h", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			strv_push(&inputs, xstrdup(optarg));
			break;
		case 'w':
			wait = true;
			break;
		case 'T':
			if (parse_u64(optarg, 1, 86400, &t) < 0) {
				fprintf(stderr, "banger delete: --timeout: expected 1..86400 seconds\n");
				return 2;
			}
			timeout_s = (unsigned)t;
			break;
		case 'h':
			delete_usage(stdout);
			return 0;
		default:
			delete_usage(stderr);
			return 2;
		}
	}
	for (int i = optind; i < argc; i++)
		strv_push(&names, xstrdup(argv[i]));
	if (inputs) {
		VmSpec **specs = NULL;
		size_t n = 0;
		if (read_inputs(inputs, strv_length(inputs), &specs, &n) < 0)
			return 1;
		for (size_t i = 0; i < n; i++) {
			strv_push(&names, xstrdup(specs[i]->name));
			vm_spec_free(specs[i]);
		}
		free(specs);
	}
	if (!names) {
		delete_usage(stderr);
		return 2;
	}
	_cleanup_(spec_dir_index_freep) SpecDirIndex *idx = NULL;
	int r = spec_dir_index_build(dirs->spec_dir, &idx);
	if (r < 0) {
		fprintf(stderr, "banger delete: spec dir %s: %s\n", dirs->spec_dir, strerror(-r));
		return 1;
	}
	for (size_t i = 0; names[i]; i++) {
		if (!dns_label_valid(names[i])) {
			fprintf(stderr, "banger delete: '%s' is not a valid VM name\n", names[i]);
			rc = 1;
		} else if (delete_one(dirs, idx, names[i]) < 0)
			rc = 1;
	}
	if (!rc && wait)
		rc = cli_wait_gone(dirs, names, timeout_s) < 0 ? 1 : 0;
	return rc;
}
