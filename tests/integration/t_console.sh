#!/bin/bash
# Consoles and capped logs with real QEMU guests (TCG) in a private netns:
#  - a guest that floods its console (kernel.args init=/usr/bin/yes) never
#    grows console.log (+ console.log.1) past --log-max-bytes, and bangerd
#    stays responsive meanwhile;
#  - `banger logs NAME`, --tail, --vmm, and -f across a VMM kill and restart;
#    (two TCG guests only: the machine these run on is small)
#  - `banger console NAME` driven through a pipe: a line typed into a guest
#    shell (kernel.args init=/bin/sh) is answered, Ctrl-] detaches, the log is
#    still written, guest control characters are escaped by `banger logs`;
#  - the console socket is 0600 and refuses a non-root peer;
#  - console logging survives kill -9 of bangerd (the next one reconnects);
#    what the guest writes while no bangerd is connected is measured (lost);
#  - deleting the VMs leaves no socket behind.
. "$(dirname "$0")/lib.sh"
private_netns "$0" "$@"
need_guest

guest_test_setup console
CAP=65536
DARGS=(--image-dir "$GUEST_DIR" --driver qemu --resync 30 --stop-timeout 5 --log-max-bytes 64K)
start_bangerd "$SPEC" "$STATE" "${DARGS[@]}"
B=("$BIN/banger" --spec-dir "$SPEC" --state-dir "$STATE")

# A guest without the test image's /init: no network, no readiness probe
# (Ready once the VMM runs), the given program as PID 1 on the console.
plain_yaml() {
	cat <<YAML
apiVersion: banger/v1
kind: VM
metadata:
  name: $1
spec:
  vmm: qemu
  memoryMiB: 128
  network: {enabled: false}
  kernel: {path: $GUEST_DIR/bzImage, args: "$2"}
  rootfs: {path: $GUEST_DIR/rootfs.ext4}
YAML
}
plain_yaml flood "init=/usr/bin/yes" | put "$SPEC/flood.yaml"
plain_yaml shell "init=/bin/sh" | put "$SPEC/shell.yaml"

vm_dir() { "${B[@]}" describe "$1" | awk '/VM dir:/ {print $3}'; }
fsize() { stat -c %s "$1" 2>/dev/null || echo 0; }

check "flood Running" wait_until 120 is_ready flood
check "shell Running" wait_until 120 is_ready shell
FD=$(vm_dir flood)
check "flood: console.log rotated at cap/2 (console.log.1 exists)" wait_until 180 test -f "$FD/console.log.1"
# A console client that never reads, attached to the flooding guest for the
# whole sample: bangerd must neither block on it nor stop logging.
FUID=$("${B[@]}" describe flood | awk '/UID:/ {print substr($2, 1, 8)}')
/usr/bin/python3 -c 'import socket,sys,time; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); time.sleep(15)' \
	"$STATE/run/$FUID.console" &
STALL=$!
# Sample for ~10 s while the guest keeps writing.
max=0 first_total=$(($(fsize "$FD/console.log") + $(fsize "$FD/console.log.1")))
grew=0 prev=$(md5sum <"$FD/console.log.1")
for _ in $(seq 100); do
	a=$(fsize "$FD/console.log") b=$(fsize "$FD/console.log.1")
	[ $((a + b)) -gt "$max" ] && max=$((a + b))
	[ "$a" -gt "$max" ] && max=$a
	cur=$(md5sum <"$FD/console.log.1")
	[ "$cur" != "$prev" ] && grew=$((grew + 1)) && prev=$cur
	sleep 0.1
done
echo "# flood: largest console.log + console.log.1 seen: $max bytes (cap $CAP); $grew rotations in 10 s"
check "flood: console.log + console.log.1 never past the cap ($max <= $CAP)" test "$max" -le "$CAP"
check "flood: the guest kept writing (rotated again while sampled)" test "$grew" -ge 1
wait "$STALL"
check "flood: a client that never read was attached (and the log kept rotating meanwhile)" \
	grep -q 'flood: console client attached' "$T/bangerd.log"
check "flood: bangerd dropped that client's backlog instead of blocking" \
	wait_until 10 grep -q 'flood: console client left; [0-9]* output bytes were dropped' "$T/bangerd.log"
check "flood: banger logs --tail 3 prints 3 lines of the flood" \
	bash -c "[ \"\$('$BIN/banger' --spec-dir '$SPEC' --state-dir '$STATE' logs flood --tail 3)\" = \"\$(printf 'y\ny\ny')\" ]"

# ---- banger logs ------------------------------------------------------------
L() { "$BIN/banger" --spec-dir "$SPEC" --state-dir "$STATE" logs "$@"; }
check "shell: the guest shell is up (its prompt or job-control notice on the console)" \
	wait_until 120 bash -c "'$BIN/banger' --spec-dir '$SPEC' --state-dir '$STATE' logs shell | grep -q 'Run /bin/sh as init process\|job control'"
check "logs shell: from the kernel's first line on (bangerd connected before the guest spoke)" \
	bash -c "'$BIN/banger' --spec-dir '$SPEC' --state-dir '$STATE' logs shell | head -1 | grep -q 'Linux version'"
check "logs shell --tail 1 = the last line of logs shell" test "$(L shell --tail 1)" = "$(L shell | tail -n 1)"
check "logs shell --tail 2 = the last 2 lines of logs shell" test "$(L shell --tail 2)" = "$(L shell | tail -n 2)"
check "logs: serial CR LF printed as LF (no CR)" bash -c "! '$BIN/banger' --spec-dir '$SPEC' --state-dir '$STATE' logs shell | grep -q \$'\\r'"
check "logs shell --vmm: prints the VMM log (exit 0)" "${B[@]}" logs shell --vmm
"${B[@]}" logs nosuch >/dev/null 2>"$T/nosuch.err"
check "logs of an unknown VM: exit 1" test $? = 1
check "logs of an unknown VM: says not found" grep -q 'vm nosuch: not found' "$T/nosuch.err"

# ---- banger console -----------------------------------------------------------
RUN=$STATE/run
sock=$(ls "$RUN"/*.console 2>/dev/null | head -1)
check "console sockets are mode 0600" bash -c "for s in '$RUN'/*.console; do [ \"\$(stat -c %a \"\$s\")\" = 600 ] || exit 1; done"
# The kernel checks the mode; bangerd also checks SO_PEERCRED. Here: a
# non-root user is refused by the socket's mode.
check "a non-root user cannot connect to a console socket" bash -c "! setpriv --reuid=65534 --regid=65534 --clear-groups /usr/bin/python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])' '$sock' 2>/dev/null"

# console_say NAME TEXT OUT EXPECT: attach, type TEXT once attached, wait
# (10 s at most) until the output shows EXPECT (grep -E), detach (Ctrl-]);
# returns the console's exit status. Waits on what happens, not fixed
# sleeps: under load a fixed 4 s was tight, unloaded 10 s per call was waste.
# The writes run in subshells: a console that died must not SIGPIPE the test.
console_say() {
	local fifo=$T/console.in w rc
	rm -f "$fifo" && mkfifo "$fifo"
	"${B[@]}" console "$1" <"$fifo" >"$3" 2>"$3.err" &
	local cpid=$!
	exec {w}>"$fifo"
	wait_until 10 grep -q 'escape character is' "$3.err"
	(printf '%s\n' "$2" >&"$w") 2>/dev/null
	wait_until 10 grep -qE -- "$4" "$3"
	(printf '\035' >&"$w") 2>/dev/null
	wait_until 10 pid_gone "$cpid" || kill "$cpid" 2>/dev/null
	wait "$cpid"
	rc=$?
	exec {w}>&-
	return $rc
}
console_say shell 'echo hel""lo-$((6*7))' "$T/c1.out" 'hello-42'
check "console: exit 0 after Ctrl-]" test $? = 0
check "console: the guest shell answered (hello-42)" grep -q 'hello-42' "$T/c1.out"
check "console: says how to detach" grep -q 'escape character is ^\]' "$T/c1.out.err"
check "console: the log is still written" bash -c "'$BIN/banger' --spec-dir '$SPEC' --state-dir '$STATE' logs shell | grep -q '^hello-42'"
console_say shell "printf 'A\\033[31mB\\n'" "$T/c2.out" $'A\033\\[31mB'
check "logs: guest control characters are escaped (\\x1b)" bash -c "'$BIN/banger' --spec-dir '$SPEC' --state-dir '$STATE' logs shell | grep -qF 'A\\x1b[31mB'"
check "console: raw bytes reach the terminal unescaped" grep -q $'A\033\\[31mB' "$T/c2.out"
check "console of a VM that does not exist: exit 1" bash -c "! '$BIN/banger' --spec-dir '$SPEC' --state-dir '$STATE' console nosuch </dev/null 2>/dev/null"

# ---- bangerd kill -9: logging resumes; output meanwhile is measured --------------
console_say shell 'i=0; while :; do echo tick-$i; i=$((i+1)); sleep 1; done &' "$T/c3.out" 'tick-[0-9]'
check "ticker runs (console.log shows tick-2)" wait_until 30 bash -c "'$BIN/banger' --spec-dir '$SPEC' --state-dir '$STATE' logs shell | grep -q '^tick-2'"
shellpid=$(vm_pid shell)
kill -9 "$BANGERD_PID"
wait "$BANGERD_PID" 2>/dev/null
BANGERD_PID=
last_before=$("${B[@]}" logs shell | grep -o '^tick-[0-9]*' | tail -1)
sleep 5
start_bangerd "$SPEC" "$STATE" "${DARGS[@]}"
check "after bangerd kill -9: shell adopted (same pid)" wait_until 60 bash -c ". $SRC/tests/integration/lib.sh; STATUS=$STATUS; [ \"\$(vm_pid shell)\" = $shellpid ]"
check "after bangerd restart: console.log gets new ticks (reconnected)" wait_until 30 bash -c "
	'$BIN/banger' --spec-dir '$SPEC' --state-dir '$STATE' logs shell | grep -o '^tick-[0-9]*' | tail -1 |
	awk -F- -v b='${last_before#tick-}' '{ exit !(\$2 > b + 3) }'"
ticks=$("${B[@]}" logs shell | grep -o '^tick-[0-9]*' | cut -d- -f2)
missing=$(echo "$ticks" | awk 'NR > 1 && $1 != prev + 1 { m += $1 - prev - 1 } { prev = $1 } END { print m + 0 }')
echo "# while bangerd was down (~5 s) the guest printed ticks that are not in console.log: $missing missing (QEMU discards serial output with no client)"
check "output while no bangerd was connected is lost, not replayed late ($missing ticks missing)" test "$missing" -ge 2
console_say shell 'echo again-$((7*6))' "$T/c4.out" 'again-42'
check "console works after the bangerd restart" grep -q 'again-42' "$T/c4.out"
FD=$(vm_dir flood)
a=$(fsize "$FD/console.log") b=$(fsize "$FD/console.log.1")
check "flood after the restart: still within the cap ($((a + b)) <= $CAP)" test $((a + b)) -le "$CAP"

# ---- logs -f across a VMM kill -9 and restart ------------------------------------
"${B[@]}" logs shell -f >"$T/follow.out" 2>"$T/follow.err" &
FOLLOW=$!
wait_until 10 grep -q '^tick-' "$T/follow.out"
pid=$(vm_pid shell)
kill -9 "$pid"
check "shell restarted after its VMM was killed" wait_until 180 bash -c ". $SRC/tests/integration/lib.sh; STATUS=$STATUS; is_ready shell && [ \"\$(vm_pid shell)\" != $pid ]"
check "logs -f printed both boots (two 'Linux version' lines)" wait_until 60 bash -c "[ \$(grep -c 'Linux version' '$T/follow.out') -ge 2 ]"
check "logs -f printed the first boot's ticks before the second boot" bash -c "grep -n 'tick-\|Linux version' '$T/follow.out' | awk -F: '/Linux version/ {l=\$1} /tick-/ {t=\$1} END {exit !(t < l)}'"
kill "$FOLLOW" 2>/dev/null
wait "$FOLLOW" 2>/dev/null

# ---- deletion ----------------------------------------------------------------------
rm -f "$SPEC/flood.yaml" "$SPEC/shell.yaml"
check "all VMs deleted" wait_until 60 bash -c "[ -z \"\$(ls '$STATE/vms' 2>/dev/null)\" ]"
check "no console or serial socket left" bash -c "[ -z \"\$(ls '$RUN' | grep -E '\\.(console|serial|sock)\$')\" ]"
check "nothing leaked" test -z "$(leaks "$STATE")"
check "bangerd exits cleanly (exit 0; under SANITIZE=1 also no leak report)" stop_bangerd
check "no sanitizer report in bangerd's log" bash -c "! grep -q 'Sanitizer\|runtime error' '$T/bangerd.log'"
[ "$_failed" -gt 0 ] && grep -v 'kept its tail' "$T/bangerd.log" | tail -n 40 | sed 's/^/# /'
done_testing
