/* scale_start — start bangerd with N VMs' specs present and time it until
 * all N are Running (a cold start) or adopted (a restart after kill -9).
 *
 *   scale_start MODE LOG STATUS_DIR PREFIX N TIMEOUT_S BANGERD [ARGS...]
 *
 * MODE cold:  the VMs are PREFIX-0000 … PREFIX-<N-1>; none runs yet. The
 *             clock stops at "all N status files show phase Running with a
 *             pid" (running_ms).
 * MODE adopt: all N are Running now; their pids are read first, and the
 *             clock stops when all N show Running with the same pid (a VM
 *             restarted instead of adopted is counted in `restarted`).
 * Both: the clock starts just before fork + exec of BANGERD ARGS (stdout and
 * stderr appended to LOG) and sync_ms is when the log says "initial sync
 * done". The status dir is watched with inotify (a status file is renamed
 * into place): only a file named by an event is read, so the observer
 * costs the host next to nothing while bangerd starts N VMMs (polling
 * every file not yet done, at every write to bangerd's debug log, took
 * more CPU than some of what it measured). An inotify overflow, and the
 * initial sync of an adoption, rescan every file not yet done. After TIMEOUT_S
 * it reports how many were reached and exits 3; bangerd is left running
 * either way (its pid is printed). */
#include "vmbench.h"

#include <sys/inotify.h>

#define DONE_MARK "initial sync done"
#define POLL_MS   50

static bool log_done(LogTail *t, long *ret_daemon_ms)
{
	const char *l;
	while ((l = log_tail_next(t))) {
		const char *p = strstr(l, DONE_MARK);
		if (p) {
			const char *in = strstr(p, " in ");
			*ret_daemon_ms = in ? strtol(in + 4, NULL, 10) : -1;
			return true;
		}
	}
	return false;
}

/* What the VMs were seen as: reached Running (with the same pid when
 * adopting) or restarted. */
typedef struct {
	int sdfd;
	const char *prefix;
	bool adopt;
	const long *pids;
	bool *done;
	long reached, restarted;
} Watch;

/* VM i's status file, read again: counted once it is done. */
static void look(Watch *w, long i)
{
	char name[256], phase[64];
	long now_pid = 0;
	snprintf(name, sizeof(name), "%s-%04ld", w->prefix, i);
	if (w->done[i] || !status_read(w->sdfd, name, phase, sizeof(phase), &now_pid))
		return;
	if (w->adopt && now_pid > 0 && now_pid != w->pids[i]) {
		w->done[i] = true;
		w->restarted++;
	} else if (strcmp(phase, "Running") == 0 && now_pid > 0 &&
		   (!w->adopt || now_pid == w->pids[i])) {
		w->done[i] = true;
		w->reached++;
	}
}

int main(int argc, char **argv)
{
	char evbuf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	char name[256], phase[64];
	if (argc < 8)
		die("usage: scale_start cold|adopt LOG STATUS_DIR PREFIX N TIMEOUT_S BANGERD "
		    "[ARGS...]");
	bool adopt = strcmp(argv[1], "adopt") == 0;
	if (!adopt && strcmp(argv[1], "cold"))
		die("scale_start: MODE must be cold or adopt");
	const char *prefix = argv[4];
	long n = strtol(argv[5], NULL, 10), timeout_s = strtol(argv[6], NULL, 10);
	if (n <= 0 || n > 100000 || timeout_s <= 0)
		die("scale_start: bad N %s or TIMEOUT_S %s", argv[5], argv[6]);
	int sdfd = open(argv[3], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sdfd < 0)
		die("open %s: %m", argv[3]);
	long *pids = calloc((size_t)n, sizeof(long));
	bool *done = calloc((size_t)n, sizeof(bool));
	if (!pids || !done)
		die("out of memory");
	for (long i = 0; adopt && i < n; i++) {
		snprintf(name, sizeof(name), "%s-%04ld", prefix, i);
		if (!status_read(sdfd, name, phase, sizeof(phase), &pids[i]) || pids[i] <= 0 ||
		    strcmp(phase, "Running") != 0)
			die("%s: not Running with a pid before the restart", name);
	}

	LogTail lt = { 0 };
	int logfd = open(argv[2], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	lt.rfd = open(argv[2], O_RDONLY | O_CLOEXEC);
	lt.ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (logfd < 0 || lt.rfd < 0 || lt.ifd < 0 ||
	    inotify_add_watch(lt.ifd, argv[2], IN_MODIFY) < 0)
		die("log %s: %m", argv[2]);
	lt.off = lseek(lt.rfd, 0, SEEK_END);

	int sfd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (sfd < 0 || inotify_add_watch(sfd, argv[3], IN_MOVED_TO | IN_CLOSE_WRITE) < 0)
		die("watch %s: %m", argv[3]);
	size_t plen = strlen(prefix);

	uint64_t t0 = now_ns(), tsync = 0, tall = 0;
	uint64_t deadline = t0 + (uint64_t)timeout_s * 1000000000ull;
	pid_t pid = spawn_logged(logfd, argv + 7);
	long daemon_ms = -1;
	bool exited = false, rescan = !adopt;
	Watch w = { .sdfd = sdfd, .prefix = prefix, .adopt = adopt, .pids = pids, .done = done };
	while (now_ns() < deadline && (!tsync || !tall)) {
		struct pollfd p[2] = { { .fd = sfd, .events = POLLIN },
				       { .fd = lt.ifd, .events = POLLIN } };
		if (poll(p, tsync ? 1 : 2, POLL_MS) < 0 && errno != EINTR)
			die("poll: %m");
		if (!tsync) {
			while (read(lt.ifd, evbuf, sizeof(evbuf)) > 0)
				;
			if (log_done(&lt, &daemon_ms)) {
				tsync = now_ns();
				/* Adopted means: seen by this bangerd, so only after its
				 * initial sync (the files still show the old pids before). */
				rescan = true;
			}
		}
		ssize_t k;
		while ((k = read(sfd, evbuf, sizeof(evbuf))) > 0)
			for (char *e = evbuf; e < evbuf + k;) {
				struct inotify_event *ev = (struct inotify_event *)e;
				e += sizeof(*ev) + ev->len;
				if (ev->mask & IN_Q_OVERFLOW) {
					rescan = true;
					continue;
				}
				char *end = NULL;
				if (!ev->len || (adopt && !tsync) ||
				    strncmp(ev->name, prefix, plen) || ev->name[plen] != '-')
					continue;
				long i = strtol(ev->name + plen + 1, &end, 10);
				if (end && strcmp(end, ".status.json") == 0 && i >= 0 && i < n)
					look(&w, i);
			}
		if (rescan && (!adopt || tsync)) {
			rescan = false;
			for (long i = 0; i < n; i++)
				look(&w, i);
		}
		if (!tall && w.reached + w.restarted == n)
			tall = now_ns();
		if (waitpid(pid, NULL, WNOHANG) == pid) {
			exited = true;
			break;
		}
	}
	printf("pid=%d\n", (int)pid);
	printf("sync_ms=%.1f\n", tsync ? (double)(tsync - t0) / 1e6 : -1.0);
	printf("daemon_ms=%ld\n", daemon_ms);
	printf("running_ms=%.1f\n", tall ? (double)(tall - t0) / 1e6 : -1.0);
	printf("elapsed_ms=%.1f\n", (double)(now_ns() - t0) / 1e6);
	printf("vms=%ld\n", n);
	printf("reached=%ld\n", w.reached);
	printf("restarted=%ld\n", w.restarted);
	printf("bangerd_exited=%d\n", exited);
	return tsync && tall && !w.restarted && !exited ? 0 : 3;
}
