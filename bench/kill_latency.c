/* kill_latency STATUS_DIR NAME [COMM] — VMM killed → status shows it, one
 * kill per invocation. COMM: the prefix the VMM's /proc comm must have
 * (default qemu-system; the scale section kills fc-double-lite doubles).
 *
 * Waits until STATUS_DIR/NAME.status.json shows phase Running with a pid
 * (bangerd: the guest passed its readiness probe; baseline_pidfd: the guest
 * printed its ready line), checks that pid is a QEMU, then SIGKILLs it
 * through a pidfd and times from just before the kill until a status file
 * is renamed into place (inotify IN_MOVED_TO on STATUS_DIR) that no longer
 * shows that pid. Also reports when the pidfd became readable, i.e. when the
 * process had fully exited (its guest memory freed): that part is the
 * kernel's, and the same for any watcher. */
#include "vmbench.h"

#include <sys/inotify.h>

#define READY_TIMEOUT_MS  120000
#define STATUS_TIMEOUT_MS 10000

static long wait_running(int sdfd, const char *name)
{
	char phase[64];
	uint64_t deadline = now_ns() + (uint64_t)READY_TIMEOUT_MS * 1000000ull;
	while (now_ns() < deadline) {
		long pid = 0;
		if (status_read(sdfd, name, phase, sizeof(phase), &pid) &&
		    strcmp(phase, "Running") == 0 && pid > 0)
			return pid;
		usleep(20000); /* not measured: only the set-up before a kill */
	}
	die("%s: status never showed phase Running with a pid", name);
}

static bool comm_is(long pid, const char *prefix)
{
	char path[64], comm[64] = "";
	snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t _n = read(fd, comm, sizeof(comm) - 1);
		(void)_n;
		close(fd);
	}
	return strncmp(comm, prefix, strlen(prefix)) == 0;
}

int main(int argc, char **argv)
{
	char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
	char status_name[320], phase[64];
	if (argc != 3 && argc != 4)
		die("usage: kill_latency STATUS_DIR NAME [COMM]");
	const char *comm = argc == 4 ? argv[3] : "qemu-system";
	const char *name = argv[2];
	snprintf(status_name, sizeof(status_name), "%s.status.json", name);
	int sdfd = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (sdfd < 0 || ifd < 0 || inotify_add_watch(ifd, argv[1], IN_MOVED_TO) < 0)
		die("watch %s: %m", argv[1]);
	long pid = wait_running(sdfd, name);
	int pidfd = pidfd_open_((pid_t)pid);
	if (pidfd < 0 || !comm_is(pid, comm))
		die("%s: pid %ld is not a running %s", name, pid, comm);
	while (read(ifd, buf, sizeof(buf)) > 0)
		;
	uint64_t t0 = now_ns(), texit = 0, tstat = 0;
	if (pidfd_kill(pidfd, SIGKILL) < 0)
		die("kill %ld: %m", pid);
	uint64_t deadline = t0 + (uint64_t)STATUS_TIMEOUT_MS * 1000000ull;
	while (!tstat) {
		uint64_t now = now_ns();
		if (now >= deadline)
			die("%s: status still shows pid %ld %d s after the kill", name, pid,
			    STATUS_TIMEOUT_MS / 1000);
		struct pollfd p[2] = { { .fd = ifd, .events = POLLIN },
				       { .fd = texit ? -1 : pidfd, .events = POLLIN } };
		if (poll(p, 2, (int)((deadline - now) / 1000000 + 1)) <= 0)
			continue;
		uint64_t t = now_ns();
		if (p[1].revents)
			texit = t;
		if (!p[0].revents)
			continue;
		bool hit = false;
		ssize_t n;
		while ((n = read(ifd, buf, sizeof(buf))) > 0)
			for (char *q = buf; q < buf + n;) {
				struct inotify_event *ev = (struct inotify_event *)q;
				if (ev->len && strcmp(ev->name, status_name) == 0)
					hit = true;
				q += sizeof(*ev) + ev->len;
			}
		long now_pid = 0;
		if (hit && status_read(sdfd, name, phase, sizeof(phase), &now_pid) &&
		    now_pid != pid)
			tstat = t;
	}
	if (!texit) {
		struct pollfd p = { .fd = pidfd, .events = POLLIN };
		if (poll(&p, 1, 0) == 1)
			texit = tstat; /* exited; seen no earlier than the status */
	}
	printf("pid=%ld\n", pid);
	printf("status_us=%.1f\n", (double)(tstat - t0) / 1e3);
	printf("exit_us=%.1f\n", texit ? (double)(texit - t0) / 1e3 : -1.0);
	printf("phase=%s\n", phase);
	return 0;
}
