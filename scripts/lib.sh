# Helpers shared by the scripts in this directory; source it, don't run it.
# shellcheck shell=bash

# Messages go to stderr, prefixed with the calling script's name.
berth_script=$(basename "${0:-berth}")
log() { printf '%s: %s\n' "$berth_script" "$*" >&2; }
die() { log "error: $*"; exit 1; }

need_root() {
    [ "$(id -u)" -eq 0 ] || die "run as root"
}

# Put a cargo on PATH if there is one that PATH misses: sudo's secure_path
# drops rustup's ~/.cargo/bin. Debian's cargo-web installs /usr/bin/cargo.
# Returns 1 if there is no cargo at all.
find_cargo() {
    command -v cargo >/dev/null 2>&1 && return 0
    local d
    for d in "${CARGO_HOME:-$HOME/.cargo}/bin" /root/.cargo/bin /usr/bin; do
        if [ -x "$d/cargo" ]; then
            PATH="$d:$PATH"
            export PATH
            return 0
        fi
    done
    return 1
}

# vm_summary SERIAL NAME START QEMU_RC: after a VM test, print the payload's
# lines (berth-vm:, PASS, FAIL) from the serial console log and its summary
# "NAME: N passed, M failed"; return 0 only when it says 0 failed. With no
# summary (timeout, crash), print the console's last lines, a summary of one
# failure, and return 1.
vm_summary() {
    local serial=$1 name=$2 start=$3 rc=$4 summary
    grep -aE '^(berth-vm:|PASS |FAIL )' "$serial" | tr -d '\r'
    summary=$(grep -aE "^$name: [0-9]+ passed, [0-9]+ failed" "$serial" | tr -d '\r' | tail -n 1)
    log "VM ran $((SECONDS - start)) s (qemu exit $rc)"
    if [ -z "$summary" ]; then
        tail -n 40 "$serial" >&2
        log "the VM gave no summary (timeout or crash); last lines of the console above"
        echo "$name: 0 passed, 1 failed"
        return 1
    fi
    echo "$summary"
    case "$summary" in *" 0 failed") return 0 ;; *) return 1 ;; esac
}

# vm_report SERIAL NAME START QEMU_RC: vm_summary, then exit with its status.
vm_report() {
    vm_summary "$@"
    exit $?
}

# systemd_vm_image VMDIR KDIR: print the path of the systemd VM's Debian
# image (VMDIR/image-<hash>.tar), built with mmdebstrap when the package
# list, the build script or the kernel (KDIR/linux-image.deb) changed.
# Shared by scripts/test-systemd-vm.sh and bench/systemd-vm.sh.
systemd_vm_image() {
    local vm=$1 kdir=$2 key image start
    key=$(cat scripts/systemd-vm/packages scripts/systemd-vm/build-image.sh "$kdir/linux-image.deb" |
        sha256sum | cut -c1-16)
    image=$vm/image-$key.tar
    if [ ! -f "$image" ]; then
        rm -f "$vm"/image-*.tar
        log "building the VM image with mmdebstrap ($image)"
        start=$SECONDS
        scripts/systemd-vm/build-image.sh "$image" "$kdir/linux-image.deb" >&2 ||
            { log "error: image build failed (log: $image.log)"; return 1; }
        log "image built in $((SECONDS - start)) s ($(du -m "$image" | cut -f1) MiB)"
    fi
    echo "$image"
}

# systemd_vm_boot STAGE IMAGE KDIR SERIAL [KERNEL-ARG...]: boot the systemd
# VM and return qemu's exit status. STAGE holds payload/ (copied to
# /opt/berth in the VM; every payload/*.service there is installed and
# wanted by multi-user.target: it runs the payload and powers the VM off);
# the initramfs (busybox, scripts/systemd-vm/init) is added to it here.
# qemu TCG, 2 vCPU, 4 GiB, the serial console written to SERIAL, killed
# after $systemd_vm_timeout seconds (default 540); KERNEL-ARGs are appended
# to the kernel command line (e.g. berth.cases=GLOB); cgroup v2 unless one
# of them is a systemd.unified_cgroup_hierarchy=.
# systemd_vm_prereqs VM KDIR [TOOL...]: what a systemd VM run needs (qemu,
# cpio, mmdebstrap, the tools named, the kernel, busybox); makes VM.
systemd_vm_prereqs() {
    local vm=$1 kdir=$2 t
    shift 2
    for t in qemu-system-x86_64 cpio mmdebstrap "$@"; do
        command -v "$t" >/dev/null 2>&1 || die "$t not found: run scripts/setup-deps.sh"
    done
    [ -f "$kdir/vmlinuz" ] && [ -f "$kdir/linux-image.deb" ] ||
        die "no kernel in $kdir (vmlinuz and linux-image.deb): run scripts/setup-deps.sh"
    [ -x /bin/busybox ] || die "/bin/busybox missing (busybox-static)"
    mkdir -p "$vm"
}

systemd_vm_boot() {
    local stage=$1 image=$2 kdir=$3 serial=$4 initrd a rc cg=systemd.unified_cgroup_hierarchy=1
    shift 4
    case " $* " in *" systemd.unified_cgroup_hierarchy="*) cg= ;; esac
    mkdir -p "$stage"/{bin,dev,proc,newroot}
    cp /bin/busybox "$stage/bin/"
    for a in sh mount umount mkdir tar rm cp ln cut cat poweroff switch_root; do
        ln -sf busybox "$stage/bin/$a"
    done
    cp scripts/systemd-vm/init "$stage/init"
    chmod +x "$stage/init"
    # Two cpio archives back to back (the kernel unpacks both): the small
    # init and payload, then the image tar (uncompressed: faster to unpack
    # under TCG than to gunzip).
    initrd=$(dirname "$image")/initrd.cpio
    (cd "$stage" && find . | cpio -o -H newc --quiet) >"$initrd" || { log "error: cpio"; return 1; }
    ln -f "$image" "$stage/image.tar"
    (cd "$stage" && echo image.tar | cpio -o -H newc --quiet) >>"$initrd" || { log "error: cpio image"; return 1; }
    rm -f "$stage/image.tar"
    # A new file: never write through a hard link of a copied target/
    # (qemu truncates and writes the file it is given).
    rm -f "$serial"
    log "booting the VM (qemu, tcg, 2 vCPU, 4 GiB); serial console in $serial"
    timeout "${systemd_vm_timeout:-540}" qemu-system-x86_64 -accel tcg -cpu max -smp 2 -m 4096 \
        -display none -monitor none -no-reboot -serial "file:$serial" \
        -kernel "$kdir/vmlinuz" -initrd "$initrd" \
        -append "console=ttyS0 panic=-1 loglevel=3 systemd.show_status=0 $cg $*"
    rc=$?
    rm -f "$initrd"
    return $rc
}
