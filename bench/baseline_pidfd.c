/* baseline_pidfd STATUS_DIR NAME QMP_SOCK CONSOLE ARGV_FILE NAME_FROM [FROM TO]...
 * — the floor under VMM kill → status: a bare program that runs one QEMU
 * (bangerd's command line, substituted as in baseline_exec) as its child,
 * holds a pidfd on it, and when the pidfd becomes readable reaps it and
 * durably replaces STATUS_DIR/NAME.status.json (temp, fsync, rename, fsync
 * dir) with a status that has no pid. Then it starts the QEMU again, waits
 * for QMP and for the guest's ready line on CONSOLE (its stand-in for
 * bangerd's readiness probe, so both guests are booted and idle when
 * kill_latency kills them), and writes a Running status with the new pid.
 * The disk files bangerd passed its QEMU as fds are in ARGV_FILE.fds (as for
 * baseline_exec): each is opened and put at the number the argv names.
 * Runs until SIGTERM (which kills its QEMU). */
#include "vmbench.h"

#include <libgen.h>
#include <sys/signalfd.h>

#define READY_TIMEOUT_MS 120000

static const char *status_dir, *name;

static void write_status(const char *phase, long pid)
{
	char text[512], file[320], pidtxt[32];
	snprintf(pidtxt, sizeof(pidtxt), "%ld", pid);
	int len =
		snprintf(text, sizeof(text),
			 "{\n  \"kind\": \"VMStatus\",\n  \"name\": \"%s\",\n  \"phase\": \"%s\",\n"
			 "  \"runtime\": {\n    \"pid\": %s\n  }\n}\n",
			 name, phase, pid > 0 ? pidtxt : "null");
	snprintf(file, sizeof(file), "%s.status.json", name);
	int r = durable_replace(status_dir, file, text, (size_t)len);
	if (r < 0)
		die("write %s/%s: %s", status_dir, file, strerror(-r));
}

static bool console_ready(const char *console)
{
	static char text[1 << 16];
	int fd = open(console, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, text, sizeof(text) - 1);
	close(fd);
	text[n > 0 ? n : 0] = 0;
	return n > 0 && strstr(text, VMB_READY_MARK);
}

/* Start QEMU, wait until it is up and the guest booted; returns its pid. */
static PassFds pass; /* the disks bangerd passed its QEMU as fds (vmbench.h) */

static pid_t boot(char *const *args, const char *sock, const char *console, const char *log)
{
	unlink(sock);
	if (truncate(console, 0) < 0 && errno != ENOENT)
		die("truncate %s: %m", console);
	int opened[VMB_MAX_FDS];
	passfds_open(&pass, opened);
	pid_t pid = vmb_spawn_fds(args, log, &pass, opened);
	passfds_close(&pass, opened);
	if (vmb_wait_qmp(sock, pid, 5000) < 0)
		die("QEMU pid %d: no QMP on %s (see %s)", (int)pid, sock, log);
	uint64_t deadline = now_ns() + (uint64_t)READY_TIMEOUT_MS * 1000000ull;
	while (!console_ready(console)) {
		if (now_ns() > deadline || waitpid(pid, NULL, WNOHANG) == pid)
			die("guest of pid %d never printed its ready line (%s)", (int)pid, console);
		usleep(50000);
	}
	return pid;
}

int main(int argc, char **argv)
{
	if (argc < 7 || (argc - 7) % 2)
		die("usage: baseline_pidfd STATUS_DIR NAME QMP_SOCK CONSOLE ARGV_FILE NAME_FROM [FROM TO]...");
	status_dir = argv[1];
	name = argv[2];
	const char *sock = argv[3], *console = argv[4];
	char dir[256], log[300];
	snprintf(dir, sizeof(dir), "%s", sock);
	snprintf(log, sizeof(log), "%s/vmm.log", dirname(dir));
	Argv tmpl, a;
	argv_load(argv[5], argv + 7, (size_t)(argc - 7), &tmpl);
	passfds_load(argv[5], argv + 7, (size_t)(argc - 7), &pass);
	argv_for_name(&tmpl, argv[6], name, &a);

	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	int sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	for (;;) {
		pid_t pid = boot(a.args, sock, console, log);
		int pidfd = pidfd_open_(pid);
		if (pidfd < 0)
			die("pidfd_open %d: %m", (int)pid);
		write_status("Running", pid);
		struct pollfd p[2] = { { .fd = pidfd, .events = POLLIN },
				       { .fd = sfd, .events = POLLIN } };
		while (poll(p, 2, -1) < 0 && errno == EINTR)
			;
		if (p[1].revents) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			unlink(sock);
			return 0;
		}
		waitpid(pid, NULL, 0);
		close(pidfd);
		write_status("Failed", 0);
	}
}
