/* proc.c — see proc.h. */
#include "proc.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
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

/* Mark every fd above stderr close-on-exec, so the exec'd VMM inherits only
 * stdio while our error pipe stays usable until execve succeeds. */
static void cloexec_other_fds(void)
{
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
	if (syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
		return;
	for (int fd = 3; fd < 65536; fd++)
		fcntl(fd, F_SETFD, FD_CLOEXEC);
}

/* Join cgroups, set no_new_privs, shrink the capability bounding set. Only
 * async-signal-safe calls: bangerd has other threads, so the child of its
 * fork may use nothing that takes a lock. Returns 0 or an errno. */
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

_Noreturn static void child_exec(char *const argv[], char *const envp[], const SpawnOptions *o,
				 int errpipe)
{
	static char *const default_env[] = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL };
	int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
	int out = open_log(o->stdout_path);
	int err = o->stderr_path ? open_log(o->stderr_path) : out;
	int e;

	sigset_t all;
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	for (int s = 1; s < NSIG; s++)
		signal(s, SIG_DFL);
	if (o->new_session)
		setsid();
	if (in < 0 || out < 0 || err < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 ||
	    dup2(err, 2) < 0 || chdir(o->cwd ? o->cwd : "/") < 0)
		goto fail;
	if ((e = child_confine(o)) != 0) {
		errno = e;
		goto fail;
	}
	cloexec_other_fds();
	execve(argv[0], argv, envp ? envp : default_env);
fail:
	e = errno;
	ssize_t _unused_ w = write(errpipe, &e, sizeof(e));
	_exit(127);
}

int proc_spawn(char *const argv[], char *const envp[], const SpawnOptions *o, pid_t *ret_pid)
{
	static const SpawnOptions defaults = { 0 };
	int p[2], e = 0;
	pid_t pid;

	if (!o)
		o = &defaults;
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		e = errno;
		close(p[0]);
		close(p[1]);
		return -e;
	}
	if (pid == 0) {
		close(p[0]);
		child_exec(argv, envp, o, p[1]);
	}
	close(p[1]);
	ssize_t n;
	do
		n = read(p[0], &e, sizeof(e));
	while (n < 0 && errno == EINTR);
	close(p[0]);
	if (n == sizeof(e)) {
		waitpid(pid, NULL, 0);
		return -e;
	}
	*ret_pid = pid;
	return 0;
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

/* Inode of the listening unix socket bound to path, from /proc/net/unix. */
static int unix_socket_inode(const char *path, unsigned long *ret)
{
	FILE *f = fopen("/proc/net/unix", "re");
	char line[4096];
	int r = -ESRCH;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		unsigned long inode;
		char sockpath[4096];
		/* Num RefCount Protocol Flags Type St Inode Path */
		if (sscanf(line, "%*s %*s %*s %*s %*s %*s %lu %4095s", &inode, sockpath) != 2)
			continue;
		if (streq(sockpath, path)) {
			*ret = inode;
			r = 0;
			break;
		}
	}
	fclose(f);
	return r;
}

static bool pid_has_socket_inode(const char *pid, unsigned long inode)
{
	char dirpath[64], want[64];
	snprintf(dirpath, sizeof(dirpath), "/proc/%s/fd", pid);
	snprintf(want, sizeof(want), "socket:[%lu]", inode);
	DIR *d = opendir(dirpath);
	struct dirent *de;
	bool found = false;
	if (!d)
		return false;
	while (!found && (de = readdir(d))) {
		char link[128];
		if (de->d_name[0] == '.')
			continue;
		_cleanup_free_ char *lp = xasprintf("%s/%s", dirpath, de->d_name);
		ssize_t n = readlink(lp, link, sizeof(link) - 1);
		if (n <= 0)
			continue;
		link[n] = 0;
		found = streq(link, want);
	}
	closedir(d);
	return found;
}

int proc_find_by_unix_socket(const char *path, pid_t *ret_pid)
{
	unsigned long inode;
	int r = unix_socket_inode(path, &inode);
	if (r < 0)
		return r;
	DIR *d = opendir("/proc");
	struct dirent *de;
	if (!d)
		return -errno;
	r = -ESRCH;
	while ((de = readdir(d))) {
		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		if (pid_has_socket_inode(de->d_name, inode)) {
			*ret_pid = (pid_t)atoi(de->d_name);
			r = 0;
			break;
		}
	}
	closedir(d);
	return r;
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
	int r = proc_find_by_unix_socket(path, &pid);
	if (r < 0)
		return r;
	r = proc_start_time(pid, &st);
	if (r < 0)
		return r;
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
