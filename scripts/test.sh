#!/usr/bin/env bash
# Build and test berth, as root (the integration suite runs real containers):
#
#   scripts/test.sh
#
# Steps: scripts/setup-deps.sh, cargo build --workspace (debug), then
# cargo test --workspace (unit tests, and the integration suite in
# integration/, which runs target/<arch>-unknown-linux-gnu/debug/berth), then
# the runtime's integration tests again with BERTH_SLOW_PATHS=all (the slow
# twins of the fast paths, runtime/src/fast.rs, as an oracle), then
# scripts/fuzz.sh (every fuzz target for FUZZ_SECONDS, default 20 s, each),
# then scripts/conformance.sh (the OCI conformance suite against its
# baseline), then scripts/test-cgroup-v2.sh (the cgroup v2 tests in a qemu
# VM), then scripts/test-systemd-vm.sh (a systemd + cgroup v2 host in a qemu
# VM). Exits non-zero and names the step that failed.
#
# Skipped tests: a test that cannot run here says so through one helper
# (runtime/src/test_skip.rs), which appends `SKIP: <test>: <reason> [needs
# <need>]` to $BERTH_SKIP_LOG (target/test-skips.log); the count and the
# lines are printed at the end. $BERTH_REQUIRE lists the needs this host
# meets (root, tools that setup-deps installs, cgroup-v1 and cgroup2 when
# mounted): a test that skips for one of those fails instead. Set
# BERTH_REQUIRE yourself to override. The cargo test output is also in
# target/test.log.
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

# The needs this host meets (see test_skip.rs): root (need_root above),
# the tools setup-deps installs, the v1 controllers the tests use, cgroup2.
host_meets() {
    local fs v1 needs=root,tools
    fs=$(awk -F' - ' '{split($2, f, " "); print f[1], f[3]}' /proc/self/mountinfo)
    v1=$(echo "$fs" | awk '$1 == "cgroup" {n = split($2, o, ","); for (i = 1; i <= n; i++) print o[i]}')
    local c all=true
    for c in memory cpu cpuset pids devices freezer; do
        echo "$v1" | grep -qx "$c" || all=false
    done
    $all && needs+=,cgroup-v1
    echo "$fs" | grep -q '^cgroup2 ' && needs+=,cgroup2
    echo "$needs"
}

skips=$repo/target/test-skips.log
export BERTH_SKIP_LOG=$skips
export BERTH_REQUIRE=${BERTH_REQUIRE-$(host_meets)}
mkdir -p "$repo/target" && : >"$skips" && rm -f "$repo/target/test.log"

# At exit, pass or fail: how many tests skipped, and why; then the cargo
# tests' totals (from target/test.log) as the closing line.
skip_summary() {
    local n
    n=$(grep -c '^SKIP: ' "$skips" 2>/dev/null)
    log "skipped: ${n:-0} (a skip for a need in BERTH_REQUIRE=$BERTH_REQUIRE fails its test; list in $skips)"
    grep '^SKIP: ' "$skips" 2>/dev/null | sort | sed 's/^/    /' >&2
    [ -f "$repo/target/test.log" ] || return 0
    awk -v skipped="${n:-0}" '/^test result: /{
            for (i = 1; i < NF; i++) {
                if ($(i + 1) ~ /^passed/) p += $i
                if ($(i + 1) ~ /^failed/) f += $i
            }
        } END { printf "cargo-tests: %d passed, %d failed, %d skipped\n", p, f, skipped }' "$repo/target/test.log"
}
trap skip_summary EXIT

# cargo test, its output also in target/test.log.
cargo_test() {
    cargo test --workspace 2>&1 | tee "$repo/target/test.log"
}

# The runtime's integration tests again with every fast path's slow twin
# (runtime/src/fast.rs) as an oracle; appended to target/test.log.
slow_twins() {
    local t args=()
    for t in lifecycle run exec exec_escapes namespaces rootfs cgroups cgroups_cmds cgroups_v1 cli cli_parity \
        hooks errors killsafe security process seccomp capabilities terminal idmap mempolicy mountns_inherited; do
        args+=(--test "$t")
    done
    BERTH_SLOW_PATHS=all cargo test -p berth-integration "${args[@]}" 2>&1 | tee -a "$repo/target/test.log"
}

step "setup-deps" scripts/setup-deps.sh
find_cargo || { log "FAILED at step: find cargo"; exit 1; }
step "build (cargo build --workspace)" cargo build --workspace
log "tests must not skip for: $BERTH_REQUIRE"
step "test (cargo test --workspace)" cargo_test
step "runtime tests with the slow twins of the fast paths (BERTH_SLOW_PATHS=all)" slow_twins
# A fixed seed (FUZZ_SEED, default 1): the same inputs every run.
export FUZZ_SEED=${FUZZ_SEED:-1}
step "fuzz (scripts/fuzz.sh ${FUZZ_SECONDS:-20} s per target, seed $FUZZ_SEED)" scripts/fuzz.sh "${FUZZ_SECONDS:-20}"
step "conformance (scripts/conformance.sh, against the baseline)" scripts/conformance.sh
step "cgroup v2 tests in a VM (scripts/test-cgroup-v2.sh)" scripts/test-cgroup-v2.sh
step "systemd host tests in a VM (scripts/test-systemd-vm.sh)" scripts/test-systemd-vm.sh
log "all steps passed"
