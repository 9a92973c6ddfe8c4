/* reconciler.c — one reconcile pass for one VM: gather desired (store,
 * spec sync) and observed (vm_alive, handles, this controller's momentary
 * VmState), decide (reconcile/decide.h), do the step, write status.
 *
 * Nothing here waits for a VM: exits arrive as pidfd events, readiness as
 * non-blocking connects in the event loop, deadlines as requeue-after
 * times. Each step is short and bounded: the launch waits for the VMM's
 * API socket (typically ~100 ms; at most 5 s for QEMU, 3 s plus the API calls
 * for Firecracker) and disk preparation runs qemu-img/mkfs.ext4 at most. */
#include "daemon/daemon-internal.h"
#include "net/net.h"
#include "util/fileio.h"
#include "util/log.h"
#include "util/proc.h"
#include "util/timeutil.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>

#define PROBE_INTERVAL_MS 250
#define PROBE_CONNECT_TIMEOUT_MS 1000
#define CONSOLE_TAIL_BYTES 1500

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

static void probe_close(Daemon *d, VmState *vs)
{
	if (vs->probe_fd >= 0) {
		epoll_ctl(d->epfd, EPOLL_CTL_DEL, vs->probe_fd, NULL);
		close(vs->probe_fd);
		vs->probe_fd = -1;
	}
}

static void pidfd_close(Daemon *d, VmState *vs)
{
	if (vs->pidfd >= 0) {
		epoll_ctl(d->epfd, EPOLL_CTL_DEL, vs->pidfd, NULL);
		close(vs->pidfd);
		vs->pidfd = -1;
	}
	vs->watched_pid = 0;
}

void vm_state_free(Daemon *d, VmState *vs)
{
	if (!vs)
		return;
	probe_close(d, vs);
	pidfd_close(d, vs);
	free(vs->name);
	free(vs->last_error);
	free(vs->why);
	free(vs->exit_desc);
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

/* Watch the VMM's exit with a pidfd: works for adopted VMs too, which are
 * not our children. */
static void watch_pid(Daemon *d, VmState *vs, pid_t pid)
{
	if (vs->pidfd >= 0 && vs->watched_pid == pid)
		return;
	pidfd_close(d, vs);
	int fd = proc_pidfd_open(pid);
	if (fd < 0) {
		log_warn_errno(fd, "%s: pidfd_open(%d): %m", vs->name, (int)pid);
		return;
	}
	struct epoll_event e = { .events = EPOLLIN, .data.ptr = &vs->pid_src };
	epoll_ctl(d->epfd, EPOLL_CTL_ADD, fd, &e);
	vs->pidfd = fd;
	vs->watched_pid = pid;
}

/* ---- events ---------------------------------------------------------------- */

void reconcile_on_pidfd(Daemon *d, VmState *vs)
{
	int status = 0;
	pid_t pid = vs->watched_pid;
	/* Our child: its exit status says crash or clean power-off. An adopted
	 * VMM is not our child, so its status is unknown: treated as a crash
	 * unless we asked it to stop. */
	pid_t w = waitpid(pid, &status, WNOHANG);
	bool known = w == pid;
	console_drain(d->consoles, vs->name); /* its last words, before the socket goes */
	bool ok = known && WIFEXITED(status) && WEXITSTATUS(status) == 0;
	pidfd_close(d, vs);
	probe_close(d, vs);
	if (vs->boot_failed) {
		vs->boot_failed = false;
		vs->exited = true;
		vs->exit_ok = false;
	} else if (vs->stop_requested) {
		log_info("%s: VMM (pid %d) stopped", vs->name, (int)pid);
		vs->stop_requested = false;
		vs->exited = false;
	} else {
		vs->exited = true;
		vs->exit_ok = ok;
		free(vs->exit_desc);
		if (known)
			vs->exit_desc = xasprintf("VMM (pid %d) exited with %s %d", (int)pid,
						  WIFEXITED(status) ? "status" : "signal",
						  WIFEXITED(status) ? WEXITSTATUS(status)
								    : WTERMSIG(status));
		else
			vs->exit_desc = xasprintf("VMM (pid %d) exited", (int)pid);
		log_warn("%s: %s", vs->name, vs->exit_desc);
	}
	vs->ready = false;
	daemon_enqueue(d, vs->name);
}

void reconcile_on_probe(Daemon *d, VmState *vs)
{
	int err = 0;
	socklen_t len = sizeof(err);
	getsockopt(vs->probe_fd, SOL_SOCKET, SO_ERROR, &err, &len);
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
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	int r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	if (r < 0 && errno != EINPROGRESS) {
		close(fd);
		vs->next_probe = now + PROBE_INTERVAL_MS;
		return;
	}
	vs->probe_fd = fd;
	vs->probe_started = now;
	struct epoll_event e = { .events = EPOLLOUT, .data.ptr = &vs->probe_src };
	epoll_ctl(d->epfd, EPOLL_CTL_ADD, fd, &e);
}

/* ---- helpers ---------------------------------------------------------------- */

/* Keep the console attached while the VMM lives: after a start, after
 * adoption by a restarted bangerd, after the serial hung up. Cheap when it
 * already is. */
static void console_keep(Daemon *d, const VmRecord *row, const VmHandles *h)
{
	_cleanup_(vm_paths_done) VmPaths p = { 0 };
	const VmmDriver *drv = vmm_driver_by_name(h->vmm);
	vm_paths_for(d->rt, row->uid, &p);
	bool sock = drv && drv->serial_socket;
	ConsoleTarget t = { .name = row->name, .console_log = p.console_path,
			    .vmm_log = p.log_path, .serial_sock = sock ? p.serial_sock : NULL,
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
		off_t osize = ofd >= 0 ? lseek(ofd, 0, SEEK_END) : 0, want = CONSOLE_TAIL_BYTES - size;
		ssize_t got = osize > 0 ? pread(ofd, data, (size_t)MIN(want, osize), MAX(osize - want, 0)) : 0;
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

static void note_failure(Daemon *d, VmState *vs, const VmRecord *row, const char *what)
{
	uint64_t now = time_now_ms();
	if (vs->running_since && now - vs->running_since > RECONCILE_HEALTHY_RESET_MS)
		vs->failures = 0;
	vs->running_since = 0;
	vs->failures++;
	vs->failed_generation = row->generation;
	vs->backoff_until = now + reconcile_backoff_ms(vs->failures);
	_cleanup_free_ char *tail = console_tail(d, row);
	_cleanup_free_ char *panic = panic_line(tail);
	if (panic)
		set_error(vs, panic);
	else if (what)
		set_error(vs, what);
	log_warn("%s: %s; restart back-off %llu ms", vs->name, vs->last_error ? vs->last_error : "failed",
		 (unsigned long long)reconcile_backoff_ms(vs->failures));
	store_set_last_error(d->store, row->name, vs->last_error);
}

static int ensure_ip_and_paths(Daemon *d, const VmRecord *row, const VmSpec *spec,
			       char **ret_ip)
{
	*ret_ip = NULL;
	if (!spec->network_enabled)
		return 0;
	_cleanup_strv_free_ char **used = NULL;
	int r = store_list_guest_ips(d->store, &used);
	if (r < 0)
		return r;
	r = runtime_pick_ip(d->rt, spec, row->guest_ip, used, ret_ip);
	if (r < 0)
		return r;
	if (!streq_ptr(row->guest_ip, *ret_ip) &&
	    (r = store_set_guest_ip(d->store, row->name, *ret_ip)) < 0) {
		free(*ret_ip);
		*ret_ip = NULL;
		return r;
	}
	return 0;
}

/* ---- steps ----------------------------------------------------------------- */

static void do_start(Daemon *d, VmState *vs, const VmRecord *row, const VmSpec *spec)
{
	_cleanup_free_ char *ip = NULL, *err = NULL;
	_cleanup_(vm_paths_done) VmPaths p = { 0 };
	bool restart = vs->exited || vs->start_failed;
	int r = ensure_ip_and_paths(d, row, spec, &ip);
	if (r < 0) {
		err = xasprintf("guest IP: %s", strerror(-r));
		goto failed;
	}
	vm_paths_for(d->rt, row->uid, &p);
	store_set_paths(d->store, row->name, p.vm_dir, p.api_sock, p.log_path);
	VmStartRequest req = { .name = row->name, .uid = row->uid, .spec = spec, .guest_ip = ip };
	r = vm_start(d->rt, &req, &err);
	if (r < 0)
		goto failed;
	if (restart)
		store_set_restart_count(d->store, row->name, row->restart_count + 1);
	VmHandles *h = handle_cache_get(runtime_cache(d->rt), row->name);
	watch_pid(d, vs, h->pid);
	console_keep(d, row, h); /* at once: QEMU discards serial output nobody reads */
	vs->exited = vs->exit_ok = vs->start_failed = false;
	vs->ready = spec->readiness_tcp_port == 0; /* no probe: running is ready */
	vs->boot_deadline = time_now_ms() + (uint64_t)spec->readiness_timeout_s * 1000;
	vs->next_probe = 0;
	vs->running_since = time_now_ms();
	free(vs->why);
	vs->why = NULL;
	set_error(vs, NULL);
	store_set_last_error(d->store, row->name, NULL);
	daemon_enqueue(d, row->name);
	return;
failed:
	vs->start_failed = true;
	vs->exited = false;
	if (restart)
		store_set_restart_count(d->store, row->name, row->restart_count + 1);
	note_failure(d, vs, row, err);
	/* A broken console from an earlier boot must not mask this error. */
	set_error(vs, err);
	store_set_last_error(d->store, row->name, err);
}

static void do_stop(Daemon *d, VmState *vs, const VmRecord *row)
{
	vs->stop_requested = true;
	vs->stop_deadline = time_now_ms() + (uint64_t)d->cfg->stop_timeout_s * 1000;
	int r = vm_request_stop(d->rt, vs->name, row ? row->api_sock : NULL);
	if (r < 0 && r != -ESRCH)
		log_warn_errno(r, "%s: graceful stop request failed: %m (will kill at the deadline)",
			       vs->name);
	else
		log_info("%s: graceful stop requested", vs->name);
}

static void do_kill(Daemon *d, VmState *vs)
{
	log_warn("%s: did not stop within %u s; killing", vs->name, d->cfg->stop_timeout_s);
	int r = vm_kill(d->rt, vs->name);
	if (r < 0 && r != -ESRCH)
		log_warn_errno(r, "%s: kill: %m", vs->name);
}

static void do_fail_boot(Daemon *d, VmState *vs, const VmRecord *row, const VmSpec *spec)
{
	_cleanup_free_ char *tail = console_tail(d, row);
	_cleanup_free_ char *panic = panic_line(tail);
	_cleanup_free_ char *msg =
		panic ? xstrdup(panic)
		      : xasprintf("not ready after %u s (tcp port %u); console tail:\n%s",
				  spec->readiness_timeout_s, spec->readiness_tcp_port,
				  tail ? tail : "(empty)");
	vs->boot_failed = true; /* the exit that follows is this failure */
	vm_kill(d->rt, vs->name);
	vs->exited = true;
	vs->exit_ok = false;
	note_failure(d, vs, row, msg);
	set_error(vs, msg);
	store_set_last_error(d->store, row->name, msg);
}

static int do_delete(Daemon *d, const VmRecord *row, const char *name)
{
	int r = 0;
	if (row) {
		r = vm_teardown(d->rt, name, row->uid, row->api_sock, true);
		if (r < 0)
			return r; /* retry later: nothing may be lost track of */
		if ((r = store_delete_vm(d->store, name)) < 0 && r != -ENOENT)
			return r;
		log_info("%s: deleted (teardown complete, intent removed)", name);
	}
	if (status_writer_last(d->status, name) || row)
		status_writer_remove(d->status, name);
	console_forget(d->consoles, name);
	vm_state_drop(d, name);
	return 0;
}

/* ---- status -------------------------------------------------------------------- */

static const char *ready_message(const Decision *dec, const VmState *vs, const VmSpec *spec)
{
	switch (dec->phase) {
	case VM_PHASE_INVALID:
		return "the spec has never been valid";
	case VM_PHASE_STOPPED:
		return streq(dec->reason, "Completed") ? "the guest powered off" : "spec.state is Stopped";
	case VM_PHASE_STARTING:
		return spec && spec->readiness_tcp_port ? "waiting for the readiness probe"
							: "booting";
	case VM_PHASE_STOPPING:
		return vs && vs->why ? vs->why : "stopping";
	default:
		return vs && vs->last_error ? vs->last_error : "";
	}
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
	bool ready = dec->phase == VM_PHASE_RUNNING;
	vm_status_set_condition(st, "Ready", ready ? COND_TRUE : COND_FALSE, dec->reason,
				ready ? "" : ready_message(dec, vs, spec), now);
	vm_status_inherit_transitions(st, status_writer_last(d->status, name));
	return st;
}

/* Write what this pass decided; unchanged status is not rewritten. */
static int write_status(Daemon *d, const char *name, const VmRecord *row,
			const SpecNameInfo *info, const Decision *dec, VmState *vs,
			const VmSpec *spec)
{
	if (!dns_label_valid(name))
		return 0;
	_cleanup_(vm_status_freep) VmStatus *st = build_status(d, name, row, info, dec, vs, spec);
	int r = status_writer_write(d->status, st);
	if (r > 0)
		log_info("%s: phase %s (%s)", name, vm_phase_to_string(st->phase), dec->reason);
	return r < 0 ? r : 0;
}

/* ---- the pass -------------------------------------------------------------------- */

static void gather(Daemon *d, VmState *vs, const VmRecord *row, const VmSpec *spec,
		   const SpecNameInfo *info, bool known, DesiredView *dv, ObservedView *ov)
{
	uint64_t now = time_now_ms();
	VmHandles *h = handle_cache_get(runtime_cache(d->rt), vs->name);
	bool alive = vm_alive(d->rt, vs->name);

	if (alive && h && vs->pidfd < 0)
		watch_pid(d, vs, h->pid);
	if (alive && h && row)
		console_keep(d, row, h);
	*dv = (DesiredView){
		.has_intent = row && !row->deleted,
		.intent_deleted = row && row->deleted,
		.spec_error = known && info->spec_error,
		.state = spec ? spec->state : VM_STATE_RUNNING,
		.restart_policy = spec ? spec->restart_policy : RESTART_ALWAYS,
	};
	if (alive && spec && h && h->spec_json) {
		_cleanup_(vm_spec_freep) VmSpec *booted = NULL;
		char *why = NULL;
		if (vm_spec_from_json(h->spec_json, &booted) >= 0 &&
		    !vm_spec_boot_equal(booted, spec, &why)) {
			dv->boot_changed = true;
			if (!streq_ptr(vs->why, why))
				log_info("%s: spec change needs a restart: %s", vs->name, why);
			free(vs->why);
			vs->why = xasprintf("restarting for a spec change: %s", why);
		}
		free(why);
	}
	*ov = (ObservedView){
		.alive = alive,
		.has_resources = vm_handles_any(h),
		.stop_requested = vs->stop_requested,
		.stop_overdue = vs->stop_requested && now >= vs->stop_deadline,
		.ready = vs->ready,
		.boot_overdue = !vs->ready && vs->boot_deadline && now >= vs->boot_deadline,
		.exited = vs->exited,
		.exit_ok = vs->exit_ok,
		.start_failed = vs->start_failed,
		.in_backoff = now < vs->backoff_until,
	};
}

static void schedule(Daemon *d, VmState *vs, const VmRecord *row, const VmSpec *spec,
		     const Decision *dec)
{
	uint64_t now = time_now_ms(), at = 0;
	switch (dec->phase) {
	case VM_PHASE_STOPPING:
		at = vs->stop_requested ? vs->stop_deadline : now + 100;
		break;
	case VM_PHASE_STARTING:
		at = vs->boot_deadline;
		if (spec && spec->readiness_tcp_port && row && row->guest_ip) {
			probe_start(d, vs, row->guest_ip, spec->readiness_tcp_port);
			uint64_t p = vs->probe_fd >= 0 ? vs->probe_started + PROBE_CONNECT_TIMEOUT_MS
						       : vs->next_probe;
			at = MIN(at, MAX(p, now + 1));
		}
		break;
	case VM_PHASE_FAILED:
		at = dec->step == STEP_WAIT ? vs->backoff_until : 0;
		break;
	default:
		break;
	}
	vs->wake_at = at;
}

int reconcile_name(Daemon *d, const char *name)
{
	_cleanup_(vm_record_freep) VmRecord *row = NULL;
	_cleanup_(vm_spec_freep) VmSpec *spec = NULL;
	SpecNameInfo info = { 0 };
	int r = store_get_vm(d->store, name, &row);
	if (r < 0 && r != -ENOENT)
		return r;
	if (row && vm_spec_from_json(row->spec_json, &spec) < 0)
		return log_errno(-EBADMSG, "%s: stored spec does not parse", name);
	bool known = spec_sync_name_info(d->sync, name, &info);
	VmState *vs = vm_state(d, name);
	if (row && vs->failed_generation && vs->failed_generation != row->generation) {
		/* A new spec is a new chance: forget the old failures. */
		vs->failures = 0;
		vs->backoff_until = 0;
		vs->exited = vs->start_failed = false;
		vs->failed_generation = 0;
	}
	if (vs->exit_desc && row) {
		/* An exit nobody asked for: count it, back off, keep the reason.
		 * A guest kernel panic resets the VM, which QEMU (-no-reboot)
		 * turns into a clean exit: the console tells the truth. */
		_cleanup_free_ char *tail = console_tail(d, row);
		if (vs->exit_ok && tail && strstr(tail, "Kernel panic"))
			vs->exit_ok = false;
		if (!vs->exit_ok)
			note_failure(d, vs, row, vs->exit_desc);
		else
			set_error(vs, NULL);
		free(vs->exit_desc);
		vs->exit_desc = NULL;
	}
	DesiredView dv;
	ObservedView ov;
	gather(d, vs, row, spec, &info, known, &dv, &ov);
	Decision dec = reconcile_decide(&dv, &ov);
	log_debug("%s: %s → %s (%s)", name, vm_phase_to_string(dec.phase), step_to_string(dec.step),
		  dec.reason);

	switch (dec.step) {
	case STEP_FORGET:
		return do_delete(d, row, name);
	case STEP_DELETE:
		return do_delete(d, row, name); /* an error is retried with back-off */
	case STEP_START:
		do_start(d, vs, row, spec);
		break;
	case STEP_STOP:
		do_stop(d, vs, row);
		break;
	case STEP_KILL:
		do_kill(d, vs);
		break;
	case STEP_CLEANUP:
		/* Report the exit first: deleting a tap takes the kernel ~10 ms. */
		write_status(d, name, row, known ? &info : NULL, &dec, vs, spec);
		vm_teardown(d->rt, name, row ? row->uid : "", row ? row->api_sock : NULL, false);
		daemon_enqueue(d, name);
		break;
	case STEP_FAIL_BOOT:
		do_fail_boot(d, vs, row, spec);
		break;
	case STEP_NONE:
	case STEP_WAIT:
	case _STEP_MAX:
		break;
	}
	/* A step that changed the world gets a fresh look on the next pass;
	 * what we report now is the decision we acted on. */
	bool settled = dec.step == STEP_NONE ||
		       (dec.step == STEP_WAIT && !dv.boot_changed && !ov.stop_requested);
	if (row && settled && vs->observed_generation != row->generation) {
		vs->observed_generation = row->generation;
		store_set_observed_generation(d->store, name, row->generation);
	}
	if (row && dec.step == STEP_START && !vs->start_failed)
		dec = (Decision){ STEP_WAIT, VM_PHASE_STARTING, "Booting" };
	if (row && dec.step == STEP_START && vs->start_failed)
		dec = (Decision){ STEP_WAIT, VM_PHASE_FAILED,
				  spec && spec->restart_policy == RESTART_NEVER ? "StartFailed"
										 : "CrashLoopBackOff" };
	/* re-read the row: start/stop may have changed IP and restart count */
	if (row && (dec.step == STEP_WAIT || dec.phase == VM_PHASE_FAILED)) {
		vm_record_free(row);
		row = NULL;
		store_get_vm(d->store, name, &row);
	}
	schedule(d, vs, row, spec, &dec);
	return write_status(d, name, row, known ? &info : NULL, &dec, vs, spec);
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
	uint64_t delay = 1000ULL << MIN(vs->error_streak, 6U);
	vs->error_streak++;
	vs->wake_at = time_now_ms() + MIN(delay, 60000ULL);
	log_warn_errno(r, "%s: reconcile failed: %m; retrying in %llu ms", name,
		       (unsigned long long)MIN(delay, 60000ULL));
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

void reconcile_rediscover_all(Daemon *d)
{
	VmRecord **rows = NULL;
	size_t n = 0;
	char **uids = NULL;
	if (store_list_vms(d->store, &rows, &n) < 0)
		return;
	uids = xcalloc(n + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++) {
		VmRecord *row = rows[i];
		uids[i] = xstrdup(row->uid);
		/* Never started (no paths recorded before the first start): there
		 * is nothing to find, and the orphan sweep covers the rest. */
		if (!row->vm_dir) {
			vm_state(d, row->name)->observed_generation = row->observed_generation;
			continue;
		}
		if (vm_rediscover(d->rt, row->name, row->uid, row->api_sock) > 0) {
			VmState *vs = vm_state(d, row->name);
			VmHandles *h = handle_cache_get(runtime_cache(d->rt), row->name);
			watch_pid(d, vs, h->pid);
			/* Adopted as it was: a VM that was Ready stays Ready (no flap);
			 * one that was still booting is probed again. */
			const VmStatus *last = status_writer_last(d->status, row->name);
			const Condition *c = last ? vm_status_get_condition(last, "Ready") : NULL;
			vs->ready = c && c->status == COND_TRUE;
			vs->running_since = time_now_ms();
			vs->observed_generation = row->observed_generation;
			_cleanup_(vm_spec_freep) VmSpec *spec = NULL;
			if (vm_spec_from_json(row->spec_json, &spec) >= 0)
				vs->boot_deadline = time_now_ms() +
						    (uint64_t)spec->readiness_timeout_s * 1000;
		} else {
			vm_state(d, row->name)->observed_generation = row->observed_generation;
		}
	}
	int swept = runtime_sweep_orphans(d->rt, uids);
	if (swept > 0)
		log_info("removed %d orphaned object(s) no VM owns", swept);
	strv_free(uids);
	vm_record_list_free(rows, n);
}
