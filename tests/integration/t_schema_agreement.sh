#!/bin/bash
# Schema agreement: banger's C validator and schema/vm.schema.json (checked
# by python3-jsonschema) must give the same verdict for every document in
# specs/examples and tests/spec-corpus/{valid,invalid}; canonical JSON must
# equal the document with defaults filled. Details: spec_schema_check.py.
set -u
. "$(dirname "$0")/lib.sh"
SRC=${BANGER_SRC_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${BANGER_BIN_DIR:-$SRC/build}
PY=/usr/bin/python3

if ! [ -x "$PY" ] || ! "$PY" -c 'import jsonschema, yaml' 2>/dev/null; then
	echo "skip: needs /usr/bin/python3 with python3-jsonschema and python3-yaml"
	exit 77
fi
[ -x "$BIN/tests/spec-docs" ] || { echo "not ok 1 - $BIN/tests/spec-docs missing"; exit 1; }
cd "$SRC" || exit 1
shopt -s nullglob
files=(specs/examples/*.y*ml tests/spec-corpus/valid/* tests/spec-corpus/invalid/*)
if [ "${#files[@]}" -lt 30 ]; then
	echo "not ok 1 - corpus too small (${#files[@]} files)"
	exit 1
fi
exec "$PY" tests/integration/spec_schema_check.py schema/vm.schema.json \
	"$BIN/tests/spec-docs" "${files[@]}"
