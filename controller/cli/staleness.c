/* staleness.c — see staleness.h. */
#include "cli/staleness.h"
#include "util/defaults.h"
#include "util/fileio.h"
#include "util/layout.h"
#include "util/timeutil.h"

#include <stdio.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

/* Does /proc/locks list a lock (not a waiter) on dev:ino? */
static bool locked_in_proc(dev_t dev, ino_t ino)
{
	_cleanup_free_ char *data = NULL;
	if (read_file_bounded("/proc/locks", 4 * 1024 * 1024, &data, NULL) < 0)
		return false;
	for (char *line = data, *save = NULL; (line = strtok_r(line, "\n", &save)); line = NULL) {
		unsigned maj, min;
		unsigned long long i;
		char kind[16];
		/* "1: FLOCK  ADVISORY  WRITE 4242 fd:01:1234 0 EOF"; waiters have "->" */
		if (sscanf(line, "%*d: %15s %*s %*s %*d %x:%x:%llu", kind, &maj, &min, &i) != 4)
			continue;
		if (streq(kind, "FLOCK") && makedev(maj, min) == dev && (ino_t)i == ino)
			return true;
	}
	return false;
}

void cli_probe_daemon(const char *state_dir, DaemonProbe *ret)
{
	_cleanup_free_ char *p = layout_lock_path(state_dir), *data = NULL;
	struct stat st;
	*ret = (DaemonProbe){ .state = DAEMON_UNKNOWN, .resync_s = BANGER_DEFAULT_RESYNC_S };
	if (stat(p, &st) < 0) {
		/* ENOENT: no bangerd ever ran on this state dir */
		if (errno == ENOENT)
			ret->state = DAEMON_NOT_RUNNING;
		return;
	}
	ret->state = locked_in_proc(st.st_dev, st.st_ino) ? DAEMON_RUNNING : DAEMON_NOT_RUNNING;
	if (read_file_bounded(p, 256, &data, NULL) < 0)
		return;
	const char *r = strstr(data, "\nresync ");
	unsigned v;
	if (r && sscanf(r + 8, "%u", &v) == 1) {
		ret->resync_s = v;
		ret->resync_known = true;
	}
}

static void format_age_s(int64_t s, char *buf, size_t n)
{
	if (s < 120)
		snprintf(buf, n, "%llds", (long long)s);
	else if (s < 7200)
		snprintf(buf, n, "%lldm", (long long)(s / 60));
	else if (s < 172800)
		snprintf(buf, n, "%lldh", (long long)(s / 3600));
	else
		snprintf(buf, n, "%lldd", (long long)(s / 86400));
}

void cli_warn_stale(const CliDirs *dirs, VmStatus *const *v, size_t n)
{
	DaemonProbe pr;
	cli_probe_daemon(dirs->state_dir, &pr);
	if (pr.state == DAEMON_NOT_RUNNING)
		cli_warn("no bangerd holds %s/bangerd.lock: nothing keeps the status current, "
			 "it may be stale",
			 dirs->state_dir);
	if (pr.resync_s == 0)
		return; /* resync disabled: observedAt is not refreshed */
	int64_t now = time_now_realtime_ms(), limit = 2 * (int64_t)pr.resync_s * 1000;
	size_t stale = 0;
	const VmStatus *oldest = NULL;
	for (size_t i = 0; i < n; i++) {
		if (v[i]->observed_at_ms <= 0 || now - v[i]->observed_at_ms <= limit)
			continue;
		stale++;
		if (!oldest || v[i]->observed_at_ms < oldest->observed_at_ms)
			oldest = v[i];
	}
	if (!stale)
		return;
	char age[32];
	format_age_s((now - oldest->observed_at_ms) / 1000, age, sizeof(age));
	if (stale == 1)
		cli_warn("vm/%s: status last confirmed %s ago, more than two resync periods "
			 "(%us%s)",
			 oldest->name, age, pr.resync_s, pr.resync_known ? "" : ", assumed");
	else
		cli_warn("%zu statuses last confirmed more than two resync periods (%us%s) ago; "
			 "oldest vm/%s, %s ago",
			 stale, pr.resync_s, pr.resync_known ? "" : ", assumed", oldest->name, age);
}
