#!/bin/bash
# run.sh [unit|integration|NAME...] — runs unit test binaries and integration
# scripts, each a TAP producer; exit 77 means skipped (reason on stdout).
# Prints each program's wall time; ends with the slowest ones, the total
# and the line "N passed, N failed, N skipped". $BUILD/test-logs/durations
# keeps "SECONDS NAME" per program for comparing runs.
#
# BANGER_TEST_LANES=2 runs the integration scripts in two lanes at once: the
# ones that boot QEMU guests (TCG, CPU-bound: they call need_guest or run
# qemu-system) one after another in one lane, all the others (CLI, storage,
# the Firecracker double: mostly waiting) in the other. At most one guest
# test runs at a time, as with one lane. Default 1: one program at a time.
#
# Under sanitizers (BANGER_SANITIZE=1, as `make SANITIZE=1 test` sets it) a
# script whose header has the line
#   # sanitizers: not run (REASON)
# is reported as SKIP with REASON and not run: it runs none of our C code,
# or none the sanitized run does not already cover, and the plain run runs it.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export BUILD
export BANGER_BIN_DIR=$PWD/$BUILD
export BANGER_SRC_DIR=$PWD
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

sel=${1:-all}
tests=()
if [ "$sel" = all ] || [ "$sel" = unit ]; then
	for t in "$BUILD"/tests/test_*; do [ -x "$t" ] && tests+=("$t"); done
fi
if [ "$sel" = all ] || [ "$sel" = integration ]; then
	for t in tests/integration/t_*.sh; do [ -f "$t" ] && tests+=("$t"); done
fi
if [ "$sel" != all ] && [ "$sel" != unit ] && [ "$sel" != integration ]; then
	tests=("$@")
fi

logdir=$BUILD/test-logs
mkdir -p "$logdir"
# One line per program: "PASS|FAIL|SKIP NAME SKIPPED_CHECKS"; lanes append.
results=$logdir/results
: >"$results"
: >"$logdir/durations"
run_start=${EPOCHREALTIME/./}

# run_one PROGRAM: runs it, prints its outcome as one block (one write, so
# two lanes do not interleave inside it) and appends to $results.
run_one() {
	local t=$1 name why start now dur rc nskip nok out
	name=$(basename "$t" .sh)
	if [ "${BANGER_SANITIZE:-}" = 1 ] && [[ "$t" == *.sh ]] &&
		why=$(sed -n '1,30s/^# sanitizers: not run (\(.*\))$/\1/p' "$t" | head -n 1) && [ -n "$why" ]; then
		echo "SKIP $name 0" >>"$results"
		echo "SKIP $name: not run under sanitizers: $why"
		return
	fi
	start=${EPOCHREALTIME/./}
	if [[ "$t" == *.sh ]]; then
		timeout 900 bash "$t" >"$logdir/$name.log" 2>&1
	else
		timeout 300 "$t" >"$logdir/$name.log" 2>&1
	fi
	rc=$?
	now=${EPOCHREALTIME/./}; dur=$(( (now - start) / 100000 )); dur="$((dur / 10)).$((dur % 10))"
	echo "$dur $name" >>"$logdir/durations"
	case $rc in
	0) # A TAP "ok N # SKIP" is a skipped check, not a passed one.
	   nskip=$(grep -cE '^ok [0-9]+ # (SKIP|skip)' "$logdir/$name.log")
	   nok=$(( $(grep -c '^ok ' "$logdir/$name.log") - nskip ))
	   echo "PASS $name $nskip" >>"$results"
	   if [ "$nskip" -gt 0 ]; then
		   out="PASS $name (${dur}s, $nok checks, $nskip SKIPPED: $(grep -m1 -E '^ok [0-9]+ # (SKIP|skip)' "$logdir/$name.log" | sed 's/^ok [0-9]* # [A-Za-z]* //'))"
	   else
		   out="PASS $name (${dur}s, $nok checks)"
	   fi ;;
	77) echo "SKIP $name 0" >>"$results"
	    out="SKIP $name: $(tail -n 1 "$logdir/$name.log")" ;;
	*) echo "FAIL $name 0" >>"$results"
	   out="FAIL $name (exit $rc, ${dur}s)"
	   why=$(grep -E '^not ok|^#|ERROR|runtime error|Sanitizer' "$logdir/$name.log" | head -n 40 | sed 's/^/    /')
	   [ -n "$why" ] && out+=$'\n'$why
	   out+=$'\n'"    (full log: $logdir/$name.log)" ;;
	esac
	printf '%s\n' "$out"
}

# Whether an integration script boots QEMU guests (the CPU-bound lane).
boots_guests() { grep -qE 'need_guest|qemu-system' "$1"; }

if [ "${BANGER_TEST_LANES:-1}" = 2 ]; then
	guest=() other=()
	for t in "${tests[@]}"; do
		if [[ "$t" != *.sh ]]; then
			run_one "$t" # unit tests: seconds, before the lanes start
		elif boots_guests "$t"; then
			guest+=("$t")
		else
			other+=("$t")
		fi
	done
	( for t in "${guest[@]}"; do run_one "$t"; done ) &
	lane=$!
	for t in "${other[@]}"; do run_one "$t"; done
	wait "$lane"
else
	for t in "${tests[@]}"; do run_one "$t"; done
fi

pass=$(grep -c '^PASS ' "$results")
fail=$(grep -c '^FAIL ' "$results")
skip=$(grep -c '^SKIP ' "$results")
skipped_checks=$(awk '{ n += $3 } END { print n + 0 }' "$results")
total=$(( (${EPOCHREALTIME/./} - run_start) / 1000000 ))
echo "slowest: $(sort -rn "$logdir/durations" | head -n 8 | awk '{ printf "%s%s %ss", (NR > 1 ? ", " : ""), $2, $1 }')"
echo "total: ${total} s for ${#tests[@]} programs (lanes: ${BANGER_TEST_LANES:-1})"
if [ "$skip" -gt 0 ] || [ "$skipped_checks" -gt 0 ]; then
	echo "NOTE: this run skipped $skip test programs and $skipped_checks checks (see SKIP lines above)"
fi
echo "${pass} passed, ${fail} failed, ${skip} skipped"
[ "$fail" -eq 0 ] && [ "$((pass + skip))" -eq "${#tests[@]}" ]
