# Helpers shared by the scripts in this directory; source it, don't run it.
# shellcheck shell=bash

# Messages go to stderr, prefixed with the calling script's name.
berth_script=$(basename "${0:-berth}")
log() { printf '%s: %s\n' "$berth_script" "$*" >&2; }
die() { log "error: $*"; exit 1; }

need_root() {
    [ "$(id -u)" -eq 0 ] || die "run as root (sudo $0)"
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
