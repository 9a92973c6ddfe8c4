/* cow.h — a VM's own copy-on-write root disk over a shared base image.
 *
 * The base image is NEVER written: it is opened O_RDONLY for copies and
 * clones, attached to a read-only loop device for dm, and referenced as a
 * read-only qcow2 backing file. The per-VM disk lives inside vm_dir under a
 * name that says how it was made, so a restart finds and keeps it:
 *
 *   COW_DM       root.cow         dm-snapshot exception store; the VMM opens
 *                                 /dev/mapper/banger-<uid8> (raw)
 *   COW_REFLINK  root.reflink.img FICLONE of the base (raw, shares extents)
 *   COW_QCOW2    root.qcow2       overlay, backing = absolute base path
 *                                 (qemu only: Firecracker reads raw only)
 *   COW_SPARSE   root.img         SEEK_DATA/SEEK_HOLE copy, zero blocks
 *                                 left as holes (raw)
 *
 * Preference: dm, reflink, qcow2 (qemu), sparse. Files are created under a
 * ".tmp" name and renamed into place, so a crash never leaves a half-made
 * disk under the final name. A reflink that fails because the base is on
 * another filesystem (EXDEV) or the filesystem refuses falls back to the
 * next method. The qcow2 overlay header is written by storage/qcow2.c (no
 * qemu-img).
 *
 * Only COW_DM makes kernel objects (two loop devices and a dm target), and
 * they are "momentary" state the caller records in handles.json:
 *  - loops are attached with AUTOCLEAR and held by an fd until the dm target
 *    has opened them (see loop.h), so they can never be orphaned: a crash
 *    before the target exists drops them, and removing the target frees
 *    them;
 *  - the dm target is the one object that outlives us. Its name is
 *    deterministic, and req->record is called with it (and the loops) BEFORE
 *    it is created, so the caller can persist intent write-ahead; a crash
 *    between record and creation leaves a handle to a target that may not
 *    exist, which root_disk_teardown() treats as success.
 *
 * An existing disk is kept as it is even if the spec now names another base
 * image: whether to remake it is decided in rootbase.h, before this runs.
 * A qcow2 overlay stores the RESOLVED base path (never a symlink), so a
 * flipped symlink cannot change what the overlay reads. */
#pragma once

#include "util/util.h"

typedef enum {
	COW_AUTO, /* request only: detect */
	COW_DM,
	COW_REFLINK,
	COW_QCOW2,
	COW_SPARSE,
	_COW_METHOD_MAX,
	_COW_METHOD_INVALID = -EINVAL,
} CowMethod;

const char *cow_method_to_string(CowMethod m); /* "auto", "dm", ...; NULL if invalid */
CowMethod cow_method_from_string(const char *s);

/* Pure preference: dm, reflink, qcow2 (only when qemu), sparse. */
CowMethod cow_method_choose(bool dm_ok, bool reflink_ok, bool qemu);

/* Pure: what to try after method failed for a reason that means "not
 * possible here" (see cow.c); _COW_METHOD_INVALID when nothing is left. */
CowMethod cow_method_fallback(CowMethod failed, bool qemu);

/* Pure: the disk's file name inside vm_dir; NULL for COW_AUTO/invalid. */
const char *cow_disk_file_name(CowMethod m);

/* The method of a disk already in vm_dir (by its file name), or COW_AUTO
 * when there is none. */
CowMethod cow_existing_method(const char *vm_dir);

/* Copy src to a new file dst (O_EXCL): FICLONE where the filesystem shares
 * extents, else a sparse copy (holes stay holes); fsynced. On failure dst
 * may exist half-written: the caller removes it. */
int storage_clone_file(const char *src, const char *dst);

/* Probe: FICLONE between two tiny temp files in dir works. Leaves nothing. */
bool cow_reflink_supported(const char *dir);

/* Probes dm_available() and cow_reflink_supported(vm_dir), then chooses. */
CowMethod cow_method_detect(const char *vm_dir, bool qemu);

typedef struct RootDisk {
	CowMethod method;
	char *path;         /* what the VMM opens (file or /dev/mapper/...) */
	const char *format; /* "raw" or "qcow2" (static string) */
	char *base_image;   /* realpath of the base image */
	bool reused;        /* the disk existed (restart); not created now */
	/* COW_DM only — momentary handles; NULL until known. */
	char *cow_file;
	char *base_loop;
	char *cow_loop;
	char *dm_name;
	char *dm_dev;
} RootDisk;

/* COW_DM only (the other methods make no kernel objects): called first with
 * dm_name, dm_dev and cow_file set, before any loop is attached, then again
 * with base_loop and cow_loop too, before the dm target is created. (The
 * loops themselves are autoclear and held, so a crash between attaching and
 * recording them leaves nothing behind.) A negative return aborts
 * root_disk_prepare() with that error before the next object is made. */
typedef int (*RootDiskRecordFn)(void *userdata, const RootDisk *partial);

typedef struct {
	const char *vm_dir;      /* exists; the disk is made inside it */
	const char *vm_uid;      /* hex uid (dm target name) */
	const char *owner;       /* instance tag for the dm UUID (NULL: none) */
	const char *base_image;  /* checked with image_path_check() */
	bool qemu;               /* the VMM can open qcow2 */
	CowMethod method;        /* COW_AUTO (0): detect; else force this one */
	RootDiskRecordFn record; /* NULL: nothing to record */
	void *userdata;
} RootDiskRequest;

/* Make (or find) the VM's root disk. On success *ret is filled (free with
 * root_disk_done()). On failure nothing is left attached; a created cow file
 * may remain (it is reused next time). -EOPNOTSUPP when the existing disk
 * needs what is missing now (root.cow without dm, root.qcow2 for a
 * Firecracker VM) or a forced method is impossible. For dm, a target of the
 * same name left from before must be torn down first (-EEXIST). */
int root_disk_prepare(const RootDiskRequest *req, RootDisk *ret);

/* Undo the kernel side: remove the dm target (retrying while busy), then
 * detach the loops if they still belong to this disk: each only when it is
 * backed by its recorded file (cow_file, base_image); a loop without a
 * recorded file is left alone. Idempotent; no files
 * are ever deleted. For non-dm disks there is nothing to do. Returns the
 * first error but always tries every step. */
int root_disk_teardown(const RootDisk *h);

/* Free the members (not h itself); h is zeroed. NULL ok. */
void root_disk_done(RootDisk *h);
