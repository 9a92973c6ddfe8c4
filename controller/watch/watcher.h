/* watcher.h — inotify on the spec directory, fed into the event loop.
 *
 * inotifytools gives us recursive watches and wd→path bookkeeping, but keeps
 * global state and exposes no fd. So the watcher owns one thread that is the
 * only caller of inotifytools; it turns raw events into WatchEvents (paths
 * relative to the spec dir, already filtered with spec_path_is_candidate) on
 * a mutex-protected queue and signals an eventfd that the event loop polls.
 *
 * The thread also watches the spec dir's parent, so a symlinked spec dir
 * that is swapped atomically (git-sync: `ln -s new tmp && mv -T tmp link`)
 * is noticed: it re-creates all watches on the new target and emits
 * WATCH_RESYNC. Directory creations, moves, removals and queue overflows
 * also emit WATCH_RESYNC: the full sync is the authority, events are hints
 * that make it fast. */
#pragma once

#include "util/util.h"

typedef enum {
	WATCH_FILE_CHANGED, /* written and closed, moved in, attributes changed */
	WATCH_FILE_GONE,    /* deleted or moved away */
	WATCH_RESYNC,       /* something structural: do a full sync */
} WatchEventKind;

typedef struct {
	WatchEventKind kind;
	char *rel; /* NULL for WATCH_RESYNC */
} WatchEvent;

typedef struct Watcher Watcher;

/* Start watching spec_dir (which must exist). */
int watcher_start(const char *spec_dir, Watcher **ret);
/* Stop the thread and free everything. NULL ok. */
void watcher_stop(Watcher *w);
/* eventfd to poll for readability. */
int watcher_fd(Watcher *w);
/* Drain pending events (resets the eventfd). Caller frees with
 * watch_events_free. */
size_t watcher_drain(Watcher *w, WatchEvent **ret);
void watch_events_free(WatchEvent *v, size_t n);
