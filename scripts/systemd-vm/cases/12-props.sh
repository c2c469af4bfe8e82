# berth's systemd unit properties (runtime/src/cgroups/systemd_props.rs)
# with the real systemd: a transient scope made with them (dbus_call props)
# has the cgroup files they stand for, its device list is enforced, and
# SetUnitProperties of an update's properties changes only those.
T=systemd_props_on_real_systemd
out=$(timeout 120 dbus_call props 2>&1)
rc=$?
want="memory.max=67108864 memory.low=16777216 memory.swap.max=33554432 cpu.weight=39
cpu.max=13000_100000 cpuset.cpus=0 cpuset.mems=0 pids.max=32 io.weight=default_2930
child=null-ok,kmsg-denied, memory.max=134217728 cpu.max=max_100000 pids.max=max"
missing=""
for w in $want; do
    echo "$out" | tr ' ' _ | grep -qx "$w" || missing="$missing $w"
done
echo "$out" | grep -q '^version=2[0-9][0-9]$' || missing="$missing version=NNN"
echo "$out" | grep -q '^reset_failed=Err(.*ResetFailedUnit(berth-props-probe-.*NoSuchUnit' ||
    missing="$missing reset_failed=NoSuchUnit"
if [ $rc -ne 0 ]; then
    bad "exit $rc: $(echo "$out" | tail -n 3 | tr '\n' '|')"
elif [ -n "$missing" ]; then
    bad "missing:$missing; got: $(echo "$out" | tr '\n' '|')"
else
    ok
fi
