#!/bin/bash
# A VMM's identity cannot be forged by a local user (issue 7, point 3).
# A process bangerd did not spawn, running as another uid (nobody), binds and
# serves the VM's exact socket path in a private mount namespace — so
# /proc/net/unix lists "<runtime-dir>/<uid8>.sock" served by it — while the
# real VMM is dead. bangerd must neither adopt it (rediscovery used to take
# whoever held that path in /proc/net/unix) nor kill it (teardown and the
# orphan sweep used to), nor send it API requests; it starts its own VMM.
# Runs against the Firecracker test double (tests/fc-double).
. "$(dirname "$0")/lib.sh"
private_netns "$0" "$@"

need_fc_double
[ "$(id -u)" = 0 ] || skip_all "needs root (private mount namespace, setpriv)"
command -v setpriv >/dev/null || skip_all "setpriv (util-linux) not installed"

IMPOSTOR=
fc_test_cleanup_hook() { [ -n "$IMPOSTOR" ] && kill -9 "$IMPOSTOR" 2>/dev/null; }
fc_test_setup vid
STATUS=$SPEC
# The impostor runs as nobody: it must reach its script under T.
chmod 0755 "$T"
fc_double_wrapper FC_DOUBLE_REQUEST_LOG=requests.log
DARGS=(--image-dir "$T/images" --firecracker-bin "$T/firecracker" --driver qemu --stop-timeout 5)
kill_bangerd() { kill -9 "$BANGERD_PID"; wait "$BANGERD_PID" 2>/dev/null; BANGERD_PID=; }

# impostor SOCKPATH: as nobody, in a private mount namespace with a tmpfs over
# the runtime dir, bind + listen on SOCKPATH and answer every connection
# like a Firecracker API (so a controller that trusted it would adopt it).
cat >"$T/impostor.py" <<'PY'
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1])
s.listen(16)
print(os.getpid(), flush=True)
body = b'{"state": "Running", "id": "x", "app_name": "Firecracker", "vmm_version": "1"}'
while True:
    c, _ = s.accept()
    c.recv(65536)
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    sys.stderr.write("impostor: a request reached me\n")
    sys.stderr.flush()
    c.close()
PY
chmod 0644 "$T/impostor.py"
impostor() {
	local dir
	dir=$(dirname "$1")
	unshare -m --propagation private -- bash -c "mount -t tmpfs -o mode=1777 tmpfs '$dir' &&
		exec setpriv --reuid=65534 --regid=65534 --clear-groups /usr/bin/python3 '$T/impostor.py' '$1'" \
		>"$T/impostor.pid" 2>>"$T/impostor.log" &
	wait_until 10 test -s "$T/impostor.pid" && IMPOSTOR=$(cat "$T/impostor.pid")
}

start_bangerd "$SPEC" "$STATE" "${DARGS[@]}"
fc_yaml v1 | put "$SPEC/v1.yaml"
check "v1 Running" wait_until 20 status_is v1 'd["phase"]' Running
P1=$(vm_pid v1)
uid=$(ls "$STATE/vms")
sock=$STATE/run/${uid:0:8}.sock

# ---- the real VMM dies while bangerd is down; an impostor serves its path ------
kill_bangerd
kill -9 "$P1"
check "the real VMM is gone" wait_until 5 pid_gone "$P1"
impostor "$sock"
check "an impostor (pid ${IMPOSTOR:-none}, uid nobody, not spawned by bangerd) serves the path" \
	bash -c "[ -n '$IMPOSTOR' ] && awk '/^Uid:/ {exit \$2 != 65534}' /proc/$IMPOSTOR/status"
check "/proc/net/unix lists the VM's socket path (the forged entry)" \
	bash -c "awk '{print \$8}' /proc/net/unix | grep -qxF '$sock'"

echo "==== test: restart with the impostor ====" >>"$T/bangerd.log"
start_bangerd "$SPEC" "$STATE" "${DARGS[@]}"
# The status file still says Running with the old pid until the pass runs.
check "restart: v1 Running again, on a new pid" \
	wait_until 20 bash -c "[ \"\$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d[\"phase\"], d[\"runtime\"].get(\"pid\"))' '$STATUS/v1.status.json')\" != 'Running $P1' ] &&
		grep -q 'v1: firecracker started\|adopted running VMM' <(sed -n '/==== test: restart with/,\$p' '$T/bangerd.log')"
wait_until 20 status_is v1 'd["phase"]' Running
P2=$(vm_pid v1)
check "restart: the impostor was not adopted (status pid $P2)" \
	bash -c "[ '$P2' != '$IMPOSTOR' ] && [ '$P2' != '$P1' ] && ! grep -q 'adopted running VMM (pid $IMPOSTOR)' '$T/bangerd.log'"
check "restart: a VMM bangerd spawned serves the real socket" \
	bash -c "tr '\\0' ' ' </proc/$P2/cmdline | grep -qE '$FC_DOUBLE_PAT --api-sock $sock'"
check "restart: the impostor still runs (not killed)" kill -0 "$IMPOSTOR"
check "restart: no request ever reached the impostor" bash -c "! grep -q 'reached me' '$T/impostor.log'"

# ---- stop, then delete, with the impostor still there ----------------------------
fc_yaml v1 Stopped | put "$SPEC/v1.yaml"
check "Stopped: phase Stopped" wait_until 20 status_is v1 'd["phase"]' Stopped
check "Stopped: our VMM exited" wait_until 5 pid_gone "$P2"
check "Stopped: the impostor still runs" kill -0 "$IMPOSTOR"
kill_bangerd
echo "==== test: restart while Stopped ====" >>"$T/bangerd.log"
start_bangerd "$SPEC" "$STATE" "${DARGS[@]}"
check "restart while Stopped: stays Stopped, impostor not adopted" \
	bash -c "sleep 1; [ \"\$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[\"phase\"])' '$STATUS/v1.status.json')\" = Stopped ] &&
		! grep -q 'adopted running VMM (pid $IMPOSTOR)' '$T/bangerd.log'"
rm "$SPEC/v1.yaml"
check "delete → status gone" wait_until 20 test ! -e "$STATUS/v1.status.json"
check "delete: the impostor still runs" kill -0 "$IMPOSTOR"
check "no request ever reached the impostor" bash -c "! grep -q 'reached me' '$T/impostor.log'"
left=$(leaks "$STATE")
check "nothing of the VM leaked: '$left'" test -z "$left"
check "bangerd exits cleanly" stop_bangerd
done_testing
