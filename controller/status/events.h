/* events.h — the event journal: what happened to each VM, for people.
 *
 * bangerd appends one JSON line per significant transition (created,
 * started, ready, exited with its cause, back-off, stopping, killed,
 * stopped, deleted, spec rejected, adopted) to <status-dir>/events.jsonl.
 * Like status it is an observation, not intent: it lives beside the status
 * files, is never read by bangerd, and is not fsynced (a crash may lose the
 * last lines; status and the log stay the authorities).
 *
 * Bounded: when the journal passes its cap it becomes events.jsonl.1
 * (replacing the previous one) and a new journal starts, so at most two caps
 * of history are kept, whatever a flapping VM does. Readers (banger
 * describe, banger events) read .1 then the current file. */
#pragma once

#include "util/util.h"

#include <stdarg.h>
#include <stdint.h>

#define EVENTS_FILE        "events.jsonl"
#define EVENTS_FILE_OLD    "events.jsonl.1"
#define EVENTS_DEFAULT_CAP (1024 * 1024)

typedef struct EventLog EventLog;

/* Open (create) the journal in status_dir. cap_bytes 0: the default. */
int event_log_open(const char *status_dir, size_t cap_bytes, EventLog **ret);
void event_log_free(EventLog *l);
DEFINE_TRIVIAL_CLEANUP_FUNC(EventLog *, event_log_free)

/* Append {"time":…,"vm":name,"type":type,"message":…}. type is a CamelCase
 * word (Started, Exited, ...). A write error is logged once and returned;
 * the caller goes on (events are for people, never a reason to fail). */
int event_log_add(EventLog *l, int64_t time_ms, const char *vm, const char *type, const char *fmt,
		  ...) _printf_(5, 6);

typedef struct {
	int64_t time_ms;
	char *vm;
	char *type;
	char *message;
} VmEvent;

void vm_events_free(VmEvent *v, size_t n);

/* Parse one journal line; -EBADMSG when it is not an event. */
int vm_event_parse(const char *line, VmEvent *ret);

/* Read every event in status_dir (oldest first), only vm's when vm is not
 * NULL. Lines that do not parse (a torn last line) are skipped. */
int event_log_read(const char *status_dir, const char *vm, VmEvent **ret, size_t *ret_n);
