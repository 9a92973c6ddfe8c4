/* test_firecracker.c — the Firecracker driver's pure parts: argv (plain and
 * jailer), request bodies and their order, jail paths, error parsing, and
 * the operations' answers when there is nothing to talk to. */
#include "tap.h"
#include "util/util.h"
#include "vmm/fc_api.h"
#include "vmm/firecracker.h"

#include "util/fileio.h"

#include <stdio.h>
#include <sys/stat.h>

static void touch(const char *path);

static const VmmSettings plain_settings = { 0 };
static const VmmSettings jail_settings = {
	.jailer_bin = "/usr/bin/jailer",
	.jailer_uid = 123,
	.jailer_gid = 100,
	.chroot_base = "/srv/jail",
};

static VmmLaunchConfig base_config(const VmmSettings *s)
{
	return (VmmLaunchConfig){
		.settings = s,
		.name = "web",
		.vm_id = "0a1b2c",
		.vm_dir = "/var/lib/banger/vms/web",
		.api_sock = "/var/lib/banger/vms/web/api.sock",
		.log_path = "/var/lib/banger/vms/web/vmm.log",
		.kernel_path = "/img/vmlinux",
		.root_disk = "/var/lib/banger/vms/web/root.img",
		.vcpus = 2,
		.memory_mib = 256,
	};
}

static char *join(char **v)
{
	char *out = xstrdup("");
	for (size_t i = 0; v && v[i]; i++) {
		char *n = xasprintf("%s%s%s", out, i ? " " : "", v[i]);
		free(out);
		out = n;
	}
	return out;
}

static void test_argv(void)
{
	VmmLaunchConfig c = base_config(&plain_settings);
	_cleanup_strv_free_ char **v = fc_argv("/usr/bin/firecracker", &c);
	_cleanup_free_ char *s = join(v);
	CHECK_STREQ(s,
		    "/usr/bin/firecracker --api-sock /var/lib/banger/vms/web/api.sock --id 0a1b2c",
		    "plain argv");
	CHECK(v[5] == NULL, "plain argv is NULL-terminated after 5 words");

	c = base_config(&jail_settings);
	_cleanup_strv_free_ char **j = fc_jailer_argv("/usr/bin/jailer", "/opt/fc/firecracker", &c);
	_cleanup_free_ char *js = join(j);
	CHECK_STREQ(
		js,
		"/usr/bin/jailer --id 0a1b2c --exec-file /opt/fc/firecracker --uid 123 --gid 100 "
		"--chroot-base-dir /srv/jail -- --api-sock /api.sock",
		"jailer argv: jailer flags, then -- and only the in-jail socket");

	VmmSettings dflt = jail_settings;
	dflt.chroot_base = NULL;
	c.settings = &dflt;
	_cleanup_strv_free_ char **d = fc_jailer_argv("jailer", "/fc/firecracker", &c);
	CHECK_STREQ(d[10], "/srv/jailer", "jailer default chroot base");
}

/* The VM's own user wins over --jailer-uid/--jailer-gid, which remain the
 * fallback only when the VM has none. */
static void test_jail_user(void)
{
	VmmLaunchConfig c = base_config(&jail_settings);
	uid_t u;
	gid_t g;
	fc_jail_user(&c, &u, &g);
	CHECK(u == 123 && g == 100, "no per-VM user: --jailer-uid/--jailer-gid");
	c.vmm_uid = 70001;
	c.vmm_gid = 70001;
	fc_jail_user(&c, &u, &g);
	CHECK(u == 70001 && g == 70001, "per-VM user wins");
	_cleanup_strv_free_ char **j = fc_jailer_argv("/usr/bin/jailer", "/opt/fc/firecracker", &c);
	_cleanup_free_ char *js = join(j);
	CHECK(strstr(js, "--uid 70001 --gid 70001") != NULL,
	      "jailer argv carries the VM's user: %s", js);
	int tu = vmm_firecracker_driver.tap_user(&c, &u, &g);
	CHECK(tu == 1 && u == 70001 && g == 70001, "jailed firecracker opens its tap as that user");
	VmmLaunchConfig plain = base_config(&plain_settings);
	CHECK_INTEQ(vmm_firecracker_driver.tap_user(&plain, &u, &g), 0,
		    "unjailed firecracker (root) needs no tap owner");
}

/* A dm-snapshot root disk is a block device: the jail gets its own node
 * (mknod, same device number), owned by the jail user; a hard link from
 * devtmpfs into the chroot base would fail with EXDEV. Any block device
 * shows it; a loop device node exists on every test host. */
static void test_jail_block_device(void)
{
	struct stat bs;
	const char *blk = "/dev/loop0";
	if (geteuid() != 0 || stat(blk, &bs) < 0 || !S_ISBLK(bs.st_mode)) {
		printf("# skipped (not counted): block device node in the jail needs root and %s\n",
		       blk);
		return;
	}
	char tmpl[] = "/tmp/fc-jail-blk.XXXXXX";
	const char *dir = mkdtemp(tmpl);
	CHECK(dir != NULL, "temp dir");
	if (!dir)
		return;
	_cleanup_free_ char *kernel = path_join(dir, "vmlinux");
	_cleanup_free_ char *sock = path_join(dir, "api.sock");
	_cleanup_free_ char *base = path_join(dir, "jails");
	touch(kernel);
	VmmSettings s = jail_settings;
	s.chroot_base = base;
	VmmLaunchConfig c = base_config(&s);
	c.kernel_path = kernel;
	c.root_disk = blk;
	c.api_sock = sock;
	c.vmm_uid = 70002;
	c.vmm_gid = 70003;
	_cleanup_free_ char *jail = fc_jail_root(&s, "/usr/bin/firecracker", c.vm_id);
	CHECK_INTEQ(fc_jail_prepare(&c, jail), 0, "jail with a block-device root disk prepared");
	_cleanup_free_ char *jr = xasprintf("%s%s", jail, FC_JAIL_ROOT_DISK);
	struct stat st;
	CHECK(lstat(jr, &st) == 0 && S_ISBLK(st.st_mode) && st.st_rdev == bs.st_rdev,
	      "root disk in the jail is a block node of the same device");
	CHECK(st.st_ino != bs.st_ino, "... its own node, not a link to %s", blk);
	CHECK(st.st_uid == 70002 && st.st_gid == 70003 && (st.st_mode & 07777) == 0600,
	      "... owned by the VM's user, mode 0600");
	rm_rf(dir);
}

static void test_jail_paths(void)
{
	_cleanup_free_ char *root = fc_jail_root(&jail_settings, "/opt/fc/firecracker-v1", "0a1b");
	CHECK_STREQ(root, "/srv/jail/firecracker-v1/0a1b/root", "jail root uses exec file name");
	_cleanup_free_ char *root2 = fc_jail_root(&plain_settings, "firecracker", "x");
	CHECK_STREQ(root2, "/srv/jailer/firecracker/x/root", "jail root default base");

	CHECK(fc_jailer_id_valid("0a1b-2C"), "jailer id: alnum and hyphen");
	CHECK(!fc_jailer_id_valid(""), "jailer id: empty refused");
	CHECK(!fc_jailer_id_valid("a/b"), "jailer id: slash refused");
	CHECK(!fc_jailer_id_valid("a_b"), "jailer id: underscore refused");
	char longid[66];
	memset(longid, 'a', 65);
	longid[65] = 0;
	CHECK(!fc_jailer_id_valid(longid), "jailer id: 65 chars refused");
	longid[64] = 0;
	CHECK(fc_jailer_id_valid(longid), "jailer id: 64 chars accepted");

	VmmLaunchConfig c = base_config(&jail_settings);
	c.initrd_path = "/img/initrd";
	FcGuestPaths gp;
	fc_guest_paths(&c, true, &gp);
	CHECK_STREQ(gp.kernel, "/vmlinux", "jailed kernel path");
	CHECK_STREQ(gp.initrd, "/initrd", "jailed initrd path");
	CHECK_STREQ(gp.root_disk, "/rootfs", "jailed root disk path");
	CHECK(gp.work_disk == NULL, "no work disk, none in jail");
	fc_guest_paths_done(&gp);
	fc_guest_paths(&c, false, &gp);
	CHECK_STREQ(gp.kernel, "/img/vmlinux", "plain kernel path is the host path");
	CHECK_STREQ(gp.root_disk, c.root_disk, "plain root disk path is the host path");
	fc_guest_paths_done(&gp);
}

static bool same_inode(const char *a, const char *b)
{
	struct stat sa, sb;
	return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_ino == sb.st_ino &&
	       sa.st_dev == sb.st_dev;
}

static void touch(const char *path)
{
	int r = write_file_atomic(path, "x", 1, 0644);
	if (r < 0)
		printf("# cannot create %s: %s\n", path, strerror(-r));
}

/* Real files in a temp dir: the jail gets hard links under the fixed names,
 * disks owned by the jailer uid, and api_sock points into the jail. */
static void test_jail_prepare(void)
{
	char tmpl[] = "/tmp/fc-jail-test.XXXXXX";
	const char *dir = mkdtemp(tmpl);
	CHECK(dir != NULL, "temp dir");
	if (!dir)
		return;
	_cleanup_free_ char *kernel = path_join(dir, "vmlinux.src");
	_cleanup_free_ char *root = path_join(dir, "root.img");
	_cleanup_free_ char *work = path_join(dir, "work.img");
	_cleanup_free_ char *sock = path_join(dir, "api.sock");
	_cleanup_free_ char *base = path_join(dir, "jails");
	touch(kernel);
	touch(root);
	touch(work);
	VmmSettings s = jail_settings;
	s.chroot_base = base;
	/* chown to another uid needs root; otherwise "chown" to ourselves. */
	bool root_user = geteuid() == 0;
	s.jailer_uid = root_user ? 4242 : getuid();
	s.jailer_gid = root_user ? 4343 : getgid();
	VmmLaunchConfig c = base_config(&s);
	c.kernel_path = kernel;
	c.root_disk = root;
	c.work_disk = work;
	c.api_sock = sock;
	_cleanup_free_ char *jail = fc_jail_root(&s, "/usr/bin/firecracker", c.vm_id);
	_cleanup_free_ char *stale = xasprintf("%s/stale-file", jail);
	mkdir_p(jail, 0755);
	touch(stale);

	int r = fc_jail_prepare(&c, jail);
	CHECK_INTEQ(r, 0, "jail prepared");
	_cleanup_free_ char *jk = xasprintf("%s%s", jail, FC_JAIL_KERNEL);
	_cleanup_free_ char *jr = xasprintf("%s%s", jail, FC_JAIL_ROOT_DISK);
	_cleanup_free_ char *jw = xasprintf("%s%s", jail, FC_JAIL_WORK_DISK);
	_cleanup_free_ char *ji = xasprintf("%s%s", jail, FC_JAIL_INITRD);
	CHECK(same_inode(kernel, jk), "kernel hard-linked as /vmlinux");
	CHECK(same_inode(root, jr), "root disk hard-linked as /rootfs");
	CHECK(same_inode(work, jw), "work disk hard-linked as /work");
	CHECK(access(ji, F_OK) < 0, "no initrd configured, none linked");
	CHECK(access(stale, F_OK) < 0, "an old jail's files are gone");
	struct stat st;
	CHECK(stat(jr, &st) == 0 && st.st_uid == s.jailer_uid && st.st_gid == s.jailer_gid,
	      "root disk owned by the jailer uid:gid");
	if (root_user)
		CHECK(stat(jk, &st) == 0 && st.st_uid != 4242, "kernel ownership untouched");
	char target[512];
	ssize_t n = readlink(sock, target, sizeof(target) - 1);
	target[n > 0 ? n : 0] = 0;
	_cleanup_free_ char *want = xasprintf("%s%s", jail, FC_JAIL_API_SOCK);
	CHECK_STREQ(target, want, "api_sock is a symlink to the socket in the jail");
	rm_rf(dir);
}

static void test_bodies(void)
{
	_cleanup_free_ char *b1 = fc_json_boot_source("/k/vmlinux", "console=ttyS0", NULL);
	CHECK_STREQ(b1, "{\"kernel_image_path\":\"/k/vmlinux\",\"boot_args\":\"console=ttyS0\"}",
		    "boot-source without initrd (slashes not escaped)");
	_cleanup_free_ char *b2 = fc_json_boot_source("/k", "a \"q\"", "/i");
	CHECK_STREQ(
		b2,
		"{\"kernel_image_path\":\"/k\",\"boot_args\":\"a \\\"q\\\"\",\"initrd_path\":\"/i\"}",
		"boot-source with initrd, quotes escaped");
	_cleanup_free_ char *d1 = fc_json_drive("rootfs", "/d/root.img", true);
	CHECK_STREQ(d1,
		    "{\"drive_id\":\"rootfs\",\"path_on_host\":\"/d/root.img\","
		    "\"is_root_device\":true,\"is_read_only\":false}",
		    "root drive");
	_cleanup_free_ char *d2 = fc_json_drive("work", "/d/work.img", false);
	CHECK_STREQ(d2,
		    "{\"drive_id\":\"work\",\"path_on_host\":\"/d/work.img\","
		    "\"is_root_device\":false,\"is_read_only\":false}",
		    "work drive");
	_cleanup_free_ char *m = fc_json_machine_config(4, 1024);
	CHECK_STREQ(m, "{\"vcpu_count\":4,\"mem_size_mib\":1024}", "machine-config");
	_cleanup_free_ char *n1 = fc_json_network_interface("eth0", "tap-web", "aa:bb:cc:dd:ee:ff");
	CHECK_STREQ(n1,
		    "{\"iface_id\":\"eth0\",\"host_dev_name\":\"tap-web\","
		    "\"guest_mac\":\"aa:bb:cc:dd:ee:ff\"}",
		    "network interface with mac");
	_cleanup_free_ char *n2 = fc_json_network_interface("eth0", "tap-web", NULL);
	CHECK_STREQ(n2, "{\"iface_id\":\"eth0\",\"host_dev_name\":\"tap-web\"}",
		    "network interface without mac");
	_cleanup_free_ char *a = fc_json_action("SendCtrlAltDel");
	CHECK_STREQ(a, "{\"action_type\":\"SendCtrlAltDel\"}", "action");
}

static void test_plan_minimal(void)
{
	VmmLaunchConfig c = base_config(&plain_settings);
	FcGuestPaths gp;
	FcBootPlan p;
	fc_guest_paths(&c, false, &gp);
	fc_boot_plan(&c, &gp, &p);
	CHECK_INTEQ(p.n, 4, "no network/initrd/work disk: 4 calls");
	CHECK_STREQ(p.req[0].path, "/boot-source", "1st boot-source");
	CHECK_STREQ(
		p.req[0].body,
		"{\"kernel_image_path\":\"/img/vmlinux\",\"boot_args\":\"console=ttyS0 reboot=k "
		"panic=-1 root=/dev/vda rw " FC_VMM_ARGS "\"}",
		"boot args: shared cmdline + firecracker args, no ip=, no initrd");
	CHECK_STREQ(p.req[1].path, "/drives/rootfs", "2nd root drive");
	CHECK_STREQ(p.req[2].path, "/machine-config", "3rd machine-config");
	CHECK_STREQ(p.req[2].body, "{\"vcpu_count\":2,\"mem_size_mib\":256}",
		    "machine-config body");
	CHECK_STREQ(p.req[3].path, "/actions", "last actions");
	CHECK_STREQ(p.req[3].body, "{\"action_type\":\"InstanceStart\"}", "InstanceStart last");
	for (size_t i = 0; i < p.n; i++)
		CHECK_STREQ(p.req[i].method, "PUT", "call %zu is a PUT", i);
	fc_boot_plan_done(&p);
	fc_guest_paths_done(&gp);
}

static void test_plan_full(void)
{
	VmmLaunchConfig c = base_config(&plain_settings);
	c.initrd_path = "/img/initrd";
	c.work_disk = "/w/work.img";
	c.tap = "tap-web";
	c.mac = "02:00:00:00:00:01";
	c.guest_ip = "10.0.0.2";
	c.gateway_ip = "10.0.0.1";
	c.prefix_len = 24;
	c.user_args = "quiet";
	FcGuestPaths gp;
	FcBootPlan p;
	fc_guest_paths(&c, false, &gp);
	fc_boot_plan(&c, &gp, &p);
	const char *order[] = { "/boot-source",    "/drives/rootfs",           "/drives/work",
				"/machine-config", "/network-interfaces/eth0", "/actions" };
	CHECK_INTEQ(p.n, ELEMENTSOF(order), "everything configured: 6 calls");
	for (size_t i = 0; i < p.n && i < ELEMENTSOF(order); i++)
		CHECK_STREQ(p.req[i].path, order[i], "call %zu in order", i);
	CHECK(strstr(p.req[0].body, "\"initrd_path\":\"/img/initrd\"") != NULL, "initrd passed");
	CHECK(strstr(p.req[0].body, "ip=10.0.0.2::10.0.0.1:255.255.255.0:web:eth0:off quiet\"") !=
		      NULL,
	      "ip= then user args at the end of boot_args");
	CHECK(strstr(p.req[2].body, "\"path_on_host\":\"/w/work.img\"") != NULL, "work disk path");
	CHECK(strstr(p.req[2].body, "\"is_root_device\":false") != NULL, "work disk not root");
	CHECK_STREQ(p.req[4].body,
		    "{\"iface_id\":\"eth0\",\"host_dev_name\":\"tap-web\","
		    "\"guest_mac\":\"02:00:00:00:00:01\"}",
		    "eth0 on the tap with the guest mac");
	fc_boot_plan_done(&p);
	fc_guest_paths_done(&gp);
}

static void test_errors(void)
{
	_cleanup_free_ char *e1 =
		fc_api_error_message(400, "{\"fault_message\":\"The vCPU number is invalid!\"}");
	CHECK_STREQ(e1, "HTTP 400: The vCPU number is invalid!", "fault_message extracted");
	_cleanup_free_ char *e2 = fc_api_error_message(500, "oops not json");
	CHECK_STREQ(e2, "HTTP 500: oops not json", "non-JSON body shown as is");
	_cleanup_free_ char *e3 = fc_api_error_message(404, "");
	CHECK_STREQ(e3, "HTTP 404", "empty body");
	_cleanup_free_ char *e4 = fc_api_error_message(400, "{\"fault_message\":7}");
	CHECK_STREQ(e4, "HTTP 400: {\"fault_message\":7}", "non-string fault_message: raw body");

	FcApiResponse r;
	char longp[200];
	memset(longp, 'x', sizeof(longp) - 1);
	longp[0] = '/';
	longp[sizeof(longp) - 1] = 0;
	CHECK_INTEQ(fc_api_request(longp, "GET", "/", NULL, 100, &r), -ENAMETOOLONG,
		    "socket path longer than sun_path");
	CHECK(r.error != NULL, "... with a message");
	fc_api_response_done(&r);
	CHECK_INTEQ(fc_api_request("/nonexistent/fc.sock", "GET", "/", NULL, 100, &r), -ENOENT,
		    "missing socket -> -ENOENT");
	CHECK(r.error && strstr(r.error, "GET /"), "... message names the request");
	fc_api_response_done(&r);
}

static void test_driver_without_process(void)
{
	const VmmDriver *d = &vmm_firecracker_driver;
	VmmSettings s = { .firecracker_bin = "/nonexistent/firecracker" };
	CHECK_STREQ(d->name, "firecracker", "driver name");
	/* CHECK evaluates its condition twice: call first, check the result. */
	bool av = d->available(&s);
	CHECK(!av, "unavailable without the binary");
	s.firecracker_bin = "/bin/true";
	av = d->available(&s);
	CHECK(av, "available with an executable");
	s.jailer_bin = "/nonexistent/jailer";
	av = d->available(&s);
	CHECK(!av, "unavailable when the configured jailer is missing");

	VmmProcess p = { .pid = 1, .start_time = 123456789 };
	CHECK_INTEQ(d->kill(&p), -ESRCH, "kill refuses a pid whose start time differs");
	CHECK_INTEQ(d->find("/nonexistent/fc.sock", &p), -ESRCH, "find: no socket -> -ESRCH");
	char *json = NULL;
	int r = d->describe("/nonexistent/fc.sock", &json);
	CHECK(r == -ENOENT && json == NULL, "describe: -ENOENT without a socket, output untouched");
	r = d->request_stop("/nonexistent/fc.sock");
	CHECK_INTEQ(r, -ENOENT, "request_stop: -ENOENT without a socket");
}

int main(void)
{
	test_argv();
	test_jail_user();
	test_jail_paths();
	test_jail_prepare();
	test_jail_block_device();
	test_bodies();
	test_plan_minimal();
	test_plan_full();
	test_errors();
	test_driver_without_process();
	return tap_done();
}
