//! One D-Bus call through berth's own client, for scripts/measure-dbus.sh
//! (start-up time, peak RSS) beside bench/dbus-zbus (the same call through
//! zbus's blocking API):
//!
//! * `getid` (default): connect to the bus at $DBUS_SYSTEM_BUS_ADDRESS (or
//!   the system bus), Hello, org.freedesktop.DBus.GetId;
//! * `systemd`: connect, AddMatch, Subscribe, GetUnit("init.scope") (a
//!   systemd host);
//! * `scope`: a transient scope as the systemd driver will make it:
//!   StartTransientUnit(berth-dbus-probe-PID.scope) with a child `sleep` in
//!   it, Delegate and no default dependencies, its JobRemoved; GetUnit; the
//!   child's cgroup checked; StopUnit and its JobRemoved; the unit gone
//!   (a systemd host, as root: scripts/systemd-vm/tests.sh).
//!
//! Prints the answer, its peak RSS, and its threads during the call and
//! after the connection is dropped.
//! `cargo run --release --features internals --example dbus_call -- [getid|systemd]`

use std::time::Duration;

use berth::internals::{system_bus_path, Connection, Message, Systemd, Value};

fn main() {
    let what = std::env::args().nth(1).unwrap_or_else(|| "getid".into());
    let timeout = Duration::from_secs(5);
    let (answer, during) = match what.as_str() {
        "getid" => {
            let path = system_bus_path().unwrap_or_else(|e| panic!("{e}"));
            let mut c = Connection::open(&path, timeout).unwrap_or_else(|e| panic!("{e}"));
            let m = Message::call(
                "org.freedesktop.DBus",
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus",
                "GetId",
                vec![],
            );
            let id = c
                .call(m, "GetId")
                .unwrap_or_else(|e| panic!("{e}"))
                .first_str()
                .to_string();
            (id, threads())
        }
        "systemd" => {
            let mut s = Systemd::connect(timeout).unwrap_or_else(|e| panic!("{e}"));
            (
                s.get_unit("init.scope").unwrap_or_else(|e| panic!("{e}")),
                threads(),
            )
        }
        "scope" => (scope(timeout), threads()),
        other => panic!("unknown call {other:?}: getid, systemd or scope"),
    };
    // The connection is gone once the match arm ends.
    println!(
        "{answer} hwm={} threads={during} after_drop={}",
        peak_rss_kib(),
        threads()
    );
}

/// The process's threads, with their names.
fn threads() -> String {
    let mut names: Vec<String> = std::fs::read_dir("/proc/self/task")
        .map(|d| {
            d.flatten()
                .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
                .map(|c| c.trim().to_string())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    format!("{}({})", names.len(), names.join(","))
}

/// The process's peak RSS in KiB (VmHWM): measured from inside, because a
/// spawner's wait4 counts the memory of the process it forked from.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .unwrap_or("VmHWM: 0 kB");
    line.split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// The `scope` round trip; the answer is the cgroup the child was in.
fn scope(timeout: Duration) -> String {
    let mut child = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .expect("spawn sleep");
    let unit = format!("berth-dbus-probe-{}.scope", std::process::id());
    let mut s = Systemd::connect(timeout).unwrap_or_else(|e| panic!("{e}"));
    let props = vec![
        (
            "Description".to_string(),
            Value::Str("berth D-Bus probe".into()),
        ),
        (
            "PIDs".to_string(),
            Value::Array("u".into(), vec![Value::U32(child.id())]),
        ),
        ("Delegate".to_string(), Value::Bool(true)),
        ("DefaultDependencies".to_string(), Value::Bool(false)),
        ("Slice".to_string(), Value::Str("system.slice".into())),
    ];
    let call = format!("StartTransientUnit({unit})");
    let job = s
        .start_transient_unit(&unit, "replace", props)
        .unwrap_or_else(|e| panic!("{e}"));
    s.wait_job(&job, &call).unwrap_or_else(|e| panic!("{e}"));
    s.get_unit(&unit).unwrap_or_else(|e| panic!("{e}"));
    let cgroup =
        std::fs::read_to_string(format!("/proc/{}/cgroup", child.id())).expect("child's cgroup");
    assert!(
        cgroup.contains(&format!("/system.slice/{unit}")),
        "child's cgroup: {cgroup}"
    );
    let job = s
        .stop_unit(&unit, "replace")
        .unwrap_or_else(|e| panic!("{e}"));
    s.wait_job(&job, &format!("StopUnit({unit})"))
        .unwrap_or_else(|e| panic!("{e}"));
    let _ = child.wait();
    // systemd collects the inactive unit right after the job, in its loop.
    let t0 = std::time::Instant::now();
    loop {
        match s.get_unit(&unit) {
            Err(e) if e.to_string().contains("NoSuchUnit") => break,
            Ok(_) if t0.elapsed() < Duration::from_secs(3) => {
                std::thread::sleep(Duration::from_millis(50))
            }
            other => panic!("after StopUnit, GetUnit({unit}): {other:?}"),
        }
    }
    cgroup.trim().to_string()
}
