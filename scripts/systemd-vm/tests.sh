#!/bin/sh
# berth's tests on a systemd + cgroup v2 host, run inside the VM of
# scripts/test-systemd-vm.sh as the unit berth-vm-tests.service once
# multi-user.target is reached. One line per test on the serial console,
# "PASS name" or "FAIL name: why", then "systemd-vm: N passed, M failed",
# which the host script reads. berth, the shim and berthctl (static builds)
# are in /opt/berth/bin.
#
# The cases are in cases/*.sh, sourced in order (they share the helpers
# here): 00-host.sh checks the host and berth with cgroupfs paths; each
# client (berth by hand with --systemd-cgroup, Docker, Podman, containerd,
# CRI) has a file of its own. berth.cases=GLOB on the kernel command line
# (default "*") picks a subset, e.g. for a second boot.
export PATH=/opt/berth/bin:/usr/sbin:/usr/bin:/sbin:/bin
B="berth --root /run/berth-vm"
CG=/sys/fs/cgroup
pass=0
fail=0
ok() { echo "PASS $T"; pass=$((pass + 1)); }
bad() { echo "FAIL $T: $*"; fail=$((fail + 1)); }
uptime_s() { cut -d' ' -f1 /proc/uptime; }

echo "berth-vm: tests start at $(uptime_s) s; kernel $(uname -r); $(systemctl --version | head -n 1)"

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
echo "systemd-vm: $pass passed, $fail failed"
