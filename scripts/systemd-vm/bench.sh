#!/bin/sh
# The benchmarks of bench/systemd-vm.sh, run inside the systemd VM as the
# unit berth-vm-bench.service once multi-user.target is reached; the host
# script prints what this writes to the serial console. Kernel command
# line: berth.runs=N (rounds per runtime, default 30), berth.warmup=N
# (untimed rounds first, default 3), berth.systemd=LIST (the runtimes
# timed with --systemd-cgroup, default berth,runc,crun).
#
# 1. `run` of /bin/true on one busybox bundle (berth-bench, interleaved
#    round-robin in one run): berth, runc and crun with --systemd-cgroup
#    (cgroupsPath system.slice:berth-bench-NAME:ID, a transient scope per
#    container), and berth with cgroupfs paths (/berth-bench/ID).
# Ends with "berth-vm-bench: done" (or "berth-vm-bench: failed: why").
export PATH=/opt/berth/bin:/usr/sbin:/usr/bin:/sbin:/bin
arg() { sed -n "s/.*berth\.$1=\([^ ]*\).*/\1/p" /proc/cmdline; }
uptime_s() { cut -d' ' -f1 /proc/uptime; }
runs=$(arg runs)
warmup=$(arg warmup)
sd=$(arg systemd)
sd=${sd:-berth,runc,crun}
rts=""
for r in $(echo "$sd" | tr ',' ' '); do
    case $r in
    berth) rts="$rts,berth=/opt/berth/bin/berth" ;;
    runc) rts="$rts,runc=/usr/sbin/runc" ;;
    crun) rts="$rts,crun=/usr/bin/crun" ;;
    *) echo "berth-vm-bench: failed: berth.systemd: unknown runtime $r"; exit 0 ;;
    esac
done
failed=""

echo "berth-vm-bench: start at $(uptime_s) s"
echo "berth-vm-bench: kernel $(uname -r); $(systemctl --version | head -n 1); $(nproc) vCPU;" \
    "$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo);" \
    "$(stat -fc %T /sys/fs/cgroup); $(runc --version | head -n 1); $(crun --version | head -n 1);" \
    "$(containerd --version)"

echo "berth-vm-bench: runtimes at $(uptime_s) s"
echo "=== runtimes"
timeout 3000 berth-bench --runs "${runs:-30}" --warmup "${warmup:-3}" --only run \
    --runtimes "${rts#,},berth-cgroupfs=/opt/berth/bin/berth" --systemd-cgroup "$sd" --json /tmp/runtimes.json 2>&1 || failed="$failed berth-bench(exit $?)"
left=$(systemctl list-units --all --plain --no-legend 'berth-bench-*' 2>&1)
[ -z "$left" ] || failed="$failed units-left($left)"
echo "=== end"

if [ -f /tmp/runtimes.json ]; then
    echo "=== json runtimes"
    cat /tmp/runtimes.json
    echo "=== end"
fi
echo "berth-vm-bench: end at $(uptime_s) s"
if [ -n "$failed" ]; then
    echo "berth-vm-bench: failed:$failed"
else
    echo "berth-vm-bench: done"
fi
