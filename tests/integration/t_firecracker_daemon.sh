#!/bin/bash
# bangerd with the Firecracker driver, against the spec-faithful test double
# (tests/fc-double: Firecracker cannot run on our machines). Proves the
# controller's driver table end to end: tap + raw CoW disk + API-configured
# launch, Stopped → SendCtrlAltDel, delete → nothing left.
. "$(dirname "$0")/lib.sh"
private_netns "$0" "$@"

spec=${FC_API_SPEC:-}
for cand in "$SRC/../shared/reference/firecracker-api.yaml" \
	"$SRC/../../shared/reference/firecracker-api.yaml"; do
	[ -z "$spec" ] && [ -f "$cand" ] && spec=$(realpath "$cand")
done
[ -n "$spec" ] || skip_all "firecracker-api.yaml not found (set FC_API_SPEC)"
/usr/bin/python3 -c 'import yaml' 2>/dev/null || skip_all "python3-yaml is not installed"

T=$(mktemp -d /tmp/banger-t-fcd.XXXXXX)
SPEC=$T/specs
STATE=$T/state
STATUS=$T/status
cleanup() {
	stop_bangerd
	for p in $(pgrep -f "firecracker-double.*--api-sock $T" 2>/dev/null); do kill -9 "$p"; done
	[ "$_failed" -gt 0 ] && tail -n 30 "$T/bangerd.log"
	rm -rf "$T"
}
trap cleanup EXIT
mkdir -p "$SPEC" "$STATE" "$T/images"
truncate -s 8M "$T/images/rootfs.ext4"
echo kernel >"$T/images/vmlinux"
# The driver runs firecracker with a minimal environment, as it would the
# real binary; the wrapper gives the double its settings.
cat >"$T/firecracker" <<W
#!/bin/sh
exec env FC_API_SPEC='$spec' FC_DOUBLE_REQUEST_LOG=requests.log /usr/bin/python3 '$SRC/tests/fc-double/firecracker-double' "\$@"
W
chmod +x "$T/firecracker"

fc_yaml() {
	cat <<YAML
apiVersion: banger/v1
kind: VM
metadata: {name: $1}
spec:
  state: ${2:-Running}
  vmm: firecracker
  vcpus: 2
  memoryMiB: 256
  kernel: {path: $T/images/vmlinux, args: "quiet"}
  rootfs: {path: $T/images/rootfs.ext4}
YAML
}

start_bangerd "$SPEC" "$STATE" --image-dir "$T/images" --firecracker-bin "$T/firecracker" --driver qemu --stop-timeout 5
fc_yaml fc-1 | put "$SPEC/fc-1.yaml"
check "spec.vmm firecracker overrides --driver qemu: Running" wait_until 20 status_is fc-1 'd["phase"]' Running
check "Ready (no readiness probe: running is ready)" is_ready fc-1
vmdir=$(ls -d "$STATE"/vms/*)
log=$vmdir/requests.log
check "the double saw the boot configuration" test -s "$log"
order=$(/usr/bin/python3 -c '
import json, sys
print(" ".join(r["method"] + " " + r["path"] for r in map(json.loads, open(sys.argv[1])) if r["status"] == 204))' "$log")
check "configured in order: boot-source, rootfs, machine-config, eth0, InstanceStart ($order)" \
	test "$order" = "PUT /boot-source PUT /drives/rootfs PUT /machine-config PUT /network-interfaces/eth0 PUT /actions"
check "machine-config carries vcpus/memory" grep -q '"vcpu_count": 2, "mem_size_mib": 256' "$log"
tap=$(status_field fc-1 'd["runtime"]["tap"]')
check "tap handed to firecracker exists ($tap)" bash -c "grep -q '\"host_dev_name\": \"$tap\"' '$log' && ip link show '$tap' >/dev/null"
check "raw CoW root disk (firecracker reads raw only)" bash -c "grep -q 'root.img\\|root.reflink.img' '$log'"
check "boot args carry the guest IP" grep -q "ip=$(vm_ip fc-1)::172.16.0.1:255.255.255.0:fc-1:eth0:off" "$log"

pid=$(vm_pid fc-1)
fc_yaml fc-1 Stopped | put "$SPEC/fc-1.yaml"
check "Stopped → phase Stopped" wait_until 20 status_is fc-1 'd["phase"]' Stopped
check "graceful stop was SendCtrlAltDel" grep -q '"action_type": "SendCtrlAltDel"' "$log"
check "the VMM exited on its own (no kill)" bash -c "! grep -q 'fc-1: did not stop' '$T/bangerd.log'"
check "process gone" pid_gone "$pid"
rm "$SPEC/fc-1.yaml"
check "delete → status gone" wait_until 20 test ! -e "$STATUS/fc-1.status.json"
left=$(leaks "$STATE")
check "nothing leaked: '$left'" test -z "$left"
done_testing
