#!/bin/bash
# Write-ahead holds in bangerd's first pass too, with real QEMU guests in a
# private netns. The first pass batches its store writes in one SQLite
# transaction; a VMM launched inside it must not run on a guest IP the
# database could forget. bangerd is killed (SIGKILL, BANGER_CRASHPOINT
# first-pass-commit) after the pass handed VM a's launch to a worker, before
# its final COMMIT:
#  - the database holds a's guest IP, the one its running VMM was given;
#  - a restart adopts that VMM (same pid, no second launch), a new VM b gets
#    another IP, both answer HTTP on their own IP;
#  - deleting both specs leaves nothing behind.
. "$(dirname "$0")/lib.sh"
private_netns "$0" "$@"
need_guest
guest_test_setup crashfp
DARGS=(--image-dir "$GUEST_DIR" --driver qemu --resync 30 --stop-timeout 5)
T0=$SECONDS

# VMM pids of VM $1 (name from -name guest=).
vmm_pids() {
	local p
	for p in $(pgrep -f "qemu-system-x86_64.*$STATE"); do
		tr '\0' '\n' <"/proc/$p/cmdline" 2>/dev/null | grep -qx "guest=$1" && echo "$p"
	done
	true
}
# The ip= the VMM's kernel command line carries (what the guest configures).
vmm_ip() { tr '\0' '\n' <"/proc/$1/cmdline" 2>/dev/null | grep -o ' ip=[0-9.]*' | head -n 1 | cut -d= -f2; }
db_ip() {
	/usr/bin/python3 - "$STATE/banger.db" "$1" <<'PY'
import sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
row = db.execute("SELECT guest_ip FROM vms WHERE name = ?", (sys.argv[2],)).fetchone()
print(row[0] if row and row[0] else "none")
PY
}

guest_yaml a | put "$SPEC/a.yaml"
BANGER_CRASHPOINT=first-pass-commit start_bangerd "$SPEC" "$STATE" "${DARGS[@]}"
rc=0
wait "$BANGERD_PID" || rc=$?
BANGERD_PID=
check "bangerd died by SIGKILL inside the first pass (rc $rc)" test "$rc" = 137
check "it died at first-pass-commit (log)" grep -q "crashpoint first-pass-commit: dying now" "$T/bangerd.log"
# Launches run on worker threads (daemon/launcher.c): the first pass hands
# a's launch over and reaches its COMMIT at once, so the kill lands while the
# launch is in flight. Whether QEMU got past its spawn gate by then is a race;
# both outcomes are checked for what must hold.
check "the first pass handed a's launch to a worker before dying" \
	grep -q "a: phase Pending (Launching)" "$T/bangerd.log"
APID=$(vmm_pids a)
check "at most one VMM runs for a (pid '$APID')" test "$(echo "$APID" | wc -w)" -le 1
if [ -n "$APID" ]; then
	AIP=$(vmm_ip "$APID")
	check "a's VMM survived the kill: the database kept its guest IP ($(db_ip a)), the one it runs with ($AIP)" \
		test -n "$AIP" -a "$(db_ip a)" = "$AIP"
else
	AIP=$(db_ip a)
	check "a's launch was cut short: no QEMU for a at all, and its guest IP ($AIP) was durable before the launch began" \
		test "$AIP" != none -a -z "$(pgrep -f "qemu-system-x86_64.*$STATE")"
fi

guest_yaml b | put "$SPEC/b.yaml"
start_bangerd "$SPEC" "$STATE" "${DARGS[@]}"
check "a Ready after the restart" wait_until 150 is_ready a
check "b Ready" wait_until 150 is_ready b
if [ -n "$APID" ]; then
	check "a is the VMM the crashed run launched (pid $APID, adopted)" test "$(vm_pid a)" = "$APID"
	check "a was not launched again" test "$(grep -c 'a: qemu started' "$T/bangerd.log")" = 0
else
	check "a was launched once, by the new bangerd" test "$(grep -c 'a: qemu started' "$T/bangerd.log")" = 1
fi
check "a's status reports its IP ($(vm_ip a))" test "$(vm_ip a)" = "$AIP"
BIP=$(vm_ip b)
check "b got another IP ($BIP, a has $AIP)" test -n "$BIP" -a "$BIP" != "$AIP"
check "b's VMM runs with that IP" test "$(vmm_ip "$(vmm_pids b)")" = "$BIP"
body=$(curl -s -m 5 "http://$AIP/")
check "a answers HTTP on its IP ($body)" test "$body" = "ok a"
body=$(curl -s -m 5 "http://$BIP/")
check "b answers HTTP on its IP ($body)" test "$body" = "ok b"

rm -f "$SPEC"/*.yaml
check "both statuses gone after deleting the specs" wait_until 60 bash -c "! ls '$STATUS'/*.status.json >/dev/null 2>&1"
left=$(leaks "$STATE")
check "nothing leaked (taps, loops, sockets, processes, VM dirs): '$left'" wait_until 20 test -z "$(leaks "$STATE")"
check "bangerd exits cleanly" stop_bangerd
check "within 5 minutes ($((SECONDS - T0)) s)" test $((SECONDS - T0)) -lt 300
[ "$_failed" -eq 0 ] || { echo "# bangerd log tail:"; tail -n 60 "$T/bangerd.log" | sed 's/^/# /'; }
done_testing
