#!/bin/bash
# A full state filesystem loses no intent: the state dir is a small ext4 image,
# loop-mounted in a private mount namespace, and filled up while bangerd runs.
#  1. A spec written while it is full (one upsert, autocommit) is not stored;
#     its status says why.
#  2. A spec dir change seen by a full resync (one batch transaction) fails
#     at COMMIT; the file index must not take those files as stored.
#  3. Space freed: the next periodic resync stores every intent, nothing
#     else is needed (no edit, no restart).
# No guest: the specs are state Stopped.
. "$(dirname "$0")/lib.sh"
if [ -z "${BANGER_IN_MNTNS:-}" ]; then
	BANGER_IN_MNTNS=1 exec unshare -m --propagation private -- bash "$0" "$@"
fi
private_netns "$0" "$@"
command -v mkfs.ext4 >/dev/null || skip_all "mkfs.ext4 not installed"

T=$(test_tmpdir statefull)
SPEC=$T/specs
STATE=$T/state
STATUS=$SPEC
cleanup() {
	stop_bangerd
	umount "$STATE" 2>/dev/null
	sleep 0.2
	cleanup_cgroups "${STATE:-}"
	rm -rf "$T"
}
trap cleanup EXIT
mkdir -p "$SPEC" "$STATE"
truncate -s 16M "$T/state.img"
mkfs.ext4 -q -F "$T/state.img"
mount -o loop "$T/state.img" "$STATE" || skip_all "cannot loop-mount an ext4 image here"

# rows NAME...: the live rows of the database are exactly NAMES.
rows_are() {
	/usr/bin/python3 - "$STATE/banger.db" "$@" <<'PY'
import sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
got = sorted(n for (n,) in db.execute("SELECT name FROM vms WHERE deleted_at_ms IS NULL"))
sys.exit(0 if got == sorted(sys.argv[2:]) else 1)
PY
}
stopped_gen1() { status_is "$1" 'd["phase"]' Stopped && status_is "$1" 'd["generation"]' 1; }

vm_yaml a | put "$SPEC/a.yaml"
start_bangerd "$SPEC" "$STATE" --resync 2
check "a stored and reported Stopped" wait_until 30 stopped_gen1 a
check "the database holds a" rows_are a

# Fill the state filesystem (root may use the reserved blocks: fill those too).
dd if=/dev/zero of="$STATE/fill" bs=64k 2>/dev/null
dd if=/dev/zero of="$STATE/fill2" bs=4k 2>/dev/null
sync -f "$STATE/fill"
check "the state filesystem is full" test "$(df --output=avail -B1 "$STATE" | tail -n 1)" -lt 4096

# 1. one file, one autocommit upsert
vm_yaml b | put "$SPEC/b.yaml"
check "b: the store refused it (log)" wait_until 20 grep -q "b: .*No space left on device\|store.*insert.*full" "$T/bangerd.log"
check "b: status names the store error" wait_until 20 \
	status_is b '[c["message"] for c in d["conditions"] if c["type"]=="SpecValid"][0].startswith("store: No space left")' True

# 2. a batch: a directory moved in makes the watcher ask for a full resync
mkdir -p "$T/sub"
vm_yaml c | put "$T/sub/c.yaml"
mv "$T/sub" "$SPEC/sub"
check "batch: the failed COMMIT is logged with the files to read again" \
	wait_until 20 grep -q "store did not take this sync's changes" "$T/bangerd.log"
check "still only a in the database" rows_are a
check "bangerd is still running" kill -0 "$BANGERD_PID"

# 3. space freed: the periodic resync (2 s) retries b and c by itself
rm -f "$STATE/fill" "$STATE/fill2"
check "b stored after space was freed (no edit)" wait_until 30 stopped_gen1 b
check "c stored after space was freed (no edit)" wait_until 30 stopped_gen1 c
check "the database holds a, b and c" rows_are a b c
check "b: SpecValid is True again" \
	status_is b '[c["status"] for c in d["conditions"] if c["type"]=="SpecValid"][0]' True
check "bangerd exits cleanly" stop_bangerd
[ "$_failed" -eq 0 ] || { echo "# bangerd log tail:"; tail -n 60 "$T/bangerd.log" | sed 's/^/# /'; }
done_testing
