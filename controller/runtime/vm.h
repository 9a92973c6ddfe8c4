/* vm.h — making and unmaking one VM on this host, and finding what a
 * previous controller left behind.
 *
 * Runtime owns the handle cache (handles.h) and uses the drivers: net/ for
 * the bridge and taps, storage/ for root and work disks, vmm/ for the VMM
 * process. Every operation is idempotent and safe to repeat after a crash:
 * names are deterministic (tap bgr-<uid8>, dm banger-<uid8>, nft chain
 * vm_<uid8>, socket <runtime-dir>/<uid8>.sock, VM dir <state-dir>/vms/<uid>),
 * and handles are recorded before the objects they name are created. Names
 * alone do not prove ownership: taps, dm targets and nft rules also carry
 * the instance tag (RuntimeConfig.instance), and nothing here deletes one
 * that carries another.
 *
 * vm_alive() is the single source of truth for "is this VM running". */
#pragma once

#include "confine/confine.h"
#include "net/nft.h"
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
	/* VMM confinement (confine/confine.h); false only with --no-confine. */
	bool confine;
	UidRange vmm_uids; /* where each VM's VMM uid comes from */
	/* This controller's instance tag (store_instance_id(): 16 hex digits,
	 * never NULL). Every host object made here carries it — tap alias
	 * (net_owner_tag), nft table (nft_table_name), dm UUID (dm_uuid_for) —
	 * and the orphan sweep touches only objects carrying it. A per-VM
	 * cgroup should include it too: <controller root>/banger-<instance>/
	 * <vm short id>. */
	const char *instance;
	/* Host services guests may reach on the bridge (--host-allow). */
	const NftHostAllow *host_allow;
	size_t n_host_allow;
} RuntimeConfig;

typedef struct Runtime Runtime;

int runtime_new(const RuntimeConfig *cfg, Runtime **ret);
void runtime_free(Runtime *rt);
DEFINE_TRIVIAL_CLEANUP_FUNC(Runtime *, runtime_free)
HandleCache *runtime_cache(Runtime *rt);

/* Deterministic, durable paths of a VM (stored in its row at first start). */
typedef struct {
	char *vm_dir, *api_sock, *log_path, *console_path, *work_disk;
	/* <runtime-dir>/<uid8>.serial: the VMM's serial socket (qemu);
	 * <runtime-dir>/<uid8>.console: bangerd's socket for `banger console`. */
	char *serial_sock, *console_sock;
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

/* The VMM uid for a VM: keep `current` (from the row; 0: none yet) while it
 * lies in --vmm-uid-range, else the lowest uid of the range no row holds.
 * -ENOSPC when the range is full. */
int runtime_pick_vmm_uid(Runtime *rt, uint32_t current, const uint32_t *used, size_t n_used,
			 uint32_t *ret);

/* Is the VM's VMM process (as cached: pid + start time) running? */
bool vm_alive(Runtime *rt, const char *name);

typedef struct {
	const char *name;
	const char *uid;
	const VmSpec *spec;
	const char *guest_ip; /* NULL when network is disabled */
	/* Optional: set (caller frees) when the root disk was recreated for a
	 * new rootfs.path, or kept although the image behind the path changed
	 * (storage/rootbase.h); left alone otherwise. */
	char **ret_disk_note;
	const char **ret_disk_reason; /* with the note: a static CamelCase word */
	/* The caller grew the work disk itself (in a child, not to block its
	 * event loop; storage/workdisk.h): a disk still too small is started at
	 * its old size instead of grown here. */
	bool work_disk_no_grow;
	uint32_t vmm_uid; /* the VM's own VMM uid (= gid), from its row; required when
			   * confining */
	bool resume;      /* restore the saved state (runtime/suspend.h) instead
			   * of booting: it is checked (SHA-256) first and
			   * removed once the guest runs */
} VmStartRequest;

/* Check images, make the VM dir, tap, root disk and work disk, launch the
 * VMM. On failure every momentary object made here is undone (disks are
 * kept) and *ret_error says what failed for status. Idempotent: when the
 * VM's VMM already runs (cached, or found serving its socket) it is kept
 * (adopted into the cache) and nothing is created: returns 0. */
int vm_start(Runtime *rt, const VmStartRequest *req, char **ret_error);

/* vm_start in parts, so whatever may block runs off the event loop
 * (daemon/launcher.c), and the network and the disks are made at once:
 *
 *   vm_start_prepare  caller's thread (the loop): images, VM dir (a first
 *                     boot takes a spare from the disk pool, one rename),
 *                     cache entry (req's guest_ip and vmm_uid are not read:
 *                     they come with vm_launch_network). Returns 1 and
 *                     *ret_launch when a VMM must be launched; 0 when it
 *                     already runs (adopted: nothing to launch); -errno on
 *                     failure (undone, *ret_error set).
 *   vm_launch_network the loop thread, once, after handing the launch to a
 *                     worker (or before vm_launch_run on the same thread):
 *                     the launch facts (guest IP, VMM uid: the caller has
 *                     made them durable, which it may do while the worker
 *                     makes the disks and the tap), then the tap's nft
 *                     elements (they need the IP; the instance's tables
 *                     are made once per process). Its result goes to the
 *                     worker, which waits for it before confining and
 *                     launching. vm_launch_cancel instead when the facts
 *                     could not be recorded: the worker gives up with that
 *                     error.
 *   vm_launch_run     any thread, meanwhile: the root disk (an image copy
 *                     or a qcow2 overlay, fsyncs; or the spare prepare
 *                     took), work disk, cgroup, bridge and tap (named by
 *                     the uid: no fact needed), then (facts and firewall
 *                     there) file owners and chroot, the tap's owner and
 *                     the driver's launch() (clone, pid recorded
 *                     write-ahead in handles.json, API socket, boot plan),
 *                     then the disk pool's spare for the next first boot.
 *                     Touches only the VmLaunch — its own copy of the
 *                     handles (shared with vm_launch_network under the
 *                     launch's lock), paths, images and spec facts —, the
 *                     VM's files, the kernel objects named after its uid,
 *                     the bridge (made race-free), the disk pool and the
 *                     runtime's read-only configuration: no cache, no
 *                     store. Several run at once.
 *   vm_launch_finish  the caller's thread again: the launch's handles
 *                     (tap, disks, pid) replace the cache entry; failure
 *                     then undoes everything made (disks kept). Frees the
 *                     launch; returns the start's result, *ret_error set on
 *                     failure.
 *
 * Between prepare and finish the cache entry records no tap, disks or pid:
 * the caller must leave the VM alone (no teardown, no second start) until
 * finish — reconcile/decide.h's ObservedView.launching. */
typedef struct VmLaunch VmLaunch;
int vm_start_prepare(Runtime *rt, const VmStartRequest *req, VmLaunch **ret_launch,
		     char **ret_error);
void vm_launch_network(VmLaunch *l, const char *guest_ip, uint32_t vmm_uid);
void vm_launch_cancel(VmLaunch *l, int r, const char *error);
void vm_launch_run(VmLaunch *l);
int vm_launch_finish(Runtime *rt, VmLaunch *l, char **ret_error);
/* The VM's name (owned by the launch). */
const char *vm_launch_name(const VmLaunch *l);
/* After vm_launch_run: a note for status about its disks (the root base
 * changed, a work disk kept its old size) and its reason, or NULL. Owned
 * by the launch. */
const char *vm_launch_disk_note(const VmLaunch *l, const char **ret_reason);

/* Ask the guest to shut down (returns at once). */
int vm_request_stop(Runtime *rt, const char *name, const char *api_sock);
/* SIGKILL the VMM if it is still ours. */
int vm_kill(Runtime *rt, const char *name);

/* Undo everything momentary: kill the VMM if it runs, remove its cgroup
 * (killing anything left inside), tear down the root
 * disk's kernel objects, delete the tap, remove the socket and the scratch
 * file, drop the cache entry. With remove_dir, the VM dir (disks) goes too.
 * Always tries every step; returns the first error. */
int vm_teardown(Runtime *rt, const char *name, const char *uid, const char *api_sock,
		bool remove_dir);

/* Start-up: rebuild the cache entry for one VM from handles.json and the OS.
 * Returns 1 when its VMM runs (adopted: same process, verified by start
 * time), 0 when it does not (its leftovers were torn down, disks kept). */
int vm_rediscover(Runtime *rt, const char *name, const char *uid, const char *api_sock);

/* Make the instance's nft tables with the current --host-allow (replacing
 * an older policy, also for VMs adopted from before a restart). */
int runtime_network_setup(Runtime *rt);

/* The taps in this instance's nft @taps set (sorted strv). */
int runtime_vm_fw_taps(Runtime *rt, char ***ret_taps);
/* An adopted VM (cached, with its tap) whose tap is not in fw_taps gets
 * its anti-spoofing elements now, recorded first: a VMM started by a
 * banger without the firewall or by an older one (per-VM chains, removed
 * by runtime_network_setup), or rules deleted by hand, never keeps running
 * unfiltered past a controller restart. 0 when nothing was missing. */
int vm_firewall_ensure(Runtime *rt, const char *name, const char *uid, const char *guest_ip,
		       char *const *fw_taps);

/* Remove what no VM owns and this instance made: bgr-* taps whose alias is
 * our tag, loop devices backed by files under the state dir, banger-* dm
 * targets whose UUID carries our tag, nft elements of unknown taps in our table, VMM
 * processes/sockets in the runtime dir (ours: bangerd holds its lock), this
 * instance's VM cgroups (and any process in them). known_uids: uids of every row (deleted ones
 * included). Returns the number of objects removed. */
int runtime_sweep_orphans(Runtime *rt, char *const *known_uids);

/* Test hook: when $BANGER_CRASHPOINT equals point, die at once (SIGKILL) —
 * how tests prove a crash at that point leaks nothing. */
void runtime_crashpoint(const char *point);
