/* cow.c — see cow.h. Methods: method table and choice (pure), the three
 * file-making methods, the dm method, then prepare/teardown. */
#include "storage/cow.h"
#include "storage/dm.h"
#include "storage/loop.h"
#include "storage/qcow2.h"
#include "util/fileio.h"
#include "util/log.h"
#include "util/proc.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#define COPY_BUF   (1024 * 1024)
#define ZERO_GRAIN (64 * 1024) /* all-zero runs of this size stay holes */

static const char *const method_names[_COW_METHOD_MAX] = {
	[COW_AUTO] = "auto",   [COW_DM] = "dm",         [COW_REFLINK] = "reflink",
	[COW_QCOW2] = "qcow2", [COW_SPARSE] = "sparse",
};

static const char *const method_files[_COW_METHOD_MAX] = {
	[COW_DM] = "root.cow",
	[COW_REFLINK] = "root.reflink.img",
	[COW_QCOW2] = "root.qcow2",
	[COW_SPARSE] = "root.img",
};

const char *cow_method_to_string(CowMethod m)
{
	return m >= 0 && m < _COW_METHOD_MAX ? method_names[m] : NULL;
}

CowMethod cow_method_from_string(const char *s)
{
	for (int i = 0; s && i < _COW_METHOD_MAX; i++)
		if (streq(s, method_names[i]))
			return (CowMethod)i;
	return _COW_METHOD_INVALID;
}

const char *cow_disk_file_name(CowMethod m)
{
	return m >= 0 && m < _COW_METHOD_MAX ? method_files[m] : NULL;
}

CowMethod cow_method_choose(bool dm_ok, bool reflink_ok, bool qemu)
{
	if (dm_ok)
		return COW_DM;
	if (reflink_ok)
		return COW_REFLINK;
	return qemu ? COW_QCOW2 : COW_SPARSE;
}

CowMethod cow_method_fallback(CowMethod failed, bool qemu)
{
	switch (failed) {
	case COW_REFLINK: return qemu ? COW_QCOW2 : COW_SPARSE;
	case COW_QCOW2: return COW_SPARSE;
	default: return _COW_METHOD_INVALID;
	}
}

/* Errors that mean "this method cannot work here", not "something broke". */
static bool method_unsupported_error(CowMethod m, int r)
{
	if (m == COW_REFLINK)
		return r == -EXDEV || r == -EOPNOTSUPP || r == -ENOTTY || r == -EINVAL ||
		       r == -ENOSYS;
	return false;
}

/* An unlinked temp file in dir (O_TMPFILE, or mkstemp + unlink). */
static int tmpfile_in(const char *dir)
{
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
		return fd < 0 ? -errno : fd;
	_cleanup_free_ char *t = path_join(dir, ".banger-probe-XXXXXX");
	fd = mkostemp(t, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	unlink(t);
	return fd;
}

bool cow_reflink_supported(const char *dir)
{
	_cleanup_close_ int a = tmpfile_in(dir), b = tmpfile_in(dir);
	char block[4096];
	if (a < 0 || b < 0)
		return false;
	memset(block, 0x5a, sizeof(block));
	if (pwrite(a, block, sizeof(block), 0) != (ssize_t)sizeof(block))
		return false;
	return ioctl(b, FICLONE, a) == 0;
}

CowMethod cow_method_detect(const char *vm_dir, bool qemu)
{
	bool dm = dm_available(), reflink = !dm && cow_reflink_supported(vm_dir);
	CowMethod m = cow_method_choose(dm, reflink, qemu);
	log_debug("storage %s: dm %s, reflink %s, qemu %s -> %s", vm_dir, dm ? "yes" : "no",
		  dm        ? "not probed"
		  : reflink ? "yes"
			    : "no",
		  qemu ? "yes" : "no", cow_method_to_string(m));
	return m;
}

/* ---- file-making methods: each writes tmp, the caller renames ---- */

typedef int (*MakeFileFn)(const char *base, const char *tmp, off_t size);

static int make_reflink(const char *base, const char *tmp, off_t size)
{
	_cleanup_close_ int src = open(base, O_RDONLY | O_CLOEXEC), dst = -1;
	if (src < 0)
		return -errno;
	dst = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (dst < 0)
		return -errno;
	if (ioctl(dst, FICLONE, src) < 0 || fsync(dst) < 0)
		return -errno;
	return 0;
}

static bool all_zero(const char *p, size_t n)
{
	return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

/* Copy [off, end) writing only the ZERO_GRAIN blocks that hold data. */
static int copy_range_sparse(int src, int dst, off_t off, off_t end, char *buf)
{
	while (off < end) {
		size_t want = (size_t)MIN((off_t)COPY_BUF, end - off);
		ssize_t n = pread(src, buf, want, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO; /* base shrank under us */
		for (ssize_t i = 0; i < n; i += ZERO_GRAIN) {
			size_t g = (size_t)MIN((ssize_t)ZERO_GRAIN, n - i);
			ssize_t w;
			if (all_zero(buf + i, g))
				continue;
			w = pwrite(dst, buf + i, g, off + i);
			if (w != (ssize_t)g)
				return w < 0 ? -errno : -EIO;
		}
		off += n;
	}
	return 0;
}

/* Walk the base's data segments (SEEK_DATA/SEEK_HOLE); holes stay holes. */
static int copy_sparse_fd(int src, int dst, off_t size)
{
	_cleanup_free_ char *buf = xmalloc(COPY_BUF);
	off_t off = 0;
	if (ftruncate(dst, size) < 0)
		return -errno;
	while (off < size) {
		off_t data = lseek(src, off, SEEK_DATA), hole = size;
		int r;
		if (data < 0 && errno == ENXIO)
			break; /* only a hole is left */
		if (data < 0)
			data = off; /* no SEEK_DATA here: copy the rest, zeros stay holes */
		else
			hole = lseek(src, data, SEEK_HOLE);
		if (hole <= data || hole > size)
			hole = size;
		r = copy_range_sparse(src, dst, data, hole, buf);
		if (r < 0)
			return r;
		off = hole;
	}
	return fsync(dst) < 0 ? -errno : 0;
}

int storage_clone_file(const char *src_path, const char *dst_path)
{
	_cleanup_close_ int src = open(src_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW), dst = -1;
	struct stat st;
	if (src < 0 || fstat(src, &st) < 0)
		return -errno;
	dst = open(dst_path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (dst < 0)
		return -errno;
	if (ioctl(dst, FICLONE, src) == 0)
		return fsync(dst) < 0 ? -errno : 0;
	return copy_sparse_fd(src, dst, st.st_size);
}

static int make_sparse(const char *base, const char *tmp, off_t size)
{
	_cleanup_close_ int src = open(base, O_RDONLY | O_CLOEXEC), dst = -1;
	if (src < 0)
		return -errno;
	dst = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (dst < 0)
		return -errno;
	return copy_sparse_fd(src, dst, size);
}

/* Last bytes of a tool's output, for the error message. */
/* The overlay header is written directly (storage/qcow2.c): a fork + exec
 * of qemu-img was most of the controller's latency to a first boot. The
 * backing path stored in it must be absolute (base is a realpath) so the
 * overlay works from any cwd. */
static int make_qcow2(const char *base, const char *tmp, off_t size)
{
	_cleanup_close_ int fd =
		open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	int r = qcow2_write_overlay(fd, base, "raw", (uint64_t)size);
	if (r < 0)
		return log_errno(r, "storage: write qcow2 overlay %s (backing %s): %m", tmp, base);
	if (fsync(fd) < 0)
		return -errno;
	return 0;
}

static const MakeFileFn make_fns[_COW_METHOD_MAX] = {
	[COW_REFLINK] = make_reflink,
	[COW_QCOW2] = make_qcow2,
	[COW_SPARSE] = make_sparse,
};

/* Make final from base via fn on final.tmp + rename + directory fsync. */
static int make_disk_file_with(MakeFileFn fn, const char *base, off_t size, const char *final)
{
	_cleanup_free_ char *tmp = xasprintf("%s.tmp", final);
	int r;
	unlink(tmp); /* left over from a crash */
	r = fn(base, tmp, size);
	if (r >= 0 && rename(tmp, final) < 0)
		r = -errno;
	if (r < 0) {
		unlink(tmp);
		return r;
	}
	return fsync_directory_of(final);
}

/* ---- dm-snapshot ---- */

/* The exception store needs room for metadata beyond the data it holds
 * (16 bytes per 4 KiB chunk plus index chunks); the file is sparse, so
 * sizing generously costs nothing until written. */
static off_t dm_cow_size(off_t base_size)
{
	return base_size + base_size / 64 + 4 * 1024 * 1024;
}

static int make_cow_store(const char *base, const char *tmp, off_t size)
{
	_cleanup_close_ int fd =
		open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	/* Zeroed header = a new, empty persistent store. */
	if (ftruncate(fd, dm_cow_size(size)) < 0 || fsync(fd) < 0)
		return -errno;
	return 0;
}

static int record_intent(const RootDiskRequest *req, const RootDisk *d)
{
	int r = req->record ? req->record(req->userdata, d) : 0;
	if (r < 0)
		return log_errno(r, "storage %s: recording handles failed, not going on: %m",
				 req->vm_dir);
	return 0;
}

/* Loops (held, autoclear), then the target; the holding fds close on return,
 * after which only the target keeps the loops alive. */
static int dm_activate(const RootDiskRequest *req, RootDisk *d, off_t size)
{
	_cleanup_close_ int cow_fd = -1, base_fd = -1;
	int r = loop_attach_held(d->cow_file, false, &d->cow_loop, &cow_fd);
	if (r < 0)
		return r;
	r = loop_attach_held(d->base_image, true, &d->base_loop, &base_fd);
	if (r < 0)
		return r;
	r = record_intent(req, d);
	if (r < 0)
		return r;
	_cleanup_free_ char *dev = NULL; /* == d->dm_dev, which was recorded */
	_cleanup_free_ char *uuid = req->owner ? dm_uuid_for(req->owner, d->dm_name) : NULL;
	if (req->owner && !uuid)
		return log_errno(-EINVAL, "dm %s: bad owner tag '%s'", d->dm_name, req->owner);
	return dm_snapshot_create(d->dm_name, uuid, d->base_loop, d->cow_loop, (uint64_t)size / 512,
				  &dev);
}

static int prepare_dm(const RootDiskRequest *req, off_t size, bool existing, RootDisk *d)
{
	int r;
	if (size % 512 != 0)
		return log_errno(-EINVAL, "storage: base %s is %lld bytes, not whole sectors",
				 d->base_image, (long long)size);
	if (!dm_available())
		return log_errno(-EOPNOTSUPP,
				 "storage %s: %s needs device-mapper, which is not "
				 "available",
				 req->vm_dir, method_files[COW_DM]);
	d->dm_name = dm_name_for(req->vm_uid);
	if (!d->dm_name)
		return log_errno(-EINVAL,
				 "storage %s: vm uid '%s' has no 8 hex digits for a dm "
				 "name",
				 req->vm_dir, req->vm_uid ? req->vm_uid : "");
	d->dm_dev = dm_dev_path(d->dm_name);
	d->cow_file = path_join(req->vm_dir, method_files[COW_DM]);
	if (!existing) {
		r = make_disk_file_with(make_cow_store, d->base_image, size, d->cow_file);
		if (r < 0)
			return log_errno(r, "storage: create %s: %m", d->cow_file);
	}
	r = record_intent(req, d); /* the target name, before anything exists */
	if (r < 0)
		return r;
	r = dm_activate(req, d, size);
	if (r < 0) {
		free(d->base_loop), free(d->cow_loop); /* autoclear already dropped them */
		d->base_loop = d->cow_loop = NULL;
		return r;
	}
	d->path = xstrdup(d->dm_dev);
	return 0;
}

/* ---- prepare / teardown ---- */

CowMethod cow_existing_method(const char *vm_dir)
{
	static const CowMethod order[] = { COW_DM, COW_QCOW2, COW_REFLINK, COW_SPARSE };
	for (size_t i = 0; i < ELEMENTSOF(order); i++) {
		_cleanup_free_ char *p = path_join(vm_dir, method_files[order[i]]);
		if (access(p, F_OK) == 0)
			return order[i];
	}
	return COW_AUTO;
}

static int make_file_disk(const RootDiskRequest *req, CowMethod m, off_t size, bool existing,
			  RootDisk *d)
{
	_cleanup_free_ char *final = path_join(req->vm_dir, method_files[m]);
	if (m == COW_QCOW2 && !req->qemu)
		return log_errno(-EOPNOTSUPP,
				 "storage: %s is a qcow2 overlay, which only QEMU "
				 "reads",
				 final);
	if (!existing) {
		int r = make_disk_file_with(make_fns[m], d->base_image, size, final);
		if (r < 0)
			return r;
	}
	d->path = TAKE_PTR(final);
	return 0;
}

static int prepare_method(const RootDiskRequest *req, CowMethod m, off_t size, bool existing,
			  RootDisk *d)
{
	d->method = m;
	d->format = m == COW_QCOW2 ? "qcow2" : "raw";
	d->reused = existing;
	if (m == COW_DM)
		return prepare_dm(req, size, existing, d);
	return make_file_disk(req, m, size, existing, d);
}

/* Try m, then its fallbacks while m is impossible here (auto mode only). */
static int prepare_new(const RootDiskRequest *req, CowMethod m, off_t size, RootDisk *d)
{
	int r = prepare_method(req, m, size, false, d);
	while (r < 0 && req->method == COW_AUTO && method_unsupported_error(m, r)) {
		CowMethod next = cow_method_fallback(m, req->qemu);
		if (next < 0)
			break;
		log_info("storage %s: %s not possible here (%s), trying %s", req->vm_dir,
			 method_names[m], strerror(-r), method_names[next]);
		m = next;
		r = prepare_method(req, m, size, false, d);
	}
	if (r < 0)
		return log_errno(r, "storage %s: %s root disk from %s: %m", req->vm_dir,
				 method_names[m], d->base_image);
	return 0;
}

static int check_request(const RootDiskRequest *req, off_t *ret_size, char **ret_base)
{
	_cleanup_free_ char *base = NULL;
	struct stat st;
	if (!req || !req->vm_dir || !req->base_image)
		return log_errno(-EINVAL, "storage: root disk request without vm_dir or base");
	if (req->method < COW_AUTO || req->method >= _COW_METHOD_MAX)
		return log_errno(-EINVAL, "storage %s: unknown method %d", req->vm_dir,
				 (int)req->method);
	base = realpath(req->base_image, NULL);
	if (!base || stat(base, &st) < 0)
		return log_errno(-errno, "storage: base image %s: %m", req->base_image);
	if (!S_ISREG(st.st_mode) || st.st_size == 0)
		return log_errno(-EINVAL, "storage: base image %s is not a non-empty regular file",
				 base);
	*ret_size = st.st_size;
	*ret_base = TAKE_PTR(base);
	return 0;
}

int root_disk_prepare(const RootDiskRequest *req, RootDisk *ret)
{
	RootDisk d = { 0 };
	off_t size = 0;
	CowMethod m;
	int r = check_request(req, &size, &d.base_image);
	if (r < 0)
		return r;
	m = cow_existing_method(req->vm_dir);
	if (m != COW_AUTO) {
		log_debug("storage %s: keeping existing %s disk", req->vm_dir, method_names[m]);
		r = prepare_method(req, m, size, true, &d);
	} else {
		m = req->method != COW_AUTO ? req->method
					    : cow_method_detect(req->vm_dir, req->qemu);
		r = prepare_new(req, m, size, &d);
	}
	if (r < 0) {
		root_disk_done(&d);
		return r;
	}
	log_info("storage %s: root disk %s (%s, %s%s)", req->vm_dir, d.path, method_names[d.method],
		 d.format, d.reused ? ", kept" : "");
	*ret = d;
	return 0;
}

/* A loop device number is reused as soon as it is free: one recorded long
 * ago may back another VM's (or the admin's) file now. Detach only when its
 * backing file is the one recorded; with none recorded (handles from an
 * older banger) leave it: our loops are autoclear and go with the dm target. */
static int detach_checked(const char *dev, const char *file)
{
	if (!dev)
		return 0;
	if (!file) {
		log_warn("storage: loop %s: no backing file recorded; not detaching it (autoclear "
			 "frees it with its dm target)",
			 dev);
		return 0;
	}
	return loop_detach_if_backed_by(dev, file);
}

int root_disk_teardown(const RootDisk *h)
{
	int r = 0, k;
	if (!h)
		return 0;
	if (h->dm_name) {
		k = dm_remove(h->dm_name);
		/* No device-mapper: no target can exist. */
		if (k < 0 && k != -EOPNOTSUPP)
			r = k;
	}
	if ((k = detach_checked(h->cow_loop, h->cow_file)) < 0 && r == 0)
		r = k;
	if ((k = detach_checked(h->base_loop, h->base_image)) < 0 && r == 0)
		r = k;
	return r;
}

void root_disk_done(RootDisk *h)
{
	if (!h)
		return;
	free(h->path);
	free(h->base_image);
	free(h->cow_file);
	free(h->base_loop);
	free(h->cow_loop);
	free(h->dm_name);
	free(h->dm_dev);
	*h = (RootDisk){ 0 };
}
