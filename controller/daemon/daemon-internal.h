/* daemon-internal.h — state shared by daemon.c (event loop, sync, signals)
 * and reconciler.c (the per-VM reconcile pass). Not a public interface. */
#pragma once

#include "daemon/console.h"
#include "runtime/suspend.h"

#include "daemon/daemon.h"
#include "daemon/launcher.h"
#include "daemon/metrics.h"
#include "reconcile/decide.h"
#include "runtime/vm.h"
#include "status/events.h"
#include "status/status.h"
#include "store/store.h"
#include "sync/sync.h"
#include "util/hashmap.h"
#include "watch/watcher.h"

typedef struct Daemon Daemon;
typedef struct VmState VmState;

/* What an epoll event points at. */
typedef enum {
	SRC_SIGNAL = 1,
	SRC_WATCH,
	SRC_TIMER,
	SRC_PIDFD,
	SRC_PROBE,
	SRC_CONSOLE,
	SRC_LAUNCH, /* a VMM launch finished on its worker (launcher.h) */
} SourceKind;
typedef struct {
	SourceKind kind;
	VmState *vm; /* SRC_PIDFD / SRC_PROBE */
	void *ptr;   /* SRC_CONSOLE: console.c's endpoint */
} LoopSource;

/* Momentary per-VM controller state: what this controller is in the middle
 * of doing. Rebuilt from scratch after a restart (adoption seeds it). The
 * rules that read and change it live in reconcile/decide.h. */
struct VmState {
	char *name;
	LoopSource pid_src, probe_src;
	int pidfd;
	pid_t watched_pid;
	uint64_t watch_retry_at; /* pidfd_open failed (EMFILE...): try again then */
	int probe_fd;
	uint64_t probe_started, next_probe;
	bool stop_requested;
	uint64_t stop_deadline;
	bool ready;
	uint64_t boot_deadline;
	bool exited, exit_ok, start_failed;
	bool boot_failed;  /* we killed it for a boot timeout: its exit is a failure
			    * already counted, not a stop and not a new crash */
	bool exit_pending; /* the pidfd fired; the next pass classifies the exit */
	ExitFacts exit;    /* ...from these facts (console_panic filled by the pass) */
	char *exit_desc;   /* "VMM (pid N) exited with status S" */
	FailureBook book;
	uint64_t wake_at; /* requeue-after (monotonic ms), 0: none */
	char *last_error;
	char *why; /* e.g. "memoryMiB 256→512" for a spec-change restart */
	int64_t observed_generation;
	unsigned error_streak; /* consecutive passes that returned an error */
	/* The row's spec, parsed once per generation (keyed by its hash), and
	 * the spec the running VMM was booted with (keyed by its JSON). */
	VmSpec *spec;
	char *spec_hash;
	VmSpec *booted;
	char *booted_json;
	/* at the last start: root disk recreated, or kept on a changed image
	 * (storage/rootbase.h); NULL when neither */
	char *disk_note;
	const char *disk_reason;
	/* A work-disk grow runs in a child (never in the loop); the start waits
	 * for it by polling. grow_done: it ended, the start may go on. */
	pid_t grow_pid;
	bool grow_done;
	/* Suspend and resume (reconcile/decide.h has the rules) */
	bool suspend_committed; /* its state is saved: the VMM's exit is the suspend */
	bool suspend_failed;
	unsigned suspend_failures;
	uint64_t suspend_retry_at;
	bool resume_failed;
	bool resumed;          /* the running VMM was restored, not booted */
	SavedState saved;      /* the saved state as the last pass found it */
	char *suspend_reason;  /* the "Suspended" condition after a resume or a cold */
	char *suspend_message; /* boot instead of one (NULL: none to show) */
	/* Concurrent launches (launcher.h; the rules: ObservedView.launching) */
	bool launching;        /* handed to a worker, and not yet collected by a pass */
	VmLaunch *launch_done; /* ...finished: the next pass collects it (gather) */
	bool launch_restart;   /* the launch restarts the VM after an exit or a failure */
	bool launch_resume;    /* ...resumes it from its saved state */
	bool slot_waiting;     /* on the launcher's FIFO of slot waiters */
	bool slot_invited;     /* popped from it: its next pass may take the freed slot */
	bool exit_reported;    /* CLEANUP: the exit's status is staged; teardown next turn */
};

struct Daemon {
	const DaemonConfig *cfg;
	Store *store;
	StatusWriter *status;
	EventLog *events; /* NULL when the journal cannot be opened */
	Metrics metrics;
	SpecSync *sync;
	Watcher *watcher;
	Runtime *rt;
	ConsoleHub *consoles;
	Launcher *launcher; /* VMM launches off the loop, --max-parallel-starts at once */
	LoopSource launch_src;
	int epfd, sigfd, timerfd, lockfd, runlockfd;
	LoopSource sig_src, watch_src, timer_src;
	/* work queue: FIFO of names, deduplicated through `queued` */
	char **queue;
	size_t qhead, qlen, qcap;
	Hashmap *queued;
	Hashmap *gone; /* rel path → deadline (uint64_t *, monotonic ms) */
	Hashmap *vms;  /* name → VmState */
	uint64_t resync_at, resync_soon_at;
	bool stop;
	/* service.c: systemd notification state */
	uint64_t watchdog_usec, watchdog_next_ms;
	char *notify_status; /* last STATUS= sent */
	bool notify_warned;
	/* Watcher events not applied yet: [pending_pos, pending_n) */
	WatchEvent *pending;
	size_t pending_pos, pending_n, pending_cap;
	/* The first pass and every event batch (daemon.c, "event batches")
	 * put their store writes in one transaction (one fsync for thousands
	 * of rows); daemon_make_durable() commits it early. */
	bool batch_tx;
	int batch_err;        /* an early commit of this batch failed */
	Hashmap *batch_files; /* event batch: spec files synced (→ NULL) */
	Hashmap *batch_names; /* event batch: names reconciled (→ NULL) */
};

void daemon_enqueue(Daemon *d, const char *name);
/* Record a VM event in the journal (status/events.h), now. */
void daemon_event(Daemon *d, const char *vm, const char *type, const char *fmt, ...) _printf_(4, 5);

/* metrics.c: write the metrics file if something changed (and the minimum
 * interval passed), or now with force; when the next write is due. */
int daemon_metrics_flush(Daemon *d, bool force);
uint64_t daemon_metrics_due(Daemon *d);
/* Write-ahead point: commit what the open batch transaction holds (guest IP,
 * paths) before a VMM is launched with it, then open a new batch. No-op
 * outside a batch. A failure means the facts are not durable: do not launch. */
int daemon_make_durable(Daemon *d);
/* Watcher events or queued names wait for the next batch. */
bool daemon_work_pending(Daemon *d);

/* reconciler.c */
int reconcile_name(Daemon *d, const char *name);
/* Account a pass's result: an error requeues the VM on the back-off curve
 * (reconcile_error_retry_ms) instead of wedging it or the loop. */
void reconcile_result(Daemon *d, const char *name, int r);
void reconcile_on_pidfd(Daemon *d, VmState *vs);
void reconcile_on_probe(Daemon *d, VmState *vs);
/* SRC_LAUNCH: hand finished launches to their VMs (queued: their next pass
 * collects them) and invite a slot waiter for each freed slot. With wait,
 * blocks until one finished (--once). Returns how many finished. */
size_t reconcile_on_launch(Daemon *d, bool wait);
/* At exit: wait for every launch in flight and finish it (installed in the
 * handle cache, or undone), so bangerd never leaves a half-made start. */
void reconcile_launches_settle(Daemon *d);
/* Adopt running VMs and clean dead ones at start-up; sweep orphans. */
/* -errno when a VM's VMM could not be looked for (out of fds): starting
 * anyway would start a second VMM beside a running one. */
int reconcile_rediscover_all(Daemon *d);
/* --on-stop=suspend: save every running VM in parallel (one thread each,
 * all bounded by timeout_s in total), end their VMMs, report status. A VM
 * whose save fails keeps running, as with --on-stop=keep. */
void reconcile_suspend_all(Daemon *d, unsigned timeout_s);
/* Requeue VMs whose wake-up time passed; returns the next wake-up (or
 * UINT64_MAX). */
uint64_t reconcile_due(Daemon *d, uint64_t now);
void vm_state_free(Daemon *d, VmState *vs);

/* service.c: the systemd notification protocol's meaning (no-ops without
 * $NOTIFY_SOCKET). */
void service_init(Daemon *d);
void service_ready(Daemon *d);
void service_update_status(Daemon *d);
void service_reloading(Daemon *d, bool done);
void service_stopping(Daemon *d);
void service_watchdog(Daemon *d, uint64_t now_ms);
uint64_t service_next_deadline(Daemon *d);
