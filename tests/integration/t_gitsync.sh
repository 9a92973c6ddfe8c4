#!/bin/bash
# git-sync: the spec dir is a symlink swapped atomically to a new checkout.
. "$(dirname "$0")/lib.sh"
private_netns "$0" "$@"

T=$(test_tmpdir gitsync)
cleanup() { stop_bangerd; rm -rf "$T"; }
trap cleanup EXIT
ROOT=$T/git
STATE=$T/state
STATUS=$T/status
mkdir -p "$ROOT/rev-1/.git" "$ROOT/rev-2/.git" "$STATE"
vm_yaml app-1 >"$ROOT/rev-1/app.yaml"
vm_yaml app-2 >"$ROOT/rev-1/app2.yaml"
vm_yaml app-1 Stopped 512 >"$ROOT/rev-2/app.yaml"
vm_yaml app-3 >"$ROOT/rev-2/app3.yaml"
ln -s rev-1 "$ROOT/current"

start_bangerd "$ROOT/current" "$STATE" --status-dir "$STATUS" --resync 3600
check "rev-1: app-1" wait_until 5 status_is app-1 'd["generation"]' 1
check "rev-1: app-2" wait_until 5 test -f "$STATUS/app-2.status.json"
check "sourceFile uses the stable link path" status_is app-1 'd["sourceFile"]' "$ROOT/current/app.yaml"

# git-sync's swap: new link beside the old, then rename over it.
ln -s rev-2 "$ROOT/tmp-link" && mv -T "$ROOT/tmp-link" "$ROOT/current"
check "swap: app-1 updated (generation 2)" wait_until 5 status_is app-1 'd["generation"]' 2
check "swap: app-3 created" wait_until 5 test -f "$STATUS/app-3.status.json"
check "swap: app-2 removed" wait_until 5 test ! -e "$STATUS/app-2.status.json"

# Edits inside the new target are watched too.
vm_yaml app-3 Stopped 768 | put "$ROOT/rev-2/app3.yaml"
check "edit after swap is seen" wait_until 5 status_is app-3 'd["generation"]' 2
# ...and edits in the old target are not ours any more.
vm_yaml app-9 >"$ROOT/rev-1/app9.yaml"
sleep 0.5
check "old target no longer watched" test ! -e "$STATUS/app-9.status.json"
done_testing
