/* qemu.h — internals of the QEMU driver (vmm_qemu_driver in vmm.h), exposed
 * so the pure parts can be unit-tested.
 *
 * The guest runs on `-M microvm,acpi=off` (the minimal kernel finds its
 * virtio-mmio devices on the command line QEMU writes for it), with an i8042
 * so Ctrl-Alt-Del reaches the guest, `-no-reboot` so a guest reset ends the
 * process, the serial console in a file and QMP on the API socket. Disks
 * are virtio-blk in a fixed order: root first (/dev/vda), then the work
 * disk (/dev/vdb), each passed as an fdset (below).
 *
 * Accelerator: TCG unless BANGER_QEMU_ACCEL=kvm|tcg says otherwise, or KVM
 * creates VMs (vmm_kvm_usable()) AND is backed by hardware virtualisation
 * (vmx/svm in /proc/cpuinfo) AND is not PVM (/sys/module/kvm_pvm): PVM
 * passes KVM_CREATE_VM yet crashes stock guests. Under TCG the guest gets
 * tsc_early_khz=<host MHz * 1000>, without which ~1 boot in 10 hangs
 * calibrating the TSC. */
#pragma once

#include "vmm/vmm.h"

/* Default binaries when VmmSettings leaves them NULL. */
#define QEMU_DEFAULT_BIN "qemu-system-x86_64"

/* Suspend/resume (qemu_state.c): the saved state's file in its directory. */
#define QEMU_STATE_FILE "qemu.state"
char *qemu_state_path(const char *dir);
int qemu_save_state(const char *api_sock, const char *dir, unsigned timeout_ms, char **ret_version,
		    char **ret_error);
int qemu_finish_save(const char *api_sock, bool committed);
/* A QEMU launched with -incoming defer (pid, QMP up): load c->incoming_dir's
 * state through an fd, wait while it is `inmigrate`, `cont`. Bounded. */
int qemu_restore(const VmmLaunchConfig *c, pid_t pid, unsigned timeout_ms);

/* Disks as fdsets (qemu_disk.c). QEMU never opens a disk by path: bangerd
 * opens each one and QEMU inherits the fds (-add-fd fd=N,set=S), its
 * blockdev naming /dev/fdset/S. A confined QEMU is chrooted into an empty
 * directory, and the end of a migration (suspend) and its undo (`cont`)
 * reopen the disks: by path that fails ("bdrv_inactivate_all() failed");
 * from an fdset QEMU dups the set's fd whose access mode matches (libvirt
 * does the same). Every launch, confined or not, resume or boot, takes this
 * one path. A set holds an O_RDONLY and an O_RDWR fd of the same file (a
 * read-only reopen finds one; measured, QEMU 7.2 completes a migration with
 * the O_RDWR one alone), a backing file only an O_RDONLY fd: it is never
 * written. A qcow2 overlay's backing file (its header names it) is its own
 * set and blockdev node, so QEMU does not open it by path either. */
#define QEMU_FDSET_ROOT    1
#define QEMU_FDSET_BACKING 2
#define QEMU_FDSET_WORK    3
typedef struct {
	int set;    /* QEMU_FDSET_*; 0: no such disk */
	int ro, rw; /* fds (O_CLOEXEC) or -1 */
	bool block; /* a block device (dm): QEMU's host_device driver, not file */
} QemuFdset;
typedef struct {
	QemuFdset root, backing, work; /* backing: the root's, when it is a qcow2 overlay */
} QemuDisks;
#define QEMU_DISKS_NONE                                                                            \
	{                                                                                          \
		.root = { 0, -1, -1, false }, .backing = { 0, -1, -1, false }, .work = {           \
			0,                                                                         \
			-1,                                                                        \
			-1,                                                                        \
			false                                                                      \
		}                                                                                  \
	}
/* Open c's disks (and a qcow2 root's raw backing file, which must be an
 * absolute path). Nothing is left open on failure. */
int qemu_disks_open(const VmmLaunchConfig *c, QemuDisks *ret);
/* Close every fd; d stays valid (all -1). */
void qemu_disks_close(QemuDisks *d);
/* The fds a launch passes, for SpawnOptions.pass_fds; returns the count. */
#define QEMU_DISKS_FDS_MAX 6 /* two per set */
size_t qemu_disks_fds(const QemuDisks *d, int ret_fds[QEMU_DISKS_FDS_MAX]);

/* Build the qemu argv for c with the disks d opened (argv[0] = qemu_path,
 * which the caller has resolved). tsc_khz > 0 adds tsc_early_khz= to the guest command line;
 * kvm selects -accel kvm instead of tcg. -EINVAL (logged) when c lacks a
 * required field or has an unknown root disk format. Caller strv_free()s. */
int qemu_build_argv(const VmmLaunchConfig *c, const QemuDisks *d, const char *qemu_path, bool kvm,
		    unsigned tsc_khz, char ***ret_argv);

/* Double every ',' so a path survives QEMU's option parser. Caller frees. */
char *qemu_opt_escape(const char *s);

/* Host TSC rate in kHz from /proc/cpuinfo's first "cpu MHz" (0 if unknown),
 * read once per process. */
unsigned qemu_host_tsc_khz(void);
/* Same, parsed from the text of a cpuinfo file (for tests). */
unsigned qemu_parse_tsc_khz(const char *cpuinfo);

/* Whether to use KVM, per the rule above. */
bool qemu_use_kvm(void);
