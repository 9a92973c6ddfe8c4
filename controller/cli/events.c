/* events.c — `banger events [-w] [NAME]`, and the event list `describe`
 * shows: read from the journal bangerd appends to (status/events.h). -w
 * follows it with inotify on the status dir, across the journal's rotation. */
#include "status/events.h"
#include "cli/cli.h"
#include "cli/common.h"
#include "util/fileio.h"

#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/inotify.h>
#include <sys/stat.h>

static void events_usage(FILE *f)
{
	fprintf(f, "Usage: banger events [-w|--watch] [NAME]\n"
		   "\n"
		   "List what happened to VMs (all, or NAME), oldest first, from the journal\n"
		   "bangerd keeps in <status-dir>/" EVENTS_FILE ". With -w, keep printing new\n"
		   "events until interrupted.\n"
		   "Exit status: 0 ok, 1 error, 2 usage.\n");
}

/* Guest console text may reach a message: never let it drive the terminal. */
static void print_sanitized(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p < 0x20 || *p == 0x7f)
			printf("\\x%02x", *p);
		else
			putchar(*p);
	}
}

static void print_event(const VmEvent *e)
{
	char age[16];
	cli_format_age(e->time_ms, age, sizeof(age));
	printf("%-6s %-24s %-13s ", age, e->vm, e->type);
	print_sanitized(e->message);
	putchar('\n');
}

static void print_header(void)
{
	printf("%-6s %-24s %-13s %s\n", "AGE", "VM", "TYPE", "MESSAGE");
}

void cli_print_events(const char *status_dir, const char *name, size_t last_n)
{
	VmEvent *v = NULL;
	size_t n = 0;
	if (event_log_read(status_dir, name, &v, &n) < 0 || n == 0) {
		printf("Events:              <none>\n");
		vm_events_free(v, n);
		return;
	}
	printf("Events:\n  ");
	print_header();
	for (size_t i = n > last_n ? n - last_n : 0; i < n; i++) {
		printf("  ");
		print_event(&v[i]);
	}
	vm_events_free(v, n);
}

/* Follow state: which journal inode we read up to where. */
typedef struct {
	const char *dir, *name;
	ino_t ino;
	off_t off;
} Follow;

/* Print whole lines of path from *off on; advance *off past them. */
static void print_from(const char *path, const char *name, off_t *off)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return;
	struct stat st;
	if (fstat(fd, &st) < 0 || st.st_size <= *off)
		return;
	size_t len = (size_t)(st.st_size - *off);
	_cleanup_free_ char *buf = xmalloc(len + 1);
	ssize_t got = pread(fd, buf, len, *off);
	if (got <= 0)
		return;
	buf[got] = 0;
	char *end = strrchr(buf, '\n'); /* a torn last line waits for its end */
	if (!end)
		return;
	*(end + 1) = 0;
	*off += (end + 1) - buf;
	char *save = NULL;
	for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		VmEvent e;
		if (vm_event_parse(line, &e) < 0)
			continue;
		if (!name || streq(name, e.vm))
			print_event(&e);
		free(e.vm);
		free(e.type);
		free(e.message);
	}
	fflush(stdout);
}

static void follow_step(Follow *f)
{
	_cleanup_free_ char *cur = path_join(f->dir, EVENTS_FILE);
	_cleanup_free_ char *old = path_join(f->dir, EVENTS_FILE_OLD);
	struct stat st;
	if (stat(cur, &st) < 0)
		return;
	if (st.st_ino != f->ino) {
		/* Rotated: finish the old journal (now .1), then the new one. */
		struct stat so;
		if (f->ino && stat(old, &so) == 0 && so.st_ino == f->ino)
			print_from(old, f->name, &f->off);
		f->ino = st.st_ino;
		f->off = 0;
	}
	print_from(cur, f->name, &f->off);
}

static volatile sig_atomic_t interrupted;
static void on_sigint(int sig)
{
	interrupted = 1;
}

static int watch_events(const char *dir, const char *name)
{
	_cleanup_close_ int ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (ifd < 0 || inotify_add_watch(ifd, dir, IN_MODIFY | IN_CREATE | IN_MOVED_TO) < 0) {
		fprintf(stderr, "banger events: watch %s: %s\n", dir, strerror(errno));
		return 1;
	}
	_cleanup_free_ char *cur = path_join(dir, EVENTS_FILE);
	struct stat st;
	Follow f = { .dir = dir, .name = name };
	if (stat(cur, &st) == 0) {
		f.ino = st.st_ino;
		f.off = st.st_size; /* what is there was printed already */
	}
	struct sigaction sa = { .sa_handler = on_sigint };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	while (!interrupted) {
		struct pollfd p = { .fd = ifd, .events = POLLIN };
		int r = poll(&p, 1, -1);
		if (r < 0 && errno != EINTR)
			return 1;
		char buf[4096];
		while (read(ifd, buf, sizeof(buf)) > 0)
			;
		if (r > 0)
			follow_step(&f);
	}
	return 0;
}

int cli_events(const CliDirs *dirs, int argc, char **argv)
{
	static const struct option opts[] = { { "watch", no_argument, NULL, 'w' },
					      { "help", no_argument, NULL, 'h' },
					      {} };
	bool watch = false;
	int c;
	while ((c = getopt_long(argc, argv, "wh", opts, NULL)) != -1) {
		switch (c) {
		case 'w': watch = true; break;
		case 'h': events_usage(stdout); return 0;
		default: events_usage(stderr); return 2;
		}
	}
	if (argc - optind > 1) {
		events_usage(stderr);
		return 2;
	}
	const char *name = optind < argc ? argv[optind] : NULL;
	if (name && !dns_label_valid(name)) {
		fprintf(stderr, "banger events: invalid VM name '%s' (a DNS-1123 label)\n", name);
		return 1;
	}
	VmEvent *v = NULL;
	size_t n = 0;
	event_log_read(dirs->status_dir, name, &v, &n);
	print_header();
	for (size_t i = 0; i < n; i++)
		print_event(&v[i]);
	vm_events_free(v, n);
	fflush(stdout);
	return watch ? watch_events(dirs->status_dir, name) : 0;
}
