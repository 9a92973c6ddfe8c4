/* decide.h — the reconcile decision: desired × observed → next step.
 *
 * Pure: no I/O and no clock (time-derived facts such as "the stop deadline
 * passed" arrive as booleans), so every combination is unit-tested from a
 * table (tests/unit/test_decide.c). The executor (daemon/reconciler.c)
 * gathers the views, calls reconcile_decide(), performs the step, writes
 * status and requeues.
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
 * Invariants: a VM that is alive and wanted is never restarted unless its
 * boot-relevant spec changed (DesiredView.boot_changed); leftovers of a dead
 * VM (tap, dm, loops) are torn down before it is started again. */
#pragma once

#include "spec/spec.h"
#include "status/status.h"

typedef struct {
	bool has_intent;     /* a row exists and is not marked deleted */
	bool intent_deleted; /* a row exists, but no file defines the VM any more */
	bool spec_error;     /* the owner's current document is invalid */
	VmDesiredState state;
	RestartPolicy restart_policy;
	bool boot_changed;   /* the running VM was booted from a spec that differs
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
} ObservedView;

typedef enum {
	STEP_NONE,          /* converged for now; status shows `phase` */
	STEP_WAIT,          /* something is in progress; requeue later */
	STEP_FORGET,        /* no intent, nothing running: drop status (and row) */
	STEP_START,         /* create resources and launch */
	STEP_STOP,          /* request a graceful stop */
	STEP_KILL,          /* stop deadline passed: SIGKILL */
	STEP_CLEANUP,       /* tear down momentary objects, keep disks */
	STEP_FAIL_BOOT,     /* boot timed out: kill, record the failure */
	STEP_DELETE,        /* tear down everything, remove dir, row and status */
	_STEP_MAX,
} Step;

typedef struct {
	Step step;
	VmPhase phase;      /* phase to report */
	const char *reason; /* CamelCase reason for the Ready condition */
} Decision;

Decision reconcile_decide(const DesiredView *d, const ObservedView *o);
const char *step_to_string(Step s);

/* Restart delay after `failures` consecutive failures: 1 s doubling to
 * 5 min (exponential backoff, as Kubernetes' CrashLoopBackOff). */
uint64_t reconcile_backoff_ms(unsigned failures);
/* A VM that ran this long is healthy again: its failure count resets. */
#define RECONCILE_HEALTHY_RESET_MS (10ULL * 60 * 1000)
