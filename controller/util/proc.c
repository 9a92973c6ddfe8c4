/* proc.c — see proc.h. */
#include "proc.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>

int proc_pidfd_open(pid_t pid)
{
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (fd < 0)
		return -errno;
	/* pidfds are always CLOEXEC. */
	return fd;
}

static int open_log(const char *path)
{
	if (!path)
		return open("/dev/null", O_WRONLY | O_CLOEXEC);
	return open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
}

static void close_fds_between(unsigned lo, unsigned hi)
{
	if (lo > hi)
		return;
	if (syscall(SYS_close_range, lo, hi, 0) == 0)
		return;
	for (unsigned fd = lo; fd <= hi && fd < 65536; fd++)
		close((int)fd);
}

/* Close every fd above stderr but our error pipe and gate (both CLOEXEC) and
 * the fds the caller passes (o->pass_fds), so the exec'd VMM inherits only
 * stdio and those. Closed, not just marked close-on-exec, before the child
 * waits at its gate: spawns run concurrently (daemon/launcher.c), and a gated
 * child that held a copy of another child's gate would keep that one from
 * seeing EOF if bangerd died, and the other way round: both would wait
 * forever instead of exiting. Async-signal-safe only: the child runs in bangerd's memory. */
static void close_other_fds(int errpipe, int gate, const SpawnOptions *o)
{
	int keep[SPAWN_PASS_FDS_MAX + 2];
	size_t n = 0;
	keep[n++] = errpipe;
	keep[n++] = gate;
	for (size_t i = 0; i < o->n_pass_fds && i < SPAWN_PASS_FDS_MAX; i++)
		keep[n++] = o->pass_fds[i];
	for (size_t i = 1; i < n; i++) /* insertion sort: qsort may allocate */
		for (size_t j = i; j > 0 && keep[j - 1] > keep[j]; j--) {
			int t = keep[j];
			keep[j] = keep[j - 1];
			keep[j - 1] = t;
		}
	unsigned from = 3;
	for (size_t i = 0; i < n; i++) {
		if (keep[i] < 0 || (unsigned)keep[i] < from)
			continue;
		close_fds_between(from, (unsigned)keep[i] - 1);
		from = (unsigned)keep[i] + 1;
	}
	close_fds_between(from, ~0U);
}

static unsigned long child_nofile;

void proc_set_child_nofile(unsigned long soft)
{
	child_nofile = soft;
}

/* Back to the limit bangerd was started with (proc_set_child_nofile). */
static void restore_nofile(void)
{
	struct rlimit rl;
	if (!child_nofile || getrlimit(RLIMIT_NOFILE, &rl) < 0 || child_nofile > rl.rlim_max)
		return;
	rl.rlim_cur = child_nofile;
	(void)!setrlimit(RLIMIT_NOFILE, &rl);
}

/* Block until the parent opens the gate (one byte); EOF means the parent
 * failed or died before recording us, so we must not become the VMM. */
static bool wait_gate(int gate)
{
	char b;
	ssize_t n;
	if (gate < 0)
		return true;
	do
		n = read(gate, &b, 1);
	while (n < 0 && errno == EINTR);
	return n == 1;
}

/* Join cgroups, set no_new_privs, shrink the capability bounding set. Only
 * async-signal-safe calls: the child runs in bangerd's memory (see
 * proc_spawn), so it may use nothing that takes a lock. Returns 0 or an errno. */
static int child_confine(const SpawnOptions *o)
{
	for (size_t i = 0; o->cgroup_procs && o->cgroup_procs[i]; i++) {
		int fd = open(o->cgroup_procs[i], O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			return errno;
		ssize_t n = write(fd, "0", 1);
		int e = errno;
		close(fd);
		if (n != 1)
			return n < 0 ? e : EIO;
	}
	if (o->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return errno;
	/* CAPBSET_READ fails with EINVAL past the kernel's last capability. */
	for (int c = 0; o->limit_caps && c < 64 && prctl(PR_CAPBSET_READ, c, 0, 0, 0) >= 0; c++)
		if (!(o->keep_caps & (1ULL << c)) && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0)
			return errno;
	return 0;
}

/* What the spawned child and the spawning threads tell the caller over the
 * report pipe: the child's pid as soon as it runs (gated spawns), an errno
 * when its set-up or its exec failed, and, from the thread that cloned it,
 * DONE once the child has exec'd or exited. Each is one write of < PIPE_BUF
 * bytes, so never torn. */
typedef struct {
	int32_t kind;
	int32_t value; /* READY, DONE: the pid (DONE: -errno if clone failed); ERROR: errno */
} SpawnReport;

enum { SPAWN_READY = 1, SPAWN_ERROR, SPAWN_DONE };

static void report(int fd, int32_t kind, int32_t value)
{
	SpawnReport m = { kind, value };
	ssize_t _unused_ w = write(fd, &m, sizeof(m));
}

/* Everything the child reads. It lives in the caller's frame: the child
 * shares our memory (CLONE_VM) and proc_spawn does not return before the
 * child has exec'd or exited. */
typedef struct {
	char *const *argv;
	char *const *envp;
	const SpawnOptions *o;
	int report; /* write end of the report pipe */
	int gate;   /* read end of the gate, -1: no gate */
} ChildArgs;

_Noreturn static void child_exec(const ChildArgs *a)
{
	static char *const default_env[] = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL };
	const SpawnOptions *o = a->o;
	/* First of all: a copy of an fd another thread holds for a moment is
	 * not harmless here — a tun fd keeps its tap attached, and the tap's
	 * next TUNSETIFF (its owner, its VMM) fails with EBUSY while we hold
	 * it. So the window is the clone's, not the set-up's. */
	close_other_fds(a->report, a->gate, o);
	int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
	int out = open_log(o->stdout_path);
	int err = o->stderr_path ? open_log(o->stderr_path) : out;
	sigset_t none;

	/* Every signal is blocked (clone_child): reset the handlers first, so
	 * none of bangerd's can ever run here, in bangerd's memory; then let
	 * the program have the signals. */
	for (int s = 1; s < NSIG; s++)
		signal(s, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (o->new_session)
		setsid();
	if (in < 0 || out < 0 || err < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 ||
	    dup2(err, 2) < 0 || chdir(o->cwd ? o->cwd : "/") < 0)
		goto fail;
	/* The originals: the child holds stdio, its report pipe and gate only. */
	if (in > 2)
		close(in);
	if (out > 2)
		close(out);
	if (err > 2 && err != out)
		close(err);
	int e = child_confine(o);
	if (e != 0) {
		errno = e;
		goto fail;
	}
	/* Only the fds the caller named survive the exec (in, out and err
	 * are close-on-exec). */
	for (size_t i = 0; i < o->n_pass_fds; i++)
		if (fcntl(o->pass_fds[i], F_SETFD, 0) < 0)
			goto fail;
	restore_nofile();
	if (!wait_gate(a->gate))
		_exit(127);
	execve(a->argv[0], a->argv, a->envp ? a->envp : default_env);
fail:
	report(a->report, SPAWN_ERROR, errno);
	_exit(127);
}

static int child_main(void *arg)
{
	const ChildArgs *a = arg;
	/* First of all, so the caller's hook runs while we set up. */
	if (a->gate >= 0)
		report(a->report, SPAWN_READY, (int32_t)getpid());
	child_exec(a);
}

/* The child's own stack (it shares our memory, so it cannot use the
 * caller's): 256 KiB, touched only as far as it goes, sanitizer frames
 * included; a guard page below it. */
#define CHILD_STACK_SIZE (256u * 1024u)
#define CHILD_GUARD_SIZE 4096u

/* Start the child the way posix_spawn does: clone(CLONE_VM | CLONE_VFORK)
 * on a stack of its own, this thread suspended until the child has exec'd or
 * exited. No page tables are copied and none are torn down at the exec: a
 * fork of bangerd (threads, SQLite, libnftables) copied them and the exec
 * threw them away, ~4 ms of each start (docs/benchmarks.md). The child runs
 * on our TLS (errno) while this thread sleeps, so this thread must be one
 * that nothing else waits on meanwhile. Every signal is blocked around the
 * clone (raw, so glibc's internal ones too): a handler of ours must never run
 * on the child's side. */
static int clone_child(ChildArgs *a, pid_t *ret_pid)
{
	uint64_t all = ~0ULL, old = 0;
	char *stack = mmap(NULL, CHILD_STACK_SIZE, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE, -1, 0);
	if (stack == MAP_FAILED)
		return -errno;
	int r = 0;
	if (mprotect(stack, CHILD_GUARD_SIZE, PROT_NONE) < 0 ||
	    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, &old, sizeof(all)) < 0) {
		r = -errno;
		munmap(stack, CHILD_STACK_SIZE);
		return r;
	}
	pid_t pid =
		clone(child_main, stack + CHILD_STACK_SIZE, CLONE_VM | CLONE_VFORK | SIGCHLD, a);
	if (pid < 0)
		r = -errno;
	/* Cannot fail: the same mask we read. */
	(void)!syscall(SYS_rt_sigprocmask, SIG_SETMASK, &old, NULL, sizeof(old));
	munmap(stack, CHILD_STACK_SIZE); /* the child has exec'd or exited: no longer its */
	if (r < 0)
		return r;
	*ret_pid = pid;
	return 0;
}

/* A gated spawn's cloning thread: it sleeps in clone_child until the child
 * execs or exits, while the caller's thread records the child (the hook) and
 * opens the gate. It then writes DONE, the last message of the report. */
static void *cloner_main(void *arg)
{
	ChildArgs *a = arg;
	pid_t pid = 0;
	int r = clone_child(a, &pid);
	report(a->report, SPAWN_DONE, r < 0 ? r : (int32_t)pid);
	return NULL;
}

/* Run the caller's hook for the gated child, then let it exec (or kill it). */
static int open_gate(const SpawnOptions *o, pid_t pid, int gate)
{
	uint64_t st;
	int r = proc_start_time(pid, &st);
	if (r >= 0)
		r = o->before_exec(o->userdata, pid, st);
	if (r >= 0 && write(gate, "x", 1) != 1)
		r = -errno;
	if (r < 0)
		kill(pid, SIGKILL); /* reaped by the caller */
	return r;
}

static int read_report(int fd, SpawnReport *m)
{
	ssize_t n;
	do
		n = read(fd, m, sizeof(*m));
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return n == sizeof(*m) ? 1 : 0;
}

/* The gate: a thread clones the child; this one reads the report: READY
 * (the child's pid) → the hook, then the gate byte; ERROR; DONE last, when
 * the child has exec'd or exited. The hook runs on the caller's thread,
 * as with fork. */
static int spawn_gated(ChildArgs *a, const SpawnOptions *o, int gate_w, int report_r,
		       pid_t *ret_pid)
{
	pthread_t t;
	int e = pthread_create(&t, NULL, cloner_main, a);
	if (e != 0)
		return -e;
	SpawnReport m;
	pid_t pid = 0;
	int r = 0, hr = 0, rr;
	bool gate_done = false;
	while ((rr = read_report(report_r, &m)) > 0 && m.kind != SPAWN_DONE) {
		if (m.kind == SPAWN_READY && !gate_done) {
			gate_done = true;
			hr = open_gate(o, m.value, gate_w);
		} else if (m.kind == SPAWN_ERROR && r == 0) {
			r = -m.value;
		}
	}
	/* A child that failed its set-up may be gone before the hook reads its
	 * start time (-ESRCH): its own error is the cause, so it wins. */
	if (r == 0)
		r = hr;
	/* The cloning thread writes DONE after clone returns, whatever happened:
	 * a short read here means a broken pipe, not a child still running. */
	if ((e = pthread_join(t, NULL)) != 0 && r == 0)
		r = -e;
	if (rr <= 0)
		return rr < 0 ? rr : -EPIPE;
	if (m.value < 0)
		return m.value; /* clone failed: there is no child */
	pid = m.value;
	if (r == 0 && !gate_done)
		r = -ECHILD; /* died before it could report (a signal) */
	if (r < 0) {
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		return r;
	}
	*ret_pid = pid;
	return 0;
}

/* No gate: this thread clones and sleeps until the exec; then the report
 * holds an ERROR or nothing. */
static int spawn_plain(ChildArgs *a, int report_r, int report_w, pid_t *ret_pid)
{
	pid_t pid;
	int r = clone_child(a, &pid);
	close(report_w); /* the child's copy is gone too: EOF ends the report */
	if (r < 0)
		return r;
	SpawnReport m;
	r = read_report(report_r, &m);
	if (r != 0) {
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		return r < 0 ? r : m.kind == SPAWN_ERROR ? -m.value : -EPROTO;
	}
	*ret_pid = pid;
	return 0;
}

int proc_spawn(char *const argv[], char *const envp[], const SpawnOptions *o, pid_t *ret_pid)
{
	static const SpawnOptions defaults = { 0 };
	int p[2], g[2] = { -1, -1 }, r;

	if (!o)
		o = &defaults;
	/* 0-2 become the child's stdio: a passed fd there would be lost. */
	if (o->n_pass_fds > SPAWN_PASS_FDS_MAX)
		return -E2BIG;
	for (size_t i = 0; i < o->n_pass_fds; i++)
		if (o->pass_fds[i] <= 2)
			return -EBADF;
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	if (o->before_exec && pipe2(g, O_CLOEXEC) < 0) {
		r = -errno;
		close(p[0]);
		close(p[1]);
		return r;
	}
	ChildArgs a = { .argv = argv, .envp = envp, .o = o, .report = p[1], .gate = g[0] };
	if (o->before_exec) {
		r = spawn_gated(&a, o, g[1], p[0], ret_pid);
		close(p[1]);
		close(g[0]);
		close(g[1]);
	} else {
		r = spawn_plain(&a, p[0], p[1], ret_pid);
	}
	close(p[0]);
	return r;
}

int proc_start_time(pid_t pid, uint64_t *ret)
{
	char path[64], buf[1024];
	_cleanup_close_ int fd = -1;
	ssize_t n;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return -ESRCH;
	buf[n] = 0;
	/* comm may contain spaces and parens: fields start after the last ')'. */
	char *p = strrchr(buf, ')');
	if (!p)
		return -EINVAL;
	p += 2; /* field 3: state */
	char state = *p;
	if (state == 'Z' || state == 'X')
		return -ESRCH;
	for (int field = 3; field < 22; field++) {
		p = strchr(p, ' ');
		if (!p)
			return -EINVAL;
		p++;
	}
	*ret = strtoull(p, NULL, 10);
	return 0;
}

int proc_uid(pid_t pid, uid_t *ret)
{
	char path[64], buf[4096];
	unsigned long uid;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return -ESRCH;
	buf[n] = 0;
	const char *l = strstr(buf, "\nUid:");
	if (!l || sscanf(l + 5, "%lu", &uid) != 1)
		return -EINVAL;
	*ret = (uid_t)uid;
	return 0;
}

bool proc_alive(pid_t pid, uint64_t start_time)
{
	uint64_t st;
	if (pid <= 0)
		return false;
	return proc_start_time(pid, &st) == 0 && st == start_time;
}

int proc_check_socket_peer(int fd, pid_t pid)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return -errno;
	return cred.pid > 0 && cred.pid == pid ? 0 : -EPERM;
}

/* connect() to path in our own mount namespace and read the listener's pid.
 * A forged entry in /proc/net/unix (another namespace's socket bound at the
 * same path string) is never reached this way. */
static int socket_peer_pid(const char *path, pid_t *ret)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct ucred cred;
	socklen_t len = sizeof(cred);
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return errno == EAGAIN ? -EAGAIN : -ESRCH;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || cred.pid <= 0)
		return -ESRCH;
	*ret = cred.pid;
	return 0;
}

int proc_find_by_unix_socket(const char *path, pid_t *ret_pid)
{
	return socket_peer_pid(path, ret_pid);
}

int proc_socket_served_by(const char *path, pid_t pid)
{
	pid_t peer;
	int r = socket_peer_pid(path, &peer);
	if (r < 0)
		return r;
	return peer == pid ? 0 : -EPERM;
}

int find_executable(const char *name, char **ret)
{
	if (strchr(name, '/')) {
		if (access(name, X_OK) < 0)
			return -errno;
		*ret = xstrdup(name);
		return 0;
	}
	const char *path = getenv("PATH");
	_cleanup_free_ char *copy = xstrdup(path ? path : "/usr/sbin:/usr/bin:/sbin:/bin");
	char *save = NULL;
	for (char *dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
		char *p = path_join(dir, name);
		struct stat st;
		if (stat(p, &st) == 0 && S_ISREG(st.st_mode) && access(p, X_OK) == 0) {
			*ret = p;
			return 0;
		}
		free(p);
	}
	return -ENOENT;
}

/* Poll a pidfd until the process exits; does not reap. */
static int wait_pidfd(int pfd, unsigned timeout_ms)
{
	struct pollfd p = { .fd = pfd, .events = POLLIN };
	int r;
	do
		r = poll(&p, 1, (int)timeout_ms);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	return r == 0 ? -ETIMEDOUT : 0;
}

int proc_wait_exit(pid_t pid, uint64_t start_time, unsigned timeout_ms)
{
	_cleanup_close_ int pfd = proc_pidfd_open(pid);
	if (pfd < 0)
		return pfd == -ESRCH ? 0 : pfd;
	/* The pid may have been recycled between the caller's check and ours. */
	if (start_time && !proc_alive(pid, start_time)) {
		waitpid(pid, NULL, WNOHANG);
		return 0;
	}
	int r = wait_pidfd(pfd, timeout_ms);
	if (r < 0)
		return r;
	waitpid(pid, NULL, WNOHANG); /* reap when it is our child; harmless otherwise */
	return 0;
}

int proc_run(char *const argv[], const char *log_path, unsigned timeout_ms)
{
	SpawnOptions o = { .stdout_path = log_path };
	pid_t pid;
	int status, r = proc_spawn(argv, NULL, &o, &pid);
	if (r < 0)
		return r;
	_cleanup_close_ int pfd = proc_pidfd_open(pid);
	r = pfd < 0 ? pfd : wait_pidfd(pfd, timeout_ms);
	if (r < 0)
		kill(pid, SIGKILL);
	if (waitpid(pid, &status, 0) < 0)
		return -errno;
	if (r < 0)
		return r;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return -ECHILD;
}

int proc_find_socket_owner(const char *path, pid_t *ret_pid, uint64_t *ret_start_time)
{
	pid_t pid;
	uint64_t st;
	int r = socket_peer_pid(path, &pid);
	if (r < 0)
		return r;
	r = proc_start_time(pid, &st);
	if (r < 0)
		return r;
	/* Still the listener after we read its start time: the start time is
	 * that process's, not a successor's that reused the pid. */
	r = proc_socket_served_by(path, pid);
	if (r < 0)
		return r == -EPERM ? -ESRCH : r;
	*ret_pid = pid;
	*ret_start_time = st;
	return 0;
}

int proc_kill_verified(pid_t pid, uint64_t start_time, unsigned timeout_ms)
{
	_cleanup_close_ int pfd = proc_pidfd_open(pid);
	if (pfd < 0)
		return pfd;
	/* Checked after the pidfd is open: from here on the pidfd names this
	 * process even if the pid is reused. */
	if (!proc_alive(pid, start_time))
		return -ESRCH;
	if (syscall(SYS_pidfd_send_signal, pfd, SIGKILL, NULL, 0) < 0)
		return -errno;
	int r = wait_pidfd(pfd, timeout_ms);
	waitpid(pid, NULL, WNOHANG); /* reap when it is our child */
	return r;
}
