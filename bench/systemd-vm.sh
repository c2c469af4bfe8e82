#!/usr/bin/env bash
# berth, runc and crun with systemd's cgroup driver, timed in the systemd +
# cgroup v2 VM of scripts/test-systemd-vm.sh (a benchmark, not a test: it
# asserts no times and is not part of CI):
#
#   bench/systemd-vm.sh [--runs N] [--warmup N] [--systemd LIST]
#                            [--cri-runs N] [--cri-warmup N]
#
# --runs: timed rounds per runtime (default 30); --warmup: untimed rounds
# first (default 3); --systemd: the runtimes timed with --systemd-cgroup
# (default berth,runc,crun; berth with cgroupfs paths is always timed);
# --cri-runs: rounds of the CRI row (default 20; 0 skips it);
# --cri-warmup: its untimed rounds (default 2).
#
# Builds berth, its shim, berth-bench and vm-cri (release, static), boots
# the VM (scripts/lib.sh: systemd_vm_boot) with berth-vm-bench.service
# instead of the tests, which runs scripts/systemd-vm/bench.sh: `run` of
# /bin/true for berth, runc and crun with --systemd-cgroup and for berth
# with cgroupfs paths, interleaved in one berth-bench run (and create,
# start, delete timed apart, to see where the scope costs); then the CRI
# row, RunPodSandbox + CreateContainer + StartContainer of a one-container
# pod through containerd 1.6 with SystemdCgroup = true, berth's shim
# against runc's, interleaved by vm-cri. Prints the tables (median, p10,
# p90, ratios), saves berth-bench's JSON and vm-cri's output under
# target/systemd-vm/bench-<time>-*, exits 0 when the payload says done.
# qemu TCG is slow in absolute terms: compare ratios.
set -uo pipefail
# The whole script in braces: bash reads it to the end before running, so
# editing the file during the long VM run cannot derail it.
{
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo" || exit 1
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

runs=30
warmup=3
systemd=berth,runc,crun
cri_runs=20
cri_warmup=2
while [ $# -gt 0 ]; do
    case $1 in
    --runs) runs=${2:?--runs needs a value}; shift 2 ;;
    --warmup) warmup=${2:?--warmup needs a value}; shift 2 ;;
    --systemd) systemd=${2:?--systemd needs a value}; shift 2 ;;
    --cri-runs) cri_runs=${2:?--cri-runs needs a value}; shift 2 ;;
    --cri-warmup) cri_warmup=${2:?--cri-warmup needs a value}; shift 2 ;;
    -h | --help) sed -n '2,/^set /p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
    esac
done
case $runs$warmup$cri_runs$cri_warmup in *[!0-9]*) die "--runs, --warmup, --cri-runs, --cri-warmup take numbers" ;; esac
need_root
find_cargo || die "no cargo"

vm=$repo/target/systemd-vm
kdir=$repo/target/cgroup-v2-vm/kernel
systemd_vm_prereqs "$vm" "$kdir"
image=$(systemd_vm_image "$vm" "$kdir") || exit 1

target=x86_64-unknown-linux-gnu
rel=target/$target/release
log "building berth, its shim, berth-bench and vm-cri (static, $rel)"
cargo build -q --release -p berth -p containerd-shim-berth-v2 -p berth-bench &&
    cargo build -q --release -p berth-integration --bin vm-cri || die "build failed"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/payload/bin"
for b in berth containerd-shim-berth-v2 containerd-shim-berth-v2-server berth-bench vm-cri; do
    cp "$rel/$b" "$stage/payload/bin/" || die "no $rel/$b"
done
cp scripts/systemd-vm/bench.sh scripts/systemd-vm/berth-vm-bench.service "$stage/payload/"
# The CRI row's images (no network in the VM): busybox, and a sandbox
# ("pause") image that runs until stopped, as scripts/test-systemd-vm.sh
# stages them.
# The busybox image's name is a normalized reference: the CRI plugin looks
# an image up by its normalized name (a plain busybox:latest would be
# docker.io/library/busybox:latest there, which containerd does not have).
sh scripts/mkimage.sh "$stage/payload/busybox-image.tar" docker.io/library/berth-busybox:latest 2>/dev/null ||
    die "scripts/mkimage.sh failed"
MKIMAGE_CMD='["sh","-c","trap \"kill $!; exit 0\" TERM; sleep 2147483647 & wait","berth-pause"]' \
    sh scripts/mkimage.sh "$stage/payload/pause-image.tar" berth.invalid/pause:1 2>/dev/null || die "scripts/mkimage.sh (pause) failed"

serial=$vm/bench-serial.log
start=$SECONDS
systemd_vm_timeout=$((600 + (runs + warmup) * 60 + (cri_runs + cri_warmup) * 60)) \
    systemd_vm_boot "$stage" "$image" "$kdir" "$serial" "berth.runs=$runs" "berth.warmup=$warmup" \
    "berth.systemd=$systemd" "berth.cri_runs=$cri_runs" "berth.cri_warmup=$cri_warmup"
rc=$?
log "VM ran $((SECONDS - start)) s (qemu exit $rc)"

# The payload's lines: its berth-vm-bench: lines and the tables between
# "=== NAME" and "=== end"; the blocks "=== file NAME" go to files.
out=$(tr -d '\r' <"$serial")
stamp=$(date -u +%Y%m%dT%H%M%SZ)
awk '/^=== file /{skip=1; next} skip && /^=== end$/{skip=0; next} skip{next}
     /^berth-vm-bench: /{print; next} /^=== end$/{inblock=0; print ""; next}
     /^=== /{inblock=1; print; next} inblock{print}' <<<"$out"
for name in $(sed -n 's/^=== file \([a-z.-]*\)$/\1/p' <<<"$out"); do
    f=$vm/bench-$stamp-$name
    awk -v n="$name" '$0 == "=== file " n {on=1; next} on && /^=== end$/{exit} on{print}' <<<"$out" >"$f"
    log "saved: $f"
done
grep -qx 'berth-vm-bench: done' <<<"$out" && exit 0
grep -q '^berth-vm-bench: failed' <<<"$out" || { tail -n 40 "$serial" >&2; log "no end line from the payload (timeout or crash): console above"; }
exit 1
}
