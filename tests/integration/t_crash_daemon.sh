#!/bin/bash
# bangerd killed at any moment must converge, with real QEMU guests in a
# private netns:
#  1. bangerd dies (SIGKILL via $BANGER_CRASHPOINT) mid-start at tap-recorded,
#     then tap-created, nft-created, disk-ready, cgroup-created, launch-submitted
#     (everything but the VMM made, the launch about to go to a worker), vmm-spawned
#     (forked, pid not yet recorded: the child waits at a gate),
#     pid-recorded (recorded, not yet exec'd) and launched; a normal
#     restart converges: the VM is
#     Running + Ready once, on the VMM the crashed run launched (adopted, no
#     duplicate), nothing else left.
#  2. A storm: random applies / edits / deletes of 3 specs (Running and
#     Stopped) with bangerd killed by kill -9 at random moments and
#     restarted; then convergence: exactly one VMM per Running spec, statuses
#     agree, and after deleting every spec nothing is left.
# The storm is random but seeded: BANGER_STORM_SEED=<seed> replays its ops
# (timing-dependent interleavings can still differ).
. "$(dirname "$0")/lib.sh"
private_netns "$0" "$@"
need_guest

T=$(test_tmpdir crashd)
SPEC=$T/specs
STATE=$T/state
STATUS=$T/status
cleanup() {
	stop_bangerd
	for p in $(pgrep -f "qemu-system-x86_64.*$T" 2>/dev/null); do kill -9 "$p"; done
	sleep 0.2
	cleanup_cgroups "${STATE:-}"
	rm -rf "$T"
}
trap cleanup EXIT
mkdir -p "$SPEC" "$STATE"
DARGS=(--image-dir "$GUEST_DIR" --driver qemu --resync 30 --stop-timeout 5)
T0=$SECONDS

# VMM processes of this test, one "pid name" line each (name from -name guest=).
vmms() {
	local p
	for p in $(pgrep -f "qemu-system-x86_64.*$STATE"); do
		echo "$p $(tr '\0' '\n' <"/proc/$p/cmdline" 2>/dev/null | sed -n 's/^guest=//p')"
	done | sort -k2
}
vmm_count() { vmms | awk -v n="$1" '$2 == n' | wc -l; }
kill_bangerd() {
	kill -9 "$BANGERD_PID" 2>/dev/null
	wait "$BANGERD_PID" 2>/dev/null
	BANGERD_PID=
}
nsocks() { local f n=0; for f in "$STATE"/run/*.sock; do [ -S "$f" ] && n=$((n + 1)); done; echo $n; }
# Milliseconds → a `sleep` argument.
msleep() { sleep "$(($1 / 1000)).$(printf '%03d' $(($1 % 1000)))"; }

# ---- 1. crash points mid-start, then a normal restart -------------------------------
guest_yaml c1 | put "$SPEC/c1.yaml"
# The gated child of a crashed spawn is a fork of bangerd: same command line.
forks() { pgrep -f "bangerd --spec-dir $SPEC" || true; }
recorded_pid() { json "$(ls "$STATE"/vms/*/handles.json)" 'd.get("pid", 0)' 2>/dev/null || echo 0; }
# spawn_undone PID: no VMM, no fork of bangerd left, the recorded pid is PID
# (0: none) and, if one, that process is gone.
spawn_undone() {
	[ -z "$(vmms)" ] && [ -z "$(forks)" ] && [ "$(recorded_pid)" = "$1" ] &&
		{ [ "$1" = 0 ] || pid_gone "$1"; }
}
for point in tap-recorded tap-created nft-created disk-ready cgroup-created launch-submitted vmm-spawned pid-recorded launched; do
	BANGER_CRASHPOINT=$point start_bangerd "$SPEC" "$STATE" "${DARGS[@]}"
	rc=0
	wait "$BANGERD_PID" || rc=$?
	BANGERD_PID=
	check "crash at $point: bangerd died by SIGKILL (rc $rc)" test "$rc" = 137
	check "crash at $point: it died at that point (log)" grep -q "crashpoint $point: dying now" "$T/bangerd.log"
	case $point in
	tap-recorded) check "crash at $point: the tap is recorded, not created" \
		bash -c "grep -q '\"tap\":\"bgr-' '$STATE'/vms/*/handles.json && [ \$(ip -o link show | grep -c 'bgr-') = 0 ]" ;;
	tap-created) check "crash at $point: left a tap behind" test "$(ip -o link show | grep -c 'bgr-')" = 1 ;;
	# The loop adds the elements while the worker makes the tap: at
	# nft-created the tap may or may not exist yet.
	nft-created) check "crash at $point: left its nft elements, at most one tap" \
		test "$(nft list ruleset bridge | grep -c '"bgr-')" = 2 -a "$(ip -o link show | grep -c 'bgr-')" -le 1 ;;
	# The worker makes the disks before the tap: at disk-ready there is
	# none yet (at most one: the check holds either way).
	disk-ready) check "crash at $point: left a root disk, at most one tap, no VMM" \
		test "$(ip -o link show | grep -c 'bgr-')" -le 1 -a -n "$(ls "$STATE"/vms/*/root.qcow2 2>/dev/null)" -a -z "$(vmms)" ;;
	vmm-spawned) check "crash at $point: no VMM ran, no pid recorded, the gated child exited" \
		wait_until 5 spawn_undone 0 ;;
	pid-recorded) RPID=$(recorded_pid)
		check "crash at $point: pid $RPID recorded, that child exited without becoming a VMM" \
			wait_until 5 spawn_undone "$RPID" ;;
	cgroup-created) check "crash at $point: left the VM's cgroup (memory and pids)" \
		bash -c "u=\$(ls '$STATE/vms'); g=$(cgroup_parent "$STATE"); [ -d /sys/fs/cgroup/memory/\$g/\$u -a -d /sys/fs/cgroup/pids/\$g/\$u ] || [ -d /sys/fs/cgroup/\$g/\$u ]"
		check "crash at $point: no VMM" test -z "$(vmms)" ;;
	launched) LPID=$(vmms | awk '$2 == "c1" {print $1}')
		check "crash at $point: left one running VMM (pid $LPID)" test "$(vmm_count c1)" = 1
		check "crash at $point: its pid was recorded before it ran (write-ahead)" test "$(recorded_pid)" = "$LPID" ;;
	esac
done
start_bangerd "$SPEC" "$STATE" "${DARGS[@]}"
check "restart: c1 Running and Ready" wait_until 120 is_ready c1
check "restart: phase Running" status_is c1 'd["phase"]' Running
check "restart: exactly one VMM for c1" test "$(vmm_count c1)" = 1
check "restart: it is the VMM the crashed run launched (pid $LPID, adopted)" test "$(vm_pid c1)" = "$LPID"
check "restart: adoption logged, no new launch" bash -c "grep -q 'c1: adopted running VMM (pid $LPID)' '$T/bangerd.log' && [ \$(grep -c 'c1: qemu started' '$T/bangerd.log') = 0 ]"
body=$(curl -s -m 5 "http://$(vm_ip c1)/")
check "restart: c1 answers HTTP ($body)" test "$body" = "ok c1"
check "restart: one tap, one socket, one VM dir" \
	test "$(ip -o link show | grep -c 'bgr-')/$(nsocks)/$(ls "$STATE/vms" | wc -l)" = 1/1/1

# ---- 2. the storm --------------------------------------------------------------
SEED=${BANGER_STORM_SEED:-$((($$ * 7919 + ${EPOCHREALTIME/./}) % 1000000))}
echo "# storm seed $SEED (replay with BANGER_STORM_SEED=$SEED)"
RANDOM=$SEED
NAMES=(c1 s2 s3)
declare -A WANT=([c1]=Running [s2]=absent [s3]=absent) MEM=([c1]=128 [s2]=128 [s3]=128)
apply() { guest_yaml "$1" "${MEM[$1]}" "${WANT[$1]}" | put "$SPEC/$1.yaml"; }
N_OPS=18
declare -A KILL_AT=()
while [ ${#KILL_AT[@]} -lt 4 ]; do KILL_AT[$((RANDOM % N_OPS))]=1; done
kills=0
for ((i = 0; i < N_OPS; i++)); do
	n=${NAMES[$((RANDOM % 3))]}
	# Every op changes something: start, stop, boot-relevant edit, delete.
	case ${WANT[$n]}:$((RANDOM % 4)) in
	absent:[012]) WANT[$n]=Running; op="apply $n Running" ;;
	absent:3) WANT[$n]=Stopped; op="apply $n Stopped" ;;
	Running:0) WANT[$n]=Stopped; op="stop $n" ;;
	Stopped:0) WANT[$n]=Running; op="start $n" ;;
	*:1 | Stopped:2) MEM[$n]=$((MEM[$n] == 128 ? 144 : 128)); op="edit $n memoryMiB ${MEM[$n]} (${WANT[$n]})" ;;
	*) WANT[$n]=absent; op="delete $n" ;;
	esac
	if [ "${WANT[$n]}" = absent ]; then rm -f "$SPEC/$n.yaml"; else apply "$n"; fi
	pause=$((RANDOM % 1900 + 100))
	echo "# op $i: $op; then ${pause} ms"
	msleep $pause
	if [ -n "${KILL_AT[$i]:-}" ]; then
		kills=$((kills + 1))
		echo "# kill -9 bangerd (#$kills)"
		echo "==== test: kill -9 bangerd (#$kills) ====" >>"$T/bangerd.log"
		kill_bangerd
		msleep $((RANDOM % 400 + 100))
		start_bangerd "$SPEC" "$STATE" "${DARGS[@]}"
	fi
done
check "storm: $N_OPS ops, bangerd killed $kills times" test "$kills" = 4
for n in "${NAMES[@]}"; do echo "# want $n: ${WANT[$n]} ${MEM[$n]} MiB"; done

# Converged when every spec's status says what the spec asks, for the
# latest generation, and every VMM matches.
converged_one() {
	local n=$1 f=$STATUS/$1.status.json
	case ${WANT[$n]} in
	absent) [ ! -e "$f" ] && [ "$(vmm_count "$n")" = 0 ] ;;
	Stopped) status_is "$n" 'd["phase"]' Stopped &&
		status_is "$n" 'd["observedGeneration"]==d["generation"]' True &&
		[ "$(vmm_count "$n")" = 0 ] ;;
	Running) is_ready "$n" && status_is "$n" 'd["phase"]' Running &&
		status_is "$n" 'd["observedGeneration"]==d["generation"]' True &&
		[ "$(vmm_count "$n")" = 1 ] &&
		tr '\0' ' ' <"/proc/$(vm_pid "$n")/cmdline" | grep -q -- "-m ${MEM[$n]} " ;;
	esac
}
converged() { for n in "${NAMES[@]}"; do converged_one "$n" || return 1; done; }
check "storm: converges (every VM as its spec says)" wait_until 150 converged
for n in "${NAMES[@]}"; do
	check "storm: $n is ${WANT[$n]} as wanted" converged_one "$n"
done

running=() expected=""
for n in "${NAMES[@]}"; do [ "${WANT[$n]}" = Running ] && running+=("$n"); done
for n in "${running[@]}"; do expected+="$(vm_pid "$n") $n"$'\n'; done
actual=$(vmms)
check "storm: running VMMs are exactly the Running specs, one each, matching status PIDs ($(tr '\n' ' ' <<<"$actual"))" \
	test "$actual" = "$(printf '%s' "$expected" | sort -k2)"
for n in "${running[@]}"; do
	body=$(curl -s -m 5 "http://$(vm_ip "$n")/")
	check "storm: $n answers HTTP ($body)" test "$body" = "ok $n"
done
check "storm: one tap and one socket per running VM (${#running[@]})" \
	test "$(ip -o link show | grep -c 'bgr-')/$(nsocks)" = "${#running[@]}/${#running[@]}"
# Rows (live intent) are exactly the present specs; every VM dir is a row's.
rows_and_dirs() {
	/usr/bin/python3 - "$STATE" "$@" <<'PY'
import os, sqlite3, sys
state, want = sys.argv[1], sorted(sys.argv[2:])
db = sqlite3.connect(f"file:{state}/banger.db?mode=ro", uri=True)
rows = db.execute("SELECT name, uid FROM vms WHERE deleted_at_ms IS NULL").fetchall()
dirs = set(os.listdir(f"{state}/vms"))
uids = {u for _, u in rows}
ok = sorted(n for n, _ in rows) == want and dirs <= uids
print("rows", sorted(n for n, _ in rows), "stray dirs", sorted(dirs - uids))
sys.exit(0 if ok else 1)
PY
}
wanted=()
for n in "${NAMES[@]}"; do [ "${WANT[$n]}" != absent ] && wanted+=("$n"); done
check "storm: database rows are the present specs (${wanted[*]}), no VM dir without a row" \
	rows_and_dirs "${wanted[@]}"
check "storm: no loop device on the state dir" bash -c "! losetup -a | grep -qF '$STATE'"

# Everything goes: zero leaks.
rm -f "$SPEC"/*.yaml
check "all statuses gone after deleting every spec" wait_until 60 no_status_files "$STATUS"
check "no VMM left" wait_until 10 test -z "$(vmms)"
left=$(leaks "$STATE")
check "nothing leaked (taps, loops, sockets, processes, VM dirs): '$left'" test -z "$left"
check "bangerd exits cleanly" stop_bangerd
check "whole test within 4 minutes ($((SECONDS - T0)) s)" test $((SECONDS - T0)) -lt 240
[ "$_failed" -eq 0 ] || { echo "# bangerd log tail:"; tail -n 80 "$T/bangerd.log" | sed 's/^/# /'; }
done_testing
