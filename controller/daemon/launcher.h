/* launcher.h — VMM launches on worker threads, at most `max` at once.
 *
 * The blocking part of a start (runtime/vm.h: vm_launch_run — spawn, wait
 * for the API socket or QMP, Firecracker's boot-plan calls) runs on a
 * thread of its own, so the event loop keeps serving every other VM, and N
 * cold starts overlap instead of queueing. Everything else stays on the
 * loop thread: the launcher hands a VmLaunch to a worker and gives it back,
 * finished, through an eventfd the loop polls. It never looks inside one.
 *
 * Not thread-safe itself: every function is called from the loop thread;
 * only the workers' hand-back is synchronised (a mutex-protected list).
 * A VM that must wait for a slot joins a FIFO of names (launcher_wait_slot);
 * the loop invites them one by one as slots free up. */
#pragma once

#include "runtime/vm.h"

typedef struct Launcher Launcher;

/* The eventfd (CLOEXEC, non-blocking) becomes readable when a launch
 * finished; the caller adds it to its epoll set. */
int launcher_new(unsigned max, Launcher **ret);
/* Joins every worker first (bounded: each launch bounds itself); the
 * launches they finished are run through vm_launch_finish(rt) — installed
 * or undone — so nothing is left half made. */
void launcher_free(Launcher *l, Runtime *rt);
int launcher_fd(const Launcher *l);

/* Launches handed out and not yet collected. */
size_t launcher_in_flight(const Launcher *l);
bool launcher_full(const Launcher *l);

/* Run vm_launch_run(launch) on a new worker. The launcher owns the launch
 * until launcher_collect returns it. -EBUSY when full, -errno when no
 * thread could be made (the caller still owns the launch then). */
int launcher_submit(Launcher *l, VmLaunch *launch);

/* The launches that finished since the last call (the workers joined);
 * *ret is a NULL-terminated array the caller frees, each launch to be
 * passed to vm_launch_finish. Returns how many. With wait, blocks until at
 * least one finished (0 at once when none is in flight). */
size_t launcher_collect(Launcher *l, bool wait, VmLaunch ***ret);

/* Slot waiters: names in FIFO order (duplicates are the caller's care). */
void launcher_wait_slot(Launcher *l, const char *name);
/* The longest waiting name (caller frees), NULL when none. */
char *launcher_next_waiter(Launcher *l);
