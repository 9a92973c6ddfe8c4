/* vm-tool — drives controller/runtime/vm.h directly (no daemon, no store)
 * for tests/integration/t_runtime.sh. Each command is one fresh process, as
 * a restarted controller is: the handle cache starts empty and is rebuilt
 * from <vm-dir>/handles.json and the OS.
 *
 *   vm-tool [OPTIONS] start NAME UID KERNEL ROOTFS IP   boot a qemu guest
 *   vm-tool [OPTIONS] stop NAME UID [TIMEOUT_S]         graceful stop, wait
 *   vm-tool [OPTIONS] rediscover NAME UID               prints "alive 1|0"
 *   vm-tool [OPTIONS] teardown NAME UID [--remove]
 *   vm-tool [OPTIONS] sweep [UID...]                    known uids; prints
 *                                                       "removed N"
 * OPTIONS: --state-dir D --runtime-dir R --image-dir I (repeatable)
 *          --bridge B --cidr C --log-level L
 *
 * The spec for `start` is YAML made here and read by the real spec parser
 * (qemu, 1 vcpu, 128 MiB, network on), so the paths go through the same
 * validation a spec file's would. Facts go to stdout as "key value" lines;
 * exit 0 on success, 1 on failure (with "error ..." on stdout), 2 on usage
 * errors. With $BANGER_CRASHPOINT set, `start` dies by SIGKILL at that
 * point (runtime_crashpoint()). */
#include "runtime/vm.h"
#include "util/log.h"
#include "util/proc.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

static int usage(void)
{
	fprintf(stderr, "usage: vm-tool [--state-dir D --runtime-dir R --image-dir I --bridge B "
			"--cidr C --log-level L] start NAME UID KERNEL ROOTFS IP | stop NAME UID "
			"[TIMEOUT_S] | rediscover NAME UID | teardown NAME UID [--remove] | "
			"sweep [UID...]\n");
	return 2;
}

static int fail(const char *what, int r)
{
	printf("error %s: %s\n", what, strerror(-r));
	return 1;
}

/* The spec through the real parser; NULL (diagnostics on stderr) if invalid. */
static VmSpec *make_spec(const char *name, const char *kernel, const char *rootfs)
{
	_cleanup_free_ char *yaml =
		xasprintf("apiVersion: banger/v1\nkind: VM\n"
			  "metadata:\n  name: %s\n"
			  "spec:\n  vmm: qemu\n  vcpus: 1\n  memoryMiB: 128\n"
			  "  kernel: {path: \"%s\"}\n  rootfs: {path: \"%s\"}\n",
			  name, kernel, rootfs);
	_cleanup_(spec_file_freep) SpecFile *f = NULL;
	if (spec_parse_buffer("vm-tool", yaml, strlen(yaml), &f) < 0)
		return NULL;
	for (size_t i = 0; i < f->diags.n; i++) {
		_cleanup_free_ char *m = diag_format(&f->diags.items[i]);
		fprintf(stderr, "%s\n", m);
	}
	if (f->n_docs != 1 || !f->docs[0].spec)
		return NULL;
	return TAKE_PTR(f->docs[0].spec);
}

static int cmd_start(Runtime *rt, char **a)
{
	_cleanup_(vm_spec_freep) VmSpec *spec = make_spec(a[0], a[2], a[3]);
	_cleanup_free_ char *err = NULL;
	if (!spec)
		return fail("spec", -EINVAL);
	VmStartRequest req = { .name = a[0], .uid = a[1], .spec = spec, .guest_ip = a[4] };
	int r = vm_start(rt, &req, &err);
	if (r < 0) {
		printf("error start: %s\n", err ? err : strerror(-r));
		return 1;
	}
	VmHandles *h = handle_cache_get(runtime_cache(rt), a[0]);
	printf("pid %d\ntap %s\nroot_disk %s\n", (int)h->pid, h->tap ? h->tap : "-",
	       h->root_disk ? h->root_disk : "-");
	return 0;
}

/* Adopt the VMM (a fresh process knows nothing), ask for a graceful stop,
 * wait for the process to go. "stopped graceful" or, after the timeout, a
 * kill and "stopped killed" (exit 1). */
static int cmd_stop(Runtime *rt, char **a, unsigned timeout_s)
{
	int r = vm_rediscover(rt, a[0], a[1], NULL);
	if (r <= 0)
		return fail("stop: VMM not running", r < 0 ? r : -ESRCH);
	VmHandles *h = handle_cache_get(runtime_cache(rt), a[0]);
	pid_t pid = h->pid;
	uint64_t st = h->pid_start_time;
	_cleanup_(vm_paths_done) VmPaths p = { 0 };
	vm_paths_for(rt, a[1], &p);
	if ((r = vm_request_stop(rt, a[0], p.api_sock)) < 0)
		return fail("stop request", r);
	if (proc_wait_exit(pid, st, timeout_s * 1000) == 0) {
		printf("stopped graceful\npid %d\n", (int)pid);
		return 0;
	}
	vm_kill(rt, a[0]);
	printf("stopped killed\npid %d\n", (int)pid);
	return 1;
}

static int cmd_teardown(Runtime *rt, char **a, int n)
{
	bool remove_dir = n > 2 && streq(a[2], "--remove");
	int r = vm_teardown(rt, a[0], a[1], NULL, remove_dir);
	if (r < 0)
		return fail("teardown", r);
	printf("torn-down %s\n", remove_dir ? "removed" : "kept");
	return 0;
}

static int cmd_sweep(Runtime *rt, char **a, int n)
{
	_cleanup_strv_free_ char **uids = NULL;
	for (int i = 0; i < n; i++)
		strv_push(&uids, xstrdup(a[i]));
	printf("removed %d\n", runtime_sweep_orphans(rt, uids));
	return 0;
}

static int dispatch(Runtime *rt, const char *cmd, char **a, int n)
{
	if (streq(cmd, "start") && n == 5)
		return cmd_start(rt, a);
	if (streq(cmd, "stop") && (n == 2 || n == 3))
		return cmd_stop(rt, a, n == 3 ? (unsigned)atoi(a[2]) : 30);
	if (streq(cmd, "rediscover") && n == 2) {
		int r = vm_rediscover(rt, a[0], a[1], NULL);
		if (r < 0)
			return fail("rediscover", r);
		VmHandles *h = handle_cache_get(runtime_cache(rt), a[0]);
		printf("alive %d\n", r);
		if (r > 0)
			printf("pid %d\n", (int)h->pid);
		return 0;
	}
	if (streq(cmd, "teardown") && (n == 2 || n == 3))
		return cmd_teardown(rt, a, n);
	if (streq(cmd, "sweep"))
		return cmd_sweep(rt, a, n);
	return usage();
}

int main(int argc, char **argv)
{
	enum { O_STATE = 256, O_RUNTIME, O_IMAGE, O_BRIDGE, O_CIDR, O_LEVEL };
	static const struct option opts[] = {
		{ "state-dir", required_argument, NULL, O_STATE },
		{ "runtime-dir", required_argument, NULL, O_RUNTIME },
		{ "image-dir", required_argument, NULL, O_IMAGE },
		{ "bridge", required_argument, NULL, O_BRIDGE },
		{ "cidr", required_argument, NULL, O_CIDR },
		{ "log-level", required_argument, NULL, O_LEVEL },
		{ NULL, 0, NULL, 0 },
	};
	_cleanup_strv_free_ char **images = NULL;
	/* A fixed tag of its own: vm-tool is an instance of its own. */
	RuntimeConfig cfg = { .instance = "7e57700170000001",
			      .state_dir = "/var/lib/banger",
			      .runtime_dir = "/run/banger",
			      .bridge = "banger0",
			      .cidr = "172.16.0.1/24",
			      .driver = "qemu" };
	LogLevel level = LOG_LEVEL_INFO;
	int o;
	while ((o = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (o) {
		case O_STATE: cfg.state_dir = optarg; break;
		case O_RUNTIME: cfg.runtime_dir = optarg; break;
		case O_IMAGE: strv_push(&images, xstrdup(optarg)); break;
		case O_BRIDGE: cfg.bridge = optarg; break;
		case O_CIDR: cfg.cidr = optarg; break;
		case O_LEVEL:
			level = streq(optarg, "debug") ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO;
			break;
		default: return usage();
		}
	}
	if (optind >= argc)
		return usage();
	log_setup(level, LOG_FORMAT_TEXT, "vm-tool");
	cfg.image_dirs = images;
	_cleanup_(runtime_freep) Runtime *rt = NULL;
	int r = runtime_new(&cfg, &rt);
	if (r < 0)
		return fail("runtime", r);
	return dispatch(rt, argv[optind], argv + optind + 1, argc - optind - 1);
}
