/* decide.c — see decide.h.
 *
 *   no intent, no spec ........................ FORGET (or TEARDOWN if anything runs)
 *   no intent, invalid spec ................... Invalid
 *   intent deleted ............................ TEARDOWN → FORGET
 *   Stopped  + alive .......................... STOP     (Stopping)
 *   Stopped  + leftovers ...................... TEARDOWN (Stopping)
 *   Stopped  + nothing ........................ NONE     (Stopped)
 *   Running  + alive .......................... NONE     (Running)
 *   Running  + not alive ...................... START    (Pending → Starting)
 */
#include "reconcile/decide.h"

static const char *const step_names[_STEP_MAX] = {
	[STEP_NONE] = "none",	       [STEP_FORGET] = "forget", [STEP_START] = "start",
	[STEP_STOP] = "stop",	       [STEP_TEARDOWN] = "teardown",
};

const char *step_to_string(Step s)
{
	return s < _STEP_MAX ? step_names[s] : "unknown";
}

static Decision decide_without_intent(const DesiredView *d, const ObservedView *o)
{
	if (o->alive || o->has_resources)
		return (Decision){ STEP_TEARDOWN, VM_PHASE_STOPPING, "Deleting" };
	if (d->spec_error && !d->intent_deleted)
		return (Decision){ STEP_NONE, VM_PHASE_INVALID, "InvalidSpec" };
	return (Decision){ STEP_FORGET, VM_PHASE_STOPPED, "Deleted" };
}

Decision reconcile_decide(const DesiredView *d, const ObservedView *o)
{
	if (!d->has_intent)
		return decide_without_intent(d, o);
	if (d->state == VM_STATE_STOPPED) {
		if (o->alive)
			return (Decision){ STEP_STOP, VM_PHASE_STOPPING, "Stopping" };
		if (o->has_resources)
			return (Decision){ STEP_TEARDOWN, VM_PHASE_STOPPING, "Stopping" };
		return (Decision){ STEP_NONE, VM_PHASE_STOPPED, "Stopped" };
	}
	if (o->alive)
		return (Decision){ STEP_NONE, VM_PHASE_RUNNING, "Running" };
	return (Decision){ STEP_START, VM_PHASE_PENDING, "Starting" };
}
