/* imageroot.c — see imageroot.h. */
#include "storage/imageroot.h"
#include "util/log.h"

#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>

bool storage_path_is_under(const char *path, const char *dir)
{
	size_t n;
	if (!path || !dir || path[0] != '/' || dir[0] != '/')
		return false;
	/* "/" is the only normalised path that ends in a slash. */
	if (streq(dir, "/"))
		return true;
	n = strlen(dir);
	return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* "a, b, c" for messages; "(none)" for an empty list. */
static char *roots_to_string(char *const *roots)
{
	char *s = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&s, &len);
	if (!f)
		return xstrdup("?");
	for (size_t i = 0; roots && roots[i]; i++)
		fprintf(f, "%s%s", i ? ", " : "", roots[i]);
	if (!roots || !roots[0])
		fputs("(none)", f);
	fclose(f);
	return s ? s : xstrdup("?");
}

/* True when real lies in the realpath of some root; roots that do not
 * resolve are skipped (they cannot contain anything). */
static bool inside_some_root(const char *real, char *const *roots)
{
	for (size_t i = 0; roots && roots[i]; i++) {
		_cleanup_free_ char *r = realpath(roots[i], NULL);
		if (!r) {
			log_debug("image root %s does not resolve: %m", roots[i]);
			continue;
		}
		if (storage_path_is_under(real, r))
			return true;
	}
	return false;
}

static const char *file_kind(mode_t m)
{
	if (S_ISDIR(m))
		return "a directory";
	if (S_ISBLK(m))
		return "a block device";
	if (S_ISCHR(m))
		return "a character device";
	if (S_ISFIFO(m))
		return "a fifo";
	if (S_ISSOCK(m))
		return "a socket";
	return "not a regular file";
}

int image_path_check(const char *path, char *const *roots_strv, char **ret_realpath)
{
	_cleanup_free_ char *allowed = roots_to_string(roots_strv);
	_cleanup_free_ char *real = NULL;
	struct stat st;

	if (!path || !*path)
		return log_errno(-EINVAL, "image path is empty (allowed roots: %s)", allowed);
	if (!roots_strv || !roots_strv[0])
		return log_errno(-EPERM, "image %s: no image roots are configured", path);
	real = realpath(path, NULL);
	if (!real) {
		/* "a/file/x" is as missing as "a/nothing/x". */
		int e = errno == ENOTDIR ? ENOENT : errno;
		return log_errno(-e, "image %s: cannot resolve (allowed roots: %s): %m", path,
				 allowed);
	}
	if (!inside_some_root(real, roots_strv))
		return log_errno(-EPERM,
				 "image %s resolves to %s, outside the allowed image roots (%s)",
				 path, real, allowed);
	if (stat(real, &st) < 0)
		return log_errno(-errno, "image %s: stat %s: %m", path, real);
	if (!S_ISREG(st.st_mode))
		return log_errno(-EINVAL, "image %s (%s) is %s; a regular file is required", path,
				 real, file_kind(st.st_mode));
	if (access(real, R_OK) < 0)
		return log_errno(-errno, "image %s (%s) is not readable: %m", path, real);
	*ret_realpath = TAKE_PTR(real);
	return 0;
}
