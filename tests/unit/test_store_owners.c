/* Unit test for store_list_live_owners (added for the periodic resync, see
 * docs/benchmarks.md): every live row once with its source file, rows
 * marked deleted left out, and revived rows back in; also at 3,000 rows so
 * the geometric growth is exercised, cross-checked against store_list_vms. */
#include "store/store.h"
#include "tap.h"
#include "util/fileio.h"
#include "util/sha256.h"
#include "util/util.h"

#include <stdio.h>

static int upsert(Store *s, const char *name, const char *src, const char *content)
{
	_cleanup_free_ char *json = xasprintf("{\"name\":\"%s\",\"c\":\"%s\"}", name, content);
	char hash[65];
	sha256_hex(json, strlen(json), hash);
	return store_upsert_vm_raw(s, name, src, json, hash, VM_STATE_STOPPED, NULL);
}

/* The source recorded for name in the parallel strvs, or NULL. */
static const char *source_of(char **names, char **sources, const char *name)
{
	for (size_t i = 0; names[i]; i++)
		if (streq(names[i], name))
			return sources[i];
	return NULL;
}

static void test_small(Store *s)
{
	char **names = NULL, **sources = NULL;
	CHECK_INTEQ(store_list_live_owners(s, &names, &sources), 0, "empty store lists");
	CHECK(names && !names[0] && sources && !sources[0], "empty store: two empty strvs");
	strv_free(names);
	strv_free(sources);

	CHECK(upsert(s, "a", "/specs/a.yaml", "1") >= 0, "upsert a");
	CHECK(upsert(s, "b", "/specs/b.yaml", "1") >= 0, "upsert b");
	CHECK(upsert(s, "c", "/specs/c.yaml", "1") >= 0, "upsert c");
	CHECK_INTEQ(store_mark_deleted(s, "b"), 1, "mark b deleted");
	CHECK(upsert(s, "c", "/specs/moved/c.yaml", "1") >= 0, "move c");
	CHECK_INTEQ(store_list_live_owners(s, &names, &sources), 0, "list");
	CHECK_INTEQ((int)strv_length(names), 2, "two live rows");
	CHECK_INTEQ((int)strv_length(sources), 2, "sources parallel to names");
	CHECK_STREQ(source_of(names, sources, "a"), "/specs/a.yaml", "a's source");
	CHECK(source_of(names, sources, "b") == NULL, "deleted b left out");
	CHECK_STREQ(source_of(names, sources, "c"), "/specs/moved/c.yaml", "c's new source");
	strv_free(names);
	strv_free(sources);

	CHECK(upsert(s, "b", "/specs/b2.yaml", "2") >= 0, "revive b");
	CHECK_INTEQ(store_list_live_owners(s, &names, &sources), 0, "list again");
	CHECK_STREQ(source_of(names, sources, "b"), "/specs/b2.yaml", "revived b is back");
	strv_free(names);
	strv_free(sources);
}

static void test_many(Store *s)
{
	char **names = NULL, **sources = NULL;
	VmRecord **rows = NULL;
	size_t n = 0, live = 0, agree = 0;
	CHECK_INTEQ(store_begin(s), 0, "begin");
	for (int i = 0; i < 3000; i++) {
		char name[32], src[64];
		snprintf(name, sizeof(name), "vm-%04d", i);
		snprintf(src, sizeof(src), "/specs/vm-%04d.yaml", i);
		upsert(s, name, src, "x");
		if (i % 7 == 0)
			store_mark_deleted(s, name);
	}
	CHECK_INTEQ(store_commit(s), 0, "commit");
	CHECK_INTEQ(store_list_live_owners(s, &names, &sources), 0, "list 3000+");
	CHECK_INTEQ(store_list_vms(s, &rows, &n), 0, "list_vms for comparison");
	for (size_t i = 0; i < n; i++) {
		if (rows[i]->deleted)
			continue;
		live++;
		if (streq_ptr(source_of(names, sources, rows[i]->name), rows[i]->source_file))
			agree++;
	}
	CHECK_INTEQ((int)strv_length(names), (int)live, "as many names as live records");
	CHECK_INTEQ((int)agree, (int)live, "every live record listed with its source");
	vm_record_list_free(rows, n);
	strv_free(names);
	strv_free(sources);
}

int main(void)
{
	char dir[] = "/tmp/banger-test-owners-XXXXXX";
	Store *s = NULL;
	if (!mkdtemp(dir))
		return 1;
	_cleanup_free_ char *db = xasprintf("%s/banger.db", dir);
	CHECK_INTEQ(store_open(db, &s), 0, "open store");
	if (s) {
		test_small(s);
		test_many(s);
		store_close(s);
	}
	rm_rf(dir);
	return tap_done();
}
