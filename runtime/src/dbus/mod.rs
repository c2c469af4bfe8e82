//! A minimal D-Bus client of berth's own, for the systemd cgroup driver
//! (docs/systemd.md has the measurements that chose it over zbus).
//!
//! * `wire`: the marshalling of values; `message`: messages and frames;
//! * `conn`: the connection: unix socket, SASL EXTERNAL, Hello, calls,
//!   signals, every wait bounded by the connection's timeout;
//! * `systemd`: the calls of systemd's Manager the driver makes.
//!
//! Single-threaded and blocking with deadlines: no executor, no thread, so
//! berth stays one thread when it clones a container's init. Every error
//! names the call (and for systemd's, the unit): a bus or systemd that is
//! busy, restarting, closing or talking garbage ends the call with an
//! error within the timeout (runc issues #3904 and #4853 are calls that
//! hung there).

mod conn;
mod message;
mod systemd;
mod wire;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::time::Duration;

pub use conn::{bus_uid, outer_uid, parse_address, session_bus_path, system_bus_path, Connection, SYSTEM_BUS};
pub use message::{decode, frame_len, Kind, Message};
pub use systemd::{Bus, Property, Systemd, DEFAULT_TIMEOUT};
pub use wire::Value;

/// What went wrong with a D-Bus call. `call` names the call (and the unit).
#[derive(Debug, thiserror::Error)]
pub enum DbusError {
    #[error("D-Bus: connecting to the bus at {path}: {source}")]
    Connect {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("D-Bus: bus address {0:?} has no unix:path= entry (the only kind berth connects to)")]
    Address(String),
    #[error("D-Bus {call}: the bus refused authentication: {line:?}")]
    Auth { call: String, line: String },
    #[error("D-Bus {call}: no answer within {timeout:?} (bus or systemd busy or gone)")]
    Timeout { call: String, timeout: Duration },
    #[error("D-Bus {call}: the bus closed the connection")]
    Closed { call: String },
    #[error("D-Bus {call}: malformed message from the bus: {what}")]
    Garbage { call: String, what: String },
    #[error("D-Bus {call}: {source}")]
    Io {
        call: String,
        #[source]
        source: std::io::Error,
    },
    #[error("D-Bus {call}: the connection is unusable after an earlier error")]
    Spent { call: String },
    #[error("D-Bus {call} failed: {name}: {message}")]
    Remote {
        call: String,
        name: String,
        message: String,
    },
    /// A job systemd ran for a call ended with a result other than "done".
    #[error("systemd {call}: job {job} ended with result {result:?}")]
    Job {
        call: String,
        job: String,
        result: String,
    },
}

impl DbusError {
    /// ETIMEDOUT for a call with no answer in time, the errno of a failed
    /// connect or read; None for errors systemd or the bus reported.
    pub fn errno(&self) -> Option<i32> {
        match self {
            DbusError::Timeout { .. } => Some(libc::ETIMEDOUT),
            DbusError::Connect { source, .. } | DbusError::Io { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }

    /// The D-Bus error name of an error reply (`org.freedesktop.systemd1.NoSuchUnit`).
    pub fn remote_name(&self) -> Option<&str> {
        match self {
            DbusError::Remote { name, .. } => Some(name),
            _ => None,
        }
    }
}
