#!/bin/bash
# run.sh [unit|integration|NAME...] — runs unit test binaries and integration
# scripts, each a TAP producer; exit 77 means skipped (reason on stdout).
# Ends with the line "N passed, N failed, N skipped".
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

pass=0 fail=0 skip=0 skipped_checks=0 failed=()
logdir=$BUILD/test-logs
mkdir -p "$logdir"
for t in "${tests[@]}"; do
	name=$(basename "$t" .sh)
	start=${EPOCHREALTIME/./}
	if [[ "$t" == *.sh ]]; then
		timeout 900 bash "$t" >"$logdir/$name.log" 2>&1
	else
		timeout 300 "$t" >"$logdir/$name.log" 2>&1
	fi
	rc=$?
	now=${EPOCHREALTIME/./}; dur=$(( (now - start) / 100000 )); dur="$((dur / 10)).$((dur % 10))"
	case $rc in
	0) pass=$((pass + 1))
	   # A TAP "ok N # SKIP" is a skipped check, not a passed one.
	   nskip=$(grep -cE '^ok [0-9]+ # (SKIP|skip)' "$logdir/$name.log")
	   nok=$(( $(grep -c '^ok ' "$logdir/$name.log") - nskip ))
	   skipped_checks=$((skipped_checks + nskip))
	   if [ "$nskip" -gt 0 ]; then
		   echo "PASS $name (${dur}s, $nok checks, $nskip SKIPPED: $(grep -m1 -E '^ok [0-9]+ # (SKIP|skip)' "$logdir/$name.log" | sed 's/^ok [0-9]* # [A-Za-z]* //'))"
	   else
		   echo "PASS $name (${dur}s, $nok checks)"
	   fi ;;
	77) skip=$((skip + 1)); echo "SKIP $name: $(tail -n 1 "$logdir/$name.log")" ;;
	*) fail=$((fail + 1)); failed+=("$name"); echo "FAIL $name (exit $rc, ${dur}s)"
	   grep -E '^not ok|^#|ERROR|runtime error|Sanitizer' "$logdir/$name.log" | head -n 40 | sed 's/^/    /'
	   echo "    (full log: $logdir/$name.log)" ;;
	esac
done
if [ "$skip" -gt 0 ] || [ "$skipped_checks" -gt 0 ]; then
	echo "NOTE: this run skipped $skip test programs and $skipped_checks checks (see SKIP lines above)"
fi
echo "${pass} passed, ${fail} failed, ${skip} skipped"
[ "$fail" -eq 0 ]
