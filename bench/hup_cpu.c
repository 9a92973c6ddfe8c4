/* hup_cpu PID LOG K — CPU cost of a full resync that changes nothing.
 *
 * Sends SIGHUP to a settled bangerd K times, one at a time: each time it
 * waits (inotify IN_MODIFY on LOG, bangerd's --log-level debug output) for
 * the line `full sync (SIGHUP): F files, P parsed, U upserts, D deletes in X
 * ms` and checks P = U = D = 0 (a true no-op). Reports the daemon's own X
 * (median/min/max) and the CPU time the whole process (all threads) used,
 * from /proc/PID/stat utime+stime before the first and after the last signal,
 * divided by K (stat has clock-tick resolution, hence the averaging), and
 * from /proc/PID/task/TID/schedstat the nanosecond CPU time and the time the
 * threads sat runnable waiting for a CPU (a busy shared machine shows up
 * there, not in CPU time). */
#include "bench.h"

#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <sys/inotify.h>

#define MARK "full sync (SIGHUP):"

/* Next complete line containing MARK, waiting up to timeout_ms. */
static bool next_mark(LogTail *t, char *out, size_t cap, int timeout_ms)
{
	uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000ull;
	char evbuf[4096];
	for (;;) {
		const char *l;
		while ((l = log_tail_next(t))) {
			if (strstr(l, MARK)) {
				snprintf(out, cap, "%s", l);
				return true;
			}
		}
		uint64_t now = now_ns();
		if (now >= deadline)
			return false;
		struct pollfd p = { .fd = t->ifd, .events = POLLIN };
		if (poll(&p, 1, (int)((deadline - now) / 1000000 + 1)) > 0)
			while (read(t->ifd, evbuf, sizeof(evbuf)) > 0)
				;
	}
}

/* Sum over pid's threads of /proc/<pid>/task/<tid>/schedstat: time on a CPU
 * and time runnable but waiting for one (ns). The wait is what a shared,
 * busy machine adds to wall-clock figures. */
static void sched_ns(pid_t pid, uint64_t *ret_run, uint64_t *ret_wait)
{
	char path[512];
	*ret_run = *ret_wait = 0;
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		unsigned long long run, wait;
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/schedstat", (int)pid, de->d_name);
		FILE *f = fopen(path, "re");
		if (f && fscanf(f, "%llu %llu", &run, &wait) == 2) {
			*ret_run += run;
			*ret_wait += wait;
		}
		if (f)
			fclose(f);
	}
	if (d)
		closedir(d);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	char line[8192];
	if (argc != 4)
		die("usage: hup_cpu PID LOG K");
	pid_t pid = (pid_t)strtol(argv[1], NULL, 10);
	int k = (int)strtol(argv[3], NULL, 10);
	LogTail t = { .rfd = open(argv[2], O_RDONLY | O_CLOEXEC),
		      .ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK) };
	if (k <= 0 || k > 1000 || t.rfd < 0 || t.ifd < 0 ||
	    inotify_add_watch(t.ifd, argv[2], IN_MODIFY) < 0)
		die("hup_cpu: bad arguments or log %s: %m", argv[2]);
	t.off = lseek(t.rfd, 0, SEEK_END);
	double *ms = calloc((size_t)k, sizeof(double)), *wall = calloc((size_t)k, sizeof(double));
	double c0 = 0, c1 = 0;
	uint64_t run0, wait0, run1, wait1;
	unsigned long files = 0, parsed, ups, dels, noop_violations = 0;

	usleep(200000); /* let anything pending (status writes, logging) settle */
	if (proc_cpu_ms(pid, &c0) < 0)
		die("read /proc/%d/stat: %m", (int)pid);
	sched_ns(pid, &run0, &wait0);
	for (int i = 0; i < k; i++) {
		uint64_t t0 = now_ns();
		if (kill(pid, SIGHUP) < 0)
			die("kill -HUP %d: %m", (int)pid);
		if (!next_mark(&t, line, sizeof(line), 30000))
			die("no \"" MARK "\" line within 30 s after SIGHUP %d", i + 1);
		wall[i] = (double)(now_ns() - t0) / 1e6;
		const char *p = strstr(line, MARK) + strlen(MARK);
		if (sscanf(p, " %lu files, %lu parsed, %lu upserts, %lu deletes in %lf ms", &files,
			   &parsed, &ups, &dels, &ms[i]) != 5)
			die("cannot parse: %s", line);
		if (parsed || ups || dels)
			noop_violations++;
	}
	usleep(100000); /* the loop finishes its pass after the log line */
	if (proc_cpu_ms(pid, &c1) < 0)
		die("read /proc/%d/stat: %m", (int)pid);
	sched_ns(pid, &run1, &wait1);
	qsort(ms, (size_t)k, sizeof(double), cmp_double);
	qsort(wall, (size_t)k, sizeof(double), cmp_double);
	printf("runs=%d\n", k);
	printf("files=%lu\n", files);
	printf("not_noop=%lu\n", noop_violations);
	printf("log_ms_median=%.1f\n", ms[k / 2]);
	printf("log_ms_min=%.1f\n", ms[0]);
	printf("log_ms_max=%.1f\n", ms[k - 1]);
	printf("wall_ms_median=%.1f\n", wall[k / 2]);
	printf("cpu_ms_per_resync=%.1f\n", (c1 - c0) / k);
	printf("sched_run_ms_per_resync=%.1f\n", (double)(run1 - run0) / 1e6 / k);
	printf("sched_wait_ms_per_resync=%.1f\n", (double)(wait1 - wait0) / 1e6 / k);
	free(ms);
	free(wall);
	return 0;
}
