# The host itself, and berth with cgroupfs paths on it (sourced by
# ../tests.sh, whose helpers it uses).

# This unit runs after multi-user.target and is itself part of the boot
# transaction, so the system reads "starting" until it ends.
T=systemd_is_pid1
target=$(systemctl is-active multi-user.target 2>&1)
case "$(readlink /proc/1/exe)" in
*systemd*) [ "$target" = active ] && ok || bad "multi-user.target is '$target'" ;;
*) bad "pid 1 is $(readlink /proc/1/exe)" ;;
esac
failed=$(systemctl --failed --no-legend --plain | cut -d' ' -f1 | tr '\n' ' ')
[ -n "$failed" ] && echo "berth-vm: failed units: $failed"

# The layout the kernel command line asked for (tests.sh: CG_WANT, unified
# or hybrid) is the one systemd mounted (CG_LAYOUT); on hybrid, the memory
# controller is a v1 hierarchy and systemd's own tree the unified one.
T=cgroup_$CG_WANT
if [ "$CG_LAYOUT" != "$CG_WANT" ]; then
    bad "cgroups are $CG_LAYOUT, want $CG_WANT"
elif [ "$CG_WANT" = hybrid ] && [ "$(stat -fc %T $CG/memory)" != cgroupfs ]; then
    bad "hybrid, but $CG/memory is $(stat -fc %T $CG/memory 2>&1)"
else
    ok
fi

T=services_active
s=""
for u in dbus containerd docker; do
    systemctl is-active -q $u || s="$s $u=$(systemctl is-active $u)"
done
[ -z "$s" ] && ok || bad "not active:$s"

# berth with cgroupfs paths on a systemd host: the container's cgroup under
# systemd's tree, limits written, nothing left after delete.
T=berth_cgroupfs_on_systemd
bundle c1 '["sh", "-c", "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes"]' \
    '"cgroupsPath": "/berth-vm.slice/c1", "resources": {"memory": {"limit": 67108864}, "pids": {"limit": 32}}'
out=$(timeout 60 $B run -b /b/c1 c1 2>&1 </dev/null)
rc=$?
if [ $rc -ne 0 ]; then
    bad "run exit $rc: $out"
elif [ "$out" != 67108864 ]; then
    bad "the memory limit in the container is '$out', want 67108864"
elif [ -n "$(cgleft berth-vm.slice/c1)" ] || [ -e /run/berth-vm/c1 ]; then
    bad "left behind: $(cgleft berth-vm.slice/c1) $(ls -d /run/berth-vm/c1 2>/dev/null)"
else
    ok
fi
rmdir $CG/berth-vm.slice $CG/*/berth-vm.slice 2>/dev/null

# berth's D-Bus client with the real systemd (runtime/examples/dbus_call.rs):
# a transient scope with a child in it, started and stopped, jobs awaited,
# the unit gone after.
T=dbus_client_scope
out=$(timeout 60 dbus_call scope 2>&1)
rc=$?
left=$(systemctl list-units --all --plain --no-legend 'berth-dbus-probe-*' 2>&1)
case "$rc:$out" in
0:*/system.slice/berth-dbus-probe-*.scope*" threads=1("*) if [ -n "$left" ]; then bad "left: $left"; else ok; fi ;;
*) bad "exit $rc: $out" ;;
esac

