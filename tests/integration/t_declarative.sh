#!/bin/bash
# The declarative core end to end: the real bangerd on temp dirs, driven by
# file operations the way operators and GitOps tools make them. VMs here are
# `state: Stopped`, so nothing boots: this is about files → intent → status.
. "$(dirname "$0")/lib.sh"
private_netns "$0" "$@"

T=$(test_tmpdir decl)
cleanup() { stop_bangerd; rm -rf "$T"; }
trap cleanup EXIT
SPEC=$T/specs
STATE=$T/state
STATUS=$T/status
mkdir -p "$SPEC" "$STATE"

start_bangerd "$SPEC" "$STATE" --resync 3600 --node-name test-node
check "bangerd starts" wait_until 5 grep -q "initial sync done" "$T/bangerd.log"

# --- create -----------------------------------------------------------------
vm_yaml web-1 | put "$SPEC/a.yaml"
check "status file appears" wait_until 5 test -f "$STATUS/web-1.status.json"
check "Stopped spec settles at phase Stopped" status_is web-1 'd["phase"]' Stopped
check "generation 1" status_is web-1 'd["generation"]' 1
check "observedGeneration 1" status_is web-1 'd["observedGeneration"]' 1
check "kind VMStatus" status_is web-1 'd["kind"]' VMStatus
check "sourceFile is the spec file" status_is web-1 'd["sourceFile"]' "$SPEC/a.yaml"
check "SpecValid True" status_is web-1 '[c["status"] for c in d["conditions"] if c["type"]=="SpecValid"][0]' True
ino1=$(stat -c %i "$STATUS/web-1.status.json")

# --- edits that do not change meaning ----------------------------------------
{ echo "# a comment"; vm_yaml web-1; echo "# trailing"; } | put "$SPEC/a.yaml"
sleep 0.5
check "comment edit keeps generation 1" status_is web-1 'd["generation"]' 1
check "status file not rewritten for a comment" test "$(stat -c %i "$STATUS/web-1.status.json")" = "$ino1"
cat <<YAML | put "$SPEC/a.yaml"
kind: VM
apiVersion: banger/v1
spec:
  rootfs: {path: /var/lib/banger/images/rootfs.ext4}
  kernel: {path: /var/lib/banger/images/bzImage}
  memoryMiB: 256
  vcpus: 1
  state: Stopped
metadata: {name: web-1}
YAML
sleep 0.5
check "key order and explicit defaults keep generation 1" status_is web-1 'd["generation"]' 1

# --- a real change -------------------------------------------------------------
vm_yaml web-1 Stopped 512 | put "$SPEC/a.yaml"
check "memory edit → generation 2" wait_until 5 status_is web-1 'd["generation"]' 2
check "observedGeneration follows" status_is web-1 'd["observedGeneration"]' 2

# --- invalid edit keeps the last good intent ------------------------------------
vm_yaml web-1 Stopped 512 "  memoryMB: 1" | put "$SPEC/a.yaml"
check "typo → SpecValid False" wait_until 5 status_is web-1 '[c["status"] for c in d["conditions"] if c["type"]=="SpecValid"][0]' False
check "message names the unknown field" status_field web-1 '[c["message"] for c in d["conditions"] if c["type"]=="SpecValid"][0]' | grep -q memoryMB
check "intent kept: generation still 2" status_is web-1 'd["generation"]' 2
check "phase still Stopped" status_is web-1 'd["phase"]' Stopped
echo "apiVersion: banger/v1
kind: VM
metadata: {name: web-1
  broken" | put "$SPEC/a.yaml"
check "YAML syntax error keeps the intent" wait_until 5 status_field web-1 'd["lastError"]' >/dev/null
sleep 0.3
check "still generation 2 after syntax error" status_is web-1 'd["generation"]' 2
vm_yaml web-1 Stopped 512 | put "$SPEC/a.yaml"
check "fixed → SpecValid True again" wait_until 5 status_is web-1 '[c["status"] for c in d["conditions"] if c["type"]=="SpecValid"][0]' True
check "fixing with the same spec keeps generation 2" status_is web-1 'd["generation"]' 2

# --- never valid → Invalid -------------------------------------------------------
vm_yaml bad-1 Stopped 64 | put "$SPEC/bad.yaml"
check "never-valid spec → phase Invalid" wait_until 5 status_is bad-1 'd["phase"]' Invalid
check "Invalid status says why" status_field bad-1 'd["lastError"]' | grep -q memoryMiB
rm "$SPEC/bad.yaml"
check "Invalid status removed with its file" wait_until 5 test ! -e "$STATUS/bad-1.status.json"

# --- duplicate names -----------------------------------------------------------------
vm_yaml web-1 Stopped 1024 | put "$SPEC/b.yaml"
check "duplicate → NameConflict on the owner's status" wait_until 5 status_field web-1 '[c["message"] for c in d["conditions"] if c["type"]=="NameConflict"][0]'
check "conflict names both files" status_field web-1 '[c["message"] for c in d["conditions"] if c["type"]=="NameConflict"][0]' | grep -q "b.yaml.*a.yaml"
check "owner keeps it (memory unchanged, gen 2)" status_is web-1 'd["generation"]' 2
rm "$SPEC/b.yaml"
check "conflict cleared when the second file goes" wait_until 5 status_is web-1 '[c["type"] for c in d["conditions"]].count("NameConflict")' 0

# --- rename within the tree: never deleted, never re-generated -------------------------
mv "$SPEC/a.yaml" "$SPEC/c.yaml"
check "rename: sourceFile follows" wait_until 5 status_is web-1 'd["sourceFile"]' "$SPEC/c.yaml"
sleep 0.5
check "rename: generation unchanged" status_is web-1 'd["generation"]' 2
check "rename: intent never deleted" bash -c "! grep -q 'web-1: intent deleted' '$T/bangerd.log'"

# --- junk is ignored ------------------------------------------------------------------
for f in "x.yaml~" ".x.yaml.swp" "x.yaml.tmp" ".hidden.yaml" "#x.yaml#" "notes.txt" "junk-1.status.json"; do
	vm_yaml junk-1 >"$SPEC/$f"
done
mkdir -p "$SPEC/.git" && vm_yaml junk-1 >"$SPEC/.git/x.yaml"
sleep 0.8
check "editor, temp, dot and other files are ignored" test ! -e "$STATUS/junk-1.status.json.x" -a "$(grep -c junk-1 "$T/bangerd.log")" = 0
rm -rf "$SPEC/.git" "$SPEC"/*~ "$SPEC"/.x.yaml.swp "$SPEC"/x.yaml.tmp "$SPEC"/.hidden.yaml "$SPEC"/'#x.yaml#' "$SPEC"/notes.txt "$SPEC/junk-1.status.json"

# --- half-written file ----------------------------------------------------------------
exec 3>"$SPEC/half.yaml"
printf 'apiVersion: banger/v1\nkind: VM\nmetadata:\n  name: half-1\n' >&3
sleep 0.5
check "half-written file (still open) is not acted on" test ! -e "$STATUS/half-1.status.json"
vm_yaml half-1 | tail -n +5 >&3
exec 3>&-
check "completed file is picked up" wait_until 5 status_is half-1 'd["phase"]' Stopped

# --- delete ----------------------------------------------------------------------------
rm "$SPEC/half.yaml"
check "deleted file → status removed" wait_until 5 test ! -e "$STATUS/half-1.status.json"
check "deleted file → intent deleted (logged)" grep -q "half-1: intent deleted" "$T/bangerd.log"

# --- directories moved in and out ---------------------------------------------------------
mkdir -p "$T/outside/team"
vm_yaml db-1 >"$T/outside/team/db.yaml"
mv "$T/outside/team" "$SPEC/team"
check "directory moved in → its VMs appear" wait_until 5 status_is db-1 'd["sourceFile"]' "$SPEC/team/db.yaml"
mv "$SPEC/team" "$T/outside/team"
check "directory moved out → its VMs go" wait_until 5 test ! -e "$STATUS/db-1.status.json"

# --- multi-document file --------------------------------------------------------------------
{ vm_yaml m-1; echo "---"; vm_yaml m-2; } | put "$SPEC/multi.yaml"
check "multi-document: first VM" wait_until 5 test -f "$STATUS/m-1.status.json"
check "multi-document: second VM" wait_until 5 test -f "$STATUS/m-2.status.json"
vm_yaml m-1 | put "$SPEC/multi.yaml"
check "document removed from a file → that VM goes" wait_until 5 test ! -e "$STATUS/m-2.status.json"
check "the other stays" test -f "$STATUS/m-1.status.json"
rm "$SPEC/multi.yaml"

# --- spec.node: only this controller's VMs ----------------------------------------------
vm_yaml elsewhere-1 Stopped 256 "  node: some-other-node" | put "$SPEC/elsewhere.yaml"
vm_yaml here-1 Stopped 256 "  node: test-node" | put "$SPEC/here.yaml"
check "spec.node = our --node-name → acted on" wait_until 5 test -f "$STATUS/here-1.status.json"
check "spec.node = another node → left alone (no status)" test ! -e "$STATUS/elsewhere-1.status.json"
rm "$SPEC/elsewhere.yaml" "$SPEC/here.yaml"
check "here-1 removed with its file" wait_until 5 test ! -e "$STATUS/here-1.status.json"

# --- restart: intent survives, nothing re-generated, status not rewritten ---------------------
ino=$(stat -c %i "$STATUS/web-1.status.json")
check "SIGTERM → clean exit 0" stop_bangerd
start_bangerd "$SPEC" "$STATE" --resync 3600
check "restarted" wait_until 5 bash -c "grep -c 'initial sync done' '$T/bangerd.log' | grep -q 2"
check "after restart: generation still 2" status_is web-1 'd["generation"]' 2
check "after restart: status file untouched" test "$(stat -c %i "$STATUS/web-1.status.json")" = "$ino"

# --- one bangerd per state dir --------------------------------------------------------------
"$BIN/bangerd" --spec-dir "$SPEC" --status-dir "$STATUS" --state-dir "$STATE" --runtime-dir "$T/run2" \
	--once >"$T/second.log" 2>&1
rc=$?
check "second bangerd on the same state dir exits 1" test "$rc" = 1
check "and says who owns the lock" grep -q "another bangerd (pid $BANGERD_PID)" "$T/second.log"

# --- SIGHUP resync picks up what inotify cannot see ---------------------------------------------
kill -HUP "$BANGERD_PID"
check "SIGHUP → full resync" wait_until 5 grep -q "SIGHUP: full resync" "$T/bangerd.log"

# --- removed while down ------------------------------------------------------------------------
stop_bangerd
rm "$SPEC/c.yaml"
start_bangerd "$SPEC" "$STATE" --resync 3600
check "file removed while down → status removed at start" wait_until 5 test ! -e "$STATUS/web-1.status.json"
check "bangerd still healthy" kill -0 "$BANGERD_PID"
done_testing
