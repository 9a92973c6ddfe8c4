/* daemon.c — see daemon.h. */
#include "daemon/daemon.h"
#include "reconcile/decide.h"
#include "spec/spec.h"
#include "status/status.h"
#include "store/store.h"
#include "sync/sync.h"
#include "util/fileio.h"
#include "util/hashmap.h"
#include "util/log.h"
#include "util/timeutil.h"
#include "watch/watcher.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/wait.h>

/* A file that vanished is only forgotten after this grace period, so a
 * rename seen as MOVED_FROM before MOVED_TO never tears a VM down. */
#define GONE_GRACE_MS 300
/* Structural events (directories, symlink swaps) are coalesced this long. */
#define RESYNC_DEBOUNCE_MS 50

enum { TAG_SIGNAL = 1, TAG_WATCH, TAG_TIMER };

typedef struct {
	const DaemonConfig *cfg;
	Store *store;
	StatusWriter *status;
	SpecSync *sync;
	Watcher *watcher;
	int epfd, sigfd, timerfd, lockfd;
	/* work queue: FIFO of names, deduplicated through `queued` */
	char **queue;
	size_t qhead, qlen, qcap;
	Hashmap *queued;
	Hashmap *gone; /* rel path → deadline (uint64_t *, monotonic ms) */
	uint64_t resync_at, resync_soon_at;
	bool stop;
} Daemon;

void daemon_config_done(DaemonConfig *c)
{
	free(c->spec_dir);
	free(c->status_dir);
	free(c->state_dir);
	free(c->runtime_dir);
	free(c->node_name);
	free(c->driver);
}

static void enqueue(Daemon *d, const char *name)
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
	enqueue(userdata, name);
}

/* ---- status ------------------------------------------------------------ */

static VmStatus *build_status(Daemon *d, const char *name, const VmRecord *row,
			      const SpecNameInfo *info, const Decision *dec)
{
	int64_t now = time_now_realtime_ms();
	VmStatus *st = vm_status_new(name);
	const char *owner = row ? row->source_file : info ? info->owner : NULL;

	if (owner)
		st->source_file = spec_sync_display_path(d->sync, owner);
	if (row) {
		st->spec_hash = xstrdup(row->spec_hash);
		st->generation = row->generation;
		st->observed_generation = row->generation;
		st->guest_ip = xstrdup(row->guest_ip);
		st->restart_count = row->restart_count;
		st->last_error = xstrdup(row->last_error);
	}
	st->phase = dec->phase;
	if (info && info->spec_error) {
		_cleanup_free_ char *msg = xasprintf(
			"%s%s", info->spec_error,
			row ? " (running on the last valid spec)" : "");
		vm_status_set_condition(st, "SpecValid", COND_FALSE, "InvalidSpec", msg, now);
		free_and_replace_str(&st->last_error, info->spec_error);
	} else
		vm_status_set_condition(st, "SpecValid", COND_TRUE, "Valid", "", now);
	if (info && info->conflict)
		vm_status_set_condition(st, "NameConflict", COND_TRUE, "DuplicateName",
					info->conflict, now);
	bool ready = dec->phase == VM_PHASE_RUNNING;
	const char *msg = dec->phase == VM_PHASE_INVALID ? "the spec has never been valid"
			  : dec->phase == VM_PHASE_STOPPED ? "spec.state is Stopped"
			  : dec->phase == VM_PHASE_PENDING ? "waiting to be started"
							   : "";
	vm_status_set_condition(st, "Ready", ready ? COND_TRUE : COND_FALSE, dec->reason, msg,
				now);
	vm_status_inherit_transitions(st, status_writer_last(d->status, name));
	return st;
}

/* One reconcile pass for one VM. */
static int reconcile_name(Daemon *d, const char *name)
{
	_cleanup_(vm_record_freep) VmRecord *row = NULL;
	SpecNameInfo info;
	bool known;
	int r = store_get_vm(d->store, name, &row);

	if (r < 0 && r != -ENOENT)
		return r;
	known = spec_sync_name_info(d->sync, name, &info);
	DesiredView dv = {
		.has_intent = row && !row->deleted,
		.intent_deleted = row && row->deleted,
		.spec_error = known && info.spec_error,
		.state = row ? row->desired_state : VM_STATE_RUNNING,
	};
	ObservedView ov = { 0 };
	Decision dec = reconcile_decide(&dv, &ov);

	log_debug("%s: decide %s → %s", name, vm_phase_to_string(dec.phase),
		  step_to_string(dec.step));
	if (dec.step == STEP_FORGET) {
		if (row && (r = store_delete_vm(d->store, name)) < 0 && r != -ENOENT)
			return r;
		if (status_writer_last(d->status, name) || row)
			status_writer_remove(d->status, name);
		return 0;
	}
	if (!dns_label_valid(name))
		return 0;
	_cleanup_(vm_status_freep) VmStatus *st =
		build_status(d, name, row, known ? &info : NULL, &dec);
	r = status_writer_write(d->status, st);
	if (r > 0)
		log_info("%s: phase %s (%s)", name, vm_phase_to_string(st->phase), dec.reason);
	return r < 0 ? r : 0;
}

static void run_queue(Daemon *d)
{
	char *name;
	while ((name = dequeue(d))) {
		int r = reconcile_name(d, name);
		if (r < 0)
			log_warn_errno(r, "%s: reconcile: %m", name);
		free(name);
	}
}

/* ---- syncing ----------------------------------------------------------- */

/* Status names on disk that no current intent or spec explains (e.g. the
 * controller was down when their file went away). */
static void enqueue_status_orphans(Daemon *d)
{
	_cleanup_strv_free_ char **names = status_writer_names(d->status);
	for (size_t i = 0; names[i]; i++)
		enqueue(d, names[i]);
}

static int full_sync(Daemon *d, const char *why)
{
	uint64_t t0 = time_now_us();
	SpecSyncStats a, b;
	spec_sync_stats(d->sync, &a);
	int r = spec_sync_full(d->sync);
	spec_sync_stats(d->sync, &b);
	log_debug("full sync (%s): %llu files, %llu parsed, %llu upserts, %llu deletes in %.1f ms",
		  why, (unsigned long long)(b.files_seen - a.files_seen),
		  (unsigned long long)(b.files_parsed - a.files_parsed),
		  (unsigned long long)(b.upserts - a.upserts),
		  (unsigned long long)(b.deletes - a.deletes), (time_now_us() - t0) / 1000.0);
	d->resync_at = d->cfg->resync_s ? time_now_ms() + (uint64_t)d->cfg->resync_s * 1000
					 : UINT64_MAX;
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
	/* Level-triggered: every VM is looked at once at start. */
	if (store_list_vms(d->store, &rows, &n) >= 0) {
		for (size_t i = 0; i < n; i++)
			enqueue(d, rows[i]->name);
		vm_record_list_free(rows, n);
	}
	enqueue_status_orphans(d);
	run_queue(d);
	r = status_writer_flush(d->status);
	log_info("initial sync done: %zu VMs in %llu ms", n, (unsigned long long)(time_now_ms() - t0));
	return r;
}

static void handle_watch(Daemon *d)
{
	WatchEvent *ev = NULL;
	size_t n = watcher_drain(d->watcher, &ev);
	for (size_t i = 0; i < n; i++) {
		switch (ev[i].kind) {
		case WATCH_FILE_CHANGED:
			free(hashmap_remove(d->gone, ev[i].rel));
			spec_sync_file(d->sync, ev[i].rel);
			break;
		case WATCH_FILE_GONE:
			if (spec_sync_knows_file(d->sync, ev[i].rel)) {
				uint64_t *deadline = xmalloc(sizeof(uint64_t));
				*deadline = time_now_ms() + GONE_GRACE_MS;
				free(hashmap_put(d->gone, ev[i].rel, deadline));
			}
			break;
		case WATCH_RESYNC:
			if (!d->resync_soon_at)
				d->resync_soon_at = time_now_ms() + RESYNC_DEBOUNCE_MS;
			break;
		}
	}
	watch_events_free(ev, n);
}

static void handle_gone(Daemon *d, uint64_t now)
{
	_cleanup_strv_free_ char **due = NULL;
	size_t st = 0;
	const char *rel;
	void *v;
	while (hashmap_iter(d->gone, &st, &rel, &v))
		if (*(uint64_t *)v <= now)
			strv_push(&due, xstrdup(rel));
	for (size_t i = 0; due && due[i]; i++) {
		free(hashmap_remove(d->gone, due[i]));
		spec_sync_file(d->sync, due[i]); /* re-checks: it may be back */
	}
}

static void handle_timers(Daemon *d)
{
	uint64_t now = time_now_ms(), exp;
	ssize_t _unused_ k = read(d->timerfd, &exp, sizeof(exp));
	handle_gone(d, now);
	if (d->resync_soon_at && d->resync_soon_at <= now) {
		d->resync_soon_at = 0;
		full_sync(d, "watch");
	}
	if (d->resync_at <= now)
		full_sync(d, "periodic");
}

static void arm_timer(Daemon *d)
{
	uint64_t next = d->resync_at;
	size_t st = 0;
	void *v;
	if (d->resync_soon_at && d->resync_soon_at < next)
		next = d->resync_soon_at;
	while (hashmap_iter(d->gone, &st, NULL, &v))
		if (*(uint64_t *)v < next)
			next = *(uint64_t *)v;
	uint64_t now = time_now_ms();
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
			log_info("signal %s: exiting (VMs keep running)",
				 si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
			d->stop = true;
			break;
		case SIGHUP:
			log_info("SIGHUP: full resync");
			full_sync(d, "SIGHUP");
			break;
		case SIGCHLD:
			while (waitpid(-1, NULL, WNOHANG) > 0)
				;
			break;
		}
	}
}

/* ---- set-up ------------------------------------------------------------ */

static int take_lock(Daemon *d)
{
	_cleanup_free_ char *p = path_join(d->cfg->state_dir, "bangerd.lock");
	char buf[32];
	d->lockfd = open(p, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (d->lockfd < 0)
		return log_errno(-errno, "open %s: %m", p);
	if (flock(d->lockfd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		ssize_t n = pread(d->lockfd, buf, sizeof(buf) - 1, 0);
		buf[n > 0 ? n : 0] = 0;
		buf[strcspn(buf, "\n")] = 0;
		if (e == EWOULDBLOCK)
			return log_errno(-EBUSY, "another bangerd (pid %s) owns state dir %s",
					 buf[0] ? buf : "?", d->cfg->state_dir);
		return log_errno(-e, "lock %s: %m", p);
	}
	int n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	if (ftruncate(d->lockfd, 0) < 0 || pwrite(d->lockfd, buf, (size_t)n, 0) < 0)
		log_warn_errno(-errno, "write pid to %s: %m", p);
	return 0;
}

static int setup_fds(Daemon *d)
{
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	d->sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	d->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	d->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (d->sigfd < 0 || d->timerfd < 0 || d->epfd < 0)
		return log_errno(-errno, "event loop set-up: %m");
	struct epoll_event e = { .events = EPOLLIN };
	e.data.u32 = TAG_SIGNAL;
	epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->sigfd, &e);
	e.data.u32 = TAG_TIMER;
	epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->timerfd, &e);
	return 0;
}

static int setup(Daemon *d)
{
	const DaemonConfig *c = d->cfg;
	int r;

	d->epfd = d->sigfd = d->timerfd = d->lockfd = -1;
	d->queued = hashmap_new();
	d->gone = hashmap_new();
	if ((r = mkdir_p(c->state_dir, 0700)) < 0)
		return log_errno(r, "create state dir %s: %m", c->state_dir);
	if ((r = take_lock(d)) < 0)
		return r;
	struct stat st;
	if (stat(c->spec_dir, &st) < 0 || !S_ISDIR(st.st_mode))
		return log_errno(-ENOTDIR, "spec dir %s is not a directory", c->spec_dir);
	_cleanup_free_ char *db = path_join(c->state_dir, "banger.db");
	if ((r = store_open(db, &d->store)) < 0)
		return r;
	if ((r = status_writer_new(c->status_dir, &d->status)) < 0)
		return r;
	if ((r = spec_sync_new(c->spec_dir, c->node_name, d->store, on_spec_changed, d,
			       &d->sync)) < 0)
		return r;
	if ((r = setup_fds(d)) < 0)
		return r;
	return 0;
}

static void teardown(Daemon *d)
{
	watcher_stop(d->watcher);
	spec_sync_free(d->sync);
	status_writer_free(d->status);
	store_close(d->store);
	for (size_t i = 0; i < d->qlen; i++)
		free(d->queue[d->qhead + i]);
	free(d->queue);
	hashmap_free(d->queued);
	if (d->gone) {
		size_t st = 0;
		void *v;
		while (hashmap_iter(d->gone, &st, NULL, &v))
			free(v);
		hashmap_free(d->gone);
	}
	int fds[] = { d->epfd, d->sigfd, d->timerfd, d->lockfd };
	for (size_t i = 0; i < ELEMENTSOF(fds); i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

static int loop(Daemon *d)
{
	struct epoll_event e = { .events = EPOLLIN, .data.u32 = TAG_WATCH };
	epoll_ctl(d->epfd, EPOLL_CTL_ADD, watcher_fd(d->watcher), &e);
	while (!d->stop) {
		struct epoll_event evs[8];
		arm_timer(d);
		int n = epoll_wait(d->epfd, evs, ELEMENTSOF(evs), -1);
		if (n < 0 && errno != EINTR)
			return log_errno(-errno, "epoll_wait: %m");
		for (int i = 0; i < n; i++) {
			switch (evs[i].data.u32) {
			case TAG_SIGNAL:
				handle_signal(d);
				break;
			case TAG_WATCH:
				handle_watch(d);
				break;
			case TAG_TIMER:
				handle_timers(d);
				break;
			}
		}
		run_queue(d);
	}
	return 0;
}

int daemon_run(const DaemonConfig *cfg)
{
	Daemon d = { .cfg = cfg };
	int r = setup(&d);
	if (r >= 0 && !cfg->once)
		r = watcher_start(cfg->spec_dir, &d.watcher);
	if (r >= 0) {
		log_info("bangerd started: spec dir %s, status dir %s, state dir %s, node %s",
			 cfg->spec_dir, cfg->status_dir, cfg->state_dir, cfg->node_name);
		r = initial_sync(&d);
	}
	if (r >= 0 && !cfg->once)
		r = loop(&d);
	teardown(&d);
	return r;
}
