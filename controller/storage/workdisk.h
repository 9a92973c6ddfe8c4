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
 *    children bounded by a timeout; the event loop waits for them (a grow is
 *    rare: it follows a spec edit);
 *  - smaller size requested: refused with -EINVAL (shrinking an ext4 that
 *    holds data is not something to do behind the user's back; delete the
 *    VM, or keep the size). */
#pragma once

#include "util/util.h"

#define WORK_DISK_MIN_MIB 4ULL
#define WORK_DISK_MAX_MIB (16ULL * 1024 * 1024) /* 16 TiB */
#define WORK_DISK_LABEL "banger-work"

#define WORK_DISK_KEPT_OLD_SIZE 2

/* Returns 1 when created or grown, 0 when kept as it was,
 * WORK_DISK_KEPT_OLD_SIZE when a grow failed and the disk is usable at its
 * old size, -errno. A new
 * disk is made as path.tmp and renamed, so a crash never leaves a file
 * without a filesystem under path. */
int work_disk_ensure(const char *path, uint64_t size_mib);
