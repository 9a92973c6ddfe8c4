#!/bin/bash
# bench/launch_start.sh — cold start of N Running specs with the Firecracker
# double (tests/fc-double; Firecracker cannot run here), against a bare
# parallel spawn of the same N doubles measured in the same run.
#
#   bench/launch_start.sh [N] [BANGERD...]      (as root; default N=100, build/bangerd)
#
# For each bangerd binary given (e.g. an old build and this one, to compare
# before and after), and for --max-parallel-starts values in
# $LAUNCH_MAX_PARALLEL (default "4"; a bangerd whose --help does not know
# the flag runs once, without it): N spec files are written, bangerd is started, and
# the clock runs from its exec until `banger wait` sees every VM Running.
# Then bangerd is stopped, its doubles killed, the state removed.
# Baseline: a Python driver spawns the N doubles at once through the same
# wrapper and, one thread each, waits for its API socket and sends the same
# boot plan bangerd's driver sends (boot-source, rootfs drive, machine-config,
# eth0, InstanceStart); the clock runs until every InstanceStart is answered.
# No taps, disks, cgroups or nft rules: what the controller adds is all of it.
# Runs in a private network namespace (never on the host's network).
set -u
cd "$(dirname "$0")/.."
. tests/integration/lib.sh
private_netns "$0" "$@"

N=${1:-100}
shift || true
BINS=("$@")
[ ${#BINS[@]} -gt 0 ] || BINS=("$PWD/build/bangerd")
need_fc_double
W=$(test_tmpdir launch-bench)
trap 'for p in $(pgrep -f "firecracker-double.*--api-sock $W"); do kill -9 $p; done; sleep 0.3; cleanup_cgroups "$W/state"; rm -rf "$W"' EXIT
mkdir -p "$W/images"
truncate -s 8M "$W/images/rootfs.ext4"
echo kernel >"$W/images/vmlinux"
cat >"$W/firecracker" <<WR
#!/bin/sh
exec env FC_API_SPEC='$spec' /usr/bin/python3 '$SRC/tests/fc-double/firecracker-double' "\$@"
WR
chmod +x "$W/firecracker"

now_ms() { echo $(( ${EPOCHREALTIME/./} / 1000 )); }

baseline() {
	/usr/bin/python3 - "$W/firecracker" "$W/base" "$N" <<'PY'
import http.client, json, os, socket, subprocess, sys, threading, time
wrapper, base, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
os.makedirs(base, exist_ok=True)
open(base + "/vmlinux", "w").write("kernel\n")
with open(base + "/root.img", "w") as f:
    f.truncate(8 << 20)
class Conn(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=10)
        self.path = path
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(self.path)
plan = lambda i: [
    ("/boot-source", {"kernel_image_path": base + "/vmlinux", "boot_args": "console=ttyS0"}),
    ("/drives/rootfs", {"drive_id": "rootfs", "path_on_host": base + "/root.img",
                        "is_root_device": True, "is_read_only": False}),
    ("/machine-config", {"vcpu_count": 1, "mem_size_mib": 128}),
    ("/network-interfaces/eth0", {"iface_id": "eth0", "host_dev_name": "bgr-%08x" % i,
                                  "guest_mac": "06:00:ac:10:%02x:%02x" % (i >> 8, i & 255)}),
    ("/actions", {"action_type": "InstanceStart"}),
]
errors = []
def one(i, sock):
    deadline = time.time() + 300
    while not os.path.exists(sock):
        if time.time() > deadline:
            errors.append("%d: no socket" % i)
            return
        time.sleep(0.005)
    for path, body in plan(i):
        r = None
        for attempt in range(200):
            try:
                c = Conn(sock)
                c.request("PUT", path, json.dumps(body), {"Content-Type": "application/json"})
                r = c.getresponse()
                r.read()
                c.close()
                break
            except (ConnectionRefusedError, FileNotFoundError):
                time.sleep(0.005)
        if r is None or r.status != 204:
            errors.append("%d: %s -> %s" % (i, path, r.status if r else "no answer"))
            return
t0 = time.time()
procs, threads = [], []
for i in range(n):
    sock = "%s/%d.sock" % (base, i)
    log = open("%s/%d.log" % (base, i), "w")
    procs.append(subprocess.Popen([wrapper, "--api-sock", sock, "--id", "b%d" % i],
                                  stdout=log, stderr=log, cwd=base))
    t = threading.Thread(target=one, args=(i, sock))
    t.start()
    threads.append(t)
for t in threads:
    t.join()
ms = (time.time() - t0) * 1000
for p in procs:
    p.kill()
for p in procs:
    p.wait()
if errors:
    print("baseline errors:", errors[:5], file=sys.stderr)
    sys.exit(1)
print("%.0f" % ms)
PY
}

run_bangerd() { # run_bangerd BIN MAXPAR → ms to all Running
	local bin=$1 par=$2 names=() i extra=()
	rm -rf "$W/spec" "$W/state" "$W/status" "$W/base"
	mkdir -p "$W/spec" "$W/state" "$W/status"
	for i in $(seq 1 "$N"); do
		names+=("l$i")
		cat >"$W/spec/l$i.yaml" <<Y
apiVersion: banger/v1
kind: VM
metadata: {name: l$i}
spec:
  vmm: firecracker
  memoryMiB: 128
  kernel: {path: $W/images/vmlinux}
  rootfs: {path: $W/images/rootfs.ext4}
Y
	done
	"$bin" --help 2>&1 | grep -q -- --max-parallel-starts && extra=(--max-parallel-starts "$par")
	local t0 t1
	t0=$(now_ms)
	"$bin" --spec-dir "$W/spec" --status-dir "$W/status" --state-dir "$W/state" \
		--runtime-dir "$W/state/run" --image-dir "$W/images" \
		--firecracker-bin "$W/firecracker" "${extra[@]}" >"$W/bangerd.log" 2>&1 &
	local pid=$!
	sleep 0.05
	"$(dirname "$bin")/banger" --status-dir "$W/status" --spec-dir "$W/spec" wait "${names[@]}" \
		--for=phase=Running --timeout 600s >/dev/null 2>"$W/wait.err" ||
		{ echo "wait failed: $(tail -3 "$W/wait.err")" >&2; }
	t1=$(now_ms)
	kill -TERM "$pid"
	wait "$pid"
	for p in $(pgrep -f "firecracker-double.*--api-sock $W/state"); do kill -9 "$p"; done
	sleep 0.5
	for t in $(ip -o link show | grep -o 'bgr-[0-9a-f]*'); do ip link del "$t"; done
	cleanup_cgroups "$W/state"
	echo $((t1 - t0))
}

echo "== cold start of $N Running specs, Firecracker double (load: $(cut -d' ' -f1-3 /proc/loadavg))"
b=$(baseline)
echo "bare parallel spawn + boot plan of $N doubles: $b ms"
for bin in "${BINS[@]}"; do
	for par in ${LAUNCH_MAX_PARALLEL:-4}; do
		ms=$(run_bangerd "$bin" "$par")
		local_flag=1
		"$bin" --help 2>&1 | grep -q -- --max-parallel-starts || { par="n/a: one at a time"; local_flag=0; }
		fails=$(grep -c ': start failed: ' "$W/bangerd.log")
		echo "bangerd $bin (--max-parallel-starts $par): start → all $N Running: $ms ms ($(awk -v a="$ms" -v b="$b" 'BEGIN{printf "%.1f", a/b}')× baseline; $fails failed starts retried)"
		[ "$local_flag" = 1 ] || break
	done
done
rm -rf "$W/base"
b2=$(baseline)
echo "bare parallel spawn again (after): $b2 ms (load: $(cut -d' ' -f1-3 /proc/loadavg))"
