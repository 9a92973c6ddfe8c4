/* statuswatch.h — inotify on the status dir: which VMs' status files
 * changed. `banger wait`, `get -w` and `apply/delete --wait` use it, so
 * nothing polls. bangerd replaces status files by rename (IN_MOVED_TO) and
 * removes them by unlink (IN_DELETE); temp files (dot-names) are ignored. */
#pragma once

#include "util/util.h"

typedef struct StatusWatch StatusWatch;

/* Watch status_dir. Open the watch BEFORE reading the statuses it guards,
 * so a change between the read and the first wait is not missed. */
int status_watch_open(const char *status_dir, StatusWatch **ret);
void status_watch_free(StatusWatch *w);
DEFINE_TRIVIAL_CLEANUP_FUNC(StatusWatch *, status_watch_free)
/* Wait up to timeout_ms (-1: forever) for changes. Returns 1 with
 * *ret_names (the VM names whose status file changed, sorted, unique; the
 * caller frees) and *ret_all = true when the kernel's queue overflowed (re-read
 * everything then); 0 on timeout; -EINTR when a signal arrived; -ENOENT when
 * the directory itself went away; other -errno. */
int status_watch_next(StatusWatch *w, int timeout_ms, char ***ret_names, bool *ret_all);
