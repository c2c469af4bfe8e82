# containerd 1.6 (the system service) with the systemd cgroup driver: ctr
# with a systemd cgroup path (system.slice:berth-ctr:ID, a scope
# berth-ctr-ID.scope) for berth under runc's shim (--runc-binary,
# --runc-systemd-cgroup: what SystemdCgroup = true sets) and for berth's
# own shim (ctr passes it no options: the path alone says systemd). Per
# runtime: run, exec, pause/resume, metrics (cgroup v2 Metrics), an OOM
# kill with its TaskOOM event, and the scope gone after delete.
. /opt/berth/cases/containerd.inc

# The ctr flags of runtime $1.
ctd_flags() {
    case $1 in
    runc-shim) echo "--runtime io.containerd.runc.v2 --runc-binary $CTD_RT --runc-systemd-cgroup" ;;
    berth-shim) echo "--runtime io.containerd.berth.v2" ;;
    esac
}

# ctd_state ID: the task's status (RUNNING, PAUSED, STOPPED) or nothing.
ctd_state() { $CTR task ls 2>/dev/null | awk -v id="$1" '$1 == id { print $3 }'; }

# ctd_remove ID: the task killed and deleted, the container removed.
ctd_remove() {
    $CTR task kill -s KILL "$1" >/dev/null 2>&1
    i=0
    while [ $i -lt 50 ] && [ "$(ctd_state "$1")" = RUNNING ]; do sleep 0.2; i=$((i + 1)); done
    $CTR task delete -f "$1" >/dev/null 2>&1
    $CTR container delete "$1" >/dev/null 2>&1
}

# ctd_run R: the scenarios with runtime R; container ctr-R in scope
# berth-ctr-ctr-R.scope of system.slice.
ctd_run() {
    r=$1
    id=ctr-$r
    unit=berth-ctr-$id.scope
    dir=$CG/system.slice/$unit
    flags=$(ctd_flags $r)
    T=containerd_${r}_run
    # shellcheck disable=SC2086
    out=$($CTR run -d $flags --cgroup "system.slice:berth-ctr:$id" --memory-limit 67108864 \
        $CTD_IMAGE $id sh -c 'trap "exit 0" TERM; while :; do sleep 1; done' 2>&1 </dev/null)
    rc=$?
    pid=$($CTR task ls 2>/dev/null | awk -v id=$id '$1 == id { print $2 }')
    active=$(systemctl is-active $unit 2>&1)
    cgline=$(cat /proc/"$pid"/cgroup 2>&1)
    max=$(cat $dir/memory.max 2>&1)
    prop=$(systemctl show -p MemoryMax --value $unit 2>&1)
    echo "berth-vm: $r: $(ctd_runtime $CTD_NS $id); cgroupsPath" \
        "$(grep -o '"cgroupsPath":"[^"]*"' /run/containerd/io.containerd.runtime.v2.task/$CTD_NS/$id/config.json 2>&1)"
    if [ $rc -ne 0 ]; then
        bad "ctr run exit $rc: $out; $(journalctl -u containerd --no-pager -n 8 | tr '\n' '|')"
        ctd_remove $id
        echo "berth-vm: skip the other containerd_${r}_* checks: the container did not start"
        return
    elif [ "$active" != active ]; then
        bad "$unit is '$active' (pid $pid: $cgline)"
    elif [ "$cgline" != "0::/system.slice/$unit" ]; then
        bad "pid $pid is in '$cgline', want 0::/system.slice/$unit"
    elif [ "$max" != 67108864 ] || [ "$prop" != 67108864 ]; then
        bad "memory.max '$max', MemoryMax '$prop', want 67108864"
    else
        ok
    fi

    T=containerd_${r}_exec
    out=$($CTR task exec --exec-id e1 $id sh -c 'cat /proc/self/cgroup; echo exec-ok' 2>&1 </dev/null)
    rc=$?
    case "$rc:$out" in
    "0:0::/"*exec-ok | "0:0::/system.slice/$unit"*exec-ok) ok ;;
    *) bad "exit $rc: $out" ;;
    esac

    T=containerd_${r}_pause
    $CTR task pause $id >/dev/null 2>&1
    s1=$(ctd_state $id)
    f1=$(grep frozen $dir/cgroup.events 2>&1)
    $CTR task resume $id >/dev/null 2>&1
    s2=$(ctd_state $id)
    f2=$(grep frozen $dir/cgroup.events 2>&1)
    if [ "$s1:$f1" = "PAUSED:frozen 1" ] && [ "$s2:$f2" = "RUNNING:frozen 0" ]; then
        ok
    else
        bad "paused: $s1 ($f1); resumed: $s2 ($f2)"
    fi

    # ctr decodes io.containerd.cgroups.v2.Metrics into these rows.
    T=containerd_${r}_metrics
    out=$($CTR task metrics $id 2>&1)
    miss=
    for k in pids.current memory.usage memory.usage_limit cpu.usage_usec; do
        echo "$out" | grep -q "^$k[[:space:]]" || miss="$miss $k"
    done
    limit=$(echo "$out" | awk '$1 == "memory.usage_limit" { print $2 }')
    if [ -n "$miss" ]; then
        bad "no$miss in: $(echo "$out" | tr '\n' '|')"
    elif [ "$limit" != 67108864 ]; then
        bad "memory.usage_limit '$limit', want 67108864"
    else
        ok
    fi

    T=containerd_${r}_delete
    $CTR task kill $id >/dev/null 2>&1
    i=0
    while [ $i -lt 100 ] && [ "$(ctd_state $id)" != STOPPED ]; do sleep 0.2; i=$((i + 1)); done
    st=$(ctd_state $id)
    out=$($CTR task delete $id 2>&1 && $CTR container delete $id 2>&1)
    rc=$?
    if [ "$st" != STOPPED ]; then
        bad "SIGTERM: the task is '$st' after 20 s"
        ctd_remove $id
    elif [ $rc -ne 0 ]; then
        bad "delete: $out"
        ctd_remove $id
    elif ! ctd_unit_gone $unit; then
        bad "left after delete: $left"
    else
        ok
    fi

    ctd_oom $r
}

# ctd_oom R: dd's 64 MiB buffer in a 16 MiB container (no swap in the VM):
# the kernel kills dd, TaskOOM is published, the container exits 137 (dd's
# status, passed on by its shell), its scope is gone after --rm.
# The shell keeps the scope alive for a second after the kill: when the
# OOM-killed process is the scope's last one, systemd removes the cgroup
# as soon as it is empty, and a shim that reads memory.events after that
# misses the OOM (runc's shim running berth and berth's own shim alike:
# measured here 2 misses in 6 and 1 in 8 such runs; upstream:
# opencontainers/runc#5071, containers/conmon#426, containerd skips
# critest's OOMKilled test for the systemd driver in containerd#12714).
ctd_oom() {
    T=containerd_${1}_oom
    id=ctr-$1-oom
    ev=/tmp/ctr-events-$1
    timeout 120 ctr -n $CTD_NS events >$ev 2>&1 &
    evpid=$!
    sleep 0.5
    # shellcheck disable=SC2086
    out=$($CTR run --rm $(ctd_flags $1) --cgroup "system.slice:berth-ctr:$id" --memory-limit 16777216 \
        $CTD_IMAGE $id sh -c 'dd if=/dev/zero of=/dev/null bs=64M count=1; s=$?; sleep 1; exit $s' 2>&1 </dev/null)
    rc=$?
    i=0
    until grep -q "/tasks/oom.*$id" $ev || [ $i -ge 50 ]; do sleep 0.2; i=$((i + 1)); done
    kill $evpid 2>/dev/null
    wait $evpid 2>/dev/null
    if [ $rc -ne 137 ]; then
        bad "exit $rc, want 137: $out"
    elif ! grep -q "/tasks/oom.*$id" $ev; then
        bad "no TaskOOM event for $id: $(grep -F "$id" $ev | cut -c1-200 | tr '\n' '|')"
    elif ! ctd_unit_gone berth-ctr-$id.scope; then
        bad "left after --rm: $left"
    else
        ok
    fi
    ctd_remove $id
    rm -f $ev
}

T=containerd_systemd_setup
if ctd_setup; then
    ok
    echo "berth-vm: $(containerd --version); runc's shim runs $CTD_RT; set up at $(uptime_s) s"
    for r in runc-shim berth-shim; do
        ctd_run $r
        echo "berth-vm: containerd $r done at $(uptime_s) s"
    done
else
    bad "$ctd_err"
fi
