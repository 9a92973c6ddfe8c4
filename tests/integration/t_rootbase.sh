#!/bin/bash
# Which base a kept root disk goes with (controller/storage/rootbase.h), and
# loop teardown that checks the backing file, against real files, qemu-img
# and loop devices (no guest; t_symlink_flip.sh boots one):
#  - rootfs via a symlink current.ext4 -> v1.ext4: the qcow2 overlay names
#    the RESOLVED base (v1.ext4), the record names both;
#  - symlink flipped to v2.ext4: an overlay keeps v1 (same file, untouched);
#    a full copy (sparse) is kept untouched; neither is re-created;
#  - v1 replaced (new inode): the overlay fails, naming v1;
#  - rootfs.path itself changed: the disk is re-created, the note says so;
#  - a record from an older banger (a bare path) keeps the disk;
#  - a base loop is detached only when backed by the recorded base image.
. "$(dirname "$0")/lib.sh"
TOOL=$BIN/tests/storage-tool
[ "$(id -u)" = 0 ] || skip_all "needs root (loop devices)"
[ -e /dev/loop-control ] || skip_all "no /dev/loop-control"
command -v qemu-img >/dev/null || skip_all "qemu-img not installed"
[ -x "$TOOL" ] || skip_all "no $TOOL (make all-tests)"

T=$(mktemp -d /tmp/banger-t-rootbase.XXXXXX)
T=$(realpath "$T")
IMG=$T/images
LOOPS=()
cleanup() {
	for d in "${LOOPS[@]}"; do losetup -d "$d" 2>/dev/null; done
	rm -rf "$T"
}
trap cleanup EXIT
mkdir -p "$IMG" "$T/ov" "$T/cp"
head -c 4M /dev/urandom >"$IMG/v1.ext4"
head -c 4M /dev/urandom >"$IMG/v2.ext4"
ln -s v1.ext4 "$IMG/current.ext4"

field() { sed -n "s/^$1 //p" <<<"$2"; }
ident() { stat -c '%d:%i:%s:%Y.%y' "$1"; }

# ---- creation -------------------------------------------------------------------
out=$("$TOOL" rootbase "$T/ov" "$IMG/current.ext4")
check "overlay: first start plans create ($(field plan "$out"))" test "$(field plan "$out")" = create
check "overlay: base is the resolved file" test "$(field base "$out")" = "$IMG/v1.ext4"
"$TOOL" prepare "$T/ov" 0123abcd00000000000000000000000a "$(field base "$out")" qemu qcow2 >/dev/null
backing=$(qemu-img info --output=json "$T/ov/root.qcow2" | json /dev/stdin 'd["backing-filename"]')
check "qcow2 overlay references the resolved base, not the symlink ($backing)" test "$backing" = "$IMG/v1.ext4"
check "record names the spec path and the resolved file" \
	json "$T/ov/root.base" 'd["spec_path"]=="'"$IMG/current.ext4"'" and d["resolved"]=="'"$IMG/v1.ext4"'" and d["ino"]>0 or exit(1)'
out=$("$TOOL" rootbase "$T/cp" "$IMG/current.ext4")
"$TOOL" prepare "$T/cp" 0123abcd00000000000000000000000b "$(field base "$out")" fc sparse >/dev/null
check "copy: a sparse copy was made" test -f "$T/cp/root.img"
out=$("$TOOL" rootbase "$T/ov" "$IMG/current.ext4")
check "same file again: keep, no note" test "$(field plan "$out")/$(field note "$out")" = keep/

# ---- symlink flipped ----------------------------------------------------------
ov_before=$(ident "$T/ov/root.qcow2")
cp_before=$(ident "$T/cp/root.img")
ln -sfn v2.ext4 "$IMG/current.ext4"
out=$("$TOOL" rootbase "$T/ov" "$IMG/current.ext4")
check "flip: the overlay keeps its base ($(field plan "$out"))" test "$(field plan "$out")" = keep-original
check "flip: the base to attach is still v1" test "$(field base "$out")" = "$IMG/v1.ext4"
check "flip: reason KeptOriginalBase" test "$(field reason "$out")" = KeptOriginalBase
check "flip: the note names both images" bash -c "grep -q 'v2.ext4' <<<'$(field note "$out")' && grep -q 'v1.ext4' <<<'$(field note "$out")'"
out2=$("$TOOL" prepare "$T/ov" 0123abcd00000000000000000000000a "$(field base "$out")" qemu)
check "flip: prepare reuses the overlay" test "$(field reused "$out2")" = 1
check "flip: the overlay file is untouched (not re-created)" test "$(ident "$T/ov/root.qcow2")" = "$ov_before"
backing=$(qemu-img info --output=json "$T/ov/root.qcow2" | json /dev/stdin 'd["backing-filename"]')
check "flip: the overlay still reads v1 ($backing)" test "$backing" = "$IMG/v1.ext4"
out=$("$TOOL" rootbase "$T/cp" "$IMG/current.ext4")
check "flip: the copy is kept ($(field plan "$out"))" test "$(field plan "$out")/$(field reason "$out")" = keep-copy/KeptCopy
check "flip: the copy is untouched" test "$(ident "$T/cp/root.img")" = "$cp_before"

# ---- the overlay's base replaced ---------------------------------------------------
cp "$IMG/v2.ext4" "$IMG/v1.new" && mv -f "$IMG/v1.new" "$IMG/v1.ext4"
out=$("$TOOL" rootbase "$T/ov" "$IMG/current.ext4")
check "base replaced: the overlay fails with ESTALE ($(field error "$out"))" test "$(field error "$out")" = "-116 Stale file handle"
check "base replaced: the reason names the base image v1.ext4" bash -c "grep -q 'overlay on base image $IMG/v1.ext4' <<<'$(field why "$out")'"
check "base replaced: the overlay is kept on disk" test "$(ident "$T/ov/root.qcow2")" = "$ov_before"
out=$("$TOOL" rootbase "$T/cp" "$IMG/current.ext4")
check "base replaced: the copy does not care ($(field plan "$out"))" test "$(field plan "$out")" = keep-copy

# ---- rootfs.path changed --------------------------------------------------------
cp "$IMG/v2.ext4" "$IMG/other.ext4"
out=$("$TOOL" rootbase "$T/ov" "$IMG/other.ext4")
check "path changed: recreate ($(field plan "$out"))" test "$(field plan "$out")/$(field reason "$out")" = recreate/Recreated
check "path changed: the note says so" test "$(field note "$out")" = "rootfs.path changed from $IMG/current.ext4 to $IMG/other.ext4: root disk recreated"
check "path changed: the old overlay is gone" test ! -e "$T/ov/root.qcow2"
check "path changed: the record names the new path" json "$T/ov/root.base" 'd["spec_path"]=="'"$IMG/other.ext4"'" or exit(1)'

# ---- a record from an older banger ----------------------------------------------
printf '%s' "$IMG/v2.ext4" >"$T/cp/root.base"
out=$("$TOOL" rootbase "$T/cp" "$IMG/current.ext4")
check "old record, same file: keep" test "$(field plan "$out")" = keep
check "old record upgraded with the file's identity" json "$T/cp/root.base" 'd["ino"]>0 or exit(1)'
printf '%s' "$IMG/v1.ext4" >"$T/cp/root.base"
out=$("$TOOL" rootbase "$T/cp" "$IMG/current.ext4")
check "old record, other file: a copy is kept ($(field plan "$out"))" test "$(field plan "$out")" = keep-copy

# ---- base loops are detached only after their backing file is checked ---------
dev=$("$TOOL" loop-attach "$IMG/v2.ext4" ro) && LOOPS+=("$dev")
bound() { [ "$(cat "/sys/block/${1#/dev/}/loop/backing_file" 2>/dev/null)" = "$2" ]; }
check "a loop backs v2 ($dev)" bound "$dev" "$IMG/v2.ext4"
"$TOOL" teardown base_loop="$dev" >/dev/null
check "teardown without a recorded base image leaves the loop" bound "$dev" "$IMG/v2.ext4"
"$TOOL" teardown base_loop="$dev" base_image="$IMG/other.ext4" >/dev/null
check "teardown with another base image leaves the loop" bound "$dev" "$IMG/v2.ext4"
"$TOOL" teardown base_loop="$dev" base_image="$IMG/v2.ext4" >/dev/null
check "teardown with its base image detaches it" wait_until 5 bash -c "! [ -e /sys/block/${dev#/dev/}/loop/backing_file ] || [ \"\$(cat /sys/block/${dev#/dev/}/loop/backing_file)\" != '$IMG/v2.ext4' ]"
done_testing
