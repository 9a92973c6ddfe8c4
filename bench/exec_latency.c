/* exec_latency — spec write → VMM process exec, one boot per invocation.
 *
 *   exec_latency bangerd|baseline SPEC_DIR STATUS_DIR NAME GUEST_DIR [ARGV_SAVE]
 *
 * Durably writes SPEC_DIR/NAME.yaml (temp, fsync, rename, fsync dir: a
 * Running VM, qemu, 128 MiB, network on, readiness on tcp/80), and times
 * from the start of that write to the exec of the QEMU process whose argv
 * holds "guest=NAME". Exec is seen through the netlink proc connector: the
 * PROC_EVENT_EXEC timestamp is taken by the kernel (ktime_get_ns, the same
 * clock as CLOCK_MONOTONIC) when exec succeeds, so the figure has
 * nanosecond resolution and does not include this observer's wake-up. The
 * PROC_EVENT_FORK of the same pid gives the fork time too (write → fork, and
 * fork → exec, which is the cost of the spawn itself).
 *
 * Then, for bangerd only, it waits until STATUS_DIR/NAME.status.json shows
 * phase Running with that pid (the guest passed its readiness probe: a real
 * boot, not just a process) — reported as ready_ms, context only. Then it
 * deletes the spec (unlink + fsync dir) and waits until the VMM process is
 * gone and, for bangerd, the status file too, so boots never pile up.
 *
 * ARGV_SAVE: write the VMM's raw /proc/PID/cmdline there, the files of the
 * fds bangerd passed it to ARGV_SAVE.fds, and print where its per-VM strings
 * are (root_disk, api_sock, tap, serial), for the baselines.
 *
 * Must run in the initial network namespace (the proc connector lives
 * there); bangerd and the baseline run in a private one. */
#include "vmbench.h"

#include <sys/inotify.h>

#define EXEC_TIMEOUT_MS  30000
#define READY_TIMEOUT_MS 120000
#define GONE_TIMEOUT_MS  60000
#define FORK_RING        8192

typedef struct {
	pid_t pid;
	uint64_t ts;
} ForkSeen;

static ForkSeen forks[FORK_RING];
static size_t nforks;

static uint64_t fork_ts_of(pid_t pid)
{
	for (size_t i = nforks; i > 0 && nforks - i < FORK_RING; i--)
		if (forks[(i - 1) % FORK_RING].pid == pid)
			return forks[(i - 1) % FORK_RING].ts;
	return 0;
}

static void write_spec(const char *dir, const char *name, const char *guest, uint64_t *ret_t0,
		       uint64_t *ret_tw)
{
	char file[320], text[2048];
	snprintf(file, sizeof(file), "%s.yaml", name);
	int len = snprintf(text, sizeof(text),
			   "apiVersion: banger/v1\n"
			   "kind: VM\n"
			   "metadata:\n"
			   "  name: %s\n"
			   "spec:\n"
			   "  state: Running\n"
			   "  vmm: qemu\n"
			   "  memoryMiB: 128\n"
			   "  kernel: {path: %s/bzImage}\n"
			   "  rootfs: {path: %s/rootfs.ext4}\n"
			   "  readiness: {tcpPort: 80, timeoutSeconds: 90}\n",
			   name, guest, guest);
	*ret_t0 = now_ns();
	int r = durable_replace(dir, file, text, (size_t)len);
	if (r < 0)
		die("write %s/%s: %s", dir, file, strerror(-r));
	*ret_tw = now_ns();
}

/* Wait for the exec of the VMM of `name`; returns its pid, sets exec/fork ts. */
static pid_t wait_exec(int pfd, const char *name, char *cmd, size_t cap, ssize_t *ret_len,
		       uint64_t *ret_exec, uint64_t *ret_fork)
{
	char want[320];
	snprintf(want, sizeof(want), "guest=%s", name);
	uint64_t deadline = now_ns() + (uint64_t)EXEC_TIMEOUT_MS * 1000000ull;
	for (;;) {
		ProcEv ev;
		uint64_t now = now_ns();
		if (now >= deadline)
			die("%s: no VMM exec within %d s", name, EXEC_TIMEOUT_MS / 1000);
		int r = procev_next(pfd, (int)((deadline - now) / 1000000 + 1), &ev);
		if (r == -ENOBUFS) {
			fprintf(stderr, "exec_latency: proc connector overrun (events lost)\n");
			continue;
		}
		if (r < 0)
			die("proc connector: %s", strerror(-r));
		if (r == 0)
			continue;
		if (ev.what == PROC_EVENT_FORK) {
			forks[nforks++ % FORK_RING] = (ForkSeen){ ev.pid, ev.ts_ns };
			continue;
		}
		ssize_t len = proc_cmdline(ev.pid, cmd, cap);
		if (len > 0 && argv_has(cmd, (size_t)len, want)) {
			*ret_len = len;
			*ret_exec = ev.ts_ns;
			*ret_fork = fork_ts_of(ev.pid);
			return ev.pid;
		}
	}
}

/* bangerd opens the VMM's disks itself and passes them as fds (QEMU
 * `-add-fd fd=N,set=S,opaque=O`, vmm/qemu_disk.c): the argv names no disk
 * file. Read what each passed fd is from the new QEMU (/proc/PID/fd/N and its
 * access mode from fdinfo, just after its exec, before it could close any)
 * and write "N MODE PATH" lines (MODE ro or rw) to fds_path, so the baseline
 * can open the same kind of file at the same number. Also prints
 * root_disk=PATH (the root-rw fd's file; its directory is the VM dir). */
static void save_fds(pid_t pid, const char *cmd, size_t len, const char *fds_path)
{
	FILE *f = fopen(fds_path, "we");
	if (!f)
		die("write %s: %m", fds_path);
	for (size_t i = 0; i < len; i += strlen(cmd + i) + 1) {
		int fd;
		char opaque[64] = "";
		if (sscanf(cmd + i, "fd=%d,set=%*d,opaque=%63s", &fd, opaque) < 1)
			continue;
		char link[64], path[4096], info[64], text[512];
		snprintf(link, sizeof(link), "/proc/%d/fd/%d", (int)pid, fd);
		ssize_t n = readlink(link, path, sizeof(path) - 1);
		snprintf(info, sizeof(info), "/proc/%d/fdinfo/%d", (int)pid, fd);
		int ifd = open(info, O_RDONLY | O_CLOEXEC);
		ssize_t k = ifd < 0 ? -1 : read(ifd, text, sizeof(text) - 1);
		if (ifd >= 0)
			close(ifd);
		const char *fl = k > 0 ? (text[k] = 0, strstr(text, "flags:")) : NULL;
		unsigned long flags;
		if (n <= 0 || !fl || sscanf(fl, "flags: %lo", &flags) != 1)
			die("QEMU pid %d: passed fd %d (%s) unreadable", (int)pid, fd, opaque);
		path[n] = 0;
		bool rw = (flags & O_ACCMODE) == O_RDWR;
		fprintf(f, "%d %s %s\n", fd, rw ? "rw" : "ro", path);
		if (strcmp(opaque, "root-rw") == 0)
			printf("root_disk=%s\n", path);
	}
	if (fclose(f) != 0)
		die("write %s: %m", fds_path);
}

/* Print where the per-VM strings of a bangerd QEMU argv are. */
static void describe_argv(const char *cmd, size_t len)
{
	static const struct {
		const char *key, *prefix, *stop;
	} keys[] = {
		{ "console", "file,id=console,path=", "," },
		{ "serial", "socket,id=console,path=", "," }, /* bangerd: the serial socket */
		{ "api_sock", "socket,id=qmp,path=", "," },
		{ "tap", "tap,id=net0,ifname=", "," },
		{ "root_disk", "file=", "," }, /* a disk by path (not bangerd's QEMU today) */
	};
	for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
		for (size_t i = 0; i < len; i += strlen(cmd + i) + 1)
			if (strncmp(cmd + i, keys[k].prefix, strlen(keys[k].prefix)) == 0) {
				const char *v = cmd + i + strlen(keys[k].prefix);
				printf("%s=%.*s\n", keys[k].key, (int)strcspn(v, keys[k].stop), v);
				break;
			}
}

/* ARGV_SAVE gets the raw argv, ARGV_SAVE.fds the passed fds (save_fds). */
static void save_argv(const char *path, pid_t pid, const char *cmd, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write_all(fd, cmd, len) < 0)
		die("write %s: %m", path);
	close(fd);
	char fds[4200];
	snprintf(fds, sizeof(fds), "%s.fds", path);
	save_fds(pid, cmd, len, fds);
	describe_argv(cmd, len);
}

/* Wait for STATUS_DIR/NAME.status.json: ready (phase Running, pid) or gone. */
static bool wait_status(int ifd, int sdfd, const char *name, long pid, bool want_gone, int pidfd,
			int timeout_ms)
{
	char phase[64], buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
	uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000ull;
	for (;;) {
		long p = 0;
		bool exists = status_read(sdfd, name, phase, sizeof(phase), &p);
		if (!want_gone && exists && strcmp(phase, "Running") == 0 && p == pid)
			return true;
		struct pollfd pf = { .fd = pidfd, .events = POLLIN };
		bool vmm_gone = pidfd < 0 || poll(&pf, 1, 0) == 1;
		if (want_gone && !exists && vmm_gone)
			return true;
		uint64_t now = now_ns();
		if (now >= deadline)
			return false;
		struct pollfd p2[2] = { { .fd = ifd, .events = POLLIN },
					{ .fd = vmm_gone ? -1 : pidfd, .events = POLLIN } };
		if (poll(p2, 2, (int)((deadline - now) / 1000000 + 1)) > 0 && p2[0].revents)
			while (read(ifd, buf, sizeof(buf)) > 0)
				;
	}
}

int main(int argc, char **argv)
{
	static char cmd[65536];
	if (argc != 6 && argc != 7)
		die("usage: exec_latency bangerd|baseline SPEC_DIR STATUS_DIR NAME GUEST_DIR [ARGV_SAVE]");
	bool daemon = strcmp(argv[1], "bangerd") == 0;
	const char *spec_dir = argv[2], *status_dir = argv[3], *name = argv[4];
	int pfd = procev_open();
	if (pfd < 0)
		die("proc connector: %s (root, initial network namespace needed)", strerror(-pfd));
	int sdfd = open(status_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (sdfd < 0 || ifd < 0 ||
	    inotify_add_watch(ifd, status_dir, IN_MOVED_TO | IN_CLOSE_WRITE | IN_DELETE) < 0)
		die("watch %s: %m", status_dir);

	uint64_t t0, tw, texec, tfork;
	ssize_t len;
	write_spec(spec_dir, name, argv[5], &t0, &tw);
	pid_t pid = wait_exec(pfd, name, cmd, sizeof(cmd), &len, &texec, &tfork);
	close(pfd);
	if (argc == 7)
		save_argv(argv[6], pid, cmd,
			  (size_t)len); /* first: QEMU still holds the passed fds */
	int pidfd = pidfd_open_(pid);
	printf("pid=%d\n", (int)pid);
	printf("write_us=%.1f\n", (double)(tw - t0) / 1e3);
	printf("exec_us=%.1f\n", (double)(texec - t0) / 1e3);
	printf("fork_us=%.1f\n", tfork ? (double)(tfork - t0) / 1e3 : -1.0);
	fflush(stdout);

	if (daemon) {
		if (!wait_status(ifd, sdfd, name, pid, false, -1, READY_TIMEOUT_MS))
			die("%s: status never showed phase Running with pid %d", name, (int)pid);
		printf("ready_ms=%.1f\n", (double)(now_ns() - t0) / 1e6);
	}
	char file[320];
	snprintf(file, sizeof(file), "%s/%s.yaml", spec_dir, name);
	uint64_t td = now_ns();
	if (unlink(file) < 0 || fsync_dir(spec_dir) < 0)
		die("delete %s: %m", file);
	if (!wait_status(ifd, sdfd, name, pid, true, pidfd, GONE_TIMEOUT_MS))
		die("%s: VMM pid %d or its status still there %d s after the spec was deleted",
		    name, (int)pid, GONE_TIMEOUT_MS / 1000);
	printf("gone_ms=%.1f\n", (double)(now_ns() - td) / 1e6);
	return 0;
}
