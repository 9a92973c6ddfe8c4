/* specdir.c — see specdir.h. */
#include "spec/specdir.h"
#include "spec/spec.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

/* out grows geometrically (*cap slots): a resync lists every file. */
static void walk(int fd, const char *rel, unsigned depth, char ***out, size_t *n, size_t *cap)
{
	DIR *d = fdopendir(fd);
	struct dirent *de;
	if (!d) {
		close(fd);
		return;
	}
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		_cleanup_free_ char *child =
			rel[0] ? xasprintf("%s/%s", rel, de->d_name) : xstrdup(de->d_name);
		unsigned char type = de->d_type;
		if (type == DT_UNKNOWN) {
			struct stat st;
			if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
				continue;
			type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG : DT_UNKNOWN;
		}
		if (type == DT_DIR && depth < SPEC_DIR_MAX_DEPTH) {
			int sub = openat(dirfd(d), de->d_name,
					 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub >= 0)
				walk(sub, child, depth + 1, out, n, cap);
		} else if (type == DT_REG && spec_path_is_candidate(child)) {
			if (*n + 2 > *cap) {
				*cap = *cap * 2 + 16;
				*out = xrealloc(*out, *cap * sizeof(char *));
			}
			(*out)[(*n)++] = TAKE_PTR(child);
			(*out)[*n] = NULL;
		}
	}
	closedir(d);
}

int spec_dir_list(const char *dir, char ***ret_rel_strv)
{
	char **out = xcalloc(1, sizeof(char *));
	size_t n = 0, cap = 1;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		free(out);
		return -errno;
	}
	walk(fd, "", 0, &out, &n, &cap);
	qsort(out, n, sizeof(char *), strcmp_ptr);
	*ret_rel_strv = out;
	return 0;
}
