#!/bin/bash
# t_qemu_driver.sh — the QEMU driver (vmm_qemu_driver, through
# build/tests/qemu-tool) against real guests, inside a private network
# namespace: two guests on a bridge (qcow2 overlay root with network; raw
# root + work disk), readiness on the console and over HTTP, find/describe,
# graceful stop via QMP Ctrl-Alt-Del, identity-checked kill, stale-socket
# reuse, and launch failures (busy tap, socket in use, bad kernel) that must
# leave no process and no socket behind.
#
# Needs root, qemu-system-x86_64, qemu-img, curl, mkfs.ext4 and the guest
# image ($BANGER_GUEST_DIR, default $BANGER_SRC_DIR/build/guest).
set -u
. "$(dirname "$0")/lib.sh"
SRC=${BANGER_SRC_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${BANGER_BIN_DIR:-$SRC/build}
GUEST=${BANGER_GUEST_DIR:-$SRC/build/guest}
TOOL=$BIN/tests/qemu-tool

skip() { echo "$1"; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root (netns, taps)"
[ -x "$TOOL" ] || skip "missing $TOOL (make all-tests)"
[ -f "$GUEST/bzImage" ] && [ -f "$GUEST/rootfs.ext4" ] ||
	skip "no guest image in $GUEST (make guest-image)"
for c in qemu-system-x86_64 qemu-img curl ip unshare mkfs.ext4 python3 sha256sum; do
	command -v "$c" >/dev/null || skip "missing $c"
done

# Never touch the host's network: everything below runs in a private netns.
if [ -z "${T_QEMU_IN_NETNS:-}" ]; then
	T_QEMU_IN_NETNS=1 exec unshare -n -- bash "$0" "$@"
fi

GUEST=$(cd "$GUEST" && pwd)
W=$(mktemp -d /tmp/banger-tqemu.XXXXXX)
STARTED=() # "pid start_time" of every VMM we launched

cleanup() {
	for p in "${STARTED[@]}"; do
		# shellcheck disable=SC2086
		"$TOOL" kill $p 2>/dev/null
	done
	rm -rf "$W"
}
trap cleanup EXIT

check() { # check DESC CMD...: returns CMD's success
	local d=$1; shift
	if "$@"; then ok "$d"; else not_ok "$d"; return 1; fi
}
bail() { not_ok "$1"; echo "# bailing out"; exit 1; }

# alive PID START: the process with this identity exists and is not a zombie.
alive() {
	local st
	st=$(awk '{ print $3, $22 }' "/proc/$1/stat" 2>/dev/null) || return 1
	[ "${st#* }" = "$2" ] && [ "${st%% *}" != Z ]
}
# wait_until SECONDS CMD...: poll CMD every 0.1 s.
wait_until() {
	local end=$((SECONDS + $1)); shift
	while ! "$@"; do
		[ $SECONDS -ge $end ] && return 1
		sleep 0.1
	done
}
gone() { ! alive "$1" "$2"; }
ready() { grep -q "banger-guest: ready host=$1 " "$W/$1/console.log" 2>/dev/null; }
# show NAME: the tail of a VM's console and QEMU log, as TAP comments.
show() {
	tail -n 15 "$W/$1/console.log" "$W/$1/vmm.log" 2>/dev/null | sed 's/^/# /'
}
no_qemu_named() { ! pgrep -f "guest=$1( |$)" >/dev/null; }

# launch NAME TAP IP [extra args...]: sets PID/START from the tool's output.
launch() {
	local name=$1 tap=$2 ip=$3 out; shift 3
	out=$("$TOOL" launch --name "$name" --vm-dir "$W/$name" --api-sock "$W/$name/api.sock" \
		--console "$W/$name/console.log" --log "$W/$name/vmm.log" \
		--kernel "$GUEST/bzImage" --tap "$tap" --ip "$ip" --gw 172.16.0.1 --prefix 24 \
		--mem 256 --vcpus 1 "$@" 2>"$W/$name/launch.err") || return 1
	PID=$(sed -n 's/^pid=\([0-9]*\) .*/\1/p' <<<"$out")
	START=$(sed -n 's/.* start_time=\([0-9]*\)$/\1/p' <<<"$out")
	STARTED+=("$PID $START")
	[ -n "$PID" ] && [ -n "$START" ]
}

# --- network: bridge + two taps, all inside this namespace ---------------
ip link set lo up
ip link add br0 type bridge && ip addr add 172.16.0.1/24 dev br0 && ip link set br0 up ||
	bail "bridge in the private netns"
for t in tap0 tap1; do
	ip tuntap add dev $t mode tap && ip link set $t master br0 && ip link set $t up ||
		bail "tap $t"
done

check "driver is available" "$TOOL" available

# --- disks ---------------------------------------------------------------
mkdir -p "$W/vm1" "$W/vm2" "$W/vm3" "$W/bad"
base_sum=$(sha256sum <"$GUEST/rootfs.ext4")
qemu-img create -q -f qcow2 -b "$GUEST/rootfs.ext4" -F raw "$W/vm1/root.qcow2" ||
	bail "qcow2 overlay"
cp --sparse=always "$GUEST/rootfs.ext4" "$W/vm2/root.img" || bail "raw root copy"
# A valid ext4 without /init: if it became /dev/vda the guest could not boot.
truncate -s 16M "$W/vm2/work.img" && mkfs.ext4 -q -F -L work "$W/vm2/work.img" ||
	bail "work disk"

# --- two guests ------------------------------------------------------------
launch vm1 tap0 172.16.0.2 --mac 52:54:00:00:00:11 --root "$W/vm1/root.qcow2" \
	--root-format qcow2 --root-base "$GUEST/rootfs.ext4" || bail "launch vm1: $(cat "$W/vm1/launch.err")"
PID1=$PID START1=$START
ok "launch vm1 (qcow2 overlay, tap0) -> pid $PID1"
check "vm1 process alive with the reported start time" alive "$PID1" "$START1"
check "vm1 QMP socket exists after launch" test -S "$W/vm1/api.sock"

launch vm2 tap1 172.16.0.3 --mac 52:54:00:00:00:12 --root "$W/vm2/root.img" \
	--root-format raw --work "$W/vm2/work.img" || bail "launch vm2: $(cat "$W/vm2/launch.err")"
PID2=$PID START2=$START
ok "launch vm2 (raw root + work disk, tap1) -> pid $PID2"

# --- launch failures while they run ----------------------------------------
qemu-img create -q -f qcow2 -b "$GUEST/rootfs.ext4" -F raw "$W/vm3/root.qcow2"
if launch vm3 tap0 172.16.0.4 --mac 52:54:00:00:00:13 --root "$W/vm3/root.qcow2" \
	--root-format qcow2 --root-base "$GUEST/rootfs.ext4"; then
	not_ok "launch on a tap another QEMU holds fails"
else
	ok "launch on a tap another QEMU holds fails"
fi
check "busy-tap failure quotes QEMU's log" grep -q "busy" "$W/vm3/launch.err"
check "busy-tap failure leaves no socket" test ! -e "$W/vm3/api.sock"
check "busy-tap failure leaves no process" no_qemu_named vm3

if "$TOOL" launch --name vm1b --api-sock "$W/vm1/api.sock" --console "$W/vm3/c.log" \
	--log "$W/vm3/l.log" --kernel "$GUEST/bzImage" --root "$W/vm3/root.qcow2" \
	--root-format qcow2 --root-base "$GUEST/rootfs.ext4" 2>"$W/vm3/dup.err"; then
	not_ok "launch on a socket a live QEMU serves is refused"
else
	ok "launch on a socket a live QEMU serves is refused"
fi
check "refusal names the owner pid" grep -q "pid $PID1" "$W/vm3/dup.err"
check "vm1 untouched by the refused launch" alive "$PID1" "$START1"

# --- readiness -------------------------------------------------------------
check "vm1 console shows the ready line" wait_until 90 ready vm1 || show vm1
check "vm2 console shows the ready line (root is /dev/vda despite the work disk)" \
	wait_until 90 ready vm2 || show vm2
check "vm2 mounted its work disk as /dev/vdb" grep -q "data mounted dev=/dev/vdb .*boot=1" \
	"$W/vm2/console.log"
body1=$(curl -s --max-time 5 http://172.16.0.2/)
check "HTTP from vm1: '$body1'" test "$body1" = "ok vm1"
body2=$(curl -s --max-time 5 http://172.16.0.3/)
check "HTTP from vm2: '$body2'" test "$body2" = "ok vm2"

# --- find / describe -------------------------------------------------------
f1=$("$TOOL" find "$W/vm1/api.sock")
check "find(vm1) returns the launched identity ($f1)" test "$f1" = "pid=$PID1 start_time=$START1"
f2=$("$TOOL" find "$W/vm2/api.sock")
check "find(vm2) returns the launched identity ($f2)" test "$f2" = "pid=$PID2 start_time=$START2"
d1=$("$TOOL" describe "$W/vm1/api.sock")
check "describe(vm1) = $d1" python3 -c '
import json, sys
d = json.loads(sys.argv[1])
assert d["vmm"] == "qemu" and d["status"] == "running" and d["running"] is True and d["vcpus"] == 1
' "$d1"

# --- graceful stop (Ctrl-Alt-Del over QMP) ---------------------------------
t0=$EPOCHREALTIME
check "request_stop(vm1) succeeds" "$TOOL" stop "$W/vm1/api.sock"
check "vm1 exits within 10 s of the request" wait_until 10 gone "$PID1" "$START1"
check "vm1 stopped through its init (Ctrl-Alt-Del), not by a crash" \
	grep -q "banger-guest: stopping (SIGINT/ctrl-alt-del)" "$W/vm1/console.log"
echo "# vm1 gone after $(python3 -c "print(round($EPOCHREALTIME - $t0, 2))") s"
"$TOOL" find "$W/vm1/api.sock" >/dev/null 2>&1
check "find(vm1) after exit -> not found (exit 3)" test $? = 3
check "request_stop on a stopped VM fails" bash -c "! '$TOOL' stop '$W/vm1/api.sock' 2>/dev/null"

# --- kill ----------------------------------------------------------------
"$TOOL" kill "$PID2" $((START2 + 1)) 2>/dev/null
check "kill with a wrong start time -> ESRCH (exit 3)" test $? = 3
check "... and vm2 still runs" alive "$PID2" "$START2"
check "kill(vm2) succeeds" "$TOOL" kill "$PID2" "$START2"
check "vm2 gone when kill returns" gone "$PID2" "$START2"
"$TOOL" find "$W/vm2/api.sock" >/dev/null 2>&1
check "find(vm2) after kill -> not found (exit 3)" test $? = 3
"$TOOL" kill "$PID2" "$START2" 2>/dev/null
check "second kill -> ESRCH (exit 3)" test $? = 3

# The killed QEMU left its socket file; a new launch on it must take it over.
stale=no; [ -S "$W/vm2/api.sock" ] && stale=yes
echo "# stale socket after SIGKILL: $stale"
launch vm2 tap1 172.16.0.3 --mac 52:54:00:00:00:12 --root "$W/vm2/root.img" \
	--root-format raw --work "$W/vm2/work.img"
check "relaunch on the killed VM's socket path works" alive "${PID:-0}" "${START:-0}"
f2=$("$TOOL" find "$W/vm2/api.sock")
check "find(vm2) sees the new process" test "$f2" = "pid=$PID start_time=$START"
check "relaunched vm2 boots" wait_until 90 ready vm2 || show vm2
check "relaunched vm2 console was truncated and its work disk kept data (boot=2)" \
	bash -c "grep -c 'banger-guest: ready' '$W/vm2/console.log' | grep -qx 1 &&
		grep -q 'data mounted dev=/dev/vdb .*boot=2' '$W/vm2/console.log'"
check "kill(relaunched vm2)" "$TOOL" kill "$PID" "$START"

# --- bad kernel ------------------------------------------------------------
if "$TOOL" launch --name bad --api-sock "$W/bad/api.sock" --console "$W/bad/console.log" \
	--log "$W/bad/vmm.log" --kernel "$W/bad/no-such-bzImage" --root "$W/vm2/root.img" \
	2>"$W/bad/launch.err"; then
	not_ok "launch with a missing kernel fails"
else
	ok "launch with a missing kernel fails"
fi
check "bad-kernel failure quotes QEMU's error" grep -q "could not open kernel" "$W/bad/launch.err"
check "bad-kernel failure leaves no socket" test ! -e "$W/bad/api.sock"
check "bad-kernel failure leaves no process" no_qemu_named bad

check "base image never written" test "$(sha256sum <"$GUEST/rootfs.ext4")" = "$base_sum"

done_testing
