/* workdisk.h — a VM's scratch disk: a sparse raw file holding ext4
 * (label "banger-work"), made with mkfs.ext4 (execve, no shell). It lives in
 * the VM dir and is removed with it by the caller.
 *
 * Size changes, decided here once:
 *  - same size: kept untouched (a restart keeps its data);
 *  - larger size requested: grown on a copy — path.grow (a reflink where the
 *    filesystem shares extents, else a sparse copy) is checked with
 *    `e2fsck -f -p`, extended and given to `resize2fs`, then renamed over
 *    path. An aborted resize2fs leaves a broken filesystem, so the original
 *    is never resized in place: a failure at any step (tool missing or
 *    failing, disk full, timeout) or a crash leaves it untouched at its old
 *    size; WORK_DISK_KEPT_OLD_SIZE tells the caller, which starts the VM
 *    anyway. Only call this while no VM has the disk open. The tools run as
 *    children bounded by a timeout (5 min each). An event loop must not wait
 *    for them: it runs the grow in a child (work_disk_grow_start/poll) and
 *    then calls work_disk_ensure_no_grow();
 *  - smaller size requested: refused with -EINVAL (shrinking an ext4 that
 *    holds data is not something to do behind the user's back; delete the
 *    VM, or keep the size). */
#pragma once

#include "util/util.h"

#include <sys/types.h>

#define WORK_DISK_MIN_MIB 4ULL
#define WORK_DISK_MAX_MIB (16ULL * 1024 * 1024) /* 16 TiB */
#define WORK_DISK_LABEL   "banger-work"

#define WORK_DISK_KEPT_OLD_SIZE 2

/* Returns 1 when created or grown, 0 when kept as it was,
 * WORK_DISK_KEPT_OLD_SIZE when a grow failed and the disk is usable at its
 * old size, -errno. A new
 * disk is made as path.tmp and renamed, so a crash never leaves a file
 * without a filesystem under path. */
int work_disk_ensure(const char *path, uint64_t size_mib);
/* The same, except that a disk smaller than size_mib is not grown:
 * WORK_DISK_KEPT_OLD_SIZE (the caller's grow ran, and failed, elsewhere). */
int work_disk_ensure_no_grow(const char *path, uint64_t size_mib);

/* The disk exists and is smaller than size_mib. */
bool work_disk_needs_grow(const char *path, uint64_t size_mib);
/* Grow in a forked child (work_disk_ensure there; the child touches nothing
 * else). The caller polls it with work_disk_grow_poll(): 0 while it runs;
 * 1 when it has ended (reaped), with *ret_result 1 grown, 0 nothing to do,
 * WORK_DISK_KEPT_OLD_SIZE, or -errno. To cancel: SIGKILL, then poll. */
int work_disk_grow_start(const char *path, uint64_t size_mib, pid_t *ret_pid);
int work_disk_grow_poll(pid_t pid, int *ret_result);
