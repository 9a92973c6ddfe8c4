/* diskpool.h — spare root disks, made before a VM asks for one.
 *
 * A VM's first boot needs a root disk and its base record (rootbase.h):
 * three fsyncs (the record, the disk, the directory), about 3 ms of the
 * controller's 4-5 ms between a spec write and the VMM's exec (issue 9,
 * docs/benchmarks.md). The pool holds, per base image, one spare VM
 * directory with both already durable, and a first boot of a VM on that
 * base takes it with one rename:
 *
 *   <state-dir>/disk-pool/<key>.<method>/      root.base + the disk
 *   <state-dir>/disk-pool/.<key>.<method>.<tag>.tmp/   being made
 *
 * key: 16 hex digits of SHA-256 over the record a first boot would write
 * (rootfs.path as the spec wrote it, the file it resolves to, that file's
 * dev, inode, size and mtime), so a spare is only ever taken for the same
 * path to the same unchanged file. method: qcow2 or reflink only — both
 * cost a few hundred KiB; a sparse copy costs an image's size of disk per
 * spare, and a dm-snapshot disk is a kernel object, so neither is pooled.
 *
 * A spare is made after a first boot made its own disk (or took one), with
 * the method that boot used, so the pool never picks a method a start
 * without it would not have picked. At most DISK_POOL_MAX spares are kept
 * (the oldest goes); start-up removes half-made ones and those whose base
 * changed. A spare holds no guest data: it is the disk a first boot would
 * have made, owned by root until a start's confinement gives it to its
 * VMM. */
#pragma once

#include "storage/cow.h"
#include "storage/rootbase.h"

#define DISK_POOL_MAX 16

/* Pure: methods whose disks the pool keeps. */
bool disk_pool_method_ok(CowMethod m);

/* Take the spare for base (made for a QEMU VM when qemu: a qcow2 one only
 * then) as vm_dir, which must not exist yet (or be empty). 1: taken, vm_dir
 * now holds root.base and the disk; 0: none there (vm_dir untouched); -errno
 * on another failure (vm_dir untouched). The rename is not fsynced: the spare
 * was durable in the pool, and the VM dir's own name is as durable as a
 * mkdir of it would be. */
int disk_pool_take(const char *pool_dir, const RootBase *base, bool qemu, const char *vm_dir);

/* Make the spare for base with method m (a no-op for methods the pool does
 * not keep, or when one is there). tag names the temp dir (two fills at once
 * never share it). 1: made; 0: nothing to do (or the base changed while
 * making, or another fill was first); -errno. */
int disk_pool_fill(const char *pool_dir, const RootBase *base, CowMethod m, const char *tag);

/* At start-up: remove half-made spares, spares whose base is no longer the
 * file they were made from, and anything else in the pool dir. */
int disk_pool_sweep(const char *pool_dir);
