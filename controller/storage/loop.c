/* loop.c — see loop.h. */
#include "storage/loop.h"
#include "storage/imageroot.h"
#include "util/fileio.h"
#include "util/log.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/loop.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

/* Another process may configure the device LOOP_CTL_GET_FREE handed us
 * before we do; each retry asks for a fresh free device. */
#define LOOP_ATTACH_TRIES 32
#define LOOP_SYSFS_MAX    4096

const char *loop_dev_name(const char *dev)
{
	const char *n;
	if (!dev || !startswith(dev, "/dev/loop"))
		return NULL;
	n = dev + strlen("/dev/loop");
	if (!*n || strlen(n) > 9)
		return NULL;
	for (const char *p = n; *p; p++)
		if (*p < '0' || *p > '9')
			return NULL;
	return dev + strlen("/dev/");
}

/* One LOOP_CTL_GET_FREE + LOOP_CONFIGURE attempt. -EBUSY: lost the race. */
static int loop_configure_one(int ctl, int file_fd, uint32_t flags, char **ret_dev, int *ret_fd)
{
	struct loop_config cfg = { .fd = (uint32_t)file_fd };
	_cleanup_close_ int fd = -1;
	char dev[32];
	int n = ioctl(ctl, LOOP_CTL_GET_FREE);
	if (n < 0)
		return -errno;
	snprintf(dev, sizeof(dev), "/dev/loop%d", n);
	fd = open(dev, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	cfg.info.lo_flags = flags;
	if (ioctl(fd, LOOP_CONFIGURE, &cfg) < 0)
		return -errno;
	*ret_dev = xstrdup(dev);
	*ret_fd = TAKE_FD(fd);
	return 0;
}

static int loop_attach_flags(const char *file, uint32_t flags, char **ret_dev, int *ret_fd)
{
	bool ro = flags & LO_FLAGS_READ_ONLY;
	_cleanup_close_ int ctl = -1, ffd = -1;
	int r = -EBUSY;

	ffd = open(file, (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (ffd < 0)
		return log_errno(-errno, "loop: open backing file %s: %m", file);
	ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ctl < 0)
		return log_errno(-errno, "loop: open /dev/loop-control: %m");
	for (int i = 0; i < LOOP_ATTACH_TRIES && r == -EBUSY; i++)
		r = loop_configure_one(ctl, ffd, flags, ret_dev, ret_fd);
	if (r < 0)
		return log_errno(r, "loop: attach %s%s: %m", file, ro ? " read-only" : "");
	log_debug("loop: attached %s to %s%s%s", file, *ret_dev, ro ? " (ro)" : "",
		  (flags & LO_FLAGS_AUTOCLEAR) ? " (autoclear)" : "");
	return 0;
}

int loop_attach(const char *file, bool read_only, char **ret_dev)
{
	_cleanup_close_ int fd = -1;
	return loop_attach_flags(file, read_only ? LO_FLAGS_READ_ONLY : 0, ret_dev, &fd);
}

int loop_attach_held(const char *file, bool read_only, char **ret_dev, int *ret_fd)
{
	uint32_t flags = LO_FLAGS_AUTOCLEAR | (read_only ? LO_FLAGS_READ_ONLY : 0);
	return loop_attach_flags(file, flags, ret_dev, ret_fd);
}

int loop_detach(const char *dev)
{
	_cleanup_close_ int fd = -1;
	if (!loop_dev_name(dev))
		return log_errno(-EINVAL, "loop: %s is not a loop device path",
				 dev ? dev : "(null)");
	fd = open(dev, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && (errno == ENOENT || errno == ENXIO))
		return 0;
	if (fd < 0)
		return log_errno(-errno, "loop: open %s: %m", dev);
	if (ioctl(fd, LOOP_CLR_FD, 0) < 0 && errno != ENXIO)
		return log_errno(-errno, "loop: detach %s: %m", dev);
	log_debug("loop: detached %s", dev);
	return 0;
}

static int loop_sysfs_read(const char *name, const char *attr, char **ret)
{
	_cleanup_free_ char *p = xasprintf("/sys/block/%s/%s", name, attr);
	_cleanup_free_ char *s = NULL;
	size_t len;
	int r = read_file_bounded(p, LOOP_SYSFS_MAX, &s, &len);
	if (r < 0)
		return r;
	while (len > 0 && s[len - 1] == '\n')
		s[--len] = '\0';
	*ret = TAKE_PTR(s);
	return 0;
}

int loop_backing_file(const char *dev, char **ret_path)
{
	const char *name = loop_dev_name(dev);
	struct stat st;
	int r;
	if (!name)
		return -EINVAL;
	r = loop_sysfs_read(name, "loop/backing_file", ret_path);
	if (r != -ENOENT)
		return r;
	/* No loop/ directory: the device exists but is unbound. */
	_cleanup_free_ char *blk = xasprintf("/sys/block/%s", name);
	return stat(blk, &st) == 0 ? -ENXIO : -ENOENT;
}

int loop_is_read_only(const char *dev)
{
	const char *name = loop_dev_name(dev);
	_cleanup_free_ char *s = NULL;
	int r;
	if (!name)
		return -EINVAL;
	r = loop_sysfs_read(name, "ro", &s);
	if (r < 0)
		return r;
	return streq(s, "1") ? 1 : 0;
}

int loop_detach_if_backed_by(const char *dev, const char *file)
{
	_cleanup_free_ char *backing = NULL, *want = NULL;
	int r = loop_backing_file(dev, &backing);
	if (r == -ENXIO || r == -ENOENT)
		return 0;
	if (r < 0)
		return log_errno(r, "loop: %s: read backing file: %m", dev);
	/* The file may have been deleted since (kernel shows "(deleted)"). */
	want = realpath(file, NULL);
	if (!streq(backing, want ? want : file)) {
		log_debug("loop: %s is now backed by %s, not %s: leaving it", dev, backing, file);
		return 0;
	}
	return loop_detach(dev);
}

static int loop_name_cmp(const void *a, const void *b)
{
	const char *x = *(char *const *)a, *y = *(char *const *)b;
	size_t lx = strlen(x), ly = strlen(y);
	return lx != ly ? (lx < ly ? -1 : 1) : strcmp(x, y);
}

int loop_list_backed_under(const char *dir, char ***ret_devs)
{
	_cleanup_strv_free_ char **devs = xcalloc(1, sizeof(char *));
	_cleanup_free_ char *real = realpath(dir, NULL);
	DIR *d;
	struct dirent *de;

	if (!real)
		return log_errno(-errno, "loop: resolve %s: %m", dir);
	d = opendir("/sys/block");
	if (!d)
		return log_errno(-errno, "loop: open /sys/block: %m");
	while ((de = readdir(d))) {
		_cleanup_free_ char *dev = xasprintf("/dev/%s", de->d_name), *backing = NULL;
		if (!loop_dev_name(dev) || loop_backing_file(dev, &backing) < 0)
			continue;
		if (storage_path_is_under(backing, real))
			strv_push(&devs, TAKE_PTR(dev));
	}
	closedir(d);
	qsort(devs, strv_length(devs), sizeof(char *), loop_name_cmp);
	*ret_devs = TAKE_PTR(devs);
	return 0;
}
