/* watcher.c — see watcher.h. */
#include "watch/watcher.h"
#include "spec/spec.h"
#include "util/log.h"

#include <dirent.h>
#include <fcntl.h>
#include <inotifytools/inotify.h>
#include <inotifytools/inotifytools.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <sys/select.h>
#include <sys/stat.h>

#define TREE_EVENTS                                                                                \
	(IN_CLOSE_WRITE | IN_ATTRIB | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE |        \
	 IN_DELETE_SELF | IN_MOVE_SELF)
#define PARENT_EVENTS (IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE)
/* Cap on queued events: past it the queue collapses into one resync. */
#define QUEUE_MAX 65536

struct Watcher {
	char *spec_dir;  /* as given (may be a symlink) */
	char *parent;    /* dirname(spec_dir) */
	char *link_name; /* basename(spec_dir) */
	char *root;      /* realpath of spec_dir with trailing '/' */
	int efd;
	pthread_t thread;
	bool thread_started;
	pthread_mutex_t lock;
	WatchEvent *queue;
	size_t n, cap;
	bool overflowed;
	atomic_bool stopping;
};

static void push(Watcher *w, WatchEventKind kind, const char *rel)
{
	uint64_t one = 1;

	pthread_mutex_lock(&w->lock);
	if (w->n >= QUEUE_MAX) {
		w->overflowed = true;
	} else {
		if (w->n == w->cap) {
			w->cap = w->cap ? w->cap * 2 : 64;
			w->queue = xrealloc(w->queue, w->cap * sizeof(WatchEvent));
		}
		w->queue[w->n++] = (WatchEvent){ .kind = kind, .rel = rel ? xstrdup(rel) : NULL };
	}
	pthread_mutex_unlock(&w->lock);
	ssize_t _unused_ k = write(w->efd, &one, sizeof(one));
}

/* Dot-directories (.git above all) are never watched: git churns there and
 * nothing in them is a spec. */
static void collect_excludes(const char *dir, unsigned depth, char ***excl)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	if (!d)
		return;
	while ((de = readdir(d))) {
		if (streq(de->d_name, ".") || streq(de->d_name, "..") || de->d_type != DT_DIR)
			continue;
		char *p = path_join(dir, de->d_name);
		if (de->d_name[0] == '.')
			strv_push(excl, p);
		else {
			if (depth < 16)
				collect_excludes(p, depth + 1, excl);
			free(p);
		}
	}
	closedir(d);
}

/* inotifytools waits with select(), which cannot take an fd above
 * FD_SETSIZE - 1: FD_SET would write past the set. bangerd raises its fd
 * limit, so after many VMs a new inotify fd (re-watch after a git-sync swap)
 * could land there. The library does not expose its fd: find it. */
static bool inotify_fd_selectable(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	bool ok = true;
	if (!d)
		return true; /* no /proc: nothing to check with */
	while ((de = readdir(d))) {
		char path[300], target[64];
		snprintf(path, sizeof(path), "/proc/self/fd/%s", de->d_name);
		ssize_t n = readlink(path, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = 0;
		if (streq(target, "anon_inode:inotify") && atoi(de->d_name) >= FD_SETSIZE)
			ok = false;
	}
	closedir(d);
	return ok;
}

static int setup_watches(Watcher *w)
{
	char real[PATH_MAX];
	_cleanup_strv_free_ char **excl = NULL;

	inotifytools_cleanup();
	if (!inotifytools_initialize())
		return -inotifytools_error();
	if (!inotify_fd_selectable()) {
		inotifytools_cleanup();
		return log_errno(-EMFILE,
				 "inotify fd above %d (select() limit); not watching, "
				 "full resyncs only",
				 FD_SETSIZE - 1);
	}
	if (!realpath(w->spec_dir, real))
		return -errno;
	free(w->root);
	w->root = xasprintf("%s/", streq(real, "/") ? "" : real);
	/* The parent sees the spec dir (or the link to it) being replaced. */
	if (!inotifytools_watch_file(w->parent, PARENT_EVENTS))
		log_warn("watch %s: %s (symlink swaps will be noticed at resync only)", w->parent,
			 strerror(inotifytools_error()));
	collect_excludes(real, 0, &excl);
	if (!inotifytools_watch_recursively_with_exclude(real, TREE_EVENTS, (const char **)excl))
		return -inotifytools_error();
	log_debug("watching %s (%d watches)", real, inotifytools_get_num_watches());
	return 0;
}

/* Path of the event relative to the spec root, or NULL when outside it. */
static char *event_rel(Watcher *w, struct inotify_event *ev)
{
	const char *dir = inotifytools_filename_from_wd(ev->wd);
	size_t rl = strlen(w->root);
	if (!dir)
		return NULL;
	_cleanup_free_ char *full =
		xasprintf("%s%s%s", dir, (dir[0] && dir[strlen(dir) - 1] != '/') ? "/" : "",
			  ev->len ? ev->name : "");
	if (strncmp(full, w->root, rl) != 0)
		return NULL;
	return xstrdup(full + rl);
}

static bool is_parent_event(Watcher *w, struct inotify_event *ev)
{
	const char *dir = inotifytools_filename_from_wd(ev->wd);
	if (!dir)
		return false;
	size_t n = strlen(w->parent);
	return strncmp(dir, w->parent, n) == 0 && (dir[n] == 0 || streq(dir + n, "/"));
}

static bool rel_has_dot_component(const char *rel)
{
	if (rel[0] == '.')
		return true;
	return strstr(rel, "/.") != NULL;
}

static void handle_event(Watcher *w, struct inotify_event *ev)
{
	if (ev->mask & IN_Q_OVERFLOW) {
		log_warn("inotify queue overflowed; full resync");
		push(w, WATCH_RESYNC, NULL);
		return;
	}
	if (is_parent_event(w, ev)) {
		if (ev->len && streq(ev->name, w->link_name)) {
			log_info("spec dir %s was replaced; re-watching", w->spec_dir);
			int r = setup_watches(w);
			if (r < 0)
				log_warn_errno(r, "re-watch %s: %m", w->spec_dir);
			push(w, WATCH_RESYNC, NULL);
		}
		return;
	}
	_cleanup_free_ char *rel = event_rel(w, ev);
	if (!rel)
		return;
	if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF)) {
		if (rel[0] == 0) { /* the root itself */
			int r = setup_watches(w);
			if (r < 0)
				log_warn_errno(r, "re-watch %s: %m", w->spec_dir);
		}
		push(w, WATCH_RESYNC, NULL);
		return;
	}
	if (rel[0] == 0 || rel_has_dot_component(rel))
		return;
	if (ev->mask & IN_ISDIR) {
		if (ev->mask & (IN_CREATE | IN_MOVED_TO)) {
			_cleanup_free_ char *full = xasprintf("%s%s", w->root, rel);
			if (!inotifytools_watch_recursively(full, TREE_EVENTS))
				log_warn("watch %s: %s; changes in it are seen at the next resync",
					 full, strerror(inotifytools_error()));
		}
		if (ev->mask & (IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE))
			push(w, WATCH_RESYNC, NULL);
		return;
	}
	if (!spec_path_is_candidate(rel))
		return;
	if (ev->mask & (IN_DELETE | IN_MOVED_FROM))
		push(w, WATCH_FILE_GONE, rel);
	else if (ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO | IN_ATTRIB))
		push(w, WATCH_FILE_CHANGED, rel);
	/* IN_CREATE of a file: wait for IN_CLOSE_WRITE, the file is half-written. */
}

/* watcher_stop interrupts the thread's blocking select() with this signal
 * (no SA_RESTART), so the thread can leave on its own: no periodic wake-up,
 * and no pthread_cancel unwinding through library code. */
#define WAKE_SIGNAL SIGUSR1

static void wake_handler(int sig)
{
	(void)sig;
}

static void *thread_main(void *arg)
{
	Watcher *w = arg;
	sigset_t wake;
	sigemptyset(&wake);
	sigaddset(&wake, WAKE_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &wake, NULL);
	while (!atomic_load(&w->stopping)) {
		struct inotify_event *ev = inotifytools_next_event(-1);
		if (atomic_load(&w->stopping))
			break;
		if (!ev) {
			int e = inotifytools_error();
			if (e == EINTR || e == 0)
				continue;
			log_warn("inotify: %s; full resync and re-watch", strerror(e));
			if (setup_watches(w) < 0)
				sleep(1);
			push(w, WATCH_RESYNC, NULL);
			continue;
		}
		handle_event(w, ev);
	}
	return NULL;
}

int watcher_start(const char *spec_dir, Watcher **ret)
{
	Watcher *w = xcalloc(1, sizeof(Watcher));
	int r;

	w->spec_dir = xstrdup(spec_dir);
	/* A trailing slash would make dirname/basename name the wrong entry. */
	while (strlen(w->spec_dir) > 1 && endswith(w->spec_dir, "/"))
		w->spec_dir[strlen(w->spec_dir) - 1] = 0;
	_cleanup_free_ char *c1 = xstrdup(w->spec_dir), *c2 = xstrdup(w->spec_dir);
	w->parent = xstrdup(dirname(c1));
	w->link_name = xstrdup(basename(c2));
	pthread_mutex_init(&w->lock, NULL);
	w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->efd < 0) {
		r = -errno;
		watcher_stop(w);
		return log_errno(r, "eventfd: %m");
	}
	r = setup_watches(w);
	if (r < 0) {
		watcher_stop(w);
		return log_errno(r, "watch %s: %m", spec_dir);
	}
	struct sigaction sa = { .sa_handler = wake_handler }; /* no SA_RESTART */
	sigemptyset(&sa.sa_mask);
	sigaction(WAKE_SIGNAL, &sa, NULL);
	/* Only the watcher thread takes the wake signal. */
	sigset_t wake;
	sigemptyset(&wake);
	sigaddset(&wake, WAKE_SIGNAL);
	pthread_sigmask(SIG_BLOCK, &wake, NULL);
	r = -pthread_create(&w->thread, NULL, thread_main, w);
	if (r < 0) {
		watcher_stop(w);
		return log_errno(r, "start watcher thread: %m");
	}
	w->thread_started = true;
	*ret = w;
	return 0;
}

void watcher_stop(Watcher *w)
{
	if (!w)
		return;
	if (w->thread_started) {
		atomic_store(&w->stopping, true);
		/* Retry: the signal may land just before the thread enters select. */
		while (pthread_tryjoin_np(w->thread, NULL) == EBUSY) {
			pthread_kill(w->thread, WAKE_SIGNAL);
			usleep(1000);
		}
	}
	inotifytools_cleanup();
	watch_events_free(w->queue, w->n);
	if (w->efd >= 0)
		close(w->efd);
	pthread_mutex_destroy(&w->lock);
	free(w->spec_dir);
	free(w->parent);
	free(w->link_name);
	free(w->root);
	free(w);
}

int watcher_fd(Watcher *w)
{
	return w->efd;
}

size_t watcher_drain(Watcher *w, WatchEvent **ret)
{
	uint64_t v;
	size_t n;
	ssize_t _unused_ k = read(w->efd, &v, sizeof(v));
	pthread_mutex_lock(&w->lock);
	*ret = w->queue;
	n = w->n;
	if (w->overflowed) {
		*ret = xrealloc(*ret, (n + 1) * sizeof(WatchEvent));
		(*ret)[n++] = (WatchEvent){ .kind = WATCH_RESYNC };
		w->overflowed = false;
	}
	w->queue = NULL;
	w->n = w->cap = 0;
	pthread_mutex_unlock(&w->lock);
	return n;
}

void watch_events_free(WatchEvent *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].rel);
	free(v);
}
