/* fuzz_status.c — libFuzzer target for the status JSON reader
 * (status/status.h: vm_status_from_json), which the CLI and bangerd's own
 * start-up (transition times, Ready) run over files anyone with write access
 * to the status dir can edit.
 *
 * Meaning, not just "no crash": whatever the reader accepts, rendering it
 * and reading that back gives the same status (every field and condition);
 * rendering is a fixed point (the writer compares bytes to skip unchanged
 * status: an unstable rendering would rewrite files forever); a copy
 * (vm_status_dup) renders the same; a phase read is one the writer knows.
 *
 * Replayed over tests/fuzz/corpus/status by tests/helpers/status-replay.c
 * (t_fuzz_replay.sh); build with clang -fsanitize=fuzzer like fuzz_spec.c. */
#include "status/status.h"

#include <stdint.h>
#include <stdio.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_check(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_status: invariant violated: %s\n", what);
		abort();
	}
}

static void fuzz_check_same(const VmStatus *a, const VmStatus *b)
{
	fuzz_check(streq(a->name, b->name), "name");
	fuzz_check(streq_ptr(a->source_file, b->source_file), "sourceFile");
	fuzz_check(streq_ptr(a->spec_hash, b->spec_hash), "specHash");
	fuzz_check(a->generation == b->generation, "generation");
	fuzz_check(a->observed_generation == b->observed_generation, "observedGeneration");
	fuzz_check(a->phase == b->phase, "phase");
	fuzz_check(a->pid == b->pid, "pid");
	fuzz_check(streq_ptr(a->guest_ip, b->guest_ip), "guestIP");
	fuzz_check(streq_ptr(a->tap, b->tap), "tap");
	fuzz_check(a->started_at_ms == b->started_at_ms, "startedAt");
	fuzz_check(a->restart_count == b->restart_count, "restartCount");
	fuzz_check(streq_ptr(a->last_error, b->last_error), "lastError");
	fuzz_check(a->n_conditions == b->n_conditions, "number of conditions");
	for (size_t i = 0; i < a->n_conditions && i < b->n_conditions; i++) {
		const Condition *x = &a->conditions[i], *y = &b->conditions[i];
		fuzz_check(streq_ptr(x->type, y->type), "condition type");
		fuzz_check(x->status == y->status, "condition status");
		fuzz_check(streq_ptr(x->reason, y->reason), "condition reason");
		fuzz_check(streq_ptr(x->message, y->message), "condition message");
		fuzz_check(x->last_transition_ms == y->last_transition_ms,
			   "condition lastTransitionTime");
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	_cleanup_free_ char *text = xmalloc(size + 1), *j1 = NULL, *j2 = NULL, *j3 = NULL;
	_cleanup_(vm_status_freep) VmStatus *s = NULL, *back = NULL, *dup = NULL;

	memcpy(text, data, size);
	text[size] = 0;
	if (vm_status_from_json(text, &s) < 0)
		return 0;
	fuzz_check(vm_phase_to_string(s->phase) != NULL, "a phase the writer knows");
	j1 = vm_status_to_json(s);
	fuzz_check(vm_status_from_json(j1, &back) == 0, "rendered status reads back");
	j2 = vm_status_to_json(back);
	fuzz_check(streq(j1, j2), "rendering is a fixed point");
	fuzz_check_same(s, back);
	dup = vm_status_dup(s);
	j3 = vm_status_to_json(dup);
	fuzz_check(streq(j1, j3), "a copy renders the same");
	return 0;
}
