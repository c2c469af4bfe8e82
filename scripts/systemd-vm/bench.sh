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
#    container), and berth with cgroupfs paths (/berth-bench/ID); then
#    create, start and delete timed apart (where the scope is made and
#    where it is stopped).
# 2. CRI: RunPodSandbox + CreateContainer + StartContainer of a
#    one-container pod (a sleeper; the pod's cgroup parent a kubelet-style
#    kubepods-besteffort-pod<uid>.slice), containerd 1.6 (the VM's service)
#    with SystemdCgroup = true: handler "berth" (berth's shim, which takes
#    the systemd driver for slice:prefix:name paths) against "runc"
#    (containerd-shim-runc-v2 with runc), interleaved by `vm-cri bench`;
#    berth.cri_runs=N rounds (default 20, 0: skip), berth.cri_warmup=N.
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
timeout 3000 berth-bench --runs "${runs:-30}" --warmup "${warmup:-3}" --only run,lifecycle \
    --runtimes "${rts#,},berth-cgroupfs=/opt/berth/bin/berth" --systemd-cgroup "$sd" --json /tmp/runtimes.json 2>&1 || failed="$failed berth-bench(exit $?)"
left=$(systemctl list-units --all --plain --no-legend 'berth-bench-*' 2>&1)
[ -z "$left" ] || failed="$failed units-left($left)"
echo "=== end"

# stats: the values on stdin (one a line) as "median p10 p90 n", linear
# interpolation between closest ranks as berth-bench computes them.
stats() {
    sort -n | awk '{v[NR] = $1}
        function q(p,  pos, lo, hi) { pos = p * (NR - 1); lo = int(pos); hi = (pos > lo) ? lo + 1 : lo;
                                      return v[lo + 1] + (v[hi + 1] - v[lo + 1]) * (pos - lo) }
        END { if (NR) printf "%.1f %.1f %.1f %d\n", q(0.5), q(0.1), q(0.9), NR }'
}

# The CRI row. containerd's config: the CRI plugin's sandbox image a local
# one (no network) and the two handlers with the systemd driver.
cri_setup() {
    for b in berth containerd-shim-berth-v2 containerd-shim-berth-v2-server; do
        ln -sf /opt/berth/bin/$b /usr/local/bin/$b
    done
    p='plugins."io.containerd.grpc.v1.cri"'
    r="$p.containerd.runtimes"
    mkdir -p /etc/containerd
    printf '%s\n' 'version = 2' "[$p]" '  sandbox_image = "berth.invalid/pause:1"' \
        "[$r.runc]" '  runtime_type = "io.containerd.runc.v2"' "  [$r.runc.options]" '    SystemdCgroup = true' \
        "[$r.berth]" '  runtime_type = "io.containerd.berth.v2"' >/etc/containerd/config.toml
    timeout 120 systemctl restart containerd || { echo "restart containerd failed"; return 1; }
    i=0
    until timeout 10 ctr version >/dev/null 2>&1; do
        i=$((i + 1))
        [ $i -lt 60 ] || { echo "containerd does not answer"; return 1; }
        sleep 1
    done
    timeout 180 ctr -n k8s.io images import /opt/berth/busybox-image.tar >/dev/null &&
        timeout 180 ctr -n k8s.io images import /opt/berth/pause-image.tar >/dev/null
}

cri_runs=$(arg cri_runs)
cri_runs=${cri_runs:-20}
cri_warmup=$(arg cri_warmup)
img=docker.io/library/berth-busybox:latest
if [ "$cri_runs" -gt 0 ]; then
    echo "berth-vm-bench: CRI at $(uptime_s) s"
    if err=$(cri_setup 2>&1); then
        # Where each handler puts a pod's container, once, before timing:
        # a scope of the pod's slice (vm-cri pod --check, untimed).
        for h in berth runc; do
            out=$(timeout 300 vm-cri pod --handler $h --image $img --sandbox-image berth.invalid/pause:1 \
                --check 'systemctl show -p ControlGroup --value cri-containerd-$VM_CRI_CONTAINER_ID.scope' 2>&1)
            rc=$?
            cg=$(echo "$out" | grep -m 1 '^/.*/cri-containerd-[0-9a-f]*\.scope$')
            echo "berth-vm-bench: CRI handler $h: pod's container in ${cg:-no scope (vm-cri pod exit $rc)}"
            [ $rc -eq 0 ] && [ -n "$cg" ] || failed="$failed cri-placement-$h($(echo "$out" | tail -n 3 | tr '\n' '|'))"
        done
        timeout $((600 + cri_runs * 120)) vm-cri bench --handler berth,runc --n "$cri_runs" \
            --warmup "${cri_warmup:-2}" --image $img >/tmp/cri.out 2>&1 ||
            failed="$failed vm-cri(exit $?: $(tail -n 3 /tmp/cri.out | tr '\n' '|'))"
        echo "=== CRI"
        echo "CRI RunPodSandbox + CreateContainer + StartContainer, one-container pod (a sleeper), containerd"
        echo "$(containerd --version | cut -d' ' -f3) with SystemdCgroup = true; $cri_runs rounds, handlers interleaved"
        echo
        printf '%-26s  %-32s  %10s  %10s  %10s  %s\n' metric handler median p10 p90 "vs runc"
        base=$(sed -n 's/^vm-cri: bench runc round [0-9]*: \([0-9.]*\) ms$/\1/p' /tmp/cri.out | stats | cut -d' ' -f1)
        label="RunPodSandbox+Create+Start"
        for h in berth runc; do
            set -- $(sed -n "s/^vm-cri: bench $h round [0-9]*: \([0-9.]*\) ms\$/\1/p" /tmp/cri.out | stats)
            [ $# -eq 4 ] || continue
            case $h in
            berth) name="berth (containerd-shim-berth-v2)" ;;
            runc) name="runc (containerd-shim-runc-v2)" ;;
            esac
            ratio=""
            [ "$h" != runc ] && [ -n "$base" ] && ratio=$(awk -v a="$1" -v b="$base" 'BEGIN {printf "berth/runc %.2fx", a / b}')
            printf '%-26s  %-32s  %7s ms  %7s ms  %7s ms  %s\n' "$label" "$name" "$1" "$2" "$3" "$ratio" | sed 's/ *$//'
            label=""
        done
        echo "=== end"
        echo "=== file cri.txt"
        cat /tmp/cri.out
        echo "=== end"
        # Nothing of a container may remain; the pods' slices are kubelet's
        # to remove (containerd leaves them), so only counted.
        left=$(systemctl list-units --all --plain --no-legend 'cri-containerd-*' 2>&1)
        [ -z "$left" ] || failed="$failed cri-scopes-left($(echo "$left" | head -n 3 | tr '\n' '|'))"
        slices=$(systemctl list-units --all --plain --no-legend 'kubepods-besteffort-pod*' | wc -l)
        echo "berth-vm-bench: CRI: $(echo "$left" | grep -c .) container scopes left; $slices pod slices left active (kubelet's to remove)"
    else
        failed="$failed cri-setup($err)"
    fi
fi

if [ -f /tmp/runtimes.json ]; then
    echo "=== file runtimes.json"
    cat /tmp/runtimes.json
    echo "=== end"
fi
echo "berth-vm-bench: end at $(uptime_s) s"
if [ -n "$failed" ]; then
    echo "berth-vm-bench: failed:$failed"
else
    echo "berth-vm-bench: done"
fi
