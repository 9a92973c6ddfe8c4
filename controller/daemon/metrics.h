/* metrics.h — bangerd's Prometheus metrics, for node_exporter's textfile
 * collector (bangerd --metrics-file PATH).
 *
 * The file is text exposition format 0.0.4 with HELP and TYPE lines, and is
 * replaced atomically (temp file + rename) when something changed — at most
 * once per METRICS_MIN_INTERVAL_MS, so a burst of 10,000 passes writes it a
 * few times, not 10,000 — and at every periodic resync. Across many hosts,
 * Prometheus gives the fleet view. docs/operations.md lists every metric. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define METRICS_MIN_INTERVAL_MS 1000
/* Reconcile pass duration histogram bounds, seconds. */
#define METRICS_PASS_BUCKETS 9

typedef struct {
	uint64_t passes, pass_errors;
	uint64_t pass_buckets[METRICS_PASS_BUCKETS]; /* cumulative at render */
	double pass_seconds_sum;
	uint64_t full_syncs, full_sync_errors;
	double last_full_sync_seconds;
	int64_t last_sync_ok_ms; /* wall clock; 0: none yet */
	size_t watch_depth;      /* watcher events not applied yet (after the last batch) */
	bool dirty;
	uint64_t written_at; /* monotonic ms of the last write */
} Metrics;

extern const double metrics_pass_bounds[METRICS_PASS_BUCKETS];

void metrics_pass(Metrics *m, uint64_t duration_us, bool ok);
void metrics_full_sync(Metrics *m, uint64_t duration_us, bool ok, int64_t now_wall_ms);
