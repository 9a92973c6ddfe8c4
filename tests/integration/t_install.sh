#!/bin/bash
# make install / make uninstall into a DESTDIR, in a mount namespace where
# everything but the DESTDIR and the build dir is read-only (so "nothing
# outside DESTDIR" is enforced, not hoped for); the installed man pages are
# clean under `man --warnings`, the unit passes `systemd-analyze verify`,
# --help and the man pages name the same options, bash completion offers
# every command and option, --version, and a release tarball's VERSION.
# sanitizers: not run (install layout, man pages, unit file: of our C it runs only --help, --version and completion, which t_cli and t_cli_ops also run)
. "$(dirname "$0")/lib.sh"

command -v systemd-analyze >/dev/null || { echo "systemd-analyze missing (install-deps test)"; exit 1; }
command -v man >/dev/null || { echo "man missing (install-deps test)"; exit 1; }
T=$(test_tmpdir install)
trap '[ -n "${KEEP:-}" ] || rm -rf "$T"' EXIT
D=$T/root
SAN=
case $BIN in *san) SAN=1 ;; esac
MK=(make -C "$SRC" --no-print-directory BANGER_DEPS_READY=1 "BUILD=$BIN" "SANITIZE=$SAN" DESTDIR="$D" PREFIX=/usr)

ro_make() {
	unshare -m --propagation private bash -c '
		mount --bind "$1" "$1" && mount --bind "$2" "$2" && mount -o remount,bind,ro / || exit 99
		shift 2; exec "$@"' _ "$T" "$BIN" "${MK[@]}" "$@"
}
# Build as an operator would (`make`), then install with / read-only.
"${MK[@]}" all >"$T/build.log" 2>&1 || { sed 's/^/# /' "$T/build.log"; not_ok "make all"; }
ro_make install >"$T/install.log" 2>&1
rc=$?
[ "$rc" = 0 ] || sed 's/^/# /' "$T/install.log"
check "make install DESTDIR=… PREFIX=/usr, with / read-only" test "$rc" = 0
(cd "$D" && find . -type f | sort) >"$T/files"
cat >"$T/want" <<LIST
./usr/bin/banger
./usr/lib/systemd/system/bangerd.service
./usr/sbin/bangerd
$(cd "$SRC" && for f in specs/examples/*.yaml; do echo "./usr/share/banger/examples/${f##*/}"; done)
./usr/share/banger/vm.schema.json
./usr/share/bash-completion/completions/banger
./usr/share/man/man1/banger.1
./usr/share/man/man5/banger-spec.5
./usr/share/man/man8/bangerd.8
LIST
check "installed exactly the expected files" diff -u "$T/want" "$T/files"
check "bangerd in sbin is executable" test -x "$D/usr/sbin/bangerd"
check "unit's ExecStart is the installed bangerd" grep -qx "ExecStart=/usr/sbin/bangerd" "$D/usr/lib/systemd/system/bangerd.service"

# --- man pages ---------------------------------------------------------------------------------
for m in man1/banger.1 man5/banger-spec.5 man8/bangerd.8; do
	LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$D/usr/share/man/$m" >"$T/man.out" 2>"$T/man.err"
	check "man --warnings $m: no warnings" test ! -s "$T/man.err"
	check "man $m renders" test -s "$T/man.out"
done
cat "$T/man.err" | sed 's/^/# /'
render() { LC_ALL=C.UTF-8 MANWIDTH=200 man -l "$D/usr/share/man/$1" 2>/dev/null; }
# same_options HELP-TEXT MAN-TEXT: every --option in one is in the other.
opts() { grep -o -- '--[a-z][a-z-]*' | sort -u; }
check "bangerd --help and bangerd(8) name the same options" \
	diff -u <("$BIN/bangerd" --help | opts) <(render man8/bangerd.8 | opts)
check "banger --help and banger(1) name the same options" \
	diff -u <("$BIN/banger" --help | opts) <(render man1/banger.1 | opts)
cmds() { sed -n '/^Commands:/,/^$/p' | grep -oE '^  [a-z]+' | tr -d ' ' | sort -u; }
check "banger --help and banger(1) list the same commands" \
	diff -u <("$BIN/banger" --help | cmds) <(render man1/banger.1 | sed -n '/^COMMANDS/,/^GLOBAL/p' | grep -oE '^       [a-z]+' | tr -d ' ' | sort -u)

# --- systemd unit ------------------------------------------------------------------------------
U=$D/usr/lib/systemd/system/bangerd.service
# verify checks that ExecStart exists and that Documentation= man pages resolve:
# point both at the DESTDIR. It exits 0 on warnings too, so its output must be empty.
mkdir -p "$T/unit"
sed "s|/usr/sbin/bangerd|$D/usr/sbin/bangerd|" "$U" >"$T/unit/bangerd.service"
MANPATH=$D/usr/share/man systemd-analyze verify "$T/unit/bangerd.service" >"$T/verify.out" 2>&1
rc=$?
sed 's/^/# /' "$T/verify.out"
check "systemd-analyze verify: exit 0" test "$rc" = 0
check "systemd-analyze verify: no warnings" test ! -s "$T/verify.out"
for kv in Type=notify KillMode=process 'ExecReload=/bin/kill -HUP $MAINPID' WatchdogSec=60s \
	ProtectSystem=strict ProtectHome=yes RuntimeDirectoryPreserve=yes; do
	check "unit: $kv" grep -qxF "$kv" "$U"
done

# --- completion --------------------------------------------------------------------------------
# complete_words WORD...: what the installed script offers for the last word.
complete_words() {
	bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _banger; printf "%s\n" "${COMPREPLY[@]}"' \
		_ "$D/usr/share/bash-completion/completions/banger" banger "$@" | sort -u
}
check "completion: the script is what banger completion bash prints" \
	cmp "$D/usr/share/bash-completion/completions/banger" <("$BIN/banger" completion bash)
missing=$(comm -23 <("$BIN/banger" --help | cmds) <(complete_words ''))
check "completion: every command of --help${missing:+ (missing: $missing)}" test -z "$missing"
for c in apply delete get describe validate; do
	missing=$(comm -23 <("$BIN/banger" "$c" --help | opts) <(complete_words "$c" - | grep -- '^--'))
	check "completion: $c offers every option of its --help${missing:+ (missing: $missing)}" test -z "$missing"
done
check "completion: -o values" test "$(complete_words get -o '' | tr '\n' ' ')" = "custom-columns= json jsonpath= name table wide yaml "
mkdir -p "$T/st" && echo '{}' >"$T/st/web-7.status.json"
check "completion: VM names from --status-dir" \
	test "$(complete_words --status-dir "$T/st" describe w)" = web-7

# --- version -----------------------------------------------------------------------------------
v1=$("$BIN/bangerd" --version) v2=$("$BIN/banger" --version)
check "bangerd --version: 'bangerd VERSION'" grep -qE '^bangerd [^ ]+$' <<<"$v1"
check "banger --version is the same version" test "${v1#bangerd }" = "${v2#banger }"
if git -C "$SRC" rev-parse --git-dir >/dev/null 2>&1; then
	check "version is not 'unknown' in a git checkout" test "${v1#bangerd }" != unknown
	check "make dist: the tarball carries VERSION" bash -c "make -C '$SRC' --no-print-directory -s BUILD=$T/dist dist >/dev/null 2>&1 &&
		v=\$(cat $T/dist/dist/VERSION) && tar -xzOf $T/dist/banger-\$v.tar.gz banger-\$v/VERSION | grep -qx \"\$v\""
fi

# --- images where the examples look -------------------------------------------------------------
# (make test builds the guest first; here guest-image is a cached no-op.)
"${MK[@]}" install-guest-image >"$T/images.log" 2>&1
rc=$?
[ "$rc" = 0 ] || sed 's/^/# /' "$T/images.log"
check "make install-guest-image DESTDIR=…" test "$rc" = 0
for p in $(grep -ho '/var/lib/banger/images/[^ ]*' "$SRC"/specs/examples/*.yaml | sort -u); do
	check "example image $p installed" test -s "$D$p"
done
check "installed images are the built guest" cmp "$D/var/lib/banger/images/bzImage" "$SRC/build/guest/bzImage"
rm -rf "$D/var"

# --- uninstall ---------------------------------------------------------------------------------
ro_make uninstall >"$T/uninstall.log" 2>&1
rc=$?
[ "$rc" = 0 ] || sed 's/^/# /' "$T/uninstall.log"
check "make uninstall, with / read-only" test "$rc" = 0
check "nothing installed remains" test -z "$(find "$D" -type f)"
check "share/banger removed" test ! -e "$D/usr/share/banger"

done_testing
