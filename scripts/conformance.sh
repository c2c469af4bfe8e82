#!/usr/bin/env bash
# The OCI runtime-spec conformance suite (oci-conformance/), as root:
#
#   scripts/conformance.sh                    # berth (debug build) against the baseline
#   scripts/conformance.sh --docs             # regenerate docs/conformance.md: berth, runc, crun
#   scripts/conformance.sh --update-baseline  # rewrite oci-conformance/baseline/berth.txt
#   scripts/conformance.sh -- ARGS...         # extra oci-conformance arguments (e.g. --filter hooks -v)
#
# Default (CI, called by scripts/test.sh): builds berth and the suite
# (cargo build, debug) and runs every requirement against that debug berth.
# It fails on a regression: a requirement listed in the baseline (the ones
# berth passes) that does not pass now. A requirement that passes but is not
# in the baseline prints a note asking to add it (--update-baseline).
# --update-baseline keeps only what passed in three runs in a row, so a
# flaky requirement never enters the baseline.
set -uo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo" || exit 1
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
need_root

mode=check
extra=()
while [ $# -gt 0 ]; do
    case "$1" in
        --docs) mode=docs ;;
        --update-baseline) mode=baseline ;;
        --) shift; extra=("$@"); break ;;
        -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument $1 (see --help)" ;;
    esac
    shift
done

find_cargo || die "no cargo found (run scripts/setup-deps.sh)"
log "building berth and oci-conformance (debug)"
# The executables' paths as cargo reports them (the target directory
# depends on .cargo/config.toml's build target).
built=$(cargo build -p berth -p oci-conformance --message-format=json-render-diagnostics) || die "cargo build failed"
exe() {
    printf '%s\n' "$built" | grep -o '"executable":"[^"]*/'"$1"'"' | head -n 1 | sed 's/^"executable":"//; s/"$//'
}
suite=$(exe oci-conformance)
berth_bin=$(exe berth)
[ -x "$suite" ] && [ -x "$berth_bin" ] || die "cannot find the built berth and oci-conformance executables"
berth="berth=$berth_bin"
baseline=oci-conformance/baseline/berth.txt

case "$mode" in
check)
    "$suite" --runtime "$berth" --baseline "$baseline" "${extra[@]}"
    rc=$?
    [ $rc -eq 0 ] || log "conformance regression (or setup error, exit $rc): see the REGRESSION lines above"
    exit $rc
    ;;
docs)
    for rt in runc crun; do
        command -v "$rt" >/dev/null 2>&1 || die "$rt not installed (scripts/setup-deps.sh installs it)"
    done
    OC_DOCS_COMMAND="scripts/conformance.sh --docs" \
        "$suite" --runtime "$berth,runc,crun" --markdown docs/conformance.md "${extra[@]}"
    rc=$?
    # Exit 1 only means some runtime failed a requirement: that is the table's content.
    [ $rc -le 1 ] || die "oci-conformance failed (exit $rc)"
    log "wrote docs/conformance.md"
    ;;
baseline)
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    for i in 1 2 3; do
        log "baseline run $i of 3"
        "$suite" --runtime "$berth" --write-baseline "$tmp/run$i" "${extra[@]}" >"$tmp/tap$i"
        [ $? -le 1 ] || die "oci-conformance failed (see $tmp/tap$i)"
    done
    {
        echo "# Requirements berth passes (oci-conformance names), one per line: a"
        echo "# regression gate for scripts/conformance.sh. Regenerate with"
        echo "# scripts/conformance.sh --update-baseline (keeps what passed in 3 runs)."
        grep -v '^#' "$tmp/run1" | grep -Fx -f <(grep -v '^#' "$tmp/run2") | grep -Fx -f <(grep -v '^#' "$tmp/run3")
    } >"$baseline"
    log "wrote $baseline ($(grep -vc '^#' "$baseline") requirements)"
    ;;
esac
