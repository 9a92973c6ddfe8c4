#!/bin/bash
# Suspend and resume (spec.state Suspended, issue 10) with real QEMU guests
# (TCG) and a work disk, in a private netns. The guest counts its boots in
# /data/banger-boot-count on the work disk; read with debugfs while the VMM
# is not running, it proves a resume did not boot the guest again.
# Covers: suspend + resume; suspend, bangerd restart, resume;
# --on-stop=suspend then a new bangerd; a corrupt state file (cold boot +
# reason); a boot-relevant spec change while suspended (cold boot + reason);
# a kill -9 during Running is no suspend; bangerd dying mid-save; leaks.
# All of it with confined QEMUs (the default: own uid, -sandbox, an empty
# -chroot; disks passed as fdsets), then once more with --no-confine.
. "$(dirname "$0")/lib.sh"
private_netns "$0" "$@"
need_guest
require_root "taps, bridges"
require_tools debugfs curl

guest_test_setup susp
DARGS=(--image-dir "$GUEST_DIR" --driver qemu --resync 30 --stop-timeout 10)
start_bangerd "$SPEC" "$STATE" "${DARGS[@]}"

WD="  workDisk: {sizeMiB: 16}"
cond() { status_field s1 "[c[\"$2\"] for c in d[\"conditions\"] if c[\"type\"]==\"$1\"][0]"; }
phase_is() { status_is s1 'd["phase"]' "$1"; }
suspended() { phase_is Suspended && [ "$(cond Suspended status)" = True ]; }
vmdir() { echo "$STATE/vms/$(ls "$STATE/vms")"; }
# The guest's journal may hold the last write: replay it on a copy (e2fsck),
# never on the VM's own disk.
boots() {
	cp --sparse=always "$(vmdir)/work.ext4" "$T/work-copy.ext4" &&
		{ e2fsck -fy "$T/work-copy.ext4" >/dev/null 2>&1 || true; } &&
		debugfs -R "cat /banger-boot-count" "$T/work-copy.ext4" 2>/dev/null | tr -d '[:space:]'
}
answers() { [ "$(curl -s -m 5 "http://$1/")" = "ok s1" ]; }
alive() { ! pid_gone "$1"; }
spec() { guest_yaml s1 "${2:-128}" "$1" "$WD" | put "$SPEC/s1.yaml"; }
vmm_uid() { awk '/^Uid:/ {print $2}' "/proc/$1/status"; }
# Confined as t_confine checks it, plus: no disk path in its argv, every
# disk an fdset (a chrooted QEMU could not reopen a path at the end of a
# migration).
confined() {
	local pid=$1 args
	args=$(tr '\0' ' ' <"/proc/$pid/cmdline")
	[ "$(vmm_uid "$pid")" != 0 ] && [ "$(readlink "/proc/$pid/root")" = "$(vmdir)/chroot" ] &&
		[[ $args == *"-sandbox on,"* ]] && [[ $args == *"file.filename=/dev/fdset/1"* ]] &&
		[[ $args == *"backing.file.filename=/dev/fdset/2"* || $args != *qcow2* ]] &&
		[[ $args == *"file.filename=/dev/fdset/3"* ]] &&
		[[ $args != *"$(vmdir)/root."* && $args != *work.ext4* && $args != *"$GUEST_DIR/rootfs"* ]]
}
# A guest whose disk broke under it (a failed reopen) says so on its console.
disk_errors() { grep -E 'I/O error|EXT4-fs error|Buffer I/O' "$(vmdir)/console.log" || true; }

spec Running
check "s1 Ready" wait_until 180 is_ready s1
ip=$(vm_ip s1)
pid=$(vm_pid s1)
check "s1 answers HTTP at $ip" answers "$ip"
check "its QEMU is confined (uid $(vmm_uid "$pid"), chrooted, seccomp) and opened no disk by path" confined "$pid"

# ---- suspend and resume ----
spec Suspended
check "Suspended → phase Suspended, condition Suspended True" wait_until 60 suspended
check "Suspended → Ready False" test "$(cond Ready status)" = False
check "Suspended → VMM ended" wait_until 10 pid_gone "$pid"
check "condition says when and how big: $(cond Suspended message)" bash -c "[[ '$(cond Suspended message)' == 'state saved at 20'*' bytes (QEMU '* ]]"
check "saved state is root-only (root 0600, dir root 0700)" test "$(stat -c %u:%a "$(vmdir)/suspend/qemu.state")/$(stat -c %u:%a "$(vmdir)/suspend")" = 0:600/0:700
check "commit record present" test -f "$(vmdir)/suspend.json"
check "guest IP stays reserved in status" test "$(vm_ip s1)" = "$ip"
check "no VMM socket, no tap while suspended" test -z "$(leaks "$STATE" | grep -v '^[0-9a-f]\{32\}$')"
b=$(boots); check "booted once (boot count $b)" test "$b" = 1
size=$(stat -c %s "$(vmdir)/suspend/qemu.state")
echo "# state: $size bytes for 128 MiB"

spec Running
check "Running again → Ready" wait_until 60 is_ready s1
check "resumed, not booted (log)" grep -q "s1: qemu resumed from its saved state" "$T/bangerd.log"
check "condition Suspended False/Resumed" test "$(cond Suspended reason)" = Resumed
check "same IP after resume" test "$(vm_ip s1)" = "$ip"
check "the resumed QEMU is confined too, its disks fdsets" confined "$(vm_pid s1)"
check "answers HTTP after resume" wait_until 10 answers "$ip"
check "saved state removed once the guest runs" test ! -e "$(vmdir)/suspend.json" -a ! -e "$(vmdir)/suspend" -a ! -e "$(vmdir)/suspend.json.used"
check "restartCount 0 (a resume is no restart)" status_is s1 'd["runtime"]["restartCount"]' 0

# ---- suspend, restart bangerd, resume ----
spec Suspended
check "banger wait --for=phase=Suspended" "$BIN/banger" --spec-dir "$SPEC" --status-dir "$STATUS" wait s1 --for=phase=Suspended --timeout 60s
check "banger get shows phase Suspended" bash -c "'$BIN/banger' --spec-dir '$SPEC' --status-dir '$STATUS' get s1 | grep -q ' Suspended '"
check "suspended again" wait_until 60 suspended
b=$(boots); check "still booted once ($b)" test "$b" = 1
stop_bangerd
start_bangerd "$SPEC" "$STATE" "${DARGS[@]}"
sleep 1
check "new bangerd keeps it Suspended" wait_until 10 suspended
spec Running
check "new bangerd resumes it → Ready" wait_until 60 is_ready s1
check "answers HTTP" wait_until 10 answers "$ip"

# ---- --on-stop=suspend, then a new bangerd ----
pid=$(vm_pid s1)
stop_bangerd
check "--on-stop=keep (default) left the VM running" alive "$pid"
start_bangerd "$SPEC" "$STATE" "${DARGS[@]}" --on-stop=suspend
check "adopted" wait_until 10 grep -q "adopted running VMM" "$T/bangerd.log"
check "Ready after adoption" wait_until 30 is_ready s1
stop_bangerd
check "SIGTERM with --on-stop=suspend saved it" grep -q "suspend at exit: 1 of 1 running VM(s) saved" "$T/bangerd.log"
check "...and ended its VMM" pid_gone "$pid"
check "...status says Suspended" suspended
b=$(boots); check "still booted once ($b)" test "$b" = 1
start_bangerd "$SPEC" "$STATE" "${DARGS[@]}"
check "next bangerd resumes it (spec says Running)" wait_until 60 is_ready s1
check "answers HTTP" wait_until 10 answers "$ip"
spec Suspended
check "suspended" wait_until 60 suspended
b=$(boots); check "never booted again (boot count $b)" test "$b" = 1

# ---- a corrupt state file: cold boot, and status says why ----
truncate -s $((size / 2)) "$(vmdir)/suspend/qemu.state"
spec Running
check "corrupt state → cold boot → Ready" wait_until 180 is_ready s1
check "condition says StateCorrupt: $(cond Suspended message)" test "$(cond Suspended reason)" = StateCorrupt
check "log says why" grep -q "s1: saved state discarded (StateCorrupt): cold boot: saved state corrupt" "$T/bangerd.log"
spec Suspended
check "suspended" wait_until 60 suspended
b=$(boots); check "booted twice now ($b)" test "$b" = 2

# A state whose bytes were changed (same size): the SHA-256 check refuses it.
printf 'garbage' | dd of="$(vmdir)/suspend/qemu.state" bs=1 seek=$((size / 2)) conv=notrunc status=none
spec Running
check "tampered state → cold boot → Ready" wait_until 180 is_ready s1
check "condition says ResumeFailed: $(cond Suspended message)" test "$(cond Suspended reason)" = ResumeFailed
check "...because of the checksum" bash -c "[[ '$(cond Suspended message)' == *SHA-256* ]]"
spec Suspended
check "suspended" wait_until 60 suspended
b=$(boots); check "booted three times now ($b)" test "$b" = 3

# ---- a boot-relevant change while suspended: cold boot, and why ----
spec Running 160
check "memory change while suspended → cold boot → Ready" wait_until 180 is_ready s1
check "condition says SpecChangedWhileSuspended" test "$(cond Suspended reason)" = SpecChangedWhileSuspended
check "...and what changed: $(cond Suspended message)" bash -c "[[ '$(cond Suspended message)' == *'memoryMiB 128→160'* ]]"
check "the new VMM has the new memory" bash -c "tr '\0' ' ' </proc/$(vm_pid s1)/cmdline | grep -q -- '-m 160'"

# ---- a kill -9 is never a suspend ----
pid=$(vm_pid s1)
kill -9 "$pid"
check "kill -9 → restarted by policy, Ready" wait_until 180 bash -c ". $SRC/tests/integration/lib.sh; STATUS=$STATUS; is_ready s1 && [ \"\$(vm_pid s1)\" != $pid ]"
check "kill -9 → restartCount 1" status_is s1 'd["runtime"]["restartCount"]' 1
check "kill -9 left no saved state" test ! -e "$(vmdir)/suspend.json"

# ---- bangerd dies in the middle of a save ----
# (a) after the VMM wrote the state, before the commit: the guest is left
#     paused; the next bangerd continues it, then saves it properly.
stop_bangerd
BANGER_CRASHPOINT=suspend-saved start_bangerd "$SPEC" "$STATE" "${DARGS[@]}"
check "adopted, Ready" wait_until 60 is_ready s1
pid=$(vm_pid s1)
spec Suspended 160
check "bangerd died at suspend-saved" wait_until 60 bash -c "! kill -0 $BANGERD_PID 2>/dev/null"
stop_bangerd
check "...the guest is paused, not dead" alive "$pid"
check "...nothing committed" test ! -e "$(vmdir)/suspend.json"
start_bangerd "$SPEC" "$STATE" "${DARGS[@]}"
check "next bangerd continues the guest of the uncommitted save" wait_until 30 grep -q "s1: found an uncommitted save" "$T/bangerd.log"
check "...then saves it properly: Suspended" wait_until 60 suspended
check "...its disks worked after the continue (a chrooted reopen): no I/O errors on the console" test -z "$(disk_errors)"
b0=$(boots)

# (b) after the commit, before the VMM ended: the next bangerd ends it, and
#     the saved state is good (resumed, no boot).
spec Running 160
check "resumed → Ready" wait_until 60 is_ready s1
stop_bangerd
BANGER_CRASHPOINT=suspend-committed start_bangerd "$SPEC" "$STATE" "${DARGS[@]}"
check "adopted, Ready" wait_until 60 is_ready s1
pid=$(vm_pid s1)
spec Suspended 160
check "bangerd died at suspend-committed" wait_until 60 bash -c "! kill -0 $BANGERD_PID 2>/dev/null"
stop_bangerd
check "...the VMM still runs, the record is committed" bash -c "[ -e /proc/$pid ] && [ -f '$(vmdir)/suspend.json' ]"
start_bangerd "$SPEC" "$STATE" "${DARGS[@]}"
check "next bangerd ends the VMM of the committed save" wait_until 30 grep -q "s1: found a committed saved state" "$T/bangerd.log"
check "...Suspended, VMM gone" wait_until 60 bash -c ". $SRC/tests/integration/lib.sh; STATUS=$STATUS; [ \"\$(status_field s1 'd[\"phase\"]')\" = Suspended ] && pid_gone $pid"
check "...its exit was not counted as a crash (restartCount 1, from the kill -9)" status_is s1 'd["runtime"]["restartCount"]' 1
spec Running 160
check "resumed from that state → Ready" wait_until 60 is_ready s1
check "...resumed, not cold-booted" test "$(cond Suspended reason)" = Resumed
spec Suspended 160
check "suspended" wait_until 60 suspended
b=$(boots); check "no boot through both crashes ($b0 → $b)" test -n "$b" -a "$b" = "$b0"

# ---- --no-confine: the same suspend and resume, unconfined ----
stop_bangerd
start_bangerd "$SPEC" "$STATE" "${DARGS[@]}" --no-confine
spec Running 160
check "--no-confine: resumed (the state saved confined) → Ready" wait_until 60 is_ready s1
check "--no-confine: ...resumed, not cold-booted" test "$(cond Suspended reason)" = Resumed
pid=$(vm_pid s1)
check "--no-confine: its QEMU runs as root, its disks still fdsets" bash -c "[ \"\$(awk '/^Uid:/ {print \$2}' /proc/$pid/status)\" = 0 ] && tr '\\0' ' ' </proc/$pid/cmdline | grep -q 'file.filename=/dev/fdset/1'"
spec Suspended 160
check "--no-confine: suspended" wait_until 60 suspended
check "--no-confine: VMM ended" wait_until 10 pid_gone "$pid"
spec Running 160
check "--no-confine: resumed → Ready" wait_until 60 is_ready s1
check "--no-confine: answers HTTP" wait_until 10 answers "$ip"
check "no I/O errors on the guest console" test -z "$(disk_errors)"

# ---- leaks ----
spec Suspended 160
check "suspended" wait_until 60 suspended
b=$(boots); check "no boot since the crashes ($b0 → $b)" test -n "$b" -a "$b" = "$b0"
rm -f "$SPEC/s1.yaml"
check "deleted while suspended → status gone" wait_until 30 test ! -e "$STATUS/s1.status.json"
sleep 0.5
left=$(leaks "$STATE")
check "nothing leaked (taps, loops, sockets, processes, VM dirs): '$left'" test -z "$left"
check "bangerd exits cleanly" stop_bangerd
done_testing
