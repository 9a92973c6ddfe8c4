/* staleness.h — is anyone keeping the status files current? `banger get`
 * and `describe` ask before showing status, and warn on stderr.
 *
 * Whether bangerd runs: it holds an flock() on <state-dir>/bangerd.lock
 * (docs/operations.md). We look the lock up in /proc/locks by the file's
 * device and inode instead of trying to take it: a probe that took the lock,
 * even for a moment, could make a bangerd starting at that moment exit with
 * "another bangerd owns the state dir". The lock file also says bangerd's
 * resync period, which bounds how old a status may be (observedAt is
 * refreshed at least once per period). */
#pragma once

#include "cli/cli.h"
#include "status/status.h"

typedef enum {
	DAEMON_UNKNOWN, /* the state dir is not readable by this user */
	DAEMON_RUNNING,
	DAEMON_NOT_RUNNING,
} DaemonState;

typedef struct {
	DaemonState state;
	unsigned resync_s; /* from the lock file; BANGER_DEFAULT_RESYNC_S when unknown */
	bool resync_known;
} DaemonProbe;

void cli_probe_daemon(const char *state_dir, DaemonProbe *ret);
/* Warn (stderr, prefixed by cli_prog) when no bangerd holds the lock, or
 * when any of the n statuses was last confirmed more than two resync periods
 * ago. Statuses without observedAt (Pending entries) are not judged. */
void cli_warn_stale(const CliDirs *dirs, VmStatus *const *v, size_t n);
