/* dm.c — see dm.h. */
#include "storage/dm.h"
#include "util/fileio.h"
#include "util/layout.h"
#include "util/log.h"

#include <ctype.h>
#include <inttypes.h>
#include <libdevmapper.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#define DM_REMOVE_TRIES           10
#define DM_REMOVE_WAIT_NS         (50 * 1000 * 1000L)
#define DM_SNAPSHOT_CHUNK_SECTORS 8   /* 4 KiB chunks */
#define DM_NAME_MAX               128 /* DM_NAME_LEN in linux/dm-ioctl.h, with the NUL */
#define DM_UUID_MAX               129 /* DM_UUID_LEN, with the NUL */

int dm_snapshot_table(const char *base_dev, const char *cow_dev, uint64_t size_sectors,
		      char **ret_params)
{
	const char *devs[] = { base_dev, cow_dev };
	if (size_sectors == 0)
		return -EINVAL;
	for (size_t i = 0; i < ELEMENTSOF(devs); i++) {
		if (!devs[i] || devs[i][0] != '/' || strlen(devs[i]) >= 4096)
			return -EINVAL;
		/* The table is one whitespace-separated line. */
		for (const char *p = devs[i]; *p; p++)
			if (isspace((unsigned char)*p) || !isprint((unsigned char)*p))
				return -EINVAL;
	}
	if (streq(base_dev, cow_dev))
		return -EINVAL;
	*ret_params = xasprintf("%s %s P %d", base_dev, cow_dev, DM_SNAPSHOT_CHUNK_SECTORS);
	return 0;
}

char *dm_name_for(const char *vm_uid)
{
	char sid[LAYOUT_SHORT_ID_LEN + 1];
	if (layout_short_id(vm_uid, sid) < 0)
		return NULL;
	return xasprintf(DM_NAME_PREFIX "%s", sid);
}

bool dm_name_valid(const char *name)
{
	size_t n = name ? strlen(name) : 0;
	if (n == 0 || n >= DM_NAME_MAX || streq(name, ".") || streq(name, ".."))
		return false;
	for (const char *p = name; *p; p++)
		if (*p == '/' || !isgraph((unsigned char)*p))
			return false;
	return true;
}

char *dm_dev_path(const char *name)
{
	return xasprintf("/dev/mapper/%s", name);
}

/* libdevmapper's messages go to our debug log: it logs errors for expected
 * outcomes (ENXIO on removing a gone device, no driver on this kernel). */
_printf_(5, 6) static void dm_log_to_debug(int level, const char *file, int line, int dm_errno,
					   const char *f, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, f);
	vsnprintf(buf, sizeof(buf), f, ap);
	va_end(ap);
	log_debug("libdevmapper: %s", buf);
}

/* libdevmapper is not thread-safe (global state, udev cookies), and root
 * disks are made on launch workers: one task at a time, process-wide. */
static pthread_mutex_t dm_lock = PTHREAD_MUTEX_INITIALIZER;

static void dm_setup(void)
{
	dm_log_with_errno_init(dm_log_to_debug);
}

static void dm_setup_once(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, dm_setup);
}

/* Without a control node or a registered misc device there is no driver;
 * don't let libdevmapper try to mknod one. */
static bool dm_driver_present(void)
{
	_cleanup_free_ char *misc = NULL;
	size_t len;
	if (access("/dev/mapper/control", F_OK) == 0)
		return true;
	if (read_file_bounded("/proc/misc", 64 * 1024, &misc, &len) < 0)
		return false;
	return strstr(misc, " device-mapper\n") != NULL;
}

static bool dm_available_locked(void)
{
	struct dm_task *t;
	bool ok;
	if (!dm_driver_present())
		return false;
	dm_setup_once();
	t = dm_task_create(DM_DEVICE_VERSION);
	if (!t)
		return false;
	ok = dm_task_run(t) != 0;
	dm_task_destroy(t);
	return ok;
}

/* Run a task that changes a device node, waiting for udev when it runs
 * (libdevmapper makes the node itself when it does not). Returns -errno. */
static int dm_run_with_cookie(struct dm_task *t)
{
	uint32_t cookie = 0;
	int r = 0;
	if (!dm_task_set_cookie(t, &cookie, 0))
		return -EIO;
	if (!dm_task_run(t)) {
		r = dm_task_get_errno(t);
		r = r > 0 ? -r : -EIO;
	}
	dm_udev_wait(cookie);
	return r;
}

static struct dm_task *dm_task_named(int type, const char *name)
{
	struct dm_task *t = dm_task_create(type);
	if (t && !dm_task_set_name(t, name)) {
		dm_task_destroy(t);
		return NULL;
	}
	return t;
}

char *dm_uuid_for(const char *instance, const char *name)
{
	size_t n = instance ? strlen(instance) : 0;
	if (n == 0 || n > 32 || strspn(instance, "0123456789abcdef") != n || !dm_name_valid(name))
		return NULL;
	char *u = xasprintf(DM_UUID_PREFIX "%s-%s", instance, name);
	if (strlen(u) >= DM_UUID_MAX) {
		free(u);
		return NULL;
	}
	return u;
}

char *dm_uuid_owner_prefix(const char *instance)
{
	return xasprintf(DM_UUID_PREFIX "%s-", instance);
}

static int dm_uuid_of_locked(const char *name, char **ret)
{
	struct dm_info info;
	int r = 0;
	if (!dm_name_valid(name))
		return -EINVAL;
	if (!dm_available_locked())
		return -EOPNOTSUPP;
	struct dm_task *t = dm_task_named(DM_DEVICE_INFO, name);
	if (!t)
		return -ENOMEM;
	if (!dm_task_run(t) || !dm_task_get_info(t, &info))
		r = -EIO;
	else if (!info.exists)
		r = -ENODEV;
	else {
		const char *u = dm_task_get_uuid(t);
		*ret = u && *u ? xstrdup(u) : NULL;
	}
	dm_task_destroy(t);
	return r;
}

static int dm_snapshot_create_locked(const char *name, const char *uuid, const char *base_dev,
				     const char *cow_dev, uint64_t size_sectors, char **ret_dev)
{
	_cleanup_free_ char *params = NULL;
	struct dm_task *t;
	int r;

	if (!dm_name_valid(name))
		return log_errno(-EINVAL, "dm: invalid target name '%s'", name ? name : "");
	r = dm_snapshot_table(base_dev, cow_dev, size_sectors, &params);
	if (r < 0)
		return log_errno(r, "dm %s: invalid snapshot of %s onto %s (%" PRIu64 " sectors)",
				 name, base_dev ? base_dev : "(null)", cow_dev ? cow_dev : "(null)",
				 size_sectors);
	if (!dm_available_locked())
		return log_errno(-EOPNOTSUPP, "dm %s: device-mapper is not available", name);
	t = dm_task_named(DM_DEVICE_CREATE, name);
	if (!t)
		return log_errno(-ENOMEM, "dm %s: create task", name);
	if ((uuid && !dm_task_set_uuid(t, uuid)) ||
	    !dm_task_add_target(t, 0, size_sectors, "snapshot", params))
		r = -ENOMEM;
	else
		r = dm_run_with_cookie(t);
	dm_task_destroy(t);
	if (r < 0)
		return log_errno(r, "dm %s: create snapshot \"0 %" PRIu64 " snapshot %s\": %m",
				 name, size_sectors, params);
	*ret_dev = dm_dev_path(name);
	log_info("dm %s: snapshot of %s onto %s created", name, base_dev, cow_dev);
	return 0;
}

static int dm_remove_once(const char *name)
{
	struct dm_task *t = dm_task_named(DM_DEVICE_REMOVE, name);
	int r;
	if (!t)
		return -ENOMEM;
	r = dm_run_with_cookie(t);
	dm_task_destroy(t);
	return r;
}

static int dm_remove_locked(const char *name)
{
	const struct timespec wait = { 0, DM_REMOVE_WAIT_NS };
	int r = -EBUSY;

	if (!dm_name_valid(name))
		return log_errno(-EINVAL, "dm: invalid target name '%s'", name ? name : "");
	if (!dm_available_locked())
		return -EOPNOTSUPP;
	for (int i = 0; i < DM_REMOVE_TRIES && r == -EBUSY; i++) {
		if (i > 0)
			nanosleep(&wait, NULL);
		r = dm_remove_once(name);
	}
	if (r == -ENXIO || r == -ENODEV)
		return 0; /* already gone */
	if (r < 0)
		return log_errno(r, "dm %s: remove: %m", name);
	log_info("dm %s: removed", name);
	return 0;
}

static int dm_names_collect(struct dm_names *n, const char *prefix, char ***names)
{
	uint32_t next;
	if (!n || n->dev == 0)
		return 0; /* no devices at all */
	do {
		if (startswith(n->name, prefix))
			strv_push(names, xstrdup(n->name));
		next = n->next;
		n = (struct dm_names *)((char *)n + next);
	} while (next);
	return 0;
}

static int dm_list_locked(const char *prefix, char ***ret_names)
{
	_cleanup_strv_free_ char **names = xcalloc(1, sizeof(char *));
	struct dm_task *t;
	int r = 0;

	if (!dm_available_locked())
		return -EOPNOTSUPP;
	t = dm_task_create(DM_DEVICE_LIST);
	if (!t)
		return log_errno(-ENOMEM, "dm: list task");
	if (!dm_task_run(t)) {
		r = dm_task_get_errno(t);
		r = r > 0 ? -r : -EIO;
	} else
		dm_names_collect(dm_task_get_names(t), prefix ? prefix : "", &names);
	dm_task_destroy(t);
	if (r < 0)
		return log_errno(r, "dm: list devices: %m");
	qsort(names, strv_length(names), sizeof(char *), strcmp_ptr);
	*ret_names = TAKE_PTR(names);
	return 0;
}

bool dm_available(void)
{
	pthread_mutex_lock(&dm_lock);
	bool r = dm_available_locked();
	pthread_mutex_unlock(&dm_lock);
	return r;
}

int dm_uuid_of(const char *name, char **ret)
{
	pthread_mutex_lock(&dm_lock);
	int r = dm_uuid_of_locked(name, ret);
	pthread_mutex_unlock(&dm_lock);
	return r;
}

int dm_snapshot_create(const char *name, const char *uuid, const char *base_dev,
		       const char *cow_dev, uint64_t size_sectors, char **ret_dev)
{
	pthread_mutex_lock(&dm_lock);
	int r = dm_snapshot_create_locked(name, uuid, base_dev, cow_dev, size_sectors, ret_dev);
	pthread_mutex_unlock(&dm_lock);
	return r;
}

int dm_remove(const char *name)
{
	pthread_mutex_lock(&dm_lock);
	int r = dm_remove_locked(name);
	pthread_mutex_unlock(&dm_lock);
	return r;
}

int dm_list(const char *prefix, char ***ret_names)
{
	pthread_mutex_lock(&dm_lock);
	int r = dm_list_locked(prefix, ret_names);
	pthread_mutex_unlock(&dm_lock);
	return r;
}
