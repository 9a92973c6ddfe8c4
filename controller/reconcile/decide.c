/* decide.c — see decide.h for the state diagram. */
#include "reconcile/decide.h"

static const char *const step_names[_STEP_MAX] = {
	[STEP_NONE] = "none",       [STEP_WAIT] = "wait",           [STEP_FORGET] = "forget",
	[STEP_START] = "start",     [STEP_STOP] = "stop",           [STEP_KILL] = "kill",
	[STEP_CLEANUP] = "cleanup", [STEP_FAIL_BOOT] = "fail-boot", [STEP_DELETE] = "delete",
	[STEP_SUSPEND] = "suspend", [STEP_RESUME] = "resume",       [STEP_DISCARD] = "discard",
};

const char *step_to_string(Step s)
{
	return s < _STEP_MAX ? step_names[s] : "unknown";
}

uint64_t reconcile_backoff_ms(unsigned failures)
{
	uint64_t ms = 1000;
	for (unsigned i = 1; i < failures && ms < 300000; i++)
		ms *= 2;
	return ms > 300000 ? 300000 : ms;
}

#define D(step, phase, reason) ((Decision){ (step), (phase), (reason) })

/* The VM runs but must not: graceful first, then force. */
static Decision stop_it(const ObservedView *o, const char *reason)
{
	if (!o->stop_requested)
		return D(STEP_STOP, VM_PHASE_STOPPING, reason);
	if (o->stop_overdue)
		return D(STEP_KILL, VM_PHASE_STOPPING, reason);
	return D(STEP_WAIT, VM_PHASE_STOPPING, reason);
}

static Decision decide_without_intent(const DesiredView *d, const ObservedView *o)
{
	if (o->alive)
		return stop_it(o, "Deleting");
	if (d->intent_deleted || o->has_resources)
		return D(STEP_DELETE, VM_PHASE_STOPPING, "Deleting");
	if (d->spec_error)
		return D(STEP_NONE, VM_PHASE_INVALID, "InvalidSpec");
	return D(STEP_FORGET, VM_PHASE_STOPPED, "Deleted");
}

static Decision decide_stopped(const ObservedView *o)
{
	if (o->alive)
		return stop_it(o, "Stopping");
	if (o->has_resources)
		return D(STEP_CLEANUP, VM_PHASE_STOPPING, "Stopping");
	if (o->saved) /* Stopped means the next start is a cold boot */
		return D(STEP_DISCARD, VM_PHASE_STOPPED, "Stopped");
	return D(STEP_NONE, VM_PHASE_STOPPED, "Stopped");
}

/* Suspended wanted: save a running guest; a stop already sent finishes
 * first; a failed save leaves the guest running until the retry. */
static Decision decide_suspended(const ObservedView *o)
{
	if (o->alive) {
		/* Saved: its VMM is ending (finish_save quits or kills it); its
		 * exit, not a second save, comes next. */
		if (o->suspend_committed)
			return D(STEP_WAIT, VM_PHASE_SUSPENDED, "Suspending");
		if (o->stop_requested)
			return stop_it(o, "Stopping");
		if (o->suspend_failed && o->suspend_backoff)
			return D(STEP_WAIT, VM_PHASE_RUNNING, "SuspendFailed");
		return D(STEP_SUSPEND, VM_PHASE_SUSPENDED, "Suspending");
	}
	if (o->has_resources)
		return D(STEP_CLEANUP, VM_PHASE_SUSPENDED, "Suspending");
	if (o->saved)
		return D(STEP_NONE, VM_PHASE_SUSPENDED, "Suspended");
	if (o->exited && !o->exit_ok) /* crashed before it could be saved */
		return D(STEP_NONE, VM_PHASE_FAILED, "Crashed");
	return D(STEP_NONE, VM_PHASE_STOPPED, "NothingSaved");
}

/* Running wanted, no VMM, a saved state: resume from it only when it is
 * whole and still fits; otherwise discard it (then cold-boot) and say why. */
static Decision decide_saved(const ObservedView *o)
{
	if (!o->saved_intact)
		return D(STEP_DISCARD, VM_PHASE_PENDING, "StateCorrupt");
	if (!o->saved_boot_equal)
		return D(STEP_DISCARD, VM_PHASE_PENDING, "SpecChangedWhileSuspended");
	if (!o->saved_vmm_equal)
		return D(STEP_DISCARD, VM_PHASE_PENDING, "VmmChanged");
	if (o->resume_failed)
		return D(STEP_DISCARD, VM_PHASE_PENDING, "ResumeFailed");
	if (o->launch_slots_full)
		return D(STEP_WAIT, VM_PHASE_PENDING, "WaitingForLaunchSlot");
	return D(STEP_RESUME, VM_PHASE_PENDING, "Resuming");
}

/* Running wanted, the VMM is up. */
static Decision decide_alive(const DesiredView *d, const ObservedView *o)
{
	if (d->boot_changed)
		return stop_it(o, "SpecChanged");
	if (o->stop_requested) /* a stop we asked for before the spec came back */
		return stop_it(o, "Stopping");
	if (o->ready)
		return D(STEP_NONE, VM_PHASE_RUNNING, "Ready");
	if (o->boot_overdue)
		return D(STEP_FAIL_BOOT, VM_PHASE_FAILED, "BootTimeout");
	return D(STEP_WAIT, VM_PHASE_STARTING, o->resumed ? "Resumed" : "Booting");
}

/* Running wanted, no VMM: clean up, then start unless policy or backoff
 * says otherwise. */
static Decision decide_dead(const DesiredView *d, const ObservedView *o)
{
	if (o->has_resources)
		return D(STEP_CLEANUP, VM_PHASE_PENDING, "CleaningUp");
	if (o->saved)
		return decide_saved(o);
	bool failed = (o->exited && !o->exit_ok) || o->start_failed;
	if (o->exited && o->exit_ok && d->restart_policy != RESTART_ALWAYS)
		return D(STEP_NONE, VM_PHASE_STOPPED, "Completed");
	if (failed && d->restart_policy == RESTART_NEVER)
		return D(STEP_NONE, VM_PHASE_FAILED, o->start_failed ? "StartFailed" : "Crashed");
	if ((o->exited || o->start_failed) && o->in_backoff)
		return D(STEP_WAIT, VM_PHASE_FAILED, "CrashLoopBackOff");
	if (o->launch_slots_full)
		return D(STEP_WAIT, VM_PHASE_PENDING, "WaitingForLaunchSlot");
	return D(STEP_START, VM_PHASE_PENDING, "Starting");
}

/* A launch is in flight: whatever is wanted now waits for it to report
 * back (bounded by the driver's timeouts). */
static Decision decide_launching(const DesiredView *d)
{
	if (!d->has_intent)
		return D(STEP_WAIT, VM_PHASE_STOPPING, "Deleting");
	if (d->state == VM_STATE_STOPPED)
		return D(STEP_WAIT, VM_PHASE_STOPPING, "Stopping");
	return D(STEP_WAIT, VM_PHASE_PENDING, "Launching");
}

Decision reconcile_decide(const DesiredView *d, const ObservedView *o)
{
	if (o->launching)
		return decide_launching(d);
	if (!d->has_intent)
		return decide_without_intent(d, o);
	if (d->state == VM_STATE_STOPPED)
		return decide_stopped(o);
	if (d->state == VM_STATE_SUSPENDED)
		return decide_suspended(o);
	if (o->alive)
		return decide_alive(d, o);
	return decide_dead(d, o);
}

/* ---- VMM exits ------------------------------------------------------------ */

static const char *const exit_names[_EXIT_MAX] = {
	[EXIT_STOPPED] = "stopped",     [EXIT_COMPLETED] = "completed",
	[EXIT_CRASHED] = "crashed",     [EXIT_BOOT_FAILED] = "boot-failed",
	[EXIT_SUSPENDED] = "suspended",
};

const char *exit_kind_to_string(ExitKind k)
{
	return k < _EXIT_MAX ? exit_names[k] : "unknown";
}

ExitKind reconcile_classify_exit(const ExitFacts *f)
{
	if (f->boot_failed)
		return EXIT_BOOT_FAILED;
	if (f->suspended)
		return EXIT_SUSPENDED;
	if (f->stop_requested)
		return EXIT_STOPPED;
	if (f->status_known && f->exited_zero && !f->console_panic)
		return EXIT_COMPLETED;
	return EXIT_CRASHED;
}

/* ---- failure accounting ---------------------------------------------------- */

void reconcile_failure(FailureBook *b, int64_t gen, uint64_t now)
{
	if (b->running_since && now - b->running_since > RECONCILE_HEALTHY_RESET_MS)
		b->failures = 0;
	b->running_since = 0;
	b->failures++;
	b->counted_generation = gen;
	b->backoff_until = now + reconcile_backoff_ms(b->failures);
}

bool reconcile_new_generation(FailureBook *b, int64_t gen)
{
	if (!b->counted_generation || b->counted_generation == gen)
		return false;
	b->failures = 0;
	b->backoff_until = 0;
	b->counted_generation = 0;
	return true;
}

void reconcile_running(FailureBook *b, uint64_t now)
{
	b->running_since = now;
}

/* ---- after a step ------------------------------------------------------------ */

Decision reconcile_after_start(bool started, RestartPolicy policy)
{
	if (started)
		return D(STEP_WAIT, VM_PHASE_STARTING, "Booting");
	return D(STEP_WAIT, VM_PHASE_FAILED,
		 policy == RESTART_NEVER ? "StartFailed" : "CrashLoopBackOff");
}

Decision reconcile_launching(void)
{
	return D(STEP_WAIT, VM_PHASE_PENDING, "Launching");
}

bool reconcile_waits_for_slot(const Decision *dec)
{
	return dec->step == STEP_WAIT && dec->phase == VM_PHASE_PENDING && dec->reason &&
	       streq(dec->reason, "WaitingForLaunchSlot");
}

Decision reconcile_preparing(void)
{
	return D(STEP_WAIT, VM_PHASE_PENDING, "PreparingDisks");
}

Decision reconcile_after_suspend(bool saved)
{
	if (saved)
		return D(STEP_WAIT, VM_PHASE_SUSPENDED, "Suspending");
	return D(STEP_WAIT, VM_PHASE_RUNNING, "SuspendFailed");
}

Decision reconcile_after_resume(bool resumed)
{
	if (resumed)
		return D(STEP_WAIT, VM_PHASE_STARTING, "Resumed");
	return D(STEP_WAIT, VM_PHASE_PENDING, "ResumeFailed");
}

uint64_t reconcile_suspend_retry_ms(unsigned failures)
{
	return reconcile_backoff_ms(failures);
}

bool reconcile_settled(const Decision *dec, const DesiredView *d, const ObservedView *o)
{
	if (dec->step == STEP_NONE)
		return true;
	if (o->launching || (o->launch_slots_full && dec->phase == VM_PHASE_PENDING))
		return false;
	return dec->step == STEP_WAIT && !d->boot_changed && !o->stop_requested;
}

/* A STOPPING VM whose stop was not sent yet (it is about to be) is looked
 * at again this soon. */
#define RECONCILE_STOP_RECHECK_MS 100

static uint64_t wake_for_phase(const Decision *dec, const WakeFacts *w)
{
	uint64_t at;
	switch (dec->phase) {
	case VM_PHASE_STOPPING:
		return w->stop_requested ? w->stop_deadline : w->now + RECONCILE_STOP_RECHECK_MS;
	case VM_PHASE_STARTING:
		at = w->boot_deadline;
		if (w->probe_due) {
			uint64_t p = MAX(w->probe_due, w->now + 1);
			at = at ? MIN(at, p) : p;
		}
		return at;
	case VM_PHASE_FAILED: return dec->step == STEP_WAIT ? w->backoff_until : 0;
	case VM_PHASE_RUNNING: /* waiting only to retry a failed suspend */
		return dec->step == STEP_WAIT ? w->suspend_retry_at : 0;
	default: return 0;
	}
}

uint64_t reconcile_wake_at(const Decision *dec, const WakeFacts *w)
{
	uint64_t at = wake_for_phase(dec, w);
	if (w->retry_at && (!at || w->retry_at < at))
		at = w->retry_at;
	return at;
}

uint64_t reconcile_error_retry_ms(unsigned streak)
{
	return reconcile_backoff_ms(streak + 1);
}
