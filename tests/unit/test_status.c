/* Status documents: JSON shape and round trip, Kubernetes-style condition
 * transition times, and the writer's "only when the bytes change" rule. */
#include "status/status.h"
#include "tap.h"
#include "util/fileio.h"
#include "util/hashmap.h"
#include "util/timeutil.h"

#include <json.h>
#include <stdio.h>
#include <sys/stat.h>

static VmStatus *sample(void)
{
	VmStatus *s = vm_status_new("web-1");
	s->source_file = xstrdup("/specs/web.yaml");
	s->spec_hash = xstrdup("ab12");
	s->generation = 3;
	s->observed_generation = 2;
	s->phase = VM_PHASE_RUNNING;
	s->pid = 4242;
	s->guest_ip = xstrdup("172.16.0.2");
	s->tap = xstrdup("bgr-0123abcd");
	s->started_at_ms = 1790000000000;
	s->restart_count = 1;
	vm_status_set_condition(s, "Ready", COND_TRUE, "Ready", "", 1790000001000);
	return s;
}

static void test_json_shape(void)
{
	_cleanup_(vm_status_freep) VmStatus *s = sample();
	_cleanup_free_ char *j = vm_status_to_json(s);
	json_object *o = json_tokener_parse(j), *v, *rt;
	CHECK(o != NULL, "status is JSON");
	const char *keys[] = { "apiVersion",
			       "kind",
			       "name",
			       "sourceFile",
			       "specHash",
			       "generation",
			       "observedGeneration",
			       "phase",
			       "conditions",
			       "runtime",
			       "lastError",
			       "observedAt" };
	size_t i = 0;
	json_object_object_foreach (o, k, val) {
		(void)val;
		CHECK(i < ELEMENTSOF(keys) && streq(k, keys[i]), "key %zu is %s", i, k);
		i++;
	}
	CHECK_INTEQ(i, ELEMENTSOF(keys), "exactly the documented top-level keys");
	CHECK(json_object_object_get_ex(o, "kind", &v) &&
		      streq(json_object_get_string(v), "VMStatus"),
	      "kind VMStatus");
	CHECK(json_object_object_get_ex(o, "runtime", &rt) &&
		      json_object_object_get_ex(rt, "pid", &v) && json_object_get_int(v) == 4242,
	      "runtime.pid");
	CHECK(json_object_object_get_ex(rt, "startedAt", &v) &&
		      streq(json_object_get_string(v), "2026-09-21T14:13:20Z"),
	      "startedAt is RFC 3339 UTC");
	CHECK(json_object_object_get_ex(o, "lastError", &v) && v == NULL, "lastError null");
	json_object_put(o);
	CHECK(j[strlen(j) - 1] == '\n', "newline-terminated");
}

static void test_round_trip(void)
{
	_cleanup_(vm_status_freep) VmStatus *s = sample();
	_cleanup_free_ char *j1 = vm_status_to_json(s);
	VmStatus *back = NULL;
	CHECK_INTEQ(vm_status_from_json(j1, &back), 0, "parse back");
	_cleanup_free_ char *j2 = vm_status_to_json(back);
	CHECK_STREQ(j2, j1, "round trip is byte-identical");
	vm_status_free(back);
	VmStatus *dup = vm_status_dup(s);
	_cleanup_free_ char *j3 = vm_status_to_json(dup);
	CHECK_STREQ(j3, j1, "dup renders the same bytes");
	vm_status_free(dup);
	CHECK_INTEQ(vm_status_from_json("{\"kind\":\"VM\"}", &back), -EINVAL, "not a VMStatus");
	CHECK_INTEQ(vm_status_from_json("nope", &back), -EINVAL, "not JSON");
	CHECK_INTEQ(vm_status_from_json(
			    "{\"kind\":\"VMStatus\",\"name\":\"x\",\"phase\":\"Dancing\"}", &back),
		    -EINVAL, "unknown phase");
}

static void test_transitions(void)
{
	_cleanup_(vm_status_freep) VmStatus *prev = sample();
	_cleanup_(vm_status_freep) VmStatus *next = vm_status_new("web-1");
	vm_status_set_condition(next, "Ready", COND_TRUE, "Ready", "", 1790000099000);
	vm_status_inherit_transitions(next, prev);
	CHECK_INTEQ(vm_status_get_condition(next, "Ready")->last_transition_ms, 1790000001000,
		    "unchanged status keeps its transition time");
	vm_status_set_condition(next, "Ready", COND_FALSE, "Crashed", "boom", 1790000200000);
	CHECK_INTEQ(vm_status_get_condition(next, "Ready")->last_transition_ms, 1790000200000,
		    "a status change moves the transition time");
	vm_status_set_condition(next, "Ready", COND_FALSE, "CrashLoopBackOff", "again",
				1790000300000);
	CHECK_INTEQ(vm_status_get_condition(next, "Ready")->last_transition_ms, 1790000200000,
		    "a reason change alone does not");
	CHECK_STREQ(vm_status_get_condition(next, "Ready")->reason, "CrashLoopBackOff",
		    "reason updated");
	CHECK(vm_status_get_condition(next, "SpecValid") == NULL, "absent condition is NULL");
}

static void test_writer(void)
{
	char dir[] = "/tmp/banger-test-status-XXXXXX";
	CHECK(mkdtemp(dir) != NULL, "temp dir");
	StatusWriter *w = NULL;
	CHECK_INTEQ(status_writer_new(dir, &w), 0, "writer");
	_cleanup_(vm_status_freep) VmStatus *s = sample();
	CHECK_INTEQ(status_writer_write(w, s), 1, "first write");
	_cleanup_free_ char *p = xasprintf("%s/web-1.status.json", dir);
	struct stat st1, st2;
	stat(p, &st1);
	CHECK_INTEQ(status_writer_write(w, s), 0, "same status: not written");
	stat(p, &st2);
	CHECK(st1.st_ino == st2.st_ino, "file untouched");
	s->restart_count = 2;
	CHECK_INTEQ(status_writer_write(w, s), 1, "changed status: written");
	CHECK(status_writer_last(w, "web-1") && status_writer_last(w, "web-1")->restart_count == 2,
	      "last status remembered");
	VmStatus *bad = vm_status_new("../escape");
	CHECK_INTEQ(status_writer_write(w, bad), -EINVAL, "a name that is no label is refused");
	vm_status_free(bad);
	status_writer_free(w);

	/* A new writer (a bangerd restart) knows what is on disk. */
	CHECK_INTEQ(status_writer_new(dir, &w), 0, "second writer");
	CHECK(status_writer_last(w, "web-1") != NULL, "seeded from disk");
	CHECK_INTEQ(status_writer_write(w, s), 0, "unchanged after restart: not rewritten");
	status_writer_begin_batch(w);
	VmStatus *b = vm_status_new("batch-1");
	CHECK_INTEQ(status_writer_write(w, b), 1, "staged in a batch");
	_cleanup_free_ char *bp = xasprintf("%s/batch-1.status.json", dir);
	CHECK(access(bp, F_OK) < 0, "not visible before flush");
	CHECK_INTEQ(status_writer_flush(w), 0, "flush");
	CHECK(access(bp, F_OK) == 0, "visible after flush");
	vm_status_free(b);
	CHECK_INTEQ(status_writer_remove(w, "batch-1"), 0, "remove");
	CHECK(access(bp, F_OK) < 0, "removed");

	/* A batch whose intent was not committed: nothing staged lands, and
	 * the writer remembers what the disk holds, not what it staged. */
	status_writer_begin_batch(w);
	b = vm_status_new("batch-2");
	CHECK_INTEQ(status_writer_write(w, b), 1, "batch-2 staged");
	s->restart_count = 7;
	CHECK_INTEQ(status_writer_write(w, s), 1, "web-1 change staged");
	CHECK_INTEQ(status_writer_remove(w, "web-1"), 0, "web-1 removal staged");
	CHECK(access(p, F_OK) == 0, "a removal in a batch waits for the flush");
	status_writer_discard(w);
	_cleanup_free_ char *b2 = xasprintf("%s/batch-2.status.json", dir);
	CHECK(access(b2, F_OK) < 0, "discarded: batch-2 never written");
	CHECK(access(p, F_OK) == 0, "discarded: web-1 not removed");
	CHECK(status_writer_last(w, "batch-2") == NULL, "discarded: batch-2 forgotten");
	CHECK(status_writer_last(w, "web-1") && status_writer_last(w, "web-1")->restart_count == 2,
	      "discarded: web-1 remembered as on disk (restart count 2)");
	CHECK_INTEQ(status_writer_write(w, s), 1,
		    "the same change after a discard is written again");
	vm_status_free(b);

	/* Removal and re-creation in one batch end as the re-created status. */
	status_writer_begin_batch(w);
	CHECK_INTEQ(status_writer_remove(w, "web-1"), 0, "remove staged");
	s->restart_count = 8;
	CHECK_INTEQ(status_writer_write(w, s), 1, "re-created after the removal");
	CHECK_INTEQ(status_writer_flush(w), 0, "flush");
	_cleanup_(vm_status_freep) VmStatus *back = NULL;
	CHECK(vm_status_read(dir, "web-1", &back) == 0 && back->restart_count == 8,
	      "web-1 on disk is the re-created status");
	status_writer_free(w);

	/* A crash mid-batch leaves staged temps: the next writer removes its
	 * own, and nothing else. */
	_cleanup_free_ char *stale = xasprintf("%s/.web-1.status.json.00112233445566ff.tmp", dir);
	_cleanup_free_ char *other = xasprintf("%s/.put.42.tmp", dir);
	CHECK(write_file_atomic(stale, "{", 1, 0644) == 0 &&
		      write_file_atomic(other, "x", 1, 0644) == 0,
	      "a stale status temp and a foreign temp");
	CHECK_INTEQ(status_writer_new(dir, &w), 0, "writer after a crash");
	CHECK(access(stale, F_OK) < 0, "stale status temp removed at start");
	CHECK(access(other, F_OK) == 0, "a temp that is not a status's is left alone");
	status_writer_free(w);
	rm_rf(dir);
}

/* observedAt is stamped by the writer, is not content, and is refreshed
 * once the refresh interval has passed (by a write or by refresh()). */
static void test_observed_at(void)
{
	char dir[] = "/tmp/banger-test-status-XXXXXX";
	CHECK(mkdtemp(dir) != NULL, "temp dir");
	StatusWriter *w = NULL;
	CHECK_INTEQ(status_writer_new(dir, &w), 0, "writer");
	_cleanup_(vm_status_freep) VmStatus *s = sample();
	s->observed_at_ms = 12345; /* whatever the builder says is ignored */
	int64_t t0 = time_now_realtime_ms();
	CHECK_INTEQ(status_writer_write(w, s), 1, "first write");
	_cleanup_(vm_status_freep) VmStatus *back = NULL;
	CHECK_INTEQ(vm_status_read(dir, "web-1", &back), 0, "read back");
	/* RFC 3339 to the second: allow the truncation */
	CHECK(back && back->observed_at_ms >= t0 - 1000 && back->observed_at_ms <= t0 + 5000,
	      "observedAt stamped with the time of the write");
	int64_t first = back ? back->observed_at_ms : 0;
	s->observed_at_ms = first + 999999;
	CHECK_INTEQ(status_writer_write(w, s), 0, "a different observedAt alone is no change");
	CHECK_INTEQ(status_writer_refresh(w), 0, "no refresh interval: refresh writes nothing");
	status_writer_set_refresh(w, 1000);
	CHECK_INTEQ(status_writer_refresh(w), 0, "younger than the interval: nothing rewritten");
	sleep(2);
	CHECK_INTEQ(status_writer_refresh(w), 1, "older than the interval: rewritten");
	vm_status_free(TAKE_PTR(back));
	CHECK_INTEQ(vm_status_read(dir, "web-1", &back), 0, "read back again");
	CHECK(back && back->observed_at_ms > first, "observedAt moved forward");
	CHECK(back && back->restart_count == s->restart_count, "content kept");
	sleep(2);
	CHECK_INTEQ(status_writer_write(w, s), 0, "stale unchanged status: refreshed, reported 0");
	status_writer_free(w);
	rm_rf(dir);
}

static void test_hashmap(void)
{
	_cleanup_(hashmap_freep) Hashmap *m = hashmap_new();
	char key[32];
	for (int i = 0; i < 5000; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		hashmap_put(m, key, (void *)(intptr_t)(i + 1));
	}
	CHECK_INTEQ(hashmap_size(m), 5000, "5000 keys");
	for (int i = 0; i < 5000; i += 2) {
		snprintf(key, sizeof(key), "k%d", i);
		hashmap_remove(m, key);
	}
	CHECK_INTEQ(hashmap_size(m), 2500, "half removed");
	bool ok = true;
	for (int i = 0; i < 5000; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		void *v = hashmap_get(m, key);
		ok &= (i % 2) ? v == (void *)(intptr_t)(i + 1) : v == NULL;
	}
	CHECK(ok, "lookups right after removals (tombstones keep chains)");
	size_t n = 0, st = 0;
	while (hashmap_iter(m, &st, NULL, NULL))
		n++;
	CHECK_INTEQ(n, 2500, "iteration sees every live key once");
	char **keys = hashmap_keys_sorted(m);
	CHECK(strcmp(keys[0], keys[1]) < 0, "sorted keys");
	strv_free(keys);
}

int main(void)
{
	test_json_shape();
	test_round_trip();
	test_transitions();
	test_writer();
	test_observed_at();
	test_hashmap();
	return tap_done();
}
