#!/bin/sh
# berth's tests on a systemd host, cgroup v2 or hybrid, run inside the VM of
# scripts/test-systemd-vm.sh as the unit berth-vm-tests.service once
# multi-user.target is reached. One line per test on the serial console,
# "PASS name" or "FAIL name: why", then "systemd-vm: N passed, M failed"
# ("systemd-vm-hybrid: ..." when booted with hybrid cgroups), which the host
# script reads. berth, the shim and berthctl (static builds) are in
# /opt/berth/bin.
#
# The cases are in cases/*.sh, sourced in order (they share the helpers
# here): 00-host.sh checks the host and berth with cgroupfs paths, 05-notify.sh
# sd-notify; each client (berth by hand with --systemd-cgroup, Docker,
# Podman, containerd, CRI) has a file of its own. berth.cases=GLOB on the
# kernel command line (default "*") picks a subset, e.g. for a second boot.
export PATH=/opt/berth/bin:/usr/sbin:/usr/bin:/sbin:/bin
B="berth --root /run/berth-vm"
# The runtime the clients' cases (Docker, Podman) run: berth, or another
# one to compare with (berth.rt=/usr/sbin/runc on the kernel command line;
# scripts/test-systemd-vm.sh passes BERTH_VM_RT).
RT=$(sed -n 's/.*berth\.rt=\([^ ]*\).*/\1/p' /proc/cmdline)
RT=${RT:-/opt/berth/bin/berth}
CG=/sys/fs/cgroup
pass=0
fail=0
ok() { echo "PASS $T"; pass=$((pass + 1)); }
bad() { echo "FAIL $T: $*"; fail=$((fail + 1)); }
uptime_s() { cut -d' ' -f1 /proc/uptime; }

# The cgroup layout of this boot, CG_LAYOUT: "unified" (cgroup v2 only) or
# "hybrid" (systemd.unified_cgroup_hierarchy=0 with systemd 252: the v1
# controllers in /sys/fs/cgroup/<controller>, systemd's own v2 tree in
# /sys/fs/cgroup/unified); CG_WANT: the layout the kernel command line asked
# for. The summary is named after it: systemd-vm or systemd-vm-hybrid.
if [ "$(stat -fc %T $CG)" = cgroup2fs ]; then
    CG_LAYOUT=unified
elif [ "$(stat -fc %T $CG/unified 2>/dev/null)" = cgroup2fs ]; then
    CG_LAYOUT=hybrid
else
    CG_LAYOUT="legacy ($(stat -fc %T $CG))"
fi
case " $(cat /proc/cmdline) " in
*" systemd.unified_cgroup_hierarchy=0 "*) CG_WANT=hybrid suite=systemd-vm-hybrid ;;
*) CG_WANT=unified suite=systemd-vm ;;
esac

# cgval KEY CGROUP: a value of CGROUP (a path below the hierarchies' root,
# e.g. system.slice/docker-ID.scope) read from this layout's files, in v2
# terms: mem (memory.max), cpu_quota (cpu.max's first field), pids
# (pids.max), frozen (cgroup.freeze: 1 or 0). Empty when unreadable.
cgval() {
    if [ "$CG_LAYOUT" = unified ]; then
        case $1 in
        mem) cat "$CG/$2/memory.max" ;;
        cpu_quota) cut -d' ' -f1 "$CG/$2/cpu.max" ;;
        pids) cat "$CG/$2/pids.max" ;;
        frozen) cat "$CG/$2/cgroup.freeze" ;;
        esac
    else
        case $1 in
        mem) sed 's/^9223372036854771712$/max/' "$CG/memory/$2/memory.limit_in_bytes" ;;
        cpu_quota) sed 's/^-1$/max/' "$CG/cpu,cpuacct/$2/cpu.cfs_quota_us" ;;
        pids) cat "$CG/pids/$2/pids.max" ;;
        frozen) sed 's/^FROZEN$/1/; s/^THAWED$/0/' "$CG/freezer/$2/freezer.state" ;;
        esac
    fi 2>/dev/null
}
# unitshow UNIT PROPERTY...: "NAME=VALUE ..." of UNIT's properties, sorted by
# name, on one line. MemoryMax is shown as Memory=, on hybrid cgroups taken
# from MemoryLimit (v1's property, which runc sets there) when MemoryMax is
# not set.
unitshow() {
    u=$1
    shift
    timeout 20 systemctl show "$u" -p "$(echo "$@" | tr ' ' ,)" -p MemoryLimit | sort |
        awk -F= -v layout="$CG_LAYOUT" '
        $1 == "MemoryLimit" { lim = $2; next }
        $1 == "MemoryMax" { mem = $2; next }
        { printf "%s ", $0 }
        END { if (layout == "hybrid" && mem == "infinity") mem = lim; if (mem != "") printf "Memory=%s", mem; print "" }' |
        sed 's/ $//'
}
# cgleft CGROUP: the directories of CGROUP that exist in any hierarchy.
cgleft() { ls -d "$CG/$1" "$CG"/*/"$1" 2>/dev/null; }

echo "berth-vm: tests start at $(uptime_s) s; kernel $(uname -r); $(systemctl --version | head -n 1); cgroups $CG_LAYOUT"

# bundle NAME ARGS-JSON [EXTRA-LINUX-JSON]: /b/NAME, a busybox rootfs.
bundle() {
    d=/b/$1
    rm -rf "$d"
    mkdir -p "$d/rootfs/bin" "$d/rootfs/proc" "$d/rootfs/dev" "$d/rootfs/tmp" "$d/rootfs/sys"
    cp /bin/busybox "$d/rootfs/bin/"
    for a in sh sleep cat echo ls true; do ln -s busybox "$d/rootfs/bin/$a"; done
    cat >"$d/config.json" <<JSON
{"ociVersion": "1.0.2",
 "process": {"terminal": false, "user": {"uid": 0, "gid": 0}, "args": $2, "env": ["PATH=/bin"], "cwd": "/"},
 "root": {"path": "rootfs"}, "hostname": "vm",
 "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["ro"]},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]}],
 "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "ipc"}, {"type": "uts"}, {"type": "cgroup"}]
           ${3:+, $3}}}
JSON
}

cases=$(sed -n 's/.*berth\.cases=\([^ ]*\).*/\1/p' /proc/cmdline)
for f in /opt/berth/cases/${cases:-*}.sh; do
    [ -f "$f" ] || { T=cases; bad "no case file matches ${cases:-*}"; continue; }
    echo "berth-vm: $(basename "$f") at $(uptime_s) s"
    . "$f"
done

echo "berth-vm: tests end at $(uptime_s) s"
echo "$suite: $pass passed, $fail failed"
