/* console.c — see console.h. */
#include "daemon/daemon-internal.h"
#include "util/log.h"
#include "util/logcap.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

/* Serial bytes handled per readiness event, so one flooding guest cannot
 * starve the loop (epoll is level-triggered: the rest comes next round). */
#define SERIAL_READ_BUDGET (256 * 1024)
/* console_drain() reads at most this much (a flood never ends). */
#define SERIAL_DRAIN_MAX (4 * 1024 * 1024)
#define IO_CHUNK         (16 * 1024)

typedef struct Console Console;
typedef struct Client Client;

typedef enum { EP_INOTIFY, EP_SERIAL, EP_LISTEN, EP_CLIENT } EpKind;

/* What an epoll event of ours points at. src comes first: the daemon's loop
 * reads LoopSource.kind, then hands us src.ptr (this Ep). */
typedef struct {
	LoopSource src;
	EpKind kind;
	Console *con;
	Client *cl;
} Ep;

struct Client {
	int fd;
	Ep ep;
	char *buf; /* pending output, at most CONSOLE_CLIENT_BUF */
	size_t len;
	bool want_out;
	uint64_t dropped;
};

struct Console {
	ConsoleHub *hub;
	char *name, *serial_path, *listen_path, *vmm_log, *console_log;
	int serial_fd, listen_fd;
	int wd_vmm, wd_console; /* inotify watches, -1: none */
	Ep serial_ep, listen_ep;
	LogSegment log; /* only with a serial socket: we write console.log */
	bool log_error_reported;
	bool connect_warned; /* one warning per failing serial, then debug */
	Client *clients[CONSOLE_MAX_CLIENTS];
	bool dead; /* freed at the end of the event batch (console_hub_collect) */
};

struct ConsoleHub {
	int epfd, inotify_fd;
	uint64_t cap;
	Ep inotify_ep;
	Hashmap *by_name; /* name → Console */
	Hashmap *by_wd;   /* "%d" wd → Console */
	/* Freed, but an event of the current epoll batch may still point at
	 * them: their memory goes at the end of the batch. */
	Client **dead_clients;
	size_t n_dead_clients;
	Console **dead_consoles;
	size_t n_dead_consoles;
};

static void ep_init(Ep *ep, EpKind kind, Console *con, Client *cl)
{
	*ep = (Ep){ .src = { .kind = SRC_CONSOLE, .ptr = ep }, .kind = kind, .con = con, .cl = cl };
}

static void ep_add(ConsoleHub *h, int fd, uint32_t events, Ep *ep)
{
	struct epoll_event e = { .events = events, .data.ptr = &ep->src };
	if (epoll_ctl(h->epfd, EPOLL_CTL_ADD, fd, &e) < 0)
		log_warn_errno(-errno, "console: epoll add fd %d: %m", fd);
}

static void close_fd(ConsoleHub *h, int *fd)
{
	if (*fd < 0)
		return;
	epoll_ctl(h->epfd, EPOLL_CTL_DEL, *fd, NULL);
	close(*fd);
	*fd = -1;
}

int console_hub_new(int epfd, uint64_t cap, ConsoleHub **ret)
{
	ConsoleHub *h = xcalloc(1, sizeof(*h));
	h->epfd = epfd;
	h->cap = MAX(cap, LOG_CAP_MIN);
	h->by_name = hashmap_new();
	h->by_wd = hashmap_new();
	h->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (h->inotify_fd < 0) {
		int r = log_errno(-errno, "console: inotify_init1: %m");
		console_hub_free(h);
		return r;
	}
	ep_init(&h->inotify_ep, EP_INOTIFY, NULL, NULL);
	ep_add(h, h->inotify_fd, EPOLLIN, &h->inotify_ep);
	*ret = h;
	return 0;
}

/* ---- clients ------------------------------------------------------------ */

static void client_free(Console *c, size_t i)
{
	Client *cl = c->clients[i];
	if (!cl)
		return;
	if (cl->dropped)
		log_info(
			"%s: console client left; %llu output bytes were dropped for it (slow reader)",
			c->name, (unsigned long long)cl->dropped);
	close_fd(c->hub, &cl->fd);
	ConsoleHub *h = c->hub;
	h->dead_clients = xrealloc(h->dead_clients, (h->n_dead_clients + 1) * sizeof(Client *));
	h->dead_clients[h->n_dead_clients++] = cl;
	c->clients[i] = NULL;
}

static size_t client_index(Console *c, Client *cl)
{
	for (size_t i = 0; i < CONSOLE_MAX_CLIENTS; i++)
		if (c->clients[i] == cl)
			return i;
	return CONSOLE_MAX_CLIENTS;
}

static void client_want_out(Console *c, Client *cl, bool want)
{
	if (cl->want_out == want)
		return;
	struct epoll_event e = { .events = EPOLLIN | (want ? EPOLLOUT : 0),
				 .data.ptr = &cl->ep.src };
	epoll_ctl(c->hub->epfd, EPOLL_CTL_MOD, cl->fd, &e);
	cl->want_out = want;
}

/* Write what is buffered; false when the client is gone. */
static bool client_flush(Console *c, Client *cl)
{
	while (cl->len > 0) {
		ssize_t n = send(cl->fd, cl->buf, cl->len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			break;
		if (n <= 0)
			return false;
		memmove(cl->buf, cl->buf + n, cl->len - (size_t)n);
		cl->len -= (size_t)n;
	}
	client_want_out(c, cl, cl->len > 0);
	return true;
}

/* Queue output for one client; never blocks, never grows past the bound. */
static bool client_send(Console *c, Client *cl, const char *data, size_t n)
{
	size_t room = CONSOLE_CLIENT_BUF - cl->len, k = MIN(room, n);
	memcpy(cl->buf + cl->len, data, k);
	cl->len += k;
	cl->dropped += n - k;
	return client_flush(c, cl);
}

/* Keyboard input for the guest. The serial socket is non-blocking: what it
 * does not take now is dropped (typing never outruns it; a huge paste may). */
static void client_read(Console *c, Client *cl)
{
	char buf[IO_CHUNK];
	ssize_t n = recv(cl->fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		client_free(c, client_index(c, cl));
		return;
	}
	if (c->serial_fd < 0)
		return;
	ssize_t w = send(c->serial_fd, buf, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (w < n)
		log_debug("%s: console input: %zd of %zd bytes dropped (serial busy)", c->name,
			  n - MAX(w, (ssize_t)0), n);
}

static bool peer_allowed(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return false;
	return cred.uid == 0 || cred.uid == geteuid();
}

static void refuse(int fd, const char *why)
{
	ssize_t _unused_ n = send(fd, why, strlen(why), MSG_NOSIGNAL | MSG_DONTWAIT);
	close(fd);
}

static void accept_client(Console *c)
{
	int fd = accept4(c->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	if (!peer_allowed(fd)) {
		log_warn("%s: console connection refused: peer is not root", c->name);
		refuse(fd, "banger: console: permission denied (root only)\n");
		return;
	}
	size_t i = client_index(c, NULL);
	if (i == CONSOLE_MAX_CLIENTS) {
		refuse(fd, "banger: console: too many clients attached\n");
		return;
	}
	Client *cl = xcalloc(1, sizeof(*cl));
	cl->fd = fd;
	cl->buf = xmalloc(CONSOLE_CLIENT_BUF);
	ep_init(&cl->ep, EP_CLIENT, c, cl);
	ep_add(c->hub, fd, EPOLLIN, &cl->ep);
	c->clients[i] = cl;
	log_info("%s: console client attached", c->name);
}

/* ---- serial --------------------------------------------------------------- */

static void deliver(Console *c, const char *data, size_t n)
{
	int r = log_segment_append(&c->log, data, n);
	if (r < 0 && !c->log_error_reported) {
		log_warn_errno(r, "%s: write %s: %m (console output dropped)", c->name,
			       c->console_log);
		c->log_error_reported = true;
	} else if (r >= 0)
		c->log_error_reported = false;
	for (size_t i = 0; i < CONSOLE_MAX_CLIENTS; i++)
		if (c->clients[i] && !client_send(c, c->clients[i], data, n))
			client_free(c, i);
}

static void serial_close(Console *c)
{
	if (c->serial_fd >= 0)
		log_debug("%s: serial socket closed", c->name);
	close_fd(c->hub, &c->serial_fd);
}

/* Read up to budget bytes; closes the socket at EOF or error. */
static void serial_read(Console *c, size_t budget)
{
	char buf[IO_CHUNK];
	size_t total = 0;
	while (c->serial_fd >= 0 && total < budget) {
		ssize_t n = recv(c->serial_fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			serial_close(c);
			return;
		}
		deliver(c, buf, (size_t)n);
		total += (size_t)n;
	}
}

static int serial_connect(Console *c)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(c->serial_path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, c->serial_path);
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* A listening unix socket accepts at once (or refuses): no EINPROGRESS. */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	/* A new connection is a new VMM or a new bangerd: the boot may have
	 * truncated console.log, so reopen it and take its size afresh. */
	log_segment_reset(&c->log);
	c->serial_fd = TAKE_FD(fd);
	ep_add(c->hub, c->serial_fd, EPOLLIN | EPOLLRDHUP, &c->serial_ep);
	log_debug("%s: connected to serial %s", c->name, c->serial_path);
	return 0;
}

static int listen_open(Console *c)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(c->listen_path) >= sizeof(sa.sun_path))
		return log_errno(-ENAMETOOLONG, "%s: console socket path %s is too long", c->name,
				 c->listen_path);
	strcpy(sa.sun_path, c->listen_path);
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return log_errno(-errno, "%s: console socket: %m", c->name);
	if (unlink(c->listen_path) < 0 && errno != ENOENT)
		return log_errno(-errno, "%s: remove stale %s: %m", c->name, c->listen_path);
	/* The mode is set before listen(): nobody can connect in between. */
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(c->listen_path, 0600) < 0 ||
	    listen(fd, 4) < 0)
		return log_errno(-errno, "%s: console socket %s: %m", c->name, c->listen_path);
	c->listen_fd = TAKE_FD(fd);
	ep_add(c->hub, c->listen_fd, EPOLLIN, &c->listen_ep);
	return 0;
}

/* ---- VMM-written logs ------------------------------------------------------ */

static void trim(Console *c, const char *path)
{
	int r = log_trim_tail(path, c->hub->cap);
	if (r > 0)
		log_debug("%s: %s passed %llu bytes: kept its tail", c->name, path,
			  (unsigned long long)c->hub->cap);
	else if (r < 0)
		log_warn_errno(r, "%s: trim %s: %m", c->name, path);
}

static void watch_file(Console *c, const char *path, int *wd)
{
	if (*wd >= 0)
		return;
	int w = inotify_add_watch(c->hub->inotify_fd, path, IN_MODIFY | IN_DONT_FOLLOW);
	if (w < 0)
		return; /* not created yet: the next attach tries again */
	*wd = w;
	char key[16];
	snprintf(key, sizeof(key), "%d", w);
	hashmap_put(c->hub->by_wd, key, c);
	trim(c, path);
}

static void unwatch(Console *c, int *wd, bool rm)
{
	if (*wd < 0)
		return;
	char key[16];
	snprintf(key, sizeof(key), "%d", *wd);
	if (hashmap_get(c->hub->by_wd, key) == c)
		hashmap_remove(c->hub->by_wd, key);
	if (rm)
		inotify_rm_watch(c->hub->inotify_fd, *wd);
	*wd = -1;
}

static void on_inotify(ConsoleHub *h)
{
	char buf[16 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));
	for (;;) {
		ssize_t n = read(h->inotify_fd, buf, sizeof(buf));
		if (n <= 0)
			return;
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)p;
			p += sizeof(*ev) + ev->len;
			char key[16];
			snprintf(key, sizeof(key), "%d", ev->wd);
			Console *c = hashmap_get(h->by_wd, key);
			if (!c)
				continue;
			bool is_vmm = ev->wd == c->wd_vmm;
			if (ev->mask & IN_IGNORED) /* file or dir removed */
				unwatch(c, is_vmm ? &c->wd_vmm : &c->wd_console, false);
			else
				trim(c, is_vmm ? c->vmm_log : c->console_log);
		}
	}
}

/* ---- consoles --------------------------------------------------------------- */

static void console_free(Console *c, bool remove_socket)
{
	if (!c)
		return;
	for (size_t i = 0; i < CONSOLE_MAX_CLIENTS; i++)
		client_free(c, i);
	serial_close(c);
	if (c->listen_fd >= 0) {
		close_fd(c->hub, &c->listen_fd);
		if (remove_socket)
			unlink(c->listen_path);
	}
	unwatch(c, &c->wd_vmm, true);
	unwatch(c, &c->wd_console, true);
	log_segment_done(&c->log);
	c->dead = true;
	ConsoleHub *h = c->hub;
	h->dead_consoles = xrealloc(h->dead_consoles, (h->n_dead_consoles + 1) * sizeof(Console *));
	h->dead_consoles[h->n_dead_consoles++] = c;
}

void console_hub_collect(ConsoleHub *h)
{
	if (!h)
		return;
	for (size_t i = 0; i < h->n_dead_clients; i++) {
		free(h->dead_clients[i]->buf);
		free(h->dead_clients[i]);
	}
	for (size_t i = 0; i < h->n_dead_consoles; i++) {
		Console *c = h->dead_consoles[i];
		free(c->name);
		free(c->serial_path);
		free(c->listen_path);
		free(c->vmm_log);
		free(c->console_log);
		free(c);
	}
	free(h->dead_clients);
	free(h->dead_consoles);
	h->dead_clients = NULL;
	h->dead_consoles = NULL;
	h->n_dead_clients = h->n_dead_consoles = 0;
}

static Console *console_get(ConsoleHub *h, const ConsoleTarget *t)
{
	Console *c = hashmap_get(h->by_name, t->name);
	if (c && streq_ptr(c->serial_path, t->serial_sock) && streq(c->console_log, t->console_log))
		return c;
	if (c) /* the VM moved to another driver or paths: start over */
		console_free(hashmap_remove(h->by_name, t->name), true);
	c = xcalloc(1, sizeof(*c));
	c->hub = h;
	c->name = xstrdup(t->name);
	c->serial_path = t->serial_sock ? xstrdup(t->serial_sock) : NULL;
	c->listen_path = t->serial_sock && t->listen_sock ? xstrdup(t->listen_sock) : NULL;
	c->vmm_log = xstrdup(t->vmm_log);
	c->console_log = xstrdup(t->console_log);
	c->serial_fd = c->listen_fd = c->wd_vmm = c->wd_console = -1;
	ep_init(&c->serial_ep, EP_SERIAL, c, NULL);
	ep_init(&c->listen_ep, EP_LISTEN, c, NULL);
	log_segment_init(&c->log, t->console_log, h->cap);
	hashmap_put(h->by_name, t->name, c);
	return c;
}

int console_attach(ConsoleHub *h, const ConsoleTarget *t)
{
	if (!h)
		return 0;
	Console *c = console_get(h, t);
	watch_file(c, c->vmm_log, &c->wd_vmm);
	if (!c->serial_path) {
		watch_file(c, c->console_log, &c->wd_console);
		return 0;
	}
	if (c->listen_path && c->listen_fd < 0)
		listen_open(c); /* logged; the console log works without it */
	if (c->serial_fd >= 0)
		return 0;
	int r = serial_connect(c);
	if (r < 0 && !c->connect_warned)
		log_warn_errno(r,
			       "%s: connect to serial %s: %m (console output is not logged; "
			       "a VMM started by an older bangerd has no serial socket)",
			       c->name, c->serial_path);
	else if (r < 0)
		log_debug_errno(r, "%s: connect to serial %s: %m", c->name, c->serial_path);
	c->connect_warned = r < 0;
	return r;
}

void console_drain(ConsoleHub *h, const char *name)
{
	Console *c = h ? hashmap_get(h->by_name, name) : NULL;
	if (c)
		serial_read(c, SERIAL_DRAIN_MAX);
}

void console_forget(ConsoleHub *h, const char *name)
{
	if (h)
		console_free(hashmap_remove(h->by_name, name), true);
}

void console_on_event(ConsoleHub *h, void *ptr, uint32_t events)
{
	Ep *ep = ptr;
	/* An event that came in the same batch as the close of its fd. */
	if ((ep->con && ep->con->dead) || (ep->kind == EP_CLIENT && ep->cl->fd < 0) ||
	    (ep->kind == EP_SERIAL && ep->con->serial_fd < 0) ||
	    (ep->kind == EP_LISTEN && ep->con->listen_fd < 0))
		return;
	switch (ep->kind) {
	case EP_INOTIFY: on_inotify(h); break;
	case EP_SERIAL:
		serial_read(ep->con, SERIAL_READ_BUDGET);
		/* Hang-up with nothing left to read: the VMM is gone. */
		if ((events & (EPOLLHUP | EPOLLERR)) && !(events & EPOLLIN))
			serial_close(ep->con);
		break;
	case EP_LISTEN: accept_client(ep->con); break;
	case EP_CLIENT:
		if (events & EPOLLOUT && !client_flush(ep->con, ep->cl)) {
			client_free(ep->con, client_index(ep->con, ep->cl));
			break;
		}
		if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
			client_read(ep->con, ep->cl);
		break;
	}
}

void console_hub_free(ConsoleHub *h)
{
	if (!h)
		return;
	size_t st = 0;
	void *v;
	while (hashmap_iter(h->by_name, &st, NULL, &v))
		console_free(v, true);
	hashmap_free(h->by_name);
	hashmap_free(h->by_wd);
	if (h->inotify_fd >= 0)
		close_fd(h, &h->inotify_fd);
	console_hub_collect(h);
	free(h);
}
