/* fc-tool — drive vmm_firecracker_driver from the command line, for the
 * integration tests. The firecracker binary is --fc-bin or
 * $BANGER_FIRECRACKER_BIN (default: "firecracker" from PATH).
 *
 *   fc-tool [--fc-bin P] available            exit 0 when available
 *   fc-tool [--fc-bin P] launch --name N --id ID --dir D --sock S --log L
 *           --kernel K --rootfs R [--console C] [--initrd I] [--work W]
 *           [--tap T --mac M --ip A --gw G --prefix N] [--args "..."]
 *           [--vcpus N] [--mem MiB]       prints "<pid> <start_time>"
 *   fc-tool find SOCK                         prints "<pid> <start_time>"
 *   fc-tool describe SOCK                     prints the JSON
 *   fc-tool stop SOCK                         SendCtrlAltDel
 *   fc-tool launched SOCK PID START           prints 1 (booted), 0 (never got
 *                                             InstanceStart) or fails (-errno)
 *   fc-tool kill PID START
 *   fc-tool wait PID START TIMEOUT_MS         exit 0 once the process is gone */
#include "util/log.h"
#include "util/proc.h"
#include "vmm/vmm.h"

#include <stdio.h>

static const VmmDriver *drv = &vmm_firecracker_driver;

static int usage(void)
{
	fprintf(stderr, "usage: fc-tool [--fc-bin P] available|launch ...|find|describe|stop SOCK|"
			"kill PID START|wait PID START MS\n");
	return 2;
}

static unsigned to_unsigned(const char *s)
{
	uint64_t v = 0;
	if (parse_u64(s, 0, UINT32_MAX, &v) < 0) {
		fprintf(stderr, "fc-tool: not a number: %s\n", s);
		exit(2);
	}
	return (unsigned)v;
}

/* Map "--key value" pairs onto the launch config; unknown keys are errors. */
static int parse_launch(int argc, char **argv, VmmLaunchConfig *c)
{
	for (int i = 0; i + 1 < argc; i += 2) {
		const char *k = argv[i], *v = argv[i + 1];
		struct {
			const char *key;
			const char **field;
		} map[] = {
			{ "--name", &c->name },
			{ "--id", &c->vm_id },
			{ "--dir", &c->vm_dir },
			{ "--sock", &c->api_sock },
			{ "--log", &c->log_path },
			{ "--console", &c->console_path },
			{ "--kernel", &c->kernel_path },
			{ "--initrd", &c->initrd_path },
			{ "--rootfs", &c->root_disk },
			{ "--work", &c->work_disk },
			{ "--tap", &c->tap },
			{ "--mac", &c->mac },
			{ "--ip", &c->guest_ip },
			{ "--gw", &c->gateway_ip },
			{ "--args", &c->user_args },
		};
		bool found = false;
		for (size_t j = 0; j < ELEMENTSOF(map) && !found; j++)
			if (streq(k, map[j].key)) {
				*map[j].field = v;
				found = true;
			}
		if (found)
			continue;
		if (streq(k, "--vcpus"))
			c->vcpus = to_unsigned(v);
		else if (streq(k, "--mem"))
			c->memory_mib = to_unsigned(v);
		else if (streq(k, "--prefix"))
			c->prefix_len = to_unsigned(v);
		else
			return -EINVAL;
	}
	if (argc % 2 || !c->name || !c->vm_id || !c->vm_dir || !c->api_sock || !c->log_path ||
	    !c->kernel_path || !c->root_disk)
		return -EINVAL;
	return 0;
}

static int cmd_launch(const VmmSettings *s, int argc, char **argv)
{
	VmmLaunchConfig c = { .settings = s,
			      .root_disk_format = "raw",
			      .vcpus = 1,
			      .memory_mib = 128,
			      .prefix_len = 24 };
	VmmProcess p;
	if (parse_launch(argc, argv, &c) < 0)
		return usage();
	int r = drv->launch(&c, &p);
	if (r < 0) {
		fprintf(stderr, "fc-tool: launch failed: %s\n", strerror(-r));
		return 1;
	}
	printf("%d %llu\n", (int)p.pid, (unsigned long long)p.start_time);
	return 0;
}

static int cmd_on_process(const char *cmd, int argc, char **argv)
{
	VmmProcess p = { .pid = (pid_t)to_unsigned(argv[0]) };
	uint64_t st;
	if (parse_u64(argv[1], 0, UINT64_MAX, &st) < 0)
		return usage();
	p.start_time = st;
	if (streq(cmd, "kill")) {
		int r = drv->kill(&p);
		if (r < 0)
			fprintf(stderr, "fc-tool: kill: %s\n", strerror(-r));
		return r < 0 ? 1 : 0;
	}
	if (argc < 3)
		return usage();
	return proc_wait_exit(p.pid, p.start_time, to_unsigned(argv[2])) < 0 ? 1 : 0;
}

static int cmd_on_socket(const char *cmd, const char *sock)
{
	int r;
	if (streq(cmd, "find")) {
		VmmProcess p;
		r = drv->find(sock, &p);
		if (r >= 0)
			printf("%d %llu\n", (int)p.pid, (unsigned long long)p.start_time);
	} else if (streq(cmd, "describe")) {
		_cleanup_free_ char *json = NULL;
		r = drv->describe(sock, &json);
		if (r >= 0)
			printf("%s\n", json);
	} else if (streq(cmd, "stop")) {
		r = drv->request_stop(sock);
	} else
		return usage();
	if (r < 0)
		fprintf(stderr, "fc-tool: %s: %s\n", cmd, strerror(-r));
	return r < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
	VmmSettings s = { .firecracker_bin = getenv("BANGER_FIRECRACKER_BIN") };
	int i = 1;
	if (argc > 2 && streq(argv[1], "--fc-bin")) {
		s.firecracker_bin = argv[2];
		i = 3;
	}
	if (i >= argc)
		return usage();
	const char *cmd = argv[i++];
	if (streq(cmd, "available"))
		return drv->available(&s) ? 0 : 1;
	if (streq(cmd, "launch"))
		return cmd_launch(&s, argc - i, argv + i);
	if (streq(cmd, "launched") && argc - i == 3) {
		VmmProcess p = { .pid = (pid_t)to_unsigned(argv[i + 1]) };
		uint64_t st;
		if (parse_u64(argv[i + 2], 0, UINT64_MAX, &st) < 0)
			return usage();
		p.start_time = st;
		int r = drv->launched(argv[i], &p);
		if (r < 0) {
			fprintf(stderr, "fc-tool: launched: %s\n", strerror(-r));
			return 1;
		}
		printf("%d\n", r);
		return 0;
	}
	if ((streq(cmd, "kill") || streq(cmd, "wait")) && argc - i >= 2)
		return cmd_on_process(cmd, argc - i, argv + i);
	if (argc - i == 1)
		return cmd_on_socket(cmd, argv[i]);
	return usage();
}
