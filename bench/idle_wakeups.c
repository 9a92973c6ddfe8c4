/* idle_wakeups SECONDS PID... — how often idle processes wake up.
 *
 * For each PID, sums over all its threads (/proc/PID/task/TID/status:
 * voluntary_ctxt_switches + nonvoluntary_ctxt_switches; schedstat: ns on
 * CPU) at the start and after SECONDS of sleep, and prints the deltas:
 *   p<i>_switches, p<i>_voluntary, p<i>_involuntary, p<i>_cpu_ms,
 *   p<i>_per_min (switches scaled to one minute), p<i>_threads,
 *   p<i>_thread=TID:COMM:SWITCHES (one line per thread).
 * A blocked thread that wakes and blocks again costs one voluntary switch,
 * so switches per minute is wake-ups per minute. A thread that exits inside
 * the window takes its count with it (p<i>_threads_gone says how many). */
#include "bench.h"

#include <dirent.h>

#define MAX_PIDS    8
#define MAX_THREADS 256

typedef struct {
	int tid;
	char comm[32];
	long long vol, invol, cpu_ns;
} ThreadSample;

typedef struct {
	ThreadSample t[MAX_THREADS];
	int n;
} Sample;

static long long field(const char *text, const char *key)
{
	const char *p = strstr(text, key);
	return p ? strtoll(p + strlen(key), NULL, 10) : -1;
}

static void sample(pid_t pid, Sample *s)
{
	char path[128], text[8192];
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	if (!d)
		die("%s: %m", path);
	struct dirent *de;
	s->n = 0;
	while ((de = readdir(d)) && s->n < MAX_THREADS) {
		if (de->d_name[0] == '.')
			continue;
		ThreadSample *t = &s->t[s->n];
		int dfd = dirfd(d);
		char sub[300];
		t->tid = atoi(de->d_name);
		snprintf(sub, sizeof(sub), "%s/status", de->d_name);
		if (read_small(dfd, sub, text, sizeof(text)) <= 0)
			continue;
		t->vol = field(text, "\nvoluntary_ctxt_switches:");
		t->invol = field(text, "\nnonvoluntary_ctxt_switches:");
		const char *nm = strstr(text, "Name:\t");
		snprintf(t->comm, sizeof(t->comm), "%.*s", nm ? (int)strcspn(nm + 6, "\n") : 1,
			 nm ? nm + 6 : "?");
		snprintf(sub, sizeof(sub), "%s/schedstat", de->d_name);
		t->cpu_ns =
			read_small(dfd, sub, text, sizeof(text)) > 0 ? strtoll(text, NULL, 10) : 0;
		s->n++;
	}
	closedir(d);
}

static const ThreadSample *find(const Sample *s, int tid)
{
	for (int i = 0; i < s->n; i++)
		if (s->t[i].tid == tid)
			return &s->t[i];
	return NULL;
}

int main(int argc, char **argv)
{
	static Sample before[MAX_PIDS], after[MAX_PIDS];
	if (argc < 3 || argc - 2 > MAX_PIDS)
		die("usage: idle_wakeups SECONDS PID...");
	double secs = strtod(argv[1], NULL);
	int np = argc - 2;
	for (int i = 0; i < np; i++)
		sample((pid_t)atoi(argv[i + 2]), &before[i]);
	uint64_t t0 = now_ns();
	usleep((useconds_t)(secs * 1e6));
	double real = (double)(now_ns() - t0) / 1e9;
	for (int i = 0; i < np; i++)
		sample((pid_t)atoi(argv[i + 2]), &after[i]);
	printf("seconds=%.2f\n", real);
	for (int i = 0; i < np; i++) {
		long long vol = 0, invol = 0, cpu = 0;
		int gone = 0;
		for (int k = 0; k < after[i].n; k++) {
			const ThreadSample *a = &after[i].t[k], *b = find(&before[i], a->tid);
			long long v = a->vol - (b ? b->vol : 0), iv = a->invol - (b ? b->invol : 0);
			vol += v;
			invol += iv;
			cpu += a->cpu_ns - (b ? b->cpu_ns : 0);
			printf("p%d_thread=%d:%s:%lld\n", i, a->tid, a->comm, v + iv);
		}
		for (int k = 0; k < before[i].n; k++)
			gone += find(&after[i], before[i].t[k].tid) == NULL;
		printf("p%d_switches=%lld\n", i, vol + invol);
		printf("p%d_voluntary=%lld\n", i, vol);
		printf("p%d_involuntary=%lld\n", i, invol);
		printf("p%d_per_min=%.1f\n", i, (double)(vol + invol) * 60.0 / real);
		printf("p%d_cpu_ms=%.2f\n", i, (double)cpu / 1e6);
		printf("p%d_cpu_ms_per_min=%.2f\n", i, (double)cpu / 1e6 * 60.0 / real);
		printf("p%d_threads=%d\n", i, after[i].n);
		printf("p%d_threads_gone=%d\n", i, gone);
	}
	return 0;
}
