#!/bin/bash
# The two Firecracker test doubles (tests/fc-double: the Python one, checked
# against the Swagger file, and build/fc-double-lite, the C one the scale
# benchmarks run 1,000 of) answer the same requests the same way: one script
# of API calls — the boot plan bangerd sends, refusals of unknown paths and
# methods, malformed JSON, unknown fields, wrong types, the pre-boot and
# InstanceStart rules, snapshots — run against each, every answer's status
# checked, and the two answer sequences compared. Plus their CLI: unknown
# flags, a socket path that exists, SendCtrlAltDel → exit 0.
. "$(dirname "$0")/lib.sh"
private_netns "$0" "$@"
require_tools curl
FC_DOUBLE=python FC_DOUBLE_ASKED=python need_fc_double
pyspec=$spec
[ -x "$BIN/fc-double-lite" ] || skip_all "$BIN/fc-double-lite is not built (make all-tests)"

T=$(test_tmpdir fcdoubles)
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
	rm -rf "$T"
}
trap cleanup EXIT
truncate -s 8M "$T/root.img"
echo kernel >"$T/vmlinux"

# start_double KIND SOCK: run one double in the background; sets DPID.
start_double() {
	if [ "$1" = lite ]; then
		FC_DOUBLE_STOP_DELAY_MS=50 "$BIN/fc-double-lite" --api-sock "$2" --id t-1 2>>"$T/$1.err" &
	else
		FC_API_SPEC=$pyspec FC_DOUBLE_STOP_DELAY_MS=50 /usr/bin/python3 "$SRC/tests/fc-double/firecracker-double" \
			--api-sock "$2" --id t-1 2>>"$T/$1.err" &
	fi
	DPID=$!
	PIDS+=("$DPID")
	wait_until 10 test -S "$2"
}
# req SOCK METHOD PATH [BODY]: prints the HTTP status and the fault, if any.
req() {
	local out code
	out=$(curl -s --unix-socket "$1" -X "$2" "http://localhost$3" ${4:+-H 'Content-Type: application/json' --data-raw "$4"} -w '\n%{http_code}')
	code=${out##*$'\n'}
	echo "$code $2 $3"
}

# The script: "EXPECTED-STATUS METHOD PATH BODY" per line.
cat >"$T/script" <<EOF
200 GET /
400 PUT /actions {"action_type": "InstanceStart"}
400 GET /no-such-path
400 DELETE /
400 PUT /balloon {"amount_mib": 1}
400 PUT /boot-source {"kernel_image_path": "$T/vmlinux",
400 PUT /boot-source {"kernel_image_path": "$T/vmlinux", "bogus": 1}
400 PUT /boot-source {"boot_args": "x"}
400 PUT /boot-source {"kernel_image_path": "$T/missing"}
204 PUT /boot-source {"kernel_image_path": "$T/vmlinux", "boot_args": "console=ttyS0"}
400 PUT /drives/rootfs {"drive_id": "other", "path_on_host": "$T/root.img", "is_root_device": true}
400 PUT /drives/rootfs {"drive_id": "rootfs", "path_on_host": "$T/root.img", "is_root_device": "yes"}
400 PUT /actions {"action_type": "InstanceStart"}
204 PUT /drives/rootfs {"drive_id": "rootfs", "path_on_host": "$T/root.img", "is_root_device": true, "is_read_only": false}
400 PUT /drives/second {"drive_id": "second", "path_on_host": "$T/root.img", "is_root_device": true}
400 PUT /machine-config {"vcpu_count": 2.0, "mem_size_mib": 256}
400 PUT /machine-config {"vcpu_count": 33, "mem_size_mib": 256}
400 PUT /machine-config {"vcpu_count": 3, "mem_size_mib": 256, "smt": true}
204 PUT /machine-config {"vcpu_count": 2, "mem_size_mib": 256}
200 GET /machine-config
204 PUT /network-interfaces/eth0 {"iface_id": "eth0", "host_dev_name": "bgr-test"}
400 PUT /actions {"action_type": "Reboot"}
400 PATCH /vm {"state": "Paused"}
204 PUT /actions {"action_type": "InstanceStart"}
400 PUT /actions {"action_type": "InstanceStart"}
400 PUT /boot-source {"kernel_image_path": "$T/vmlinux"}
400 PUT /snapshot/create {"snapshot_path": "$T/KIND.state", "mem_file_path": "$T/KIND.mem"}
204 PATCH /vm {"state": "Paused"}
204 PUT /snapshot/create {"snapshot_path": "$T/KIND.state", "mem_file_path": "$T/KIND.mem"}
204 PATCH /vm {"state": "Resumed"}
200 GET /version
EOF

for kind in python lite; do
	start_double $kind "$T/$kind.sock"
	: >"$T/$kind.codes"
	bad=0
	while read -r want method path body; do
		got=$(req "$T/$kind.sock" "$method" "$path" "${body//KIND/$kind}")
		echo "$got" >>"$T/$kind.codes"
		[ "${got%% *}" = "$want" ] || { echo "# $kind: $method $path ${body:0:60}: got ${got%% *}, want $want"; bad=1; }
	done <"$T/script"
	check "$kind double: every answer as the API spec and Firecracker's rules say ($(wc -l <"$T/script") requests)" test $bad = 0
	check "$kind double: GET / after the script says Running" \
		bash -c "curl -s --unix-socket '$T/$kind.sock' http://localhost/ | grep -q '\"state\": *\"Running\"'"
	check "$kind double: the snapshot's memory file has mem_size_mib (256 MiB)" \
		test "$(stat -c %s "$T/$kind.mem")" = $((256 << 20))
	# A fresh process loads it (pre-boot, nothing configured) and runs.
	start_double $kind "$T/$kind-2.sock"
	got=$(req "$T/$kind-2.sock" PUT /snapshot/load "{\"snapshot_path\": \"$T/$kind.state\", \"mem_backend\": {\"backend_type\": \"File\", \"backend_path\": \"$T/$kind.mem\"}, \"resume_vm\": true}")
	check "$kind double: a fresh process loads the snapshot ($got)" test "${got%% *}" = 204
	got=$(req "$T/$kind-2.sock" PUT /snapshot/load "{\"snapshot_path\": \"$T/$kind.state\", \"mem_file_path\": \"$T/$kind.mem\"}")
	check "$kind double: ...but not twice ($got)" test "${got%% *}" = 400
	kill -9 "$DPID"
	wait "$DPID" 2>/dev/null
	# CLI: a socket path that exists, an unknown flag, SendCtrlAltDel.
	if [ $kind = lite ]; then cmd=("$BIN/fc-double-lite"); else cmd=(env FC_API_SPEC="$pyspec" /usr/bin/python3 "$SRC/tests/fc-double/firecracker-double"); fi
	check "$kind double: refuses a socket path that exists" bash -c "! timeout 10 $(printf '%q ' "${cmd[@]}") --api-sock '$T/$kind.sock' 2>/dev/null"
	check "$kind double: refuses an unknown flag" bash -c "! timeout 10 $(printf '%q ' "${cmd[@]}") --api-sock '$T/$kind-3.sock' --config-file x 2>/dev/null"
	pid=${PIDS[-2]}
	req "$T/$kind.sock" PUT /actions '{"action_type": "SendCtrlAltDel"}' >/dev/null
	wait "$pid"
	check "$kind double: SendCtrlAltDel → exit 0" test $? = 0
done
check "both doubles answered the script identically" cmp -s "$T/python.codes" "$T/lite.codes"
done_testing
