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

# --- a burst (a GitOps sync): events coalesced into batches -------------------------------------
# burst_check MODE: the burst-* statuses against the store and the files.
#  final: every burst-*.yaml has a status, Stopped, generation = observedGeneration
#         = the store's, the store's specHash and the memoryMiB the file says;
#         no burst-* status without its file.
#  crash: every burst-* status names a generation and specHash the store holds
#         (bangerd died mid-batch: no status may claim intent not committed).
burst_check() {
	/usr/bin/python3 - "$1" "$STATE/banger.db" "$STATUS" "$SPEC" <<'PY'
import glob, json, os, re, sqlite3, sys
mode, dbp, status, spec = sys.argv[1:]
db = sqlite3.connect(f"file:{dbp}?mode=ro", uri=True)
rows = {n: (g, h, json.loads(j)["spec"]["memoryMiB"]) for n, g, h, j in db.execute(
    "SELECT name, generation, spec_hash, spec_json FROM vms WHERE deleted_at_ms IS NULL")}
def st(name):
    with open(f"{status}/{name}.status.json") as f:
        return json.load(f)
bad = []
have = {os.path.basename(p)[:-len(".status.json")] for p in glob.glob(f"{status}/burst-*.status.json")}
if mode == "crash":
    for n in sorted(have):
        d = st(n)
        if n not in rows or rows[n][:2] != (d["generation"], d["specHash"]):
            bad.append(f"{n}: status gen {d['generation']}, store {rows.get(n, 'no row')}")
else:
    want = {}
    for p in glob.glob(f"{spec}/burst-*.yaml"):
        text = open(p).read()
        want[re.search(r"name: (\S+)", text).group(1)] = int(re.search(r"memoryMiB: (\d+)", text).group(1))
    for n in sorted(have - set(want)):
        bad.append(f"{n}: status without a file")
    for n, mem in sorted(want.items()):
        if n not in have:
            bad.append(f"{n}: no status"); continue
        d = st(n)
        r = rows.get(n)
        if not r or d["phase"] != "Stopped" or d["generation"] != r[0] or \
                d["observedGeneration"] != r[0] or d["specHash"] != r[1] or r[2] != mem:
            bad.append(f"{n}: status {d['phase']} gen {d['generation']}/{d['observedGeneration']}, "
                       f"store {r}, file memoryMiB {mem}")
print(f"{len(bad)} wrong of {len(have)} statuses" + ("".join("; " + b for b in bad[:5])))
sys.exit(1 if bad else 0)
PY
}
burst_ok() { burst_check final >"$T/burst.check" 2>&1; }
# burst_write FIRST LAST [MEMORY]: plain writes, as a checkout makes them,
# with builtins only, so hundreds land within a few ms (vm_yaml's layout)
burst_write() {
	local i
	for i in $(seq -f %03g "$1" "$2"); do
		printf 'apiVersion: banger/v1\nkind: VM\nmetadata:\n  name: burst-%s\nspec:\n  state: Stopped\n  memoryMiB: %s\n  kernel:\n    path: /var/lib/banger/images/bzImage\n  rootfs:\n    path: /var/lib/banger/images/rootfs.ext4\n' \
			"$i" "${3:-256}" >"$SPEC/burst-$i.yaml"
	done
}
LOG_AT=$(wc -l <"$T/bangerd.log")
burst_write 1 300
burst_write 101 150 512   # edited while the first versions are being applied
rm -f "$SPEC"/burst-0[0-4]?.yaml  # 001-049 deleted (some before bangerd saw them)
sleep 0.5                         # past the grace period for vanished files
burst_write 1 25 384              # 001-025 re-created
check "burst: every status right at the end (300 written, 50 edited, 49 deleted, 25 re-created)" \
	wait_until 60 burst_ok
echo "# burst: $(cat "$T/burst.check")"
BATCHES=$(tail -n +"$((LOG_AT + 1))" "$T/bangerd.log" | grep -c 'batch: ')
check "burst: coalesced ($BATCHES batches for 400 file events)" test "$BATCHES" -lt 100
check "burst: the store holds 276 burst VMs" \
	test "$(sqlite3 "file:$STATE/banger.db?mode=ro" "SELECT count(*) FROM vms WHERE deleted_at_ms IS NULL AND name LIKE 'burst-%'")" = 276

# --- killed in the middle of a batch: never a status the store does not back ---------------------
stop_bangerd
BANGER_CRASHPOINT=batch-commit start_bangerd "$SPEC" "$STATE" --resync 3600
check "crash run: started" wait_until 10 bash -c "grep -c 'initial sync done' '$T/bangerd.log' | grep -q 4"
burst_write 200 299 640   # edits
burst_write 301 350       # new VMs
rm -f "$SPEC"/burst-1[0-1]?.yaml
rc=0
wait "$BANGERD_PID" || rc=$?
BANGERD_PID=
check "crash run: bangerd died by SIGKILL (rc $rc)" test "$rc" = 137
check "crash run: at batch-commit (log)" grep -q "crashpoint batch-commit: dying now" "$T/bangerd.log"
check "crash run: every status matches intent the store holds ($(burst_check crash))" burst_check crash
check "crash run: the batch's intent is not in the store (no burst-301..350)" \
	test "$(sqlite3 "file:$STATE/banger.db?mode=ro" "SELECT count(*) FROM vms WHERE name > 'burst-300' AND name LIKE 'burst-%'")" = 0
TEMPS=$(find "$STATUS" -maxdepth 1 -name '.*.tmp' | wc -l)
check "crash run: it died with statuses staged ($TEMPS temp files)" test "$TEMPS" -gt 0
start_bangerd "$SPEC" "$STATE" --resync 3600
check "after the restart: every status right" wait_until 60 burst_ok
echo "# burst: $(cat "$T/burst.check")"
check "after the restart: no temp file left in the status dir" \
	test -z "$(find "$STATUS" -maxdepth 1 -name '.*.tmp')"
check "bangerd still healthy" kill -0 "$BANGERD_PID"
done_testing
