#!/bin/bash
# banger apply / get / describe / delete against a real bangerd.
. "$(dirname "$0")/lib.sh"
private_netns "$0" "$@"

T=$(test_tmpdir cli)
cleanup() { stop_bangerd; rm -rf "$T"; }
trap cleanup EXIT
SPEC=$T/specs
STATE=$T/state
STATUS=$T/status
mkdir -p "$SPEC" "$STATE" "$T/in"
export BANGER_SPEC_DIR=$SPEC BANGER_STATUS_DIR=$STATUS BANGER_STATE_DIR=$STATE
B=$BIN/banger

check "banger --help exits 0" "$B" --help
# Also run by t_install, which the sanitized run leaves out: here too, so
# these paths of both binaries stay under ASan/UBSan.
check "bangerd --help exits 0 and names --spec-dir" bash -c "'$BIN/bangerd' --help | grep -q -- --spec-dir"
check "banger --version and bangerd --version name the same version" \
	test "$("$BIN/bangerd" --version | cut -d' ' -f2)" = "$("$B" --version | cut -d' ' -f2)"
"$B" frobnicate >/dev/null 2>&1
check "unknown command exits 2" test $? = 2
"$B" apply >/dev/null 2>&1
check "apply without -f exits 2" test $? = 2

start_bangerd "$SPEC" "$STATE" --resync 3600
check "bangerd starts" wait_until 5 grep -q "initial sync done" "$T/bangerd.log"

{ vm_yaml api-1; echo "---"; vm_yaml api-2 Stopped 384; } >"$T/in/two.yaml"
out=$("$B" apply -f "$T/in/two.yaml" --dry-run)
check "dry run reports" grep -q "vm/api-1 created (dry run)" <<<"$out"
check "dry run writes nothing" test ! -e "$SPEC/api-1.yaml"

out=$("$B" apply -f "$T/in/two.yaml" --wait --timeout 20)
rc=$?
check "apply --wait exits 0" test $rc = 0
check "apply reports created" grep -q "vm/api-1 created" <<<"$out"
check "apply --wait reports the settled phase" grep -q "vm/api-2 Stopped" <<<"$out"
check "each VM is its own file" test -f "$SPEC/api-1.yaml" -a -f "$SPEC/api-2.yaml"
check "written file validates" "$B" validate -f "$SPEC/api-1.yaml"
out=$("$B" apply -f "$T/in/two.yaml")
check "re-apply is unchanged" grep -q "vm/api-1 unchanged" <<<"$out"

vm_yaml api-1 Stopped 512 | "$B" apply -f - --wait --timeout 20 >/dev/null
check "apply from stdin updates (generation 2)" status_is api-1 'd["generation"]' 2

vm_yaml other-1 >"$SPEC/hand-written.yaml"
check "hand-written file picked up" wait_until 5 test -f "$STATUS/other-1.status.json"
vm_yaml other-1 Stopped 512 >"$T/in/other.yaml"
"$B" apply -f "$T/in/other.yaml" 2>"$T/err"
check "apply refuses a VM owned by another file (exit 1)" test $? = 1
check "and names the owner" grep -q "hand-written.yaml" "$T/err"

vm_yaml ok-1 >"$T/in/mixed.yaml"
vm_yaml bad-9 Stopped 1 >>"$T/in/mixed.yaml"
"$B" apply -f "$T/in/mixed.yaml" 2>"$T/err"
check "invalid input → exit 1" test $? = 1
check "nothing written when any input is invalid" test ! -e "$SPEC/ok-1.yaml"
check "diagnostic has file:line:col: field" grep -qE "mixed.yaml:[0-9]+:[0-9]+: spec.memoryMiB" "$T/err"

# get
out=$("$B" get)
check "get lists VMs" grep -qE "^api-1 +Stopped" <<<"$out"
out=$("$B" get -o wide)
check "get -o wide has SOURCE" grep -q "SOURCE" <<<"$out"
check "get NAME -o json is the status document" bash -c "'$B' get api-2 -o json | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); assert d[\"name\"]==\"api-2\" and d[\"kind\"]==\"VMStatus\"'"
check "get -o json lists items" bash -c "'$B' get -o json | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); assert len(d[\"items\"])==3'"
check "get -o yaml parses as YAML" bash -c "'$B' get -o yaml | /usr/bin/python3 -c 'import yaml,sys; d=yaml.safe_load(sys.stdin); assert len(d[\"items\"])==3, d'"
"$B" get nope-1 2>/dev/null
check "get unknown → exit 1" test $? = 1
check "describe shows conditions" bash -c "'$B' describe api-1 | grep -q 'SpecValid'"

# delete
out=$("$B" delete api-1 --wait --timeout 20)
check "delete --wait exits 0" test $? = 0
check "spec file removed" test ! -e "$SPEC/api-1.yaml"
check "status removed" test ! -e "$STATUS/api-1.status.json"
"$B" delete api-1 2>/dev/null
check "delete unknown → exit 1" test $? = 1
{ vm_yaml pair-1; echo "---"; vm_yaml pair-2; } >"$SPEC/pair.yaml"
check "pair file picked up" wait_until 5 test -f "$STATUS/pair-2.status.json"
"$B" delete pair-1 2>"$T/err"
check "delete refuses a VM that shares its file" test $? = 1 -a -f "$SPEC/pair.yaml"
vm_yaml api-2 Stopped 384 >"$T/in/api2.yaml"
"$B" delete -f "$T/in/api2.yaml" --wait --timeout 20 >/dev/null
check "delete -f removes the VMs named in a file" test ! -e "$SPEC/api-2.yaml" -a ! -e "$STATUS/api-2.status.json"
done_testing
