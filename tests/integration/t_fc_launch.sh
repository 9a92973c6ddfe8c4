#!/bin/bash
# Concurrent, bounded VMM launches (daemon/launcher.c), against the Firecracker
# double (tests/fc-double: Firecracker cannot run here), made slow on purpose
# (FC_DOUBLE_PUT_DELAY_MS) so launches that run one after another and launches
# that overlap look different:
#  - 20 VMs, --max-parallel-starts 4: the doubles' own request times show the
#    launches overlap, never more than 4 at once; all reach Running (4, not
#    more: each Python double burns ~0.5 s of CPU starting, and on 2 loaded
#    cores 8 at once missed the driver's 3 s socket deadline over and over);
#  - the 10th launch is refused by its VMM (PUT /machine-config → 400): that
#    VMM is gone, the VM retries after back-off, nothing leaks;
#  - a spec written while launches are in flight gets its status at once;
#  - kill -9 of bangerd mid-launch: the next bangerd finds or cleans every VMM
#    (no VM adopted without InstanceStart, no double left over or doubled).
. "$(dirname "$0")/lib.sh"
private_netns "$0" "$@"

need_fc_double

fc_test_setup fcl
STATUS=$T/status
mkdir -p "$T/seq"
# Each launch takes a number (mkdir is atomic); number 10 is refused by its
# VMM. The wrapper's pid is the double's (exec), recorded for the checks.
cat >"$T/firecracker" <<W
#!/bin/sh
n=1
while ! mkdir "$T/seq/\$n" 2>/dev/null; do n=\$((n + 1)); done
echo \$\$ >"$T/seq/\$n/pid"
reject=
[ "\$n" = 10 ] && reject="PUT /machine-config"
exec env FC_API_SPEC='$spec' FC_DOUBLE_REQUEST_LOG=requests.log \
	FC_DOUBLE_PUT_DELAY_MS=\${PUT_DELAY_MS:-100} FC_DOUBLE_REJECT="\$reject" \
	$(fc_double_cmd) "\$@"
W
chmod +x "$T/firecracker"

FC_SPEC_EXTRA='  memoryMiB: 128' # fc_yaml (lib.sh) writes the specs
doubles() { pgrep -f "$FC_DOUBLE_PAT.*--api-sock $STATE" | wc -l; }
count_phase() { # count_phase PHASE NAME...
	local p=$1 n=0 v
	shift
	for v in "$@"; do status_is "$v" 'd["phase"]' "$p" 2>/dev/null && n=$((n + 1)); done
	echo "$n"
}
all_running() { [ "$(count_phase Running "$@")" = $# ]; }

N=20
names=()
for i in $(seq 1 $N); do
	names+=("v$i")
	fc_yaml "v$i" | put "$SPEC/v$i.yaml"
done
export PUT_DELAY_MS=100
start_bangerd "$SPEC" "$STATE" --image-dir "$T/images" --firecracker-bin "$T/firecracker" \
	--max-parallel-starts 4
check "a launch is in flight: a VM reports Pending/Launching" \
	wait_until 30 bash -c "grep -q '\"reason\": *\"Launching\"' '$STATUS'/*.status.json"
fc_yaml idle Stopped | put "$SPEC/idle.yaml"
check "a spec written while launches run gets its status (the loop is not blocked)" \
	wait_until 10 status_is idle 'd["phase"]' Stopped
running_then=$(count_phase Running "${names[@]}")
check "...before the launches were all done ($running_then of $N Running then)" \
	test "$running_then" -lt $N
check "all $N VMs Running" wait_until 120 all_running "${names[@]}"

# The doubles' side: one interval per launch, from its first PUT answered to
# InstanceStart (or the refusal); the most that overlap at any instant.
overlap=$(/usr/bin/python3 - "$STATE"/vms/*/requests.log <<'PY'
import json, sys
iv = []
for f in sys.argv[1:]:
    start = None
    for r in map(json.loads, open(f)):
        if r["method"] != "PUT":
            continue
        if start is None:
            start = r["t"]
        if r["path"] == "/actions" or r["status"] >= 400:
            iv.append((start, r["t"]))
            start = None
ev = sorted([(a, 1) for a, b in iv] + [(b, -1) for a, b in iv])
cur = best = 0
for _, d in ev:
    cur += d
    best = max(best, cur)
print(best)
PY
)
check "launches overlap (at most $overlap at once by the doubles' clocks; one at a time would be 1)" \
	test "$overlap" -ge 2
check "...and never more than --max-parallel-starts 4 ($overlap)" test "$overlap" -le 4

bad=$(cat "$T/seq/10/pid")
check "the refused launch's VMM (pid $bad) is gone" pid_gone "$bad"
check "the refusal failed exactly one start" \
	test "$(grep -c ': start failed: firecracker launch failed: Invalid argument' "$T/bangerd.log")" = 1
# Under heavy load a slow double may also miss its socket deadline (3 s): that
# start fails and is retried too. Each failed start is one restart, no more.
failed=$(grep -c ': start failed: ' "$T/bangerd.log")
restarts=0
for v in "${names[@]}"; do restarts=$((restarts + $(status_field "$v" 'd["runtime"]["restartCount"]'))); done
check "every failed start was retried and counted once ($failed failed, $restarts restarts)" \
	test "$restarts" = "$failed"
check "one live double per VM, no other ($(doubles))" test "$(doubles)" = $N
live=0
for v in "${names[@]}"; do
	p=$(vm_pid "$v")
	[ -n "$p" ] && ! pid_gone "$p" && live=$((live + 1))
done
check "every VM's status pid is a live double ($live)" test "$live" = $N
taps=$(ip -o link show | grep -c 'bgr-')
check "one tap per VM, none left by the refused launch ($taps)" test "$taps" = $N
check "the debug log shows the in-flight launches being collected by later passes" \
	grep -qE 'timing: firewall [0-9.]+ ms, disk [0-9.]+ ms, cgroup [0-9.]+ ms, tap [0-9.]+ ms, confine [0-9.]+ ms, launch [0-9.]+ ms' "$T/bangerd.log"

# Delete everything: nothing left.
rm -f "$SPEC"/*.yaml
check "all deleted" wait_until 60 no_status_files "$STATUS"
left=$(leaks "$STATE")
check "nothing leaked after the deletes: '$left'" test -z "$left"
check "no double left" test "$(doubles)" = 0

# kill -9 of bangerd while launches are in flight (slower doubles: 300 ms per
# PUT, 4 at once), then a new bangerd.
check "bangerd exits cleanly on SIGTERM" stop_bangerd
rm -rf "$T/seq" && mkdir -p "$T/seq"
touch "$T/seq/10" # no refusal this round: number 10 is taken
export PUT_DELAY_MS=300
K=8
knames=()
for i in $(seq 1 $K); do
	knames+=("k$i")
	fc_yaml "k$i" | put "$SPEC/k$i.yaml"
done
start_bangerd "$SPEC" "$STATE" --image-dir "$T/images" --firecracker-bin "$T/firecracker" \
	--max-parallel-starts 4
check "mid-launch: some doubles got their first PUT" \
	wait_until 30 bash -c "ls '$STATE'/vms/*/requests.log >/dev/null 2>&1"
kill -9 "$BANGERD_PID"
wait "$BANGERD_PID" 2>/dev/null
BANGERD_PID=
sleep 0.5 # gated children read EOF and exit
start_bangerd "$SPEC" "$STATE" --image-dir "$T/images" --firecracker-bin "$T/firecracker" \
	--max-parallel-starts 4
check "after kill -9 mid-launch: all $K VMs Running" wait_until 120 all_running "${knames[@]}"
check "one live double per VM, no other ($(doubles))" test "$(doubles)" = $K
unstarted=$(for v in "${knames[@]}"; do
	/usr/bin/python3 - "$STATE/run" "$(vm_pid "$v")" <<'PY'
import glob, http.client, json, os, socket, struct, sys
run, pid = sys.argv[1], int(sys.argv[2])
for path in glob.glob(run + "/*.sock"):
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(path)
    except OSError:
        continue
    cred = s.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    if struct.unpack("3i", cred)[0] != pid:
        s.close()
        continue
    c = http.client.HTTPConnection("localhost", timeout=10)
    c.sock = s  # connected, and checked to be served by pid
    c.request("GET", "/", headers={"Accept": "application/json"})
    print(pid, json.loads(c.getresponse().read())["state"])
    sys.exit(0)
print(pid, "no-socket")
PY
done)
started=$(echo "$unstarted" | grep -c ' Running$')
check "every adopted or restarted VMM got InstanceStart (GET / says Running): $started of $K ($(echo $unstarted))" \
	test "$started" = $K

# SIGTERM while launches are in flight: bangerd waits for them (bounded) and
# leaves each VMM running with its pid recorded, or gone; the next bangerd
# adopts every one of them (no second launch).
rm -f "$SPEC"/*.yaml
check "all deleted" wait_until 60 no_status_files "$STATUS"
stop_bangerd
for i in 1 2 3 4; do fc_yaml "s$i" | put "$SPEC/s$i.yaml"; done
snames=(s1 s2 s3 s4)
start_bangerd "$SPEC" "$STATE" --image-dir "$T/images" --firecracker-bin "$T/firecracker" \
	--max-parallel-starts 4
check "SIGTERM case: launches in flight" \
	wait_until 30 bash -c "ls '$STATE'/vms/*/requests.log >/dev/null 2>&1"
check "SIGTERM mid-launch: bangerd exits cleanly once its launches are settled" stop_bangerd
before=$(doubles)
check "every launch it settled left a running VMM ($before of 4)" test "$before" = 4
mark=$(wc -l <"$T/bangerd.log")
start_bangerd "$SPEC" "$STATE" --image-dir "$T/images" --firecracker-bin "$T/firecracker" \
	--max-parallel-starts 4
check "after the restart: all 4 Running" wait_until 60 all_running "${snames[@]}"
check "adopted, not launched again: still 4 doubles ($(doubles))" test "$(doubles)" = 4
check "the new bangerd launched no VMM (it adopted them)" \
	test "$(tail -n +$((mark + 1)) "$T/bangerd.log" | grep -c ': firecracker started')" = 0

rm -f "$SPEC"/*.yaml
check "all deleted" wait_until 60 no_status_files "$STATUS"
left=$(leaks "$STATE")
check "nothing leaked: '$left'" test -z "$left"
check "no double left" test "$(doubles)" = 0
check "bangerd exits cleanly on SIGTERM (status 0; under ASan: no leak report)" stop_bangerd
done_testing
