#!/bin/bash
# `banger validate` end to end: golden diagnostics for tests/golden/bad-*.yaml
# (paths relative to the source tree, as passed here), valid trees exiting 0,
# directory walking (filter, dot-dirs, symlink loops, cross-file duplicate
# names), stdin, usage errors.
set -u
. "$(dirname "$0")/lib.sh"
SRC=${BANGER_SRC_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${BANGER_BIN_DIR:-$SRC/build}
BANGER=$BIN/banger
bad() { not_ok "$@"; }

[ -x "$BANGER" ] || { echo "not ok 1 - $BANGER missing"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$SRC" || exit 1

# 1. Golden diagnostics.
shopt -s nullglob
goldens=(tests/golden/bad-*.yaml)
[ "${#goldens[@]}" -ge 8 ] || bad "expected at least 8 golden files, found ${#goldens[@]}"
for f in "${goldens[@]}"; do
	exp=${f%.yaml}.expected
	"$BANGER" validate "$f" >"$tmp/out" 2>&1
	rc=$?
	if [ "$rc" -eq 1 ] && diff -u "$exp" "$tmp/out" >"$tmp/diff"; then
		ok "golden $f"
	else
		bad "golden $f (exit $rc)"
		sed 's/^/# /' "$tmp/diff"
	fi
done

# 2. Valid trees.
out=$("$BANGER" validate specs/examples 2>&1); rc=$?
check "specs/examples is valid (exit $rc: $out)" [ "$rc" -eq 0 ]
check "summary counts files and VMs" [ "$out" = "3 files, 4 VMs: all valid" ]
"$BANGER" validate tests/spec-corpus/valid >"$tmp/out" 2>&1; rc=$?
check "tests/spec-corpus/valid is valid (exit $rc)" [ "$rc" -eq 0 ]
[ "$rc" -eq 0 ] || sed 's/^/# /' "$tmp/out"
"$BANGER" validate tests/spec-corpus/invalid >/dev/null 2>&1; rc=$?
check "tests/spec-corpus/invalid is not (exit $rc)" [ "$rc" -eq 1 ]

# 3. Directory walk: filter, dot-dirs, symlink loop, cross-file duplicates.
mkdir -p "$tmp/d/sub/deeper" "$tmp/d/.git"
cp specs/examples/web-1.yaml "$tmp/d/a.yaml"
cp specs/examples/web-1.yaml "$tmp/d/sub/deeper/b.yml"
printf 'garbage: [\n' >"$tmp/d/.git/c.yaml"
printf 'garbage: [\n' >"$tmp/d/.hidden.yaml"
printf 'garbage: [\n' >"$tmp/d/a.yaml.swp"
printf 'garbage: [\n' >"$tmp/d/a.yaml~"
printf 'garbage: [\n' >"$tmp/d/web-1.status.json"
printf 'garbage: [\n' >"$tmp/d/notes.txt"
ln -s .. "$tmp/d/sub/loop"
ln -s "$tmp/d/sub" "$tmp/d/sub-again"
(cd "$tmp" && timeout 10 "$BANGER" validate d >out 2>&1); rc=$?
check "duplicate name across files fails the run (exit $rc)" [ "$rc" -eq 1 ]
check "second definition names the first" grep -qx \
	'd/sub/deeper/b.yml:9:9: metadata.name: VM "web-1" is also defined in d/a.yaml:9:9' "$tmp/out"
check "only the two candidates were read" grep -qx '1 problem in 1 of 2 files' "$tmp/out"
check "dot-dirs, temp files, status files and symlink loops are skipped" \
	[ "$(grep -c garbage "$tmp/out")" -eq 0 ]
[ "$rc" -eq 1 ] || sed 's/^/# /' "$tmp/out"

# 4. Explicit files, -f, stdin.
"$BANGER" validate -f specs/examples/web-1.yaml -f specs/examples/pool.yaml >/dev/null 2>&1
check "-f FILE -f FILE (exit $?)" [ $? -eq 0 ]
out=$("$BANGER" validate - <specs/examples/pool.yaml 2>&1); rc=$?
check "stdin (exit $rc: $out)" [ "$rc" -eq 0 ]
out=$("$BANGER" validate - <tests/golden/bad-name.yaml 2>&1)
check "stdin diagnostics are named -" grep -q '^-:5:9: metadata.name: must be a DNS-1123 label' <<<"$out"
out=$("$BANGER" validate "$tmp/nonexistent.yaml" 2>&1); rc=$?
check "missing file (exit $rc)" [ "$rc" -eq 1 ]
check "missing file message" grep -q 'nonexistent.yaml:0:0: cannot read file: No such file or directory' <<<"$out"
head -c 2097152 /dev/zero | tr '\0' '#' >"$tmp/big.yaml"
out=$(timeout 5 "$BANGER" validate "$tmp/big.yaml" 2>&1); rc=$?
check "2 MiB file is refused (exit $rc)" [ "$rc" -eq 1 ]
check "size message" grep -q 'big.yaml:0:0: file is larger than the 1048576 byte limit' <<<"$out"

# 5. Usage.
"$BANGER" validate >/dev/null 2>&1
check "no arguments is a usage error (exit $?)" [ $? -eq 2 ]
"$BANGER" validate --bogus specs/examples >/dev/null 2>&1
check "unknown option is a usage error (exit $?)" [ $? -eq 2 ]
"$BANGER" validate specs/examples -f >/dev/null 2>&1
check "-f without a file is a usage error (exit $?)" [ $? -eq 2 ]
out=$("$BANGER" validate --help 2>/dev/null); rc=$?
check "--help exits 0 (exit $rc)" [ "$rc" -eq 0 ]
check "--help prints usage on stdout" grep -q '^Usage: banger validate' <<<"$out"

done_testing
