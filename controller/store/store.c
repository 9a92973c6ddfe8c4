/* store.c — durable intent in SQLite. See store.h for the contract.
 *
 * Durability: journal_mode=WAL with synchronous=FULL, so every committed
 * transaction is fsynced into the WAL before COMMIT returns; a single edit
 * survives power loss the moment store_upsert_vm() returns. Cold sync pays
 * that fsync once for thousands of rows by wrapping them in store_begin() /
 * store_commit(). (synchronous=NORMAL would only lose the last commits on
 * power loss, never corrupt — but "the daemon said it stored it" should
 * mean stored.)
 *
 * Every value that comes from a spec file (names, paths, JSON) reaches SQL
 * only as a bound parameter. Statements are prepared once and cached in the
 * Store; each use resets them on the way out (stmt_resetp) so no read
 * transaction lingers.
 *
 * fds: SQLite's unix VFS opens the database, -wal and -shm files with
 * O_CLOEXEC (robust_open() ORs it in on Linux); tests/unit/test_store.c
 * checks FD_CLOEXEC on every open fd that points at the database. */
#include "store/store.h"
#include "util/log.h"
#include "util/timeutil.h"

#include <sqlite3.h>
#include <stdio.h>
#include <sys/random.h>

#define STORE_BUSY_TIMEOUT_MS 5000
#define STORE_UID_ATTEMPTS    64

/* Schema migrations: step i takes user_version i to i+1. Append only; never
 * edit a step that has shipped. There is no column for PID, tap, loop or dm
 * devices: those are momentary facts (runtime/handles.h). */
static const char *const store_migrations[] = {
	/* 0 → 1: the vms table */
	"CREATE TABLE vms ("
	" id INTEGER PRIMARY KEY,"
	" name TEXT NOT NULL UNIQUE CHECK (length(name) > 0),"
	" uid TEXT NOT NULL UNIQUE"
	"  CHECK (length(uid) = 32 AND uid NOT GLOB '*[^0-9a-f]*'),"
	" source_file TEXT NOT NULL,"
	" spec_json TEXT NOT NULL,"
	" spec_hash TEXT NOT NULL"
	"  CHECK (length(spec_hash) = 64 AND spec_hash NOT GLOB '*[^0-9a-f]*'),"
	" generation INTEGER NOT NULL CHECK (generation >= 1),"
	" desired_state TEXT NOT NULL CHECK (desired_state IN ('Running', 'Stopped')),"
	" guest_ip TEXT UNIQUE CHECK (guest_ip IS NULL OR length(guest_ip) > 0),"
	" vm_dir TEXT,"
	" api_sock TEXT,"
	" log_path TEXT,"
	" last_error TEXT,"
	" observed_generation INTEGER NOT NULL DEFAULT 0 CHECK (observed_generation >= 0),"
	" restart_count INTEGER NOT NULL DEFAULT 0 CHECK (restart_count >= 0),"
	" created_at_ms INTEGER NOT NULL,"
	" updated_at_ms INTEGER NOT NULL"
	") STRICT;",
	/* 1 → 2: intent deletion is recorded first and completed by reconcile
	 * after teardown, so the row (VM dir, guest IP) outlives the spec file
	 * exactly as long as the VM's resources do. */
	"ALTER TABLE vms ADD COLUMN deleted_at_ms INTEGER"
	" CHECK (deleted_at_ms IS NULL OR deleted_at_ms > 0);",
	/* 2 → 3: the short id (first 8 hex digits of uid) names the VM's tap,
	 * socket and dm target, so it must be unique too; inserts check it
	 * through this index (store_insert_vm). Not a UNIQUE index: a database
	 * that already holds a collision must still open. */
	"CREATE INDEX vms_short_id ON vms (substr(uid, 1, 8));",
	/* 3 → 4: the uid (= gid) a VM's VMM runs as, chosen once from
	 * --vmm-uid-range and kept; never root, never shared (the index), freed
	 * with the row. */
	"ALTER TABLE vms ADD COLUMN vmm_uid INTEGER"
	" CHECK (vmm_uid IS NULL OR (vmm_uid > 0 AND vmm_uid < 4294967295));"
	"CREATE UNIQUE INDEX vms_vmm_uid ON vms (vmm_uid);",
	/* 4 → 5: facts about this controller instance. 'instance' is its own
	 * tag (16 hex digits from SQLite's randomblob, seeded from the OS):
	 * made once, with the database, so it belongs to the state dir and
	 * survives restarts. Host objects carry it (see store_instance_id). */
	"CREATE TABLE meta ("
	" key TEXT PRIMARY KEY CHECK (length(key) > 0),"
	" value TEXT NOT NULL"
	") STRICT;"
	"INSERT INTO meta (key, value) VALUES ('instance', lower(hex(randomblob(8))));",
	/* 5 → 6: desired_state may be Suspended (issue 10). SQLite cannot
	 * change a CHECK in place: rebuild the table (its documented
	 * procedure: new table, copy, drop, rename, then the indexes again).
	 * The new table has every column the migrations before this one made
	 * (the copy names them). */
	"CREATE TABLE vms_new ("
	" id INTEGER PRIMARY KEY,"
	" name TEXT NOT NULL UNIQUE CHECK (length(name) > 0),"
	" uid TEXT NOT NULL UNIQUE"
	"  CHECK (length(uid) = 32 AND uid NOT GLOB '*[^0-9a-f]*'),"
	" source_file TEXT NOT NULL,"
	" spec_json TEXT NOT NULL,"
	" spec_hash TEXT NOT NULL"
	"  CHECK (length(spec_hash) = 64 AND spec_hash NOT GLOB '*[^0-9a-f]*'),"
	" generation INTEGER NOT NULL CHECK (generation >= 1),"
	" desired_state TEXT NOT NULL"
	"  CHECK (desired_state IN ('Running', 'Stopped', 'Suspended')),"
	" guest_ip TEXT UNIQUE CHECK (guest_ip IS NULL OR length(guest_ip) > 0),"
	" vm_dir TEXT,"
	" api_sock TEXT,"
	" log_path TEXT,"
	" last_error TEXT,"
	" observed_generation INTEGER NOT NULL DEFAULT 0 CHECK (observed_generation >= 0),"
	" restart_count INTEGER NOT NULL DEFAULT 0 CHECK (restart_count >= 0),"
	" created_at_ms INTEGER NOT NULL,"
	" updated_at_ms INTEGER NOT NULL,"
	" deleted_at_ms INTEGER CHECK (deleted_at_ms IS NULL OR deleted_at_ms > 0),"
	" vmm_uid INTEGER CHECK (vmm_uid IS NULL OR (vmm_uid > 0 AND vmm_uid < 4294967295))"
	") STRICT;"
	"INSERT INTO vms_new (id, name, uid, source_file, spec_json, spec_hash, generation,"
	" desired_state, guest_ip, vm_dir, api_sock, log_path, last_error, observed_generation,"
	" restart_count, created_at_ms, updated_at_ms, deleted_at_ms, vmm_uid)"
	" SELECT id, name, uid, source_file, spec_json, spec_hash, generation, desired_state,"
	" guest_ip, vm_dir, api_sock, log_path, last_error, observed_generation, restart_count,"
	" created_at_ms, updated_at_ms, deleted_at_ms, vmm_uid FROM vms;"
	"DROP TABLE vms;"
	"ALTER TABLE vms_new RENAME TO vms;"
	"CREATE INDEX vms_short_id ON vms (substr(uid, 1, 8));"
	"CREATE UNIQUE INDEX vms_vmm_uid ON vms (vmm_uid);",
};
#define STORE_SCHEMA_VERSION ((int)ELEMENTSOF(store_migrations))

int store_schema_version(void)
{
	return STORE_SCHEMA_VERSION;
}

/* The database's own spelling of VmDesiredState; the CHECK above matches it. */
static const char *const store_state_names[_VM_STATE_MAX] = {
	[VM_STATE_RUNNING] = "Running",
	[VM_STATE_STOPPED] = "Stopped",
	[VM_STATE_SUSPENDED] = "Suspended",
};

#define VM_COLUMNS                                                                                 \
	"id, name, uid, source_file, spec_json, spec_hash, generation, desired_state, "            \
	"guest_ip, vm_dir, api_sock, log_path, last_error, observed_generation, "                  \
	"restart_count, created_at_ms, updated_at_ms, deleted_at_ms, vmm_uid"

typedef enum {
	Q_GET_VM,
	Q_LIST_VMS,
	Q_LOOKUP,
	Q_INSERT,
	Q_UPDATE_SPEC,
	Q_MOVE,
	Q_DELETE,
	Q_EXISTS,
	Q_SET_GUEST_IP,
	Q_SET_PATHS,
	Q_SET_LAST_ERROR,
	Q_SET_OBSERVED_GEN,
	Q_SET_RESTART_COUNT,
	Q_LIST_GUEST_IPS,
	Q_MARK_DELETED,
	Q_LIST_LIVE_OWNERS,
	Q_SHORT_ID_TAKEN,
	Q_SET_VMM_UID,
	Q_LIST_VMM_UIDS,
	_Q_MAX,
} StoreQuery;

/* Setters bind the value(s) first, then ?N+1 = updated_at_ms, ?N+2 = name,
 * and only touch the row when a value differs. */
static const char *const store_sql[_Q_MAX] = {
	[Q_GET_VM] = "SELECT " VM_COLUMNS " FROM vms WHERE name = ?1",
	[Q_LIST_VMS] = "SELECT " VM_COLUMNS " FROM vms ORDER BY name",
	[Q_LOOKUP] = "SELECT id, source_file, spec_hash, generation, desired_state, "
		     "deleted_at_ms IS NOT NULL FROM vms WHERE name = ?1",
	[Q_INSERT] = "INSERT INTO vms (name, uid, source_file, spec_json, spec_hash, generation, "
		     "desired_state, created_at_ms, updated_at_ms) "
		     "VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, ?7, ?7)",
	[Q_UPDATE_SPEC] = "UPDATE vms SET source_file = ?1, spec_json = ?2, spec_hash = ?3, "
			  "desired_state = ?4, generation = generation + 1, updated_at_ms = ?5, "
			  "deleted_at_ms = NULL WHERE id = ?6",
	[Q_MOVE] = "UPDATE vms SET source_file = ?1, updated_at_ms = ?2 WHERE id = ?3",
	[Q_DELETE] = "DELETE FROM vms WHERE name = ?1",
	[Q_EXISTS] = "SELECT 1 FROM vms WHERE name = ?1",
	[Q_SET_GUEST_IP] = "UPDATE vms SET guest_ip = ?1, updated_at_ms = ?2 "
			   "WHERE name = ?3 AND guest_ip IS NOT ?1",
	[Q_SET_PATHS] = "UPDATE vms SET vm_dir = ?1, api_sock = ?2, log_path = ?3, "
			"updated_at_ms = ?4 WHERE name = ?5 AND "
			"(vm_dir IS NOT ?1 OR api_sock IS NOT ?2 OR log_path IS NOT ?3)",
	[Q_SET_LAST_ERROR] = "UPDATE vms SET last_error = ?1, updated_at_ms = ?2 "
			     "WHERE name = ?3 AND last_error IS NOT ?1",
	[Q_SET_OBSERVED_GEN] = "UPDATE vms SET observed_generation = ?1, updated_at_ms = ?2 "
			       "WHERE name = ?3 AND observed_generation IS NOT ?1",
	[Q_SET_RESTART_COUNT] = "UPDATE vms SET restart_count = ?1, updated_at_ms = ?2 "
				"WHERE name = ?3 AND restart_count IS NOT ?1",
	[Q_LIST_GUEST_IPS] =
		"SELECT guest_ip FROM vms WHERE guest_ip IS NOT NULL ORDER BY guest_ip",
	[Q_MARK_DELETED] = "UPDATE vms SET deleted_at_ms = ?1, updated_at_ms = ?1 "
			   "WHERE name = ?2 AND deleted_at_ms IS NULL",
	[Q_LIST_LIVE_OWNERS] = "SELECT name, source_file FROM vms WHERE deleted_at_ms IS NULL",
	/* same expression as the vms_short_id index, so it is used */
	[Q_SHORT_ID_TAKEN] = "SELECT 1 FROM vms WHERE substr(uid, 1, 8) = ?1 LIMIT 1",
	[Q_SET_VMM_UID] = "UPDATE vms SET vmm_uid = ?1, updated_at_ms = ?2 "
			  "WHERE name = ?3 AND vmm_uid IS NOT ?1",
	[Q_LIST_VMM_UIDS] = "SELECT vmm_uid FROM vms WHERE vmm_uid IS NOT NULL ORDER BY vmm_uid",
};

struct Store {
	sqlite3 *db;
	char *path;
	char *instance; /* meta 'instance', read once at open */
	sqlite3_stmt *stmts[_Q_MAX];
};

/* Map an SQLite result code to -errno. */
static int store_errno(sqlite3 *db, int rc)
{
	int sys = db ? sqlite3_system_errno(db) : 0;

	switch (rc & 0xff) {
	case SQLITE_CONSTRAINT:
		return rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY
			       ? -EEXIST
			       : -EINVAL;
	case SQLITE_BUSY:
	case SQLITE_LOCKED: return -EBUSY;
	case SQLITE_NOMEM: return -ENOMEM;
	case SQLITE_FULL: return -ENOSPC;
	case SQLITE_READONLY: return -EROFS;
	case SQLITE_PERM:
	case SQLITE_AUTH: return -EPERM;
	case SQLITE_TOOBIG: return -E2BIG;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB: return -EBADMSG;
	case SQLITE_CANTOPEN:
		if (rc == SQLITE_CANTOPEN_SYMLINK)
			return -ELOOP;
		return sys > 0 ? -sys : -EIO;
	case SQLITE_IOERR: return sys > 0 ? -sys : -EIO;
	default: return -EIO;
	}
}

/* Log an SQLite failure with the library's own message and the errno behind
 * it ("unable to open database file" alone does not say "out of fds");
 * returns -errno. */
#define store_fail(s, rc, fmt, ...)                                                                \
	log_errno(store_errno((s)->db, (rc)), "store %s: " fmt ": %s (%m)", (s)->path,             \
		  ##__VA_ARGS__, sqlite3_errmsg((s)->db))

static void stmt_resetp(sqlite3_stmt **p)
{
	if (*p) {
		sqlite3_reset(*p);
		sqlite3_clear_bindings(*p);
	}
}
#define _cleanup_stmt_ _cleanup_(stmt_resetp)

static int store_prepare(Store *s, StoreQuery q, sqlite3_stmt **ret)
{
	if (!s->stmts[q]) {
		int rc = sqlite3_prepare_v3(s->db, store_sql[q], -1, SQLITE_PREPARE_PERSISTENT,
					    &s->stmts[q], NULL);
		if (rc != SQLITE_OK)
			return store_fail(s, rc, "prepare query %d", (int)q);
	}
	*ret = s->stmts[q];
	return 0;
}

/* Bind helpers: text is SQLITE_STATIC because every statement is reset
 * before the caller's strings go away. NULL binds SQL NULL. */
static int bind_text(sqlite3_stmt *st, int i, const char *v)
{
	return sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
}

static int bind_texts(sqlite3_stmt *st, int first, const char *const *v, size_t n)
{
	int rc = SQLITE_OK;
	for (size_t i = 0; i < n && rc == SQLITE_OK; i++)
		rc = bind_text(st, first + (int)i, v[i]);
	return rc;
}

static int store_exec(Store *s, const char *sql, const char *what)
{
	char *err = NULL;
	int rc = sqlite3_exec(s->db, sql, NULL, NULL, &err);
	if (rc != SQLITE_OK) {
		int r = log_errno(store_errno(s->db, rc), "store %s: %s: %s", s->path, what,
				  err ? err : sqlite3_errstr(rc));
		sqlite3_free(err);
		return r;
	}
	return 0;
}

/* Run a statement that returns one integer row (PRAGMA user_version …). */
static int store_query_int(Store *s, const char *sql, int64_t *ret)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		int r = store_fail(s, rc, "%s", sql);
		sqlite3_finalize(st);
		return r;
	}
	*ret = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return 0;
}

static int store_check_version(Store *s, int64_t v)
{
	if (v > STORE_SCHEMA_VERSION)
		return log_errno(-EPROTO,
				 "store %s: schema version %lld is newer than this banger knows "
				 "(%d); refusing to open it rather than downgrade — run a newer "
				 "bangerd or restore a backup",
				 s->path, (long long)v, STORE_SCHEMA_VERSION);
	if (v < 0)
		return log_errno(-EBADMSG, "store %s: negative schema version %lld", s->path,
				 (long long)v);
	return 0;
}

/* Apply every pending migration and the new user_version in one IMMEDIATE
 * transaction, re-reading the version under the write lock. */
static int store_migrate(Store *s)
{
	int64_t v = 0;
	int r = store_exec(s, "BEGIN IMMEDIATE", "begin migration");
	if (r < 0)
		return r;
	r = store_query_int(s, "PRAGMA user_version", &v);
	if (r >= 0)
		r = store_check_version(s, v);
	for (int i = (int)v; r >= 0 && i < STORE_SCHEMA_VERSION; i++) {
		_cleanup_free_ char *what = xasprintf("migration %d -> %d", i, i + 1);
		r = store_exec(s, store_migrations[i], what);
	}
	if (r >= 0 && v < STORE_SCHEMA_VERSION) {
		/* A PRAGMA cannot take a bound parameter; this is our own constant. */
		_cleanup_free_ char *sql =
			xasprintf("PRAGMA user_version = %d", STORE_SCHEMA_VERSION);
		r = store_exec(s, sql, "set user_version");
	}
	if (r < 0) {
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		return r;
	}
	r = store_exec(s, "COMMIT", "commit migration");
	if (r >= 0 && v < STORE_SCHEMA_VERSION)
		log_info("store %s: schema migrated from version %lld to %d", s->path, (long long)v,
			 STORE_SCHEMA_VERSION);
	return r;
}

static int store_configure(Store *s)
{
	int64_t v = 0;
	sqlite3_extended_result_codes(s->db, 1);
	sqlite3_busy_timeout(s->db, STORE_BUSY_TIMEOUT_MS);
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);

	/* Check the version before changing anything in a newer database. */
	int r = store_query_int(s, "PRAGMA user_version", &v);
	if (r >= 0)
		r = store_check_version(s, v);
	if (r < 0)
		return r;

	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode=WAL", -1, &st, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	bool wal = rc == SQLITE_ROW && streq_ptr((const char *)sqlite3_column_text(st, 0), "wal");
	if (rc != SQLITE_ROW)
		r = store_fail(s, rc, "set journal_mode=WAL");
	else if (!wal)
		r = log_errno(-ENOTSUP, "store %s: journal_mode=WAL refused (got %s)", s->path,
			      sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	if (r < 0)
		return r;

	r = store_exec(s, "PRAGMA synchronous=FULL", "set synchronous=FULL");
	if (r >= 0)
		r = store_exec(s, "PRAGMA foreign_keys=ON", "enable foreign_keys");
	return r;
}

/* Rows inserted before short ids were checked may share one: their VMs
 * share a tap, socket and dm name and take each other's objects. Said
 * loudly at open (fixing it means deleting and re-adding one of the VMs). */
static int store_warn_short_id_collisions(Store *s)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(s->db,
				    "SELECT substr(uid, 1, 8), group_concat(name, ', ') FROM vms "
				    "GROUP BY substr(uid, 1, 8) HAVING count(*) > 1",
				    -1, &st, NULL);
	while (rc == SQLITE_OK) {
		rc = sqlite3_step(st);
		if (rc != SQLITE_ROW)
			break;
		log_warn("store %s: VMs %s share the short id %s (tap, socket and dm names): "
			 "delete and re-add all but one of them",
			 s->path, (const char *)sqlite3_column_text(st, 1),
			 (const char *)sqlite3_column_text(st, 0));
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return store_fail(s, rc, "look for shared short ids");
	return 0;
}

/* Load meta 'instance' into s->instance and check its shape: every host
 * object name it goes into (tap alias, nft table, dm uuid) relies on it being
 * exactly 16 lower-case hex digits. */
static int store_read_instance(Store *s)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(s->db, "SELECT value FROM meta WHERE key = 'instance'", -1, &st,
				    NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *v = (const char *)sqlite3_column_text(st, 0);
		if (v && strlen(v) == STORE_INSTANCE_LEN &&
		    strspn(v, "0123456789abcdef") == STORE_INSTANCE_LEN)
			s->instance = xstrdup(v);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store_fail(s, rc, "read the instance id");
	if (!s->instance)
		return log_errno(-EBADMSG,
				 "store %s: meta 'instance' is missing or not %d hex digits",
				 s->path, STORE_INSTANCE_LEN);
	return 0;
}

const char *store_instance_id(Store *s)
{
	return s->instance;
}

int store_open(const char *path, Store **ret)
{
	Store *s = xcalloc(1, sizeof(*s));
	s->path = xstrdup(path);

	int rc = sqlite3_open_v2(path, &s->db,
				 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOFOLLOW |
					 SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
				 NULL);
	int r = 0;
	if (rc == SQLITE_CANTOPEN_SYMLINK)
		r = log_errno(-ELOOP, "store %s: refusing to open a database through a symlink",
			      path);
	else if (rc != SQLITE_OK)
		r = store_fail(s, rc, "open");
	if (r >= 0)
		r = store_configure(s);
	if (r >= 0)
		r = store_migrate(s);
	if (r >= 0)
		r = store_warn_short_id_collisions(s);
	if (r >= 0)
		r = store_read_instance(s);
	if (r < 0) {
		store_close(s);
		return r;
	}
	*ret = s;
	return 0;
}

int store_open_readonly(const char *path, Store **ret)
{
	Store *s = xcalloc(1, sizeof(*s));
	int64_t v = 0;
	int r = 0;
	s->path = xstrdup(path);
	int rc = sqlite3_open_v2(path, &s->db,
				 SQLITE_OPEN_READONLY | SQLITE_OPEN_NOFOLLOW | SQLITE_OPEN_NOMUTEX |
					 SQLITE_OPEN_EXRESCODE,
				 NULL);
	if (rc != SQLITE_OK)
		r = store_errno(s->db, rc);
	if (r >= 0) {
		sqlite3_busy_timeout(s->db, STORE_BUSY_TIMEOUT_MS);
		r = store_query_int(s, "PRAGMA user_version", &v);
	}
	/* A reader must not guess at another schema. */
	if (r >= 0 && v != STORE_SCHEMA_VERSION)
		r = -EPROTO;
	if (r < 0) {
		store_close(s);
		return r;
	}
	*ret = s;
	return 0;
}

void store_close(Store *s)
{
	if (!s)
		return;
	for (int i = 0; i < _Q_MAX; i++)
		sqlite3_finalize(s->stmts[i]);
	if (s->db && sqlite3_get_autocommit(s->db) == 0) {
		log_warn("store %s: closing with an open transaction; rolling it back", s->path);
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	}
	int rc = sqlite3_close(s->db);
	if (rc != SQLITE_OK)
		log_errno(store_errno(s->db, rc), "store %s: close: %s", s->path,
			  sqlite3_errstr(rc));
	free(s->path);
	free(s->instance);
	free(s);
}

int store_begin(Store *s)
{
	if (!sqlite3_get_autocommit(s->db))
		return log_errno(-EBUSY, "store %s: begin: a transaction is already open", s->path);
	return store_exec(s, "BEGIN IMMEDIATE", "begin");
}

int store_commit(Store *s)
{
	if (sqlite3_get_autocommit(s->db))
		return log_errno(-EINVAL, "store %s: commit: no transaction is open", s->path);
	int r = store_exec(s, "COMMIT", "commit");
	/* SQLite rolls back by itself on some errors (SQLITE_FULL, IOERR) and
	 * leaves the transaction open on others (BUSY): either way the caller
	 * is told none of it was stored, so none of it may stay pending. */
	if (r < 0 && !sqlite3_get_autocommit(s->db) &&
	    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK)
		log_warn("store %s: rollback after a failed commit: %s", s->path,
			 sqlite3_errmsg(s->db));
	return r;
}

int store_rollback(Store *s)
{
	if (sqlite3_get_autocommit(s->db))
		return log_errno(-EINVAL, "store %s: rollback: no transaction is open", s->path);
	return store_exec(s, "ROLLBACK", "rollback");
}

void vm_record_free(VmRecord *r)
{
	if (!r)
		return;
	free(r->name);
	free(r->uid);
	free(r->source_file);
	free(r->spec_json);
	free(r->spec_hash);
	free(r->guest_ip);
	free(r->vm_dir);
	free(r->api_sock);
	free(r->log_path);
	free(r->last_error);
	free(r);
}

void vm_record_list_free(VmRecord **v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		vm_record_free(v[i]);
	free(v);
}

static int state_from_db(const unsigned char *t)
{
	for (int i = 0; i < _VM_STATE_MAX; i++)
		if (t && streq((const char *)t, store_state_names[i]))
			return i;
	return -EBADMSG;
}

static char *col_strdup(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	return t ? xstrdup((const char *)t) : NULL;
}

/* Build a VmRecord from a row of VM_COLUMNS. */
static int vm_record_from_row(Store *s, sqlite3_stmt *st, VmRecord **ret)
{
	int state = state_from_db(sqlite3_column_text(st, 7));
	if (state < 0)
		return log_errno(state, "store %s: vm %s: bad desired_state '%s'", s->path,
				 sqlite3_column_text(st, 1), sqlite3_column_text(st, 7));
	VmRecord *r = xcalloc(1, sizeof(*r));
	r->id = sqlite3_column_int64(st, 0);
	r->name = col_strdup(st, 1);
	r->uid = col_strdup(st, 2);
	r->source_file = col_strdup(st, 3);
	r->spec_json = col_strdup(st, 4);
	r->spec_hash = col_strdup(st, 5);
	r->generation = sqlite3_column_int64(st, 6);
	r->desired_state = state;
	r->guest_ip = col_strdup(st, 8);
	r->vm_dir = col_strdup(st, 9);
	r->api_sock = col_strdup(st, 10);
	r->log_path = col_strdup(st, 11);
	r->last_error = col_strdup(st, 12);
	r->observed_generation = sqlite3_column_int64(st, 13);
	r->restart_count = sqlite3_column_int64(st, 14);
	r->created_at_ms = sqlite3_column_int64(st, 15);
	r->updated_at_ms = sqlite3_column_int64(st, 16);
	r->deleted = sqlite3_column_type(st, 17) != SQLITE_NULL;
	r->vmm_uid = (uint32_t)sqlite3_column_int64(st, 18);
	*ret = r;
	return 0;
}

int store_get_vm(Store *s, const char *name, VmRecord **ret)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = store_prepare(s, Q_GET_VM, &st);
	if (r < 0)
		return r;
	int rc = bind_text(st, 1, name);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		return log_debug_errno(-ENOENT, "store %s: vm %s: not found", s->path, name);
	if (rc != SQLITE_ROW)
		return store_fail(s, rc, "vm %s: read", name);
	return vm_record_from_row(s, st, ret);
}

int store_list_vms(Store *s, VmRecord ***ret, size_t *ret_n)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	VmRecord **v = NULL;
	size_t n = 0;
	int rc, r = store_prepare(s, Q_LIST_VMS, &st);
	if (r < 0)
		return r;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		v = xrealloc(v, (n + 1) * sizeof(*v));
		r = vm_record_from_row(s, st, &v[n]);
		if (r < 0)
			break;
		n++;
	}
	if (r >= 0 && rc != SQLITE_DONE)
		r = store_fail(s, rc, "list vms");
	if (r < 0) {
		vm_record_list_free(v, n);
		return r;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

int store_list_live_owners(Store *s, char ***ret_names, char ***ret_sources)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	_cleanup_strv_free_ char **names = NULL, **sources = NULL;
	size_t n = 0, cap = 0;
	int rc, r = store_prepare(s, Q_LIST_LIVE_OWNERS, &st);
	if (r < 0)
		return r;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n + 1 >= cap) { /* geometric: strv_push is O(n) per call */
			cap = cap ? cap * 2 : 64;
			names = xrealloc(names, cap * sizeof(char *));
			sources = xrealloc(sources, cap * sizeof(char *));
		}
		names[n] = col_strdup(st, 0);
		sources[n++] = col_strdup(st, 1);
		names[n] = sources[n] = NULL;
	}
	if (rc != SQLITE_DONE)
		return store_fail(s, rc, "list live owners");
	*ret_names = names ? TAKE_PTR(names) : xcalloc(1, sizeof(char *));
	*ret_sources = sources ? TAKE_PTR(sources) : xcalloc(1, sizeof(char *));
	return 0;
}

/* 128 random bits as 32 lower-case hex digits. */
static int store_random_uid(char out[33])
{
	uint8_t b[16];
	size_t got = 0;
	while (got < sizeof(b)) {
		ssize_t k = getrandom(b + got, sizeof(b) - got, 0);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return log_errno(-errno, "store: getrandom for a VM uid: %m");
		}
		got += (size_t)k;
	}
	for (size_t i = 0; i < sizeof(b); i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
	return 0;
}

static StoreUidSource store_uid_source = store_random_uid;

void store_set_uid_source(StoreUidSource fn)
{
	store_uid_source = fn ? fn : store_random_uid;
}

/* 1 when a row's uid starts with the 8 hex digits of uid, 0 when not. */
static int store_short_id_taken(Store *s, const char *uid)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	char sid[9];
	int rc, r = store_prepare(s, Q_SHORT_ID_TAKEN, &st);
	if (r < 0)
		return r;
	memcpy(sid, uid, 8);
	sid[8] = 0;
	rc = sqlite3_bind_text(st, 1, sid, 8, SQLITE_TRANSIENT);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc != SQLITE_DONE)
		return store_fail(s, rc, "short id %s: look up", sid);
	return 0;
}

/* A new uid whose short id no row has: the tap, socket and dm names derive
 * from it, and two VMs sharing them would take each other's objects. With
 * 10,000 VMs a random short id collides ~1 % of the time: draw again. */
static int store_new_uid(Store *s, const char *name, char out[33])
{
	for (int attempt = 0; attempt < STORE_UID_ATTEMPTS; attempt++) {
		int r = store_uid_source(out);
		if (r < 0)
			return r;
		if (strlen(out) != 32 || out[strspn(out, "0123456789abcdef")] != 0)
			return log_errno(-EINVAL, "store: vm %s: uid source gave '%s'", name, out);
		r = store_short_id_taken(s, out);
		if (r <= 0)
			return r;
		log_info("vm %s: short id %.8s of a new uid is taken; drawing another", name, out);
	}
	return log_errno(-EEXIST, "store: vm %s: no unused short id in %d draws", name,
			 STORE_UID_ATTEMPTS);
}

static int store_insert_vm(Store *s, const char *name, const char *source_file,
			   const char *spec_json, const char *spec_hash, VmDesiredState state)
{
	char uid[33];
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = store_new_uid(s, name, uid);
	if (r >= 0)
		r = store_prepare(s, Q_INSERT, &st);
	if (r < 0)
		return r;
	const char *v[] = {
		name, uid, source_file, spec_json, spec_hash, store_state_names[state]
	};
	int rc = bind_texts(st, 1, v, ELEMENTSOF(v));
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(st, 7, time_now_realtime_ms());
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		return store_fail(s, rc, "vm %s: insert", name);
	return STORE_UPSERT_CREATED;
}

/* Run a prepared UPDATE/DELETE to completion. */
static int store_step_done(Store *s, sqlite3_stmt *st, int rc, const char *name, const char *what)
{
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		return store_fail(s, rc, "vm %s: %s", name, what);
	return 0;
}

static int store_update_spec(Store *s, int64_t id, const char *name, const char *source_file,
			     const char *spec_json, const char *spec_hash, VmDesiredState state)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = store_prepare(s, Q_UPDATE_SPEC, &st);
	if (r < 0)
		return r;
	const char *v[] = { source_file, spec_json, spec_hash, store_state_names[state] };
	int rc = bind_texts(st, 1, v, ELEMENTSOF(v));
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(st, 5, time_now_realtime_ms());
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(st, 6, id);
	r = store_step_done(s, st, rc, name, "update spec");
	return r < 0 ? r : STORE_UPSERT_UPDATED;
}

static int store_move(Store *s, int64_t id, const char *name, const char *source_file)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = store_prepare(s, Q_MOVE, &st);
	if (r < 0)
		return r;
	int rc = bind_text(st, 1, source_file);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(st, 2, time_now_realtime_ms());
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(st, 3, id);
	r = store_step_done(s, st, rc, name, "record new source file");
	return r < 0 ? r : STORE_UPSERT_MOVED;
}

/* What the row for a name holds now, as far as upsert cares. */
typedef struct {
	int64_t id, generation;
	bool same_hash, same_source, same_state, deleted;
} UpsertLookup;

/* 1 with *ret filled when the row exists, 0 when absent. */
static int store_upsert_lookup(Store *s, const char *name, const char *source_file,
			       const char *spec_hash, VmDesiredState state, UpsertLookup *ret)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = store_prepare(s, Q_LOOKUP, &st);
	if (r < 0)
		return r;
	int rc = bind_text(st, 1, name);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		return 0;
	if (rc != SQLITE_ROW)
		return store_fail(s, rc, "vm %s: look up", name);
	*ret = (UpsertLookup){
		.id = sqlite3_column_int64(st, 0),
		.same_source = streq_ptr((const char *)sqlite3_column_text(st, 1), source_file),
		.same_hash = streq_ptr((const char *)sqlite3_column_text(st, 2), spec_hash),
		.generation = sqlite3_column_int64(st, 3),
		.same_state = state_from_db(sqlite3_column_text(st, 4)) == (int)state,
		.deleted = sqlite3_column_int(st, 5) != 0,
	};
	return 1;
}

int store_upsert_vm_raw(Store *s, const char *name, const char *source_file, const char *spec_json,
			const char *spec_hash, VmDesiredState st, int64_t *ret_generation)
{
	UpsertLookup cur = { 0 };
	int r;

	if (!name || !*name || !source_file || !spec_json || !spec_hash || (int)st < 0 ||
	    st >= _VM_STATE_MAX)
		return log_errno(-EINVAL, "store %s: upsert vm %s: missing field", s->path,
				 name ? name : "(null)");
	r = store_upsert_lookup(s, name, source_file, spec_hash, st, &cur);
	if (r < 0)
		return r;
	if (r == 0) {
		r = store_insert_vm(s, name, source_file, spec_json, spec_hash, st);
		cur.generation = 1;
	} else if (!cur.same_hash || cur.deleted) {
		/* A deleted VM that comes back is a new intent: new generation. */
		r = store_update_spec(s, cur.id, name, source_file, spec_json, spec_hash, st);
		cur.generation++;
	} else if (!cur.same_state)
		r = log_errno(-EINVAL, "store %s: vm %s: same spec hash but a different state",
			      s->path, name);
	else if (!cur.same_source)
		r = store_move(s, cur.id, name, source_file);
	else
		r = STORE_UPSERT_UNCHANGED;
	if (r >= 0 && ret_generation)
		*ret_generation = cur.generation;
	return r;
}

static int store_exists(Store *s, const char *name)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = store_prepare(s, Q_EXISTS, &st);
	if (r < 0)
		return r;
	int rc = bind_text(st, 1, name);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	return store_fail(s, rc, "vm %s: look up", name);
}

int store_mark_deleted(Store *s, const char *name)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = store_prepare(s, Q_MARK_DELETED, &st);
	if (r < 0)
		return r;
	int rc = sqlite3_bind_int64(st, 1, time_now_realtime_ms());
	if (rc == SQLITE_OK)
		rc = bind_text(st, 2, name);
	r = store_step_done(s, st, rc, name, "mark deleted");
	if (r < 0)
		return r;
	if (sqlite3_changes(s->db) > 0)
		return 1;
	r = store_exists(s, name);
	return r == 0 ? -ENOENT : r < 0 ? r : 0;
}

int store_delete_vm(Store *s, const char *name)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = store_prepare(s, Q_DELETE, &st);
	if (r < 0)
		return r;
	r = store_step_done(s, st, bind_text(st, 1, name), name, "delete");
	if (r < 0)
		return r;
	if (sqlite3_changes(s->db) == 0)
		return log_debug_errno(-ENOENT, "store %s: delete vm %s: not found", s->path, name);
	return 0;
}

/* Finish a setter whose values are bound at ?1..?nvals: bind updated_at_ms and
 * name after them, run it, and tell "unchanged" from "no such VM". */
static int store_finish_set(Store *s, sqlite3_stmt *st, int rc, int nvals, const char *name,
			    const char *what)
{
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(st, nvals + 1, time_now_realtime_ms());
	if (rc == SQLITE_OK)
		rc = bind_text(st, nvals + 2, name);
	int r = store_step_done(s, st, rc, name, what);
	if (r < 0)
		return r;
	if (sqlite3_changes(s->db) > 0)
		return 1;
	r = store_exists(s, name);
	if (r == 0)
		return log_debug_errno(-ENOENT, "store %s: %s for vm %s: not found", s->path, what,
				       name);
	return r < 0 ? r : 0;
}

static int store_set_text(Store *s, StoreQuery q, const char *name, const char *value,
			  const char *what)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = store_prepare(s, q, &st);
	if (r < 0)
		return r;
	return store_finish_set(s, st, bind_text(st, 1, value), 1, name, what);
}

static int store_set_int(Store *s, StoreQuery q, const char *name, int64_t value, const char *what)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	if (value < 0)
		return log_errno(-EINVAL, "store %s: vm %s: %s must not be negative (%lld)",
				 s->path, name, what, (long long)value);
	int r = store_prepare(s, q, &st);
	if (r < 0)
		return r;
	return store_finish_set(s, st, sqlite3_bind_int64(st, 1, value), 1, name, what);
}

int store_set_guest_ip(Store *s, const char *name, const char *ip)
{
	if (ip && !*ip)
		return log_errno(-EINVAL, "store %s: vm %s: empty guest ip (use NULL to clear)",
				 s->path, name);
	_cleanup_free_ char *what = xasprintf("set guest ip %s", ip ? ip : "(none)");
	return store_set_text(s, Q_SET_GUEST_IP, name, ip, what);
}

int store_set_paths(Store *s, const char *name, const char *vm_dir, const char *api_sock,
		    const char *log_path)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = store_prepare(s, Q_SET_PATHS, &st);
	if (r < 0)
		return r;
	const char *v[] = { vm_dir, api_sock, log_path };
	return store_finish_set(s, st, bind_texts(st, 1, v, ELEMENTSOF(v)), 3, name, "set paths");
}

int store_set_last_error(Store *s, const char *name, const char *err)
{
	return store_set_text(s, Q_SET_LAST_ERROR, name, err, "set last error");
}

int store_set_observed_generation(Store *s, const char *name, int64_t gen)
{
	return store_set_int(s, Q_SET_OBSERVED_GEN, name, gen, "observed generation");
}

int store_set_restart_count(Store *s, const char *name, int64_t n)
{
	return store_set_int(s, Q_SET_RESTART_COUNT, name, n, "restart count");
}

int store_list_guest_ips(Store *s, char ***ret_strv)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	_cleanup_strv_free_ char **v = xcalloc(1, sizeof(char *));
	int rc, r = store_prepare(s, Q_LIST_GUEST_IPS, &st);
	if (r < 0)
		return r;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		strv_push(&v, col_strdup(st, 0));
	if (rc != SQLITE_DONE)
		return store_fail(s, rc, "list guest ips");
	*ret_strv = TAKE_PTR(v);
	return 0;
}

int store_set_vmm_uid(Store *s, const char *name, uint32_t uid)
{
	if (uid == 0 || uid == UINT32_MAX)
		return log_errno(-EINVAL, "store %s: vm %s: vmm uid %u is not allowed", s->path,
				 name, uid);
	_cleanup_free_ char *what = xasprintf("set vmm uid %u", uid);
	return store_set_int(s, Q_SET_VMM_UID, name, uid, what);
}

int store_list_vmm_uids(Store *s, uint32_t **ret, size_t *ret_n)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	_cleanup_free_ uint32_t *v = NULL;
	size_t n = 0, cap = 0;
	int rc, r = store_prepare(s, Q_LIST_VMM_UIDS, &st);
	if (r < 0)
		return r;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			v = xrealloc(v, cap * sizeof(*v));
		}
		v[n++] = (uint32_t)sqlite3_column_int64(st, 0);
	}
	if (rc != SQLITE_DONE)
		return store_fail(s, rc, "list vmm uids");
	*ret = TAKE_PTR(v);
	*ret_n = n;
	return 0;
}
