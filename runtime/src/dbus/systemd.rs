//! The calls of systemd's Manager (org.freedesktop.systemd1.Manager) that
//! the systemd cgroup driver makes: StartTransientUnit, StopUnit, GetUnit,
//! SetUnitProperties, ResetFailedUnit, the Manager's Version and
//! ControlGroup properties, and the JobRemoved signal that says a job is
//! over. Each error names the call and the unit. The manager is the system
//! one (on the system bus) or the user's own instance (on the user's bus,
//! for berth rootless).

use std::path::Path;
use std::time::Duration;

use super::conn::{session_bus_path, system_bus_path, Connection};
use super::message::{Kind, Message};
use super::wire::Value;
use super::DbusError;

/// The bound of every call when the caller has none (runc has none; a
/// scope start takes milliseconds on an idle systemd).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

const SYSTEMD: &str = "org.freedesktop.systemd1";
const PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
const PROPERTIES: &str = "org.freedesktop.DBus.Properties";

/// A unit property: its name and value (`("Delegate", Value::Bool(true))`).
pub type Property = (String, Value);

fn props(list: Vec<Property>) -> Value {
    let items = list
        .into_iter()
        .map(|(k, v)| Value::Struct(vec![Value::Str(k), Value::variant(v)]))
        .collect();
    Value::Array("(sv)".into(), items)
}

/// Which systemd: the system manager, or the user's instance
/// (`systemd --user`, user@UID.service) that manages the user's delegated
/// cgroup subtree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bus {
    /// The system bus ($DBUS_SYSTEM_BUS_ADDRESS or /run/dbus/system_bus_socket).
    System,
    /// The user's bus ($DBUS_SESSION_BUS_ADDRESS, else $XDG_RUNTIME_DIR/bus).
    User,
}

impl Bus {
    /// The socket of this bus.
    pub fn path(self) -> Result<std::path::PathBuf, DbusError> {
        match self {
            Bus::System => system_bus_path(),
            Bus::User => session_bus_path(),
        }
    }
}

/// A connection to systemd on the system bus.
pub struct Systemd {
    conn: Connection,
    dest: String,
}

impl Systemd {
    /// Connect to the system bus ($DBUS_SYSTEM_BUS_ADDRESS or
    /// /run/dbus/system_bus_socket), ask for JobRemoved and subscribe.
    pub fn connect(timeout: Duration) -> Result<Systemd, DbusError> {
        Systemd::connect_at(&system_bus_path()?, timeout)
    }

    /// As [`Systemd::connect`], to the manager of `bus`.
    pub fn connect_to(bus: Bus, timeout: Duration) -> Result<Systemd, DbusError> {
        Systemd::connect_at(&bus.path()?, timeout)
    }

    /// As [`Systemd::connect`], on the bus at `path`.
    pub fn connect_at(path: &Path, timeout: Duration) -> Result<Systemd, DbusError> {
        let mut conn = Connection::open(path, timeout)?;
        let rule = format!("type='signal',sender='{SYSTEMD}',path='{PATH}',interface='{MANAGER}',member='JobRemoved'");
        conn.add_match(&rule)?;
        let mut s = Systemd {
            conn,
            dest: SYSTEMD.into(),
        };
        // systemd sends job signals only to subscribed clients.
        s.manager("Subscribe", vec![], "Subscribe".into())?;
        Ok(s)
    }

    fn manager(
        &mut self,
        member: &str,
        body: Vec<Value>,
        call: String,
    ) -> Result<Message, DbusError> {
        self.conn.call(
            Message::call(&self.dest, PATH, MANAGER, member, body),
            &call,
        )
    }

    fn path_reply(m: Message, call: &str) -> Result<String, DbusError> {
        match m.body.first() {
            Some(Value::Path(p)) => Ok(p.clone()),
            _ => Err(DbusError::Garbage {
                call: call.into(),
                what: format!("reply of signature {:?}, want \"o\"", m.signature()),
            }),
        }
    }

    /// StartTransientUnit(name, mode, properties, no aux units): the job's
    /// object path. The unit exists when [`Systemd::wait_job`] says "done".
    pub fn start_transient_unit(
        &mut self,
        name: &str,
        mode: &str,
        properties: Vec<Property>,
    ) -> Result<String, DbusError> {
        let call = format!("StartTransientUnit({name})");
        let aux = Value::Array("(sa(sv))".into(), vec![]);
        let m = self.manager(
            "StartTransientUnit",
            vec![Value::str(name), Value::str(mode), props(properties), aux],
            call.clone(),
        )?;
        Self::path_reply(m, &call)
    }

    /// StopUnit(name, mode): the job's object path.
    pub fn stop_unit(&mut self, name: &str, mode: &str) -> Result<String, DbusError> {
        let call = format!("StopUnit({name})");
        let m = self.manager(
            "StopUnit",
            vec![Value::str(name), Value::str(mode)],
            call.clone(),
        )?;
        Self::path_reply(m, &call)
    }

    /// GetUnit(name): the unit's object path
    /// (`org.freedesktop.systemd1.NoSuchUnit` when it is not loaded).
    pub fn get_unit(&mut self, name: &str) -> Result<String, DbusError> {
        let call = format!("GetUnit({name})");
        let m = self.manager("GetUnit", vec![Value::str(name)], call.clone())?;
        Self::path_reply(m, &call)
    }

    /// SetUnitProperties(name, runtime, properties).
    pub fn set_unit_properties(
        &mut self,
        name: &str,
        runtime: bool,
        properties: Vec<Property>,
    ) -> Result<(), DbusError> {
        let call = format!("SetUnitProperties({name})");
        self.manager(
            "SetUnitProperties",
            vec![Value::str(name), Value::Bool(runtime), props(properties)],
            call,
        )
        .map(drop)
    }

    /// ResetFailedUnit(name): forget a failed unit, so that its name can be
    /// started again (`org.freedesktop.systemd1.NoSuchUnit` when it is not
    /// loaded).
    pub fn reset_failed_unit(&mut self, name: &str) -> Result<(), DbusError> {
        let call = format!("ResetFailedUnit({name})");
        self.manager("ResetFailedUnit", vec![Value::str(name)], call)
            .map(drop)
    }

    /// A property of the Manager (org.freedesktop.DBus.Properties.Get) that
    /// is a string.
    fn manager_string(&mut self, name: &str) -> Result<String, DbusError> {
        let call = format!("Get(Manager.{name})");
        let m = self.conn.call(
            Message::call(
                &self.dest,
                PATH,
                PROPERTIES,
                "Get",
                vec![Value::str(MANAGER), Value::str(name)],
            ),
            &call,
        )?;
        if let Some(Value::Variant(v)) = m.body.first() {
            if let Value::Str(s) = v.as_ref() {
                return Ok(s.clone());
            }
        }
        Err(DbusError::Garbage {
            call,
            what: format!("reply of signature {:?}, want a variant of \"s\"", m.signature()),
        })
    }

    /// The Manager's `Version` property as its leading number: 252 for
    /// "252.33-1~deb12u1", 245 for "v245.4-1.fc32" (runc's
    /// systemdVersionAtoi).
    pub fn version(&mut self) -> Result<u32, DbusError> {
        let text = self.manager_string("Version")?;
        version_number(&text).ok_or_else(|| DbusError::Garbage {
            call: "Get(Manager.Version)".into(),
            what: format!("Version {text:?} does not start with a number"),
        })
    }

    /// The Manager's `ControlGroup` property: the cgroup of the manager
    /// itself, under which its units' cgroups are ("" for the system
    /// manager, `/user.slice/user-1000.slice/user@1000.service` for a
    /// user's instance).
    pub fn control_group(&mut self) -> Result<String, DbusError> {
        self.manager_string("ControlGroup")
    }

    /// Wait for JobRemoved of `job` (a path a call returned) and check its
    /// result is "done"; `call` names what started the job.
    pub fn wait_job(&mut self, job: &str, call: &str) -> Result<(), DbusError> {
        let want = |m: &Message| {
            m.kind == Kind::Signal
                && m.member.as_deref() == Some("JobRemoved")
                && m.interface.as_deref() == Some(MANAGER)
                && matches!(m.body.get(1), Some(Value::Path(p)) if p == job)
        };
        let m = self.conn.wait_for(call, &want)?;
        match m.body.get(3) {
            Some(Value::Str(r)) if r == "done" => Ok(()),
            Some(Value::Str(r)) => Err(DbusError::Job {
                call: call.into(),
                job: job.into(),
                result: r.clone(),
            }),
            _ => Err(DbusError::Garbage {
                call: call.into(),
                what: format!("JobRemoved of signature {:?}, want \"uoss\"", m.signature()),
            }),
        }
    }
}

/// The leading number of a systemd version string: a `"` or `v` before it
/// is skipped, the first character that is not a digit ends it. None
/// without digits or above u32::MAX.
pub(super) fn version_number(text: &str) -> Option<u32> {
    let t = text.trim_start_matches(['"', 'v']);
    let end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    t[..end].parse().ok()
}

#[cfg(test)]
impl Systemd {
    /// A Systemd that calls `dest` on an open connection (the tests' own
    /// peer, on a private bus).
    pub fn with_destination(conn: Connection, dest: &str) -> Systemd {
        Systemd {
            conn,
            dest: dest.into(),
        }
    }
}
