/* sync.h — from spec files on disk to intent in the store.
 *
 * SpecSync owns the in-memory index of the spec directory: for every
 * candidate file its fingerprint (dev, inode, size, mtime, ctime) and the
 * names it defines, and for every name the file that owns it plus what is
 * wrong with it (invalid document, names claimed by a second file). The
 * store holds only valid intent; this index holds everything derived from
 * the files, so it is rebuilt by a full sync at start.
 *
 * Rules (docs/architecture.md):
 *  - A file is re-parsed only when its fingerprint changed.
 *  - A valid document upserts its VM (generation + 1 only when the canonical
 *    spec changed). An invalid document keeps the last good intent and
 *    records the error for status.
 *  - A name defined in two files: the first owner keeps it; the other file's
 *    claim is recorded as a conflict naming the owner. When the owner stops
 *    defining the name (file edited, moved or removed) the next claimant
 *    takes over.
 *  - A file that cannot be read as a whole (syntax error, too big, bad
 *    encoding) keeps the intent of every name it defined before.
 *  - A name no file defines any more has its intent deleted from the store.
 *  - A file whose intent the store did not take (the upsert or the batch's
 *    COMMIT failed: disk full, I/O error) is not recorded as seen: the next
 *    sync (event, periodic resync, SIGHUP) parses and applies it again.
 * Every name whose intent or spec condition may have changed is reported
 * through the `changed` callback so the caller can requeue it. */
#pragma once

#include "store/store.h"
#include "util/util.h"

typedef struct SpecSync SpecSync;

typedef void (*SpecSyncChanged)(void *userdata, const char *name);

/* spec_dir may be a symlink (git-sync swaps it); it is re-resolved on every
 * full sync. Documents whose spec.node names another node are treated as
 * absent: they belong to another controller. */
int spec_sync_new(const char *spec_dir, const char *node_name, Store *store,
		  SpecSyncChanged changed, void *userdata, SpecSync **ret);
void spec_sync_free(SpecSync *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(SpecSync *, spec_sync_free)

/* Users besides root whose spec files and directories are trusted
 * (--spec-owner); the rule is util/trust.h's. A file or directory that fails
 * it is never read: the names it defined keep their last good intent and
 * report it as their spec_error, and a log line says why. */
void spec_sync_set_owners(SpecSync *s, const uid_t *owners, size_t n);

/* Walk the whole tree; re-parse what changed; drop what vanished; delete
 * intent no file defines. Store writes are batched in one transaction.
 * First re-checks the spec dir and its parents (trust_check_dir_path); when
 * they fail, or the tree cannot be listed whole (out of fds), nothing
 * changes and -errno is returned. Skipped entries (symlinks, FIFOs, too
 * deep) are logged once each. */
int spec_sync_full(SpecSync *s);

/* Re-examine one file, path relative to the spec dir (from the watcher).
 * A missing file releases its names. */
int spec_sync_file(SpecSync *s, const char *rel);

/* A caller that wraps several spec_sync_file() calls in its own store
 * transaction (bangerd's event batches) brackets them with these; r is the
 * transaction's result. When its COMMIT failed (r < 0), every file parsed in
 * the batch is marked unstored, so the next sync of it parses and applies it
 * again, and the names they own carry "store: <error>" as their spec error
 * until then (changed is called for them); names released in the batch need
 * a full sync (drop_unbacked_intent) to be deleted again. */
void spec_sync_begin_batch(SpecSync *s);
void spec_sync_end_batch(SpecSync *s, int r);

/* True when rel is a file the index knows (it defined something). */
bool spec_sync_knows_file(SpecSync *s, const char *rel);

/* What the files say about a name, for status. NULL spec_error: the owner's
 * document is valid. */
typedef struct {
	const char *owner;      /* relative path of the owning file */
	const char *spec_error; /* diagnostics for the owner's document, or NULL */
	const char *conflict;   /* "b.yaml also defines web-1; ignored (owned by a.yaml)" or NULL */
} SpecNameInfo;

/* false when no file defines the name. */
bool spec_sync_name_info(SpecSync *s, const char *name, SpecNameInfo *ret);

/* Absolute path as shown to users: <spec-dir>/<rel>. Caller frees. */
char *spec_sync_display_path(SpecSync *s, const char *rel);

/* Counters, for logs and benchmarks. */
typedef struct {
	uint64_t files_seen, files_parsed, upserts, deletes;
} SpecSyncStats;
void spec_sync_stats(SpecSync *s, SpecSyncStats *ret);
/* How many names have an invalid document right now (for metrics). */
size_t spec_sync_error_count(SpecSync *s);
