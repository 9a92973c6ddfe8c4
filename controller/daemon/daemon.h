/* daemon.h — bangerd: one single-threaded event loop (epoll over signalfd,
 * the watcher's eventfd and a timerfd) that keeps intent in step with the
 * spec files and status in step with what is observed.
 *
 * Work is a queue of VM names, deduplicated: spec changes, resyncs and
 * (later) VMM exits enqueue a name; each pass on a name reads desired state
 * from the store and observed state, decides (reconcile/decide.h), acts and
 * writes status. */
#pragma once

#include "net/nft.h"
#include "util/util.h"

#include <sys/types.h>

typedef struct {
	char *spec_dir;
	char *status_dir;
	char *state_dir;
	char *runtime_dir;
	char *node_name;
	char *driver; /* "auto" | "firecracker" | "qemu" */
	unsigned resync_s;
	unsigned stop_timeout_s;    /* graceful stop before SIGKILL */
	uint64_t log_max_bytes;     /* cap of console.log (+ .1) and vmm.log */
	bool on_stop_suspend;       /* --on-stop=suspend: save every running VM at exit */
	unsigned on_stop_timeout_s; /* ...bounded in total by this */
	/* VMM launches in flight at once (daemon/launcher.c); 0: twice the
	 * online CPUs, 4 to 64. A launch is partly the VMM's own start-up CPU:
	 * more launches than that only stretch each one towards its socket and
	 * API deadlines (measured: 16 Python doubles at once on 2 loaded cores
	 * missed their 3 s socket wait). */
	unsigned max_parallel_starts;
	bool once;
	char *metrics_file; /* NULL: no metrics */
	char *bridge;
	char *cidr;
	char **image_dirs; /* strv */
	char *firecracker_bin, *jailer_bin, *chroot_base, *qemu_bin;
	uid_t jailer_uid;
	gid_t jailer_gid;
	uid_t *spec_owners; /* --spec-owner: trusted besides root (util/trust.h) */
	size_t n_spec_owners;
	bool no_confine;       /* --no-confine: VMMs run as root, unconfined (debugging) */
	uint32_t vmm_uid_base; /* --vmm-uid-range BASE:COUNT */
	uint32_t vmm_uid_count;
	/* --host-allow: host ports on the bridge address guests may reach */
	NftHostAllow host_allow[NFT_HOST_ALLOW_MAX];
	size_t n_host_allow;
} DaemonConfig;

void daemon_config_done(DaemonConfig *c);

/* Run until SIGTERM/SIGINT (or after one pass with cfg->once). Returns 0 on
 * a clean exit, -errno when start-up failed. VMs are never stopped because
 * the controller exits; with on_stop_suspend they are suspended (their
 * memory saved, their VMMs ended) and the next bangerd resumes them. */
int daemon_run(const DaemonConfig *cfg);
