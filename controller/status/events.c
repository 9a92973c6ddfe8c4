/* events.c — see events.h. */
#include "status/events.h"
#include "util/fileio.h"
#include "util/log.h"

#include <fcntl.h>
#include <json.h>
#include <stdio.h>
#include <sys/stat.h>

/* A message longer than this is cut: one line stays one screen. */
#define EVENT_MESSAGE_MAX 2048
#define EVENTS_READ_MAX   (64 * 1024 * 1024)

struct EventLog {
	char *path, *old_path;
	size_t cap;
	int fd;
	off_t size;
	bool warned;
};

static int open_journal(EventLog *l)
{
	l->fd = open(l->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (l->fd < 0)
		return -errno;
	struct stat st;
	if (fstat(l->fd, &st) < 0)
		return -errno;
	l->size = st.st_size;
	return 0;
}

int event_log_open(const char *status_dir, size_t cap_bytes, EventLog **ret)
{
	EventLog *l = xcalloc(1, sizeof(EventLog));
	l->path = path_join(status_dir, EVENTS_FILE);
	l->old_path = path_join(status_dir, EVENTS_FILE_OLD);
	l->cap = cap_bytes ? cap_bytes : EVENTS_DEFAULT_CAP;
	int r = open_journal(l);
	if (r < 0) {
		log_errno(r, "open event journal %s: %m", l->path);
		event_log_free(l);
		return r;
	}
	*ret = l;
	return 0;
}

void event_log_free(EventLog *l)
{
	if (!l)
		return;
	if (l->fd >= 0)
		close(l->fd);
	free(l->path);
	free(l->old_path);
	free(l);
}

/* The journal is over its cap: it becomes the old one, a new one starts. */
static int rotate(EventLog *l)
{
	if (rename(l->path, l->old_path) < 0)
		return -errno;
	close(l->fd);
	l->fd = -1;
	return open_journal(l);
}

int event_log_add(EventLog *l, int64_t time_ms, const char *vm, const char *type, const char *fmt,
		  ...)
{
	if (!l || l->fd < 0)
		return -EBADF;
	va_list ap;
	va_start(ap, fmt);
	_cleanup_free_ char *msg = NULL;
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	if (msg && strlen(msg) > EVENT_MESSAGE_MAX)
		strcpy(msg + EVENT_MESSAGE_MAX - 4, "...");
	json_object *o = json_object_new_object();
	json_object_object_add(o, "time", json_object_new_int64(time_ms));
	json_object_object_add(o, "vm", json_object_new_string(vm));
	json_object_object_add(o, "type", json_object_new_string(type));
	json_object_object_add(o, "message", json_object_new_string(msg ? msg : ""));
	/* json-c escapes control characters: a guest's console text in a
	 * message cannot break the one-event-per-line framing. */
	_cleanup_free_ char *line = xasprintf(
		"%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
								  JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	size_t len = strlen(line);
	int r = 0;
	if ((size_t)l->size + len > l->cap)
		r = rotate(l);
	if (r >= 0) {
		ssize_t n = write(l->fd, line, len);
		r = n == (ssize_t)len ? 0 : n < 0 ? -errno : -EIO;
		if (n > 0)
			l->size += n;
	}
	if (r < 0 && !l->warned) {
		log_warn_errno(r, "event journal %s: %m (events are lost until it works again)",
			       l->path);
		l->warned = true;
	} else if (r >= 0)
		l->warned = false;
	return r;
}

void vm_events_free(VmEvent *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].vm);
		free(v[i].type);
		free(v[i].message);
	}
	free(v);
}

static const char *obj_str(json_object *o, const char *key)
{
	json_object *v;
	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

int vm_event_parse(const char *line, VmEvent *ret)
{
	json_object *o = json_tokener_parse(line), *t;
	int r = -EBADMSG;
	const char *vm, *type, *msg;
	if (o && json_object_is_type(o, json_type_object) &&
	    json_object_object_get_ex(o, "time", &t) && json_object_is_type(t, json_type_int) &&
	    (vm = obj_str(o, "vm")) && (type = obj_str(o, "type")) &&
	    (msg = obj_str(o, "message"))) {
		*ret = (VmEvent){ .time_ms = json_object_get_int64(t),
				  .vm = xstrdup(vm),
				  .type = xstrdup(type),
				  .message = xstrdup(msg) };
		r = 0;
	}
	json_object_put(o);
	return r;
}

static void read_one(const char *path, const char *vm, VmEvent **v, size_t *n)
{
	_cleanup_free_ char *data = NULL;
	if (read_file_bounded(path, EVENTS_READ_MAX, &data, NULL) < 0)
		return;
	char *save = NULL;
	for (char *line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		VmEvent e;
		if (vm_event_parse(line, &e) < 0)
			continue;
		if (vm && !streq(vm, e.vm)) {
			free(e.vm);
			free(e.type);
			free(e.message);
			continue;
		}
		*v = xrealloc(*v, (*n + 1) * sizeof(VmEvent));
		(*v)[(*n)++] = e;
	}
}

int event_log_read(const char *status_dir, const char *vm, VmEvent **ret, size_t *ret_n)
{
	_cleanup_free_ char *old = path_join(status_dir, EVENTS_FILE_OLD);
	_cleanup_free_ char *cur = path_join(status_dir, EVENTS_FILE);
	VmEvent *v = NULL;
	size_t n = 0;
	read_one(old, vm, &v, &n);
	read_one(cur, vm, &v, &n);
	*ret = v;
	*ret_n = n;
	return 0;
}
