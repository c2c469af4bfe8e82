#!/usr/bin/env bash
# Install, idempotently and quietly, what building and testing berth need on
# Debian 12: a C toolchain (its g++ also builds libFuzzer for scripts/fuzz.sh,
# which needs nothing else: no cargo-fuzz, no clang, no nightly), pkg-config, busybox-static (test bundles),
# uidmap (newuidmap/newgidmap: rootless berth with more than one mapping, integration/tests/rootless.rs), runc
# and crun (benchmark and conformance comparison), libseccomp-dev, containerd
# 1.6 (and 2.1 from sid, see containerd-sid.sh) for the shim's tests, docker.io
# and podman (the client tests, integration/tests/{docker,podman}.rs, start
# their own daemons; the packages' services are kept from starting), procps
# (`berth ps` runs ps(1)), iproute2 (the conformance suite's network-device
# tests), docker-registry (distribution 2.8), skopeo, apache2-utils and zstd
# (htpasswd, zstd layers) for berthctl's pull tests (integration/tests/berthctl_pull.rs
# starts its own registries; the package's service is kept from starting
# like docker's), qemu-system-x86 and cpio (the VM tests; Debian's kernel
# from linux-image-amd64 is downloaded and unpacked into
# target/cgroup-v2-vm/kernel), mmdebstrap (the systemd VM's image), dbus-daemon
# (runtime/src/dbus/tests.rs starts a private bus), protobuf-compiler (protoc: the integration
# crate's build.rs generates the CRI client of tests/cri.rs), and a Rust
# toolchain if there is no cargo (Debian's cargo-web/rustc-web, which install
# /usr/bin/cargo and /usr/bin/rustc). Package lists are updated only when an
# install needs it.
#
#   scripts/setup-deps.sh
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"

need_root
command -v apt-get >/dev/null 2>&1 || die "apt-get not found: this script is for Debian 12"

packages=(build-essential pkg-config busybox-static uidmap runc crun libseccomp-dev containerd docker.io podman procps iproute2 docker-registry skopeo apache2-utils zstd qemu-system-x86 cpio protobuf-compiler mmdebstrap dbus-daemon)
missing=()
for p in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || missing+=("$p")
done
rust_from_debian=false
if ! find_cargo; then
    missing+=(cargo-web rustc-web)
    rust_from_debian=true
fi

if [ ${#missing[@]} -eq 0 ]; then
    log "nothing to install: ${packages[*]} and cargo are present"
else
    log "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    aptlog=$(mktemp)
    # Keep package installs from starting services (docker.io's dockerd
    # would set up a bridge and iptables rules on the host; docker-registry
    # would listen on :5000): invoke-rc.d
    # asks /usr/sbin/policy-rc.d, and exit 101 means "do not start".
    policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        policy=/usr/sbin/policy-rc.d
        printf '#!/bin/sh\n# temporary, from berth scripts/setup-deps.sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
    fi
    trap 'rm -f "$aptlog"; [ -z "$policy" ] || rm -f "$policy"' EXIT
    apt_install() { apt-get install -y -q --no-install-recommends "${missing[@]}" >>"$aptlog" 2>&1; }
    lists=$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' 2>/dev/null | head -n 1)
    # Try the package lists already there first; update them only if that
    # fails (no lists yet, or stale ones naming files no longer served).
    if [ -z "$lists" ] || ! apt_install; then
        log "running apt-get update"
        apt-get update -q >>"$aptlog" 2>&1 || { tail -n 20 "$aptlog" >&2; die "apt-get update failed"; }
        apt_install || { tail -n 20 "$aptlog" >&2; die "apt-get install ${missing[*]} failed"; }
    fi
    log "installed: ${missing[*]}"
fi

[ -x /bin/busybox ] || die "/bin/busybox missing although busybox-static is installed"
# The shim's tests also run containerd 2.1, from Debian sid (private apt
# configuration, unpacked into a cache dir; the system stays on bookworm).
"$here/containerd-sid.sh"
if $rust_from_debian; then
    find_cargo || die "cargo still not found after installing cargo-web"
    log "Rust toolchain from Debian (cargo-web, rustc-web): binaries in /usr/bin, which is on PATH"
fi
log "cargo: $(cargo --version) ($(command -v cargo))"

# The VM tests boot Debian's kernel: fetch the package that
# linux-image-amd64 depends on and unpack vmlinuz and two modules (the cgroup
# v2 VM); the package is kept as linux-image.deb for the systemd VM's image,
# whose modules must match the kernel.
kdir=$(cd "$here/.." && pwd)/target/cgroup-v2-vm/kernel
if [ ! -f "$kdir/vmlinuz" ] || [ ! -f "$kdir/linux-image.deb" ]; then
    mkdir -p "$kdir"
    dl=$(mktemp -d)
    trap 'rm -rf "$dl" "${aptlog:-}"' EXIT
    kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
    if [ -z "$kpkg" ]; then
        apt-get update -q >/dev/null 2>&1 || die "apt-get update failed"
        kpkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
    fi
    [ -n "$kpkg" ] || die "cannot resolve linux-image-amd64 to a kernel package"
    log "downloading $kpkg for the cgroup v2 VM test"
    (cd "$dl" && chown _apt "$dl" 2>/dev/null; apt-get download -q "$kpkg" >/dev/null 2>&1) || die "apt-get download $kpkg failed"
    dpkg -x "$dl"/*.deb "$dl/x" || die "dpkg -x $kpkg failed"
    cp "$dl"/x/boot/vmlinuz-* "$kdir/vmlinuz.tmp"
    find "$dl/x/lib/modules" \( -name bfq.ko -o -name loop.ko \) -exec cp {} "$kdir/" \;
    cp "$dl"/*.deb "$kdir/linux-image.deb"
    mv "$kdir/vmlinuz.tmp" "$kdir/vmlinuz"
    log "kernel for the VM test: $kdir/vmlinuz ($kpkg)"
fi
