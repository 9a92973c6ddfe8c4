#!/bin/bash
# The orphan sweep, end to end through bangerd, in a private netns: objects
# no VM owns — a bgr-* tap carrying our instance tag, nft elements of an
# unknown tap in our instance's table (and an older bangerd's per-VM chain
# and map), a loop device backed by a file under
# <state>/vms/<unknown-uid>/, a real QEMU holding a socket in the runtime
# dir, a stale socket, a stray VM dir — are removed at start-up; objects of a
# VM the database knows (a real guest, running) and objects that are not
# banger's (an untagged bgr-* tap, another instance's tap, elements and
# chain) are
# left alone.
. "$(dirname "$0")/lib.sh"
private_netns "$0" "$@"
need_guest
command -v losetup >/dev/null || skip_all "losetup not installed"
command -v nft >/dev/null || skip_all "nft (package nftables) not installed"

T=$(test_tmpdir orph)
SPEC=$T/specs
STATE=$T/state
STATUS=$T/status
cleanup() {
	stop_bangerd
	for p in $(pgrep -f "qemu-system-x86_64.*$T" 2>/dev/null); do kill -9 "$p"; done
	for d in $(losetup -a 2>/dev/null | grep -F "$T" | cut -d: -f1); do losetup -d "$d"; done
	sleep 0.2
	cleanup_cgroups "${STATE:-}"
	rm -rf "$T"
}
trap cleanup EXIT
mkdir -p "$SPEC" "$STATE/run" "$STATE/vms"
DARGS=(--image-dir "$GUEST_DIR" --driver qemu --resync 0 --stop-timeout 10)

has_link() { ip link show "$1" >/dev/null 2>&1; }
loop_of() { losetup -j "$1" 2>/dev/null | cut -d: -f1; }
# A VMM-like QEMU (no guest: -S, paused) holding a QMP socket, detached as
# banger's VMMs are. Prints its pid.
orphan_qemu() {
	local sock=$1
	setsid -f qemu-system-x86_64 -M microvm -accel tcg -nodefaults -display none -S \
		-qmp "unix:$sock,server=on,wait=off" </dev/null >>"$T/orphan-qemu.log" 2>&1
	wait_until 10 test -S "$sock" || return 1
	pgrep -f "qemu-system-x86_64.*$sock"
}
stale_socket() { python3 -c 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$1"; }
run_once() { "$BIN/bangerd" --spec-dir "$SPEC" --status-dir "$STATUS" --state-dir "$STATE" --runtime-dir "$STATE/run" \
	--log-level debug --once "${DARGS[@]}" >>"$T/bangerd.log" 2>&1; }

instance_of() { python3 -c 'import sqlite3,sys; print(sqlite3.connect("file:"+sys.argv[1]+"?mode=ro", uri=True).execute("select value from meta where key=\"instance\"").fetchone()[0])' "$1/banger.db"; }
# A VM's rules as bangerd makes them (its elements in the instance's sets),
# in table $1 for tap $2.
leak_elems() {
	nft -f - <<NFT
add table bridge $1
add set bridge $1 taps { type ifname; }
add set bridge $1 allowed { type ifname . ether_addr . ipv4_addr; }
add element bridge $1 allowed { "$2" . 06:00:ac:10:00:63 . 172.16.0.99 }
add element bridge $1 taps { "$2" }
NFT
}
has_elems() { nft list set bridge "$1" taps 2>/dev/null | grep -q "\"$2\"" && nft list set bridge "$1" allowed 2>/dev/null | grep -q "\"$2\""; }
# What an older bangerd left: a chain per VM and the map that jumps to it.
leak_legacy() {
	nft -f - <<NFT
add table bridge $1
add map bridge $1 ports { type ifname : verdict; }
add chain bridge $1 $2
add rule bridge $1 $2 accept
add element bridge $1 ports { "$3" : jump $2 }
NFT
}

# Objects no VM owns (round N uses distinct names so each round proves itself).
make_orphans() {
	local r=$1
	TAP=bgr-deadbee$r
	ip tuntap add dev "$TAP" mode tap
	ip link set dev "$TAP" alias "banger:$INST"
	ETAP=bgr-deadbe0$r
	leak_elems "banger_$INST" "$ETAP"
	CHAIN=vm_deadbe1$r
	leak_legacy "banger_$INST" "$CHAIN" "bgr-deadbe1$r"
	LUID=10000000${r}000000000000000000000000
	mkdir -p "$STATE/vms/$LUID"
	truncate -s 8M "$STATE/vms/$LUID/root.img"
	LOOP=$(losetup -f --show "$STATE/vms/$LUID/root.img")
	QSOCK=$STATE/run/feedf00$r.sock
	QPID=$(orphan_qemu "$QSOCK")
	SSOCK=$STATE/run/c0ffee0$r.sock
	stale_socket "$SSOCK"
	DUID=20000000${r}000000000000000000000000
	mkdir -p "$STATE/vms/$DUID"
	echo '{"tap":"bgr-20000000"}' >"$STATE/vms/$DUID/handles.json"
	: >"$STATE/vms/$DUID/root.qcow2"
}
orphans_present() {
	has_link "$TAP" && has_elems "banger_$INST" "$ETAP" && nft list chain bridge "banger_$INST" "$CHAIN" >/dev/null 2>&1 && [ "$(loop_of "$STATE/vms/$LUID/root.img")" = "$LOOP" ] &&
		[ -n "$QPID" ] && ! pid_gone "$QPID" && [ -S "$SSOCK" ] && [ -d "$STATE/vms/$DUID" ]
}
check_orphans_gone() {
	local r=$1
	check "round $r: orphan tap $TAP deleted" bash -c "! ip link show $TAP 2>/dev/null"
	check "round $r: orphan nft elements of $ETAP deleted" bash -c "! nft list table bridge banger_$INST | grep -q $ETAP"
	check "round $r: an older bangerd's chain $CHAIN and map deleted" bash -c "! nft list chain bridge banger_$INST $CHAIN 2>/dev/null && ! nft list map bridge banger_$INST ports 2>/dev/null"
	check "round $r: orphan loop device $LOOP detached" bash -c "! losetup -a | grep -qF '$STATE/vms/$LUID'"
	check "round $r: orphan QEMU (pid $QPID) stopped" wait_until 5 pid_gone "$QPID"
	check "round $r: its socket removed" test ! -e "$QSOCK"
	check "round $r: stale socket removed" test ! -e "$SSOCK"
	check "round $r: stray VM dirs removed" test ! -e "$STATE/vms/$LUID" -a ! -e "$STATE/vms/$DUID"
}

# Objects that are not banger's: the sweep must not touch them.
ip tuntap add dev other0 mode tap
ip tuntap add dev bgr-0ther001 mode tap # bgr- name, no alias: an operator's
ip tuntap add dev bgr-0ther002 mode tap # another instance's
ip link set dev bgr-0ther002 alias banger:ffffffffffffffff
leak_elems banger_ffffffffffffffff bgr-0ther002
leak_legacy banger_ffffffffffffffff vm_0ther003 bgr-0ther003
not_ours_intact() {
	has_link bgr-0ther001 && has_link bgr-0ther002 &&
		has_elems banger_ffffffffffffffff bgr-0ther002 &&
		nft list chain bridge banger_ffffffffffffffff vm_0ther003 >/dev/null 2>&1
}
truncate -s 8M "$T/outside.img"
OUTLOOP=$(losetup -f --show "$T/outside.img")

# ---- round 1: empty spec dir, nothing known ---------------------------------------
check "bangerd --once makes the state and its instance tag" run_once
INST=$(instance_of "$STATE")
make_orphans 1
check "round 1: orphans in place" orphans_present
check "round 1: bangerd --once on an empty spec dir exits 0" run_once
check_orphans_gone 1
check "round 1: the sweep counted 7 objects (2 sockets, nft elements, loop, tap, 2 dirs)" grep -q "removed 7 orphaned object(s)" "$T/bangerd.log"
check "round 1: untagged and other-instance taps and rules untouched" not_ours_intact

# ---- round 2: a real VM the database knows, plus orphans ---------------------------
guest_yaml keep | put "$SPEC/keep.yaml"
start_bangerd "$SPEC" "$STATE" "${DARGS[@]}"
check "keep: Running and Ready" wait_until 120 is_ready keep
KPID=$(vm_pid keep)
KUID=$(ls "$STATE/vms")
KTAP=bgr-${KUID:0:8}
KSOCK=$STATE/run/${KUID:0:8}.sock
check "keep: one VM dir, its tap and socket exist" bash -c "[ \$(ls '$STATE/vms' | wc -l) = 1 ] && ip link show $KTAP >/dev/null && test -S '$KSOCK'"
check "bangerd exits cleanly on SIGTERM" stop_bangerd
check "keep: its VMM keeps running without the controller" bash -c "! { . '$SRC/tests/integration/lib.sh'; pid_gone $KPID; }"

make_orphans 2
# A loop device on a file inside the KNOWN VM's dir belongs to that VM.
truncate -s 8M "$STATE/vms/$KUID/extra.img"
KLOOP=$(losetup -f --show "$STATE/vms/$KUID/extra.img")
check "round 2: orphans in place" orphans_present
check "round 2: bangerd --once exits 0" run_once
check_orphans_gone 2
check "round 2: the sweep counted 7 objects again (nothing of keep's)" test "$(grep -c 'removed 7 orphaned object(s)' "$T/bangerd.log")" = 2
check "round 2: untagged and other-instance taps and rules untouched" not_ours_intact
check "round 2: keep adopted (log)" grep -q "keep: adopted running VMM (pid $KPID)" "$T/bangerd.log"
check "keep: same VMM still running" bash -c "! { . '$SRC/tests/integration/lib.sh'; pid_gone $KPID; }"
check "keep: its tap is still there" has_link "$KTAP"
check "keep: its socket is still there" test -S "$KSOCK"
check "keep: its VM dir and disk are still there" test -f "$STATE/vms/$KUID/root.qcow2"
check "keep: a loop device backed by a file in its dir is kept" test "$(loop_of "$STATE/vms/$KUID/extra.img")" = "$KLOOP"
check "keep: status shows the same pid" test "$(vm_pid keep)" = "$KPID"
check "keep: still Ready" is_ready keep
body=$(curl -s -m 5 "http://$(vm_ip keep)/")
check "keep: still answers HTTP ($body)" test "$body" = "ok keep"
check "not ours: tap other0 untouched" has_link other0
check "not ours: loop device on a file outside the state dir untouched" test "$(loop_of "$T/outside.img")" = "$OUTLOOP"
losetup -d "$KLOOP"
losetup -d "$OUTLOOP"
ip link del other0
ip link del bgr-0ther001
ip link del bgr-0ther002
nft delete table bridge banger_ffffffffffffffff

# ---- the known VM goes away properly: nothing left ----------------------------------
start_bangerd "$SPEC" "$STATE" "${DARGS[@]}"
rm "$SPEC/keep.yaml"
check "delete → status removed" wait_until 30 test ! -e "$STATUS/keep.status.json"
check "delete → process gone" wait_until 5 pid_gone "$KPID"
left=$(leaks "$STATE")
check "nothing leaked: '$left'" test -z "$left"
check "bangerd exits cleanly" stop_bangerd
done_testing
