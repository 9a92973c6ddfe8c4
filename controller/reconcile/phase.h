/* phase.h — the lifecycle phase a VM is reported in (status.phase).
 *
 * Owned by the pure core: reconcile_decide() chooses it, status/ renders
 * it. No I/O here, so the decision can use it without pulling the status
 * writer in. docs/status.md lists what each phase means. */
#pragma once

typedef enum {
	VM_PHASE_PENDING,
	VM_PHASE_STARTING,
	VM_PHASE_RUNNING,
	VM_PHASE_STOPPING,
	VM_PHASE_STOPPED,
	VM_PHASE_FAILED,
	VM_PHASE_INVALID,
	VM_PHASE_SUSPENDED, /* memory saved in the VM dir, no VMM (spec.state Suspended) */
	_VM_PHASE_MAX,
} VmPhase;

const char *vm_phase_to_string(VmPhase p);
/* The phase for its status name, or -EINVAL. */
int vm_phase_from_string(const char *s);
