# exec applies process.apparmorProfile (Docker passes the container's
# profile to every exec), through the container's /proc only when that is
# a procfs not mounted over (CVE-2019-16884). The VM's kernel has AppArmor
# on; the image has no profiles loaded, so the profile is "unconfined".

T=exec_apparmor_profile
if [ "$(cat /sys/module/apparmor/parameters/enabled 2>/dev/null)" != Y ]; then
    bad "AppArmor is not enabled in the VM"
else
    bundle a1 '["sh", "-c", "trap \"exit 0\" TERM; while :; do sleep 1; done"]' '"cgroupsPath": "/berth-vm.slice/a1"'
    why=""
    timeout 60 $B run -d -b /b/a1 a1 >/tmp/a1.out 2>&1 </dev/null || why="run -d: $(cat /tmp/a1.out)"
    if [ -z "$why" ]; then
        out=$(timeout 30 $B exec --apparmor unconfined a1 cat /proc/self/attr/current 2>&1)
        [ "$out" = unconfined ] || why="exec --apparmor unconfined: '$out'"
    fi
    if [ -z "$why" ]; then
        # The container mounts a tmpfs over its /proc: the profile cannot
        # be asked for there, so exec fails instead of running without it.
        out=$(timeout 30 $B exec a1 busybox mount -t tmpfs none /proc 2>&1) || why="mount over /proc: $out"
        out=$(timeout 30 $B exec --apparmor unconfined a1 true 2>&1)
        rc=$?
        [ -z "$why" ] && [ $rc -eq 0 ] && why="exec with /proc mounted over succeeded"
        [ -z "$why" ] && case "$out" in *procfs*) ;; *) why="exec with /proc mounted over: $out" ;; esac
    fi
    timeout 30 $B delete -f a1 >/dev/null 2>&1
    rmdir $CG/berth-vm.slice/a1 $CG/berth-vm.slice 2>/dev/null
    [ -z "$why" ] && ok || bad "$why"
fi
