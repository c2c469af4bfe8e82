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

T=cgroup_v2_unified
fs=$(stat -fc %T $CG)
[ "$fs" = cgroup2fs ] && ok || bad "/sys/fs/cgroup is $fs"

T=services_active
s=""
for u in dbus containerd docker; do
    systemctl is-active -q $u || s="$s $u=$(systemctl is-active $u)"
done
[ -z "$s" ] && ok || bad "not active:$s"

# berth with cgroupfs paths on a systemd host: the container's cgroup under
# systemd's tree, limits written, nothing left after delete.
T=berth_cgroupfs_on_systemd
bundle c1 '["sh", "-c", "cat /sys/fs/cgroup/memory.max"]' \
    '"cgroupsPath": "/berth-vm.slice/c1", "resources": {"memory": {"limit": 67108864}, "pids": {"limit": 32}}'
out=$(timeout 60 $B run -b /b/c1 c1 2>&1 </dev/null)
rc=$?
if [ $rc -ne 0 ]; then
    bad "run exit $rc: $out"
elif [ "$out" != 67108864 ]; then
    bad "memory.max in the container is '$out', want 67108864"
elif [ -e $CG/berth-vm.slice/c1 ] || [ -e /run/berth-vm/c1 ]; then
    bad "left behind: $(ls -d $CG/berth-vm.slice/c1 /run/berth-vm/c1 2>/dev/null)"
else
    ok
fi
rmdir $CG/berth-vm.slice 2>/dev/null

# sd-notify: a Type=notify unit whose main process is `berth run` becomes
# active only once the container sent READY=1 (berth passes it on to
# systemd's socket). The container writes its clock to /marker, sleeps 5 s,
# then sends READY=1: systemd-run (which waits for the start job) must
# return at least 4 s after the marker.
T=berth_notify_type_notify_unit
bundle n1 '["sh", "-c", "trap \"exit 0\" TERM; busybox date +%s > /marker; sleep 5; sd-notify READY=1; while :; do sleep 1; done"]' \
    '"cgroupsPath": "/berth-vm.slice/n1"'
cp /opt/berth/bin/sd-notify /b/n1/rootfs/bin/
out=$(timeout 200 systemd-run --unit berth-sdn1 -p Type=notify -p TimeoutStartSec=150 -p TimeoutStopSec=20 \
    $B run -b /b/n1 n1 2>&1)
rc=$?
now=$(date +%s)
mark=$(cat /b/n1/rootfs/marker 2>/dev/null)
mp=$(systemctl show -p MainPID --value berth-sdn1)
comm=$(cat /proc/"$mp"/comm 2>/dev/null)
if [ $rc -ne 0 ]; then
    bad "systemd-run exit $rc: $out; $(journalctl -u berth-sdn1 --no-pager -n 20 | tr '\n' '|')"
elif [ -z "$mark" ]; then
    bad "active, but the container wrote no marker"
elif [ $((now - mark)) -lt 4 ]; then
    bad "active $((now - mark)) s after the marker: before the container's READY=1"
elif [ "$comm" != berth ]; then
    bad "MainPID $mp is '$comm', not berth"
else
    ok
fi
systemctl stop berth-sdn1 2>/dev/null
$B delete -f n1 2>/dev/null
rmdir $CG/berth-vm.slice/n1 $CG/berth-vm.slice 2>/dev/null

# The same through Podman: `podman run --sdnotify=container` as a Type=notify
# unit. Podman 4.3 proxies the container's socket itself (conmon's
# --sdnotify-socket: the runtime gets no NOTIFY_SOCKET), so this shows berth
# works under it. --cgroup-manager cgroupfs: Podman defaults to systemd here,
# which berth does not support until its systemd driver lands (issue 15).
T=podman_sdnotify_container
mkdir -p /etc/containers /tmp/sdn
# vfs: the overlay driver refuses the VM's tmpfs root.
printf '[storage]\ndriver = "vfs"\nrunroot = "/run/containers/storage"\ngraphroot = "/var/lib/containers/storage"\n' \
    >/etc/containers/storage.conf
P="podman --cgroup-manager cgroupfs --runtime /opt/berth/bin/berth"
load=$(timeout 120 $P load -q -i /opt/berth/busybox-image.tar 2>&1)
out=$(timeout 200 systemd-run --unit berth-sdn2 -p Type=notify -p NotifyAccess=all -p TimeoutStartSec=150 \
    -p TimeoutStopSec=30 $P run --rm --name sdn --network none --sdnotify=container \
    -v /opt/berth/bin/sd-notify:/bin/sd-notify:ro -v /tmp/sdn:/out localhost/busybox:latest \
    sh -c 'trap "exit 0" TERM; busybox date +%s > /out/marker; sleep 5; sd-notify READY=1; while :; do sleep 1; done' 2>&1)
rc=$?
now=$(date +%s)
mark=$(cat /tmp/sdn/marker 2>/dev/null)
if [ $rc -ne 0 ]; then
    bad "systemd-run exit $rc: $out; load: $load; $(journalctl -u berth-sdn2 --no-pager -n 20 | tr '\n' '|')"
elif [ -z "$mark" ]; then
    bad "active, but the container wrote no marker"
elif [ $((now - mark)) -lt 4 ]; then
    bad "active $((now - mark)) s after the marker: before the container's READY=1"
else
    ok
fi
systemctl stop berth-sdn2 2>/dev/null
$P rm -f -t 0 sdn >/dev/null 2>&1

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

