/* firecracker.c — the Firecracker VMM driver (see vmm.h for the contract,
 * firecracker.h for the process and jail layout).
 *
 * launch() = spawn the process detached, wait (bounded) for its API socket,
 * then replay the boot plan over the API; the first call that is not
 * answered with 2xx aborts the launch, and an aborted launch leaves no
 * process, no socket and no jail behind. */
#include "vmm/firecracker.h"
#include "util/fileio.h"
#include "util/log.h"
#include "util/proc.h"
#include "util/timeutil.h"
#include "vmm/fc_api.h"

#include <fcntl.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

/* ---- pure builders ---------------------------------------------------- */

static char *json_take_string(json_object *o)
{
	char *s = xstrdup(json_object_to_json_string_ext(
		o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return s;
}

static void json_add_str(json_object *o, const char *key, const char *val)
{
	json_object_object_add(o, key, json_object_new_string(val));
}

char *fc_json_boot_source(const char *kernel, const char *boot_args, const char *initrd)
{
	json_object *o = json_object_new_object();
	json_add_str(o, "kernel_image_path", kernel);
	if (boot_args)
		json_add_str(o, "boot_args", boot_args);
	if (initrd)
		json_add_str(o, "initrd_path", initrd);
	return json_take_string(o);
}

char *fc_json_drive(const char *drive_id, const char *path, bool is_root)
{
	json_object *o = json_object_new_object();
	json_add_str(o, "drive_id", drive_id);
	json_add_str(o, "path_on_host", path);
	json_object_object_add(o, "is_root_device", json_object_new_boolean(is_root));
	json_object_object_add(o, "is_read_only", json_object_new_boolean(false));
	return json_take_string(o);
}

char *fc_json_machine_config(unsigned vcpus, unsigned mem_mib)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "vcpu_count", json_object_new_int64(vcpus));
	json_object_object_add(o, "mem_size_mib", json_object_new_int64(mem_mib));
	return json_take_string(o);
}

char *fc_json_network_interface(const char *iface_id, const char *tap, const char *mac)
{
	json_object *o = json_object_new_object();
	json_add_str(o, "iface_id", iface_id);
	json_add_str(o, "host_dev_name", tap);
	if (mac)
		json_add_str(o, "guest_mac", mac);
	return json_take_string(o);
}

char *fc_json_action(const char *action_type)
{
	json_object *o = json_object_new_object();
	json_add_str(o, "action_type", action_type);
	return json_take_string(o);
}

static void plan_add(FcBootPlan *p, const char *method, char *path, char *body)
{
	/* FC_BOOT_PLAN_MAX covers every optional request at once. */
	p->req[p->n++] = (FcRequest){ .method = method, .path = path, .body = body };
}

void fc_boot_plan(const VmmLaunchConfig *c, const FcGuestPaths *gp, FcBootPlan *ret)
{
	_cleanup_free_ char *args = vmm_kernel_cmdline(c, FC_VMM_ARGS);
	FcBootPlan p = { .n = 0 };

	plan_add(&p, "PUT", xstrdup("/boot-source"),
		 fc_json_boot_source(gp->kernel, args, gp->initrd));
	plan_add(&p, "PUT", xstrdup("/drives/rootfs"),
		 fc_json_drive("rootfs", gp->root_disk, true));
	if (gp->work_disk)
		plan_add(&p, "PUT", xstrdup("/drives/work"),
			 fc_json_drive("work", gp->work_disk, false));
	plan_add(&p, "PUT", xstrdup("/machine-config"),
		 fc_json_machine_config(c->vcpus, c->memory_mib));
	if (c->tap)
		plan_add(&p, "PUT", xstrdup("/network-interfaces/eth0"),
			 fc_json_network_interface("eth0", c->tap, c->mac));
	plan_add(&p, "PUT", xstrdup("/actions"), fc_json_action("InstanceStart"));
	*ret = p;
}

void fc_boot_plan_done(FcBootPlan *plan)
{
	for (size_t i = 0; i < plan->n; i++) {
		free(plan->req[i].path);
		free(plan->req[i].body);
	}
	plan->n = 0;
}

void fc_guest_paths(const VmmLaunchConfig *c, bool jailed, FcGuestPaths *ret)
{
	*ret = (FcGuestPaths){
		.kernel = xstrdup(jailed ? FC_JAIL_KERNEL : c->kernel_path),
		.initrd = c->initrd_path ? xstrdup(jailed ? FC_JAIL_INITRD : c->initrd_path) : NULL,
		.root_disk = xstrdup(jailed ? FC_JAIL_ROOT_DISK : c->root_disk),
		.work_disk =
			c->work_disk ? xstrdup(jailed ? FC_JAIL_WORK_DISK : c->work_disk) : NULL,
	};
}

void fc_guest_paths_done(FcGuestPaths *p)
{
	free(p->kernel);
	free(p->initrd);
	free(p->root_disk);
	free(p->work_disk);
	*p = (FcGuestPaths){ 0 };
}

static void argv_add(char ***v, const char *s)
{
	strv_push(v, xstrdup(s));
}

char **fc_argv(const char *fc_bin, const VmmLaunchConfig *c)
{
	char **v = NULL;
	argv_add(&v, fc_bin);
	argv_add(&v, "--api-sock");
	argv_add(&v, c->api_sock);
	argv_add(&v, "--id");
	argv_add(&v, c->vm_id);
	return v;
}

void fc_jail_user(const VmmLaunchConfig *c, uid_t *ret_uid, gid_t *ret_gid)
{
	bool own = c->vmm_uid != 0;
	*ret_uid = own ? c->vmm_uid : c->settings->jailer_uid;
	*ret_gid = own ? c->vmm_gid : c->settings->jailer_gid;
}

char **fc_jailer_argv(const char *jailer_bin, const char *fc_bin, const VmmLaunchConfig *c)
{
	const VmmSettings *s = c->settings;
	char **v = NULL;
	uid_t uid;
	gid_t gid;
	fc_jail_user(c, &uid, &gid);
	argv_add(&v, jailer_bin);
	argv_add(&v, "--id");
	argv_add(&v, c->vm_id);
	argv_add(&v, "--exec-file");
	argv_add(&v, fc_bin);
	argv_add(&v, "--uid");
	strv_push(&v, xasprintf("%u", (unsigned)uid));
	argv_add(&v, "--gid");
	strv_push(&v, xasprintf("%u", (unsigned)gid));
	argv_add(&v, "--chroot-base-dir");
	argv_add(&v, s->chroot_base ? s->chroot_base : FC_DEFAULT_CHROOT_BASE);
	/* The jailer passes --id itself; only the socket follows "--". */
	argv_add(&v, "--");
	argv_add(&v, "--api-sock");
	argv_add(&v, FC_JAIL_API_SOCK);
	return v;
}

bool fc_jailer_id_valid(const char *id)
{
	size_t n = strlen(id);
	if (n == 0 || n > 64)
		return false;
	for (const char *p = id; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-'))
			return false;
	return true;
}

char *fc_jail_root(const VmmSettings *s, const char *fc_bin, const char *vm_id)
{
	const char *slash = strrchr(fc_bin, '/');
	const char *name = slash ? slash + 1 : fc_bin;
	return xasprintf("%s/%s/%s/root", s->chroot_base ? s->chroot_base : FC_DEFAULT_CHROOT_BASE,
			 name, vm_id);
}

/* ---- process handling -------------------------------------------------- */

static const char *fc_bin_name(const VmmSettings *s)
{
	return s->firecracker_bin ? s->firecracker_bin : FC_DEFAULT_BIN;
}

static bool fc_available(const VmmSettings *s)
{
	_cleanup_free_ char *fc = NULL, *jailer = NULL;
	if (find_executable(fc_bin_name(s), &fc) < 0)
		return false;
	return !s->jailer_bin || find_executable(s->jailer_bin, &jailer) >= 0;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* Wait until our child pid serves its API socket. The child is not reaped
 * here unless it died, so its pid cannot be recycled meanwhile. */
static int wait_for_socket(const VmmLaunchConfig *c, pid_t pid)
{
	uint64_t deadline = time_now_ms() + FC_SOCKET_WAIT_MS;
	for (;;) {
		int status;
		if (waitpid(pid, &status, WNOHANG) == pid) {
			int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
			return log_errno(-ECHILD,
					 "vm %s: firecracker exited (status %d) before its API "
					 "socket %s appeared; see %s",
					 c->name, code, c->api_sock, c->log_path);
		}
		/* Only our child counts: SO_PEERCRED must name it. */
		int r = proc_socket_served_by(c->api_sock, pid);
		if (r == 0)
			return 0;
		if (r == -EPERM)
			return log_errno(r,
					 "vm %s: %s is served by another process than "
					 "firecracker pid %d",
					 c->name, c->api_sock, (int)pid);
		if (time_now_ms() >= deadline)
			return log_errno(-ETIMEDOUT,
					 "vm %s: firecracker API socket %s not ready after %u ms; "
					 "see %s",
					 c->name, c->api_sock, FC_SOCKET_WAIT_MS, c->log_path);
		sleep_ms(10);
	}
}

/* Send the boot plan in order; stop at the first refusal. */
static int configure_and_start(const VmmLaunchConfig *c, pid_t pid, const FcGuestPaths *gp)
{
	FcBootPlan plan;
	int r = 0;

	fc_boot_plan(c, gp, &plan);
	for (size_t i = 0; i < plan.n && r >= 0; i++) {
		const FcRequest *q = &plan.req[i];
		FcApiResponse resp;
		unsigned t = i + 1 == plan.n ? FC_START_TIMEOUT_MS : FC_API_TIMEOUT_MS;
		r = fc_api_request_to(c->api_sock, pid, q->method, q->path, q->body, t, &resp);
		if (r < 0)
			log_errno(r, "vm %s: firecracker %s %s failed: %s", c->name, q->method,
				  q->path, resp.error ? resp.error : "?");
		fc_api_response_done(&resp);
	}
	fc_boot_plan_done(&plan);
	return r;
}

static void kill_and_reap(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0); /* our child: bounded, SIGKILL cannot be ignored */
}

static int remove_stale_socket(const VmmLaunchConfig *c)
{
	if (unlink(c->api_sock) < 0 && errno != ENOENT)
		return log_errno(-errno, "vm %s: remove stale API socket %s: %m", c->name,
				 c->api_sock);
	return 0;
}

/* ---- jail preparation -------------------------------------------------- */

/* Put src into the jail as in_jail: a regular file is hard-linked (the
 * chroot base must share its filesystem); a block device (a dm-snapshot
 * root disk) gets its own node made with mknod, since a device node on
 * devtmpfs cannot be linked across filesystems. Disks (writable) are given
 * to the jail user, who must read and write them; the kernel and initrd
 * only need to be world-readable. */
static int jail_link(const VmmLaunchConfig *c, const char *jail, const char *src,
		     const char *in_jail, bool writable)
{
	_cleanup_free_ char *dst = xasprintf("%s%s", jail, in_jail);
	struct stat st;
	uid_t uid;
	gid_t gid;
	fc_jail_user(c, &uid, &gid);
	if (stat(src, &st) < 0)
		return log_errno(-errno, "vm %s: %s: %m", c->name, src);
	if (S_ISBLK(st.st_mode)) {
		if (mknod(dst, S_IFBLK | 0600, st.st_rdev) < 0)
			return log_errno(-errno,
					 "vm %s: mknod %s (block %u:%u, for %s) in the "
					 "jail: %m",
					 c->name, dst, major(st.st_rdev), minor(st.st_rdev), src);
	} else if (link(src, dst) < 0)
		return log_errno(-errno,
				 "vm %s: hard-link %s into jail as %s: %m (the chroot base must be "
				 "on the same filesystem as the VM's files)",
				 c->name, src, dst);
	if (writable && chown(dst, uid, gid) < 0)
		return log_errno(-errno, "vm %s: chown %s to %u:%u: %m", c->name, dst,
				 (unsigned)uid, (unsigned)gid);
	return 0;
}

int fc_jail_prepare(const VmmLaunchConfig *c, const char *jail)
{
	_cleanup_free_ char *jail_dir = xstrndup(jail, strlen(jail) - strlen("/root"));
	_cleanup_free_ char *sock = xasprintf("%s%s", jail, FC_JAIL_API_SOCK);
	int r = rm_rf(jail_dir);
	if (r < 0)
		return log_errno(r, "vm %s: remove old jail %s: %m", c->name, jail_dir);
	r = mkdir_p(jail, 0755);
	if (r < 0)
		return log_errno(r, "vm %s: create jail %s: %m", c->name, jail);
	if ((r = jail_link(c, jail, c->kernel_path, FC_JAIL_KERNEL, false)) < 0 ||
	    (c->initrd_path &&
	     (r = jail_link(c, jail, c->initrd_path, FC_JAIL_INITRD, false)) < 0) ||
	    (r = jail_link(c, jail, c->root_disk, FC_JAIL_ROOT_DISK, true)) < 0 ||
	    (c->work_disk && (r = jail_link(c, jail, c->work_disk, FC_JAIL_WORK_DISK, true)) < 0))
		return r;
	if (symlink(sock, c->api_sock) < 0)
		return log_errno(-errno, "vm %s: symlink %s -> %s: %m", c->name, c->api_sock, sock);
	return 0;
}

static void jail_remove(const char *jail)
{
	if (!jail)
		return;
	_cleanup_free_ char *jail_dir = xstrndup(jail, strlen(jail) - strlen("/root"));
	rm_rf(jail_dir);
}

/* ---- launch ------------------------------------------------------------ */

/* Resolve binaries and build argv; for the jailer also prepare the jail.
 * ret_jail is set (to be removed on failure) once a jail was created. */
static int launch_prepare(const VmmLaunchConfig *c, char ***ret_argv, char **ret_jail)
{
	const VmmSettings *s = c->settings;
	_cleanup_free_ char *fc = NULL, *jailer = NULL;
	int r = find_executable(fc_bin_name(s), &fc);
	if (r < 0)
		return log_errno(r, "vm %s: firecracker binary %s: %m", c->name, fc_bin_name(s));
	if (!s->jailer_bin) {
		*ret_argv = fc_argv(fc, c);
		return 0;
	}
	r = find_executable(s->jailer_bin, &jailer);
	if (r < 0)
		return log_errno(r, "vm %s: jailer binary %s: %m", c->name, s->jailer_bin);
	if (fc[0] != '/' || !fc_jailer_id_valid(c->vm_id))
		return log_errno(-EINVAL,
				 "vm %s: jailer needs an absolute firecracker path (got %s) and an "
				 "id of 1-64 [A-Za-z0-9-] (got %s)",
				 c->name, fc, c->vm_id);
	uid_t uid;
	gid_t gid;
	fc_jail_user(c, &uid, &gid);
	if (uid == 0 || gid == 0)
		return log_errno(-EPERM,
				 "vm %s: the jailer would run firecracker as root (uid %u gid %u); "
				 "give each VM its own user or set --jailer-uid/--jailer-gid",
				 c->name, (unsigned)uid, (unsigned)gid);
	_cleanup_free_ char *jail = fc_jail_root(s, fc, c->vm_id);
	r = fc_jail_prepare(c, jail);
	*ret_jail = TAKE_PTR(jail);
	if (r < 0)
		return r;
	*ret_argv = fc_jailer_argv(jailer, fc, c);
	return 0;
}

static int launch_spawn(const VmmLaunchConfig *c, char **argv, VmmProcess *ret)
{
	SpawnOptions o = {
		/* Firecracker writes the guest serial console to its stdout. */
		.stdout_path = c->console_path ? c->console_path : c->log_path,
		.stderr_path = c->log_path,
		.cwd = c->vm_dir,
		.new_session = true,
		/* The pid is recorded before firecracker runs (vmm.h). */
		.before_exec = c->record_pid,
		.userdata = c->record_userdata,
		.cgroup_procs = c->cgroup_procs,
	};
	pid_t pid;
	uint64_t st;
	int r = proc_spawn(argv, NULL, &o, &pid);
	if (r < 0)
		return log_errno(r, "vm %s: spawn %s: %m", c->name, argv[0]);
	r = proc_start_time(pid, &st);
	if (r < 0) {
		/* It already exited (a zombie has no start time for us): report
		 * how, as wait_for_socket would have. */
		int status = 0;
		kill(pid, SIGKILL);
		if (waitpid(pid, &status, 0) == pid && WIFEXITED(status))
			return log_errno(-ECHILD,
					 "vm %s: firecracker exited (status %d) before its API "
					 "socket %s appeared; see %s",
					 c->name, WEXITSTATUS(status), c->api_sock, c->log_path);
		return log_errno(r, "vm %s: firecracker (pid %d) vanished right after start: %m",
				 c->name, (int)pid);
	}
	*ret = (VmmProcess){ .pid = pid, .start_time = st };
	return 0;
}

/* Instead of the boot plan: load the saved snapshot and resume it. */
static int restore_snapshot(const VmmLaunchConfig *c, bool jailed)
{
	_cleanup_free_ char *err = NULL;
	if (jailed)
		return log_errno(-EOPNOTSUPP,
				 "vm %s: resume of a jailed Firecracker is not "
				 "supported yet",
				 c->name);
	int r = fc_restore(c->api_sock, c->incoming_dir, &err);
	if (r < 0)
		return log_errno(r, "vm %s: firecracker %s", c->name,
				 err ? err : "snapshot load failed");
	return 0;
}

static int fc_launch(const VmmLaunchConfig *c, VmmProcess *ret)
{
	_cleanup_strv_free_ char **argv = NULL;
	_cleanup_free_ char *jail = NULL;
	FcGuestPaths gp;
	VmmProcess p;
	if (!c->name || !c->vm_id || !c->vm_dir || !c->api_sock || !c->log_path ||
	    !c->kernel_path || !c->root_disk)
		return log_errno(-EINVAL, "firecracker launch: incomplete launch config (name, "
					  "vm_id, vm_dir, api_sock, log_path, kernel, root disk)");
	int r = remove_stale_socket(c);
	if (r < 0)
		return r;
	r = launch_prepare(c, &argv, &jail);
	if (r < 0)
		goto fail_files;
	r = launch_spawn(c, argv, &p);
	if (r < 0)
		goto fail_files;
	r = wait_for_socket(c, p.pid);
	if (r >= 0 && c->incoming_dir)
		r = restore_snapshot(c, jail != NULL);
	else if (r >= 0) {
		fc_guest_paths(c, jail != NULL, &gp);
		r = configure_and_start(c, p.pid, &gp);
		fc_guest_paths_done(&gp);
	}
	if (r < 0) {
		kill_and_reap(p.pid);
		goto fail_files;
	}
	log_info("vm %s: firecracker pid %d running (api %s)", c->name, (int)p.pid, c->api_sock);
	*ret = p;
	return 0;

fail_files:
	unlink(c->api_sock);
	jail_remove(jail);
	return r;
}

/* ---- the other operations ---------------------------------------------- */

static int fc_request_stop(const char *api_sock)
{
	_cleanup_free_ char *body = fc_json_action("SendCtrlAltDel");
	FcApiResponse resp;
	int r = fc_api_request(api_sock, "PUT", "/actions", body, FC_API_TIMEOUT_MS, &resp);
	if (r < 0)
		log_errno(r, "firecracker %s: SendCtrlAltDel failed: %s", api_sock,
			  resp.error ? resp.error : "?");
	fc_api_response_done(&resp);
	return r;
}

static int fc_kill(const VmmProcess *p)
{
	/* Waiting is the caller's (pidfd); only the signal is sent here. */
	int r = proc_kill_verified(p->pid, p->start_time, 0);
	if (r < 0 && r != -ESRCH && r != -ETIMEDOUT)
		return log_errno(r, "kill firecracker pid %d: %m", (int)p->pid);
	return r == -ETIMEDOUT ? 0 : r;
}

/* Whoever listens on api_sock as our connect() reaches it: through the
 * symlink into the jail too (a jailed socket was bound as FC_JAIL_API_SOCK,
 * which is all /proc/net/unix would show). */
static int fc_find(const char *api_sock, VmmProcess *ret)
{
	return proc_find_socket_owner(api_sock, &ret->pid, &ret->start_time);
}

/* A firecracker that was spawned but never got InstanceStart (its launch
 * was cut short by a controller crash) runs no guest: not launched. */
static int fc_launched(const char *api_sock, const VmmProcess *p)
{
	FcApiResponse resp;
	int r = fc_api_request_to(api_sock, p->pid, "GET", "/", NULL, FC_API_TIMEOUT_MS, &resp);
	if (r == -ENOENT) {
		/* No socket at all: a launch removes the stale one before it
		 * spawns, and configures only once the VMM has bound a new one,
		 * so this VMM was cut short before its API came up. */
		log_warn("firecracker pid %d: no API socket %s: its launch never got that far",
			 (int)p->pid, api_sock);
		fc_api_response_done(&resp);
		return 0;
	}
	if (r < 0) {
		log_warn_errno(r, "firecracker pid %d: GET / on %s: %s", (int)p->pid, api_sock,
			       resp.error ? resp.error : "?");
		fc_api_response_done(&resp);
		return r;
	}
	json_object *o = json_tokener_parse(resp.body), *state = NULL;
	fc_api_response_done(&resp);
	r = -EBADMSG;
	if (o && json_object_object_get_ex(o, "state", &state) &&
	    json_object_is_type(state, json_type_string))
		r = !streq(json_object_get_string(state), "Not started");
	json_object_put(o);
	return r;
}

static int fc_tap_user(const VmmLaunchConfig *c, uid_t *ret_uid, gid_t *ret_gid)
{
	if (!c->settings->jailer_bin)
		return 0; /* firecracker runs as root and opens the tap itself */
	fc_jail_user(c, ret_uid, ret_gid);
	return *ret_uid != 0;
}

static int fc_cleanup(const VmmSettings *s, const char *vm_id)
{
	if (!s->jailer_bin || !fc_jailer_id_valid(vm_id))
		return 0;
	_cleanup_free_ char *jail = fc_jail_root(s, fc_bin_name(s), vm_id);
	_cleanup_free_ char *jail_dir = xstrndup(jail, strlen(jail) - strlen("/root"));
	int r = rm_rf(jail_dir);
	if (r < 0 && r != -ENOENT)
		return log_errno(r, "remove jail %s: %m", jail_dir);
	return 0;
}

static int fc_describe(const char *api_sock, char **ret_json)
{
	FcApiResponse resp;
	int r = fc_api_request(api_sock, "GET", "/", NULL, FC_API_TIMEOUT_MS, &resp);
	if (r < 0) {
		log_errno(r, "firecracker %s: GET / failed: %s", api_sock,
			  resp.error ? resp.error : "?");
		fc_api_response_done(&resp);
		return r;
	}
	json_object *o = json_tokener_parse(resp.body);
	fc_api_response_done(&resp);
	if (!o || !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return log_errno(-EBADMSG, "firecracker %s: GET / returned no JSON object",
				 api_sock);
	}
	*ret_json = json_take_string(o);
	return 0;
}

static int fc_binary(const VmmSettings *s, char **ret)
{
	return find_executable(fc_bin_name(s), ret);
}

const VmmDriver vmm_firecracker_driver = {
	.name = "firecracker",
	.available = fc_available,
	.launch = fc_launch,
	.request_stop = fc_request_stop,
	.kill = fc_kill,
	.find = fc_find,
	.launched = fc_launched,
	.tap_user = fc_tap_user,
	.cleanup = fc_cleanup,
	.describe = fc_describe,
	.save_state = fc_save_state,
	.finish_save = fc_finish_save,
	.binary = fc_binary,
};
