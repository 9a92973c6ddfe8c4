/* Unit test for SpecSync's ownership rules (sync/sync.h), against real files
 * in a temp spec dir and a real SQLite store:
 *  - a valid document upserts; generation + 1 only when the spec changes;
 *  - an invalid document keeps the last good intent and records the error;
 *  - a name in two files: the first owner keeps it, the other is a conflict
 *    naming the owner; when the owner stops defining it the claimant takes
 *    over;
 *  - an unreadable file keeps the intent of every name it defined;
 *  - a name no file defines any more is marked deleted;
 *  - documents for another node are absent;
 *  - ownership seeded from the store survives a new SpecSync (restart);
 *  - every name whose intent may have changed is reported;
 *  - a batch whose COMMIT failed is read again, its names saying why. */
#include "store/store.h"
#include "sync/sync.h"
#include "tap.h"
#include "util/fileio.h"
#include "util/util.h"

#include <stdio.h>
#include <unistd.h>

static char *spec_dir;
static char **changed;

static void on_changed(void *userdata, const char *name)
{
	strv_push(&changed, xstrdup(name));
}

static bool was_changed(const char *name)
{
	for (size_t i = 0; changed && changed[i]; i++)
		if (streq(changed[i], name))
			return true;
	return false;
}

static void reset_changed(void)
{
	strv_free(changed);
	changed = NULL;
}

static char *vm_doc(const char *name, unsigned mem, const char *node)
{
	return xasprintf("apiVersion: banger/v1\n"
			 "kind: VM\n"
			 "metadata:\n"
			 "  name: %s\n"
			 "spec:\n"
			 "  state: Stopped\n"
			 "  memoryMiB: %u\n"
			 "%s%s%s"
			 "  kernel:\n"
			 "    path: /var/lib/banger/images/bzImage\n"
			 "  rootfs:\n"
			 "    path: /var/lib/banger/images/rootfs.ext4\n",
			 name, mem, node ? "  node: " : "", node ? node : "", node ? "\n" : "");
}

static void put(const char *rel, const char *text)
{
	_cleanup_free_ char *path = xasprintf("%s/%s", spec_dir, rel);
	if (write_file_atomic(path, text, strlen(text), 0644) < 0)
		printf("# write %s failed\n", path);
}

static void put_vm(const char *rel, const char *name, unsigned mem)
{
	_cleanup_free_ char *doc = vm_doc(name, mem, NULL);
	put(rel, doc);
}

static void rm(const char *rel)
{
	_cleanup_free_ char *path = xasprintf("%s/%s", spec_dir, rel);
	if (unlink(path) < 0)
		printf("# unlink %s failed\n", path);
}

/* Generation of a live row; -1 when absent or deleted. */
static int64_t live_gen(Store *st, const char *name)
{
	VmRecord *r = NULL;
	if (store_get_vm(st, name, &r) < 0)
		return -1;
	int64_t g = r->deleted ? -1 : r->generation;
	vm_record_free(r);
	return g;
}

static char *row_source(Store *st, const char *name)
{
	VmRecord *r = NULL;
	if (store_get_vm(st, name, &r) < 0)
		return NULL;
	char *src = xstrdup(r->source_file);
	vm_record_free(r);
	return src;
}

static void test_upsert_and_generation(SpecSync *s, Store *st)
{
	put_vm("a.yaml", "web-1", 256);
	CHECK(spec_sync_file(s, "a.yaml") >= 0, "sync a.yaml");
	CHECK_INTEQ(live_gen(st, "web-1"), 1, "valid document inserted at generation 1");
	CHECK(was_changed("web-1"), "insert reported");
	reset_changed();

	put_vm("a.yaml", "web-1", 256);
	CHECK(spec_sync_file(s, "a.yaml") >= 0, "sync rewritten a.yaml");
	CHECK_INTEQ(live_gen(st, "web-1"), 1, "same spec rewritten: generation unchanged");

	put_vm("a.yaml", "web-1", 512);
	CHECK(spec_sync_file(s, "a.yaml") >= 0, "sync edited a.yaml");
	CHECK_INTEQ(live_gen(st, "web-1"), 2, "spec changed: generation + 1");
	CHECK(was_changed("web-1"), "update reported");
	reset_changed();
}

static void test_invalid_keeps_intent(SpecSync *s, Store *st)
{
	put("a.yaml", "apiVersion: banger/v1\nkind: VM\nmetadata:\n  name: web-1\n"
		      "spec:\n  memoryMiB: -3\n");
	CHECK(spec_sync_file(s, "a.yaml") >= 0, "sync invalid a.yaml");
	CHECK_INTEQ(live_gen(st, "web-1"), 2, "invalid document keeps the last good intent");
	SpecNameInfo info;
	CHECK(spec_sync_name_info(s, "web-1", &info), "name still known");
	CHECK(info.spec_error != NULL, "error recorded for status");
	CHECK(was_changed("web-1"), "spec condition change reported");
	reset_changed();

	put("a.yaml", "key: [unclosed\n");
	CHECK(spec_sync_file(s, "a.yaml") >= 0, "sync unparsable a.yaml");
	CHECK_INTEQ(live_gen(st, "web-1"), 2, "unreadable file keeps the intent it defined");

	put_vm("a.yaml", "web-1", 512);
	CHECK(spec_sync_file(s, "a.yaml") >= 0, "sync fixed a.yaml");
	CHECK(spec_sync_name_info(s, "web-1", &info) && info.spec_error == NULL,
	      "fixed document clears the error");
	CHECK_INTEQ(live_gen(st, "web-1"), 2, "same spec as before: generation unchanged");
	reset_changed();
}

static void test_conflict_and_takeover(SpecSync *s, Store *st)
{
	put_vm("b.yaml", "web-1", 1024);
	CHECK(spec_sync_file(s, "b.yaml") >= 0, "sync b.yaml claiming web-1");
	_cleanup_free_ char *src = row_source(st, "web-1");
	CHECK_STREQ(src, "a.yaml", "first owner keeps the name");
	CHECK_INTEQ(live_gen(st, "web-1"), 2, "second claim does not change intent");
	SpecNameInfo info;
	CHECK(spec_sync_name_info(s, "web-1", &info) && info.conflict &&
		      strstr(info.conflict, "b.yaml") && strstr(info.conflict, "a.yaml"),
	      "conflict names both files");

	rm("a.yaml");
	CHECK(spec_sync_file(s, "a.yaml") >= 0, "sync removed owner");
	_cleanup_free_ char *src2 = row_source(st, "web-1");
	CHECK_STREQ(src2, "b.yaml", "claimant takes over when the owner goes");
	CHECK_INTEQ(live_gen(st, "web-1"), 3, "claimant's spec is the new intent");
	CHECK(spec_sync_name_info(s, "web-1", &info) && info.conflict == NULL,
	      "conflict cleared after takeover");
	reset_changed();
}

static void test_delete_and_node(SpecSync *s, Store *st)
{
	put_vm("c.yaml", "db-1", 256);
	CHECK_INTEQ(spec_sync_full(s), 0, "full sync with c.yaml");
	CHECK_INTEQ(live_gen(st, "db-1"), 1, "full sync picks up db-1");
	reset_changed();

	_cleanup_free_ char *other = vm_doc("db-1", 256, "node-b");
	put("c.yaml", other);
	CHECK(spec_sync_file(s, "c.yaml") >= 0, "sync c.yaml moved to another node");
	CHECK_INTEQ(live_gen(st, "db-1"), -1, "document for another node is absent");
	CHECK(was_changed("db-1"), "node move reported");

	put_vm("c.yaml", "db-1", 256);
	CHECK(spec_sync_file(s, "c.yaml") >= 0, "sync c.yaml back on this node");
	CHECK(live_gen(st, "db-1") > 0, "document for this node is back");
	reset_changed();

	rm("c.yaml");
	CHECK_INTEQ(spec_sync_full(s), 0, "full sync without c.yaml");
	CHECK_INTEQ(live_gen(st, "db-1"), -1, "name no file defines: intent deleted");
	SpecNameInfo info;
	CHECK(!spec_sync_name_info(s, "db-1", &info), "name no longer known");
	CHECK(was_changed("db-1"), "deletion reported");
	reset_changed();
}

/* A caller's batch whose COMMIT failed (bangerd's event batches): the file
 * is read again at its next sync, and meanwhile its name says why. The
 * failure is a rollback here, which is what SQLite leaves after a failed
 * COMMIT (store_commit). */
static void test_failed_batch(SpecSync *s, Store *st)
{
	SpecNameInfo info;
	put_vm("fb.yaml", "fb-1", 256);
	CHECK_INTEQ(store_begin(st), 0, "batch: begin");
	spec_sync_begin_batch(s);
	CHECK_INTEQ(spec_sync_file(s, "fb.yaml"), 1, "batch: fb.yaml parsed");
	CHECK_INTEQ(store_rollback(st), 0, "batch: rolled back, as after a failed COMMIT");
	reset_changed();
	spec_sync_end_batch(s, -ENOSPC);
	CHECK_INTEQ(live_gen(st, "fb-1"), -1, "failed batch: nothing stored");
	CHECK(spec_sync_name_info(s, "fb-1", &info) && info.spec_error &&
		      streq(info.spec_error, "store: No space left on device"),
	      "failed batch: the name says why");
	CHECK(was_changed("fb-1"), "failed batch: the name is reported");
	CHECK_INTEQ(spec_sync_file(s, "fb.yaml"), 1, "the unchanged file is parsed again");
	CHECK_INTEQ(live_gen(st, "fb-1"), 1, "and stored");
	CHECK(spec_sync_name_info(s, "fb-1", &info) && !info.spec_error, "and the error is gone");
	spec_sync_begin_batch(s);
	spec_sync_end_batch(s, 0);
	CHECK_INTEQ(spec_sync_file(s, "fb.yaml"), 0, "after a stored batch: not parsed again");
	rm("fb.yaml");
	CHECK(spec_sync_file(s, "fb.yaml") >= 0 && live_gen(st, "fb-1") == -1, "fb-1 deleted");
	reset_changed();
}

static void test_restart_keeps_owner(Store *st)
{
	/* web-1 is owned by b.yaml. A new file sorting first claims it: after a
	 * restart (a new SpecSync seeded from the store) the owner stays. */
	put_vm("0-first.yaml", "web-1", 64);
	_cleanup_(spec_sync_freep) SpecSync *s2 = NULL;
	CHECK_INTEQ(spec_sync_new(spec_dir, "node-a", st, on_changed, NULL, &s2), 0,
		    "new SpecSync (restart)");
	if (!s2)
		return;
	CHECK_INTEQ(spec_sync_full(s2), 0, "full sync after restart");
	_cleanup_free_ char *src = row_source(st, "web-1");
	CHECK_STREQ(src, "b.yaml", "owner seeded from the store keeps the name");
	SpecNameInfo info;
	CHECK(spec_sync_name_info(s2, "web-1", &info) && info.conflict &&
		      strstr(info.conflict, "0-first.yaml"),
	      "the newcomer is the conflict");
	reset_changed();
}

int main(void)
{
	/* bangerd trusts a spec dir only when no parent is writable by others
	 * (sshd's rule): /tmp is not such a place. */
	const char *base =
		getenv("BANGER_TEST_TMP") ? getenv("BANGER_TEST_TMP") : "/var/lib/banger-tests";
	if (mkdir_p(base, 0755) < 0)
		return 1;
	_cleanup_free_ char *dir = xasprintf("%s/banger-test-sync-XXXXXX", base);
	if (!mkdtemp(dir))
		return 1;
	spec_dir = xasprintf("%s/specs", dir);
	_cleanup_free_ char *db = xasprintf("%s/banger.db", dir);
	Store *st = NULL;
	CHECK_INTEQ(mkdir_p(spec_dir, 0755), 0, "make spec dir");
	CHECK_INTEQ(store_open(db, &st), 0, "open store");
	SpecSync *s = NULL;
	if (st)
		CHECK_INTEQ(spec_sync_new(spec_dir, "node-a", st, on_changed, NULL, &s), 0,
			    "new SpecSync");
	if (s) {
		test_upsert_and_generation(s, st);
		test_invalid_keeps_intent(s, st);
		test_conflict_and_takeover(s, st);
		test_delete_and_node(s, st);
		test_failed_batch(s, st);
		spec_sync_free(s);
		test_restart_keeps_owner(st);
	}
	if (st)
		store_close(st);
	reset_changed();
	rm_rf(dir);
	free(spec_dir);
	return tap_done();
}
