#!/usr/bin/env bash
# berth's tests on a systemd host with cgroup v2, in a VM (this host has no
# systemd and hybrid cgroups):
#
#   sudo scripts/test-systemd-vm.sh
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
# console and powers the VM off. This script prints those lines and ends
# with "systemd-vm: N passed, M failed"; exit 0 only when all passed.
# BERTH_VM_CASES=GLOB runs only those case files (scripts/systemd-vm/cases).
set -uo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo" || exit 1
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
need_root
find_cargo || die "no cargo"

vm=$repo/target/systemd-vm
kdir=$repo/target/cgroup-v2-vm/kernel
for t in qemu-system-x86_64 cpio mmdebstrap strip; do
    command -v "$t" >/dev/null 2>&1 || die "$t not found: run scripts/setup-deps.sh"
done
[ -f "$kdir/vmlinuz" ] && [ -f "$kdir/linux-image.deb" ] ||
    die "no kernel in $kdir (vmlinuz and linux-image.deb): run scripts/setup-deps.sh"
[ -x /bin/busybox ] || die "/bin/busybox missing (busybox-static)"
mkdir -p "$vm"

# The image, rebuilt when the package list, the build script or the kernel
# changes.
key=$(cat scripts/systemd-vm/packages scripts/systemd-vm/build-image.sh "$kdir/linux-image.deb" |
    sha256sum | cut -c1-16)
image=$vm/image-$key.tar
if [ ! -f "$image" ]; then
    rm -f "$vm"/image-*.tar
    log "building the VM image with mmdebstrap ($image)"
    start=$SECONDS
    scripts/systemd-vm/build-image.sh "$image" "$kdir/linux-image.deb" || die "image build failed (log: $image.log)"
    log "image built in $((SECONDS - start)) s ($(du -m "$image" | cut -f1) MiB)"
fi

target=x86_64-unknown-linux-gnu
log "building berth, the shim and berthctl (static, target/$target/debug)"
# The whole workspace, as scripts/test.sh builds it (no rebuild there), and
# the D-Bus probe (runtime/examples/dbus_call.rs, the `internals` feature).
cargo build -q --workspace && cargo build -q -p berth --features internals --example dbus_call ||
    die "build failed"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,dev,proc,newroot,payload/bin}
cp /bin/busybox "$stage/bin/"
for a in sh mount umount mkdir tar rm cp ln cut cat poweroff switch_root; do
    ln -s busybox "$stage/bin/$a"
done
cp scripts/systemd-vm/init "$stage/init"
chmod +x "$stage/init"
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
# Two cpio archives back to back (the kernel unpacks both): the small init
# and payload, then the image tar (uncompressed: faster to unpack under TCG
# than to gunzip).
initrd=$vm/initrd.cpio
(cd "$stage" && find . | cpio -o -H newc --quiet) >"$initrd" || die "cpio"
ln -f "$image" "$stage/image.tar"
(cd "$stage" && echo image.tar | cpio -o -H newc --quiet) >>"$initrd" || die "cpio image"

serial=$vm/serial.log
# A new file: never write through a hard link of a copied target/ (qemu
# truncates and writes the file it is given).
rm -f "$serial"
log "booting the VM (qemu, tcg, 4 GiB); serial console in $serial"
start=$SECONDS
timeout 540 qemu-system-x86_64 -accel tcg -cpu max -smp 2 -m 4096 \
    -display none -monitor none -no-reboot -serial "file:$serial" \
    -kernel "$kdir/vmlinuz" -initrd "$initrd" \
    -append "console=ttyS0 panic=-1 loglevel=3 systemd.show_status=0 systemd.unified_cgroup_hierarchy=1${BERTH_VM_CASES:+ berth.cases=$BERTH_VM_CASES}"
rc=$?
rm -f "$initrd"
vm_report "$serial" systemd-vm "$start" "$rc"
