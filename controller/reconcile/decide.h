/* decide.h — the reconcile decision: desired × observed → next step.
 *
 * Pure: no I/O, no clock reads (now is passed in), so every combination is
 * unit-tested from a table (tests/unit/test_decide.c). The executor
 * (reconcile.c) gathers the views, calls reconcile_decide(), does the step
 * and writes status. */
#pragma once

#include "spec/spec.h"
#include "status/status.h"

typedef struct {
	bool has_intent;     /* a row exists in the store and is not deleted */
	bool intent_deleted; /* a row exists, but no file defines the VM any more */
	bool spec_error;     /* the owner's current document is invalid */
	VmDesiredState state;
} DesiredView;

typedef struct {
	bool alive;         /* vm_alive(): the VMM process is ours and running */
	bool has_resources; /* any momentary handle exists (tap, loop, dm, process) */
} ObservedView;

typedef enum {
	STEP_NONE,     /* nothing to do; status reflects `phase` */
	STEP_FORGET,   /* no intent, nothing running: remove row and status */
	STEP_START,    /* create resources and launch */
	STEP_STOP,     /* graceful stop, keep disks */
	STEP_TEARDOWN, /* stop and remove every resource */
	_STEP_MAX,
} Step;

typedef struct {
	Step step;
	VmPhase phase;      /* phase to report after deciding */
	const char *reason; /* CamelCase reason for the Ready condition */
} Decision;

Decision reconcile_decide(const DesiredView *d, const ObservedView *o);
const char *step_to_string(Step s);
