#!/bin/bash
# Day-to-day CLI (issue 11): global flags after the command, wait, get -w/-l/
# -o name|jsonpath|custom-columns, Pending entries, diff, observedAt and the
# staleness warnings, --help, error prefixes, completion zsh. A real bangerd
# with Stopped specs (no guest is booted).
. "$(dirname "$0")/lib.sh"
private_netns "$0" "$@"

T=$(test_tmpdir cli-ops)
cleanup() {
	[ -n "${WATCH_PID:-}" ] && kill "$WATCH_PID" 2>/dev/null
	stop_bangerd
	sleep 0.2
	cleanup_cgroups "${STATE:-}"
	rm -rf "$T"
}
trap cleanup EXIT
SPEC=$T/specs
STATE=$T/state
STATUS=$SPEC
mkdir -p "$SPEC" "$STATE" "$T/in" "$T/empty"
B=$BIN/banger
G="--spec-dir $SPEC --state-dir $STATE --status-dir $STATUS"

# labeled NAME TEAM [STATE] [MEMORY]
labeled() {
	cat <<YAML
# $1 belongs to team $2
apiVersion: banger/v1
kind: VM
metadata:
  name: $1
  labels: {team: $2}
spec:
  state: ${3:-Stopped}
  memoryMiB: ${4:-256}
  kernel: {path: /var/lib/banger/images/bzImage}
  rootfs: {path: /var/lib/banger/images/rootfs.ext4}
YAML
}

# ---- --help, usage, errors ----------------------------------------------------
for c in apply delete get describe wait diff validate completion; do
	out=$("$B" "$c" --help 2>&1)
	rc=$?
	check "banger $c --help exits 0 with a usage" test $rc = 0 -a "${out:0:13}" = "Usage: banger"
	check "banger --help lists $c" bash -c "'$B' --help | grep -q '^  $c '"
done
"$B" get --bogus >/dev/null 2>"$T/err"
check "unknown option → 2" test $? = 2
check "getopt's message is prefixed too" grep -q "^banger get: unrecognized option '--bogus'" "$T/err"
"$B" get --spec-dir 2>"$T/err"
check "a global option without its value → 2" test $? = 2
"$B" $G get NOT_A_NAME 2>"$T/err"
check "invalid name → exit 1" test $? = 1
check "invalid name reported as such, prefixed" grep -q "^banger get: 'NOT_A_NAME' is not a valid VM name" "$T/err"
check "not EINVAL" bash -c "! grep -q 'Invalid argument' '$T/err'"
for c in describe delete; do
	"$B" $G "$c" Bad.Name 2>"$T/err"
	check "$c: invalid name reported with 'banger $c:'" grep -q "^banger $c: 'Bad.Name' is not a valid VM name" "$T/err"
done
"$B" $G wait Bad.Name --for=delete 2>"$T/err"
check "wait: invalid name reported" grep -q "^banger wait: 'Bad.Name' is not a valid VM name" "$T/err"
"$B" validate "$T/empty" 2>"$T/err"
check "validate on an empty dir exits 1" test $? = 1
check "and says so" grep -q "^banger validate: .*: no spec files" "$T/err"
"$B" $G apply -f "$T/empty" 2>"$T/err"
check "apply on an empty dir exits 1, prefixed" test $? = 1 -a -s "$T/err"
check "apply error starts with 'banger apply:'" grep -q "^banger apply: " "$T/err"
"$B" $G wait x-1 --for=sideways 2>"$T/err"
check "wait: bad --for → 2 with a message" test $? = 2
check "wait: bad --for message prefixed" grep -q "^banger wait: --for" "$T/err"
"$B" $G get -l 'team=a,' 2>"$T/err"
check "bad selector → 2" test $? = 2
check "bad selector says where" grep -q "at character" "$T/err"
"$B" $G get -o 'jsonpath={..name}' 2>"$T/err"
check "unsupported jsonpath → 2" test $? = 2

# ---- before bangerd runs: Pending, diff against the spec files --------------------
labeled api-1 a >"$T/in/api-1.yaml"
labeled api-2 a >"$T/in/api-2.yaml"
labeled db-1 b >"$T/in/db-1.yaml"
out=$("$B" apply -f "$T/in" --spec-dir "$SPEC" --state-dir "$STATE")
check "global flags after the command" grep -q "vm/api-1 created" <<<"$out"
check "a single-VM YAML input keeps its comments" grep -q "^# api-1 belongs to team a" "$SPEC/api-1.yaml"
out=$("$B" apply --dry-run -f "$T/in/api-1.yaml" --spec-dir="$SPEC")
check "dry run of an unchanged spec says unchanged" grep -q "vm/api-1 unchanged (dry run)" <<<"$out"
labeled api-1 a Stopped 256 | sed 's/belongs to/is owned by/' >"$T/in/api-1b.yaml"
out=$("$B" apply -f "$T/in/api-1b.yaml" --spec-dir="$SPEC")
check "a comment-only change is unchanged" grep -q "vm/api-1 unchanged" <<<"$out"
check "but the new comment is written" grep -q "is owned by" "$SPEC/api-1.yaml"
{ labeled m-1 c; echo ---; labeled m-2 c; } >"$T/in/multi.yaml"
"$B" apply -f "$T/in/multi.yaml" --spec-dir="$SPEC" >/dev/null
check "a multi-VM input is written normalised, and says so" grep -q "comments of the input are not kept" "$SPEC/m-1.yaml"
"$B" delete m-1 m-2 --spec-dir="$SPEC" >/dev/null

out=$("$B" get api-1 $G 2>"$T/err")
check "get NAME before any status: Pending, not 'not found'" grep -qE "^api-1 +Pending" <<<"$out"
check "no bangerd: get warns" grep -q "^banger get: warning: no bangerd holds $STATE/bangerd.lock" "$T/err"
out=$("$B" get $G 2>/dev/null)
check "get lists spec-only VMs as Pending" test "$(grep -c Pending <<<"$out")" = 3
"$B" describe db-1 $G >"$T/out" 2>"$T/err"
check "describe a Pending VM" grep -q "no status from bangerd yet" "$T/out"
check "describe warns too" grep -q "^banger describe: warning: no bangerd" "$T/err"

"$B" diff -f "$T/in/api-1.yaml" $G >"$T/out"
check "diff: same spec → exit 0" test $? = 0
check "diff: same spec prints nothing" test ! -s "$T/out"
labeled api-1 a Running 512 >"$T/in/api-1-big.yaml"
"$B" diff -f "$T/in/api-1-big.yaml" $G >"$T/out"
check "diff: a change → exit 1" test $? = 1
check "diff: compared with the spec file (no bangerd)" grep -q "against $SPEC/api-1.yaml" "$T/out"
check "diff: field by field" grep -q "spec.memoryMiB: 256 → 512" "$T/out"
check "diff: state change" grep -q 'spec.state: "Stopped" → "Running"' "$T/out"
check "diff: Stopped → Running starts the VM" grep -q "=> starts the VM" "$T/out"
labeled api-1 b Stopped 256 | "$B" diff -f - $G >"$T/out"
check "diff: a label-only change → 1, no restart" test $? = 1
check "diff: label field" grep -q 'metadata.labels.team: "a" → "b"' "$T/out"
check "diff: says no restart" grep -q "=> no restart" "$T/out"
labeled new-1 a >"$T/in/new-1.yaml"
"$B" diff -f "$T/in/new-1.yaml" $G >"$T/out"
check "diff: a new VM → 1, creates" test $? = 1
check "diff: creates the VM" grep -q "=> creates the VM" "$T/out"
labeled bad-1 a Stopped 1 >"$T/in/bad.yaml"
"$B" diff -f "$T/in/bad.yaml" $G >/dev/null 2>"$T/err"
check "diff: invalid input → 2" test $? = 2
check "diff: with the diagnostic" grep -q "spec.memoryMiB" "$T/err"
"$B" diff $G >/dev/null 2>&1
check "diff: no -f → 2" test $? = 2
# a spec whose state is Running in the file on disk: restart when boot fields change
labeled run-1 a Running 256 >"$SPEC/run-1.yaml"
labeled run-1 a Running 384 | "$B" diff -f - $G >"$T/out"
check "diff: a boot field of a Running VM restarts it" grep -q "=> restarts the VM (memoryMiB 256→384)" "$T/out"
rm -f "$SPEC/run-1.yaml"

# ---- with bangerd (resync 2 s, so observedAt refreshes fast) ----------------------
start_bangerd "$SPEC" "$STATE" --resync 2
check "bangerd starts" wait_until 10 grep -q "initial sync done" "$T/bangerd.log"
"$B" wait api-1 api-2 db-1 --for=condition=SpecValid --timeout 20s $G >"$T/out"
check "wait --for=condition=SpecValid → 0" test $? = 0
check "wait prints condition met per VM" test "$(grep -c 'condition met' "$T/out")" = 3
"$B" wait -l team=a --for=phase=Stopped --timeout 20s $G >"$T/out"
check "wait -l team=a --for=phase=Stopped" test $? = 0 -a "$(wc -l <"$T/out")" = 2
"$B" wait db-1 "--for=jsonpath={.phase}=Stopped" --timeout 5s $G >/dev/null
check "wait --for=jsonpath={.phase}=Stopped" test $? = 0
t0=$(date +%s%N)
"$B" wait db-1 --for=phase=Running --timeout 1500ms $G >/dev/null 2>"$T/err"
rc=$?
t1=$(date +%s%N)
check "wait: timeout → exit 1" test $rc = 1
check "wait: timeout message names the VM and its phase" grep -q "^banger wait: timed out after 1.5s waiting for vm/db-1 (phase Stopped)" "$T/err"
check "wait: timed out after ~1.5 s (not early, not much later)" test $(((t1 - t0) / 1000000)) -ge 1400 -a $(((t1 - t0) / 1000000)) -lt 5000
"$B" wait nope-1 --for=condition=Ready --timeout 1s $G 2>"$T/err"
check "wait: unknown VM → 1 at once" test $? = 1
check "wait: says not found" grep -q "vm/nope-1 not found" "$T/err"
"$B" wait -l team=zzz --for=delete $G 2>"$T/err"
check "wait: selector matching nothing → 1" test $? = 1

out=$("$B" get $G 2>"$T/err")
check "bangerd runs: no 'no bangerd' warning" bash -c "! grep -q 'no bangerd' '$T/err'"
check "bangerd runs: no staleness warning" test ! -s "$T/err"
check "get -l team=a" test "$("$B" get -l team=a -o name $G)" = $'vm/api-1\nvm/api-2'
check "get -l team!=a" test "$("$B" get -l 'team!=a' -o name $G)" = "vm/db-1"
check "get -l team (exists), !team" test "$("$B" get -l '!team' -o name $G | wc -l)" = 0
check "get NAME -o jsonpath={.phase}" test "$("$B" get api-1 -o 'jsonpath={.phase}' $G)" = Stopped
check "get -o jsonpath={.items[*].name}" test "$("$B" get -o 'jsonpath={.items[*].name}' $G)" = "api-1 api-2 db-1"
check "get -o jsonpath={.conditions[0].status}" test "$("$B" get db-1 -o 'jsonpath={.conditions[0].type}={.conditions[0].status}' $G)" = "SpecValid=True"
out=$("$B" get -o 'custom-columns=NAME:.name,PHASE:.phase,PID:.runtime.pid' -l team=b $G)
check "custom-columns header" grep -qE "^NAME +PHASE +PID" <<<"$out"
check "custom-columns row, <none> for null" grep -qE "^db-1 +Stopped +<none>" <<<"$out"
"$B" describe -l team=a $G >"$T/out"
check "describe -l describes each match" test "$(grep -c '^Name:' "$T/out")" = 2
check "describe shows observedAt" grep -q "^Observed at:" "$T/out"

# observedAt: refreshed with no change of content
o1=$(status_field db-1 'd["observedAt"]')
check "status has observedAt" test -n "$o1" -a "$o1" != None
observed_moved() {
	local o
	o=$(status_field db-1 'd["observedAt"]') && [ -n "$o" ] && [ "$o" != None ] && [ "$o" != "$o1" ]
}
check "observedAt moves forward while nothing changes" wait_until 10 observed_moved
check "refresh is logged nowhere as a phase change" bash -c "[ \$(grep -c 'db-1: phase' '$T/bangerd.log') = 1 ]"

# get -w: the list, then a row per change, a Deleted row when a VM goes
"$B" get -w -l team=a $G >"$T/watch" 2>"$T/watch.err" &
WATCH_PID=$!
check "get -w prints the list first" wait_until 5 grep -qE "^api-2 +Stopped" "$T/watch"
n0=$(wc -l <"$T/watch")
labeled api-2 a Stopped 384 >"$T/in/api-2.yaml"
"$B" apply -f "$T/in/api-2.yaml" --wait --timeout 20s $G >/dev/null
check "get -w prints a row when a status changes" wait_until 5 test "$(wc -l <"$T/watch")" -gt "$n0"
sleep 1
n1=$(wc -l <"$T/watch")
o2=$(status_field api-2 'd["observedAt"]')
sleep 5 # at least two periodic refreshes (resync 2 s)
check "(the status file was refreshed meanwhile)" test "$(status_field api-2 'd["observedAt"]')" != "$o2"
check "get -w prints nothing for observedAt refreshes" test "$(wc -l <"$T/watch")" = "$n1"
"$B" delete api-2 --wait --timeout 20s $G >/dev/null
check "delete --wait (inotify) → status gone" test ! -e "$STATUS/api-2.status.json"
check "get -w prints a Deleted row" wait_until 5 grep -qE "^api-2 +Deleted" "$T/watch"
labeled db-2 b >"$SPEC/db-2.yaml"
sleep 1
check "get -w -l team=a ignores other teams" bash -c "! grep -q db-2 '$T/watch'"
kill "$WATCH_PID"
wait "$WATCH_PID" 2>/dev/null
WATCH_PID=

# wait --for=delete wakes on the unlink
"$B" wait api-1 --for=delete --timeout 30s $G >"$T/out" &
WPID=$!
sleep 0.5
"$B" delete api-1 $G >/dev/null
wait "$WPID"
check "wait --for=delete → 0 once deleted" test $? = 0
check "wait --for=delete prints deleted" grep -q "vm/api-1 deleted" "$T/out"
"$B" wait api-1 --for=delete --timeout 1s $G >/dev/null
check "wait --for=delete of a VM with no status → 0 at once" test $? = 0
"$B" delete -l team=b --wait --timeout 20s $G >"$T/out"
check "delete -l team=b removes both" test "$(grep -c deleted "$T/out")" = 2 -a ! -e "$SPEC/db-1.yaml" -a ! -e "$SPEC/db-2.yaml"

# diff against bangerd's intent
labeled web-1 a >"$SPEC/web-1.yaml"
"$B" wait web-1 --for=condition=SpecValid --timeout 20s $G >/dev/null
labeled web-1 a Stopped 512 >"$T/in/web-1.yaml"
"$B" diff -f "$T/in/web-1.yaml" $G >"$T/out"
check "diff with bangerd running → 1" test $? = 1
check "diff compares with bangerd's intent" grep -q "against bangerd's intent, generation 1" "$T/out"
check "diff of a Stopped VM: restart at its next start" grep -q "restarts the VM at its next start (memoryMiB 256→512)" "$T/out"

# ---- bangerd gone: staleness --------------------------------------------------
stop_bangerd
"$B" get $G >/dev/null 2>"$T/err"
check "bangerd stopped: get warns no bangerd holds the lock" grep -q "no bangerd holds $STATE/bangerd.lock" "$T/err"
sleep 5 # more than two resync periods (2 s)
"$B" get $G >/dev/null 2>"$T/err"
check "old status: get warns it was last confirmed long ago" grep -q "vm/web-1: status last confirmed .* ago, more than two resync periods (2s)" "$T/err"

# ---- completion --------------------------------------------------------------
"$B" completion zsh >"$T/banger.zsh"
check "completion zsh exits 0" test $? = 0
for c in apply delete get describe wait diff validate completion; do
	check "completion zsh knows $c" grep -q "^    '$c:" "$T/banger.zsh"
done
check "completion zsh parses (zsh -n)" zsh -n "$T/banger.zsh"
check "completion zsh loads under compinit" zsh -fc "autoload -U compinit && compinit -u -d $T/zcd && source $T/banger.zsh && whence -w _banger | grep -q function"
# _banger's decisions, with the completion system's builtins stubbed to print
# what they were asked to offer (real banger for the VM names).
zcomp() {
	PATH=$BIN:$PATH BANGER_SPEC_DIR=$SPEC BANGER_STATE_DIR=$STATE zsh -fc '
compadd() { if [[ $1 == -a ]]; then print -r -- "compadd ${(P)2}"; else print -r -- "compadd $*"; fi }
_describe() { print -r -- "describe $1 ${(P)2}"; }
_files() { print -r -- "files $*"; }
compdef() { : }
source "$1"; shift
PREFIX=$1; shift
words=("$@"); CURRENT=$#words
_banger' zcomp "$T/banger.zsh" "$@"
}
out=$(zcomp ge banger ge)
check "zsh: a command is completed from the table" grep -q "^describe banger command apply:.* get:show VM status" <<<"$out"
out=$(BANGER_STATUS_DIR=$STATUS zcomp "" banger --spec-dir "$SPEC" get "")
check "zsh: VM names after get (past a global option)" grep -qx "compadd web-1" <<<"$out"
out=$(zcomp - banger get -)
check "zsh: get's options" grep -q "^compadd -- -o --output -l --selector -w --watch" <<<"$out"
out=$(zcomp "" banger get -o "")
check "zsh: -o formats" grep -q "^compadd table wide json yaml name jsonpath= custom-columns=" <<<"$out"
out=$(zcomp "" banger apply -f "")
check "zsh: files after -f" grep -q "^files -g" <<<"$out"
"$B" completion fish 2>/dev/null
check "completion of an unknown shell → 2" test $? = 2
done_testing
