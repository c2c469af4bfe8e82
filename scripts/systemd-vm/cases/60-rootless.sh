# berth rootless on cgroup v2 with the user's systemd instance (issue 16):
# a user made here (subuid/subgid ranges, linger so user@UID.service runs),
# berth run as that user inside the user's instance:
# * --systemd-cgroup: the scope made by the user's systemd (user.slice under
#   user@UID.service), memory and pids limits in its files and in
#   `systemctl --user show`, delete leaves no unit; a limit of a controller
#   the user's instance is not delegated (cpuset) fails naming its field;
# * cgroupfs in a delegated subtree (berth inside `systemd-run --user
#   --scope`): the container's cgroup next to berth's scope, limits applied;
# * rootless Podman with its systemd cgroup manager and berth as runtime:
#   run, exec, stop, rm, with a --memory limit checked.
# RT60=/usr/sbin/runc runs the same with runc (the scenario's reference).
# Sourced by ../tests.sh, whose helpers (ok, bad, T) it uses.

RT60=${RT60:-/opt/berth/bin/berth}
RU=berthu
RUID=1600
RH=/home/$RU
RRUN=/run/user/$RUID
id $RU >/dev/null 2>&1 || useradd -m -u $RUID -s /bin/sh $RU
grep -q "^$RU:" /etc/subuid || echo "$RU:300000:65536" >>/etc/subuid
grep -q "^$RU:" /etc/subgid || echo "$RU:300000:65536" >>/etc/subgid
# as_user CMD...: CMD as the user, with the environment of its session.
as_user() {
    timeout 150 runuser -u $RU -- env -i PATH=/opt/berth/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=$RH USER=$RU \
        XDG_RUNTIME_DIR=$RRUN DBUS_SESSION_BUS_ADDRESS=unix:path=$RRUN/bus RT60="$RT60" "$@"
}
# in_scope CMD...: CMD as the user in a scope of the user's systemd
# instance (so its cgroup is in the user's delegated subtree).
in_scope() { as_user systemd-run --user --scope --quiet -- "$@"; }
ucg=/sys/fs/cgroup/user.slice/user-$RUID.slice/user@$RUID.service

T=rootless_user_instance
timeout 30 loginctl enable-linger $RU 2>/tmp/r60.linger
n=0
while [ $n -lt 100 ] && ! { [ "$(systemctl is-active user@$RUID.service)" = active ] && [ -S $RRUN/bus ]; }; do
    sleep 0.2
    n=$((n + 1))
done
if [ -S $RRUN/bus ] && [ "$(systemctl is-active user@$RUID.service)" = active ]; then
    # Facts for the report: what user@.service delegates here.
    echo "berth-vm: user@$RUID.service cgroup.controllers: $(cat $ucg/cgroup.controllers); subtree_control: $(cat $ucg/cgroup.subtree_control)"
    echo "berth-vm: the user's manager: $(as_user systemctl --user show -p ControlGroup -p Version 2>&1 | tr '\n' ' ')"
    ok
else
    bad "user@$RUID.service $(systemctl is-active user@$RUID.service), bus: $(ls -la $RRUN 2>&1 | tr '\n' ' '); linger: $(cat /tmp/r60.linger)"
fi

# The user's bundle: a busybox rootfs and a rootless config (the user as
# root of a user namespace, no network namespace, /sys bound read-only).
# r60_bundle NAME ARGS-JSON RESOURCES-JSON
r60_bundle() {
    d=$RH/$1
    rm -rf "$d"
    mkdir -p "$d/rootfs/bin" "$d/rootfs/proc" "$d/rootfs/dev" "$d/rootfs/sys"
    cp /bin/busybox "$d/rootfs/bin/"
    for a in sh sleep cat; do ln -s busybox "$d/rootfs/bin/$a"; done
    cat >"$d/config.json" <<JSON
{"ociVersion": "1.0.2",
 "process": {"terminal": false, "user": {"uid": 0, "gid": 0}, "args": $2, "env": ["PATH=/bin"], "cwd": "/"},
 "root": {"path": "rootfs"}, "hostname": "r60",
 "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]},
            {"destination": "/sys", "type": "none", "source": "/sys", "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]}],
 "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "ipc"}, {"type": "uts"}, {"type": "cgroup"}, {"type": "user"}],
           "uidMappings": [{"containerID": 0, "hostID": $RUID, "size": 1}],
           "gidMappings": [{"containerID": 0, "hostID": $RUID, "size": 1}],
           "resources": $3}}
JSON
    chown -R $RU: "$d"
}

# The user's steps, in one scope of the user's instance (each systemd-run
# costs a round trip under TCG): create with limits, the container's
# cgroup, its files and the unit's properties, exec, kill, delete, the
# unit left after. Lines KEY=VALUE for the checks below.
cat >/tmp/r60-steps.sh <<'EOS'
cd "$HOME/$1" || exit 1
R="$RT60 --root $XDG_RUNTIME_DIR/r60"
shift
id=$1
shift
unit=runc-$id.scope
# The container's stdio: a file (a pipe would keep $(...) open).
timeout 60 $R "$@" create -b . $id >../$id.log 2>&1 </dev/null || { echo "create=FAILED $(cat ../$id.log)" | tr '\n' ' '; echo; exit 0; }
pid=$(timeout 30 $R state $id | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p')
cg=$(sed -n 's/^0:://p' /proc/$pid/cgroup)
echo "cg=$cg"
echo "files=$(cat /sys/fs/cgroup$cg/memory.max /sys/fs/cgroup$cg/pids.max 2>&1 | tr '\n' ' ')"
echo "owner=$(stat -c %U /sys/fs/cgroup$cg/cgroup.procs)"
case " $* " in *" --systemd-cgroup "*)
    echo "props=$(systemctl --user show -p MemoryMax -p TasksMax -p Delegate -p ControlGroup $unit | tr '\n' ' ')" ;;
esac
timeout 30 $R start $id >/dev/null 2>&1 </dev/null
echo "exec=$(timeout 30 $R exec $id cat /proc/self/cgroup 2>&1 | tr '\n' ' ')"
timeout 30 $R kill $id KILL >/dev/null 2>&1
timeout 30 $R delete -f $id >/dev/null 2>&1 || echo "delete=FAILED $(timeout 30 $R delete -f $id 2>&1)"
echo "left=$(systemctl --user list-units --all --plain --no-legend $unit 2>&1) dir=$(ls -d /sys/fs/cgroup$cg 2>&1)"
EOS
chmod 755 /tmp/r60-steps.sh

# --systemd-cgroup rootless: the scope under the user's manager, limits in
# its files (the cgroupfs driver, as the user) and in its properties.
T=rootless_systemd_limits
r60_bundle r60a '["sleep", "60"]' '{"memory": {"limit": 67108864}, "pids": {"limit": 32}}'
out=$(in_scope sh /tmp/r60-steps.sh r60a r60a --systemd-cgroup 2>&1)
want_cg=/user.slice/user-$RUID.slice/user@$RUID.service/user.slice/runc-r60a.scope
v() { echo "$out" | sed -n "s/^$1=//p"; }
why=""
[ "$(v cg)" = "$want_cg" ] || why="cgroup '$(v cg)', want $want_cg"
[ -z "$why" ] && [ "$(v files)" != "67108864 32 " ] && why="memory.max pids.max: '$(v files)'"
[ -z "$why" ] && [ "$(v owner)" != $RU ] && why="cgroup.procs owned by '$(v owner)'"
for p in MemoryMax=67108864 TasksMax=32 Delegate=yes ControlGroup=$want_cg; do
    case " $(v props)" in *" $p "*) ;; *) why="${why:-systemctl --user show: '$(v props)' lacks $p}" ;; esac
done
case "$(v exec)" in "0::/ ") ;; *) why="${why:-exec: /proc/self/cgroup '$(v exec)'}" ;; esac
case "$(v left)" in " dir=ls: "*"No such file"*) ;; *) why="${why:-after delete: '$(v left)'}" ;; esac
if [ -n "$why" ]; then bad "$why; steps: $(echo "$out" | tr '\n' '|')"; else ok; fi

# A limit of a controller user@.service does not delegate (cpuset): the
# create fails naming the field, and leaves no unit.
T=rootless_systemd_undelegated_controller
r60_bundle r60b '["sleep", "60"]' '{"cpu": {"cpus": "0"}}'
out=$(in_scope sh /tmp/r60-steps.sh r60b r60b --systemd-cgroup 2>&1)
left=$(as_user systemctl --user list-units --all --plain --no-legend runc-r60b.scope 2>&1)
case "$out" in
*"create=FAILED"*"cpu.cpus"*) [ -z "$left" ] && ok || bad "unit left: $left" ;;
*) bad "want a create error naming linux.resources.cpu.cpus: $(echo "$out" | tr '\n' '|')" ;;
esac

# cgroupfs in the user's delegated subtree: berth in a scope of the user's
# instance makes the container's cgroup next to its own scope (a cgroup
# with processes cannot enable controllers for its children).
T=rootless_cgroupfs_delegated
r60_bundle r60c '["sleep", "60"]' '{"memory": {"limit": 33554432}, "pids": {"limit": 16}}'
out=$(in_scope sh /tmp/r60-steps.sh r60c r60c 2>&1)
why=""
case "$(v cg)" in /user.slice/user-$RUID.slice/user@$RUID.service/app.slice/*r60c) ;; *) why="cgroup '$(v cg)'" ;; esac
[ -z "$why" ] && [ "$(v files)" != "33554432 16 " ] && why="memory.max pids.max: '$(v files)'"
case "$(v left)" in *" dir=ls: "*"No such file"*) ;; *) why="${why:-after delete: '$(v left)'}" ;; esac
if [ -n "$why" ]; then bad "$why; steps: $(echo "$out" | tr '\n' '|')"; else ok; fi

# Rootless Podman, its systemd cgroup manager, berth as its runtime.
T=rootless_podman_systemd
mkdir -p $RH/.config/containers
# vfs: the overlay driver refuses the VM's tmpfs root.
printf '[storage]\ndriver = "vfs"\n' >$RH/.config/containers/storage.conf
chown -R $RU: $RH/.config
P="podman --runtime $RT60 --cgroup-manager systemd"
why=""
out=$(as_user $P load -q -i /opt/berth/busybox-image.tar 2>&1) || why="load: $out"
if [ -z "$why" ]; then
    out=$(as_user $P run -d --name p60 --network none --memory 64m localhost/busybox:latest \
        sh -c 'trap "exit 0" TERM; while :; do sleep 1; done' 2>&1) || why="run: $out"
fi
if [ -z "$why" ]; then
    got=$(as_user $P exec p60 cat /sys/fs/cgroup/memory.max 2>&1)
    [ "$got" = 67108864 ] || why="exec: memory.max '$got'"
fi
if [ -z "$why" ]; then
    scope=$(as_user $P inspect -f '{{.State.CgroupPath}}' p60 2>&1)
    echo "berth-vm: rootless Podman's container cgroup: $scope"
    out=$(as_user $P stop -t 2 p60 2>&1) || why="stop: $out"
fi
if [ -z "$why" ]; then
    out=$(as_user $P rm p60 2>&1) || why="rm: $out"
fi
if [ -n "$why" ]; then
    bad "$why; $(journalctl -n 8 --no-pager 2>&1 | tr '\n' '|')"
else
    ok
fi
as_user $P rm -f -t 0 p60 >/dev/null 2>&1

# Cleanup: the user's containers are gone with its manager.
timeout 30 loginctl disable-linger $RU 2>/dev/null
