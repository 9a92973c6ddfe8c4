#!/bin/bash
# guest/build.sh OUTDIR [rootfs] [kernel]
#
# Builds banger's test guest from Debian packages only (apt is the only network
# access) into OUTDIR (make guest-image uses build/guest):
#   OUTDIR/bzImage       minimal all-built-in kernel from linux-source-6.1
#   OUTDIR/vmlinux       the same kernel as an ELF (for Firecracker)
#   OUTDIR/kernel.config its final .config
#   OUTDIR/rootfs.ext4   64 MiB sparse ext4: busybox-static + guest/init
#   OUTDIR/image-info    versions and cache keys of the above
# Both halves are cached in OUTDIR/cache under a hash of their inputs, so a
# rebuild with nothing changed is a no-op that leaves the outputs untouched
# (same bytes, same mtimes). Everything, including the kernel source tree and
# build directory, lives under OUTDIR; long output goes to OUTDIR/*.log.
# Environment: GUEST_JOBS (default nproc) parallel kernel compile jobs.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${1:?usage: guest/build.sh OUTDIR [rootfs] [kernel]}
shift
PARTS=${*:-rootfs kernel}
JOBS=${GUEST_JOBS:-$(nproc)}

FRAGMENT=$HERE/kernel.config
INIT=$HERE/init
KPKG=linux-source-6.1
# Bump when the way the kernel is built changes without the fragment changing.
KERNEL_RECIPE=1
# Options the controller and its tests rely on; the build fails without them.
KERNEL_REQUIRED="CONFIG_VIRTIO_BLK CONFIG_VIRTIO_NET CONFIG_VIRTIO_MMIO
 CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES CONFIG_EXT4_FS CONFIG_SERIO_I8042
 CONFIG_KEYBOARD_ATKBD CONFIG_VT CONFIG_DEVTMPFS CONFIG_DEVTMPFS_MOUNT
 CONFIG_SERIAL_8250_CONSOLE CONFIG_BINFMT_SCRIPT CONFIG_INET CONFIG_UNIX
 CONFIG_ACPI_BUTTON CONFIG_INPUT_EVDEV"
KERNEL_FORBIDDEN="CONFIG_MODULES CONFIG_RANDOMIZE_BASE"
# Fixed identity for reproducible output: a rebuild from the same inputs gives
# the same bytes, and nothing host-specific (time, user, host) leaks in.
FIXED_EPOCH=946684800 # 2000-01-01T00:00:00Z
FIXED_UUID=6b616e67-6572-4775-6573-74526f6f7446
export KBUILD_BUILD_TIMESTAMP="2000-01-01 00:00:00 UTC"
export KBUILD_BUILD_USER=banger KBUILD_BUILD_HOST=banger KBUILD_BUILD_VERSION=1
export LC_ALL=C TZ=UTC

say() { echo "guest-image: $*"; }
die() {
	echo "guest-image: error: $*" >&2
	exit 1
}

# install_file SRC DST: replace DST atomically, and only when the bytes
# differ, so a no-op rebuild keeps mtimes and readers never see half a file.
install_file() {
	if cmp -s "$1" "$2" 2>/dev/null; then
		return 0
	fi
	cp "$1" "$2.tmp.$$"
	mv -f "$2.tmp.$$" "$2"
	say "wrote $2"
}

hash_of() { sha256sum | cut -c1-16; }

# ---------------------------------------------------------------- kernel ---

# The linux-source version apt would install now; falls back to the source
# tree already unpacked when apt's lists are unavailable.
kernel_pkg_version() {
	local v
	v=$(apt-cache show --no-all-versions "$KPKG" 2>/dev/null | sed -n 's/^Version: //p' | head -n1)
	if [ -z "$v" ]; then
		v=$(find "$OUT/src" -mindepth 2 -maxdepth 2 -name .banger-unpacked 2>/dev/null |
			sed 's|/.banger-unpacked$||; s|.*/||' | sort -V | tail -n1)
	fi
	[ -n "$v" ] || die "cannot find a version of $KPKG (run apt-get update?)"
	echo "$v"
}

# Download and unpack the kernel source once per package version into
# OUT/src/<version>; older trees, and the .deb once unpacked, are removed.
kernel_fetch_source() {
	local ver=$1
	local src=$OUT/src/$ver
	local deb=$OUT/debs/${KPKG}_${ver/:/%3a}_all.deb
	if [ -f "$src/.banger-unpacked" ]; then
		return 0
	fi
	mkdir -p "$OUT/debs"
	if [ ! -f "$deb" ]; then
		say "kernel: downloading $KPKG=$ver"
		rm -f "$OUT"/debs/"${KPKG}"_*_all.deb
		(cd "$OUT/debs" && apt-get download -q "$KPKG=$ver") >>"$OUT/kernel.log" 2>&1 ||
			die "apt-get download $KPKG=$ver failed (see $OUT/kernel.log)"
		[ -f "$deb" ] || die "apt-get download did not produce $deb"
	fi
	say "kernel: unpacking $KPKG=$ver into $src"
	rm -rf "$OUT/src"
	mkdir -p "$src.tmp"
	# The .deb carries the tree as one .tar.xz; stream it out without a copy.
	dpkg-deb --fsys-tarfile "$deb" |
		tar -xO "./usr/src/$KPKG.tar.xz" |
		tar -xJ -C "$src.tmp" --strip-components=1
	touch "$src.tmp/.banger-unpacked"
	mv "$src.tmp" "$src"
	rm -f "$deb"
}

# kernel_check_config CONFIG: the options we rely on are really in it.
kernel_check_config() {
	local cfg=$1 opt bad=""
	for opt in $KERNEL_REQUIRED; do
		grep -qx "$opt=y" "$cfg" || bad="$bad $opt(want y)"
	done
	for opt in $KERNEL_FORBIDDEN; do
		if grep -q "^$opt=" "$cfg"; then
			bad="$bad $opt(want unset)"
		fi
	done
	[ -z "$bad" ] || die "kernel config $cfg is missing required settings:$bad"
	# Also report (not fail on) fragment lines that Kconfig overrode, so a
	# fragment that silently stopped applying gets noticed.
	local line name val
	while IFS= read -r line; do
		case $line in CONFIG_*=*) ;; *) continue ;; esac
		name=${line%%=*}
		val=${line#*=}
		if [ "$val" = n ]; then
			grep -q "^$name=" "$cfg" && say "kernel: note: $name=n in fragment but set in .config"
		else
			grep -qxF "$line" "$cfg" || say "kernel: note: fragment $line not in .config"
		fi
	done <"$FRAGMENT"
	return 0
}

# Run the kernel compile in the background and print a progress line every
# 30 s, so a 6-minute build is visibly alive but the log stays out of sight.
kernel_make() {
	local src=$1 kb=$2 log=$3 start pid n
	start=$(date +%s)
	make -C "$src" O="$kb" -j"$JOBS" bzImage >>"$log" 2>&1 &
	pid=$!
	# If we are interrupted, do not leave a compiler running: the background
	# make ignores SIGINT (non-interactive shell), so pass on a SIGTERM.
	trap 'kill "$pid" 2>/dev/null || true' EXIT
	trap 'exit 130' INT TERM
	while kill -0 "$pid" 2>/dev/null; do
		for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15; do
			sleep 2
			kill -0 "$pid" 2>/dev/null || break 2
		done
		n=$(grep -c '^  CC ' "$log" || true)
		say "kernel: compiling... $n files compiled, $(($(date +%s) - start)) s"
	done
	trap - EXIT INT TERM
	if ! wait "$pid"; then
		tail -n 30 "$log" >&2
		die "kernel build failed after $(($(date +%s) - start)) s (full log: $log)"
	fi
	say "kernel: compiled in $(($(date +%s) - start)) s"
}

build_kernel() {
	[ -f "$FRAGMENT" ] || die "missing $FRAGMENT"
	local ver key cache src kb log
	ver=$(kernel_pkg_version)
	key=$({
		echo "recipe=$KERNEL_RECIPE pkg=$KPKG=$ver"
		gcc -dumpfullversion 2>/dev/null || true
		cat "$FRAGMENT"
	} | hash_of)
	cache=$OUT/cache/kernel-$key
	if [ ! -f "$cache/bzImage" ]; then
		say "kernel: no cached build for key $key; building $KPKG=$ver (takes minutes)"
		src=$OUT/src/$ver
		kb=$OUT/kbuild
		log=$OUT/kernel.log
		: >"$log"
		kernel_fetch_source "$ver"
		# Objects from another source version are not reusable; objects from
		# an older fragment are (kbuild rebuilds what the new .config touches).
		if [ "$(cat "$kb/.banger-source" 2>/dev/null)" != "$ver" ]; then
			rm -rf "$kb"
		fi
		mkdir -p "$kb"
		echo "$ver" >"$kb/.banger-source"
		say "kernel: configuring (tinyconfig + $(basename "$FRAGMENT"))"
		{
			make -C "$src" O="$kb" tinyconfig
			"$src/scripts/kconfig/merge_config.sh" -m -O "$kb" "$kb/.config" "$FRAGMENT"
			make -C "$src" O="$kb" olddefconfig
		} >>"$log" 2>&1 || die "kernel configuration failed (see $log)"
		kernel_check_config "$kb/.config"
		kernel_make "$src" "$kb" "$log"
		# "HdrS" at 0x202 marks an x86 boot-protocol image.
		[ "$(dd if="$kb/arch/x86/boot/bzImage" bs=1 skip=514 count=4 2>/dev/null)" = HdrS ] ||
			die "$kb/arch/x86/boot/bzImage is not a bzImage"
		rm -rf "$cache.tmp"
		mkdir -p "$cache.tmp"
		cp "$kb/arch/x86/boot/bzImage" "$kb/vmlinux" "$cache.tmp/"
		cp "$kb/.config" "$cache.tmp/config"
		env -u MAKEFLAGS -u MAKELEVEL -u MFLAGS make -s --no-print-directory -C "$src" O="$kb" kernelrelease >"$cache.tmp/release" 2>>"$log"
		mv "$cache.tmp" "$cache"
	fi
	# Re-check the cached config too: the cache must not hide a bad fragment.
	kernel_check_config "$cache/config" >/dev/null
	install_file "$cache/bzImage" "$OUT/bzImage"
	install_file "$cache/vmlinux" "$OUT/vmlinux"
	install_file "$cache/config" "$OUT/kernel.config"
	KERNEL_INFO="kernel_release=$(cat "$cache/release")
kernel_package=$KPKG=$ver
kernel_key=$key"
	say "kernel: $OUT/bzImage ready ($(cat "$cache/release"), key $key)"
}

# ---------------------------------------------------------------- rootfs ---

# Lay out the guest's root directory in $1: busybox-static with one symlink per
# applet, our /init, and the mount points /init uses.
rootfs_stage() {
	local r=$1 a
	mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,etc,dev,proc,sys,tmp,run,data,root}
	cp /bin/busybox "$r/bin/busybox"
	for a in $("$r/bin/busybox" --list-full); do
		[ -e "$r/$a" ] || [ -L "$r/$a" ] || ln -s /bin/busybox "$r/$a"
	done
	install -m 0755 "$INIT" "$r/init"
	# The kernel's default init search finds /sbin/init; keep both names.
	ln -sfn /init "$r/sbin/init"
	printf 'root:x:0:0:root:/root:/bin/sh\n' >"$r/etc/passwd"
	printf 'root:x:0:\n' >"$r/etc/group"
	printf '127.0.0.1 localhost\n' >"$r/etc/hosts"
	chmod 1777 "$r/tmp"
	# Fallback nodes in case devtmpfs is not mounted over /dev.
	if [ "$(id -u)" = 0 ]; then
		mknod -m 600 "$r/dev/console" c 5 1
		mknod -m 666 "$r/dev/null" c 1 3
	fi
	# Same timestamps on every build -> same image bytes.
	find "$r" -exec touch -h -d "@$FIXED_EPOCH" {} +
}

build_rootfs() {
	[ -f "$INIT" ] || die "missing $INIT"
	dpkg -S /bin/busybox 2>/dev/null | grep -q '^busybox-static:' ||
		die "/bin/busybox must come from busybox-static (statically linked)"
	local bbver e2ver key cache stage
	bbver=$(dpkg-query -W -f='${Version}' busybox-static)
	e2ver=$(dpkg-query -W -f='${Version}' e2fsprogs)
	# build.sh is part of the key: the rootfs recipe lives in it, and a
	# rebuild only costs a second.
	key=$({
		echo "busybox-static=$bbver e2fsprogs=$e2ver"
		cat "$INIT" "$0"
	} | hash_of)
	cache=$OUT/cache/rootfs-$key
	if [ ! -f "$cache/rootfs.ext4" ]; then
		say "rootfs: building (busybox-static $bbver)"
		stage=$OUT/rootfs.d
		: >"$OUT/rootfs.log"
		rm -rf "$stage" "$cache.tmp"
		mkdir -p "$stage" "$cache.tmp"
		rootfs_stage "$stage"
		truncate -s 64M "$cache.tmp/rootfs.ext4"
		# Fixed UUID, hash seed and clock: identical bytes for identical inputs.
		E2FSPROGS_FAKE_TIME=$FIXED_EPOCH mkfs.ext4 -q -F -L banger-root \
			-U "$FIXED_UUID" -E "hash_seed=$FIXED_UUID,root_owner=0:0" \
			-d "$stage" "$cache.tmp/rootfs.ext4" >>"$OUT/rootfs.log" 2>&1 ||
			die "mkfs.ext4 failed (see $OUT/rootfs.log)"
		# mkfs copies each file's ctime, which no tool can set on the staging
		# tree; pin them in the image instead (debugfs updates the checksums).
		(cd "$stage" && find . | sed "s|^\.||; s|^\$|/|; s|.*|sif & ctime @$FIXED_EPOCH|") |
			E2FSPROGS_FAKE_TIME=$FIXED_EPOCH debugfs -w -f - "$cache.tmp/rootfs.ext4" \
				>>"$OUT/rootfs.log" 2>&1 || die "debugfs failed (see $OUT/rootfs.log)"
		e2fsck -fn "$cache.tmp/rootfs.ext4" >>"$OUT/rootfs.log" 2>&1 ||
			die "fresh rootfs fails e2fsck (see $OUT/rootfs.log)"
		rm -rf "$stage"
		mv "$cache.tmp" "$cache"
	fi
	install_file "$cache/rootfs.ext4" "$OUT/rootfs.ext4"
	ROOTFS_INFO="rootfs_busybox=busybox-static=$bbver
rootfs_key=$key"
	say "rootfs: $OUT/rootfs.ext4 ready (key $key)"
}

# ------------------------------------------------------------------ main ---

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
# One build at a time per OUTDIR (make test and make guest-image may race).
exec 9>"$OUT/.lock"
flock 9
KERNEL_INFO=''
ROOTFS_INFO=''
for part in $PARTS; do
	case $part in
	rootfs) build_rootfs ;;
	kernel) build_kernel ;;
	*) die "unknown part '$part' (want rootfs and/or kernel)" ;;
	esac
done
if [ -n "$KERNEL_INFO" ] && [ -n "$ROOTFS_INFO" ]; then
	printf '%s\n%s\n' "$KERNEL_INFO" "$ROOTFS_INFO" >"$OUT/image-info.tmp"
	install_file "$OUT/image-info.tmp" "$OUT/image-info"
	rm -f "$OUT/image-info.tmp"
fi
say "done"
