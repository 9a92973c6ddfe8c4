#!/bin/bash
# Replays the spec fuzz corpus (tests/fuzz/corpus/spec) and every spec we
# ship or test with (examples, goldens, schema corpus) through the fuzz
# target's checks, with whatever build (plain or sanitizer) is under test.
set -u
. "$(dirname "$0")/lib.sh"
SRC=${BANGER_SRC_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${BANGER_BIN_DIR:-$SRC/build}
[ -x "$BIN/tests/spec-replay" ] || { echo "not ok 1 - $BIN/tests/spec-replay missing"; exit 1; }
cd "$SRC" || exit 1
n=$(find tests/fuzz/corpus/spec -type f | wc -l)
if [ "$n" -lt 10 ]; then
	echo "not ok 1 - fuzz corpus has only $n files"
	exit 1
fi
exec "$BIN/tests/spec-replay" tests/fuzz/corpus/spec specs/examples tests/golden \
	tests/spec-corpus/valid tests/spec-corpus/invalid
