#!/usr/bin/env bash
# Build the systemd test VM's root image (scripts/test-systemd-vm.sh):
#
#   scripts/systemd-vm/build-image.sh OUT.tar KERNEL.deb
#
# A Debian 12 tree made with mmdebstrap from Debian's packages: systemd as
# pid 1, dbus, containerd, docker.io, podman, runc, crun, busybox-static;
# the kernel modules of KERNEL.deb (the kernel the VM boots), cut down to
# filesystems, networking and loop devices; getty and timers masked so the
# serial console carries only the tests' lines. Written to OUT.part.tar and
# renamed when complete.
set -euo pipefail
out=$1
kdeb=$2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
packages=$(grep -v '^#' "$here/packages" | tr -s ' \n' ',' | sed 's/^,//; s/,$//')
kdir=$(mktemp -d)
trap 'rm -rf "$kdir"' EXIT
dpkg -x "$kdeb" "$kdir"
# Every module the tests can need: filesystems (overlay), networking (veth,
# bridge, netfilter), block (loop, bfq), crypto and lib helpers.
kver=$(ls "$kdir/lib/modules")
keep="$kdir/keep/lib/modules/$kver"
mkdir -p "$keep/kernel/drivers"
cp "$kdir/lib/modules/$kver"/modules.{builtin,builtin.modinfo,order} "$keep/"
for d in fs net lib crypto block arch mm virt; do
    cp -a "$kdir/lib/modules/$kver/kernel/$d" "$keep/kernel/"
done
for d in net/veth.ko net/dummy.ko net/macvlan.ko net/ipvlan net/tun.ko net/vxlan block/loop.ko; do
    src="$kdir/lib/modules/$kver/kernel/drivers/$d"
    [ -e "$src" ] || continue
    mkdir -p "$keep/kernel/drivers/$(dirname "$d")"
    cp -a "$src" "$keep/kernel/drivers/$d"
done
mmdebstrap --variant=minbase \
    --aptopt='Apt::Install-Recommends "false"' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --include="$packages" \
    --customize-hook="cp -a '$kdir/keep/lib/modules' \"\$1/lib/\"" \
    --customize-hook="chroot \"\$1\" depmod -a $kver" \
    --customize-hook="chroot \"\$1\" systemctl mask getty@tty1.service serial-getty@ttyS0.service console-getty.service apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer fstrim.timer systemd-tmpfiles-clean.timer" \
    --customize-hook="echo berth-vm > \"\$1/etc/hostname\"" \
    --customize-hook="passwd --root \"\$1\" -d root" \
    bookworm "${out%.tar}.part.tar" >"$out.log" 2>&1 || { tail -n 30 "$out.log" >&2; exit 1; }
mv "${out%.tar}.part.tar" "$out"
