#!/bin/bash
# t_storage.sh — controller/storage against the real kernel: loop devices
# (read-only flag, backing file, autoclear, orphan listing), device-mapper
# absence, copy-on-write root disks (sparse on ext4, qcow2 for qemu, reflink
# on a loop-mounted XFS in a private mount namespace), the base image never
# changing, work disks, idempotent teardown. Everything made lives under one
# temp dir; the EXIT trap detaches every loop backed there.
set -u
. "$(dirname "$0")/lib.sh"
BIN=${BANGER_BIN_DIR:-build}
TOOL=$BIN/tests/storage-tool
skip() { skip_all "$@"; }

[ "$(id -u)" = 0 ] || skip "needs root (loop devices, mounts)"
[ -e /dev/loop-control ] || skip "no /dev/loop-control"
[ -x "$TOOL" ] || skip "no $TOOL (run make all-tests)"
for t in mkfs.ext4 dumpe2fs blkid qemu-img qemu-io mkfs.xfs unshare filefrag sha256sum; do
	command -v "$t" >/dev/null || skip "missing tool $t"
done

W=$(mktemp -d /tmp/banger-t-storage.XXXXXX)
W=$(realpath "$W")

# Detach every loop device whose backing file is under $W (ours only).
detach_ours() {
	local f b
	for f in /sys/block/loop*/loop/backing_file; do
		[ -r "$f" ] || continue
		b=$(cat "$f" 2>/dev/null) || continue
		case "$b" in "$W"/*) losetup -d "/dev/$(basename "$(dirname "$(dirname "$f")")")" ;; esac
	done
}
cleanup() {
	detach_ours
	# The XFS mount lived only in the unshare'd namespace; nothing to unmount
	# here, but make sure no mount of ours leaked into the host namespace.
	grep -q " $W" /proc/self/mountinfo && umount -R -l "$W"/mnt 2>/dev/null
	rm -rf "$W"
}
trap cleanup EXIT

ours_in_losetup() { losetup -a | grep -c "$W" || true; }
loop_sysfs() { cat "/sys/block/$(basename "$1")/$2" 2>/dev/null; }

mkdir -p "$W/images" "$W/state/vm1" "$W/state/vm2" "$W/stateX"
BASE=$W/images/base.img
truncate -s 64M "$BASE"
mkfs.ext4 -q -F -L base "$BASE"
dd if=/dev/urandom of="$BASE" bs=1M count=2 seek=40 conv=notrunc status=none
SHA0=$(sha256sum <"$BASE")

# --- loop devices -----------------------------------------------------------
RO=$($TOOL loop-attach "$BASE" ro)
check "loop attach read-only: $RO" test -b "$RO"
check "sysfs ro flag is 1" test "$(loop_sysfs "$RO" ro)" = 1
check "tool reads ro flag" test "$($TOOL loop-ro "$RO")" = 1
check "sysfs backing_file is the base" test "$(loop_sysfs "$RO" loop/backing_file)" = "$BASE"
check "losetup -a sees it" test "$(losetup -a | grep -c "^$RO:.*$BASE")" = 1
check "writing the read-only loop fails" \
	bash -c "! dd if=/dev/zero of=$RO bs=4k count=1 conv=notrunc,fsync status=none 2>/dev/null"
check "base unchanged after write attempt" test "$(sha256sum <"$BASE")" = "$SHA0"

COWF=$W/state/vm1/scratch.cow
truncate -s 8M "$COWF"
RW=$($TOOL loop-attach "$COWF" rw)
check "loop attach read-write: $RW" test "$(loop_sysfs "$RW" ro)" = 0
truncate -s 1M "$W/stateX/trap.img"
TRAP=$($TOOL loop-attach "$W/stateX/trap.img" rw)
LIST=$($TOOL loop-list "$W/state")
check "list backed under state has the state loop" grep -qx "$RW" <<<"$LIST"
check "list leaves out the base (images/)" bash -c "! grep -qx '$RO' <<<'$LIST'"
check "list leaves out stateX (prefix trap)" bash -c "! grep -qx '$TRAP' <<<'$LIST'"
check "list of a dir with nothing is empty" test -z "$($TOOL loop-list "$W/state/vm2")"

check "detach" $TOOL loop-detach "$RO"
check "backing_file gone after detach" bash -c "! test -e /sys/block/$(basename "$RO")/loop/backing_file"
check "detach again is fine (idempotent)" $TOOL loop-detach "$RO"
check "detach of a non-loop path refused" bash -c "! $TOOL loop-detach /dev/null >/dev/null"
$TOOL loop-detach "$TRAP" >/dev/null

HELD=$($TOOL loop-held "$BASE")
check "held (autoclear) loop bound while its fd is open" grep -qx "bound-while-held yes" <<<"$HELD"
check "held loop read-only" grep -qx "read-only 1" <<<"$HELD"
check "held loop gone once the fd closes" grep -qx "gone-after-close yes" <<<"$HELD"

# teardown with recorded handles: detaches loops that are still ours, leaves
# a recorded device that now backs another file alone, and is idempotent.
BL=$($TOOL loop-attach "$BASE" ro)
TD=(dm_name=banger-0123abcd base_loop="$BL" cow_loop="$RW" base_image="$BASE" cow_file="$COWF")
check "teardown (dm absent, two loops)" $TOOL teardown "${TD[@]}"
check "teardown detached the cow loop" bash -c "! test -e /sys/block/$(basename "$RW")/loop/backing_file"
check "teardown detached the base loop" bash -c "! test -e /sys/block/$(basename "$BL")/loop/backing_file"
check "teardown again is fine (idempotent)" $TOOL teardown "${TD[@]}"
OTHER=$($TOOL loop-attach "$W/stateX/trap.img" rw)
check "teardown leaves a reused device number alone" \
	bash -c "$TOOL teardown cow_loop=$OTHER cow_file=$COWF && test -e /sys/block/$(basename "$OTHER")/loop/backing_file"
$TOOL loop-detach "$OTHER" >/dev/null
check "no loop device of ours left after the loop tests" test "$(ours_in_losetup)" = 0

# --- device-mapper ------------------------------------------------------------
start=${EPOCHREALTIME/./}
DMOUT=$($TOOL dm-available 2>"$W/dm.err")
dur=$(((${EPOCHREALTIME/./} - start) / 1000))
check "dm_available() is no here" test "$DMOUT" = no
check "dm_available() is quick (${dur} ms)" test "$dur" -lt 500
check "dm_available() is quiet (no stderr)" test ! -s "$W/dm.err"
OUT=$($TOOL prepare "$W/state/vm2" 0123abcd "$BASE" fc dm)
check "forced dm fails cleanly with EOPNOTSUPP" grep -q "^error -95 " <<<"$OUT"
check "forced dm left no loop device behind" test "$(ours_in_losetup)" = 0
check "forced dm made no kernel object, so recorded nothing" bash -c "! grep -q '^record' <<<'$OUT'"

# --- copy-on-write root disks on ext4 ------------------------------------------
check "detect on ext4, firecracker: sparse" test "$($TOOL detect "$W/state/vm1" fc)" = sparse
check "detect on ext4, qemu: qcow2" test "$($TOOL detect "$W/state/vm1" qemu)" = qcow2

OUT=$($TOOL prepare "$W/state/vm1" 0123abcd "$BASE" fc)
echo "$OUT" | sed 's/^/# fc on ext4: /'
check "fc on ext4 falls back to sparse" grep -qx "method sparse" <<<"$OUT"
DISK=$W/state/vm1/root.img
check "disk inside the vm dir, raw" grep -qx "path $DISK" <<<"$OUT"
check "sparse disk has the base's bytes" cmp -s "$BASE" "$DISK"
alloc_disk=$(du -k "$DISK" | cut -f1)
check "sparse disk is sparse (${alloc_disk} KiB allocated of 65536)" test "$alloc_disk" -lt 32768
dd if=/dev/urandom of="$DISK" bs=1M count=4 seek=8 conv=notrunc,fsync status=none
check "writing the CoW disk changed it" bash -c "! cmp -s '$BASE' '$DISK'"
check "base image bytes unchanged (sha256)" test "$(sha256sum <"$BASE")" = "$SHA0"
SUM1=$(sha256sum <"$DISK")
OUT=$($TOOL prepare "$W/state/vm1" 0123abcd "$BASE" fc)
check "second prepare keeps the disk (restart)" grep -qx "reused 1" <<<"$OUT"
check "kept disk keeps its writes" test "$(sha256sum <"$DISK")" = "$SUM1"

mkdir -p "$W/state/vm3"
OUT=$($TOOL prepare "$W/state/vm3" 89abcdef "$BASE" qemu)
echo "$OUT" | sed 's/^/# qemu on ext4: /'
Q=$W/state/vm3/root.qcow2
check "qemu on ext4 gets a qcow2 overlay" grep -qx "method qcow2" <<<"$OUT"
check "format qcow2" grep -qx "format qcow2" <<<"$OUT"
INFO=$(qemu-img info --output=json "$Q")
check "overlay backing file is the absolute base path" grep -q "\"backing-filename\": \"$BASE\"" <<<"$INFO"
check "overlay backing format raw" grep -q '"backing-filename-format": "raw"' <<<"$INFO"
check "overlay virtual size is the base's" grep -q "\"virtual-size\": $(stat -c %s "$BASE")," <<<"$INFO"
check "qemu-img check finds no error in the overlay banger wrote" qemu-img check -q "$Q"
check "write into the overlay" qemu-io -f qcow2 -c "write -P 0xab 1M 1M" "$Q"
check "overlay reads its own write" qemu-io -f qcow2 -c "read -P 0xab 1M 1M" "$Q"
check "base image bytes unchanged after qcow2 write" test "$(sha256sum <"$BASE")" = "$SHA0"
check "overlay still consistent after writes (qemu-img check)" qemu-img check -q "$Q"
check "overlay reads the base where it was not written" \
	qemu-io -f qcow2 -c "read -v 0 512" "$Q" >/dev/null
check "firecracker cannot use an existing qcow2 disk" \
	bash -c "$TOOL prepare '$W/state/vm3' 89abcdef '$BASE' fc | grep -q '^error -95'"

# --- reflink on a loop-mounted XFS, in a private mount namespace --------------
XIMG=$W/xfs.img
truncate -s 512M "$XIMG"
if ! grep -qw xfs /proc/filesystems; then
	ok "# SKIP reflink tests: this kernel has no XFS"
elif mkfs.xfs -q -m reflink=1 "$XIMG" 2>"$W/mkfs.err"; then
	mkdir -p "$W/mnt"
	# The mount exists only inside this namespace and dies with it.
	XOUT=$(unshare -m --propagation private bash -c '
		set -e
		mount -o loop "$1" "$2"
		mkdir -p "$2/images" "$2/vm" "$2/vmx" "$2/vmq"
		cp "$3" "$2/images/base.img"
		echo "probe $("$4" reflink-probe "$2/vm")"
		echo "detect $("$4" detect "$2/vm" fc)"
		"$4" prepare "$2/vm" 0123abcd "$2/images/base.img" fc | sed "s/^/same-fs /"
		filefrag -v "$2/vm/root.reflink.img" | grep -q shared && echo "shared yes"
		s0=$(sha256sum <"$2/images/base.img")
		dd if=/dev/urandom of="$2/vm/root.reflink.img" bs=1M count=2 seek=4 conv=notrunc,fsync status=none
		[ "$(sha256sum <"$2/images/base.img")" = "$s0" ] && echo "xfs-base unchanged"
		cmp -s "$2/images/base.img" "$3" && echo "xfs-base equals original"
		"$4" prepare "$2/vmx" 0123abcd "$3" fc | sed "s/^/cross-fs-fc /"
		"$4" prepare "$2/vmq" 0123abcd "$3" qemu | sed "s/^/cross-fs-qemu /"
		cmp -s "$2/vmx/root.img" "$3" && echo "cross-fs copy equal"
		umount "$2"
	' _ "$XIMG" "$W/mnt" "$BASE" "$TOOL" 2>&1)
	echo "$XOUT" | sed 's/^/# xfs: /'
	check "reflink probe yes on XFS" grep -qx "probe yes" <<<"$XOUT"
	check "detect on XFS: reflink" grep -qx "detect reflink" <<<"$XOUT"
	check "prepare on XFS chose reflink" grep -qx "same-fs method reflink" <<<"$XOUT"
	check "reflinked disk shares extents with the base" grep -qx "shared yes" <<<"$XOUT"
	check "XFS base unchanged after writing the clone" grep -qx "xfs-base unchanged" <<<"$XOUT"
	check "XFS base still equals the original" grep -qx "xfs-base equals original" <<<"$XOUT"
	check "base on another fs: reflink falls back to sparse (fc)" \
		grep -qx "cross-fs-fc method sparse" <<<"$XOUT"
	check "base on another fs: reflink falls back to qcow2 (qemu)" \
		grep -qx "cross-fs-qemu method qcow2" <<<"$XOUT"
	check "cross-fs sparse copy equal to base" grep -qx "cross-fs copy equal" <<<"$XOUT"
	check "the XFS mount did not leak into the host namespace" \
		bash -c "! grep -q ' $W/mnt ' /proc/self/mountinfo"
else
	not_ok "mkfs.xfs -m reflink=1 failed: $(cat "$W/mkfs.err")"
fi
check "base image bytes unchanged at the end (sha256)" test "$(sha256sum <"$BASE")" = "$SHA0"

# --- work disk ---------------------------------------------------------------
WD=$W/state/vm1/work.ext4
check "work disk created" test "$($TOOL workdisk "$WD" 64)" = 1
check "work disk is 64 MiB" test "$(stat -c %s "$WD")" = $((64 * 1024 * 1024))
alloc=$(du -k "$WD" | cut -f1)
check "work disk is sparse (${alloc} KiB allocated)" test "$alloc" -lt 32768
check "blkid says ext4" test "$(blkid -o value -s TYPE "$WD")" = ext4
check "dumpe2fs shows our label" bash -c "dumpe2fs -h '$WD' 2>/dev/null | grep -q 'volume name: *banger-work'"
check "no temp or log files left" test "$(find "$W/state" -name '*.tmp' -o -name '*.log' | wc -l)" = 0
check "same size: kept" test "$($TOOL workdisk "$WD" 64)" = 0
blocks() { dumpe2fs -h "$WD" 2>/dev/null | awk -F: '/^Block count/ {c=$2} /^Block size/ {s=$2} END {print c*s}'; }
check "grown to 96 MiB" test "$($TOOL workdisk "$WD" 96)" = 1
check "filesystem grown too" test "$(blocks)" = $((96 * 1024 * 1024))
check "shrinking refused" bash -c "$TOOL workdisk '$WD' 32 | grep -q '^error -22'"
check "refused shrink left the disk as it was" test "$(stat -c %s "$WD")" = $((96 * 1024 * 1024))

# --- image roots -------------------------------------------------------------
check "imagecheck accepts the base" test "$($TOOL imagecheck "$BASE" "$W/images")" = "$BASE"
check "imagecheck refuses ../ escape" \
	bash -c "$TOOL imagecheck '$W/images/../state/vm1/root.img' '$W/images' 2>&1 | grep -q 'outside the allowed image roots ($W/images)'"

check "no loop device of ours left (losetup -a)" test "$(ours_in_losetup)" = 0
done_testing
