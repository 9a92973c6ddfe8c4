/* status.h — VMStatus documents: <status-dir>/<name>.status.json.
 *
 * A VmStatus is what bangerd last observed about one VM, rendered as JSON
 * with a fixed key order so unchanged status renders to identical bytes —
 * the writer compares bytes and only touches the file (atomically and
 * durably) when they differ. The CLI reads the same files back with
 * vm_status_from_json(). docs/status.md is the reference for the format. */
#pragma once

#include "reconcile/phase.h"
#include "util/fileio.h"
#include "util/hashmap.h"
#include "util/util.h"

#include <sys/types.h>

#define STATUS_API_VERSION "banger/v1"
#define STATUS_KIND        "VMStatus"
#define STATUS_SUFFIX      ".status.json"

typedef enum {
	COND_TRUE,
	COND_FALSE,
	COND_UNKNOWN,
	_COND_MAX,
} CondStatus;

typedef struct {
	char *type;
	CondStatus status;
	char *reason;
	char *message;
	int64_t last_transition_ms;
} Condition;

typedef struct {
	char *name;
	char *source_file; /* NULL: unknown */
	char *spec_hash;   /* NULL: no valid spec yet */
	int64_t generation;
	int64_t observed_generation;
	VmPhase phase;
	Condition *conditions;
	size_t n_conditions;
	/* runtime: what is currently true (0/NULL: not running / unknown) */
	pid_t pid;
	char *guest_ip;
	char *tap;
	int64_t started_at_ms;
	int64_t restart_count;
	char *last_error;
	/* When bangerd last wrote or re-confirmed this document (0: never, e.g. a
	 * Pending entry the CLI made up from a spec file). Set by the
	 * StatusWriter, not by whoever builds the status. */
	int64_t observed_at_ms;
} VmStatus;

const char *cond_status_to_string(CondStatus s);

/* <status-dir>/<name>.status.json: the one place status paths are made.
 * Caller frees. */
char *vm_status_path(const char *status_dir, const char *name);
/* The names of every status file in status_dir, sorted (a strv; the caller
 * frees). Hidden, temp and non-DNS-label files are not status. */
int vm_status_list_names(const char *status_dir, char ***ret);
/* The VM name a file in the status dir stands for, or NULL: hidden and
 * temp files and names that are not DNS labels are not status. Caller
 * frees. */
char *vm_status_name_of_file(const char *file_name);

VmStatus *vm_status_new(const char *name);
void vm_status_free(VmStatus *s);
VmStatus *vm_status_dup(const VmStatus *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(VmStatus *, vm_status_free)

/* Set (or add) condition `type`. lastTransitionTime changes only when the
 * status value changes (Kubernetes semantics). */
void vm_status_set_condition(VmStatus *s, const char *type, CondStatus st, const char *reason,
			     const char *message, int64_t now_ms);
const Condition *vm_status_get_condition(const VmStatus *s, const char *type);
/* Carry lastTransitionTime over from prev for conditions whose status is
 * unchanged (prev may be NULL). */
void vm_status_inherit_transitions(VmStatus *s, const VmStatus *prev);

/* Pretty JSON with a stable key order, newline-terminated. Caller frees. */
char *vm_status_to_json(const VmStatus *s);
int vm_status_from_json(const char *json, VmStatus **ret);
/* Read <dir>/<name>.status.json. -ENOENT when absent. */
int vm_status_read(const char *status_dir, const char *name, VmStatus **ret);

/* The writer remembers the bytes it last wrote per name so it can skip
 * unchanged status without reading the file back. */
typedef struct StatusWriter StatusWriter;

int status_writer_new(const char *status_dir, StatusWriter **ret);
void status_writer_free(StatusWriter *w);
DEFINE_TRIVIAL_CLEANUP_FUNC(StatusWriter *, status_writer_free)
/* Batch mode: writes and removals are staged and made durable together by
 * status_writer_flush() (one syncfs, or an fsync each for a few, and one
 * directory fsync; util/fileio.h). bangerd flushes after the SQLite COMMIT
 * of the intent the statuses report. A failed flush returns -errno and
 * reads back from the files what the writer remembers of each staged name,
 * so memory agrees with the disk. */
void status_writer_begin_batch(StatusWriter *w);
int status_writer_flush(StatusWriter *w);
/* End batch mode without touching the disk: nothing staged is written or
 * removed, and what the writer remembers of each staged name is read back
 * from its file, so memory and disk agree again (the intent the statuses
 * would have reported was not committed). No-op outside batch mode. */
void status_writer_discard(StatusWriter *w);
/* Returns 1 when written (or staged) because the content changed, 0 when
 * unchanged, -errno. observedAt is not content: the writer stamps it with
 * the time of the write, and an unchanged status whose observedAt is older
 * than the refresh interval is rewritten (returning 0) to say it was
 * confirmed again. */
int status_writer_write(StatusWriter *w, const VmStatus *s);
/* Refresh interval for observedAt (0, the default: never refresh). bangerd
 * sets half its resync period, so no status is older than 1.5 periods while
 * it runs (docs/status.md, "observedAt"). */
void status_writer_set_refresh(StatusWriter *w, uint64_t interval_ms);
/* Rewrite every status whose observedAt is older than the refresh interval
 * with observedAt = now (the periodic resync calls it inside a batch).
 * Returns how many were rewritten, or -errno of the first failure. */
int status_writer_refresh(StatusWriter *w);
/* Remove <name>.status.json (in batch mode: at the flush). */
int status_writer_remove(StatusWriter *w, const char *name);
/* The last status written for name (owned by the writer), or NULL. It is
 * seeded from the files on disk at start so transition times survive a
 * restart of bangerd. */
const VmStatus *status_writer_last(StatusWriter *w, const char *name);
/* Names that have a status file on disk (seeded at start, kept current). */
char **status_writer_names(StatusWriter *w);
