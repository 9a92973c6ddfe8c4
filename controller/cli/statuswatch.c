/* statuswatch.c — see statuswatch.h. */
#include "cli/statuswatch.h"
#include "status/status.h"

#include <poll.h>
#include <stdlib.h>
#include <sys/inotify.h>
#include <unistd.h>

struct StatusWatch {
	int fd;
};

int status_watch_open(const char *status_dir, StatusWatch **ret)
{
	int fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (fd < 0)
		return -errno;
	if (inotify_add_watch(fd, status_dir,
			      IN_MOVED_TO | IN_MOVED_FROM | IN_CLOSE_WRITE | IN_DELETE |
				      IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	StatusWatch *w = xcalloc(1, sizeof(StatusWatch));
	w->fd = fd;
	*ret = w;
	return 0;
}

void status_watch_free(StatusWatch *w)
{
	if (!w)
		return;
	close(w->fd);
	free(w);
}

/* Drain the queue into names; -ENOENT when the directory went. */
static int drain(StatusWatch *w, char ***names, bool *all)
{
	char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
	for (;;) {
		ssize_t n = read(w->fd, buf, sizeof(buf));
		if (n < 0)
			return errno == EAGAIN ? 0 : -errno;
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)p;
			p += sizeof(*ev) + ev->len;
			if (ev->mask & IN_Q_OVERFLOW)
				*all = true;
			if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED))
				return -ENOENT;
			char *name = ev->len ? vm_status_name_of_file(ev->name) : NULL;
			if (name && !strv_contains(*names, name))
				strv_push(names, name);
			else
				free(name);
		}
	}
}

int status_watch_next(StatusWatch *w, int timeout_ms, char ***ret_names, bool *ret_all)
{
	struct pollfd pfd = { .fd = w->fd, .events = POLLIN };
	int k = poll(&pfd, 1, timeout_ms);
	if (k < 0)
		return -errno;
	if (k == 0)
		return 0;
	char **names = NULL;
	bool all = false;
	int r = drain(w, &names, &all);
	if (r < 0) {
		strv_free(names);
		return r;
	}
	if (names)
		strv_sort(names);
	*ret_names = names;
	*ret_all = all;
	return 1;
}
