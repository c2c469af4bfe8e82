#!/usr/bin/env bash
# The D-Bus client choice, measured (docs/systemd.md): one call
# (org.freedesktop.DBus.GetId) on a private dbus-daemon through berth's own
# client (runtime/examples/dbus_call.rs) and through zbus's blocking API
# (bench/dbus-zbus), release builds, interleaved runs (the order flips every
# round); prints the median and 90th percentile of wall time (spawn to
# reap) and of peak RSS (VmHWM, which each program reads at its end: wait4's
# ru_maxrss would count the Python process it was forked from), the threads
# each had, and the programs' sizes.
#
#   scripts/measure-dbus.sh [RUNS]            (default 100)
#   scripts/measure-dbus.sh --berth-size      the release berth binary's size
#       with neither client, with ours, with zbus: each linked into main.rs
#       behind an environment variable, in a copy of the tree under
#       target/dbus-size (three release builds, several minutes)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"
root=$(cd "$here/.." && pwd)
find_cargo || die "no cargo"
export CARGO_PROFILE_DEV_DEBUG=0

berth_size() {
    local copy=$root/target/dbus-size
    rm -rf "$copy/src" && mkdir -p "$copy/src"
    (cd "$root" && tar --exclude=./target --exclude=./.git -cf - .) | tar -C "$copy/src" -xf -
    local main=$copy/src/runtime/src/main.rs base
    base=$(cat "$main")
    probe_own='    if std::env::var_os("BERTH_DBUS_PROBE").is_some() {
        let path = berth::internals::system_bus_path().expect("address");
        let mut c = berth::internals::Connection::open(&path, std::time::Duration::from_secs(5)).expect("open");
        let m = berth::internals::Message::call("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "GetId", vec![]);
        println!("{}", c.call(m, "GetId").expect("GetId").first_str());
        return;
    }'
    probe_zbus='    if std::env::var_os("BERTH_DBUS_PROBE").is_some() {
        let conn = zbus::blocking::Connection::system().expect("connect");
        let r = conn.call_method(Some("org.freedesktop.DBus"), "/org/freedesktop/DBus", Some("org.freedesktop.DBus"), "GetId", &()).expect("GetId");
        let id: String = r.body().deserialize().expect("body");
        println!("{id}");
        return;
    }'
    local v probe sizes=()
    for v in none own zbus; do
        case $v in none) probe= ;; own) probe=$probe_own ;; zbus) probe=$probe_zbus ;; esac
        printf '%s\n' "$base" | awk -v p="$probe" '{print} /^fn main\(\) \{$/ && p != "" {print p}' >"$main"
        if [ $v = zbus ]; then
            sed -i 's/^libseccomp = "0.4"$/&\nzbus = { version = "5", default-features = false, features = ["async-io", "blocking-api"] }/' \
                "$copy/src/runtime/Cargo.toml"
        fi
        log "building berth (release) with $v"
        (cd "$copy/src" && CARGO_TARGET_DIR=$copy/target cargo build -q --release -p berth --features internals --bin berth)
        sizes+=("$v $(stat -c %s "$copy/target/x86_64-unknown-linux-gnu/release/berth")")
    done
    printf 'berth release binary, bytes: %s\n' "${sizes[@]}"
}

if [ "${1:-}" = --berth-size ]; then
    berth_size
    exit 0
fi
runs=${1:-100}
command -v dbus-daemon >/dev/null || die "dbus-daemon missing (scripts/setup-deps.sh installs it)"
log "building the two programs (release)"
(cd "$root" && cargo build -q --release -p berth --features internals --example dbus_call)
(cd "$root/bench/dbus-zbus" && CARGO_TARGET_DIR=$root/target/dbus-zbus cargo build -q --release)
own=$root/target/x86_64-unknown-linux-gnu/release/examples/dbus_call
zbus=$root/target/dbus-zbus/x86_64-unknown-linux-gnu/release/dbus-zbus

dir=$(mktemp -d /tmp/berth-dbus-measure.XXXXXX)
bus_pid=
cleanup() {
    [ -n "$bus_pid" ] && kill "$bus_pid" 2>/dev/null && wait "$bus_pid" 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT
cat >"$dir/bus.conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=$dir/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/><allow own="*"/><allow send_destination="*"/><allow receive_sender="*"/>
  </policy>
</busconfig>
EOF
dbus-daemon --config-file="$dir/bus.conf" --nofork --print-address >"$dir/addr" 2>/dev/null &
bus_pid=$!
for _ in $(seq 100); do [ -s "$dir/addr" ] && break; sleep 0.05; done
[ -S "$dir/bus" ] || die "dbus-daemon did not start"
export DBUS_SYSTEM_BUS_ADDRESS=unix:path=$dir/bus

python3 - "$runs" "own=$own" "zbus=$zbus" <<'EOF'
import os, subprocess, sys, time
runs = int(sys.argv[1])
progs = [a.split("=", 1) for a in sys.argv[2:]]
res = {name: {"ms": [], "rss": [], "threads": set()} for name, _ in progs}
def one(name, path):
    t0 = time.perf_counter()
    p = subprocess.Popen([path], stdout=subprocess.PIPE)
    out = p.stdout.read()
    _, status, _ = os.wait4(p.pid, 0)
    dt = (time.perf_counter() - t0) * 1000
    if status != 0:
        sys.exit(f"{name} failed ({status}): {out!r}")
    r = res[name]
    fields = dict(f.split("=", 1) for f in out.decode().split()[1:])
    r["ms"].append(dt); r["rss"].append(int(fields["hwm"]))
    r["threads"].add(f"{fields['threads']} / {fields['after_drop']}")
for i in range(runs):
    order = progs if i % 2 == 0 else progs[::-1]
    for name, path in order:
        one(name, path)
def q(v, f): v = sorted(v); return v[min(len(v) - 1, int(f * len(v)))]
print(f"{runs} runs each, interleaved")
print(f"{'client':6} {'size B':>9} {'median ms':>10} {'p90 ms':>8} {'median RSS KiB':>15} {'p90 RSS KiB':>12}")
for name, path in progs:
    r = res[name]
    print(f"{name:6} {os.path.getsize(path):>9} {q(r['ms'], .5):>10.2f} {q(r['ms'], .9):>8.2f} "
          f"{q(r['rss'], .5):>15} {q(r['rss'], .9):>12}")
    for t in sorted(r["threads"]):
        print(f"       threads during the call / after drop: {t}")
EOF
