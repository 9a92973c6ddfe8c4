/* specdir.c — see specdir.h. */
#include "spec/specdir.h"
#include "spec/spec.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

typedef struct {
	char **out;
	size_t n, cap;
	SpecDirSkipFn skip;
	void *userdata;
} Walk;

static const char *const skip_reasons[_SPEC_SKIP_MAX] = {
	[SPEC_SKIP_SYMLINK] = "a symlink; symlinks below the spec dir are never followed",
	[SPEC_SKIP_SPECIAL] = "not a regular file (FIFO, socket or device)",
	[SPEC_SKIP_TOO_DEEP] = "a directory more than 16 levels deep (SPEC_DIR_MAX_DEPTH); "
			       "not entered",
};
_Static_assert(SPEC_DIR_MAX_DEPTH == 16, "the TOO_DEEP reason spells the limit out");

const char *spec_skip_reason(SpecSkipKind kind)
{
	return kind < _SPEC_SKIP_MAX ? skip_reasons[kind] : "skipped";
}

static void report(Walk *w, const char *rel, SpecSkipKind kind)
{
	if (w->skip)
		w->skip(w->userdata, rel, kind);
}

static void add(Walk *w, char *rel)
{
	if (w->n + 2 > w->cap) { /* geometric: a resync lists every file */
		w->cap = w->cap * 2 + 16;
		w->out = xrealloc(w->out, w->cap * sizeof(char *));
	}
	w->out[w->n++] = rel;
	w->out[w->n] = NULL;
}

static unsigned char type_of(DIR *d, const struct dirent *de)
{
	struct stat st;
	if (de->d_type != DT_UNKNOWN)
		return de->d_type;
	if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return DT_UNKNOWN;
	return S_ISDIR(st.st_mode)   ? DT_DIR
	       : S_ISREG(st.st_mode) ? DT_REG
	       : S_ISLNK(st.st_mode) ? DT_LNK
				     : DT_FIFO;
}

/* A symlink is worth a word when it looks like a spec or leads to a
 * directory (someone expected us to enter it). */
static bool link_worth_reporting(DIR *d, const char *name, const char *rel)
{
	struct stat st;
	return spec_path_is_candidate(rel) ||
	       (fstatat(dirfd(d), name, &st, 0) == 0 && S_ISDIR(st.st_mode));
}

static int walk(Walk *w, int fd, const char *rel, unsigned depth);

static int enter(Walk *w, DIR *d, const char *name, const char *child, unsigned depth)
{
	if (depth >= SPEC_DIR_MAX_DEPTH) {
		report(w, child, SPEC_SKIP_TOO_DEEP);
		return 0;
	}
	int sub = openat(dirfd(d), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (sub >= 0)
		return walk(w, sub, child, depth + 1);
	/* Gone or swapped for a symlink or a file since readdir: what it is
	 * now is what the next event or resync sees. Anything else (EMFILE,
	 * EIO) fails the listing. */
	if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP) {
		if (errno != ENOENT)
			report(w, child, SPEC_SKIP_SYMLINK);
		return 0;
	}
	return -errno;
}

static int walk(Walk *w, int fd, const char *rel, unsigned depth)
{
	DIR *d = fdopendir(fd);
	struct dirent *de;
	int r = 0;

	if (!d) {
		r = -errno;
		close(fd);
		return r;
	}
	for (errno = 0; r >= 0 && (de = readdir(d)); errno = 0) {
		if (de->d_name[0] == '.')
			continue;
		_cleanup_free_ char *child =
			rel[0] ? xasprintf("%s/%s", rel, de->d_name) : xstrdup(de->d_name);
		switch (type_of(d, de)) {
		case DT_DIR: r = enter(w, d, de->d_name, child, depth); break;
		case DT_REG:
			if (spec_path_is_candidate(child))
				add(w, TAKE_PTR(child));
			break;
		case DT_LNK:
			if (link_worth_reporting(d, de->d_name, child))
				report(w, child, SPEC_SKIP_SYMLINK);
			break;
		case DT_UNKNOWN: /* vanished between readdir and fstatat */ break;
		default:
			if (spec_path_is_candidate(child))
				report(w, child, SPEC_SKIP_SPECIAL);
			break;
		}
	}
	if (r >= 0 && errno != 0)
		r = -errno;
	closedir(d);
	return r;
}

int spec_dir_list_full(const char *dir, SpecDirSkipFn skip, void *userdata, char ***ret_rel_strv)
{
	Walk w = {
		.out = xcalloc(1, sizeof(char *)), .cap = 1, .skip = skip, .userdata = userdata
	};
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r = fd < 0 ? -errno : walk(&w, fd, "", 0);
	if (r < 0) {
		strv_free(w.out);
		return r;
	}
	qsort(w.out, w.n, sizeof(char *), strcmp_ptr);
	*ret_rel_strv = w.out;
	return 0;
}

int spec_dir_list(const char *dir, char ***ret_rel_strv)
{
	return spec_dir_list_full(dir, NULL, NULL, ret_rel_strv);
}
