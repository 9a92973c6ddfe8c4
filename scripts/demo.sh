#!/bin/bash
# demo.sh — bangerd on specs/examples, booting real guests with whatever VMM
# works here (QEMU under TCG on our machines, Firecracker where it runs).
#
# Always runs in its own network namespace and its own mount namespace,
# whatever the host has (a production bangerd's banger0 bridge, taps and
# firewall are never seen, let alone swept), with build/guest bind-mounted
# on /var/lib/banger/images — the path the examples name — so the examples
# run unmodified. State lives under build/demo (its own instance tag).
# Ctrl-C (or the end of a non-interactive run) deletes the specs, waits
# until bangerd has torn every VM down, and leaves no VM, tap, loop or mount
# behind; only the empty mount point /var/lib/banger/images stays (a mount
# namespace hides mounts, not directories; README says so).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DEMO=$ROOT/build/demo
IMAGES=/var/lib/banger/images

if [ "$(id -u)" != 0 ]; then
	echo "demo: run as root (bangerd makes taps, loop devices and VMs)" >&2
	exit 1
fi
if [ -z "${BANGER_DEMO_INNER:-}" ]; then
	[ -f build/guest/bzImage ] || { echo "demo: run 'make guest-image' first" >&2; exit 1; }
	mkdir -p "$IMAGES" # mount point only; the images are bind-mounted privately
	echo "demo: running in a private network namespace (the host's network is never touched)"
	exec env BANGER_DEMO_INNER=1 unshare -n -m --propagation private -- "$0" "$@"
fi

ip link set lo up
mount --bind "$ROOT/build/guest" "$IMAGES"
rm -rf "$DEMO"
mkdir -p "$DEMO/specs" "$DEMO/status" "$DEMO/state"
cp specs/examples/*.yaml "$DEMO/specs/"
export BANGER_SPEC_DIR=$DEMO/specs BANGER_STATUS_DIR=$DEMO/status BANGER_STATE_DIR=$DEMO/state
B=$ROOT/build/banger

# The spec dir lives in your checkout: trust its owner as bangerd would trust
# a GitOps user (docs/operations.md, "Spec dir trust"). A checkout under /tmp
# is refused, as sshd refuses authorized_keys there.
"$ROOT/build/bangerd" --runtime-dir "$DEMO/run" --log-level info \
	--spec-owner "$(stat -c %u "$ROOT")" >"$DEMO/bangerd.log" 2>&1 &
BANGERD=$!

finish() {
	trap - INT TERM EXIT
	echo
	echo "demo: deleting every spec; bangerd stops and removes the VMs..."
	rm -f "$DEMO"/specs/*.yaml
	for _ in $(seq 1 300); do
		# find, not ls of a glob: a file removed between the glob and ls
		# would end the wait early.
		find "$DEMO/status" -name '*.status.json' 2>/dev/null | grep -q . || break
		sleep 0.1
	done
	kill -TERM "$BANGERD" 2>/dev/null || true
	wait "$BANGERD" 2>/dev/null || true
	left=$(ip -o link show 2>/dev/null | grep -c 'bgr-' || true)
	echo "demo: done (taps left: $left; log: $DEMO/bangerd.log)"
	rm -rf "$DEMO/state" "$DEMO/run"
}
trap finish INT TERM EXIT

echo "demo: bangerd (pid $BANGERD) on $(ls "$DEMO/specs" | tr '\n' ' ')"
want=$(grep -L 'state: Stopped' "$DEMO"/specs/*.yaml | xargs cat | grep -c '^kind: VM' || true)
for i in $(seq 1 180); do
	ready=$("$B" get -o json 2>/dev/null | /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)
print(sum(1 for s in d["items"] for c in s["conditions"] if c["type"] == "Ready" and c["status"] == "True"))' 2>/dev/null || echo 0)
	[ -t 1 ] && clear
	echo "demo: $ready of $want running VMs ready ($i s)"
	"$B" get -o wide
	[ "$ready" -ge "$want" ] && break
	sleep 1
done
echo
for ip in $("$B" get -o json | /usr/bin/python3 -c '
import json, sys
for s in json.load(sys.stdin)["items"]:
    if s["phase"] == "Running" and s["runtime"]["guestIP"]:
        print(s["runtime"]["guestIP"])'); do
	printf 'demo: curl http://%s/ -> %s\n' "$ip" "$(curl -s -m 3 "http://$ip/" || echo '(no answer)')"
done
if [ -t 0 ]; then
	echo
	echo "demo: running. Try, in another shell:  nsenter -t $BANGERD -n -m $B --spec-dir $DEMO/specs --status-dir $DEMO/status get -o wide"
	echo "demo: Ctrl-C to tear everything down."
	while kill -0 "$BANGERD" 2>/dev/null; do sleep 2; done
fi
