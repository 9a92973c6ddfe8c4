#!/bin/bash
# Convergence end to end with real QEMU guests (TCG) in a private netns:
# apply → Running + Ready + HTTP answers its name; spec changes restart only
# when they must; kill -9 of a VMM restarts it with back-off; kill -9 of
# bangerd adopts the VMs (same PIDs); Stopped; delete leaves nothing.
. "$(dirname "$0")/lib.sh"
private_netns "$0" "$@"
need_guest

guest_test_setup conv
DARGS=(--image-dir "$GUEST_DIR" --driver qemu --resync 30 --stop-timeout 10)
start_bangerd "$SPEC" "$STATE" "${DARGS[@]}"

# Three guests at once: the loop must not block on one.
for n in 1 2 3; do guest_yaml web-$n | put "$SPEC/web-$n.yaml"; done
for n in 1 2 3; do
	check "web-$n Running and Ready" wait_until 120 is_ready web-$n
done
for n in 1 2 3; do
	body=$(curl -s -m 5 "http://$(vm_ip web-$n)/")
	check "web-$n answers HTTP with its own name ($body)" test "$body" = "ok web-$n"
done
check "describe shows durable facts and the guest console" bash -c "'$BIN/banger' --spec-dir '$SPEC' --state-dir '$STATE' describe web-2 | grep -q 'banger-guest: ready host=web-2'"
check "each VM has its own tap" test "$(ip -o link show | grep -c 'bgr-')" = 3
check "phase Running" status_is web-1 'd["phase"]' Running

# A label-only change does not restart.
pid2=$(vm_pid web-2)
guest_yaml web-2 128 Running "" b | put "$SPEC/web-2.yaml"
check "label edit → generation 2" wait_until 10 status_is web-2 'd["generation"]' 2
check "label edit → observedGeneration 2" wait_until 10 status_is web-2 'd["observedGeneration"]' 2
check "label edit → same PID" test "$(vm_pid web-2)" = "$pid2"

# A memory change restarts, and says why.
pid1=$(vm_pid web-1)
guest_yaml web-1 160 | put "$SPEC/web-1.yaml"
check "memory edit → restart reason logged" wait_until 10 grep -q "web-1: spec change needs a restart: memoryMiB 128→160" "$T/bangerd.log"
check "memory edit → new PID, Ready again" wait_until 120 bash -c ". $SRC/tests/integration/lib.sh; STATUS=$STATUS; is_ready web-1 && [ \"\$(vm_pid web-1)\" != $pid1 ]"
check "memory edit → observedGeneration 2" status_is web-1 'd["observedGeneration"]' 2
check "restart for a spec change is not a crash (restartCount 0)" status_is web-1 'd["runtime"]["restartCount"]' 0
check "the new VMM has the new memory" bash -c "tr '\0' ' ' </proc/$(vm_pid web-1)/cmdline | grep -q -- '-m 160'"

# An invalid edit keeps the VM on its last good spec.
pid3=$(vm_pid web-3)
guest_yaml web-3 128 Running "  vpcus: 2" | put "$SPEC/web-3.yaml"
check "invalid edit → SpecValid False" wait_until 10 status_is web-3 '[c["status"] for c in d["conditions"] if c["type"]=="SpecValid"][0]' False
check "invalid edit → still Running, same PID" test "$(vm_pid web-3)" = "$pid3" -a "$(status_field web-3 'd["phase"]')" = Running
guest_yaml web-3 | put "$SPEC/web-3.yaml"
check "fixed → SpecValid True" wait_until 10 status_is web-3 '[c["status"] for c in d["conditions"] if c["type"]=="SpecValid"][0]' True

# kill -9 a VMM: restarted with back-off, restartCount 1.
kill -9 "$pid3"
check "VMM kill seen (phase leaves Running)" wait_until 5 bash -c "! grep -q '\"pid\": $pid3' '$STATUS/web-3.status.json'"
check "restart back-off logged" wait_until 10 grep -q "web-3: .*restart back-off 1000 ms" "$T/bangerd.log"
check "restarted: Ready with a new PID" wait_until 120 bash -c ". $SRC/tests/integration/lib.sh; STATUS=$STATUS; is_ready web-3 && [ \"\$(vm_pid web-3)\" != $pid3 ]"
check "restartCount 1" status_is web-3 'd["runtime"]["restartCount"]' 1
# The events tell the same story, from a real guest.
ev3() { "$BIN/banger" --status-dir "$STATUS" events web-3; }
check "events: web-3 Created, Started, Ready" bash -c "$(declare -f ev3); BIN=$BIN STATUS=$STATUS; ev3 | grep -q ' Created ' && ev3 | grep -q ' Started ' && ev3 | grep -q ' Ready '"
check "events: the kill -9 as an exit with its cause" bash -c "$(declare -f ev3); BIN=$BIN STATUS=$STATUS; ev3 | grep -q \" Exited .*VMM (pid $pid3) exited with signal 9: crashed\""
check "events: back-off, then the restart" bash -c "$(declare -f ev3); BIN=$BIN STATUS=$STATUS; ev3 | grep -q ' BackOff .*failure 1' && ev3 | grep -q ' Restarted .*restart 1'"

# kill -9 bangerd with three VMs running: the next one adopts them.
before=$(for n in 1 2 3; do vm_pid web-$n; done | tr '\n' ' ')
kill -9 "$BANGERD_PID"
wait "$BANGERD_PID" 2>/dev/null
BANGERD_PID=
starts_before=$(grep -c "qemu started" "$T/bangerd.log")
start_bangerd "$SPEC" "$STATE" "${DARGS[@]}"
check "restarted bangerd adopts 3 VMs" wait_until 10 bash -c "[ \$(grep -c 'adopted running VMM' '$T/bangerd.log') -ge 3 ]"
sleep 2
after=$(for n in 1 2 3; do vm_pid web-$n; done | tr '\n' ' ')
check "same PIDs after controller restart ($before)" test "$before" = "$after"
check "no VM was started again" test "$(grep -c 'qemu started' "$T/bangerd.log")" = "$starts_before"
check "still Ready after adoption" is_ready web-2

# state: Stopped → graceful stop, disks kept.
uid2=$(ls "$STATE/vms" | while read -r u; do grep -q "$pid2" "$STATE/vms/$u/handles.json" 2>/dev/null && echo "$u"; done)
guest_yaml web-2 128 Stopped "" b | put "$SPEC/web-2.yaml"
check "Stopped → phase Stopped" wait_until 30 status_is web-2 'd["phase"]' Stopped
check "Stopped → process gone" wait_until 5 pid_gone "$pid2"
check "Stopped → graceful (no kill needed)" bash -c "! grep -q 'web-2: did not stop' '$T/bangerd.log'"
check "Stopped → tap removed" test "$(ip -o link show | grep -c 'bgr-')" = 2
check "Stopped → disks kept" test -n "$uid2" -a -f "$STATE/vms/$uid2/root.qcow2"

# delete → nothing left.
pid1=$(vm_pid web-1)
rm "$SPEC/web-1.yaml"
check "delete → status removed" wait_until 30 test ! -e "$STATUS/web-1.status.json"
check "delete → process gone" wait_until 5 pid_gone "$pid1"
check "delete → row gone" bash -c "! '$BIN/banger' --spec-dir '$SPEC' get web-1 2>/dev/null"
check "delete → one tap left (web-3)" test "$(ip -o link show | grep -c 'bgr-')" = 1

# Everything goes: zero leaks.
rm -f "$SPEC"/*.yaml
check "all statuses gone" wait_until 30 no_status_files "$STATUS"
sleep 0.5
left=$(leaks "$STATE")
check "nothing leaked (taps, loops, sockets, processes, VM dirs): '$left'" test -z "$left"
check "bangerd exits cleanly" stop_bangerd
done_testing
