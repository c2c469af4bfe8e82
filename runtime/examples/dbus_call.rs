//! One D-Bus call through berth's own client, for scripts/measure-dbus.sh
//! (start-up time, peak RSS) beside bench/dbus-zbus (the same call through
//! zbus's blocking API):
//!
//! * `getid` (default): connect to the bus at $DBUS_SYSTEM_BUS_ADDRESS (or
//!   the system bus), Hello, org.freedesktop.DBus.GetId;
//! * `systemd`: connect, AddMatch, Subscribe, GetUnit("init.scope") (a
//!   systemd host).
//!
//! Prints the answer and the number of threads the process has.
//! `cargo run --release --features internals --example dbus_call -- [getid|systemd]`

use std::time::Duration;

use berth::internals::{system_bus_path, Connection, Message, Systemd};

fn main() {
    let what = std::env::args().nth(1).unwrap_or_else(|| "getid".into());
    let timeout = Duration::from_secs(5);
    let answer = match what.as_str() {
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
            c.call(m, "GetId")
                .unwrap_or_else(|e| panic!("{e}"))
                .first_str()
                .to_string()
        }
        "systemd" => {
            let mut s = Systemd::connect(timeout).unwrap_or_else(|e| panic!("{e}"));
            s.get_unit("init.scope").unwrap_or_else(|e| panic!("{e}"))
        }
        other => panic!("unknown call {other:?}: getid or systemd"),
    };
    let threads = std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .unwrap_or(0);
    println!("{answer} threads={threads}");
}
