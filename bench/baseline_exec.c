/* baseline_exec SPEC_DIR QMP_SOCK ARGV_FILE NAME_FROM [FROM TO]... — the
 * floor under spec write → VMM exec: a bare program that reacts to a spec
 * file landing in SPEC_DIR (inotify IN_MOVED_TO / IN_CLOSE_WRITE of *.yaml)
 * by fork + exec of the QEMU command line bangerd used for one VM (ARGV_FILE,
 * raw /proc/PID/cmdline), with NAME_FROM replaced by the new file's stem and
 * each FROM replaced by its TO (the VM dir, the QMP socket and the tap of
 * bangerd's VM become the baseline's own, so both can run side by side).
 * After the exec it does what bangerd's launch does next — waits until QMP
 * on QMP_SOCK accepts and greets — though exec_latency stops its clock at the
 * exec. No parsing, no database, no tap or bridge set-up, no disk
 * preparation (its root disk must already exist): everything bangerd adds is
 * what the comparison shows.
 *
 * bangerd's argv names no disk file: bangerd opens the disks and passes them
 * as fds (`-add-fd fd=N,...`). This baseline does the same, so its QEMU boots
 * the same disks the same way: it opens the files listed in ARGV_FILE.fds
 * (written by exec_latency: bangerd's VM's files, FROM→TO applied, so its own
 * root overlay and the shared base image) after the spec event, like
 * bangerd's launch, and its child puts each at the number the argv names
 * before the exec. The argv itself is replayed unchanged.
 *
 * When the spec file goes (IN_DELETE / IN_MOVED_FROM), its QEMU is killed
 * and reaped. One VM at a time. Prints "ready" once watching; runs until
 * SIGTERM (which also kills its QEMU). */
#include "vmbench.h"

#include <libgen.h>
#include <sys/inotify.h>

static pid_t child;
static char qmp_sock[256], log_path[300];

static void stop_child(void)
{
	if (child <= 0)
		return;
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	child = 0;
	unlink(qmp_sock);
}

static void on_term(int sig)
{
	(void)sig;
	if (child > 0)
		kill(child, SIGKILL);
	_exit(0);
}

static PassFds pass;

static void start(const Argv *tmpl, const char *from, const char *file)
{
	char name[256];
	snprintf(name, sizeof(name), "%.*s", (int)(strlen(file) - 5), file);
	stop_child();
	Argv a;
	argv_for_name(tmpl, from, name, &a);
	uint64_t t0 = now_ns();
	int opened[VMB_MAX_FDS];
	passfds_open(&pass, opened);
	child = vmb_spawn_fds(a.args, log_path, &pass, opened);
	passfds_close(&pass, opened);
	int r = vmb_wait_qmp(qmp_sock, child, 5000);
	fprintf(stderr, "baseline_exec: %s: pid %d, QMP %s after %.1f ms\n", name, (int)child,
		r == 0 ? "ready" : strerror(-r), (double)(now_ns() - t0) / 1e6);
	argv_free(&a);
}

int main(int argc, char **argv)
{
	char buf[65536] __attribute__((aligned(__alignof__(struct inotify_event))));
	if (argc < 5 || (argc - 5) % 2)
		die("usage: baseline_exec SPEC_DIR QMP_SOCK ARGV_FILE NAME_FROM [FROM TO]...");
	snprintf(qmp_sock, sizeof(qmp_sock), "%s", argv[2]);
	char dir[256];
	snprintf(dir, sizeof(dir), "%s", argv[2]);
	snprintf(log_path, sizeof(log_path), "%s/vmm.log", dirname(dir));
	Argv tmpl;
	argv_load(argv[3], argv + 5, (size_t)(argc - 5), &tmpl);
	passfds_load(argv[3], argv + 5, (size_t)(argc - 5), &pass);
	signal(SIGTERM, on_term);
	int ifd = inotify_init1(IN_CLOEXEC);
	if (ifd < 0 ||
	    inotify_add_watch(ifd, argv[1],
			      IN_CLOSE_WRITE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM) < 0)
		die("watch %s: %m", argv[1]);
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		ssize_t n = read(ifd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die("read inotify: %m");
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)p;
			if (ev->len && ev->name[0] != '.' && ends_with(ev->name, ".yaml")) {
				if (ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO))
					start(&tmpl, argv[4], ev->name);
				else
					stop_child();
			}
			p += sizeof(*ev) + ev->len;
		}
	}
}
