#!/bin/bash
# A fleet, simulated: three bangerd "hosts", each in a network and mount
# namespace of its own with its own state, fed from one Git repository of
# specs the way git-sync does it (a new worktree per revision, then an
# atomic symlink swap). spec.node places each VM. Moving a VM to another
# node in one commit stops it on one host and starts it on the other; with
# independent syncs both can run for a while (the window docs/operations.md
# "Many hosts" describes). The two-commit move (state: Stopped, then the new
# node) never runs it twice.
. "$(dirname "$0")/lib.sh"
private_netns "$0" "$@"
need_guest
require_tools git unshare nsenter

T=$(test_tmpdir fleet)
HOSTS=(host-a host-b host-c)
declare -A HPID NETNS
fleet_cleanup() {
	local h p
	for h in "${HOSTS[@]}"; do
		[ -n "${HPID[$h]:-}" ] && kill -TERM "${HPID[$h]}" 2>/dev/null
	done
	for h in "${HOSTS[@]}"; do
		[ -n "${HPID[$h]:-}" ] && wait "${HPID[$h]}" 2>/dev/null
	done
	for p in $(pgrep -f "qemu-system-x86_64.*$T/" 2>/dev/null); do kill -9 "$p"; done
	for h in "${HOSTS[@]}"; do
		[ -n "${NETNS[$h]:-}" ] && kill "${NETNS[$h]}" 2>/dev/null
	done
	sleep 0.2
	for h in "${HOSTS[@]}"; do cleanup_cgroups "$T/$h/state"; done
	rm -rf "$T"
}
trap fleet_cleanup EXIT

REPO=$T/repo
git init -q "$REPO"
git -C "$REPO" config user.email fleet@banger.test
git -C "$REPO" config user.name fleet

# spec_file NAME NODE [STATE]: a guest placed on NODE.
spec_file() { guest_yaml "$1" 128 "${3:-Running}" "  node: $2" >"$REPO/$1.yaml"; }
commit() { git -C "$REPO" add -A && git -C "$REPO" commit -q -m "$1" && git -C "$REPO" rev-parse HEAD; }

# Each host's network namespace outlives its bangerd, as a host's network
# outlives a daemon restart: a process holds it, and bangerd joins it.
for h in "${HOSTS[@]}"; do
	unshare -n -- bash -c 'ip link set lo up && exec sleep 100000' &
	NETNS[$h]=$!
done

# start_host HOST: bangerd in its host's netns and a new mount namespace.
# Every host uses the same runtime dir path, $T/run; in each namespace it is
# a bind mount of that host's own directory, so no host sees another's
# sockets, and a restarted bangerd finds its VMMs' sockets again.
mkdir -p "$T/run"
start_host() {
	local h=$1 d=$T/$1
	mkdir -p "$d/state" "$d/status" "$d/sync" "$d/run"
	nsenter -t "${NETNS[$h]}" -n -- unshare -m --propagation private -- bash -c '
		mount --bind "$1/run" "$2" || exit 1
		shift 2
		exec "$@"' _ "$d" "$T/run" "$BIN/bangerd" --spec-dir "$d/sync/current" \
		--state-dir "$d/state" --runtime-dir "$T/run" --status-dir "$d/status" --node-name "$h" \
		--image-dir "$GUEST_DIR" --driver qemu --resync 30 --stop-timeout 10 \
		--log-level debug >>"$d/bangerd.log" 2>&1 &
	HPID[$h]=$!
}

# sync_host HOST COMMIT: what git-sync does — a new worktree for the
# revision, then the link swapped over atomically.
sync_host() {
	local h=$1 rev=$2 d=$T/$1/sync
	git -C "$REPO" worktree add -q --detach "$d/rev-${rev:0:12}" "$rev" 2>/dev/null ||
		return 1
	ln -sfn "rev-${rev:0:12}" "$d/.tmp-link" && mv -T "$d/.tmp-link" "$d/current"
}

# status of VM on HOST
on() { STATUS=$T/$1/status; shift; "$@"; }
ready_on() { on "$1" is_ready "$2"; }
absent_on() { [ ! -e "$T/$1/status/$2.status.json" ]; }
# A QEMU for VM runs under HOST's state dir (its VM dir is there).
vmm_count() { pgrep -fc "qemu-system-x86_64.*guest=$2 .*$T/$1/state" 2>/dev/null || true; }
runs_on() { [ "$(vmm_count "$1" "$2")" -ge 1 ] 2>/dev/null; }
runs_nowhere_but() {
	local h
	for h in "${HOSTS[@]}"; do
		[ "$h" = "$1" ] && continue
		runs_on "$h" "$2" && return 1
	done
	runs_on "$1" "$2"
}

spec_file app-a host-a
spec_file app-b host-b Stopped
spec_file mover host-a
c1=$(commit "three VMs placed")
for h in "${HOSTS[@]}"; do sync_host "$h" "$c1" && start_host "$h"; done

check "host-a: app-a Running and Ready" wait_until 180 ready_on host-a app-a
check "host-a: mover Running and Ready" wait_until 180 ready_on host-a mover
check "host-b: app-b placed there (Stopped)" wait_until 30 on host-b status_is app-b 'd["phase"]' Stopped
check "host-a has no status for app-b" absent_on host-a app-b
check "host-b and host-c have no status for app-a or mover" \
	bash -c "[ ! -e $T/host-b/status/app-a.status.json ] && [ ! -e $T/host-c/status/mover.status.json ]"
check "each host runs its own VMs only" runs_nowhere_but host-a mover
check "host-c holds no intent at all (no status file)" \
	bash -c "! ls $T/host-c/status | grep -q 'status.json$'"
ip_a=$(on host-a vm_ip mover)

# One commit moves mover to host-b. host-b syncs first: for a while both run.
spec_file mover host-b
c2=$(commit "move mover to host-b in one commit")
sync_host host-b "$c2"
check "one-commit move, host-b synced first: mover Ready on host-b" wait_until 180 ready_on host-b mover
check "...while host-a (not synced yet) still runs it: the documented window" runs_on host-a mover
sync_host host-a "$c2"
sync_host host-c "$c2"
check "host-a synced: mover stopped there, status removed" wait_until 60 absent_on host-a mover
gone_on() { ! runs_on "$@"; }
check "host-a: its VMM is gone" wait_until 30 gone_on host-a mover
check "mover now runs on host-b only" runs_nowhere_but host-b mover
check "host-a left nothing of mover behind (no VM dir beyond app-a's)" \
	test "$(ls "$T/host-a/state/vms" | wc -l)" = 1
check "app-a on host-a untouched by the move" ready_on host-a app-a
echo "# mover IP on host-a was $ip_a, on host-b $(on host-b vm_ip mover)"

# The two-commit way: first Stopped where it runs, then the new node. In
# whatever order the hosts sync, it never runs twice.
spec_file mover host-b Stopped
c3=$(commit "stop mover before moving it")
for h in "${HOSTS[@]}"; do sync_host "$h" "$c3"; done
check "two-commit move, step 1: mover Stopped on host-b" wait_until 60 on host-b status_is mover 'd["phase"]' Stopped
spec_file mover host-c
c4=$(commit "move mover to host-c")
sync_host host-c "$c4" # the new host first: the old one still says Stopped
check "step 2: mover Ready on host-c" wait_until 180 ready_on host-c mover
check "...and never running on host-b meanwhile" runs_nowhere_but host-c mover
sync_host host-b "$c4"
sync_host host-a "$c4"
check "host-b synced: its stopped mover's status removed" wait_until 60 absent_on host-b mover

# Restart every host: placement and adoption hold (same pids).
pid_c=$(on host-c vm_pid mover)
pid_a=$(on host-a vm_pid app-a)
for h in "${HOSTS[@]}"; do kill -9 "${HPID[$h]}"; wait "${HPID[$h]}" 2>/dev/null; done
for h in "${HOSTS[@]}"; do start_host "$h"; done
check "after restarting every host: mover adopted on host-c (same pid)" \
	wait_until 60 bash -c ". $SRC/tests/integration/lib.sh; STATUS=$T/host-c/status; is_ready mover && [ \"\$(vm_pid mover)\" = $pid_c ]"
check "after restarting every host: app-a adopted on host-a (same pid)" \
	wait_until 60 bash -c ". $SRC/tests/integration/lib.sh; STATUS=$T/host-a/status; is_ready app-a && [ \"\$(vm_pid app-a)\" = $pid_a ]"
check "no host adopted or started another's VM" runs_nowhere_but host-c mover
done_testing
