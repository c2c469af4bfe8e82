#!/usr/bin/env bash
# Build and test berth, as root (the integration suite runs real containers):
#
#   sudo scripts/test.sh
#
# Steps: scripts/setup-deps.sh, cargo build --workspace (debug), then
# cargo test --workspace (unit tests, and the integration suite in
# integration/, which runs target/<arch>-unknown-linux-gnu/debug/berth), then
# scripts/conformance.sh (the OCI conformance suite against its baseline),
# then scripts/test-cgroup-v2.sh (the cgroup v2 tests in a qemu VM). Exits
# non-zero and names the step that failed.
set -uo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo" || exit 1
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
need_root

step() {
    local name=$1
    shift
    log "==> $name"
    local start=$SECONDS
    if ! "$@"; then
        log "FAILED at step: $name"
        exit 1
    fi
    log "ok: $name ($((SECONDS - start)) s)"
}

step "setup-deps" scripts/setup-deps.sh
find_cargo || { log "FAILED at step: find cargo"; exit 1; }
step "build (cargo build --workspace)" cargo build --workspace
step "test (cargo test --workspace)" cargo test --workspace
step "conformance (scripts/conformance.sh, against the baseline)" scripts/conformance.sh
step "cgroup v2 tests in a VM (scripts/test-cgroup-v2.sh)" scripts/test-cgroup-v2.sh
log "all steps passed"
