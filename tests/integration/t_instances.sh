#!/bin/bash
# Instance ownership: two bangerd instances (own state, spec and runtime
# dirs, own bridges and subnets) side by side in ONE private network
# namespace, each with a running guest. Each is killed with SIGKILL and
# started again; neither touches the other's tap, nft rules or VMM, and a
# persistent tap an operator made by hand (bgr-deadbeef, no alias) survives
# every start. An orphan tap carrying B's tag is left alone by A and swept
# by B.
. "$(dirname "$0")/lib.sh"
private_netns "$0" "$@"
need_guest
command -v nft >/dev/null || skip_all "nft (package nftables) not installed"

T=$(test_tmpdir inst)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	for p in $(pgrep -f "qemu-system-x86_64.*$T" 2>/dev/null); do kill -9 "$p"; done
	sleep 0.2
	cleanup_cgroups "$T/a/state"
	cleanup_cgroups "$T/b/state"
	rm -rf "$T"
}
trap cleanup EXIT
instance_of() { python3 -c 'import sqlite3,sys; print(sqlite3.connect("file:"+sys.argv[1]+"?mode=ro", uri=True).execute("select value from meta where key=\"instance\"").fetchone()[0])' "$1/banger.db"; }
alias_of() { ip -d link show "$1" 2>/dev/null | sed -n 's/^ *alias //p'; }
has_link() { ip link show "$1" >/dev/null 2>&1; }
alive() { ! pid_gone "$1"; }

# start X BRIDGE CIDR: bangerd for instance X (dirs under $T/X), pid in PID_X
start() {
	local x=$1
	mkdir -p "$T/$x/specs" "$T/$x/state"
	"$BIN/bangerd" --spec-dir "$T/$x/specs" --status-dir "$T/$x/specs" --state-dir "$T/$x/state" \
		--runtime-dir "$T/$x/state/run" --image-dir "$GUEST_DIR" --driver qemu \
		--resync 0 --bridge "$2" --cidr "$3" --log-level debug >>"$T/$x.log" 2>&1 &
	PIDS+=($!)
	eval "PID_$x=$!"
}
ready() { STATUS=$T/$1/specs is_ready "$2"; }
pid_of() { STATUS=$T/$1/specs vm_pid "$2"; }

# A tap an operator made by hand, with no alias: nobody's orphan.
ip tuntap add dev bgr-deadbeef mode tap
check "hand-made bgr-deadbeef has no alias" test -z "$(alias_of bgr-deadbeef)"

start a banger0 172.16.0.1/24
start b bangerb 172.17.0.1/24
guest_yaml va | put "$T/a/specs/va.yaml"
guest_yaml vb | put "$T/b/specs/vb.yaml"
check "a: va Ready" wait_until 240 ready a va
check "b: vb Ready" wait_until 240 ready b vb
IA=$(instance_of "$T/a/state") IB=$(instance_of "$T/b/state")
check "two instances, two tags ($IA, $IB)" test -n "$IA" -a -n "$IB" -a "$IA" != "$IB"
UA=$(ls "$T/a/state/vms") UB=$(ls "$T/b/state/vms")
TA=bgr-${UA:0:8} TB=bgr-${UB:0:8}
check "a's tap $TA carries a's tag" test "$(alias_of "$TA")" = "banger:$IA"
check "b's tap $TB carries b's tag" test "$(alias_of "$TB")" = "banger:$IB"
check "a's rules are in a's table" bash -c "nft list set bridge banger_$IA taps | grep -q bgr-${UA:0:8}"
check "b's rules are in b's table" bash -c "nft list set bridge banger_$IB taps | grep -q bgr-${UB:0:8}"
PA=$(pid_of a va) PB=$(pid_of b vb)
check "bgr-deadbeef survived both starts" has_link bgr-deadbeef

# An orphan of b's (its tag, no VM), made while both run.
ip tuntap add dev bgr-b0b0b0b0 mode tap
ip link set dev bgr-b0b0b0b0 alias "banger:$IB"

# restart X BRIDGE CIDR: SIGKILL its bangerd (VMs keep running), start again.
restart() {
	local x=$1 pid
	eval "pid=\$PID_$x"
	kill -9 "$pid"
	wait "$pid" 2>/dev/null
	start "$@"
}

restart a banger0 172.16.0.1/24
check "a restarted: adopts va (same pid $PA)" wait_until 60 grep -q "va: adopted running VMM (pid $PA)" "$T/a.log"
check "a's sweep ran and passed over b's orphan (log)" wait_until 30 grep -q "tap bgr-b0b0b0b0: alias 'banger:$IB' is not ours" "$T/a.log"
check "a's sweep passed over the hand-made bgr-deadbeef (log)" grep -q "tap bgr-deadbeef: alias '' is not ours" "$T/a.log"
check "a's restart: b's VMM still running" alive "$PB"
check "a's restart: b's tap $TB untouched" test "$(alias_of "$TB")" = "banger:$IB"
check "a's restart: b's rules untouched" bash -c "nft list set bridge banger_$IB taps | grep -q bgr-${UB:0:8}"
check "a's restart: b's orphan bgr-b0b0b0b0 left alone" has_link bgr-b0b0b0b0
check "a's restart: bgr-deadbeef survives" has_link bgr-deadbeef
check "a's restart: a's own tap and rules still there" bash -c "ip link show $TA >/dev/null && nft list set bridge banger_$IA taps | grep -q bgr-${UA:0:8}"
check "a: va still Ready" ready a va
body=$(curl -s -m 5 "http://$(STATUS=$T/a/specs vm_ip va)/")
check "va answers HTTP ($body)" test "$body" = "ok va"

restart b bangerb 172.17.0.1/24
check "b restarted: adopts vb (same pid $PB)" wait_until 60 grep -q "vb: adopted running VMM (pid $PB)" "$T/b.log"
check "b's restart: its own orphan bgr-b0b0b0b0 swept" wait_until 10 bash -c "! ip link show bgr-b0b0b0b0 2>/dev/null"
check "b's restart: a's VMM still running" alive "$PA"
check "b's restart: a's tap $TA untouched" test "$(alias_of "$TA")" = "banger:$IA"
check "b's restart: a's rules untouched" bash -c "nft list set bridge banger_$IA taps | grep -q bgr-${UA:0:8}"
check "b's restart: bgr-deadbeef survives" has_link bgr-deadbeef
body=$(curl -s -m 5 "http://$(STATUS=$T/b/specs vm_ip vb)/")
check "vb answers HTTP ($body)" test "$body" = "ok vb"

# Each removes its own VM; the other's stays.
rm "$T/a/specs/va.yaml"
check "a: va removed" wait_until 60 test ! -e "$T/a/specs/va.status.json"
check "a's tap and chain gone" bash -c "! ip link show $TA 2>/dev/null && ! nft list set bridge banger_$IA taps 2>/dev/null | grep -q bgr-${UA:0:8}"
check "b's VM untouched by a's delete" bash -c "ip link show $TB >/dev/null && kill -0 $PB"
rm "$T/b/specs/vb.yaml"
check "b: vb removed" wait_until 60 test ! -e "$T/b/specs/vb.status.json"
check "no bgr- tap left but bgr-deadbeef" test "$(ip -o link show | grep -o 'bgr-[0-9a-f]*' | sort -u | tr '\n' ' ')" = "bgr-deadbeef "
check "no VM tap left in any bridge table's sets" test -z "$(nft list ruleset bridge 2>/dev/null | grep 'bgr-')"
ip link del bgr-deadbeef
done_testing
