/* store.h — durable intent in SQLite (<state-dir>/banger.db).
 *
 * One row per VM in table `vms`: what the VM IS (name, uid, source file,
 * canonical spec JSON, spec hash, generation, desired state) plus durable
 * runtime facts that later issues fill (guest IP, VM dir, API socket path,
 * log path, last error, observed generation, restart count). There is no
 * column for PID, tap, loop or dm devices, and there never will be: those
 * are momentary facts kept in the handles cache (runtime/handles.h).
 *
 * The database uses WAL and versioned migrations (PRAGMA user_version).
 * Not thread-safe: the daemon's event loop owns the Store. */
#pragma once

#include "spec/spec.h"
#include "util/util.h"

typedef struct Store Store;

typedef struct {
	int64_t id;
	char *name;
	char *uid;         /* random, fixed at first insert; short id = first 8 hex chars, unique */
	char *source_file; /* path of the owning spec file, relative to the spec dir */
	char *spec_json;   /* canonical JSON (spec/spec.h) */
	char *spec_hash;   /* sha256 hex of spec_json */
	int64_t generation; /* 1 at insert, +1 each time spec_hash changes */
	VmDesiredState desired_state;
	/* durable runtime facts; NULL/0 when not yet known */
	char *guest_ip;
	char *vm_dir;
	char *api_sock;
	char *log_path;
	char *last_error;
	int64_t observed_generation;
	int64_t restart_count;
	int64_t created_at_ms, updated_at_ms;
	/* No spec file defines the VM any more; reconcile tears it down and
	 * then removes the row. An upsert of the same name revives it with a
	 * new generation. */
	bool deleted;
	/* uid (= gid) of the VM's VMM, from --vmm-uid-range; 0 until the first
	 * start. Unique among rows; freed when the row is removed. */
	uint32_t vmm_uid;
} VmRecord;

void vm_record_free(VmRecord *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(VmRecord *, vm_record_free)
void vm_record_list_free(VmRecord **v, size_t n);

/* Open (creating if needed) and migrate. A symlink in ANY component of path
 * is refused with -ELOOP (SQLITE_OPEN_NOFOLLOW checks every component), so
 * pass realpath(state dir)/banger.db. The SQLite fds are O_CLOEXEC. -EPROTO when the file
 * was written by a newer banger (its user_version is above ours): we never
 * downgrade. -EBADMSG when path is not a SQLite database. */
int store_open(const char *path, Store **ret);
/* The schema version this build migrates to (tests compare against it). */
int store_schema_version(void);
/* Open for reading only (the CLI): no creation, no migration; -EPROTO when
 * the schema is not exactly the one this build knows. */
int store_open_readonly(const char *path, Store **ret);
void store_close(Store *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Store *, store_close)

/* This controller instance's tag: 16 lower-case hex digits, made at random
 * with the database (table meta, key 'instance') and never changed, so it
 * belongs to the state dir. Every host object bangerd makes carries it (tap
 * alias, nft table name, dm uuid, cgroup path) and orphan sweeps touch only
 * objects carrying it. Never NULL for a Store from store_open(); the string
 * lives as long as the Store. */
#define STORE_INSTANCE_LEN 16
const char *store_instance_id(Store *s);

/* Group many writes in one transaction (cold sync): one fsync at commit covers
 * every row. Nesting is not allowed (-EBUSY); commit/rollback without an open
 * transaction is -EINVAL. A failed commit (disk full, I/O error) rolls the
 * transaction back: none of its writes are stored, and callers that cached
 * what they wrote must forget it (sync/ retries those files). */
int store_begin(Store *s);
int store_commit(Store *s);
int store_rollback(Store *s);

typedef enum {
	STORE_UPSERT_UNCHANGED, /* same hash and source: nothing written */
	STORE_UPSERT_CREATED,
	STORE_UPSERT_UPDATED, /* spec changed: generation + 1 */
	STORE_UPSERT_MOVED,   /* same spec, source file changed */
} StoreUpsertResult;

/* Insert or update the intent for spec->name owned by source_file. The
 * caller has already decided ownership. Returns a StoreUpsertResult >= 0. */
int store_upsert_vm(Store *s, const VmSpec *spec, const char *source_file, int64_t *ret_generation);
/* The same with the spec already serialized (store_spec.c is the wrapper):
 * spec_hash must be the sha256 hex of spec_json, and st the state that JSON
 * says. Same hash but a different st is a caller bug: -EINVAL. */
int store_upsert_vm_raw(Store *s, const char *name, const char *source_file, const char *spec_json,
			const char *spec_hash, VmDesiredState st, int64_t *ret_generation);

int store_get_vm(Store *s, const char *name, VmRecord **ret); /* -ENOENT */
/* All rows ordered by name. */
int store_list_vms(Store *s, VmRecord ***ret, size_t *ret_n);
/* Name and source_file of every row not marked deleted, in no particular
 * order, as two parallel NULL-terminated strvs of equal length (never NULL on
 * success; the caller frees both). Reads two columns instead of whole
 * records: every full resync calls it for every VM. */
int store_list_live_owners(Store *s, char ***ret_names, char ***ret_sources);
int store_delete_vm(Store *s, const char *name); /* -ENOENT when absent */
/* Record that the intent is gone (teardown pending). 1 when marked, 0 when
 * already marked, -ENOENT when absent. */
int store_mark_deleted(Store *s, const char *name);

/* Durable runtime facts. NULL clears a text field. Each returns 1 when the
 * row changed, 0 when it already held these values (nothing written),
 * -ENOENT for an unknown name. store_set_guest_ip: -EEXIST when another VM
 * holds ip (nothing changes). */
int store_set_guest_ip(Store *s, const char *name, const char *ip);
int store_set_paths(Store *s, const char *name, const char *vm_dir, const char *api_sock,
		    const char *log_path);
int store_set_last_error(Store *s, const char *name, const char *err);
int store_set_observed_generation(Store *s, const char *name, int64_t gen);
int store_set_restart_count(Store *s, const char *name, int64_t n);
/* Guest IPs in use (for allocation), sorted; an empty strv when none. */
int store_list_guest_ips(Store *s, char ***ret_strv);

/* Where new uids come from: fills out with 32 lower-case hex digits + NUL.
 * The default draws 128 bits from getrandom(); tests set their own to force
 * short-id collisions, NULL restores the default. A new row's uid never
 * shares its short id (first 8 hex digits) with another row: insert draws
 * again (bounded; -EEXIST when every draw collides). */
typedef int (*StoreUidSource)(char out[33]);
void store_set_uid_source(StoreUidSource fn);
/* The VM's VMM uid: 1 changed, 0 unchanged, -EEXIST when another row holds
 * it, -EINVAL for 0 or (uid_t)-1. */
int store_set_vmm_uid(Store *s, const char *name, uint32_t uid);
/* Every VMM uid held by a row, sorted (*ret NULL and *ret_n 0 when none;
 * caller frees *ret). */
int store_list_vmm_uids(Store *s, uint32_t **ret, size_t *ret_n);
