#!/bin/bash
# bench/run.sh — banger's benchmarks (`make bench`). Every figure is printed
# next to a baseline measured in the same run, with the ratio and the target.
# Missing a target prints MISS loudly but exits 0: benchmarks report, they do
# not gate the build. A benchmark that cannot measure (a tool dies, bangerd
# exits, status files are missing) is printed as FAIL and also exits 0, with
# the reason above the table.
#
# Sections are shell functions named section_<name>, run in the order of
# $BENCH_SECTIONS. To add one: write section_<name>, call `result` for each
# figure, and add <name> to DEFAULT_SECTIONS. Helpers below start and stop a
# synced bangerd (daemon_ensure / daemon_stop; vmd_start / vmd_stop for one
# with real guests in the bench's netns) so sections can run alone:
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
#
# The sections that boot real QEMU guests (vmm_exec, confine, vmm_kill,
# adoption, idle) run bangerd and their baselines in a private network namespace
# (ip netns, deleted at the end) with --driver qemu --image-dir
# $BENCH_GUEST_DIR (default build/guest, from `make guest-image`); the
# observers (exec_latency, kill_latency, adopt, idle_wakeups) stay in the
# host namespace, where the kernel's proc connector is (they only read
# /proc and files, and create nothing). Knobs: BENCH_BOOTS (24),
# BENCH_KILLS (20), BENCH_CONFINE_BOOTS (12 per mode), BENCH_CONFINE_BLOCK (3),
# BENCH_ADOPT_NS ("1 3 6"), BENCH_ADOPT_ROUNDS (3), BENCH_IDLE_S (60),
# BENCH_IDLE_VMS (3), BENCH_SUSPEND_ROUNDS (3), BENCH_SUSPEND_MEMS ("128 256").
# Clean-up kills only processes this
# run started: by pid, and QEMUs whose command line holds this run's work dir.
#
# scale runs BENCH_SCALE_N (1000)
# Firecracker VMs against the C test double build/fc-double-lite in the
# private netns; knobs BENCH_SCALE_CONC (8, the baseline's concurrency),
# BENCH_SCALE_KILLS (20), BENCH_SCALE_START_CAP (900 s),
# BENCH_SCALE_ADOPT_ROUNDS (3), BENCH_SCALE_NET (1; 0: VMs without network).
# Its clean-up kills the doubles whose --api-sock is under this run's work dir.
set -u
BUILD=${BUILD:-build}
BANGERD=$(realpath "${BENCH_BANGERD:-$BUILD/bangerd}")
BB=$BUILD/bench
N=${BENCH_N:-10000}
EDITS=${BENCH_EDITS:-200}
HUPS=${BENCH_HUPS:-20}
COLD_RUNS=${BENCH_COLD_RUNS:-3}
DEFAULT_SECTIONS="cold_sync noop_resync edit_latency peak_rss burst vmm_exec confine vmm_kill adoption idle suspend scale"
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
	scale_stop
	vm_cleanup
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
	# An empty field would vanish when print_table splits on tabs.
	local f=("$@") i
	for i in "${!f[@]}"; do [ -n "${f[$i]}" ] || f[i]=-; done
	printf '%s\t%s\t%s\t%s\t%s\t%s\n' "${f[@]}" >>"$RESULTS"
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
	echo "guests:     BENCH_BOOTS=$BOOTS BENCH_CONFINE_BOOTS=$CONFINE_BOOTS BENCH_CONFINE_BLOCK=$CONFINE_BLOCK BENCH_KILLS=$KILLS BENCH_ADOPT_NS=\"$ADOPT_NS\" BENCH_ADOPT_ROUNDS=$ADOPT_ROUNDS BENCH_IDLE_S=$IDLE_S BENCH_IDLE_VMS=$IDLE_VMS; $(qemu-system-x86_64 --version 2>/dev/null | head -n1), TCG, 128 MiB, 1 vCPU, kernel+rootfs from $GUEST; bangerd --driver qemu --image-dir $GUEST --stop-timeout 2 in netns banger-bench-$TOK"
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

# 5. Burst: $N spec files written into the spec dir of a running, synced
#    bangerd (a GitOps sync), timed from the last write to the last status
#    landing (burst.c). Baseline: a cold sync of the same files by a fresh
#    bangerd, in the same run. Each bangerd here has its own dirs; the
#    section's are new (see the note on deletes).
section_burst() {
	echo "== burst: $N spec files written while a synced bangerd runs"
	daemon_stop
	RUN=$((RUN + 1))
	local d=$WORK/burst$RUN
	local bspec=$d/specs args
	mkdir -p "$bspec" "$d/state" "$d/status" "$d/cold-state" "$d/cold-status"
	bargs() { # STATE STATUS
		args=(--spec-dir "$bspec" --status-dir "$2" --state-dir "$1" --runtime-dir "$1/run"
			--node-name bench --resync 0 --log-level debug)
	}
	bargs "$d/state" "$d/status"
	: >"$d/bangerd.log"
	if ! "$BB/cold_sync" "$d/bangerd.log" "$d/status" 0 "$BANGERD" "${args[@]}" >"$d/start.out"; then
		note "burst: bangerd did not start on an empty spec dir: $(tail -n 3 "$d/bangerd.log" | tr '\n' ' ')"
		result "burst, $N files: last write → all status" - - ms ratio 1.5
		return
	fi
	DAEMON_PID=$(kv "$d/start.out" pid)
	"$BB/burst" "$bspec" "$d/status" "$N" >"$d/burst.out"
	local rc=$?
	local batches
	batches=$(grep -c 'batch: ' "$d/bangerd.log")
	echo "  burst: writes $(kv "$d/burst.out" write_ms) ms; last write → all status $(kv "$d/burst.out" last_ms) ms; first write → all status $(kv "$d/burst.out" total_ms) ms; $(kv "$d/burst.out" verified)/$N verified, $(kv "$d/burst.out" status_files) in dir; $batches batches; CPU $(awk '{printf "%.0f", ($14 + $15) * 1000 / '"$(getconf CLK_TCK)"'}' "/proc/$DAEMON_PID/stat" 2>/dev/null) ms since start"
	[ $rc = 0 ] || note "burst: exit $rc ($(tr '\n' ' ' <"$d/burst.out")); log: $(tail -n 3 "$d/bangerd.log" | tr '\n' ' ')"
	daemon_stop
	bargs "$d/cold-state" "$d/cold-status"
	: >"$d/cold.log"
	"$BB/cold_sync" "$d/cold.log" "$d/cold-status" "$N" "$BANGERD" "${args[@]}" >"$d/cold.out" ||
		note "burst: cold sync of the burst's files exited $?: $(tr '\n' ' ' <"$d/cold.out")"
	DAEMON_PID=$(kv "$d/cold.out" pid)
	echo "  cold sync of the same $N files by a fresh bangerd: $(kv "$d/cold.out" cold_ms) ms ($(kv "$d/cold.out" verified)/$N verified)"
	daemon_stop
	local last=-
	[ $rc = 0 ] && last=$(kv "$d/burst.out" last_ms)
	result "burst, $N files: first write → all status" "$( [ $rc = 0 ] && kv "$d/burst.out" total_ms || echo -)" "$(kv "$d/burst.out" write_ms)" ms info -
	result "burst, $N files: last write → all status" "$last" "$(kv "$d/cold.out" cold_ms)" ms ratio 1.5
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

# ---- sections with real guests ------------------------------------------------
#
# bangerd and the baselines run in a private network namespace; observers
# (exec_latency, kill_latency, adopt, idle_wakeups) in the host namespace.
# Every VM name carries this run's token ($TOK), every path is under $WORK.

GUEST=$(realpath -m "${BENCH_GUEST_DIR:-build/guest}")
BOOTS=${BENCH_BOOTS:-24}
CONFINE_BOOTS=${BENCH_CONFINE_BOOTS:-12}
CONFINE_BLOCK=${BENCH_CONFINE_BLOCK:-3}
KILLS=${BENCH_KILLS:-20}
ADOPT_NS=${BENCH_ADOPT_NS:-1 3 6}
ADOPT_ROUNDS=${BENCH_ADOPT_ROUNDS:-3}
IDLE_S=${BENCH_IDLE_S:-60}
IDLE_VMS=${BENCH_IDLE_VMS:-3}
SUSPEND_ROUNDS=${BENCH_SUSPEND_ROUNDS:-3}
SUSPEND_MEMS=${BENCH_SUSPEND_MEMS:-128 256}
TOK=$(basename "$WORK" | sed 's/.*\.//' | tr 'A-Z' 'a-z' | tr -cd 'a-z0-9')
NETNS=
VMD_PID=   # the bangerd of the running VM section (started by `adopt`, not our child)
VMD_LOG=
VMD_STATE=
VMD_STATUS=
VMD_ARGS=()
VM_PIDS=() # baselines started by VM sections (our children)

# pid_gone PID: no such process, or only its zombie is left. A zombie
# thread-group leader is not enough: its other threads (bangerd's watcher)
# may still be exiting, holding the fd table and so the state-dir lock.
pid_gone() {
	[ ! -e "/proc/$1/stat" ] && return 0
	[ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" = Z ] &&
		[ "$(find "/proc/$1/task" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)" -le 1 ]
}
pid_wait_gone() {
	local _
	for _ in $(seq 250); do pid_gone "$1" && return 0; sleep 0.02; done
	return 1
}
# SIGKILL the QEMUs whose command line holds $1 (a path inside $WORK) and wait.
vm_kill_qemus() {
	local p pids
	pids=$(pgrep -f "qemu-system-x86_64 .*$1") || return 0
	for p in $pids; do kill -KILL "$p" 2>/dev/null; done
	for p in $pids; do pid_wait_gone "$p"; done
}
# bg_stop PID: SIGTERM a baseline we started (SIGKILL after 5 s) and reap it.
bg_stop() {
	kill -TERM "$1" 2>/dev/null
	pid_wait_gone "$1" || kill -KILL "$1" 2>/dev/null
	wait "$1" 2>/dev/null
}
vm_cleanup() {
	local p
	vmd_stop
	for p in "${VM_PIDS[@]}"; do bg_stop "$p"; done
	VM_PIDS=()
	# A bangerd whose start timed out was never told to us by pid: its
	# command line holds our work dir.
	for p in $(pgrep -f "bangerd --spec-dir $WORK/" 2>/dev/null); do kill -KILL "$p"; pid_wait_gone "$p"; done
	vm_kill_qemus "$WORK"
	if [ -n "$NETNS" ]; then ip netns del "$NETNS" 2>/dev/null; NETNS=; fi
}

netns_ensure() {
	[ -n "$NETNS" ] && return 0
	if ! [ -f "$GUEST/bzImage" ] || ! [ -f "$GUEST/rootfs.ext4" ] ||
		! command -v qemu-system-x86_64 qemu-img nsenter >/dev/null; then
		note "no guest image in $GUEST (make guest-image) or no qemu-system-x86_64 / qemu-img / nsenter"
		return 1
	fi
	netns_create
}
# The bench's private netns alone (the scale section needs no guest image).
netns_create() {
	[ -n "$NETNS" ] && return 0
	if ! ip netns add "banger-bench-$TOK" || ! ip -n "banger-bench-$TOK" link set lo up; then
		note "ip netns add banger-bench-$TOK failed"
		return 1
	fi
	NETNS=banger-bench-$TOK
}

# guest_spec NAME [MEMORY]: a Running QEMU guest with a readiness probe.
guest_spec() {
	cat <<YAML
apiVersion: banger/v1
kind: VM
metadata:
  name: $1
spec:
  state: Running
  vmm: qemu
  memoryMiB: ${2:-128}
  kernel: {path: $GUEST/bzImage}
  rootfs: {path: $GUEST/rootfs.ext4}
  readiness: {tcpPort: 80, timeoutSeconds: 90}
YAML
}
# put FILE: stdin to FILE atomically (temp + rename), as an editor saves.
put() { local t; t=$(dirname "$1")/.put.$$.tmp; cat >"$t" && mv -f "$t" "$1"; }
status_running() { grep -q '"phase": "Running"' "$1/$2.status.json" 2>/dev/null; }
status_pid() { sed -n 's/.*"pid": \([0-9][0-9]*\).*/\1/p' "$1/$2.status.json" 2>/dev/null; }
# vm_wait_running STATUS_DIR NAME...: set-up only (polled), up to 180 s.
vm_wait_running() {
	local dir=$1 n deadline=$((SECONDS + 180))
	shift
	for n in "$@"; do
		while ! status_running "$dir" "$n"; do
			if [ $SECONDS -ge $deadline ]; then
				note "$n: not Running after 180 s; status: $(tr -d '\n' <"$dir/$n.status.json" 2>/dev/null | tr -s ' ' | cut -c1-400)"
				return 1
			fi
			sleep 0.1
		done
	done
}
# pctl FILE P [DIV]: nearest-rank percentile of FILE's numbers, divided by DIV.
pctl() { sort -g "$1" | awk -v p="$2" -v s="${3:-1}" '{v[NR]=$1} END {if (!NR) {print "-"; exit} r=int(p/100*NR+0.999999); if (r<1) r=1; printf "%.2f", v[r]/s}'; }

# vmd_start LABEL SPEC_DIR ARGS...: bangerd on new state and status dirs, in
# the private netns, started (and timed to "initial sync done") by `adopt`.
vmd_start() {
	local d=$WORK/$1 spec=$2
	shift 2
	mkdir -p "$d/status" "$d/state"
	VMD_STATUS=$d/status
	VMD_STATE=$d/state
	VMD_LOG=$d/bangerd.log
	VMD_ARGS=(--spec-dir "$spec" --status-dir "$d/status" --state-dir "$d/state"
		--runtime-dir "$d/state/run" --node-name bench --image-dir "$GUEST" --driver qemu
		--stop-timeout 2 "$@")
	vmd_exec "$d/start.out" -
}
# vmd_exec OUT NAMES: (re)start bangerd with VMD_ARGS; NAMES as for adopt.
vmd_exec() {
	"$BB/adopt" "$VMD_LOG" "$VMD_STATUS" "$2" "$(command -v nsenter)" --net="/run/netns/$NETNS" -- \
		"$BANGERD" "${VMD_ARGS[@]}" >"$1"
	local rc=$?
	VMD_PID=$(kv "$1" pid)
	if [ $rc -ne 0 ]; then
		note "bangerd start failed (adopt exited $rc: $(tr '\n' ' ' <"$1")); log: $(tail -n 3 "$VMD_LOG" | tr '\n' ' ')"
		return 1
	fi
}
vmd_kill9() {
	[ -n "$VMD_PID" ] || return 0
	kill -KILL "$VMD_PID" 2>/dev/null
	pid_wait_gone "$VMD_PID"
	VMD_PID=
}
# instance_cgroups_remove STATE_DIR: the (empty) VM cgroups a bangerd made
# for that state dir's instance, whose teardown never ran (its VMMs killed).
instance_cgroups_remove() {
	local g dd
	[ -f "$1/banger.db" ] || return 0
	g=$(/usr/bin/python3 -c 'import sqlite3, sys
print(sqlite3.connect(sys.argv[1]).execute("select value from meta where key = ?", ("instance",)).fetchone()[0])' "$1/banger.db" 2>/dev/null)
	[ -n "$g" ] || return 0
	for dd in /sys/fs/cgroup/*/"banger-$g" /sys/fs/cgroup/"banger-$g"; do
		[ -d "$dd" ] || continue
		rmdir "$dd"/*/ 2>/dev/null
		rmdir "$dd" 2>/dev/null
	done
	return 0
}
# SIGTERM bangerd (VMs keep running), then kill its QEMUs and remove their cgroups.
vmd_stop() {
	if [ -n "$VMD_PID" ]; then
		kill -TERM "$VMD_PID" 2>/dev/null
		pid_wait_gone "$VMD_PID" || kill -KILL "$VMD_PID" 2>/dev/null
		VMD_PID=
	fi
	if [ -n "$VMD_STATE" ]; then
		vm_kill_qemus "$VMD_STATE"
		sleep 0.2 # killed processes leave their cgroups asynchronously
		instance_cgroups_remove "$VMD_STATE"
	fi
	VMD_STATE=
}
# argv_part FILE PREFIX: the value after PREFIX in a NUL-separated argv, up to a comma.
argv_part() { tr '\0' '\n' <"$1" | sed -n "s|^$2\([^,]*\).*|\1|p" | head -n1; }
# qemu_passed_fds PID ARGV_FILE: "N ro|rw PATH" for each `-add-fd
# fd=N,set=S,opaque=O` of a running QEMU (what exec_latency writes as
# ARGV_SAVE.fds just after an exec), for the baselines. A running QEMU has
# already dup'd the passed fds away from their numbers, so the files are
# named by opaque (vmm/qemu_disk.c: root-*, work-*, backing-ro): the root disk
# is the file QEMU holds open as <vm dir>/root.*, the backing file the guest
# image's rootfs.
qemu_passed_fds() {
	local root="" l n o
	for l in /proc/"$1"/fd/*; do
		l=$(readlink "$l")
		[[ "$l" =~ /root\.(qcow2|img|reflink\.img)$ ]] && { root=$l; break; }
	done
	[ -n "$root" ] || return 1
	tr '\0' '\n' <"$2" | sed -n 's/^fd=\([0-9]*\),set=[0-9]*,opaque=\([a-z-]*\).*/\1 \2/p' |
		while read -r n o; do
			case $o in
			root-*) echo "$n ${o#root-} $root" ;;
			work-*) echo "$n ${o#work-} $(dirname "$root")/work.ext4" ;;
			backing-ro) echo "$n ro $(realpath "$GUEST/rootfs.ext4")" ;;
			esac
		done
}

# 5. Spec write → VMM exec. exec_latency writes a spec durably and takes the
#    exec time from the kernel (proc connector), one boot per call; bangerd
#    and baseline_exec alternate boot by boot; each boot is deleted (and gone)
#    before the next. The first bangerd boot is a warm-up (not counted) that
#    also captures bangerd's QEMU argv for the baseline.
section_vmm_exec() {
	local m50="VMM exec p50: spec write → exec" m99="VMM exec p99: spec write → exec"
	local madd="controller adds at p99 (bangerd − base)" madd50="controller adds at p50 (bangerd − base)"
	local goal=5 # ms: issue 9, point 6 (the controller adds < 5 ms at p99)
	echo "== spec write → VMM exec: $BOOTS boots each, bangerd and baseline_exec alternating"
	vmm_exec_fail() { result "$m99" - - ms info -; result "$madd" - - ms lt "$goal"; vmd_stop; }
	netns_ensure || { vmm_exec_fail; return; }
	local spec=$WORK/exec-specs bspec=$WORK/exec-base-specs bst=$WORK/exec-base-status bdir=$WORK/exec-base
	local warm=xw$TOK i f
	# bdir/chroot: bangerd's argv chroots a confined QEMU into <vm dir>/chroot.
	mkdir -p "$spec" "$bspec" "$bst" "$bdir/chroot"
	vmd_start exec "$spec" --resync 0 --log-level debug || { vmm_exec_fail; return; }
	if ! "$BB/exec_latency" bangerd "$spec" "$VMD_STATUS" "$warm" "$GUEST" "$WORK/qemu.argv" >"$WORK/exec-warm.out"; then
		note "warm-up boot failed; bangerd log: $(tail -n 5 "$VMD_LOG" | tr '\n' ' ')"
		vmm_exec_fail
		return
	fi
	local serial api tap vmdir
	# bangerd's QEMU serves the guest serial on a socket in the runtime dir;
	# the baseline serves its own (nobody reads it: QEMU discards, as for a
	# VM while bangerd is down). The VM dir is the root disk's.
	serial=$(kv "$WORK/exec-warm.out" serial)
	api=$(kv "$WORK/exec-warm.out" api_sock)
	tap=$(kv "$WORK/exec-warm.out" tap)
	vmdir=$(dirname "$(kv "$WORK/exec-warm.out" root_disk)")
	# exec_latency names the root disk from the fd bangerd passed for it;
	# without it the substitution below would rewrite every "." of the argv.
	[ "$vmdir" != . ] || { note "no root disk among the fds of bangerd's QEMU ($WORK/qemu.argv.fds)"; vmm_exec_fail; return; }
	echo "  warm-up boot (not counted): exec after $(kv "$WORK/exec-warm.out" exec_us) µs, Ready after $(kv "$WORK/exec-warm.out" ready_ms) ms; QEMU argv captured ($(tr '\0' '\n' <"$WORK/qemu.argv" | wc -l) args)"
	qemu-img create -q -f qcow2 -b "$GUEST/rootfs.ext4" -F raw "$bdir/root.qcow2" || { note "qemu-img create failed"; vmm_exec_fail; return; }
	# A persistent tap, as bangerd's taps are (QEMU would otherwise create
	# one and delete it on exit). nsenter execs: $! is the baseline's pid.
	ip -n "$NETNS" tuntap add name "bx$TOK" mode tap || note "tuntap add bx$TOK failed"
	nsenter --net="/run/netns/$NETNS" -- "$BB/baseline_exec" "$bspec" "$bdir/qmp.sock" "$WORK/qemu.argv" "$warm" \
		"$serial" "$bdir/serial.sock" "$api" "$bdir/qmp.sock" "$vmdir" "$bdir" "$tap" "bx$TOK" >"$WORK/exec-base.out" 2>"$WORK/exec-base.err" &
	local bpid=$!
	VM_PIDS+=("$bpid")
	for _ in $(seq 100); do grep -q ready "$WORK/exec-base.out" && break; sleep 0.02; done
	for f in exec exec-fork exec-wfork exec-write exec-ready exec-gone base base-fork base-wfork; do : >"$WORK/$f.samples"; done
	local bad=0
	for i in $(seq "$BOOTS"); do
		if ! "$BB/exec_latency" bangerd "$spec" "$VMD_STATUS" "xb$TOK-$i" "$GUEST" >"$WORK/exec.out"; then
			note "boot $i (bangerd) failed; log: $(tail -n 3 "$VMD_LOG" | tr '\n' ' ')"
			bad=1
			break
		fi
		kv "$WORK/exec.out" exec_us >>"$WORK/exec.samples"
		awk -F= '/^exec_us=/ {e=$2} /^fork_us=/ {f=$2} END {print e - f}' "$WORK/exec.out" >>"$WORK/exec-fork.samples"
		awk -F= '/^write_us=/ {w=$2} /^fork_us=/ {f=$2} END {print f - w}' "$WORK/exec.out" >>"$WORK/exec-wfork.samples"
		kv "$WORK/exec.out" write_us >>"$WORK/exec-write.samples"
		kv "$WORK/exec.out" ready_ms >>"$WORK/exec-ready.samples"
		kv "$WORK/exec.out" gone_ms >>"$WORK/exec-gone.samples"
		sleep 0.2
		if ! "$BB/exec_latency" baseline "$bspec" "$bst" "xa$TOK-$i" "$GUEST" >"$WORK/exec-b.out"; then
			note "boot $i (baseline) failed: $(tail -n 3 "$WORK/exec-base.err" | tr '\n' ' ')"
			bad=1
			break
		fi
		kv "$WORK/exec-b.out" exec_us >>"$WORK/base.samples"
		awk -F= '/^exec_us=/ {e=$2} /^fork_us=/ {f=$2} END {print e - f}' "$WORK/exec-b.out" >>"$WORK/base-fork.samples"
		awk -F= '/^write_us=/ {w=$2} /^fork_us=/ {f=$2} END {print f - w}' "$WORK/exec-b.out" >>"$WORK/base-wfork.samples"
		sleep 0.2
	done
	bg_stop "$bpid"
	vmd_stop
	local n nb
	n=$(wc -l <"$WORK/exec.samples")
	nb=$(wc -l <"$WORK/base.samples")
	echo "  bangerd        : $n boots; spec write → exec p50 $(pctl "$WORK/exec.samples" 50 1000) ms, p90 $(pctl "$WORK/exec.samples" 90 1000), p99 $(pctl "$WORK/exec.samples" 99 1000), max $(pctl "$WORK/exec.samples" 100 1000) ms (of which the durable spec write p50 $(pctl "$WORK/exec-write.samples" 50 1000) ms; written → fork p50 $(pctl "$WORK/exec-wfork.samples" 50 1000) ms; fork → exec p50 $(pctl "$WORK/exec-fork.samples" 50 1000) ms)"
	echo "  baseline_exec  : $nb boots; spec write → exec p50 $(pctl "$WORK/base.samples" 50 1000) ms, p90 $(pctl "$WORK/base.samples" 90 1000), p99 $(pctl "$WORK/base.samples" 99 1000), max $(pctl "$WORK/base.samples" 100 1000) ms (written → fork p50 $(pctl "$WORK/base-wfork.samples" 50 1000) ms; fork → exec p50 $(pctl "$WORK/base-fork.samples" 50 1000) ms)"
	# Its exec time counts whatever QEMU does next, but a baseline QEMU that
	# could not open its disks would not be the same program run: say so.
	echo "  baseline QEMUs that opened their disks and answered QMP: $(grep -c 'QMP ready' "$WORK/exec-base.err")/$nb"
	echo "  bangerd boots: Ready (probe passed) p50 $(pctl "$WORK/exec-ready.samples" 50) ms after the write; spec delete → VMM and status gone p50 $(pctl "$WORK/exec-gone.samples" 50) ms"
	# The daemon's own per-stage timings of the counted boots (debug log).
	grep -E " xb$TOK-[0-9]+: timing: parse" "$VMD_LOG" |
		sed 's/.*parse \([0-9.]*\) ms, store \([0-9.]*\) ms.*/\1 \2/' >"$WORK/stages-sync.txt"
	grep -E " xb$TOK-[0-9]+: timing: record" "$VMD_LOG" |
		sed 's/.*record \([0-9.]*\) ms.*/\1/' >"$WORK/stages-rec.txt"
	grep -E " xb$TOK-[0-9]+: timing: firewall" "$VMD_LOG" |
		sed 's/.*firewall \([0-9.]*\) ms, disk \([0-9.]*\) ms, cgroup \([0-9.]*\) ms, tap \([0-9.]*\) ms, confine \([0-9.]*\) ms, launch \([0-9.]*\) ms.*/\1 \2 \3 \4 \5 \6/' >"$WORK/stages-rt.txt"
	local col line=""
	for col in parse:1:sync store:2:sync record:1:rec firewall:1:rt disk:2:rt cgroup:3:rt tap:4:rt confine:5:rt launch:6:rt; do
		IFS=: read -r nm c file <<<"$col"
		awk -v c="$c" '{print $c}' "$WORK/stages-$file.txt" >"$WORK/stage.txt"
		line="$line, $nm $(pctl "$WORK/stage.txt" 50) / $(pctl "$WORK/stage.txt" 99)"
	done
	echo "  bangerd stages (debug log, ms p50 / p99 over $(wc -l <"$WORK/stages-rt.txt") boots)${line#,}; launch = spawn + wait for QMP, ends after the exec"
	echo "  root disk from the disk pool (made after the previous boot's exec): $(grep -cE " xb$TOK-[0-9]+: timing: firewall.*root disk from the pool" "$VMD_LOG") of $(wc -l <"$WORK/stages-rt.txt") boots"
	[ "$n" = "$BOOTS" ] && [ "$nb" = "$BOOTS" ] && [ $bad = 0 ] || { result "$m99" - - ms info -; result "$madd" - - ms lt "$goal"; return; }
	local b50 b99 a50 a99
	b50=$(pctl "$WORK/exec.samples" 50 1000); b99=$(pctl "$WORK/exec.samples" 99 1000)
	a50=$(pctl "$WORK/base.samples" 50 1000); a99=$(pctl "$WORK/base.samples" 99 1000)
	result "$m50 ($n boots)" "$b50" "$a50" ms info -
	result "$m99 ($n boots)" "$b99" "$a99" ms info -
	result "$madd50" "$(awk -v a="$b50" -v b="$a50" 'BEGIN {printf "%.2f", a - b}')" - ms info -
	result "$madd" "$(awk -v a="$b99" -v b="$a99" 'BEGIN {printf "%.2f", a - b}')" - ms lt "$goal"
	echo
}

# 5b. Confinement cost: spec write → Ready under a confined bangerd (the
#    default: own uid, cgroup, chroot, seccomp) and under --no-confine, same
#    guest, same run. Blocks of BENCH_CONFINE_BLOCK boots alternate between
#    the two daemons (one at a time: both would sweep the other's taps), so
#    drift in the machine's load hits both. Target: confined within 5 %.
section_confine() {
	local m="confined: spec write → Ready p50" mx="confined: spec write → exec p50"
	local rounds=$(( (CONFINE_BOOTS + CONFINE_BLOCK - 1) / CONFINE_BLOCK )) r i mode label bad=0
	echo "== confinement: spec write → Ready, confined vs --no-confine, $rounds rounds of $CONFINE_BLOCK boots each"
	confine_fail() { result "$m" - - ms ratio 1.05; vmd_stop; }
	netns_ensure || { confine_fail; return; }
	for f in c-ready c-exec u-ready u-exec; do : >"$WORK/$f.samples"; done
	for r in $(seq "$rounds"); do
		for mode in c u; do
			local spec=$WORK/confine-$mode$r-specs
			mkdir -p "$spec"
			if [ $mode = c ]; then
				vmd_start "confine-c$r" "$spec" --resync 0 || { bad=1; break 2; }
			else
				vmd_start "confine-u$r" "$spec" --resync 0 --no-confine || { bad=1; break 2; }
			fi
			# One boot per daemon not counted: the first start pays for
			# cold page cache and the bridge.
			for i in $(seq 0 "$CONFINE_BLOCK"); do
				label=c$mode$TOK-$r-$i
				if ! "$BB/exec_latency" bangerd "$spec" "$VMD_STATUS" "$label" "$GUEST" >"$WORK/confine.out"; then
					note "confine: boot $label failed; log: $(tail -n 3 "$VMD_LOG" | tr '\n' ' ')"
					bad=1
					break 3
				fi
				[ "$i" = 0 ] && continue
				kv "$WORK/confine.out" ready_ms >>"$WORK/$mode-ready.samples"
				kv "$WORK/confine.out" exec_us >>"$WORK/$mode-exec.samples"
				sleep 0.2
			done
			if [ $mode = c ] && ! grep -q "uid [1-9][0-9]*)" "$VMD_LOG"; then
				note "confine: the confined daemon did not log a confined start"
				bad=1
			fi
			vmd_stop
		done
	done
	vmd_stop
	local nc nu
	nc=$(wc -l <"$WORK/c-ready.samples")
	nu=$(wc -l <"$WORK/u-ready.samples")
	echo "  confined       : $nc boots; Ready p50 $(pctl "$WORK/c-ready.samples" 50) ms, p90 $(pctl "$WORK/c-ready.samples" 90) ms; exec p50 $(pctl "$WORK/c-exec.samples" 50 1000) ms"
	echo "  --no-confine   : $nu boots; Ready p50 $(pctl "$WORK/u-ready.samples" 50) ms, p90 $(pctl "$WORK/u-ready.samples" 90) ms; exec p50 $(pctl "$WORK/u-exec.samples" 50 1000) ms"
	[ $bad = 0 ] && [ "$nc" -gt 0 ] && [ "$nc" = "$nu" ] || { confine_fail; return; }
	result "$m ($nc boots)" "$(pctl "$WORK/c-ready.samples" 50)" "$(pctl "$WORK/u-ready.samples" 50)" ms ratio 1.05
	result "$mx ($nc boots)" "$(pctl "$WORK/c-exec.samples" 50 1000)" "$(pctl "$WORK/u-exec.samples" 50 1000)" ms info -
	echo
}

# 6. VMM kill → status. One Running VM under bangerd, one under
#    baseline_pidfd, both booted from bangerd's argv; they alternate kill by
#    kill, each killed only when both guests are up and idle. bangerd's VM is
#    brought back by a spec edit (memoryMiB 128 ↔ 132), which resets the
#    crash back-off (1 s, 2 s, 4 s …) so every kill meets the same state.
section_vmm_kill() {
	local m50="VMM kill → status p50" m99="VMM kill → status p99"
	echo "== VMM kill -9 → status no longer shows the pid: $KILLS kills each, bangerd and baseline_pidfd alternating"
	vmm_kill_fail() { result "$m99" - - ms lt 100; vmd_stop; }
	netns_ensure || { vmm_kill_fail; return; }
	local spec=$WORK/kill-specs bst=$WORK/kill-base-status bdir=$WORK/kill-base
	local name=xk$TOK bname=xq$TOK mem=128 i pid
	mkdir -p "$spec" "$bst" "$bdir/chroot"
	vmd_start kill "$spec" --resync 0 --log-level debug || { vmm_kill_fail; return; }
	guest_spec "$name" "$mem" | put "$spec/$name.yaml"
	vm_wait_running "$VMD_STATUS" "$name" || { vmm_kill_fail; return; }
	pid=$(status_pid "$VMD_STATUS" "$name")
	cat "/proc/$pid/cmdline" >"$WORK/qemu-kill.argv" || { note "no cmdline for pid $pid"; vmm_kill_fail; return; }
	qemu_passed_fds "$pid" "$WORK/qemu-kill.argv" >"$WORK/qemu-kill.argv.fds" || { note "no root disk open in bangerd's QEMU (pid $pid)"; vmm_kill_fail; return; }
	local api serial vmdir tap
	api=$(argv_part "$WORK/qemu-kill.argv" "socket,id=qmp,path=")
	# bangerd reads the serial from a socket; the baseline has no reader, so
	# its QEMU writes the serial to a file (baseline_pidfd waits for the
	# ready line there).
	serial=$(argv_part "$WORK/qemu-kill.argv" "socket,id=console,path=")
	# The root disk is a passed fd (root-rw), not a file= in the argv.
	vmdir=$(dirname "$(awk '$2 == "rw" {print $3; exit}' "$WORK/qemu-kill.argv.fds")")
	[ "$vmdir" != . ] || { note "no root disk among the fds of bangerd's QEMU (pid $pid)"; vmm_kill_fail; return; }
	tap=$(argv_part "$WORK/qemu-kill.argv" "tap,id=net0,ifname=")
	qemu-img create -q -f qcow2 -b "$GUEST/rootfs.ext4" -F raw "$bdir/root.qcow2" || { note "qemu-img create failed"; vmm_kill_fail; return; }
	# A persistent tap like bangerd's: a tap QEMU creates itself is deleted
	# inside its exit (~15-20 ms of netdev unregistering before the pidfd
	# fires), while bangerd deletes its tap after the exit.
	ip -n "$NETNS" tuntap add name "bk$TOK" mode tap || note "tuntap add bk$TOK failed"
	nsenter --net="/run/netns/$NETNS" -- "$BB/baseline_pidfd" "$bst" "$bname" "$bdir/qmp.sock" "$bdir/console.log" "$WORK/qemu-kill.argv" "$name" \
		"socket,id=console,path=$serial,server=on,wait=off" "file,id=console,path=$bdir/console.log" \
		"$api" "$bdir/qmp.sock" "$vmdir" "$bdir" "$tap" "bk$TOK" 2>"$WORK/kill-base.err" &
	local bpid=$!
	VM_PIDS+=("$bpid")
	vm_wait_running "$bst" "$bname" || { note "baseline_pidfd: $(tail -n 2 "$WORK/kill-base.err")"; vmm_kill_fail; return; }
	local f bad=0
	for f in kill kill-exit base-kill base-kill-exit; do : >"$WORK/$f.samples"; done
	for i in $(seq "$KILLS"); do
		if ! "$BB/kill_latency" "$VMD_STATUS" "$name" >"$WORK/kill.out"; then
			note "kill $i (bangerd) not measured; log: $(tail -n 3 "$VMD_LOG" | tr '\n' ' ')"
			bad=1
			break
		fi
		kv "$WORK/kill.out" status_us >>"$WORK/kill.samples"
		kv "$WORK/kill.out" exit_us >>"$WORK/kill-exit.samples"
		mem=$((mem == 128 ? 132 : 128))
		guest_spec "$name" "$mem" | put "$spec/$name.yaml"
		vm_wait_running "$VMD_STATUS" "$name" || { bad=1; break; }
		if ! "$BB/kill_latency" "$bst" "$bname" >"$WORK/kill-b.out"; then
			note "kill $i (baseline) not measured: $(tail -n 2 "$WORK/kill-base.err" | tr '\n' ' ')"
			bad=1
			break
		fi
		kv "$WORK/kill-b.out" status_us >>"$WORK/base-kill.samples"
		kv "$WORK/kill-b.out" exit_us >>"$WORK/base-kill-exit.samples"
		vm_wait_running "$bst" "$bname" || { bad=1; break; }
	done
	bg_stop "$bpid"
	vmd_stop
	local n nb
	n=$(wc -l <"$WORK/kill.samples")
	nb=$(wc -l <"$WORK/base-kill.samples")
	echo "  bangerd        : $n kills; kill → status p50 $(pctl "$WORK/kill.samples" 50 1000) ms, p90 $(pctl "$WORK/kill.samples" 90 1000), p99 $(pctl "$WORK/kill.samples" 99 1000), max $(pctl "$WORK/kill.samples" 100 1000) ms (kill → process gone, pidfd readable: p50 $(pctl "$WORK/kill-exit.samples" 50 1000) ms)"
	echo "  baseline_pidfd : $nb kills; kill → status p50 $(pctl "$WORK/base-kill.samples" 50 1000) ms, p90 $(pctl "$WORK/base-kill.samples" 90 1000), p99 $(pctl "$WORK/base-kill.samples" 99 1000), max $(pctl "$WORK/base-kill.samples" 100 1000) ms (kill → process gone p50 $(pctl "$WORK/base-kill-exit.samples" 50 1000) ms)"
	if [ "$n" != "$KILLS" ] || [ "$nb" != "$KILLS" ] || [ $bad = 1 ]; then
		result "$m99" - "$(pctl "$WORK/base-kill.samples" 99 1000)" ms lt 100
		return
	fi
	result "$m50 ($n kills)" "$(pctl "$WORK/kill.samples" 50 1000)" "$(pctl "$WORK/base-kill.samples" 50 1000)" ms info -
	result "$m99 ($n kills)" "$(pctl "$WORK/kill.samples" 99 1000)" "$(pctl "$WORK/base-kill.samples" 99 1000)" ms lt 100
	echo
}

# 7. Adoption: kill -9 bangerd with N VMs running and start it again;
#    `adopt` times start → "initial sync done" and → every VM's status shows
#    Running with its old pid (a restarted VM fails the figure). Baseline: the
#    same daemon restarted with no VMs at all.
section_adoption() {
	echo "== adoption after kill -9 of bangerd: N VMs running, $ADOPT_ROUNDS restarts each (baseline: the same with no VMs)"
	netns_ensure || { result "adoption: restart → initial sync done" - - ms info -; return; }
	local n have=0 names="" bad=0
	mkdir -p "$WORK/adopt0-specs" "$WORK/adopt-specs"
	: >"$WORK/adopt0.samples"
	if vmd_start adopt0 "$WORK/adopt0-specs" --resync 0 --log-level debug; then
		for _ in $(seq "$ADOPT_ROUNDS"); do
			vmd_kill9
			vmd_exec "$WORK/adopt.out" - || break
			kv "$WORK/adopt.out" sync_ms >>"$WORK/adopt0.samples"
		done
	fi
	vmd_stop
	local base
	base=$(median <"$WORK/adopt0.samples")
	base=${base:--}
	echo "  0 VMs: start → initial sync done: $(tr '\n' ' ' <"$WORK/adopt0.samples")ms"
	vmd_start adopt "$WORK/adopt-specs" --resync 0 --log-level debug || { result "adoption: restart → initial sync done" - "$base" ms info -; return; }
	for n in $ADOPT_NS; do
		while [ "$have" -lt "$n" ]; do
			have=$((have + 1))
			guest_spec "xd$TOK-$have" | put "$WORK/adopt-specs/xd$TOK-$have.yaml"
			names="$names,xd$TOK-$have"
		done
		# shellcheck disable=SC2086
		vm_wait_running "$VMD_STATUS" ${names//,/ } || { bad=1; break; }
		sleep 1 # the last probes and status writes are done
		: >"$WORK/adopt$n.sync"; : >"$WORK/adopt$n.ready"
		local lines=""
		for _ in $(seq "$ADOPT_ROUNDS"); do
			vmd_kill9
			if ! vmd_exec "$WORK/adopt.out" "${names#,}"; then bad=1; break; fi
			kv "$WORK/adopt.out" sync_ms >>"$WORK/adopt$n.sync"
			kv "$WORK/adopt.out" ready_ms >>"$WORK/adopt$n.ready"
			lines="$lines $(kv "$WORK/adopt.out" sync_ms)/$(kv "$WORK/adopt.out" ready_ms)"
		done
		echo "  $n VMs: start → sync done / → all Running with the same pids (ms):$lines; adopted (log) $(kv "$WORK/adopt.out" adopted_log)/$n, restarted $(kv "$WORK/adopt.out" restarted)"
		[ $bad = 0 ] || break
		result "adoption, $n VMs: start → sync done" "$(median <"$WORK/adopt$n.sync")" "$base" ms info -
		result "adoption, $n VMs: → Ready, same pids" "$(median <"$WORK/adopt$n.ready")" "$base" ms info -
	done
	[ $bad = 0 ] || result "adoption, $n VMs: start → sync done" - "$base" ms info -
	vmd_stop
	echo
}

# 9. Suspend and resume (issue 10): one guest with a work disk, per memory
#    size in $SUSPEND_MEMS. Each round: a cold boot (spec Stopped → Running,
#    write → phase Running, i.e. Ready), a suspend (Running → Suspended,
#    write → phase Suspended) and a resume (Suspended → Running, write →
#    phase Running). Baseline of the resume: the cold boot of the same guest;
#    target ≤ 0.25×. The times are spec write → status file, polled every
#    10 ms (an upper bound by up to 10 ms). State size from the status.
phase_wait() { # STATUS NAME PHASE TIMEOUT_S → ms since $2 written (stdout)
	local f=$1/$2.status.json deadline=$((SECONDS + $4))
	while ! grep -q "\"phase\": \"$3\"" "$f" 2>/dev/null; do
		[ $SECONDS -ge $deadline ] && return 1
		sleep 0.01
	done
}
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }
susp_spec() { # NAME MEM STATE
	cat <<YAML
apiVersion: banger/v1
kind: VM
metadata: {name: $1}
spec:
  state: $3
  vmm: qemu
  memoryMiB: $2
  kernel: {path: $GUEST/bzImage}
  rootfs: {path: $GUEST/rootfs.ext4}
  workDisk: {sizeMiB: 16}
  readiness: {tcpPort: 80, timeoutSeconds: 120}
YAML
}
section_suspend() {
	echo "== suspend/resume: one guest per memory size ($SUSPEND_MEMS MiB), $SUSPEND_ROUNDS rounds of cold boot / suspend / resume"
	netns_ensure || { result "resume → Ready (128 MiB)" - - ms info -; return; }
	local spec=$WORK/susp-specs mem r t cold susp res size bad=0
	mkdir -p "$spec"
	vmd_start susp "$spec" --resync 0 || { result "resume → Ready (128 MiB)" - - ms info -; return; }
	for mem in $SUSPEND_MEMS; do
		local n=sp$TOK-$mem
		: >"$WORK/susp$mem.cold"; : >"$WORK/susp$mem.susp"; : >"$WORK/susp$mem.res"; : >"$WORK/susp$mem.size"
		for r in $(seq "$SUSPEND_ROUNDS"); do
			susp_spec "$n" "$mem" Stopped | put "$spec/$n.yaml"
			phase_wait "$VMD_STATUS" "$n" Stopped 60 || { bad=1; break; }
			t=$(date +%s%N); susp_spec "$n" "$mem" Running | put "$spec/$n.yaml"
			phase_wait "$VMD_STATUS" "$n" Running 180 || { bad=1; break; }
			cold=$(ms_since "$t")
			sleep 1 # let the guest settle (its boot work done)
			t=$(date +%s%N); susp_spec "$n" "$mem" Suspended | put "$spec/$n.yaml"
			phase_wait "$VMD_STATUS" "$n" Suspended 60 || { bad=1; break; }
			susp=$(ms_since "$t")
			size=$(sed -n 's/.*state saved at [^,]*, \([0-9]*\) bytes.*/\1/p' "$VMD_STATUS/$n.status.json")
			t=$(date +%s%N); susp_spec "$n" "$mem" Running | put "$spec/$n.yaml"
			phase_wait "$VMD_STATUS" "$n" Running 180 || { bad=1; break; }
			res=$(ms_since "$t")
			echo "$cold" >>"$WORK/susp$mem.cold"; echo "$susp" >>"$WORK/susp$mem.susp"
			echo "$res" >>"$WORK/susp$mem.res"; echo "${size:-0}" >>"$WORK/susp$mem.size"
			echo "  $mem MiB round $r: cold boot → Ready $cold ms; → Suspended $susp ms (state ${size:-?} bytes); resume → Ready $res ms"
		done
		[ $bad = 0 ] || { note "suspend section: $n did not reach the expected phase; status: $(tr -d '\n' <"$VMD_STATUS/$n.status.json" 2>/dev/null | tr -s ' ' | cut -c1-400)"; break; }
		grep -q "$n: qemu resumed from its saved state" "$VMD_LOG" || note "suspend section: $n was never resumed (cold boots only?)"
		local c
		c=$(median <"$WORK/susp$mem.cold")
		result "resume → Ready ($mem MiB)" "$(median <"$WORK/susp$mem.res")" "$c" ms ratio 0.25
		result "suspend: write → Suspended ($mem MiB)" "$(median <"$WORK/susp$mem.susp")" - ms info -
		result "saved state size ($mem MiB guest)" "$(median <"$WORK/susp$mem.size" | awk '{printf "%.1f", $1 / 1048576}')" "$mem" MiB info -
		rm -f "$spec/$n.yaml"
	done
	[ $bad = 0 ] || result "resume → Ready ($mem MiB)" - - ms info -
	vmd_stop
	echo
}

# 8. Idle wake-ups: bangerd with $IDLE_VMS Running VMs and $N Stopped specs,
#    with its defaults (--resync 60, --log-level info), left alone for
#    $IDLE_S s. idle_wakeups counts context switches over all its threads
#    (voluntary + involuntary) and its CPU time (schedstat). Baseline:
#    baseline_idle, blocked in epoll_wait on a 60 s periodic timerfd,
#    measured over the same window.
section_idle() {
	local mw="idle: wake-ups per minute (all threads)" mc="idle: CPU per minute"
	echo "== idle: bangerd with $IDLE_VMS Running VMs and $N Stopped specs, untouched for $IDLE_S s (its defaults: --resync 60, --log-level info)"
	idle_fail() { result "$mw" - - /min lt 60; vmd_stop; }
	netns_ensure || { idle_fail; return; }
	local spec=$WORK/idle-specs i names=()
	mkdir -p "$spec"
	"$BB/mkspecs" "$spec" "$N" >/dev/null || { note "mkspecs failed"; idle_fail; return; }
	for i in $(seq "$IDLE_VMS"); do
		guest_spec "xi$TOK-$i" | put "$spec/xi$TOK-$i.yaml"
		names+=("xi$TOK-$i")
	done
	vmd_start idle "$spec" --log-level info || { idle_fail; return; }
	echo "  start → initial sync done: $(kv "$WORK/idle/start.out" sync_ms) ms"
	vm_wait_running "$VMD_STATUS" "${names[@]}" || { idle_fail; return; }
	sleep 5 # boots done, probes closed, last status written
	"$BB/baseline_idle" 60 >/dev/null &
	local bpid=$! lines0
	VM_PIDS+=("$bpid")
	sleep 1 # its first expiry falls inside the window, not on its edge
	lines0=$(wc -l <"$VMD_LOG")
	if ! "$BB/idle_wakeups" "$IDLE_S" "$VMD_PID" "$bpid" >"$WORK/idle.out"; then
		note "idle_wakeups failed"
		idle_fail
		return
	fi
	bg_stop "$bpid"
	echo "  bangerd      : $(kv "$WORK/idle.out" p0_switches) context switches in $(kv "$WORK/idle.out" seconds) s ($(kv "$WORK/idle.out" p0_voluntary) voluntary, $(kv "$WORK/idle.out" p0_involuntary) involuntary) over $(kv "$WORK/idle.out" p0_threads) threads [$(sed -n 's/^p0_thread=//p' "$WORK/idle.out" | tr '\n' ' ')]; CPU $(kv "$WORK/idle.out" p0_cpu_ms) ms"
	echo "  baseline_idle: $(kv "$WORK/idle.out" p1_switches) context switches, CPU $(kv "$WORK/idle.out" p1_cpu_ms) ms"
	echo "  bangerd's log during the window ($(($(wc -l <"$VMD_LOG") - lines0)) lines):"
	tail -n +$((lines0 + 1)) "$VMD_LOG" | head -n 5 | cut -c1-160 | sed 's/^/    /'
	result "$mw" "$(kv "$WORK/idle.out" p0_per_min)" "$(kv "$WORK/idle.out" p1_per_min)" /min lt 60
	result "$mc" "$(kv "$WORK/idle.out" p0_cpu_ms_per_min)" "$(kv "$WORK/idle.out" p1_cpu_ms_per_min)" ms lt 600
	vmd_stop
	echo
}

# ---- scale (issue 9, point 5) ----------------------------------------------

# 11. Scale: BENCH_SCALE_N (1000) Firecracker VMs on one host, against the
#    light C test double (build/fc-double-lite: Firecracker cannot run here;
#    it boots nothing, so these figures are the controller's and the host's
#    plumbing — taps, nft, cgroups, disks, API — not guests'). bangerd runs
#    in the bench's private netns with --driver firecracker, a /16 bridge
#    subnet (a /24 holds 253 guests) and tiny fake images (raw sparse CoW
#    root disks: no loop or dm devices). Figures, each with a baseline from
#    the same run:
#    - start: N Running specs present at bangerd start → all N Running, vs
#      baseline_fcspawn (N doubles spawned and configured through the API,
#      BENCH_SCALE_CONC at a time, nothing else). Capped at
#      BENCH_SCALE_START_CAP s: a miss reports how many were Running by then.
#    - RSS of bangerd with N running, vs the same bangerd with no VMs.
#    - no-op resync (SIGHUP) with N running, vs baseline_scan.
#    - kill → status p99 under load: BENCH_SCALE_KILLS doubles killed one by
#      one (kill_latency), vs the kernel's kill → process gone (pidfd).
#    - adoption: kill -9 bangerd, restart → initial sync done (and → all N
#      Running with the same pids), vs the same restart with no VMs.
#    BENCH_SCALE_NET=0 gives the VMs no network (no tap, no nft rules).
SCALE_N=${BENCH_SCALE_N:-1000}
SCALE_CONC=${BENCH_SCALE_CONC:-8}
SCALE_KILLS=${BENCH_SCALE_KILLS:-20}
SCALE_START_CAP=${BENCH_SCALE_START_CAP:-900}
SCALE_ADOPT_ROUNDS=${BENCH_SCALE_ADOPT_ROUNDS:-3}
SCALE_NET=${BENCH_SCALE_NET:-1}
SCALE_PID=
SCALE_STATE=
scale_spec() { # NAME IMAGES
	cat <<YAML
apiVersion: banger/v1
kind: VM
metadata: {name: $1}
spec:
  state: Running
  vmm: firecracker
  memoryMiB: 128
  kernel: {path: $2/vmlinux}
  rootfs: {path: $2/rootfs.ext4}
YAML
	[ "$SCALE_NET" = 1 ] || echo "  network: {enabled: false}"
}
# scale_run OUT MODE LOG STATUS PREFIX N CAP ARGS...: scale_start in the netns.
scale_run() {
	local out=$1
	shift
	"$BB/scale_start" "$1" "$2" "$3" "$4" "$5" "$6" "$(command -v nsenter)" --net="/run/netns/$NETNS" -- \
		"$BANGERD" "${@:7}" >"$out"
	local rc=$?
	SCALE_PID=$(kv "$out" pid)
	return $rc
}
to_mib() { awk -v k="$1" 'BEGIN { if (k == "" || k < 0) print "-"; else printf "%.1f", k / 1024 }'; }
# The doubles this run's bangerd started: their API sockets are under $WORK.
scale_doubles() { pgrep -f "fc-double-lite --api-sock $WORK/" 2>/dev/null; }
# SIGTERM bangerd (VMs keep running), SIGKILL the doubles, remove the VM
# cgroups bangerd made for this state dir's instance (its teardown never ran).
scale_stop() {
	local p pids
	if [ -n "$SCALE_PID" ]; then
		kill -TERM "$SCALE_PID" 2>/dev/null
		pid_wait_gone "$SCALE_PID" || kill -KILL "$SCALE_PID" 2>/dev/null
		SCALE_PID=
	fi
	pids=$(scale_doubles)
	for p in $pids; do kill -KILL "$p" 2>/dev/null; done
	for p in $pids; do pid_wait_gone "$p"; done
	[ -n "$SCALE_STATE" ] && instance_cgroups_remove "$SCALE_STATE"
	return 0
}
section_scale() {
	local n=$SCALE_N d=$WORK/scale pre=sc$TOK m_start="scale: start, $SCALE_N Running specs → all Running"
	echo "== scale: $n Firecracker VMs (fc-double-lite test double), bangerd --driver firecracker in netns banger-bench-$TOK"
	scale_fail() { result "$m_start" - - s ratio 2; scale_stop; }
	local lite
	lite=$(realpath "$BUILD/fc-double-lite" 2>/dev/null)
	[ -x "$lite" ] || { note "scale: $BUILD/fc-double-lite missing (make bench builds it)"; scale_fail; return; }
	netns_create || { scale_fail; return; }
	mkdir -p "$d/images" "$d/specs" "$d/base" "$d/zero-specs"
	truncate -s 8M "$d/images/rootfs.ext4"
	echo "not a kernel: the test double boots nothing" >"$d/images/vmlinux"
	echo "  host limits: nofile hard $(ulimit -Hn), pid_max $(cat /proc/sys/kernel/pid_max), threads-max $(cat /proc/sys/kernel/threads-max), bridge ports max 1024"
	# Baseline for the start: N doubles, spawned and configured, nothing else.
	nsenter --net="/run/netns/$NETNS" -- "$BB/baseline_fcspawn" "$d/base" "$n" "$SCALE_CONC" "$lite" "$d/images/vmlinux" >"$d/base.out" 2>"$d/base.err" ||
		note "scale: baseline_fcspawn: $(tr '\n' ' ' <"$d/base.out") $(tail -n 3 "$d/base.err" | tr '\n' ' ')"
	local base_ms
	base_ms=$(kv "$d/base.out" total_ms)
	echo "  baseline_fcspawn: $n doubles spawned and configured ($SCALE_CONC at a time) in $base_ms ms; per VM p50 $(kv "$d/base.out" per_vm_p50_ms) ms; a double's RSS $(kv "$d/base.out" double_rss_kb_avg) kB, of it anonymous $(kv "$d/base.out" double_anon_kb_avg) kB"
	local args=(--node-name bench --image-dir "$d/images" --driver firecracker --firecracker-bin "$lite"
		--cidr 10.77.0.1/16 --stop-timeout 2 --resync 0 --log-level debug)
	# bangerd with no VMs: start, kill -9, restart (the adoption baseline), RSS.
	mkdir -p "$d/zero/status" "$d/zero/state"
	local zargs=(--spec-dir "$d/zero-specs" --status-dir "$d/zero/status" --state-dir "$d/zero/state" --runtime-dir "$d/zero/state/run" "${args[@]}")
	local zsync="" zrss="" i
	for i in 0 $(seq "$SCALE_ADOPT_ROUNDS"); do
		"$BB/adopt" "$d/zero/bangerd.log" "$d/zero/status" - "$(command -v nsenter)" --net="/run/netns/$NETNS" -- "$BANGERD" "${zargs[@]}" >"$d/zero.out" ||
			{ note "scale: bangerd (no VMs) did not start: $(tail -n 3 "$d/zero/bangerd.log" | tr '\n' ' ')"; break; }
		SCALE_PID=$(kv "$d/zero.out" pid)
		[ "$i" = 0 ] || zsync="$zsync $(kv "$d/zero.out" sync_ms)"
		sleep 0.5
		zrss=$(proc_status_kb_sh "$SCALE_PID" VmRSS)
		kill -KILL "$SCALE_PID"; pid_wait_gone "$SCALE_PID"; SCALE_PID=
	done
	local zsync_med
	zsync_med=$(echo "$zsync" | tr ' ' '\n' | grep . | median)
	echo "  bangerd with no VMs: restart after kill -9 → initial sync done:${zsync:- -} ms; RSS $(to_mib "$zrss") MiB"
	# The cold start with N Running specs.
	local i0
	for i0 in $(seq 0 $((n - 1))); do scale_spec "$(printf '%s-%04d' "$pre" "$i0")" "$d/images" >"$d/specs/$(printf '%s-%04d' "$pre" "$i0").yaml"; done
	mkdir -p "$d/run/status" "$d/run/state"
	SCALE_STATE=$d/run/state
	local sargs=(--spec-dir "$d/specs" --status-dir "$d/run/status" --state-dir "$d/run/state" --runtime-dir "$d/run/state/run" "${args[@]}")
	scale_run "$d/start.out" cold "$d/run/bangerd.log" "$d/run/status" "$pre" "$n" "$SCALE_START_CAP" "${sargs[@]}"
	local rc=$? start_ms
	start_ms=$(kv "$d/start.out" running_ms)
	echo "  bangerd cold start: initial sync done after $(kv "$d/start.out" sync_ms) ms; all $n Running after $start_ms ms; Running when measured: $(kv "$d/start.out" reached)/$n (cap $SCALE_START_CAP s); errors in log: $(grep -c ' error ' "$d/run/bangerd.log")"
	if [ $rc -ne 0 ]; then
		note "scale: only $(kv "$d/start.out" reached) of $n VMs Running after $(kv "$d/start.out" elapsed_ms) ms (cap ${SCALE_START_CAP} s; bangerd exited: $(kv "$d/start.out" bangerd_exited)); log: $(grep ' error ' "$d/run/bangerd.log" | tail -n 3 | cut -c1-300 | tr '\n' ' ')"
		result "$m_start" - "$(awk -v b="$base_ms" 'BEGIN {printf "%.2f", b / 1000}')" s ratio 2
		result "scale: VMs Running at the start cap" "$(kv "$d/start.out" reached)" "$n" VMs info -
		scale_stop
		return
	fi
	result "$m_start" "$(awk -v b="$start_ms" 'BEGIN {printf "%.2f", b / 1000}')" "$(awk -v b="$base_ms" 'BEGIN {printf "%.2f", b / 1000}')" s ratio 2
	sleep 2 # the last status writes and metrics are done
	local rss hwm
	rss=$(proc_status_kb_sh "$SCALE_PID" VmRSS)
	hwm=$(proc_status_kb_sh "$SCALE_PID" VmHWM)
	echo "  bangerd with $n running: RSS $(to_mib "$rss") MiB, peak (VmHWM) $(to_mib "$hwm") MiB, $(ls /proc/"$SCALE_PID"/fd | wc -l) fds, $(ls /proc/"$SCALE_PID"/task | wc -l) threads; doubles running: $(scale_doubles | wc -l)"
	result "scale: bangerd RSS, $n VMs running" "$(to_mib "$rss")" "$(to_mib "$zrss")" MiB lt 64
	# No-op resync with N running.
	"$BB/baseline_scan" "$d/specs" "$HUPS" >"$d/scan.out" || note "scale: baseline_scan failed"
	if "$BB/hup_cpu" "$SCALE_PID" "$d/run/bangerd.log" "$HUPS" >"$d/hup.out"; then
		echo "  no-op resync: daemon's log median $(kv "$d/hup.out" log_ms_median) ms (min $(kv "$d/hup.out" log_ms_min), max $(kv "$d/hup.out" log_ms_max)); CPU $(kv "$d/hup.out" cpu_ms_per_resync) ms per resync; not a no-op: $(kv "$d/hup.out" not_noop)"
		result "scale: no-op resync, $n running (log median)" "$(kv "$d/hup.out" log_ms_median)" "$(kv "$d/scan.out" wall_ms_per_pass)" ms lt 50
	else
		note "scale: hup_cpu failed"
		result "scale: no-op resync, $n running (log median)" - "$(kv "$d/scan.out" wall_ms_per_pass)" ms lt 50
	fi
	# Kill → status under load: one double at a time, spread over the VMs.
	local k name killed=() bad=0
	: >"$d/kill.samples"; : >"$d/kill-exit.samples"
	for k in $(seq "$SCALE_KILLS"); do
		name=$(printf '%s-%04d' "$pre" $(((k * n / (SCALE_KILLS + 1)) % n)))
		if ! "$BB/kill_latency" "$d/run/status" "$name" fc-double-lite >"$d/kill.out" 2>"$d/kill.err"; then
			note "scale: kill $k ($name) not measured: $(tr '\n' ' ' <"$d/kill.err")"
			bad=1
			break
		fi
		killed+=("$name")
		kv "$d/kill.out" status_us >>"$d/kill.samples"
		kv "$d/kill.out" exit_us >>"$d/kill-exit.samples"
		sleep 0.2
	done
	echo "  kill → status, $(wc -l <"$d/kill.samples") kills with $n running: p50 $(pctl "$d/kill.samples" 50 1000) ms, p99 $(pctl "$d/kill.samples" 99 1000) ms, max $(pctl "$d/kill.samples" 100 1000) ms (kill → process gone: p50 $(pctl "$d/kill-exit.samples" 50 1000) ms)"
	if [ $bad = 0 ]; then
		result "scale: kill → status p99, $n running" "$(pctl "$d/kill.samples" 99 1000)" "$(pctl "$d/kill-exit.samples" 99 1000)" ms lt 100
	else
		result "scale: kill → status p99, $n running" - "$(pctl "$d/kill-exit.samples" 99 1000)" ms lt 100
	fi
	# The killed ones come back after their back-off; adoption needs all N.
	vm_wait_running "$d/run/status" "${killed[@]}" || note "scale: killed VMs not Running again"
	sleep 1
	# Adoption: kill -9 bangerd with N running, restart.
	local async="" aall="" r
	for r in $(seq "$SCALE_ADOPT_ROUNDS"); do
		kill -KILL "$SCALE_PID"; pid_wait_gone "$SCALE_PID"; SCALE_PID=
		if ! scale_run "$d/adopt.out" adopt "$d/run/bangerd.log" "$d/run/status" "$pre" "$n" 300 "${sargs[@]}"; then
			note "scale: adoption round $r: $(tr '\n' ' ' <"$d/adopt.out")"
			bad=2
			break
		fi
		async="$async $(kv "$d/adopt.out" sync_ms)"
		aall="$aall $(kv "$d/adopt.out" running_ms)"
		sleep 1
	done
	echo "  adoption after kill -9, $n running: restart → initial sync done:$async ms; → all Running with the same pids:$aall ms (restarted: $(kv "$d/adopt.out" restarted))"
	if [ $bad = 2 ]; then
		result "scale: adoption, $n VMs: restart → sync done" - "$zsync_med" ms lt 1000
	else
		result "scale: adoption, $n VMs: restart → sync done" "$(echo "$async" | tr ' ' '\n' | grep . | median)" "$zsync_med" ms lt 1000
		result "scale: adoption, $n VMs: → all Running, same pids" "$(echo "$aall" | tr ' ' '\n' | grep . | median)" "$zsync_med" ms info -
	fi
	scale_stop
	echo
}
proc_status_kb_sh() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status" 2>/dev/null; }

# ---- main -------------------------------------------------------------------

for tool in mkspecs cold_sync baseline_cold hup_cpu baseline_scan edit_latency baseline_inotify \
	exec_latency baseline_exec kill_latency baseline_pidfd adopt idle_wakeups baseline_idle \
	burst scale_start baseline_fcspawn; do
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
