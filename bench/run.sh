#!/bin/bash
# bench/run.sh — banger's benchmarks (`make bench`). Every figure is printed
# next to a baseline measured in the same run, with the ratio and the target.
# Missing a target prints MISS loudly but exits 0: benchmarks report, they do
# not gate the build. A benchmark that cannot measure (a tool dies, bangerd
# exits, status files are missing) is printed as FAIL and also exits 0, with
# the reason above the table.
#
# Sections are shell functions named section_<name>, run in the order of
# $BENCH_SECTIONS. To add one (VMM exec latency, kill→status latency,
# adoption time, idle wake-ups, …): write section_<name>, call `result` for
# each figure, and add <name> to DEFAULT_SECTIONS. Helpers below start and stop
# a synced bangerd (daemon_ensure / daemon_stop) so sections can run alone:
#   BENCH_SECTIONS="noop_resync" make bench
#
# Knobs (environment): BENCH_N (spec files, 10000), BENCH_EDITS (200),
# BENCH_EDIT_BLOCKS (4), BENCH_HUPS (20), BENCH_COLD_RUNS (3),
# BENCH_SETTLE_MAX (90 s to wait for quiet file creation), BENCH_WORK
# (where the work dir bench-work.XXXXXX is made, default $BUILD),
# BENCH_BANGERD (the daemon binary, default $BUILD/bangerd: point it at
# another build to compare versions), BENCH_STATUS_IN_SPEC_DIR=1 (status
# files next to the specs, bangerd's default, instead of a separate status
# dir), BENCH_KEEP=1 (keep the work dir).
set -u
BUILD=${BUILD:-build}
BANGERD=$(realpath "${BENCH_BANGERD:-$BUILD/bangerd}")
BB=$BUILD/bench
N=${BENCH_N:-10000}
EDITS=${BENCH_EDITS:-200}
HUPS=${BENCH_HUPS:-20}
COLD_RUNS=${BENCH_COLD_RUNS:-3}
DEFAULT_SECTIONS="cold_sync noop_resync edit_latency peak_rss"
SECTIONS=${BENCH_SECTIONS:-$DEFAULT_SECTIONS}
mkdir -p "${BENCH_WORK:-$BUILD}"
WORK=$(realpath "$(mktemp -d "${BENCH_WORK:-$BUILD}/bench-work.XXXXXX")")
# Nothing is deleted until the end: this host's root ext4 has no journal, and
# without one ext4's inode allocator skips every inode freed in the last 60-300
# s (recently_deleted(), scanned one by one), so creating 10,000 files right
# after deleting 10,000 in the same block group costs seconds of kernel CPU.
# Every cold run therefore gets new state and status dirs (run_dirs).
SPEC=$WORK/specs
STATE=''
STATUS=''
LOG=''
RUN=0

DAEMON_PID=
DAEMON_HWM_KB=   # VmHWM read just before the daemon is stopped
COLD_HWM_KB=     # highest VmHWM right after a cold sync (any run)
BASE_PID=
RESULTS=$WORK/results.tsv
NOTES=$WORK/notes.txt
T_START=$SECONDS

# ---- plumbing ---------------------------------------------------------------

cleanup() {
	daemon_stop
	if [ -n "$BASE_PID" ]; then
		kill "$BASE_PID" 2>/dev/null; kill -CONT "$BASE_PID" 2>/dev/null; wait "$BASE_PID" 2>/dev/null
	fi
	if [ "${BENCH_KEEP:-0}" = 1 ]; then
		echo "work dir kept: $WORK"
	else
		rm -rf "$WORK"
		# Clean inode-table buffers shrink ext4's recently-deleted window
		# from 300 s to 60 s (see the note on deletes above).
		sync -f "$BUILD" 2>/dev/null
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

note() { echo "$*" | tee -a "$NOTES" >&2; }
# kv FILE KEY: the value of a key=value line.
kv() { sed -n "s/^$2=//p" "$1" | head -n1; }
# median of numbers on stdin
median() { sort -g | awk '{v[NR]=$1} END {if (NR) print v[int((NR+1)/2)]}'; }

# result METRIC VALUE BASELINE UNIT KIND TARGET
#   KIND lt:    PASS when VALUE < TARGET (absolute, in UNIT)
#   KIND ratio: PASS when VALUE <= TARGET × BASELINE
#   KIND info:  no target (context for another row)
# VALUE "-" means the measurement failed (FAIL).
result() {
	printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$RESULTS"
}

print_table() {
	local fmt='%-44s %12s %12s %8s %16s  %s\n'
	echo
	printf "$fmt" METRIC VALUE BASELINE RATIO TARGET RESULT
	printf "$fmt" "$(printf '%.0s-' {1..44})" ------------ ------------ -------- ---------------- ------
	local misses=0 fails=0
	while IFS=$'\t' read -r metric value base unit kind target; do
		local ratio=- verdict tgt
		case $kind in
		lt) tgt="< $target $unit" ;;
		ratio) tgt="<= ${target}x base" ;;
		*) tgt="(none)" ;;
		esac
		if [ "$value" = - ] || [ -z "$value" ]; then
			verdict="FAIL (not measured)"
			fails=$((fails + 1))
			value=-
		else
			if [ "$base" != - ] && [ -n "$base" ]; then
				ratio=$(awk -v v="$value" -v b="$base" 'BEGIN { if (b > 0) printf "%.1fx", v / b; else print "-" }')
			fi
			if [ "$kind" = info ]; then
				verdict=-
			elif awk -v v="$value" -v b="$base" -v k="$kind" -v t="$target" \
				'BEGIN { exit !(k == "lt" ? v < t : v <= t * b) }'; then
				verdict=PASS
			else
				verdict="MISS  <<<<<<<<"
				misses=$((misses + 1))
			fi
		fi
		printf "$fmt" "$metric" "$value $unit" "$base $unit" "$ratio" "$tgt" "$verdict"
	done <"$RESULTS"
	echo
	if [ "$misses" -gt 0 ] || [ "$fails" -gt 0 ]; then
		echo "!!! $misses target(s) MISSED, $fails figure(s) not measured — see the notes above and docs/benchmarks.md"
	else
		echo "All targets met."
	fi
}

machine() {
	echo "== machine"
	echo "cpus:       $(nproc) × $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
	echo "memory:     $(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
	echo "kernel:     $(uname -sr)"
	echo "work dir:   $WORK ($(stat -f -c %T "$WORK") on $(df --output=source "$WORK" | tail -n1), mount options: $(findmnt -n -o OPTIONS -T "$WORK"))"
	echo "load avg:   $(cut -d' ' -f1-3 /proc/loadavg) (2-core machine shared with other work: expect noise)"
	local rev
	rev=$(git -C "$(dirname "$BANGERD")" rev-parse --short HEAD 2>/dev/null || echo '?')
	git -C "$(dirname "$BANGERD")" diff --quiet HEAD -- controller 2>/dev/null || rev="$rev, controller/ modified"
	echo "bangerd:    $BANGERD ($rev)"
	echo "command:    make bench  (BUILD=$BUILD BENCH_N=$N BENCH_EDITS=$EDITS BENCH_HUPS=$HUPS BENCH_COLD_RUNS=$COLD_RUNS BENCH_SECTIONS=\"$SECTIONS\")"
	echo "daemon:     bangerd --spec-dir \$WORK/specs --status-dir \$WORK/runN/status --state-dir \$WORK/runN/state --runtime-dir \$WORK/runN/state/run --node-name bench --resync 0 --log-level debug"
	echo
}

DAEMON_ARGS=()
# run_dirs: new, empty dirs for one bangerd life (see the note on deletes).
run_dirs() {
	RUN=$((RUN + 1))
	local d=$WORK/run$RUN
	if [ "${BENCH_STATUS_IN_SPEC_DIR:-0}" = 1 ]; then
		SPEC=$d/specs
		STATUS=$SPEC
	else
		STATUS=$d/status
	fi
	STATE=$d/state
	LOG=$d/bangerd.log
	mkdir -p "$STATE" "$STATUS"
	specs_ensure || return 1
	DAEMON_ARGS=(--spec-dir "$SPEC" --status-dir "$STATUS" --state-dir "$STATE"
		--runtime-dir "$STATE/run" --node-name bench --resync 0 --log-level debug)
}
# A new empty dir for a baseline's status files.
baseline_dir() { BSTATUS=$WORK/baseline$RUN.$1; mkdir -p "$BSTATUS"; }

# Spec files are made once (once per run with BENCH_STATUS_IN_SPEC_DIR=1).
specs_ensure() {
	[ -f "$SPEC/vm-00000.yaml" ] && return 0
	mkdir -p "$SPEC"
	"$BB/mkspecs" "$SPEC" "$N" >/dev/null || { note "mkspecs failed"; return 1; }
}

# daemon_cold_start OUTFILE: fresh state, start bangerd via cold_sync (which
# times it and leaves it running); sets DAEMON_PID.
daemon_cold_start() {
	local out=$1
	run_dirs || return 1
	: >"$LOG"
	"$BB/cold_sync" "$LOG" "$STATUS" "$N" "$BANGERD" "${DAEMON_ARGS[@]}" >"$out"
	local rc=$? hwm
	DAEMON_PID=$(kv "$out" pid)
	hwm=$(kv "$out" hwm_kb)
	if [ -n "$hwm" ] && { [ -z "$COLD_HWM_KB" ] || [ "$hwm" -gt "$COLD_HWM_KB" ]; }; then COLD_HWM_KB=$hwm; fi
	if [ $rc -ne 0 ]; then
		note "cold_sync exited $rc: $(cat "$out" | tr '\n' ' ') (log: $(tail -n 3 "$LOG" | tr '\n' ' '))"
		return 1
	fi
}

# A running, synced bangerd for sections that need one.
daemon_ensure() {
	[ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null && return 0
	specs_ensure && daemon_cold_start "$WORK/cold-ensure.out"
}

# SIGTERM and wait (bangerd is not our child: cold_sync forked it, so poll).
daemon_stop() {
	[ -n "$DAEMON_PID" ] || return 0
	local hwm
	hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$DAEMON_PID/status" 2>/dev/null)
	[ -n "$hwm" ] && DAEMON_HWM_KB=$hwm
	kill -TERM "$DAEMON_PID" 2>/dev/null
	kill -CONT "$DAEMON_PID" 2>/dev/null # in case a section left it stopped
	for _ in $(seq 100); do
		kill -0 "$DAEMON_PID" 2>/dev/null || break
		sleep 0.05
	done
	kill -0 "$DAEMON_PID" 2>/dev/null && { note "bangerd $DAEMON_PID ignored SIGTERM for 5 s; SIGKILL"; kill -KILL "$DAEMON_PID"; }
	DAEMON_PID=
}

# ---- sections ---------------------------------------------------------------

# Creating files is slow for minutes after a mass delete on this host (see the
# note on deletes): probe with 1,000 files (~35 ms when quiet) and wait, up to
# BENCH_SETTLE_MAX seconds, for that to pass before timing cold syncs.
fs_settle() {
	local i ms max=${BENCH_SETTLE_MAX:-90}
	mkdir -p "$WORK/probe-specs"
	"$BB/mkspecs" "$WORK/probe-specs" 1000 >/dev/null || return 0
	for i in $(seq 0 $((max / 10))); do
		mkdir -p "$WORK/probe$i"
		ms=$("$BB/baseline_cold" "$WORK/probe-specs" "$WORK/probe$i" | sed -n 's/^cold_ms=//p')
		if awk -v m="$ms" 'BEGIN { exit !(m < 100) }'; then
			echo "  file-creation probe: 1000 files in $ms ms (quiet)"
			return 0
		fi
		[ "$i" -lt $((max / 10)) ] || break
		echo "  file-creation probe: 1000 files in $ms ms — slow (recently freed inodes?); waiting 10 s"
		sleep 10
	done
	note "file creation still slow after ${max} s of waiting; cold-sync figures will be inflated"
}

# 1. Cold sync: bangerd start → all N status files written (and verified).
#    Baseline: baseline_cold, the same files read and status files written
#    with the same batched durability, nothing else. Runs interleave.
section_cold_sync() {
	echo "== cold sync of $N spec files ($COLD_RUNS runs each, interleaved; median)"
	specs_ensure || { result "cold sync, $N files" - - ms lt 3000; return; }
	fs_settle
	local i bad=0
	: >"$WORK/cold.ms"; : >"$WORK/cold-base.ms"
	for i in $(seq "$COLD_RUNS"); do
		baseline_dir cold
		"$BB/baseline_cold" "$SPEC" "$BSTATUS" >"$WORK/cold-base.out" || bad=1
		kv "$WORK/cold-base.out" cold_ms >>"$WORK/cold-base.ms"
		daemon_stop
		if ! daemon_cold_start "$WORK/cold.out"; then bad=1; break; fi
		kv "$WORK/cold.out" cold_ms >>"$WORK/cold.ms"
		local fs
		fs=$(sed -n 's/.*full sync (start): .* in \([0-9.]*\) ms.*/\1/p' "$LOG" | head -n1)
		echo "  run $i: bangerd $(kv "$WORK/cold.out" cold_ms) ms (daemon: $(kv "$WORK/cold.out" daemon_ms) ms, of which files → SQLite $fs ms; CPU $(kv "$WORK/cold.out" user_ms) user + $(kv "$WORK/cold.out" sys_ms) sys ms, $(kv "$WORK/cold.out" verified)/$N status files verified, $(kv "$WORK/cold.out" status_files) in dir); baseline $(kv "$WORK/cold-base.out" cold_ms) ms"
	done
	if [ $bad = 1 ]; then
		result "cold sync, $N files: start → all status" - "$(median <"$WORK/cold-base.ms")" ms lt 3000
		return
	fi
	result "cold sync, $N files: start → all status" "$(median <"$WORK/cold.ms")" "$(median <"$WORK/cold-base.ms")" ms lt 3000
	# On a quiet ext4 the baseline takes ~0.3 s; far more means file creation
	# itself is slow right now (recently_deleted() scanning, see above).
	if awk -v b="$(median <"$WORK/cold-base.ms")" 'BEGIN { exit !(b > 1000) }'; then
		note "WARNING: baseline_cold needed $(median <"$WORK/cold-base.ms") ms (~300 ms on a quiet disk): creating files is slow on this filesystem right now — ext4 without a journal skips inodes freed in the last 60-300 s, e.g. by the previous bench run's clean-up or other work. Cold-sync figures are inflated; rerun in a few minutes."
	fi
	echo
}

# 2. No-op resync: SIGHUP with nothing changed. The daemon's own timing line
#    and its process CPU delta. Baseline: baseline_scan (readdir + fstatat +
#    fingerprint compare per file, nothing else).
section_noop_resync() {
	echo "== no-op full resync (SIGHUP) with $N files synced ($HUPS signals)"
	if ! daemon_ensure; then
		result "no-op resync: CPU (/proc utime+stime)" - - ms lt 50
		return
	fi
	"$BB/baseline_scan" "$SPEC" "$HUPS" >"$WORK/scan.out" || note "baseline_scan failed"
	if ! "$BB/hup_cpu" "$DAEMON_PID" "$LOG" "$HUPS" >"$WORK/hup.out"; then
		note "hup_cpu failed"
		result "no-op resync: CPU (/proc utime+stime)" - "$(kv "$WORK/scan.out" cpu_ms_per_pass)" ms lt 50
		return
	fi
	echo "  bangerd log 'full sync (SIGHUP) … in X ms': median $(kv "$WORK/hup.out" log_ms_median), min $(kv "$WORK/hup.out" log_ms_min), max $(kv "$WORK/hup.out" log_ms_max) ms over $(kv "$WORK/hup.out" files) files; kill → log line median $(kv "$WORK/hup.out" wall_ms_median) ms"
	echo "  bangerd per resync: CPU $(kv "$WORK/hup.out" cpu_ms_per_resync) ms (/proc stat, tick resolution), $(kv "$WORK/hup.out" sched_run_ms_per_resync) ms on CPU and $(kv "$WORK/hup.out" sched_wait_ms_per_resync) ms runnable but waiting for a CPU (schedstat)"
	echo "  baseline_scan: CPU $(kv "$WORK/scan.out" cpu_ms_per_pass) ms, wall $(kv "$WORK/scan.out" wall_ms_per_pass) ms per pass over $(kv "$WORK/scan.out" files) files"
	[ "$(kv "$WORK/hup.out" not_noop)" = 0 ] || note "WARNING: $(kv "$WORK/hup.out" not_noop) SIGHUP resyncs parsed/upserted/deleted something: not a no-op"
	result "no-op resync: daemon's log timing (median)" "$(kv "$WORK/hup.out" log_ms_median)" "$(kv "$WORK/scan.out" wall_ms_per_pass)" ms lt 50
	result "no-op resync: CPU (/proc utime+stime)" "$(kv "$WORK/hup.out" cpu_ms_per_resync)" "$(kv "$WORK/scan.out" cpu_ms_per_pass)" ms lt 50
	echo
}

# 3. Edit → status latency over $EDITS durable edits, bangerd vs
#    baseline_inotify, by the same driver (edit_latency). They alternate in
#    $EDIT_BLOCKS blocks so the machine's I/O weather (fsync latency swings
#    several-fold on this shared disk) hits both alike; the one not being
#    measured is SIGSTOPped so the two never compete, and after SIGCONT each
#    gets a moment to work off the other's edits. bangerd edits vm-A, the
#    baseline vm-B, so catching up never looks like an answer.
EDIT_BLOCKS=${BENCH_EDIT_BLOCKS:-4}
SETTLE=0.5
section_edit_latency() {
	local a b
	a=vm-$(printf %05d $((N / 2)))
	b=vm-$(printf %05d $((N / 2 + 1)))
	local per=$((EDITS / EDIT_BLOCKS)) blk f
	echo "== edit → status latency: $((per * EDIT_BLOCKS)) durable edits ($EDIT_BLOCKS alternating blocks of $per) with $N files present"
	if ! daemon_ensure; then
		result "edit → status p99 ($EDITS edits)" - - ms ratio 3
		return
	fi
	baseline_dir edit
	: >"$WORK/base-inotify.out"
	"$BB/baseline_inotify" "$SPEC" "$BSTATUS" >"$WORK/base-inotify.out" 2>&1 &
	BASE_PID=$!
	for _ in $(seq 100); do grep -q ready "$WORK/base-inotify.out" && break; sleep 0.02; done
	kill -STOP "$BASE_PID"
	: >"$WORK/edit.samples"; : >"$WORK/edit-base.samples"; : >"$WORK/edit.timeouts"
	for blk in $(seq "$EDIT_BLOCKS"); do
		sleep "$SETTLE"
		"$BB/edit_latency" "$SPEC" "$STATUS" "$a" "$per" generation "$WORK/edit.samples" >"$WORK/edit.out" ||
			note "block $blk, bangerd: $(kv "$WORK/edit.out" timeouts) edits not reflected in time"
		kill -STOP "$DAEMON_PID"; kill -CONT "$BASE_PID"
		sleep "$SETTLE"
		"$BB/edit_latency" "$SPEC" "$BSTATUS" "$b" "$per" memory "$WORK/edit-base.samples" >"$WORK/edit-base.out" ||
			note "block $blk, baseline: $(kv "$WORK/edit-base.out" timeouts) edits not reflected in time"
		kill -STOP "$BASE_PID"; kill -CONT "$DAEMON_PID"
		echo "  block $blk: bangerd p50 $(kv "$WORK/edit.out" p50_us) / p99 $(kv "$WORK/edit.out" p99_us) µs (driver's write p50 $(kv "$WORK/edit.out" write_p50_us)); baseline p50 $(kv "$WORK/edit-base.out" p50_us) / p99 $(kv "$WORK/edit-base.out" p99_us) µs (driver's write p50 $(kv "$WORK/edit-base.out" write_p50_us))"
	done
	kill "$BASE_PID"; kill -CONT "$BASE_PID"; wait "$BASE_PID" 2>/dev/null; BASE_PID=
	# pct FILE P: nearest-rank percentile of the samples, in ms.
	pct() { sort -n "$1" | awk -v p="$2" '{v[NR]=$1} END {if (!NR) {print "-"; exit} r=int(p/100*NR+0.999999); if (r<1) r=1; printf "%.2f", v[r]/1000}'; }
	local n_ok n_base
	n_ok=$(wc -l <"$WORK/edit.samples"); n_base=$(wc -l <"$WORK/edit-base.samples")
	for f in edit edit-base; do
		echo "  $( [ $f = edit ] && echo "bangerd         " || echo "baseline_inotify"): $(wc -l <"$WORK/$f.samples")/$((per * EDIT_BLOCKS)) reflected; p50 $(pct "$WORK/$f.samples" 50) ms, p90 $(pct "$WORK/$f.samples" 90) ms, p99 $(pct "$WORK/$f.samples" 99) ms, max $(pct "$WORK/$f.samples" 100) ms"
	done
	local p50 p99
	p50=$(pct "$WORK/edit.samples" 50); p99=$(pct "$WORK/edit.samples" 99)
	[ "$n_ok" = $((per * EDIT_BLOCKS)) ] || { p50=-; p99=-; note "bangerd reflected only $n_ok/$((per * EDIT_BLOCKS)) edits"; }
	[ "$n_base" = $((per * EDIT_BLOCKS)) ] || note "baseline reflected only $n_base/$((per * EDIT_BLOCKS)) edits"
	result "edit → status p50 ($n_ok edits)" "$p50" "$(pct "$WORK/edit-base.samples" 50)" ms info -
	result "edit → status p99 ($n_ok edits)" "$p99" "$(pct "$WORK/edit-base.samples" 99)" ms ratio 3
	echo
}

# 4. Peak RSS (VmHWM) of bangerd: after the cold sync, and over its whole life
#    (read just before it was stopped). Baseline: baseline_cold's peak RSS.
section_peak_rss() {
	echo "== peak RSS of bangerd (VmHWM)"
	local now=
	[ -n "$DAEMON_PID" ] && now=$(awk '/^VmHWM/ {print $2}' "/proc/$DAEMON_PID/status" 2>/dev/null)
	[ -n "$now" ] && DAEMON_HWM_KB=$now
	if [ -z "$COLD_HWM_KB" ]; then
		daemon_ensure && DAEMON_HWM_KB=$COLD_HWM_KB
	fi
	[ -f "$WORK/cold-base.out" ] || { specs_ensure && baseline_dir rss && "$BB/baseline_cold" "$SPEC" "$BSTATUS" >"$WORK/cold-base.out"; }
	local base
	base=$(kv "$WORK/cold-base.out" hwm_kb)
	to_mib() { awk -v k="$1" 'BEGIN { if (k == "") print "-"; else printf "%.1f", k / 1024 }'; }
	echo "  after cold sync (max over runs): $(to_mib "$COLD_HWM_KB") MiB; last daemon's whole life (cold sync, $HUPS resyncs, $EDITS edits): $(to_mib "$DAEMON_HWM_KB") MiB; baseline_cold: $(to_mib "$base") MiB"
	result "peak RSS (VmHWM) after cold sync" "$(to_mib "$COLD_HWM_KB")" "$(to_mib "$base")" MiB lt 64
	result "peak RSS (VmHWM) cold+resyncs+edits" "$(to_mib "$DAEMON_HWM_KB")" "$(to_mib "$base")" MiB lt 64
	echo
}

# ---- main -------------------------------------------------------------------

for tool in mkspecs cold_sync baseline_cold hup_cpu baseline_scan edit_latency baseline_inotify; do
	[ -x "$BB/$tool" ] || { echo "bench: $BB/$tool missing; run make bench" >&2; exit 1; }
done
[ -x "$BANGERD" ] || { echo "bench: $BANGERD missing" >&2; exit 1; }
: >"$RESULTS"
: >"$NOTES"
echo "banger benchmarks — $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo
machine
for s in $SECTIONS; do
	if ! declare -F "section_$s" >/dev/null; then
		note "unknown section '$s' (have: $(declare -F | sed -n 's/^declare -f section_//p' | tr '\n' ' '))"
		continue
	fi
	"section_$s"
done
daemon_stop
if [ -s "$NOTES" ]; then echo "== notes"; cat "$NOTES"; fi
print_table
echo "(total $((SECONDS - T_START)) s)"
exit 0
