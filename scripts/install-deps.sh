#!/bin/sh
# install-deps.sh PROFILE... — install the Debian packages a make target needs,
# only those missing, and only when running as root. Profiles: build, test,
# guest, demo, bench, format, ci. Non-root: list what is missing and fail.
set -eu

pkgs_build="make gcc pkg-config scdoc libsqlite3-dev libyaml-dev libjson-c-dev libinotifytools0-dev
 libdevmapper-dev libnl-3-dev libnl-route-3-dev libcurl4-openssl-dev libnftables-dev"
pkgs_test="$pkgs_build python3 python3-jsonschema python3-yaml iproute2 curl e2fsprogs util-linux procps
 qemu-system-x86 qemu-utils busybox-static cpio xfsprogs zsh nftables"
pkgs_guest="busybox-static e2fsprogs cpio flex bison libelf-dev bc xz-utils lz4 gcc make"
pkgs_demo="$pkgs_test"
# t_install checks the man pages (man --warnings) and the unit (systemd-analyze).
pkgs_test="$pkgs_test man-db systemd"
pkgs_bench="$pkgs_test"
# make format / check-format.
pkgs_format="clang-format"
# CI's own tools (scripts/ci-fresh-root.sh), not needed by any make target.
pkgs_ci="mmdebstrap"

want=""
for p in "$@"; do
	eval "want=\"\$want \$pkgs_$p\""
done
missing=""
for p in $want; do
	case " $missing " in *" $p "*) continue ;; esac
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "install-deps: missing packages:$missing (run as root to install them)" >&2
	exit 1
fi
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing >/dev/null
