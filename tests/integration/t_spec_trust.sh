#!/bin/bash
# Spec dir trust (docs/operations.md, "Spec dir trust"): the permission
# matrix for the spec dir, its parents, files and subdirectories (owner and
# mode, --spec-owner); bangerd refusing to start with a message naming the
# directory; an untrusted file giving SpecValid=False while its VM keeps its
# last good intent; banger validate reporting the same; skipped symlinks,
# FIFOs and too-deep directories logged and listed; a subdirectory swapped
# for a symlink to a directory outside (nothing outside is read); and a low
# `ulimit -n` (a clear error, never intent lost). VMs are Stopped: no guest.
. "$(dirname "$0")/lib.sh"
private_netns "$0" "$@"

[ "$(id -u)" = 0 ] || skip_all "needs root (chown to another user)"
NOBODY=$(id -u nobody 2>/dev/null) || skip_all "no user nobody to own files"
T=$(test_tmpdir trust)
cleanup() { stop_bangerd; [ -n "${WATCH_PID:-}" ] && kill "$WATCH_PID" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
STATE=$T/state
STATUS=$T/status
mkdir -p "$STATE" "$STATUS"
BANGER=$BIN/banger
cond() { status_field "$1" "[c[\"$2\"] for c in d[\"conditions\"] if c[\"type\"]==\"SpecValid\"][0]"; }
# cond_has NAME TEXT: the SpecValid message contains TEXT
cond_has() { cond "$1" message | grep -qF -- "$2"; }
# db SQL: a read of the intent store
db() { sqlite3 "$STATE/banger.db" "$1" 2>/dev/null; }

# once DIR [ARGS]: one bangerd --once pass; exit code in $rc, log in $T/once.log
once() {
	local dir=$1
	shift
	"$BIN/bangerd" --once --spec-dir "$dir" --state-dir "$STATE/once" --runtime-dir "$STATE/once/run" \
		--status-dir "$STATUS/once" "$@" >"$T/once.log" 2>&1
	rc=$?
}
refused() { # refused DESC DIR EXPECTED-SUBSTRING [ARGS]
	local desc=$1 dir=$2 want=$3
	shift 3
	once "$dir" "$@"
	if [ "$rc" = 1 ] && grep -q "spec dir $dir is not trusted: .*$want.*refusing to start" "$T/once.log"; then
		ok "refused: $desc"
	else
		not_ok "refused: $desc (exit $rc)"
		sed 's/^/# /' "$T/once.log" | tail -n 5
	fi
}
started() { # started DESC DIR [ARGS]
	local desc=$1 dir=$2
	shift 2
	once "$dir" "$@"
	if [ "$rc" = 0 ]; then ok "starts: $desc"; else not_ok "starts: $desc (exit $rc)"; sed 's/^/# /' "$T/once.log" | tail -n 5; fi
}

# ---- 1. the spec dir and its parents at start ------------------------------------
D=$T/d
mkdir -m 0755 "$D"
started "root's 0755 dir in a trusted chain" "$D"
chmod 0777 "$D"
refused "spec dir 0777" "$D" "$D is writable by group and others (mode 0777)"
chmod 0775 "$D"
refused "spec dir 0775" "$D" "$D is writable by group (mode 0775)"
chmod 0757 "$D"
refused "spec dir 0757" "$D" "$D is writable by others (mode 0757)"
chmod 0755 "$D"
chown "$NOBODY" "$D"
refused "spec dir owned by nobody" "$D" "$D is owned by uid $NOBODY, not root or a --spec-owner"
started "--spec-owner nobody" "$D" --spec-owner nobody
started "--spec-owner by uid, repeated" "$D" --spec-owner root --spec-owner "$NOBODY"
chown 0 "$D"
mkdir -m 0755 "$T/par" "$T/par/specs"
chmod 0777 "$T/par"
refused "a parent writable by others" "$T/par/specs" "$T/par is writable by group and others"
chmod 0755 "$T/par"
chown "$NOBODY" "$T/par"
refused "a parent owned by nobody" "$T/par/specs" "$T/par is owned by uid $NOBODY"
started "...which --spec-owner allows" "$T/par/specs" --spec-owner nobody
TMPD=$(mktemp -d /tmp/banger-t-trust.XXXXXX)
refused "a spec dir under /tmp (sticky 1777: refused, as sshd does)" "$TMPD" "/tmp is writable by group and others (mode 1777)"
rmdir "$TMPD"
# git-sync: the spec dir is a symlink; root's link is fine, another user's is not.
ln -s d "$T/current"
started "through root's symlink (git-sync)" "$T/current"
chown -h "$NOBODY" "$T/current"
refused "through nobody's symlink" "$T/current" "symlink $T/current is owned by uid $NOBODY"
started "nobody's symlink with --spec-owner nobody" "$T/current" --spec-owner nobody
rm "$T/current"
"$BIN/bangerd" --spec-owner no-such-user-xyz --spec-dir "$D" >"$T/once.log" 2>&1
rc=$?
check "--spec-owner unknown user: usage error (exit $rc)" [ "$rc" = 2 ]
check "...saying so" grep -q "no such user 'no-such-user-xyz'" "$T/once.log"

# ---- 2. files and subdirectories, bangerd running ---------------------------------
SPEC=$T/specs
mkdir -m 0755 "$SPEC" "$SPEC/team"
vm_yaml vm-a | put "$SPEC/a.yaml"
vm_yaml vm-b | put "$SPEC/b.yaml"
vm_yaml vm-d | put "$SPEC/team/d.yaml"
start_bangerd "$SPEC" "$STATE" --status-dir "$STATUS" --resync 3600
check "bangerd starts on a trusted dir" wait_until 10 grep -q "initial sync done" "$T/bangerd.log"
for v in vm-a vm-b vm-d; do
	check "$v: generation 1, SpecValid True" wait_until 5 status_is $v 'd["generation"]' 1
done

# A file made writable by others: SpecValid=False naming file and mode; the
# content written while it is untrusted is never read.
chmod 0666 "$SPEC/a.yaml"
check "0666 file: SpecValid False" wait_until 5 test "$(cond vm-a status 2>/dev/null)" = False
check "...the reason names the file and its mode" \
	cond_has vm-a "untrusted spec file: a.yaml is writable by group and others (mode 0666); not read"
check "...a log line says so" grep -q "$SPEC/a.yaml: untrusted spec file: a.yaml is writable by group and others (mode 0666)" "$T/bangerd.log"
vm_yaml vm-a Stopped 512 >"$SPEC/a.yaml" # in place: keeps 0666
sleep 1
check "content written while untrusted creates no intent (generation 1)" status_is vm-a 'd["generation"]' 1
check "vm-a keeps its last good intent (still Stopped, not deleted)" status_is vm-a 'd["phase"]' Stopped
check "one log line, not one per look" [ "$(grep -c "$SPEC/a.yaml: untrusted" "$T/bangerd.log")" = 1 ]
chmod 0644 "$SPEC/a.yaml"
check "fixed mode: the new content is read (generation 2)" wait_until 5 status_is vm-a 'd["generation"]' 2
check "...and SpecValid True again" wait_until 5 test "$(cond vm-a status)" = True

# A file owned by another user.
chown "$NOBODY" "$SPEC/b.yaml"
check "nobody's file: SpecValid False" wait_until 5 test "$(cond vm-b status 2>/dev/null)" = False
check "...naming the owner" cond_has vm-b "b.yaml is owned by uid $NOBODY, not root or a --spec-owner"

# A new file owned by nobody defines nothing.
vm_yaml vm-c >"$T/c.yaml" && chown "$NOBODY" "$T/c.yaml" && mv "$T/c.yaml" "$SPEC/c.yaml"
check "new untrusted file: a log line" wait_until 5 grep -q "$SPEC/c.yaml: untrusted spec file: c.yaml is owned by uid $NOBODY" "$T/bangerd.log"
check "...and no VM" test ! -e "$STATUS/vm-c.status.json"

# A subdirectory made writable by group: the next change in it is not read.
chmod 0775 "$SPEC/team"
vm_yaml vm-d Stopped 768 >>"$SPEC/team/d.yaml.new" && cat "$SPEC/team/d.yaml.new" >"$SPEC/team/d.yaml" && rm "$SPEC/team/d.yaml.new"
check "group-writable subdirectory: SpecValid False" wait_until 5 test "$(cond vm-d status 2>/dev/null)" = False
check "...naming the directory" cond_has vm-d "team/ is writable by group (mode 0775)"
check "...keeping the last good intent (generation 1)" status_is vm-d 'd["generation"]' 1

# banger validate says the same, with the same flag.
"$BANGER" validate "$SPEC" >"$T/v.out" 2>&1
rc=$?
check "validate: exit 1 (rc $rc)" [ "$rc" = 1 ]
check "validate: b.yaml untrusted" grep -qx "$SPEC/b.yaml: untrusted: b.yaml is owned by uid $NOBODY, not root or a --spec-owner; bangerd does not read it" "$T/v.out"
check "validate: c.yaml untrusted" grep -q "^$SPEC/c.yaml: untrusted: c.yaml is owned by uid $NOBODY" "$T/v.out"
check "validate: team/d.yaml untrusted via its directory" grep -q "^$SPEC/team/d.yaml: untrusted: team/ is writable by group (mode 0775)" "$T/v.out"
chmod 0755 "$SPEC/team"
"$BANGER" validate --spec-owner nobody "$SPEC" >"$T/v.out" 2>&1
rc=$?
check "validate --spec-owner nobody: all valid (rc $rc)" [ "$rc" = 0 ]
[ "$rc" = 0 ] || sed 's/^/# /' "$T/v.out"
chmod 0777 "$SPEC"
"$BANGER" validate "$SPEC" >"$T/v.out" 2>&1
check "validate: a 0777 directory is reported" grep -q "^$SPEC: untrusted: the directory is writable by group and others (mode 0777); bangerd refuses it as a spec dir" "$T/v.out"
chmod 0755 "$SPEC"
kill -HUP "$BANGERD_PID"
sleep 0.5

# ---- 3. skips: one log line each, and a line in validate --------------------------
mkdir -m 0755 "$T/elsewhere"
vm_yaml vm-link >"$T/elsewhere/l.yaml"
ln -s "$T/elsewhere/l.yaml" "$SPEC/link.yaml"
ln -s "$T/elsewhere" "$SPEC/linkdir"
mkfifo "$SPEC/fifo.yaml"
deep=$SPEC
for i in $(seq 1 17); do deep=$deep/l$i; done
mkdir -p "$deep" && vm_yaml vm-deep >"$deep/deep.yaml"
kill -HUP "$BANGERD_PID"
check "symlinked file: logged" wait_until 5 grep -q "$SPEC/link.yaml: skipped: a symlink; symlinks below the spec dir are never followed" "$T/bangerd.log"
check "symlinked directory: logged" grep -q "$SPEC/linkdir: skipped: a symlink" "$T/bangerd.log"
check "FIFO: logged" grep -q "$SPEC/fifo.yaml: skipped: not a regular file" "$T/bangerd.log"
check "too deep: logged" grep -q "$SPEC/l1/.*/l16/l17: skipped: a directory more than 16 levels deep" "$T/bangerd.log"
check "none of them made a VM" test ! -e "$STATUS/vm-link.status.json" -a ! -e "$STATUS/vm-deep.status.json"
kill -HUP "$BANGERD_PID"
sleep 1
check "a second resync does not log them again" [ "$(grep -c "link.yaml: skipped" "$T/bangerd.log")" = 1 ]
"$BANGER" validate "$SPEC" >"$T/v.out" 2>&1
check "validate lists the symlinked file" grep -qx "$SPEC/link.yaml: skipped: a symlink; symlinks below the spec dir are never followed" "$T/v.out"
check "validate lists the symlinked dir" grep -q "^$SPEC/linkdir: skipped: a symlink" "$T/v.out"
check "validate lists the FIFO" grep -q "^$SPEC/fifo.yaml: skipped: not a regular file" "$T/v.out"
check "validate lists the deep dir" grep -q "/l17: skipped: a directory more than 16 levels deep" "$T/v.out"
rm -rf "$SPEC/l1" "$SPEC/fifo.yaml" "$SPEC/link.yaml" "$SPEC/linkdir"

# ---- 4. a subdirectory swapped for a symlink to a directory outside ----------------
# Every open in $T/outside is seen by an inotify watch of our own: bangerd
# must never open anything there, whatever order events and reads take.
OUT=$T/outside
mkdir -m 0755 "$OUT" "$SPEC/sub"
vm_yaml vm-s | put "$SPEC/sub/s.yaml"
check "vm-s from sub/s.yaml" wait_until 5 status_is vm-s 'd["generation"]' 1
{ vm_yaml vm-s Stopped 999; echo "---"; vm_yaml vm-outside; } >"$OUT/s.yaml"
/usr/bin/python3 - "$OUT" "$T/opens" <<'PY' &
import ctypes, os, sys, select
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.inotify_init1(os.O_CLOEXEC)
IN_ACCESS, IN_OPEN = 0x1, 0x20
libc.inotify_add_watch(fd, sys.argv[1].encode(), IN_ACCESS | IN_OPEN)
with open(sys.argv[2], "w") as out:
    out.write("ready\n"); out.flush()
    while True:
        data = os.read(fd, 65536)
        out.write("event %d bytes\n" % len(data)); out.flush()
PY
WATCH_PID=$!
wait_until 5 grep -q ready "$T/opens"
for i in $(seq 1 20); do
	# An event for sub/s.yaml, then the directory is swapped for a link
	# before (or after) bangerd reads it. Then an edit in the moved
	# directory: the watch may still know it by its old name, sub/, which
	# now leads outside.
	vm_yaml vm-s Stopped $((256 + i)) >"$SPEC/sub/s.yaml"
	mv "$SPEC/sub" "$SPEC/sub.old.$i"
	ln -s "$OUT" "$SPEC/sub"
	sleep 0.$((i % 3))
	vm_yaml vm-s Stopped $((256 + i)) >"$SPEC/sub.old.$i/s.yaml"
	sleep 0.1
	rm "$SPEC/sub"
	mv "$SPEC/sub.old.$i" "$SPEC/sub"
done
ln -s "$OUT" "$SPEC/sub2"
kill -HUP "$BANGERD_PID"
sleep 1
kill "$WATCH_PID" 2>/dev/null
wait "$WATCH_PID" 2>/dev/null
WATCH_PID=
check "nothing in the outside directory was opened or read" [ "$(grep -c event "$T/opens")" = 0 ]
check "no VM from the outside file" test ! -e "$STATUS/vm-outside.status.json"
no_outside_content() { ! grep -q "vm-outside" "$T/bangerd.log" && ! db "select spec_json from vms" | grep -q '"memoryMiB":999'; }
check "vm-s never took the outside content (memory 999, vm-outside)" no_outside_content
check "vm-s ends with the spec dir's last content (memory 276)" \
	wait_until 5 sh -c "sqlite3 '$STATE/banger.db' \"select spec_json from vms where name='vm-s'\" | grep -q '\"memoryMiB\":276'"
rm "$SPEC/sub2"
stop_bangerd

# ---- 5. a low `ulimit -n`: a clear error or a full pass, never lost intent --------
# A spec 12 directories down holds one fd per level while the tree is walked.
deep=$SPEC
for i in $(seq 1 12); do deep=$deep/n$i; done
mkdir -p "$deep" && vm_yaml vm-n | put "$deep/n.yaml"
"$BIN/bangerd" --once --spec-dir "$SPEC" --state-dir "$STATE" --runtime-dir "$STATE/run" \
	--status-dir "$STATUS" >"$T/low.log" 2>&1
check "vm-n defined with enough fds" status_is vm-n 'd["generation"]' 1
# b.yaml is still nobody's: across a restart its VM keeps its intent.
check "restart: nobody's b.yaml still backs vm-b's intent" \
	test "$(db "select count(*) from vms where name='vm-b' and deleted_at_ms is null")" = 1
check "restart: vm-b SpecValid False, naming the owner" cond_has vm-b "b.yaml is owned by uid $NOBODY"
errors=0 passes=0 bad=0
for n in $(seq 6 40); do
	( ulimit -n "$n"; exec "$BIN/bangerd" --once --spec-dir "$SPEC" --state-dir "$STATE" \
		--runtime-dir "$STATE/run" --status-dir "$STATUS" ) >"$T/low.log" 2>&1
	rc=$?
	gone=$(db "select count(*) from vms where name='vm-n' and deleted_at_ms is null")
	if [ "$rc" = 0 ] && [ "$gone" = 1 ] && ! grep -q "intent deleted" "$T/low.log"; then
		passes=$((passes + 1))
	elif [ "$rc" = 1 ] && grep -q "Too many open files" "$T/low.log" && [ "$gone" = 1 ]; then
		errors=$((errors + 1))
	else
		bad=$((bad + 1))
		echo "# ulimit -n $n: exit $rc, vm-n live rows: $gone"
		tail -n 3 "$T/low.log" | sed 's/^/#   /'
	fi
done
check "every low limit: a clear EMFILE error or a full pass, intent kept ($errors errors, $passes passes, $bad bad)" [ "$bad" = 0 ]
check "the low limits did hit the error path" [ "$errors" -gt 0 ]
check "and a higher one passed" [ "$passes" -gt 0 ]
done_testing
