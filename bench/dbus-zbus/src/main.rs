//! One D-Bus call through zbus's blocking API (the `getid` call of
//! runtime/examples/dbus_call.rs): connect to the bus at
//! $DBUS_SYSTEM_BUS_ADDRESS (or the system bus), Hello,
//! org.freedesktop.DBus.GetId. Prints the answer, its peak RSS, and the
//! threads the process has during the call and after the connection is dropped
//! (zbus's executor and async-io's reactor run on threads of their own).

fn main() {
    let conn = zbus::blocking::Connection::system().unwrap_or_else(|e| panic!("connect: {e}"));
    let reply = conn
        .call_method(
            Some("org.freedesktop.DBus"),
            "/org/freedesktop/DBus",
            Some("org.freedesktop.DBus"),
            "GetId",
            &(),
        )
        .unwrap_or_else(|e| panic!("GetId: {e}"));
    let id: String = reply
        .body()
        .deserialize()
        .unwrap_or_else(|e| panic!("GetId's body: {e}"));
    let during = threads();
    drop(conn);
    println!(
        "{id} hwm={} threads={during} after_drop={}",
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
