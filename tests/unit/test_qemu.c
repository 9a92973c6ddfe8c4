/* Unit tests for the QEMU driver's pure parts (argv building, option
 * escaping, TSC parsing) and for the QMP client against a scripted peer on a
 * socketpair: events and stale replies interleaved with the real reply,
 * replies split across writes, error classes, timeouts, EOF. */
#include "storage/qcow2.h"
#include "tap.h"
#include "util/log.h"
#include "util/timeutil.h"
#include "vmm/qemu.h"
#include "vmm/qmp.h"

#include <dirent.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/wait.h>

static const VmmSettings settings = { 0 };

static VmmLaunchConfig base_config(void)
{
	return (VmmLaunchConfig){
		.settings = &settings,
		.name = "vm1",
		.vm_id = "abc123",
		.vm_dir = "/run/banger/vm1",
		.api_sock = "/run/banger/vm1/api.sock",
		.log_path = "/run/banger/vm1/vmm.log",
		.console_path = "/run/banger/vm1/console.log",
		.serial_sock = "/run/banger/vm1.serial",
		.kernel_path = "/guest/bzImage",
		.root_disk = "/run/banger/vm1/root.img",
		.root_disk_format = "raw",
		.vcpus = 2,
		.memory_mib = 256,
	};
}

/* Disks as qemu_disks_open() would hand them over (fd numbers only). */
static const QemuDisks disks = { .root = { QEMU_FDSET_ROOT, 10, 11, false },
				 .backing = { 0, -1, -1, false },
				 .work = { QEMU_FDSET_WORK, 12, 13, false } };

/* Index of the first element equal to s, or -1. */
static int find_arg(char **v, const char *s)
{
	for (int i = 0; v[i]; i++)
		if (streq(v[i], s))
			return i;
	return -1;
}

/* The value following the n-th (0-based) occurrence of flag, or NULL. */
static const char *arg_after(char **v, const char *flag, int n)
{
	for (int i = 0; v[i]; i++)
		if (streq(v[i], flag) && n-- == 0)
			return v[i + 1];
	return NULL;
}

static int count_arg(char **v, const char *s)
{
	int n = 0;
	for (int i = 0; v[i]; i++)
		n += streq(v[i], s);
	return n;
}

/* Without a serial socket (the driver used on its own) QEMU appends the
 * serial to console_path; a comma in a path is doubled for QEMU's parser. */
static void test_argv_console_file(void)
{
	VmmLaunchConfig c = base_config();
	c.serial_sock = NULL;
	c.console_path = "/run/a,b/console.log";
	_cleanup_strv_free_ char **v = NULL;
	CHECK_INTEQ(qemu_build_argv(&c, &disks, "/usr/bin/qemu-system-x86_64", false, 0, &v), 0,
		    "builds without a serial socket");
	if (v)
		CHECK_STREQ(arg_after(v, "-chardev", 0),
			    "file,id=console,path=/run/a,,b/console.log",
			    "console chardev falls back to the file");
	c.console_path = NULL;
	_cleanup_strv_free_ char **w = NULL;
	CHECK_INTEQ(qemu_build_argv(&c, &disks, "/usr/bin/qemu-system-x86_64", false, 0, &w),
		    -EINVAL, "neither serial socket nor console file: refused");
}

static void test_argv_minimal(void)
{
	VmmLaunchConfig c = base_config();
	_cleanup_strv_free_ char **v = NULL;
	CHECK_INTEQ(qemu_build_argv(&c, &disks, "/usr/bin/qemu-system-x86_64", false, 2100000, &v),
		    0, "minimal config builds");
	if (!v)
		return;
	CHECK_STREQ(v[0], "/usr/bin/qemu-system-x86_64", "argv[0] is the resolved binary");
	CHECK_STREQ(arg_after(v, "-M", 0), "microvm,acpi=off", "microvm without ACPI");
	CHECK_STREQ(arg_after(v, "-accel", 0), "tcg,tb-size=128",
		    "TCG when kvm=false, translation cache bounded to 128 MiB");
	CHECK_STREQ(arg_after(v, "-m", 0), "256", "memory");
	CHECK_STREQ(arg_after(v, "-smp", 0), "2", "vcpus");
	CHECK_STREQ(arg_after(v, "-name", 0), "guest=vm1", "name");
	CHECK(find_arg(v, "-nodefaults") > 0 && find_arg(v, "-no-user-config") > 0 &&
		      find_arg(v, "-no-reboot") > 0,
	      "-nodefaults -no-user-config -no-reboot");
	CHECK_STREQ(arg_after(v, "-display", 0), "none", "no display");
	CHECK_STREQ(arg_after(v, "-device", 0), "i8042", "i8042 for Ctrl-Alt-Del");
	CHECK_STREQ(arg_after(v, "-chardev", 0),
		    "socket,id=console,path=/run/banger/vm1.serial,server=on,wait=off",
		    "console chardev is a socket QEMU serves");
	CHECK_STREQ(arg_after(v, "-serial", 0), "chardev:console", "serial on the console chardev");
	CHECK_STREQ(arg_after(v, "-chardev", 1),
		    "socket,id=qmp,path=/run/banger/vm1/api.sock,server=on,wait=off",
		    "QMP socket listens without waiting");
	CHECK_STREQ(arg_after(v, "-mon", 0), "chardev=qmp,mode=control", "QMP monitor");
	CHECK_STREQ(arg_after(v, "-kernel", 0), "/guest/bzImage", "kernel");
	CHECK_INTEQ(find_arg(v, "-initrd"), -1, "no initrd");
	CHECK_STREQ(arg_after(v, "-append", 0),
		    "console=ttyS0 reboot=k panic=-1 root=/dev/vda rw tsc_early_khz=2100000 "
		    "i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd",
		    "guest command line without network");
	CHECK_INTEQ(count_arg(v, "-drive"), 0, "no -drive: QEMU opens no disk by path");
	CHECK_INTEQ(count_arg(v, "-blockdev"), 1, "one blockdev");
	CHECK_STREQ(arg_after(v, "-add-fd", 0), "fd=10,set=1,opaque=root-ro", "root's O_RDONLY fd");
	CHECK_STREQ(arg_after(v, "-add-fd", 1), "fd=11,set=1,opaque=root-rw", "root's O_RDWR fd");
	CHECK_INTEQ(count_arg(v, "-add-fd"), 2, "no work disk, no work fds");
	CHECK_STREQ(arg_after(v, "-blockdev", 0),
		    "driver=raw,node-name=root,file.driver=file,file.filename=/dev/fdset/1",
		    "raw root node on fdset 1");
	CHECK_STREQ(arg_after(v, "-device", 1), "virtio-blk-device,drive=root",
		    "root is virtio-blk");
	CHECK(find_arg(v, "/run/banger/vm1/root.img") < 0, "the root disk's path is not in argv");
	CHECK_INTEQ(find_arg(v, "-netdev"), -1, "no network without tap");
}

static void test_argv_full(void)
{
	VmmLaunchConfig c = base_config();
	c.root_disk_format = "qcow2";
	c.root_disk = "/run/banger/vm1/root.qcow2";
	c.initrd_path = "/guest/initrd.gz";
	c.work_disk = "/run/banger/vm1/work.img";
	c.tap = "bt-vm1";
	c.mac = "52:54:00:00:00:11";
	c.guest_ip = "172.16.0.2";
	c.gateway_ip = "172.16.0.1";
	c.prefix_len = 24;
	c.user_args = "init=/init quiet";
	QemuDisks d = disks;
	d.backing = (QemuFdset){ QEMU_FDSET_BACKING, 14, -1, true };
	_cleanup_strv_free_ char **v = NULL;
	CHECK_INTEQ(qemu_build_argv(&c, &d, "qemu", true, 2100000, &v), 0, "full config builds");
	if (!v)
		return;
	CHECK_STREQ(arg_after(v, "-accel", 0), "kvm", "KVM when kvm=true");
	CHECK_STREQ(arg_after(v, "-initrd", 0), "/guest/initrd.gz", "initrd");
	CHECK_STREQ(arg_after(v, "-append", 0),
		    "console=ttyS0 reboot=k panic=-1 root=/dev/vda rw tsc_early_khz=2100000 "
		    "i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd "
		    "ip=172.16.0.2::172.16.0.1:255.255.255.0:vm1:eth0:off init=/init quiet",
		    "guest command line with ip= and user args last");
	CHECK_INTEQ(count_arg(v, "-blockdev"), 2, "two blockdevs");
	CHECK_STREQ(arg_after(v, "-blockdev", 0),
		    "driver=qcow2,node-name=root,file.driver=file,file.filename=/dev/fdset/1,"
		    "backing.driver=raw,backing.file.driver=host_device,"
		    "backing.file.filename=/dev/fdset/2",
		    "qcow2 root first (/dev/vda), its backing file an explicit node on fdset 2 "
		    "(a block device: host_device)");
	CHECK_STREQ(arg_after(v, "-add-fd", 2), "fd=14,set=2,opaque=backing-ro",
		    "the backing file's O_RDONLY fd");
	CHECK_STREQ(arg_after(v, "-add-fd", 3), "fd=12,set=3,opaque=work-ro",
		    "no O_RDWR fd for the backing file: the next is the work disk's");
	CHECK_STREQ(arg_after(v, "-blockdev", 1),
		    "driver=raw,node-name=work,file.driver=file,file.filename=/dev/fdset/3",
		    "raw work disk second (/dev/vdb)");
	CHECK(find_arg(v, "virtio-blk-device,drive=root") <
		      find_arg(v, "virtio-blk-device,drive=work"),
	      "root device precedes work device");
	CHECK_STREQ(arg_after(v, "-netdev", 0), "tap,id=net0,ifname=bt-vm1,script=no,downscript=no",
		    "tap netdev without scripts");
	CHECK(find_arg(v, "virtio-net-device,netdev=net0,mac=52:54:00:00:00:11") > 0,
	      "virtio-net with the MAC");
	CHECK_INTEQ(find_arg(v, "-accel") < find_arg(v, "-kernel"), 1, "machine options first");
}

static void test_argv_invalid(void)
{
	char **v = NULL;
	VmmLaunchConfig c = base_config();
	c.root_disk_format = "vmdk";
	CHECK_INTEQ(qemu_build_argv(&c, &disks, "qemu", false, 0, &v), -EINVAL,
		    "unknown format refused");
	c = base_config();
	c.tap = "tap0";
	CHECK_INTEQ(qemu_build_argv(&c, &disks, "qemu", false, 0, &v), -EINVAL,
		    "tap without MAC refused");
	c = base_config();
	c.kernel_path = NULL;
	CHECK_INTEQ(qemu_build_argv(&c, &disks, "qemu", false, 0, &v), -EINVAL,
		    "missing kernel refused");
	c = base_config();
	c.vcpus = 0;
	CHECK_INTEQ(qemu_build_argv(&c, &disks, "qemu", false, 0, &v), -EINVAL,
		    "zero vcpus refused");
	CHECK(v == NULL, "out-parameter untouched on failure");
	c = base_config();
	QemuDisks none = QEMU_DISKS_NONE;
	CHECK_INTEQ(qemu_build_argv(&c, &none, "qemu", false, 0, &v), -EINVAL,
		    "root disk not opened: refused");
	c.work_disk = "/run/banger/vm1/work.img";
	QemuDisks no_work = disks;
	no_work.work = none.work;
	CHECK_INTEQ(qemu_build_argv(&c, &no_work, "qemu", false, 0, &v), -EINVAL,
		    "work disk not opened: refused");

	c = base_config();
	c.root_disk_format = NULL;
	CHECK_INTEQ(qemu_build_argv(&c, &disks, "qemu", false, 0, &v), 0, "NULL format means raw");
	if (v) {
		CHECK(startswith(arg_after(v, "-blockdev", 0), "driver=raw,"), "defaults to raw");
		CHECK(strstr(arg_after(v, "-append", 0), "tsc_early_khz") == NULL,
		      "no tsc_early_khz when the rate is unknown");
		strv_free(v);
	}
}

/* Confined: -runas uid:gid (QEMU 7.2 takes numbers), -chroot, -sandbox
 * without elevateprivileges=deny (that kills -runas' setuid); unconfined:
 * none of them; uid without gid refused. */
static void test_argv_confined(void)
{
	VmmLaunchConfig c = base_config();
	_cleanup_strv_free_ char **v = NULL;
	CHECK_INTEQ(qemu_build_argv(&c, &disks, "qemu", false, 0, &v), 0, "unconfined builds");
	CHECK(find_arg(v, "-runas") < 0 && find_arg(v, "-chroot") < 0 &&
		      find_arg(v, "-sandbox") < 0,
	      "unconfined: no -runas, -chroot, -sandbox");
	strv_free(TAKE_PTR(v));
	c.vmm_uid = 2000000007;
	c.vmm_gid = 2000000007;
	c.chroot_dir = "/var/lib/banger/vms/x/chroot";
	CHECK_INTEQ(qemu_build_argv(&c, &disks, "qemu", false, 0, &v), 0, "confined builds");
	CHECK_STREQ(arg_after(v, "-runas", 0), "2000000007:2000000007", "-runas uid:gid");
	CHECK_STREQ(arg_after(v, "-chroot", 0), "/var/lib/banger/vms/x/chroot", "-chroot dir");
	CHECK_STREQ(arg_after(v, "-sandbox", 0), "on,obsolete=deny,spawn=deny,resourcecontrol=deny",
		    "-sandbox filter (no elevateprivileges=deny)");
	strv_free(TAKE_PTR(v));
	c.vmm_gid = 0;
	CHECK_INTEQ(qemu_build_argv(&c, &disks, "qemu", false, 0, &v), -EINVAL,
		    "uid with gid 0 refused");
}

static void test_escape(void)
{
	_cleanup_free_ char *a = qemu_opt_escape("/tmp/a,b/c,,d");
	CHECK_STREQ(a, "/tmp/a,,b/c,,,,d", "commas doubled");
	VmmLaunchConfig c = base_config();
	c.console_path = "/srv/x,format=qcow2/console.log";
	c.serial_sock = NULL;
	_cleanup_strv_free_ char **v = NULL;
	CHECK_INTEQ(qemu_build_argv(&c, &disks, "qemu", false, 0, &v), 0, "comma path builds");
	if (v)
		CHECK_STREQ(arg_after(v, "-chardev", 0),
			    "file,id=console,path=/srv/x,,format=qcow2/console.log",
			    "a comma in a path cannot inject options");
}

static int open_fds(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	while (d && readdir(d))
		n++;
	if (d)
		closedir(d);
	return n;
}

static bool mode_is(int fd, int accmode)
{
	int fl = fcntl(fd, F_GETFL), fdf = fcntl(fd, F_GETFD);
	return fl >= 0 && (fl & O_ACCMODE) == accmode && fdf >= 0 && (fdf & FD_CLOEXEC);
}

static void make_file(const char *path, const char *qcow2_backing)
{
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int r = fd < 0          ? -errno
		: qcow2_backing ? qcow2_write_overlay(fd, qcow2_backing, "raw", 1 << 20)
				: (ftruncate(fd, 1 << 20) < 0 ? -errno : 0);
	CHECK_INTEQ(r, 0, "make %s", path);
}

/* qemu_disks_open on real files: a set per disk with an O_RDONLY and an
 * O_RDWR fd (CLOEXEC: only proc_spawn's pass_fds reach QEMU), a qcow2
 * overlay's backing file found from its header, read-only, only when it is
 * the expected base; a relative or foreign backing path, a missing disk or a
 * directory refused with nothing left open. */
static void test_disks_open(void)
{
	char dir[] = "/tmp/banger-qemu-disk-XXXXXX";
	if (!mkdtemp(dir)) {
		CHECK(false, "mkdtemp: %s", strerror(errno));
		return;
	}
	_cleanup_free_ char *base = path_join(dir, "base.img"), *ov = path_join(dir, "root.qcow2");
	_cleanup_free_ char *rel = path_join(dir, "rel.qcow2"), *work = path_join(dir, "work.img");
	make_file(base, NULL);
	make_file(ov, base);
	make_file(rel, base);
	/* The writer refuses a relative name: make one by hand ('/' → 'x'). */
	_cleanup_close_ int rfd = open(rel, O_RDWR | O_CLOEXEC);
	char hdr[4096];
	ssize_t n = rfd < 0 ? -1 : pread(rfd, hdr, sizeof(hdr), 0);
	char *at = n > 0 ? memmem(hdr, (size_t)n, base, strlen(base)) : NULL;
	CHECK(at && pwrite(rfd, "x", 1, at - hdr) == 1, "made a relative backing name");
	make_file(work, NULL);
	VmmLaunchConfig c = base_config();
	c.root_disk = ov;
	c.root_disk_format = "qcow2";
	c.root_disk_base = base;
	c.work_disk = work;
	int before = open_fds();
	QemuDisks d = QEMU_DISKS_NONE;
	CHECK_INTEQ(qemu_disks_open(&c, &d), 0, "qcow2 root + work disk open");
	CHECK(d.root.set == QEMU_FDSET_ROOT && mode_is(d.root.ro, O_RDONLY) &&
		      mode_is(d.root.rw, O_RDWR) && !d.root.block,
	      "root: set 1, O_RDONLY + O_RDWR, CLOEXEC, a file");
	CHECK(d.backing.set == QEMU_FDSET_BACKING && mode_is(d.backing.ro, O_RDONLY) &&
		      d.backing.rw == -1,
	      "backing file from the overlay header: set 2, O_RDONLY only");
	CHECK(d.work.set == QEMU_FDSET_WORK && mode_is(d.work.rw, O_RDWR), "work: set 3");
	int fds[QEMU_DISKS_FDS_MAX];
	CHECK_INTEQ((int)qemu_disks_fds(&d, fds), 5, "five fds to pass");
	qemu_disks_close(&d);
	CHECK_INTEQ(open_fds(), before, "close leaves nothing open");
	CHECK(d.root.ro == -1 && d.backing.ro == -1 && d.work.rw == -1, "closed sets are -1");

	c.root_disk = rel;
	CHECK_INTEQ(qemu_disks_open(&c, &d), -EINVAL, "relative backing path refused");
	/* An overlay naming another file (its header is the VMM's to write). */
	_cleanup_free_ char *other = path_join(dir, "other.img"),
			    *evil = path_join(dir, "evil.qcow2");
	make_file(other, NULL);
	make_file(evil, other);
	c.root_disk = evil;
	CHECK_INTEQ(qemu_disks_open(&c, &d), -EPERM, "a backing file other than the base refused");
	c.root_disk_base = NULL;
	c.root_disk = ov;
	CHECK_INTEQ(qemu_disks_open(&c, &d), -EPERM, "no expected base: the backing is refused");
	c.root_disk_base = base;
	c.root_disk = ov;
	c.work_disk = "/nonexistent/work.img";
	CHECK_INTEQ(qemu_disks_open(&c, &d), -ENOENT, "missing work disk refused");
	c.root_disk = dir;
	c.root_disk_format = "raw";
	CHECK_INTEQ(qemu_disks_open(&c, &d), -EINVAL, "a directory is no disk");
	CHECK_INTEQ(open_fds(), before, "failed opens leave nothing open");
	CHECK(d.root.ro == -1, "out-parameter untouched on failure");
	unlink(base), unlink(ov), unlink(rel), unlink(work), unlink(other), unlink(evil),
		rmdir(dir);
}

static void test_tsc(void)
{
	CHECK_INTEQ(qemu_parse_tsc_khz("processor\t: 0\nmodel name\t: X\ncpu MHz\t\t: 2100.000\n"
				       "cpu MHz\t\t: 999.0\n"),
		    2100000, "first cpu MHz line");
	CHECK_INTEQ(qemu_parse_tsc_khz("cpu MHz\t\t: 2893.2046\n"), 2893205, "rounded to kHz");
	CHECK_INTEQ(qemu_parse_tsc_khz("processor\t: 0\n"), 0, "absent -> 0");
	CHECK_INTEQ(qemu_parse_tsc_khz("cpu MHz\t\t: garbage\n"), 0, "garbage -> 0");
	CHECK_INTEQ(qemu_parse_tsc_khz("cpu MHz\nflags: a:b\n"), 0, "colon on another line -> 0");
}

/* ---- QMP over a socketpair ---------------------------------------- */

static void put(int fd, const char *s)
{
	ssize_t _unused_ w = write(fd, s, strlen(s));
}

/* Read what the client sent so far (non-blocking). */
static char *drain(int fd)
{
	static char buf[8192];
	ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
	buf[n > 0 ? n : 0] = 0;
	return buf;
}

static const char greeting[] =
	"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}}, "
	"\"capabilities\": [\"oob\"]}}\r\n";

static void test_qmp_interleaved(void)
{
	int sv[2];
	socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
	_cleanup_qmp_ QmpClient *q = NULL;
	qmp_client_from_fd(sv[0], 1000, &q);

	put(sv[1], greeting);
	put(sv[1], "{\"return\": {}, \"id\": 1}\r\n");
	CHECK_INTEQ(qmp_handshake(q), 0, "handshake");
	const char *sent = drain(sv[1]); /* CHECK evaluates its condition twice */
	CHECK(strstr(sent, "\"execute\":\"qmp_capabilities\"") != NULL,
	      "client sent qmp_capabilities");

	put(sv[1],
	    "{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, \"event\": \"RESUME\"}\r\n"
	    "\r\n"
	    "{\"return\": {\"status\": \"paused\"}, \"id\": 99}\r\n"
	    "{\"event\": \"NIC_RX_FILTER_CHANGED\", \"data\": {}}\r\n"
	    "{\"return\": {\"status\": \"running\", \"singlestep\": false, \"running\": true}, "
	    "\"id\": 2}\r\n"
	    "{\"event\": \"SHUTDOWN\", \"data\": {\"guest\": true}}\r\n");
	json_object *ret = NULL, *st = NULL;
	CHECK_INTEQ(qmp_execute(q, "query-status", NULL, &ret), 0, "reply found among events");
	CHECK(ret && json_object_object_get_ex(ret, "status", &st) &&
		      streq(json_object_get_string(st), "running"),
	      "the reply with our id, not the stale one");
	CHECK_INTEQ(qmp_events_skipped(q), 3, "two events and one stale reply skipped");
	json_object_put(ret);
	sent = drain(sv[1]);
	CHECK(strstr(sent, "\"execute\":\"query-status\"") && strstr(sent, "\"id\":2"),
	      "command sent with id 2");

	/* The trailing SHUTDOWN event is still buffered; the next reply follows it. */
	put(sv[1],
	    "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"The command nope has not "
	    "been found\"}, \"id\": 3}\r\n");
	CHECK_INTEQ(qmp_execute(q, "nope", NULL, NULL), -EOPNOTSUPP, "CommandNotFound");
	CHECK_STREQ(qmp_last_error(q), "The command nope has not been found", "error desc kept");

	json_object *args = json_object_new_object();
	json_object_object_add(args, "keys", json_object_new_array());
	put(sv[1],
	    "{\"error\": {\"class\": \"GenericError\", \"desc\": \"bad keys\"}, \"id\": 4}\n");
	CHECK_INTEQ(qmp_execute(q, "send-key", args, NULL), -EREMOTEIO, "GenericError");
	sent = drain(sv[1]);
	CHECK(strstr(sent, "\"arguments\":{\"keys\":[]}") != NULL, "arguments sent");
	json_object_put(args);
	close(sv[1]);
}

/* getfd: the fd travels with the command (SCM_RIGHTS), as QEMU expects. */
static void test_qmp_getfd(void)
{
	int sv[2], pipefd[2];
	socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
	CHECK_INTEQ(pipe2(pipefd, O_CLOEXEC), 0, "pipe");
	_cleanup_qmp_ QmpClient *q = NULL;
	qmp_client_from_fd(sv[0], 1000, &q);
	put(sv[1], "{\"return\": {}, \"id\": 1}\r\n");
	CHECK_INTEQ(qmp_getfd(q, "banger-state", pipefd[1]), 0, "getfd answered");
	char buf[512] = { 0 };
	union {
		char c[CMSG_SPACE(sizeof(int))];
		struct cmsghdr a;
	} u;
	struct iovec iov = { buf, sizeof(buf) - 1 };
	struct msghdr m = {
		.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.c, .msg_controllen = sizeof(u.c)
	};
	ssize_t n = recvmsg(sv[1], &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	struct cmsghdr *h = n > 0 ? CMSG_FIRSTHDR(&m) : NULL;
	int got = -1;
	if (h && h->cmsg_type == SCM_RIGHTS)
		memcpy(&got, CMSG_DATA(h), sizeof(int));
	CHECK(got >= 0, "an fd arrived with the command");
	/* The rest of the line follows the first byte. */
	size_t have = n > 0 ? (size_t)n : 0;
	ssize_t more = recv(sv[1], buf + have, sizeof(buf) - 1 - have, MSG_DONTWAIT);
	(void)more;
	CHECK(strstr(buf, "\"execute\":\"getfd\"") && strstr(buf, "\"fdname\":\"banger-state\""),
	      "getfd with its fdname");
	if (got >= 0) {
		CHECK_INTEQ(write(got, "x", 1), 1, "the fd is the pipe's write end");
		char c = 0;
		CHECK(read(pipefd[0], &c, 1) == 1 && c == 'x', "...data arrives through it");
		close(got);
	}
	close(pipefd[0]);
	close(pipefd[1]);
	close(sv[1]);
}

static void test_argv_incoming(void)
{
	VmmLaunchConfig c = base_config();
	_cleanup_strv_free_ char **v = NULL, **w = NULL;
	CHECK_INTEQ(qemu_build_argv(&c, &disks, "/q", false, 0, &v), 0, "boot argv");
	CHECK_INTEQ(find_arg(v, "-incoming"), -1, "a boot has no -incoming");
	c.incoming_dir = "/vm/suspend";
	CHECK_INTEQ(qemu_build_argv(&c, &disks, "/q", false, 0, &w), 0, "restore argv");
	CHECK_STREQ(arg_after(w, "-incoming", 0), "defer",
		    "restore waits for the state over QMP (an fd), never exec:");
	CHECK_INTEQ(strv_length(w), strv_length(v) + 2, "...and is otherwise the same machine");
}

/* A peer that dribbles a reply in pieces with pauses, as a slow QEMU might. */
static void test_qmp_split(void)
{
	int sv[2];
	socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
	pid_t pid = fork();
	if (pid == 0) {
		const char *pieces[] = { "{\"QMP\": {\"version\"", ": {}}}\r", "\n{\"ret",
					 "urn\": {}}\r\n{\"event\": \"X\"}\r\n{\"return\": [1,",
					 " 2, 3]}\r\n" };
		close(sv[0]);
		for (size_t i = 0; i < ELEMENTSOF(pieces); i++) {
			put(sv[1], pieces[i]);
			usleep(20000);
		}
		char b[256];
		while (read(sv[1], b, sizeof(b)) >
		       0) /* keep the peer open until the client closes */
			;
		_exit(0);
	}
	close(sv[1]);
	_cleanup_qmp_ QmpClient *q = NULL;
	qmp_client_from_fd(sv[0], 2000, &q);
	CHECK_INTEQ(qmp_handshake(q), 0, "handshake from split lines");
	json_object *ret = NULL;
	CHECK_INTEQ(qmp_execute(q, "query-cpus-fast", NULL, &ret), 0, "reply split across writes");
	CHECK(ret && json_object_is_type(ret, json_type_array) &&
		      json_object_array_length(ret) == 3,
	      "array reply intact");
	json_object_put(ret);
	qmp_close(TAKE_PTR(q));
	waitpid(pid, NULL, 0);
}

static void test_qmp_failures(void)
{
	int sv[2];
	_cleanup_qmp_ QmpClient *q = NULL;

	socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
	qmp_client_from_fd(sv[0], 1000, &q);
	put(sv[1], "{\"hello\": 1}\n");
	CHECK_INTEQ(qmp_handshake(q), -EPROTO, "greeting without QMP key");
	qmp_close(TAKE_PTR(q));
	close(sv[1]);

	socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
	qmp_client_from_fd(sv[0], 1000, &q);
	put(sv[1], "not json at all\n");
	CHECK_INTEQ(qmp_handshake(q), -EPROTO, "garbage greeting");
	qmp_close(TAKE_PTR(q));
	close(sv[1]);

	socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
	qmp_client_from_fd(sv[0], 150, &q);
	put(sv[1], greeting);
	put(sv[1], "{\"return\": {}}\n{\"event\": \"STOP\"}\n");
	CHECK_INTEQ(qmp_handshake(q), 0, "reply without id accepted");
	uint64_t t0 = time_now_ms();
	CHECK_INTEQ(qmp_execute(q, "query-status", NULL, NULL), -ETIMEDOUT,
		    "silent peer times out");
	uint64_t dt = time_now_ms() - t0;
	CHECK(dt >= 140 && dt < 1000, "timeout honoured (%llu ms)", (unsigned long long)dt);
	shutdown(sv[1], SHUT_WR);
	CHECK_INTEQ(qmp_execute(q, "query-status", NULL, NULL), -ECONNRESET, "EOF reported");
	close(sv[1]);
	CHECK_INTEQ(qmp_execute(q, "query-status", NULL, NULL), -EPIPE, "closed peer reported");
	qmp_close(TAKE_PTR(q));

	CHECK_INTEQ(qmp_connect("/nonexistent/banger-qmp.sock", 100, &q), -ENOENT,
		    "connect to a missing socket");
	CHECK(q == NULL, "no client on failure");
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	test_argv_minimal();
	test_argv_console_file();
	test_argv_full();
	test_argv_invalid();
	test_argv_confined();
	test_escape();
	test_disks_open();
	test_tsc();
	test_qmp_interleaved();
	test_qmp_split();
	test_qmp_failures();
	test_qmp_getfd();
	test_argv_incoming();
	return tap_done();
}
