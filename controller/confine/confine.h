/* confine.h — what a confined VMM is given, and nothing more: a uid/gid of
 * its own from a configured range (uid.c), a cgroup of its own with memory
 * and pids limits (cgroup.c), and ownership of the files it keeps (files.c).
 *
 * The VMM driver does the rest at exec time (vmm/qemu.c: -runas, -chroot,
 * -sandbox; util/proc.c: no_new_privs, a reduced capability bounding set,
 * joining the cgroup in the forked child). This module knows nothing of
 * specs or the store: runtime/ calls it with plain values.
 *
 * Why a range of our own: two VMs under one uid could ptrace, signal or
 * open each other's files; a uid no real user or systemd service has means
 * a VMM broken out of QEMU owns nothing on the host but its own VM's
 * files. The default range sits in the span systemd documents as unused
 * (1879048192…2147352575, docs/operations.md "Security model"). */
#pragma once

#include "util/util.h"

#include <sys/types.h>

#define CONFINE_DEFAULT_UID_BASE  2000000000u
#define CONFINE_DEFAULT_UID_COUNT 65536u
/* Memory a VMM may use beyond the guest's memoryMiB: QEMU's own heap, the
 * TCG translation cache (bounded to 128 MiB by vmm/qemu.c; QEMU's default
 * is 1 GiB), device buffers and page cache charged for disk I/O. Measured:
 * a 128 MiB TCG guest runs at ~110 MB RSS. */
#define CONFINE_MEMORY_OVERHEAD_MIB 256u
/* Tasks a VMM may have beyond one per vCPU: QEMU's block layer thread pool
 * (up to 64 workers), its main, RCU and I/O threads. Forking is denied by
 * seccomp anyway; this is the second wall. */
#define CONFINE_PIDS_BASE 128u

typedef struct {
	uint32_t base;
	uint32_t count;
} UidRange;

/* "BASE:COUNT" → range. Refused (-EINVAL, message logged): uid 0 in the
 * range, a range reaching 65534/65535 (nobody, 16-bit -1) or 4294967295,
 * COUNT 0 or above 16777216. */
int confine_uid_range_parse(const char *s, UidRange *ret);

/* The uid for one VM: `current` (0: none yet) when it lies in the range,
 * else the lowest uid of the range that no entry of `used` holds (our own
 * current never blocks). -ENOSPC when every uid is taken. Pure. */
int confine_uid_pick(const UidRange *range, uint32_t current, const uint32_t *used, size_t n_used,
		     uint32_t *ret);

/* Memory limit in bytes for a guest of memory_mib, and the pids limit. */
uint64_t confine_memory_limit(unsigned memory_mib);
uint64_t confine_pids_limit(unsigned vcpus);

/* Give a file the VM keeps to its VMM's uid: create it when absent (empty),
 * refuse a symlink or non-regular file (-ELOOP / -EINVAL), then chown to
 * uid:gid and chmod to mode. uid 0 leaves the owner alone (unconfined). */
int confine_file(const char *path, uid_t uid, gid_t gid, mode_t mode);

/* The VM dir: root-owned, group gid, 0710 — the VMM's uid can reach its
 * own files by path, no other VM's uid can list or enter it. gid 0: 0700. */
int confine_vm_dir(const char *vm_dir, gid_t gid);

/* The empty directory the VMM is chrooted into: <vm_dir>/chroot, root-owned
 * 0555, made empty (anything found inside is removed). Caller frees
 * *ret_path. */
int confine_chroot_dir(const char *vm_dir, char **ret_path);
