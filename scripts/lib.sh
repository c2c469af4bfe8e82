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
