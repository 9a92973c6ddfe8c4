/* bangerd — the banger controller. Flags → DaemonConfig → daemon_run(). */
#include "confine/confine.h"
#include "daemon/daemon.h"
#include "util/defaults.h"
#include "util/log.h"
#include "util/proc.h"
#include "util/trust.h"
#include "util/version.h"

#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <sys/resource.h>

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: bangerd [OPTIONS]\n"
		"\n"
		"Keep microVMs in the state their spec files describe. Watches --spec-dir,\n"
		"stores intent in <state-dir>/banger.db and writes <status-dir>/<name>.status.json.\n"
		"\n"
		"  --spec-dir DIR      spec files (BANGER_SPEC_DIR; default " BANGER_DEFAULT_SPEC_DIR
		";\n"
		"                      created if missing while no VM is known)\n"
		"  --status-dir DIR    status files (BANGER_STATUS_DIR; default " BANGER_DEFAULT_STATUS_DIR
		")\n"
		"  --state-dir DIR     database, VM dirs, lock (BANGER_STATE_DIR; default " BANGER_DEFAULT_STATE_DIR
		")\n"
		"  --runtime-dir DIR   API sockets, lock (BANGER_RUNTIME_DIR; default " BANGER_DEFAULT_RUNTIME_DIR
		")\n"
		"  --spec-owner USER   trust spec files and directories owned by USER as well\n"
		"                      as root (repeatable; the user a GitOps sync runs as)\n"
		"  --node-name NAME    act only on VMs whose spec.node is unset or NAME\n"
		"                      (default: the hostname)\n"
		"  --driver NAME       auto | firecracker | qemu (default auto: firecracker when\n"
		"                      its binary is found and KVM works, else qemu)\n"
		"  --bridge NAME       host bridge for guest taps (default " BANGER_DEFAULT_BRIDGE
		")\n"
		"  --cidr ADDR/N       bridge address and guest subnet (default " BANGER_DEFAULT_CIDR
		")\n"
		"  --host-allow P/N    let guests reach host port N (P: tcp or udp) on the bridge;\n"
		"                      repeatable; every other host service is closed to guests\n"
		"  --image-dir DIR     kernels, initrds and rootfs images must resolve inside one\n"
		"                      of these (repeatable; default " BANGER_DEFAULT_IMAGE_DIR
		")\n"
		"  --stop-timeout S    graceful stop before SIGKILL (default 10)\n"
		"  --on-stop=keep|suspend  on SIGTERM/SIGINT: leave VMs running (keep, the\n"
		"                      default) or save every running VM's state and end\n"
		"                      its VMM (suspend; the next bangerd resumes them)\n"
		"  --on-stop-timeout S bound on suspending all VMs at exit (default 60)\n"
		"  --max-parallel-starts N  VMM launches run at once, off the event loop\n"
		"                      (1..1024; default twice the CPUs, 4 to 64)\n"
		"  --firecracker-bin P firecracker binary (default: from PATH)\n"
		"  --jailer P          launch firecracker through this jailer binary\n"
		"                      (also --jailer-bin)\n"
		"  --jailer-uid N, --jailer-gid N, --chroot-base DIR   jailer settings\n"
		"  --qemu-bin P        qemu-system-x86_64 binary (default: from PATH)\n"
		"  --vmm-uid-range BASE:COUNT  each VM's VMM runs as its own uid (= gid) from\n"
		"                      this range (default %u:%u)\n"
		"  --no-confine        run VMMs as root without uid, seccomp, chroot or cgroup\n"
		"                      confinement (debugging only)\n"
		"  --resync SECONDS    periodic full resync (default %d; 0 disables)\n"
		"  --metrics-file PATH Prometheus text metrics, replaced atomically on change\n"
		"                      (at most once a second) and at each resync\n"
		"  --log-max-bytes N   cap of each VM's console log and VMM log; K, M, G suffixes\n"
		"                      (default 1M, at least 4K); the newest half is kept\n"
		"  --once              one full sync and reconcile pass, then exit\n"
		"  --log-level LEVEL   error | warn | info | debug (default info)\n"
		"  --log-format FMT    text | json (default text)\n"
		"  --version           print the version and exit\n"
		"  -h, --help          this help\n"
		"\n"
		"Signals: SIGTERM/SIGINT exit cleanly (VMs keep running, or are suspended with\n"
		"--on-stop=suspend); SIGHUP: full resync.\n"
		"Under systemd (Type=notify) it reports READY=1 after the initial sync,\n"
		"a one-line STATUS=, STOPPING=1, and WATCHDOG=1 when WatchdogSec= is set.\n"
		"Exit status: 0 clean exit, 1 start-up failure, 2 usage error.\n",
		CONFINE_DEFAULT_UID_BASE, CONFINE_DEFAULT_UID_COUNT, BANGER_DEFAULT_RESYNC_S);
}

static char *env_or(const char *name, const char *def)
{
	return xstrdup(banger_env_or(name, def));
}

/* "N", "NK", "NM", "NG" (powers of 1024) within [4 KiB, 1 TiB]. */
static int parse_size(const char *s, uint64_t *ret)
{
	_cleanup_free_ char *num = xstrdup(s);
	size_t n = strlen(num);
	unsigned shift = 0;
	if (n > 0 && strchr("KkMmGg", num[n - 1])) {
		shift = strchr("Kk", num[n - 1]) ? 10 : strchr("Mm", num[n - 1]) ? 20 : 30;
		num[n - 1] = 0;
	}
	uint64_t v;
	if (parse_u64(num, 1, (1ULL << 40) >> shift, &v) < 0 || (v << shift) < 4096)
		return -EINVAL;
	*ret = v << shift;
	return 0;
}

static int parse_args(int argc, char **argv, DaemonConfig *c)
{
	enum {
		O_SPEC = 256,
		O_STATUS,
		O_STATE,
		O_RUNTIME,
		O_NODE,
		O_DRIVER,
		O_RESYNC,
		O_ONCE,
		O_LEVEL,
		O_FORMAT,
		O_BRIDGE,
		O_CIDR,
		O_IMAGE,
		O_STOP,
		O_FC,
		O_JAILER,
		O_JUID,
		O_JGID,
		O_CHROOT,
		O_QEMU,
		O_METRICS,
		O_SPEC_OWNER,
		O_VERSION,
		O_UIDRANGE,
		O_NOCONFINE,
		O_HOST_ALLOW,
		O_LOGMAX,
		O_ON_STOP,
		O_ON_STOP_TIMEOUT,
		O_MAX_STARTS
	};
	static const struct option opts[] = {
		{ "spec-dir", required_argument, NULL, O_SPEC },
		{ "status-dir", required_argument, NULL, O_STATUS },
		{ "state-dir", required_argument, NULL, O_STATE },
		{ "runtime-dir", required_argument, NULL, O_RUNTIME },
		{ "node-name", required_argument, NULL, O_NODE },
		{ "driver", required_argument, NULL, O_DRIVER },
		{ "resync", required_argument, NULL, O_RESYNC },
		{ "once", no_argument, NULL, O_ONCE },
		{ "log-level", required_argument, NULL, O_LEVEL },
		{ "log-format", required_argument, NULL, O_FORMAT },
		{ "bridge", required_argument, NULL, O_BRIDGE },
		{ "cidr", required_argument, NULL, O_CIDR },
		{ "image-dir", required_argument, NULL, O_IMAGE },
		{ "stop-timeout", required_argument, NULL, O_STOP },
		{ "firecracker-bin", required_argument, NULL, O_FC },
		{ "jailer-bin", required_argument, NULL, O_JAILER },
		{ "jailer", required_argument, NULL, O_JAILER },
		{ "jailer-uid", required_argument, NULL, O_JUID },
		{ "jailer-gid", required_argument, NULL, O_JGID },
		{ "chroot-base", required_argument, NULL, O_CHROOT },
		{ "qemu-bin", required_argument, NULL, O_QEMU },
		{ "metrics-file", required_argument, NULL, O_METRICS },
		{ "spec-owner", required_argument, NULL, O_SPEC_OWNER },
		{ "version", no_argument, NULL, O_VERSION },
		{ "vmm-uid-range", required_argument, NULL, O_UIDRANGE },
		{ "no-confine", no_argument, NULL, O_NOCONFINE },
		{ "host-allow", required_argument, NULL, O_HOST_ALLOW },
		{ "log-max-bytes", required_argument, NULL, O_LOGMAX },
		{ "on-stop", required_argument, NULL, O_ON_STOP },
		{ "on-stop-timeout", required_argument, NULL, O_ON_STOP_TIMEOUT },
		{ "max-parallel-starts", required_argument, NULL, O_MAX_STARTS },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	LogLevel level = LOG_LEVEL_INFO;
	LogFormat format = LOG_FORMAT_TEXT;
	bool image_dirs_set = false;
	uint64_t v;
	int o;

	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case O_SPEC: free_and_replace_str(&c->spec_dir, optarg); break;
		case O_STATUS: free_and_replace_str(&c->status_dir, optarg); break;
		case O_STATE: free_and_replace_str(&c->state_dir, optarg); break;
		case O_RUNTIME: free_and_replace_str(&c->runtime_dir, optarg); break;
		case O_NODE: free_and_replace_str(&c->node_name, optarg); break;
		case O_DRIVER:
			if (!streq(optarg, "auto") && !streq(optarg, "firecracker") &&
			    !streq(optarg, "qemu")) {
				fprintf(stderr,
					"bangerd: --driver: expected auto, firecracker or qemu\n");
				return -EINVAL;
			}
			free_and_replace_str(&c->driver, optarg);
			break;
		case O_RESYNC:
			if (parse_u64(optarg, 0, 86400, &v) < 0) {
				fprintf(stderr, "bangerd: --resync: expected 0..86400 seconds\n");
				return -EINVAL;
			}
			c->resync_s = (unsigned)v;
			break;
		case O_ONCE: c->once = true; break;
		case O_METRICS: free_and_replace_str(&c->metrics_file, optarg); break;
		case O_LEVEL: {
			int l = log_level_from_string(optarg);
			if (l < 0) {
				fprintf(stderr,
					"bangerd: --log-level: expected error, warn, info or debug\n");
				return -EINVAL;
			}
			level = (LogLevel)l;
			break;
		}
		case O_FORMAT:
			if (streq(optarg, "json"))
				format = LOG_FORMAT_JSON;
			else if (streq(optarg, "text"))
				format = LOG_FORMAT_TEXT;
			else {
				fprintf(stderr, "bangerd: --log-format: expected text or json\n");
				return -EINVAL;
			}
			break;
		case O_BRIDGE:
			if (strlen(optarg) < 1 || strlen(optarg) > 15) {
				fprintf(stderr, "bangerd: --bridge: expected 1..15 characters\n");
				return -EINVAL;
			}
			free_and_replace_str(&c->bridge, optarg);
			break;
		case O_CIDR: free_and_replace_str(&c->cidr, optarg); break;
		case O_IMAGE:
			if (!image_dirs_set) {
				strv_free(c->image_dirs);
				c->image_dirs = NULL;
				image_dirs_set = true;
			}
			strv_push(&c->image_dirs, xstrdup(optarg));
			break;
		case O_STOP:
			if (parse_u64(optarg, 1, 3600, &v) < 0) {
				fprintf(stderr,
					"bangerd: --stop-timeout: expected 1..3600 seconds\n");
				return -EINVAL;
			}
			c->stop_timeout_s = (unsigned)v;
			break;
		case O_FC: free_and_replace_str(&c->firecracker_bin, optarg); break;
		case O_JAILER: free_and_replace_str(&c->jailer_bin, optarg); break;
		case O_JUID:
		case O_JGID:
			if (parse_u64(optarg, 0, 4294967294ULL, &v) < 0) {
				fprintf(stderr,
					"bangerd: --jailer-uid/--jailer-gid: expected a number\n");
				return -EINVAL;
			}
			if (o == O_JUID)
				c->jailer_uid = (uid_t)v;
			else
				c->jailer_gid = (gid_t)v;
			break;
		case O_CHROOT: free_and_replace_str(&c->chroot_base, optarg); break;
		case O_ON_STOP:
			if (!streq(optarg, "keep") && !streq(optarg, "suspend")) {
				fprintf(stderr,
					"bangerd: --on-stop: expected keep or suspend, got '%s'\n",
					optarg);
				return -EINVAL;
			}
			c->on_stop_suspend = streq(optarg, "suspend");
			break;
		case O_MAX_STARTS:
			if (parse_u64(optarg, 1, 1024, &v) < 0) {
				fprintf(stderr,
					"bangerd: --max-parallel-starts: expected 1..1024\n");
				return -EINVAL;
			}
			c->max_parallel_starts = (unsigned)v;
			break;
		case O_ON_STOP_TIMEOUT:
			if (parse_u64(optarg, 1, 3600, &v) < 0) {
				fprintf(stderr,
					"bangerd: --on-stop-timeout: expected 1..3600 seconds\n");
				return -EINVAL;
			}
			c->on_stop_timeout_s = (unsigned)v;
			break;
		case O_QEMU: free_and_replace_str(&c->qemu_bin, optarg); break;
		case O_SPEC_OWNER: {
			uid_t u;
			int k = trust_parse_owner(optarg, &u);
			if (k < 0) {
				fprintf(stderr, "bangerd: --spec-owner: %s '%s'\n",
					k == -ENOENT ? "no such user" : strerror(-k), optarg);
				return -EINVAL;
			}
			c->spec_owners =
				xrealloc(c->spec_owners, (c->n_spec_owners + 1) * sizeof(uid_t));
			c->spec_owners[c->n_spec_owners++] = u;
			break;
		}
		case O_VERSION: printf("bangerd %s\n", banger_version); return 1;
		case O_UIDRANGE: {
			UidRange ur;
			if (confine_uid_range_parse(optarg, &ur) < 0)
				return -EINVAL;
			c->vmm_uid_base = ur.base;
			c->vmm_uid_count = ur.count;
			break;
		}
		case O_NOCONFINE: c->no_confine = true; break;
		case O_HOST_ALLOW:
			if (c->n_host_allow >= NFT_HOST_ALLOW_MAX ||
			    nft_host_allow_parse(optarg, &c->host_allow[c->n_host_allow]) < 0) {
				fprintf(stderr,
					"bangerd: --host-allow %s: expected tcp/PORT or "
					"udp/PORT (1..65535), at most %d times\n",
					optarg, NFT_HOST_ALLOW_MAX);
				return -EINVAL;
			}
			c->n_host_allow++;
			break;
		case O_LOGMAX:
			if (parse_size(optarg, &c->log_max_bytes) < 0) {
				fprintf(stderr,
					"bangerd: --log-max-bytes: expected 4K..1T, e.g. 1M\n");
				return -EINVAL;
			}
			break;
		case 'h': usage(stdout); return 1;
		default: usage(stderr); return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "bangerd: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	log_setup(level, format, "bangerd");
	return 0;
}

/* One fd per running VM (its pidfd), plus sockets, the watcher and files:
 * the default soft limit of 1024 would end in EMFILE at a few hundred VMs.
 * The hard limit is what the administrator allows; take all of it. */
static void raise_nofile_limit(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
		log_warn_errno(-errno, "getrlimit(RLIMIT_NOFILE): %m");
		return;
	}
	if (rl.rlim_cur == rl.rlim_max)
		return;
	rlim_t old = rl.rlim_cur;
	proc_set_child_nofile(old);
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		log_warn_errno(-errno, "raise RLIMIT_NOFILE to %llu: %m",
			       (unsigned long long)rl.rlim_max);
	else
		log_debug("RLIMIT_NOFILE raised from %llu to %llu", (unsigned long long)old,
			  (unsigned long long)rl.rlim_max);
}

int main(int argc, char **argv)
{
	char host[HOST_NAME_MAX + 1] = "localhost";
	DaemonConfig c = {
		.spec_dir = env_or(BANGER_ENV_SPEC_DIR, BANGER_DEFAULT_SPEC_DIR),
		.status_dir = env_or(BANGER_ENV_STATUS_DIR, BANGER_DEFAULT_STATUS_DIR),
		.state_dir = env_or(BANGER_ENV_STATE_DIR, BANGER_DEFAULT_STATE_DIR),
		.runtime_dir = env_or(BANGER_ENV_RUNTIME_DIR, BANGER_DEFAULT_RUNTIME_DIR),
		.driver = xstrdup("auto"),
		.resync_s = BANGER_DEFAULT_RESYNC_S,
		.stop_timeout_s = 10,
		.log_max_bytes = 1024 * 1024,
		.on_stop_timeout_s = 60,
		.bridge = xstrdup(BANGER_DEFAULT_BRIDGE),
		.cidr = xstrdup(BANGER_DEFAULT_CIDR),
		.vmm_uid_base = CONFINE_DEFAULT_UID_BASE,
		.vmm_uid_count = CONFINE_DEFAULT_UID_COUNT,
	};
	strv_push(&c.image_dirs, xstrdup(BANGER_DEFAULT_IMAGE_DIR));
	gethostname(host, sizeof(host) - 1);
	c.node_name = xstrdup(host);

	int r = parse_args(argc, argv, &c);
	if (r != 0) {
		daemon_config_done(&c);
		return r > 0 ? 0 : 2;
	}
	raise_nofile_limit();
	r = daemon_run(&c);
	daemon_config_done(&c);
	return r < 0 ? 1 : 0;
}
