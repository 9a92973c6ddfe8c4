/* logs.c — `banger logs` and `banger console`.
 *
 * Both find the VM through its durable row in <state-dir>/banger.db (read
 * only): the VM dir holds console.log (+ console.log.1, the older segment
 * bangerd rotated out) and vmm.log; the console socket bangerd listens on
 * sits next to the VM's API socket in the runtime dir
 * (<runtime-dir>/<uid8>.console, see runtime/vm.h VmPaths). Reading them
 * needs what reading the state dir needs: root, as bangerd runs.
 *
 * `logs` prints guest text, so control characters are escaped (\xNN, CR
 * dropped): a guest must not be able to drive the reader's terminal.
 * `console` is an interactive terminal to the guest and passes bytes
 * through, as virsh console does; Ctrl-] detaches. */
#include "cli/cli.h"
#include "store/store.h"
#include "util/log.h"

#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>

/* The most of one log file `banger logs` reads (logs are capped by bangerd;
 * this bounds what a mis-set cap can make us allocate). */
#define LOGS_READ_MAX  (64ULL * 1024 * 1024)
#define FOLLOW_POLL_MS 1000
#define CONSOLE_ESCAPE 0x1d /* Ctrl-] */

/* ---- escaping ------------------------------------------------------------ */

/* Escapes guest bytes for a terminal: C0 controls other than \n and \t,
 * DEL and the UTF-8 encodings of C1 controls (U+0080..U+009F, e.g. CSI)
 * become \xNN; CR is dropped (serial lines end in CR LF). State carries a
 * pending 0xC2 across chunks. A local escaper: util/ grows a shared one on
 * another branch, and this one can move there at merge. */
typedef struct {
	bool pending_c2;
} Escaper;

static void esc_byte(FILE *f, unsigned char c)
{
	fprintf(f, "\\x%02x", c);
}

static void escape_write(Escaper *e, FILE *f, const char *data, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)data[i];
		if (e->pending_c2) {
			e->pending_c2 = false;
			if (c >= 0x80 && c <= 0x9f) {
				esc_byte(f, 0xc2);
				esc_byte(f, c);
				continue;
			}
			fputc(0xc2, f);
		}
		if (c == 0xc2)
			e->pending_c2 = true;
		else if (c == '\r')
			continue;
		else if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f)
			esc_byte(f, c);
		else
			fputc(c, f);
	}
}

/* ---- finding the VM ------------------------------------------------------ */

typedef struct {
	char *vm_dir, *vmm_log, *console_sock;
} VmFiles;

static void vm_files_done(VmFiles *v)
{
	free(v->vm_dir);
	free(v->vmm_log);
	free(v->console_sock);
}

static int find_vm(const CliDirs *dirs, const char *cmd, const char *name, VmFiles *ret)
{
	_cleanup_free_ char *db = path_join(dirs->state_dir, "banger.db");
	_cleanup_(store_closep) Store *st = NULL;
	_cleanup_(vm_record_freep) VmRecord *r = NULL;
	if (!dns_label_valid(name)) {
		fprintf(stderr, "banger %s: '%s' is not a valid VM name\n", cmd, name);
		return -EINVAL;
	}
	if (access(db, R_OK) < 0) {
		fprintf(stderr,
			"banger %s: cannot read %s: %s (the state dir is bangerd's; run as "
			"root, or pass --state-dir)\n",
			cmd, db, strerror(errno));
		return -errno;
	}
	int k = store_open_readonly(db, &st);
	if (k >= 0)
		k = store_get_vm(st, name, &r);
	if (k < 0) {
		fprintf(stderr, "banger %s: vm %s: %s\n", cmd, name,
			k == -ENOENT ? "not found in the state dir" : strerror(-k));
		return k;
	}
	if (!r->vm_dir) {
		fprintf(stderr, "banger %s: vm %s: never started (no VM dir yet)\n", cmd, name);
		return -ENOENT;
	}
	ret->vm_dir = xstrdup(r->vm_dir);
	ret->vmm_log = r->log_path ? xstrdup(r->log_path) : path_join(r->vm_dir, "vmm.log");
	ret->console_sock = NULL;
	if (r->api_sock) {
		const char *slash = strrchr(r->api_sock, '/');
		_cleanup_free_ char *dir =
			slash ? xstrndup(r->api_sock, (size_t)(slash - r->api_sock)) : xstrdup(".");
		_cleanup_free_ char *uid8 = xstrndup(r->uid, 8);
		ret->console_sock = xasprintf("%s/%s.console", dir, uid8);
	}
	return 0;
}

/* ---- logs ---------------------------------------------------------------- */

/* Append the last LOGS_READ_MAX bytes of path to *buf; a missing file adds
 * nothing. Returns the fd positioned data was read up to (for following),
 * or -errno; *ret_fd only when ret_fd is non-NULL. */
static int read_tail(const char *path, char **buf, size_t *len, int *ret_fd, off_t *ret_pos)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	off_t size = lseek(fd, 0, SEEK_END);
	if (size < 0)
		return -errno;
	off_t from = (uint64_t)size > LOGS_READ_MAX ? size - (off_t)LOGS_READ_MAX : 0;
	*buf = xrealloc(*buf, *len + (size_t)(size - from) + 1);
	ssize_t n = pread(fd, *buf + *len, (size_t)(size - from), from);
	if (n < 0)
		return -errno;
	*len += (size_t)n;
	if (ret_fd) {
		*ret_fd = TAKE_FD(fd);
		*ret_pos = from + n;
	}
	return 0;
}

/* Offset of the start of the last n lines of buf (a final newline does not
 * start an empty line). */
static size_t tail_lines(const char *buf, size_t len, uint64_t n)
{
	size_t i = len;
	if (i > 0 && buf[i - 1] == '\n')
		i--;
	while (i > 0) {
		if (buf[i - 1] == '\n' && n-- <= 1)
			return i;
		i--;
	}
	return 0;
}

/* Print what fd holds from *pos to its end; a file that shrank below *pos
 * was truncated (a new boot): read it from the start. */
static void follow_read(int fd, off_t *pos, Escaper *e)
{
	struct stat st;
	char buf[16 * 1024];
	if (fstat(fd, &st) < 0)
		return;
	if (st.st_size < *pos)
		*pos = 0;
	for (;;) {
		ssize_t n = pread(fd, buf, sizeof(buf), *pos);
		if (n <= 0)
			break;
		escape_write(e, stdout, buf, (size_t)n);
		*pos += n;
	}
	fflush(stdout);
}

/* Follow path across truncation (a VM restart truncates console.log),
 * rotation (console.log → console.log.1: a new inode at the path) and
 * in-place trims (vmm.log: re-read from the start of what was kept). Wakes
 * on inotify events in the VM dir, at least every FOLLOW_POLL_MS. Ends when
 * the VM dir is removed (the VM was deleted). */
static int follow(const char *vm_dir, const char *path, int fd, off_t pos, Escaper *e)
{
	_cleanup_close_ int in = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (in >= 0)
		inotify_add_watch(in, vm_dir, IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_DELETE_SELF);
	for (;;) {
		struct pollfd p = { .fd = in, .events = POLLIN };
		char drain[4096];
		poll(&p, in >= 0 ? 1 : 0, FOLLOW_POLL_MS);
		while (in >= 0 && read(in, drain, sizeof(drain)) > 0)
			;
		struct stat now, cur;
		if (fd >= 0)
			follow_read(fd, &pos, e);
		if (stat(vm_dir, &now) < 0) {
			fprintf(stderr, "banger logs: %s is gone (VM deleted)\n", vm_dir);
			return 0;
		}
		if (stat(path, &now) < 0)
			continue;
		if (fd >= 0 && fstat(fd, &cur) == 0 && cur.st_ino == now.st_ino &&
		    cur.st_dev == now.st_dev)
			continue;
		/* Rotated or created: the old fd was read to its end above. */
		if (fd >= 0)
			close(fd);
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		pos = 0;
		if (fd >= 0)
			follow_read(fd, &pos, e);
	}
}

static void logs_usage(FILE *f)
{
	fprintf(f,
		"Usage: banger logs NAME [-f|--follow] [--tail N] [--vmm]\n"
		"\n"
		"Print the VM's console output (<vm-dir>/console.log, after the older segment\n"
		"console.log.1), or with --vmm the VMM's own log (vmm.log). Control characters\n"
		"are escaped as \\xNN. -f keeps printing new output, across VM restarts, until\n"
		"interrupted or the VM is deleted. --tail N starts with the last N lines.\n"
		"Reads <state-dir> (root). Exit status: 0 ok, 1 not found or unreadable, 2 usage.\n");
}

int cli_logs(const CliDirs *dirs, int argc, char **argv)
{
	static const struct option opts[] = { { "follow", no_argument, NULL, 'f' },
					      { "tail", required_argument, NULL, 't' },
					      { "vmm", no_argument, NULL, 'v' },
					      { "help", no_argument, NULL, 'h' },
					      {} };
	bool follow_on = false, vmm = false;
	uint64_t tail = UINT64_MAX;
	int o;
	while ((o = getopt_long(argc, argv, "ft:h", opts, NULL)) != -1) {
		switch (o) {
		case 'f': follow_on = true; break;
		case 't':
			if (parse_u64(optarg, 0, UINT32_MAX, &tail) < 0) {
				fprintf(stderr,
					"banger logs: --tail: expected a number of lines\n");
				return 2;
			}
			break;
		case 'v': vmm = true; break;
		case 'h': logs_usage(stdout); return 0;
		default: logs_usage(stderr); return 2;
		}
	}
	if (optind + 1 != argc) {
		logs_usage(stderr);
		return 2;
	}
	_cleanup_(vm_files_done) VmFiles vf = { 0 };
	if (find_vm(dirs, "logs", argv[optind], &vf) < 0)
		return 1;
	_cleanup_free_ char *console = path_join(vf.vm_dir, "console.log");
	_cleanup_free_ char *older = xasprintf("%s.1", console);
	const char *path = vmm ? vf.vmm_log : console;
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	int fd = -1, r = 0;
	off_t pos = 0;
	if (!vmm)
		r = read_tail(older, &buf, &len, NULL, NULL);
	if (r >= 0)
		r = read_tail(path, &buf, &len, &fd, &pos);
	if (r < 0) {
		fprintf(stderr, "banger logs: %s: %s\n", path, strerror(-r));
		return 1;
	}
	Escaper e = { 0 };
	size_t start = tail == UINT64_MAX ? 0 : tail == 0 ? len : tail_lines(buf, len, tail);
	escape_write(&e, stdout, buf + start, len - start);
	fflush(stdout);
	if (!follow_on) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	return follow(vf.vm_dir, path, fd, pos, &e) < 0 ? 1 : 0;
}

/* ---- console ------------------------------------------------------------- */

static struct termios saved_tio;
static bool tio_saved;

static void restore_tty(void)
{
	if (tio_saved)
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tio);
}

static void raw_tty(void)
{
	struct termios t;
	if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved_tio) < 0)
		return;
	tio_saved = true;
	atexit(restore_tty);
	t = saved_tio;
	cfmakeraw(&t);
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &t);
}

static int console_connect(const char *name, const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	return fd;
}

static bool write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

/* Relay until Ctrl-] on stdin (0), stdin EOF (0) or the socket closing (1). */
static int relay(int sock)
{
	char buf[4096];
	for (;;) {
		struct pollfd p[2] = { { .fd = STDIN_FILENO, .events = POLLIN },
				       { .fd = sock, .events = POLLIN } };
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return 1;
		}
		if (p[1].revents) {
			ssize_t n = read(sock, buf, sizeof(buf));
			if (n <= 0)
				return 1;
			if (!write_all(STDOUT_FILENO, buf, (size_t)n))
				return 1;
		}
		if (p[0].revents) {
			ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
			if (n <= 0)
				return 0;
			char *esc = memchr(buf, CONSOLE_ESCAPE, (size_t)n);
			size_t k = esc ? (size_t)(esc - buf) : (size_t)n;
			if (k > 0 && !write_all(sock, buf, k))
				return 1;
			if (esc)
				return 0;
		}
	}
}

static void console_usage(FILE *f)
{
	fprintf(f, "Usage: banger console NAME\n"
		   "\n"
		   "Attach the terminal to the VM's serial console through bangerd (QEMU VMs).\n"
		   "Output also keeps going to the console log. Detach with Ctrl-] (the escape\n"
		   "character, as in virsh and telnet). Root only (the socket is 0600 root and\n"
		   "bangerd checks the peer's uid).\n"
		   "Exit status: 0 detached, 1 no console or the connection closed, 2 usage.\n");
}

int cli_console(const CliDirs *dirs, int argc, char **argv)
{
	if (argc != 2 || streq(argv[1], "-h") || streq(argv[1], "--help")) {
		console_usage(argc == 2 ? stdout : stderr);
		return argc == 2 ? 0 : 2;
	}
	_cleanup_(vm_files_done) VmFiles vf = { 0 };
	if (find_vm(dirs, "console", argv[1], &vf) < 0)
		return 1;
	int fd = vf.console_sock ? console_connect(argv[1], vf.console_sock) : -ENOENT;
	if (fd < 0) {
		fprintf(stderr, "banger console: vm %s: %s: %s\n", argv[1],
			vf.console_sock ? vf.console_sock : "(no runtime dir recorded)",
			fd == -ENOENT || fd == -ECONNREFUSED
				? "no console (bangerd is not running, or the VM has not run under "
				  "this bangerd, or its VMM has no serial socket: Firecracker)"
			: fd == -EACCES ? "permission denied (root only)"
					: strerror(-fd));
		return 1;
	}
	fprintf(stderr, "Connected to %s's console; the escape character is ^] (Ctrl-]).\r\n",
		argv[1]);
	raw_tty();
	int r = relay(fd);
	close(fd);
	restore_tty();
	tio_saved = false;
	fprintf(stderr, r == 0 ? "\r\nDetached from %s.\n" : "\r\nConsole of %s closed.\n",
		argv[1]);
	return r;
}
