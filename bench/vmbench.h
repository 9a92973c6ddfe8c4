/* vmbench.h — helpers for the benchmarks that boot real QEMU guests
 * (exec_latency, kill_latency, adopt, idle_wakeups and their baselines).
 *
 * Header-only and libc-only, like bench.h, so the baselines stay bare:
 *  - the netlink proc connector (exec/fork/exit events with the kernel's own
 *    CLOCK_MONOTONIC timestamp, so a measurement does not include the time
 *    the observer took to wake up). The connector exists only in the initial
 *    network namespace: open it before entering another one, or run the
 *    observer in the host namespace (it sends no traffic, creates nothing);
 *  - a QEMU command line template: the argv bangerd really used for one VM
 *    (read from /proc/PID/cmdline), with its per-VM strings substituted, so
 *    the baselines exec exactly what the controller execs;
 *  - spawn like bangerd's proc_spawn (new session, output to a log file),
 *    waiting for the QMP socket to accept and greet, pidfd helpers;
 *  - reading a status file's phase and runtime pid. */
#pragma once

#include "bench.h"

#include <linux/cn_proc.h>
#include <linux/connector.h>
#include <linux/netlink.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>

#define VMB_MAX_ARGS   128
#define VMB_READY_MARK "banger-guest: ready"

/* ---- proc connector ------------------------------------------------------- */

typedef struct {
	unsigned what;  /* PROC_EVENT_FORK / _EXEC / _EXIT */
	pid_t pid;      /* exec/exit: the process; fork: the child */
	pid_t parent;   /* fork: the parent's tgid */
	uint64_t ts_ns; /* kernel ktime_get_ns() = CLOCK_MONOTONIC */
} ProcEv;

/* Subscribe to process events. -errno on failure (ECONNREFUSED: not in the
 * initial network namespace; EPERM: needs CAP_NET_ADMIN). */
static BENCH_UNUSED int procev_open(void)
{
	int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_CONNECTOR);
	if (fd < 0)
		return -errno;
	int sz = 8 << 20;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK, .nl_groups = CN_IDX_PROC };
	struct __attribute__((aligned(NLMSG_ALIGNTO))) {
		struct nlmsghdr nl;
		struct __attribute__((packed)) {
			struct cn_msg cn;
			enum proc_cn_mcast_op op;
		} body;
	} m;
	memset(&m, 0, sizeof(m));
	m.nl.nlmsg_len = sizeof(m);
	m.nl.nlmsg_pid = (unsigned)getpid();
	m.nl.nlmsg_type = NLMSG_DONE;
	m.body.cn.id.idx = CN_IDX_PROC;
	m.body.cn.id.val = CN_VAL_PROC;
	m.body.cn.len = sizeof(enum proc_cn_mcast_op);
	m.body.op = PROC_CN_MCAST_LISTEN;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || send(fd, &m, sizeof(m), 0) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	return fd;
}

/* Next event, waiting up to timeout_ms. 1: got one, 0: timeout, -ENOBUFS:
 * events were lost (the receive buffer overflowed), other -errno: error. */
static BENCH_UNUSED int procev_next(int fd, int timeout_ms, ProcEv *ev)
{
	char buf[4096] __attribute__((aligned(NLMSG_ALIGNTO)));
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0 && errno == EAGAIN) {
			struct pollfd p = { .fd = fd, .events = POLLIN };
			int k = poll(&p, 1, timeout_ms);
			if (k == 0)
				return 0;
			if (k < 0 && errno != EINTR)
				return -errno;
			continue;
		}
		if (n < 0)
			return errno == EINTR ? procev_next(fd, timeout_ms, ev) : -errno;
		struct nlmsghdr *nh = (struct nlmsghdr *)buf;
		if (!NLMSG_OK(nh, (size_t)n) || nh->nlmsg_type != NLMSG_DONE)
			continue;
		/* The event sits 4-byte aligned after the cn_msg header; it holds a
		 * u64, so copy it out rather than read it in place. */
		struct proc_event ev_copy, *pe = &ev_copy;
		size_t at = (size_t)((char *)NLMSG_DATA(nh) - buf) + sizeof(struct cn_msg);
		if ((size_t)n < at + sizeof(ev_copy))
			continue;
		memcpy(&ev_copy, buf + at, sizeof(ev_copy));
		*ev = (ProcEv){ .what = pe->what, .ts_ns = pe->timestamp_ns };
		switch (pe->what) {
		case PROC_EVENT_FORK:
			ev->pid = pe->event_data.fork.child_tgid;
			ev->parent = pe->event_data.fork.parent_tgid;
			if (pe->event_data.fork.child_pid != pe->event_data.fork.child_tgid)
				continue; /* a thread, not a process */
			return 1;
		case PROC_EVENT_EXEC: ev->pid = pe->event_data.exec.process_tgid; return 1;
		default: continue;
		}
	}
}

/* ---- /proc ---------------------------------------------------------------- */

/* Raw /proc/PID/cmdline (NUL-separated). Returns its length or -errno. */
static BENCH_UNUSED ssize_t proc_cmdline(pid_t pid, char *buf, size_t cap)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	size_t n = 0;
	ssize_t k;
	while (n < cap && (k = read(fd, buf + n, cap - n)) > 0)
		n += (size_t)k;
	close(fd);
	return (ssize_t)n;
}

/* Whether a NUL-separated argv holds an argument equal to want. */
static BENCH_UNUSED bool argv_has(const char *args, size_t len, const char *want)
{
	for (size_t i = 0; i < len; i += strlen(args + i) + 1)
		if (strcmp(args + i, want) == 0)
			return true;
	return false;
}

static BENCH_UNUSED int pidfd_open_(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

static BENCH_UNUSED int pidfd_kill(int pidfd, int sig)
{
	return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

/* ---- the QEMU command line template --------------------------------------- */

typedef struct {
	char *args[VMB_MAX_ARGS + 1];
	size_t n;
} Argv;

static BENCH_UNUSED void argv_free(Argv *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->args[i]);
	a->n = 0;
}

/* s with every occurrence of from replaced by to (newly allocated). */
static BENCH_UNUSED char *str_replace_all(const char *s, const char *from, const char *to)
{
	size_t fl = strlen(from), tl = strlen(to), count = 0;
	for (const char *p = s; fl && (p = strstr(p, from)); p += fl)
		count++;
	char *out = malloc(strlen(s) + count * (tl > fl ? tl - fl : 0) + 1), *o = out;
	if (!out)
		die("out of memory");
	for (const char *p = s; *p;) {
		if (fl && strncmp(p, from, fl) == 0) {
			memcpy(o, to, tl);
			o += tl;
			p += fl;
		} else
			*o++ = *p++;
	}
	*o = 0;
	return out;
}

/* Load a NUL-separated argv file and apply pairs[0]→pairs[1], pairs[2]→… to
 * every argument, in order. */
static BENCH_UNUSED void argv_load(const char *file, char **pairs, size_t npairs, Argv *ret)
{
	static char raw[65536];
	int fd = open(file, O_RDONLY | O_CLOEXEC);
	ssize_t len = fd < 0 ? -1 : read(fd, raw, sizeof(raw) - 1);
	if (fd >= 0)
		close(fd);
	if (len <= 0)
		die("argv template %s: unreadable or empty", file);
	raw[len] = 0;
	ret->n = 0;
	for (ssize_t i = 0; i < len && ret->n < VMB_MAX_ARGS; i += (ssize_t)strlen(raw + i) + 1) {
		char *a = strdup(raw + i);
		for (size_t k = 0; k + 1 < npairs; k += 2) {
			char *b = str_replace_all(a, pairs[k], pairs[k + 1]);
			free(a);
			a = b;
		}
		ret->args[ret->n++] = a;
	}
	ret->args[ret->n] = NULL;
}

/* The template with `from` (the captured VM's name) replaced by `name`. */
static BENCH_UNUSED void argv_for_name(const Argv *tmpl, const char *from, const char *name,
				       Argv *ret)
{
	ret->n = tmpl->n;
	for (size_t i = 0; i < tmpl->n; i++)
		ret->args[i] = str_replace_all(tmpl->args[i], from, name);
	ret->args[ret->n] = NULL;
}

/* The fds bangerd passed its QEMU (`-add-fd fd=N,...`: it opens the disks
 * itself, vmm/qemu_disk.c), as exec_latency recorded them in ARGV_FILE.fds:
 * "N ro|rw PATH" per line, the paths with the same FROM→TO pairs applied as
 * to the argv. A QEMU started from that argv needs a file of the same kind
 * open at each N, or it cannot open its disks. */
#define VMB_MAX_FDS 16

typedef struct {
	int num[VMB_MAX_FDS];
	bool rw[VMB_MAX_FDS];
	char *path[VMB_MAX_FDS];
	size_t n;
} PassFds;

static BENCH_UNUSED void passfds_load(const char *argv_file, char **pairs, size_t npairs,
				      PassFds *ret)
{
	char file[4200], line[4200], mode[8], path[4096];
	snprintf(file, sizeof(file), "%s.fds", argv_file);
	FILE *f = fopen(file, "re");
	ret->n = 0;
	if (!f)
		die("passed fds %s: %m", file);
	while (fgets(line, sizeof(line), f) && ret->n < VMB_MAX_FDS) {
		int num;
		if (sscanf(line, "%d %7s %4095s", &num, mode, path) != 3 || num <= 2)
			die("passed fds %s: bad line %s", file, line);
		char *p = strdup(path);
		for (size_t k = 0; k + 1 < npairs; k += 2) {
			char *b = str_replace_all(p, pairs[k], pairs[k + 1]);
			free(p);
			p = b;
		}
		ret->num[ret->n] = num;
		ret->rw[ret->n] = strcmp(mode, "rw") == 0;
		ret->path[ret->n++] = p;
	}
	fclose(f);
}

/* Open each passed file (CLOEXEC, at 100 or above, clear of the numbers it
 * goes to) into opened[]; the caller closes them after the spawn. */
static BENCH_UNUSED void passfds_open(const PassFds *p, int *opened)
{
	for (size_t i = 0; i < p->n; i++) {
		int fd = open(p->path[i], (p->rw[i] ? O_RDWR : O_RDONLY) | O_CLOEXEC);
		if (fd < 0)
			die("open %s: %m", p->path[i]);
		opened[i] = fcntl(fd, F_DUPFD_CLOEXEC, 100);
		if (opened[i] < 0)
			die("dup %s: %m", p->path[i]);
		close(fd);
	}
}

static BENCH_UNUSED void passfds_close(const PassFds *p, int *opened)
{
	for (size_t i = 0; i < p->n; i++)
		close(opened[i]);
}

/* fork + exec like bangerd's proc_spawn: own session, stdin /dev/null,
 * stdout/stderr appended to log_path; with pf, each opened[i] (passfds_open)
 * at pf->num[i], inherited by the program. Returns the pid. */
static BENCH_UNUSED pid_t vmb_spawn_fds(char *const *argv, const char *log_path, const PassFds *pf,
					const int *opened)
{
	pid_t pid = fork();
	if (pid < 0)
		die("fork: %m");
	if (pid == 0) {
		int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
		int out = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (in < 0 || out < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
			_exit(126);
		/* dup2 leaves the new number without CLOEXEC: QEMU inherits it. */
		for (size_t i = 0; pf && i < pf->n; i++)
			if (dup2(opened[i], pf->num[i]) < 0)
				_exit(126);
		setsid();
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

static BENCH_UNUSED pid_t vmb_spawn(char *const *argv, const char *log_path)
{
	return vmb_spawn_fds(argv, log_path, NULL, NULL);
}

/* Wait until QMP on sock accepts and sends its greeting, while pid lives.
 * 0 on success, -ECHILD if the process exited, -ETIMEDOUT. */
static BENCH_UNUSED int vmb_wait_qmp(const char *sock, pid_t pid, int timeout_ms)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(sock) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, sock, strlen(sock) + 1);
	uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000ull;
	while (now_ns() < deadline) {
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return -ECHILD;
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			char greet[512];
			struct pollfd p = { .fd = fd, .events = POLLIN };
			bool ok = poll(&p, 1, 1000) == 1 && read(fd, greet, sizeof(greet)) > 0;
			close(fd);
			if (ok)
				return 0;
		} else if (fd >= 0)
			close(fd);
		usleep(1000);
	}
	return -ETIMEDOUT;
}

/* ---- status files --------------------------------------------------------- */

/* The value of `"phase": "X"` in a status text ("" when absent). */
static BENCH_UNUSED void status_phase(const char *text, char *out, size_t cap)
{
	const char *p = strstr(text, "\"phase\": \"");
	out[0] = 0;
	if (p) {
		p += strlen("\"phase\": \"");
		snprintf(out, cap, "%.*s", (int)strcspn(p, "\""), p);
	}
}

/* Phase and runtime pid (0 when none) of STATUS_DIR/NAME.status.json.
 * false when the file is missing. */
static BENCH_UNUSED bool status_read(int sdfd, const char *name, char *phase, size_t cap,
				     long *ret_pid)
{
	char file[320], text[16384];
	snprintf(file, sizeof(file), "%s.status.json", name);
	if (read_small(sdfd, file, text, sizeof(text)) <= 0)
		return false;
	status_phase(text, phase, cap);
	long long pid = json_int_field(text, "pid");
	*ret_pid = pid > 0 ? (long)pid : 0;
	return true;
}
