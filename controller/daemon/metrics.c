/* metrics.c — counting (pure) and rendering + writing (daemon state, I/O):
 * see metrics.h. */
#include "daemon/metrics.h"
#include "daemon/daemon-internal.h"
#include "util/fileio.h"
#include "util/log.h"
#include "util/timeutil.h"

#include <stdarg.h>
#include <stdio.h>

const double metrics_pass_bounds[METRICS_PASS_BUCKETS] = { 0.001, 0.005, 0.01, 0.05, 0.1,
							   0.25,  0.5,   1,    5 };

void metrics_pass(Metrics *m, uint64_t duration_us, bool ok)
{
	double s = (double)duration_us / 1e6;
	m->passes++;
	if (!ok)
		m->pass_errors++;
	m->pass_seconds_sum += s;
	for (size_t i = 0; i < METRICS_PASS_BUCKETS; i++)
		if (s <= metrics_pass_bounds[i]) {
			m->pass_buckets[i]++;
			break;
		}
	m->dirty = true;
}

void metrics_full_sync(Metrics *m, uint64_t duration_us, bool ok, int64_t now_wall_ms)
{
	m->full_syncs++;
	m->last_full_sync_seconds = (double)duration_us / 1e6;
	if (ok)
		m->last_sync_ok_ms = now_wall_ms;
	else
		m->full_sync_errors++;
	m->dirty = true;
}

typedef struct {
	char *buf;
	size_t len, cap;
} Out;

static void outf(Out *o, const char *fmt, ...) _printf_(2, 3);
static void outf(Out *o, const char *fmt, ...)
{
	va_list ap;
	for (;;) {
		va_start(ap, fmt);
		int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
		va_end(ap);
		if (n >= 0 && (size_t)n < o->cap - o->len) {
			o->len += (size_t)n;
			return;
		}
		o->cap = o->cap * 2 + (size_t)(n > 0 ? n : 64) + 1;
		o->buf = xrealloc(o->buf, o->cap);
	}
}

static void head(Out *o, const char *name, const char *type, const char *help)
{
	outf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void render_vms(Out *o, Daemon *d)
{
	_cleanup_strv_free_ char **names = status_writer_names(d->status);
	size_t by_phase[_VM_PHASE_MAX] = { 0 };
	for (size_t i = 0; names[i]; i++) {
		const VmStatus *s = status_writer_last(d->status, names[i]);
		if (s && s->phase < _VM_PHASE_MAX)
			by_phase[s->phase]++;
	}
	head(o, "banger_vms", "gauge", "VMs by the phase their status reports.");
	for (int p = 0; p < _VM_PHASE_MAX; p++)
		outf(o, "banger_vms{phase=\"%s\"} %zu\n", vm_phase_to_string(p), by_phase[p]);
	/* Names are DNS-1123 labels (status refuses others): no label escaping
	 * is needed. */
	head(o, "banger_vm_ready", "gauge", "1 when the VM's Ready condition is True.");
	for (size_t i = 0; names[i]; i++) {
		const VmStatus *s = status_writer_last(d->status, names[i]);
		const Condition *c = s ? vm_status_get_condition(s, "Ready") : NULL;
		outf(o, "banger_vm_ready{name=\"%s\"} %d\n", names[i],
		     c && c->status == COND_TRUE ? 1 : 0);
	}
	head(o, "banger_vm_restarts_total", "counter", "Restarts of the VM after a failure.");
	for (size_t i = 0; names[i]; i++) {
		const VmStatus *s = status_writer_last(d->status, names[i]);
		outf(o, "banger_vm_restarts_total{name=\"%s\"} %lld\n", names[i],
		     (long long)(s ? s->restart_count : 0));
	}
	head(o, "banger_vm_memory_bytes", "gauge", "Guest memory from the spec.");
	for (size_t i = 0; names[i]; i++) {
		VmState *vs = hashmap_get(d->vms, names[i]);
		if (vs && vs->spec)
			outf(o, "banger_vm_memory_bytes{name=\"%s\"} %llu\n", names[i],
			     (unsigned long long)vs->spec->memory_mib * 1024 * 1024);
	}
	head(o, "banger_vm_vcpus", "gauge", "Guest vCPUs from the spec.");
	for (size_t i = 0; names[i]; i++) {
		VmState *vs = hashmap_get(d->vms, names[i]);
		if (vs && vs->spec)
			outf(o, "banger_vm_vcpus{name=\"%s\"} %u\n", names[i], vs->spec->vcpus);
	}
}

static char *render(Daemon *d)
{
	Metrics *m = &d->metrics;
	Out o = { .buf = xmalloc(4096), .cap = 4096 };
	o.buf[0] = 0;
	render_vms(&o, d);
	head(&o, "banger_reconcile_passes_total", "counter", "Reconcile passes run.");
	outf(&o, "banger_reconcile_passes_total %llu\n", (unsigned long long)m->passes);
	head(&o, "banger_reconcile_errors_total", "counter",
	     "Reconcile passes that failed with an error (retried with back-off).");
	outf(&o, "banger_reconcile_errors_total %llu\n", (unsigned long long)m->pass_errors);
	head(&o, "banger_reconcile_pass_duration_seconds", "histogram",
	     "Time one reconcile pass took.");
	uint64_t cum = 0;
	for (size_t i = 0; i < METRICS_PASS_BUCKETS; i++) {
		cum += m->pass_buckets[i];
		outf(&o, "banger_reconcile_pass_duration_seconds_bucket{le=\"%g\"} %llu\n",
		     metrics_pass_bounds[i], (unsigned long long)cum);
	}
	outf(&o, "banger_reconcile_pass_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
	     (unsigned long long)m->passes);
	outf(&o, "banger_reconcile_pass_duration_seconds_sum %.6f\n", m->pass_seconds_sum);
	outf(&o, "banger_reconcile_pass_duration_seconds_count %llu\n",
	     (unsigned long long)m->passes);
	head(&o, "banger_full_syncs_total", "counter", "Full syncs of the spec dir.");
	outf(&o, "banger_full_syncs_total %llu\n", (unsigned long long)m->full_syncs);
	head(&o, "banger_full_sync_errors_total", "counter", "Full syncs that failed.");
	outf(&o, "banger_full_sync_errors_total %llu\n", (unsigned long long)m->full_sync_errors);
	head(&o, "banger_full_sync_duration_seconds", "gauge", "Duration of the last full sync.");
	outf(&o, "banger_full_sync_duration_seconds %.6f\n", m->last_full_sync_seconds);
	head(&o, "banger_last_successful_sync_timestamp_seconds", "gauge",
	     "Unix time of the last full sync that succeeded.");
	outf(&o, "banger_last_successful_sync_timestamp_seconds %.3f\n",
	     (double)m->last_sync_ok_ms / 1000.0);
	head(&o, "banger_spec_errors", "gauge", "VM names whose spec document is invalid now.");
	outf(&o, "banger_spec_errors %zu\n", d->sync ? spec_sync_error_count(d->sync) : 0);
	head(&o, "banger_watch_queue_depth", "gauge",
	     "Spec dir events the watcher had queued at bangerd's last wake-up.");
	outf(&o, "banger_watch_queue_depth %zu\n", m->watch_depth);
	head(&o, "banger_work_queue_depth", "gauge", "VMs waiting for a reconcile pass.");
	outf(&o, "banger_work_queue_depth %zu\n", d->qlen);
	return o.buf;
}

int daemon_metrics_flush(Daemon *d, bool force)
{
	Metrics *m = &d->metrics;
	uint64_t now = time_now_ms();
	if (!d->cfg->metrics_file || (!force && !m->dirty) ||
	    (!force && now < m->written_at + METRICS_MIN_INTERVAL_MS))
		return 0;
	_cleanup_free_ char *text = render(d);
	int r = write_file_atomic(d->cfg->metrics_file, text, strlen(text), 0644);
	m->written_at = now;
	m->dirty = false;
	if (r < 0)
		return log_warn_errno(r, "metrics file %s: %m", d->cfg->metrics_file);
	return 0;
}

uint64_t daemon_metrics_due(Daemon *d)
{
	if (!d->cfg->metrics_file || !d->metrics.dirty)
		return UINT64_MAX;
	return d->metrics.written_at + METRICS_MIN_INTERVAL_MS;
}
