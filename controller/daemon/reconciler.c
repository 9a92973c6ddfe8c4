/* reconciler.c — the executor of one reconcile pass for one VM.
 *
 * A pass has four steps; the rules of each live in reconcile/decide.h:
 *   gather   desired (store row, spec sync) and observed (vm_alive, handles,
 *            the console after an exit, VmState) → DesiredView/ObservedView;
 *            a pending VMM exit is classified (reconcile_classify_exit) and
 *            failures are counted (reconcile_failure) here;
 *   decide   reconcile_decide() → one step;
 *   execute  that step through runtime/ (start, stop, kill, cleanup, delete);
 *   render   status (only written when its bytes change), and the next
 *            wake-up (reconcile_wake_at).
 * Nothing here decides policy, and nothing waits for a VM: exits arrive as
 * pidfd events, readiness as non-blocking connects in the event loop,
 * deadlines as wake-up times. Each step is short and bounded: a start
 * prepares the tap, nft rules and disks here (mkfs.ext4 at most) and hands
 * the launch itself — spawn, the wait for the API socket or QMP, the boot
 * plan — to a worker thread (launcher.h), whose result a later pass collects
 * (collect_launch); a work-disk grow (e2fsck, resize2fs) runs in a child the
 * pass polls. A store error anywhere in a pass is the
 * pass's result, so reconcile_result() backs the VM off and retries. */
#include "daemon/daemon-internal.h"
#include "net/net.h"
#include "storage/workdisk.h"
#include "util/fileio.h"
#include "util/log.h"
#include "util/proc.h"
#include "util/timeutil.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>

#define PROBE_INTERVAL_MS        250
#define PROBE_CONNECT_TIMEOUT_MS 1000
#define CONSOLE_TAIL_BYTES       1500
/* Bound on saving one guest's state (the event loop waits for it; 128 MiB
 * take ~130 ms under TCG here). */
#define SUSPEND_TIMEOUT_MS 60000

/* ---- per-VM state ------------------------------------------------------ */

static VmState *vm_state(Daemon *d, const char *name)
{
	VmState *vs = hashmap_get(d->vms, name);
	if (!vs) {
		vs = xcalloc(1, sizeof(VmState));
		vs->name = xstrdup(name);
		vs->pidfd = vs->probe_fd = -1;
		vs->pid_src = (LoopSource){ .kind = SRC_PIDFD, .vm = vs };
		vs->probe_src = (LoopSource){ .kind = SRC_PROBE, .vm = vs };
		hashmap_put(d->vms, name, vs);
	}
	return vs;
}

/* Stop watching fd; the caller closes it. A failed DEL only means the fd
 * was never added, which the close makes moot. */
static void epoll_forget(Daemon *d, int fd)
{
	if (epoll_ctl(d->epfd, EPOLL_CTL_DEL, fd, NULL) < 0)
		log_debug_errno(-errno, "epoll_ctl(DEL, %d): %m", fd);
}

static void probe_close(Daemon *d, VmState *vs)
{
	if (vs->probe_fd >= 0) {
		epoll_forget(d, vs->probe_fd);
		close(vs->probe_fd);
		vs->probe_fd = -1;
	}
}

static void pidfd_close(Daemon *d, VmState *vs)
{
	if (vs->pidfd >= 0) {
		epoll_forget(d, vs->pidfd);
		close(vs->pidfd);
		vs->pidfd = -1;
	}
	vs->watched_pid = 0;
}

/* Stop a work-disk grow nobody waits for any more (the grow runs on a copy:
 * killing it leaves the disk as it was). */
static void grow_cancel(VmState *vs)
{
	int res;
	if (vs->grow_pid <= 0)
		return;
	kill(vs->grow_pid, SIGKILL);
	while (work_disk_grow_poll(vs->grow_pid, &res) == 0)
		usleep(1000);
	vs->grow_pid = 0;
}

void vm_state_free(Daemon *d, VmState *vs)
{
	if (!vs)
		return;
	grow_cancel(vs);
	if (vs->launch_done) { /* finished, never collected: install or undo it */
		_cleanup_free_ char *err = NULL;
		if (vm_launch_finish(d->rt, TAKE_PTR(vs->launch_done), &err) < 0)
			log_warn("%s: its launch failed: %s", vs->name, err ? err : "?");
	}
	probe_close(d, vs);
	pidfd_close(d, vs);
	free(vs->name);
	free(vs->last_error);
	free(vs->why);
	free(vs->exit_desc);
	vm_spec_free(vs->spec);
	free(vs->spec_hash);
	vm_spec_free(vs->booted);
	free(vs->booted_json);
	free(vs->disk_note);
	saved_state_done(&vs->saved);
	free(vs->suspend_reason);
	free(vs->suspend_message);
	free(vs);
}

static void vm_state_drop(Daemon *d, const char *name)
{
	vm_state_free(d, hashmap_remove(d->vms, name));
}

static void set_error(VmState *vs, const char *msg)
{
	free_and_replace_str(&vs->last_error, msg);
}

/* Keep the first error of a pass: it becomes the pass's result. */
static void keep_error(int *acc, int r)
{
	if (r < 0 && *acc >= 0)
		*acc = r;
}

/* Watch the VMM's exit with a pidfd: works for adopted VMs too, which are
 * not our children. Without the watch an exit would go unseen until the
 * next resync, so a failure is an error the pass reports (and retries). */
static int watch_pid(Daemon *d, VmState *vs, pid_t pid)
{
	if (vs->pidfd >= 0 && vs->watched_pid == pid)
		return 0;
	pidfd_close(d, vs);
	int fd = proc_pidfd_open(pid);
	if (fd < 0) {
		/* Out of fds, most likely: never leave a VM silently unwatched.
		 * The watch is retried every second (WakeFacts.retry_at). */
		_cleanup_free_ char *msg = xasprintf("cannot watch the VMM (pid %d): %s; retrying "
						     "every second",
						     (int)pid, strerror(-fd));
		if (!vs->watch_retry_at)
			log_error("%s: %s", vs->name, msg);
		set_error(vs, msg);
		vs->watch_retry_at = time_now_ms() + 1000;
		return 0;
	}
	if (vs->watch_retry_at) {
		log_info("%s: watching the VMM (pid %d) again", vs->name, (int)pid);
		set_error(vs, NULL);
		vs->watch_retry_at = 0;
	}
	struct epoll_event e = { .events = EPOLLIN, .data.ptr = &vs->pid_src };
	if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, fd, &e) < 0) {
		int r = -errno;
		close(fd);
		return log_warn_errno(r, "%s: watch pidfd of %d: %m", vs->name, (int)pid);
	}
	vs->pidfd = fd;
	vs->watched_pid = pid;
	return 0;
}

/* ---- events ---------------------------------------------------------------- */

/* The VMM exited: collect what only this moment knows (its wait status,
 * whether we asked for it) and let the next pass classify it. */
void reconcile_on_pidfd(Daemon *d, VmState *vs)
{
	int status = 0;
	pid_t pid = vs->watched_pid;
	/* Our child: its exit status says crash or clean power-off. An adopted
	 * VMM is not our child (waitpid fails): its status is unknown. */
	pid_t w = waitpid(pid, &status, WNOHANG);
	bool known = w == pid;
	console_drain(d->consoles, vs->name); /* its last words, before the socket goes */
	pidfd_close(d, vs);
	probe_close(d, vs);
	vs->exit = (ExitFacts){
		.stop_requested = vs->stop_requested,
		.boot_failed = vs->boot_failed,
		.suspended = vs->suspend_committed,
		.status_known = known,
		.exited_zero = known && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	};
	vs->exit_pending = true;
	free(vs->exit_desc);
	if (known)
		vs->exit_desc =
			xasprintf("VMM (pid %d) exited with %s %d", (int)pid,
				  WIFEXITED(status) ? "status" : "signal",
				  WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
	else
		vs->exit_desc = xasprintf("VMM (pid %d) exited", (int)pid);
	vs->ready = false;
	daemon_enqueue(d, vs->name);
}

void reconcile_on_probe(Daemon *d, VmState *vs)
{
	int err = 0;
	socklen_t len = sizeof(err);
	if (getsockopt(vs->probe_fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	probe_close(d, vs);
	if (err == 0) {
		vs->ready = true;
		log_info("%s: readiness probe passed", vs->name);
	} else
		vs->next_probe = time_now_ms() + PROBE_INTERVAL_MS;
	daemon_enqueue(d, vs->name);
}

/* Non-blocking TCP connect to the guest; completion arrives via epoll. */
static void probe_start(Daemon *d, VmState *vs, const char *ip, unsigned port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	uint64_t now = time_now_ms();
	if (vs->probe_fd >= 0) {
		if (now - vs->probe_started < PROBE_CONNECT_TIMEOUT_MS)
			return;
		probe_close(d, vs); /* no answer at all (no ARP yet): try again */
	}
	if (now < vs->next_probe || inet_pton(AF_INET, ip, &sa.sin_addr) != 1)
		return;
	vs->next_probe = now + PROBE_INTERVAL_MS; /* unless the connect below is pending */
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) { /* EMFILE: say so, and wait before trying again (no busy loop) */
		log_warn_errno(-errno, "%s: readiness probe: socket: %m", vs->name);
		return;
	}
	int r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	if (r < 0 && errno != EINPROGRESS) {
		close(fd);
		return;
	}
	struct epoll_event e = { .events = EPOLLOUT, .data.ptr = &vs->probe_src };
	if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, fd, &e) < 0) {
		log_warn_errno(-errno, "%s: watch readiness probe: %m", vs->name);
		close(fd);
		return;
	}
	vs->probe_fd = fd;
	vs->probe_started = now;
}

/* When the probe next needs the loop: its connect timeout, or the next try. */
static uint64_t probe_due(const VmState *vs)
{
	return vs->probe_fd >= 0 ? vs->probe_started + PROBE_CONNECT_TIMEOUT_MS : vs->next_probe;
}

/* ---- gather ----------------------------------------------------------------- */

/* Keep the console attached while the VMM lives: after a start, after
 * adoption by a restarted bangerd, after the serial hung up. Cheap when it
 * already is. */
static void console_keep(Daemon *d, const VmRecord *row, const VmHandles *h)
{
	_cleanup_(vm_paths_done) VmPaths p = { 0 };
	const VmmDriver *drv = vmm_driver_by_name(h->vmm);
	vm_paths_for(d->rt, row->uid, &p);
	bool sock = drv && drv->serial_socket;
	ConsoleTarget t = { .name = row->name,
			    .console_log = p.console_path,
			    .vmm_log = p.log_path,
			    .serial_sock = sock ? p.serial_sock : NULL,
			    .listen_sock = p.console_sock };
	console_attach(d->consoles, &t);
}

static char *console_tail(Daemon *d, const VmRecord *row)
{
	_cleanup_(vm_paths_done) VmPaths p = { 0 };
	console_drain(d->consoles, row->name); /* what the guest said last counts */
	vm_paths_for(d->rt, row->uid, &p);
	_cleanup_close_ int fd = open(p.console_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return NULL;
	off_t size = lseek(fd, 0, SEEK_END);
	off_t from = size > CONSOLE_TAIL_BYTES ? size - CONSOLE_TAIL_BYTES : 0;
	char *data = xmalloc(CONSOLE_TAIL_BYTES + 1);
	ssize_t n = 0;
	if (size >= 0 && size < CONSOLE_TAIL_BYTES) {
		/* Just rotated (daemon/console.c): the rest is in console.log.1. */
		_cleanup_free_ char *older = xasprintf("%s.1", p.console_path);
		_cleanup_close_ int ofd = open(older, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		off_t osize = ofd >= 0 ? lseek(ofd, 0, SEEK_END) : 0,
		      want = CONSOLE_TAIL_BYTES - size;
		ssize_t got =
			osize > 0 ? pread(ofd, data, (size_t)MIN(want, osize), MAX(osize - want, 0))
				  : 0;
		n = got > 0 ? got : 0;
	}
	ssize_t k = pread(fd, data + n, CONSOLE_TAIL_BYTES - (size_t)n, from);
	n += k > 0 ? k : 0;
	if (n <= 0) {
		free(data);
		return NULL;
	}
	data[n] = 0;
	/* Only printable text goes into status (the guest writes what it likes). */
	for (ssize_t i = 0; i < n; i++)
		if (((unsigned char)data[i] < 0x20 && data[i] != '\n') || data[i] == 0x7f)
			data[i] = ' ';
	return data;
}

/* "guest kernel panic: <line>" when the console shows one. */
static char *panic_line(const char *tail)
{
	const char *p = tail ? strstr(tail, "Kernel panic") : NULL;
	if (!p)
		return NULL;
	int n = (int)strcspn(p, "\n");
	while (n > 0 && p[n - 1] == ' ')
		n--;
	return xasprintf("guest kernel panic: %.*s", n, p);
}

/* Count a failure (reconcile_failure decides the back-off) and record why:
 * a kernel panic on the console says more than the exit status. */
static int note_failure(Daemon *d, VmState *vs, const VmRecord *row, const char *tail,
			const char *what)
{
	reconcile_failure(&vs->book, row->generation, time_now_ms());
	_cleanup_free_ char *panic = panic_line(tail);
	set_error(vs, panic ? panic : what);
	uint64_t backoff = reconcile_backoff_ms(vs->book.failures);
	log_warn("%s: %s; restart back-off %llu ms", vs->name,
		 vs->last_error ? vs->last_error : "failed", (unsigned long long)backoff);
	daemon_event(d, vs->name, "BackOff", "failure %u; next start in %llu ms", vs->book.failures,
		     (unsigned long long)backoff);
	return store_set_last_error(d->store, row->name, vs->last_error);
}

/* A VMM exit the pidfd reported: classify it and account for it. */
static int account_exit(Daemon *d, VmState *vs, const VmRecord *row)
{
	if (!vs->exit_pending)
		return 0;
	vs->exit_pending = false;
	_cleanup_free_ char *tail = row ? console_tail(d, row) : NULL;
	vs->exit.console_panic = tail && strstr(tail, "Kernel panic");
	ExitKind k = reconcile_classify_exit(&vs->exit);
	vs->boot_failed = false;
	vs->suspend_committed = false;
	vs->exited = k != EXIT_STOPPED && k != EXIT_SUSPENDED;
	vs->exit_ok = k == EXIT_COMPLETED;
	switch (k) {
	case EXIT_SUSPENDED:
		log_info("%s: %s after its state was saved", vs->name, vs->exit_desc);
		return 0;
	case EXIT_STOPPED:
		vs->stop_requested = false;
		daemon_event(d, vs->name, "Stopped", "%s after a stop request", vs->exit_desc);
		log_info("%s: %s after a stop request", vs->name, vs->exit_desc);
		return 0;
	case EXIT_COMPLETED:
		log_info("%s: %s (guest powered off)", vs->name, vs->exit_desc);
		daemon_event(d, vs->name, "Exited", "%s: the guest powered off", vs->exit_desc);
		set_error(vs, NULL);
		return 0;
	case EXIT_BOOT_FAILED: /* counted when the boot timed out */ return 0;
	case EXIT_CRASHED:
	case _EXIT_MAX:
		log_warn("%s: %s", vs->name, vs->exit_desc);
		daemon_event(d, vs->name, "Exited", "%s: crashed%s", vs->exit_desc,
			     vs->exit.console_panic ? " (guest kernel panic)" : "");
		return row ? note_failure(d, vs, row, tail, vs->exit_desc) : 0;
	}
	return 0;
}

/* The row's spec, parsed only when its hash changes. */
static int row_spec(VmState *vs, const VmRecord *row, const VmSpec **ret)
{
	*ret = NULL;
	if (!row)
		return 0;
	if (!vs->spec || !streq_ptr(vs->spec_hash, row->spec_hash)) {
		VmSpec *spec = NULL;
		if (vm_spec_from_json(row->spec_json, &spec) < 0)
			return log_errno(-EBADMSG, "%s: stored spec does not parse", row->name);
		vm_spec_free(vs->spec);
		vs->spec = spec;
		free_and_replace_str(&vs->spec_hash, row->spec_hash);
	}
	*ret = vs->spec;
	return 0;
}

/* The spec the running VMM was booted with, parsed once per boot. */
static const VmSpec *booted_spec(VmState *vs, const VmHandles *h)
{
	if (!h || !h->spec_json)
		return NULL;
	if (!vs->booted || !streq_ptr(vs->booted_json, h->spec_json)) {
		vm_spec_free(vs->booted);
		vs->booted = NULL;
		free_and_replace_str(&vs->booted_json, h->spec_json);
		if (vm_spec_from_json(h->spec_json, &vs->booted) < 0)
			return NULL;
	}
	return vs->booted;
}

typedef struct {
	Daemon *d;
	const char *name;
	VmState *vs;
	VmRecord *row;      /* NULL: no intent row */
	const VmSpec *spec; /* the row's spec (owned by vs), NULL without a row */
	SpecNameInfo info;
	bool known; /* some file defines the name */
	DesiredView dv;
	ObservedView ov;
} Pass;

/* The saved state of a VM whose VMM is not running (state Suspended, or
 * Running again): judged against the row's spec. A failed suspend is
 * forgotten once the spec no longer asks for one. */
static void gather_saved(Pass *p, bool alive)
{
	VmState *vs = p->vs;
	if (!p->spec || p->spec->state != VM_STATE_SUSPENDED)
		vs->suspend_failed = false;
	if (alive || !p->row || !p->row->vm_dir || !p->spec)
		return;
	saved_state_done(&vs->saved);
	int r = vm_saved_inspect(p->d->rt, p->row->uid, p->spec, &vs->saved);
	if (r < 0)
		log_warn_errno(r, "%s: inspect saved state: %m", vs->name);
}

static int collect_launch(Pass *p);

static int gather(Pass *p)
{
	Daemon *d = p->d;
	VmState *vs = p->vs;
	uint64_t now = time_now_ms();
	int err = 0;

	if (p->row && reconcile_new_generation(&vs->book, p->row->generation))
		vs->exited = vs->start_failed = false; /* the old failures are forgotten */
	keep_error(&err, account_exit(d, vs, p->row));
	keep_error(&err, collect_launch(p));

	VmHandles *h = handle_cache_get(runtime_cache(d->rt), vs->name);
	bool alive = vm_alive(d->rt, vs->name);
	if (alive && h && vs->pidfd < 0)
		keep_error(&err, watch_pid(d, vs, h->pid));
	if (alive && h && p->row)
		console_keep(d, p->row, h); /* also adopted VMs: reconnect the serial */
	p->dv = (DesiredView){
		.has_intent = p->row && !p->row->deleted,
		.intent_deleted = p->row && p->row->deleted,
		.spec_error = p->known && p->info.spec_error,
		.state = p->spec ? p->spec->state : VM_STATE_RUNNING,
		.restart_policy = p->spec ? p->spec->restart_policy : RESTART_ALWAYS,
	};
	const VmSpec *booted = alive && p->spec ? booted_spec(vs, h) : NULL;
	_cleanup_free_ char *why = NULL;
	if (booted && !vm_spec_boot_equal(booted, p->spec, &why)) {
		p->dv.boot_changed = true;
		_cleanup_free_ char *msg = xasprintf("restarting for a spec change: %s", why);
		if (!streq_ptr(vs->why, msg))
			log_info("%s: spec change needs a restart: %s", vs->name, why);
		free_and_replace_str(&vs->why, msg);
	}
	gather_saved(p, alive);
	p->ov = (ObservedView){
		.alive = alive,
		.has_resources = vm_handles_any(h),
		.stop_requested = vs->stop_requested,
		.stop_overdue = vs->stop_requested && now >= vs->stop_deadline,
		.ready = vs->ready,
		.boot_overdue = !vs->ready && vs->boot_deadline && now >= vs->boot_deadline,
		.exited = vs->exited,
		.exit_ok = vs->exit_ok,
		.start_failed = vs->start_failed,
		.in_backoff = now < vs->book.backoff_until,
		.resumed = vs->resumed,
		.saved = !alive && vs->saved.saved,
		.saved_intact = vs->saved.intact,
		.saved_boot_equal = vs->saved.boot_equal,
		.saved_vmm_equal = vs->saved.vmm_equal,
		.resume_failed = vs->resume_failed,
		.suspend_failed = vs->suspend_failed,
		.suspend_backoff = now < vs->suspend_retry_at,
		.suspend_committed = vs->suspend_committed,
		.launching = vs->launching,
		.launch_slots_full = launcher_full(d->launcher),
	};
	return err;
}

/* ---- execute ------------------------------------------------------------------- */

static int ensure_ip(Daemon *d, VmRecord *row, const VmSpec *spec, char **ret_ip)
{
	*ret_ip = NULL;
	if (!spec->network_enabled)
		return 0;
	_cleanup_strv_free_ char **used = NULL;
	int r = store_list_guest_ips(d->store, &used);
	if (r < 0)
		return r;
	_cleanup_free_ char *ip = NULL;
	r = runtime_pick_ip(d->rt, spec, row->guest_ip, used, &ip);
	if (r < 0)
		return r;
	if (!streq_ptr(row->guest_ip, ip)) {
		if ((r = store_set_guest_ip(d->store, row->name, ip)) < 0)
			return r;
		free_and_replace_str(&row->guest_ip, ip);
	}
	*ret_ip = TAKE_PTR(ip);
	return 0;
}

/* The VM's VMM uid: chosen once (lowest free in --vmm-uid-range, like the
 * guest IP) and kept in its row, so a restarted VM and a restarted bangerd
 * give it the same uid and its files stay its own. */
static int ensure_vmm_uid(Daemon *d, const VmRecord *row, uint32_t *ret)
{
	_cleanup_free_ uint32_t *used = NULL;
	size_t n = 0;
	int r = store_list_vmm_uids(d->store, &used, &n);
	if (r < 0)
		return r;
	r = runtime_pick_vmm_uid(d->rt, row->vmm_uid, used, n, ret);
	if (r < 0)
		return r;
	if (*ret != row->vmm_uid && (r = store_set_vmm_uid(d->store, row->name, *ret)) < 0)
		return r;
	return 0;
}

/* Choose and store the guest IP and VMM uid, and store the paths: in one
 * transaction, committed before this returns. Write-ahead: they are durable
 * before a VMM uses them, or a crash could let another VM take a live
 * guest's IP. One commit (one fsync) instead of one per fact; inside the
 * first pass's batch, daemon_make_durable() commits the batch so far. */
static int record_launch_facts(Daemon *d, VmRecord *row, const VmSpec *spec, const VmPaths *paths,
			       char **ret_ip, uint32_t *ret_vmm_uid, char **ret_err)
{
	bool own_tx = !d->batch_tx;
	int r = own_tx ? store_begin(d->store) : 0;
	if (r < 0) {
		*ret_err = xasprintf("record guest IP and paths: %s", strerror(-r));
		return r;
	}
	if ((r = ensure_ip(d, row, spec, ret_ip)) < 0)
		*ret_err = xasprintf("guest IP: %s", strerror(-r));
	else if ((r = ensure_vmm_uid(d, row, ret_vmm_uid)) < 0)
		*ret_err = xasprintf("VMM uid: %s", strerror(-r));
	else if ((r = store_set_paths(d->store, row->name, paths->vm_dir, paths->api_sock,
				      paths->log_path)) < 0)
		*ret_err = xasprintf("record guest IP and paths: %s", strerror(-r));
	if (r < 0) {
		if (own_tx && store_rollback(d->store) < 0)
			log_warn("%s: rollback of its launch facts failed", row->name);
		return r;
	}
	/* store_commit rolls back by itself when it fails. */
	if ((r = own_tx ? store_commit(d->store) : daemon_make_durable(d)) < 0)
		*ret_err = xasprintf("record guest IP and paths: %s", strerror(-r));
	return r;
}

/* ---- steps ----------------------------------------------------------------- */
#define GROW_POLL_MS 200

/* The work-disk grow child still runs; when it has ended, log how and let
 * the start go on (grow_done). */
static bool grow_running(VmState *vs)
{
	int res = 0;
	if (vs->grow_pid <= 0)
		return false;
	if (work_disk_grow_poll(vs->grow_pid, &res) == 0)
		return true;
	log_info("%s: work disk grow (pid %d) ended: %s", vs->name, (int)vs->grow_pid,
		 res == 1                         ? "grown"
		 : res == WORK_DISK_KEPT_OLD_SIZE ? "kept at its old size"
		 : res >= 0                       ? "nothing to do"
						  : strerror(-res));
	vs->grow_pid = 0;
	vs->grow_done = true;
	return false;
}

/* A work disk that must grow is grown in a child first: e2fsck and resize2fs
 * (on a copy of the disk) can take long, and the loop serves every other VM
 * meanwhile. Returns 1 while the grow runs (the pass comes back), 0 when
 * the start may go on. */
static int work_disk_grow_step(Daemon *d, VmState *vs, const VmRecord *row, const VmSpec *spec)
{
	_cleanup_(vm_paths_done) VmPaths p = { 0 };
	if (grow_running(vs))
		return 1;
	if (vs->grow_done || !spec->work_disk_mib)
		return 0;
	vm_paths_for(d->rt, row->uid, &p);
	if (!work_disk_needs_grow(p.work_disk, spec->work_disk_mib))
		return 0;
	if (work_disk_grow_start(p.work_disk, spec->work_disk_mib, &vs->grow_pid) < 0) {
		vs->grow_done = true; /* the start goes on at the old size */
		return 0;
	}
	log_info("%s: growing work disk %s to %" PRIu64 " MiB in pid %d", vs->name, p.work_disk,
		 spec->work_disk_mib, (int)vs->grow_pid);
	return 1;
}

/* A restart (after an exit or a failed start) counts, durably. */
static int count_restart(Daemon *d, VmRecord *row)
{
	int r = store_set_restart_count(d->store, row->name, row->restart_count + 1);
	if (r >= 0)
		row->restart_count++;
	return r;
}

static void set_suspend_condition(VmState *vs, const char *reason, const char *message)
{
	free_and_replace_str(&vs->suspend_reason, reason);
	free_and_replace_str(&vs->suspend_message, message);
}

/* A resume that did not happen: nothing was started, so it is no failure
 * of the VM; the next pass cold-boots it (reconcile_decide: ResumeFailed). */
static int resume_failed(Pass *p, const char *err)
{
	VmState *vs = p->vs;
	_cleanup_free_ char *msg = xasprintf("cold boot: resume failed: %s", err ? err : "?");
	vs->resume_failed = true;
	set_suspend_condition(vs, "ResumeFailed", msg);
	log_warn("%s: %s", vs->name, msg);
	daemon_event(p->d, vs->name, "ResumeFailed", "%s", err ? err : "?");
	daemon_enqueue(p->d, vs->name);
	return 0;
}

static void resumed(Pass *p, pid_t pid)
{
	VmState *vs = p->vs;
	char at[64];
	time_format_rfc3339(vs->saved.saved_at_ms, at, sizeof(at));
	_cleanup_free_ char *msg = xasprintf("resumed from the state saved at %s (%llu bytes)", at,
					     (unsigned long long)vs->saved.size);
	vs->resume_failed = false;
	set_suspend_condition(vs, "Resumed", msg);
	daemon_event(p->d, vs->name, "Resumed", "VMM started (pid %d) from the state saved at %s",
		     (int)pid, at);
	saved_state_done(&vs->saved);
}

/* do_start's results besides 0 and -errno. */
#define START_PREPARING 1 /* a work-disk grow runs in a child: not started */
#define START_LAUNCHING 2 /* the launch runs on a worker (launcher.h) */

/* A start that launched (or found) the VMM: watch it, attach its console,
 * reset the failure facts, and count a restart. */
static int start_succeeded(Pass *p, bool restart, bool resume)
{
	Daemon *d = p->d;
	VmState *vs = p->vs;
	VmRecord *row = p->row;
	int acc = 0;
	VmHandles *h = handle_cache_get(runtime_cache(d->rt), vs->name);
	if (!h || !row || !p->spec) /* the row went while launching: the pass decides */
		return h ? watch_pid(d, vs, h->pid) : 0;
	if (restart)
		keep_error(&acc, count_restart(d, row));
	if (resume)
		resumed(p, h->pid);
	else if (restart)
		daemon_event(d, row->name, "Restarted", "VMM started (pid %d), restart %lld",
			     (int)h->pid, (long long)row->restart_count);
	else
		daemon_event(d, row->name, "Started", "VMM started (pid %d)", (int)h->pid);
	keep_error(&acc, watch_pid(d, vs, h->pid));
	console_keep(d, row, h); /* at once: QEMU discards serial output nobody reads */
	uint64_t now = time_now_ms();
	vs->exited = vs->exit_ok = vs->start_failed = vs->resume_failed = false;
	vs->resumed = resume;
	vs->ready = p->spec->readiness_tcp_port == 0; /* no probe: running is ready */
	vs->boot_deadline = now + (uint64_t)p->spec->readiness_timeout_s * 1000;
	vs->next_probe = 0;
	reconcile_running(&vs->book, now);
	free(vs->why);
	vs->why = NULL;
	set_error(vs, NULL);
	keep_error(&acc, store_set_last_error(d->store, row->name, NULL));
	daemon_enqueue(d, row->name);
	return acc;
}

static int start_failed(Pass *p, int r, const char *err, bool restart)
{
	VmState *vs = p->vs;
	int acc = 0;
	daemon_event(p->d, vs->name, "StartFailed", "%s", err ? err : strerror(-r));
	vs->start_failed = true;
	vs->exited = false;
	if (!p->row)
		return 0;
	if (restart)
		keep_error(&acc, count_restart(p->d, p->row));
	keep_error(&acc, note_failure(p->d, vs, p->row, NULL, err ? err : strerror(-r)));
	return acc;
}

/* What a launch (on a worker or here) came to. */
static int start_result(Pass *p, int r, const char *err, bool restart, bool resume)
{
	if (r < 0 && resume)
		return resume_failed(p, err);
	if (r < 0)
		return start_failed(p, r, err, restart);
	return start_succeeded(p, restart, resume);
}

/* The disks' note for status (root base changed, work disk kept its old
 * size) comes with the launch: the disks are made on its worker. */
static void take_disk_note(VmState *vs, const VmLaunch *l)
{
	const char *reason = NULL;
	const char *note = vm_launch_disk_note(l, &reason);
	free(vs->disk_note);
	vs->disk_note = note ? xstrdup(note) : NULL;
	vs->disk_reason = note ? reason : NULL;
}

/* gather: a launch a worker finished is installed (or undone) now, and
 * accounted for as a synchronous start would have been. */
static int collect_launch(Pass *p)
{
	VmState *vs = p->vs;
	VmLaunch *l = TAKE_PTR(vs->launch_done);
	if (!l)
		return 0;
	vs->launching = false;
	_cleanup_free_ char *err = NULL;
	take_disk_note(vs, l);
	int r = vm_launch_finish(p->d->rt, l, &err);
	return start_result(p, r, err, vs->launch_restart, vs->launch_resume);
}

/* The checks and the VM dir on the loop thread, then the launch to a
 * worker (disks, confinement, the VMM) while the loop records the launch
 * facts and makes the network (runtime/vm.h). Returns START_LAUNCHING when
 * a worker has it, START_PREPARING while a work-disk grow runs, else the
 * start's result (done here). */
static int do_start(Pass *p, bool resume)
{
	Daemon *d = p->d;
	VmState *vs = p->vs;
	VmRecord *row = p->row;
	_cleanup_free_ char *ip = NULL, *err = NULL;
	_cleanup_(vm_paths_done) VmPaths paths = { 0 };
	bool restart = !resume && (vs->exited || vs->start_failed);
	uint32_t vmm_uid = 0;
	int r;
	if (work_disk_grow_step(d, vs, row, p->spec) > 0)
		return START_PREPARING; /* the grow runs in a child: the pass comes back */
	vm_paths_for(d->rt, row->uid, &paths);
	VmStartRequest req = { .name = row->name,
			       .uid = row->uid,
			       .spec = p->spec,
			       .work_disk_no_grow = true,
			       .resume = resume };
	VmLaunch *l = NULL;
	r = vm_start_prepare(d->rt, &req, &l, &err);
	vs->grow_done = false; /* the next start tries a failed grow again */
	free(vs->disk_note);   /* this start's comes with its launch */
	vs->disk_note = NULL;
	vs->disk_reason = NULL;
	if (r <= 0) /* failed and undone, or its VMM runs already */
		return start_result(p, r, err, restart, resume);
	runtime_crashpoint("launch-submitted");
	/* No thread for it: the same steps here, one after the other. */
	bool on_worker = launcher_submit(d->launcher, l) >= 0;
	/* While the worker makes the disks: the launch facts, durable before
	 * any VMM uses them (the worker waits for them), then the tap and its
	 * nft elements. A failure here ends the launch with its error. */
	uint64_t t0 = time_now_us();
	r = record_launch_facts(d, row, p->spec, &paths, &ip, &vmm_uid, &err);
	if (r < 0)
		vm_launch_cancel(l, r, err);
	else {
		log_debug("%s: timing: record %.3f ms (guest IP, VMM uid, paths)", row->name,
			  (time_now_us() - t0) / 1000.0);
		vm_launch_network(l, ip, vmm_uid);
	}
	if (!on_worker) {
		vm_launch_run(l);
		take_disk_note(vs, l);
		free(err);
		err = NULL;
		r = vm_launch_finish(d->rt, l, &err);
		return start_result(p, r, err, restart, resume);
	}
	vs->launching = true;
	vs->launch_restart = restart;
	vs->launch_resume = resume;
	vs->slot_waiting = false;
	return START_LAUNCHING;
}

/* Save the guest and end its VMM. A failed save leaves it running (the
 * driver continues it) and is retried after back-off; it is not a pass
 * error, which would back off a second time. */
static int do_suspend(Pass *p, Decision *dec)
{
	VmState *vs = p->vs;
	_cleanup_free_ char *err = NULL;
	SavedState info = { 0 };
	uint64_t t0 = time_now_ms();
	int r = vm_suspend(p->d->rt, vs->name, p->row->uid, p->row->api_sock, SUSPEND_TIMEOUT_MS,
			   &info, &err);
	uint64_t now = time_now_ms();
	if (r < 0) {
		vs->suspend_failed = true;
		vs->suspend_failures++;
		uint64_t retry = reconcile_suspend_retry_ms(vs->suspend_failures);
		vs->suspend_retry_at = now + retry;
		_cleanup_free_ char *msg =
			xasprintf("suspend failed: %s; the guest keeps running (retry in %llu ms)",
				  err ? err : strerror(-r), (unsigned long long)retry);
		log_warn("%s: %s", vs->name, msg);
		daemon_event(p->d, vs->name, "SuspendFailed", "%s", msg);
		set_suspend_condition(vs, "SuspendFailed", msg);
		*dec = reconcile_after_suspend(false);
		return 0;
	}
	vs->suspend_committed = true; /* the exit that follows is this suspend */
	vs->suspend_failed = false;
	vs->suspend_failures = 0;
	vs->ready = false;
	saved_state_done(&vs->saved);
	vs->saved = info;
	set_suspend_condition(vs, NULL, NULL);
	set_error(vs, NULL);
	daemon_event(p->d, vs->name, "Suspended", "state saved (%llu bytes, %s) in %llu ms",
		     (unsigned long long)info.size, info.vmm_version,
		     (unsigned long long)(now - t0));
	*dec = reconcile_after_suspend(true);
	daemon_enqueue(p->d, vs->name);
	return 0;
}

/* Remove a saved state that will not be resumed, and say why: the VM
 * cold-boots next (or stays Stopped). */
static int do_discard(Pass *p, const Decision *dec)
{
	VmState *vs = p->vs;
	bool stopped = dec->phase == VM_PHASE_STOPPED;
	int r = vm_saved_discard(p->d->rt, p->row->uid);
	if (r < 0)
		return r;
	if (stopped)
		set_suspend_condition(vs, "Discarded",
				      "the saved state was discarded: spec.state is Stopped");
	else if (!vs->resume_failed) {
		_cleanup_free_ char *msg = xasprintf(
			"cold boot: %s", vs->saved.problem ? vs->saved.problem : dec->reason);
		set_suspend_condition(vs, dec->reason, msg);
	}
	log_warn("%s: saved state discarded (%s): %s", vs->name, dec->reason,
		 vs->suspend_message ? vs->suspend_message : "");
	daemon_event(p->d, vs->name, "StateDiscarded", "%s: %s", dec->reason,
		     vs->suspend_message ? vs->suspend_message : "");
	vs->resume_failed = false;
	saved_state_done(&vs->saved);
	daemon_enqueue(p->d, vs->name);
	return 0;
}

static void do_stop(Pass *p)
{
	VmState *vs = p->vs;
	vs->stop_requested = true;
	vs->stop_deadline = time_now_ms() + (uint64_t)p->d->cfg->stop_timeout_s * 1000;
	int r = vm_request_stop(p->d->rt, vs->name, p->row ? p->row->api_sock : NULL);
	if (r < 0 && r != -ESRCH)
		log_warn_errno(r,
			       "%s: graceful stop request failed: %m (will kill at the deadline)",
			       vs->name);
	else
		log_info("%s: graceful stop requested", vs->name);
	daemon_event(p->d, vs->name, "Stopping", "graceful stop requested%s%s", vs->why ? ": " : "",
		     vs->why ? vs->why : "");
}

static void do_kill(Pass *p)
{
	log_warn("%s: did not stop within %u s; killing", p->name, p->d->cfg->stop_timeout_s);
	daemon_event(p->d, p->name, "Killed", "did not stop within %u s: SIGKILL",
		     p->d->cfg->stop_timeout_s);
	int r = vm_kill(p->d->rt, p->name);
	if (r < 0 && r != -ESRCH)
		log_warn_errno(r, "%s: kill: %m", p->name);
}

static int do_fail_boot(Pass *p)
{
	VmState *vs = p->vs;
	const VmSpec *spec = p->spec;
	_cleanup_free_ char *tail = console_tail(p->d, p->row);
	_cleanup_free_ char *msg = xasprintf(
		"not ready after %u s (tcp port %u); console tail:\n%s", spec->readiness_timeout_s,
		spec->readiness_tcp_port, tail ? tail : "(empty)");
	vs->boot_failed = true; /* the exit that follows is this failure */
	daemon_event(p->d, vs->name, "BootTimeout", "not ready after %u s (tcp port %u)",
		     spec->readiness_timeout_s, spec->readiness_tcp_port);
	int r = vm_kill(p->d->rt, vs->name);
	if (r < 0 && r != -ESRCH)
		log_warn_errno(r, "%s: kill after boot timeout: %m", vs->name);
	vs->exited = true;
	vs->exit_ok = false;
	return note_failure(p->d, vs, p->row, tail, msg);
}

/* No row and nothing recorded or running: only the status file and the
 * momentary state are left to drop. */
static int do_forget(Pass *p)
{
	if (status_writer_last(p->d->status, p->name))
		status_writer_remove(p->d->status, p->name);
	console_forget(p->d->consoles, p->name);
	vm_state_drop(p->d, p->name);
	return 0;
}

/* Intent deleted (or leftovers without a row): tear everything down, then
 * the row and the status. Teardown comes first and an error stops here, so
 * nothing is lost track of; the pass is retried with back-off. */
static int do_delete(Pass *p)
{
	Daemon *d = p->d;
	VmRecord *row = p->row;
	grow_cancel(p->vs); /* before its VM dir goes */
	/* Without a row there is no VM dir to remove (its uid is unknown):
	 * just the momentary objects the handles recorded. */
	int r = vm_teardown(d->rt, p->name, row ? row->uid : "", row ? row->api_sock : NULL,
			    row != NULL);
	if (r < 0)
		return r;
	if (row) {
		if ((r = store_delete_vm(d->store, p->name)) < 0 && r != -ENOENT)
			return r;
		log_info("%s: deleted (teardown complete, intent removed)", p->name);
		daemon_event(d, p->name, "Deleted", "teardown complete, intent removed");
	}
	return do_forget(p);
}

/* ---- status -------------------------------------------------------------------- */

static const char *ready_message(const Decision *dec, const VmState *vs, const VmSpec *spec)
{
	switch (dec->phase) {
	case VM_PHASE_INVALID: return "the spec has never been valid";
	case VM_PHASE_STOPPED:
		if (streq(dec->reason, "NothingSaved"))
			return "spec.state is Suspended, but no state was saved (the VM was not running)";
		return streq(dec->reason, "Completed") ? "the guest powered off"
						       : "spec.state is Stopped";
	case VM_PHASE_SUSPENDED: return "spec.state is Suspended";
	case VM_PHASE_STARTING:
		if (vs && vs->resumed)
			return "resumed from its saved state; waiting for the readiness probe";
		return spec && spec->readiness_tcp_port ? "waiting for the readiness probe"
							: "booting";
	case VM_PHASE_STOPPING: return vs && vs->why ? vs->why : "stopping";
	case VM_PHASE_PENDING:
		if (streq(dec->reason, "Launching"))
			return "the VMM is being launched";
		if (streq(dec->reason, "WaitingForLaunchSlot"))
			return "waiting for a launch slot (--max-parallel-starts launches run at once)";
		return vs && vs->last_error ? vs->last_error : "";
	default: return vs && vs->last_error ? vs->last_error : "";
	}
}

/* "Suspended": True with when and how big while a state is saved; False
 * with the reason after a resume, a cold boot instead of one, or a failed
 * suspend. Absent for a VM never suspended. */
static void suspend_condition(VmStatus *st, const Decision *dec, const VmState *vs, int64_t now)
{
	if (!vs)
		return;
	if (dec->phase == VM_PHASE_SUSPENDED && vs->saved.saved) {
		char at[64];
		time_format_rfc3339(vs->saved.saved_at_ms, at, sizeof(at));
		_cleanup_free_ char *msg =
			xasprintf("state saved at %s, %llu bytes (%s)", at,
				  (unsigned long long)vs->saved.size,
				  vs->saved.vmm_version ? vs->saved.vmm_version : "");
		vm_status_set_condition(st, "Suspended", COND_TRUE, "StateSaved", msg, now);
	} else if (vs->suspend_reason)
		vm_status_set_condition(st, "Suspended", COND_FALSE, vs->suspend_reason,
					vs->suspend_message ? vs->suspend_message : "", now);
}

static VmStatus *build_status(Daemon *d, const char *name, const VmRecord *row,
			      const SpecNameInfo *info, const Decision *dec, VmState *vs,
			      const VmSpec *spec)
{
	int64_t now = time_now_realtime_ms();
	VmStatus *st = vm_status_new(name);
	const char *owner = row ? row->source_file : info ? info->owner : NULL;

	if (owner)
		st->source_file = spec_sync_display_path(d->sync, owner);
	if (row) {
		st->spec_hash = xstrdup(row->spec_hash);
		st->generation = row->generation;
		st->observed_generation = vs ? vs->observed_generation : 0;
		st->guest_ip = xstrdup(row->guest_ip);
		st->restart_count = row->restart_count;
	}
	st->phase = dec->phase;
	VmHandles *h = handle_cache_get(runtime_cache(d->rt), name);
	if (h && vm_alive(d->rt, name)) {
		st->pid = h->pid;
		st->tap = xstrdup(h->tap);
		st->started_at_ms = h->started_at_ms;
	}
	if (vs && vs->last_error)
		st->last_error = xstrdup(vs->last_error);
	else if (row && row->last_error && dec->phase != VM_PHASE_RUNNING)
		st->last_error = xstrdup(row->last_error); /* from before a restart */
	if (info && info->spec_error) {
		_cleanup_free_ char *msg = xasprintf("%s%s", info->spec_error,
						     row ? " (acting on the last valid spec)" : "");
		vm_status_set_condition(st, "SpecValid", COND_FALSE, "InvalidSpec", msg, now);
		if (!st->last_error)
			st->last_error = xstrdup(info->spec_error);
	} else
		vm_status_set_condition(st, "SpecValid", COND_TRUE, "Valid", "", now);
	if (info && info->conflict)
		vm_status_set_condition(st, "NameConflict", COND_TRUE, "DuplicateName",
					info->conflict, now);
	if (vs && vs->disk_note)
		vm_status_set_condition(st, "Disks", COND_TRUE, vs->disk_reason, vs->disk_note,
					now);
	suspend_condition(st, dec, vs, now);
	bool ready = dec->phase == VM_PHASE_RUNNING;
	vm_status_set_condition(st, "Ready", ready ? COND_TRUE : COND_FALSE, dec->reason,
				ready ? "" : ready_message(dec, vs, spec), now);
	vm_status_inherit_transitions(st, status_writer_last(d->status, name));
	return st;
}

static bool cond_true(const VmStatus *s, const char *type)
{
	const Condition *c = s ? vm_status_get_condition(s, type) : NULL;
	return c && c->status == COND_TRUE;
}

/* Events that are transitions of the status document: a first status for
 * an intent, a new generation, a spec newly rejected, newly Ready. */
static void status_events(Daemon *d, const VmStatus *last, const VmStatus *st, const VmRecord *row)
{
	if (row && !last)
		daemon_event(d, st->name, "Created", "intent from %s (generation %lld)",
			     st->source_file ? st->source_file : "?", (long long)row->generation);
	else if (row && last && row->generation > last->generation)
		daemon_event(d, st->name, "SpecUpdated", "generation %lld from %s",
			     (long long)row->generation, st->source_file ? st->source_file : "?");
	const Condition *sv = vm_status_get_condition(st, "SpecValid");
	const Condition *old_sv = last ? vm_status_get_condition(last, "SpecValid") : NULL;
	if (sv && sv->status == COND_FALSE &&
	    (!old_sv || old_sv->status != COND_FALSE || !streq_ptr(old_sv->message, sv->message)))
		daemon_event(d, st->name, "SpecRejected", "%s", sv->message ? sv->message : "");
	if (cond_true(st, "Ready") && !cond_true(last, "Ready"))
		daemon_event(d, st->name, "Ready", "phase Running%s",
			     st->pid ? "" : " (no VMM running)");
}

/* Write what this pass decided; unchanged status is not rewritten. */
static int write_status(Daemon *d, const char *name, const VmRecord *row, const SpecNameInfo *info,
			const Decision *dec, VmState *vs, const VmSpec *spec)
{
	if (!dns_label_valid(name))
		return 0;
	_cleanup_(vm_status_freep) VmStatus *st = build_status(d, name, row, info, dec, vs, spec);
	status_events(d, status_writer_last(d->status, name), st, row);
	int r = status_writer_write(d->status, st);
	if (r > 0)
		log_info("%s: phase %s (%s)", name, vm_phase_to_string(st->phase), dec->reason);
	return r < 0 ? r : 0;
}

/* ---- the pass -------------------------------------------------------------------- */

static void schedule(Pass *p, const Decision *dec)
{
	VmState *vs = p->vs;
	uint64_t now = time_now_ms();
	bool probing = dec->phase == VM_PHASE_STARTING && p->spec && p->spec->readiness_tcp_port &&
		       p->row && p->row->guest_ip;
	if (probing)
		probe_start(p->d, vs, p->row->guest_ip, p->spec->readiness_tcp_port);
	WakeFacts w = {
		.now = now,
		.stop_deadline = vs->stop_deadline,
		.boot_deadline = vs->boot_deadline,
		.probe_due = probing ? probe_due(vs) : 0,
		.backoff_until = vs->book.backoff_until,
		.suspend_retry_at = vs->suspend_retry_at,
		.stop_requested = vs->stop_requested,
		.retry_at = vs->pidfd < 0 ? vs->watch_retry_at : 0,
	};
	if (grow_running(vs)) /* poll the work-disk grow child */
		w.retry_at = w.retry_at ? MIN(w.retry_at, now + GROW_POLL_MS) : now + GROW_POLL_MS;
	vs->wake_at = reconcile_wake_at(dec, &w);
}

/* Execute the decided step. Returns the first error; *done is set when the
 * step already reported status (or removed it) and the pass ends there. */
static int execute(Pass *p, Decision *dec, bool *done)
{
	int r = 0;
	*done = false;
	switch (dec->step) {
	case STEP_FORGET: *done = true; return do_forget(p);
	case STEP_DELETE: *done = true; return do_delete(p);
	case STEP_START:
	case STEP_RESUME:
		r = do_start(p, dec->step == STEP_RESUME);
		if (r == START_PREPARING || r == START_LAUNCHING) {
			*dec = r == START_PREPARING ? reconcile_preparing() : reconcile_launching();
			return 0;
		}
		*dec = dec->step == STEP_RESUME ? reconcile_after_resume(!p->vs->resume_failed)
						: reconcile_after_start(!p->vs->start_failed,
									p->spec->restart_policy);
		return r;
	case STEP_SUSPEND: return do_suspend(p, dec);
	case STEP_DISCARD: return do_discard(p, dec);
	case STEP_STOP: do_stop(p); return 0;
	case STEP_KILL: do_kill(p); return 0;
	case STEP_CLEANUP:
		/* Report the exit before the teardown: deleting a tap takes the
		 * kernel 10–30 ms, and a status staged in this turn's batch lands
		 * only when the batch ends. So this turn stages the status and
		 * the teardown waits for the next turn (due now), which looks
		 * again: the report is on disk first. */
		*done = true;
		r = write_status(p->d, p->name, p->row, p->known ? &p->info : NULL, dec, p->vs,
				 p->spec);
		if (!p->vs->exit_reported) {
			p->vs->exit_reported = true;
			p->vs->wake_at = time_now_ms();
			return r;
		}
		p->vs->exit_reported = false;
		keep_error(&r, vm_teardown(p->d->rt, p->name, p->row ? p->row->uid : "",
					   p->row ? p->row->api_sock : NULL, false));
		daemon_enqueue(p->d, p->name);
		return r;
	case STEP_FAIL_BOOT: return do_fail_boot(p);
	case STEP_WAIT:
		if (reconcile_waits_for_slot(dec) && !p->vs->slot_waiting) {
			launcher_wait_slot(p->d->launcher, p->name);
			p->vs->slot_waiting = true;
		}
		return 0;
	case STEP_NONE:
	case _STEP_MAX: return 0;
	}
	return 0;
}

static int pass_run(Daemon *d, const char *name)
{
	_cleanup_(vm_record_freep) VmRecord *row = NULL;
	int r = store_get_vm(d->store, name, &row);
	if (r < 0 && r != -ENOENT)
		return r;
	Pass p = { .d = d, .name = name, .vs = vm_state(d, name), .row = row };
	if ((r = row_spec(p.vs, row, &p.spec)) < 0)
		return r;
	p.known = spec_sync_name_info(d->sync, name, &p.info);

	int err = gather(&p);
	Decision dec = reconcile_decide(&p.dv, &p.ov);
	log_debug("%s: %s → %s (%s)", name, vm_phase_to_string(dec.phase), step_to_string(dec.step),
		  dec.reason);
	bool settled = reconcile_settled(&dec, &p.dv, &p.ov);
	if (dec.step != STEP_CLEANUP)
		p.vs->exit_reported = false;
	bool done;
	keep_error(&err, execute(&p, &dec, &done));
	if (done)
		return err;
	/* What we report now is the decision we acted on; a step that changed
	 * the world gets a fresh look on the next pass. */
	if (row && settled && p.vs->observed_generation != row->generation) {
		r = store_set_observed_generation(d->store, name, row->generation);
		if (r >= 0)
			p.vs->observed_generation = row->generation;
		keep_error(&err, r);
	}
	schedule(&p, &dec);
	keep_error(&err, write_status(d, name, row, p.known ? &p.info : NULL, &dec, p.vs, p.spec));
	return err;
}

/* Pop slot waiters until one is still waiting, and queue it: it may take
 * the slot that just freed. */
static void invite_waiter(Daemon *d)
{
	char *name;
	while ((name = launcher_next_waiter(d->launcher))) {
		VmState *vs = hashmap_get(d->vms, name);
		bool waiting = vs && vs->slot_waiting;
		if (waiting) {
			vs->slot_waiting = false;
			vs->slot_invited = true;
			daemon_enqueue(d, name);
		}
		free(name);
		if (waiting)
			return;
	}
}

int reconcile_name(Daemon *d, const char *name)
{
	VmState *vs = hashmap_get(d->vms, name);
	bool invited = vs && vs->slot_invited;
	if (vs)
		vs->slot_invited = false;
	int r = pass_run(d, name);
	/* An invitation the VM did not use (deleted, stopped, backing off)
	 * passes on to the next waiter, or the slot would idle. */
	vs = hashmap_get(d->vms, name);
	if (invited && !(vs && vs->launching) && !launcher_full(d->launcher))
		invite_waiter(d);
	return r;
}

/* Give finished launches to their VMs; a VM gone from the map (cannot
 * happen while the decision waits for its launch) gets it finished here. */
static void hand_back(Daemon *d, VmLaunch **done)
{
	for (size_t i = 0; done && done[i]; i++) {
		const char *name = vm_launch_name(done[i]);
		VmState *vs = hashmap_get(d->vms, name);
		if (vs && vs->launching && !vs->launch_done) {
			vs->launch_done = done[i];
			daemon_enqueue(d, name);
		} else {
			_cleanup_free_ char *err = NULL;
			log_warn("%s: launch finished for a VM no longer waiting for it", name);
			if (vm_launch_finish(d->rt, done[i], &err) < 0)
				log_warn("%s: its launch failed: %s", name, err ? err : "?");
		}
	}
}

size_t reconcile_on_launch(Daemon *d, bool wait)
{
	VmLaunch **done = NULL;
	size_t n = launcher_collect(d->launcher, wait, &done);
	hand_back(d, done);
	free(done);
	for (size_t i = 0; i < n; i++)
		invite_waiter(d);
	return n;
}

void reconcile_launches_settle(Daemon *d)
{
	if (!d->launcher)
		return;
	while (launcher_in_flight(d->launcher) > 0) {
		VmLaunch **done = NULL;
		launcher_collect(d->launcher, true, &done);
		hand_back(d, done);
		free(done);
	}
	size_t st = 0;
	void *v;
	while (hashmap_iter(d->vms, &st, NULL, &v)) {
		VmState *vs = v;
		VmLaunch *l = TAKE_PTR(vs->launch_done);
		if (!l)
			continue;
		vs->launching = false;
		_cleanup_free_ char *err = NULL;
		/* Installed: the VMM runs with its pid recorded, and the next
		 * bangerd adopts it; failed: its tap and disks are undone now. */
		if (vm_launch_finish(d->rt, l, &err) < 0)
			log_warn("%s: launch failed at exit: %s", vs->name, err ? err : "?");
	}
}

void reconcile_result(Daemon *d, const char *name, int r)
{
	VmState *vs = hashmap_get(d->vms, name);
	if (r >= 0) {
		if (vs)
			vs->error_streak = 0;
		return;
	}
	if (!vs)
		vs = vm_state(d, name);
	uint64_t delay = reconcile_error_retry_ms(vs->error_streak);
	vs->error_streak++;
	vs->wake_at = time_now_ms() + delay;
	log_warn_errno(r, "%s: reconcile failed: %m; retrying in %llu ms", name,
		       (unsigned long long)delay);
}

uint64_t reconcile_due(Daemon *d, uint64_t now)
{
	uint64_t next = UINT64_MAX;
	size_t st = 0;
	void *v;
	while (hashmap_iter(d->vms, &st, NULL, &v)) {
		VmState *vs = v;
		if (!vs->wake_at)
			continue;
		if (vs->wake_at <= now) {
			vs->wake_at = 0;
			daemon_enqueue(d, vs->name);
		} else if (vs->wake_at < next)
			next = vs->wake_at;
	}
	return next;
}

/* An adopted VMM's uid is the truth: a row that lost it (a crash before
 * the first pass committed) gets it back, so no other VM is given it. */
static void record_adopted_uid(Daemon *d, const VmRecord *row, pid_t pid)
{
	uid_t uid;
	if (proc_uid(pid, &uid) < 0 || uid == 0 || uid == row->vmm_uid)
		return;
	log_info("%s: adopted VMM runs as uid %u (row said %u): recording it", row->name,
		 (unsigned)uid, (unsigned)row->vmm_uid);
	int r = store_set_vmm_uid(d->store, row->name, (uint32_t)uid);
	if (r < 0)
		log_warn_errno(r, "%s: record vmm uid %u: %m", row->name, (unsigned)uid);
}

int reconcile_rediscover_all(Daemon *d)
{
	VmRecord **rows = NULL;
	size_t n = 0, adopted = 0;
	int r = store_list_vms(d->store, &rows, &n);
	if (r < 0) /* without the rows nothing is known to be ours: no sweep either */
		return log_errno(r, "rediscovery: list VMs: %m");
	char **uids = xcalloc(n + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++) {
		VmRecord *row = rows[i];
		VmState *vs = vm_state(d, row->name);
		uids[i] = xstrdup(row->uid);
		vs->observed_generation = row->observed_generation;
		/* Never started (no paths recorded before the first start): there
		 * is nothing to find, and the orphan sweep covers the rest. */
		if (!row->vm_dir)
			continue;
		r = vm_rediscover(d->rt, row->name, row->uid, row->api_sock);
		if (r < 0) {
			/* Cannot tell (out of fds, /proc unreadable): a VMM that runs
			 * must never be taken for dead and started twice. */
			log_errno(r,
				  "%s: VMM not looked for; refusing to go on (and to sweep "
				  "orphans): a second VMM could be started beside it",
				  row->name);
			strv_free(uids);
			vm_record_list_free(rows, n);
			return r;
		}
		if (r == 0)
			continue;
		adopted++;
		VmHandles *h = handle_cache_get(runtime_cache(d->rt), row->name);
		daemon_event(d, row->name, "Adopted", "running VMM (pid %d) adopted at start-up",
			     (int)h->pid);
		if (watch_pid(d, vs, h->pid) < 0)
			vs->wake_at = time_now_ms() + reconcile_error_retry_ms(0);
		record_adopted_uid(d, row, h->pid);
		/* A save the last controller died in: its exit is that suspend. */
		if (vm_saved_recover(d->rt, row->name, row->uid, row->api_sock) > 0)
			vs->suspend_committed = true;
		/* Adopted as it was: a VM that was Ready stays Ready (no flap);
		 * one that was still booting is probed again. Without a probe a
		 * running VMM is ready, whatever the last status said (it may be
		 * Pending/Launching: bangerd stopped while the launch ran). */
		const VmStatus *last = status_writer_last(d->status, row->name);
		const Condition *c = last ? vm_status_get_condition(last, "Ready") : NULL;
		uint64_t now = time_now_ms();
		const VmSpec *spec = NULL;
		bool no_probe = row_spec(vs, row, &spec) >= 0 && spec && !spec->readiness_tcp_port;
		vs->ready = (c && c->status == COND_TRUE) || no_probe;
		reconcile_running(&vs->book, now);
		if (spec)
			vs->boot_deadline = now + (uint64_t)spec->readiness_timeout_s * 1000;
	}
	/* Adopted VMs get the current --host-allow policy now, not at the next
	 * start (only then: a controller with no running VM touches no
	 * firewall). */
	if (adopted > 0 && runtime_network_setup(d->rt) < 0)
		log_warn("firewall tables could not be refreshed; the previous policy stays");
	_cleanup_strv_free_ char **fw_taps = NULL;
	if (adopted > 0 && runtime_vm_fw_taps(d->rt, &fw_taps) >= 0)
		for (size_t i = 0; i < n; i++)
			if (vm_alive(d->rt, rows[i]->name) &&
			    vm_firewall_ensure(d->rt, rows[i]->name, rows[i]->uid,
					       rows[i]->guest_ip, fw_taps) < 0)
				log_warn("%s: its firewall rules could not be added",
					 rows[i]->name);
	int swept = runtime_sweep_orphans(d->rt, uids);
	if (swept > 0)
		log_info("removed %d orphaned object(s) no VM owns", swept);
	strv_free(uids);
	vm_record_list_free(rows, n);
	return 0;
}

/* ---- suspend at exit (--on-stop=suspend) -------------------------------------------- */

typedef struct {
	Runtime *rt;
	char *name, *uid, *api_sock;
	unsigned timeout_ms;
	pthread_t thread;
	bool started;
	int r;
	char *error;
	SavedState saved;
} ExitSuspend;

/* One VM's save, on its own thread: vm_suspend only reads the handle cache
 * and talks to its own VMM, so saves of different VMs run side by side. */
static void *exit_suspend_one(void *arg)
{
	ExitSuspend *s = arg;
	s->r = vm_suspend(s->rt, s->name, s->uid, s->api_sock, s->timeout_ms, &s->saved, &s->error);
	return NULL;
}

static void exit_suspend_report(Daemon *d, ExitSuspend *s, const VmRecord *row, VmState *vs)
{
	if (s->r < 0) {
		log_warn("%s: suspend at exit failed: %s; the guest keeps running", s->name,
			 s->error ? s->error : strerror(-s->r));
		daemon_event(d, s->name, "SuspendFailed", "at exit: %s; the guest keeps running",
			     s->error ? s->error : strerror(-s->r));
		return;
	}
	daemon_event(d, s->name, "Suspended", "at exit: state saved (%llu bytes, %s)",
		     (unsigned long long)s->saved.size, s->saved.vmm_version);
	vs->ready = false;
	saved_state_done(&vs->saved);
	vs->saved = s->saved;
	s->saved = (SavedState){ 0 };
	Decision dec = { STEP_NONE, VM_PHASE_SUSPENDED, "Suspended" };
	const VmSpec *spec = NULL;
	SpecNameInfo info;
	bool known = spec_sync_name_info(d->sync, s->name, &info);
	if (row_spec(vs, row, &spec) >= 0)
		write_status(d, s->name, row, known ? &info : NULL, &dec, vs, spec);
}

void reconcile_suspend_all(Daemon *d, unsigned timeout_s)
{
	VmRecord **rows = NULL;
	size_t n = 0, ok = 0, tried = 0;
	if (store_list_vms(d->store, &rows, &n) < 0) {
		log_error("suspend at exit: cannot list VMs; they keep running");
		return;
	}
	uint64_t t0 = time_now_ms();
	ExitSuspend *all = xcalloc(n ? n : 1, sizeof(ExitSuspend));
	for (size_t i = 0; i < n; i++) {
		ExitSuspend *s = &all[i];
		if (!rows[i]->api_sock || !vm_alive(d->rt, rows[i]->name))
			continue;
		*s = (ExitSuspend){ .rt = d->rt,
				    .name = rows[i]->name,
				    .uid = rows[i]->uid,
				    .api_sock = rows[i]->api_sock,
				    .timeout_ms = timeout_s * 1000 };
		s->started = pthread_create(&s->thread, NULL, exit_suspend_one, s) == 0;
		if (!s->started) {
			s->r = -EAGAIN;
			s->error = xstrdup("could not start a thread for its save");
		}
		tried++;
	}
	/* Each save bounds itself (the driver cancels a migration at its
	 * deadline), so joining them all is bounded by timeout_s too. */
	for (size_t i = 0; i < n; i++) {
		ExitSuspend *s = &all[i];
		if (!s->name)
			continue;
		if (s->started)
			pthread_join(s->thread, NULL);
		ok += s->r >= 0;
		exit_suspend_report(d, s, rows[i], vm_state(d, s->name));
		free(s->error);
		saved_state_done(&s->saved);
	}
	log_info("suspend at exit: %zu of %zu running VM(s) saved in %llu ms", ok, tried,
		 (unsigned long long)(time_now_ms() - t0));
	free(all);
	vm_record_list_free(rows, n);
}
