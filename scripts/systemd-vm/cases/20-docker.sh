# Docker (docker.io 20.10) with the systemd cgroup driver and the runtime
# under test ($RT, berth unless berth.rt= says otherwise) registered as
# "vmrt" in /etc/docker/daemon.json: containerd's runc shim runs it with
# --systemd-cgroup and cgroupsPath system.slice:docker:ID, so each container
# is the transient unit docker-ID.scope. Sourced by ../tests.sh.
#
# systemd is Docker's default driver on cgroup v2; on hybrid cgroups its
# default is cgroupfs, so the driver is set explicitly there
# (native.cgroupdriver=systemd), as a systemd host with v1 controllers would.

dk() { timeout "${TO:-60}" docker "$@" </dev/null 2>&1; }
# dk_unit ID: the limits of docker-ID.scope (tests.sh: unitshow).
dk_unit() { unitshow "docker-$1.scope" ActiveState CPUQuotaPerSecUSec MemoryMax TasksMax; }
# dk_gone ID: empty when neither docker-ID.scope nor its cgroup is left.
dk_gone() {
    timeout 20 systemctl list-units --all --plain --no-legend "docker-$1.scope"
    cgleft "system.slice/docker-$1.scope"
}
dk_state() { dk inspect -f '{{.State.Status}} {{.State.ExitCode}} {{.State.OOMKilled}}' "$1"; }
dk_cleanup() { dk rm -f dk1 dk2 >/dev/null; }

T=docker_setup
mkdir -p /etc/docker
opts=
[ "$CG_WANT" = hybrid ] && opts='"exec-opts": ["native.cgroupdriver=systemd"], '
printf '{%s"runtimes": {"vmrt": {"path": "%s"}}}\n' "$opts" "$RT" >/etc/docker/daemon.json
# Runtimes are reloadable (SIGHUP); the cgroup driver is not, hence the
# restart on hybrid cgroups (about 30 s under TCG, a reload under 1 s).
how=reload
[ "$CG_WANT" = hybrid ] && how=restart
out=$(timeout 120 systemctl $how docker 2>&1)
rc=$?
# A reload returns once the signal is sent: wait (10 s at most) for vmrt.
for _ in $(seq 20); do
    info=$(dk info -f '{{.CgroupDriver}} {{.CgroupVersion}} {{.Driver}} {{json .Runtimes}}')
    case "$info" in *'"vmrt"'*) break ;; esac
    sleep 0.5
done
v=2
[ "$CG_WANT" = hybrid ] && v=1
dkimg=vm/busybox:latest
if [ $rc -ne 0 ]; then
    bad "$how exit $rc: $out; $(journalctl -u docker --no-pager -n 15 | tr '\n' '|')"
else
    case "$info" in
    "systemd $v "*'"vmrt"'*)
        # The busybox layer (the largest blob of the OCI archive) as an image.
        rm -rf /tmp/dkimg && mkdir /tmp/dkimg && tar -xf /opt/berth/busybox-image.tar -C /tmp/dkimg
        layer=/tmp/dkimg/blobs/sha256/$(ls -S /tmp/dkimg/blobs/sha256 | head -n 1)
        out=$(TO=120 dk import -c 'CMD ["sh"]' "$layer" $dkimg)
        rc=$?
        rm -rf /tmp/dkimg
        if [ $rc -eq 0 ]; then ok; else bad "docker import exit $rc: $out"; fi
        echo "berth-vm: docker info: $info" ;;
    *) bad "docker info says '$info', want the systemd driver, cgroup v$v and the runtime vmrt" ;;
    esac
fi
# apparmor=unconfined: the kernel has AppArmor but the image has no
# apparmor_parser to load docker-default with.
D="--runtime vmrt --network none --security-opt apparmor=unconfined"

# One long-lived container with limits for exec, limits, update, pause and
# stop. Its pid 1 ends on SIGTERM.
T=docker_limits
id=$(dk run -d --name dk1 $D --memory 64m --cpus 0.5 --pids-limit 32 $dkimg \
    sh -c 'trap "exit 0" TERM; while :; do sleep 1; done')
rc=$?
scope=system.slice/docker-$id.scope
unit=$(dk_unit "$id")
files="$(cgval mem "$scope") $(cgval cpu_quota "$scope") $(cgval pids "$scope")"
if [ $rc -ne 0 ]; then
    bad "run -d exit $rc: $id"
    id=none
elif [ "$unit" != "ActiveState=active CPUQuotaPerSecUSec=500ms TasksMax=32 Memory=67108864" ]; then
    bad "docker-$id.scope: $unit"
elif [ "$files" != "67108864 50000 32" ]; then
    bad "cgroup files (memory, cpu quota, pids) of $scope: '$files', want '67108864 50000 32'"
else
    ok
fi

T=docker_exec
out=$(dk exec dk1 sh -c 'echo exec in $(cat /proc/1/comm); exit 3')
rc=$?
pid=$(dk inspect -f '{{.State.Pid}}' dk1)
if [ "$rc:$out" != "3:exec in sh" ]; then
    bad "exit $rc (want 3): $out"
elif ! grep -q "docker-$id.scope" "/proc/$pid/cgroup" 2>/dev/null; then
    bad "pid 1 ($pid) is not in docker-$id.scope: $(cat /proc/"$pid"/cgroup 2>&1 | tr '\n' ' ')"
else
    ok
fi

# --memory-swap as well: run's --memory 64m set the swap limit to 128m.
T=docker_update_memory
out=$(dk update --memory 96m --memory-swap 192m dk1)
rc=$?
unit=$(dk_unit "$id")
mem=$(cgval mem "$scope")
if [ $rc -ne 0 ]; then
    bad "update exit $rc: $out"
else
    case "$unit:$mem" in
    *Memory=100663296:100663296) ok ;;
    *) bad "after update: unit $unit, cgroup memory limit $mem; want 100663296" ;;
    esac
fi

T=docker_pause_unpause
out=$(dk pause dk1)
rc=$?
st=$(dk inspect -f '{{.State.Status}}' dk1)
fr=$(cgval frozen "$scope")
out2=$(dk unpause dk1)
rc2=$?
st2=$(dk inspect -f '{{.State.Status}}' dk1)
fr2=$(cgval frozen "$scope")
if [ $rc -ne 0 ] || [ $rc2 -ne 0 ]; then
    bad "pause exit $rc: $out; unpause exit $rc2: $out2"
elif [ "$st:$fr:$st2:$fr2" != "paused:1:running:0" ]; then
    bad "paused: status $st frozen $fr; unpaused: status $st2 frozen $fr2"
else
    ok
fi

# docker stop: SIGTERM, pid 1's trap exits 0 well before the 20 s grace.
T=docker_stop_rm
out=$(TO=60 dk stop -t 20 dk1)
rc=$?
st=$(dk_state dk1)
out2=$(dk rm dk1)
rc2=$?
left=$(dk_gone "$id")
if [ $rc -ne 0 ]; then
    bad "stop exit $rc: $out"
elif [ "$st" != "exited 0 false" ]; then
    bad "after stop: $st, want exited 0 false"
elif [ $rc2 -ne 0 ]; then
    bad "rm exit $rc2: $out2"
elif [ -n "$left" ]; then
    bad "after rm: $left"
else
    ok
fi

# docker run's output, and a container allocating past its 16 MiB limit (no
# swap: --memory-swap is the same; dd's 64 MiB buffer): the kernel kills
# dd, the shell passes its 137 on, Docker reports 137 and OOMKilled. The
# shell outlives dd by a second: when the OOM-killed process is the
# scope's last one, systemd removes the scope's cgroup at once and the
# shim may find no memory.events to read the OOM from (runc's shim too:
# opencontainers/runc#5071, containerd#12714; 40-containerd.sh does the
# same).
T=docker_run_oom
out=$(TO=120 dk run --name dk2 $D --memory 16m --memory-swap 16m $dkimg \
    sh -c 'echo hello from docker; dd if=/dev/zero of=/dev/null bs=64M count=1 2>/dev/null; s=$?; sleep 1; exit $s')
rc=$?
st=$(dk_state dk2)
id2=$(dk inspect -f '{{.Id}}' dk2)
dk rm dk2 >/dev/null
left=$(dk_gone "$id2")
# (The shell may report a child killed first: "Killed" after the greeting.)
case "$rc:$out" in
"137:hello from docker" | "137:hello from docker"[[:space:]]*) rc=ok ;;
esac
if [ "$rc" != ok ]; then
    bad "run exit $rc (want 137, with the output 'hello from docker' first): $out"
elif [ "$st" != "exited 137 true" ]; then
    bad "state '$st', want exited 137 true"
elif [ -n "$left" ]; then
    bad "after rm: $left"
else
    ok
fi
dk_cleanup
