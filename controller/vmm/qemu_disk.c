/* qemu_disk.c — opening a QEMU guest's disks for fdset passing (see the
 * QemuDisks comment in qemu.h for why). */
#include "vmm/qemu.h"

#include "storage/qcow2.h"
#include "util/log.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>

static void fdset_close(QemuFdset *f)
{
	if (f->ro >= 0)
		close(f->ro);
	if (f->rw >= 0)
		close(f->rw);
	*f = (QemuFdset){ .set = 0, .ro = -1, .rw = -1 };
}

void qemu_disks_close(QemuDisks *d)
{
	fdset_close(&d->root);
	fdset_close(&d->backing);
	fdset_close(&d->work);
}

/* Open path read-only and, when writable, read-write too. Only a regular
 * file or a block device: anything else is not a disk we made. */
static int fdset_open(const char *vm, const char *what, const char *path, int set, bool writable,
		      QemuFdset *ret)
{
	_cleanup_close_ int ro = open(path, O_RDONLY | O_CLOEXEC), rw = -1;
	struct stat st;
	if (ro < 0 || fstat(ro, &st) < 0)
		return log_errno(-errno, "vm %s: open %s %s: %m", vm, what, path);
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		return log_errno(-EINVAL, "vm %s: %s %s is neither a file nor a block device", vm,
				 what, path);
	if (writable && (rw = open(path, O_RDWR | O_CLOEXEC)) < 0)
		return log_errno(-errno, "vm %s: open %s %s read-write: %m", vm, what, path);
	*ret = (QemuFdset){
		.set = set, .ro = TAKE_FD(ro), .rw = TAKE_FD(rw), .block = S_ISBLK(st.st_mode)
	};
	return 0;
}

/* The raw file a qcow2 overlay reads through, from its header: what QEMU
 * would open by path, given to it as an fdset instead. */
static int open_backing(const VmmLaunchConfig *c, const QemuFdset *root, QemuFdset *ret)
{
	Qcow2Info info;
	int r = qcow2_read_info(root->ro, &info);
	if (r < 0)
		return log_errno(r, "vm %s: read the qcow2 header of %s: %m", c->name,
				 c->root_disk);
	if (!info.backing[0])
		return 0;
	if (info.backing[0] != '/' || (info.backing_fmt[0] && !streq(info.backing_fmt, "raw")))
		return log_errno(-EINVAL,
				 "vm %s: %s: backing file '%s' (format '%s') is not an "
				 "absolute path to a raw image",
				 c->name, c->root_disk, info.backing, info.backing_fmt);
	/* The header is the VMM's to write: a guest that took QEMU over could
	 * name any file there, which root would then open for it. */
	_cleanup_free_ char *named = realpath(info.backing, NULL);
	_cleanup_free_ char *expected =
		c->root_disk_base ? realpath(c->root_disk_base, NULL) : NULL;
	if (!named || !expected || !streq(named, expected))
		return log_errno(-EPERM,
				 "vm %s: %s: backing file '%s' is not the VM's base image '%s'",
				 c->name, c->root_disk, info.backing,
				 c->root_disk_base ? c->root_disk_base : "(none)");
	return fdset_open(c->name, "root disk backing file", expected, QEMU_FDSET_BACKING, false,
			  ret);
}

int qemu_disks_open(const VmmLaunchConfig *c, QemuDisks *ret)
{
	_cleanup_(qemu_disks_close) QemuDisks d = QEMU_DISKS_NONE;
	const char *fmt = c->root_disk_format ? c->root_disk_format : "raw";
	int r = fdset_open(c->name, "root disk", c->root_disk, QEMU_FDSET_ROOT, true, &d.root);
	if (r >= 0 && streq(fmt, "qcow2"))
		r = open_backing(c, &d.root, &d.backing);
	if (r >= 0 && c->work_disk)
		r = fdset_open(c->name, "work disk", c->work_disk, QEMU_FDSET_WORK, true, &d.work);
	if (r < 0)
		return r;
	*ret = d;
	d = (QemuDisks)QEMU_DISKS_NONE;
	return 0;
}

size_t qemu_disks_fds(const QemuDisks *d, int ret_fds[QEMU_DISKS_FDS_MAX])
{
	const QemuFdset *sets[] = { &d->root, &d->backing, &d->work };
	size_t n = 0;
	for (size_t i = 0; i < ELEMENTSOF(sets); i++) {
		if (sets[i]->ro >= 0)
			ret_fds[n++] = sets[i]->ro;
		if (sets[i]->rw >= 0)
			ret_fds[n++] = sets[i]->rw;
	}
	return n;
}
