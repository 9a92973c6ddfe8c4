#!/bin/bash
# bangerd with the Firecracker driver, against the spec-faithful test double
# (tests/fc-double: Firecracker cannot run on our machines). Proves the
# controller's driver table end to end: tap + raw CoW disk + API-configured
# launch, Stopped → SendCtrlAltDel, delete → nothing left.
. "$(dirname "$0")/lib.sh"
private_netns "$0" "$@"

need_fc_double

fc_test_setup fcd
STATUS=$T/status
fc_double_wrapper FC_DOUBLE_REQUEST_LOG=requests.log

FC_SPEC_EXTRA=$'  vcpus: 2\n  memoryMiB: 256'
FC_KERNEL_ARGS=quiet

M=$T/metrics.prom
start_bangerd "$SPEC" "$STATE" --image-dir "$T/images" --firecracker-bin "$T/firecracker" --driver qemu --stop-timeout 5 --metrics-file "$M"
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
check "the tap has an owner (root: firecracker unjailed), so no other user may attach to it" \
	bash -c "ip -d link show '$tap' | grep -q 'user root group root'"
check "raw CoW root disk (firecracker reads raw only)" bash -c "grep -q 'root.img\\|root.reflink.img' '$log'"
check "boot args carry the guest IP" grep -q "ip=$(vm_ip fc-1)::172.16.0.1:255.255.255.0:fc-1:eth0:off" "$log"

# Events: what happened, in order, with the cause of an exit.
ev() { "$BIN/banger" --status-dir "$STATUS" events "$@"; }
ev_has() { ev fc-1 | grep -q "$1"; }
check "events: Created, Started, Ready" bash -c "$(declare -f ev ev_has); BIN=$BIN STATUS=$STATUS; ev_has ' Created ' && ev_has ' Started .*VMM started (pid' && ev_has ' Ready '"
pid0=$(vm_pid fc-1)
ev -w fc-1 >"$T/events-w.out" 2>&1 &
evw=$!
sleep 0.3
kill -9 "$pid0"
check "kill -9 of the VMM: restarted with a new pid" wait_until 20 bash -c ". $SRC/tests/integration/lib.sh; STATUS=$STATUS; is_ready fc-1 && [ \"\$(vm_pid fc-1)\" != $pid0 ]"
check "events: the exit and its cause (crashed)" wait_until 5 ev_has " Exited .*VMM (pid $pid0) exited.*crashed"
check "events: the back-off" ev_has ' BackOff .*failure 1; next start in 1000 ms'
check "events: the restart" ev_has ' Restarted .*restart 1'
check "events -w printed the exit and the restart as they happened" \
	wait_until 5 bash -c "grep -q ' Exited ' '$T/events-w.out' && grep -q ' Restarted ' '$T/events-w.out'"
check "events -w listed the earlier events once, then followed" \
	test "$(grep -c ' Created ' "$T/events-w.out")" = 1
kill "$evw" 2>/dev/null
wait "$evw" 2>/dev/null
# Metrics: text exposition format, HELP/TYPE for every family, the values.
metric() { awk -v k="$1" '$1 == k { print $2 }' "$M"; }
# Read again on every try: the file is rewritten at most once a second.
metric_is() { test "$(metric "$1")" = "$2"; }
check "metrics: a Running VM counted by phase" wait_until 5 metric_is 'banger_vms{phase="Running"}' 1
check "metrics: ready, restarts, memory, vcpus per VM" wait_until 5 bash -c "
	grep -qx 'banger_vm_ready{name=\"fc-1\"} 1' '$M' &&
	grep -qx 'banger_vm_restarts_total{name=\"fc-1\"} 1' '$M' &&
	grep -qx 'banger_vm_memory_bytes{name=\"fc-1\"} 268435456' '$M' &&
	grep -qx 'banger_vm_vcpus{name=\"fc-1\"} 2' '$M'"
check "metrics: passes counted, histogram count agrees" \
	bash -c "p=\$(awk '\$1==\"banger_reconcile_passes_total\"{print \$2}' '$M'); [ \"\$p\" -gt 0 ] && grep -qx \"banger_reconcile_pass_duration_seconds_count \$p\" '$M' && grep -qx \"banger_reconcile_pass_duration_seconds_bucket{le=\\\"+Inf\\\"} \$p\" '$M'"
check "metrics: a successful sync time is set" test "$(metric banger_last_successful_sync_timestamp_seconds | cut -d. -f1)" -gt 1700000000
check "metrics: the file parses as exposition format (HELP+TYPE per family, name{labels} value)" \
	/usr/bin/python3 - "$M" <<'PY'
import re, sys
fams, seen = {}, set()
for line in open(sys.argv[1]):
    line = line.rstrip("\n")
    m = re.match(r"# (HELP|TYPE) (\w+) (.+)$", line)
    if m:
        fams.setdefault(m.group(2), set()).add(m.group(1))
        continue
    m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_]+="[^"\\]*"(,[a-zA-Z_]+="[^"\\]*")*\})? (-?[0-9.e+]+|\+Inf)$', line)
    if not m:
        sys.exit("bad line: " + line)
    base = re.sub(r"_(bucket|sum|count)$", "", m.group(1))
    seen.add(base if base in fams else m.group(1))
missing = [n for n in seen if fams.get(n) != {"HELP", "TYPE"}]
sys.exit("no HELP/TYPE for %s" % missing if missing else 0)
PY
check "describe shows the events" bash -c "'$BIN/banger' --status-dir '$STATUS' --spec-dir '$SPEC' describe fc-1 | grep -A20 '^Events:' | grep -q ' Restarted '"

pid=$(vm_pid fc-1)
fc_yaml fc-1 Stopped | put "$SPEC/fc-1.yaml"
check "Stopped → phase Stopped" wait_until 20 status_is fc-1 'd["phase"]' Stopped
check "graceful stop was SendCtrlAltDel" grep -q '"action_type": "SendCtrlAltDel"' "$log"
check "the VMM exited on its own (no kill)" bash -c "! grep -q 'fc-1: did not stop' '$T/bangerd.log'"
check "process gone" pid_gone "$pid"
rm "$SPEC/fc-1.yaml"
check "delete → status gone" wait_until 20 test ! -e "$STATUS/fc-1.status.json"
check "events: stopping, stopped, deleted" bash -c "ev() { '$BIN/banger' --status-dir '$STATUS' events fc-1; }; ev | grep -q ' Stopping ' && ev | grep -q ' Stopped ' && ev | grep -q ' Deleted '"
left=$(leaks "$STATE")
check "nothing leaked: '$left'" test -z "$left"
done_testing
