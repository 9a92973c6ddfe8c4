/* fileio.c — see fileio.h. */
#include "fileio.h"
#include "hashmap.h"

#include <dirent.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <sys/random.h>
#include <sys/stat.h>

int read_fd_bounded(int fd, size_t max, char **ret, size_t *ret_len)
{
	struct stat st;
	_cleanup_free_ char *buf = NULL;
	size_t len = 0, cap;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (S_ISDIR(st.st_mode))
		return -EISDIR;
	if (!S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode))
		return -EINVAL;
	if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > max)
		return -EFBIG;
	cap = S_ISREG(st.st_mode) ? (size_t)st.st_size + 1 : 4096;
	buf = xmalloc(cap);
	for (;;) {
		if (len + 1 >= cap) {
			if (cap > max + 1)
				return -EFBIG;
			cap = MIN(cap * 2, max + 2);
			buf = xrealloc(buf, cap);
		}
		ssize_t n = read(fd, buf + len, cap - len - 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > max)
			return -EFBIG;
	}
	buf[len] = 0;
	*ret = TAKE_PTR(buf);
	if (ret_len)
		*ret_len = len;
	return 0;
}

int read_file_bounded(const char *path, size_t max, char **ret, size_t *ret_len)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	return read_fd_bounded(fd, max, ret, ret_len);
}

static int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static char *dir_of(const char *path)
{
	_cleanup_free_ char *copy = xstrdup(path);
	return xstrdup(dirname(copy));
}

int fsync_path(const char *dir)
{
	_cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		return -errno;
	return 0;
}

int fsync_directory_of(const char *path)
{
	_cleanup_free_ char *d = dir_of(path);
	return fsync_path(d);
}

#define TEMP_RANDOM_HEX 16

char *atomic_temp_target(const char *file_name)
{
	size_t n = strlen(file_name);
	const size_t tail = 1 + TEMP_RANDOM_HEX + strlen(".tmp"); /* ".<hex>.tmp" */
	if (file_name[0] != '.' || n < 2 + tail || !endswith(file_name, ".tmp") ||
	    file_name[n - tail] != '.')
		return NULL;
	for (size_t i = n - tail + 1; i < n - strlen(".tmp"); i++)
		if (!strchr("0123456789abcdef", file_name[i]))
			return NULL;
	return xstrndup(file_name + 1, n - tail - 1);
}

/* Create "<dir>/.<base>.XXXXXX.tmp"-style temp file next to path. The name
 * starts with a dot and ends in .tmp so our own watcher ignores it. */
static int open_temp_beside(const char *path, mode_t mode, char **ret_tmp)
{
	_cleanup_free_ char *copy = xstrdup(path);
	_cleanup_free_ char *d = dir_of(path);
	const char *base = basename(copy);
	for (int attempt = 0; attempt < 100; attempt++) {
		/* Unpredictable, so nobody can plant the name first: random()
		 * was never seeded and gave the same sequence in every run. */
		uint64_t r;
		if (getrandom(&r, sizeof(r), 0) != sizeof(r))
			return errno ? -errno : -EIO;
		char *tmp = xasprintf("%s/.%s.%0*llx.tmp", d, base, TEMP_RANDOM_HEX,
				      (unsigned long long)r);
		int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
		if (fd >= 0) {
			*ret_tmp = tmp;
			return fd;
		}
		int e = errno;
		free(tmp);
		if (e != EEXIST)
			return -e;
	}
	return -EEXIST;
}

static int write_temp(const char *path, const void *data, size_t len, mode_t mode, bool sync,
		      char **ret_tmp)
{
	_cleanup_free_ char *tmp = NULL;
	_cleanup_close_ int fd = open_temp_beside(path, mode, &tmp);
	int r;

	if (fd < 0)
		return fd;
	r = write_all(fd, data, len);
	if (r >= 0 && fchmod(fd, mode) < 0)
		r = -errno;
	if (r >= 0 && sync && fsync(fd) < 0)
		r = -errno;
	if (r < 0) {
		unlink(tmp);
		return r;
	}
	*ret_tmp = TAKE_PTR(tmp);
	return 0;
}

/* A temp file beside path (its data fsync'd or not), renamed over path. */
static int write_and_rename(const char *path, const void *data, size_t len, mode_t mode, bool sync)
{
	_cleanup_free_ char *tmp = NULL;
	int r = write_temp(path, data, len, mode, sync, &tmp);
	if (r < 0)
		return r;
	if (rename(tmp, path) < 0) {
		r = -errno;
		unlink(tmp);
		return r;
	}
	return 0;
}

int write_file_atomic_dir_pending(const char *path, const void *data, size_t len, mode_t mode)
{
	return write_and_rename(path, data, len, mode, true);
}

int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	int r = write_file_atomic_dir_pending(path, data, len, mode);
	return r < 0 ? r : fsync_directory_of(path);
}

int write_file_replace(const char *path, const void *data, size_t len, mode_t mode)
{
	return write_and_rename(path, data, len, mode, false);
}

/* Compare file content with data without reading more than len+1 bytes. */
static bool file_equals(const char *path, const void *data, size_t len)
{
	_cleanup_free_ char *cur = NULL;
	size_t curlen;
	if (read_file_bounded(path, len, &cur, &curlen) < 0)
		return false;
	return curlen == len && memcmp(cur, data, len) == 0;
}

int write_file_atomic_if_changed(const char *path, const void *data, size_t len, mode_t mode)
{
	if (file_equals(path, data, len))
		return 0;
	int r = write_file_atomic(path, data, len, mode);
	return r < 0 ? r : 1;
}

/* One staged operation: a rename of tmp over path, or (tmp NULL) an unlink
 * of path. A later operation on the same path cancels the earlier one
 * (done), so the batch applies only the last word on each path. */
typedef struct {
	char *tmp, *path;
	bool done;
} StagedFile;

struct AtomicBatch {
	StagedFile *files;
	size_t n, cap;
	Hashmap *last; /* path → index + 1 of its live operation in files */
	size_t live;   /* staged writes not cancelled (decides fsync vs syncfs) */
};

/* Up to this many staged files are fsynced one by one; more pay one syncfs.
 * A lone edit must not pay for a sync of the whole filesystem (whatever
 * else is dirty on it), and a burst must not pay one fsync per file. */
#define BATCH_FSYNC_EACH_MAX 8

AtomicBatch *atomic_batch_new(void)
{
	AtomicBatch *b = xcalloc(1, sizeof(AtomicBatch));
	b->last = hashmap_new();
	return b;
}

/* Drop the live operation staged for path, if any (its temp file goes). */
static void batch_cancel(AtomicBatch *b, const char *path)
{
	uintptr_t i = (uintptr_t)hashmap_remove(b->last, path);
	if (!i)
		return;
	StagedFile *f = &b->files[i - 1];
	if (f->tmp) {
		unlink(f->tmp);
		free(f->tmp);
		f->tmp = NULL;
		b->live--;
	}
	f->done = true;
}

static void batch_push(AtomicBatch *b, char *tmp, const char *path)
{
	if (b->n == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 64;
		b->files = xrealloc(b->files, b->cap * sizeof(StagedFile));
	}
	b->files[b->n++] = (StagedFile){ .tmp = tmp, .path = xstrdup(path) };
	hashmap_put(b->last, path, (void *)(uintptr_t)b->n);
	if (tmp)
		b->live++;
}

int atomic_batch_write(AtomicBatch *b, const char *path, const void *data, size_t len, mode_t mode)
{
	char *tmp = NULL;
	int r;

	/* After the cancel, what is on disk is what stays unless we stage: an
	 * A→B→A sequence in one batch must end as A, not as the staged B. */
	batch_cancel(b, path);
	if (file_equals(path, data, len))
		return 0;
	r = write_temp(path, data, len, mode, false, &tmp);
	if (r < 0)
		return r;
	batch_push(b, tmp, path);
	return 1;
}

int atomic_batch_remove(AtomicBatch *b, const char *path)
{
	batch_cancel(b, path);
	if (access(path, F_OK) < 0 && errno == ENOENT)
		return 0;
	batch_push(b, NULL, path);
	return 1;
}

/* Make every staged temp durable: fsync each of a few, syncfs for many. */
static int batch_sync_temps(AtomicBatch *b)
{
	int r = 0;
	bool each = b->live <= BATCH_FSYNC_EACH_MAX;
	for (size_t i = 0; i < b->n; i++) {
		if (!b->files[i].tmp)
			continue;
		_cleanup_close_ int fd = open(b->files[i].tmp, O_RDONLY | O_CLOEXEC);
		if ((fd < 0 || (each ? fsync(fd) : syncfs(fd)) < 0) && r == 0)
			r = -errno;
		if (!each)
			break; /* one syncfs covers every temp (one filesystem) */
	}
	return r;
}

int atomic_batch_commit(AtomicBatch *b)
{
	char **dirs;
	size_t nd = 0;

	if (b->n == 0)
		return 0;
	/* Temps durable before the renames: a crash shows old or new, never
	 * an empty file. A sync error is reported; the renames still go on,
	 * as write-back will get the data there if the disk recovers. */
	int r = batch_sync_temps(b);
	dirs = xcalloc(b->n, sizeof(char *));
	for (size_t i = 0; i < b->n; i++) {
		StagedFile *f = &b->files[i];
		if (f->done)
			continue;
		f->done = true;
		if (f->tmp ? rename(f->tmp, f->path) < 0 : unlink(f->path) < 0 && errno != ENOENT) {
			if (r == 0)
				r = -errno;
			if (f->tmp)
				unlink(f->tmp);
		}
		free(f->tmp);
		f->tmp = NULL;
		dirs[nd++] = dir_of(f->path);
	}
	b->live = 0;
	hashmap_free(b->last);
	b->last = hashmap_new();
	qsort(dirs, nd, sizeof(char *), strcmp_ptr);
	for (size_t i = 0; i < nd; i++) {
		if (i == 0 || !streq(dirs[i], dirs[i - 1])) {
			int k = fsync_path(dirs[i]);
			if (k < 0 && r == 0)
				r = k;
		}
	}
	for (size_t i = 0; i < nd; i++)
		free(dirs[i]);
	free(dirs);
	return r;
}

void atomic_batch_free(AtomicBatch *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->n; i++) {
		if (b->files[i].tmp) {
			unlink(b->files[i].tmp);
			free(b->files[i].tmp);
		}
		free(b->files[i].path);
	}
	free(b->files);
	hashmap_free(b->last);
	free(b);
}

/* Create one directory with exactly mode: mkdir() applies the umask, so the
 * mode is set again with fchmod on the directory we just made (opened
 * without following a symlink, in case the name was swapped meanwhile).
 * An existing directory is left as it is: it is the operator's. */
static int mkdir_exact(const char *p, mode_t mode)
{
	if (mkdir(p, mode) < 0)
		return errno == EEXIST ? 0 : -errno;
	_cleanup_close_ int fd = open(p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fchmod(fd, mode) < 0)
		return -errno;
	return 0;
}

int mkdir_p(const char *path, mode_t mode)
{
	_cleanup_free_ char *p = xstrdup(path);
	int r;
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = 0;
		if ((r = mkdir_exact(p, mode)) < 0)
			return r;
		*s = '/';
	}
	return mkdir_exact(p, mode);
}

int unlink_durable(const char *path)
{
	if (unlink(path) < 0)
		return errno == ENOENT ? 0 : -errno;
	return fsync_directory_of(path);
}

static int rm_rf_at(int parent, const char *name)
{
	struct stat st;
	if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode))
		return unlinkat(parent, name, 0) < 0 && errno != ENOENT ? -errno : 0;

	int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	int r = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (streq(de->d_name, ".") || streq(de->d_name, ".."))
			continue;
		int k = rm_rf_at(dirfd(d), de->d_name);
		if (k < 0 && r == 0)
			r = k;
	}
	closedir(d);
	if (unlinkat(parent, name, AT_REMOVEDIR) < 0 && errno != ENOENT && r == 0)
		r = -errno;
	return r;
}

int rm_rf(const char *path)
{
	return rm_rf_at(AT_FDCWD, path);
}
