/* rootbase.h — which base image a VM's root disk was made from, and what a
 * start does when the image behind an unchanged rootfs.path changed.
 *
 * When a root disk is made, <vm_dir>/root.base records, before the disk
 * exists (its data fsync'd; its name made durable by the directory fsync
 * that publishes the disk), the spec's rootfs.path as written, the path it resolved to
 * and that file's identity (st_dev, st_ino, size, mtime). At every later start
 * the record is compared with what rootfs.path resolves to now:
 *
 *   no disk yet                     → CREATE    (record written first)
 *   rootfs.path itself changed      → RECREATE  the old disk files are deleted
 *                                               and a new disk is made; the log
 *                                               and status say so
 *   same path, same file            → KEEP
 *   same path, another file behind it (symlink flipped, file replaced):
 *     full copy (reflink, sparse)   → KEEP_COPY     the copy does not depend
 *                                                   on the base; never remade
 *     overlay (qcow2, dm), the file
 *     it was made from still there  → KEEP_ORIGINAL the overlay keeps its base
 *                                                   (the recorded resolved
 *                                                   path, never the symlink)
 *     overlay, that file gone       → FAIL      the start fails with a reason
 *                                               naming the base image
 *
 * A record written by an older banger holds only the resolved path: its
 * spec path counts as unchanged and its identity as "that path" (no data is
 * dropped for an old record). A disk without a record is kept and recorded. */
#pragma once

#include "storage/cow.h"
#include "util/util.h"

#define ROOT_BASE_FILE "root.base"

typedef struct {
	char *spec_path;         /* rootfs.path as the spec wrote it; NULL: old record */
	char *resolved;          /* realpath at creation: what an overlay depends on */
	uint64_t dev, ino, size; /* dev == ino == 0: unknown (old record) */
	int64_t mtime_ns;
} RootBase;

void root_base_done(RootBase *b);

/* Fill ret from stat(resolved); spec_path and resolved are copied. */
int root_base_identify(const char *spec_path, const char *resolved, RootBase *ret);
/* <vm_dir>/root.base: -ENOENT when absent, -EINVAL when unreadable. */
int root_base_read(const char *vm_dir, RootBase *ret);
/* Atomic and durable (fsync file and directory). */
int root_base_write(const char *vm_dir, const RootBase *b);
/* The same without the directory fsync, for a caller that makes the disk in
 * vm_dir next: cow.c's directory fsync for the disk makes this name durable
 * too. */
int root_base_write_pending(const char *vm_dir, const RootBase *b);
/* The same file: same resolved path and identity (an unknown identity
 * compares by path only). */
bool root_base_same_file(const RootBase *recorded, const RootBase *now);

typedef enum {
	ROOT_BASE_CREATE,
	ROOT_BASE_RECREATE,
	ROOT_BASE_KEEP,
	ROOT_BASE_KEEP_COPY,
	ROOT_BASE_KEEP_ORIGINAL,
	ROOT_BASE_FAIL,
	_ROOT_BASE_PLAN_MAX,
} RootBasePlan;

const char *root_base_plan_to_string(RootBasePlan p);

/* Pure: the table above. recorded NULL: no record. existing: the method of
 * the disk in the VM dir, COW_AUTO when there is none. original_there: the
 * recorded file still exists with its recorded identity. */
RootBasePlan root_base_plan(const RootBase *recorded, const RootBase *now, CowMethod existing,
			    bool original_there);

typedef struct {
	char *base;         /* the base image to build or attach the disk from */
	char *note;         /* for status/log when the plan is not CREATE or KEEP; else NULL */
	const char *reason; /* with note: "Recreated", "KeptCopy", "KeptOriginalBase" */
	RootBasePlan plan;
} RootBaseChoice;

void root_base_choice_done(RootBaseChoice *c);

/* Decide and do the file side of the plan for a start: write the record for
 * CREATE/RECREATE (deleting the old disk files for RECREATE) or for a disk
 * that had none. spec_path: rootfs.path from the spec; resolved: its checked
 * realpath (imageroot.h). On FAIL returns -ESTALE with *ret_error naming the
 * base image; other errors are -errno with *ret_error set. */
int root_base_resolve(const char *vm_dir, const char *spec_path, const char *resolved,
		      RootBaseChoice *ret, char **ret_error);
