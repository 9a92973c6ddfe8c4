/* workdisk.h — a VM's scratch disk: a sparse raw file holding ext4
 * (label "banger-work"), made with mkfs.ext4 (execve, no shell). It lives in
 * the VM dir and is removed with it by the caller.
 *
 * Size changes, decided here once:
 *  - same size: kept untouched (a restart keeps its data);
 *  - larger size requested: grown in place — the file is extended (still
 *    sparse), then `e2fsck -f -p` and `resize2fs` run on it. Only call this
 *    while no VM has the disk open;
 *  - smaller size requested: refused with -EINVAL (shrinking an ext4 that
 *    holds data is not something to do behind the user's back; delete the
 *    VM, or keep the size). */
#pragma once

#include "util/util.h"

#define WORK_DISK_MIN_MIB 4ULL
#define WORK_DISK_MAX_MIB (16ULL * 1024 * 1024) /* 16 TiB */
#define WORK_DISK_LABEL "banger-work"

/* Returns 1 when created or grown, 0 when kept as it was, -errno. A new
 * disk is made as path.tmp and renamed, so a crash never leaves a file
 * without a filesystem under path. */
int work_disk_ensure(const char *path, uint64_t size_mib);
