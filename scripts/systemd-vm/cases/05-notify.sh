# sd-notify on a systemd host: Type=notify units whose main process runs a
# container, through berth and through Podman (sourced by ../tests.sh, whose
# helpers it uses). Not in the hybrid boot's subset (time).

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
rmdir $CG/berth-vm.slice/n1 $CG/*/berth-vm.slice/n1 $CG/berth-vm.slice $CG/*/berth-vm.slice 2>/dev/null

# The same through Podman: `podman run --sdnotify=container` as a Type=notify
# unit. Podman 4.3 proxies the container's socket itself (conmon's
# --sdnotify-socket: the runtime gets no NOTIFY_SOCKET), so this shows berth
# works under it. With Podman's default cgroup manager here, systemd: berth
# runs with --systemd-cgroup and the container is libpod-ID.scope.
T=podman_sdnotify_container
mkdir -p /etc/containers /tmp/sdn
# vfs: the overlay driver refuses the VM's tmpfs root.
printf '[storage]\ndriver = "vfs"\nrunroot = "/run/containers/storage"\ngraphroot = "/var/lib/containers/storage"\n' \
    >/etc/containers/storage.conf
P="podman --runtime /opt/berth/bin/berth"
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

