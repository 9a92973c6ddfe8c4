#!/bin/bash
# Replays each fuzz target's corpus through the target's checks, with
# whatever build (plain or sanitizer) is under test:
#  - spec: tests/fuzz/corpus/spec plus every spec we ship or test with
#    (examples, goldens, schema corpus);
#  - handles.json reader: tests/fuzz/corpus/handles;
#  - status JSON reader: tests/fuzz/corpus/status.
# One TAP stream; a target that aborts (an invariant broke) fails the test.
set -u
. "$(dirname "$0")/lib.sh"
SRC=${BANGER_SRC_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${BANGER_BIN_DIR:-$SRC/build}
cd "$SRC" || exit 1
n=0 failed=0
# replay TOOL MIN_CORPUS CORPUS [MORE...]
replay() {
	local tool=$1 min=$2 corpus=$3 line rc
	shift 2
	local count
	count=$(find "$corpus" -type f | wc -l)
	if [ ! -x "$BIN/tests/$tool" ]; then
		n=$((n + 1)) failed=$((failed + 1)); echo "not ok $n - $BIN/tests/$tool missing"; return
	fi
	if [ "$count" -lt "$min" ]; then
		n=$((n + 1)) failed=$((failed + 1)); echo "not ok $n - $corpus has only $count files"; return
	fi
	while IFS= read -r line; do
		case $line in
		"ok "*) n=$((n + 1)); echo "ok $n - $tool: ${line#ok * - }" ;;
		"not ok "*) n=$((n + 1)) failed=$((failed + 1)); echo "not ok $n - $tool: ${line#not ok * - }" ;;
		esac
	done < <("$BIN/tests/$tool" "$@" 2>/dev/null)
	rc=$("$BIN/tests/$tool" "$@" >/dev/null 2>&1; echo $?)
	n=$((n + 1))
	if [ "$rc" = 0 ]; then echo "ok $n - $tool: whole corpus replayed"; else
		failed=$((failed + 1)); echo "not ok $n - $tool: aborted (exit $rc)"
		"$BIN/tests/$tool" "$@" 2>&1 | grep -v '^ok' | sed 's/^/# /' | tail -n 5
	fi
}
replay spec-replay 10 tests/fuzz/corpus/spec specs/examples tests/golden \
	tests/spec-corpus/valid tests/spec-corpus/invalid
replay handles-replay 10 tests/fuzz/corpus/handles
replay status-replay 10 tests/fuzz/corpus/status
echo "1..$n"
[ "$failed" -eq 0 ]
