/* qemu.h — internals of the QEMU driver (vmm_qemu_driver in vmm.h), exposed
 * so the pure parts can be unit-tested.
 *
 * The guest runs on `-M microvm,acpi=off` (the minimal kernel finds its
 * virtio-mmio devices on the command line QEMU writes for it), with an i8042
 * so Ctrl-Alt-Del reaches the guest, `-no-reboot` so a guest reset ends the
 * process, the serial console in a file and QMP on the API socket. Disks
 * are virtio-blk in a fixed order: root first (/dev/vda), then the work
 * disk (/dev/vdb).
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
int qemu_save_state(const char *api_sock, const char *dir, unsigned timeout_ms,
		    char **ret_version, char **ret_error);
int qemu_finish_save(const char *api_sock, bool committed);
/* A QEMU launched with -incoming defer (pid, QMP up): load c->incoming_dir's
 * state through an fd, wait while it is `inmigrate`, `cont`. Bounded. */
int qemu_restore(const VmmLaunchConfig *c, pid_t pid, unsigned timeout_ms);

/* Build the qemu argv for c (argv[0] = qemu_path, which the caller has
 * resolved). tsc_khz > 0 adds tsc_early_khz= to the guest command line;
 * kvm selects -accel kvm instead of tcg. -EINVAL (logged) when c lacks a
 * required field or has an unknown root disk format. Caller strv_free()s. */
int qemu_build_argv(const VmmLaunchConfig *c, const char *qemu_path, bool kvm, unsigned tsc_khz,
		    char ***ret_argv);

/* Double every ',' so a path survives QEMU's option parser. Caller frees. */
char *qemu_opt_escape(const char *s);

/* Host TSC rate in kHz from /proc/cpuinfo's first "cpu MHz" (0 if unknown). */
unsigned qemu_host_tsc_khz(void);
/* Same, parsed from the text of a cpuinfo file (for tests). */
unsigned qemu_parse_tsc_khz(const char *cpuinfo);

/* Whether to use KVM, per the rule above. */
bool qemu_use_kvm(void);
