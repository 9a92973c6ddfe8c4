#!/bin/bash
# Work-disk grows under bangerd, with a real QEMU guest in a private netns
# (the guest mounts its work disk on /data and counts its boots in
# /data/banger-boot-count, which the host reads back with debugfs):
#  - a grow that fails (bangerd runs without resize2fs in its PATH) leaves
#    the disk at its old size with its data, and the VM starts anyway; status
#    Disks/WorkDiskResizeFailed and the log say so;
#  - the same grow with resize2fs available runs in a child the event loop
#    polls (logged with its pid), grows the disk, keeps the data, and the
#    guest boots on it.
. "$(dirname "$0")/lib.sh"
private_netns "$0" "$@"
need_guest
for t in debugfs dumpe2fs e2fsck mkfs.ext4 resize2fs qemu-img; do
	command -v $t >/dev/null || skip_all "missing $t"
done
guest_test_setup wd
DARGS=(--image-dir "$GUEST_DIR" --driver qemu --resync 30 --stop-timeout 10)
T0=$SECONDS
# A PATH with every tool bangerd runs, except resize2fs.
mkdir -p "$T/bin"
for t in qemu-system-x86_64 qemu-img mkfs.ext4 e2fsck; do ln -s "$(command -v $t)" "$T/bin/$t"; done

wd_yaml() { guest_yaml w 128 "$1" "  workDisk: {sizeMiB: $2}"; }
WD() { ls "$STATE"/vms/*/work.ext4 2>/dev/null | head -n 1; }
boots() { debugfs -R 'cat banger-boot-count' "$(WD)" 2>/dev/null; }
fs_mib() { dumpe2fs -h "$(WD)" 2>/dev/null | awk -F: '/^Block count/{c=$2} /^Block size/{s=$2} END{print c*s/1048576}'; }
cond() { status_field w "[c[\"$2\"] for c in d[\"conditions\"] if c[\"type\"]==\"$1\"][0]" 2>/dev/null; }
stopped() { status_is w 'd["phase"]' Stopped; }

wd_yaml Running 16 | put "$SPEC/w.yaml"
PATH=$T/bin:/nonexistent start_bangerd "$SPEC" "$STATE" "${DARGS[@]}"
check "w Ready with a 16 MiB work disk" wait_until 150 is_ready w
wd_yaml Stopped 16 | put "$SPEC/w.yaml"
check "w Stopped" wait_until 60 stopped w
check "the guest counted one boot on its work disk ($(boots))" test "$(boots)" = 1

# grow without resize2fs: fails, the disk stays, the VM starts
wd_yaml Running 64 | put "$SPEC/w.yaml"
check "grow failed: w Ready anyway" wait_until 150 is_ready w
check "grow failed: status Disks/WorkDiskResizeFailed" test "$(cond Disks reason)" = WorkDiskResizeFailed
check "grow failed: the message says the old size was used" bash -c "[[ '$(cond Disks message)' == 'work disk resize to 64 MiB failed'*'started at its old size' ]]"
check "grow failed: it ran in a child (log)" grep -q "w: growing work disk .* to 64 MiB in pid" "$T/bangerd.log"
check "grow failed: the log names the missing tool" grep -q "resize2fs not found" "$T/bangerd.log"
wd_yaml Stopped 64 | put "$SPEC/w.yaml"
check "w Stopped again" wait_until 60 stopped w
check "grow failed: the disk is still 16 MiB ($(fs_mib))" test "$(fs_mib)" = 16
check "grow failed: the data survived, the guest booted on it again ($(boots))" test "$(boots)" = 2
check "grow failed: e2fsck finds it clean" e2fsck -f -n "$(WD)"
stop_bangerd

# the same grow with resize2fs
start_bangerd "$SPEC" "$STATE" "${DARGS[@]}"
wd_yaml Running 64 | put "$SPEC/w.yaml"
check "grown: w Ready" wait_until 150 is_ready w
check "grown: the child's end is logged" grep -q "w: work disk grow (pid [0-9]*) ended: grown" "$T/bangerd.log"
check "grown: no Disks condition" test -z "$(cond Disks reason)"
wd_yaml Stopped 64 | put "$SPEC/w.yaml"
check "w Stopped a third time" wait_until 60 stopped w
check "grown: the filesystem is 64 MiB ($(fs_mib))" test "$(fs_mib)" = 64
check "grown: the data survived ($(boots) boots)" test "$(boots)" = 3
check "grown: no grow copy left" bash -c "! ls '$STATE'/vms/*/work.ext4.grow 2>/dev/null"

rm -f "$SPEC/w.yaml"
check "w gone" wait_until 60 bash -c "[ ! -e '$STATUS/w.status.json' ]"
left=$(leaks "$STATE")
check "nothing leaked: '$left'" test -z "$left"
check "bangerd exits cleanly" stop_bangerd
check "within 6 minutes ($((SECONDS - T0)) s)" test $((SECONDS - T0)) -lt 360
[ "$_failed" -eq 0 ] || { echo "# bangerd log tail:"; tail -n 60 "$T/bangerd.log" | sed 's/^/# /'; }
done_testing
