#!/bin/bash
# VMM confinement, end to end with real QEMU guests in a private netns:
#  1. A kill -9 of bangerd right after a VM's cgroup is made
#     (BANGER_CRASHPOINT=cgroup-created) leaves an empty cgroup and no VMM; the
#     restarted bangerd boots the VM.
#  2. Two running VMs: each VMM's /proc status (Uid/Gid ×4 one uid from the
#     default range, no supplementary groups but its own, CapEff/CapPrm/CapAmb 0,
#     NoNewPrivs 1, Seccomp 2), its root (/proc/<pid>/root = an empty chroot),
#     distinct uids, the cgroup (memory limit = memoryMiB + 256 MiB, pids limit,
#     membership of every thread, memory charged there), file owners and modes,
#     and what another VM's uid can and cannot open.
#  3. kill -9 bangerd, plant an orphan cgroup with a process in it, make the
#     database forget one VM's uid, restart: the same VMM pids are adopted and
#     Ready, the forgotten uid is recorded again from the running VMM, the
#     orphan is killed and removed.
#  4. A stop and start of one VM keeps its uid (allocated once, in the row).
#  5. Deleting the specs: VMMs, cgroups, VM dirs, taps, sockets gone.
. "$(dirname "$0")/lib.sh"
private_netns "$0" "$@"
need_guest
command -v setpriv >/dev/null || skip_all "setpriv (util-linux) not installed"
guest_test_setup confine
DARGS=(--image-dir "$GUEST_DIR" --driver qemu --resync 0 --stop-timeout 5)
BASE=2000000000 COUNT=65536 # the documented default --vmm-uid-range

# cgroup hierarchies as bangerd picks them: v2 when its root lists memory and
# pids, else v1 memory + pids.
# mountinfo: after the optional fields, " - FSTYPE SOURCE SUPEROPTS".
mnt() { awk -v t="$1" -v o="$2" '{for (i = 7; $i != "-"; i++); if ($(i+1) == t && (o == "" || $(i+3) ~ "(^|,)" o "(,|$)")) {print $5; exit}}' /proc/self/mountinfo; }
V2=$(mnt cgroup2 "")
if [ -n "$V2" ] && grep -qw memory "$V2/cgroup.controllers" 2>/dev/null &&
	grep -qw pids "$V2/cgroup.controllers"; then
	MEMROOT=$V2 PIDSROOT=$V2 MEMFILE=memory.max
else
	MEMROOT=$(mnt cgroup memory)
	PIDSROOT=$(mnt cgroup pids)
	MEMFILE=memory.limit_in_bytes
fi
[ -n "$MEMROOT" ] && [ -n "$PIDSROOT" ] || skip_all "no memory and pids cgroup controllers"

field() { awk -v k="$2:" '$1 == k {$1 = ""; sub(/^ /, ""); print}' "/proc/$1/status"; }
vmdir_of() { dirname "$(readlink "/proc/$1/root")"; }
uid_of_dir() { basename "$1"; }
owner() { stat -c '%u:%g %a' "$1"; }
vmms() { pgrep -f "qemu-system-x86_64.*$STATE" | sort; }
# threads_in PID VUID: every thread of PID that still exists is in banger/VUID
# (QEMU's worker threads come and go).
threads_in() {
	local t
	for t in $(ls "/proc/$1/task"); do
		grep -q "/$(cgroup_parent "$STATE")/$2\$" "/proc/$1/task/$t/cgroup" 2>/dev/null || [ ! -e "/proc/$1/task/$t" ] || return 1
	done
}

# ---- 1. crash right after the cgroup is made ---------------------------------------
guest_yaml c1 | put "$SPEC/c1.yaml"
BANGER_CRASHPOINT=cgroup-created start_bangerd "$SPEC" "$STATE" "${DARGS[@]}"
rc=0
wait "$BANGERD_PID" || rc=$?
BANGERD_PID=
check "crash at cgroup-created: bangerd died by SIGKILL (rc $rc)" test "$rc" = 137
check "crash at cgroup-created: logged" grep -q "crashpoint cgroup-created: dying now" "$T/bangerd.log"
C1UID=$(ls "$STATE/vms")
check "crash at cgroup-created: the cgroup exists, empty, no VMM" \
	test -d "$MEMROOT/$(cgroup_parent "$STATE")/$C1UID" -a -z "$(cat "$MEMROOT/$(cgroup_parent "$STATE")/$C1UID/cgroup.procs")" -a -z "$(vmms)"

# ---- 2. two confined VMs --------------------------------------------------------------
guest_yaml c2 192 | put "$SPEC/c2.yaml"
start_bangerd "$SPEC" "$STATE" "${DARGS[@]}"
check "c1 Ready" wait_until 240 is_ready c1
check "c2 Ready" wait_until 240 is_ready c2
P1=$(vm_pid c1) P2=$(vm_pid c2)
for vm in c1 c2; do
	P=$(vm_pid $vm)
	U=$(field "$P" Uid | awk '{print $1}')
	check "$vm (pid $P): Uid is one non-root uid ×4 ($(field "$P" Uid))" \
		test "$(field "$P" Uid)" = "$U $U $U $U" -a "$U" != 0
	check "$vm: uid $U lies in the default range" test "$U" -ge $BASE -a "$U" -lt $((BASE + COUNT))
	check "$vm: Gid = uid ×4" test "$(field "$P" Gid)" = "$U $U $U $U"
	check "$vm: Groups only its own gid ($(field "$P" Groups))" test "$(field "$P" Groups)" = "$U"
	for c in CapEff CapPrm CapAmb; do
		check "$vm: $c 0" test "$(field "$P" $c)" = 0000000000000000
	done
	check "$vm: NoNewPrivs 1" test "$(field "$P" NoNewPrivs)" = 1
	check "$vm: Seccomp 2 (filter)" test "$(field "$P" Seccomp)" = 2
	D=$(vmdir_of "$P")
	check "$vm: root is its own empty chroot ($(readlink /proc/$P/root))" \
		test "$(readlink /proc/$P/root)" = "$D/chroot" -a "$(dirname "$D")" = "$STATE/vms"
	check "$vm: the chroot is empty, root-owned, 0555" \
		test -z "$(ls -A "/proc/$P/root/")" -a "$(owner "$D/chroot")" = "0:0 555"
	VUID=$(uid_of_dir "$D")
	eval "U_$vm=$U D_$vm=$D V_$vm=$VUID"
	check "$vm: in its memory cgroup" grep -Eq "^[0-9]+:([^:]*,)?memory(,[^:]*)?:/$(cgroup_parent "$STATE")/$VUID\$|^0::/$(cgroup_parent "$STATE")/$VUID\$" "/proc/$P/cgroup"
	check "$vm: in its pids cgroup" grep -Eq "^[0-9]+:([^:]*,)?pids(,[^:]*)?:/$(cgroup_parent "$STATE")/$VUID\$|^0::/$(cgroup_parent "$STATE")/$VUID\$" "/proc/$P/cgroup"
	check "$vm: cgroup.procs lists exactly the VMM" test "$(cat "$MEMROOT/$(cgroup_parent "$STATE")/$VUID/cgroup.procs")" = "$P"
	check "$vm: every thread of the VMM ($(ls /proc/$P/task | wc -l)) is in its cgroup" threads_in "$P" "$VUID"
	check "$vm: pids.max = vcpus + 128 ($(cat "$PIDSROOT/$(cgroup_parent "$STATE")/$VUID/pids.max"))" \
		test "$(cat "$PIDSROOT/$(cgroup_parent "$STATE")/$VUID/pids.max")" = 129
	USAGE=$(cat "$MEMROOT/$(cgroup_parent "$STATE")/$VUID/$([ "$MEMROOT" = "$V2" ] && echo memory.current || echo memory.usage_in_bytes)")
	check "$vm: its memory is charged to its cgroup ($USAGE bytes)" test "$USAGE" -gt $((16 * 1048576))
	for f in console.log vmm.log root.qcow2; do
		check "$vm: $f is $U:$U 0600 ($(owner "$D/$f"))" test "$(owner "$D/$f")" = "$U:$U 600"
	done
	check "$vm: VM dir root:$U 0710 ($(owner "$D"))" test "$(owner "$D")" = "0:$U 710"
	check "$vm: handles.json stays root's 0600" test "$(owner "$D/handles.json")" = "0:0 600"
done
check "the two VMMs run under different uids ($U_c1, $U_c2)" test "$U_c1" != "$U_c2"
MEM1=$(cat "$MEMROOT/$(cgroup_parent "$STATE")/$V_c1/$MEMFILE") MEM2=$(cat "$MEMROOT/$(cgroup_parent "$STATE")/$V_c2/$MEMFILE")
check "c1 memory limit = (128 + 256) MiB ($MEM1)" test "$MEM1" = $(((128 + 256) * 1048576))
check "c2 memory limit = (192 + 256) MiB ($MEM2)" test "$MEM2" = $(((192 + 256) * 1048576))
# Who may open what: let every uid through the test's own parents (bangerd's
# state dir is 0700 in real use; here only the VM dirs' own modes decide).
chmod 0711 "$T" "$STATE" "$STATE/vms"
as() { local u=$1; shift; setpriv --reuid="$u" --regid="$u" --clear-groups "$@" >/dev/null 2>&1; }
denied() { ! as "$@"; }
check "c1's uid can read c1's console.log" as "$U_c1" head -c1 "$D_c1/console.log"
check "c1's uid can open c1's root disk for writing" as "$U_c1" dd of="$D_c1/root.qcow2" conv=notrunc count=0
check "c2's uid cannot read c1's console.log" denied "$U_c2" head -c1 "$D_c1/console.log"
check "c2's uid cannot list c1's VM dir" denied "$U_c2" ls "$D_c1"
check "c1's uid cannot open c2's root disk" denied "$U_c1" head -c1 "$D_c2/root.qcow2"
check "c1's uid cannot read c1's handles.json" denied "$U_c1" head -c1 "$D_c1/handles.json"
check "nobody (65534) cannot read c1's console.log" denied 65534 head -c1 "$D_c1/console.log"
chmod 0700 "$T" "$STATE" "$STATE/vms"

# ---- 3. kill -9, an orphan cgroup, restart, adoption ----------------------------------------
kill -9 "$BANGERD_PID"
wait "$BANGERD_PID" 2>/dev/null
BANGERD_PID=
ORPHAN=feedfacefeedfacefeedfacefeedface
mkdir -p "$MEMROOT/$(cgroup_parent "$STATE")/$ORPHAN" "$PIDSROOT/$(cgroup_parent "$STATE")/$ORPHAN"
setsid sleep 1000 </dev/null >/dev/null 2>&1 &
SLEEPER=$!
echo "$SLEEPER" >"$MEMROOT/$(cgroup_parent "$STATE")/$ORPHAN/cgroup.procs"
[ "$PIDSROOT" != "$MEMROOT" ] && echo "$SLEEPER" >"$PIDSROOT/$(cgroup_parent "$STATE")/$ORPHAN/cgroup.procs"
check "orphan cgroup planted with pid $SLEEPER" grep -qx "$SLEEPER" "$MEMROOT/$(cgroup_parent "$STATE")/$ORPHAN/cgroup.procs"
# Simulate a row that lost its uid (a crash before the first pass committed):
# adoption must record the running VMM's uid again.
sqlite3 "$STATE/banger.db" "UPDATE vms SET vmm_uid = NULL WHERE name = 'c1'"
LINES=$(wc -l <"$T/bangerd.log")
start_bangerd "$SPEC" "$STATE" "${DARGS[@]}"
check "restart: c1 adopted (pid $P1)" wait_until 60 grep -q "c1: adopted running VMM (pid $P1)" "$T/bangerd.log"
check "restart: c2 adopted (pid $P2)" wait_until 60 grep -q "c2: adopted running VMM (pid $P2)" "$T/bangerd.log"
ready_on() { is_ready "$1" && [ "$(vm_pid "$1")" = "$2" ]; }
check "restart: c1 still Ready on pid $P1" wait_until 30 ready_on c1 "$P1"
check "restart: c2 still Ready on pid $P2" wait_until 30 ready_on c2 "$P2"
check "restart: c1's row has its VMM's uid again (the database had lost it)" \
	test "$(sqlite3 "$STATE/banger.db" "SELECT vmm_uid FROM vms WHERE name = 'c1'")" = "$U_c1"
check "restart: no new VMM launched" test "$(tail -n +$((LINES + 1)) "$T/bangerd.log" | grep -c 'qemu started')" = 0
check "restart: the orphan cgroup's process was killed" wait_until 10 pid_gone "$SLEEPER"
wait "$SLEEPER" 2>/dev/null
check "restart: the orphan cgroup is gone" wait_until 10 test ! -d "$MEMROOT/$(cgroup_parent "$STATE")/$ORPHAN" -a ! -d "$PIDSROOT/$(cgroup_parent "$STATE")/$ORPHAN"
check "restart: the VMs' own cgroups are kept" test -d "$MEMROOT/$(cgroup_parent "$STATE")/$V_c1" -a -d "$MEMROOT/$(cgroup_parent "$STATE")/$V_c2"
body=$(curl -s -m 5 "http://$(vm_ip c1)/")
check "restart: c1 answers HTTP ($body)" test "$body" = "ok c1"

# ---- 4. a VM stopped and started again keeps its uid -------------------------------------
guest_yaml c2 192 Stopped | put "$SPEC/c2.yaml"
check "c2 stopped" wait_until 60 status_is c2 'd["phase"]' Stopped
check "c2's VMM gone" wait_until 10 pid_gone "$P2"
check "c2's cgroup removed while stopped" test ! -d "$MEMROOT/$(cgroup_parent "$STATE")/$V_c2" -a ! -d "$PIDSROOT/$(cgroup_parent "$STATE")/$V_c2"
guest_yaml c2 192 | put "$SPEC/c2.yaml"
check "c2 Ready again" wait_until 240 is_ready c2
P2B=$(vm_pid c2)
check "c2 runs a new VMM (pid $P2B)" test "$P2B" != "$P2"
check "under the same uid $U_c2" test "$(field "$P2B" Uid | awk '{print $1}')" = "$U_c2"

# ---- 5. delete: nothing left ---------------------------------------------------------------
rm -f "$SPEC/c1.yaml" "$SPEC/c2.yaml"
check "c1 status removed" wait_until 60 test ! -e "$STATUS/c1.status.json"
check "c2 status removed" wait_until 60 test ! -e "$STATUS/c2.status.json"
no_vmms() { [ -z "$(vmms)" ]; }
check "VMMs gone" wait_until 10 no_vmms
for v in "$V_c1" "$V_c2"; do
	check "cgroup of $v gone" test ! -d "$MEMROOT/$(cgroup_parent "$STATE")/$v" -a ! -d "$PIDSROOT/$(cgroup_parent "$STATE")/$v"
done
left=$(leaks "$STATE")
check "nothing leaked (${left:-none})" test -z "$left"
check "bangerd exits cleanly" stop_bangerd
check "no errors from the sanitizers" bash -c "! grep -E 'runtime error|Sanitizer' '$T/bangerd.log'"
done_testing
