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
//!   (a systemd host, as root: scripts/systemd-vm/tests.sh);
//! * `props`: a transient scope made with the properties of
//!   `systemd_props::resource_properties` for a set of limits and runc's
//!   device list, on the Version systemd reports; prints the scope's cgroup
//!   files, `systemctl show`, what a child in it could open, the files
//!   after SetUnitProperties of an update's properties, and
//!   ResetFailedUnit's answer once the unit is gone (as root on a systemd
//!   host with cgroup v2: scripts/systemd-vm/cases/50-props.sh).
//!
//! Prints the answer, its peak RSS, and its threads during the call and
//! after the connection is dropped.
//! `cargo run --release --features internals --example dbus_call -- [getid|systemd]`

use std::time::Duration;

use berth::internals::{default_rules, systemd_props, Resources, Rule};
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
        "props" => (props(timeout), threads()),
        other => panic!("unknown call {other:?}: getid, systemd, scope or props"),
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

/// The scope's cgroup files the properties stand for, one `file=value` a line.
fn cg_files(unit: &str) -> String {
    let dir = format!("/sys/fs/cgroup/system.slice/{unit}");
    let mut out = String::new();
    for f in [
        "memory.max",
        "memory.low",
        "memory.swap.max",
        "cpu.weight",
        "cpu.max",
        "cpuset.cpus",
        "cpuset.mems",
        "pids.max",
        "io.weight",
    ] {
        let v =
            std::fs::read_to_string(format!("{dir}/{f}")).unwrap_or_else(|e| format!("ERR {e}"));
        out.push_str(&format!("{f}={}\n", v.trim().replace('\n', ";")));
    }
    out
}

/// systemd's view of the properties.
fn show(unit: &str) -> String {
    let mut cmd = std::process::Command::new("systemctl");
    cmd.args(["show", unit]);
    for p in [
        "DevicePolicy",
        "DeviceAllow",
        "AllowedCPUs",
        "AllowedMemoryNodes",
        "CPUQuotaPerSecUSec",
        "CPUQuotaPeriodUSec",
        "TasksMax",
        "IOWeight",
        "CPUWeight",
        "MemoryMax",
        "MemoryLow",
        "MemorySwapMax",
    ] {
        cmd.args(["-p", p]);
    }
    let o = cmd.output().expect("systemctl");
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// The `props` round trip; the answer is the report.
fn props(timeout: Duration) -> String {
    let out_file = "/tmp/props-child.out";
    let _ = std::fs::remove_file(out_file);
    let mut child = std::process::Command::new("sh")
        .args([
            "-c",
            // Once in the scope: /dev/null is in runc's list, /dev/kmsg is not.
            "sleep 4; (cat /dev/null && echo null-ok || echo null-denied; \
             head -c 1 /dev/kmsg >/dev/null 2>&1 && echo kmsg-ok || echo kmsg-denied) \
             > /tmp/props-child.out; sleep 60",
        ])
        .spawn()
        .expect("spawn sh");
    let unit = format!("berth-props-probe-{}.scope", std::process::id());
    let mut s = Systemd::connect(timeout).unwrap_or_else(|e| panic!("{e}"));
    let version = s.version().unwrap_or_else(|e| panic!("{e}"));
    let mut rules = vec![Rule {
        allow: false,
        typ: 'a',
        major: None,
        minor: None,
        access: "rwm".into(),
    }];
    rules.extend(default_rules());
    let r = Resources {
        memory: 64 << 20,
        memory_swap: 96 << 20,
        memory_reservation: 16 << 20,
        cpu_shares: 1024,
        cpu_quota: 12345,
        cpu_period: 100_000,
        cpuset_cpus: "0".into(),
        cpuset_mems: "0".into(),
        pids_limit: Some(32),
        blkio_weight: 300,
        devices: Some(rules),
        ..Resources::default()
    };
    let mut props = systemd_props::resource_properties(&r, systemd_props::Layout::V2, version)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut report = format!("version={version}\nprops={props:?}\n");
    props.extend([
        (
            "Description".to_string(),
            Value::Str("berth props probe".into()),
        ),
        (
            "PIDs".to_string(),
            Value::Array("u".into(), vec![Value::U32(child.id())]),
        ),
        ("Delegate".to_string(), Value::Bool(true)),
        ("DefaultDependencies".to_string(), Value::Bool(false)),
        ("Slice".to_string(), Value::Str("system.slice".into())),
        ("MemoryAccounting".to_string(), Value::Bool(true)),
        ("CPUAccounting".to_string(), Value::Bool(true)),
        ("IOAccounting".to_string(), Value::Bool(true)),
        ("TasksAccounting".to_string(), Value::Bool(true)),
    ]);
    let call = format!("StartTransientUnit({unit})");
    let job = s
        .start_transient_unit(&unit, "replace", props)
        .unwrap_or_else(|e| panic!("{e}"));
    s.wait_job(&job, &call).unwrap_or_else(|e| panic!("{e}"));
    report.push_str("== create\n");
    report.push_str(&cg_files(&unit));
    report.push_str(&show(&unit));
    std::thread::sleep(Duration::from_secs(8));
    report.push_str(&format!(
        "child={}\n",
        std::fs::read_to_string(out_file)
            .unwrap_or_default()
            .replace('\n', ",")
    ));
    let upd = Resources {
        memory: 128 << 20,
        pids_limit: Some(-1),
        cpu_quota: -1,
        cpu_period: 100_000,
        ..Resources::default()
    };
    let up = systemd_props::resource_properties(&upd, systemd_props::Layout::V2, version)
        .unwrap_or_else(|e| panic!("{e}"));
    s.set_unit_properties(&unit, true, up)
        .unwrap_or_else(|e| panic!("{e}"));
    report.push_str("== update\n");
    report.push_str(&cg_files(&unit));
    let job = s
        .stop_unit(&unit, "replace")
        .unwrap_or_else(|e| panic!("{e}"));
    s.wait_job(&job, &format!("StopUnit({unit})"))
        .unwrap_or_else(|e| panic!("{e}"));
    let _ = child.kill();
    let _ = child.wait();
    report.push_str(&format!(
        "reset_failed={:?}\n",
        s.reset_failed_unit(&unit).map_err(|e| e.to_string())
    ));
    report
}
