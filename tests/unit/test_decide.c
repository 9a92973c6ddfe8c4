/* The reconcile decision over a table of desired × observed states. */
#include "reconcile/decide.h"
#include "tap.h"

typedef struct {
	const char *what;
	DesiredView d;
	ObservedView o;
	Step step;
	VmPhase phase;
	const char *reason;
} Row;

#define RUNNING .has_intent = true, .state = VM_STATE_RUNNING
#define STOPPED .has_intent = true, .state = VM_STATE_STOPPED

static const Row rows[] = {
	/* no intent */
	{ "nothing at all → forget", {}, {}, STEP_FORGET, VM_PHASE_STOPPED, "Deleted" },
	{ "never-valid spec → Invalid", { .spec_error = true }, {}, STEP_NONE, VM_PHASE_INVALID,
	  "InvalidSpec" },
	{ "deleted intent, alive → graceful stop", { .intent_deleted = true }, { .alive = true },
	  STEP_STOP, VM_PHASE_STOPPING, "Deleting" },
	{ "deleted intent, stop sent → wait", { .intent_deleted = true },
	  { .alive = true, .stop_requested = true }, STEP_WAIT, VM_PHASE_STOPPING, "Deleting" },
	{ "deleted intent, stop overdue → kill", { .intent_deleted = true },
	  { .alive = true, .stop_requested = true, .stop_overdue = true }, STEP_KILL,
	  VM_PHASE_STOPPING, "Deleting" },
	{ "deleted intent, dead → delete everything", { .intent_deleted = true }, {}, STEP_DELETE,
	  VM_PHASE_STOPPING, "Deleting" },
	{ "deleted intent, leftovers → delete", { .intent_deleted = true }, { .has_resources = true },
	  STEP_DELETE, VM_PHASE_STOPPING, "Deleting" },
	{ "no row but leftovers → delete", {}, { .has_resources = true }, STEP_DELETE,
	  VM_PHASE_STOPPING, "Deleting" },
	{ "invalid spec never wins over a running orphan", { .spec_error = true }, { .alive = true },
	  STEP_STOP, VM_PHASE_STOPPING, "Deleting" },
	/* Stopped */
	{ "Stopped, dead → Stopped", { STOPPED }, {}, STEP_NONE, VM_PHASE_STOPPED, "Stopped" },
	{ "Stopped, alive → stop", { STOPPED }, { .alive = true, .ready = true }, STEP_STOP,
	  VM_PHASE_STOPPING, "Stopping" },
	{ "Stopped, stop overdue → kill", { STOPPED },
	  { .alive = true, .stop_requested = true, .stop_overdue = true }, STEP_KILL,
	  VM_PHASE_STOPPING, "Stopping" },
	{ "Stopped, leftovers → cleanup (disks kept)", { STOPPED }, { .has_resources = true },
	  STEP_CLEANUP, VM_PHASE_STOPPING, "Stopping" },
	{ "Stopped with an invalid edit still converges", { STOPPED, .spec_error = true }, {},
	  STEP_NONE, VM_PHASE_STOPPED, "Stopped" },
	/* Running, alive */
	{ "Running, alive, ready → nothing (never restart a healthy VM)", { RUNNING },
	  { .alive = true, .ready = true }, STEP_NONE, VM_PHASE_RUNNING, "Ready" },
	{ "Running, alive, invalid edit → keep running", { RUNNING, .spec_error = true },
	  { .alive = true, .ready = true }, STEP_NONE, VM_PHASE_RUNNING, "Ready" },
	{ "Running, alive, booting → wait", { RUNNING }, { .alive = true }, STEP_WAIT,
	  VM_PHASE_STARTING, "Booting" },
	{ "Running, boot overdue → fail boot", { RUNNING }, { .alive = true, .boot_overdue = true },
	  STEP_FAIL_BOOT, VM_PHASE_FAILED, "BootTimeout" },
	{ "Running, boot spec changed → graceful stop", { RUNNING, .boot_changed = true },
	  { .alive = true, .ready = true }, STEP_STOP, VM_PHASE_STOPPING, "SpecChanged" },
	{ "Running, boot change, stop sent → wait", { RUNNING, .boot_changed = true },
	  { .alive = true, .stop_requested = true }, STEP_WAIT, VM_PHASE_STOPPING, "SpecChanged" },
	{ "Running, boot change, overdue → kill", { RUNNING, .boot_changed = true },
	  { .alive = true, .stop_requested = true, .stop_overdue = true }, STEP_KILL,
	  VM_PHASE_STOPPING, "SpecChanged" },
	{ "Running again while a stop is pending → finish the stop", { RUNNING },
	  { .alive = true, .ready = true, .stop_requested = true }, STEP_WAIT, VM_PHASE_STOPPING,
	  "Stopping" },
	/* Running, dead */
	{ "Running, never started → start", { RUNNING }, {}, STEP_START, VM_PHASE_PENDING,
	  "Starting" },
	{ "Running, dead with leftovers → cleanup first", { RUNNING },
	  { .has_resources = true, .exited = true }, STEP_CLEANUP, VM_PHASE_PENDING, "CleaningUp" },
	{ "crashed, Always, backoff → wait", { RUNNING }, { .exited = true, .in_backoff = true },
	  STEP_WAIT, VM_PHASE_FAILED, "CrashLoopBackOff" },
	{ "crashed, Always, backoff over → start", { RUNNING }, { .exited = true }, STEP_START,
	  VM_PHASE_PENDING, "Starting" },
	{ "crashed, OnFailure → restart", { RUNNING, .restart_policy = RESTART_ON_FAILURE },
	  { .exited = true }, STEP_START, VM_PHASE_PENDING, "Starting" },
	{ "clean exit, OnFailure → Completed", { RUNNING, .restart_policy = RESTART_ON_FAILURE },
	  { .exited = true, .exit_ok = true }, STEP_NONE, VM_PHASE_STOPPED, "Completed" },
	{ "clean exit, Never → Completed", { RUNNING, .restart_policy = RESTART_NEVER },
	  { .exited = true, .exit_ok = true }, STEP_NONE, VM_PHASE_STOPPED, "Completed" },
	{ "clean exit, Always → restart", { RUNNING }, { .exited = true, .exit_ok = true },
	  STEP_START, VM_PHASE_PENDING, "Starting" },
	{ "crashed, Never → Failed", { RUNNING, .restart_policy = RESTART_NEVER },
	  { .exited = true }, STEP_NONE, VM_PHASE_FAILED, "Crashed" },
	{ "start failed, Never → Failed", { RUNNING, .restart_policy = RESTART_NEVER },
	  { .start_failed = true }, STEP_NONE, VM_PHASE_FAILED, "StartFailed" },
	{ "start failed, Always, backoff → wait", { RUNNING },
	  { .start_failed = true, .in_backoff = true }, STEP_WAIT, VM_PHASE_FAILED,
	  "CrashLoopBackOff" },
	{ "start failed, Always → retry", { RUNNING }, { .start_failed = true }, STEP_START,
	  VM_PHASE_PENDING, "Starting" },
};

int main(void)
{
	for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
		const Row *r = &rows[i];
		Decision d = reconcile_decide(&r->d, &r->o);
		CHECK(d.step == r->step && d.phase == r->phase && streq(d.reason, r->reason),
		      "%s (got %s/%s/%s)", r->what, step_to_string(d.step),
		      vm_phase_to_string(d.phase), d.reason);
	}
	CHECK_INTEQ(reconcile_backoff_ms(1), 1000, "first backoff 1 s");
	CHECK_INTEQ(reconcile_backoff_ms(2), 2000, "then 2 s");
	CHECK_INTEQ(reconcile_backoff_ms(4), 8000, "then doubling");
	CHECK_INTEQ(reconcile_backoff_ms(9), 256000, "256 s");
	CHECK_INTEQ(reconcile_backoff_ms(10), 300000, "capped at 5 min");
	CHECK_INTEQ(reconcile_backoff_ms(1000), 300000, "stays capped");
	return tap_done();
}
