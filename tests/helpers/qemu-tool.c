/* qemu-tool — a CLI over vmm_qemu_driver, for integration tests.
 *
 *   qemu-tool available
 *   qemu-tool launch --name N --api-sock P --console P --log P --kernel P
 *             --root P [--root-format raw|qcow2 [--root-base P]] [--initrd P] [--work P]
 *             [--tap T --mac M --ip A --gw A --prefix N] [--vcpus N] [--mem MiB]
 *             [--args S] [--vm-dir D] [--qemu-bin P]
 *        prints "pid=<pid> start_time=<ticks>"
 *   qemu-tool stop SOCK          request_stop (Ctrl-Alt-Del)
 *   qemu-tool kill PID START     kill after identity check
 *   qemu-tool find SOCK          prints "pid=<pid> start_time=<ticks>"
 *   qemu-tool describe SOCK      prints the JSON description
 *
 * Exit status: 0 ok, 3 for -ESRCH (gone / not found), 1 other errors. */
#include "util/log.h"
#include "vmm/vmm.h"

#include <getopt.h>
#include <stdio.h>

static int exit_code(int r)
{
	if (r >= 0)
		return 0;
	fprintf(stderr, "qemu-tool: %s\n", strerror(-r));
	return r == -ESRCH ? 3 : 1;
}

static unsigned parse_uint(const char *s)
{
	uint64_t v;
	if (parse_u64(s, 0, UINT32_MAX, &v) < 0) {
		fprintf(stderr, "qemu-tool: bad number '%s'\n", s);
		exit(2);
	}
	return (unsigned)v;
}

static int cmd_launch(int argc, char **argv)
{
	static VmmSettings settings;
	VmmLaunchConfig c = {
		.settings = &settings, .vm_id = "0", .vcpus = 1, .memory_mib = 256, .prefix_len = 24
	};
	static const struct option opts[] = {
		{ "name", 1, NULL, 'n' },
		{ "api-sock", 1, NULL, 's' },
		{ "console", 1, NULL, 'c' },
		{ "log", 1, NULL, 'l' },
		{ "kernel", 1, NULL, 'k' },
		{ "root", 1, NULL, 'r' },
		{ "root-format", 1, NULL, 'f' },
		{ "root-base", 1, NULL, 'b' },
		{ "initrd", 1, NULL, 'i' },
		{ "work", 1, NULL, 'w' },
		{ "tap", 1, NULL, 't' },
		{ "mac", 1, NULL, 'm' },
		{ "ip", 1, NULL, 'a' },
		{ "gw", 1, NULL, 'g' },
		{ "prefix", 1, NULL, 'p' },
		{ "vcpus", 1, NULL, 'v' },
		{ "mem", 1, NULL, 'M' },
		{ "args", 1, NULL, 'A' },
		{ "vm-dir", 1, NULL, 'd' },
		{ "qemu-bin", 1, NULL, 'q' },
		{ 0 },
	};
	int o;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'n': c.name = optarg; break;
		case 's': c.api_sock = optarg; break;
		case 'c': c.console_path = optarg; break;
		case 'l': c.log_path = optarg; break;
		case 'k': c.kernel_path = optarg; break;
		case 'r': c.root_disk = optarg; break;
		case 'f': c.root_disk_format = optarg; break;
		case 'b': c.root_disk_base = optarg; break;
		case 'i': c.initrd_path = optarg; break;
		case 'w': c.work_disk = optarg; break;
		case 't': c.tap = optarg; break;
		case 'm': c.mac = optarg; break;
		case 'a': c.guest_ip = optarg; break;
		case 'g': c.gateway_ip = optarg; break;
		case 'p': c.prefix_len = parse_uint(optarg); break;
		case 'v': c.vcpus = parse_uint(optarg); break;
		case 'M': c.memory_mib = parse_uint(optarg); break;
		case 'A': c.user_args = optarg; break;
		case 'd': c.vm_dir = optarg; break;
		case 'q': settings.qemu_bin = optarg; break;
		default: return 2;
		}
	}
	VmmProcess p;
	int r = vmm_qemu_driver.launch(&c, &p);
	if (r >= 0)
		printf("pid=%d start_time=%llu\n", (int)p.pid, (unsigned long long)p.start_time);
	return exit_code(r);
}

int main(int argc, char **argv)
{
	log_setup(getenv("QEMU_TOOL_DEBUG") ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO, LOG_FORMAT_TEXT,
		  "qemu-tool");
	if (argc < 2) {
		fprintf(stderr, "usage: qemu-tool available|launch|stop|kill|find|describe ...\n");
		return 2;
	}
	const char *cmd = argv[1];
	if (streq(cmd, "available"))
		return vmm_qemu_driver.available(&(VmmSettings){ 0 }) ? 0 : 1;
	if (streq(cmd, "launch"))
		return cmd_launch(argc - 1, argv + 1);
	if (streq(cmd, "stop") && argc == 3)
		return exit_code(vmm_qemu_driver.request_stop(argv[2]));
	if (streq(cmd, "kill") && argc == 4) {
		VmmProcess p = { .pid = (pid_t)parse_uint(argv[2]) };
		if (parse_u64(argv[3], 0, UINT64_MAX, &p.start_time) < 0)
			return 2;
		return exit_code(vmm_qemu_driver.kill(&p));
	}
	if (streq(cmd, "find") && argc == 3) {
		VmmProcess p;
		int r = vmm_qemu_driver.find(argv[2], &p);
		if (r >= 0)
			printf("pid=%d start_time=%llu\n", (int)p.pid,
			       (unsigned long long)p.start_time);
		return exit_code(r);
	}
	if (streq(cmd, "describe") && argc == 3) {
		char *json = NULL;
		int r = vmm_qemu_driver.describe(argv[2], &json);
		if (r >= 0)
			printf("%s\n", json);
		free(json);
		return exit_code(r);
	}
	fprintf(stderr, "qemu-tool: unknown command or wrong arguments: %s\n", cmd);
	return 2;
}
