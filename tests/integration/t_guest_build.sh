#!/bin/bash
# t_guest_build.sh — guest/build.sh's rootfs half (seconds, unlike the kernel):
# the image has the promised layout and is fsck-clean, a second run is a no-op
# that leaves the output untouched, a rebuild from an empty cache gives the
# same bytes, and a changed input gives a new cache entry. If a kernel was
# already built (make guest-image), its config is checked for the options
# banger relies on.
# Checks run through `check` and `eval` (single-quoted on purpose, expanded
# when run): shellcheck cannot follow that.
# shellcheck disable=SC2016,SC2034,SC2317
# sanitizers: not run (builds the guest rootfs with shell tools: none of our C code)
set -eu
. "$(dirname "$0")/lib.sh"

SRC=${BANGER_SRC_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
for tool in mkfs.ext4 debugfs e2fsck sha256sum; do
	command -v "$tool" >/dev/null || {
		echo "missing tool: $tool"
		exit 77
	}
done
if ! dpkg -S /bin/busybox 2>/dev/null | grep -q '^busybox-static:'; then
	echo "busybox-static not installed"
	exit 77
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/banger-t-gbuild.XXXXXX")
trap 'rm -rf "$WORK"' EXIT


# A private copy of guest/, so the input-change case cannot touch the tree.
cp -r "$SRC/guest" "$WORK/guest"
OUT=$WORK/out
IMG=$OUT/rootfs.ext4
build() { "$WORK/guest/build.sh" "$OUT" rootfs >"$WORK/build.log" 2>&1; }
in_image() { debugfs -R "$1" "$IMG" 2>/dev/null; }

check "build.sh rootfs succeeds" build
check "image is a 64 MiB file" eval '[ "$(stat -c %s "$IMG")" = 67108864 ]'
check "image passes e2fsck -fn" eval 'e2fsck -fn "$IMG" >/dev/null 2>&1'
check "/init in the image is guest/init" \
	eval 'cmp -s <(in_image "cat /init") "$SRC/guest/init"'
check "/sbin/init is a link to /init" \
	eval 'in_image "stat /sbin/init" | grep -q "Fast link dest: \"/init\""'
applets_linked() {
	local a
	for a in /bin/sh /sbin/ip /usr/sbin/httpd; do
		in_image "stat $a" | grep -q 'Fast link dest: "/bin/busybox"' || return 1
	done
}
mount_points() {
	local d
	for d in /proc /sys /dev /tmp /run /data; do
		in_image "stat $d" | grep -q 'Type: directory' || return 1
	done
}
check "busybox applets are links (/bin/sh, /sbin/ip, /usr/sbin/httpd)" applets_linked
check "mount points exist (/proc /sys /dev /tmp /run /data)" mount_points

sum1=$(sha256sum <"$IMG")
mtime1=$(stat -c %Y.%N "$IMG")
sleep 1.1
check "second run succeeds" build
check "second run is a no-op (no rebuild, output untouched)" \
	eval '! grep -q -e "building" -e "wrote" "$WORK/build.log" &&
		[ "$(stat -c %Y.%N "$IMG")" = "$mtime1" ]'
rm -rf "$OUT"/cache
check "rebuild from an empty cache gives identical bytes" \
	eval 'build && [ "$(sha256sum <"$IMG")" = "$sum1" ]'
echo "# a comment that changes the key" >>"$WORK/guest/init"
check "a changed guest/init is rebuilt into a second cache entry" \
	eval 'build && grep -q "building" "$WORK/build.log" &&
		[ "$(find "$OUT/cache" -maxdepth 1 -name "rootfs-*" | wc -l)" = 2 ] &&
		cmp -s <(in_image "cat /init") "$WORK/guest/init"'

CFG=$SRC/build/guest/kernel.config
if [ -f "$CFG" ]; then
	kernel_options() {
		local o
		for o in VIRTIO_BLK VIRTIO_NET VIRTIO_MMIO VIRTIO_MMIO_CMDLINE_DEVICES EXT4_FS \
			SERIO_I8042 KEYBOARD_ATKBD VT DEVTMPFS_MOUNT SERIAL_8250_CONSOLE; do
			grep -qx "CONFIG_$o=y" "$CFG" || {
				echo "# missing CONFIG_$o=y"
				return 1
			}
		done
		! grep -q '^CONFIG_MODULES=y' "$CFG"
	}
	check "built kernel config has the options banger relies on" kernel_options
else
	echo "# no $CFG (make guest-image not run): kernel config not checked"
fi
done_testing
