/* adopt — controller restart with VMs running: start bangerd and time it
 * until it has adopted them.
 *
 *   adopt LOG STATUS_DIR NAMES BANGERD [ARGS...]
 *
 * NAMES is a comma-separated list of VMs that are Running now (their status
 * files show phase Running and a pid), or "-" for none. Their pids are read
 * first; then the clock starts just before fork + exec of BANGERD ARGS...
 * (stdout and stderr appended to LOG, followed with inotify) and stops
 *  - sync_ms:  at the log line "initial sync done" (every VM rediscovered,
 *              reconciled once, status flushed);
 *  - ready_ms: when every NAME's status shows phase Running (Ready) with the
 *              same pid as before — checked from sync_ms on, following the
 *              status dir with inotify (bangerd does not rewrite a status
 *              that did not change, so this is usually sync_ms).
 * A VM restarted instead of adopted (another pid) is a failure (exit 3).
 * It also counts the "adopted running VMM" log lines. bangerd is left
 * running; its pid is printed. */
#include "vmbench.h"

#include <sys/inotify.h>

#define DONE_MARK  "initial sync done"
#define ADOPT_MARK "adopted running VMM"
#define TIMEOUT_MS 60000
#define MAX_VMS    64

typedef struct {
	LogTail t;
	int adopted;
	long daemon_ms;
} AdoptLog;

/* Count adoption lines; true once "initial sync done" (and its ms) is seen. */
static bool log_scan(AdoptLog *a)
{
	const char *l;
	while ((l = log_tail_next(&a->t))) {
		if (strstr(l, ADOPT_MARK))
			a->adopted++;
		const char *p = strstr(l, DONE_MARK);
		if (p) {
			const char *in = strstr(p, " in ");
			a->daemon_ms = in ? strtol(in + 4, NULL, 10) : -1;
			return true;
		}
	}
	return false;
}

/* How many NAMES show phase Running with their old pid; *ret_moved counts
 * those with another pid. */
static int count_adopted(int sdfd, char **names, const long *pids, int n, int *ret_moved)
{
	char phase[64];
	int good = 0;
	*ret_moved = 0;
	for (int i = 0; i < n; i++) {
		long pid = 0;
		if (!status_read(sdfd, names[i], phase, sizeof(phase), &pid))
			continue;
		if (pid > 0 && pid != pids[i])
			(*ret_moved)++;
		else if (pid == pids[i] && strcmp(phase, "Running") == 0)
			good++;
	}
	return good;
}

int main(int argc, char **argv)
{
	char *names[MAX_VMS];
	long pids[MAX_VMS];
	char phase[64], evbuf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
	int n = 0, moved = 0;
	if (argc < 5)
		die("usage: adopt LOG STATUS_DIR NAMES BANGERD [ARGS...]");
	int sdfd = open(argv[2], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int sifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (sdfd < 0 || sifd < 0 || inotify_add_watch(sifd, argv[2], IN_MOVED_TO) < 0)
		die("watch %s: %m", argv[2]);
	char *s = argv[3], *tok, *save = NULL;
	for (; strcmp(argv[3], "-") && n < MAX_VMS && (tok = strtok_r(s, ",", &save)); s = NULL) {
		names[n] = tok;
		if (!status_read(sdfd, tok, phase, sizeof(phase), &pids[n]) || pids[n] <= 0 ||
		    strcmp(phase, "Running") != 0)
			die("%s: not Running with a pid before the restart", tok);
		n++;
	}

	AdoptLog a = { .daemon_ms = -1 };
	LogTail *lt = &a.t;
	int logfd = open(argv[1], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	lt->rfd = open(argv[1], O_RDONLY | O_CLOEXEC);
	lt->ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (logfd < 0 || lt->rfd < 0 || lt->ifd < 0 ||
	    inotify_add_watch(lt->ifd, argv[1], IN_MODIFY) < 0)
		die("log %s: %m", argv[1]);
	lt->off = lseek(lt->rfd, 0, SEEK_END);

	uint64_t t0 = now_ns(), t1 = 0, t2 = 0;
	pid_t pid = spawn_logged(logfd, argv + 4);
	while (!t1) {
		struct pollfd p = { .fd = lt->ifd, .events = POLLIN };
		if (poll(&p, 1, 200) > 0)
			while (read(lt->ifd, evbuf, sizeof(evbuf)) > 0)
				;
		if (log_scan(&a))
			t1 = now_ns();
		else if (waitpid(pid, NULL, WNOHANG) == pid)
			die("bangerd exited before its initial sync finished; see %s", argv[1]);
		else if ((now_ns() - t0) / 1000000 > TIMEOUT_MS)
			die("no \"" DONE_MARK "\" after %d s; see %s", TIMEOUT_MS / 1000, argv[1]);
	}
	while (!t2) {
		if (count_adopted(sdfd, names, pids, n, &moved) == n || moved) {
			t2 = now_ns();
			break;
		}
		if ((now_ns() - t0) / 1000000 > TIMEOUT_MS)
			break;
		struct pollfd p = { .fd = sifd, .events = POLLIN };
		if (poll(&p, 1, 200) > 0)
			while (read(sifd, evbuf, sizeof(evbuf)) > 0)
				;
	}
	printf("pid=%d\n", (int)pid);
	printf("sync_ms=%.1f\n", (double)(t1 - t0) / 1e6);
	printf("daemon_ms=%ld\n", a.daemon_ms);
	printf("ready_ms=%.1f\n", t2 ? (double)(t2 - t0) / 1e6 : -1.0);
	printf("vms=%d\n", n);
	printf("adopted_log=%d\n", a.adopted);
	printf("restarted=%d\n", moved);
	return t2 && !moved && a.adopted == n ? 0 : 3;
}
