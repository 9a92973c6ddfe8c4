/* vm.c — see vm.h. The order of every start and teardown step, and where
 * the write-ahead records happen, is the point of this file:
 *
 *   start:    image check → VM dir → record tap → tap → root disk (dm:
 *             record, then create) → work disk → launch → record pid
 *   teardown: kill VMM → dm target → loops → tap → socket → handles.json
 *             → (VM dir)
 */
#include "runtime/vm.h"
#include "runtime/suspend.h"
#include "net/net.h"
#include "storage/storage.h"
#include "util/fileio.h"
#include "util/hashmap.h"
#include "util/layout.h"
#include "util/log.h"
#include "util/proc.h"
#include "util/timeutil.h"

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>

struct Runtime {
	RuntimeConfig cfg;
	char **image_dirs;
	char *gateway;
	unsigned prefix;
	NetCidr cidr;
	const VmmDriver *default_driver;
	HandleCache *cache;
};

int runtime_new(const RuntimeConfig *cfg, Runtime **ret)
{
	Runtime *rt = xcalloc(1, sizeof(Runtime));
	int r = net_cidr_parse(cfg->cidr, &rt->cidr);
	if (r < 0) {
		free(rt);
		return log_errno(r, "--cidr %s: expected the bridge address, e.g. 172.16.0.1/24",
				 cfg->cidr);
	}
	rt->cfg = *cfg;
	rt->cfg.state_dir = xstrdup(cfg->state_dir);
	rt->cfg.runtime_dir = xstrdup(cfg->runtime_dir);
	rt->cfg.bridge = xstrdup(cfg->bridge);
	rt->cfg.cidr = xstrdup(cfg->cidr);
	rt->cfg.driver = xstrdup(cfg->driver);
	for (size_t i = 0; cfg->image_dirs && cfg->image_dirs[i]; i++)
		strv_push(&rt->image_dirs, xstrdup(cfg->image_dirs[i]));
	rt->cfg.image_dirs = rt->image_dirs;
	rt->gateway = xstrndup(cfg->cidr, strcspn(cfg->cidr, "/"));
	rt->prefix = rt->cidr.prefix;
	rt->default_driver = streq(cfg->driver, "auto") ? vmm_driver_auto(&rt->cfg.vmm)
							 : vmm_driver_by_name(cfg->driver);
	if (!rt->default_driver) {
		runtime_free(rt);
		return log_errno(-EINVAL, "unknown VMM driver %s", cfg->driver);
	}
	rt->cache = handle_cache_new();
	*ret = rt;
	return 0;
}

void runtime_free(Runtime *rt)
{
	if (!rt)
		return;
	free((char *)rt->cfg.state_dir);
	free((char *)rt->cfg.runtime_dir);
	free((char *)rt->cfg.bridge);
	free((char *)rt->cfg.cidr);
	free((char *)rt->cfg.driver);
	strv_free(rt->image_dirs);
	free(rt->gateway);
	handle_cache_free(rt->cache);
	free(rt);
}

HandleCache *runtime_cache(Runtime *rt)
{
	return rt->cache;
}

void runtime_crashpoint(const char *point)
{
	const char *want = getenv("BANGER_CRASHPOINT");
	if (want && streq(want, point)) {
		log_warn("crashpoint %s: dying now (test hook)", point);
		raise(SIGKILL);
	}
}

void vm_paths_for(Runtime *rt, const char *uid, VmPaths *ret)
{
	ret->vm_dir = layout_vm_dir(rt->cfg.state_dir, uid);
	ret->api_sock = layout_api_sock(rt->cfg.runtime_dir, uid);
	if (!ret->api_sock) /* store uids are hex; never trust that into a path */
		ret->api_sock = path_join(rt->cfg.runtime_dir, "invalid-uid" LAYOUT_SOCK_SUFFIX);
	ret->log_path = layout_vm_file(ret->vm_dir, LAYOUT_VMM_LOG);
	ret->console_path = layout_vm_file(ret->vm_dir, LAYOUT_CONSOLE_LOG);
	ret->work_disk = layout_vm_file(ret->vm_dir, LAYOUT_WORK_DISK);
}

void vm_paths_done(VmPaths *p)
{
	free(p->vm_dir);
	free(p->api_sock);
	free(p->log_path);
	free(p->console_path);
	free(p->work_disk);
	*p = (VmPaths){ 0 };
}

const VmmDriver *runtime_driver_for(Runtime *rt, const VmSpec *spec)
{
	if (spec->vmm == VMM_KIND_DEFAULT)
		return rt->default_driver;
	return vmm_driver_by_name(vmm_kind_to_string(spec->vmm));
}

int runtime_pick_ip(Runtime *rt, const VmSpec *spec, const char *current, char *const *used,
		    char **ret_ip)
{
	if (spec->guest_ip && current && streq(spec->guest_ip, current)) {
		*ret_ip = xstrdup(current);
		return 0;
	}
	if (!spec->guest_ip && current && net_cidr_contains(&rt->cidr, current)) {
		*ret_ip = xstrdup(current);
		return 0;
	}
	/* Our own current IP does not block the new choice. */
	char **others = NULL;
	for (size_t i = 0; used && used[i]; i++)
		if (!current || !streq(used[i], current))
			strv_push(&others, xstrdup(used[i]));
	int r = net_ip_allocate(&rt->cidr, others, spec->guest_ip, ret_ip);
	strv_free(others);
	return r;
}

bool vm_alive(Runtime *rt, const char *name)
{
	VmHandles *h = handle_cache_get(rt->cache, name);
	return h && h->pid > 0 && proc_alive(h->pid, h->pid_start_time);
}

/* ---- start ---------------------------------------------------------------- */

typedef struct {
	const char *vm_dir;
	VmHandles *h;
} RecordCtx;

/* Write-ahead for dm-snapshot objects (storage/cow.h). */
static int record_disk(void *userdata, const RootDisk *d)
{
	RecordCtx *c = userdata;
	free_and_replace_str(&c->h->cow_file, d->cow_file);
	free_and_replace_str(&c->h->base_loop, d->base_loop);
	free_and_replace_str(&c->h->cow_loop, d->cow_loop);
	free_and_replace_str(&c->h->dm_name, d->dm_name);
	free_and_replace_str(&c->h->dm_dev, d->dm_dev);
	return vm_handles_write(c->vm_dir, c->h);
}

static RootDisk disk_from_handles(const VmHandles *h)
{
	return (RootDisk){ .cow_file = h->cow_file, .base_loop = h->base_loop,
			   .cow_loop = h->cow_loop, .dm_name = h->dm_name, .dm_dev = h->dm_dev };
}

/* Undo the momentary objects of a failed start (disks stay for next time). */
static void undo_start(Runtime *rt, const char *vm_dir, VmHandles *h)
{
	RootDisk d = disk_from_handles(h);
	root_disk_teardown(&d);
	if (h->tap)
		net_tap_delete(h->tap);
	VmHandles *fresh = vm_handles_new();
	vm_handles_write(vm_dir, fresh);
	vm_handles_free(fresh);
	(void)rt;
}

typedef struct {
	char *kernel, *initrd, *rootfs;
} Images;

static void images_done(Images *i)
{
	free(i->kernel);
	free(i->initrd);
	free(i->rootfs);
}

static int check_images(Runtime *rt, const VmSpec *s, Images *ret, char **ret_error)
{
	int r = image_path_check(s->kernel_path, rt->image_dirs, &ret->kernel);
	if (r >= 0 && s->initrd_path)
		r = image_path_check(s->initrd_path, rt->image_dirs, &ret->initrd);
	if (r >= 0)
		r = image_path_check(s->rootfs_path, rt->image_dirs, &ret->rootfs);
	if (r < 0) {
		_cleanup_free_ char *roots = xstrdup("");
		for (size_t i = 0; rt->image_dirs && rt->image_dirs[i]; i++) {
			char *n = xasprintf("%s%s%s", roots, i ? ", " : "", rt->image_dirs[i]);
			free(roots);
			roots = n;
		}
		*ret_error = xasprintf("image check failed (%s): kernel, initrd and rootfs must be "
				       "readable regular files inside the image dirs [%s]",
				       strerror(-r), roots);
	}
	return r;
}

static int start_network(Runtime *rt, const VmStartRequest *req, const char *vm_dir,
			 VmHandles *h, char **ret_error)
{
	int r = net_bridge_ensure(rt->cfg.bridge, rt->cfg.cidr);
	if (r < 0) {
		*ret_error = xasprintf("bridge %s: %s", rt->cfg.bridge, strerror(-r));
		return r;
	}
	free(h->tap);
	h->tap = net_tap_name_for(req->uid);
	if ((r = vm_handles_write(vm_dir, h)) < 0) {
		*ret_error = xasprintf("record tap: %s", strerror(-r));
		return r;
	}
	runtime_crashpoint("tap-recorded");
	r = net_tap_ensure(h->tap, rt->cfg.bridge, 0);
	if (r < 0) {
		*ret_error = xasprintf("tap %s: %s", h->tap, strerror(-r));
		return r;
	}
	runtime_crashpoint("tap-created");
	return 0;
}

/* A root disk is a copy of (or an overlay on) one base image. When the spec
 * now names another base, the old disk must go: an overlay or exception
 * store over a different base is garbage. root.base records the base the
 * disk was made from. The work disk is the VM's data and is kept. */
static int drop_disk_of_other_base(const VmPaths *p, const char *base)
{
	static const char *const disks[] = { "root.cow", "root.reflink.img", "root.qcow2", "root.img" };
	_cleanup_free_ char *marker = path_join(p->vm_dir, "root.base"), *old = NULL;
	if (read_file_bounded(marker, 4096, &old, NULL) >= 0 && streq(old, base))
		return 0;
	bool had = false;
	for (size_t i = 0; i < ELEMENTSOF(disks); i++) {
		_cleanup_free_ char *d = path_join(p->vm_dir, disks[i]);
		if (unlink(d) == 0)
			had = true;
	}
	if (had)
		log_info("root disk of %s was made from %s; base is now %s: recreating it",
			 p->vm_dir, old ? old : "another image", base);
	return write_file_atomic(marker, base, strlen(base), 0600);
}

static int start_disks(Runtime *rt, const VmStartRequest *req, const VmmDriver *drv,
		       const VmPaths *p, const Images *img, VmHandles *h, char **ret_error)
{
	RecordCtx ctx = { .vm_dir = p->vm_dir, .h = h };
	int k = drop_disk_of_other_base(p, img->rootfs);
	if (k < 0) {
		*ret_error = xasprintf("root disk: record base image: %s", strerror(-k));
		return k;
	}
	RootDiskRequest rq = { .vm_dir = p->vm_dir, .vm_uid = req->uid, .base_image = img->rootfs,
			       .qemu = streq(drv->name, "qemu"), .method = COW_AUTO,
			       .record = record_disk, .userdata = &ctx };
	RootDisk disk = { 0 };
	int r = root_disk_prepare(&rq, &disk);
	if (r < 0) {
		*ret_error = xasprintf("root disk: %s", strerror(-r));
		return r;
	}
	free_and_replace_str(&h->root_disk, disk.path);
	free_and_replace_str(&h->root_format, disk.format);
	log_info("%s: root disk %s (%s%s)", req->name, disk.path, cow_method_to_string(disk.method),
		 disk.reused ? ", kept" : "");
	root_disk_done(&disk);
	if ((r = vm_handles_write(p->vm_dir, h)) < 0) {
		*ret_error = xasprintf("record root disk: %s", strerror(-r));
		return r;
	}
	runtime_crashpoint("disk-ready");
	if (req->spec->work_disk_mib) {
		r = work_disk_ensure(p->work_disk, req->spec->work_disk_mib);
		if (r < 0) {
			*ret_error = xasprintf("work disk %s: %s", p->work_disk, strerror(-r));
			return r;
		}
	}
	(void)rt;
	return 0;
}

static int start_vmm(Runtime *rt, const VmStartRequest *req, const VmmDriver *drv,
		     const VmPaths *p, const Images *img, VmHandles *h, char **ret_error)
{
	const VmSpec *s = req->spec;
	_cleanup_free_ char *mac = s->mac ? xstrdup(s->mac)
					  : req->guest_ip ? net_mac_for_ip(req->guest_ip) : NULL;
	VmmLaunchConfig c = {
		.settings = &rt->cfg.vmm,
		.name = req->name,
		.vm_id = req->uid,
		.vm_dir = p->vm_dir,
		.api_sock = p->api_sock,
		.log_path = p->log_path,
		.console_path = p->console_path,
		.kernel_path = img->kernel,
		.initrd_path = img->initrd,
		.user_args = s->kernel_args,
		.root_disk = h->root_disk,
		.root_disk_format = h->root_format,
		.work_disk = s->work_disk_mib ? p->work_disk : NULL,
		.tap = h->tap,
		.mac = mac,
		.guest_ip = h->tap ? req->guest_ip : NULL,
		.gateway_ip = rt->gateway,
		.prefix_len = rt->prefix,
		.vcpus = s->vcpus,
		.memory_mib = s->memory_mib,
	};
	_cleanup_free_ char *incoming = req->resume ? vm_saved_dir(rt, req->uid) : NULL;
	c.incoming_dir = incoming;
	VmmProcess proc;
	/* A fresh console per boot: readiness and panic detection read it. A
	 * resumed guest does not boot: its console goes on. */
	if (!req->resume)
		truncate(p->console_path, 0);
	int r = drv->launch(&c, &proc);
	if (r < 0) {
		*ret_error = xasprintf("%s launch failed: %s (see %s)", drv->name, strerror(-r),
				       p->log_path);
		return r;
	}
	h->pid = proc.pid;
	h->pid_start_time = proc.start_time;
	h->started_at_ms = time_now_realtime_ms();
	runtime_crashpoint("launched");
	if ((r = vm_handles_write(p->vm_dir, h)) < 0)
		log_warn_errno(r, "%s: record pid %d: %m (rediscovery will find it by socket)",
			       req->name, (int)proc.pid);
	return 0;
}

/* Idempotent start: a process serving this VM's socket is this VM's VMM
 * (the path derives from the uid), one the cache does not know — a start
 * that died before recording its pid, seen by a rediscovery that ran before
 * the VMM bound its socket, or a caller that skipped rediscovery. Adopt it:
 * launching a second VMM would fail on the busy socket (and the image
 * locks), and undoing that failed start would delete the live VMM's tap. */
static bool adopt_unknown_vmm(Runtime *rt, const VmStartRequest *req, const char *api_sock)
{
	pid_t pid;
	if (proc_find_by_unix_socket(api_sock, &pid) < 0)
		return false;
	log_warn("%s: start requested, but pid %d already serves %s: adopting it", req->name,
		 (int)pid, api_sock);
	return vm_rediscover(rt, req->name, req->uid, api_sock) > 0;
}

int vm_start(Runtime *rt, const VmStartRequest *req, char **ret_error)
{
	const VmmDriver *drv = runtime_driver_for(rt, req->spec);
	_cleanup_(vm_paths_done) VmPaths p = { 0 };
	Images img = { 0 };
	int r;

	*ret_error = NULL;
	if (!drv || !drv->available(&rt->cfg.vmm)) {
		*ret_error = xasprintf("VMM %s is not available on this host",
				       drv ? drv->name : "(unknown)");
		return -ENOEXEC;
	}
	vm_paths_for(rt, req->uid, &p);
	if (vm_alive(rt, req->name) || adopt_unknown_vmm(rt, req, p.api_sock))
		return 0;
	if ((r = check_images(rt, req->spec, &img, ret_error)) < 0)
		goto out;
	/* A saved state is used at most once: its record is consumed before
	 * the VMM sees it, so a crash from here on can never resume it again. */
	if (req->resume && ((r = vm_saved_verify(rt, req->uid, ret_error)) < 0 ||
			    (r = vm_saved_consume(rt, req->uid, ret_error)) < 0))
		goto out;
	if ((r = mkdir_p(p.vm_dir, 0700)) < 0 || (r = mkdir_p(rt->cfg.runtime_dir, 0700)) < 0) {
		*ret_error = xasprintf("create %s: %s", p.vm_dir, strerror(-r));
		goto out;
	}
	VmHandles *h = vm_handles_new();
	handle_cache_put(rt->cache, req->name, h);
	h->vmm = xstrdup(drv->name);
	h->spec_json = vm_spec_to_canonical_json(req->spec);
	uint64_t t0 = time_now_us(), t1, t2;
	if (req->spec->network_enabled && req->guest_ip &&
	    (r = start_network(rt, req, p.vm_dir, h, ret_error)) < 0)
		goto fail;
	t1 = time_now_us();
	if ((r = start_disks(rt, req, drv, &p, &img, h, ret_error)) < 0)
		goto fail;
	t2 = time_now_us();
	if ((r = start_vmm(rt, req, drv, &p, &img, h, ret_error)) < 0)
		goto fail;
	log_info("%s: %s %s (pid %d, tap %s, ip %s)", req->name, drv->name,
		 req->resume ? "resumed from its saved state" : "started", (int)h->pid,
		 h->tap ? h->tap : "-", req->guest_ip ? req->guest_ip : "-");
	log_debug("%s: timing: network %.3f ms, disk %.3f ms, launch %.3f ms", req->name,
		  (t1 - t0) / 1000.0, (t2 - t1) / 1000.0, (time_now_us() - t2) / 1000.0);
	goto out;
fail:
	log_warn("%s: start failed: %s", req->name, *ret_error);
	undo_start(rt, p.vm_dir, h);
	handle_cache_drop(rt->cache, req->name);
out:
	/* Resumed or not, a consumed saved state is of no further use. */
	if (req->resume && vm_saved_discard(rt, req->uid) < 0)
		log_warn("%s: the used saved state could not be removed (never resumed again: "
			 "its record is consumed)", req->name);
	images_done(&img);
	return r;
}

/* ---- stop and teardown ---------------------------------------------------- */

static const VmmDriver *driver_of(Runtime *rt, const VmHandles *h)
{
	const VmmDriver *d = h && h->vmm ? vmm_driver_by_name(h->vmm) : NULL;
	return d ? d : rt->default_driver;
}

const VmmDriver *runtime_driver_of(Runtime *rt, const char *name)
{
	return driver_of(rt, handle_cache_get(rt->cache, name));
}

const VmmSettings *runtime_vmm_settings(Runtime *rt)
{
	return &rt->cfg.vmm;
}

int vm_request_stop(Runtime *rt, const char *name, const char *api_sock)
{
	VmHandles *h = handle_cache_get(rt->cache, name);
	if (!vm_alive(rt, name))
		return -ESRCH;
	if (!api_sock)
		return -EINVAL;
	return driver_of(rt, h)->request_stop(api_sock);
}

int vm_kill(Runtime *rt, const char *name)
{
	VmHandles *h = handle_cache_get(rt->cache, name);
	if (!h || h->pid <= 0)
		return -ESRCH;
	VmmProcess p = { .pid = h->pid, .start_time = h->pid_start_time };
	return driver_of(rt, h)->kill(&p);
}

/* Kill whatever serves the socket, verified by start time, and wait for it
 * (SIGKILL takes milliseconds; the wait is bounded). */
static int kill_socket_holder(const char *api_sock, const VmHandles *h)
{
	pid_t pid = 0;
	uint64_t st = 0;
	if (h && h->pid > 0 && proc_alive(h->pid, h->pid_start_time)) {
		pid = h->pid;
		st = h->pid_start_time;
	} else if (!api_sock || proc_find_socket_owner(api_sock, &pid, &st) < 0)
		return 0;
	int r = proc_kill_verified(pid, st, 5000);
	return r == -ESRCH ? 0 : r;
}

int vm_teardown(Runtime *rt, const char *name, const char *uid, const char *api_sock,
		bool remove_dir)
{
	_cleanup_(vm_paths_done) VmPaths p = { 0 };
	_cleanup_(vm_handles_freep) VmHandles *from_file = NULL;
	int r = 0, k;

	vm_paths_for(rt, uid, &p);
	VmHandles *h = handle_cache_get(rt->cache, name);
	if (!h && vm_handles_read(p.vm_dir, &from_file) >= 0)
		h = from_file;
	if (!api_sock)
		api_sock = p.api_sock;

	if ((k = kill_socket_holder(api_sock, h)) < 0 && r == 0)
		r = k;
	if (h) {
		RootDisk d = disk_from_handles(h);
		if ((k = root_disk_teardown(&d)) < 0 && r == 0)
			r = k;
	}
	/* The tap's name is deterministic: delete it even if never recorded. */
	_cleanup_free_ char *tap = net_tap_name_for(uid);
	if (tap && (k = net_tap_delete(tap)) < 0 && r == 0)
		r = k;
	if (unlink(api_sock) < 0 && errno != ENOENT && r == 0)
		r = -errno;
	if (remove_dir)
		k = rm_rf(p.vm_dir);
	else
		k = vm_handles_remove(p.vm_dir);
	if (k < 0 && k != -ENOENT && r == 0)
		r = k;
	handle_cache_drop(rt->cache, name);
	if (r < 0)
		log_warn_errno(r, "%s: teardown incomplete: %m (will retry)", name);
	else
		log_info("%s: torn down%s", name, remove_dir ? " and removed" : "");
	return r;
}

int vm_rediscover(Runtime *rt, const char *name, const char *uid, const char *api_sock)
{
	_cleanup_(vm_paths_done) VmPaths p = { 0 };
	VmHandles *h = NULL;
	pid_t pid = 0;
	uint64_t st = 0;

	vm_paths_for(rt, uid, &p);
	if (!api_sock)
		api_sock = p.api_sock;
	if (vm_handles_read(p.vm_dir, &h) < 0)
		h = vm_handles_new();
	/* The socket is the identity: whoever holds OUR socket is our VMM. */
	if (proc_find_socket_owner(api_sock, &pid, &st) >= 0) {
		if (h->pid != pid || h->pid_start_time != st) {
			log_info("%s: VMM pid %d found by its socket (scratch file said %d)", name,
				 (int)pid, (int)h->pid);
			h->pid = pid;
			h->pid_start_time = st;
			vm_handles_write(p.vm_dir, h);
		}
		handle_cache_put(rt->cache, name, h);
		log_info("%s: adopted running VMM (pid %d)", name, (int)pid);
		return 1;
	}
	handle_cache_put(rt->cache, name, h);
	if (vm_handles_any(h) || access(api_sock, F_OK) == 0) {
		log_info("%s: VMM not running; tearing down what it left", name);
		vm_teardown(rt, name, uid, api_sock, false);
	} else
		handle_cache_drop(rt->cache, name);
	return 0;
}

/* ---- orphans --------------------------------------------------------------- */

/* The uids every row knows, whole and as the 8-hex short ids that name
 * taps, sockets and dm targets: lookups are O(1) with thousands of VMs. */
typedef struct {
	Hashmap *full, *short_ids;
} KnownUids;

static bool uid_known(const KnownUids *k, const char *prefix8)
{
	return hashmap_contains(k->short_ids, prefix8);
}

static int sweep_taps(const KnownUids *uids)
{
	_cleanup_strv_free_ char **taps = NULL;
	int n = 0;
	if (net_list_links(NET_TAP_PREFIX, &taps) < 0)
		return 0;
	for (size_t i = 0; taps && taps[i]; i++) {
		const char *id = taps[i] + strlen(NET_TAP_PREFIX);
		if (layout_is_short_id(id) && uid_known(uids, id))
			continue;
		log_info("orphan tap %s: deleting", taps[i]);
		if (net_tap_delete(taps[i]) >= 0)
			n++;
	}
	return n;
}

/* The uid a path under <state>/vms/<uid>/ belongs to (NULL if none). */
static char *uid_of_path(Runtime *rt, const char *path)
{
	_cleanup_free_ char *prefix = xasprintf("%s/vms/", rt->cfg.state_dir);
	if (!startswith(path, prefix))
		return NULL;
	const char *u = path + strlen(prefix);
	return xstrndup(u, strcspn(u, "/"));
}

static int sweep_loops(Runtime *rt, const KnownUids *uids)
{
	_cleanup_strv_free_ char **devs = NULL;
	int n = 0;
	if (loop_list_backed_under(rt->cfg.state_dir, &devs) < 0)
		return 0;
	for (size_t i = 0; devs && devs[i]; i++) {
		_cleanup_free_ char *file = NULL, *uid = NULL;
		if (loop_backing_file(devs[i], &file) < 0)
			continue;
		uid = uid_of_path(rt, file);
		if (uid && hashmap_contains(uids->full, uid))
			continue;
		log_info("orphan loop device %s (%s): detaching", devs[i], file);
		if (loop_detach(devs[i]) >= 0)
			n++;
	}
	return n;
}

static int sweep_dm(const KnownUids *uids)
{
	_cleanup_strv_free_ char **names = NULL;
	int n = 0;
	if (!dm_available() || dm_list("banger-", &names) < 0)
		return 0;
	for (size_t i = 0; names && names[i]; i++) {
		const char *id = names[i] + strlen("banger-");
		if (strlen(id) == 8 && uid_known(uids, id))
			continue;
		log_info("orphan dm target %s: removing", names[i]);
		if (dm_remove(names[i]) >= 0)
			n++;
	}
	return n;
}

static int sweep_sockets(Runtime *rt, const KnownUids *uids)
{
	DIR *d = opendir(rt->cfg.runtime_dir);
	struct dirent *de;
	int n = 0;
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		char id[LAYOUT_SHORT_ID_LEN + 1];
		if (!layout_sock_short_id(de->d_name, id))
			continue;
		if (uid_known(uids, id))
			continue;
		_cleanup_free_ char *sock = path_join(rt->cfg.runtime_dir, de->d_name);
		log_info("orphan VMM socket %s: stopping its process", sock);
		kill_socket_holder(sock, NULL);
		unlink(sock);
		n++;
	}
	closedir(d);
	return n;
}

static int sweep_dirs(Runtime *rt, const KnownUids *uids)
{
	_cleanup_free_ char *vms = xasprintf("%s/vms", rt->cfg.state_dir);
	DIR *d = opendir(vms);
	struct dirent *de;
	int n = 0;
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' || hashmap_contains(uids->full, de->d_name))
			continue;
		_cleanup_free_ char *p = path_join(vms, de->d_name);
		log_info("orphan VM dir %s: removing", p);
		if (rm_rf(p) >= 0)
			n++;
	}
	closedir(d);
	return n;
}

int runtime_sweep_orphans(Runtime *rt, char *const *known_uids)
{
	KnownUids k = { hashmap_new(), hashmap_new() };
	for (size_t i = 0; known_uids && known_uids[i]; i++) {
		char sid[LAYOUT_SHORT_ID_LEN + 1];
		hashmap_put(k.full, known_uids[i], NULL);
		if (layout_short_id(known_uids[i], sid) >= 0)
			hashmap_put(k.short_ids, sid, NULL);
	}
	/* Processes first: they hold taps and disks open. */
	int n = sweep_sockets(rt, &k);
	n += sweep_dm(&k);
	n += sweep_loops(rt, &k);
	n += sweep_taps(&k);
	n += sweep_dirs(rt, &k);
	hashmap_free(k.full);
	hashmap_free(k.short_ids);
	return n;
}
