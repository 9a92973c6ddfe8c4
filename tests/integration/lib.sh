# lib.sh — shared helpers for integration tests (sourced, bash).
# TAP output: ok/not_ok/check; wait_until polls a condition with a timeout;
# start_bangerd/stop_bangerd run the real daemon against temp dirs.
set -u
BIN=${BANGER_BIN_DIR:-$PWD/build}
SRC=${BANGER_SRC_DIR:-$PWD}
_n=0
_failed=0

# Re-exec the calling script in a private network namespace (bangerd creates
# bridges and taps, and sweeps bgr-* taps it does not know: never on the
# host's own network). Call first thing: private_netns "$0" "$@"
private_netns() {
	if [ -z "${BANGER_IN_NETNS:-}" ]; then
		BANGER_IN_NETNS=1 exec unshare -n -- bash "$@"
	fi
	ip link set lo up
}

# Temp dirs for tests that run bangerd. A spec dir must pass bangerd's trust
# rule (docs/operations.md, "Spec dir trust"): no parent writable by group or
# others, so never under /tmp (1777, refused as sshd refuses it). This base
# is root's and 0755. test_tmpdir TAG prints a new 0700 dir in it.
TEST_TMP=${BANGER_TEST_TMP:-/var/lib/banger-tests}
test_tmpdir() {
	install -d -m 0755 -o root -g root "$TEST_TMP" && mktemp -d "$TEST_TMP/banger-t-$1.XXXXXX"
}

ok() { _n=$((_n + 1)); echo "ok $_n - $*"; }
not_ok() { _n=$((_n + 1)); _failed=$((_failed + 1)); echo "not ok $_n - $*"; }
# check DESCRIPTION COMMAND...: ok when the command succeeds.
check() {
	local desc=$1
	shift
	if "$@"; then ok "$desc"; else not_ok "$desc"; fi
}
skip_all() { echo "1..0 # skip $*"; echo "$*"; exit 77; }
# require_root WHY / require_tools TOOL...: skip the whole test, saying why.
require_root() { [ "$(id -u)" = 0 ] || skip_all "needs root ($*)"; }
require_tools() {
	local t
	for t in "$@"; do command -v "$t" >/dev/null || skip_all "missing tool: $t"; done
}
# The number of checks that failed so far (for scripts that add context).
failed_count() { echo "$_failed"; }
done_testing() {
	echo "1..$_n"
	[ "$_failed" -eq 0 ]
}

# wait_until SECONDS COMMAND...: poll every 50 ms.
wait_until() {
	local deadline=$((SECONDS + $1))
	shift
	while ! "$@" 2>/dev/null; do
		[ $SECONDS -ge "$deadline" ] && return 1
		sleep 0.05
	done
}

# instance_of STATE: the instance tag bangerd keeps in STATE/banger.db
# (host objects carry it); cgroup_parent STATE: its VM cgroups' parent.
instance_of() {
	/usr/bin/python3 -c 'import sqlite3, sys
print(sqlite3.connect(sys.argv[1]).execute("select value from meta where key = ?", ("instance",)).fetchone()[0])' "$1/banger.db"
}
cgroup_parent() { echo "banger-$(instance_of "$1")"; }
# cleanup_cgroups STATE: remove the (empty) VM cgroups and the parent of the
# instance whose state dir is STATE — a test that kills its VMMs itself
# leaves them, bangerd's teardown never ran. Only that instance's.
cleanup_cgroups() {
	[ -n "${1:-}" ] && [ -f "$1/banger.db" ] || return 0
	local g d
	g=$(cgroup_parent "$1" 2>/dev/null) || return 0
	[ -n "$g" ] && [ "$g" != banger- ] || return 0
	for d in /sys/fs/cgroup/*/"$g" /sys/fs/cgroup/"$g"; do
		[ -d "$d" ] || continue
		rmdir "$d"/*/ 2>/dev/null
		rmdir "$d" 2>/dev/null
	done
	return 0
}

# json FILE EXPR: evaluate a python expression on the JSON document `d`.
json() { /usr/bin/python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }

# A valid spec: vm_yaml NAME [STATE] [MEMORY] [EXTRA-SPEC-LINES]
vm_yaml() {
	cat <<YAML
apiVersion: banger/v1
kind: VM
metadata:
  name: $1
spec:
  state: ${2:-Stopped}
  memoryMiB: ${3:-256}
  kernel:
    path: /var/lib/banger/images/bzImage
  rootfs:
    path: /var/lib/banger/images/rootfs.ext4
${4:-}
YAML
}

# Write a file atomically, as editors and git-sync do.
put() { local tmp; tmp=$(dirname "$1")/.put.$$.tmp; cat >"$tmp" && mv -f "$tmp" "$1"; }

BANGERD_PID=
# start_bangerd SPEC STATE [EXTRA ARGS...]; status in $STATUS, log in $T/bangerd.log.
# Every directory is named: the defaults are the host's own (/etc, /run, /var/lib).
start_bangerd() {
	local spec=$1 state=$2
	shift 2
	"$BIN/bangerd" --spec-dir "$spec" --status-dir "${STATUS:?set STATUS}" --state-dir "$state" \
		--runtime-dir "$state/run" \
		--log-level debug "$@" >>"$T/bangerd.log" 2>&1 &
	BANGERD_PID=$!
}
stop_bangerd() {
	[ -n "$BANGERD_PID" ] || return 0
	kill -TERM "$BANGERD_PID" 2>/dev/null
	local rc=0
	wait "$BANGERD_PID" || rc=$?
	BANGERD_PID=
	return $rc
}
# status_field NAME EXPR (status dir $STATUS)
status_field() { json "$STATUS/$1.status.json" "$2"; }
status_is() { [ "$(status_field "$1" "$2")" = "$3" ]; }

# The Firecracker test double a test runs (tests/fc-double/README.md):
# FC_DOUBLE=python (default; validates bodies against the Swagger file) or
# FC_DOUBLE=lite (build/fc-double-lite, the C one the scale benchmarks use:
# the same operations and state rules, field tables instead of the Swagger
# file). Scripts that go through fc_double_cmd run against either.
FC_DOUBLE_ASKED=${FC_DOUBLE:-}
FC_DOUBLE=${FC_DOUBLE:-python}
# fc_double_cmd: the command line (quoted for a wrapper script) of the double.
fc_double_cmd() {
	case $FC_DOUBLE in
	lite) echo "'$(realpath "$BIN")/fc-double-lite'" ;;
	*) echo "/usr/bin/python3 '$(realpath "$SRC")/tests/fc-double/firecracker-double'" ;;
	esac
}
# The process-name pattern of either double (pgrep -f, extended regex).
FC_DOUBLE_PAT='(firecracker-double|fc-double-lite)'

# need_fc_double: the Firecracker test double needs the published API spec
# (FC_API_SPEC, or shared/reference beside the checkout) and python3-yaml,
# or with FC_DOUBLE=lite the built build/fc-double-lite; sets $spec to the
# spec's path, or skips the test saying which is missing. Without the spec
# (a clone elsewhere, as CI's may be) the test runs against the C double,
# which has the spec's routes and fields compiled in, and says so — unless
# FC_DOUBLE (or FC_DOUBLE_ASKED) asked for the Python one.
need_fc_double() {
	spec=${FC_API_SPEC:-}
	local cand
	for cand in "$SRC/../shared/reference/firecracker-api.yaml" \
		"$SRC/../../shared/reference/firecracker-api.yaml"; do
		[ -z "$spec" ] && [ -f "$cand" ] && spec=$(realpath "$cand")
	done
	if [ -z "$spec" ] && [ -z "$FC_DOUBLE_ASKED" ] && [ -x "$BIN/fc-double-lite" ]; then
		echo "# firecracker-api.yaml not found (FC_API_SPEC, or shared/reference beside the checkout): against the C double, fc-double-lite"
		FC_DOUBLE=lite
	fi
	case $FC_DOUBLE in
	lite)
		[ -x "$BIN/fc-double-lite" ] || skip_all "FC_DOUBLE=lite but $BIN/fc-double-lite is not built (make all-tests)"
		spec=${spec:-/nonexistent} # the lite double has its route table compiled in
		return 0 ;;
	python) ;;
	*) skip_all "FC_DOUBLE=$FC_DOUBLE: expected python or lite" ;;
	esac
	[ -n "$spec" ] || skip_all "firecracker-api.yaml not found (set FC_API_SPEC)"
	/usr/bin/python3 -c 'import yaml' 2>/dev/null || skip_all "python3-yaml is not installed"
}

# fc_test_setup TAG [jail]: temp dirs for a bangerd test against the Firecracker
# double (T, SPEC, STATE; the caller sets STATUS and writes $T/firecracker,
# e.g. with fc_double_wrapper), fake images in $T/images, and an EXIT trap
# (fc_test_cleanup) that stops bangerd, kills this test's doubles, removes
# this instance's cgroups and T. With "jail": JAIL=$T/jail too, and the
# cleanup also finds doubles jailed under it (a jailed double's command line
# holds only in-jail paths, so it is known by the jail mounts it sees).
# A test that starts processes of its own defines fc_test_cleanup_hook (run
# first); FC_LOG_NOISE, a grep -E pattern, keeps a chatty bangerd log's
# repeated lines out of the tail printed when a check failed.
fc_test_setup() {
	T=$(test_tmpdir "$1") || exit 1
	SPEC=$T/specs
	STATE=$T/state
	JAIL=
	[ "${2:-}" = jail ] && JAIL=$T/jail
	mkdir -p "$SPEC" "$STATE" "$T/images" ${JAIL:+"$JAIL"}
	truncate -s 8M "$T/images/rootfs.ext4"
	echo kernel >"$T/images/vmlinux"
	trap fc_test_cleanup EXIT
}
fc_test_cleanup() {
	# Without T the patterns below would match every helper's doubles.
	[ -n "${T:-}" ] || return 0
	declare -F fc_test_cleanup_hook >/dev/null && fc_test_cleanup_hook
	stop_bangerd
	local p
	for p in $(pgrep -f "$FC_DOUBLE_PAT.*--api-sock $T" 2>/dev/null); do kill -9 "$p"; done
	if [ -n "${JAIL:-}" ]; then
		for p in $(pgrep -f "$FC_DOUBLE_PAT" 2>/dev/null); do
			[ "$(readlink "/proc/$p/cwd" 2>/dev/null)" = / ] &&
				grep -qF "$JAIL/" "/proc/$p/mountinfo" 2>/dev/null && kill -9 "$p"
		done
	fi
	if [ "$_failed" -gt 0 ]; then
		if [ -n "${FC_LOG_NOISE:-}" ]; then grep -vE "$FC_LOG_NOISE" "$T/bangerd.log"; else cat "$T/bangerd.log"; fi |
			tail -n 40 | sed 's/^/# /'
	fi
	sleep 0.2 # killed processes leave their cgroups asynchronously
	cleanup_cgroups "${STATE:-}"
	rm -rf "$T"
}
# fc_double_wrapper [VAR=VALUE...]: $T/firecracker, the executable bangerd is
# given as --firecracker-bin. bangerd (and the jailer) run it with a minimal
# environment, as they would the real binary, so the wrapper carries the
# double's settings itself: FC_API_SPEC, then each VAR=VALUE as written (a
# VALUE may hold shell the wrapper evaluates when it runs).
fc_double_wrapper() {
	cat >"$T/firecracker" <<W
#!/bin/sh
exec /usr/bin/env FC_API_SPEC='$spec' $* $(fc_double_cmd) "\$@"
W
	chmod +x "$T/firecracker"
}
# fc_yaml NAME [STATE]: a Firecracker VM on the fake images (state Running by
# default). A test sets its machine once: FC_SPEC_EXTRA, spec lines added at
# the end (e.g. "  vcpus: 2"), FC_KERNEL_ARGS, the kernel's args.
fc_yaml() {
	cat <<YAML
apiVersion: banger/v1
kind: VM
metadata: {name: $1}
spec:
  state: ${2:-Running}
  vmm: firecracker
  kernel: {path: $T/images/vmlinux${FC_KERNEL_ARGS:+, args: \"$FC_KERNEL_ARGS\"}}
  rootfs: {path: $T/images/rootfs.ext4}
${FC_SPEC_EXTRA:-}
YAML
}

# ---- real guests ---------------------------------------------------------------
GUEST_DIR=${BANGER_GUEST_DIR:-$SRC/build/guest}
need_guest() {
	[ -f "$GUEST_DIR/bzImage" ] && [ -f "$GUEST_DIR/rootfs.ext4" ] ||
		skip_all "no guest image in $GUEST_DIR (run make guest-image)"
	command -v qemu-system-x86_64 >/dev/null || skip_all "qemu-system-x86_64 not installed"
}
# guest_yaml NAME [MEMORY] [STATE] [EXTRA-SPEC-LINES] [LABELS]
guest_yaml() {
	cat <<YAML
apiVersion: banger/v1
kind: VM
metadata:
  name: $1
  labels: {team: ${5:-a}}
spec:
  state: ${3:-Running}
  vmm: qemu
  memoryMiB: ${2:-128}
  kernel: {path: $GUEST_DIR/bzImage}
  rootfs: {path: $GUEST_DIR/rootfs.ext4}
  readiness: {tcpPort: 80, timeoutSeconds: 90}
${4:-}
YAML
}
is_ready() { status_is "$1" '[c["status"] for c in d["conditions"] if c["type"]=="Ready"][0]' True 2>/dev/null; }
vm_pid() { status_field "$1" 'd["runtime"]["pid"]'; }
vm_ip() { status_field "$1" 'd["runtime"]["guestIP"]'; }
# Everything a VM could leave behind, for leak checks: prints what it finds.
leaks() {
	local state=$1
	ip -o link show 2>/dev/null | grep -o 'bgr-[0-9a-f]*' || true
	# A VM's firewall elements (keyed by its tap) left behind are a leak too
	# (net/nft.c), and so is a per-VM chain.
	if command -v nft >/dev/null; then
		nft list ruleset bridge 2>/dev/null | grep -o '"bgr-[0-9a-f]*"\|chain vm_[0-9a-f]*' | sort -u || true
	fi
	losetup -a 2>/dev/null | grep -F "$state" || true
	ls "$state/run/" 2>/dev/null | grep '\.sock$' || true
	for p in $(pgrep -f "qemu-system-x86_64.*$state" 2>/dev/null); do echo "process $p"; done
	ls "$state/vms" 2>/dev/null || true
}
# no_status_files DIR: no *.status.json left. find, not `ls DIR/*.status.json`:
# a file removed between the glob and ls makes ls fail while others remain.
no_status_files() { ! find "$1" -maxdepth 1 -name '*.status.json' 2>/dev/null | grep -q .; }
# pid_gone PID: no such process, or only its zombie is left.
pid_gone() { [ ! -e "/proc/$1/stat" ] || [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" = Z ]; }

# guest_test_setup TAG: temp dirs for a bangerd test with real guests (T, SPEC,
# STATE, STATUS, all under T) and an EXIT trap that stops bangerd, kills any QEMU
# left under this test's state dir (never anyone else's) and removes T.
guest_test_setup() {
	T=$(test_tmpdir "$1")
	SPEC=$T/specs
	STATE=$T/state
	STATUS=$T/status
	mkdir -p "$SPEC" "$STATE"
	trap guest_test_cleanup EXIT
}
guest_test_cleanup() {
	stop_bangerd
	for p in $(pgrep -f "qemu-system-x86_64.*$STATE" 2>/dev/null); do kill -9 "$p"; done
	sleep 0.2 # killed processes leave their cgroups asynchronously
	cleanup_cgroups "$STATE"
	[ -n "${KEEP_T:-}" ] || rm -rf "$T"
}
