/* workdisk.c — see workdisk.h. */
#include "storage/workdisk.h"
#include "storage/cow.h"
#include "util/fileio.h"
#include "util/log.h"
#include "util/proc.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define TOOL_TIMEOUT_MS (5 * 60 * 1000)
#define MIB             (1024ULL * 1024)

/* Run an e2fsprogs tool on path; its output goes to path.log, which is
 * quoted in the error and removed. exit_ok: highest exit status that means
 * success (e2fsck -p exits 1 when it fixed something). */
static int run_tool(const char *tool, const char *arg1, const char *arg2, const char *path,
		    int exit_ok)
{
	_cleanup_free_ char *exe = NULL, *log = xasprintf("%s.log", path), *out = NULL;
	size_t len;
	int r = find_executable(tool, &exe);
	if (r < 0)
		return log_errno(r, "work disk %s: %s not found in PATH: %m", path, tool);
	char *argv[6] = { exe }, **a = argv + 1;
	if (arg1)
		*a++ = (char *)arg1;
	if (arg2)
		*a++ = (char *)arg2;
	*a++ = (char *)path;
	unlink(log);
	r = proc_run(argv, log, TOOL_TIMEOUT_MS);
	if (r >= 0 && r <= exit_ok) {
		unlink(log);
		return 0;
	}
	if (read_file_bounded(log, 64 * 1024, &out, &len) < 0)
		out = xstrdup("");
	unlink(log);
	if (r > 0)
		return log_errno(-EIO, "work disk %s: %s exited with %d: %s", path, tool, r, out);
	return log_errno(r, "work disk %s: run %s: %m", path, tool);
}

static int work_disk_create(const char *path, uint64_t size_mib)
{
	_cleanup_free_ char *tmp = xasprintf("%s.tmp", path);
	_cleanup_close_ int fd = -1;
	int r;
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return log_errno(-errno, "work disk %s: create: %m", tmp);
	if (ftruncate(fd, (off_t)(size_mib * MIB)) < 0) {
		r = log_errno(-errno, "work disk %s: size %" PRIu64 " MiB: %m", tmp, size_mib);
		goto fail;
	}
	r = run_tool("mkfs.ext4", "-qF", "-L" WORK_DISK_LABEL, tmp, 0);
	if (r < 0)
		goto fail;
	if (fsync(fd) < 0 || rename(tmp, path) < 0) {
		r = log_errno(-errno, "work disk %s: put in place: %m", path);
		goto fail;
	}
	log_info("work disk %s: created (%" PRIu64 " MiB ext4)", path, size_mib);
	return fsync_directory_of(path) < 0 ? -EIO : 1;
fail:
	unlink(tmp);
	return r;
}

static int fsync_file(const char *path)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 || fsync(fd) < 0)
		return log_errno(-errno, "work disk %s: fsync: %m", path);
	return 0;
}

/* Grow a copy (path.grow: a reflink where the filesystem can, else a sparse
 * copy), then rename it over path. resize2fs changes the filesystem in place
 * and an aborted run (disk full under it, killed at the timeout) leaves it
 * inconsistent: measured here, "Resize inode not valid" after ENOSPC. The
 * original is never touched until the grown copy is whole and synced, so a
 * failure or a crash at any point leaves the disk usable at its old size.
 * Returns 1 grown, WORK_DISK_KEPT_OLD_SIZE when kept as it was. */
static int work_disk_grow(const char *path, uint64_t have_bytes, uint64_t size_mib)
{
	_cleanup_free_ char *tmp = xasprintf("%s.grow", path);
	uint64_t have_mib = have_bytes / MIB;
	int r;
	unlink(tmp); /* left over from a crash */
	r = storage_clone_file(path, tmp);
	if (r < 0) {
		log_errno(r, "work disk %s: copy for the resize: %m", path);
		goto kept;
	}
	/* Checked first, at the old size: a disk e2fsck -p cannot fix is not grown. */
	r = run_tool("e2fsck", "-f", "-p", tmp, 1);
	if (r >= 0 && truncate(tmp, (off_t)(size_mib * MIB)) < 0)
		r = log_errno(-errno, "work disk %s: extend to %" PRIu64 " MiB: %m", tmp, size_mib);
	if (r >= 0)
		r = run_tool("resize2fs", NULL, NULL, tmp, 0);
	if (r >= 0)
		r = fsync_file(tmp);
	if (r >= 0 && rename(tmp, path) < 0)
		r = log_errno(-errno, "work disk %s: put the grown disk in place: %m", path);
	if (r < 0)
		goto kept;
	log_info("work disk %s: grown from %" PRIu64 " to %" PRIu64 " MiB", path, have_mib,
		 size_mib);
	return fsync_directory_of(path) < 0 ? -EIO : 1;
kept:
	unlink(tmp);
	log_warn("work disk %s: resize to %" PRIu64 " MiB failed (%s); kept at %" PRIu64
		 " MiB, unchanged",
		 path, size_mib, strerror(-r), have_mib);
	return WORK_DISK_KEPT_OLD_SIZE;
}

static int work_disk_ensure_internal(const char *path, uint64_t size_mib, bool grow);

int work_disk_ensure(const char *path, uint64_t size_mib)
{
	return work_disk_ensure_internal(path, size_mib, true);
}

int work_disk_ensure_no_grow(const char *path, uint64_t size_mib)
{
	return work_disk_ensure_internal(path, size_mib, false);
}

bool work_disk_needs_grow(const char *path, uint64_t size_mib)
{
	struct stat st;
	return path && lstat(path, &st) == 0 && S_ISREG(st.st_mode) &&
	       (uint64_t)st.st_size < size_mib * MIB;
}

int work_disk_grow_start(const char *path, uint64_t size_mib, pid_t *ret_pid)
{
	pid_t pid = fork();
	if (pid < 0)
		return log_errno(-errno, "work disk %s: fork for the resize: %m", path);
	if (pid == 0) {
		/* The child only grows the file (and runs e2fsprogs): it never
		 * touches the database or the event loop it inherited. */
		int r = work_disk_ensure(path, size_mib);
		_exit(r == 1 ? 0 : r == WORK_DISK_KEPT_OLD_SIZE ? 2 : r == 0 ? 3 : 1);
	}
	*ret_pid = pid;
	return 0;
}

int work_disk_grow_poll(pid_t pid, int *ret_result)
{
	int status;
	pid_t w = waitpid(pid, &status, WNOHANG);
	if (w == 0)
		return 0;
	if (w < 0)
		*ret_result = -errno;
	else if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		*ret_result = 1;
	else if (WIFEXITED(status) && WEXITSTATUS(status) == 3)
		*ret_result = 0;
	else if (WIFEXITED(status) && WEXITSTATUS(status) == 2)
		*ret_result = WORK_DISK_KEPT_OLD_SIZE;
	else
		*ret_result = -EIO;
	return 1;
}

static int work_disk_ensure_internal(const char *path, uint64_t size_mib, bool grow)
{
	struct stat st;
	uint64_t have;
	if (!path || size_mib < WORK_DISK_MIN_MIB || size_mib > WORK_DISK_MAX_MIB)
		return log_errno(-EINVAL, "work disk %s: size %" PRIu64 " MiB outside %llu..%llu",
				 path ? path : "(null)", size_mib, WORK_DISK_MIN_MIB,
				 WORK_DISK_MAX_MIB);
	if (lstat(path, &st) < 0) {
		if (errno != ENOENT)
			return log_errno(-errno, "work disk %s: %m", path);
		return work_disk_create(path, size_mib);
	}
	if (!S_ISREG(st.st_mode))
		return log_errno(-EINVAL, "work disk %s exists and is not a regular file", path);
	have = (uint64_t)st.st_size / MIB;
	if ((uint64_t)st.st_size % MIB == 0 && have == size_mib)
		return 0;
	if ((uint64_t)st.st_size > size_mib * MIB)
		return log_errno(-EINVAL,
				 "work disk %s is %" PRIu64 " MiB; the spec asks for %" PRIu64
				 " MiB, and shrinking would lose data (delete the VM to "
				 "start over, or keep the size)",
				 path, have, size_mib);
	if (!grow)
		return WORK_DISK_KEPT_OLD_SIZE;
	return work_disk_grow(path, (uint64_t)st.st_size, size_mib);
}
