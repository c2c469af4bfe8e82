# Podman (4.3) with its default cgroup manager on a systemd host, systemd,
# and --runtime $RT (berth unless berth.rt= says otherwise): conmon runs the
# runtime with --systemd-cgroup and cgroupsPath machine.slice:libpod:ID, so
# each container is the transient unit libpod-ID.scope. Sourced by
# ../tests.sh. (00-host.sh has Podman's --sdnotify=container under a
# Type=notify unit.)

pm() { timeout "${TO:-60}" podman --runtime "$RT" "$@" </dev/null 2>&1; }
# pm_gone ID: empty when neither libpod-ID.scope nor its cgroup is left.
pm_gone() {
    timeout 20 systemctl list-units --all --plain --no-legend "libpod-$1.scope"
    cgleft "machine.slice/libpod-$1.scope"
}

T=podman_setup
mkdir -p /etc/containers
# vfs: the overlay driver refuses the VM's tmpfs root.
[ -f /etc/containers/storage.conf ] ||
    printf '[storage]\ndriver = "vfs"\nrunroot = "/run/containers/storage"\ngraphroot = "/var/lib/containers/storage"\n' \
        >/etc/containers/storage.conf
v=v2
[ "$CG_WANT" = hybrid ] && v=v1
info=$(pm info -f '{{.Host.CgroupManager}} {{.Host.CgroupsVersion}}')
load=$(TO=120 pm load -q -i /opt/berth/busybox-image.tar)
rc=$?
pmimg=localhost/busybox:latest
if [ "$info" != "systemd $v" ]; then
    bad "podman info says '$info', want 'systemd $v'"
elif [ $rc -ne 0 ]; then
    bad "load exit $rc: $load"
else
    ok
fi

T=podman_run_output
out=$(pm run --rm --network none $pmimg echo hello from podman)
rc=$?
[ "$rc:$out" = "0:hello from podman" ] && ok || bad "exit $rc: $out"

# One long-lived container for the unit, exec, stop and rm. Its pid 1 ends on
# SIGTERM.
T=podman_scope_unit
id=$(pm run -d --name pd1 --network none --memory 64m --pids-limit 32 $pmimg \
    sh -c 'trap "exit 0" TERM; while :; do sleep 1; done')
rc=$?
unit=$(unitshow "libpod-$id.scope" ActiveState Slice MemoryMax TasksMax)
pid=$(pm inspect -f '{{.State.Pid}}' pd1)
if [ $rc -ne 0 ]; then
    bad "run -d exit $rc: $id"
    id=none
elif [ "$unit" != "ActiveState=active Slice=machine.slice TasksMax=32 Memory=67108864" ]; then
    bad "libpod-$id.scope: $unit"
elif ! grep -q "/machine.slice/libpod-$id.scope" "/proc/$pid/cgroup" 2>/dev/null; then
    bad "pid 1 ($pid) is not in libpod-$id.scope: $(cat /proc/"$pid"/cgroup 2>&1 | tr '\n' ' ')"
elif [ "$(cgval mem "machine.slice/libpod-$id.scope")" != 67108864 ]; then
    bad "the scope's cgroup memory limit is '$(cgval mem "machine.slice/libpod-$id.scope")'"
else
    ok
fi

T=podman_exec
out=$(pm exec pd1 sh -c 'echo exec in $(cat /proc/1/comm); exit 3')
rc=$?
[ "$rc:$out" = "3:exec in sh" ] && ok || bad "exit $rc (want 3): $out"

# stop: SIGTERM, pid 1's trap exits 0 well before the 20 s grace; rm: the
# unit, its cgroup and the runtime's state all gone (conmon runs the runtime
# with its default --root, so `$RT state` sees the running container).
T=podman_stop_rm
before=$(timeout 20 "$RT" state "$id" 2>&1)
rcs=$?
out=$(pm stop -t 20 pd1)
rc=$?
st=$(pm inspect -f '{{.State.Status}} {{.State.ExitCode}}' pd1)
out2=$(pm rm pd1)
rc2=$?
left=$(pm_gone "$id")
after=$(timeout 20 "$RT" state "$id" 2>&1)
rca=$?
if [ $rc -ne 0 ]; then
    bad "stop exit $rc: $out"
elif [ "$st" != "exited 0" ]; then
    bad "after stop: $st, want exited 0"
elif [ $rcs -ne 0 ]; then
    bad "$RT state $id while running exit $rcs: $before"
elif [ $rc2 -ne 0 ]; then
    bad "rm exit $rc2: $out2"
elif [ -n "$left" ]; then
    bad "after rm: $left"
elif [ $rca -eq 0 ]; then
    bad "after rm, $RT still has the container: $after"
else
    ok
fi
pm rm -f -t 0 pd1 >/dev/null
