#!/bin/bash
# t_guest_image.sh — boots the test guest that `make guest-image` builds
# (build/guest/{bzImage,rootfs.ext4}) under QEMU -M microvm with TCG, inside a
# private network namespace, and checks the guest contract of docs/images.md:
#   boot 1 (acpi=off, Firecracker-like, work disk attached): ready line, HTTP
#     "ok <name>", /data mounted and written, Ctrl-Alt-Del over QMP stops it
#     within 10 s, and both disks are left clean;
#   boot 2 (ACPI on, no work disk): ready line, HTTP, the ACPI power button
#     (QMP system_powerdown) stops it within 10 s.
# Skips (exit 77) when the images or tools are missing.
# Functions below run through traps and `check`: shellcheck cannot see that.
# shellcheck disable=SC2317
# sanitizers: not run (boots the guest image under QEMU directly: none of our C code)
set -eu
. "$(dirname "$0")/lib.sh"

SRC=${BANGER_SRC_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
IMG=${BANGER_GUEST_DIR:-$SRC/build/guest}
KERNEL=$IMG/bzImage
ROOTFS=$IMG/rootfs.ext4

skip() {
	echo "$1"
	exit 77
}

if [ -z "${BANGER_T_NETNS:-}" ]; then
	if [ ! -f "$KERNEL" ] || [ ! -f "$ROOTFS" ]; then
		skip "no guest image in $IMG (run make guest-image)"
	fi
	# Absolute: the qcow2 overlays in the work directory refer to it.
	IMG=$(cd "$IMG" && pwd)
	export BANGER_GUEST_DIR=$IMG
	[ "$(id -u)" = 0 ] || skip "needs root (network namespace, tap)"
	for tool in unshare ip qemu-system-x86_64 qemu-img curl python3 mkfs.ext4 debugfs dumpe2fs; do
		command -v "$tool" >/dev/null || skip "missing tool: $tool"
	done
	# Everything below runs in a fresh network namespace that disappears with
	# this process tree: the host's own network is never touched.
	BANGER_T_NETNS=1 exec unshare -n bash "$0" "$@"
fi

# ------------------------------------------------------------ in the netns ---

WORK=$(mktemp -d "${TMPDIR:-/tmp}/banger-t-guest.XXXXXX")
QEMU_PID=
cleanup() {
	if [ -n "$QEMU_PID" ]; then
		kill "$QEMU_PID" 2>/dev/null || true
		wait "$QEMU_PID" 2>/dev/null || true
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT

# The serial console ends lines with CR LF; compare without the CR.
console() { tr -d '\r' 2>/dev/null <"$WORK/console.log"; }
console_has() { console | grep -q "$@"; }
console_tail() { console | tail -n 25 | sed 's/^/# console: /'; }
finish() { done_testing; exit; }
fatal() { # a failed step after which nothing else can be checked
	not_ok "$*"
	console_tail
	finish
}

NAME=banger-t$$
GUEST_IP=172.16.0.10
ip link set lo up
ip link add br0 type bridge
ip addr add 172.16.0.1/24 dev br0
ip link set br0 up
ip tuntap add dev tap0 mode tap
ip link set tap0 master br0 up

# The host TSC rate: under TCG, early TSC calibration on microvm sometimes hangs
# without it (guest-recipe.md).
KHZ=$(awk -F: '/^cpu MHz/ { printf "%d", $2 * 1000; exit }' /proc/cpuinfo)
TSC=${KHZ:+tsc_early_khz=$KHZ}

alive() { # a zombie still answers kill -0, so look at the state
	local st
	st=$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null) || return 1
	[ "$st" != Z ]
}

# boot MACHINE EXTRA_APPEND [qemu args...]: start QEMU in the background.
boot() {
	local machine=$1 extra=$2
	shift 2
	rm -f "$WORK/console.log" "$WORK/qmp.sock" "$WORK/root.qcow2"
	# Copy-on-write overlay: the shared base image is never written.
	qemu-img create -q -f qcow2 -b "$ROOTFS" -F raw "$WORK/root.qcow2" ||
		fatal "qemu-img create overlay on $ROOTFS"
	qemu-system-x86_64 -M "$machine" -accel tcg -m 256 -smp 1 \
		-nodefaults -no-user-config -display none -no-reboot \
		-device i8042 -serial "file:$WORK/console.log" \
		-qmp "unix:$WORK/qmp.sock,server=on,wait=off" \
		-kernel "$KERNEL" \
		-append "console=ttyS0 panic=-1 reboot=k $TSC i8042.noaux i8042.nomux i8042.dumbkbd $extra root=/dev/vda rw init=/init ip=$GUEST_IP::172.16.0.1:255.255.255.0:$NAME:eth0:off" \
		-drive "file=$WORK/root.qcow2,if=none,id=root,format=qcow2" \
		-device virtio-blk-device,drive=root \
		-netdev tap,id=net0,ifname=tap0,script=no,downscript=no \
		-device virtio-net-device,netdev=net0,mac=52:54:00:12:34:56 \
		"$@" >"$WORK/qemu.log" 2>&1 &
	QEMU_PID=$!
}

# wait_ready: wait up to 60 s for the ready line; prints the seconds taken.
wait_ready() {
	local start=$SECONDS
	while [ $((SECONDS - start)) -lt 60 ]; do
		if console_has -x "banger-guest: ready host=$NAME ip=$GUEST_IP"; then
			echo $((SECONDS - start))
			return 0
		fi
		console_has '^banger-guest: failed' && return 1
		alive "$QEMU_PID" || return 1
		sleep 0.2
	done
	return 1
}

# qmp COMMAND...: run QMP commands (JSON objects) over the unix socket.
qmp() {
	python3 - "$WORK/qmp.sock" "$@" <<'EOF'
import json, socket, sys
sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
sock.settimeout(5)
sock.connect(sys.argv[1])
f = sock.makefile("rw")
json.loads(f.readline())  # greeting
for cmd in [{"execute": "qmp_capabilities"}] + [json.loads(a) for a in sys.argv[2:]]:
    f.write(json.dumps(cmd) + "\n")
    f.flush()
    while True:  # skip asynchronous events until this command's reply
        reply = json.loads(f.readline())
        if "return" in reply:
            break
        if "error" in reply:
            sys.exit("QMP error: %s" % reply["error"])
EOF
}

# wait_exit SECONDS: QEMU exits within the limit with status 0.
wait_exit() {
	local deadline=$((SECONDS + $1)) rc=0
	while alive "$QEMU_PID" && [ "$SECONDS" -lt "$deadline" ]; do
		sleep 0.1
	done
	alive "$QEMU_PID" && return 1
	wait "$QEMU_PID" || rc=$?
	QEMU_PID=
	[ "$rc" = 0 ]
}

http_says_ok() {
	local body
	body=$(curl -sS --max-time 5 "http://$GUEST_IP/") || return 1
	[ "$body" = "ok $NAME" ] || {
		echo "# body: $body"
		return 1
	}
}

# A journaled ext4 keeps "state: clean" while mounted; an unclean stop shows as
# the needs_recovery feature (journal not yet replayed).
fs_clean() {
	local hdr
	hdr=$(dumpe2fs -h "$1" 2>/dev/null) || return 1
	echo "$hdr" | grep -Eq '^Filesystem state: +clean$' &&
		! echo "$hdr" | grep -q '^Filesystem features:.*needs_recovery'
}
work_disk_ok() {
	fs_clean "$WORK/work.ext4" &&
		[ "$(debugfs -R "cat /banger-boot-count" "$WORK/work.ext4" 2>/dev/null)" = 42 ]
}
no_data_line() { ! console_has 'banger-guest: data'; }

# --- Boot 1: acpi=off (as under Firecracker), with a work disk ---------------

# A work disk that already holds data: the guest must count on from 41.
mkdir "$WORK/seed"
echo 41 >"$WORK/seed/banger-boot-count"
truncate -s 32M "$WORK/work.ext4"
mkfs.ext4 -q -F -d "$WORK/seed" "$WORK/work.ext4"

boot microvm,acpi=off "i8042.nopnp" \
	-drive "file=$WORK/work.ext4,if=none,id=work,format=raw" \
	-device virtio-blk-device,drive=work
t=$(wait_ready) || fatal "acpi=off: ready line 'banger-guest: ready host=$NAME ip=$GUEST_IP' within 60 s"
ok "acpi=off: ready line after ${t}s"
check "acpi=off: GET http://$GUEST_IP/ says 'ok $NAME'" http_says_ok
check "acpi=off: work disk mounted on /data (console: boot=42)" \
	console_has -x "banger-guest: data mounted dev=/dev/vdb dir=/data boot=42"
qmp '{"execute": "send-key", "arguments": {"keys": [{"type": "qcode", "data": "ctrl"},
	{"type": "qcode", "data": "alt"}, {"type": "qcode", "data": "delete"}]}}' ||
	fatal "acpi=off: QMP send-key ctrl-alt-delete"
check "acpi=off: Ctrl-Alt-Del makes QEMU exit (status 0) within 10 s" wait_exit 10
check "acpi=off: the guest's /init handled it (console: stopping, resetting)" \
	eval "console_has '^banger-guest: stopping (SIGINT/ctrl-alt-del)' &&
		console_has '^banger-guest: resetting'"
alive "${QEMU_PID:-0}" && fatal "QEMU still running; cannot inspect its disks"
check "acpi=off: work disk unmounted cleanly, holds boot count 42" \
	work_disk_ok
qemu-img convert -O raw "$WORK/root.qcow2" "$WORK/root.raw"
check "acpi=off: root filesystem left clean (remounted read-only)" fs_clean "$WORK/root.raw"
rm -f "$WORK/root.raw"

# --- Boot 2: ACPI on (QEMU microvm default), no work disk ---------------------

# No i8042.nopnp here: with ACPI on it breaks the keyboard probe (recipe).
boot microvm ""
t=$(wait_ready) || fatal "acpi=on: ready line within 60 s"
ok "acpi=on: ready line after ${t}s"
check "acpi=on: GET http://$GUEST_IP/ says 'ok $NAME'" http_says_ok
check "acpi=on: no work disk, nothing mounted on /data" \
	no_data_line
qmp '{"execute": "system_powerdown"}' || fatal "acpi=on: QMP system_powerdown"
check "acpi=on: power button makes QEMU exit (status 0) within 10 s" wait_exit 10
check "acpi=on: the guest's /init handled it (console: stopping, powering off)" \
	eval "console_has '^banger-guest: stopping (SIGUSR2)' &&
		console_has '^banger-guest: powering off'"
[ "$(failed_count)" = 0 ] || console_tail
finish
