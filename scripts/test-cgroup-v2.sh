#!/usr/bin/env bash
# berth's cgroup v2 tests, in a VM (this host's controllers are on v1):
#
#   scripts/test-cgroup-v2.sh
#
# Boots Debian's kernel (from linux-image-amd64, fetched by
# scripts/setup-deps.sh into target/cgroup-v2-vm/kernel) under
# qemu-system-x86_64 with software emulation (-accel tcg), with an
# initramfs holding the static berth (the workspace's normal build), busybox and
# the payload in scripts/cgroup-v2-vm/ (init, tests.sh). The payload runs
# every test against the unified hierarchy and reports "PASS name" /
# "FAIL name: why" over the serial console; this script prints those lines
# and ends with "cgroup-v2: N passed, M failed". Exit 0 only when every
# test passed. The VM is given 9 minutes.
#
#   scripts/test-cgroup-v2.sh --measure-join
#
# instead runs runtime/examples/cgroup_join.rs in the VM (the ways to join a
# cgroup, timed; README "cgroup join") and prints its figures.
set -uo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo" || exit 1
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
need_root
find_cargo || die "no cargo"

measure=false
[ "${1:-}" = --measure-join ] && measure=true
vm=$repo/target/cgroup-v2-vm
kernel=$vm/kernel/vmlinuz
for t in qemu-system-x86_64 cpio gzip strip; do
    command -v "$t" >/dev/null 2>&1 || die "$t not found: run scripts/setup-deps.sh"
done
[ -f "$kernel" ] || die "no kernel at $kernel: run scripts/setup-deps.sh"
[ -x /bin/busybox ] || die "/bin/busybox missing (busybox-static)"

# Every build is static (.cargo/config.toml: crt-static for the target).
target=x86_64-unknown-linux-gnu
# The whole workspace, as scripts/test.sh builds it: a build of berth alone
# resolves other dependency features and would rebuild it.
log "building berth (static, target/$target/debug)"
cargo build -q --workspace || die "build failed"
if $measure; then
    cargo build -q -p berth --features internals --example cgroup_join || die "build of cgroup_join failed"
fi
bin=target/$target/debug/berth
ldd "$bin" 2>&1 | grep -qE "not a dynamic|statically linked" || die "$bin is not static (see .cargo/config.toml)"

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,lib,dev,proc,sys,newroot,payload}
cp /bin/busybox "$root/bin/"
for a in $(/bin/busybox --list); do
    [ "$a" = busybox ] || ln -sf busybox "$root/bin/$a"
done
strip -o "$root/bin/berth" "$bin" || die "strip $bin"
if $measure; then
    strip -o "$root/bin/cgroup_join" "target/$target/debug/examples/cgroup_join" || die "strip cgroup_join"
fi
cp scripts/cgroup-v2-vm/init "$root/init"
cp scripts/cgroup-v2-vm/init scripts/cgroup-v2-vm/tests.sh "$root/payload/"
chmod +x "$root/init"
cp "$vm"/kernel/*.ko "$root/lib/" 2>/dev/null || true
mknod "$root/dev/console" c 5 1
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$vm/initrd.gz" || die "cpio"

serial=$vm/serial.log
log "booting the VM (qemu, tcg); serial console in $serial"
start=$SECONDS
timeout 540 qemu-system-x86_64 -accel tcg -cpu max -smp 2 -m 1024 \
    -display none -monitor none -no-reboot -serial "file:$serial" \
    -kernel "$kernel" -initrd "$vm/initrd.gz" \
    -append "console=ttyS0 panic=-1 loglevel=3 hugepages=8 $($measure && echo berth_measure_join)"
rc=$?
if $measure; then
    grep -aE '^berth-vm:' "$serial" | tr -d '\r'
    log "VM ran $((SECONDS - start)) s (qemu exit $rc)"
    exit $rc
fi
vm_report "$serial" cgroup-v2 "$start" "$rc"
