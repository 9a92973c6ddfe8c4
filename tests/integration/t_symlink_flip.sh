#!/bin/bash
# No silent data loss when the image behind rootfs.path changes, with real
# QEMU guests in a private netns (storage/rootbase.h). rootfs.path names a
# symlink current.ext4 -> v1.ext4:
#  overlay (qcow2, state dir on ext4):
#   - stopped, symlink flipped to v2.ext4, started: the overlay is kept (same
#     file) on v1, the guest boots; status (Disks: KeptOriginalBase) and log
#     say so; nothing says "recreated";
#   - stopped, v1.ext4 replaced by another file: the start fails with a
#     reason naming v1.ext4; the overlay stays on disk;
#   - rootfs.path changed in the spec: the disk is re-created, and status
#     (Disks: Recreated) and log say so;
#  disk pool (storage/diskpool.h), same state dir:
#   - after a VM's new overlay, a spare overlay on its base waits in the pool;
#     another VM's first boot on that base takes it (its disk is that file),
#     and a new spare is made after its exec;
#   - a restart after the base changed removes the outdated spares;
#  full copy (reflink, state dir on a loop-mounted XFS in a private mount
#  namespace):
#   - stopped, symlink flipped, started: the copy is kept untouched (same
#     inode), status says KeptCopy, the guest boots; a reflink spare was
#     made in the disk pool after the first boot.
. "$(dirname "$0")/lib.sh"
if [ -z "${BANGER_IN_MNTNS:-}" ]; then
	BANGER_IN_MNTNS=1 exec unshare -m --propagation private -- bash "$0" "$@"
fi
private_netns "$0" "$@"
need_guest
command -v qemu-img >/dev/null || skip_all "qemu-img not installed"
guest_test_setup flip
IMG=$T/img
mkdir -p "$IMG"
cp --sparse=always "$GUEST_DIR/rootfs.ext4" "$IMG/v1.ext4"
cp --sparse=always "$GUEST_DIR/rootfs.ext4" "$IMG/v2.ext4"
ln -s v1.ext4 "$IMG/current.ext4"
DARGS=(--image-dir "$GUEST_DIR" --image-dir "$IMG" --driver qemu --resync 30 --stop-timeout 5)
T0=$SECONDS

# flip_yaml NAME STATE ROOTFS
flip_yaml() {
	cat <<YAML
apiVersion: banger/v1
kind: VM
metadata:
  name: $1
spec:
  state: $2
  vmm: qemu
  memoryMiB: 128
  kernel: {path: $GUEST_DIR/bzImage}
  rootfs: {path: $3}
  readiness: {tcpPort: 80, timeoutSeconds: 90}
YAML
}
cond() { status_field "$1" "[c[\"$3\"] for c in d[\"conditions\"] if c[\"type\"]==\"$2\"][0]" 2>/dev/null; }
disk_of() { ls "$STATE"/vms/*/"$1" 2>/dev/null | head -n 1; }
ino() { stat -c %i "$1" 2>/dev/null; }
stopped() { status_is "$1" 'd["phase"]' Stopped; }
answers() { [ "$(curl -s -m 5 "http://$(vm_ip "$1")/")" = "ok $1" ]; }

# ---- overlay ----------------------------------------------------------------------
flip_yaml ov Running "$IMG/current.ext4" | put "$SPEC/ov.yaml"
start_bangerd "$SPEC" "$STATE" "${DARGS[@]}"
check "ov Ready on current.ext4 -> v1.ext4" wait_until 150 is_ready ov
QC=$(disk_of root.qcow2)
QINO=$(ino "$QC")
check "ov's root disk is a qcow2 overlay ($QC)" test -n "$QC"
check "the overlay's backing file is the resolved v1.ext4, not the symlink" \
	test "$(qemu-img info -U --output=json "$QC" | json /dev/stdin 'd["backing-filename"]')" = "$IMG/v1.ext4"
flip_yaml ov Stopped "$IMG/current.ext4" | put "$SPEC/ov.yaml"
check "ov Stopped" wait_until 60 stopped ov
ln -sfn v2.ext4 "$IMG/current.ext4"
flip_yaml ov Running "$IMG/current.ext4" | put "$SPEC/ov.yaml"
check "flipped: ov Ready again" wait_until 150 is_ready ov
check "flipped: ov answers HTTP" answers ov
check "flipped: the overlay is the same file (inode $QINO)" test "$(ino "$QC")" = "$QINO"
check "flipped: it still reads v1.ext4" \
	test "$(qemu-img info -U --output=json "$QC" | json /dev/stdin 'd["backing-filename"]')" = "$IMG/v1.ext4"
check "flipped: status Disks reason KeptOriginalBase" test "$(cond ov Disks reason)" = KeptOriginalBase
check "flipped: the status message names v2 and v1" bash -c "m='$(cond ov Disks message)'; [[ \$m == *v2.ext4* && \$m == *'overlay keeps the base it was made from, $IMG/v1.ext4'* ]]"
check "flipped: the log says the overlay keeps its base" grep -q "ov: the image behind rootfs.path $IMG/current.ext4 changed" "$T/bangerd.log"
check "flipped: nothing was recreated" bash -c "! grep -qi 'recreat' '$T/bangerd.log'"

flip_yaml ov Stopped "$IMG/current.ext4" | put "$SPEC/ov.yaml"
check "ov Stopped again" wait_until 60 stopped ov
cp --sparse=always "$IMG/v2.ext4" "$IMG/v1.new" && mv -f "$IMG/v1.new" "$IMG/v1.ext4"
flip_yaml ov Running "$IMG/current.ext4" | put "$SPEC/ov.yaml"
failed_naming_v1() {
	status_is ov 'd["phase"]' Failed &&
		status_field ov 'd["lastError"]' | grep -q "overlay on base image $IMG/v1.ext4"
}
check "base replaced: the start fails, naming v1.ext4" wait_until 60 failed_naming_v1
ov_vmms() {
	local p
	for p in $(pgrep -f "qemu-system-x86_64.*$STATE"); do
		tr '\0' '\n' <"/proc/$p/cmdline" 2>/dev/null | grep -qx "guest=ov" && echo "$p"
	done
	true
}
check "base replaced: no VMM runs for ov" test -z "$(ov_vmms)"
check "base replaced: the overlay is still on disk (same inode)" test "$(ino "$QC")" = "$QINO"

flip_yaml ov Running "$IMG/v2.ext4" | put "$SPEC/ov.yaml"
check "path changed: ov Ready on v2.ext4" wait_until 150 is_ready ov
check "path changed: status Disks reason Recreated" test "$(cond ov Disks reason)" = Recreated
check "path changed: the message says so" test "$(cond ov Disks message)" = \
	"rootfs.path changed from $IMG/current.ext4 to $IMG/v2.ext4: root disk recreated"
check "path changed: the log says so" grep -q "ov: rootfs.path changed from $IMG/current.ext4 to $IMG/v2.ext4: root disk recreated" "$T/bangerd.log"
QC2=$(disk_of root.qcow2)
# A new overlay is one made on v2.ext4; its inode number proves nothing: the
# old overlay is deleted first, and the filesystem may hand the freed number
# to the new file (seen under the sanitizers).
check "path changed: a new overlay, on v2.ext4" \
	test -n "$QC2" -a "$(qemu-img info -U --output=json "$QC2" | json /dev/stdin 'd["backing-filename"]')" = "$IMG/v2.ext4"

# ---- disk pool -------------------------------------------------------------------
backing() { qemu-img info -U --output=json "$1" | json /dev/stdin 'd["backing-filename"]'; }
spares_on() {
	local f
	for f in "$STATE"/disk-pool/*.qcow2/root.qcow2; do
		[ -f "$f" ] && [ "$(backing "$f")" = "$1" ] && echo "$f"
	done
	true
}
SP=$(spares_on "$IMG/v2.ext4")
check "pool: after ov's new disk, one spare overlay on v2.ext4 waits ($SP)" test "$(echo "$SP" | grep -c .)" = 1
SPINO=$(ino "$SP")
flip_yaml sp Running "$IMG/v2.ext4" | put "$SPEC/sp.yaml"
check "pool: sp Ready on v2.ext4" wait_until 150 is_ready sp
check "pool: sp answers HTTP" answers sp
check "pool: sp's first boot took the spare (log)" grep -q "sp: timing: firewall.*root disk from the pool" "$T/bangerd.log"
check "pool: sp's root disk is the spare's file (inode $SPINO)" \
	test -n "$(find "$STATE/vms" -name root.qcow2 -inum "$SPINO")"
new_spare() { S=$(spares_on "$IMG/v2.ext4"); [ -n "$S" ] && [ "$(ino "$S")" != "$SPINO" ]; }
check "pool: a new spare on v2.ext4 after sp's exec" wait_until 10 new_spare
check "pool: ov's first boot found no spare (the pool was empty)" \
	bash -c "! grep -q 'ov: timing: firewall.*root disk from the pool' '$T/bangerd.log'"
rm -f "$SPEC/ov.yaml" "$SPEC/sp.yaml"
check "ov gone" wait_until 60 bash -c "[ ! -e '$STATUS/ov.status.json' ]"
check "sp gone" wait_until 60 bash -c "[ ! -e '$STATUS/sp.status.json' ]"
check "bangerd (ext4 state) exits cleanly" stop_bangerd
check "pool: spares stay across a stop" test -n "$(spares_on "$IMG/v2.ext4")"
touch "$IMG/v2.ext4"
start_bangerd "$SPEC" "$STATE" "${DARGS[@]}"
check "pool: at start-up, spares on changed bases are removed (log)" \
	wait_until 30 grep -q "outdated spare(s) removed" "$T/bangerd.log"
check "pool: none is left" test -z "$(ls "$STATE/disk-pool")"
check "bangerd (ext4 state, second run) exits cleanly" stop_bangerd

# ---- full copy on XFS (reflink) ----------------------------------------------
if command -v mkfs.xfs >/dev/null; then
	# Base images and state on one XFS: a reflink cannot cross filesystems.
	truncate -s 512M "$T/xfs.img"
	mkfs.xfs -q -m reflink=1 "$T/xfs.img"
	mkdir -p "$T/x"
	mount -o loop "$T/xfs.img" "$T/x"
	xfs_cleanup() {
		stop_bangerd
		for p in $(pgrep -f "qemu-system-x86_64.*$T" 2>/dev/null); do kill -9 "$p"; done
		sleep 0.2
		umount "$T/x" 2>/dev/null
		rm -rf "$T"
	}
	trap xfs_cleanup EXIT
	STATE=$T/x/state
	IMG=$T/x/img
	mkdir -p "$STATE" "$IMG"
	cp --sparse=always "$GUEST_DIR/rootfs.ext4" "$IMG/v1.ext4"
	cp --sparse=always "$GUEST_DIR/rootfs.ext4" "$IMG/v2.ext4"
	ln -s v1.ext4 "$IMG/current.ext4"
	flip_yaml cp Running "$IMG/current.ext4" | put "$SPEC/cp.yaml"
	start_bangerd "$SPEC" "$STATE" --image-dir "$GUEST_DIR" --image-dir "$IMG" --driver qemu \
		--resync 30 --stop-timeout 5
	check "copy: cp Ready" wait_until 150 is_ready cp
	RL=$(disk_of root.reflink.img)
	check "copy: cp's root disk is a reflink copy ($RL)" test -n "$RL"
	RINO=$(ino "$RL")
	check "copy: a reflink spare waits in the disk pool after cp's first boot" \
		wait_until 10 bash -c "ls '$STATE'/disk-pool/*.reflink/root.reflink.img >/dev/null 2>&1"
	flip_yaml cp Stopped "$IMG/current.ext4" | put "$SPEC/cp.yaml"
	check "copy: cp Stopped" wait_until 60 stopped cp
	ln -sfn v2.ext4 "$IMG/current.ext4"
	flip_yaml cp Running "$IMG/current.ext4" | put "$SPEC/cp.yaml"
	check "copy flipped: cp Ready" wait_until 150 is_ready cp
	check "copy flipped: cp answers HTTP" answers cp
	check "copy flipped: the copy is the same file (inode $RINO)" test "$(ino "$RL")" = "$RINO"
	check "copy flipped: status Disks reason KeptCopy" test "$(cond cp Disks reason)" = KeptCopy
	check "copy flipped: the log says the copy is kept" grep -q "cp: the image behind rootfs.path .* the root disk is a full reflink copy and is kept" "$T/bangerd.log"
	rm -f "$SPEC/cp.yaml"
	check "cp gone" wait_until 60 bash -c "[ ! -e '$STATUS/cp.status.json' ]"
	check "bangerd (XFS state) exits cleanly" stop_bangerd
else
	not_ok "mkfs.xfs missing: the full-copy case did not run"
fi
check "within 8 minutes ($((SECONDS - T0)) s)" test $((SECONDS - T0)) -lt 480
[ "$_failed" -eq 0 ] || { echo "# bangerd log tail:"; tail -n 80 "$T/bangerd.log" | sed 's/^/# /'; }
done_testing
