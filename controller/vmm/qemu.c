/* qemu.c — the QEMU VMM driver: argv building, detached launch with a QMP
 * readiness check, Ctrl-Alt-Del over QMP, identity-checked kill, and
 * rediscovery by API socket. See qemu.h for the machine model. */
#include "vmm/qemu.h"
#include "vmm/qmp.h"

#include "util/fileio.h"
#include "util/log.h"
#include "util/proc.h"
#include "util/timeutil.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

/* Bound on launch: spawn until QMP answers (QEMU needs ~0.1-0.5 s). */
#define QEMU_LAUNCH_TIMEOUT_MS 5000
/* Bound on loading a saved state (17 MB for 128 MiB loads in ~0.1 s). */
#define QEMU_RESTORE_TIMEOUT_MS 30000
/* Bound on each short QMP exchange (stop, describe). */
#define QEMU_QMP_TIMEOUT_MS 1000
/* How long kill() waits for the SIGKILLed process to disappear. */
#define QEMU_KILL_WAIT_MS 2000
/* TCG translation cache, MiB (part of CONFINE_MEMORY_OVERHEAD_MIB). */
#define QEMU_TCG_TB_MIB 128
#define STRINGIFY2(x)   #x
#define STRINGIFY(x)    STRINGIFY2(x)
/* How much of the VMM log a launch failure quotes. */
#define QEMU_LOG_TAIL_MAX 1500
#define CPUINFO_MAX       (8 * 1024 * 1024)

static void addf(char ***v, const char *fmt, ...) _printf_(2, 3);
static void addf(char ***v, const char *fmt, ...)
{
	va_list ap;
	char *s;
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		abort();
	va_end(ap);
	strv_push(v, s);
}

char *qemu_opt_escape(const char *s)
{
	size_t commas = 0;
	for (const char *p = s; *p; p++)
		commas += *p == ',';
	char *out = xmalloc(strlen(s) + commas + 1), *o = out;
	for (const char *p = s; *p; p++) {
		*o++ = *p;
		if (*p == ',')
			*o++ = ',';
	}
	*o = 0;
	return out;
}

static int check_config(const VmmLaunchConfig *c)
{
	const char *fmt = c->root_disk_format ? c->root_disk_format : "raw";
	if (!c->name || !c->api_sock || !(c->serial_sock || c->console_path) || !c->kernel_path ||
	    !c->root_disk)
		return log_errno(-EINVAL, "qemu: launch config lacks name, api socket, serial "
					  "socket or console, kernel or root disk");
	if (!streq(fmt, "raw") && !streq(fmt, "qcow2"))
		return log_errno(-EINVAL, "vm %s: root disk format '%s' is not raw or qcow2",
				 c->name, fmt);
	if (c->vcpus == 0 || c->memory_mib == 0)
		return log_errno(-EINVAL, "vm %s: vcpus and memory must be > 0", c->name);
	if (c->tap && !c->mac)
		return log_errno(-EINVAL, "vm %s: tap %s given without a MAC", c->name, c->tap);
	if (c->vmm_uid && !c->vmm_gid)
		return log_errno(-EINVAL, "vm %s: confined to uid %u with gid 0 (root's group)",
				 c->name, (unsigned)c->vmm_uid);
	return 0;
}

/* Guest kernel arguments only QEMU needs: the i8042 keyboard controller is
 * how Ctrl-Alt-Del arrives (no ACPI/PnP to find it), and under TCG the TSC
 * rate is given rather than calibrated. */
static char *guest_cmdline(const VmmLaunchConfig *c, unsigned tsc_khz)
{
	_cleanup_free_ char *tsc = tsc_khz ? xasprintf("tsc_early_khz=%u ", tsc_khz) : xstrdup("");
	_cleanup_free_ char *args =
		xasprintf("%si8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd", tsc);
	return vmm_kernel_cmdline(c, args);
}

/* -add-fd for each fd of set f; opaque names it in query-fdsets. */
static void add_fdset(char ***v, const QemuFdset *f, const char *id)
{
	if (f->ro >= 0) {
		addf(v, "-add-fd");
		addf(v, "fd=%d,set=%d,opaque=%s-ro", f->ro, f->set, id);
	}
	if (f->rw >= 0) {
		addf(v, "-add-fd");
		addf(v, "fd=%d,set=%d,opaque=%s-rw", f->rw, f->set, id);
	}
}

/* The protocol node of an fdset: a block device (dm) needs host_device. */
static char *fdset_node(const char *prefix, const QemuFdset *f)
{
	return xasprintf("%sdriver=%s,%sfilename=/dev/fdset/%d", prefix,
			 f->block ? "host_device" : "file", prefix, f->set);
}

/* One virtio-blk disk on a -blockdev whose file (and, for a qcow2 overlay,
 * backing file) is an fdset: QEMU opens no path (qemu.h). */
static void add_disk(char ***v, const char *id, const char *format, const QemuFdset *f,
		     const QemuFdset *backing)
{
	add_fdset(v, f, id);
	_cleanup_free_ char *file = fdset_node("file.", f), *back = NULL;
	if (backing && backing->set) {
		add_fdset(v, backing, "backing");
		_cleanup_free_ char *bfile = fdset_node("backing.file.", backing);
		back = xasprintf(",backing.driver=raw,%s", bfile);
	}
	addf(v, "-blockdev");
	addf(v, "driver=%s,node-name=%s,%s%s", format, id, file, back ? back : "");
	addf(v, "-device");
	addf(v, "virtio-blk-device,drive=%s", id);
}

static void add_machine(char ***v, const VmmLaunchConfig *c, bool kvm)
{
	_cleanup_free_ char *name = qemu_opt_escape(c->name);
	addf(v, "-name");
	addf(v, "guest=%s", name);
	addf(v, "-M");
	addf(v, "microvm,acpi=off");
	/* TCG's translation cache defaults to 1 GiB, allocated as code is
	 * translated: bound it, so a guest stays inside memoryMiB plus the
	 * documented overhead of its cgroup (confine/confine.h). */
	addf(v, "-accel");
	addf(v, "%s", kvm ? "kvm" : "tcg,tb-size=" STRINGIFY(QEMU_TCG_TB_MIB));
	addf(v, "-m");
	addf(v, "%u", c->memory_mib);
	addf(v, "-smp");
	addf(v, "%u", c->vcpus);
	static const char *const fixed[] = { "-nodefaults", "-no-user-config", "-display", "none",
					     "-no-reboot",  "-device",         "i8042" };
	for (size_t i = 0; i < ELEMENTSOF(fixed); i++)
		addf(v, "%s", fixed[i]);
}

static void add_chardevs(char ***v, const VmmLaunchConfig *c)
{
	_cleanup_free_ char *sock = qemu_opt_escape(c->api_sock);
	/* bangerd passes a serial socket QEMU serves (bound before QEMU drops
	 * privileges); bangerd connects, writes console.log with a cap and relays
	 * to `banger console`. With no client connected QEMU discards serial
	 * output rather than blocking the guest. Without one (the driver used on
	 * its own, tests/helpers/qemu-tool) QEMU appends to console_path. */
	if (c->serial_sock) {
		_cleanup_free_ char *serial = qemu_opt_escape(c->serial_sock);
		addf(v, "-chardev");
		addf(v, "socket,id=console,path=%s,server=on,wait=off", serial);
	} else {
		_cleanup_free_ char *console = qemu_opt_escape(c->console_path);
		addf(v, "-chardev");
		addf(v, "file,id=console,path=%s", console);
	}
	addf(v, "-serial");
	addf(v, "chardev:console");
	addf(v, "-chardev");
	addf(v, "socket,id=qmp,path=%s,server=on,wait=off", sock);
	addf(v, "-mon");
	addf(v, "chardev=qmp,mode=control");
}

static void add_net(char ***v, const VmmLaunchConfig *c)
{
	_cleanup_free_ char *tap = qemu_opt_escape(c->tap);
	addf(v, "-netdev");
	addf(v, "tap,id=net0,ifname=%s,script=no,downscript=no", tap);
	addf(v, "-device");
	addf(v, "virtio-net-device,netdev=net0,mac=%s", c->mac);
}

/* Confinement, as QEMU 7.2 orders it: the seccomp filter is installed while
 * options are parsed, then every device, disk, tap and socket is opened as
 * root, then (os_setup_post) chroot and setgid/setgroups/setuid. So the
 * filter must allow setuid: elevateprivileges=deny kills QEMU with SIGSYS
 * (measured). After setuid to a non-zero uid the kernel clears every
 * capability. */
static void add_confinement(char ***v, const VmmLaunchConfig *c)
{
	addf(v, "-runas");
	addf(v, "%u:%u", (unsigned)c->vmm_uid, (unsigned)c->vmm_gid);
	if (c->chroot_dir) {
		addf(v, "-chroot");
		addf(v, "%s", c->chroot_dir);
	}
	addf(v, "-sandbox");
	addf(v, "on,obsolete=deny,spawn=deny,resourcecontrol=deny");
}

/* Restore instead of boot: the state arrives later over QMP (an fd). */
static void add_incoming(char ***v, const VmmLaunchConfig *c)
{
	if (!c->incoming_dir)
		return;
	addf(v, "-incoming");
	addf(v, "defer");
}

int qemu_build_argv(const VmmLaunchConfig *c, const QemuDisks *d, const char *qemu_path, bool kvm,
		    unsigned tsc_khz, char ***ret_argv)
{
	int r = check_config(c);
	if (r < 0)
		return r;
	if (d->root.set != QEMU_FDSET_ROOT || d->root.rw < 0 || (c->work_disk && d->work.rw < 0))
		return log_errno(-EINVAL, "vm %s: a disk was not opened for QEMU", c->name);
	_cleanup_strv_free_ char **v = NULL;
	addf(&v, "%s", qemu_path);
	add_machine(&v, c, kvm);
	add_chardevs(&v, c);
	/* -kernel/-initrd/-append take their value verbatim (no option parsing). */
	addf(&v, "-kernel");
	addf(&v, "%s", c->kernel_path);
	if (c->initrd_path) {
		addf(&v, "-initrd");
		addf(&v, "%s", c->initrd_path);
	}
	addf(&v, "-append");
	strv_push(&v, guest_cmdline(c, tsc_khz));
	/* Order matters: the first virtio-blk is /dev/vda (root=), the second /dev/vdb. */
	add_disk(&v, "root", c->root_disk_format ? c->root_disk_format : "raw", &d->root,
		 &d->backing);
	if (c->work_disk)
		add_disk(&v, "work", "raw", &d->work, NULL);
	if (c->tap)
		add_net(&v, c);
	if (c->vmm_uid)
		add_confinement(&v, c);
	add_incoming(&v, c);
	*ret_argv = TAKE_PTR(v);
	return 0;
}

unsigned qemu_parse_tsc_khz(const char *cpuinfo)
{
	for (const char *p = cpuinfo; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (!startswith(p, "cpu MHz"))
			continue;
		const char *colon = strchr(p, ':');
		const char *eol = strchr(p, '\n');
		if (!colon || (eol && colon > eol))
			return 0;
		char *end;
		double mhz = strtod(colon + 1, &end);
		if (end == colon + 1 || mhz <= 0 || mhz > 100000)
			return 0;
		return (unsigned)(mhz * 1000 + 0.5);
	}
	return 0;
}

/* The host CPU's facts QEMU's argv needs (its TSC rate, whether it has
 * vmx/svm), read from /proc/cpuinfo once per process: they do not change
 * while it runs, and reading them cost every launch two cpuinfo reads on
 * its way to the exec. */
static unsigned cpu_tsc_khz;
static bool cpu_hw_virt;

static void read_cpu_facts(void)
{
	_cleanup_free_ char *text = NULL;
	if (read_file_bounded("/proc/cpuinfo", CPUINFO_MAX, &text, NULL) < 0)
		return;
	cpu_tsc_khz = qemu_parse_tsc_khz(text);
	/* The first "flags" line lists vmx or svm. */
	char *flags = strstr(text, "\nflags");
	if (!flags)
		return;
	char *eol = strchr(flags + 1, '\n');
	if (eol)
		*eol = 0;
	cpu_hw_virt = strstr(flags, " vmx") || strstr(flags, " svm");
}

static void cpu_facts(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, read_cpu_facts);
}

unsigned qemu_host_tsc_khz(void)
{
	cpu_facts();
	return cpu_tsc_khz;
}

static bool host_has_hw_virt(void)
{
	cpu_facts();
	return cpu_hw_virt;
}

bool qemu_use_kvm(void)
{
	const char *force = getenv("BANGER_QEMU_ACCEL");
	if (force && streq(force, "kvm"))
		return true;
	if (force && streq(force, "tcg"))
		return false;
	if (access("/sys/module/kvm_pvm", F_OK) == 0 || !host_has_hw_virt())
		return false;
	return vmm_kvm_usable();
}

static const char *qemu_bin(const VmmSettings *s)
{
	return s && s->qemu_bin ? s->qemu_bin : QEMU_DEFAULT_BIN;
}

static bool qemu_available(const VmmSettings *s)
{
	_cleanup_free_ char *path = NULL;
	return find_executable(qemu_bin(s), &path) == 0;
}

static off_t file_size(const char *path)
{
	struct stat st;
	return path && stat(path, &st) == 0 ? st.st_size : 0;
}

/* What QEMU wrote to its log since offset `from` (at most the last
 * QEMU_LOG_TAIL_MAX bytes), on one line. Never NULL. */
static char *log_tail(const char *path, off_t from)
{
	char buf[QEMU_LOG_TAIL_MAX + 1];
	_cleanup_close_ int fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
	if (fd < 0)
		return xstrdup("(no log)");
	off_t start = MAX(from, file_size(path) - QEMU_LOG_TAIL_MAX);
	ssize_t n = pread(fd, buf, QEMU_LOG_TAIL_MAX, start);
	if (n <= 0)
		return xstrdup("(log empty)");
	buf[n] = 0;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = 0;
	for (char *p = buf; *p; p++)
		if (*p == '\n')
			*p = '|';
	return xstrdup(buf);
}

/* Wait (until deadline) for a confined VMM to run as its own uid: -runas
 * takes effect after QMP may already answer. 0 when it does (or nothing is
 * to be dropped), -ECHILD when it exited, -ETIMEDOUT. */
static int wait_dropped_root(const VmmLaunchConfig *c, pid_t pid, uint64_t deadline)
{
	uid_t uid;
	uint64_t st;
	while (c->vmm_uid) {
		/* proc_start_time fails for a zombie: QEMU exits when -runas fails. */
		if (proc_start_time(pid, &st) < 0 || proc_uid(pid, &uid) < 0)
			return -ECHILD;
		if (uid == c->vmm_uid)
			break;
		if (time_now_ms() >= deadline)
			return log_errno(-ETIMEDOUT,
					 "vm %s: qemu (pid %d) still runs as uid %u, "
					 "not %u",
					 c->name, (int)pid, (unsigned)uid, (unsigned)c->vmm_uid);
		usleep(1000);
	}
	return 0;
}

/* Poll until QMP on c->api_sock completes its handshake, while the child
 * lives. -ECHILD when it exited, the last connect error on timeout. */
static int wait_for_qmp(const VmmLaunchConfig *c, pid_t pid)
{
	uint64_t deadline = time_now_ms() + QEMU_LAUNCH_TIMEOUT_MS;
	int r = -ETIMEDOUT;
	for (;;) {
		int status;
		if (waitpid(pid, &status, WNOHANG) == pid)
			return log_debug_errno(-ECHILD, "vm %s: qemu exited (status 0x%x)", c->name,
					       status);
		_cleanup_qmp_ QmpClient *q = NULL;
		uint64_t now = time_now_ms();
		if (now >= deadline)
			return r;
		r = qmp_connect(c->api_sock, (unsigned)MIN(deadline - now, QEMU_QMP_TIMEOUT_MS),
				&q);
		/* A reply can race with an exit that follows it (kernel not
		 * loadable): only a still-running QEMU counts as launched. A
		 * confined one only once it dropped root: QMP may answer from
		 * its monitor thread before -runas took effect. */
		if (r == 0 && waitpid(pid, &status, WNOHANG) == 0)
			return wait_dropped_root(c, pid, deadline);
		if (r == 0)
			return -ECHILD;
		usleep(20 * 1000);
	}
}

static void abort_launch(const VmmLaunchConfig *c, pid_t pid)
{
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	if (unlink(c->api_sock) < 0 && errno != ENOENT)
		log_warn_errno(-errno, "vm %s: remove %s: %m", c->name, c->api_sock);
}

/* Refuse to start a second QEMU on a socket a live one serves; remove a
 * stale socket file so a connect can only reach the QEMU we start. */
static int claim_socket(const VmmLaunchConfig *c)
{
	pid_t other;
	if (proc_find_by_unix_socket(c->api_sock, &other) == 0)
		return log_errno(-EBUSY, "vm %s: %s is already served by pid %d", c->name,
				 c->api_sock, (int)other);
	if (unlink(c->api_sock) < 0 && errno != ENOENT)
		return log_errno(-errno, "vm %s: remove stale %s: %m", c->name, c->api_sock);
	return 0;
}

static int spawn_qemu(const VmmLaunchConfig *c, pid_t *ret_pid)
{
	_cleanup_free_ char *bin = NULL;
	_cleanup_strv_free_ char **argv = NULL;
	/* Opened here, inherited by QEMU, closed on return: bangerd keeps
	 * none, so adoption after a restart has nothing to find. */
	_cleanup_(qemu_disks_close) QemuDisks disks = QEMU_DISKS_NONE;
	int fds[QEMU_DISKS_FDS_MAX];
	int r = find_executable(qemu_bin(c->settings), &bin);
	if (r < 0)
		return log_errno(r, "vm %s: qemu binary %s: %m", c->name, qemu_bin(c->settings));
	if ((r = qemu_disks_open(c, &disks)) < 0)
		return r;
	bool kvm = qemu_use_kvm();
	r = qemu_build_argv(c, &disks, bin, kvm, kvm ? 0 : qemu_host_tsc_khz(), &argv);
	if (r < 0)
		return r;
	/* Until -runas drops root, QEMU needs only these: open the tap
	 * (TUNSETIFF), open logs owned by the VMM's uid, chroot,
	 * setgid/setgroups/setuid. Whatever else root could do is gone from
	 * the bounding set before exec. The pid is recorded before QEMU runs. */
	SpawnOptions o = {
		.stdout_path = c->log_path,
		.cwd = c->vm_dir,
		.new_session = true,
		.before_exec = c->record_pid,
		.userdata = c->record_userdata,
		.cgroup_procs = c->cgroup_procs,
		.no_new_privs = c->vmm_uid != 0,
		.limit_caps = c->vmm_uid != 0,
		.keep_caps = 1ULL << CAP_NET_ADMIN | 1ULL << CAP_DAC_OVERRIDE |
			     1ULL << CAP_SYS_CHROOT | 1ULL << CAP_SETUID | 1ULL << CAP_SETGID,
		.pass_fds = fds,
		.n_pass_fds = qemu_disks_fds(&disks, fds),
	};
	r = proc_spawn(argv, NULL, &o, ret_pid);
	if (r < 0)
		return log_errno(r, "vm %s: exec %s: %m", c->name, bin);
	log_debug("vm %s: qemu pid %d (%s)", c->name, (int)*ret_pid, kvm ? "kvm" : "tcg");
	return 0;
}

static int qemu_launch(const VmmLaunchConfig *c, VmmProcess *ret)
{
	pid_t pid;
	uint64_t start_time;
	int r = check_config(c);
	if (r < 0)
		return r;
	r = claim_socket(c);
	if (r < 0)
		return r;
	off_t log_from = file_size(c->log_path);
	r = spawn_qemu(c, &pid);
	if (r < 0)
		return r;
	r = wait_for_qmp(c, pid);
	if (r >= 0 && c->incoming_dir)
		r = qemu_restore(c, pid, QEMU_RESTORE_TIMEOUT_MS);
	if (r >= 0)
		r = proc_start_time(pid, &start_time);
	if (r < 0) {
		abort_launch(c, pid);
		_cleanup_free_ char *tail = log_tail(c->log_path, log_from);
		return log_errno(r == -ECHILD ? -EIO : r, "vm %s: qemu did not start: %m; log: %s",
				 c->name, tail);
	}
	ret->pid = pid;
	ret->start_time = start_time;
	return 0;
}

static json_object *ctrl_alt_delete_keys(void)
{
	static const char *const keys[] = { "ctrl", "alt", "delete" };
	json_object *args = json_object_new_object(), *arr = json_object_new_array();
	for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
		json_object *k = json_object_new_object();
		json_object_object_add(k, "type", json_object_new_string("qcode"));
		json_object_object_add(k, "data", json_object_new_string(keys[i]));
		json_object_array_add(arr, k);
	}
	json_object_object_add(args, "keys", arr);
	return args;
}

static int qemu_request_stop(const char *api_sock)
{
	_cleanup_qmp_ QmpClient *q = NULL;
	int r = qmp_connect(api_sock, QEMU_QMP_TIMEOUT_MS, &q);
	if (r < 0)
		return log_errno(r, "qemu %s: connect QMP: %m", api_sock);
	json_object *keys = ctrl_alt_delete_keys();
	r = qmp_execute(q, "send-key", keys, NULL);
	json_object_put(keys);
	if (r == 0)
		return 0;
	log_warn_errno(r, "qemu %s: send-key ctrl-alt-delete: %m (%s); trying system_powerdown",
		       api_sock, qmp_last_error(q));
	r = qmp_execute(q, "system_powerdown", NULL, NULL);
	if (r < 0)
		return log_errno(r, "qemu %s: system_powerdown: %m (%s)", api_sock,
				 qmp_last_error(q));
	return 0;
}

/* SIGKILL through a pidfd opened before the identity check, so the signal
 * cannot reach a process that recycled the pid in between. */
static int qemu_kill(const VmmProcess *p)
{
	int r = proc_kill_verified(p->pid, p->start_time, QEMU_KILL_WAIT_MS);
	if (r == -ETIMEDOUT) {
		log_warn("qemu pid %d: still present %u ms after SIGKILL", (int)p->pid,
			 QEMU_KILL_WAIT_MS);
		return 0;
	}
	if (r < 0 && r != -ESRCH)
		return log_errno(r, "kill qemu pid %d: %m", (int)p->pid);
	return r;
}

static int qemu_find(const char *api_sock, VmmProcess *ret)
{
	return proc_find_socket_owner(api_sock, &ret->pid, &ret->start_time);
}

static int qemu_describe(const char *api_sock, char **ret_json)
{
	_cleanup_qmp_ QmpClient *q = NULL;
	json_object *status = NULL, *cpus = NULL, *v;
	int r = qmp_connect(api_sock, QEMU_QMP_TIMEOUT_MS, &q);
	if (r < 0)
		return log_errno(r, "qemu %s: connect QMP: %m", api_sock);
	r = qmp_execute(q, "query-status", NULL, &status);
	if (r < 0)
		return log_errno(r, "qemu %s: query-status: %m (%s)", api_sock, qmp_last_error(q));
	json_object *out = json_object_new_object();
	json_object_object_add(out, "vmm", json_object_new_string("qemu"));
	if (json_object_object_get_ex(status, "status", &v))
		json_object_object_add(out, "status", json_object_get(v));
	if (json_object_object_get_ex(status, "running", &v))
		json_object_object_add(out, "running", json_object_get(v));
	if (qmp_execute(q, "query-cpus-fast", NULL, &cpus) == 0 &&
	    json_object_is_type(cpus, json_type_array))
		json_object_object_add(out, "vcpus",
				       json_object_new_int((int)json_object_array_length(cpus)));
	*ret_json = xstrdup(json_object_to_json_string_ext(out, JSON_C_TO_STRING_PLAIN));
	json_object_put(out);
	json_object_put(status);
	json_object_put(cpus);
	return 0;
}

static int qemu_binary(const VmmSettings *s, char **ret)
{
	return find_executable(qemu_bin(s), ret);
}

const VmmDriver vmm_qemu_driver = {
	.name = "qemu",
	.serial_socket = true,
	.available = qemu_available,
	.launch = qemu_launch,
	.request_stop = qemu_request_stop,
	.kill = qemu_kill,
	.find = qemu_find,
	.describe = qemu_describe,
	.save_state = qemu_save_state,
	.finish_save = qemu_finish_save,
	.binary = qemu_binary,
};
