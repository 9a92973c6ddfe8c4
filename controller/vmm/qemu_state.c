/* qemu_state.c — suspend and resume for the QEMU driver (issue 10).
 *
 * Save: QMP `stop`, then `migrate` to a file the controller opened (0600,
 * root) and handed over with `getfd` (SCM_RIGHTS) — never `exec:`, which a
 * `-sandbox spawn=deny` QEMU dies on (SIGSYS, guest and all). A completed
 * migration has flushed and released the disks (bdrv_inactivate_all); the
 * guest stays paused until finish_save() ends the VMM (`quit`) or, when the
 * controller could not commit the save, continues it (`cont`).
 *
 * Restore: QEMU starts with `-incoming defer`; the state file is opened by
 * the controller and handed over the same way, `migrate-incoming fd:NAME`
 * loads it, and `cont` runs the guest once the status leaves `inmigrate`.
 * A state QEMU cannot load makes it exit: the launch fails and the caller
 * cold-boots.
 *
 * Confinement (-runas, -sandbox, an empty -chroot): the state file is
 * never opened by the VMM's uid (fds), and the end of a migration, which
 * reopens the disks, finds them in fdsets, not by path (qemu.h, QemuDisks):
 * measured, both a save and a `cont` after it work chrooted. */
#include "vmm/qemu.h"
#include "vmm/qmp.h"

#include "util/log.h"
#include "util/proc.h"
#include "util/timeutil.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/wait.h>

#define QEMU_STATE_FDNAME  "banger-state"
#define QEMU_STATE_POLL_MS 10
#define QEMU_QMP_STEP_MS   2000

char *qemu_state_path(const char *dir)
{
	return path_join(dir, QEMU_STATE_FILE);
}

static char *migrate_error(json_object *info)
{
	json_object *v;
	if (info && json_object_object_get_ex(info, "error-desc", &v))
		return xstrdup(json_object_get_string(v));
	return xstrdup("migration failed");
}

/* Poll query-migrate until it completes, fails or the deadline passes. */
static int wait_migrated(QmpClient *q, uint64_t deadline, char **ret_error)
{
	for (;;) {
		json_object *info = NULL, *st = NULL;
		int r = qmp_execute(q, "query-migrate", NULL, &info);
		if (r < 0) {
			*ret_error = xasprintf("query-migrate: %s", qmp_last_error(q));
			return r;
		}
		const char *s = json_object_object_get_ex(info, "status", &st)
					? json_object_get_string(st)
					: "";
		if (streq(s, "completed")) {
			json_object_put(info);
			return 0;
		}
		if (streq(s, "failed") || streq(s, "cancelled")) {
			*ret_error = migrate_error(info);
			json_object_put(info);
			return -EIO;
		}
		json_object_put(info);
		if (time_now_ms() >= deadline) {
			qmp_execute(q, "migrate_cancel", NULL, NULL);
			*ret_error = xstrdup("saving the state took too long (cancelled)");
			return -ETIMEDOUT;
		}
		usleep(QEMU_STATE_POLL_MS * 1000);
	}
}

static int migrate_to_fd(QmpClient *q, int fd, uint64_t deadline, char **ret_error)
{
	int r = qmp_getfd(q, QEMU_STATE_FDNAME, fd);
	if (r < 0) {
		*ret_error = xasprintf("getfd: %s", qmp_last_error(q));
		return r;
	}
	json_object *args = json_object_new_object();
	json_object_object_add(args, "uri", json_object_new_string("fd:" QEMU_STATE_FDNAME));
	r = qmp_execute(q, "migrate", args, NULL);
	json_object_put(args);
	if (r < 0) {
		*ret_error = xasprintf("migrate: %s", qmp_last_error(q));
		qmp_execute(q, "closefd", NULL, NULL);
		return r;
	}
	return wait_migrated(q, deadline, ret_error);
}

static bool has_root_fdset(json_object *sets)
{
	size_t n = json_object_is_type(sets, json_type_array) ? json_object_array_length(sets) : 0;
	for (size_t i = 0; i < n; i++) {
		json_object *id;
		if (json_object_object_get_ex(json_object_array_get_idx(sets, i), "fdset-id",
					      &id) &&
		    json_object_get_int(id) == QEMU_FDSET_ROOT)
			return true;
	}
	return false;
}

/* A QEMU launched before disks were fdsets (by an older bangerd, adopted
 * since) opened its disks by path; chrooted, the end of its migration
 * cannot reopen them ("bdrv_inactivate_all() failed", measured) and they
 * may not come back. Refused before the guest is paused. Whether it is
 * chrooted is read from /proc; when that cannot be told, it is assumed. */
static int check_disks_reopenable(QmpClient *q, const char *api_sock, char **ret_error)
{
	pid_t pid;
	uint64_t st;
	char root[PATH_MAX] = "";
	if (proc_find_socket_owner(api_sock, &pid, &st) == 0) {
		_cleanup_free_ char *link = xasprintf("/proc/%d/root", (int)pid);
		ssize_t n = readlink(link, root, sizeof(root) - 1);
		root[n > 0 ? n : 0] = 0;
	}
	if (streq(root, "/"))
		return 0;
	json_object *sets = NULL;
	int r = qmp_execute(q, "query-fdsets", NULL, &sets);
	bool ok = r == 0 && has_root_fdset(sets);
	json_object_put(sets);
	if (ok)
		return 0;
	*ret_error = xstrdup("this QEMU is chrooted and was started with its disks opened by path "
			     "(by an older bangerd): its migration could not reopen them; restart "
			     "the VM (state: Stopped, then Running) to be able to suspend it");
	return -EOPNOTSUPP;
}

static int qemu_version(QmpClient *q, char **ret)
{
	json_object *v = NULL, *qemu, *x;
	int r = qmp_execute(q, "query-version", NULL, &v);
	if (r < 0)
		return r;
	int part[3] = { 0 };
	static const char *const keys[] = { "major", "minor", "micro" };
	if (json_object_object_get_ex(v, "qemu", &qemu))
		for (int i = 0; i < 3; i++)
			if (json_object_object_get_ex(qemu, keys[i], &x))
				part[i] = json_object_get_int(x);
	json_object *pkg = NULL;
	json_object_object_get_ex(v, "package", &pkg);
	*ret = xasprintf("QEMU %d.%d.%d%s", part[0], part[1], part[2],
			 pkg ? json_object_get_string(pkg) : "");
	json_object_put(v);
	return 0;
}

int qemu_save_state(const char *api_sock, const char *dir, unsigned timeout_ms, char **ret_version,
		    char **ret_error)
{
	uint64_t deadline = time_now_ms() + timeout_ms;
	_cleanup_free_ char *path = qemu_state_path(dir);
	_cleanup_qmp_ QmpClient *q = NULL;
	*ret_error = NULL;
	int r = qmp_connect(api_sock, QEMU_QMP_STEP_MS, &q);
	if (r < 0) {
		*ret_error = xasprintf("connect QMP %s: %s", api_sock, strerror(-r));
		return r;
	}
	_cleanup_close_ int fd =
		open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		r = -errno;
		*ret_error = xasprintf("create %s: %s", path, strerror(-r));
		return r;
	}
	if ((r = check_disks_reopenable(q, api_sock, ret_error)) < 0)
		return r;
	if (qemu_version(q, ret_version) < 0)
		*ret_version = xstrdup("QEMU (version unknown)");
	if ((r = qmp_execute(q, "stop", NULL, NULL)) < 0) {
		*ret_error = xasprintf("stop: %s", qmp_last_error(q));
		return r;
	}
	r = migrate_to_fd(q, fd, deadline, ret_error);
	if (r < 0) {
		/* The guest must not die of a failed save: run it again. */
		if (qmp_execute(q, "cont", NULL, NULL) < 0)
			log_warn("qemu %s: cont after a failed save: %s", api_sock,
				 qmp_last_error(q));
		free(*ret_version);
		*ret_version = NULL;
		return r;
	}
	return 0;
}

int qemu_finish_save(const char *api_sock, bool committed)
{
	_cleanup_qmp_ QmpClient *q = NULL;
	int r = qmp_connect(api_sock, QEMU_QMP_STEP_MS, &q);
	if (r < 0)
		return log_errno(r, "qemu %s: connect QMP: %m", api_sock);
	r = qmp_execute(q, committed ? "quit" : "cont", NULL, NULL);
	/* `quit` may close the socket before its reply arrives. */
	if (committed && (r == -ECONNRESET || r == -EPIPE))
		r = 0;
	if (r < 0)
		return log_errno(r, "qemu %s: %s: %m (%s)", api_sock, committed ? "quit" : "cont",
				 qmp_last_error(q));
	return 0;
}

static int query_status(QmpClient *q, char **ret)
{
	json_object *v = NULL, *s;
	int r = qmp_execute(q, "query-status", NULL, &v);
	if (r < 0)
		return r;
	*ret = xstrdup(json_object_object_get_ex(v, "status", &s) ? json_object_get_string(s) : "");
	json_object_put(v);
	return 0;
}

int qemu_restore(const VmmLaunchConfig *c, pid_t pid, unsigned timeout_ms)
{
	uint64_t deadline = time_now_ms() + timeout_ms;
	_cleanup_free_ char *path = qemu_state_path(c->incoming_dir);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return log_errno(-errno, "vm %s: open saved state %s: %m", c->name, path);
	_cleanup_qmp_ QmpClient *q = NULL;
	/* While QEMU reads a state from a file its monitor does not answer
	 * (the load never yields to the main loop): one query may wait for the
	 * whole load, so each exchange gets the whole bound. */
	int r = qmp_connect(c->api_sock, timeout_ms, &q);
	if (r < 0)
		return log_errno(r, "vm %s: connect QMP: %m", c->name);
	if ((r = qmp_getfd(q, QEMU_STATE_FDNAME, fd)) < 0)
		return log_errno(r, "vm %s: getfd: %s", c->name, qmp_last_error(q));
	json_object *args = json_object_new_object();
	json_object_object_add(args, "uri", json_object_new_string("fd:" QEMU_STATE_FDNAME));
	r = qmp_execute(q, "migrate-incoming", args, NULL);
	json_object_put(args);
	if (r < 0)
		return log_errno(r, "vm %s: migrate-incoming: %s", c->name, qmp_last_error(q));
	for (;;) {
		_cleanup_free_ char *st = NULL;
		/* A state QEMU cannot load ends QEMU: the socket closes. */
		if ((r = query_status(q, &st)) < 0)
			return log_errno(r, "vm %s: the saved state did not load: %m", c->name);
		if (!streq(st, "inmigrate"))
			break;
		int status;
		if (waitpid(pid, &status, WNOHANG) == pid)
			return log_errno(-EIO, "vm %s: qemu exited while loading the saved state",
					 c->name);
		if (time_now_ms() >= deadline)
			return log_errno(-ETIMEDOUT, "vm %s: loading the saved state took too long",
					 c->name);
		usleep(QEMU_STATE_POLL_MS * 1000);
	}
	if ((r = qmp_execute(q, "cont", NULL, NULL)) < 0)
		return log_errno(r, "vm %s: cont after restore: %s", c->name, qmp_last_error(q));
	return 0;
}
