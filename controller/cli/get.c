/* get.c — `banger get` and `banger describe`, from status files only. */
#include "cli/cli.h"
#include "cli/common.h"
#include "store/store.h"
#include "util/fileio.h"
#include "util/escape.h"

#include <fcntl.h>
#include "util/timeutil.h"

#include <getopt.h>
#include <json.h>
#include <stdio.h>

typedef enum { OUT_TABLE, OUT_WIDE, OUT_JSON, OUT_YAML } OutFormat;

static void get_usage(FILE *f)
{
	fprintf(f, "Usage: banger get [NAME] [-o table|wide|json|yaml]\n"
		   "\n"
		   "Show VM status as bangerd last wrote it (<status-dir>/<name>.status.json).\n"
		   "Exit status: 0 ok, 1 NAME not found, 2 usage.\n");
}

static void format_age(int64_t since_ms, char *buf, size_t n)
{
	int64_t s = since_ms > 0 ? (time_now_realtime_ms() - since_ms) / 1000 : -1;
	if (s < 0)
		snprintf(buf, n, "-");
	else if (s < 120)
		snprintf(buf, n, "%llds", (long long)s);
	else if (s < 7200)
		snprintf(buf, n, "%lldm", (long long)(s / 60));
	else if (s < 172800)
		snprintf(buf, n, "%lldh", (long long)(s / 3600));
	else
		snprintf(buf, n, "%lldd", (long long)(s / 86400));
}

static const char *ready_of(const VmStatus *s)
{
	const Condition *c = vm_status_get_condition(s, "Ready");
	return c ? cond_status_to_string(c->status) : "Unknown";
}

static void print_table(VmStatus **v, size_t n, bool wide)
{
	if (wide)
		printf("%-24s %-9s %-7s %-15s %-8s %-14s %-8s %-7s %-5s %s\n", "NAME", "PHASE",
		       "READY", "IP", "PID", "TAP", "RESTARTS", "GEN", "AGE", "SOURCE");
	else
		printf("%-24s %-9s %-7s %-15s %-8s %s\n", "NAME", "PHASE", "READY", "IP",
		       "RESTARTS", "AGE");
	for (size_t i = 0; i < n; i++) {
		VmStatus *s = v[i];
		char age[16], pid[16], gen[32];
		format_age(s->started_at_ms, age, sizeof(age));
		snprintf(pid, sizeof(pid), "%d", (int)s->pid);
		snprintf(gen, sizeof(gen), "%lld/%lld", (long long)s->observed_generation,
			 (long long)s->generation);
		_cleanup_free_ char *src = escape_str(s->source_file ? s->source_file : "-",
						      ESCAPE_DISPLAY);
		if (wide)
			printf("%-24s %-9s %-7s %-15s %-8s %-14s %-8lld %-7s %-5s %s\n", s->name,
			       vm_phase_to_string(s->phase), ready_of(s),
			       s->guest_ip ? s->guest_ip : "-", s->pid > 0 ? pid : "-",
			       s->tap ? s->tap : "-", (long long)s->restart_count, gen, age, src);
		else
			printf("%-24s %-9s %-7s %-15s %-8lld %s\n", s->name,
			       vm_phase_to_string(s->phase), ready_of(s),
			       s->guest_ip ? s->guest_ip : "-", (long long)s->restart_count, age);
	}
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
		json_object_object_foreachC(o, it)
		{
			printf("%*s%s:", (in_list && first) ? 0 : indent, "", it.key);
			first = false;
			json_type t = json_object_get_type(it.val);
			if (t == json_type_object || t == json_type_array)
				yaml_emit(it.val, indent + 2, false);
			else
				printf(" %s\n", it.val ? json_object_to_json_string_ext(
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
	default:
		printf(" %s\n", json_object_to_json_string(o));
	}
}

static void print_structured(VmStatus **v, size_t n, bool single, OutFormat fmt)
{
	json_object *arr = json_object_new_array();
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *j = vm_status_to_json(v[i]);
		json_object_array_add(arr, json_tokener_parse(j));
	}
	json_object *out = single && n == 1 ? json_object_get(json_object_array_get_idx(arr, 0)) : NULL;
	if (!out) {
		out = json_object_new_object();
		json_object_object_add(out, "apiVersion", json_object_new_string("banger/v1"));
		json_object_object_add(out, "kind", json_object_new_string("VMStatusList"));
		json_object_object_add(out, "items", json_object_get(arr));
	}
	if (fmt == OUT_JSON)
		printf("%s\n", json_object_to_json_string_ext(out, JSON_C_TO_STRING_PRETTY |
								   JSON_C_TO_STRING_SPACED |
								   JSON_C_TO_STRING_NOSLASHESCAPE));
	else {
		printf("---");
		yaml_emit(out, 0, false);
	}
	json_object_put(out);
	json_object_put(arr);
}

int cli_get(const CliDirs *dirs, int argc, char **argv)
{
	static const struct option opts[] = { { "output", required_argument, NULL, 'o' },
					      { "help", no_argument, NULL, 'h' },
					      {} };
	OutFormat fmt = OUT_TABLE;
	int c;
	while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
		switch (c) {
		case 'o':
			if (streq(optarg, "table"))
				fmt = OUT_TABLE;
			else if (streq(optarg, "wide"))
				fmt = OUT_WIDE;
			else if (streq(optarg, "json"))
				fmt = OUT_JSON;
			else if (streq(optarg, "yaml"))
				fmt = OUT_YAML;
			else {
				fprintf(stderr, "banger get: -o: expected table, wide, json or yaml\n");
				return 2;
			}
			break;
		case 'h':
			get_usage(stdout);
			return 0;
		default:
			get_usage(stderr);
			return 2;
		}
	}
	if (argc - optind > 1) {
		get_usage(stderr);
		return 2;
	}
	VmStatus **v = NULL;
	size_t n = 0;
	int rc = 0;
	if (optind < argc) {
		VmStatus *st = NULL;
		int r = dns_label_valid(argv[optind]) ? vm_status_read(dirs->status_dir,
									argv[optind], &st)
						      : -EINVAL;
		if (r < 0) {
			fprintf(stderr, "banger get: vm %s: %s\n", argv[optind],
				r == -ENOENT ? "not found (no status file)" : strerror(-r));
			return 1;
		}
		v = xcalloc(1, sizeof(VmStatus *));
		v[n++] = st;
	} else if (cli_load_statuses(dirs->status_dir, &v, &n) < 0) {
		fprintf(stderr, "banger get: status dir %s: %s\n", dirs->status_dir,
			strerror(errno));
		return 1;
	}
	if (fmt == OUT_TABLE || fmt == OUT_WIDE)
		print_table(v, n, fmt == OUT_WIDE);
	else
		print_structured(v, n, optind < argc, fmt);
	for (size_t i = 0; i < n; i++)
		vm_status_free(v[i]);
	free(v);
	return rc;
}

/* What the store knows (read-only) and the end of the guest console. Quietly
 * skipped when the state dir is not readable by this user. */
static void describe_durable(const CliDirs *dirs, const char *name)
{
	_cleanup_free_ char *db = path_join(dirs->state_dir, "banger.db");
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
	_cleanup_free_ char *console = path_join(r->vm_dir, "console.log");
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
	fprintf(f, "Usage: banger describe NAME\n"
		   "\n"
		   "Everything the status file says about one VM, for people.\n"
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

int cli_describe(const CliDirs *dirs, int argc, char **argv)
{
	if (argc != 2 || streq(argv[1], "-h") || streq(argv[1], "--help")) {
		describe_usage(argc == 2 ? stdout : stderr);
		return argc == 2 ? 0 : 2;
	}
	VmStatus *s = NULL;
	int r = dns_label_valid(argv[1]) ? vm_status_read(dirs->status_dir, argv[1], &s) : -EINVAL;
	if (r < 0) {
		fprintf(stderr, "banger describe: vm %s: %s\n", argv[1],
			r == -ENOENT ? "not found (no status file)" : strerror(-r));
		return 1;
	}
	printf("%-20s %s\n", "Name:", s->name);
	printf("%-20s ", "Source:");
	escape_fputs(stdout, s->source_file ? s->source_file : "-", ESCAPE_DISPLAY);
	putchar('\n');
	printf("%-20s %s\n", "Phase:", vm_phase_to_string(s->phase));
	printf("%-20s %lld (observed %lld)\n", "Generation:", (long long)s->generation,
	       (long long)s->observed_generation);
	printf("%-20s %s\n", "Spec hash:", s->spec_hash ? s->spec_hash : "-");
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
	vm_status_free(s);
	return 0;
}
