/* daemon.c — see daemon.h. */
#include "daemon/daemon-internal.h"
#include "spec/spec.h"
#include "util/fileio.h"
#include "util/layout.h"
#include "util/log.h"
#include "util/timeutil.h"
#include "util/trust.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>

/* A file that vanished is only forgotten after this grace period, so a
 * rename seen as MOVED_FROM before MOVED_TO never tears a VM down. */
#define GONE_GRACE_MS 300
/* Structural events (directories, symlink swaps) are coalesced this long. */
#define RESYNC_DEBOUNCE_MS 50

void daemon_config_done(DaemonConfig *c)
{
	free(c->spec_dir);
	free(c->spec_owners);
	free(c->status_dir);
	free(c->state_dir);
	free(c->runtime_dir);
	free(c->node_name);
	free(c->metrics_file);
	free(c->driver);
	free(c->bridge);
	free(c->cidr);
	strv_free(c->image_dirs);
	free(c->firecracker_bin);
	free(c->jailer_bin);
	free(c->chroot_base);
	free(c->qemu_bin);
}

void daemon_enqueue(Daemon *d, const char *name)
{
	if (hashmap_contains(d->queued, name))
		return;
	if (d->qhead + d->qlen == d->qcap) {
		if (d->qhead > 0) {
			memmove(d->queue, d->queue + d->qhead, d->qlen * sizeof(char *));
			d->qhead = 0;
		} else {
			d->qcap = d->qcap ? d->qcap * 2 : 64;
			d->queue = xrealloc(d->queue, d->qcap * sizeof(char *));
		}
	}
	d->queue[d->qhead + d->qlen++] = xstrdup(name);
	hashmap_put(d->queued, name, NULL);
}

void daemon_event(Daemon *d, const char *vm, const char *type, const char *fmt, ...)
{
	if (!d->events)
		return;
	va_list ap;
	va_start(ap, fmt);
	_cleanup_free_ char *msg = NULL;
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	/* A failed write is logged by the journal once; events never fail a pass. */
	(void)!event_log_add(d->events, time_now_realtime_ms(), vm, type, "%s", msg ? msg : "");
}

static char *dequeue(Daemon *d)
{
	if (d->qlen == 0)
		return NULL;
	char *name = d->queue[d->qhead++];
	d->qlen--;
	if (d->qlen == 0)
		d->qhead = 0;
	hashmap_remove(d->queued, name);
	return name;
}

static void on_spec_changed(void *userdata, const char *name)
{
	daemon_enqueue(userdata, name);
}

/* Reconcile queued names until the queue is empty or deadline_ms (monotonic)
 * passed; at least one pass runs. Inside an event batch each name is
 * remembered for batch_replay(). */
static void run_queue(Daemon *d, uint64_t deadline_ms)
{
	char *name;
	bool worked = false;
	while ((name = dequeue(d))) {
		uint64_t t0 = time_now_us();
		int r = reconcile_name(d, name);
		metrics_pass(&d->metrics, time_now_us() - t0, r >= 0);
		reconcile_result(d, name, r);
		if (d->batch_names)
			hashmap_put(d->batch_names, name, NULL);
		free(name);
		service_watchdog(d, time_now_ms()); /* a long queue is not a wedged loop */
		worked = true;
		if (time_now_ms() >= deadline_ms)
			break;
	}
	if (worked)
		service_update_status(d);
}

/* ---- syncing ----------------------------------------------------------- */

/* Status names on disk that no current intent or spec explains (e.g. the
 * controller was down when their file went away). */
static void enqueue_status_orphans(Daemon *d)
{
	_cleanup_strv_free_ char **names = status_writer_names(d->status);
	for (size_t i = 0; names[i]; i++)
		daemon_enqueue(d, names[i]);
}

int daemon_make_durable(Daemon *d)
{
	if (!d->batch_tx)
		return 0;
	d->batch_tx = false;
	int r = store_commit(d->store);
	if (r < 0) {
		d->batch_err = r; /* what the batch wrote before is lost too */
		return r;
	}
	d->batch_tx = store_begin(d->store) >= 0;
	return 0;
}

static int full_sync(Daemon *d, const char *why)
{
	uint64_t t0 = time_now_us();
	SpecSyncStats a, b;
	spec_sync_stats(d->sync, &a);
	int r = spec_sync_full(d->sync);
	metrics_full_sync(&d->metrics, time_now_us() - t0, r >= 0, time_now_realtime_ms());
	spec_sync_stats(d->sync, &b);
	log_debug("full sync (%s): %llu files, %llu parsed, %llu upserts, %llu deletes in %.1f ms",
		  why, (unsigned long long)(b.files_seen - a.files_seen),
		  (unsigned long long)(b.files_parsed - a.files_parsed),
		  (unsigned long long)(b.upserts - a.upserts),
		  (unsigned long long)(b.deletes - a.deletes), (time_now_us() - t0) / 1000.0);
	d->resync_at =
		d->cfg->resync_s ? time_now_ms() + (uint64_t)d->cfg->resync_s * 1000 : UINT64_MAX;
	return r;
}

/* First pass: everything from disk, durable writes batched. */
static int initial_sync(Daemon *d)
{
	uint64_t t0 = time_now_ms();
	VmRecord **rows = NULL;
	size_t n = 0;

	status_writer_begin_batch(d->status);
	int r = full_sync(d, "start");
	if (r < 0)
		return r;
	/* Adopt what runs, clean what died, remove what nobody owns — before
	 * the first decision, so a restart never restarts a healthy VM. */
	if ((r = reconcile_rediscover_all(d)) < 0)
		return r;
	/* Level-triggered: every VM is looked at once at start. */
	if (store_list_vms(d->store, &rows, &n) >= 0) {
		for (size_t i = 0; i < n; i++)
			daemon_enqueue(d, rows[i]->name);
		vm_record_list_free(rows, n);
	}
	enqueue_status_orphans(d);
	/* One SQLite transaction and one status flush for the whole first pass:
	 * thousands of observedGeneration updates must not cost one fsync each.
	 * The intent is durable first, then the status that reports it. A
	 * launch commits early (daemon_make_durable): a VMM never runs on a
	 * guest IP the database could forget. */
	d->batch_tx = store_begin(d->store) >= 0;
	run_queue(d, UINT64_MAX);
	/* --once: the launches it started finish before it exits. */
	while (d->cfg->once && launcher_in_flight(d->launcher) > 0) {
		reconcile_on_launch(d, true);
		run_queue(d, UINT64_MAX);
	}
	runtime_crashpoint("first-pass-commit");
	if (d->batch_tx) {
		d->batch_tx = false;
		if ((r = store_commit(d->store)) < 0)
			return r;
	}
	r = status_writer_flush(d->status);
	daemon_metrics_flush(d, true);
	log_info("initial sync done: %zu VMs in %llu ms", n,
		 (unsigned long long)(time_now_ms() - t0));
	return r;
}

/* Queue what the watcher saw; batch_run() applies it. */
static void handle_watch(Daemon *d)
{
	WatchEvent *ev = NULL;
	size_t n = watcher_drain(d->watcher, &ev);
	if (d->pending_pos > 0 && d->pending_pos == d->pending_n)
		d->pending_pos = d->pending_n = 0;
	if (d->pending_n + n > d->pending_cap) {
		d->pending_cap = MAX(d->pending_cap * 2, d->pending_n + n);
		d->pending = xrealloc(d->pending, d->pending_cap * sizeof(WatchEvent));
	}
	for (size_t i = 0; i < n; i++)
		d->pending[d->pending_n++] = ev[i]; /* the rel strings move over */
	free(ev);
	d->metrics.watch_depth = d->pending_n - d->pending_pos;
}

/* Re-examine one spec file inside the open batch, remembered for
 * batch_replay(). */
static void batch_sync_file(Daemon *d, const char *rel)
{
	hashmap_put(d->batch_files, rel, NULL);
	spec_sync_file(d->sync, rel);
}

static void apply_watch_event(Daemon *d, const WatchEvent *ev)
{
	switch (ev->kind) {
	case WATCH_FILE_CHANGED:
		free(hashmap_remove(d->gone, ev->rel));
		batch_sync_file(d, ev->rel);
		break;
	case WATCH_FILE_GONE:
		if (spec_sync_knows_file(d->sync, ev->rel)) {
			uint64_t *deadline = xmalloc(sizeof(uint64_t));
			*deadline = time_now_ms() + GONE_GRACE_MS;
			free(hashmap_put(d->gone, ev->rel, deadline));
		}
		break;
	case WATCH_RESYNC:
		if (!d->resync_soon_at)
			d->resync_soon_at = time_now_ms() + RESYNC_DEBOUNCE_MS;
		break;
	}
}

/* Files whose grace period after vanishing ended (sorted; NULL: none). */
static char **gone_due(Daemon *d, uint64_t now)
{
	char **due = NULL;
	size_t st = 0;
	const char *rel;
	void *v;
	while (hashmap_iter(d->gone, &st, &rel, &v))
		if (*(uint64_t *)v <= now)
			strv_push(&due, xstrdup(rel));
	if (due)
		qsort(due, strv_length(due), sizeof(char *), strcmp_ptr);
	return due;
}

/* ---- event batches -------------------------------------------------------
 *
 * A burst (a GitOps sync writing thousands of spec files) must not pay one
 * SQLite COMMIT and one durable status write per file. Each loop turn takes
 * what is waiting (watcher events, vanished files whose grace ended, queued
 * names) and handles it as one batch: one transaction for every store write,
 * one status flush, in that order: the intent is durable first, then the
 * status that reports it. A lone edit is a batch of one, flushed at once
 * (a few staged statuses are fsynced each, not syncfs'd: util/fileio.h).
 * A VMM launch inside a batch commits first (daemon_make_durable). A batch
 * is bounded in time so a flood never starves pidfd exits, timers, the
 * watchdog or the consoles: what is left waits one epoll_wait(0). */
#define BATCH_EVENTS_MS 50  /* applying watcher events... */
#define BATCH_MAX_MS    100 /* ...and then reconciling, per loop turn */

bool daemon_work_pending(Daemon *d)
{
	return d->qlen > 0 || d->pending_pos < d->pending_n;
}

static void batch_begin(Daemon *d)
{
	d->batch_files = hashmap_new();
	d->batch_names = hashmap_new();
	d->batch_err = 0;
	status_writer_begin_batch(d->status);
	spec_sync_begin_batch(d->sync);
	/* Without a transaction every store write commits by itself, as
	 * before batches: slower, never less safe. */
	d->batch_tx = store_begin(d->store) >= 0;
}

static void batch_forget(Daemon *d)
{
	hashmap_free(TAKE_PTR(d->batch_files));
	hashmap_free(TAKE_PTR(d->batch_names));
}

/* The batch's intent did not all reach the store (its COMMIT, or an early
 * one before a launch, failed: disk full, I/O error; SQLite rolled it back).
 * None of its statuses may land. Its files and passes are replayed one at a
 * time with every store write committing by itself, as before batches: what
 * fails then fails alone and its status says why ("store: No space left on
 * device"), the rest is stored. Names the batch released are deleted again
 * by a full sync soon (spec_sync_end_batch). */
static void batch_replay(Daemon *d, int err)
{
	_cleanup_(hashmap_freep) Hashmap *files = TAKE_PTR(d->batch_files);
	_cleanup_(hashmap_freep) Hashmap *names = TAKE_PTR(d->batch_names);
	_cleanup_strv_free_ char **f = hashmap_keys_sorted(files), **n = hashmap_keys_sorted(names);
	log_warn_errno(err,
		       "a batch of %zu spec file(s) and %zu reconcile pass(es) was not "
		       "stored: %m; replaying them one at a time",
		       strv_length(f), strv_length(n));
	status_writer_discard(d->status);
	status_writer_begin_batch(d->status);
	for (size_t i = 0; f[i]; i++)
		spec_sync_file(d->sync, f[i]);
	for (size_t i = 0; n[i]; i++)
		daemon_enqueue(d, n[i]);
	run_queue(d, UINT64_MAX);
	int r = status_writer_flush(d->status);
	if (r < 0)
		log_warn_errno(r, "write status files: %m");
	if (!d->resync_soon_at)
		d->resync_soon_at = time_now_ms() + RESYNC_DEBOUNCE_MS;
}

static void batch_end(Daemon *d)
{
	int r = d->batch_err;
	uint64_t t0 = time_now_us();
	runtime_crashpoint("batch-commit"); /* statuses staged, intent not committed */
	if (d->batch_tx) {
		d->batch_tx = false;
		int k = store_commit(d->store);
		if (r >= 0)
			r = k;
	}
	spec_sync_end_batch(d->sync, r);
	if (r < 0)
		return batch_replay(d, r);
	r = status_writer_flush(d->status);
	if (r < 0) {
		/* The writer read back what is on disk; the passes run again. */
		log_warn_errno(r, "write status files: %m; their VMs are reconciled again");
		size_t st = 0;
		const char *name;
		while (hashmap_iter(d->batch_names, &st, &name, NULL))
			reconcile_result(d, name, r);
	}
	log_debug("batch: %zu spec file(s), %zu pass(es); commit and status flush %.1f ms",
		  hashmap_size(d->batch_files), hashmap_size(d->batch_names),
		  (time_now_us() - t0) / 1000.0);
	batch_forget(d);
}

/* One loop turn's spec work; see the top of this section. */
static void batch_run(Daemon *d)
{
	uint64_t t0 = time_now_ms();
	_cleanup_strv_free_ char **due = gone_due(d, t0);
	if (!due && !daemon_work_pending(d))
		return;
	batch_begin(d);
	for (size_t i = 0; due && due[i]; i++) {
		free(hashmap_remove(d->gone, due[i]));
		batch_sync_file(d, due[i]); /* re-checks: it may be back */
	}
	while (d->pending_pos < d->pending_n && time_now_ms() < t0 + BATCH_EVENTS_MS) {
		WatchEvent *ev = &d->pending[d->pending_pos++];
		apply_watch_event(d, ev);
		free(ev->rel);
		ev->rel = NULL;
	}
	if (d->qlen > 0)
		run_queue(d, t0 + BATCH_MAX_MS);
	batch_end(d);
	d->metrics.watch_depth = d->pending_n - d->pending_pos;
}

/* Level-triggered safety net: every VM that has momentary state (a process,
 * a tap, disks attached) is looked at again, whatever the events said. */
static void enqueue_live(Daemon *d)
{
	_cleanup_strv_free_ char **names = handle_cache_names(runtime_cache(d->rt));
	for (size_t i = 0; names[i]; i++)
		daemon_enqueue(d, names[i]);
}

static void handle_timers(Daemon *d)
{
	uint64_t now = time_now_ms(), exp;
	ssize_t _unused_ k = read(d->timerfd, &exp, sizeof(exp));
	/* Vanished files whose grace ended are handled by the next batch. */
	if (d->resync_soon_at && d->resync_soon_at <= now) {
		d->resync_soon_at = 0;
		full_sync(d, "watch");
	}
	if (d->resync_at <= now) {
		full_sync(d, "periodic");
		/* The firewall's instance part is made once, then VM starts add
		 * elements only: a chain flushed by hand is re-made here. */
		if (handle_cache_size(runtime_cache(d->rt)) > 0 && runtime_network_setup(d->rt) < 0)
			log_warn(
				"firewall tables could not be re-made; retried at the next resync");
		enqueue_live(d);
		d->metrics.written_at = 0; /* written at every resync, whatever the interval */
		/* observedAt: every status confirmed once per period, one syncfs
		 * for all of them (docs/status.md). */
		status_writer_begin_batch(d->status);
		int rr = status_writer_refresh(d->status);
		if (rr < 0 || (rr = status_writer_flush(d->status)) < 0)
			log_warn_errno(rr, "refresh observedAt of status files: %m");
	}
	reconcile_due(d, now);
}

static void arm_timer(Daemon *d)
{
	uint64_t next = reconcile_due(d, time_now_ms());
	if (d->resync_at < next)
		next = d->resync_at;
	next = MIN(next, service_next_deadline(d));
	size_t st = 0;
	void *v;
	if (d->resync_soon_at && d->resync_soon_at < next)
		next = d->resync_soon_at;
	if (daemon_metrics_due(d) < next)
		next = daemon_metrics_due(d);
	while (hashmap_iter(d->gone, &st, NULL, &v))
		if (*(uint64_t *)v < next)
			next = *(uint64_t *)v;
	uint64_t now = time_now_ms();
	if (daemon_work_pending(d)) /* the loop polls without waiting anyway */
		next = now;
	if (next == UINT64_MAX) {
		struct itimerspec off = { 0 };
		timerfd_settime(d->timerfd, 0, &off, NULL);
		return;
	}
	uint64_t delta = next > now ? next - now : 1;
	struct itimerspec its = { .it_value = { .tv_sec = (time_t)(delta / 1000),
						.tv_nsec = (long)(delta % 1000) * 1000000 } };
	timerfd_settime(d->timerfd, 0, &its, NULL);
}

static void handle_signal(Daemon *d)
{
	struct signalfd_siginfo si;
	while (read(d->sigfd, &si, sizeof(si)) == sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGTERM:
		case SIGINT:
			log_info("signal %s: exiting (%s)",
				 si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT",
				 d->cfg->on_stop_suspend ? "suspending every running VM"
							 : "VMs keep running");
			d->stop = true;
			service_stopping(d);
			break;
		case SIGHUP:
			log_info("SIGHUP: full resync");
			service_reloading(d, false);
			full_sync(d, "SIGHUP");
			enqueue_live(d);
			service_reloading(d, true);
			break;
		}
	}
}

/* ---- set-up ------------------------------------------------------------ */

/* One bangerd per state dir and per runtime dir: the runtime dir holds the
 * API sockets the orphan sweep judges, so two controllers sharing it would
 * take each other's VMs for orphans. */
static int take_lock(Daemon *d, const char *dir, int *ret_fd)
{
	_cleanup_free_ char *p = layout_lock_path(dir);
	char buf[64];
	int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return log_errno(-errno, "open %s: %m", p);
	*ret_fd = fd;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
		buf[n > 0 ? n : 0] = 0;
		buf[strcspn(buf, "\n")] = 0;
		if (e == EWOULDBLOCK)
			return log_errno(-EBUSY, "another bangerd (pid %s) owns %s",
					 buf[0] ? buf : "?", dir);
		return log_errno(-e, "lock %s: %m", p);
	}
	/* The resync period tells `banger get` how old a status may be. */
	int n = snprintf(buf, sizeof(buf), "%d\nresync %u\n", (int)getpid(), d->cfg->resync_s);
	if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)n, 0) < 0)
		log_warn_errno(-errno, "write pid to %s: %m", p);
	return 0;
}

/* --max-parallel-starts, or twice the online CPUs (4 to 64). */
static unsigned max_parallel_starts(const DaemonConfig *c)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	if (c->max_parallel_starts)
		return c->max_parallel_starts;
	return (unsigned)MIN(MAX(2 * (cpus > 0 ? cpus : 1), 4), 64);
}

static int setup_fds(Daemon *d)
{
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	d->sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	d->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	d->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (d->sigfd < 0 || d->timerfd < 0 || d->epfd < 0)
		return log_errno(-errno, "event loop set-up: %m");
	d->sig_src.kind = SRC_SIGNAL;
	d->watch_src.kind = SRC_WATCH;
	d->timer_src.kind = SRC_TIMER;
	d->launch_src.kind = SRC_LAUNCH;
	int r = launcher_new(max_parallel_starts(d->cfg), &d->launcher);
	if (r < 0)
		return r;
	struct epoll_event e = { .events = EPOLLIN, .data.ptr = &d->sig_src };
	epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->sigfd, &e);
	e.data.ptr = &d->timer_src;
	epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->timerfd, &e);
	e.data.ptr = &d->launch_src;
	if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, launcher_fd(d->launcher), &e) < 0)
		return log_errno(-errno, "event loop set-up: watch launches: %m");
	return console_hub_new(d->epfd, d->cfg->log_max_bytes, &d->consoles);
}

/* sshd's StrictModes for the spec dir: a root daemon acts on what is in it,
 * so only root and --spec-owner may be able to change it (util/trust.h). */
static int check_spec_dir_trust(const DaemonConfig *c)
{
	TrustPolicy pol = { .owners = c->spec_owners, .n_owners = c->n_spec_owners };
	_cleanup_free_ char *why = NULL;
	int r = trust_check_dir_path(c->spec_dir, &pol, &why);
	if (r < 0)
		return log_errno(r,
				 "spec dir %s is not trusted: %s; refusing to start (only root "
				 "and --spec-owner users may be able to write it or its parents; "
				 "see \"Spec dir trust\" in docs/operations.md)",
				 c->spec_dir, why ? why : "cannot be checked");
	return 0;
}

/* A fresh host has no spec dir yet: make it (root's, 0755). But a missing
 * spec dir while the store knows VMs is a mistake (an unmounted volume, a
 * typo in --spec-dir); creating it empty would tear every VM down. */
static int ensure_spec_dir(Daemon *d)
{
	const char *dir = d->cfg->spec_dir;
	VmRecord **rows = NULL;
	size_t n = 0;
	struct stat st;
	int r;

	if (stat(dir, &st) == 0) {
		if (!S_ISDIR(st.st_mode))
			return log_errno(-ENOTDIR, "spec dir %s is not a directory", dir);
		return 0;
	}
	if (errno != ENOENT)
		return log_errno(-errno, "spec dir %s: %m", dir);
	if ((r = store_list_vms(d->store, &rows, &n)) < 0)
		return log_errno(r, "spec dir %s missing; list known VMs: %m", dir);
	vm_record_list_free(rows, n);
	if (n > 0)
		return log_errno(-ENOENT,
				 "spec dir %s does not exist, but %zu VMs are known: not creating "
				 "it empty (that would delete them); create it or fix --spec-dir",
				 dir, n);
	if ((r = mkdir_p(dir, 0755)) < 0)
		return log_errno(r, "create spec dir %s: %m", dir);
	log_info("created spec dir %s", dir);
	return 0;
}

static int setup(Daemon *d)
{
	const DaemonConfig *c = d->cfg;
	int r;

	d->epfd = d->sigfd = d->timerfd = d->lockfd = d->runlockfd = -1;
	d->queued = hashmap_new();
	d->gone = hashmap_new();
	d->vms = hashmap_new();
	if ((r = mkdir_p(c->state_dir, 0700)) < 0)
		return log_errno(r, "create state dir %s: %m", c->state_dir);
	/* 0711: others may reach the status dir inside (the default
	 * /run/banger/status) without listing the sockets. */
	if ((r = mkdir_p(c->runtime_dir, 0711)) < 0)
		return log_errno(r, "create runtime dir %s: %m", c->runtime_dir);
	if ((r = take_lock(d, c->state_dir, &d->lockfd)) < 0 ||
	    (r = take_lock(d, c->runtime_dir, &d->runlockfd)) < 0)
		return r;
	/* SQLite refuses a path with a symlink in it (we open NOFOLLOW). */
	_cleanup_free_ char *real_state = realpath(c->state_dir, NULL);
	if (!real_state)
		return log_errno(-errno, "resolve state dir %s: %m", c->state_dir);
	_cleanup_free_ char *db = layout_db_path(real_state);
	if ((r = store_open(db, &d->store)) < 0)
		return r;
	if ((r = ensure_spec_dir(d)) < 0 || (r = check_spec_dir_trust(c)) < 0)
		return r;
	if ((r = status_writer_new(c->status_dir, &d->status)) < 0)
		return r;
	/* Events are for people: without a journal bangerd still works. */
	if (event_log_open(c->status_dir, 0, &d->events) < 0)
		log_warn("no event journal in %s: banger events/describe will show none",
			 c->status_dir);
	status_writer_set_refresh(d->status, (uint64_t)c->resync_s * 500);
	if ((r = spec_sync_new(c->spec_dir, c->node_name, d->store, on_spec_changed, d, &d->sync)) <
	    0)
		return r;
	spec_sync_set_owners(d->sync, c->spec_owners, c->n_spec_owners);
	if ((r = setup_fds(d)) < 0)
		return r;
	RuntimeConfig rc = {
		.state_dir = c->state_dir,
		.runtime_dir = c->runtime_dir,
		.bridge = c->bridge,
		.cidr = c->cidr,
		.image_dirs = c->image_dirs,
		.driver = c->driver,
		.vmm = { .firecracker_bin = c->firecracker_bin,
			 .jailer_bin = c->jailer_bin,
			 .jailer_uid = c->jailer_uid,
			 .jailer_gid = c->jailer_gid,
			 .chroot_base = c->chroot_base,
			 .qemu_bin = c->qemu_bin },
		.confine = !c->no_confine,
		.vmm_uids = { c->vmm_uid_base, c->vmm_uid_count },
		.instance = store_instance_id(d->store),
		.host_allow = c->host_allow,
		.n_host_allow = c->n_host_allow,
	};
	log_info("instance %s (its taps, nft tables and dm targets carry this tag); up to %u "
		 "VMM launches at once",
		 rc.instance, max_parallel_starts(c));
	if ((r = runtime_new(&rc, &d->rt)) < 0)
		return r;
	return 0;
}

static void teardown(Daemon *d)
{
	watcher_stop(d->watcher);
	reconcile_launches_settle(d);
	launcher_free(d->launcher, d->rt);
	if (d->vms) {
		size_t st = 0;
		void *v;
		while (hashmap_iter(d->vms, &st, NULL, &v))
			vm_state_free(d, v);
		hashmap_free(d->vms);
	}
	console_hub_free(d->consoles);
	runtime_free(d->rt);
	spec_sync_free(d->sync);
	status_writer_free(d->status);
	event_log_free(d->events);
	store_close(d->store);
	for (size_t i = 0; i < d->qlen; i++)
		free(d->queue[d->qhead + i]);
	free(d->queue);
	hashmap_free(d->queued);
	for (size_t i = d->pending_pos; i < d->pending_n; i++)
		free(d->pending[i].rel);
	free(d->pending);
	free(d->notify_status);
	if (d->gone) {
		size_t st = 0;
		void *v;
		while (hashmap_iter(d->gone, &st, NULL, &v))
			free(v);
		hashmap_free(d->gone);
	}
	int fds[] = { d->epfd, d->sigfd, d->timerfd, d->lockfd, d->runlockfd };
	for (size_t i = 0; i < ELEMENTSOF(fds); i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

static int loop(Daemon *d)
{
	struct epoll_event e = { .events = EPOLLIN, .data.ptr = &d->watch_src };
	epoll_ctl(d->epfd, EPOLL_CTL_ADD, watcher_fd(d->watcher), &e);
	while (!d->stop) {
		struct epoll_event evs[16];
		arm_timer(d);
		/* Work left by the last batch: look at the other sources, then go on. */
		int n = epoll_wait(d->epfd, evs, ELEMENTSOF(evs), daemon_work_pending(d) ? 0 : -1);
		if (n < 0 && errno != EINTR)
			return log_errno(-errno, "epoll_wait: %m");
		for (int i = 0; i < n; i++) {
			LoopSource *src = evs[i].data.ptr;
			switch (src->kind) {
			case SRC_SIGNAL: handle_signal(d); break;
			case SRC_WATCH: handle_watch(d); break;
			case SRC_TIMER: handle_timers(d); break;
			case SRC_PIDFD: reconcile_on_pidfd(d, src->vm); break;
			case SRC_PROBE: reconcile_on_probe(d, src->vm); break;
			case SRC_CONSOLE:
				console_on_event(d->consoles, src->ptr, evs[i].events);
				break;
			case SRC_LAUNCH: reconcile_on_launch(d, false); break;
			}
		}
		console_hub_collect(d->consoles);
		batch_run(d);
		daemon_metrics_flush(d, false);
		service_watchdog(d, time_now_ms());
	}
	return 0;
}

int daemon_run(const DaemonConfig *cfg)
{
	Daemon d = { .cfg = cfg };
	service_init(&d);
	int r = setup(&d);
	if (r >= 0 && !cfg->once)
		r = watcher_start(cfg->spec_dir, &d.watcher);
	if (r >= 0) {
		log_info("bangerd started: spec dir %s, status dir %s, state dir %s, node %s",
			 cfg->spec_dir, cfg->status_dir, cfg->state_dir, cfg->node_name);
		r = initial_sync(&d);
	}
	if (r >= 0)
		service_ready(&d); /* every status file is written and flushed */
	if (r >= 0 && !cfg->once)
		r = loop(&d);
	reconcile_launches_settle(&d); /* suspend at exit sees every launched VMM */
	if (r >= 0 && !cfg->once && cfg->on_stop_suspend)
		reconcile_suspend_all(&d, cfg->on_stop_timeout_s);
	teardown(&d);
	return r;
}
