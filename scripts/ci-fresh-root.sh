#!/bin/bash
# ci-fresh-root.sh [GUEST_CACHE] — the README's first command on a fresh
# Debian 12 system, as CI proves it: build a minimal bookworm root with
# mmdebstrap (make, gcc, git, ca-certificates and nothing else), and inside a
# chroot of it `git clone` this repository, run `make demo` non-interactively
# and the unit tests. Every package beyond those four has to come from the
# Makefile's own install-deps step, or this fails.
#
# GUEST_CACHE (default build/guest) is the host's guest-image dir, bind-mounted
# onto the clone's build/guest so the kernel is not compiled again (its cache
# is keyed by the package versions, which a fresh bookworm root shares).
# Everything mounted lives in a private mount namespace and goes with it; the
# root is removed at the end (BANGER_KEEP_ROOT=1 keeps it). For trying the
# script itself, BANGER_FRESH_ROOT=DIR uses an mmdebstrap output made earlier
# with the same command (it is consumed: removed at the end); .ci/run makes
# it with `ci-fresh-root.sh --bootstrap DIR` at the start, in the background,
# while the other steps run. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$PWD
[ "$(id -u)" = 0 ] || { echo "ci-fresh-root: run as root" >&2; exit 1; }
scripts/install-deps.sh ci
# bootstrap: the root alone, into DIR (empty or absent).
bootstrap() {
	mmdebstrap --quiet --variant=minbase --include=make,gcc,git,ca-certificates bookworm "$1"
}
if [ "${1:-}" = --bootstrap ]; then
	t0=$SECONDS
	bootstrap "${2:?usage: ci-fresh-root.sh --bootstrap DIR}"
	echo "ci-fresh-root: root ready in $2 in $((SECONDS - t0)) s"
	exit 0
fi
CACHE=$(realpath "${1:-build/guest}")
ROOT=${BANGER_FRESH_ROOT:-$(mktemp -d /var/tmp/banger-fresh-root.XXXXXX)}
cleanup() { [ -n "${BANGER_KEEP_ROOT:-}" ] || rm -rf --one-file-system "$ROOT"; }
trap cleanup EXIT

t0=$SECONDS
if [ -z "${BANGER_FRESH_ROOT:-}" ]; then
	echo "ci-fresh-root: mmdebstrap bookworm into $ROOT"
	bootstrap "$ROOT"
	echo "ci-fresh-root: root ready in $((SECONDS - t0)) s"
fi
# What the clone comes from: the commit under test, as a bare repository.
git clone --quiet --bare "$SRC" "$ROOT/srv/banger.git"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
mkdir -p "$CACHE"

# In the chroot: clone, then the README's command, then the unit tests.
cat >"$ROOT/root/fresh.sh" <<'INNER'
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive PATH=/usr/sbin:/usr/bin:/sbin:/bin
cd /root
git clone --quiet /srv/banger.git banger
cd banger
mkdir -p build/guest
mount --bind /mnt/guest-cache build/guest
echo "fresh: make demo"
make demo </dev/null 2>&1 | tee /root/demo.out
# The demo exits 0 whatever the guests did: judge its output. Every running
# VM Ready, every guest answering its curl, nothing left behind.
last=$(grep -o '[0-9]* of [0-9]* running VMs ready' /root/demo.out | tail -n 1)
set -- $last
[ -n "$last" ] && [ "$1" = "$3" ] && [ "$1" -gt 0 ] || { echo "fresh: demo: not every VM became ready ($last)"; exit 1; }
! grep -q '(no answer)' /root/demo.out || { echo "fresh: demo: a guest did not answer"; exit 1; }
grep -q 'taps left: 0' /root/demo.out || { echo "fresh: demo: left taps behind"; exit 1; }
echo "fresh: demo passed: $last"
echo "fresh: make unit"
make unit
INNER

# The root is bind-mounted onto itself (a mount point, so `unshare -m` in the
# demo can change propagation inside the chroot), with /proc, /dev, /sys and
# a tmpfs /run, and the guest cache where the script mounts it from.
unshare -m --propagation private bash -euo pipefail -c '
	ROOT=$1 CACHE=$2
	mount --bind "$ROOT" "$ROOT"
	mount -t proc proc "$ROOT/proc"
	mount --rbind /dev "$ROOT/dev"
	mount --rbind /sys "$ROOT/sys"
	mount -t tmpfs tmpfs "$ROOT/run"
	mkdir -p "$ROOT/mnt/guest-cache"
	mount --bind "$CACHE" "$ROOT/mnt/guest-cache"
	exec chroot "$ROOT" /bin/bash /root/fresh.sh' _ "$ROOT" "$CACHE"
echo "ci-fresh-root: passed in $((SECONDS - t0)) s"
