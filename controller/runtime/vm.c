/* vm.c — see vm.h. The order of every start and teardown step, and where
 * the write-ahead records happen, is the point of this file:
 *
 *   start:    (prepare, loop thread) image check → VM dir (a spare from
 *             the disk pool, storage/diskpool.h, on a first boot) → then
 *             at once: (loop, vm_launch_network, after the facts commit)
 *             record nft key → nft elements; (worker, vm_launch_run) base
 *             record (root.base, storage/rootbase.h) → root disk (dm:
 *             record, then create) → work disk → cgroup → bridge → record
 *             tap → tap; then on the worker: file owners and chroot → tap
 *             owner → spawn (gated; joins the cgroup before exec) → record
 *             pid → VMM execs → launch completes → the pool's spare for
 *             the next first boot
 *   teardown: kill VMM → cgroup (and anything left in it) → nft rules → dm
 *             target → loops → tap → socket → driver cleanup (jail) →
 *             handles.json → (VM dir)
 *
 * A VMM's identity is the pid + start time recorded at spawn, before it may
 * exec (util/proc.h). Nothing here finds "our" VMM by its socket path. The
 * cgroup needs no write-ahead record: its name derives from the VM's uid
 * (confine/cgroup.h), so teardown and the orphan sweep always find it. The
 * nft elements come before the VMM (they may come before the tap: they name
 * it): no frame leaves the guest before its anti-spoofing rules exist, and
 * none after they are gone.
 */
#include "runtime/vm.h"
#include "confine/cgroup.h"
#include "net/net.h"
#include "net/nft.h"
#include "runtime/suspend.h"
#include "storage/storage.h"
#include "util/fileio.h"
#include "util/hashmap.h"
#include "util/layout.h"
#include "util/log.h"
#include "util/proc.h"
#include "util/timeutil.h"

#include <dirent.h>
#include <inttypes.h>
#include <pthread.h>
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
	CgroupHost *cgroups; /* NULL: none usable (only allowed with --no-confine) */
	char *owner_tag;     /* tap alias: net_owner_tag(instance) */
	char *pool_dir;      /* spare root disks (storage/diskpool.h) */
	NftHostAllow *host_allow;
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
	if (!cfg->instance || strlen(cfg->instance) != 16 ||
	    strspn(cfg->instance, "0123456789abcdef") != 16) {
		free(rt);
		return log_errno(-EINVAL, "runtime: instance tag '%s' is not 16 hex digits",
				 cfg->instance ?: "");
	}
	rt->cfg = *cfg;
	rt->cfg.instance = xstrdup(cfg->instance);
	rt->owner_tag = net_owner_tag(cfg->instance);
	if (cfg->n_host_allow) {
		rt->host_allow = xcalloc(cfg->n_host_allow, sizeof(NftHostAllow));
		memcpy(rt->host_allow, cfg->host_allow, cfg->n_host_allow * sizeof(NftHostAllow));
	}
	rt->cfg.host_allow = rt->host_allow;
	rt->cfg.state_dir = xstrdup(cfg->state_dir);
	rt->pool_dir = layout_disk_pool_dir(cfg->state_dir);
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
	/* Unconfined runs still look for cgroups: teardown and the sweep
	 * remove what an earlier confined run made. */
	r = cgroup_host_open(cfg->instance, &rt->cgroups);
	if (r < 0 && cfg->confine) {
		runtime_free(rt);
		return log_errno(r, "VMM confinement needs cgroup memory and pids controllers "
				    "(run with --no-confine to go without, for debugging only)");
	}
	if (rt->cgroups)
		log_info("VMM cgroups: %s%s", cgroup_host_mode(rt->cgroups),
			 cfg->confine ? "" : " (confinement off: --no-confine)");
	*ret = rt;
	return 0;
}

void runtime_free(Runtime *rt)
{
	if (!rt)
		return;
	free((char *)rt->cfg.state_dir);
	free(rt->pool_dir);
	free((char *)rt->cfg.runtime_dir);
	free((char *)rt->cfg.bridge);
	free((char *)rt->cfg.cidr);
	free((char *)rt->cfg.driver);
	free((char *)rt->cfg.instance);
	free(rt->owner_tag);
	free(rt->host_allow);
	strv_free(rt->image_dirs);
	free(rt->gateway);
	handle_cache_free(rt->cache);
	cgroup_host_free(rt->cgroups);
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
	ret->serial_sock = layout_runtime_sock(rt->cfg.runtime_dir, uid, LAYOUT_SERIAL_SUFFIX);
	if (!ret->serial_sock)
		ret->serial_sock =
			path_join(rt->cfg.runtime_dir, "invalid-uid" LAYOUT_SERIAL_SUFFIX);
	ret->console_sock = layout_runtime_sock(rt->cfg.runtime_dir, uid, LAYOUT_CONSOLE_SUFFIX);
	if (!ret->console_sock)
		ret->console_sock =
			path_join(rt->cfg.runtime_dir, "invalid-uid" LAYOUT_CONSOLE_SUFFIX);
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
	free(p->serial_sock);
	free(p->console_sock);
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

int runtime_pick_vmm_uid(Runtime *rt, uint32_t current, const uint32_t *used, size_t n_used,
			 uint32_t *ret)
{
	int r = confine_uid_pick(&rt->cfg.vmm_uids, current, used, n_used, ret);
	if (r == -ENOSPC)
		return log_errno(r, "every uid of --vmm-uid-range %u:%u is taken",
				 rt->cfg.vmm_uids.base, rt->cfg.vmm_uids.count);
	return r;
}

bool vm_alive(Runtime *rt, const char *name)
{
	VmHandles *h = handle_cache_get(rt->cache, name);
	uint64_t st;
	if (!h || h->pid <= 0)
		return false;
	int r = proc_start_time(h->pid, &st);
	/* Out of fds, /proc cannot be read: that is not a dead VMM. Taking it
	 * for one would tear a running VM down and start it twice; the pidfd
	 * still reports a real exit. */
	if (r == -EMFILE || r == -ENFILE || r == -ENOMEM) {
		log_warn_errno(r, "%s: cannot read /proc/%d: %m; taking its VMM as running", name,
			       (int)h->pid);
		return true;
	}
	return r >= 0 && st == h->pid_start_time;
}

/* ---- start ---------------------------------------------------------------- */

typedef struct {
	const char *vm_dir;
	VmHandles *h;
	pthread_mutex_t *lock; /* h is shared by two threads while a start runs */
} RecordCtx;

/* Write-ahead for dm-snapshot objects (storage/cow.h). */
static int record_disk(void *userdata, const RootDisk *d)
{
	RecordCtx *c = userdata;
	pthread_mutex_lock(c->lock);
	free_and_replace_str(&c->h->cow_file, d->cow_file);
	free_and_replace_str(&c->h->base_image, d->base_image);
	free_and_replace_str(&c->h->base_loop, d->base_loop);
	free_and_replace_str(&c->h->cow_loop, d->cow_loop);
	free_and_replace_str(&c->h->dm_name, d->dm_name);
	free_and_replace_str(&c->h->dm_dev, d->dm_dev);
	int r = vm_handles_write(c->vm_dir, c->h);
	pthread_mutex_unlock(c->lock);
	return r;
}

static RootDisk disk_from_handles(const VmHandles *h)
{
	return (RootDisk){ .cow_file = h->cow_file,
			   .base_image = h->base_image,
			   .base_loop = h->base_loop,
			   .cow_loop = h->cow_loop,
			   .dm_name = h->dm_name,
			   .dm_dev = h->dm_dev };
}

/* Undo the momentary objects of a failed start (disks stay for next time). */
static void undo_start(Runtime *rt, const char *uid, const char *vm_dir, VmHandles *h)
{
	cgroup_vm_remove(rt->cgroups, uid);
	RootDisk d = disk_from_handles(h);
	/* The elements are keyed by the tap's deterministic name, which h->tap
	 * lacks when the tap was not ours to make (vm_teardown does the same). */
	_cleanup_free_ char *tap = net_tap_name_for(uid);
	if (h->nft_mac && tap)
		nft_vm_delete(rt->cfg.instance, tap, h->nft_mac, h->nft_ip);
	root_disk_teardown(&d);
	/* Recorded by this start before it was created: ours even untagged. */
	if (h->tap)
		net_tap_delete(h->tap, rt->owner_tag, true);
	VmHandles *fresh = vm_handles_new();
	vm_handles_write(vm_dir, fresh);
	vm_handles_free(fresh);
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

static NftPolicy nft_policy(const Runtime *rt)
{
	return (NftPolicy){ .instance = rt->cfg.instance,
			    .bridge = rt->cfg.bridge,
			    .allow = rt->host_allow,
			    .n_allow = rt->cfg.n_host_allow };
}

int runtime_network_setup(Runtime *rt)
{
	NftPolicy p = nft_policy(rt);
	return nft_instance_ensure(&p);
}

/* The guest's MAC: spec.network.mac, else derived from its IP. */
static char *guest_mac(const char *spec_mac, const char *guest_ip)
{
	if (spec_mac)
		return xstrdup(spec_mac);
	return guest_ip ? net_mac_for_ip(guest_ip) : NULL;
}

typedef struct {
	const char *vm_dir;
	const char *name;
	VmHandles *h;
} PidRecord;

/* The write-ahead pid record, run by proc_spawn between the spawn and the exec: the
 * VMM cannot run, and so cannot serve its socket, before this is durable. */
static int record_pid(void *userdata, pid_t pid, uint64_t start_time)
{
	PidRecord *pr = userdata;
	runtime_crashpoint("vmm-spawned");
	pr->h->pid = pid;
	pr->h->pid_start_time = start_time;
	pr->h->started_at_ms = time_now_realtime_ms();
	pr->h->launched = false;
	int r = vm_handles_write(pr->vm_dir, pr->h);
	if (r < 0)
		return log_errno(r, "%s: record VMM pid %d: %m (not starting it)", pr->name,
				 (int)pid);
	runtime_crashpoint("pid-recorded");
	return 0;
}

/* Every tap gets an owner: a persistent tap without one may be attached by
 * any local user while its VMM does not hold it. The owner is the user the
 * VMM opens it as when that is unprivileged (jailed firecracker), else root:
 * a VMM that opens its tap with privileges (QEMU before -runas drops them,
 * firecracker without the jailer) needs no one else to be able to. */
static int give_tap(const VmmDriver *drv, const VmmLaunchConfig *c, char **ret_error)
{
	uid_t uid = 0;
	gid_t gid = 0;
	if (!c->tap)
		return 0;
	if (!drv->tap_user || drv->tap_user(c, &uid, &gid) <= 0) {
		uid = 0;
		gid = 0;
	}
	int r = net_tap_set_owner(c->tap, uid, gid);
	if (r < 0)
		*ret_error = xasprintf("tap %s: give to %u:%u: %s", c->tap, (unsigned)uid,
				       (unsigned)gid, strerror(-r));
	return r;
}

/* What start_confine() gives the launch: all zero when unconfined. */
typedef struct {
	uid_t uid;
	char *chroot;
	char **cgroup_procs;
} Confinement;

static void confinement_done(Confinement *c)
{
	free(c->chroot);
	strv_free(c->cgroup_procs);
	*c = (Confinement){ 0 };
}

/* One VM's start between prepare and finish: everything its worker reads,
 * owned here, so a worker thread needs nothing shared but the runtime's
 * read-only configuration. The request and its spec may be gone when it
 * runs. */
enum { NET_PENDING, NET_DONE };

struct VmLaunch {
	Runtime *rt; /* read-only on the worker: cfg, cgroups host, gateway */
	char *name, *uid, *user_args, *guest_ip;
	bool resume;
	const VmmDriver *drv;
	VmPaths p;
	Images img;
	/* the spec's facts the worker's steps use */
	char *rootfs_path; /* spec.rootfs.path as written (root.base compares it) */
	uint64_t work_disk_mib;
	unsigned memory_mib, vcpus;
	bool work_disk_no_grow;
	uint32_t vmm_uid;
	Confinement cf;
	char *mac, *incoming;
	char *root_base;  /* the base image the root disk was made from */
	bool took_spare;  /* the VM dir is a spare from the disk pool */
	CowMethod refill; /* COW_AUTO, or the method of the spare to make after the launch */
	char *disk_note;  /* for status: the root base changed, a work disk kept its size */
	const char *disk_reason;
	/* A copy of the cache entry: the firewall key (loop thread), the
	 * tap, the disks and the pid (worker) are recorded in it, under lock,
	 * each write of handles.json holding all of them. */
	VmHandles *h;
	pthread_mutex_t lock; /* h, and the facts' and firewall's result below */
	pthread_cond_t net_cond;
	bool net_enabled; /* spec.network.enabled */
	char *spec_mac;   /* spec.network.mac */
	bool net;         /* the VM has a tap (network enabled, a guest IP) */
	int net_state;    /* NET_PENDING until vm_launch_network (or _cancel) ran */
	char *net_error;
	PidRecord pr;
	VmmLaunchConfig c;
	uint64_t t_ready, t_net0, t_net, t_worker, t_disk, t_cgroup, t_tap,
		t_prepared; /* µs, for the debug log */
	int net_r, r;       /* the facts' and firewall's, and the start's result */
	char *error;
	VmmProcess proc;
};

static void vm_launch_free(VmLaunch *l)
{
	if (!l)
		return;
	free(l->name);
	free(l->uid);
	free(l->user_args);
	free(l->guest_ip);
	vm_paths_done(&l->p);
	images_done(&l->img);
	confinement_done(&l->cf);
	free(l->mac);
	free(l->spec_mac);
	free(l->incoming);
	free(l->root_base);
	free(l->rootfs_path);
	free(l->disk_note);
	vm_handles_free(l->h);
	free(l->net_error);
	free(l->error);
	pthread_cond_destroy(&l->net_cond);
	pthread_mutex_destroy(&l->lock);
	free(l);
}

const char *vm_launch_name(const VmLaunch *l)
{
	return l->name;
}

const char *vm_launch_disk_note(const VmLaunch *l, const char **ret_reason)
{
	*ret_reason = l->disk_reason;
	return l->disk_note;
}

static VmHandles *handles_copy(const VmHandles *h)
{
	_cleanup_free_ char *json = vm_handles_to_json(h);
	VmHandles *copy = NULL;
	if (vm_handles_from_json(json, &copy) < 0)
		return NULL;
	return copy;
}

/* The VM's tap, on its launch worker while the loop thread commits the
 * launch facts: the tap's name derives from the VM's uid, so it needs no
 * fact. Recorded in the launch's handles under its lock before it exists.
 * Bridge and tap creation tolerate a concurrent creator (netlink EXCL, then
 * look again), so workers may run it at once. */
static int start_tap(VmLaunch *l, char **ret_error)
{
	Runtime *rt = l->rt;
	VmHandles *h = l->h;
	if (!l->net_enabled)
		return 0;
	int r = net_bridge_ensure(rt->cfg.bridge, rt->cfg.cidr);
	if (r < 0) {
		*ret_error = xasprintf("bridge %s: %s", rt->cfg.bridge, strerror(-r));
		return r;
	}
	_cleanup_free_ char *tap = net_tap_name_for(l->uid);
	pthread_mutex_lock(&l->lock);
	free_and_replace_str(&h->tap, tap);
	r = vm_handles_write(l->p.vm_dir, h);
	pthread_mutex_unlock(&l->lock);
	if (r < 0) {
		*ret_error = xasprintf("record tap: %s", strerror(-r));
		return r;
	}
	runtime_crashpoint("tap-recorded");
	r = net_tap_ensure(tap, rt->cfg.bridge, 0, rt->owner_tag);
	if (r == -EEXIST) {
		/* Not ours (another instance, an operator): undo must not touch it. */
		*ret_error = xasprintf("tap %s exists and is not this instance's", tap);
		pthread_mutex_lock(&l->lock);
		free(h->tap);
		h->tap = NULL;
		int k = vm_handles_write(l->p.vm_dir, h);
		pthread_mutex_unlock(&l->lock);
		if (k < 0) /* the next start-up finds the tap recorded and leaves it: untagged */
			log_warn_errno(k, "%s: forget tap %s in handles.json: %m", l->name, tap);
		return r;
	}
	if (r < 0) {
		*ret_error = xasprintf("tap %s: %s", tap, strerror(-r));
		return r;
	}
	runtime_crashpoint("tap-created");
	return 0;
}

/* The tap's nft elements, on the loop thread once the facts (guest IP, so
 * its MAC) are committed; the tap itself need not exist yet (an element
 * names it). Their key is recorded before they exist. */
static int start_firewall(VmLaunch *l, char **ret_error)
{
	Runtime *rt = l->rt;
	_cleanup_free_ char *tap = net_tap_name_for(l->uid);
	pthread_mutex_lock(&l->lock);
	free_and_replace_str(&l->h->nft_mac, l->mac);
	free_and_replace_str(&l->h->nft_ip, l->guest_ip);
	int r = vm_handles_write(l->p.vm_dir, l->h);
	pthread_mutex_unlock(&l->lock);
	if (r < 0) {
		*ret_error = xasprintf("record the firewall key of tap %s: %s", tap, strerror(-r));
		return r;
	}
	NftPolicy pol = nft_policy(rt);
	r = nft_vm_add(&pol, tap, l->mac, l->guest_ip);
	if (r < 0) {
		*ret_error = xasprintf("firewall rules for tap %s: %s", tap, strerror(-r));
		return r;
	}
	runtime_crashpoint("nft-created");
	return 0;
}

/* The facts' and the firewall's result (or the facts' error) to the worker. */
static void network_done(VmLaunch *l, int r, char *err)
{
	pthread_mutex_lock(&l->lock);
	l->net_r = r;
	l->net_error = r < 0 ? (err ? err : xstrdup(strerror(-r))) : NULL;
	l->net_state = NET_DONE;
	l->t_net = time_now_us();
	pthread_cond_broadcast(&l->net_cond);
	pthread_mutex_unlock(&l->lock);
	if (r >= 0)
		free(err);
}

void vm_launch_network(VmLaunch *l, const char *guest_ip, uint32_t vmm_uid)
{
	char *err = NULL;
	l->t_net0 = time_now_us();
	/* The facts are the worker's to read only after network_done. */
	pthread_mutex_lock(&l->lock);
	free_and_replace_str(&l->guest_ip, guest_ip);
	free(l->mac);
	l->mac = guest_mac(l->spec_mac, guest_ip);
	l->net = l->net_enabled && guest_ip;
	l->vmm_uid = vmm_uid;
	pthread_mutex_unlock(&l->lock);
	int r = l->net ? start_firewall(l, &err) : 0;
	network_done(l, r, err);
}

void vm_launch_cancel(VmLaunch *l, int r, const char *error)
{
	l->t_net0 = time_now_us();
	network_done(l, r < 0 ? r : -ECANCELED, xstrdup(error ? error : strerror(-r)));
}

/* The worker waits for the facts and the firewall before it confines and
 * launches: no frame leaves the guest before its anti-spoofing elements. */
static int wait_network(VmLaunch *l, char **ret_error)
{
	pthread_mutex_lock(&l->lock);
	while (l->net_state == NET_PENDING)
		pthread_cond_wait(&l->net_cond, &l->lock);
	int r = l->net_r;
	if (r < 0)
		*ret_error = TAKE_PTR(l->net_error);
	pthread_mutex_unlock(&l->lock);
	return r;
}

/* The root disk (and the work disk) of the launch's VM: on its worker, so
 * a copy of a large image or an fsync never holds the event loop. */
static int start_disks(VmLaunch *l, char **ret_error)
{
	VmHandles *h = l->h;
	RecordCtx ctx = { .vm_dir = l->p.vm_dir, .h = h, .lock = &l->lock };
	/* Which base the disk goes with: remade only when rootfs.path changed
	 * (storage/rootbase.h); an overlay keeps the file it was made from. */
	_cleanup_(root_base_choice_done) RootBaseChoice base = { 0 };
	_cleanup_free_ char *why = NULL;
	int k = root_base_resolve(l->p.vm_dir, l->rootfs_path, l->img.rootfs, &base, &why);
	if (k < 0) {
		*ret_error = xasprintf("root disk: %s", why ? why : strerror(-k));
		return k;
	}
	if (base.note) {
		log_info("%s: %s", l->name, base.note);
		free_and_replace_str(&l->disk_note, base.note);
		l->disk_reason = base.reason;
	}
	RootDiskRequest rq = { .vm_dir = l->p.vm_dir,
			       .vm_uid = l->uid,
			       .owner = l->rt->cfg.instance,
			       .base_image = base.base,
			       .qemu = streq(l->drv->name, "qemu"),
			       .method = COW_AUTO,
			       .record = record_disk,
			       .userdata = &ctx };
	RootDisk disk = { 0 };
	int r = root_disk_prepare(&rq, &disk);
	if (r < 0) {
		*ret_error = xasprintf("root disk: %s", strerror(-r));
		return r;
	}
	pthread_mutex_lock(&l->lock);
	free_and_replace_str(&h->root_disk, disk.path);
	free_and_replace_str(&h->root_format, disk.format);
	r = vm_handles_write(l->p.vm_dir, h);
	pthread_mutex_unlock(&l->lock);
	free_and_replace_str(&l->root_base, disk.base_image);
	/* A disk this start made, or a spare it took: the next first boot on
	 * this base gets a spare too. */
	if ((base.plan == ROOT_BASE_CREATE || base.plan == ROOT_BASE_RECREATE || l->took_spare) &&
	    disk_pool_method_ok(disk.method))
		l->refill = disk.method;
	log_info("%s: root disk %s (%s%s)", l->name, disk.path, cow_method_to_string(disk.method),
		 disk.reused ? ", kept" : "");
	root_disk_done(&disk);
	if (r < 0) {
		*ret_error = xasprintf("record root disk: %s", strerror(-r));
		return r;
	}
	runtime_crashpoint("disk-ready");
	if (l->work_disk_mib) {
		r = l->work_disk_no_grow
			    ? work_disk_ensure_no_grow(l->p.work_disk, l->work_disk_mib)
			    : work_disk_ensure(l->p.work_disk, l->work_disk_mib);
		if (r < 0) {
			*ret_error = xasprintf("work disk %s: %s", l->p.work_disk, strerror(-r));
			return r;
		}
		/* The VM starts with the data it had; status says the size is old. */
		if (r == WORK_DISK_KEPT_OLD_SIZE && !l->disk_note) {
			l->disk_note =
				xasprintf("work disk resize to %" PRIu64
					  " MiB failed (see the log); started at its old size",
					  l->work_disk_mib);
			l->disk_reason = "WorkDiskResizeFailed";
		}
	}
	return 0;
}

/* The files a VM keeps go to its VMM's uid, 0600: disks and logs are
 * usable by that uid and by no other VM's. Only files inside the VM dir: a
 * dm root disk is a device node the kernel opens, and base images are
 * shared and stay root's. */
static int own_vm_files(const VmLaunch *l, uid_t uid)
{
	const VmPaths *p = &l->p;
	_cleanup_free_ char *prefix = xasprintf("%s/", p->vm_dir);
	const char *root = l->h->root_disk;
	const char *files[] = { p->console_path, p->log_path,
				l->work_disk_mib ? p->work_disk : NULL,
				root && startswith(root, prefix) ? root : NULL };
	int r = confine_vm_dir(p->vm_dir, uid);
	for (size_t i = 0; r >= 0 && i < ELEMENTSOF(files); i++)
		if (files[i])
			r = confine_file(files[i], uid, uid, 0600);
	return r;
}

/* The VMM's cgroup: named by the VM's uid, so it needs no record first,
 * and no launch fact either — made while the loop thread still commits
 * them and adds the firewall elements. */
static int start_cgroup(VmLaunch *l, char **ret_error)
{
	Runtime *rt = l->rt;
	if (!rt->cfg.confine)
		return 0;
	CgroupLimits lim = { .memory_bytes = confine_memory_limit(l->memory_mib),
			     .pids_max = confine_pids_limit(l->vcpus) };
	int r = cgroup_vm_create(rt->cgroups, l->uid, &lim, &l->cf.cgroup_procs);
	if (r < 0) {
		*ret_error = xasprintf("cgroup: %s", strerror(-r));
		return r;
	}
	runtime_crashpoint("cgroup-created");
	return 0;
}

/* The ownership of the VM's files and its empty chroot: they need the VMM
 * uid, a launch fact. */
static int start_confine(VmLaunch *l, char **ret_error)
{
	Runtime *rt = l->rt;
	int r;
	if (!rt->cfg.confine)
		return 0;
	if (!l->vmm_uid) {
		*ret_error = xstrdup("confinement: no VMM uid allocated");
		return -EINVAL;
	}
	if ((r = own_vm_files(l, l->vmm_uid)) < 0 ||
	    (r = confine_chroot_dir(l->p.vm_dir, &l->cf.chroot)) < 0) {
		*ret_error =
			xasprintf("confinement: files of uid %u: %s", l->vmm_uid, strerror(-r));
		return r;
	}
	l->cf.uid = l->vmm_uid;
	return 0;
}

/* The launch configuration, pointing into l (and the runtime's read-only
 * settings) only: the request and its spec may be gone when it runs. */
static void launch_config(VmLaunch *l)
{
	Runtime *rt = l->rt;
	l->pr = (PidRecord){ .vm_dir = l->p.vm_dir, .name = l->name, .h = l->h };
	l->c = (VmmLaunchConfig){
		.settings = &rt->cfg.vmm,
		.name = l->name,
		.vm_id = l->uid,
		.vm_dir = l->p.vm_dir,
		.api_sock = l->p.api_sock,
		.log_path = l->p.log_path,
		.console_path = l->p.console_path,
		.serial_sock = l->p.serial_sock,
		.kernel_path = l->img.kernel,
		.initrd_path = l->img.initrd,
		.user_args = l->user_args,
		.root_disk = l->h->root_disk,
		.root_disk_format = l->h->root_format,
		.root_disk_base = l->root_base,
		.work_disk = l->work_disk_mib ? l->p.work_disk : NULL,
		.tap = l->h->tap,
		.mac = l->mac,
		.guest_ip = l->h->tap ? l->guest_ip : NULL,
		.gateway_ip = rt->gateway,
		.prefix_len = rt->prefix,
		.vcpus = l->vcpus,
		.memory_mib = l->memory_mib,
		.record_pid = record_pid,
		.record_userdata = &l->pr,
		.vmm_uid = l->cf.uid,
		.vmm_gid = l->cf.uid,
		.chroot_dir = l->cf.chroot,
		.cgroup_procs = l->cf.cgroup_procs,
		.incoming_dir = l->incoming,
	};
}

/* The last steps before the VMM: the tap's owner and a fresh console. */
static int launch_ready(VmLaunch *l, char **ret_error)
{
	int r = give_tap(l->drv, &l->c, ret_error);
	if (r < 0)
		return r;
	/* A fresh console per boot: readiness and panic detection read it. A
	 * resumed guest does not boot: its console goes on. */
	if (!l->resume) {
		(void)!truncate(l->p.console_path, 0); /* absent on a first boot */
		_cleanup_free_ char *older = xasprintf("%s.1", l->p.console_path);
		(void)!unlink(older); /* the previous boot's rotated console segment */
	}
	return 0;
}

/* The steps of a start that may block (disks, confinement, the launch)
 * run on a worker: the root disk is a copy of an image or a qcow2 header
 * and several fsyncs, mkfs for a new work disk, cgroups, the spawn and the
 * boot plan. Each one writes ahead in l->h, as a start on the loop did. */
static int launch_prepare(VmLaunch *l, char **ret_error)
{
	l->t_worker = time_now_us();
	int r = start_disks(l, ret_error);
	l->t_disk = time_now_us();
	if (r >= 0)
		r = start_cgroup(l, ret_error);
	l->t_cgroup = time_now_us();
	if (r >= 0)
		r = start_tap(l, ret_error);
	l->t_tap = time_now_us();
	/* The facts (VMM uid, guest IP: confinement and launch need them) and
	 * the firewall's result, whatever happened here: the loop thread may
	 * still be adding the elements, and the launch must not end before. */
	char *net_err = NULL;
	int k = wait_network(l, &net_err);
	if (r >= 0 && k < 0) {
		r = k;
		*ret_error = net_err;
	} else
		free(net_err);
	if (r >= 0)
		r = start_confine(l, ret_error);
	if (r < 0)
		return r;
	launch_config(l);
	r = launch_ready(l, ret_error);
	l->t_prepared = time_now_us();
	return r;
}

/* The spare for the next first boot on this VM's base, made after this
 * one's exec: its fsyncs are on no start's path. A failure costs the next
 * first boot its head start, nothing else. */
static void pool_refill(VmLaunch *l)
{
	char sid[LAYOUT_SHORT_ID_LEN + 1];
	RootBase now = { 0 };
	if (l->refill == COW_AUTO || layout_short_id(l->uid, sid) < 0 ||
	    root_base_identify(l->rootfs_path, l->img.rootfs, &now) < 0)
		return;
	int r = disk_pool_fill(l->rt->pool_dir, &now, l->refill, sid);
	if (r < 0)
		log_warn_errno(r, "%s: no spare root disk made for %s: %m", l->name, l->img.rootfs);
	root_base_done(&now);
}

/* A first boot takes a spare root disk as its VM dir when the pool has one
 * for its base (storage/diskpool.h): that disk's fsyncs were paid before
 * the spec came. Without one, the worker makes the disk as before. */
static void take_spare(Runtime *rt, VmLaunch *l, const char *spec_path)
{
	RootBase now = { 0 };
	if (root_base_identify(spec_path, l->img.rootfs, &now) < 0)
		return; /* the worker's root disk step reports it */
	int r = disk_pool_take(rt->pool_dir, &now, streq(l->drv->name, "qemu"), l->p.vm_dir);
	if (r < 0)
		log_warn_errno(r, "%s: no spare root disk taken (%m); the start makes its own",
			       l->name);
	l->took_spare = r > 0;
	root_base_done(&now);
}

void vm_launch_run(VmLaunch *l)
{
	VmmProcess proc = { 0 };
	char *err = NULL;
	int r = launch_prepare(l, &err);
	if (r < 0) {
		l->error = err ? err : xstrdup(strerror(-r));
		l->r = r;
		return;
	}
	r = l->drv->launch(&l->c, &proc);
	if (r < 0) {
		l->error = xasprintf("%s launch failed: %s (see %s)", l->drv->name, strerror(-r),
				     l->p.log_path);
		l->r = r;
		return;
	}
	runtime_crashpoint("launched");
	l->proc = proc;
	l->r = 0;
	if (l->h->pid != proc.pid || l->h->pid_start_time != proc.start_time) {
		/* A driver that spawned without the hook: record now, late. */
		l->h->pid = proc.pid;
		l->h->pid_start_time = proc.start_time;
		l->h->started_at_ms = time_now_realtime_ms();
	}
	/* Adoption can now take the recorded pid as a launched VMM without
	 * asking it (recorded_vmm_runs). Not recorded (a failed write, or a
	 * crash before it): adoption asks the driver, as before. */
	l->h->launched = true;
	r = vm_handles_write(l->p.vm_dir, l->h);
	if (r < 0)
		log_warn_errno(r, "%s: record pid %d as launched: %m", l->name, (int)proc.pid);
	pool_refill(l);
}

/* Idempotent start: a VMM that handles.json records as alive is this VM's,
 * though the cache does not know it (a caller that skipped rediscovery, or
 * a cache entry dropped by mistake). Adopt it: launching a second VMM would
 * fail on the busy socket and the image locks, and undoing that failed
 * start would delete the live VMM's tap. A process that merely serves the
 * socket path is not adopted: the path is not an identity. */
static bool adopt_unknown_vmm(Runtime *rt, const VmStartRequest *req, const char *vm_dir,
			      const char *api_sock)
{
	_cleanup_(vm_handles_freep) VmHandles *h = NULL;
	if (vm_handles_read(vm_dir, &h) < 0 || !proc_alive(h->pid, h->pid_start_time))
		return false;
	log_warn("%s: start requested, but its recorded VMM pid %d runs: adopting it", req->name,
		 (int)h->pid);
	return vm_rediscover(rt, req->name, req->uid, api_sock) > 0;
}

/* A consumed saved state is of no further use, resumed or not. */
static void resume_done(Runtime *rt, const char *name, const char *uid, bool resume)
{
	if (resume && vm_saved_discard(rt, uid) < 0)
		log_warn("%s: the used saved state could not be removed (never resumed again: "
			 "its record is consumed)",
			 name);
}

/* Undo what prepare made for l (its cache entry included). */
static void launch_undo(Runtime *rt, VmLaunch *l, const char *error)
{
	log_warn("%s: start failed: %s", l->name, error ? error : "?");
	VmHandles *h = handle_cache_get(rt->cache, l->name);
	if (h)
		undo_start(rt, l->uid, l->p.vm_dir, h);
	handle_cache_drop(rt->cache, l->name);
}

int vm_start_prepare(Runtime *rt, const VmStartRequest *req, VmLaunch **ret_launch,
		     char **ret_error)
{
	const VmmDriver *drv = runtime_driver_for(rt, req->spec);
	int r;

	*ret_error = NULL;
	if (!drv || !drv->available(&rt->cfg.vmm)) {
		*ret_error = xasprintf("VMM %s is not available on this host",
				       drv ? drv->name : "(unknown)");
		return -ENOEXEC;
	}
	VmLaunch *l = xcalloc(1, sizeof(VmLaunch));
	pthread_mutex_init(&l->lock, NULL);
	pthread_cond_init(&l->net_cond, NULL);
	l->rt = rt;
	l->name = xstrdup(req->name);
	l->uid = xstrdup(req->uid);
	l->user_args = req->spec->kernel_args ? xstrdup(req->spec->kernel_args) : NULL;
	l->resume = req->resume;
	l->drv = drv;
	vm_paths_for(rt, req->uid, &l->p);
	if (vm_alive(rt, req->name) || adopt_unknown_vmm(rt, req, l->p.vm_dir, l->p.api_sock)) {
		vm_launch_free(l);
		return 0;
	}
	if ((r = check_images(rt, req->spec, &l->img, ret_error)) < 0)
		goto out;
	/* A saved state is used at most once: its record is consumed before
	 * the VMM sees it, so a crash from here on can never resume it again. */
	if (req->resume && ((r = vm_saved_verify(rt, req->uid, ret_error)) < 0 ||
			    (r = vm_saved_consume(rt, req->uid, ret_error)) < 0))
		goto out;
	if (!req->resume)
		take_spare(rt, l, req->spec->rootfs_path);
	if ((r = mkdir_p(l->p.vm_dir, 0700)) < 0 || (r = mkdir_p(rt->cfg.runtime_dir, 0700)) < 0) {
		*ret_error = xasprintf("create %s: %s", l->p.vm_dir, strerror(-r));
		goto out;
	}
	VmHandles *h = vm_handles_new();
	handle_cache_put(rt->cache, req->name, h);
	h->vmm = xstrdup(drv->name);
	h->spec_json = vm_spec_to_canonical_json(req->spec);
	l->net_enabled = req->spec->network_enabled;
	l->spec_mac = req->spec->mac ? xstrdup(req->spec->mac) : NULL;
	l->incoming = req->resume ? vm_saved_dir(rt, req->uid) : NULL;
	l->rootfs_path = xstrdup(req->spec->rootfs_path);
	l->work_disk_mib = req->spec->work_disk_mib;
	l->work_disk_no_grow = req->work_disk_no_grow;
	l->memory_mib = req->spec->memory_mib;
	l->vcpus = req->spec->vcpus;
	l->h = handles_copy(h);
	if (!l->h) {
		r = -ENOMEM;
		*ret_error = xstrdup("copy the VM's handles for its launch");
		goto fail;
	}
	l->t_ready = time_now_us();
	*ret_launch = l;
	return 1;
fail:
	launch_undo(rt, l, *ret_error);
out:
	resume_done(rt, req->name, req->uid, req->resume);
	vm_launch_free(l);
	return r;
}

int vm_launch_finish(Runtime *rt, VmLaunch *l, char **ret_error)
{
	int r = l->r;
	*ret_error = NULL;
	/* The worker's record (disks, pid) is the VM's now: what an undo
	 * reads, or the running VM's handles. */
	VmHandles *h = TAKE_PTR(l->h);
	if (h)
		handle_cache_put(rt->cache, l->name, h);
	if (r < 0) {
		*ret_error = TAKE_PTR(l->error);
		launch_undo(rt, l, *ret_error);
	} else {
		/* The uid the process really runs as (the driver may not drop to
		 * cf.uid: Firecracker without its jailer stays root). */
		uid_t running_as = 0;
		(void)proc_uid(h->pid, &running_as);
		log_info("%s: %s %s (pid %d, tap %s, ip %s, uid %u%s)", l->name, l->drv->name,
			 l->resume ? "resumed from its saved state" : "started", (int)h->pid,
			 h->tap ? h->tap : "-", l->c.guest_ip ? l->c.guest_ip : "-",
			 (unsigned)running_as, l->cf.uid ? "" : ", unconfined");
		/* firewall on the loop; disk, cgroup, tap, confine (with any
		 * wait for the facts and the firewall) and launch on its worker,
		 * launch until the pass collected it. */
		log_debug(
			"%s: timing: firewall %.3f ms, disk %.3f ms, cgroup %.3f ms, tap %.3f ms, "
			"confine %.3f ms, launch %.3f ms (%.3f ms waiting for a worker%s)",
			l->name, (l->t_net - l->t_net0) / 1000.0,
			(l->t_disk - l->t_worker) / 1000.0, (l->t_cgroup - l->t_disk) / 1000.0,
			(l->t_tap - l->t_cgroup) / 1000.0, (l->t_prepared - l->t_tap) / 1000.0,
			(time_now_us() - l->t_prepared) / 1000.0,
			(l->t_worker - l->t_ready) / 1000.0,
			l->took_spare ? "; root disk from the pool" : "");
	}
	resume_done(rt, l->name, l->uid, l->resume);
	vm_launch_free(l);
	return r;
}

int vm_start(Runtime *rt, const VmStartRequest *req, char **ret_error)
{
	VmLaunch *l = NULL;
	int r = vm_start_prepare(rt, req, &l, ret_error);
	if (r <= 0)
		return r;
	vm_launch_network(l, req->guest_ip, req->vmm_uid);
	vm_launch_run(l);
	const char *reason = NULL;
	const char *note = vm_launch_disk_note(l, &reason);
	if (note && req->ret_disk_note) {
		*req->ret_disk_note = xstrdup(note);
		if (req->ret_disk_reason)
			*req->ret_disk_reason = reason;
	}
	return vm_launch_finish(rt, l, ret_error);
}

int runtime_vm_fw_taps(Runtime *rt, char ***ret_taps)
{
	return nft_vm_list(rt->cfg.instance, ret_taps);
}

int vm_firewall_ensure(Runtime *rt, const char *name, const char *uid, const char *guest_ip,
		       char *const *fw_taps)
{
	VmHandles *h = handle_cache_get(rt->cache, name);
	_cleanup_free_ char *tap = net_tap_name_for(uid);
	_cleanup_(vm_spec_freep) VmSpec *spec = NULL;
	_cleanup_(vm_paths_done) VmPaths p = { 0 };
	_cleanup_free_ char *mac = NULL;
	int r;

	if (!h || !h->tap || !guest_ip || !tap || !streq(h->tap, tap) ||
	    strv_contains(fw_taps, tap))
		return 0;
	/* The MAC the VMM was launched with: its spec, else derived from the IP. */
	if (h->spec_json && vm_spec_from_json(h->spec_json, &spec) >= 0 && spec->mac)
		mac = xstrdup(spec->mac);
	else
		mac = net_mac_for_ip(guest_ip);
	free_and_replace_str(&h->nft_mac, mac);
	free_and_replace_str(&h->nft_ip, guest_ip);
	vm_paths_for(rt, uid, &p);
	if ((r = vm_handles_write(p.vm_dir, h)) < 0)
		return r;
	log_warn("%s: running without its firewall rules (started before them, by an older "
		 "bangerd, or deleted by hand): adding them for tap %s",
		 name, tap);
	NftPolicy pol = nft_policy(rt);
	return nft_vm_add(&pol, tap, mac, guest_ip);
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
	/* Talk only to our VMM: the socket's server must be the recorded pid. */
	int r = proc_socket_served_by(api_sock, h->pid);
	if (r == -EPERM)
		return log_errno(r,
				 "%s: %s is not served by its VMM (pid %d); not sending the "
				 "stop request there",
				 name, api_sock, (int)h->pid);
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

/* Kill the process named by pid + start time and wait for it (SIGKILL
 * takes milliseconds; the wait is bounded). */
static int kill_verified(pid_t pid, uint64_t st)
{
	if (pid <= 0)
		return 0;
	int r = proc_kill_verified(pid, st, 5000);
	return r == -ESRCH ? 0 : r;
}

/* Remove what a driver made outside the VM dir (the firecracker jail). Every
 * driver is asked: the handles may be gone, and cleanup is idempotent. */
static int driver_cleanup(Runtime *rt, const char *uid)
{
	static const VmmDriver *const all[] = { &vmm_firecracker_driver, &vmm_qemu_driver };
	int r = 0;
	for (size_t i = 0; i < ELEMENTSOF(all); i++) {
		int k = all[i]->cleanup ? all[i]->cleanup(&rt->cfg.vmm, uid) : 0;
		if (k < 0 && r == 0)
			r = k;
	}
	return r;
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

	/* Only the recorded VMM is killed; a process that serves the socket
	 * path but was not recorded is not ours (util/proc.h). */
	if (h && (k = kill_verified(h->pid, h->pid_start_time)) < 0 && r == 0)
		r = k;
	if ((k = cgroup_vm_remove(rt->cgroups, uid)) < 0 && r == 0)
		r = k;
	/* The elements' key is recorded before they are made, so handles
	 * without one mean there are none (a VM without network costs no nft
	 * call); with no handles at all, they are looked up by the tap's
	 * deterministic name. */
	_cleanup_free_ char *tap = net_tap_name_for(uid);
	if (tap && (!h || h->nft_mac) &&
	    (k = nft_vm_delete(rt->cfg.instance, tap, h ? h->nft_mac : NULL,
			       h ? h->nft_ip : NULL)) < 0 &&
	    r == 0)
		r = k;
	if (h) {
		RootDisk d = disk_from_handles(h);
		if ((k = root_disk_teardown(&d)) < 0 && r == 0)
			r = k;
	}
	/* Ours when it carries our tag; untagged only when this VM recorded it
	 * (a crash between creating it and setting the alias). */
	bool recorded = h && h->tap && tap && streq(h->tap, tap);
	if (tap && (k = net_tap_delete(tap, rt->owner_tag, recorded)) < 0 && r == 0)
		r = k;
	if (unlink(api_sock) < 0 && errno != ENOENT && r == 0)
		r = -errno;
	if ((k = driver_cleanup(rt, uid)) < 0 && r == 0)
		r = k;
	if (unlink(p.serial_sock) < 0 && errno != ENOENT && r == 0)
		r = -errno;
	if (remove_dir && unlink(p.console_sock) < 0 && errno != ENOENT && r == 0)
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

/* Is the recorded VMM one to keep? It must be alive (pid + start time) and,
 * when the driver can tell, past its launch. */
/* 1 when the VMM recorded at spawn runs (same pid and start time, launch
 * finished), 0 when it does not, -errno when that cannot be told (out of
 * fds): a VMM that may be running is never taken for dead. */
static int recorded_vmm_runs(Runtime *rt, const char *name, const VmHandles *h,
			     const char *api_sock)
{
	uint64_t st;
	if (h->pid <= 0)
		return 0;
	int r = proc_start_time(h->pid, &st);
	if (r == -EMFILE || r == -ENFILE || r == -ENOMEM)
		return log_errno(r, "%s: cannot tell whether its VMM (pid %d) runs: %m", name,
				 (int)h->pid);
	if (r < 0 || st != h->pid_start_time)
		return 0;
	const VmmDriver *d = driver_of(rt, h);
	VmmProcess p = { .pid = h->pid, .start_time = h->pid_start_time };
	if (!h->launched && d->launched && d->launched(api_sock, &p) == 0) {
		log_warn("%s: VMM pid %d was spawned but its launch never finished", name,
			 (int)h->pid);
		return 0;
	}
	return 1;
}

int vm_rediscover(Runtime *rt, const char *name, const char *uid, const char *api_sock)
{
	_cleanup_(vm_paths_done) VmPaths p = { 0 };
	VmHandles *h = NULL;
	pid_t other;

	vm_paths_for(rt, uid, &p);
	if (!api_sock)
		api_sock = p.api_sock;
	int hr = vm_handles_read(p.vm_dir, &h);
	/* Out of fds: the record cannot be read, which is not "no VMM". Taken
	 * for one, the teardown would empty the VM's cgroup: a running guest
	 * killed. Say so and let the caller stop. */
	if (hr == -EMFILE || hr == -ENFILE || hr == -ENOMEM)
		return log_errno(hr, "%s: cannot tell whether its VMM runs (read %s/%s): %m", name,
				 p.vm_dir, LAYOUT_HANDLES_FILE);
	if (hr < 0)
		h = vm_handles_new();
	/* The identity is what was recorded at spawn, never the socket path. */
	int runs = recorded_vmm_runs(rt, name, h, api_sock);
	if (runs < 0) {
		vm_handles_free(h);
		return runs;
	}
	if (runs) {
		if (proc_socket_served_by(api_sock, h->pid) == -EPERM &&
		    proc_find_by_unix_socket(api_sock, &other) >= 0)
			log_warn("%s: %s is served by pid %d, not by its VMM pid %d", name,
				 api_sock, (int)other, (int)h->pid);
		handle_cache_put(rt->cache, name, h);
		log_info("%s: adopted running VMM (pid %d)", name, (int)h->pid);
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

/* Only taps whose alias is our tag: one with no alias or another tag
 * belongs to another instance or to an operator. */
static int sweep_taps(Runtime *rt, const KnownUids *uids)
{
	_cleanup_strv_free_ char **taps = NULL;
	int n = 0;
	if (net_list_links(NET_TAP_PREFIX, &taps) < 0)
		return 0;
	for (size_t i = 0; taps && taps[i]; i++) {
		const char *id = taps[i] + strlen(NET_TAP_PREFIX);
		_cleanup_free_ char *alias = NULL;
		if (layout_is_short_id(id) && uid_known(uids, id))
			continue;
		if (net_link_alias(taps[i], &alias) < 0 || !alias || !streq(alias, rt->owner_tag)) {
			log_debug("tap %s: alias '%s' is not ours: not an orphan of this instance",
				  taps[i], alias ?: "");
			continue;
		}
		log_info("orphan tap %s: deleting", taps[i]);
		if (net_tap_delete(taps[i], rt->owner_tag, false) >= 0)
			n++;
	}
	return n;
}

/* Taps in our own table's @taps set (the table name carries our tag)
 * whose VM is unknown: their elements go. */
static int sweep_nft(Runtime *rt, const KnownUids *uids)
{
	_cleanup_strv_free_ char **taps = NULL;
	int n = 0;
	/* An older bangerd's per-VM chains: all orphans now (adopted VMs got
	 * their elements already: vm_firewall_ensure). */
	NftPolicy pol = nft_policy(rt);
	if (nft_legacy_remove(&pol) < 0)
		log_warn("an older bangerd's nft chains could not be removed");
	if (nft_vm_list(rt->cfg.instance, &taps) < 0)
		return 0;
	for (size_t i = 0; taps && taps[i]; i++) {
		const char *id =
			startswith(taps[i], NET_TAP_PREFIX) ? taps[i] + strlen(NET_TAP_PREFIX) : "";
		if (strlen(id) == 8 && uid_known(uids, id))
			continue;
		log_info("orphan nft rules of tap %s: deleting", taps[i]);
		if (net_ifname_valid(taps[i]) &&
		    nft_vm_delete(rt->cfg.instance, taps[i], NULL, NULL) >= 0)
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

/* Only targets whose dm UUID carries our tag. */
static int sweep_dm(Runtime *rt, const KnownUids *uids)
{
	_cleanup_strv_free_ char **names = NULL;
	_cleanup_free_ char *mine = dm_uuid_owner_prefix(rt->cfg.instance);
	int n = 0;
	if (!dm_available() || dm_list(DM_NAME_PREFIX, &names) < 0)
		return 0;
	for (size_t i = 0; names && names[i]; i++) {
		const char *id = names[i] + strlen(DM_NAME_PREFIX);
		_cleanup_free_ char *uuid = NULL;
		if (strlen(id) == 8 && uid_known(uids, id))
			continue;
		if (dm_uuid_of(names[i], &uuid) < 0 || !uuid || !startswith(uuid, mine))
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
		/* Serial and console sockets have no process of their own (QEMU's
		 * serial goes with the QEMU found by its .sock): just remove them. */
		char id[LAYOUT_SHORT_ID_LEN + 1];
		if (layout_name_short_id(de->d_name, LAYOUT_SERIAL_SUFFIX, id) ||
		    layout_name_short_id(de->d_name, LAYOUT_CONSOLE_SUFFIX, id)) {
			if (!uid_known(uids, id) && unlinkat(dirfd(d), de->d_name, 0) == 0)
				n++;
			continue;
		}
		if (!layout_sock_short_id(de->d_name, id))
			continue;
		if (uid_known(uids, id))
			continue;
		_cleanup_free_ char *sock = path_join(rt->cfg.runtime_dir, de->d_name);
		/* No row names it, so nothing was recorded: the server is asked
		 * of the socket itself (SO_PEERCRED through our own connect, which
		 * a socket bound in another mount namespace cannot answer). */
		pid_t pid;
		uint64_t st;
		log_info("orphan VMM socket %s: stopping its process", sock);
		if (proc_find_socket_owner(sock, &pid, &st) >= 0)
			kill_verified(pid, st);
		unlink(sock);
		n++;
	}
	closedir(d);
	return n;
}

static bool cgroup_known(const char *vm_uid, void *userdata)
{
	const KnownUids *k = userdata;
	return hashmap_contains(k->full, vm_uid);
}

static int sweep_dirs(Runtime *rt, const KnownUids *uids)
{
	_cleanup_free_ char *vms = path_join(rt->cfg.state_dir, LAYOUT_VMS_DIR);
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
		driver_cleanup(rt, de->d_name); /* its jail, if any */
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
	n += cgroup_sweep(rt->cgroups, cgroup_known, &k);
	n += sweep_nft(rt, &k);
	n += sweep_dm(rt, &k);
	n += sweep_loops(rt, &k);
	n += sweep_taps(rt, &k);
	n += sweep_dirs(rt, &k);
	if (disk_pool_sweep(rt->pool_dir) < 0)
		log_warn("disk pool %s: not all half-made or outdated spares could be removed",
			 rt->pool_dir);
	hashmap_free(k.full);
	hashmap_free(k.short_ids);
	return n;
}
