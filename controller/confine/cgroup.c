/* cgroup.c — see cgroup.h. */
#include "confine/cgroup.h"
#include "util/fileio.h"
#include "util/log.h"
#include "util/proc.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#define MOUNTINFO_MAX      (4 * 1024 * 1024)
#define PROCS_MAX          (1024 * 1024)
#define RMDIR_TRIES        50
#define RMDIR_WAIT_US      (10 * 1000)
#define SWEEP_KILL_WAIT_MS 2000

/* One hierarchy in use and what it limits. v1 may co-mount memory and
 * pids in one hierarchy; v2 always has both. */
typedef struct {
	char *mount;
	bool memory, pids, v2;
} Hierarchy;

struct CgroupHost {
	Hierarchy h[2];
	size_t n;
	char *parent; /* "banger-<instance>": this controller's VM cgroups */
};

char *cgroup_vm_rel(const CgroupHost *h, const char *vm_uid)
{
	return xasprintf("%s/%s", h->parent, vm_uid);
}

/* A VM uid names a directory: never empty, never a path. */
static bool vm_uid_ok(const char *vm_uid)
{
	return vm_uid && *vm_uid && vm_uid[0] != '.' && !strchr(vm_uid, '/');
}

static int write_str(const char *dir, const char *file, const char *value)
{
	_cleanup_free_ char *p = path_join(dir, file);
	_cleanup_close_ int fd = open(p, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return log_errno(-errno, "cgroup: open %s: %m", p);
	size_t len = strlen(value);
	ssize_t n = write(fd, value, len);
	if (n < 0)
		return log_errno(-errno, "cgroup: write '%s' to %s: %m", value, p);
	return (size_t)n == len ? 0 : log_errno(-EIO, "cgroup: short write to %s", p);
}

/* Field `idx` (0-based, space-separated) of a mountinfo line, copied. */
static char *field(const char *line, int idx)
{
	const char *p = line;
	for (int i = 0; i < idx && p; i++) {
		p = strchr(p, ' ');
		p = p ? p + 1 : NULL;
	}
	return p ? xstrndup(p, strcspn(p, " \n")) : NULL;
}

static bool opt_has(const char *opts, const char *want)
{
	size_t n = strlen(want);
	for (const char *p = opts; p && *p; p = strchr(p, ','), p = p ? p + 1 : NULL)
		if (strncmp(p, want, n) == 0 && (p[n] == ',' || p[n] == 0))
			return true;
	return false;
}

/* The v2 mount and the v1 memory/pids mounts named in mountinfo. */
static void scan_mounts(char *text, char **v2, char **mem, char **pids)
{
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *dash = strstr(line, " - ");
		if (!dash)
			continue;
		_cleanup_free_ char *type = field(dash + 3, 0), *opts = field(dash + 3, 2);
		_cleanup_free_ char *mnt = field(line, 4);
		if (!type || !mnt)
			continue;
		if (streq(type, "cgroup2") && !*v2)
			*v2 = TAKE_PTR(mnt);
		else if (streq(type, "cgroup") && opt_has(opts, "memory") && !*mem)
			*mem = xstrdup(mnt);
		if (mnt && streq(type, "cgroup") && opt_has(opts, "pids") && !*pids)
			*pids = TAKE_PTR(mnt);
	}
}

static bool v2_has_controllers(const char *mount)
{
	_cleanup_free_ char *p = path_join(mount, "cgroup.controllers"), *text = NULL;
	if (read_file_bounded(p, 4096, &text, NULL) < 0)
		return false;
	char *save = NULL;
	bool mem = false, pids = false;
	for (char *w = strtok_r(text, " \n", &save); w; w = strtok_r(NULL, " \n", &save)) {
		mem |= streq(w, "memory");
		pids |= streq(w, "pids");
	}
	return mem && pids;
}

int cgroup_host_open(const char *instance, CgroupHost **ret)
{
	_cleanup_free_ char *text = NULL, *v2 = NULL, *mem = NULL, *pids = NULL;
	int r = read_file_bounded("/proc/self/mountinfo", MOUNTINFO_MAX, &text, NULL);
	if (r < 0)
		return log_errno(r, "cgroup: read /proc/self/mountinfo: %m");
	scan_mounts(text, &v2, &mem, &pids);
	CgroupHost *h = xcalloc(1, sizeof(*h));
	if (v2 && v2_has_controllers(v2)) {
		h->h[h->n++] = (Hierarchy){ TAKE_PTR(v2), true, true, true };
	} else if (mem && pids) {
		bool same = streq(mem, pids);
		h->h[h->n++] = (Hierarchy){ TAKE_PTR(mem), true, same, false };
		if (!same)
			h->h[h->n++] = (Hierarchy){ TAKE_PTR(pids), false, true, false };
	} else {
		free(h);
		return log_errno(-EOPNOTSUPP,
				 "cgroup: no usable memory and pids controllers (v2 root %s, v1 "
				 "memory %s, v1 pids %s): VMMs cannot be given memory and pids "
				 "limits",
				 v2 ? v2 : "(none)", mem ? mem : "(none)", pids ? pids : "(none)");
	}
	h->parent = instance ? xasprintf("banger-%s", instance) : xstrdup("banger");
	*ret = h;
	return 0;
}

void cgroup_host_free(CgroupHost *h)
{
	if (!h)
		return;
	for (size_t i = 0; i < h->n; i++)
		free(h->h[i].mount);
	free(h->parent);
	free(h);
}

const char *cgroup_host_mode(const CgroupHost *h)
{
	return h->n && h->h[0].v2 ? "v2" : "v1";
}

char *cgroup_vm_path(const CgroupHost *h, const char *vm_uid)
{
	_cleanup_free_ char *rel = cgroup_vm_rel(h, vm_uid);
	return path_join(h->h[0].mount, rel);
}

/* v2: a controller reaches a cgroup only when every ancestor lists it in
 * cgroup.subtree_control. */
static int v2_enable(const char *dir)
{
	return write_str(dir, "cgroup.subtree_control", "+memory +pids");
}

static int make_parent(const CgroupHost *h, const Hierarchy *y)
{
	_cleanup_free_ char *parent = path_join(y->mount, h->parent);
	int r;
	if (y->v2 && (r = v2_enable(y->mount)) < 0)
		return r;
	if (mkdir(parent, 0755) < 0 && errno != EEXIST)
		return log_errno(-errno, "cgroup: mkdir %s: %m", parent);
	return y->v2 ? v2_enable(parent) : 0;
}

static int write_limits(const Hierarchy *y, const char *dir, const CgroupLimits *l)
{
	char mem[32], pids[32];
	int r = 0;
	snprintf(mem, sizeof(mem), "%llu", (unsigned long long)l->memory_bytes);
	snprintf(pids, sizeof(pids), "%llu", (unsigned long long)l->pids_max);
	if (y->memory)
		r = write_str(dir, y->v2 ? "memory.max" : "memory.limit_in_bytes", mem);
	if (r >= 0 && y->pids)
		r = write_str(dir, "pids.max", pids);
	return r;
}

int cgroup_vm_create(CgroupHost *h, const char *vm_uid, const CgroupLimits *l, char ***ret_procs)
{
	_cleanup_strv_free_ char **procs = NULL;
	if (!vm_uid_ok(vm_uid))
		return log_errno(-EINVAL, "cgroup: '%s' is not a VM uid", vm_uid ? vm_uid : "");
	_cleanup_free_ char *rel = cgroup_vm_rel(h, vm_uid);
	for (size_t i = 0; i < h->n; i++) {
		_cleanup_free_ char *dir = path_join(h->h[i].mount, rel);
		int r = make_parent(h, &h->h[i]);
		if (r < 0)
			return r;
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			return log_errno(-errno, "cgroup: mkdir %s: %m", dir);
		if ((r = write_limits(&h->h[i], dir, l)) < 0)
			return r;
		strv_push(&procs, path_join(dir, "cgroup.procs"));
	}
	*ret_procs = TAKE_PTR(procs);
	return 0;
}

static void kill_members(const char *dir, const char *rel);

/* rmdir, waiting a little for exiting members to leave. */
static int remove_dir(const char *dir)
{
	for (int i = 0; i < RMDIR_TRIES; i++) {
		if (rmdir(dir) == 0 || errno == ENOENT)
			return 0;
		if (errno != EBUSY)
			return log_errno(-errno, "cgroup: rmdir %s: %m", dir);
		usleep(RMDIR_WAIT_US);
	}
	return log_errno(-EBUSY, "cgroup: %s still has processes", dir);
}

int cgroup_vm_remove(CgroupHost *h, const char *vm_uid)
{
	if (!h || !vm_uid_ok(vm_uid))
		return 0;
	_cleanup_free_ char *rel = cgroup_vm_rel(h, vm_uid);
	int r = 0;
	for (size_t i = 0; h && i < h->n; i++) {
		_cleanup_free_ char *dir = path_join(h->h[i].mount, rel);
		kill_members(dir, rel);
		int k = remove_dir(dir);
		if (k < 0 && r == 0)
			r = k;
		/* The instance's parent goes with its last VM (an instance that
		 * ran VMs once leaves nothing behind); another VM keeps it busy. */
		_cleanup_free_ char *parent = path_join(h->h[i].mount, h->parent);
		if (k >= 0 && rmdir(parent) < 0 && errno != ENOTEMPTY && errno != EBUSY &&
		    errno != ENOENT)
			log_debug_errno(-errno, "cgroup: rmdir %s: %m", parent);
	}
	return r;
}

/* True when /proc/<pid>/cgroup places pid in a cgroup ending in rel. */
static bool pid_in(pid_t pid, const char *rel)
{
	char path[64];
	_cleanup_free_ char *text = NULL, *want = xasprintf("/%s\n", rel);
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	return read_file_bounded(path, 65536, &text, NULL) >= 0 && strstr(text, want);
}

/* SIGKILL every member (through a pidfd opened before checking that it is
 * still a member) and wait for each to go. */
static void kill_members(const char *dir, const char *rel)
{
	_cleanup_free_ char *procs = path_join(dir, "cgroup.procs"), *text = NULL;
	if (read_file_bounded(procs, PROCS_MAX, &text, NULL) < 0)
		return;
	char *save = NULL;
	for (char *w = strtok_r(text, "\n", &save); w; w = strtok_r(NULL, "\n", &save)) {
		pid_t pid = (pid_t)atoi(w);
		_cleanup_close_ int pfd = pid > 0 ? proc_pidfd_open(pid) : -1;
		if (pfd < 0 || !pid_in(pid, rel))
			continue;
		log_info("cgroup %s: killing pid %d", dir, (int)pid);
		if (syscall(SYS_pidfd_send_signal, pfd, SIGKILL, NULL, 0) == 0) {
			struct pollfd p = { .fd = pfd, .events = POLLIN };
			(void)poll(&p, 1, SWEEP_KILL_WAIT_MS);
		}
	}
}

int cgroup_sweep(CgroupHost *h, bool (*known)(const char *vm_uid, void *userdata), void *userdata)
{
	int n = 0;
	for (size_t i = 0; h && i < h->n; i++) {
		_cleanup_free_ char *parent = path_join(h->h[i].mount, h->parent);
		DIR *d = opendir(parent);
		struct dirent *de;
		if (!d)
			continue;
		while ((de = readdir(d))) {
			if (de->d_type != DT_DIR || de->d_name[0] == '.' ||
			    known(de->d_name, userdata))
				continue;
			_cleanup_free_ char *rel = cgroup_vm_rel(h, de->d_name);
			_cleanup_free_ char *dir = path_join(h->h[i].mount, rel);
			kill_members(dir, rel);
			log_info("orphan cgroup %s: removing", dir);
			if (remove_dir(dir) >= 0)
				n++;
		}
		closedir(d);
	}
	return n;
}
