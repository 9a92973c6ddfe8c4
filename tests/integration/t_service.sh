#!/bin/bash
# bangerd as a host service:
#  - the sd_notify protocol against a datagram socket this test listens on
#    (path and abstract): READY=1 only once every status file exists, a
#    STATUS= summary, WATCHDOG=1 with WATCHDOG_USEC, RELOADING=1/READY=1 on
#    SIGHUP, STOPPING=1 on SIGTERM;
#  - bangerd with no flags on a fresh host: a private mount namespace with
#    empty /etc/banger, /var/lib and /run (tmpfs) and this private netns;
#    the spec dir is created, status goes to /run/banger/status;
#  - a missing spec dir while VMs are known is refused, not created empty.
. "$(dirname "$0")/lib.sh"
private_netns "$0" "$@"

T=$(test_tmpdir service)
LISTENER=
cleanup() {
	stop_bangerd
	[ -n "$LISTENER" ] && kill "$LISTENER" 2>/dev/null
	sleep 0.2
	cleanup_cgroups "${STATE:-}"
	rm -rf "$T" "${F:-}"
}
trap cleanup EXIT
SPEC=$T/specs
STATE=$T/state
STATUS=$T/status
mkdir -p "$SPEC" "$STATE"
N=150
for i in $(seq 1 $N); do vm_yaml "svc-$i" >"$SPEC/svc-$i.yaml"; done

# ev FIELD-PYTHON-EXPR: evaluated over the list `ev` of received datagrams.
ev() { /usr/bin/python3 -c "import json,sys; ev=[json.loads(l) for l in open(sys.argv[1])]; print($1)" "$T/notify.out"; }
msgs_with() { ev "sum(1 for e in ev if '$1' in e['msg'].split(chr(10)))"; }

# start_listener ADDR: the notify socket, bound before bangerd starts.
start_listener() {
	: >"$T/notify.out"
	/usr/bin/python3 "$SRC/tests/integration/notify_listen.py" "$1" "$STATUS" "$T/notify.out" >"$T/listener.out" &
	LISTENER=$!
	wait_until 5 grep -q listening "$T/listener.out"
}

# --- path socket, watchdog armed -----------------------------------------------------------
check "listener bound (path socket)" start_listener "$T/notify.sock"
NOTIFY_SOCKET=$T/notify.sock WATCHDOG_USEC=400000 start_bangerd "$SPEC" "$STATE" --resync 3600
check "READY=1 received" wait_until 30 bash -c "grep -q 'READY=1' '$T/notify.out'"
check "at READY=1 every status file existed ($N)" \
	test "$(ev "[len(e['status_files']) for e in ev if 'READY=1' in e['msg'].split(chr(10))][0]")" = "$N"
check "READY=1 carries STATUS= with the summary" \
	test "$(ev "[l for e in ev for l in e['msg'].split(chr(10)) if l.startswith('STATUS=')][0]")" = "STATUS=$N VMs: $N Stopped"
check "READY=1 carries MAINPID" \
	test "$(ev "[l for e in ev for l in e['msg'].split(chr(10)) if l.startswith('MAINPID=')][0]")" = "MAINPID=$BANGERD_PID"
check "WATCHDOG=1 every ~200 ms (WATCHDOG_USEC 400 ms)" wait_until 10 bash -c "[ \$(python3 -c \"import json; print(sum(1 for l in open('$T/notify.out') if json.loads(l)['msg'] == 'WATCHDOG=1'))\") -ge 5 ]"
gaps=$(ev "max(b['t'] - a['t'] for a, b in zip([e for e in ev if e['msg'] == 'WATCHDOG=1'], [e for e in ev if e['msg'] == 'WATCHDOG=1'][1:]))")
check "watchdog gaps under the 400 ms interval (max ${gaps}s)" python3 -c "import sys; sys.exit(0 if $gaps < 0.4 else 1)"

rm "$SPEC/svc-1.yaml"
check "STATUS= follows a change" wait_until 10 bash -c "grep -q 'STATUS=$((N - 1)) VMs: $((N - 1)) Stopped' '$T/notify.out'"

kill -HUP "$BANGERD_PID"
check "SIGHUP: RELOADING=1 then READY=1" wait_until 10 test "$(ev "[e['msg'] for e in ev if e['msg'] in ('RELOADING=1', 'READY=1')][-2:]")" = "['RELOADING=1', 'READY=1']"
check "bangerd exits 0 on SIGTERM" stop_bangerd
check "STOPPING=1 on SIGTERM" wait_until 5 test "$(msgs_with STOPPING=1)" = 1
wait "$LISTENER" 2>/dev/null
LISTENER=

# --- abstract socket, watchdog meant for another process -------------------------------------
check "listener bound (abstract socket)" start_listener "@banger-test-$$"
NOTIFY_SOCKET=@banger-test-$$ WATCHDOG_USEC=400000 WATCHDOG_PID=1 start_bangerd "$SPEC" "$STATE" --resync 3600
check "abstract socket: READY=1 received" wait_until 30 bash -c "grep -q 'READY=1' '$T/notify.out'"
sleep 1
check "WATCHDOG_PID of another process: no WATCHDOG=1" test "$(msgs_with WATCHDOG=1)" = 0
check "bangerd exits 0" stop_bangerd
check "abstract socket: STOPPING=1" wait_until 5 test "$(msgs_with STOPPING=1)" = 1
wait "$LISTENER" 2>/dev/null
LISTENER=

# --- no flags, fresh host ------------------------------------------------------------------
# /etc is a copy without banger/ (so the host's /etc is never written); /var/lib
# and /run are empty tmpfs; the netns is this test's own.
# Its files live outside /var/lib (a tmpfs hides it there): a /tmp dir.
F=$(mktemp -d /tmp/banger-t-fresh.XXXXXX)
cat >"$F/fresh.sh" <<'INNER'
set -u
T=$1 F=$1 BIN=$2
mkdir -p "$T/etc"
mount -t tmpfs tmpfs "$T/etc" && cp -a /etc/. "$T/etc/" && rm -rf "$T/etc/banger" && mount --bind "$T/etc" /etc
mount -t tmpfs tmpfs /var/lib && mount -t tmpfs tmpfs /run || exit 1
unset BANGER_SPEC_DIR BANGER_STATUS_DIR BANGER_STATE_DIR BANGER_RUNTIME_DIR NOTIFY_SOCKET
"$BIN/bangerd" >"$F/fresh.log" 2>&1 &
pid=$!
for _ in $(seq 1 200); do grep -q "initial sync done" "$F/fresh.log" && break; sleep 0.05; done
echo "spec dir: $(stat -c '%a %U' /etc/banger/vms 2>&1)"
echo "status dir: $(stat -c '%a' /run/banger/status 2>&1)"
echo "runtime dir: $(stat -c '%a' /run/banger 2>&1)"
echo "db: $(ls /var/lib/banger/banger.db 2>&1)"
cat >/etc/banger/vms/fresh-1.yaml <<YAML
apiVersion: banger/v1
kind: VM
metadata: {name: fresh-1}
spec:
  state: Stopped
  kernel: {path: /var/lib/banger/images/bzImage}
  rootfs: {path: /var/lib/banger/images/rootfs.ext4}
YAML
for _ in $(seq 1 100); do [ -e /run/banger/status/fresh-1.status.json ] && break; sleep 0.05; done
echo "status file: $(ls /run/banger/status/ 2>&1 | grep status.json)"
echo "spec dir holds: $(ls /etc/banger/vms 2>&1 | tr '\n' ' ')"
kill -TERM $pid; wait $pid; echo "exit: $?"
# The spec dir gone while the store knows a VM: refused, not created empty.
mv /etc/banger/vms /etc/banger/vms.away
"$BIN/bangerd" --once >"$T/refuse.log" 2>&1; echo "refuse exit: $?"
echo "recreated: $(ls -d /etc/banger/vms 2>&1 | grep -c 'No such')"
INNER
unshare -m --propagation private bash "$F/fresh.sh" "$F" "$BIN" >"$F/fresh.out" 2>&1
sed 's/^/# /' "$F/fresh.out"
check "no flags: starts on a fresh host" grep -q "initial sync done" "$F/fresh.log"
check "no flags: spec dir /etc/banger/vms created 0755, root's" grep -qx "spec dir: 755 root" "$F/fresh.out"
check "no flags: status dir /run/banger/status" grep -qx "status dir: 755" "$F/fresh.out"
check "no flags: runtime dir /run/banger 0711 (status readable, sockets not listable)" grep -qx "runtime dir: 711" "$F/fresh.out"
check "no flags: database in /var/lib/banger" grep -qx "db: /var/lib/banger/banger.db" "$F/fresh.out"
check "no flags: status file in /run/banger/status" grep -qx "status file: fresh-1.status.json" "$F/fresh.out"
check "no flags: nothing but the spec in the spec dir" grep -qx "spec dir holds: fresh-1.yaml " "$F/fresh.out"
check "no flags: clean exit" grep -qx "exit: 0" "$F/fresh.out"
check "missing spec dir with a known VM: exit 1" grep -qx "refuse exit: 1" "$F/fresh.out"
check "  ... says why" grep -q "does not exist, but 1 VMs are known" "$F/refuse.log"
check "  ... and did not create it" grep -qx "recreated: 1" "$F/fresh.out"

done_testing
