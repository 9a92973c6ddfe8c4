#!/bin/bash
# The VM runtime used directly (tests/helpers/vm-tool, no daemon), with real
# QEMU guests in a private netns: boot + HTTP over the bridge + graceful
# stop + teardown; kill -9 of the VMM then rediscovery + teardown; a crash
# (SIGKILL through $BANGER_CRASHPOINT) at every write-ahead point of a start,
# then rediscovery + teardown leave nothing; the image-root check.
# Each vm-tool run is a fresh process, as a restarted controller is.
. "$(dirname "$0")/lib.sh"
private_netns "$0" "$@"
need_guest

T=$(mktemp -d /tmp/banger-t-runtime.XXXXXX)
STATE=$T/state
cleanup() {
	for p in $(pgrep -f "qemu-system-x86_64.*$T" 2>/dev/null); do kill -9 "$p"; done
	for d in $(losetup -a 2>/dev/null | grep -F "$T" | cut -d: -f1); do losetup -d "$d"; done
	sleep 0.2
	cleanup_cgroups "${STATE:-}"
	rm -rf "$T"
}
trap cleanup EXIT
mkdir -p "$STATE"
VT=("$BIN/tests/vm-tool" --state-dir "$STATE" --runtime-dir "$STATE/run" --image-dir "$GUEST_DIR"
	--bridge bgrt0 --cidr 172.16.0.1/24)
vt() { "${VT[@]}" "$@" 2>>"$T/vm-tool.log"; }
K=$GUEST_DIR/bzImage
R=$GUEST_DIR/rootfs.ext4
uid_for() { printf '%08x%024x' "$1" 0; }
tap_of() { echo "bgr-${1:0:8}"; }
has_tap() { ip link show "$1" >/dev/null 2>&1; }
# The VMM serving a VM's socket, found the way an operator would (pgrep).
vmm_pids() { pgrep -f "qemu-system-x86_64.*$STATE/run/${1:0:8}.sock" | sort; }
fetch() { curl -s -m 2 "http://$1/"; }
answers() { [ "$(fetch "$1")" = "ok $2" ]; }

# ---- (a) boot, HTTP over the bridge, graceful stop, teardown ---------------------
U=$(uid_for 1)
out=$(vt start web $U "$K" "$R" 172.16.0.11)
check "start: a qemu guest (pid in output)" grep -q '^pid [1-9]' <<<"$out"
pid=$(awk '/^pid/ {print $2}' <<<"$out")
check "start: the VMM is the process serving the VM's socket" test "$(vmm_pids $U)" = "$pid"
check "start: tap $(tap_of $U) exists and is enslaved to the bridge" \
	bash -c "ip -o link show $(tap_of $U) | grep -q 'master bgrt0'"
check "start: handles.json records pid and tap (write-ahead file)" \
	bash -c "grep -q '\"pid\":$pid' '$STATE/vms/$U/handles.json' && grep -q '\"tap\":\"$(tap_of $U)\"' '$STATE/vms/$U/handles.json'"
check "guest answers its HTTP page over the bridge with its name" wait_until 90 answers 172.16.0.11 web
out=$(vt stop web $U 30)
check "graceful stop: the guest powered off (no kill needed): $(tr '\n' ' ' <<<"$out")" grep -q '^stopped graceful' <<<"$out"
check "graceful stop: the VMM is gone" pid_gone "$pid"
check "graceful stop: disks kept" test -f "$STATE/vms/$U/root.qcow2"
out=$(vt teardown web $U --remove)
left=$(leaks "$STATE")
check "teardown --remove after stop: nothing left: '$left'" test -z "$left"

# ---- (b) kill -9 the VMM, rediscover, teardown ----------------------------------
U=$(uid_for 2)
out=$(vt start crashy $U "$K" "$R" 172.16.0.12)
pid=$(awk '/^pid/ {print $2}' <<<"$out")
check "start crashy: VMM running" test -n "$pid" -a "$(vmm_pids $U)" = "$pid"
kill -9 "$pid"
check "kill -9: VMM gone" wait_until 5 pid_gone "$pid"
check "kill -9: the tap and the scratch file are still there (dead VM's leftovers)" \
	bash -c "ip link show $(tap_of $U) >/dev/null && test -f '$STATE/vms/$U/handles.json'"
out=$(vt rediscover crashy $U)
check "rediscover after kill -9 → alive 0" test "$out" = "alive 0"
check "rediscover tore down the tap" bash -c "! ip link show $(tap_of $U) 2>/dev/null"
check "rediscover removed the scratch file, kept the disk" \
	test ! -e "$STATE/vms/$U/handles.json" -a -f "$STATE/vms/$U/root.qcow2"
out=$(vt teardown crashy $U --remove)
left=$(leaks "$STATE")
check "teardown --remove after kill -9: nothing left: '$left'" test -z "$left"

# ---- (c) SIGKILL at every write-ahead point of a start ---------------------------
# What each point must have left behind before rediscovery (proves the crash
# happened where it says): the root disk, then the recorded tap only in
# handles.json, then the tap, then a forked child that never became the VMM
# (before and after its pid was recorded: it waits at the spawn gate and
# exits when the controller dies), then a running VMM whose pid was recorded
# before it ran (write-ahead).
n=10
for point in disk-ready tap-recorded tap-created vmm-spawned pid-recorded launched; do
	n=$((n + 1))
	U=$(uid_for $n)
	TAP=$(tap_of $U)
	H=$STATE/vms/$U/handles.json
	rc=0
	BANGER_CRASHPOINT=$point "${VT[@]}" start cp-$point $U "$K" "$R" 172.16.0.$n \
		>/dev/null 2>>"$T/vm-tool.log" || rc=$?
	check "$point: vm-tool start died by SIGKILL (rc $rc)" test "$rc" = 137
	# One thread runs the launch's steps in order: the firewall elements
	# (after the facts), then the disks, the cgroup and the tap.
	case $point in
	disk-ready)
		check "$point: the root disk exists and is recorded, no tap yet" \
			bash -c "test -f '$STATE/vms/$U/root.qcow2' && grep -q '\"root_disk\"' '$H' && ! grep -q '\"tap\"' '$H' && ! ip link show $TAP 2>/dev/null"
		check "$point: ...and no VMM" test -z "$(vmm_pids $U)" ;;
	tap-recorded)
		check "$point: handles.json records the tap" grep -q "\"tap\":\"$TAP\"" "$H"
		check "$point: the tap was not created yet" bash -c "! ip link show $TAP 2>/dev/null" ;;
	tap-created)
		check "$point: handles.json records the tap" grep -q "\"tap\":\"$TAP\"" "$H"
		check "$point: the tap and the root disk exist, no VMM" \
			bash -c "ip link show $TAP >/dev/null && test -f '$STATE/vms/$U/root.qcow2' && test -z '$(vmm_pids $U)'" ;;
	vmm-spawned)
		check "$point: no pid recorded, no VMM ran" \
			bash -c "! grep -q '\"pid\"' '$H' && test -z '$(vmm_pids $U)'" ;;
	pid-recorded)
		rpid=$(json "$H" 'd["pid"]' 2>/dev/null)
		check "$point: pid ${rpid:-none} recorded, that child exited without becoming the VMM" \
			wait_until 5 bash -c "[ -n '$rpid' ] && { [ ! -e /proc/$rpid/stat ] || [ \$(awk '{print \$3}' /proc/$rpid/stat) = Z ]; }"
		check "$point: ...and no VMM" test -z "$(vmm_pids $U)" ;;
	launched)
		vpid=$(vmm_pids $U)
		check "$point: a VMM runs (pid $vpid), its pid recorded before it ran" \
			bash -c "test -n '$vpid' && grep -q '\"pid\":$vpid' '$H'" ;;
	esac
	out=$(vt rediscover cp-$point $U)
	if [ $point = launched ]; then
		check "$point: rediscover → alive 1 (adopted, not restarted)" test "$(head -n1 <<<"$out")" = "alive 1"
		check "$point: adopted the very VMM that was launched (pid $vpid)" \
			test "$(awk '/^pid/ {print $2}' <<<"$out")" = "$vpid" -a "$(vmm_pids $U)" = "$vpid"
		check "$point: rediscovery recorded the adopted pid in handles.json" grep -q "\"pid\":$vpid" "$H"
		check "$point: the adopted guest works (HTTP)" wait_until 90 answers 172.16.0.$n cp-$point
		out=$(vt start cp-$point $U "$K" "$R" 172.16.0.$n)
		check "$point: a second start of the running VM adopts it ($(tr '\n' ' ' <<<"$out"))" \
			test "$(head -n1 <<<"$out")" = "pid $vpid"
		check "$point: ...and the VMM still runs, alone (no duplicate)" test "$(vmm_pids $U)" = "$vpid"
		check "$point: ...with its tap still in place" has_tap "$TAP"
		check "$point: ...still answering" answers 172.16.0.$n cp-$point
	else
		check "$point: rediscover → alive 0" test "$out" = "alive 0"
		check "$point: rediscovery alone removed the tap and the socket" \
			bash -c "! ip link show $TAP 2>/dev/null && test ! -e '$STATE/run/${U:0:8}.sock'"
		check "$point: ...and no VMM runs" test -z "$(vmm_pids $U)"
	fi
	out=$(vt teardown cp-$point $U --remove)
	check "$point: teardown --remove succeeds ($out)" test "$out" = "torn-down removed"
	[ $point = launched ] && check "$point: the adopted VMM was stopped" wait_until 5 pid_gone "$vpid"
	left=$(leaks "$STATE")
	check "$point: no tap, loop device, process, socket or VM dir left: '$left'" test -z "$left"
done

# ---- (d) the image-root check --------------------------------------------------
IMG=$T/images
mkdir -p "$IMG/subdir"
cp "$K" "$IMG/bzImage"
cp "$R" "$IMG/rootfs.ext4"
ln -s /etc/passwd "$IMG/escape"
mknod "$IMG/sda" b 8 0
VI=("$BIN/tests/vm-tool" --state-dir "$STATE" --runtime-dir "$STATE/run" --image-dir "$IMG"
	--bridge bgrt0 --cidr 172.16.0.1/24)
U=$(uid_for 99)
for bad in /dev/sda "$IMG/../../../../../../../../etc/shadow" "$IMG/escape" "$IMG/subdir" "$IMG/sda"; do
	for what in kernel rootfs; do
		if [ $what = kernel ]; then k=$bad r=$IMG/rootfs.ext4; else k=$IMG/bzImage r=$bad; fi
		rc=0
		out=$("${VI[@]}" start img-check $U "$k" "$r" 172.16.0.99 2>"$T/img.err") || rc=$?
		check "image check refuses $what $bad (rc $rc)" test "$rc" = 1
		check "...with an error naming the allowed root ($out)" grep -qF "image dirs [$IMG]" <<<"$out"
		check "...and the log names the path and the roots" grep -qF "$IMG" "$T/img.err"
		left=$(leaks "$STATE")
		check "...and nothing was created: '$left'" test -z "$left" -a ! -e "$STATE/vms/$U"
	done
done
check "the relative escape is reported as resolving to /etc/shadow" \
	bash -c "'${VI[0]}' ${VI[*]:1} start x $U '$IMG/bzImage' '$IMG/../../../../../../../../etc/shadow' 172.16.0.99 2>&1 >/dev/null | grep -q 'resolves to /etc/shadow, outside the allowed image roots'"
check "a block device inside the root is refused as a block device" \
	bash -c "'${VI[0]}' ${VI[*]:1} start x $U '$IMG/sda' '$IMG/rootfs.ext4' 172.16.0.99 2>&1 >/dev/null | grep -q 'is a block device'"
check "a good image in the same root passes the check (control)" \
	bash -c "'${VI[0]}' ${VI[*]:1} start ctl $U '$IMG/bzImage' '$IMG/rootfs.ext4' 172.16.0.99 >/dev/null 2>&1"

# ---- the orphan sweep, directly: only what no known uid owns goes -------------------
ip tuntap add dev bgr-cafe0001 mode tap
ip link set dev bgr-cafe0001 alias banger:7e57700170000001 # vm-tool's instance tag
ip tuntap add dev bgr-cafe0003 mode tap # untagged: not ours, never swept
mkdir -p "$STATE/vms/cafe0002000000000000000000000000"
CPID=$(vmm_pids $U)
out=$(vt sweep $U)
check "sweep with the control VM known removes the orphan tap and dir ($out)" test "$out" = "removed 2"
check "...the orphan tap is gone" bash -c "! ip link show bgr-cafe0001 2>/dev/null"
check "...the stray VM dir is gone" test ! -e "$STATE/vms/cafe0002000000000000000000000000"
check "...the untagged tap bgr-cafe0003 is left alone" ip link show bgr-cafe0003
check "...the known VM's VMM (pid $CPID), tap, socket and dir are kept" \
	bash -c "test -n '$CPID' && test '$(vmm_pids $U)' = '$CPID' && ip link show $(tap_of $U) >/dev/null && test -S '$STATE/run/${U:0:8}.sock' && test -d '$STATE/vms/$U'"
out=$(vt sweep)
check "sweep with nothing known removes the control VM's socket+VMM, serial socket, nft elements, tap and dir ($out)" test "$out" = "removed 5"
ip link del bgr-cafe0003
check "...its VMM is stopped" wait_until 5 pid_gone "$CPID"
left=$(leaks "$STATE")
check "...nothing left: '$left'" test -z "$left"
done_testing
