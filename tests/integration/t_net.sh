#!/bin/bash
# t_net.sh — controller/net against the real kernel, through build/tests/net-tool.
# Re-executes itself inside a private network namespace (unshare -n): it never
# creates, changes or deletes anything in the host's network namespace, and
# everything it creates dies with the namespace (the EXIT trap deletes it too).
set -u
. "$(dirname "$0")/lib.sh"

BIN=${BANGER_BIN_DIR:-build}
TOOL=$BIN/tests/net-tool

if [ -z "${T_NET_IN_NETNS:-}" ]; then
	[ "$(id -u)" = 0 ] || { echo "skip: needs root (CAP_NET_ADMIN)"; exit 77; }
	[ -x "$TOOL" ] || { echo "skip: $TOOL not built (make all-tests)"; exit 77; }
	[ -c /dev/net/tun ] || { echo "skip: no /dev/net/tun"; exit 77; }
	if ! command -v unshare >/dev/null || ! command -v ip >/dev/null; then
		echo "skip: needs unshare and ip (util-linux, iproute2)"
		exit 77
	fi
	export T_NET_IN_NETNS=1 T_NET_HOST_NS
	T_NET_HOST_NS=$(readlink /proc/self/ns/net)
	exec unshare -n bash "$0" "$@"
fi

# Belt and braces: refuse to run in the namespace we were started from.
if [ "$(readlink /proc/self/ns/net)" = "${T_NET_HOST_NS:-}" ]; then
	echo "not ok 1 - still in the host network namespace, refusing to run"
	exit 1
fi

BR=brt0
CIDR=172.16.0.1/24
TAP1=bgr-0000aa01
TAP2=bgr-0000aa02
ERR=$(mktemp)
cleanup() {
	for l in $TAP1 $TAP2 bgr-cyc00001 bgr-0000bb01 bgr-0000bb02 tun0 nb0 $BR; do
		ip link del "$l" 2>/dev/null
	done
	rm -f "$ERR"
}
trap cleanup EXIT

not() { ! "$@"; }
nok() { not_ok "$@"; }
# check DESC CMD...: ok when CMD succeeds.
# expect_rc RC DESC CMD...: ok when CMD exits with RC (stderr kept in $ERR).
expect_rc() {
	local want=$1 d=$2 rc; shift 2
	"$@" 2>"$ERR"; rc=$?
	if [ "$rc" = "$want" ]; then ok "$d"; else nok "$d (exit $rc, wanted $want)"; sed 's/^/# /' "$ERR"; fi
}
link_exists() { ip link show dev "$1" >/dev/null 2>&1; }
link_has() { ip -d link show dev "$1" 2>/dev/null | grep -q -- "$2"; }
is_up() { ip -o link show dev "$1" | grep -q '[<,]UP[,>]'; }
mtu_of() { ip -o link show dev "$1" | sed -n 's/.* mtu \([0-9]*\) .*/\1/p'; }
addr_count() { ip -o -4 addr show dev "$1" | grep -c " inet $2 "; }

# --- bridge -----------------------------------------------------------------
expect_rc 0 "bridge-ensure creates $BR" "$TOOL" bridge-ensure $BR $CIDR
expect_rc 0 "bridge-ensure again is a no-op" "$TOOL" bridge-ensure $BR $CIDR
check "$BR is a bridge" link_has $BR "bridge forward_delay"
check "$BR is up" is_up $BR
check "$BR has $CIDR exactly once" test "$(addr_count $BR $CIDR)" = 1

ip addr del $CIDR dev $BR && ip link set $BR down
expect_rc 0 "bridge-ensure repairs a bridge that lost its address and went down" \
	"$TOOL" bridge-ensure $BR $CIDR
check "address is back" test "$(addr_count $BR $CIDR)" = 1
check "bridge is up again" is_up $BR

expect_rc 22 "bridge-ensure rejects a bad CIDR" "$TOOL" bridge-ensure brbad0 172.16.0.0/24
check "no bridge was created for the bad CIDR" not link_exists brbad0

ip link add nb0 type veth peer name nb1
expect_rc 17 "bridge-ensure on an existing veth fails with EEXIST" \
	"$TOOL" bridge-ensure nb0 $CIDR
check "the error says it is not a bridge" grep -q "not a bridge" "$ERR"
check "no address was put on the veth" test "$(addr_count nb0 $CIDR)" = 0
expect_rc 17 "bridge-ensure on lo fails with EEXIST" "$TOOL" bridge-ensure lo $CIDR

# --- taps -------------------------------------------------------------------
expect_rc 0 "tap-ensure creates $TAP1" "$TOOL" tap-ensure $TAP1 $BR
expect_rc 0 "tap-ensure again reuses it" "$TOOL" tap-ensure $TAP1 $BR
check "$TAP1 is a tun/tap device in tap mode" link_has $TAP1 "tun type tap"
check "$TAP1 is persistent without packet info or vnet header" \
	link_has $TAP1 "pi off vnet_hdr off persist on"
check "$TAP1 is enslaved to $BR" link_has $TAP1 "master $BR "
check "$TAP1 is up" is_up $TAP1
check "$TAP1 MTU matches the bridge" test "$(mtu_of $TAP1)" = "$(mtu_of $BR)"

ip link set $TAP1 nomaster && ip link set $TAP1 down
expect_rc 0 "tap-ensure re-enslaves and ups a detached tap" "$TOOL" tap-ensure $TAP1 $BR
check "$TAP1 is enslaved again" link_has $TAP1 "master $BR "
check "$TAP1 is up again" is_up $TAP1

expect_rc 0 "tap-ensure with an explicit MTU" "$TOOL" tap-ensure $TAP2 $BR 1400
check "$TAP2 has MTU 1400" test "$(mtu_of $TAP2)" = 1400
check "$TAP2 is enslaved to $BR" link_has $TAP2 "master $BR "

expect_rc 19 "tap-ensure with a missing bridge fails with ENODEV" \
	"$TOOL" tap-ensure bgr-0000aa03 nobridge0
check "no tap is left behind when the bridge is missing" \
	not link_exists bgr-0000aa03
expect_rc 22 "tap-ensure onto a veth (not a bridge) fails with EINVAL" \
	"$TOOL" tap-ensure bgr-0000aa03 nb0
ip tuntap add dev tun0 mode tun
expect_rc 17 "tap-ensure on an existing TUN (not TAP) device fails with EEXIST" \
	"$TOOL" tap-ensure tun0 $BR
expect_rc 17 "tap-ensure on an existing veth fails with EEXIST" "$TOOL" tap-ensure nb0 $BR
expect_rc 22 "tap-delete refuses to delete a veth" "$TOOL" tap-delete nb0
check "the veth is still there" link_exists nb0
expect_rc 22 "tap-ensure rejects an over-long name" "$TOOL" tap-ensure bgr-0123456789abc $BR

# --- list / exists ------------------------------------------------------------
list=$("$TOOL" list bgr- 2>/dev/null | tr '\n' ' ')
check "list bgr- finds exactly the two taps, sorted" test "$list" = "$TAP1 $TAP2 "
check "list of everything includes lo and the bridge" \
	bash -c "'$TOOL' list '' | grep -qx lo && '$TOOL' list '' | grep -qx $BR"
check "list with an unmatched prefix is empty" test -z "$("$TOOL" list zzz-)"
check "exists $TAP1" "$TOOL" exists $TAP1
expect_rc 1 "exists on a missing link is false" "$TOOL" exists bgr-ffffffff
check "tap-name derives bgr- + 8 hex" test "$("$TOOL" tap-name 3F2A9C01-dead)" = bgr-3f2a9c01

# --- delete -------------------------------------------------------------------
expect_rc 0 "tap-delete $TAP1" "$TOOL" tap-delete $TAP1
check "$TAP1 is gone" not link_exists $TAP1
expect_rc 0 "tap-delete $TAP1 again is a no-op" "$TOOL" tap-delete $TAP1
expect_rc 0 "tap-delete of a TUN device is allowed (it is a tun/tap)" "$TOOL" tap-delete tun0
list=$("$TOOL" list bgr- 2>/dev/null | tr '\n' ' ')
check "list bgr- now finds only $TAP2" test "$list" = "$TAP2 "

# --- owner tags (IFLA_IFALIAS) --------------------------------------------------
OWN=banger:00000000000000aa OTHER=banger:00000000000000bb
alias_of() { ip -d link show dev "$1" 2>/dev/null | sed -n 's/^ *alias //p'; }
expect_rc 0 "tap-ensure with an owner creates bgr-0000bb01" "$TOOL" tap-ensure bgr-0000bb01 $BR 0 $OWN
check "its alias is the owner tag" test "$(alias_of bgr-0000bb01)" = "$OWN"
check "and it is enslaved and up" bash -c "ip -d link show bgr-0000bb01 | grep -q 'master $BR ' && ip -o link show bgr-0000bb01 | grep -q '[<,]UP[,>]'"
expect_rc 0 "tap-ensure by the same owner reuses it" "$TOOL" tap-ensure bgr-0000bb01 $BR 0 $OWN
expect_rc 17 "tap-ensure by another owner refuses it (EEXIST)" "$TOOL" tap-ensure bgr-0000bb01 $BR 0 $OTHER
check "its alias is unchanged" test "$(alias_of bgr-0000bb01)" = "$OWN"
expect_rc 0 "tap-delete by another owner returns 0 ..." "$TOOL" tap-delete bgr-0000bb01 $OTHER
check "... and leaves it alone" link_exists bgr-0000bb01
expect_rc 0 "tap-delete by its owner" "$TOOL" tap-delete bgr-0000bb01 $OWN
check "deletes it" not link_exists bgr-0000bb01
ip tuntap add dev bgr-0000bb02 mode tap
expect_rc 17 "tap-ensure with an owner refuses an untagged tap" "$TOOL" tap-ensure bgr-0000bb02 $BR 0 $OWN
check "the untagged tap keeps no alias" test -z "$(alias_of bgr-0000bb02)"
expect_rc 0 "tap-delete with an owner leaves an untagged tap ..." "$TOOL" tap-delete bgr-0000bb02 $OWN
check "... alone" link_exists bgr-0000bb02
expect_rc 0 "tap-delete with untagged-ok (a recorded tap) deletes it" "$TOOL" tap-delete bgr-0000bb02 $OWN untagged-ok
check "it is gone" not link_exists bgr-0000bb02

# --- descriptors ----------------------------------------------------------------
expect_rc 0 "50 ensure/list/delete cycles leave no fd behind" \
	"$TOOL" cycle 50 bgr-cyc00001 $BR
check "libnl's nl_connect sets FD_CLOEXEC itself" test "$("$TOOL" nl-cloexec)" = yes

done_testing
