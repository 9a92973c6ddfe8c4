/* burst — a GitOps-style burst of spec files into the spec dir of a running,
 * synced bangerd, timed until every status has landed.
 *
 *   burst SPEC_DIR STATUS_DIR N
 *
 * Writes SPEC_DIR/vm-00000.yaml … vm-<N-1>.yaml (state Stopped; plain
 * open/write/close, as a checkout does, no fsync) as fast as it can, while
 * following STATUS_DIR with inotify (IN_MOVED_TO: bangerd renames its
 * status files into place). The clock for "last status" stops when the last
 * of the N names has been renamed in; then every status file is checked for
 * phase Stopped and generation >= 1 (re-checked for up to TIMEOUT_MS if a
 * status that landed early said something else). An inotify overflow falls
 * back to checking the files every 20 ms.
 *
 * Prints write_ms (first write → last close), last_ms (last close → all
 * status), total_ms (first write → all status), verified and status_files. */
#include "bench.h"

#include <dirent.h>
#include <poll.h>
#include <sys/inotify.h>

#define TIMEOUT_MS    300000
#define STATUS_SUFFIX ".status.json"

typedef struct {
	long n, seen;
	bool *landed;
	bool overflow;
	int ifd;
} Follow;

/* vm-NNNNN.status.json → NNNNN, or -1. */
static long index_of(const char *name, long n)
{
	char *end;
	if (strncmp(name, "vm-", 3) != 0 || !ends_with(name, STATUS_SUFFIX))
		return -1;
	long i = strtol(name + 3, &end, 10);
	return strcmp(end, STATUS_SUFFIX) == 0 && i >= 0 && i < n ? i : -1;
}

static void drain(Follow *f)
{
	char buf[65536] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t k;
	while ((k = read(f->ifd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + k;) {
			struct inotify_event *ev = (struct inotify_event *)p;
			if (ev->mask & IN_Q_OVERFLOW)
				f->overflow = true;
			long i = ev->len ? index_of(ev->name, f->n) : -1;
			if (i >= 0 && !f->landed[i]) {
				f->landed[i] = true;
				f->seen++;
			}
			p += sizeof(*ev) + ev->len;
		}
	}
}

int main(int argc, char **argv)
{
	char name[64], file[128], text[1024];
	if (argc != 4)
		die("usage: burst SPEC_DIR STATUS_DIR N");
	Follow f = { .n = strtol(argv[3], NULL, 10) };
	int dfd = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || f.n <= 0 || f.n > 1000000)
		die("burst: bad dir %s or count %s: %m", argv[1], argv[3]);
	f.landed = calloc((size_t)f.n, sizeof(bool));
	f.ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (!f.landed || f.ifd < 0 || inotify_add_watch(f.ifd, argv[2], IN_MOVED_TO) < 0)
		die("burst: watch %s: %m", argv[2]);

	uint64_t t0 = now_ns();
	for (long i = 0; i < f.n; i++) {
		snprintf(name, sizeof(name), "vm-%05ld", i);
		snprintf(file, sizeof(file), "%s.yaml", name);
		int len = spec_text(text, sizeof(text), name, 256);
		int fd = openat(dfd, file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0 || write_all(fd, text, (size_t)len) < 0)
			die("burst: write %s/%s: %m", argv[1], file);
		close(fd);
		if (i % 64 == 0)
			drain(&f); /* keep the inotify queue short while writing */
	}
	uint64_t t_last = now_ns();
	close(dfd);

	long good = 0, total = 0;
	uint64_t t_done = 0;
	for (;;) {
		drain(&f);
		if (!f.overflow && f.seen == f.n && !t_done)
			t_done = now_ns();
		if (t_done || f.overflow) {
			good = verify_stopped_statuses(argv[2], f.n, &total);
			if (good == f.n) {
				if (!t_done)
					t_done = now_ns();
				break;
			}
			t_done = 0;
		}
		if ((now_ns() - t_last) / 1000000 > TIMEOUT_MS)
			break;
		struct pollfd p = { .fd = f.ifd, .events = POLLIN };
		poll(&p, 1, f.overflow || f.seen == f.n ? 20 : 200);
	}
	printf("write_ms=%.1f\n", (double)(t_last - t0) / 1e6);
	if (t_done) {
		printf("last_ms=%.1f\n", (double)(t_done - t_last) / 1e6);
		printf("total_ms=%.1f\n", (double)(t_done - t0) / 1e6);
	}
	printf("inotify_overflow=%d\n", f.overflow);
	printf("verified=%ld\n", good);
	printf("status_files=%ld\n", total);
	return t_done && good == f.n && total == f.n ? 0 : 3;
}
