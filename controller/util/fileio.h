/* fileio.h — bounded reads and durable, atomic file replacement.
 *
 * Durable replace follows redis' fsyncFileDir pattern: write a temp file in
 * the same directory, fsync it, rename over the target, fsync the directory.
 * The batch API lets a cold sync of thousands of files pay for one syncfs()
 * and one directory fsync instead of two fsyncs per file (measured: 6.7 s vs
 * 0.86 s for 10,000 files). */
#pragma once

#include "util.h"

#include <sys/types.h>

/* Read a whole regular file of at most max bytes into a NUL-terminated
 * buffer. -EFBIG when larger, -EISDIR/-EINVAL for non-regular files. Opens
 * with O_NOFOLLOW only if nofollow is set. */
int read_file_bounded(const char *path, size_t max, char **ret, size_t *ret_len);
int read_fd_bounded(int fd, size_t max, char **ret, size_t *ret_len);

/* Atomically and durably replace path with data (mode applied to the new
 * file). Returns 0 on success, -errno on failure; never leaves a temp file. */
int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode);

/* write_file_atomic without the final directory fsync, for a caller that
 * renames another file into the same directory next and fsyncs the
 * directory then: one directory fsync makes both names durable. Until it
 * does, a power loss may keep the old name or the new one. */
int write_file_atomic_dir_pending(const char *path, const void *data, size_t len, mode_t mode);

/* Atomically replace path with data, without fsync: a reader (this process
 * or the next one after a crash or kill -9) sees the old file or the new
 * one, never a mix, because both live in the page cache. After an OS crash
 * or power loss the file may be old, empty or garbage. Only for records of
 * things that do not survive an OS crash themselves (processes, taps, nft
 * rules, loop and dm devices): there a lost record names nothing that still
 * exists. The two fsyncs this skips took 3-7 ms (file) and 0.1-13 ms
 * (directory) on the 2-core dev VM while other jobs wrote (2026-11-30). */
int write_file_replace(const char *path, const void *data, size_t len, mode_t mode);

/* Atomically replace path with data unless it already holds exactly data.
 * Returns 1 when written, 0 when unchanged, -errno on failure. */
int write_file_atomic_if_changed(const char *path, const void *data, size_t len, mode_t mode);

/* Batched variant: stage writes (temp files, no fsync) and removals, then
 * commit them all: the temps made durable (one syncfs, or an fsync each when
 * there are only a few), renames and unlinks in staging order, and one fsync
 * per distinct directory. A later write or removal of the same path cancels
 * the earlier one, so only the last word on each path reaches the disk. */
typedef struct AtomicBatch AtomicBatch;
AtomicBatch *atomic_batch_new(void);
/* Returns 1 staged, 0 unchanged (nothing to do), -errno. */
int atomic_batch_write(AtomicBatch *b, const char *path, const void *data, size_t len, mode_t mode);
/* Stage the removal of path. Returns 1 staged, 0 nothing there (an earlier
 * staged write of it is cancelled either way). */
int atomic_batch_remove(AtomicBatch *b, const char *path);
/* Commit; returns the first error. The batch is empty afterwards and may be
 * used again. Frees nothing: call atomic_batch_free. */
int atomic_batch_commit(AtomicBatch *b);
/* Frees the batch and removes any temp files not committed. NULL ok. */
void atomic_batch_free(AtomicBatch *b);

/* The temp files above are named ".<base>.<16 hex digits>.tmp" beside their
 * target: for such a name, the <base> it was made for (caller frees), else
 * NULL. A crash can leave them behind; their owner removes them at start. */
char *atomic_temp_target(const char *file_name);

int fsync_directory_of(const char *path);
int fsync_path(const char *dir);

/* mkdir -p; each component it creates gets exactly mode (fchmod, not the
 * umask); existing ones are left alone. */
int mkdir_p(const char *path, mode_t mode);

/* Unlink a file durably (unlink + fsync dir). -ENOENT is returned as 0. */
int unlink_durable(const char *path);

/* Recursively remove a directory tree (no symlink following). -ENOENT -> 0. */
int rm_rf(const char *path);
