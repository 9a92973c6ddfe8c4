#!/bin/bash
# t_firecracker_driver.sh — vmm_firecracker_driver (through build/tests/fc-tool)
# against tests/fc-double/firecracker-double, a test double of the firecracker
# binary that validates every API call against firecracker-api.yaml.
# Launch/configure order, find, describe, graceful stop, kill, and clean
# failure when Firecracker refuses a call or dies early.
set -u
. "$(dirname "$0")/lib.sh"
SRC=${BANGER_SRC_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${BANGER_BIN_DIR:-$SRC/build}
TOOL=$BIN/tests/fc-tool
DOUBLE=$SRC/tests/fc-double/firecracker-double
PY=/usr/bin/python3

spec=${FC_API_SPEC:-}
if [ -z "$spec" ]; then
	# main checkout: <root>/main + <root>/shared; worktrees: <root>/wt/<name>
	for cand in "$SRC/../shared/reference/firecracker-api.yaml" \
		"$SRC/../../shared/reference/firecracker-api.yaml"; do
		[ -f "$cand" ] && spec=$(realpath "$cand") && break
	done
fi
if [ -z "$spec" ] || [ ! -f "$spec" ]; then
	echo "skip: firecracker-api.yaml not found (set FC_API_SPEC)"
	exit 77
fi
if ! $PY -c 'import yaml' 2>/dev/null; then
	echo "skip: python3-yaml is not installed"
	exit 77
fi
command -v curl >/dev/null || { echo "skip: curl is not installed"; exit 77; }
[ -x "$TOOL" ] || { echo "not ok 1 - $TOOL not built"; exit 1; }

tmp=$(mktemp -d /tmp/banger-fc.XXXXXX) # short: socket paths must fit sun_path
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
	# anything still serving a socket under our private dir was started by us
	for p in $(pgrep -f "firecracker-double --api-sock $tmp/" 2>/dev/null); do
		kill -9 "$p" 2>/dev/null
	done
	rm -rf "$tmp"
}
trap cleanup EXIT

nok() { not_ok "$@"; }

# The driver starts firecracker with a minimal environment and cwd = vm dir,
# as it would the real binary; these wrappers give the double its settings.
mkwrapper() { # mkwrapper NAME [ENV=VALUE...]
	local w=$tmp/$1; shift
	{
		echo '#!/bin/sh'
		echo "exec env FC_API_SPEC='$spec' FC_DOUBLE_REQUEST_LOG=requests.log $* \\"
		echo "	$PY '$DOUBLE' \"\$@\""
	} >"$w"
	chmod +x "$w"
}
mkwrapper firecracker
mkwrapper firecracker-reject "FC_DOUBLE_REJECT='PUT /machine-config'"

mkdir -p "$tmp/img"
printf 'kernel' >"$tmp/img/vmlinux"
printf 'initrd' >"$tmp/img/initrd"

mkvm() { # mkvm NAME: vm dir with its disks
	mkdir -p "$tmp/$1"
	truncate -s 1M "$tmp/$1/root.img" "$tmp/$1/work.img"
}

launch() { # launch FC_BIN NAME [extra fc-tool args]: prints "pid start"
	local fc=$1 name=$2; shift 2
	"$TOOL" --fc-bin "$fc" launch --name "$name" --id "id-$name" --dir "$tmp/$name" \
		--sock "$tmp/$name/api.sock" --log "$tmp/$name/vmm.log" \
		--kernel "$tmp/img/vmlinux" --rootfs "$tmp/$name/root.img" "$@"
}

# Exited: no /proc entry, or a zombie its new parent (init) has not reaped yet.
gone() { [ ! -d "/proc/$1" ] || grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }

# --- availability ----------------------------------------------------------
check "available with the double as firecracker" "$TOOL" --fc-bin "$tmp/firecracker" available
if "$TOOL" --fc-bin "$tmp/no-such-firecracker" available; then
	nok "unavailable without a binary"
else ok "unavailable without a binary"; fi

# --- full launch -----------------------------------------------------------
mkvm vm1
sock=$tmp/vm1/api.sock
if out=$(launch "$tmp/firecracker" vm1 --console "$tmp/vm1/console.log" --initrd "$tmp/img/initrd" \
	--work "$tmp/vm1/work.img" --tap tap-vm1 --mac 02:fc:00:00:00:01 --ip 10.9.0.2 \
	--gw 10.9.0.1 --prefix 24 --vcpus 2 --mem 256 --args "quiet" 2>"$tmp/vm1/tool.err"); then
	ok "launch with initrd, work disk, network"
else
	nok "launch with initrd, work disk, network"
	sed 's/^/# /' "$tmp/vm1/tool.err" "$tmp/vm1/vmm.log" 2>/dev/null
fi
read -r pid st <<<"${out:-0 0}"
[ "$pid" -gt 0 ] && pids+=("$pid")
check "process runs and serves the socket" bash -c "kill -0 $pid && [ -S '$sock' ]"

# The double logged every call; check the sequence and the bodies.
if $PY - "$tmp/vm1/requests.log" "$tmp" >"$tmp/vm1/order.out" 2>&1 <<'EOF'; then
import json, sys
log, tmp = sys.argv[1], sys.argv[2]
reqs = [json.loads(l) for l in open(log)]
got = [(r["method"], r["path"]) for r in reqs]
want = [("PUT", "/boot-source"), ("PUT", "/drives/rootfs"), ("PUT", "/drives/work"),
        ("PUT", "/machine-config"), ("PUT", "/network-interfaces/eth0"), ("PUT", "/actions")]
assert got == want, "order: %s" % got
assert all(r["status"] == 204 for r in reqs), "statuses: %s" % [r["status"] for r in reqs]
b = [r["body"] for r in reqs]
assert b[0]["kernel_image_path"] == tmp + "/img/vmlinux", b[0]
assert b[0]["initrd_path"] == tmp + "/img/initrd", b[0]
args = b[0]["boot_args"]
assert args.startswith("console=ttyS0 reboot=k panic=-1 root=/dev/vda rw "), args
assert "i8042.noaux" in args and "pci=off" in args, args
assert args.endswith("ip=10.9.0.2::10.9.0.1:255.255.255.0:vm1:eth0:off quiet"), args
assert b[1] == {"drive_id": "rootfs", "path_on_host": tmp + "/vm1/root.img",
                "is_root_device": True, "is_read_only": False}, b[1]
assert b[2] == {"drive_id": "work", "path_on_host": tmp + "/vm1/work.img",
                "is_root_device": False, "is_read_only": False}, b[2]
assert b[3] == {"vcpu_count": 2, "mem_size_mib": 256}, b[3]
assert b[4] == {"iface_id": "eth0", "host_dev_name": "tap-vm1",
                "guest_mac": "02:fc:00:00:00:01"}, b[4]
assert b[5] == {"action_type": "InstanceStart"}, b[5]
EOF
	ok "double recorded the full configuration in order, all 204"
else
	nok "double recorded the full configuration in order, all 204"
	sed 's/^/# /' "$tmp/vm1/order.out"
fi
check "stdout (guest console) goes to console_path, stderr to log_path" \
	bash -c "[ -f '$tmp/vm1/console.log' ] && grep -q 'serving the Firecracker API' '$tmp/vm1/vmm.log'"

found=$("$TOOL" find "$sock" 2>/dev/null)
check "find() returns the same pid and start time" [ "$found" = "$pid $st" ]
desc=$("$TOOL" describe "$sock" 2>/dev/null)
check "describe() shows Running and the vm id" \
	bash -c "grep -q '\"state\":\"Running\"' <<<'$desc' && grep -q '\"id\":\"id-vm1\"' <<<'$desc'"

check "launched(): 1 for the booted VMM, asked of its own pid" \
	[ "$("$TOOL" launched "$sock" "$pid" "$st" 2>/dev/null)" = 1 ]
if "$TOOL" launched "$sock" 1 0 >/dev/null 2>"$tmp/vm1/peer.err"; then
	nok "launched(): refused when the socket's server is not the given pid"
else ok "launched(): refused when the socket's server is not the given pid"; fi
check "... saying another process serves it (SO_PEERCRED), nothing sent" \
	grep -q "served by another process than pid 1" "$tmp/vm1/peer.err"
check "graceful stop (SendCtrlAltDel) accepted" "$TOOL" stop "$sock"
check "process exits after the stop request" "$TOOL" wait "$pid" "$st" 5000
check "process is gone" gone "$pid"
if "$TOOL" find "$sock" >/dev/null 2>&1; then nok "find() after exit: nothing"; else
	ok "find() after exit: nothing"; fi

# --- relaunch over the stale socket, then kill --------------------------------
if out=$(launch "$tmp/firecracker" vm1 2>"$tmp/vm1/tool2.err"); then
	ok "relaunch (minimal config) over the stale socket"
else
	nok "relaunch (minimal config) over the stale socket"
	sed 's/^/# /' "$tmp/vm1/tool2.err"
fi
read -r pid2 st2 <<<"${out:-0 0}"
[ "$pid2" -gt 0 ] && pids+=("$pid2")
check "kill() after identity check" "$TOOL" kill "$pid2" "$st2"
check "killed process is gone" "$TOOL" wait "$pid2" "$st2" 3000
if "$TOOL" kill "$pid2" "$st2" 2>/dev/null; then nok "kill() of a gone process fails"; else
	ok "kill() of a gone process fails"; fi

# --- Firecracker refuses a call: clean failure --------------------------------
mkvm vm2
if launch "$tmp/firecracker-reject" vm2 --vcpus 2 --mem 256 >/dev/null 2>"$tmp/vm2/tool.err"; then
	nok "launch fails when machine-config is refused"
else ok "launch fails when machine-config is refused"; fi
check "error carries the fault_message" \
	grep -q "PUT /machine-config failed: HTTP 400: (firecracker-double) PUT /machine-config refused" \
	"$tmp/vm2/tool.err"
check "no socket left behind" bash -c "[ ! -e '$tmp/vm2/api.sock' ]"
# [f]: the pattern must not match the checking shell's own command line
check "no process left behind" bash -c "! pgrep -f '[f]irecracker-double --api-sock $tmp/vm2/' >/dev/null"
check "nothing after the refused call (no InstanceStart)" \
	bash -c "tail -n 1 '$tmp/vm2/requests.log' | grep -q '\"path\": \"/machine-config\".*\"status\": 400'"

# --- a file Firecracker cannot open: the double checks, the driver reports -----
mkvm vm3
rm "$tmp/vm3/root.img"
launch "$tmp/firecracker" vm3 >/dev/null 2>"$tmp/vm3/tool.err"
rc=$?
check "launch fails when the root disk is missing" [ "$rc" -ne 0 ]
check "... naming the drive call and the file" \
	grep -q "PUT /drives/rootfs failed: HTTP 400: .*$tmp/vm3/root.img" "$tmp/vm3/tool.err"
check "... leaving no socket" bash -c "[ ! -e '$tmp/vm3/api.sock' ]"

# --- firecracker dies before serving its socket ------------------------------
mkvm vm4
launch /bin/false vm4 >/dev/null 2>"$tmp/vm4/tool.err"
rc=$?
check "launch fails when firecracker exits at once" [ "$rc" -ne 0 ]
check "... saying it exited before its socket appeared" \
	grep -q "exited (status 1) before its API socket" "$tmp/vm4/tool.err"

# --- the double really validates (raw requests, no driver) ---------------------
mkdir -p "$tmp/raw"
(cd "$tmp/raw" && exec "$tmp/firecracker" --api-sock "$tmp/raw/api.sock" --id raw \
	>"$tmp/raw/out.log" 2>&1) &
rawpid=$!
pids+=("$rawpid")
for _ in $(seq 100); do [ -S "$tmp/raw/api.sock" ] && break; sleep 0.05; done
req() { # req METHOD PATH [BODY]: prints "<status> <body>"
	local args=(-s -o "$tmp/raw/resp" -w '%{http_code}' --unix-socket "$tmp/raw/api.sock" -X "$1")
	[ $# -ge 3 ] && args+=(-H 'Content-Type: application/json' -d "$3")
	local code
	code=$(curl "${args[@]}" "http://localhost$2")
	echo "$code $(cat "$tmp/raw/resp")"
}
expect() { # expect "description" STATUS REGEX METHOD PATH [BODY]
	local d=$1 want=$2 re=$3; shift 3
	local got
	got=$(req "$@")
	if [[ "$got" == "$want "* ]] && [[ "$got" =~ $re ]]; then ok "$d"; else
		nok "$d"; echo "#   got: $got"; fi
}
expect "wrong type (vcpu_count string) -> 400" 400 'fault_message.*vcpu_count' \
	PUT /machine-config '{"vcpu_count": "two", "mem_size_mib": 128}'
expect "missing required field -> 400" 400 'fault_message.*missing required field .vcpu_count' \
	PUT /machine-config '{"mem_size_mib": 128}'
expect "vcpu_count above the spec maximum -> 400" 400 'maximum' \
	PUT /machine-config '{"vcpu_count": 33, "mem_size_mib": 128}'
expect "enum violation (action_type) -> 400" 400 'not one of' \
	PUT /actions '{"action_type": "Reboot"}'
expect "unknown field -> 400" 400 'unknown field' \
	PUT /boot-source "{\"kernel_image_path\": \"$tmp/img/vmlinux\", \"kernel_args\": \"x\"}"
expect "nested \$ref checked (rate_limiter.bandwidth needs size)" 400 'missing required field .size' \
	PUT /drives/rootfs "{\"drive_id\": \"rootfs\", \"path_on_host\": \"$tmp/vm1/root.img\", \"is_root_device\": true, \"rate_limiter\": {\"bandwidth\": {\"refill_time\": 100}}}"
expect "path id differs from body id -> 400" 400 'does not match' \
	PUT /drives/rootfs "{\"drive_id\": \"other\", \"path_on_host\": \"$tmp/vm1/root.img\", \"is_root_device\": true}"
expect "InstanceStart without boot source -> 400" 400 'kernel' \
	PUT /actions '{"action_type": "InstanceStart"}'
expect "valid machine-config -> 204" 204 '' \
	PUT /machine-config '{"vcpu_count": 2, "mem_size_mib": 128, "smt": false}'
expect "endpoint the double does not implement -> 400, says so" 400 'does not implement' \
	PUT /vsock '{"guest_cid": 3, "uds_path": "v.sock"}'
expect "path not in the spec -> 400" 400 'Invalid request' GET /no-such-thing
expect "InstanceInfo before start" 200 '"state": "Not started"' GET /
rawst=$(awk '{print $22}' "/proc/$rawpid/stat" 2>/dev/null)
# the wrapper execs, so $rawpid is the double that listens
check "launched(): 0 for a VMM that never got InstanceStart (a cut-short launch)" \
	[ "$("$TOOL" launched "$tmp/raw/api.sock" "$rawpid" "$rawst" 2>/dev/null)" = 0 ]
kill "$rawpid" 2>/dev/null

if $PY "$DOUBLE" --api-sock "$tmp/raw/x.sock" --bogus-flag >/dev/null 2>&1; then
	nok "the double rejects unknown flags"
else ok "the double rejects unknown flags"; fi

done_testing
