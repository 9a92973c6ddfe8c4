/* baseline_inotify SPEC_DIR STATUS_DIR — the floor under edit → status
 * latency: a bare program that reacts to a spec file landing in SPEC_DIR
 * (IN_CLOSE_WRITE / IN_MOVED_TO on *.yaml) by reading it and durably
 * replacing STATUS_DIR/<stem>.status.json (write temp, fsync, rename, fsync
 * dir). The status carries the spec's memoryMiB so edit_latency --expect
 * memory can check it reflects the edit. Prints "ready" once watching; runs
 * until killed. */
#include "bench.h"

#include <sys/inotify.h>

static void react(int dirfd, const char *status_dir, const char *file)
{
	char spec[65536], name[256], status[1024], out[512];
	ssize_t n = read_small(dirfd, file, spec, sizeof(spec));
	if (n < 0)
		return; /* gone again: nothing to report */
	const char *m = strstr(spec, "memoryMiB:");
	long mem = m ? strtol(m + strlen("memoryMiB:"), NULL, 10) : -1;
	snprintf(name, sizeof(name), "%.*s", (int)(strlen(file) - 5), file);
	int len = snprintf(status, sizeof(status),
			   "{\n  \"kind\": \"VMStatus\",\n  \"name\": \"%s\",\n"
			   "  \"memoryMiB\": %ld,\n  \"phase\": \"Stopped\"\n}\n",
			   name, mem);
	snprintf(out, sizeof(out), "%s.status.json", name);
	int r = durable_replace(status_dir, out, status, (size_t)len);
	if (r < 0)
		fprintf(stderr, "baseline_inotify: write %s/%s: %s\n", status_dir, out,
			strerror(-r));
}

int main(int argc, char **argv)
{
	char buf[65536] __attribute__((aligned(__alignof__(struct inotify_event))));
	if (argc != 3)
		die("usage: baseline_inotify SPEC_DIR STATUS_DIR");
	int dfd = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int ifd = inotify_init1(IN_CLOEXEC);
	if (dfd < 0 || ifd < 0 || inotify_add_watch(ifd, argv[1], IN_CLOSE_WRITE | IN_MOVED_TO) < 0)
		die("watch %s: %m", argv[1]);
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		ssize_t n = read(ifd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die("read inotify: %m");
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)p;
			if (ev->len && ev->name[0] != '.' && ends_with(ev->name, ".yaml"))
				react(dfd, argv[2], ev->name);
			p += sizeof(*ev) + ev->len;
		}
	}
}
