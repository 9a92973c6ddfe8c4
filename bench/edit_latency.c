/* edit_latency — edit → status-updated latency, as an operator sees it.
 *
 *   edit_latency SPEC_DIR STATUS_DIR NAME COUNT generation|memory [SAMPLES]
 *
 * COUNT times: durably rewrite SPEC_DIR/NAME.yaml with a new memoryMiB
 * (write temp, fsync, rename, fsync dir — what a careful editor or git-sync
 * does), and time from the moment that write starts until STATUS_DIR/
 * NAME.status.json is renamed into place (inotify IN_MOVED_TO on STATUS_DIR)
 * with content reflecting this edit:
 *   generation — bangerd: "generation" is one more than before the edit;
 *   memory     — baseline_inotify: "memoryMiB" equals the value just written.
 * A status write that does not yet reflect the edit is ignored, and the
 * wait goes on (up to 10 s, then the edit counts as a timeout).
 *
 * SAMPLES, when given, gets every latency (µs) appended, one per line, so
 * percentiles can be taken over several invocations (run.sh alternates
 * bangerd and baseline in blocks).
 *
 * The edits are sequential with a 5 ms pause, so this is latency, not
 * throughput. memoryMiB runs 512, 514, … so every edit really changes the
 * spec (comments or reordering would not bump bangerd's generation). */
#include "bench.h"

#include <poll.h>
#include <sys/inotify.h>

#define WAIT_MS 10000
#define GAP_US  5000

typedef struct {
	int ifd, sdfd;
	const char *status_name;
	bool by_generation;
} Watch;

static bool reflects(Watch *w, long long want)
{
	char text[16384];
	if (read_small(w->sdfd, w->status_name, text, sizeof(text)) <= 0)
		return false;
	return json_int_field(text, w->by_generation ? "generation" : "memoryMiB") == want;
}

/* Wait for IN_MOVED_TO of the status file with the wanted content. */
static bool wait_status(Watch *w, long long want, uint64_t deadline)
{
	char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
	for (;;) {
		uint64_t now = now_ns();
		if (now >= deadline)
			return false;
		struct pollfd p = { .fd = w->ifd, .events = POLLIN };
		if (poll(&p, 1, (int)((deadline - now) / 1000000 + 1)) <= 0)
			continue;
		ssize_t n = read(w->ifd, buf, sizeof(buf));
		bool hit = false;
		for (char *q = buf; n > 0 && q < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)q;
			if (ev->len && strcmp(ev->name, w->status_name) == 0)
				hit = true;
			q += sizeof(*ev) + ev->len;
		}
		if (hit && reflects(w, want))
			return true;
	}
}

static void drain(int ifd)
{
	char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
	while (read(ifd, buf, sizeof(buf)) > 0)
		;
}

int main(int argc, char **argv)
{
	char file[256], status_name[256], text[1024];
	if (argc != 6 && argc != 7)
		die("usage: edit_latency SPEC_DIR STATUS_DIR NAME COUNT generation|memory [SAMPLES]");
	const char *spec_dir = argv[1], *name = argv[3];
	int count = (int)strtol(argv[4], NULL, 10);
	Watch w = { .status_name = status_name,
		    .by_generation = strcmp(argv[5], "generation") == 0 };
	snprintf(file, sizeof(file), "%s.yaml", name);
	snprintf(status_name, sizeof(status_name), "%s.status.json", name);
	w.ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	w.sdfd = open(argv[2], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (count <= 0 || w.ifd < 0 || w.sdfd < 0 ||
	    inotify_add_watch(w.ifd, argv[2], IN_MOVED_TO) < 0)
		die("edit_latency: bad COUNT or status dir %s: %m", argv[2]);

	long long gen = 0;
	if (w.by_generation) {
		char cur[16384];
		if (read_small(w.sdfd, status_name, cur, sizeof(cur)) <= 0 ||
		    (gen = json_int_field(cur, "generation")) < 1)
			die("%s/%s: no generation to start from", argv[2], status_name);
	}
	uint64_t *lat = calloc((size_t)count, sizeof(uint64_t));
	uint64_t *wr = calloc((size_t)count, sizeof(uint64_t));
	size_t ok = 0, timeouts = 0;
	double sum = 0;
	for (int i = 0; i < count; i++) {
		unsigned mem = 512 + 2 * (unsigned)i;
		int len = spec_text(text, sizeof(text), name, mem);
		usleep(GAP_US);
		drain(w.ifd);
		uint64_t t0 = now_ns();
		int r = durable_replace(spec_dir, file, text, (size_t)len);
		if (r < 0)
			die("write %s/%s: %s", spec_dir, file, strerror(-r));
		uint64_t tw = now_ns();
		long long want = w.by_generation ? gen + 1 : (long long)mem;
		if (!wait_status(&w, want, t0 + (uint64_t)WAIT_MS * 1000000ull)) {
			timeouts++;
			fprintf(stderr, "edit %d: status did not show %s %lld within %d ms\n", i,
				argv[5], want, WAIT_MS);
			if (w.by_generation) /* resynchronise with whatever is there now */
				gen = want;
			continue;
		}
		uint64_t t1 = now_ns();
		gen = want;
		wr[ok] = (tw - t0) / 1000;
		lat[ok++] = (t1 - t0) / 1000;
		sum += (double)(t1 - t0) / 1000.0;
	}
	if (argc == 7) {
		FILE *f = fopen(argv[6], "ae");
		if (!f)
			die("open %s: %m", argv[6]);
		for (size_t i = 0; i < ok; i++)
			fprintf(f, "%llu\n", (unsigned long long)lat[i]);
		fclose(f);
	}
	printf("edits=%d\n", count);
	printf("ok=%zu\n", ok);
	printf("timeouts=%zu\n", timeouts);
	printf("mean_us=%.0f\n", ok ? sum / (double)ok : 0.0);
	printf("write_p50_us=%llu\n", (unsigned long long)percentile(wr, ok, 50));
	printf("p50_us=%llu\n", (unsigned long long)percentile(lat, ok, 50));
	printf("p90_us=%llu\n", (unsigned long long)percentile(lat, ok, 90));
	printf("p99_us=%llu\n", (unsigned long long)percentile(lat, ok, 99));
	printf("max_us=%llu\n", (unsigned long long)percentile(lat, ok, 100));
	free(lat);
	free(wr);
	return timeouts ? 3 : 0;
}
