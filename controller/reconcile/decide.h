/* decide.h — every rule of the reconcile loop, in one pure module.
 *
 * A pass over one VM has four steps (daemon/reconciler.c):
 *   1. gather: desired (store row, spec sync) and observed (vm_alive,
 *      handles, console, this controller's momentary state) → the views;
 *   2. decide: reconcile_decide() → one step, the phase and a reason;
 *   3. execute that one step (runtime/), then reconcile_after_start() for
 *      what a start turned out to be;
 *   4. render status, and requeue at reconcile_wake_at().
 * Everything that is policy lives here and nowhere else: the decision
 * table, how a VMM exit is classified (reconcile_classify_exit), failure
 * accounting and the one back-off curve (FailureBook, reconcile_backoff_ms,
 * also used for passes that fail with an error), when a new spec generation
 * forgets old failures, when a VM has converged (reconcile_settled), and
 * when to look again (reconcile_wake_at).
 *
 * Pure: no I/O and no clock (times arrive as arguments, in monotonic ms),
 * so every rule is unit-tested from tables (tests/unit/test_decide.c).
 *
 * Lifecycle (phases as reported in status):
 *
 *            START               probe ok
 *   Pending ───────▶ Starting ─────────────▶ Running
 *      ▲                │ boot timeout /        │ exit (crash, kill -9)
 *      │ backoff over   ▼ launch error          ▼
 *      └──────────── Failed (CrashLoopBackOff) ◀┘   (policy allows restart)
 *
 *   Running/Starting ──(state: Stopped | spec deleted | boot change)──▶
 *   Stopping ──(exit, or KILL at the deadline)──▶ Stopped | removed | Pending
 *
 *   Running ──SUSPEND (state: Suspended)──▶ Suspended ──(state: Running)──▶
 *      │ save failed: guest keeps running,     RESUME (saved state valid) ──▶ Starting
 *      ▼ retried with back-off                 DISCARD (corrupt, boot change,
 *   Running (SuspendFailed)                     VMM changed, resume failed)
 *                                               ──▶ Pending ──START──▶ cold boot
 *
 * Suspend invariants: a saved state exists only when the suspend step
 * committed it after the VMM reported the save complete, so a VMM crash or a
 * kill -9 is never a suspend (it restarts by policy); a saved state is used
 * at most once, and is never resumed when the spec's boot-relevant fields,
 * the VMM or the file changed since it was saved — the VM cold-boots and
 * says why (reason of the DISCARD step).
 *
 * Launches run off the event loop, at most --max-parallel-starts at once:
 *
 *   Pending ──START──▶ Pending/Launching ──(launch reported back)──▶ Starting
 *      │ all slots taken                        │ failed
 *      ▼                                        ▼
 *   Pending/WaitingForLaunchSlot             Failed (CrashLoopBackOff)
 *
 * While a launch is in flight every desire waits (a delete or a stop acts
 * once the launch reports back, which is bounded): nothing is torn down
 * under a VMM being launched, and nothing is started twice.
 *
 * Invariants: a VM that is alive and wanted is never restarted unless its
 * boot-relevant spec changed (DesiredView.boot_changed); leftovers of a dead
 * VM (tap, dm, loops) are torn down before it is started again. */
#pragma once

#include "reconcile/phase.h"
#include "spec/spec.h"

typedef struct {
	bool has_intent;     /* a row exists and is not marked deleted */
	bool intent_deleted; /* a row exists, but no file defines the VM any more */
	bool spec_error;     /* the owner's current document is invalid */
	VmDesiredState state;
	RestartPolicy restart_policy;
	bool boot_changed; /* the running VM was booted from a spec that differs
			    * in boot-relevant fields (memory, disks, ...) */
} DesiredView;

typedef struct {
	bool alive;          /* vm_alive(): the VMM process runs */
	bool has_resources;  /* momentary objects recorded (tap, dm, loops, pid) */
	bool stop_requested; /* a graceful stop was sent */
	bool stop_overdue;   /* ...and its deadline passed */
	bool ready;          /* readiness probe passed since this boot */
	bool boot_overdue;   /* not ready and the readiness timeout passed */
	bool exited;         /* the VMM exited without being asked to */
	bool exit_ok;        /* ...with status 0 (guest powered off) */
	bool start_failed;   /* the last start attempt failed */
	bool in_backoff;     /* a restart is not allowed yet */
	bool resumed;        /* this run was restored from a saved state, not booted */
	/* Suspend (spec.state Suspended) */
	bool saved;             /* a committed saved state is in the VM dir */
	bool saved_intact;      /* ...its record parses and the state file matches its size */
	bool saved_boot_equal;  /* ...saved from a boot with today's boot-relevant spec */
	bool saved_vmm_equal;   /* ...by the same VMM kind and version that would load it */
	bool resume_failed;     /* the last resume from it failed (VMM refused the state) */
	bool suspend_failed;    /* the last suspend failed; the guest kept running */
	bool suspend_backoff;   /* ...and the retry is not due yet */
	bool suspend_committed; /* a save was committed: the VMM is being ended */
	/* Concurrent launches (daemon/launcher.c) */
	bool launching;         /* a VMM launch for this VM is in flight on a worker:
				 * its objects are being used, its pid not known yet */
	bool launch_slots_full; /* --max-parallel-starts launches are in flight */
} ObservedView;

typedef enum {
	STEP_NONE,      /* converged for now; status shows `phase` */
	STEP_WAIT,      /* something is in progress; requeue later */
	STEP_FORGET,    /* no row, nothing running, nothing recorded: drop the
			 * status file and the momentary state only */
	STEP_START,     /* create resources and launch */
	STEP_STOP,      /* request a graceful stop */
	STEP_KILL,      /* stop deadline passed: SIGKILL */
	STEP_CLEANUP,   /* tear down momentary objects, keep disks */
	STEP_FAIL_BOOT, /* boot timed out: kill, record the failure */
	STEP_DELETE,    /* tear down everything, remove dir, row and status */
	STEP_SUSPEND,   /* pause, save memory + device state, flush disks, end the VMM;
			 * on failure the guest keeps running */
	STEP_RESUME,    /* launch the VMM from the saved state and continue the guest */
	STEP_DISCARD,   /* remove the saved state; the reason says why (cold boot next) */
	_STEP_MAX,
} Step;

typedef struct {
	Step step;
	VmPhase phase;      /* phase to report */
	const char *reason; /* CamelCase reason for the Ready condition */
} Decision;

Decision reconcile_decide(const DesiredView *d, const ObservedView *o);
const char *step_to_string(Step s);

/* The one back-off curve: the delay after `failures` consecutive failures
 * is 1 s doubling to 5 min (as Kubernetes' CrashLoopBackOff). Used for VM
 * restarts and for reconcile passes that fail with an error. */
uint64_t reconcile_backoff_ms(unsigned failures);
/* A VM that ran this long is healthy again: its failure count resets. */
#define RECONCILE_HEALTHY_RESET_MS (10ULL * 60 * 1000)

/* ---- VMM exits ------------------------------------------------------------ */

/* What is known when a watched VMM process exits. */
typedef struct {
	bool stop_requested; /* we asked it to stop (state: Stopped, delete, spec change) */
	bool boot_failed;    /* we killed it for a boot timeout (already counted) */
	bool status_known;   /* it was our child: its wait status is known */
	bool exited_zero;    /* ...and it exited with status 0 */
	bool console_panic;  /* the guest console shows "Kernel panic" */
	bool suspended;      /* we ended it after its state was saved and committed */
} ExitFacts;

typedef enum {
	EXIT_STOPPED,     /* the stop we asked for: not a failure */
	EXIT_COMPLETED,   /* the guest powered off cleanly */
	EXIT_CRASHED,     /* anything else: a failure, counted once */
	EXIT_BOOT_FAILED, /* our boot-timeout kill: counted when we killed it */
	EXIT_SUSPENDED,   /* the end of a committed suspend: not a failure */
	_EXIT_MAX,
} ExitKind;

/* A guest kernel panic resets the VM, which QEMU (-no-reboot) turns into
 * a clean exit: the console tells the truth, so it is a crash. An adopted
 * VMM is not our child: its status is unknown, so it is a crash unless we
 * asked it to stop. */
ExitKind reconcile_classify_exit(const ExitFacts *f);
const char *exit_kind_to_string(ExitKind k);

/* ---- failure accounting ---------------------------------------------------- */

/* Per-VM failure book, kept in memory by the executor (a restarted
 * controller starts with an empty one). */
typedef struct {
	unsigned failures;          /* consecutive failures */
	uint64_t backoff_until;     /* no restart before this (monotonic ms) */
	uint64_t running_since;     /* when the current run started; 0: not running */
	int64_t counted_generation; /* generation the failures were counted for */
} FailureBook;

/* Count one failure at `now` for spec generation `gen`: a VM that ran
 * longer than RECONCILE_HEALTHY_RESET_MS starts counting afresh; the
 * back-off grows with the count. */
void reconcile_failure(FailureBook *b, int64_t gen, uint64_t now);
/* A new spec generation is a new chance: forget the failures counted for
 * an older one. Returns true when it forgot something. */
bool reconcile_new_generation(FailureBook *b, int64_t gen);
/* The VMM was launched (or adopted) at `now`. */
void reconcile_running(FailureBook *b, uint64_t now);

/* ---- after a step ------------------------------------------------------------ */

/* What to report once STEP_START has run: a launched VM is booting; one
 * that failed to start waits in back-off (or is Failed for good under
 * restartPolicy Never). */
Decision reconcile_after_start(bool started, RestartPolicy policy);
/* What to report once STEP_START (or STEP_RESUME) handed the launch to a
 * worker: Pending, waiting for it to report back, reason Launching. */
Decision reconcile_launching(void);
/* The decision is the wait for a free launch slot (the executor queues
 * the VM as a slot waiter). */
bool reconcile_waits_for_slot(const Decision *dec);
/* What to report while a start is still preparing (a work disk growing in a
 * child process): Pending, waiting, reason PreparingDisks. */
Decision reconcile_preparing(void);
/* What to report once STEP_SUSPEND has run: saved (the VMM is ending) →
 * Suspended; failed → the guest keeps running, retried after back-off. */
Decision reconcile_after_suspend(bool saved);
/* What to report once STEP_RESUME has run: launched from the state →
 * Starting (the readiness probe says Ready); failed → Pending, and the next
 * pass discards the state and cold-boots (ResumeFailed). */
Decision reconcile_after_resume(bool resumed);
/* Delay before retrying a suspend that failed `failures` times in a row. */
uint64_t reconcile_suspend_retry_ms(unsigned failures);

/* True when the pass has seen the VM's current generation through: the
 * decision is final (NONE), or a wait that is not a stop, a pending
 * spec-change restart, a launch in flight or a wait for a launch slot (both
 * may act on an older generation). Sets observedGeneration. */
bool reconcile_settled(const Decision *dec, const DesiredView *d, const ObservedView *o);

/* Deadlines the executor knows (monotonic ms; 0: none). */
typedef struct {
	uint64_t now;
	uint64_t stop_deadline;    /* a graceful stop was sent: kill at this time */
	uint64_t boot_deadline;    /* not ready by then: boot failed */
	uint64_t probe_due;        /* next readiness probe event; 0: no probe */
	uint64_t backoff_until;    /* FailureBook.backoff_until */
	uint64_t retry_at;         /* an I/O step the executor must retry (e.g. a pidfd
				    * watch that failed for want of fds); 0: none */
	uint64_t suspend_retry_at; /* a failed suspend is retried then */
	bool stop_requested;
} WakeFacts;

/* When to run the next pass for this VM without an event (0: only on an
 * event): the stop deadline while stopping; the boot deadline or the next
 * probe while starting; the end of the back-off while waiting in it. A
 * STOPPING VM whose stop has not been sent yet is looked at again soon; a
 * RUNNING VM whose suspend failed at the retry time. An executor retry
 * (retry_at) comes first when it is earlier. */
uint64_t reconcile_wake_at(const Decision *dec, const WakeFacts *w);

/* Delay before retrying a pass that failed with an error, after `streak`
 * consecutive errors (the back-off curve above). */
uint64_t reconcile_error_retry_ms(unsigned streak);
