/* vmm.h — the VMM driver table. One table per VMM (firecracker.c, qemu.c),
 * chosen by name (crun's cgroup managers, redis' ae_*.c): no if-chains on
 * the VMM kind outside this module.
 *
 * Drivers make and unmake VMM processes only. Taps, disks and IPs are made
 * by net/ and storage/ before launch and passed in VmmLaunchConfig. Every
 * VMM process is started detached (own session, no parent-death signal,
 * stdio to log files) so VMs outlive the controller, and each holds a unix
 * API socket at a deterministic path. A VMM's identity is its pid + start
 * time, handed to the caller's record_pid hook before the VMM may exec (see
 * util/proc.h), never the socket path: a restarted controller finds its
 * VMMs from what it recorded, and checks a socket's server (SO_PEERCRED)
 * before it talks to it.
 *
 * No operation blocks for longer than its documented bound: the event loop
 * waits for exits with pidfds, not the driver. */
#pragma once

#include "util/util.h"

#include <sys/types.h>

/* Host-wide VMM settings, from bangerd's flags. NULL fields: defaults
 * (binaries looked up in PATH, no jailer). */
typedef struct {
	const char *firecracker_bin; /* default "firecracker" */
	const char *jailer_bin;      /* non-NULL: launch firecracker through the jailer */
	uid_t jailer_uid;
	gid_t jailer_gid;
	const char *chroot_base;  /* jailer --chroot-base-dir */
	const char *qemu_bin;     /* default "qemu-system-x86_64" */
	const char *qemu_img_bin; /* default "qemu-img" */
} VmmSettings;

typedef struct {
	const VmmSettings *settings; /* never NULL */
	const char *name;            /* VM name; also the guest hostname */
	const char *vm_id;           /* stable VM uid (hex) */
	const char *vm_dir;          /* per-VM directory (exists) */
	const char *api_sock;        /* unix socket path for the VMM API (QMP for qemu) */
	const char *log_path;        /* VMM stdout+stderr */
	const char *console_path;    /* guest serial console output (firecracker: its stdout) */
	/* Unix socket the VMM serves the guest serial on, for drivers with
	 * serial_socket (qemu): bangerd connects, writes console_path itself
	 * (capped) and relays to `banger console` clients. */
	const char *serial_sock;
	const char *kernel_path;
	const char *initrd_path;      /* NULL: none */
	const char *user_args;        /* spec.kernel.args, appended last; NULL: none */
	const char *root_disk;        /* path of the VM's own (copy-on-write) root disk */
	const char *root_disk_format; /* "raw" or "qcow2" (qemu only) */
	/* qcow2: the base image the overlay was made from; its header must name
	 * this file (compared after realpath) before bangerd, as root, opens the
	 * backing file for QEMU: the overlay is writable by the VMM's uid. */
	const char *root_disk_base;
	const char *work_disk;  /* NULL: none; raw ext4 */
	const char *tap;        /* NULL: no network */
	const char *mac;        /* guest MAC, aa:bb:cc:dd:ee:ff */
	const char *guest_ip;   /* dotted quad; NULL when no network */
	const char *gateway_ip; /* bridge address */
	unsigned prefix_len;    /* e.g. 24 */
	unsigned vcpus;
	unsigned memory_mib;
	/* Write-ahead identity: called after fork, before the VMM may exec;
	 * the VMM does not run unless it returns >= 0. NULL: none. */
	int (*record_pid)(void *userdata, pid_t pid, uint64_t start_time);
	void *record_userdata;
	/* Confinement (runtime/ fills these for every driver; confine/confine.h).
	 * The VMM's own uid/gid from bangerd's --vmm-uid-range, never shared by
	 * two VMs; 0 = unconfined (--no-confine). The jailer uses them too. */
	uid_t vmm_uid;
	gid_t vmm_gid;
	const char *chroot_dir;    /* empty root-owned dir to chroot into; NULL: none */
	char *const *cgroup_procs; /* cgroup.procs files the VMM joins before exec; NULL: none */
	/* Non-NULL: do not boot; restore the guest from the state save_state()
	 * wrote into this directory, then continue it. The launch returns once
	 * the guest runs again, or fails (VMM ended) when the state does not
	 * load: never a half-restored guest. */
	const char *incoming_dir;
} VmmLaunchConfig;

/* A VMM process as identified by the kernel: pid plus its start time (field
 * 22 of /proc/<pid>/stat, clock ticks since boot), so a recycled PID is never
 * mistaken for our VMM. */
typedef struct {
	pid_t pid;
	uint64_t start_time;
} VmmProcess;

typedef struct VmmDriver {
	const char *name; /* "firecracker", "qemu" */
	/* The guest serial is a unix socket (VmmLaunchConfig.serial_sock) rather
	 * than a file the VMM appends to: bangerd owns the console. */
	bool serial_socket;
	/* True when this host can run this VMM (binary found, ...). */
	bool (*available)(const VmmSettings *s);
	/* Start the VMM and boot the guest. Returns once the process runs and
	 * its API socket answers (bounded, a few seconds). On failure nothing
	 * is left running and the socket is removed. */
	int (*launch)(const VmmLaunchConfig *c, VmmProcess *ret);
	/* Ask the guest to shut down (Ctrl-Alt-Del). Returns at once; the
	 * caller waits for the process to exit. */
	int (*request_stop)(const char *api_sock);
	/* Stop the VMM now (SIGKILL after verifying identity). -ESRCH if gone. */
	int (*kill)(const VmmProcess *p);
	/* The live process listening on api_sock, as our own connect()
	 * reaches it (SO_PEERCRED). -ESRCH when none. Not an identity: a
	 * caller compares it with the recorded pid. */
	int (*find)(const char *api_sock, VmmProcess *ret);
	/* Optional. Is the recorded, live VMM p one that finished its launch
	 * (a crash can leave one spawned but never booted)? 1 yes, 0 no (kill
	 * it), -errno when it cannot tell (keep it). */
	int (*launched)(const char *api_sock, const VmmProcess *p);
	/* Optional. The user:gid the VMM opens its tap as, when that is not
	 * root (the tap must then be owned by it: TUNSETOWNER). 1 and the ids
	 * when so, 0 when the VMM opens its tap with privileges. */
	int (*tap_user)(const VmmLaunchConfig *c, uid_t *ret_uid, gid_t *ret_gid);
	/* Optional. Remove what the driver made for vm_id outside the VM dir
	 * (the jail). Idempotent; the VMM is already gone. */
	int (*cleanup)(const VmmSettings *s, const char *vm_id);
	/* One-line JSON description from the VMM's API (state, vcpus, ...).
	 * Caller frees. */
	int (*describe)(const char *api_sock, char **ret_json);
	/* Suspend, part 1: pause the guest and save its memory and device
	 * state into files in dir (made by the caller, root-only; the files are
	 * created 0600 by the controller and handed over as fds where the VMM
	 * allows), bounded by timeout_ms. On success the disks are flushed and
	 * the guest stays paused; *ret_version names the VMM's version. On
	 * failure the guest runs again — a failed save never kills a guest —
	 * and *ret_error says why. */
	int (*save_state)(const char *api_sock, const char *dir, unsigned timeout_ms,
			  char **ret_version, char **ret_error);
	/* Suspend, part 2: committed → end the VMM (its state is safe);
	 * not committed → continue the guest. */
	int (*finish_save)(const char *api_sock, bool committed);
	/* The VMM binary a launch would run (its identity guards a resume). */
	int (*binary)(const VmmSettings *s, char **ret_path);
} VmmDriver;

extern const VmmDriver vmm_firecracker_driver;
extern const VmmDriver vmm_qemu_driver;

/* Look up a driver by name ("firecracker" | "qemu"); NULL when unknown. */
const VmmDriver *vmm_driver_by_name(const char *name);
/* "auto": firecracker when its binary is found and /dev/kvm works, else qemu. */
const VmmDriver *vmm_driver_auto(const VmmSettings *s);

/* True when /dev/kvm can create a VM (KVM_CREATE_VM succeeds). Note: a PVM
 * host passes this yet cannot run stock guests; qemu decides TCG vs KVM with
 * its own probe. */
bool vmm_kvm_usable(void);

/* The guest kernel command line both drivers share:
 *   "console=ttyS0 reboot=k panic=-1 root=/dev/vda rw <vmm_args>
 *    ip=<ip>::<gw>:<mask>:<name>:eth0:off <user_args>"
 * (ip= omitted without network; vmm_args/user_args may be NULL). */
char *vmm_kernel_cmdline(const VmmLaunchConfig *c, const char *vmm_args);
