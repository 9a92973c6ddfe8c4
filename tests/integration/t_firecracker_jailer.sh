#!/bin/bash
# bangerd with Firecracker under the jailer, end to end — against DOUBLES:
# tests/fc-double/jailer-double (the jailer's documented operation: chroot
# <base>/<exec-file-name>/<id>/root, pivot_root, mknod /dev/net/tun, uid/gid
# drop, exec in the same pid) and tests/fc-double/firecracker-double (the API
# spec; here it also opens its drives and its tap as Firecracker does, as the
# jailed user). Neither the real jailer nor Firecracker can run here.
#  1. the VM runs jailed: unprivileged uid, chrooted, socket inside the jail,
#     disks and tap owned by that uid (the tap is really opened by that uid);
#  2. kill -9 bangerd, restart: the SAME pid is adopted (rediscovery used to
#     look the socket up by its host path, miss it and kill the VM);
#  3. Stopped through the API of the adopted VMM, the jail goes with it;
#  4. Running again, then delete: nothing left (taps, sockets, jail, dirs).
. "$(dirname "$0")/lib.sh"
private_netns "$0" "$@"

need_fc_double
[ "$(id -u)" = 0 ] || skip_all "the jailer (and its double) needs root"

SRCABS=$(realpath "$SRC")
fc_test_setup fcj jail
STATUS=$SPEC
JUID=70001
# The jailed user reads the kernel.
chmod 0644 "$T/images/vmlinux"
# The jailer drops the environment; the exec file carries the double's
# settings itself. FC_DOUBLE_OPEN_TAPS: open the tap as Firecracker does.
fc_double_wrapper FC_DOUBLE_REQUEST_LOG=requests.log FC_DOUBLE_OPEN_TAPS=1
# The jailer double's one deviation: what the Firecracker double needs to
# run inside the jail is made visible there read-only (see the double): the
# Python one and the Swagger file, or the C one.
RO=/usr:/bin:/lib:/lib64:$SRCABS/tests/fc-double
if [ "$FC_DOUBLE" = lite ]; then RO=$RO:$(realpath "$BIN"); else RO=$RO:$spec; fi
cat >"$T/jailer" <<W
#!/bin/sh
exec /usr/bin/env JAILER_DOUBLE_RO_PATHS='$RO' /usr/bin/python3 '$SRCABS/tests/fc-double/jailer-double' "\$@"
W
chmod +x "$T/jailer"

FC_SPEC_EXTRA=$'  vcpus: 1\n  memoryMiB: 128'
DARGS=(--image-dir "$T/images" --firecracker-bin "$T/firecracker" --jailer "$T/jailer"
	--chroot-base "$JAIL" --jailer-uid $JUID --jailer-gid $JUID --driver qemu --stop-timeout 5)

# ---- 1. jailed ----------------------------------------------------------------
start_bangerd "$SPEC" "$STATE" "${DARGS[@]}"
fc_yaml fj | put "$SPEC/fj.yaml"
check "jailed VM Running" wait_until 30 status_is fj 'd["phase"]' Running
pid=$(vm_pid fj)
uid=$(ls "$STATE/vms")
root=$JAIL/firecracker/$uid/root
tap=$(status_field fj 'd["runtime"]["tap"]')
sock=$STATE/run/${uid:0:8}.sock
vuid=$(awk '/^Uid:/ {print $2}' "/proc/$pid/status")
check "the VMM (pid $pid) runs as an unprivileged user ($vuid), all four uids and gids" \
	bash -c "awk '/^Uid:/ {exit !(\$2==\$3 && \$3==\$4 && \$4==\$5 && \$2!=0)}' /proc/$pid/status &&
		awk '/^Gid:/ {exit !(\$2==\$3 && \$3==\$4 && \$4==\$5 && \$2!=0)}' /proc/$pid/status"
check "... the user banger gave it (per-VM, else --jailer-uid): $vuid" \
	bash -c "[ '$vuid' = $JUID ] || [ '$vuid' -ne 0 ]"
check "it is chrooted into the jail: its / is $root" \
	test "$(stat -Lc %d:%i "/proc/$pid/root")" = "$(stat -c %d:%i "$root")"
check "... where its root disk is the VM's own disk (hard link), owned by $vuid" \
	bash -c "[ \$(stat -c %i '$root/rootfs') = \$(stat -c %i \$(ls '$STATE'/vms/$uid/root*.img | head -1)) ] &&
		[ \$(stat -c %u '$root/rootfs') = $vuid ]"
check "the API socket is in the jail, the runtime dir links to it" \
	bash -c "[ -S '$root/api.sock' ] && [ \"\$(readlink '$sock')\" = '$root/api.sock' ]"
check "the tap $tap is owned by $vuid:$vuid (TUNSETOWNER, TUNSETGROUP)" \
	bash -c "ip -d link show '$tap' | grep -q 'persist on user $vuid group $vuid'"
check "... and the jailed VMM opened it as that user (double: FC_DOUBLE_OPEN_TAPS)" \
	bash -c "grep -l 'iff:[[:space:]]*$tap' /proc/$pid/fdinfo/* >/dev/null"
check "the boot plan used in-jail paths, all 204" bash -c "
	grep -q '\"path_on_host\": \"/rootfs\"' '$root/requests.log' &&
	grep -q '\"kernel_image_path\": \"/vmlinux\"' '$root/requests.log' &&
	! grep -qv '\"status\": 204' '$root/requests.log'"

# ---- 2. kill -9 bangerd, restart: the same pid is adopted -----------------------
kill -9 "$BANGERD_PID"
wait "$BANGERD_PID" 2>/dev/null
BANGERD_PID=
echo "==== test: restart ====" >>"$T/bangerd.log"
start_bangerd "$SPEC" "$STATE" "${DARGS[@]}"
check "restart: the jailed VMM is adopted (log)" \
	wait_until 20 grep -q "fj: adopted running VMM (pid $pid)" "$T/bangerd.log"
check "restart: still Running" wait_until 20 status_is fj 'd["phase"]' Running
check "restart: same pid in status ($pid)" test "$(vm_pid fj)" = "$pid"
check "restart: that process still runs" kill -0 "$pid"
check "restart: nothing torn down or launched again" \
	bash -c "! sed -n '/==== test: restart/,\$p' '$T/bangerd.log' | grep -q 'fj: VMM not running\|fj: firecracker started'"

# ---- 3. Stopped via the adopted VMM's API; the jail goes ------------------------
fc_yaml fj Stopped | put "$SPEC/fj.yaml"
check "Stopped → phase Stopped" wait_until 20 status_is fj 'd["phase"]' Stopped
check "graceful stop: SendCtrlAltDel reached the jailed VMM, it exited" \
	bash -c "pid_gone() { [ ! -e /proc/\$1/stat ] || [ \$(awk '{print \$3}' /proc/\$1/stat) = Z ]; }; pid_gone $pid &&
		! grep -q 'fj: did not stop' '$T/bangerd.log'"
check "the jail is removed with the stopped VM's runtime state" test ! -e "$JAIL/firecracker/$uid"

# ---- 4. Running again, then delete: nothing left --------------------------------
fc_yaml fj | put "$SPEC/fj.yaml"
check "Running again" wait_until 30 status_is fj 'd["phase"]' Running
pid2=$(vm_pid fj)
check "a new jailed VMM ($pid2)" bash -c "[ '$pid2' != '$pid' ] && [ -S '$root/api.sock' ]"
rm "$SPEC/fj.yaml"
check "delete → status gone" wait_until 30 test ! -e "$STATUS/fj.status.json"
check "the VMM is gone" wait_until 5 pid_gone "$pid2"
left=$(leaks "$STATE")
check "nothing leaked (taps, sockets, VM dirs): '$left'" test -z "$left"
check "no jail left under $JAIL/firecracker" test -z "$(ls -A "$JAIL/firecracker" 2>/dev/null)"
check "bangerd exits cleanly" stop_bangerd
done_testing
