#!/usr/bin/env bash
# Build the fuzz targets in fuzz/ (libFuzzer, on the stable toolchain) and
# run each for a bounded time; fail on any crash, hang (>10 s on one input)
# or memory blow-up (>2048 MB), printing the reproducer's path:
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET [TARGET...]]     (default: 20 s, all)
#   FUZZ_SANITIZER=address scripts/fuzz.sh ...           (with ASan, slower)
#   FUZZ_SEED=N scripts/fuzz.sh ...                       (a fixed libFuzzer seed; test.sh uses 1)
#
# Two targets run at a time. Build: target/fuzz/; corpora (seeds from
# fuzz/seeds/<target>/, dictionaries fuzz/dicts/<target>.dict, plus what the
# runs find, kept between runs):
# target/fuzz/corpus/<target>/; crashes: target/fuzz/artifacts/<target>/;
# logs: target/fuzz/logs/<target>.log. No cargo-fuzz and no nightly needed:
# the coverage instrumentation that cargo-fuzz asks rustc for uses only
# stable -C flags (see docs/fuzzing.md). Needs a C++ compiler (g++, from
# build-essential) for libFuzzer itself.
set -uo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo" || exit 1
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

secs=${1:-20}
shift $(($# > 0 ? 1 : 0))
case $secs in '' | *[!0-9]*) die "SECONDS_PER_TARGET must be a number, not \"$secs\"" ;; esac
find_cargo || die "cargo not found"

out=$repo/target/fuzz
triple=$(rustc -vV | sed -n 's/^host: //p')
bindir=$out/$triple/release
mapfile -t all < <(sed -n 's/^name = "\([a-z_]*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^berth-fuzz$')
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")

# The flags cargo-fuzz passes for `--sanitizer none` (all stable): SanCov
# inline 8-bit counters, the PC table, compare tracing and stack depth,
# which libFuzzer reads; debug assertions and overflow checks are on in
# fuzz/Cargo.toml's release profile.
flags=(-Cpasses=sancov-module
    -Cllvm-args=-sanitizer-coverage-level=4
    -Cllvm-args=-sanitizer-coverage-inline-8bit-counters
    -Cllvm-args=-sanitizer-coverage-pc-table
    -Cllvm-args=-sanitizer-coverage-trace-compares
    -Cllvm-args=-sanitizer-coverage-stack-depth
    -Cllvm-args=-simplifycfg-branch-fold-threshold=0
    --cfg fuzzing)
# FUZZ_SANITIZER=address: AddressSanitizer too. -Zsanitizer is unstable:
# RUSTC_BOOTSTRAP=1 lets the stable rustc accept it (its own target dir).
case ${FUZZ_SANITIZER:-none} in
none) ;;
address)
    flags+=(-Zsanitizer=address)
    export RUSTC_BOOTSTRAP=1
    out=$repo/target/fuzz-asan
    bindir=$out/$triple/release
    ;;
*) die "FUZZ_SANITIZER must be none or address" ;;
esac
log "building ${#targets[@]} fuzz targets (${out#"$repo"/})"
start=$SECONDS
bins=()
for t in "${targets[@]}"; do bins+=(--bin "$t"); done
# --target: the flags must not reach build scripts and proc-macros.
if ! RUSTFLAGS="${flags[*]}" CARGO_TARGET_DIR=$out \
    cargo build --locked --release --manifest-path fuzz/Cargo.toml --target "$triple" "${bins[@]}"; then
    die "building the fuzz targets failed"
fi
log "built in $((SECONDS - start)) s"

mkdir -p "$out/logs"
# run TARGET: fuzz it for $secs seconds; exit status 0 when nothing was found.
run() {
    local t=$1 corpus=$out/corpus/$1 art=$out/artifacts/$1/
    mkdir -p "$corpus" "$art"
    local seeds=()
    [ -d "fuzz/seeds/$t" ] && seeds=("fuzz/seeds/$t")
    # JSON keys and enum values (fuzz/mkseeds.py): libFuzzer cannot learn
    # strings from comparisons without a sanitizer runtime.
    local dict=()
    [ -f "fuzz/dicts/$t.dict" ] && dict=(-dict="fuzz/dicts/$t.dict")
    # The targets' scratch files (bundles, image members, rootfs trees),
    # removed afterwards even when libFuzzer exits without unwinding.
    local tmp=$out/tmp/$t rc
    rm -rf "$tmp" && mkdir -p "$tmp"
    # FUZZ_SEED: libFuzzer's seed (test.sh fixes it, so CI explores the
    # same inputs every time: a new crash shows in a run by hand, not as
    # a random CI failure); unset: a random seed.
    local seed=()
    [ -n "${FUZZ_SEED:-}" ] && seed=(-seed="$FUZZ_SEED")
    TMPDIR=$tmp "$bindir/$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 "${seed[@]}" \
        -max_len=65536 -artifact_prefix="$art" -print_final_stats=1 "${dict[@]}" \
        "$corpus" "${seeds[@]}" >"$out/logs/$t.log" 2>&1
    rc=$?
    rm -rf "$tmp"
    return $rc
}

failed=()
report() {
    local t=$1 rc=$2 log=$out/logs/$1.log
    local runs
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    if [ "$rc" -eq 0 ]; then
        log "ok: $t (${runs:-?} runs, corpus $(find "$out/corpus/$t" -type f | wc -l) inputs)"
        return
    fi
    failed+=("$t")
    log "FAILED: $t (exit $rc); its log: $log"
    grep -E -A1 '^==[0-9]+== ERROR|panicked at|^SUMMARY|Test unit written to' "$log" | grep -v '^--$' | head -n 16 >&2
    local f
    for f in $(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log"); do
        log "reproduce: $bindir/$t $f"
    done
}

start=$SECONDS
declare -A pids=()
for t in "${targets[@]}"; do
    [ -x "$bindir/$t" ] || die "no fuzz target $t (targets: ${all[*]})"
    if [ ${#pids[@]} -ge 2 ]; then
        wait -n -p done_pid
        rc=$?
        report "${pids[$done_pid]}" "$rc"
        unset "pids[$done_pid]"
    fi
    run "$t" &
    pids[$!]=$t
done
for p in "${!pids[@]}"; do
    wait "$p"
    report "${pids[$p]}" $?
done
log "fuzzed ${#targets[@]} targets for $secs s each in $((SECONDS - start)) s"
[ ${#failed[@]} -eq 0 ] || die "fuzzing found crashes in: ${failed[*]} (reproducers above)"
log "no crash, hang or memory blow-up found"
