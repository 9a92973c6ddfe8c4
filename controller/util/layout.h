/* layout.h — the one owner of banger's on-disk layout and short ids.
 *
 *   <state-dir>/banger.db                 SQLite intent (store/)
 *   <state-dir>/bangerd.lock              one bangerd per state dir
 *   <state-dir>/vms/<uid>/                a VM's dir: disks, logs, handles
 *       handles.json  console.log  vmm.log  work.ext4  root.* (storage/cow.c)
 *   <state-dir>/disk-pool/                spare root disks (storage/diskpool.h)
 *   <runtime-dir>/bangerd.lock            one bangerd per runtime dir
 *   <runtime-dir>/<short-id>.sock         the VMM's API socket (QMP / Firecracker)
 *   <runtime-dir>/<short-id>.serial       QEMU's serial console (bangerd connects)
 *   <runtime-dir>/<short-id>.console      bangerd's console relay (banger console)
 *   <status-dir>/<name>.status.json       status (status/ owns the status dir)
 *
 * The short id is the first 8 hex digits of a VM's uid, lower-cased; tap
 * (net/), dm target (storage/dm.c) and socket names are built from it. Every
 * other file asks this module instead of spelling a name itself. */
#pragma once

#include <stdbool.h>

#define LAYOUT_DB_FILE        "banger.db"
#define LAYOUT_LOCK_FILE      "bangerd.lock"
#define LAYOUT_VMS_DIR        "vms"
#define LAYOUT_DISK_POOL_DIR  "disk-pool"
#define LAYOUT_HANDLES_FILE   "handles.json"
#define LAYOUT_CONSOLE_LOG    "console.log"
#define LAYOUT_VMM_LOG        "vmm.log"
#define LAYOUT_WORK_DISK      "work.ext4"
#define LAYOUT_SOCK_SUFFIX    ".sock"    /* the VMM's API socket */
#define LAYOUT_SERIAL_SUFFIX  ".serial"  /* QEMU's serial (bangerd reads it) */
#define LAYOUT_CONSOLE_SUFFIX ".console" /* bangerd's console relay for clients */
#define LAYOUT_SHORT_ID_LEN   8

/* The short id of uid into ret (LAYOUT_SHORT_ID_LEN + 1 bytes): its first 8
 * hex digits, lower-cased, '-' skipped. -EINVAL when uid has fewer, or any
 * other character before them. */
int layout_short_id(const char *uid, char ret[LAYOUT_SHORT_ID_LEN + 1]);
/* True when s is exactly a short id (8 lower-case hex digits). */
bool layout_is_short_id(const char *s);

/* Paths; the caller frees. */
char *layout_db_path(const char *state_dir);
char *layout_lock_path(const char *dir);
char *layout_vm_dir(const char *state_dir, const char *uid);
char *layout_disk_pool_dir(const char *state_dir);
/* <vm-dir>/<file>, file one of the LAYOUT_* names above. */
char *layout_vm_file(const char *vm_dir, const char *file);
/* <runtime-dir>/<short-id><suffix> (one of the LAYOUT_*_SUFFIX); NULL
 * when uid has no short id. layout_api_sock: the .sock one. */
char *layout_runtime_sock(const char *runtime_dir, const char *uid, const char *suffix);
char *layout_api_sock(const char *runtime_dir, const char *uid);
/* The short id a <short-id><suffix> file name stands for (into ret); false
 * when the name is not one. layout_sock_short_id: the .sock one. */
bool layout_name_short_id(const char *file_name, const char *suffix,
			  char ret[LAYOUT_SHORT_ID_LEN + 1]);
bool layout_sock_short_id(const char *file_name, char ret[LAYOUT_SHORT_ID_LEN + 1]);
