/* service.c — bangerd as a systemd service (Type=notify): what it tells the
 * service manager and when. The wire protocol is util/notify.c; this file
 * owns the meaning:
 *
 *   READY=1     once the initial sync has written (and flushed) every status
 *               file, so `systemctl start bangerd && banger get` never shows
 *               a VM without its status;
 *   STATUS=...  one line, "N VMs: a Running, b Failed, ...", re-sent when it
 *               changes;
 *   STOPPING=1  on SIGTERM/SIGINT, before the loop ends;
 *   RELOADING=1 ... READY=1 around a SIGHUP resync (ExecReload sends SIGHUP);
 *   WATCHDOG=1  every half WatchdogSec= from the event loop (and between
 *               reconcile passes), so a wedged loop gets the unit restarted.
 *               A restart never kills a VM: the unit's KillMode=process. */
#include "daemon/daemon-internal.h"
#include "util/log.h"
#include "util/notify.h"
#include "util/timeutil.h"

#include <stdio.h>

static void send_or_warn(Daemon *d, const char *state)
{
	int r = notify_send(state);
	if (r < 0 && !d->notify_warned) {
		/* Once: a broken NOTIFY_SOCKET must not flood the log. */
		log_warn_errno(r, "notify the service manager ($NOTIFY_SOCKET): %m");
		d->notify_warned = true;
	}
}

/* "N VMs: a Running, b Failed" over the status files last written. */
static char *status_summary(Daemon *d)
{
	_cleanup_strv_free_ char **names = status_writer_names(d->status);
	size_t count[_VM_PHASE_MAX] = { 0 }, n = 0;
	for (size_t i = 0; names[i]; i++) {
		const VmStatus *s = status_writer_last(d->status, names[i]);
		if (s && s->phase < _VM_PHASE_MAX) {
			count[s->phase]++;
			n++;
		}
	}
	_cleanup_free_ char *line = xasprintf("%zu VM%s", n, n == 1 ? "" : "s");
	const char *sep = ": ";
	for (int p = 0; p < _VM_PHASE_MAX; p++) {
		if (!count[p])
			continue;
		char *l = xasprintf("%s%s%zu %s", line, sep, count[p], vm_phase_to_string(p));
		free(line);
		line = l;
		sep = ", ";
	}
	return TAKE_PTR(line);
}

void service_update_status(Daemon *d)
{
	if (!getenv("NOTIFY_SOCKET"))
		return;
	_cleanup_free_ char *line = status_summary(d);
	if (streq_ptr(line, d->notify_status))
		return;
	_cleanup_free_ char *msg = xasprintf("STATUS=%s", line);
	send_or_warn(d, msg);
	free_and_replace_str(&d->notify_status, line);
}

/* systemd's watchdog runs from the moment bangerd is started, so a cold
 * start with thousands of VMs pings between reconcile passes too. */
void service_init(Daemon *d)
{
	d->watchdog_usec = notify_watchdog_usec();
	d->watchdog_next_ms = 0;
}

void service_ready(Daemon *d)
{
	_cleanup_free_ char *line = status_summary(d);
	_cleanup_free_ char *msg = xasprintf("READY=1\nSTATUS=%s\nMAINPID=%d", line, (int)getpid());
	send_or_warn(d, msg);
	free_and_replace_str(&d->notify_status, line);
	service_watchdog(d, time_now_ms());
}

void service_reloading(Daemon *d, bool done)
{
	send_or_warn(d, done ? "READY=1" : "RELOADING=1");
}

void service_stopping(Daemon *d)
{
	send_or_warn(d, "STOPPING=1\nSTATUS=stopping (VMs keep running)");
}

void service_watchdog(Daemon *d, uint64_t now_ms)
{
	if (!d->watchdog_usec || now_ms < d->watchdog_next_ms)
		return;
	send_or_warn(d, "WATCHDOG=1");
	/* Half the interval, as sd_watchdog_enabled(3) recommends. */
	d->watchdog_next_ms = now_ms + MAX(d->watchdog_usec / 2000, 1);
}

uint64_t service_next_deadline(Daemon *d)
{
	return d->watchdog_usec ? d->watchdog_next_ms : UINT64_MAX;
}
