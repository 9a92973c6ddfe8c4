/* trust.c — see trust.h. */
#include "util/trust.h"

#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <linux/openat2.h>
#include <pwd.h>
#include <sys/syscall.h>

static bool owner_trusted(uid_t uid, const TrustPolicy *p)
{
	if (uid == 0)
		return true;
	for (size_t i = 0; p && i < p->n_owners; i++)
		if (p->owners[i] == uid)
			return true;
	return false;
}

int trust_check_stat(const struct stat *st, const TrustPolicy *p, char **ret_why)
{
	mode_t w = st->st_mode & (S_IWGRP | S_IWOTH);

	if (!owner_trusted(st->st_uid, p)) {
		*ret_why = xasprintf("owned by uid %u, not root or a --spec-owner",
				     (unsigned)st->st_uid);
		return -EPERM;
	}
	/* A symlink's own mode bits mean nothing (always 0777). */
	if (w && !S_ISLNK(st->st_mode)) {
		*ret_why = xasprintf("writable by %s (mode %04o)",
				     w == (S_IWGRP | S_IWOTH) ? "group and others"
				     : w == S_IWGRP           ? "group"
							      : "others",
				     (unsigned)(st->st_mode & 07777));
		return -EPERM;
	}
	return 0;
}

/* dir and every parent of it up to /; dir is canonical. */
static int check_chain(const char *canonical, const TrustPolicy *p, char **ret_why)
{
	char buf[PATH_MAX];
	struct stat st;

	if (strlen(canonical) >= sizeof(buf))
		return -ENAMETOOLONG;
	strcpy(buf, canonical);
	for (;;) {
		_cleanup_free_ char *why = NULL;
		if (stat(buf, &st) < 0) {
			int e = -errno;
			*ret_why = xasprintf("%s: %s", buf, strerror(-e));
			return e;
		}
		if (!S_ISDIR(st.st_mode)) {
			*ret_why = xasprintf("%s is not a directory", buf);
			return -ENOTDIR;
		}
		if (trust_check_stat(&st, p, &why) < 0) {
			*ret_why = xasprintf("%s is %s", buf, why);
			return -EPERM;
		}
		if (streq(buf, "/"))
			return 0;
		char *d = dirname(buf);
		memmove(buf, d, strlen(d) + 1);
	}
}

/* A symlink on the way: it must belong to a trusted owner, and only trusted
 * users may write the directory it sits in (they alone can swap it). */
static int check_link(const char *prefix, const struct stat *st, const TrustPolicy *p,
		      char **ret_why)
{
	_cleanup_free_ char *why = NULL, *copy = xstrdup(prefix);
	if (trust_check_stat(st, p, &why) < 0) {
		*ret_why = xasprintf("symlink %s is %s", prefix, why);
		return -EPERM;
	}
	_cleanup_free_ char *parent = realpath(dirname(copy), NULL);
	if (!parent) {
		int e = -errno;
		*ret_why = xasprintf("%s: %s", prefix, strerror(-e));
		return e;
	}
	return check_chain(parent, p, ret_why);
}

int trust_check_dir_path(const char *path, const TrustPolicy *p, char **ret_why)
{
	_cleanup_free_ char *abs = NULL, *real = NULL;
	char cwd[PATH_MAX];
	struct stat st;
	int r;

	if (path[0] != '/') {
		if (!getcwd(cwd, sizeof(cwd)))
			return -errno;
		abs = path_join(cwd, path);
	} else
		abs = xstrdup(path);
	/* Every prefix of the path as written: a symlink anywhere counts. */
	for (char *slash = abs + 1;; slash++) {
		bool end = *slash == 0;
		if (*slash != '/' && !end)
			continue;
		char saved = *slash;
		*slash = 0;
		r = lstat(abs, &st);
		if (r == 0 && S_ISLNK(st.st_mode))
			r = check_link(abs, &st, p, ret_why);
		else if (r < 0) {
			r = -errno;
			*ret_why = xasprintf("%s: %s", abs, strerror(-r));
		}
		*slash = saved;
		if (r < 0)
			return r;
		if (end)
			break;
	}
	real = realpath(abs, NULL);
	if (!real) {
		r = -errno;
		*ret_why = xasprintf("%s: %s", abs, strerror(-r));
		return r;
	}
	return check_chain(real, p, ret_why);
}

int trust_parse_owner(const char *user, uid_t *ret)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	uint64_t v;

	if (parse_u64(user, 0, 4294967294ULL, &v) == 0) {
		*ret = (uid_t)v;
		return 0;
	}
	int e = getpwnam_r(user, &pw, buf, sizeof(buf), &res);
	if (e != 0)
		return -e;
	if (!res)
		return -ENOENT;
	*ret = pw.pw_uid;
	return 0;
}

/* Set once a kernel said ENOSYS: no point asking again. */
static bool openat2_missing;

int openat_beneath_walk(int dirfd, const char *rel, int flags)
{
	_cleanup_free_ char *copy = xstrdup(rel);
	_cleanup_close_ int cur = -1;
	char *save = NULL, *comp = strtok_r(copy, "/", &save);

	if (rel[0] == '/')
		return -EXDEV;
	if (!comp)
		return -EINVAL;
	for (;;) {
		char *next = strtok_r(NULL, "/", &save);
		int base = cur >= 0 ? cur : dirfd, fd;
		if (streq(comp, ".."))
			return -EXDEV;
		if (next)
			fd = openat(base, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		else
			fd = openat(base, comp, flags | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) {
			int e = -errno;
			struct stat st;
			/* O_NOFOLLOW says ELOOP for the last component, ENOTDIR
			 * (O_DIRECTORY) for one on the way: say ELOOP for both. */
			if (e == -ENOTDIR && fstatat(base, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			    S_ISLNK(st.st_mode))
				e = -ELOOP;
			return e;
		}
		if (!next)
			return fd;
		closep(&cur);
		cur = fd;
		comp = next;
	}
}

int openat_beneath(int dirfd, const char *rel, int flags)
{
	if (!openat2_missing) {
		struct open_how how = {
			.flags = (uint64_t)(flags | O_CLOEXEC),
			.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
		};
		long fd = syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));
		if (fd >= 0)
			return (int)fd;
		if (errno != ENOSYS)
			return -errno;
		openat2_missing = true;
	}
	return openat_beneath_walk(dirfd, rel, flags);
}

int trust_openat(int rootfd, const char *rel, const TrustPolicy *p, int flags, struct stat *ret_st,
		 char **ret_why)
{
	_cleanup_free_ char *copy = xstrdup(rel), *why = NULL;
	_cleanup_close_ int dir = -1;
	struct stat st;
	char *save = NULL, *comp = strtok_r(copy, "/", &save);

	if (!comp)
		return -EINVAL;
	for (char *next; comp; comp = next) {
		next = strtok_r(NULL, "/", &save);
		int fd = openat_beneath(dir >= 0 ? dir : rootfd, comp,
					next ? O_PATH | O_DIRECTORY : flags);
		if (fd < 0)
			return fd;
		closep(&dir);
		dir = fd;
		if (fstat(fd, &st) < 0)
			return -errno;
		if (trust_check_stat(&st, p, &why) < 0) {
			/* Name the part that failed: "web.yaml", "team-a/". */
			size_t upto = (size_t)(comp - copy) + strlen(comp);
			*ret_why = xasprintf("%.*s%s is %s", (int)upto, rel, next ? "/" : "", why);
			return -EPERM;
		}
	}
	*ret_st = st;
	return TAKE_FD(dir);
}
