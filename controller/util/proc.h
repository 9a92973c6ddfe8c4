/* proc.h — processes as the kernel sees them: detached spawning, identity
 * (pid + start time), and the process that serves a unix socket.
 * Used by VMM drivers and by handle rediscovery after a controller restart.
 *
 * Identity: a VMM is the pid + start time recorded when it was spawned
 * (proc_spawn's before_exec hook runs before the child may exec, so a VMM
 * never runs unrecorded). A socket path is never an identity by itself: a
 * path in /proc/net/unix is whatever string its binder used, and any user
 * can bind the same string in a private mount namespace. When a socket must
 * name its server, it is asked with connect() + SO_PEERCRED, which reaches
 * the file in OUR mount namespace and reports the pid that listens on it. */
#pragma once

#include "util.h"

#include <sys/types.h>

#define SPAWN_PASS_FDS_MAX 32

typedef struct {
	const char *stdout_path; /* NULL: /dev/null; opened O_APPEND|O_CREAT */
	const char *stderr_path; /* NULL: same as stdout */
	const char *cwd;         /* NULL: "/" */
	bool new_session;        /* setsid(): survive the controller, no controlling tty */
	/* Called in the parent once the child runs and before it may exec: the
	 * child waits on a pipe until it returns >= 0 (then it execs) or fails
	 * (the child is killed and reaped; proc_spawn returns that error). If
	 * the parent dies in between, the child sees EOF and exits without
	 * exec'ing. Lets a caller record the pid write-ahead. NULL: no gate. */
	int (*before_exec)(void *userdata, pid_t pid, uint64_t start_time);
	void *userdata;
	/* Confinement, applied in the child before exec so the program never
	 * runs without it (each failure is an exec error): */
	char *const *cgroup_procs; /* cgroup.procs files to join ("0" written to each) */
	bool no_new_privs;         /* PR_SET_NO_NEW_PRIVS */
	bool limit_caps;           /* drop every capability but keep_caps from the
				    * bounding set: root's exec then grants only those */
	uint64_t keep_caps;        /* bit (1 << CAP_x) per capability kept */
	/* fds the program inherits at the same numbers (each > 2, opened
	 * O_CLOEXEC by the caller, which still owns and closes them): how a
	 * VMM gets files it could not open itself (QEMU -add-fd). */
	const int *pass_fds;
	size_t n_pass_fds; /* at most SPAWN_PASS_FDS_MAX */
} SpawnOptions;

/* Start argv[0] with execve(argv, envp or a minimal PATH-only env), every
 * other fd (but o->pass_fds) closed. The child is ours (reap it), but detached
 * from our session so it outlives us. Returns the pid. -errno when its set-up
 * or exec failed (reported back over a CLOEXEC pipe; that child is reaped).
 * Not a fork: the child is cloned with CLONE_VM | CLONE_VFORK, as
 * posix_spawn does, so bangerd's page tables are neither copied nor torn
 * down. With before_exec, a short-lived thread does the clone (and sleeps
 * until the exec) while the calling thread runs the hook and opens the gate;
 * the hook runs on the caller's thread, as it did with fork. Safe to call
 * from several threads at once. */
int proc_spawn(char *const argv[], char *const envp[], const SpawnOptions *o, pid_t *ret_pid);

/* The soft RLIMIT_NOFILE children get (0: inherit ours). bangerd raises its
 * own to the hard limit and gives children the limit it started with: a
 * program using select() breaks on an fd above 1023. */
void proc_set_child_nofile(unsigned long soft);

/* Field 22 of /proc/<pid>/stat (start time in clock ticks since boot). */
int proc_start_time(pid_t pid, uint64_t *ret);

/* The real uid of pid (the "Uid:" line of /proc/<pid>/status). */
int proc_uid(pid_t pid, uid_t *ret);

/* True when pid exists with exactly this start time (and is not a zombie). */
bool proc_alive(pid_t pid, uint64_t start_time);

/* The pid listening on the unix stream socket at path, as our own connect()
 * reaches it (SO_PEERCRED; a non-blocking connect, so a full backlog is
 * -EAGAIN, never a wait). -ESRCH when nothing listens (or no such file). */
int proc_find_by_unix_socket(const char *path, pid_t *ret_pid);

/* proc_find_by_unix_socket plus that pid's start time, checked again with a
 * second connect so a pid that died and was reused in between is never
 * reported. */
int proc_find_socket_owner(const char *path, pid_t *ret_pid, uint64_t *ret_start_time);

/* 0 when the peer of the connected unix socket fd is pid (SO_PEERCRED),
 * -EPERM when it is another process. */
int proc_check_socket_peer(int fd, pid_t pid);

/* 0 when the socket at path is served by pid; -EPERM when another process
 * serves it; -ESRCH when nothing does. */
int proc_socket_served_by(const char *path, pid_t pid);

/* SIGKILL pid if it is still the process that started at start_time — sent
 * through a pidfd, so a recycled pid is never hit — then wait up to
 * timeout_ms for it to go. -ESRCH when it was already gone. */
int proc_kill_verified(pid_t pid, uint64_t start_time, unsigned timeout_ms);

/* Resolve a program name through PATH (or return a copy if it has a '/').
 * -ENOENT when not found/executable. */
int find_executable(const char *name, char **ret);

/* Wait up to timeout_ms for pid (our child or not) to exit, polling a pidfd.
 * Reaps it if it is our child. 0 when gone, -ETIMEDOUT otherwise. */
int proc_wait_exit(pid_t pid, uint64_t start_time, unsigned timeout_ms);

/* pidfd_open(2), CLOEXEC. */
int proc_pidfd_open(pid_t pid);

/* Run argv to completion (no shell), stdout/stderr to log_path or /dev/null,
 * bounded by timeout_ms (SIGKILL on expiry). Returns the exit status (>= 0)
 * or -errno / -ETIMEDOUT. */
int proc_run(char *const argv[], const char *log_path, unsigned timeout_ms);
