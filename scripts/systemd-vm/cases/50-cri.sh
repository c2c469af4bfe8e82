# Kubernetes' CRI on containerd 1.6 with SystemdCgroup = true, driven as
# kubelet drives it with the systemd cgroup driver (vm-cri pod:
# integration/src/bin/vm-cri.rs): a pod whose cgroup parent is
# kubepods-besteffort-pod<uid>.slice, a sleeper in it, ExecSync, stats,
# stop and remove, on berth under runc's shim and on berth's own shim. The
# pod's containers must land in <pod slice>/cri-containerd-<id>.scope, and
# nothing of them may remain after removal; the pod slice itself is
# kubelet's to remove (containerd does not): reported, then stopped as
# kubelet would.
. /opt/berth/cases/containerd.inc

# While the pod runs (vm-cri's --check, with VM_CRI_* set): the container
# and the sandbox in scopes of the pod's slice, the container's pid in its
# scope, systemctl status of the container's scope, the runtime options
# containerd passes its shim (berth's shim: none, so no SystemdCgroup).
CRI_CHECK='s=$VM_CRI_CGROUP_PARENT
for id in $VM_CRI_CONTAINER_ID $VM_CRI_POD_ID; do
    u=cri-containerd-$id.scope
    a=$(systemctl is-active $u); sl=$(systemctl show -p Slice --value $u)
    [ "$a" = active ] && [ "$sl" = "$s" ] || { echo "check: $u is $a in slice \"$sl\", want active in $s"; exit 1; }
done
u=cri-containerd-$VM_CRI_CONTAINER_ID.scope
cg=$(systemctl show -p ControlGroup --value $u)
case $cg in */$s/$u) ;; *) echo "check: ControlGroup of $u is $cg"; exit 1 ;; esac
grep -qx "0::$cg" /proc/$VM_CRI_PID/cgroup || { echo "check: pid $VM_CRI_PID in $(cat /proc/$VM_CRI_PID/cgroup)"; exit 1; }
systemctl status --no-pager -n 0 $u | sed -n "1,4s/^/check: /p"
echo "check: $(timeout 30 ctr -n k8s.io containers info $VM_CRI_CONTAINER_ID | sed -n "/^    \"Runtime\": {/,/^    },/p" | tr -d " \n")"'

# cri_pod HANDLER
cri_pod() {
    T=cri_pod_$1
    out=$(timeout 300 vm-cri pod --handler $1 --image $CTD_IMAGE --sandbox-image $CTD_PAUSE --timeout 60 \
        --check "$CRI_CHECK" 2>&1)
    rc=$?
    echo "$out" | sed "s/^/berth-vm: $1: /"
    cid=$(echo "$out" | sed -n 's/^vm-cri: CreateContainer ok .*: container \([0-9a-f]*\)$/\1/p')
    parent=$(echo "$out" | sed -n 's/^vm-cri: RunPodSandbox ok .*, cgroup parent \(.*\)$/\1/p')
    cgroup=$(echo "$out" | sed -n 's/^vm-cri: ExecSync ok .*: exit 0: \(.*\)$/\1/p')
    left=$(systemctl list-units --all --plain --no-legend 'cri-containerd-*' 2>&1)
    pod_left=$(systemctl list-units --all --plain --no-legend 'kubepods*' 2>&1 | awk '{ printf "%s %s; ", $1, $3 }')
    pod_cg=$(systemctl show -p ControlGroup --value "$parent" 2>/dev/null)
    inside=
    [ -n "$pod_cg" ] && inside=$(find "$CG$pod_cg" -mindepth 1 -type d 2>/dev/null | tr '\n' ' ')
    echo "berth-vm: $1: after removal, kubepods units: $pod_left"
    if [ $rc -ne 0 ]; then
        bad "vm-cri pod exit $rc: $(echo "$out" | grep -e FAIL -e 'check:' | tr '\n' '|')"
    elif [ -z "$cid" ] || [ -z "$parent" ]; then
        bad "no container id or cgroup parent in vm-cri's output"
    else
        # In a cgroup namespace the container sees its scope as "/".
        case "$cgroup" in
        "0::/" | "0::/"*"/$parent/cri-containerd-$cid.scope")
            if [ -n "$left" ]; then
                bad "scopes left after removal: $left"
            elif [ -n "$inside" ]; then
                bad "cgroups left in the pod slice $pod_cg: $inside"
            else
                ok
            fi
            ;;
        *) bad "ExecSync's /proc/self/cgroup is '$cgroup', not in $parent/cri-containerd-$cid.scope" ;;
        esac
    fi
    # What kubelet does once the pod is gone: its slice stopped.
    [ -n "$parent" ] && timeout 30 systemctl stop "$parent" 2>/dev/null
    echo "berth-vm: $1: after the pod slice's stop: $(systemctl list-units --all --plain --no-legend 'kubepods*' 2>&1 |
        awk '{ printf "%s %s; ", $1, $3 }')done at $(uptime_s) s"
}

T=cri_systemd_setup
if ctd_setup; then
    ok
    for h in berth-runc-shim berth; do
        cri_pod $h
    done
else
    bad "$ctd_err"
fi
