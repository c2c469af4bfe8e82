#!/usr/bin/env bash
# First run of berth on a fresh Debian 12 machine, as root:
#
#   scripts/quickstart.sh [BUNDLE_DIR]      (default /tmp/berth-demo)
#
# Installs the dependencies (scripts/setup-deps.sh), builds berth
# (cargo build --release), makes a busybox bundle (scripts/mkbundle.sh) and
# runs it with target/<arch>-unknown-linux-gnu/release/berth, printing what the container sees:
# its hostname, its user, its processes (sh is pid 1), its network links
# (only lo) and the kernel. Then the same with berthctl: it imports a
# busybox image (scripts/mkimage.sh) into /var/lib/berthctl and runs it
# through containerd-shim-berth-v2.
#
# BERTH=/path/to/runtime skips the build and runs that binary instead (for
# comparison: BERTH=runc; crun 1.8.1 refuses hybrid cgroup hosts like this one).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
need_root

bundle=${1:-/tmp/berth-demo}
state_root=/run/berth
id=berth-demo-$$

log "step 1/5: dependencies"
scripts/setup-deps.sh
find_cargo || die "no cargo after setup-deps"

if [ -n "${BERTH:-}" ]; then
    berth=$(command -v "$BERTH") || die "BERTH=$BERTH: not found"
    log "step 2/5: build skipped, using BERTH=$berth"
else
    log "step 2/5: cargo build --release"
    cargo build --release
    berth=$repo/target/$(uname -m)-unknown-linux-gnu/release/berth
    [ -x "$berth" ] || die "$berth was not built"
fi

log "step 3/5: busybox bundle in $bundle"
# Runs inside the container; the single quotes keep the host shell out.
# shellcheck disable=SC2016
script='echo "hostname: $(hostname)"
echo "user:     $(id)"
echo "processes (sh is pid 1):"; ps -o pid,user,comm
echo "network links (only lo):"; ip link
echo "kernel:   $(uname -srm)"'
scripts/mkbundle.sh "$bundle" sh -c "$script"

log "step 4/5: $berth --root $state_root run -b $bundle $id"
cleanup() { "$berth" --root "$state_root" delete --force "$id" >/dev/null 2>&1 || true; }
trap cleanup EXIT
echo "----- inside the container -----"
status=0
"$berth" --root "$state_root" run -b "$bundle" "$id" || status=$?
echo "--------------------------------"
[ "$status" -eq 0 ] || die "the container run failed (exit status $status)"

if [ -n "${BERTH:-}" ]; then
    log "done (BERTH set: berthctl skipped). Try it by hand: $berth --root $state_root run -b $bundle my-container"
    exit 0
fi
berthctl=$repo/target/$(uname -m)-unknown-linux-gnu/release/berthctl
[ -x "$berthctl" ] || die "$berthctl was not built"
log "step 5/5: berthctl: import a busybox image, run it through the shim"
image=$(mktemp --suffix=.tar)
scripts/mkimage.sh "$image" busybox:latest
"$berthctl" image import "$image"
rm -f "$image"
echo "----- inside the container (berthctl) -----"
status=0
"$berthctl" run --rm busybox sh -c "$script" || status=$?
echo "-------------------------------------------"
[ "$status" -eq 0 ] || die "the berthctl run failed (exit status $status)"
log "done. Try it by hand: $berthctl run --rm busybox uname -a   (or: $berth --root $state_root run -b $bundle my-container)"
