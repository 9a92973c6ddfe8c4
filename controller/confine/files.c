/* files.c — ownership and modes of what a confined VMM keeps (confine.h).
 *
 * The VMM opens everything before it drops privileges (QEMU: as root, then
 * -chroot, then -runas), so these modes are not what lets it run. They say
 * who else may touch a VM's disks and logs: its own uid, and no other VM's.
 * Everything goes through an O_NOFOLLOW fd (fchown/fchmod), so a symlink
 * planted in a VM dir cannot turn a chown onto a host file. */
#include "confine/confine.h"
#include "util/fileio.h"
#include "util/log.h"

#include <fcntl.h>
#include <sys/stat.h>

int confine_file(const char *path, uid_t uid, gid_t gid, mode_t mode)
{
	_cleanup_close_ int fd =
		open(path, O_RDONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, mode);
	struct stat st;
	if (fd < 0)
		return log_errno(-errno, "%s: open for ownership: %m", path);
	if (fstat(fd, &st) < 0)
		return log_errno(-errno, "%s: stat: %m", path);
	if (!S_ISREG(st.st_mode))
		return log_errno(-EINVAL, "%s: not a regular file; refusing to give it to a VMM",
				 path);
	if (uid && (st.st_uid != uid || st.st_gid != gid) && fchown(fd, uid, gid) < 0)
		return log_errno(-errno, "%s: chown %u:%u: %m", path, (unsigned)uid, (unsigned)gid);
	if ((st.st_mode & 07777) != mode && fchmod(fd, mode) < 0)
		return log_errno(-errno, "%s: chmod %o: %m", path, (unsigned)mode);
	return 0;
}

/* chown + chmod of a directory through an O_DIRECTORY|O_NOFOLLOW fd. */
static int own_dir(const char *path, uid_t uid, gid_t gid, mode_t mode)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	if (fd < 0)
		return log_errno(-errno, "%s: open directory: %m", path);
	if (fstat(fd, &st) < 0)
		return log_errno(-errno, "%s: stat: %m", path);
	if ((st.st_uid != uid || st.st_gid != gid) && fchown(fd, uid, gid) < 0)
		return log_errno(-errno, "%s: chown %u:%u: %m", path, (unsigned)uid, (unsigned)gid);
	if ((st.st_mode & 07777) != mode && fchmod(fd, mode) < 0)
		return log_errno(-errno, "%s: chmod %o: %m", path, (unsigned)mode);
	return 0;
}

int confine_vm_dir(const char *vm_dir, gid_t gid)
{
	return own_dir(vm_dir, 0, gid, gid ? 0710 : 0700);
}

int confine_chroot_dir(const char *vm_dir, char **ret_path)
{
	_cleanup_free_ char *path = path_join(vm_dir, "chroot");
	/* Whatever is inside was not put there by us (we never write into
	 * it): the VMM must find nothing when it looks around. */
	int r = rm_rf(path);
	if (r < 0)
		return log_errno(r, "%s: empty the chroot: %m", path);
	if (mkdir(path, 0555) < 0 && errno != EEXIST)
		return log_errno(-errno, "%s: mkdir: %m", path);
	if ((r = own_dir(path, 0, 0, 0555)) < 0)
		return r;
	*ret_path = TAKE_PTR(path);
	return 0;
}
