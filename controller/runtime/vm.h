/* vm.h — making and unmaking one VM on this host, and finding what a
 * previous controller left behind.
 *
 * Runtime owns the handle cache (handles.h) and uses the drivers: net/ for
 * the bridge and taps, storage/ for root and work disks, vmm/ for the VMM
 * process. Every operation is idempotent and safe to repeat after a crash:
 * names are deterministic (tap bgr-<uid8>, dm banger-<uid8>, socket
 * <runtime-dir>/<uid8>.sock, VM dir <state-dir>/vms/<uid>), and handles are
 * recorded before the objects they name are created.
 *
 * vm_alive() is the single source of truth for "is this VM running". */
#pragma once

#include "runtime/handles.h"
#include "spec/spec.h"
#include "vmm/vmm.h"

typedef struct {
	const char *state_dir;
	const char *runtime_dir;
	const char *bridge; /* e.g. "banger0" */
	const char *cidr;   /* e.g. "172.16.0.1/24": gateway on the bridge */
	char *const *image_dirs;
	const char *driver; /* "auto" | "firecracker" | "qemu" */
	VmmSettings vmm;
} RuntimeConfig;

typedef struct Runtime Runtime;

int runtime_new(const RuntimeConfig *cfg, Runtime **ret);
void runtime_free(Runtime *rt);
DEFINE_TRIVIAL_CLEANUP_FUNC(Runtime *, runtime_free)
HandleCache *runtime_cache(Runtime *rt);

/* Deterministic, durable paths of a VM (stored in its row at first start). */
typedef struct {
	char *vm_dir, *api_sock, *log_path, *console_path, *work_disk;
} VmPaths;
void vm_paths_for(Runtime *rt, const char *uid, VmPaths *ret);
void vm_paths_done(VmPaths *p);

/* The driver for a spec: spec.vmm, else the controller's --driver. */
const VmmDriver *runtime_driver_for(Runtime *rt, const VmSpec *spec);
/* The driver of the VM as it was started (its handles), else the default. */
const VmmDriver *runtime_driver_of(Runtime *rt, const char *name);
const VmmSettings *runtime_vmm_settings(Runtime *rt);

/* Guest IP for a VM: keep `current` (from the row) unless the spec asks for
 * another; else allocate the lowest free one. used_strv: IPs of all rows. */
int runtime_pick_ip(Runtime *rt, const VmSpec *spec, const char *current, char *const *used,
		    char **ret_ip);

/* Is the VM's VMM process (as cached: pid + start time) running? */
bool vm_alive(Runtime *rt, const char *name);

typedef struct {
	const char *name;
	const char *uid;
	const VmSpec *spec;
	const char *guest_ip; /* NULL when network is disabled */
	bool resume;          /* restore the saved state (runtime/suspend.h) instead
			       * of booting: it is checked (SHA-256) first and
			       * removed once the guest runs */
} VmStartRequest;

/* Check images, make the VM dir, tap, root disk and work disk, launch the
 * VMM. On failure every momentary object made here is undone (disks are
 * kept) and *ret_error says what failed for status. Idempotent: when the
 * VM's VMM already runs (cached, or found serving its socket) it is kept
 * (adopted into the cache) and nothing is created: returns 0. */
int vm_start(Runtime *rt, const VmStartRequest *req, char **ret_error);

/* Ask the guest to shut down (returns at once). */
int vm_request_stop(Runtime *rt, const char *name, const char *api_sock);
/* SIGKILL the VMM if it is still ours. */
int vm_kill(Runtime *rt, const char *name);

/* Undo everything momentary: kill the VMM if it runs, tear down the root
 * disk's kernel objects, delete the tap, remove the socket and the scratch
 * file, drop the cache entry. With remove_dir, the VM dir (disks) goes too.
 * Always tries every step; returns the first error. */
int vm_teardown(Runtime *rt, const char *name, const char *uid, const char *api_sock,
		bool remove_dir);

/* Start-up: rebuild the cache entry for one VM from handles.json and the OS.
 * Returns 1 when its VMM runs (adopted: same process, verified by start
 * time), 0 when it does not (its leftovers were torn down, disks kept). */
int vm_rediscover(Runtime *rt, const char *name, const char *uid, const char *api_sock);

/* Remove what no VM owns: bgr-* taps, loop devices backed by files under the
 * state dir, banger-* dm targets, VMM processes/sockets in the runtime dir.
 * known_uids: uids of every row (deleted ones included). Returns the number
 * of objects removed. */
int runtime_sweep_orphans(Runtime *rt, char *const *known_uids);

/* Test hook: when $BANGER_CRASHPOINT equals point, die at once (SIGKILL) —
 * how tests prove a crash at that point leaks nothing. */
void runtime_crashpoint(const char *point);
