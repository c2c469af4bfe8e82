# berth by hand with the systemd cgroup driver (--systemd-cgroup): each
# container a transient scope made by systemd, checked with systemctl and
# in the cgroup files, on cgroup v2 and on hybrid hosts (sourced by
# ../tests.sh, whose helpers it uses).

BS="$B --systemd-cgroup"
if [ "$(stat -fc %T $CG)" = cgroup2fs ]; then layout=v2; else layout=hybrid; fi
# memfile CGROUP-PATH: the memory limit's file of that cgroup.
memfile() {
    if [ $layout = v2 ]; then echo "$CG$1/memory.max"; else echo "$CG/memory$1/memory.limit_in_bytes"; fi
}
# unit_left UNIT: the unit as systemd lists it (empty when it is gone).
unit_left() { systemctl list-units --all --plain --no-legend "$1" 2>&1; }
# prop UNIT NAME: one property's value.
prop() { systemctl show -p "$2" --value "$1" 2>&1; }
SLEEPER='["sh", "-c", "trap \"exit 0\" TERM; while :; do sleep 1; done"]'

# The whole lifecycle: create puts init in the scope with its properties,
# exec joins it, update sets properties and files, pause/resume freeze it,
# events --stats reads it, delete stops the unit and nothing is left.
T=systemd_lifecycle
u=berth-test-s1.scope
cgp=/system.slice/$u
bundle s1 "$SLEEPER" '"cgroupsPath": "system.slice:berth-test:s1",
  "resources": {"memory": {"limit": 67108864}, "pids": {"limit": 64}, "cpu": {"quota": 50000, "period": 100000}}'
why=""
timeout 60 $BS create -b /b/s1 s1 >/tmp/s1.out 2>&1 </dev/null || why="create: $(cat /tmp/s1.out)"
if [ -z "$why" ]; then
    [ "$(prop $u ActiveState)" = active ] || why="unit $u is '$(prop $u ActiveState)'"
fi
if [ -z "$why" ]; then
    got="$(prop $u Delegate) $(prop $u MemoryMax) $(prop $u TasksMax) $(prop $u CPUQuotaPerSecUSec) $(prop $u ControlGroup)"
    want="yes 67108864 64 500ms $cgp"
    [ "$got" = "$want" ] || why="properties '$got', want '$want'"
fi
[ -z "$why" ] && [ "$(cat "$(memfile $cgp)" 2>&1)" != 67108864 ] && why="$(memfile $cgp): $(cat "$(memfile $cgp)" 2>&1)"
[ -z "$why" ] && { out=$(timeout 30 $B start s1 2>&1) || why="start: $out"; }
if [ -z "$why" ]; then
    # The exec'd process is in the scope: in the container's cgroup
    # namespace its cgroup is the root, "/" (outside it would read "/..").
    out=$(timeout 30 $B exec s1 cat /proc/self/cgroup 2>&1)
    rest=$(echo "$out" | grep -v ':/$')
    [ -n "$out" ] && [ -z "$rest" ] || why="exec: /proc/self/cgroup reads '$out'"
fi
if [ -z "$why" ]; then
    out=$(timeout 30 $B update --memory 134217728 --pids-limit 100 s1 2>&1) || why="update: $out"
    got="$(prop $u MemoryMax) $(prop $u TasksMax) $(cat "$(memfile $cgp)" 2>&1)"
    [ -z "$why" ] && [ "$got" != "134217728 100 134217728" ] && why="after update: '$got'"
fi
if [ -z "$why" ]; then
    out=$(timeout 30 $B pause s1 2>&1) || why="pause: $out"
    st=$(timeout 10 $B state s1 2>&1 | grep -o '"status": *"[a-z]*"')
    [ -z "$why" ] && case "$st" in *paused*) ;; *) why="state after pause: $st" ;; esac
    out=$(timeout 30 $B resume s1 2>&1) || why="${why:-resume: $out}"
fi
if [ -z "$why" ]; then
    out=$(timeout 20 $B events --stats s1 2>&1)
    case "$out" in *'"memory"'*'"usage"'*) ;; *) why="events --stats: $out" ;; esac
fi
timeout 30 $B kill s1 KILL >/dev/null 2>&1
sleep 1
out=$(timeout 60 $B delete s1 2>&1) || why="${why:-delete: $out}"
[ -z "$why" ] && [ -n "$(unit_left $u)" ] && why="unit left after delete: $(unit_left $u)"
[ -z "$why" ] && [ -e "$CG$cgp" ] && why="cgroup left: $CG$cgp"
[ -z "$why" ] && [ -e /run/berth-vm/s1 ] && why="state dir left"
[ -z "$why" ] && ok || bad "$why"
$B delete -f s1 >/dev/null 2>&1

# No cgroupsPath: runc's defaults (system.slice, runc-ID.scope); run -d.
T=systemd_default_path
bundle s2 "$SLEEPER"
why=""
timeout 60 $BS run -d -b /b/s2 s2 >/tmp/s2.out 2>&1 </dev/null || why="run -d: $(cat /tmp/s2.out)"
[ -z "$why" ] && [ "$(prop runc-s2.scope ControlGroup)" != /system.slice/runc-s2.scope ] &&
    why="ControlGroup '$(prop runc-s2.scope ControlGroup)'"
timeout 30 $B kill s2 KILL >/dev/null 2>&1
sleep 1
out=$(timeout 60 $B delete -f s2 2>&1) || why="${why:-delete: $out}"
[ -z "$why" ] && [ -n "$(unit_left runc-s2.scope)" ] && why="unit left: $(unit_left runc-s2.scope)"
[ -z "$why" ] && ok || bad "$why"

# A slice that does not exist yet (as kubelet's pod slices): systemd makes it.
T=systemd_new_slice
bundle s3 "$SLEEPER" '"cgroupsPath": "berthtest-pod1.slice:berth:s3"'
want=/berthtest.slice/berthtest-pod1.slice/berth-s3.scope
why=""
timeout 60 $BS run -d -b /b/s3 s3 >/tmp/s3.out 2>&1 </dev/null || why="run -d: $(cat /tmp/s3.out)"
[ -z "$why" ] && [ "$(prop berth-s3.scope ControlGroup)" != $want ] && why="ControlGroup '$(prop berth-s3.scope ControlGroup)', want $want"
timeout 30 $B kill s3 KILL >/dev/null 2>&1
sleep 1
out=$(timeout 60 $B delete -f s3 2>&1) || why="${why:-delete: $out}"
[ -z "$why" ] && [ -n "$(unit_left berth-s3.scope)" ] && why="unit left: $(unit_left berth-s3.scope)"
[ -z "$why" ] && ok || bad "$why"
systemctl stop berthtest.slice >/dev/null 2>&1

# (create and run -d give the container berth's stdio: to a file, never a
# pipe that $(...) would wait on for as long as the container lives.)

# Past its memory limit the container is OOM-killed: run exits 137, and
# the unit goes with it.
T=systemd_oom
bundle s4 '["sh", "-c", "a=$(busybox head -c 64m /dev/zero | busybox tr \"\\\\0\" a); echo survived"]' \
    '"cgroupsPath": "system.slice:berth-test:s4", "resources": {"memory": {"limit": 16777216, "swap": 16777216}}'
out=$(timeout 120 $BS run -b /b/s4 s4 2>&1 </dev/null)
rc=$?
if [ $rc -ne 137 ]; then
    bad "run exit $rc, want 137: $out"
elif [ -n "$(unit_left berth-test-s4.scope)" ] || [ -e /run/berth-vm/s4 ]; then
    bad "left: $(unit_left berth-test-s4.scope) $(ls -d /run/berth-vm/s4 2>/dev/null)"
else
    ok
fi
$B delete -f s4 >/dev/null 2>&1

# A create that fails once the unit exists (the program is missing) leaves
# no unit, no cgroup and no state.
T=systemd_failed_create
bundle s5 '["/no/such/program"]' '"cgroupsPath": "system.slice:berth-test:s5"'
timeout 60 $BS create -b /b/s5 s5 >/tmp/s5.out 2>&1 </dev/null
rc=$?
out=$(cat /tmp/s5.out)
if [ $rc -eq 0 ]; then
    bad "create succeeded"
elif [ -n "$(unit_left berth-test-s5.scope)" ] || [ -e $CG/system.slice/berth-test-s5.scope ] || [ -e /run/berth-vm/s5 ]; then
    bad "left: $(unit_left berth-test-s5.scope) $(ls -d $CG/system.slice/berth-test-s5.scope /run/berth-vm/s5 2>/dev/null)"
else
    case "$out" in *no/such/program*) ok ;; *) bad "error does not name the program: $out" ;; esac
fi

# D-Bus never hangs berth: with the bus frozen (SIGSTOP), state, exec and
# kill of a systemd-placed container work (no D-Bus on those paths) and a
# new --systemd-cgroup create fails within its bound, naming the call.
T=systemd_bus_frozen
bundle s6 "$SLEEPER" '"cgroupsPath": "system.slice:berth-test:s6"'
bundle s7 '["true"]' '"cgroupsPath": "system.slice:berth-test:s7"'
why=""
timeout 60 $BS run -d -b /b/s6 s6 >/tmp/s6.out 2>&1 </dev/null || why="run -d: $(cat /tmp/s6.out)"
bus=$(systemctl show -p MainPID --value dbus)
if [ -z "$why" ] && [ "${bus:-0}" -gt 0 ]; then
    kill -STOP "$bus"
    t0=$(date +%s)
    out=$(timeout 20 $B state s6 2>&1) || why="state with the bus frozen: $out"
    [ -z "$why" ] && { out=$(timeout 20 $B exec s6 true 2>&1) || why="exec with the bus frozen: $out"; }
    out=$(timeout 60 $BS run -b /b/s7 s7 2>&1 </dev/null)
    rc=$?
    t1=$(date +%s)
    [ -z "$why" ] && [ $rc -eq 0 ] && why="create with the bus frozen succeeded"
    [ -z "$why" ] && case "$out" in *StartTransientUnit*|*"no answer within"*|*Hello*) ;; *) why="create error ($rc): $out" ;; esac
    [ -z "$why" ] && [ $((t1 - t0)) -gt 40 ] && why="took $((t1 - t0)) s"
    [ -z "$why" ] && { out=$(timeout 20 $B kill s6 KILL 2>&1) || why="kill with the bus frozen: $out"; }
    kill -CONT "$bus"
    [ -z "$why" ] && [ -e /run/berth-vm/s7 ] && why="state dir of the failed create left"
elif [ -z "$why" ]; then
    why="no dbus MainPID"
fi
sleep 1
out=$(timeout 60 $B delete -f s6 2>&1) || why="${why:-delete after the bus thawed: $out}"
[ -z "$why" ] && [ -n "$(unit_left berth-test-s6.scope)$(unit_left berth-test-s7.scope)" ] &&
    why="units left: $(unit_left berth-test-s6.scope) $(unit_left berth-test-s7.scope)"
[ -z "$why" ] && ok || bad "$why"
$B delete -f s7 >/dev/null 2>&1
