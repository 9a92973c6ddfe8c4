#!/bin/bash
# Suspend and resume (issue 10) with the Firecracker driver, against the
# spec-faithful test double (tests/fc-double: Firecracker cannot run here):
# PATCH /vm Paused + PUT /snapshot/create, then a fresh process with PUT
# /snapshot/load (resume_vm) and no boot configuration; leaks. Verified only
# against the double.
. "$(dirname "$0")/lib.sh"
private_netns "$0" "$@"

need_fc_double

fc_test_setup fcs
STATUS=$SPEC
# What the double refuses is read from $T/reject at each start.
fc_double_wrapper FC_DOUBLE_REQUEST_LOG=requests.log "FC_DOUBLE_REJECT=\"\$(cat '$T/reject' 2>/dev/null)\""

FC_SPEC_EXTRA=$'  vcpus: 2\n  memoryMiB: 256'
FC_KERNEL_ARGS=quiet

start_bangerd "$SPEC" "$STATE" --image-dir "$T/images" --firecracker-bin "$T/firecracker" --driver qemu --stop-timeout 5
cond() { status_field fc-1 "[c[\"$2\"] for c in d[\"conditions\"] if c[\"type\"]==\"$1\"][0]"; }
suspended() { status_is fc-1 'd["phase"]' Suspended && [ "$(cond Suspended status)" = True ]; }
calls() { /usr/bin/python3 -c '
import json, sys
print(" ".join(r["method"] + " " + r["path"] for r in map(json.loads, open(sys.argv[1])) if r["status"] in (200, 204)))' "$log"; }

fc_yaml fc-1 | put "$SPEC/fc-1.yaml"
check "Running" wait_until 20 is_ready fc-1
vmdir=$(ls -d "$STATE"/vms/*)
log=$vmdir/requests.log
pid=$(vm_pid fc-1)
ip=$(vm_ip fc-1)

fc_yaml fc-1 Suspended | put "$SPEC/fc-1.yaml"
check "Suspended → phase Suspended, condition True" wait_until 20 suspended
check "paused, then a Full snapshot into the VM dir" bash -c "grep -q '\"path\": \"/vm\", \"body\": {\"state\": \"Paused\"}, \"status\": 204' '$log' && grep -q '\"snapshot_type\": \"Full\", \"snapshot_path\": \"$vmdir/suspend.tmp/fc.vmstate\", \"mem_file_path\": \"$vmdir/suspend.tmp/fc.mem\"' '$log'"
check "snapshot files committed (0700 dir)" test -f "$vmdir/suspend/fc.vmstate" -a -f "$vmdir/suspend/fc.mem" -a "$(stat -c %a "$vmdir/suspend")" = 700
check "memory file is memoryMiB (256 MiB)" test "$(stat -c %s "$vmdir/suspend/fc.mem")" = $((256 << 20))
check "condition names the version: $(cond Suspended message)" bash -c "[[ '$(cond Suspended message)' == *'(Firecracker '* ]]"
check "process ended" wait_until 5 pid_gone "$pid"
check "guest IP kept" test "$(vm_ip fc-1)" = "$ip"

before=$(wc -l <"$log")
fc_yaml fc-1 | put "$SPEC/fc-1.yaml"
check "Running again → Ready" wait_until 20 is_ready fc-1
new=$(tail -n +$((before + 1)) "$log")
check "a fresh process loaded the snapshot with resume_vm" bash -c "grep -q '\"path\": \"/snapshot/load\", \"body\": {\"snapshot_path\": \"$vmdir/suspend/fc.vmstate\", \"mem_backend\": {\"backend_type\": \"File\", \"backend_path\": \"$vmdir/suspend/fc.mem\"}, \"resume_vm\": true}, \"status\": 204' <<<'$new'"
check "...and was not booted (no boot-source, no InstanceStart)" bash -c "! grep -q 'boot-source\\|InstanceStart' <<<'$new'"
check "condition Suspended False/Resumed" test "$(cond Suspended reason)" = Resumed
check "saved state removed" test ! -e "$vmdir/suspend" -a ! -e "$vmdir/suspend.json"
check "describe over the API says Running" bash -c "'$BIN/banger' --status-dir '$STATUS' --spec-dir '$SPEC' --state-dir '$STATE' describe fc-1 >/dev/null"
check "same IP" test "$(vm_ip fc-1)" = "$ip"

# A snapshot the double cannot load (memory file of the wrong size; the
# record's size check sees it first: StateCorrupt, cold boot).
fc_yaml fc-1 Suspended | put "$SPEC/fc-1.yaml"
check "suspended again" wait_until 20 suspended
truncate -s 1M "$vmdir/suspend/fc.mem"
before=$(wc -l <"$log")
fc_yaml fc-1 | put "$SPEC/fc-1.yaml"
check "corrupt snapshot → cold boot → Ready" wait_until 20 is_ready fc-1
check "condition says StateCorrupt" test "$(cond Suspended reason)" = StateCorrupt
check "...and the new process was booted, not loaded" bash -c "tail -n +$((before + 1)) '$log' | grep -q InstanceStart && ! tail -n +$((before + 1)) '$log' | grep -q snapshot/load"

# A save the VMM refuses never harms the guest: it keeps running (resumed
# over the API), status says why, and the save is retried with back-off.
echo "PUT /snapshot/create" >"$T/reject"
fc_yaml fc-1 Stopped | put "$SPEC/fc-1.yaml"
check "Stopped" wait_until 20 status_is fc-1 'd["phase"]' Stopped
fc_yaml fc-1 | put "$SPEC/fc-1.yaml"
check "Running (a process that refuses snapshots)" wait_until 20 is_ready fc-1
pid=$(vm_pid fc-1)
before=$(wc -l <"$log")
fc_yaml fc-1 Suspended | put "$SPEC/fc-1.yaml"
check "refused save → condition Suspended False/SuspendFailed" wait_until 20 bash -c ". $SRC/tests/integration/lib.sh; STATUS=$STATUS; [ \"\$(status_field fc-1 '[c[\"reason\"] for c in d[\"conditions\"] if c[\"type\"]==\"Suspended\"][0]')\" = SuspendFailed ]"
check "...the guest keeps running: phase Running, Ready, same pid" bash -c ". $SRC/tests/integration/lib.sh; STATUS=$STATUS; is_ready fc-1 && [ \"\$(vm_pid fc-1)\" = $pid ]"
check "...it was resumed over the API after the refusal" bash -c "tail -n +$((before + 1)) '$log' | grep -q '\"body\": {\"state\": \"Resumed\"}, \"status\": 204'"
check "...status says why: $(cond Suspended message)" bash -c "[[ '$(cond Suspended message)' == 'suspend failed: PUT /snapshot/create: '*'the guest keeps running (retry in '* ]]"
check "...nothing half-saved is left" test ! -e "$vmdir/suspend.json" -a ! -e "$vmdir/suspend.tmp"
check "...and it is retried (back-off)" wait_until 10 bash -c "[ \$(grep -c 'fc-1: suspend failed' '$T/bangerd.log') -ge 2 ]"
rm -f "$T/reject"

rm "$SPEC/fc-1.yaml"
check "delete → status gone" wait_until 20 test ! -e "$STATUS/fc-1.status.json"
left=$(leaks "$STATE")
check "nothing leaked: '$left'" test -z "$left"
done_testing
