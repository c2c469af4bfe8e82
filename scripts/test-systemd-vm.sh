#!/usr/bin/env bash
# berth's tests on a systemd host with cgroup v2 and with hybrid cgroups, in
# a VM (this host has no systemd):
#
#   scripts/test-systemd-vm.sh
#
# A Debian 12 image with systemd, dbus, containerd, docker.io, podman, runc
# and crun, made with mmdebstrap from Debian's packages
# (scripts/systemd-vm/build-image.sh, list in scripts/systemd-vm/packages),
# cached as target/systemd-vm/image-<hash>.tar. The VM boots the kernel of
# the cgroup v2 VM test (target/cgroup-v2-vm/kernel, from
# scripts/setup-deps.sh) under qemu with software emulation, from an
# initramfs that unpacks the image onto a tmpfs and switch_roots to systemd
# (scripts/systemd-vm/init). The unit berth-vm-tests.service runs
# scripts/systemd-vm/tests.sh with the static berth, shim and berthctl in
# /opt/berth/bin, reports "PASS name" / "FAIL name: why" over the serial
# console and powers the VM off. The image boots twice: with cgroup v2
# (every case; summary "systemd-vm: N passed, M failed") and with hybrid
# cgroups (systemd.unified_cgroup_hierarchy=0: cases 00 and 10; summary
# "systemd-vm-hybrid: N passed, M failed"). This script prints their lines
# and both summaries; exit 0 only when both passed.
# BERTH_VM_CASES=GLOB runs only those case files (scripts/systemd-vm/cases)
# in every boot; SYSTEMD_VM_ONLY=NAME one boot (systemd-vm or
# systemd-vm-hybrid); BERTH_VM_RT=PATH the clients' cases on another
# runtime of the image (/usr/sbin/runc) to compare. 20-docker.sh is
# layout-aware too: SYSTEMD_VM_ONLY=systemd-vm-hybrid BERTH_VM_CASES='[012]0-*'.
#
# Time, measured on a 2-core host shared with other qemu VMs: the script
# 375 s with the build cached (boot 1 237 s, boot 2 121 s) when that host
# was lightly loaded, 435-565 s (before 40 and 50 existed) at load ~7.
# Light load, boot 1: power-on to the tests 30 s, 00-host 2 s, 05-notify
# 21 s, 10-berth-systemd 50 s, 12-props 10 s, 20-docker 28 s, 30-podman
# 12 s, 40-containerd 53 s, 50-cri 25 s; boot 2 (hybrid): to the tests 49 s,
# 00-host 4 s, 10-berth-systemd 64 s. At load ~7 each case took 1.5-3 times
# as long (boot 1 to the tests 60-96 s, 20-docker 60-95 s), and 20-docker in
# the hybrid boot 82 s (15-26 s of it restarting dockerd), hence not in its
# default subset. With 15-apparmor and 60-rootless (10:05 UTC run, build
# cached, image rebuilt in 46 s): boot 1 208 s (60-rootless 31 s), boot 2
# 76 s. qemu's timeouts (480 s + 200 s) bound a hung boot.
set -uo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo" || exit 1
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
need_root
find_cargo || die "no cargo"

vm=$repo/target/systemd-vm
kdir=$repo/target/cgroup-v2-vm/kernel
systemd_vm_prereqs "$vm" "$kdir" strip

# The image, rebuilt when the package list, the build script or the kernel
# changes (scripts/lib.sh).
image=$(systemd_vm_image "$vm" "$kdir") || exit 1

target=x86_64-unknown-linux-gnu
log "building berth, the shim and berthctl (static, target/$target/debug)"
# The whole workspace, as scripts/test.sh builds it (no rebuild there), and
# the D-Bus probe (runtime/examples/dbus_call.rs, the `internals` feature).
cargo build -q --workspace && cargo build -q -p berth --features internals --example dbus_call ||
    die "build failed"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/payload/bin"
# vm-cri (integration/src/bin/vm-cri.rs): the CRI client of cases/50-cri.sh
# and of bench/'s CRI row.
for b in berth containerd-shim-berth-v2 containerd-shim-berth-v2-server berthctl vm-cri; do
    strip -o "$stage/payload/bin/$b" "target/$target/debug/$b" || die "strip $b"
done
# The D-Bus client's round trip with the real systemd (tests.sh: dbus_client_scope).
strip -o "$stage/payload/bin/dbus_call" "target/$target/debug/examples/dbus_call" || die "strip dbus_call"
cp -r scripts/systemd-vm/tests.sh scripts/systemd-vm/berth-vm-tests.service scripts/systemd-vm/cases "$stage/payload/"
# The sd-notify tests: a static sender for the containers (the integration
# tests' helper, std only) and a busybox image archive for podman (no network
# in the VM).
rustc --edition=2021 -C opt-level=1 -C debuginfo=0 -C strip=symbols -C panic=abort \
    -C target-feature=+crt-static -o "$stage/payload/bin/sd-notify" integration/helpers/sd_notify.rs ||
    die "build integration/helpers/sd_notify.rs"
sh scripts/mkimage.sh "$stage/payload/busybox-image.tar" busybox:latest 2>/dev/null || die "scripts/mkimage.sh failed"
# The CRI plugin's sandbox ("pause") image (cases/50-cri.sh): runs until stopped.
MKIMAGE_CMD='["sh","-c","trap \"kill $!; exit 0\" TERM; sleep 2147483647 & wait","berth-pause"]' \
    sh scripts/mkimage.sh "$stage/payload/pause-image.tar" berth.invalid/pause:1 2>/dev/null || die "scripts/mkimage.sh (pause) failed"
# The boots: NAME, qemu's timeout in seconds, kernel arguments. The second
# boots the same image with hybrid cgroups (systemd 252: the v1 controllers,
# and the unified hierarchy for systemd alone) and runs a subset of the cases.
boots=(
    "systemd-vm 480 systemd.unified_cgroup_hierarchy=1"
    "systemd-vm-hybrid 200 systemd.unified_cgroup_hierarchy=0 berth.cases=[01]0-*"
)
failed=0
for b in "${boots[@]}"; do
    read -r name limit args <<<"$b"
    [ -n "${SYSTEMD_VM_ONLY:-}" ] && [ "$SYSTEMD_VM_ONLY" != "$name" ] && continue
    [ -n "${BERTH_VM_CASES:-}" ] && args="${args% berth.cases=*} berth.cases=$BERTH_VM_CASES"
    [ -n "${BERTH_VM_RT:-}" ] && args="$args berth.rt=$BERTH_VM_RT"
    serial=$vm/serial-$name.log
    start=$SECONDS
    # The initramfs and qemu: scripts/lib.sh. $args split into words, not globs.
    set -f
    # shellcheck disable=SC2086
    systemd_vm_timeout=$limit systemd_vm_boot "$stage" "$image" "$kdir" "$serial" $args
    rc=$?
    set +f
    vm_summary "$serial" "$name" "$start" "$rc" || failed=1
done
exit $failed
