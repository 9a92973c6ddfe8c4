/* The reconcile decision over a table of desired × observed states. */
#include "reconcile/decide.h"
#include "tap.h"
#include "util/util.h"

typedef struct {
	const char *what;
	DesiredView d;
	ObservedView o;
	Step step;
	VmPhase phase;
	const char *reason;
} Row;

#define RUNNING   .has_intent = true, .state = VM_STATE_RUNNING
#define STOPPED   .has_intent = true, .state = VM_STATE_STOPPED
#define SUSPENDED .has_intent = true, .state = VM_STATE_SUSPENDED
/* A saved state that passes every check. */
#define SAVED_OK                                                                                   \
	.saved = true, .saved_intact = true, .saved_boot_equal = true, .saved_vmm_equal = true

/* One row per case, aligned by hand: */
/* clang-format off */
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
	/* Suspended */
	{ "Suspended, running → suspend", { SUSPENDED }, { .alive = true, .ready = true },
	  STEP_SUSPEND, VM_PHASE_SUSPENDED, "Suspending" },
	{ "Suspended, still booting → suspend anyway", { SUSPENDED }, { .alive = true },
	  STEP_SUSPEND, VM_PHASE_SUSPENDED, "Suspending" },
	{ "Suspended, a stop already sent → finish the stop", { SUSPENDED },
	  { .alive = true, .stop_requested = true }, STEP_WAIT, VM_PHASE_STOPPING, "Stopping" },
	{ "Suspended, stop overdue → kill", { SUSPENDED },
	  { .alive = true, .stop_requested = true, .stop_overdue = true }, STEP_KILL,
	  VM_PHASE_STOPPING, "Stopping" },
	{ "Suspended, saved, VMM still ending → wait for its exit, no second save", { SUSPENDED },
	  { .alive = true, .suspend_committed = true }, STEP_WAIT, VM_PHASE_SUSPENDED, "Suspending" },
	{ "Suspended, save failed, retry not due → keep running", { SUSPENDED },
	  { .alive = true, .ready = true, .suspend_failed = true, .suspend_backoff = true },
	  STEP_WAIT, VM_PHASE_RUNNING, "SuspendFailed" },
	{ "Suspended, save failed, retry due → suspend again", { SUSPENDED },
	  { .alive = true, .ready = true, .suspend_failed = true }, STEP_SUSPEND,
	  VM_PHASE_SUSPENDED, "Suspending" },
	{ "Suspended, VMM ended, leftovers → cleanup (tap name, IP kept)", { SUSPENDED },
	  { .has_resources = true, SAVED_OK }, STEP_CLEANUP, VM_PHASE_SUSPENDED, "Suspending" },
	{ "Suspended, saved, clean → Suspended", { SUSPENDED }, { SAVED_OK }, STEP_NONE,
	  VM_PHASE_SUSPENDED, "Suspended" },
	{ "Suspended, crashed before the save (kill -9) → Failed, not suspended", { SUSPENDED },
	  { .exited = true }, STEP_NONE, VM_PHASE_FAILED, "Crashed" },
	{ "Suspended, never ran → nothing saved", { SUSPENDED }, {}, STEP_NONE,
	  VM_PHASE_STOPPED, "NothingSaved" },
	{ "Suspended with an invalid edit keeps its saved state", { SUSPENDED, .spec_error = true },
	  { SAVED_OK }, STEP_NONE, VM_PHASE_SUSPENDED, "Suspended" },
	/* Running again after Suspended */
	{ "Running, saved state valid → resume", { RUNNING }, { SAVED_OK }, STEP_RESUME,
	  VM_PHASE_PENDING, "Resuming" },
	{ "Running, saved, leftovers → cleanup first", { RUNNING },
	  { .has_resources = true, SAVED_OK }, STEP_CLEANUP, VM_PHASE_PENDING, "CleaningUp" },
	{ "Running, saved state corrupt → discard (then cold boot)", { RUNNING },
	  { .saved = true, .saved_boot_equal = true, .saved_vmm_equal = true }, STEP_DISCARD,
	  VM_PHASE_PENDING, "StateCorrupt" },
	{ "Running, boot-relevant change while suspended → discard", { RUNNING },
	  { .saved = true, .saved_intact = true, .saved_vmm_equal = true }, STEP_DISCARD,
	  VM_PHASE_PENDING, "SpecChangedWhileSuspended" },
	{ "Running, VMM version changed → discard", { RUNNING },
	  { .saved = true, .saved_intact = true, .saved_boot_equal = true }, STEP_DISCARD,
	  VM_PHASE_PENDING, "VmmChanged" },
	{ "Running, resume failed → discard", { RUNNING }, { SAVED_OK, .resume_failed = true },
	  STEP_DISCARD, VM_PHASE_PENDING, "ResumeFailed" },
	{ "Running, resume failed, state gone → cold boot", { RUNNING }, { .resume_failed = true },
	  STEP_START, VM_PHASE_PENDING, "Starting" },
	{ "Running, saved state, even under Never → resume (a resume is no restart)",
	  { RUNNING, .restart_policy = RESTART_NEVER }, { SAVED_OK }, STEP_RESUME,
	  VM_PHASE_PENDING, "Resuming" },
	{ "Running, resumed, probe pending → Starting/Resumed (not Booting)", { RUNNING },
	  { .alive = true, .resumed = true }, STEP_WAIT, VM_PHASE_STARTING, "Resumed" },
	{ "Running, resumed, probe passed → Running/Ready", { RUNNING },
	  { .alive = true, .ready = true, .resumed = true }, STEP_NONE, VM_PHASE_RUNNING, "Ready" },
	{ "Running, alive and a saved state → the live VM wins", { RUNNING },
	  { .alive = true, .ready = true, SAVED_OK }, STEP_NONE, VM_PHASE_RUNNING, "Ready" },
	{ "Stopped, saved state → discard (next start is a cold boot)", { STOPPED }, { SAVED_OK },
	  STEP_DISCARD, VM_PHASE_STOPPED, "Stopped" },
	{ "deleted intent, saved state → delete everything", { .intent_deleted = true },
	  { SAVED_OK }, STEP_DELETE, VM_PHASE_STOPPING, "Deleting" },
	/* Concurrent launches: a launch in flight makes every desire wait */
	{ "Running, launch in flight → wait for it (no second start)", { RUNNING },
	  { .launching = true, .has_resources = true }, STEP_WAIT, VM_PHASE_PENDING, "Launching" },
	{ "Running, launch in flight, slots full → still the launch's wait", { RUNNING },
	  { .launching = true, .has_resources = true, .launch_slots_full = true }, STEP_WAIT,
	  VM_PHASE_PENDING, "Launching" },
	{ "launch in flight, no cleanup of its recorded tap and disks", { RUNNING },
	  { .launching = true, .has_resources = true, .exited = true }, STEP_WAIT,
	  VM_PHASE_PENDING, "Launching" },
	{ "deleted intent, launch in flight → wait, then stop and delete", { .intent_deleted = true },
	  { .launching = true, .has_resources = true }, STEP_WAIT, VM_PHASE_STOPPING, "Deleting" },
	{ "no row, launch in flight → wait (never DELETE under a launch)", {},
	  { .launching = true, .has_resources = true }, STEP_WAIT, VM_PHASE_STOPPING, "Deleting" },
	{ "Stopped, launch in flight → wait, then stop", { STOPPED },
	  { .launching = true, .has_resources = true }, STEP_WAIT, VM_PHASE_STOPPING, "Stopping" },
	{ "Suspended, launch in flight → wait, then suspend", { SUSPENDED },
	  { .launching = true, .has_resources = true }, STEP_WAIT, VM_PHASE_PENDING, "Launching" },
	{ "boot change, launch in flight → wait", { RUNNING, .boot_changed = true },
	  { .launching = true, .has_resources = true }, STEP_WAIT, VM_PHASE_PENDING, "Launching" },
	{ "Running, never started, slots full → wait for a slot", { RUNNING },
	  { .launch_slots_full = true }, STEP_WAIT, VM_PHASE_PENDING, "WaitingForLaunchSlot" },
	{ "crashed, backoff over, slots full → wait for a slot", { RUNNING },
	  { .exited = true, .launch_slots_full = true }, STEP_WAIT, VM_PHASE_PENDING,
	  "WaitingForLaunchSlot" },
	{ "crashed, in backoff, slots full → the back-off shows", { RUNNING },
	  { .exited = true, .in_backoff = true, .launch_slots_full = true }, STEP_WAIT,
	  VM_PHASE_FAILED, "CrashLoopBackOff" },
	{ "slots full, leftovers → cleanup needs no slot", { RUNNING },
	  { .has_resources = true, .exited = true, .launch_slots_full = true }, STEP_CLEANUP,
	  VM_PHASE_PENDING, "CleaningUp" },
	{ "slots full, alive and ready → nothing (a slot is only for launches)", { RUNNING },
	  { .alive = true, .ready = true, .launch_slots_full = true }, STEP_NONE, VM_PHASE_RUNNING,
	  "Ready" },
	{ "saved state valid, slots full → wait for a slot to resume", { RUNNING },
	  { SAVED_OK, .launch_slots_full = true }, STEP_WAIT, VM_PHASE_PENDING,
	  "WaitingForLaunchSlot" },
	{ "saved state corrupt, slots full → discard needs no slot", { RUNNING },
	  { .saved = true, .launch_slots_full = true }, STEP_DISCARD, VM_PHASE_PENDING,
	  "StateCorrupt" },
	{ "Stopped, slots full → Stopped", { STOPPED }, { .launch_slots_full = true }, STEP_NONE,
	  VM_PHASE_STOPPED, "Stopped" },
	{ "Never, start failed, slots full → Failed (no slot wanted)",
	  { RUNNING, .restart_policy = RESTART_NEVER }, { .start_failed = true,
	  .launch_slots_full = true }, STEP_NONE, VM_PHASE_FAILED, "StartFailed" },
};
/* clang-format on */

/* Exit classification: every combination of the facts. */
static void test_classify_exit(void)
{
	static const struct {
		const char *what;
		ExitFacts f;
		ExitKind want;
	} t[] = {
		{ "asked to stop → stopped", { .stop_requested = true }, EXIT_STOPPED },
		{ "asked, even with status 0 → stopped",
		  { .stop_requested = true, .status_known = true, .exited_zero = true },
		  EXIT_STOPPED },
		{ "boot-timeout kill → boot-failed (counted already)",
		  { .boot_failed = true, .stop_requested = true },
		  EXIT_BOOT_FAILED },
		{ "our child, status 0 → completed",
		  { .status_known = true, .exited_zero = true },
		  EXIT_COMPLETED },
		{ "status 0 but the console shows a panic → crashed",
		  { .status_known = true, .exited_zero = true, .console_panic = true },
		  EXIT_CRASHED },
		{ "our child, non-zero or signal → crashed",
		  { .status_known = true },
		  EXIT_CRASHED },
		{ "adopted (status unknown) → crashed", {}, EXIT_CRASHED },
		{ "adopted, asked to stop → stopped", { .stop_requested = true }, EXIT_STOPPED },
		{ "ended after a committed save → suspended",
		  { .suspended = true },
		  EXIT_SUSPENDED },
		{ "ended after a save, adopted (status unknown) → suspended",
		  { .suspended = true, .status_known = false },
		  EXIT_SUSPENDED },
		{ "kill -9 (no committed save) → crashed, never a suspend",
		  { .status_known = true },
		  EXIT_CRASHED },
	};
	for (size_t i = 0; i < ELEMENTSOF(t); i++) {
		ExitKind k = reconcile_classify_exit(&t[i].f);
		CHECK(k == t[i].want, "exit: %s (got %s)", t[i].what, exit_kind_to_string(k));
	}
}

static void test_failure_book(void)
{
	FailureBook b = { 0 };
	reconcile_failure(&b, 1, 10000);
	CHECK_INTEQ(b.failures, 1, "first failure counted");
	CHECK_INTEQ(b.backoff_until, 11000, "back-off 1 s after the first");
	reconcile_failure(&b, 1, 20000);
	CHECK_INTEQ(b.backoff_until, 22000, "2 s after the second");
	reconcile_running(&b, 30000);
	reconcile_failure(&b, 1, 30000 + RECONCILE_HEALTHY_RESET_MS);
	CHECK_INTEQ(b.failures, 3, "a short run does not reset the count");
	reconcile_running(&b, 100000);
	reconcile_failure(&b, 1, 100001 + RECONCILE_HEALTHY_RESET_MS);
	CHECK_INTEQ(b.failures, 1, "a run longer than the healthy time starts afresh");
	CHECK_INTEQ(b.running_since, 0, "a failure ends the run");
	CHECK(!reconcile_new_generation(&b, 1), "same generation: nothing forgotten");
	CHECK_INTEQ(b.failures, 1, "...count kept");
	CHECK(reconcile_new_generation(&b, 2), "new generation: failures forgotten");
	CHECK(b.failures == 0 && b.backoff_until == 0, "...count and back-off cleared");
	CHECK(!reconcile_new_generation(&b, 3), "nothing counted: nothing to forget");
	for (int i = 0; i < 20; i++)
		reconcile_failure(&b, 3, 0);
	CHECK_INTEQ(b.backoff_until, 300000, "back-off capped at 5 min");
}

static void test_after_start_and_settled(void)
{
	Decision d = reconcile_after_start(true, RESTART_ALWAYS);
	CHECK(d.step == STEP_WAIT && d.phase == VM_PHASE_STARTING && streq(d.reason, "Booting"),
	      "launched → Starting/Booting");
	d = reconcile_after_start(false, RESTART_ALWAYS);
	CHECK(d.phase == VM_PHASE_FAILED && streq(d.reason, "CrashLoopBackOff"),
	      "start failed, Always → Failed/CrashLoopBackOff");
	d = reconcile_after_start(false, RESTART_NEVER);
	CHECK(d.phase == VM_PHASE_FAILED && streq(d.reason, "StartFailed"),
	      "start failed, Never → Failed/StartFailed");

	d = reconcile_after_suspend(true);
	CHECK(d.step == STEP_WAIT && d.phase == VM_PHASE_SUSPENDED,
	      "saved → Suspended (the exit and cleanup follow)");
	d = reconcile_after_suspend(false);
	CHECK(d.phase == VM_PHASE_RUNNING && streq(d.reason, "SuspendFailed"),
	      "save failed → still Running, SuspendFailed");
	d = reconcile_after_resume(true);
	CHECK(d.phase == VM_PHASE_STARTING && streq(d.reason, "Resumed"),
	      "resumed → Starting until the probe passes");
	d = reconcile_after_resume(false);
	CHECK(d.phase == VM_PHASE_PENDING && streq(d.reason, "ResumeFailed"),
	      "resume failed → Pending (discard and cold boot next)");
	CHECK_INTEQ(reconcile_suspend_retry_ms(1), 1000, "suspend retry on the back-off curve");

	DesiredView dv = { RUNNING };
	ObservedView ov = { .alive = true };
	Decision none = { STEP_NONE, VM_PHASE_RUNNING, "Ready" };
	Decision wait = { STEP_WAIT, VM_PHASE_STARTING, "Booting" };
	Decision stop = { STEP_STOP, VM_PHASE_STOPPING, "Stopping" };
	CHECK(reconcile_settled(&none, &dv, &ov), "converged → settled");
	CHECK(reconcile_settled(&wait, &dv, &ov), "booting the current spec → settled");
	CHECK(!reconcile_settled(&stop, &dv, &ov), "a stop step → not settled");
	dv.boot_changed = true;
	CHECK(!reconcile_settled(&wait, &dv, &ov),
	      "waiting on a spec-change restart → not settled");
	dv.boot_changed = false;
	ov.stop_requested = true;
	CHECK(!reconcile_settled(&wait, &dv, &ov), "waiting on a stop → not settled");

	d = reconcile_launching();
	CHECK(d.step == STEP_WAIT && d.phase == VM_PHASE_PENDING && streq(d.reason, "Launching"),
	      "launch handed to a worker → Pending/Launching");
	dv = (DesiredView){ RUNNING };
	ov = (ObservedView){ .launching = true, .has_resources = true };
	Decision launching = reconcile_decide(&dv, &ov);
	CHECK(!reconcile_settled(&launching, &dv, &ov),
	      "a launch in flight → not settled (it may boot an older generation)");
	ov = (ObservedView){ .launch_slots_full = true };
	Decision slot = reconcile_decide(&dv, &ov);
	CHECK(!reconcile_settled(&slot, &dv, &ov), "waiting for a launch slot → not settled");
	ov = (ObservedView){ .alive = true, .launch_slots_full = true };
	CHECK(reconcile_settled(&wait, &dv, &ov),
	      "booting with all slots taken by others → settled");
	Decision pending = reconcile_launching();
	WakeFacts w = { .now = 1000, .boot_deadline = 9000, .backoff_until = 7000 };
	CHECK_INTEQ(reconcile_wake_at(&pending, &w), 0,
		    "Launching → only on the launch's report (no timer)");
	CHECK_INTEQ(reconcile_wake_at(&slot, &w), 0, "waiting for a slot → only on an invitation");
}

static void test_wake_at(void)
{
	WakeFacts w = {
		.now = 1000, .stop_deadline = 5000, .boot_deadline = 9000, .backoff_until = 7000
	};
	Decision stopping = { STEP_WAIT, VM_PHASE_STOPPING, "Stopping" };
	CHECK_INTEQ(reconcile_wake_at(&stopping, &w), 1100, "stop not sent yet → soon");
	w.stop_requested = true;
	CHECK_INTEQ(reconcile_wake_at(&stopping, &w), 5000, "stop sent → its deadline");
	Decision starting = { STEP_WAIT, VM_PHASE_STARTING, "Booting" };
	CHECK_INTEQ(reconcile_wake_at(&starting, &w), 9000, "no probe → boot deadline");
	w.probe_due = 1250;
	CHECK_INTEQ(reconcile_wake_at(&starting, &w), 1250, "probe before the deadline");
	w.probe_due = 500;
	CHECK_INTEQ(reconcile_wake_at(&starting, &w), 1001, "an overdue probe → next tick");
	w.probe_due = 20000;
	CHECK_INTEQ(reconcile_wake_at(&starting, &w), 9000, "deadline before the probe");
	Decision backoff = { STEP_WAIT, VM_PHASE_FAILED, "CrashLoopBackOff" };
	CHECK_INTEQ(reconcile_wake_at(&backoff, &w), 7000, "back-off → its end");
	Decision failed = { STEP_NONE, VM_PHASE_FAILED, "Crashed" };
	CHECK_INTEQ(reconcile_wake_at(&failed, &w), 0, "Failed for good → only on events");
	Decision running = { STEP_NONE, VM_PHASE_RUNNING, "Ready" };
	CHECK_INTEQ(reconcile_wake_at(&running, &w), 0, "Running → only on events");
	w.suspend_retry_at = 4000;
	Decision sfail = { STEP_WAIT, VM_PHASE_RUNNING, "SuspendFailed" };
	CHECK_INTEQ(reconcile_wake_at(&sfail, &w), 4000, "failed suspend → its retry time");
	Decision susp = { STEP_NONE, VM_PHASE_SUSPENDED, "Suspended" };
	CHECK_INTEQ(reconcile_wake_at(&susp, &w), 0, "Suspended → only on events");
	w.retry_at = 4000;
	CHECK_INTEQ(reconcile_wake_at(&running, &w), 4000, "an executor retry wakes a Running VM");
	CHECK_INTEQ(reconcile_wake_at(&backoff, &w), 4000, "...and comes first when earlier");
	w.retry_at = 8000;
	CHECK_INTEQ(reconcile_wake_at(&backoff, &w), 7000, "...not when later");
	CHECK_INTEQ(reconcile_error_retry_ms(0), 1000, "pass error: 1 s first");
	CHECK_INTEQ(reconcile_error_retry_ms(3), 8000, "...on the same curve");
	CHECK_INTEQ(reconcile_error_retry_ms(50), 300000, "...capped at 5 min");
}

int main(void)
{
	test_classify_exit();
	test_failure_book();
	test_after_start_and_settled();
	test_wake_at();
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
