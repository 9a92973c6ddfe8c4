#!/bin/bash
# A failed work-disk grow leaves the disk usable at its old size, its data
# intact (controller/storage/workdisk.h), against real e2fsprogs:
#  - resize2fs missing from PATH: kept, nothing changed;
#  - the filesystem under the work disk full (a small ext4 image loop-mounted
#    in a private mount namespace): kept at the old size, e2fsck clean, the
#    file written before still there;
# Both failures leave the disk the same file, untouched (inode, mtime):
# the grow runs on a copy, because an aborted resize2fs breaks the
# filesystem it resizes (measured: "Resize inode not valid" after ENOSPC).
#  - space freed: the same request grows it.
. "$(dirname "$0")/lib.sh"
if [ -z "${BANGER_IN_MNTNS:-}" ]; then
	BANGER_IN_MNTNS=1 exec unshare -m --propagation private -- bash "$0" "$@"
fi
TOOL=$BIN/tests/storage-tool
[ -x "$TOOL" ] || skip_all "no $TOOL (make all-tests)"
for t in mkfs.ext4 e2fsck resize2fs debugfs dumpe2fs; do
	command -v $t >/dev/null || skip_all "missing $t"
done
T=$(mktemp -d /tmp/banger-t-wdresize.XXXXXX)
M=$T/mnt
cleanup() { umount "$M" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
mkdir -p "$M"
truncate -s 48M "$T/fs.img"
mkfs.ext4 -q -F "$T/fs.img"
mount -o loop "$T/fs.img" "$M" || skip_all "cannot loop-mount an ext4 image here"
W=$M/work.ext4

check "create an 8 MiB work disk" test "$("$TOOL" workdisk "$W" 8)" = 1
echo "precious data" >"$T/data"
debugfs -w -R "write $T/data data.txt" "$W" >/dev/null 2>&1
data_ok() { [ "$(debugfs -R 'cat data.txt' "$W" 2>/dev/null)" = "precious data" ]; }
fs_mib() { dumpe2fs -h "$W" 2>/dev/null | awk -F: '/^Block count/{c=$2} /^Block size/{s=$2} END{print c*s/1048576}'; }
clean() { e2fsck -f -n "$W" >/dev/null 2>&1; }
check "data written into it" data_ok

# resize2fs missing: e2fsck is found, resize2fs is not
mkdir -p "$T/bin"
ln -s "$(command -v e2fsck)" "$T/bin/e2fsck"
before=$(stat -c '%i:%Y:%s' "$W")
out=$(PATH=$T/bin "$TOOL" workdisk "$W" 64 2>"$T/log1")
check "resize2fs missing: kept at the old size (result $out)" test "$out" = 2
check "resize2fs missing: the disk is the same file, untouched" test "$(stat -c '%i:%Y:%s' "$W")" = "$before"
check "resize2fs missing: no grow copy left" test ! -e "$W.grow"
check "resize2fs missing: the log says why" grep -q "resize to 64 MiB failed.*kept at 8 MiB" "$T/log1"
check "resize2fs missing: e2fsck clean, data intact" bash -c "$(declare -f clean data_ok); W='$W'; clean && data_ok"

# the filesystem under the disk full
dd if=/dev/zero of="$M/fill" bs=64k 2>/dev/null
dd if=/dev/zero of="$M/fill2" bs=4k 2>/dev/null
out=$("$TOOL" workdisk "$W" 512 2>"$T/log2")
check "disk full: the disk is the same file, untouched" test "$(stat -c '%i:%Y:%s' "$W")" = "$before"
check "disk full: kept at the old size (result $out)" test "$out" = 2
check "disk full: the filesystem is 8 MiB ($(fs_mib))" test "$(fs_mib)" = 8
check "disk full: e2fsck finds it clean" clean
check "disk full: the data is intact" data_ok
check "disk full: the log says so" grep -q "resize to 512 MiB failed (No space left on device); kept at 8 MiB" "$T/log2"

rm -f "$M/fill" "$M/fill2"
out=$("$TOOL" workdisk "$W" 32 2>"$T/log4")
check "space freed: grown (result $out)" test "$out" = 1
check "space freed: the filesystem is 32 MiB ($(fs_mib))" test "$(fs_mib)" = 32
check "space freed: clean, data intact" bash -c "$(declare -f clean data_ok); W='$W'; clean && data_ok"
done_testing
