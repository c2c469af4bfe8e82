#!/bin/sh
# berth's cgroup v2 tests, run inside the VM (busybox sh, a static berth,
# the unified hierarchy at /sys/fs/cgroup). One line per test on the
# serial console, "PASS name" or "FAIL name: why", then the summary
# "cgroup-v2: N passed, M failed" that scripts/test-cgroup-v2.sh reads.
B="/bin/berth --root /run/berth"
CG=/sys/fs/cgroup
PARENT=berth-vm
pass=0
fail=0
ok() { echo "PASS $T"; pass=$((pass + 1)); }
bad() { echo "FAIL $T: $*"; fail=$((fail + 1)); }

# bundle NAME ARGS-JSON RESOURCES-JSON [EXTRA-LINUX-JSON]: /b/NAME with a
# busybox rootfs and a config running ARGS at cgroupsPath /berth-vm/NAME.
bundle() {
    d=/b/$1
    rm -rf "$d"
    mkdir -p "$d/rootfs/bin" "$d/rootfs/proc" "$d/rootfs/dev" "$d/rootfs/tmp"
    cp /bin/busybox "$d/rootfs/bin/"
    for a in sh sleep cat tail echo ls mknod dd head true; do ln -s busybox "$d/rootfs/bin/$a"; done
    cat > "$d/config.json" <<JSON
{"ociVersion": "1.0.2",
 "process": {"terminal": false, "user": {"uid": 0, "gid": 0}, "args": $2, "env": ["PATH=/bin"], "cwd": "/"},
 "root": {"path": "rootfs"}, "hostname": "vm",
 "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]}],
 "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "ipc"}, {"type": "uts"}],
           "cgroupsPath": "/$PARENT/$1", "resources": $3 ${4:+, $4}}}
JSON
}

SLEEP='["sh", "-c", "while :; do sleep 0.1; done"]'
COUNTER='["sh", "-c", "i=0; while :; do i=$((i+1)); echo $i > /count; sleep 0.02; done"]'

# want FILE VALUE: the container's cgroup file holds exactly VALUE.
want() {
    got=$(cat "$CG/$PARENT/$ID/$1" 2>&1)
    [ "$got" = "$2" ] && return 0
    bad "$1 is '$got', want '$2'"
    return 1
}

# The container inherits berth's stdio: never a pipe that $(...) would wait
# on until the container exits. bg ARGS: run berth with output to a file.
bg() {
    timeout 60 $B "$@" > /tmp/berth.out 2>&1 < /dev/null
}

# Create NAME from its bundle; on failure report and return 1.
create() {
    ID=$1
    if ! bg create -b /b/$1 $1; then
        bad "create: $(cat /tmp/berth.out)"
        return 1
    fi
}

# Run NAME detached.
run_d() {
    ID=$1
    if ! bg run -d -b /b/$1 $1; then
        bad "run -d: $(cat /tmp/berth.out)"
        return 1
    fi
}

# Delete with --force and check that no cgroup directory is left.
cleanup() {
    $B delete -f "$ID" >/dev/null 2>&1
    [ -d "$CG/$PARENT/$ID" ] && { bad "cgroup $CG/$PARENT/$ID left after delete"; return 1; }
    return 0
}

# finish: after the checks (their status in $?), delete the container and
# pass the test if they held.
finish() {
    r=$?
    cleanup || return
    [ $r -eq 0 ] && ok
}

# create_fails NAME NEEDLE...: create must fail, say every NEEDLE, leave nothing.
create_fails() {
    ID=$1
    shift
    if bg create -b /b/$ID $ID; then
        bad "create succeeded, expected an error naming $1"
        cleanup
        return 1
    fi
    out=$(cat /tmp/berth.out)
    for n in "$@"; do
        case "$out" in *"$n"*) ;; *) bad "error lacks '$n': $out"; return 1 ;; esac
    done
    [ -d "$CG/$PARENT/$ID" ] && { bad "cgroup left after failed create"; return 1; }
    [ -d "/run/berth/$ID" ] && { bad "state dir left after failed create"; return 1; }
    return 0
}

t_controllers_enabled() {
    bundle ctl "$SLEEP" '{}'
    create ctl || return
    sc=$(cat $CG/$PARENT/cgroup.subtree_control)
    for c in cpu memory pids io hugetlb cpuset rdma; do
        case " $sc " in *" $c "*) ;; *) bad "$c not enabled in /$PARENT: '$sc'"; cleanup; return ;; esac
    done
    cleanup && ok
}

t_memory() {
    bundle mem "$SLEEP" '{"memory": {"limit": 67108864, "reservation": 33554432, "swap": 100663296, "useHierarchy": true, "checkBeforeUpdate": true}}'
    create mem || return
    want memory.max 67108864 && want memory.low 33554432 && want memory.swap.max 33554432
    finish
}

t_memory_unlimited() {
    bundle memu "$SLEEP" '{"memory": {"limit": -1}}'
    create memu || return
    want memory.max max && want memory.swap.max max
    finish
}

t_memory_equal_swap_means_no_swap() {
    bundle memns "$SLEEP" '{"memory": {"limit": 67108864, "swap": 67108864}}'
    create memns || return
    want memory.swap.max 0
    finish
}

t_cpu() {
    bundle cpu "$SLEEP" '{"cpu": {"shares": 512, "quota": 50000, "period": 200000, "burst": 10000, "cpus": "0", "mems": "0"}}'
    create cpu || return
    # runc: weight = 1 + (shares - 2) * 9999 / 262142
    want cpu.weight 20 && want cpu.max "50000 200000" && want cpu.max.burst 10000 &&
        want cpuset.cpus 0 && want cpuset.mems 0
    finish
}

t_cpu_idle() {
    bundle idle "$SLEEP" '{"cpu": {"idle": 1}}'
    create idle || return
    want cpu.idle 1
    finish
}

t_cpu_period_only() {
    bundle cpup "$SLEEP" '{"cpu": {"period": 50000}}'
    create cpup || return
    want cpu.max "max 50000"
    finish
}

t_pids() {
    for c in '{"limit": 0}:0' '{}:max' '{"limit": -1}:max' '{"limit": 7}:7'; do
        bundle pids "$SLEEP" "{\"pids\": ${c%:*}}"
        create pids || return
        want pids.max "${c##*:}" || { cleanup; return; }
        cleanup || return
    done
    ok
}

t_pids_stop_forks() {
    bundle pidsf '["sh", "-c", "for i in 1 2 3 4 5 6 7 8; do sleep 2 & echo $i >> /forked; done 2>/err"]' '{"pids": {"limit": 4}}'
    ID=pidsf
    timeout 60 $B run -b /b/pidsf pidsf >/dev/null 2>&1
    n=$(wc -l < /b/pidsf/rootfs/forked)
    grep -q "can't fork" /b/pidsf/rootfs/err || { bad "no fork failure: $(cat /b/pidsf/rootfs/err)"; return; }
    [ "$n" -eq 3 ] || { bad "forked $n children under a limit of 4 (want 3)"; return; }
    cleanup && ok
}

t_hugetlb() {
    bundle huge "$SLEEP" '{"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]}'
    create huge || return
    want hugetlb.2MB.max 4194304 && want hugetlb.2MB.rsvd.max 4194304
    finish
    bundle huge1g "$SLEEP" '{"hugepageLimits": [{"pageSize": "64KB", "limit": 4194304}]}'
    T="$T (no such page size)"
    create_fails huge1g 'linux.resources.hugepageLimits[0].pageSize' '64KB' && ok
}

t_io_weight() {
    # Before bfq is loaded: io.weight with runc's conversion (300 -> 2930).
    bundle iow "$SLEEP" '{"blockIO": {"weight": 300}}'
    create iow || return
    want io.weight "default 2930"
    finish
}

t_io_bfq_and_throttle() {
    insmod /lib/bfq.ko 2>/dev/null
    insmod /lib/loop.ko 2>/dev/null
    dd if=/dev/zero of=/tmp/disk bs=1M count=4 2>/dev/null
    losetup /dev/loop0 /tmp/disk || { bad "losetup failed"; return; }
    echo bfq > /sys/block/loop0/queue/scheduler || { bad "bfq not available"; return; }
    mm=$(cat /sys/block/loop0/dev)
    ma=${mm%:*}
    mi=${mm#*:}
    bundle io "$SLEEP" "{\"blockIO\": {\"weight\": 300, \"weightDevice\": [{\"major\": $ma, \"minor\": $mi, \"weight\": 200}],
        \"throttleReadBpsDevice\": [{\"major\": $ma, \"minor\": $mi, \"rate\": 1048576}],
        \"throttleWriteBpsDevice\": [{\"major\": $ma, \"minor\": $mi, \"rate\": 2097152}],
        \"throttleReadIOPSDevice\": [{\"major\": $ma, \"minor\": $mi, \"rate\": 100}],
        \"throttleWriteIOPSDevice\": [{\"major\": $ma, \"minor\": $mi, \"rate\": 200}]}}"
    create io || return
    want io.bfq.weight "default 300
$mm 200" && want io.max "$mm rbps=1048576 wbps=2097152 riops=100 wiops=200"
    finish
}

t_rdma() {
    # No RDMA device in the VM: the kernel refuses any device name, and the
    # error must name the field.
    bundle rdma "$SLEEP" '{"rdma": {"mlx5_0": {"hcaHandles": 3, "hcaObjects": 100}}}'
    create_fails rdma 'linux.resources.rdma.mlx5_0' 'rdma.max' && ok
}

t_unified() {
    bundle uni "$SLEEP" '{"unified": {"memory.high": "50003968", "pids.max": "9", "cgroup.max.descendants": "3"}}'
    create uni || return
    want memory.high 50003968 && want pids.max 9 && want cgroup.max.descendants 3
    finish
    bundle unib "$SLEEP" '{"unified": {"nosuch.file": "1"}}'
    T="$T (bad key)"
    create_fails unib 'linux.resources.unified.nosuch.file' 'nosuch' && ok
}

t_v2_refuses_v1_only_fields() {
    # memory.kernel and kernelTCP are deprecated (runtime-spec 1.3): on v2
    # they are ignored with a warning naming the field, as runc does.
    for c in 'memory.kernel:{"memory": {"kernel": 1048576}}' \
        'memory.kernelTCP:{"memory": {"kernelTCP": 1048576}}'; do
        bundle ignored '["true"]' "${c#*:}"
        ID=ignored
        out=$(timeout 60 $B run -b /b/ignored ignored 2>&1) || { bad "run with ${c%%:*} failed: $out"; return; }
        case "$out" in *warning*"linux.resources.${c%%:*}"*) ;; *) bad "no warning naming ${c%%:*}: $out"; return ;; esac
    done
    for c in 'memory.swappiness:{"memory": {"swappiness": 10}}' \
        'memory.disableOOMKiller:{"memory": {"disableOOMKiller": true}}' \
        'cpu.realtimeRuntime:{"cpu": {"realtimeRuntime": 1000}}' \
        'network.classID:{"network": {"classID": 1}}' \
        'blockIO.leafWeight:{"blockIO": {"leafWeight": 100}}' \
        'memory.swap:{"memory": {"limit": 67108864, "swap": 1048576}}'; do
        bundle refuse "$SLEEP" "${c#*:}"
        create_fails refuse "linux.resources.${c%%:*}" || return
    done
    ok
}

t_devices_ebpf() {
    s='mknod /tmp/kmsg c 1 11 && if dd if=/tmp/kmsg of=/dev/null bs=8k count=1 2>/tmp/err; then echo OPENED; else cat /tmp/err; fi; echo x > /dev/null && echo NULL-OK'
    bundle dev "[\"sh\", \"-c\", \"$s\"]" '{"devices": [{"allow": false, "access": "rwm"}]}'
    ID=dev
    out=$(timeout 60 $B run -b /b/dev dev 2>&1)
    case "$out" in *OPENED*) bad "/dev/kmsg opened under deny-all: $out"; return ;; esac
    case "$out" in *"Operation not permitted"*NULL-OK*) ;; *) bad "want EPERM for kmsg and /dev/null usable: $out"; return ;; esac
    bundle dev2 "[\"sh\", \"-c\", \"$s\"]" '{"devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 11, "access": "r"}]}'
    ID=dev2
    out=$(timeout 60 $B run -b /b/dev2 dev2 2>&1)
    case "$out" in *OPENED*) ;; *) bad "allowed /dev/kmsg did not open: $out"; return ;; esac
    ok
}

t_freeze() {
    bundle frz "$COUNTER" '{}'
    run_d frz || return
    sleep 0.5
    $B pause frz || { bad "pause failed"; cleanup; return; }
    $B state frz | grep -q '"status": "paused"' || { bad "state is not paused"; cleanup; return; }
    want cgroup.freeze 1 || { cleanup; return; }
    grep -q "frozen 1" $CG/$PARENT/frz/cgroup.events || { bad "cgroup.events not frozen"; cleanup; return; }
    a=$(cat /b/frz/rootfs/count)
    sleep 0.5
    b=$(cat /b/frz/rootfs/count)
    [ "$a" = "$b" ] || { bad "counter moved while frozen ($a -> $b)"; cleanup; return; }
    $B resume frz || { bad "resume failed"; cleanup; return; }
    sleep 0.5
    c=$(cat /b/frz/rootfs/count)
    [ "$c" -gt "$b" ] || { bad "counter did not resume ($b -> $c)"; cleanup; return; }
    $B pause frz
    cleanup && ok
}

t_oom() {
    bundle oom '["sh", "-c", "sleep 0.5; tail /dev/zero; exit $?"]' '{"memory": {"limit": 16777216}}'
    ID=oom
    create oom || return
    timeout 60 $B events --interval 1h oom > /tmp/events.oom 2>&1 < /dev/null &
    ev=$!
    sleep 0.3
    bg start oom
    i=0
    while [ $i -lt 300 ] && ! $B state oom | grep -q stopped; do sleep 0.1; i=$((i + 1)); done
    wait $ev
    grep -q '"type":"oom"' /tmp/events.oom || { bad "no oom event: $(cat /tmp/events.oom)"; cleanup; return; }
    cleanup || return
    bundle oom2 '["sh", "-c", "tail /dev/zero; exit $?"]' '{"memory": {"limit": 16777216}}'
    ID=oom2
    timeout 60 $B run -b /b/oom2 oom2 >/dev/null 2>&1
    rc=$?
    [ $rc -eq 137 ] || { bad "run exited $rc, want 137"; return; }
    cleanup && ok
}

t_events_stats() {
    bundle st "$SLEEP" '{"memory": {"limit": 67108864}, "pids": {"limit": 30}}'
    run_d st || return
    out=$($B events --stats st)
    for n in '"type":"stats"' '"id":"st"' '"limit":67108864' '"limit":30' '"cpu":{' '"hugetlb":{'; do
        case "$out" in *"$n"*) ;; *) bad "stats lack $n: $out"; cleanup; return ;; esac
    done
    cleanup && ok
}

t_update() {
    bundle upd "$SLEEP" '{"memory": {"limit": 67108864}, "cpu": {"shares": 512, "quota": 50000, "period": 100000}, "pids": {"limit": 20}}'
    run_d upd || return
    $B update --memory 128m --memory-swap 256m --cpu-share 1024 upd || { bad "update failed"; cleanup; return; }
    want memory.max 134217728 && want memory.swap.max 134217728 && want cpu.weight 39 && want cpu.max "50000 100000" || { cleanup; return; }
    $B update --memory 0 --cpu-share 0 --cpu-quota 0 --pids-limit 0 upd || { bad "update with zeros failed"; cleanup; return; }
    want memory.max 134217728 && want cpu.weight 39 && want pids.max 20 || { cleanup; return; }
    echo '{"cpu": {"quota": 30000}, "pids": {"limit": 9}, "unified": {"memory.high": "100003840"}}' > /tmp/res.json
    $B update -r /tmp/res.json upd || { bad "update -r failed"; cleanup; return; }
    want cpu.max "30000 100000" && want pids.max 9 && want memory.high 100003840 || { cleanup; return; }
    $B update --cpu-period 50000 upd && want cpu.max "30000 50000" || { cleanup; return; }
    echo '{"memory": {"limit": 8192, "checkBeforeUpdate": true}}' > /tmp/res2.json
    if bg update -r /tmp/res2.json upd; then
        bad "a limit below the usage passed checkBeforeUpdate"
    else
        grep -q "checkBeforeUpdate" /tmp/berth.out || bad "error lacks checkBeforeUpdate: $(cat /tmp/berth.out)"
    fi
    want memory.max 134217728
    finish
}

t_ps() {
    bundle ps "$SLEEP" '{}'
    run_d ps || return
    pid=$($B state ps | grep '"pid"' | tr -dc 0-9)
    out=$($B ps -f json ps)
    case "$out" in *"$pid"*) ;; *) bad "ps json lacks init $pid: $out"; cleanup; return ;; esac
    cleanup && ok
}

# Rootless cgroupfs on cgroup v2 (issue 16): a cgroup chowned to a user (as
# systemd delegates one: the directory, cgroup.procs, cgroup.threads and
# cgroup.subtree_control), berth run as that user from a leaf of it:
# * an absolute cgroupsPath in the delegated cgroup: limits applied;
# * no cgroupsPath, berth's own cgroup a ".scope": berth-ID next to it;
# * a cgroupsPath the user may not write: no cgroup, one warning, it runs.
t_rootless_delegated() {
    ru=1700
    D=$CG/deleg
    mkdir -p /etc $D/own.scope /tmp/u$ru /b/rl/rootfs/bin /b/rl/rootfs/proc /b/rl/rootfs/dev
    grep -q "^u$ru:" /etc/passwd 2>/dev/null || echo "u$ru:x:$ru:$ru::/tmp/u$ru:/bin/sh" >>/etc/passwd
    grep -q "^root:" /etc/passwd || echo "root:x:0:0::/:/bin/sh" >>/etc/passwd
    echo "+memory +pids" >$CG/cgroup.subtree_control
    chown $ru:$ru $D $D/cgroup.procs $D/cgroup.threads $D/cgroup.subtree_control \
        $D/own.scope $D/own.scope/cgroup.procs /tmp/u$ru
    cp /bin/busybox /b/rl/rootfs/bin/
    ln -sf busybox /b/rl/rootfs/bin/sh
    ln -sf busybox /b/rl/rootfs/bin/sleep
    # rl_config CGROUPS-PATH-JSON-MEMBER: the user's config.
    rl_config() {
        cat >/b/rl/config.json <<JSON
{"ociVersion": "1.0.2",
 "process": {"terminal": false, "user": {"uid": 0, "gid": 0}, "args": ["sleep", "30"], "env": ["PATH=/bin"], "cwd": "/"},
 "root": {"path": "rootfs"}, "hostname": "rl",
 "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]}],
 "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "ipc"}, {"type": "uts"}, {"type": "user"}],
           "uidMappings": [{"containerID": 0, "hostID": $ru, "size": 1}],
           "gidMappings": [{"containerID": 0, "hostID": $ru, "size": 1}],
           $1 "resources": {"memory": {"limit": 33554432}, "pids": {"limit": 16}}}}
JSON
    }
    # as_user ID: berth run -d as the user from deleg/own.scope (root moves
    # the shell there first: the common ancestor is the root cgroup), then
    # the container's cgroup, its limits, and delete.
    as_user() {
        sh -c "echo \$\$ >$D/own.scope/cgroup.procs; exec su -s /bin/sh u$ru -c '
            R=\"/bin/berth --root /tmp/u$ru/berth\"
            timeout 60 \$R run -d -b /b/rl $1 >/tmp/u$ru/$1.out 2>&1 </dev/null || { echo run=FAILED; cat /tmp/u$ru/$1.out; exit; }
            echo warnings=\$(grep -c \"linux.resources: skipped\" /tmp/u$ru/$1.out)
            pid=\$(\$R state $1 | grep \"\\\"pid\\\"\" | tr -dc 0-9)
            cg=\$(sed -n \"s/^0:://p\" /proc/\$pid/cgroup)
            echo cg=\$cg
            echo limits=\$(cat $CG\$cg/memory.max $CG\$cg/pids.max 2>/dev/null)
            timeout 30 \$R delete -f $1 >/dev/null 2>&1 || echo delete=FAILED
            [ \"\$cg\" != / ] && [ -d $CG\$cg ] && echo left=\$cg'"
    }
    val() { echo "$out" | sed -n "s/^$1=//p"; }
    rl_config '"cgroupsPath": "/deleg/c1",'
    out=$(as_user rlc1 2>&1)
    [ "$(val cg)" = /deleg/c1 ] && [ "$(val limits)" = "33554432 16" ] && [ -z "$(val left)" ] ||
        { bad "chowned cgroup, absolute path: $(echo "$out" | tr '\n' '|')"; return; }
    rl_config ''
    out=$(as_user rlc2 2>&1)
    [ "$(val cg)" = /deleg/berth-rlc2 ] && [ "$(val limits)" = "33554432 16" ] && [ -z "$(val left)" ] ||
        { bad "default path next to berth's scope: $(echo "$out" | tr '\n' '|')"; return; }
    rl_config '"cgroupsPath": "/notmine/c3",'
    out=$(as_user rlc3 2>&1)
    [ "$(val warnings)" = 1 ] && [ ! -d $CG/notmine ] ||
        { bad "no delegation: want one warning and no cgroup: $(echo "$out" | tr '\n' '|')"; return; }
    rmdir $D/own.scope $D 2>/dev/null
    ok
}

mkdir -p /b
for t in controllers_enabled memory memory_unlimited memory_equal_swap_means_no_swap cpu cpu_idle cpu_period_only \
    pids pids_stop_forks hugetlb io_weight io_bfq_and_throttle rdma unified v2_refuses_v1_only_fields devices_ebpf \
    freeze oom events_stats update ps rootless_delegated; do
    T=$t
    "t_$t"
done
left=$(ls -d $CG/$PARENT/*/ 2>/dev/null)
T=no_leftovers
[ -z "$left" ] && ok || bad "cgroups left: $left"
echo "cgroup-v2: $pass passed, $fail failed"
