/* cold_sync — start bangerd on a spec dir it has never seen and time it until
 * every status file is written.
 *
 *   cold_sync LOG STATUS_DIR N BANGERD [ARGS...]
 *
 * The clock starts just before fork+exec of bangerd and stops when its log
 * (stdout+stderr appended to LOG, followed with inotify IN_MODIFY, so no
 * polling interval blurs the figure) says "initial sync done". Then it checks
 * that STATUS_DIR holds vm-00000 … vm-<N-1> status files reporting phase
 * Stopped, and snapshots the daemon's CPU time and VmHWM.
 *
 * bangerd is left running (its pid is printed): later sections use it. */
#include "bench.h"

#include <dirent.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/wait.h>

#define DONE_MARK  "initial sync done"
#define TIMEOUT_MS 120000

/* Scan newly appended log bytes for the completion line. */
static bool log_has_done(int fd, off_t *off, char *line, size_t cap, size_t *fill,
			 long *ret_daemon_ms)
{
	char buf[65536];
	ssize_t k;
	while ((k = pread(fd, buf, sizeof(buf), *off)) > 0) {
		*off += k;
		for (ssize_t i = 0; i < k; i++) {
			if (buf[i] != '\n') {
				if (*fill + 1 < cap)
					line[(*fill)++] = buf[i];
				continue;
			}
			line[*fill] = 0;
			*fill = 0;
			char *p = strstr(line, DONE_MARK);
			if (p) {
				char *in = strstr(p, " in ");
				*ret_daemon_ms = in ? strtol(in + 4, NULL, 10) : -1;
				return true;
			}
		}
	}
	return false;
}

int main(int argc, char **argv)
{
	char line[8192];
	size_t fill = 0;
	off_t off = 0;
	long daemon_ms = -1, total = 0;
	bool done = false;

	if (argc < 5)
		die("usage: cold_sync LOG STATUS_DIR N BANGERD [ARGS...]");
	long n = strtol(argv[3], NULL, 10);
	int logfd = open(argv[1], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	int rfd = open(argv[1], O_RDONLY | O_CLOEXEC);
	int ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (logfd < 0 || rfd < 0 || ifd < 0 || inotify_add_watch(ifd, argv[1], IN_MODIFY) < 0)
		die("log %s: %m", argv[1]);
	off = lseek(rfd, 0, SEEK_END);

	uint64_t t0 = now_ns();
	pid_t pid = spawn_logged(logfd, argv + 4);
	while (!done) {
		struct pollfd p = { .fd = ifd, .events = POLLIN };
		char evbuf[4096];
		if (poll(&p, 1, 200) > 0)
			while (read(ifd, evbuf, sizeof(evbuf)) > 0)
				;
		done = log_has_done(rfd, &off, line, sizeof(line), &fill, &daemon_ms);
		if (!done && waitpid(pid, NULL, WNOHANG) == pid)
			die("bangerd exited before its initial sync finished; see %s", argv[1]);
		if (!done && (now_ns() - t0) / 1000000 > TIMEOUT_MS)
			die("no \"" DONE_MARK "\" after %d s; see %s", TIMEOUT_MS / 1000, argv[1]);
	}
	uint64_t t1 = now_ns();
	double user_ms = 0, sys_ms = 0;
	proc_cpu_split_ms(pid, &user_ms, &sys_ms);
	long hwm = proc_status_kb(pid, "VmHWM");
	long good = verify_stopped_statuses(argv[2], n, &total);

	printf("pid=%d\n", (int)pid);
	printf("cold_ms=%.1f\n", (double)(t1 - t0) / 1e6);
	printf("daemon_ms=%ld\n", daemon_ms);
	printf("cpu_ms=%.0f\n", user_ms + sys_ms);
	printf("user_ms=%.0f\n", user_ms);
	printf("sys_ms=%.0f\n", sys_ms);
	printf("hwm_kb=%ld\n", hwm);
	printf("verified=%ld\n", good);
	printf("status_files=%ld\n", total);
	return good == n && total == n ? 0 : 3;
}
