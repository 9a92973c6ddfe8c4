/* fuzz_handles.c — libFuzzer target for the handles.json reader
 * (runtime/handles.h: vm_handles_from_json).
 *
 * handles.json is the write-ahead record of a VM's kernel objects; after a
 * crash bangerd tears down exactly what it names. So besides "never crash,
 * never leak" this checks meaning: whatever the reader accepts, writing it
 * and reading it back gives the same handles (every field), and writing is
 * a fixed point (the same bytes again). A pid is kept only when positive,
 * and its start time only with it: the writer's rule, which the reader must
 * agree with or teardown would trust a pid it never verified.
 *
 * Replayed over tests/fuzz/corpus/handles by tests/helpers/handles-replay.c
 * (t_fuzz_replay.sh); build with clang -fsanitize=fuzzer like fuzz_spec.c. */
#include "runtime/handles.h"

#include <stdint.h>
#include <stdio.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_check(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_handles: invariant violated: %s\n", what);
		abort();
	}
}

static void fuzz_check_same(const VmHandles *a, const VmHandles *b)
{
#define SAME(f) fuzz_check(streq_ptr(a->f, b->f), "field " #f " survives the round trip");
	VM_HANDLE_STRINGS(SAME)
#undef SAME
	fuzz_check(b->pid == (a->pid > 0 ? a->pid : 0), "pid kept only when positive");
	fuzz_check(b->pid_start_time == (a->pid > 0 ? a->pid_start_time : 0),
		   "start time kept with its pid");
	fuzz_check(b->started_at_ms == (a->started_at_ms > 0 ? a->started_at_ms : 0),
		   "started_at_ms kept when positive");
	fuzz_check(b->launched == (a->pid > 0 && a->launched), "launched kept only with its pid");
	fuzz_check(vm_handles_any(b) == (a->pid > 0 || a->tap || a->nft_mac || a->base_loop ||
					 a->cow_loop || a->dm_name),
		   "anything held (a positive pid, a tap, nft elements, loops, a dm target) is "
		   "still held");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	_cleanup_free_ char *text = xmalloc(size + 1), *j1 = NULL, *j2 = NULL;
	_cleanup_(vm_handles_freep) VmHandles *h = NULL, *back = NULL, *again = NULL;

	memcpy(text, data, size);
	text[size] = 0;
	if (vm_handles_from_json(text, &h) < 0)
		return 0;
	j1 = vm_handles_to_json(h);
	fuzz_check(vm_handles_from_json(j1, &back) == 0, "written handles read back");
	fuzz_check_same(h, back);
	j2 = vm_handles_to_json(back);
	fuzz_check(streq(j1, j2), "writing is a fixed point");
	fuzz_check(vm_handles_from_json(j2, &again) == 0 && again->pid == back->pid,
		   "and reads back again");
	return 0;
}
