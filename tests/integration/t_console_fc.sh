#!/bin/bash
# Log caps for files a VMM appends to itself, with the Firecracker driver
# against the spec-faithful double (tests/fc-double: Firecracker cannot run
# here). Firecracker writes the guest serial to its stdout (console.log) and
# its own log to stderr (vmm.log), both O_APPEND files opened at spawn, so
# bangerd can only trim them in place (util/logcap.h log_trim_tail).
# The double does not print much, so the wrapper below adds a writer that
# floods both fds for as long as the double lives: the same O_APPEND file
# descriptions the VMM holds, the same situation as a chatty VMM.
# Also: `banger logs --vmm` and `banger console` on a VM without a serial
# socket (a clear error).
. "$(dirname "$0")/lib.sh"
private_netns "$0" "$@"

need_fc_double

fc_test_setup fcc
STATUS=$SPEC
FC_LOG_NOISE="kept its tail"
# The flooding writer stops when the double ($$ after exec) is gone.
cat >"$T/firecracker" <<W
#!/bin/bash
( while kill -0 \$\$ 2>/dev/null; do
	for i in \$(seq 200); do echo "vmm-noise \$i" >&2; echo "console-noise \$i"; done
  done ) &
exec env FC_API_SPEC='$spec' $(fc_double_cmd) "\$@"
W
chmod +x "$T/firecracker"
cat >"$SPEC/fc-1.yaml" <<YAML
apiVersion: banger/v1
kind: VM
metadata: {name: fc-1}
spec:
  vmm: firecracker
  memoryMiB: 128
  network: {enabled: false}
  kernel: {path: $T/images/vmlinux}
  rootfs: {path: $T/images/rootfs.ext4}
YAML
CAP=16384
start_bangerd "$SPEC" "$STATE" --image-dir "$T/images" --firecracker-bin "$T/firecracker" \
	--stop-timeout 5 --log-max-bytes 16K
check "fc-1 Running" wait_until 120 status_is fc-1 'd["phase"]' Running
vmdir=$(ls -d "$STATE"/vms/*)
fsize() { stat -c %s "$1" 2>/dev/null || echo 0; }
check "vmm.log reached the cap at least once (trimmed)" wait_until 60 bash -c "grep -q 'vmm.log passed $CAP bytes' '$T/bangerd.log'"
max_v=0 max_c=0 trims0=$(grep -c 'passed' "$T/bangerd.log")
for _ in $(seq 100); do
	v=$(fsize "$vmdir/vmm.log") c=$(fsize "$vmdir/console.log")
	[ "$v" -gt "$max_v" ] && max_v=$v
	[ "$c" -gt "$max_c" ] && max_c=$c
	sleep 0.1
done
trims=$(($(grep -c 'passed' "$T/bangerd.log") - trims0))
echo "# largest vmm.log seen $max_v, console.log $max_c (cap $CAP); $trims trims in 10 s"
# The bound for VMM-written files is the cap plus what the writer appends
# before the loop handles the inotify event: allow one pipe-sized burst.
check "vmm.log stays near the cap while flooded ($max_v <= cap + 64K)" test "$max_v" -le $((CAP + 65536))
check "console.log (Firecracker stdout) too ($max_c <= cap + 64K)" test "$max_c" -le $((CAP + 65536))
check "trimming keeps up (trimmed again while sampled)" test "$trims" -ge 2
check "the kept part is the newest output, whole lines at the end" bash -c "tail -n 1 '$vmdir/vmm.log' | grep -q 'noise'"
check "banger logs --vmm prints the VMM log" bash -c "'$BIN/banger' --spec-dir '$SPEC' --state-dir '$STATE' logs fc-1 --vmm | grep -q noise"
"$BIN/banger" --spec-dir "$SPEC" --state-dir "$STATE" console fc-1 </dev/null >/dev/null 2>"$T/con.err"
check "console on a Firecracker VM: exit 1" test $? = 1
check "console on a Firecracker VM: says there is no serial socket" grep -q 'no serial socket' "$T/con.err"
rm "$SPEC/fc-1.yaml"
check "delete → status gone" wait_until 20 test ! -e "$STATUS/fc-1.status.json"
check "the flooding writer is gone with its VMM" wait_until 10 bash -c "! pgrep -f '^/bin/bash $T/firecracker' >/dev/null"
done_testing
