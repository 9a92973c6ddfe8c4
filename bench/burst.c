/* burst — a GitOps-style sync landing on a running bangerd: N spec files
 * written into its (empty) spec dir as fast as one writer can, then the time
 * until the last status file lands.
 *
 *   burst SPEC_DIR STATUS_DIR N TIMEOUT_S
 *
 * The specs are vm-00000 … vm-<N-1>, the same Stopped specs mkspecs writes
 * (bench.h spec_text): the figure is the control path (parse, store, status),
 * no VMM is started. Each file is written the way a git checkout writes it
 * (open, write, close; no fsync, no rename). Status files landing are
 * followed with inotify (IN_MOVED_TO on STATUS_DIR, drained every 100 writes
 * and then continuously); an inotify overflow falls back to listing the dir.
 * Reported: write_ms (first write → last write), after_last_ms (last write →
 * the last of the N status files renamed into place) and total_ms; at the end
 * every status file must show phase Stopped (verified). */
#include "bench.h"

#include <dirent.h>
#include <poll.h>
#include <sys/inotify.h>

typedef struct {
	bool *seen;
	long n, count;
	bool overflow;
} Landed;

static void mark(Landed *l, const char *name)
{
	long i;
	char tail[64];
	if (sscanf(name, "vm-%ld%63s", &i, tail) == 2 && strcmp(tail, ".status.json") == 0 &&
	    i >= 0 && i < l->n && !l->seen[i]) {
		l->seen[i] = true;
		l->count++;
	}
}

static void drain(int ifd, Landed *l)
{
	char buf[65536] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t k;
	while ((k = read(ifd, buf, sizeof(buf))) > 0)
		for (char *q = buf; q < buf + k;) {
			struct inotify_event *ev = (struct inotify_event *)q;
			if (ev->mask & IN_Q_OVERFLOW)
				l->overflow = true;
			else if (ev->len)
				mark(l, ev->name);
			q += sizeof(*ev) + ev->len;
		}
}

static void list_dir(const char *dir, Landed *l)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	if (!d)
		return;
	while ((e = readdir(d)))
		mark(l, e->d_name);
	closedir(d);
}

int main(int argc, char **argv)
{
	char name[64], text[1024], phase[64], st[16384];
	if (argc != 5)
		die("usage: burst SPEC_DIR STATUS_DIR N TIMEOUT_S");
	long n = strtol(argv[3], NULL, 10), timeout_s = strtol(argv[4], NULL, 10);
	if (n <= 0 || n > 1000000 || timeout_s <= 0)
		die("burst: bad N %s or TIMEOUT_S %s", argv[3], argv[4]);
	int dfd = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int sdfd = open(argv[2], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (dfd < 0 || sdfd < 0 || ifd < 0 || inotify_add_watch(ifd, argv[2], IN_MOVED_TO) < 0)
		die("burst: open %s / watch %s: %m", argv[1], argv[2]);
	Landed l = {.seen = calloc((size_t)n, sizeof(bool)), .n = n};
	if (!l.seen)
		die("out of memory");
	uint64_t t0 = now_ns();
	for (long i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "vm-%05ld", i);
		int len = spec_text(text, sizeof(text), name, 256);
		snprintf(name, sizeof(name), "vm-%05ld.yaml", i);
		int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0 || write_all(fd, text, (size_t)len) < 0)
			die("burst: write %s/%s: %m", argv[1], name);
		close(fd);
		if (i % 100 == 99)
			drain(ifd, &l);
	}
	uint64_t tw = now_ns(), tl = 0;
	uint64_t deadline = tw + (uint64_t)timeout_s * 1000000000ull;
	while (!tl && now_ns() < deadline) {
		drain(ifd, &l);
		if (l.overflow) {
			list_dir(argv[2], &l);
			l.overflow = false;
		}
		if (l.count == n) {
			tl = now_ns();
			break;
		}
		struct pollfd p = {.fd = ifd, .events = POLLIN};
		poll(&p, 1, 100);
	}
	long stopped = 0;
	for (long i = 0; tl && i < n; i++) {
		snprintf(name, sizeof(name), "vm-%05ld.status.json", i);
		if (read_small(sdfd, name, st, sizeof(st)) > 0) {
			const char *p = strstr(st, "\"phase\": \"");
			snprintf(phase, sizeof(phase), "%.*s", p ? 7 : 0, p ? p + 10 : "");
			stopped += strcmp(phase, "Stopped") == 0;
		}
	}
	printf("files=%ld\n", n);
	printf("write_ms=%.1f\n", (double)(tw - t0) / 1e6);
	printf("after_last_ms=%.1f\n", tl ? (double)(tl - tw) / 1e6 : -1.0);
	printf("total_ms=%.1f\n", tl ? (double)(tl - t0) / 1e6 : -1.0);
	printf("landed=%ld\n", l.count);
	printf("verified_stopped=%ld\n", stopped);
	return tl && stopped == n ? 0 : 3;
}
