/* phase.c — see phase.h. */
#include "reconcile/phase.h"
#include "util/util.h"

static const char *const phase_names[_VM_PHASE_MAX] = {
	[VM_PHASE_PENDING] = "Pending", [VM_PHASE_STARTING] = "Starting",
	[VM_PHASE_RUNNING] = "Running", [VM_PHASE_STOPPING] = "Stopping",
	[VM_PHASE_STOPPED] = "Stopped", [VM_PHASE_FAILED] = "Failed",
	[VM_PHASE_INVALID] = "Invalid", [VM_PHASE_SUSPENDED] = "Suspended",
};

const char *vm_phase_to_string(VmPhase p)
{
	return p < _VM_PHASE_MAX ? phase_names[p] : "Unknown";
}

int vm_phase_from_string(const char *s)
{
	for (int i = 0; i < _VM_PHASE_MAX; i++)
		if (streq(s, phase_names[i]))
			return i;
	return -EINVAL;
}
