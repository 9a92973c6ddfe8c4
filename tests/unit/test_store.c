/* Unit tests for controller/store against real SQLite files in a temp dir:
 * upsert result codes and generation rules, runtime setters, guest IP
 * uniqueness, delete, persistence across reopen, migrations and refusing a
 * newer schema, the no-momentary-columns rule, batch speed, hostile names,
 * CLOEXEC/NOFOLLOW. A second raw sqlite3 connection looks at the file to
 * check what the store claims (schema, user_version, data_version). */
#include "store/store.h"
#include "tap.h"
#include "util/fileio.h"
#include "util/sha256.h"
#include "util/timeutil.h"
#include "util/util.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <sys/stat.h>

static char tmpdir[] = "/tmp/banger-test-store-XXXXXX";

static char *db_path(const char *name)
{
	return xasprintf("%s/%s.db", tmpdir, name);
}

/* Upsert a fake spec: JSON built from name/content, hash = sha256(JSON). */
static int upsert(Store *s, const char *name, const char *src, const char *content,
		  VmDesiredState st, int64_t *gen)
{
	_cleanup_free_ char *json =
		xasprintf("{\"name\":\"%s\",\"c\":\"%s\",\"s\":%d}", name, content, (int)st);
	char hash[65];
	sha256_hex(json, strlen(json), hash);
	return store_upsert_vm_raw(s, name, src, json, hash, st, gen);
}

/* One integer from a raw, separate connection (-1 on any failure). */
static int64_t raw_int(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int64_t v = -1;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

static int raw_exec(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	sqlite3_close(db);
	return rc;
}

static void test_create_read_list(void)
{
	_cleanup_free_ char *p = db_path("crud");
	_cleanup_(store_closep) Store *s = NULL;
	int64_t gen = -1;

	CHECK_INTEQ(store_open(p, &s), 0, "open a new database");
	CHECK_INTEQ(upsert(s, "web", "/specs/web.yaml", "a", VM_STATE_RUNNING, &gen),
		    STORE_UPSERT_CREATED, "first upsert creates");
	CHECK_INTEQ(gen, 1, "generation starts at 1");
	CHECK_INTEQ(upsert(s, "db", "/specs/db.yaml", "a", VM_STATE_STOPPED, NULL),
		    STORE_UPSERT_CREATED, "second VM created");
	CHECK_INTEQ(upsert(s, "cache", "/specs/all.yaml", "a", VM_STATE_RUNNING, NULL),
		    STORE_UPSERT_CREATED, "third VM created");

	_cleanup_(vm_record_freep) VmRecord *r = NULL;
	CHECK_INTEQ(store_get_vm(s, "web", &r), 0, "get web");
	CHECK_STREQ(r->name, "web", "name read back");
	CHECK_STREQ(r->source_file, "/specs/web.yaml", "source file read back");
	CHECK_STREQ(r->spec_json, "{\"name\":\"web\",\"c\":\"a\",\"s\":0}", "spec json verbatim");
	CHECK_INTEQ(strlen(r->spec_hash), 64, "hash stored");
	CHECK_INTEQ(r->desired_state, VM_STATE_RUNNING, "desired state Running");
	CHECK_INTEQ(strlen(r->uid), 32, "uid is 32 hex chars");
	CHECK(strspn(r->uid, "0123456789abcdef") == 32, "uid is lower-case hex");
	CHECK(r->guest_ip == NULL && r->vm_dir == NULL && r->api_sock == NULL &&
		      r->log_path == NULL && r->last_error == NULL,
	      "runtime text fields start NULL");
	CHECK(r->observed_generation == 0 && r->restart_count == 0, "runtime counters start 0");
	int64_t now = time_now_realtime_ms();
	CHECK(r->created_at_ms > now - 60000 && r->created_at_ms <= now, "created_at is now");
	CHECK_INTEQ(r->updated_at_ms, r->created_at_ms, "updated_at == created_at on insert");

	VmRecord *missing = (VmRecord *)0x1;
	CHECK_INTEQ(store_get_vm(s, "nope", &missing), -ENOENT, "missing name -> -ENOENT");
	CHECK(missing == (VmRecord *)0x1, "out-parameter untouched on failure");

	VmRecord **v = NULL;
	size_t n = 0;
	CHECK_INTEQ(store_list_vms(s, &v, &n), 0, "list");
	CHECK_INTEQ(n, 3, "three rows");
	if (n == 3) {
		CHECK_STREQ(v[0]->name, "cache", "ordered by name [0]");
		CHECK_STREQ(v[1]->name, "db", "ordered by name [1]");
		CHECK_STREQ(v[2]->name, "web", "ordered by name [2]");
		CHECK(!streq(v[0]->uid, v[1]->uid) && !streq(v[1]->uid, v[2]->uid), "uids differ");
		CHECK_INTEQ(v[1]->desired_state, VM_STATE_STOPPED, "db is Stopped");
	}
	vm_record_list_free(v, n);
}

static void test_generation_rules(void)
{
	_cleanup_free_ char *p = db_path("gen");
	_cleanup_(store_closep) Store *s = NULL;
	_cleanup_(vm_record_freep) VmRecord *before = NULL;
	VmRecord *after = NULL;
	int64_t gen = -1;

	CHECK_INTEQ(store_open(p, &s), 0, "open");
	upsert(s, "vm", "/s/a.yaml", "v1", VM_STATE_RUNNING, &gen);
	store_get_vm(s, "vm", &before);

	int64_t dv = raw_int(p, "PRAGMA data_version");
	gen = -1;
	CHECK_INTEQ(upsert(s, "vm", "/s/a.yaml", "v1", VM_STATE_RUNNING, &gen),
		    STORE_UPSERT_UNCHANGED, "same hash and source -> UNCHANGED");
	CHECK_INTEQ(gen, 1, "generation reported, unchanged");
	store_get_vm(s, "vm", &after);
	CHECK_INTEQ(after->updated_at_ms, before->updated_at_ms, "UNCHANGED keeps updated_at");
	CHECK_STREQ(after->uid, before->uid, "uid fixed");
	vm_record_free(after);

	/* data_version only moves when another connection committed something. */
	sqlite3 *raw = NULL;
	sqlite3_open_v2(p, &raw, SQLITE_OPEN_READONLY, NULL);
	sqlite3_stmt *q = NULL;
	sqlite3_prepare_v2(raw, "PRAGMA data_version", -1, &q, NULL);
	sqlite3_step(q);
	dv = sqlite3_column_int64(q, 0);
	sqlite3_reset(q);
	upsert(s, "vm", "/s/a.yaml", "v1", VM_STATE_RUNNING, NULL);
	store_set_restart_count(s, "vm", 0); /* same value: must not write either */
	sqlite3_step(q);
	CHECK_INTEQ(sqlite3_column_int64(q, 0), dv, "UNCHANGED commits nothing (data_version)");
	sqlite3_reset(q);

	usleep(2000);
	CHECK_INTEQ(upsert(s, "vm", "/s/a.yaml", "v2", VM_STATE_RUNNING, &gen),
		    STORE_UPSERT_UPDATED, "new hash -> UPDATED");
	CHECK_INTEQ(gen, 2, "generation +1");
	sqlite3_step(q);
	CHECK(sqlite3_column_int64(q, 0) != dv, "UPDATED commits (data_version moved)");
	sqlite3_finalize(q);
	sqlite3_close(raw);

	store_get_vm(s, "vm", &after);
	CHECK(after->updated_at_ms > before->updated_at_ms, "UPDATED bumps updated_at");
	CHECK_INTEQ(after->created_at_ms, before->created_at_ms, "created_at kept");
	CHECK(strstr(after->spec_json, "v2") != NULL, "new spec json stored");
	vm_record_free(after);

	CHECK_INTEQ(upsert(s, "vm", "/s/b.yaml", "v2", VM_STATE_RUNNING, &gen), STORE_UPSERT_MOVED,
		    "same hash, new source -> MOVED");
	CHECK_INTEQ(gen, 2, "MOVED keeps generation");
	store_get_vm(s, "vm", &after);
	CHECK_STREQ(after->source_file, "/s/b.yaml", "source file updated");
	CHECK_INTEQ(after->generation, 2, "stored generation still 2");
	vm_record_free(after);

	CHECK_INTEQ(upsert(s, "vm", "/s/c.yaml", "v3", VM_STATE_RUNNING, &gen),
		    STORE_UPSERT_UPDATED, "new hash and new source -> UPDATED");
	CHECK_INTEQ(gen, 3, "generation 3");

	/* Desired state is part of the spec, so a change is a new hash. */
	CHECK_INTEQ(upsert(s, "vm", "/s/c.yaml", "v3", VM_STATE_STOPPED, &gen),
		    STORE_UPSERT_UPDATED, "Running -> Stopped is an update");
	CHECK_INTEQ(gen, 4, "generation 4");
	store_get_vm(s, "vm", &after);
	CHECK_INTEQ(after->desired_state, VM_STATE_STOPPED, "desired state Stopped stored");
	char hash[65];
	strcpy(hash, after->spec_hash);
	CHECK_INTEQ(store_upsert_vm_raw(s, "vm", "/s/c.yaml", after->spec_json, hash,
					VM_STATE_RUNNING, NULL),
		    -EINVAL, "same hash with a different state is refused");
	vm_record_free(after);

	CHECK_INTEQ(store_upsert_vm_raw(s, "vm", "/s/c.yaml", "{}", "not-a-hash", VM_STATE_RUNNING,
					NULL),
		    -EINVAL, "malformed hash refused by CHECK");
	CHECK_INTEQ(store_upsert_vm_raw(s, "", "/s/c.yaml", "{}", hash, VM_STATE_RUNNING, NULL),
		    -EINVAL, "empty name refused");
	store_get_vm(s, "vm", &after);
	CHECK_INTEQ(after->generation, 4, "refused upserts changed nothing");
	vm_record_free(after);
}

static void test_runtime_fields(void)
{
	_cleanup_free_ char *p = db_path("runtime");
	_cleanup_(store_closep) Store *s = NULL;
	VmRecord *r = NULL;

	CHECK_INTEQ(store_open(p, &s), 0, "open");
	upsert(s, "vm", "/s/a.yaml", "x", VM_STATE_RUNNING, NULL);

	CHECK_INTEQ(store_set_guest_ip(s, "vm", "172.30.0.2"), 1, "set guest ip");
	CHECK_INTEQ(store_set_guest_ip(s, "vm", "172.30.0.2"), 0, "same guest ip -> 0");
	CHECK_INTEQ(store_set_paths(s, "vm", "/var/lib/banger/vms/vm", "/run/banger/vm.sock",
				    "/var/log/banger/vm.log"),
		    1, "set paths");
	CHECK_INTEQ(store_set_last_error(s, "vm", "boot failed: no kernel"), 1, "set last error");
	CHECK_INTEQ(store_set_observed_generation(s, "vm", 1), 1, "set observed generation");
	CHECK_INTEQ(store_set_restart_count(s, "vm", 3), 1, "set restart count");
	CHECK_INTEQ(store_set_restart_count(s, "vm", -1), -EINVAL, "negative count refused");

	store_get_vm(s, "vm", &r);
	CHECK_STREQ(r->guest_ip, "172.30.0.2", "guest ip read back");
	CHECK_STREQ(r->vm_dir, "/var/lib/banger/vms/vm", "vm dir read back");
	CHECK_STREQ(r->api_sock, "/run/banger/vm.sock", "api sock read back");
	CHECK_STREQ(r->log_path, "/var/log/banger/vm.log", "log path read back");
	CHECK_STREQ(r->last_error, "boot failed: no kernel", "last error read back");
	CHECK_INTEQ(r->observed_generation, 1, "observed generation read back");
	CHECK_INTEQ(r->restart_count, 3, "restart count read back");
	CHECK_INTEQ(r->generation, 1, "runtime setters do not touch generation");
	vm_record_free(r);

	/* A spec update must not wipe runtime facts. */
	upsert(s, "vm", "/s/a.yaml", "y", VM_STATE_RUNNING, NULL);
	store_get_vm(s, "vm", &r);
	CHECK(r->guest_ip && r->vm_dir && r->restart_count == 3 && r->observed_generation == 1,
	      "spec update keeps runtime facts");
	vm_record_free(r);

	CHECK_INTEQ(store_set_last_error(s, "vm", NULL), 1, "clear last error");
	CHECK_INTEQ(store_set_paths(s, "vm", NULL, "/run/banger/vm.sock", NULL), 1,
		    "clear two paths");
	CHECK_INTEQ(store_set_guest_ip(s, "vm", NULL), 1, "clear guest ip");
	CHECK_INTEQ(store_set_guest_ip(s, "vm", ""), -EINVAL, "empty guest ip refused");
	store_get_vm(s, "vm", &r);
	CHECK(r->last_error == NULL && r->guest_ip == NULL, "cleared text fields are NULL");
	CHECK(r->vm_dir == NULL && r->log_path == NULL, "cleared paths are NULL");
	CHECK_STREQ(r->api_sock, "/run/banger/vm.sock", "kept path stays");
	vm_record_free(r);

	CHECK_INTEQ(store_set_guest_ip(s, "ghost", "172.30.0.9"), -ENOENT, "ip: unknown vm");
	CHECK_INTEQ(store_set_paths(s, "ghost", "a", "b", "c"), -ENOENT, "paths: unknown vm");
	CHECK_INTEQ(store_set_last_error(s, "ghost", "e"), -ENOENT, "error: unknown vm");
	CHECK_INTEQ(store_set_observed_generation(s, "ghost", 1), -ENOENT, "obs: unknown vm");
	CHECK_INTEQ(store_set_restart_count(s, "ghost", 0), -ENOENT, "count: unknown vm");
}

/* The schema version a fresh database gets (the lead renumbers migrations
 * at merges: tests do not spell the number). */
/* vmm_uid: unique among rows (NULL never collides), 0 and (uid_t)-1
 * refused, listed sorted, kept across reopen, freed with the row. */
static void test_vmm_uid(void)
{
	_cleanup_free_ char *p = db_path("vmmuid");
	_cleanup_(store_closep) Store *s = NULL;
	_cleanup_free_ uint32_t *v = NULL;
	VmRecord *r = NULL;
	size_t n = 99;

	CHECK_INTEQ(store_open(p, &s), 0, "open");
	CHECK_INTEQ(store_list_vmm_uids(s, &v, &n), 0, "list vmm uids on empty db");
	CHECK_INTEQ(n, 0, "none");
	upsert(s, "a", "/s/a.yaml", "x", VM_STATE_RUNNING, NULL);
	upsert(s, "b", "/s/b.yaml", "x", VM_STATE_RUNNING, NULL);
	upsert(s, "c", "/s/c.yaml", "x", VM_STATE_RUNNING, NULL);
	store_get_vm(s, "a", &r);
	CHECK_INTEQ(r->vmm_uid, 0, "a new row has no vmm uid");
	vm_record_free(r);
	CHECK_INTEQ(store_set_vmm_uid(s, "a", 2000000001), 1, "a gets 2000000001");
	CHECK_INTEQ(store_set_vmm_uid(s, "a", 2000000001), 0, "same again: unchanged");
	CHECK_INTEQ(store_set_vmm_uid(s, "b", 2000000000), 1, "b gets 2000000000");
	CHECK_INTEQ(store_set_vmm_uid(s, "c", 2000000001), -EEXIST, "a's uid for c -> -EEXIST");
	CHECK_INTEQ(store_set_vmm_uid(s, "c", 0), -EINVAL, "uid 0 (root) refused");
	CHECK_INTEQ(store_set_vmm_uid(s, "c", UINT32_MAX), -EINVAL, "(uid_t)-1 refused");
	CHECK_INTEQ(store_set_vmm_uid(s, "nope", 5), -ENOENT, "unknown name -> -ENOENT");
	CHECK_INTEQ(raw_exec(p, "UPDATE vms SET vmm_uid = 0 WHERE name = 'c'"), SQLITE_CONSTRAINT,
		    "the schema itself refuses uid 0");
	CHECK_INTEQ(store_list_vmm_uids(s, &v, &n), 0, "list");
	CHECK(n == 2 && v[0] == 2000000000 && v[1] == 2000000001, "two uids, sorted");
	free(TAKE_PTR(v));
	store_close(TAKE_PTR(s));
	CHECK_INTEQ(store_open(p, &s), 0, "reopen");
	store_get_vm(s, "a", &r);
	CHECK_INTEQ(r->vmm_uid, 2000000001, "a keeps its uid across reopen");
	vm_record_free(r);
	CHECK_INTEQ(store_delete_vm(s, "a"), 0, "delete a");
	CHECK_INTEQ(store_set_vmm_uid(s, "c", 2000000001), 1, "a's uid is free again: c takes it");
}

static void test_guest_ip_unique(void)
{
	_cleanup_free_ char *p = db_path("ip");
	_cleanup_(store_closep) Store *s = NULL;
	_cleanup_strv_free_ char **ips = NULL;
	VmRecord *r = NULL;

	CHECK_INTEQ(store_open(p, &s), 0, "open");
	CHECK_INTEQ(store_list_guest_ips(s, &ips), 0, "list ips on empty db");
	CHECK(ips && ips[0] == NULL, "empty strv, not NULL");
	strv_free(TAKE_PTR(ips));

	upsert(s, "a", "/s/a.yaml", "x", VM_STATE_RUNNING, NULL);
	upsert(s, "b", "/s/b.yaml", "x", VM_STATE_RUNNING, NULL);
	upsert(s, "c", "/s/c.yaml", "x", VM_STATE_RUNNING, NULL);
	store_set_guest_ip(s, "a", "172.30.0.3");
	store_set_guest_ip(s, "b", "172.30.0.2");
	CHECK_INTEQ(store_set_guest_ip(s, "c", "172.30.0.3"), -EEXIST,
		    "duplicate guest ip -> -EEXIST");
	CHECK_INTEQ(store_set_guest_ip(s, "b", "172.30.0.3"), -EEXIST,
		    "changing to a taken ip -> -EEXIST");

	store_get_vm(s, "a", &r);
	CHECK_STREQ(r->guest_ip, "172.30.0.3", "owner keeps its ip");
	vm_record_free(r);
	store_get_vm(s, "b", &r);
	CHECK_STREQ(r->guest_ip, "172.30.0.2", "loser keeps its old ip");
	vm_record_free(r);
	store_get_vm(s, "c", &r);
	CHECK(r->guest_ip == NULL, "loser without ip stays without");
	vm_record_free(r);

	CHECK_INTEQ(store_list_guest_ips(s, &ips), 0, "list ips");
	CHECK_INTEQ(strv_length(ips), 2, "two ips in use");
	if (strv_length(ips) == 2) {
		CHECK_STREQ(ips[0], "172.30.0.2", "sorted [0]");
		CHECK_STREQ(ips[1], "172.30.0.3", "sorted [1]");
	}

	/* Releasing and re-taking works; NULLs never collide. */
	CHECK_INTEQ(store_set_guest_ip(s, "a", NULL), 1, "a releases its ip");
	CHECK_INTEQ(store_set_guest_ip(s, "c", "172.30.0.3"), 1, "c takes the freed ip");
}

static void test_delete(void)
{
	_cleanup_free_ char *p = db_path("delete");
	_cleanup_(store_closep) Store *s = NULL;
	VmRecord *r = NULL;
	int64_t gen = 0;

	CHECK_INTEQ(store_open(p, &s), 0, "open");
	upsert(s, "vm", "/s/a.yaml", "x", VM_STATE_RUNNING, NULL);
	upsert(s, "vm", "/s/a.yaml", "y", VM_STATE_RUNNING, NULL);
	store_set_guest_ip(s, "vm", "172.30.0.7");
	store_get_vm(s, "vm", &r);
	_cleanup_free_ char *old_uid = xstrdup(r->uid);
	vm_record_free(r);

	CHECK_INTEQ(store_delete_vm(s, "vm"), 0, "delete");
	CHECK_INTEQ(store_get_vm(s, "vm", &r), -ENOENT, "gone after delete");
	CHECK_INTEQ(store_delete_vm(s, "vm"), -ENOENT, "second delete -> -ENOENT");

	CHECK_INTEQ(upsert(s, "vm", "/s/a.yaml", "y", VM_STATE_RUNNING, &gen), STORE_UPSERT_CREATED,
		    "recreate after delete");
	CHECK_INTEQ(gen, 1, "recreated VM starts at generation 1");
	store_get_vm(s, "vm", &r);
	CHECK(!streq(r->uid, old_uid), "recreated VM has a new uid");
	CHECK(r->guest_ip == NULL, "deleted row's ip is gone");
	vm_record_free(r);
	CHECK_INTEQ(store_set_guest_ip(s, "vm", "172.30.0.7"), 1, "ip reusable after delete");
}

static void test_mark_deleted(void)
{
	_cleanup_free_ char *p = db_path("markdel");
	_cleanup_(store_closep) Store *s = NULL;
	VmRecord *r = NULL;
	int64_t gen = 0;

	CHECK_INTEQ(store_open(p, &s), 0, "open");
	upsert(s, "vm", "/s/a.yaml", "x", VM_STATE_RUNNING, NULL);
	store_set_guest_ip(s, "vm", "172.30.0.8");
	store_get_vm(s, "vm", &r);
	CHECK(!r->deleted, "fresh row is not deleted");
	_cleanup_free_ char *uid = xstrdup(r->uid);
	vm_record_free(r);

	CHECK_INTEQ(store_mark_deleted(s, "vm"), 1, "mark deleted");
	CHECK_INTEQ(store_mark_deleted(s, "vm"), 0, "mark deleted again -> 0");
	CHECK_INTEQ(store_mark_deleted(s, "ghost"), -ENOENT, "mark unknown -> -ENOENT");
	store_get_vm(s, "vm", &r);
	CHECK(r->deleted, "row is marked deleted");
	CHECK_STREQ(r->guest_ip, "172.30.0.8", "deleted row keeps its ip until removed");
	vm_record_free(r);

	CHECK_INTEQ(upsert(s, "vm", "/s/a.yaml", "x", VM_STATE_RUNNING, &gen), STORE_UPSERT_UPDATED,
		    "same spec revives a deleted row");
	CHECK_INTEQ(gen, 2, "revived VM gets a new generation");
	store_get_vm(s, "vm", &r);
	CHECK(!r->deleted, "revived row is live");
	CHECK_STREQ(r->uid, uid, "revived row keeps its uid");
	vm_record_free(r);
}

static void test_reopen_persists(void)
{
	_cleanup_free_ char *p = db_path("reopen");
	Store *s = NULL;
	VmRecord *r = NULL;
	_cleanup_free_ char *uid = NULL;
	int64_t created = 0, gen = 0;

	CHECK_INTEQ(store_open(p, &s), 0, "open");
	upsert(s, "vm", "/s/a.yaml", "x", VM_STATE_STOPPED, NULL);
	upsert(s, "vm", "/s/a.yaml", "y", VM_STATE_STOPPED, NULL);
	store_set_guest_ip(s, "vm", "172.30.0.4");
	store_set_paths(s, "vm", "/d", "/d/api.sock", "/d/log");
	store_set_last_error(s, "vm", "it's \"broken\"");
	store_set_observed_generation(s, "vm", 2);
	store_set_restart_count(s, "vm", 5);
	store_get_vm(s, "vm", &r);
	uid = xstrdup(r->uid);
	created = r->created_at_ms;
	vm_record_free(r);
	store_close(s);

	CHECK_INTEQ(store_open(p, &s), 0, "reopen");
	CHECK_INTEQ(store_get_vm(s, "vm", &r), 0, "row survives reopen");
	CHECK_STREQ(r->uid, uid, "uid survives");
	CHECK_INTEQ(r->generation, 2, "generation survives");
	CHECK_INTEQ(r->desired_state, VM_STATE_STOPPED, "desired state survives");
	CHECK_STREQ(r->source_file, "/s/a.yaml", "source survives");
	CHECK(strstr(r->spec_json, "\"c\":\"y\"") != NULL, "spec json survives");
	CHECK_STREQ(r->guest_ip, "172.30.0.4", "guest ip survives");
	CHECK_STREQ(r->vm_dir, "/d", "vm dir survives");
	CHECK_STREQ(r->api_sock, "/d/api.sock", "api sock survives");
	CHECK_STREQ(r->log_path, "/d/log", "log path survives");
	CHECK_STREQ(r->last_error, "it's \"broken\"", "last error survives");
	CHECK_INTEQ(r->observed_generation, 2, "observed generation survives");
	CHECK_INTEQ(r->restart_count, 5, "restart count survives");
	CHECK_INTEQ(r->created_at_ms, created, "created_at survives");
	vm_record_free(r);
	CHECK_INTEQ(upsert(s, "vm", "/s/a.yaml", "y", VM_STATE_STOPPED, &gen),
		    STORE_UPSERT_UNCHANGED, "same spec after reopen is UNCHANGED");
	CHECK_INTEQ(gen, 2, "and reports the stored generation");
	store_close(s);
	CHECK_INTEQ(raw_int(p, "PRAGMA user_version"), store_schema_version(),
		    "user_version is the current schema");
}

/* A database from before spec.state Suspended (schema 2, whose CHECK allowed
 * only Running and Stopped) keeps its rows and then accepts Suspended. */
static void test_migrate_suspended(void)
{
	_cleanup_free_ char *p = db_path("v2");
	sqlite3 *db = NULL;
	sqlite3_open_v2(p, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
	int rc = sqlite3_exec(
		db,
		"CREATE TABLE vms (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE CHECK (length(name) > 0),"
		" uid TEXT NOT NULL UNIQUE, source_file TEXT NOT NULL, spec_json TEXT NOT NULL,"
		" spec_hash TEXT NOT NULL, generation INTEGER NOT NULL CHECK (generation >= 1),"
		" desired_state TEXT NOT NULL CHECK (desired_state IN ('Running', 'Stopped')),"
		" guest_ip TEXT UNIQUE, vm_dir TEXT, api_sock TEXT, log_path TEXT, last_error TEXT,"
		" observed_generation INTEGER NOT NULL DEFAULT 0, restart_count INTEGER NOT NULL"
		" DEFAULT 0, created_at_ms INTEGER NOT NULL, updated_at_ms INTEGER NOT NULL) STRICT;"
		"ALTER TABLE vms ADD COLUMN deleted_at_ms INTEGER;"
		"INSERT INTO vms (name, uid, source_file, spec_json, spec_hash, generation,"
		" desired_state, guest_ip, restart_count, created_at_ms, updated_at_ms) VALUES"
		" ('old', '0123456789abcdef0123456789abcdef', '/s/old.yaml', '{}',"
		" '0000000000000000000000000000000000000000000000000000000000000000', 4, 'Stopped',"
		" '172.30.0.9', 2, 1, 1);"
		"PRAGMA user_version = 2;",
		NULL, NULL, NULL);
	sqlite3_close(db);
	CHECK_INTEQ(rc, SQLITE_OK, "schema-2 database made");
	Store *s = NULL;
	CHECK_INTEQ(store_open(p, &s), 0, "schema-2 database opens (migrated)");
	VmRecord *r = NULL;
	CHECK_INTEQ(store_get_vm(s, "old", &r), 0, "its row survives the table rebuild");
	CHECK(r && r->generation == 4 && r->restart_count == 2 &&
		      streq_ptr(r->guest_ip, "172.30.0.9") && r->desired_state == VM_STATE_STOPPED,
	      "...with every field");
	vm_record_free(r);
	int64_t gen = 0;
	CHECK(upsert(s, "sus", "/s/sus.yaml", "x", VM_STATE_SUSPENDED, &gen) >= 0,
	      "desired_state Suspended is accepted after the migration");
	CHECK_INTEQ(store_get_vm(s, "sus", &r), 0, "suspended row reads back");
	CHECK(r && r->desired_state == VM_STATE_SUSPENDED, "...as Suspended");
	vm_record_free(r);
	store_close(s);
}

static void test_migrations(void)
{
	_cleanup_free_ char *fresh = db_path("fresh");
	_cleanup_free_ char *empty = db_path("empty");
	_cleanup_free_ char *newer = db_path("newer");
	_cleanup_free_ char *junk = db_path("junk");
	Store *s = NULL;

	CHECK_INTEQ(store_open(fresh, &s), 0, "open creates a missing file");
	store_close(s);
	CHECK_INTEQ(raw_int(fresh, "PRAGMA user_version"), store_schema_version(),
		    "fresh db migrated to the schema version");
	CHECK_INTEQ(raw_int(fresh, "SELECT count(*) FROM sqlite_schema WHERE name = 'vms'"), 1,
		    "vms table exists");

	int fd = open(empty, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	close(fd);
	CHECK_INTEQ(store_open(empty, &s), 0, "open migrates an existing empty file");
	store_close(s);
	CHECK_INTEQ(raw_int(empty, "PRAGMA user_version"), store_schema_version(),
		    "empty file migrated to the schema version");

	/* journal_mode is persistent in the file: a new connection sees WAL. */
	sqlite3 *db = NULL;
	sqlite3_stmt *q = NULL;
	sqlite3_open_v2(empty, &db, SQLITE_OPEN_READONLY, NULL);
	sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &q, NULL);
	sqlite3_step(q);
	CHECK_STREQ((const char *)sqlite3_column_text(q, 0), "wal", "journal_mode is WAL");
	sqlite3_finalize(q);
	sqlite3_close(db);

	CHECK_INTEQ(raw_exec(newer, "CREATE TABLE future(x); PRAGMA user_version = 99;"), SQLITE_OK,
		    "make a db from the future");
	s = (Store *)0x1;
	CHECK_INTEQ(store_open(newer, &s), -EPROTO, "newer user_version -> -EPROTO");
	CHECK(s == (Store *)0x1, "no Store returned");
	CHECK_INTEQ(raw_int(newer, "PRAGMA user_version"), 99, "user_version not downgraded");
	CHECK_INTEQ(raw_int(newer, "SELECT count(*) FROM sqlite_schema WHERE name = 'vms'"), 0,
		    "no tables added to the newer db");

	/* More than 100 bytes so SQLite reads a whole header and rejects it. */
	const char *junk_data = "this is not an SQLite database, not at all, and never was; "
				"it is long enough to hold a full 100-byte header, though.\n";
	CHECK_INTEQ(write_file_atomic(junk, junk_data, strlen(junk_data), 0600), 0,
		    "write a junk file");
	s = NULL;
	CHECK_INTEQ(store_open(junk, &s), -EBADMSG, "junk file -> -EBADMSG");
}

static void test_schema_has_no_momentary_columns(void)
{
	_cleanup_free_ char *p = db_path("schema");
	Store *s = NULL;
	sqlite3 *db = NULL;
	sqlite3_stmt *q = NULL;
	int ncols = 0, bad = 0;

	store_open(p, &s);
	store_close(s);
	sqlite3_open_v2(p, &db, SQLITE_OPEN_READONLY, NULL);
	/* Every column of every table, so a future table cannot sneak one in. */
	sqlite3_prepare_v2(
		db,
		"SELECT m.name, c.name FROM sqlite_schema m, pragma_table_info(m.name) c "
		"WHERE m.type = 'table'",
		-1, &q, NULL);
	while (sqlite3_step(q) == SQLITE_ROW) {
		const char *col = (const char *)sqlite3_column_text(q, 1);
		_cleanup_free_ char *lc = xstrdup(col);
		for (char *c = lc; *c; c++)
			*c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
		ncols++;
		if (strstr(lc, "pid") || strstr(lc, "tap") || strstr(lc, "loop") ||
		    strstr(lc, "dm")) {
			bad++;
			printf("# momentary column %s.%s\n", sqlite3_column_text(q, 0), col);
		}
	}
	sqlite3_finalize(q);
	sqlite3_close(db);
	CHECK_INTEQ(ncols, 21, "vms has its 19 documented columns, meta its 2");
	CHECK_INTEQ(bad, 0, "no column name contains pid/tap/loop/dm");
}

/* The instance tag: made with the database, stable across opens, its own
 * per database, and refused when someone damaged it. */
static void test_instance(void)
{
	_cleanup_free_ char *a = db_path("inst-a"), *b = db_path("inst-b");
	_cleanup_free_ char *first = NULL;
	Store *s = NULL;

	CHECK_INTEQ(store_open(a, &s), 0, "open a");
	const char *id = store_instance_id(s);
	CHECK(id && strlen(id) == 16 && strspn(id, "0123456789abcdef") == 16,
	      "instance id is 16 lower-case hex digits");
	first = xstrdup(id ?: "");
	store_close(s);
	CHECK_INTEQ(store_open(a, &s), 0, "reopen a");
	CHECK_STREQ(store_instance_id(s), first, "instance id survives a reopen");
	store_close(s);
	CHECK_INTEQ(store_open(b, &s), 0, "open b");
	CHECK(!streq(store_instance_id(s), first), "another state dir, another instance id");
	store_close(s);
	CHECK_INTEQ(raw_exec(a, "UPDATE meta SET value = 'x;y' WHERE key = 'instance'"), 0,
		    "damage a's id");
	s = NULL;
	CHECK_INTEQ(store_open(a, &s), -EBADMSG, "a damaged instance id is refused");
	CHECK(!s, "no store returned");
}

static void test_batch(void)
{
	_cleanup_free_ char *p = db_path("batch");
	_cleanup_(store_closep) Store *s = NULL;
	int failures = 0, created = 0;

	CHECK_INTEQ(store_open(p, &s), 0, "open");
	uint64_t t0 = time_now_us();
	CHECK_INTEQ(store_begin(s), 0, "begin");
	for (int i = 0; i < 10000; i++) {
		char name[32], src[64];
		snprintf(name, sizeof(name), "vm-%05d", i);
		snprintf(src, sizeof(src), "/specs/%s.yaml", name);
		int r = upsert(s, name, src, "batch", i % 2 ? VM_STATE_STOPPED : VM_STATE_RUNNING,
			       NULL);
		failures += r < 0;
		created += r == STORE_UPSERT_CREATED;
	}
	CHECK_INTEQ(store_commit(s), 0, "commit");
	uint64_t t1 = time_now_us();
	CHECK_INTEQ(failures, 0, "10,000 upserts without error");
	CHECK_INTEQ(created, 10000, "10,000 created");
	printf("# 10,000 upserts in one transaction: %.1f ms\n", (double)(t1 - t0) / 1000.0);

	/* A second cold sync of the same specs: all UNCHANGED, nothing written. */
	int unchanged = 0;
	t0 = time_now_us();
	store_begin(s);
	for (int i = 0; i < 10000; i++) {
		char name[32], src[64];
		snprintf(name, sizeof(name), "vm-%05d", i);
		snprintf(src, sizeof(src), "/specs/%s.yaml", name);
		unchanged +=
			upsert(s, name, src, "batch", i % 2 ? VM_STATE_STOPPED : VM_STATE_RUNNING,
			       NULL) == STORE_UPSERT_UNCHANGED;
	}
	store_commit(s);
	t1 = time_now_us();
	CHECK_INTEQ(unchanged, 10000, "re-sync: all 10,000 UNCHANGED");
	printf("# 10,000 unchanged upserts in one transaction: %.1f ms\n",
	       (double)(t1 - t0) / 1000.0);

	VmRecord **v = NULL;
	size_t n = 0;
	store_list_vms(s, &v, &n);
	CHECK_INTEQ(n, 10000, "list returns 10,000 rows");
	CHECK(n == 10000 && streq(v[0]->name, "vm-00000") && streq(v[9999]->name, "vm-09999"),
	      "list is ordered");
	vm_record_list_free(v, n);
}

static void test_transactions(void)
{
	_cleanup_free_ char *p = db_path("tx");
	_cleanup_(store_closep) Store *s = NULL;
	VmRecord *r = NULL;

	CHECK_INTEQ(store_open(p, &s), 0, "open");
	CHECK_INTEQ(store_commit(s), -EINVAL, "commit without begin");
	CHECK_INTEQ(store_rollback(s), -EINVAL, "rollback without begin");
	CHECK_INTEQ(store_begin(s), 0, "begin");
	CHECK_INTEQ(store_begin(s), -EBUSY, "nested begin refused");
	upsert(s, "vm", "/s/a.yaml", "x", VM_STATE_RUNNING, NULL);
	CHECK_INTEQ(store_get_vm(s, "vm", &r), 0, "visible inside the transaction");
	vm_record_free(r);
	CHECK_INTEQ(store_rollback(s), 0, "rollback");
	CHECK_INTEQ(store_get_vm(s, "vm", &r), -ENOENT, "rolled-back insert is gone");
	CHECK_INTEQ(store_begin(s), 0, "begin again after rollback");
	upsert(s, "vm", "/s/a.yaml", "x", VM_STATE_RUNNING, NULL);
	CHECK_INTEQ(store_commit(s), 0, "commit");
	CHECK_INTEQ(raw_int(p, "SELECT count(*) FROM vms"), 1, "committed row visible to others");
}

static void test_hostile_names(void)
{
	_cleanup_free_ char *p = db_path("hostile");
	_cleanup_(store_closep) Store *s = NULL;
	static const char *const names[] = {
		"x'; DROP TABLE vms; --",
		"\"quoted\"",
		"a%s%n%d",
		"back\\slash",
		"new\nline",
		"' OR '1'='1",
		"*",
		"?1",
		"ünïcødé",
	};
	int ok = 0;

	CHECK_INTEQ(store_open(p, &s), 0, "open");
	for (size_t i = 0; i < ELEMENTSOF(names); i++) {
		_cleanup_free_ char *src = xasprintf("/specs/%s.yaml", names[i]);
		ok += upsert(s, names[i], src, "h", VM_STATE_RUNNING, NULL) == STORE_UPSERT_CREATED;
		ok += store_set_last_error(s, names[i], names[i]) == 1;
	}
	CHECK_INTEQ(ok, 2 * (int)ELEMENTSOF(names), "every hostile name stored and updated");
	CHECK_INTEQ(raw_int(p, "SELECT count(*) FROM vms"), (int)ELEMENTSOF(names),
		    "table intact, one row each");
	for (size_t i = 0; i < ELEMENTSOF(names); i++) {
		_cleanup_(vm_record_freep) VmRecord *r = NULL;
		_cleanup_free_ char *src = xasprintf("/specs/%s.yaml", names[i]);
		/* CHECK evaluates its condition twice: no side effects inside. */
		bool same = store_get_vm(s, names[i], &r) == 0 && streq(r->name, names[i]) &&
			    streq(r->source_file, src) && streq(r->last_error, names[i]);
		CHECK(same, "name %zu read back verbatim", i);
	}
	VmRecord *r = NULL;
	CHECK_INTEQ(store_get_vm(s, "%", &r), -ENOENT, "no LIKE-style matching");
	CHECK_INTEQ(store_delete_vm(s, names[0]), 0, "delete the injection-looking name");
	CHECK_INTEQ(raw_int(p, "SELECT count(*) FROM vms"), (int)ELEMENTSOF(names) - 1,
		    "only that row went");
}

/* Every fd this process holds on the database files must be CLOEXEC. */
static void test_fds(void)
{
	_cleanup_free_ char *p = db_path("fds");
	_cleanup_free_ char *link = db_path("fds-link");
	_cleanup_(store_closep) Store *s = NULL;
	int found = 0, cloexec = 0;

	CHECK_INTEQ(store_open(p, &s), 0, "open");
	upsert(s, "vm", "/s/a.yaml", "x", VM_STATE_RUNNING, NULL); /* opens -wal, -shm */
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	while (d && (de = readdir(d))) {
		char lp[320], target[PATH_MAX];
		snprintf(lp, sizeof(lp), "/proc/self/fd/%s", de->d_name);
		ssize_t k = readlink(lp, target, sizeof(target) - 1);
		if (k <= 0)
			continue;
		target[k] = 0;
		if (!startswith(target, p))
			continue;
		found++;
		int fl = fcntl(atoi(de->d_name), F_GETFD);
		cloexec += fl >= 0 && (fl & FD_CLOEXEC);
	}
	if (d)
		closedir(d);
	CHECK(found >= 3, "db, -wal and -shm are open (%d fds)", found);
	CHECK_INTEQ(cloexec, found, "every database fd is CLOEXEC");

	CHECK_INTEQ(symlink(p, link), 0, "make a symlink to the db");
	Store *s2 = NULL;
	CHECK_INTEQ(store_open(link, &s2), -ELOOP, "a symlinked db path is refused");
}

/* A scripted uid source: each call hands out the next uid of the list. */
static const char *const *uid_script;
static int uid_calls;

static int scripted_uid(char out[33])
{
	const char *u = uid_script[uid_calls++];
	if (!u)
		return -EIO;
	memcpy(out, u, 33);
	return 0;
}

static char *uid_of(Store *s, const char *name)
{
	VmRecord *r = NULL;
	char *u = store_get_vm(s, name, &r) >= 0 ? xstrdup(r->uid) : NULL;
	vm_record_free(r);
	return u;
}

/* Tap, socket and dm names come from the first 8 hex digits of the uid:
 * a new row whose short id another row has gets a fresh uid. */
static void test_short_id_unique(void)
{
	_cleanup_free_ char *p = db_path("shortid"), *ua = NULL, *ub = NULL, *uc = NULL;
	static const char *const script[] = {
		"0123abcd00000000000000000000000a", /* a */
		"0123abcd11111111111111111111111b", /* b: a's short id, drawn again */
		"0123abcd22222222222222222222222b", /* b: again a's */
		"89abcdef33333333333333333333333b", /* b: free */
		"89abcdef44444444444444444444444c", /* c: b's */
		"fedcba9855555555555555555555555c", /* c: free */
		NULL,
	};
	Store *s = NULL;
	int64_t gen;
	CHECK_INTEQ(store_open(p, &s), 0, "open");
	CHECK_INTEQ(raw_int(p, "SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND "
			       "name = 'vms_short_id'"),
		    1, "the short-id index exists");
	uid_script = script;
	uid_calls = 0;
	store_set_uid_source(scripted_uid);
	CHECK_INTEQ(upsert(s, "a", "a.yaml", "x", VM_STATE_STOPPED, &gen), STORE_UPSERT_CREATED,
		    "insert a");
	CHECK_INTEQ(upsert(s, "b", "b.yaml", "x", VM_STATE_STOPPED, &gen), STORE_UPSERT_CREATED,
		    "insert b despite two colliding draws");
	CHECK_INTEQ(uid_calls, 4, "b took three draws (two collided with a)");
	CHECK_INTEQ(store_begin(s), 0, "c inside a batch transaction");
	CHECK_INTEQ(upsert(s, "c", "c.yaml", "x", VM_STATE_STOPPED, &gen), STORE_UPSERT_CREATED,
		    "insert c: its first draw collides with b, uncommitted rows count too");
	CHECK_INTEQ(store_commit(s), 0, "commit");
	CHECK_INTEQ(uid_calls, 6, "c took two draws");
	ua = uid_of(s, "a"), ub = uid_of(s, "b"), uc = uid_of(s, "c");
	CHECK_STREQ(ua, script[0], "a has its first uid");
	CHECK_STREQ(ub, script[3], "b has the first uid with a free short id");
	CHECK_STREQ(uc, script[5], "c too");
	CHECK_INTEQ(raw_int(p, "SELECT count(DISTINCT substr(uid, 1, 8)) FROM vms"), 3,
		    "three rows, three short ids");
	/* Every draw collides: the insert fails, nothing is written. */
	static const char *const always_a[] = {
		[0 ... 63] = "0123abcd66666666666666666666666d",
		NULL,
	};
	uid_script = always_a;
	uid_calls = 0;
	CHECK_INTEQ(upsert(s, "d", "d.yaml", "x", VM_STATE_STOPPED, &gen), -EEXIST,
		    "no free short id in 64 draws: -EEXIST");
	CHECK_INTEQ(uid_calls, 64, "bounded: 64 draws");
	VmRecord *r = NULL;
	CHECK_INTEQ(store_get_vm(s, "d", &r), -ENOENT, "no row for d");
	store_set_uid_source(NULL);
	CHECK_INTEQ(upsert(s, "d", "d.yaml", "x", VM_STATE_STOPPED, &gen), STORE_UPSERT_CREATED,
		    "the default random source works again");
	store_close(s);
	/* A database from before the check may hold a collision: it still opens
	 * (the index is not UNIQUE), and says so in the log. */
	CHECK_INTEQ(raw_exec(p, "UPDATE vms SET uid = '0123abcd' || substr(uid, 9) "
				"WHERE name = 'd'"),
		    SQLITE_OK, "force d onto a's short id behind the store's back");
	CHECK_INTEQ(store_open(p, &s), 0, "a database holding a collision still opens");
	store_close(s);
}

int main(void)
{
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	test_create_read_list();
	test_generation_rules();
	test_runtime_fields();
	test_guest_ip_unique();
	test_vmm_uid();
	test_delete();
	test_reopen_persists();
	test_migrations();
	test_migrate_suspended();
	test_schema_has_no_momentary_columns();
	test_mark_deleted();
	test_instance();
	test_batch();
	test_transactions();
	test_hostile_names();
	test_fds();
	test_short_id_unique();
	rm_rf(tmpdir);
	return tap_done();
}
