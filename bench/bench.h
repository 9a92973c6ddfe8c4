/* bench.h — small helpers shared by the benchmark programs in bench/.
 *
 * Header-only on purpose: the Makefile builds every bench/<name>.c into its
 * own binary, and the baselines must stay "bare" programs (libc only, no
 * banger code on their hot path), so nothing here calls into libbanger.
 *
 * Every program prints its results as `key=value` lines on stdout, which
 * bench/run.sh reads; diagnostics go to stderr. Errors are fatal (die()):
 * a benchmark that cannot measure must say so, not print a number. */
#pragma once

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#if defined(__GNUC__)
#define BENCH_UNUSED   __attribute__((unused))
#define BENCH_NORETURN __attribute__((noreturn, format(printf, 1, 2)))
#else
#define BENCH_UNUSED
#define BENCH_NORETURN
#endif

static BENCH_NORETURN BENCH_UNUSED void die(const char *fmt, ...);
static void die(const char *fmt, ...)
{
	va_list ap;
	int e = errno;
	fputs("bench: ", stderr);
	va_start(ap, fmt);
	errno = e;
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static BENCH_UNUSED uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* CPU time (user + system) this process has used, in microseconds. */
static BENCH_UNUSED uint64_t self_cpu_us(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000ull +
	       (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static BENCH_UNUSED long self_maxrss_kb(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

/* utime and stime of pid in milliseconds (all threads), from /proc/<pid>/stat.
 * Resolution is one clock tick (usually 10 ms): average over many runs. */
static BENCH_UNUSED int proc_cpu_split_ms(pid_t pid, double *ret_user, double *ret_sys)
{
	char path[64], buf[4096];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = 0;
	/* comm may hold spaces and parentheses: fields restart after the last ')'. */
	char *p = strrchr(buf, ')');
	unsigned long long ut, st;
	if (!p ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return -EBADMSG;
	*ret_user = (double)ut * 1000.0 / (double)sysconf(_SC_CLK_TCK);
	*ret_sys = (double)st * 1000.0 / (double)sysconf(_SC_CLK_TCK);
	return 0;
}

static BENCH_UNUSED int proc_cpu_ms(pid_t pid, double *ret)
{
	double u, s;
	int r = proc_cpu_split_ms(pid, &u, &s);
	if (r == 0)
		*ret = u + s;
	return r;
}

/* A "Key:   123 kB" field of /proc/<pid>/status, in kB. */
static BENCH_UNUSED long proc_status_kb(pid_t pid, const char *key)
{
	char path[64], line[256];
	size_t kl = strlen(key);
	long v = -1;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
			v = strtol(line + kl + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

static BENCH_UNUSED int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int r = fsync(fd) < 0 ? -errno : 0;
	close(fd);
	return r;
}

static BENCH_UNUSED int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len > 0) {
		ssize_t k = write(fd, p, len);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += k;
		len -= (size_t)k;
	}
	return 0;
}

/* The durable replace every program here uses (and STYLE.md asks for): write
 * a dot-temp in the same directory, fsync it, rename over path, fsync dir. */
static BENCH_UNUSED int durable_replace(const char *dir, const char *name, const void *data,
					size_t len)
{
	char tmp[4096], dst[4096];
	snprintf(tmp, sizeof(tmp), "%s/.%s.%d.tmp", dir, name, (int)getpid());
	snprintf(dst, sizeof(dst), "%s/%s", dir, name);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	int r = write_all(fd, data, len);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	close(fd);
	if (r == 0 && rename(tmp, dst) < 0)
		r = -errno;
	if (r < 0) {
		unlink(tmp);
		return r;
	}
	return fsync_dir(dir);
}

/* Read a whole (small) file into buf, NUL-terminated. Returns length or -errno. */
static BENCH_UNUSED ssize_t read_small(int dirfd, const char *name, char *buf, size_t cap)
{
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	size_t n = 0;
	while (n + 1 < cap) {
		ssize_t k = read(fd, buf + n, cap - 1 - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		n += (size_t)k;
	}
	close(fd);
	buf[n] = 0;
	return (ssize_t)n;
}

/* The number after `"key":` in a JSON-ish text, or -1. Enough to check the
 * fields the benchmarks verify without a JSON library in the baselines. */
static BENCH_UNUSED long long json_int_field(const char *text, const char *key)
{
	char pat[128];
	snprintf(pat, sizeof(pat), "\"%s\":", key);
	const char *p = strstr(text, pat);
	if (!p)
		return -1;
	return strtoll(p + strlen(pat), NULL, 10);
}

static BENCH_UNUSED int bench_cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile (p in 0..100) of v (sorted in place). */
static BENCH_UNUSED uint64_t percentile(uint64_t *v, size_t n, double p)
{
	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), bench_cmp_u64);
	size_t rank = (size_t)((p / 100.0) * (double)n + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return v[rank - 1];
}

/* The spec every benchmark VM uses: Stopped, so nothing ever boots. */
static BENCH_UNUSED int spec_text(char *buf, size_t cap, const char *name, unsigned memory_mib)
{
	return snprintf(buf, cap,
			"apiVersion: banger/v1\n"
			"kind: VM\n"
			"metadata:\n"
			"  name: %s\n"
			"spec:\n"
			"  state: Stopped\n"
			"  memoryMiB: %u\n"
			"  kernel:\n"
			"    path: /var/lib/banger/images/bzImage\n"
			"  rootfs:\n"
			"    path: /var/lib/banger/images/rootfs.ext4\n",
			name, memory_mib);
}

/* Following a log file as it grows: rfd reads it from `off`; ifd (inotify
 * IN_MODIFY on it, non-blocking) is what callers poll between reads. */
typedef struct {
	int rfd, ifd;
	off_t off;
	char line[8192]; /* longer lines are cut */
	size_t fill;
	char buf[16384];
	size_t bpos, blen;
} LogTail;

/* The next complete line appended since the last call, or NULL when none is
 * complete yet. The line stays valid until the next call. */
static BENCH_UNUSED const char *log_tail_next(LogTail *t)
{
	for (;;) {
		if (t->bpos == t->blen) {
			ssize_t k = pread(t->rfd, t->buf, sizeof(t->buf), t->off);
			if (k <= 0)
				return NULL;
			t->off += k;
			t->blen = (size_t)k;
			t->bpos = 0;
		}
		while (t->bpos < t->blen) {
			char c = t->buf[t->bpos++];
			if (c != '\n') {
				if (t->fill + 1 < sizeof(t->line))
					t->line[t->fill++] = c;
				continue;
			}
			t->line[t->fill] = 0;
			t->fill = 0;
			return t->line;
		}
	}
}

static BENCH_UNUSED bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && memcmp(s + a - b, suffix, b) == 0;
}

/* fork + execv(argv[0]) with stdout and stderr on logfd: bangerd under a
 * benchmark. */
static BENCH_UNUSED pid_t spawn_logged(int logfd, char **argv)
{
	pid_t pid = fork();
	if (pid < 0)
		die("fork: %m");
	if (pid == 0) {
		dup2(logfd, STDOUT_FILENO);
		dup2(logfd, STDERR_FILENO);
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

/* The spec files mkspecs makes are vm-00000 ... vm-<n-1>: how many of their
 * status files report phase Stopped at generation >= 1 (returned), and how
 * many status files the dir holds in all (*ret_total). */
static BENCH_UNUSED long verify_stopped_statuses(const char *status_dir, long n, long *ret_total)
{
	char name[64], text[8192];
	long good = 0, total = 0;
	int dfd = open(status_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		die("open %s: %m", status_dir);
	for (long i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "vm-%05ld.status.json", i);
		if (read_small(dfd, name, text, sizeof(text)) > 0 &&
		    strstr(text, "\"phase\": \"Stopped\"") &&
		    json_int_field(text, "generation") >= 1)
			good++;
	}
	DIR *d = fdopendir(dfd);
	struct dirent *de;
	while (d && (de = readdir(d)))
		if (de->d_name[0] != '.' && ends_with(de->d_name, ".status.json"))
			total++;
	if (d)
		closedir(d);
	*ret_total = total;
	return good;
}
