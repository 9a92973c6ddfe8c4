/* qmp.c — see qmp.h. */
#include "vmm/qmp.h"

#include "util/log.h"
#include "util/timeutil.h"

#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>

struct QmpClient {
	int fd;
	unsigned timeout_ms;
	char *buf; /* bytes read but not yet consumed as lines */
	size_t len, cap;
	uint64_t next_id;
	char *last_error;
	unsigned events;
};

/* Milliseconds left until deadline (0 when passed). */
static int remaining_ms(uint64_t deadline)
{
	uint64_t now = time_now_ms();
	return now >= deadline ? 0 : (int)MIN(deadline - now, (uint64_t)INT32_MAX);
}

static int wait_fd(int fd, short events, uint64_t deadline)
{
	struct pollfd p = { .fd = fd, .events = events };
	int r;
	do
		r = poll(&p, 1, remaining_ms(deadline));
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	return r == 0 ? -ETIMEDOUT : 0;
}

static int send_all(QmpClient *c, const char *data, size_t n, uint64_t deadline)
{
	while (n > 0) {
		ssize_t w = send(c->fd, data, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN) {
			int r = wait_fd(c->fd, POLLOUT, deadline);
			if (r < 0)
				return r;
			continue;
		}
		if (w < 0)
			return -errno;
		data += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Take the first complete line out of the buffer (without "\r\n"). */
static char *take_line(QmpClient *c)
{
	char *nl = c->len ? memchr(c->buf, '\n', c->len) : NULL;
	if (!nl)
		return NULL;
	size_t n = (size_t)(nl - c->buf);
	char *line = xstrndup(c->buf, n > 0 && c->buf[n - 1] == '\r' ? n - 1 : n);
	c->len -= n + 1;
	memmove(c->buf, nl + 1, c->len);
	return line;
}

static int read_line(QmpClient *c, uint64_t deadline, char **ret)
{
	for (;;) {
		char *line = take_line(c);
		if (line) {
			*ret = line;
			return 0;
		}
		if (c->len >= QMP_LINE_MAX)
			return -EMSGSIZE;
		if (c->cap - c->len < 4096) {
			c->cap = MAX(c->cap * 2, (size_t)8192);
			c->buf = xrealloc(c->buf, c->cap);
		}
		ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, MSG_DONTWAIT);
		if (n == 0)
			return -ECONNRESET;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			int r = wait_fd(c->fd, POLLIN, deadline);
			if (r < 0)
				return r;
			continue;
		}
		if (n < 0)
			return -errno;
		c->len += (size_t)n;
	}
}

/* Read the next non-empty line as a JSON object. */
static int read_object(QmpClient *c, uint64_t deadline, json_object **ret)
{
	for (;;) {
		_cleanup_free_ char *line = NULL;
		int r = read_line(c, deadline, &line);
		if (r < 0)
			return r;
		if (line[strspn(line, " \t")] == 0)
			continue;
		json_object *o = json_tokener_parse(line);
		if (!o || !json_object_is_type(o, json_type_object)) {
			json_object_put(o);
			return log_debug_errno(-EPROTO, "qmp: not a JSON object: %.200s", line);
		}
		*ret = o;
		return 0;
	}
}

int qmp_client_from_fd(int fd, unsigned timeout_ms, QmpClient **ret)
{
	QmpClient *c = xcalloc(1, sizeof(*c));
	c->fd = fd;
	c->timeout_ms = timeout_ms;
	c->next_id = 1;
	*ret = c;
	return 0;
}

static int handshake(QmpClient *c, uint64_t deadline)
{
	json_object *greeting = NULL;
	int r = read_object(c, deadline, &greeting);
	if (r < 0)
		return r;
	bool ok = json_object_object_get_ex(greeting, "QMP", NULL);
	json_object_put(greeting);
	if (!ok)
		return -EPROTO;
	return qmp_execute(c, "qmp_capabilities", NULL, NULL);
}

int qmp_handshake(QmpClient *c)
{
	return handshake(c, time_now_ms() + c->timeout_ms);
}

static int connect_unix(const char *path, uint64_t deadline)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	/* A full backlog reports EAGAIN on a non-blocking unix socket, and the
	 * socket is then NOT connecting: try again until the deadline (QEMU
	 * listens with a backlog of 1 and drains it once its client leaves). */
	int c;
	while ((c = connect(fd, (struct sockaddr *)&sa, sizeof(sa))) < 0 && errno == EAGAIN) {
		if (time_now_ms() >= deadline)
			return -ETIMEDOUT;
		usleep(5 * 1000);
	}
	if (c < 0) {
		if (errno != EINPROGRESS)
			return -errno;
		int r = wait_fd(fd, POLLOUT, deadline);
		if (r < 0)
			return r;
		int err = 0;
		socklen_t len = sizeof(err);
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			return -errno;
		if (err)
			return -err;
	}
	return TAKE_FD(fd);
}

int qmp_connect(const char *path, unsigned timeout_ms, QmpClient **ret)
{
	uint64_t deadline = time_now_ms() + timeout_ms;
	int fd = connect_unix(path, deadline);
	if (fd < 0)
		return fd;
	_cleanup_qmp_ QmpClient *c = NULL;
	qmp_client_from_fd(fd, timeout_ms, &c);
	int r = handshake(c, deadline);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(c);
	return 0;
}

/* {"execute": command, "arguments": args, "id": id} and a newline: one QMP
 * command line. Caller frees. */
static char *command_line(const char *command, json_object *args, uint64_t id)
{
	json_object *cmd = json_object_new_object();
	json_object_object_add(cmd, "execute", json_object_new_string(command));
	if (args)
		json_object_object_add(cmd, "arguments", json_object_get(args));
	json_object_object_add(cmd, "id", json_object_new_int64((int64_t)id));
	char *line = xasprintf("%s\n", json_object_to_json_string_ext(cmd, JSON_C_TO_STRING_PLAIN));
	json_object_put(cmd);
	return line;
}

static int send_command(QmpClient *c, const char *command, json_object *args, uint64_t id,
			uint64_t deadline)
{
	_cleanup_free_ char *line = command_line(command, args, id);
	return send_all(c, line, strlen(line), deadline);
}

/* The command line with fd attached (SCM_RIGHTS) to its first byte: how
 * `getfd` receives a file a sandboxed QEMU could not open itself. */
static int send_command_fd(QmpClient *c, const char *command, json_object *args, int fd,
			   uint64_t id, uint64_t deadline)
{
	_cleanup_free_ char *line = command_line(command, args, id);
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u = { 0 };
	struct iovec iov = { .iov_base = line, .iov_len = 1 };
	struct msghdr m = { .msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = u.buf,
			    .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *h = CMSG_FIRSTHDR(&m);
	h->cmsg_level = SOL_SOCKET;
	h->cmsg_type = SCM_RIGHTS;
	h->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(h), &fd, sizeof(int));
	for (;;) {
		ssize_t w = sendmsg(c->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w == 1)
			break;
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN) {
			int r = wait_fd(c->fd, POLLOUT, deadline);
			if (r < 0)
				return r;
			continue;
		}
		return w < 0 ? -errno : -EIO;
	}
	return send_all(c, line + 1, strlen(line) - 1, deadline);
}

/* Replies carry our id back; one without an id (or with another id, from an
 * earlier exchange that timed out) is not ours unless ids are absent. */
static bool reply_is_ours(json_object *reply, uint64_t id)
{
	json_object *jid;
	if (!json_object_object_get_ex(reply, "id", &jid))
		return true;
	return json_object_is_type(jid, json_type_int) &&
	       (uint64_t)json_object_get_int64(jid) == id;
}

static int error_reply(QmpClient *c, json_object *err)
{
	json_object *cls = NULL, *desc = NULL;
	json_object_object_get_ex(err, "class", &cls);
	json_object_object_get_ex(err, "desc", &desc);
	free_and_replace_str(&c->last_error, desc ? json_object_get_string(desc) : "unknown error");
	if (cls && streq_ptr(json_object_get_string(cls), "CommandNotFound"))
		return -EOPNOTSUPP;
	return -EREMOTEIO;
}

static int execute(QmpClient *c, const char *command, json_object *args, int fd,
		   json_object **ret_return)
{
	uint64_t deadline = time_now_ms() + c->timeout_ms, id = c->next_id++;
	int r = fd >= 0 ? send_command_fd(c, command, args, fd, id, deadline)
			: send_command(c, command, args, id, deadline);
	if (r < 0)
		return r;
	for (;;) {
		json_object *reply = NULL, *val = NULL;
		r = read_object(c, deadline, &reply);
		if (r < 0)
			return r;
		if (json_object_object_get_ex(reply, "event", NULL) || !reply_is_ours(reply, id)) {
			c->events++;
			json_object_put(reply);
			continue;
		}
		if (json_object_object_get_ex(reply, "return", &val)) {
			if (ret_return)
				*ret_return = json_object_get(val);
			r = 0;
		} else if (json_object_object_get_ex(reply, "error", &val)) {
			r = error_reply(c, val);
		} else {
			r = -EPROTO;
		}
		json_object_put(reply);
		return r;
	}
}

int qmp_execute(QmpClient *c, const char *command, json_object *args, json_object **ret_return)
{
	return execute(c, command, args, -1, ret_return);
}

int qmp_getfd(QmpClient *c, const char *fdname, int fd)
{
	json_object *args = json_object_new_object();
	json_object_object_add(args, "fdname", json_object_new_string(fdname));
	int r = execute(c, "getfd", args, fd, NULL);
	json_object_put(args);
	return r;
}

const char *qmp_last_error(const QmpClient *c)
{
	return c->last_error ? c->last_error : "";
}

unsigned qmp_events_skipped(const QmpClient *c)
{
	return c->events;
}

void qmp_close(QmpClient *c)
{
	if (!c)
		return;
	if (c->fd >= 0)
		close(c->fd);
	free(c->buf);
	free(c->last_error);
	free(c);
}
