#!/bin/bash
# Running out of file descriptors (issue 7 point 6): bangerd restarted under
# a range of low `ulimit -n` values with VMs running (the Firecracker test
# double, tests/fc-double: Firecracker cannot run here) either adopts every
# VM, or exits 1 with an error that says "Too many open files". Never a
# silently unwatched VM: no VMM is killed, re-created or started twice, and
# no intent is lost, whatever the limit.
. "$(dirname "$0")/lib.sh"
private_netns "$0" "$@"

need_fc_double

fc_test_setup fdlim
STATUS=$SPEC
vmms() { pgrep -f "$FC_DOUBLE_PAT.*--api-sock $STATE" 2>/dev/null | sort | tr '\n' ' '; }
fc_double_wrapper
for i in 1 2 3 4; do
	cat >"$SPEC/fc-$i.yaml" <<YAML
apiVersion: banger/v1
kind: VM
metadata: {name: fc-$i}
spec:
  state: Running
  vmm: firecracker
  memoryMiB: 128
  kernel: {path: $T/images/vmlinux}
  rootfs: {path: $T/images/rootfs.ext4}
YAML
done
ARGS=(--image-dir "$T/images" --firecracker-bin "$T/firecracker" --stop-timeout 5 --resync 3600)
start_bangerd "$SPEC" "$STATE" "${ARGS[@]}"
for i in 1 2 3 4; do check "fc-$i Running" wait_until 60 status_is fc-$i 'd["phase"]' Running; done
check "bangerd raised its soft fd limit to the hard one" \
	test "$(awk '/Max open files/ {print $4}' /proc/$BANGERD_PID/limits)" = "$(ulimit -Hn)"
vmm_pid=$(pgrep -f "$FC_DOUBLE_PAT.*--api-sock $STATE" | head -n 1)
check "the VMM got the limit bangerd started with" \
	test "$(awk '/Max open files/ {print $4}' /proc/$vmm_pid/limits)" = "$(ulimit -Sn)"
stop_bangerd
before=$(vmms)
check "four VMMs outlive bangerd" test "$(echo $before | wc -w)" = 4

adopted=0 refused=0 bad=0
for n in ${FD_LIMITS:-$(seq 10 30)}; do
	( ulimit -n "$n"; exec "$BIN/bangerd" --once --spec-dir "$SPEC" --state-dir "$STATE" \
		--runtime-dir "$STATE/run" "${ARGS[@]}" ) >"$T/low.log" 2>&1
	rc=$?
	now=$(vmms)
	live=$(sqlite3 "$STATE/banger.db" "select count(*) from vms where deleted_at_ms is null" 2>/dev/null)
	if [ "$now" != "$before" ] || [ "$live" != 4 ]; then
		bad=$((bad + 1))
		echo "# ulimit -n $n: exit $rc, VMMs before '$before' now '$now', live intent $live"
	elif [ "$rc" = 0 ] && [ "$(grep -c 'adopted running VMM' "$T/low.log")" = 4 ]; then
		adopted=$((adopted + 1))
	elif [ "$rc" = 1 ] && grep -q "Too many open files" "$T/low.log" &&
		! grep -q "tearing down" "$T/low.log"; then
		refused=$((refused + 1))
	else
		bad=$((bad + 1))
		echo "# ulimit -n $n: exit $rc"
		grep -E "error|warn" "$T/low.log" | tail -n 4 | sed 's/^/#   /'
	fi
	for p in $before; do [ -e /proc/$p ] || echo "# pid $p gone after ulimit -n $n"; done
	[ -n "${FD_DEBUG:-}" ] && sed "s/^/# $n: /" "$T/low.log"
done
check "every limit: all adopted or a clear EMFILE error ($adopted adopted, $refused refused, $bad bad)" [ "$bad" = 0 ]
check "low limits hit the error path" [ "$refused" -gt 0 ]
check "higher limits adopt all four" [ "$adopted" -gt 0 ]
check "the same four VMMs run throughout" test "$(vmms)" = "$before"
done_testing
