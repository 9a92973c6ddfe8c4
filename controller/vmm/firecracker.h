/* firecracker.h — the pure pieces of the Firecracker driver (argv, request
 * bodies, the ordered boot plan, jail path mapping), exposed so they can be
 * unit-tested without a Firecracker binary. The driver itself is
 * vmm_firecracker_driver (vmm.h).
 *
 * How a VM is laid out:
 *   plain:  firecracker --api-sock <api_sock> --id <vm_id>, cwd vm_dir,
 *           stdout -> console_path (or log_path), stderr -> log_path.
 *           Firecracker writes the guest serial console to its stdout.
 *   jailed: jailer --id <vm_id> --exec-file <fc> --uid U --gid G
 *                  --chroot-base-dir <base> -- --api-sock /api.sock
 *           U:G is the VM's own user (vmm_uid/gid), else --jailer-uid/gid;
 *           never root. The jail root is <base>/<basename(fc)>/<vm_id>/root;
 *           the kernel, initrd and disks are hard-linked into it under fixed
 *           names (FC_JAIL_*; a dm block device gets its own node by mknod),
 *           so the API is given in-jail paths, and api_sock is made a symlink
 *           to <jail root>/api.sock. The jailer execs firecracker in its own
 *           pid (no --new-pid-ns, no --daemonize), so the pid recorded at
 *           spawn is the VMM's. The jail directory is replaced on the next
 *           launch and removed by cleanup() at teardown.
 *
 * All returned strings / string vectors are owned by the caller. */
#pragma once

#include "vmm/vmm.h"

/* Kernel arguments Firecracker guests need on top of vmm_kernel_cmdline():
 * no PCI bus, and an i8042 that is not probed slowly but keeps the keyboard
 * SendCtrlAltDel is delivered through. */
#define FC_VMM_ARGS "pci=off i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd"

#define FC_DEFAULT_BIN         "firecracker"
#define FC_DEFAULT_CHROOT_BASE "/srv/jailer"
/* Paths as the jailed Firecracker sees them (relative to its chroot). */
#define FC_JAIL_API_SOCK  "/api.sock"
#define FC_JAIL_KERNEL    "/vmlinux"
#define FC_JAIL_INITRD    "/initrd"
#define FC_JAIL_ROOT_DISK "/rootfs"
#define FC_JAIL_WORK_DISK "/work"

/* Bounds (ms). */
#define FC_SOCKET_WAIT_MS   3000u
#define FC_API_TIMEOUT_MS   2000u
#define FC_START_TIMEOUT_MS 5000u

/* Suspend/resume (fc_snapshot.c): the snapshot's files in its directory. */
#define FC_SNAPSHOT_STATE_FILE "fc.vmstate"
#define FC_SNAPSHOT_MEM_FILE   "fc.mem"
int fc_save_state(const char *api_sock, const char *dir, unsigned timeout_ms, char **ret_version,
		  char **ret_error);
int fc_finish_save(const char *api_sock, bool committed);
/* A fresh process (socket up, nothing configured): PUT /snapshot/load with
 * resume_vm. */
int fc_restore(const char *api_sock, const char *dir, char **ret_error);
char *fc_snapshot_load_body(const char *dir);

/* argv for running firecracker directly. */
char **fc_argv(const char *fc_bin, const VmmLaunchConfig *c);
/* The user:group a jailed firecracker runs as: the VM's own (vmm_uid/gid)
 * when it has one, else --jailer-uid/--jailer-gid. launch refuses root. */
void fc_jail_user(const VmmLaunchConfig *c, uid_t *ret_uid, gid_t *ret_gid);
/* argv for running firecracker through the jailer (fc_bin must be absolute). */
char **fc_jailer_argv(const char *jailer_bin, const char *fc_bin, const VmmLaunchConfig *c);
/* True when id is acceptable to the jailer: [A-Za-z0-9-]{1,64}. */
bool fc_jailer_id_valid(const char *id);
/* <chroot_base or /srv/jailer>/<basename(fc_bin)>/<vm_id>/root */
char *fc_jail_root(const VmmSettings *s, const char *fc_bin, const char *vm_id);

/* Make a fresh jail root (removing <jail>/.. first), hard-link the kernel,
 * initrd and disks into it under the FC_JAIL_* names (a block device: mknod
 * of the same device; disks chowned to fc_jail_user()), and make
 * c->api_sock a symlink to <jail>/api.sock. -EXDEV when the chroot base is
 * on another filesystem than the files. */
int fc_jail_prepare(const VmmLaunchConfig *c, const char *jail);

/* The files Firecracker is told about, as it will see them. */
typedef struct {
	char *kernel;
	char *initrd; /* NULL: none */
	char *root_disk;
	char *work_disk; /* NULL: none */
} FcGuestPaths;

/* Host paths (plain) or the fixed in-jail names (jailed). */
void fc_guest_paths(const VmmLaunchConfig *c, bool jailed, FcGuestPaths *ret);
void fc_guest_paths_done(FcGuestPaths *p);

/* Request bodies, compact JSON exactly as firecracker-api.yaml defines them. */
char *fc_json_boot_source(const char *kernel, const char *boot_args, const char *initrd);
char *fc_json_drive(const char *drive_id, const char *path, bool is_root);
char *fc_json_machine_config(unsigned vcpus, unsigned mem_mib);
char *fc_json_network_interface(const char *iface_id, const char *tap, const char *mac);
char *fc_json_action(const char *action_type);

typedef struct {
	const char *method; /* static */
	char *path;
	char *body;
} FcRequest;

#define FC_BOOT_PLAN_MAX 8
/* The configuration calls for one boot, in the order they are sent:
 * boot-source, drives/rootfs, drives/work?, machine-config,
 * network-interfaces/eth0?, actions InstanceStart. */
typedef struct {
	FcRequest req[FC_BOOT_PLAN_MAX];
	size_t n;
} FcBootPlan;

void fc_boot_plan(const VmmLaunchConfig *c, const FcGuestPaths *p, FcBootPlan *ret);
void fc_boot_plan_done(FcBootPlan *plan);
