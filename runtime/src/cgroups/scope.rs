//! The systemd placement (`--systemd-cgroup`): systemd makes the
//! container's cgroup as a transient unit, as runc's and crun's systemd
//! drivers do.
//!
//! * The unit (`prefix-name.scope`, or a slice; `systemd.rs` reads
//!   linux.cgroupsPath) is started with init's pid, once init is cloned
//!   and waits (`Placement::place`): StartTransientUnit with `PIDs`,
//!   `Delegate=yes`, `Slice`, `DefaultDependencies=no`, accounting on and
//!   the resources as unit properties (`systemd_props.rs`), then the
//!   JobRemoved that says it is up. systemd makes the parent slice if it
//!   does not exist.
//! * Then, as runc: the hierarchies systemd does not manage (v1 cpuset,
//!   freezer, net_cls... on a hybrid host) get a directory at the same
//!   path, every available controller is enabled down to the scope on v2,
//!   and init joins what systemd did not put it in. The cgroupfs driver
//!   then writes every resource (properties are what systemd keeps and
//!   re-applies; files are what the kernel enforces now).
//! * exec, kill, pause, ps, stats and events use the cgroup directories
//!   only: no D-Bus on those paths.
//! * `update` sets the unit's properties (SetUnitProperties) and the files.
//! * `remove` stops the unit (StopUnit, waited for), resets a failed one,
//!   and removes the directories berth made. A unit systemd already
//!   collected (the scope emptied when the container exited) is fine.
//!
//! Every call is bounded (`dbus::DEFAULT_TIMEOUT`) and names the call and
//! the unit when it fails.

use std::fs;
use std::io::Write;
use std::os::fd::OwnedFd;

use super::placement::Placement;
use super::resources::Resources;
use super::systemd::SystemdPath;
use super::systemd_props::{self, Layout};
use super::{CgroupMount, Cgroupfs, ContainerCgroups, Hierarchy, Join};
use crate::dbus::{Bus, DbusError, Property, Systemd, Value, DEFAULT_TIMEOUT};
use crate::error::{Error, Result};

/// systemd runs this host: runc's test (sd_booted).
pub fn running() -> bool {
    std::path::Path::new("/run/systemd/system").is_dir()
}

/// Where a systemd-placed container's cgroups are: the unit's cgroup
/// (`/system.slice/runc-ID.scope`) in every mounted hierarchy.
pub(super) fn resolve(cgroups_path: Option<&str>, id: &str) -> Result<ContainerCgroups> {
    let unit = SystemdPath::parse(cgroups_path, id)?;
    if !running() {
        return Err(Error::Unsupported(
            "--systemd-cgroup: systemd is not running on this host (no /run/systemd/system); use the cgroupfs driver".into(),
        ));
    }
    let path = unit.cgroup();
    let mounts = super::hierarchies()?
        .into_iter()
        .map(|h| CgroupMount {
            dir: h.mountpoint.join(path.trim_start_matches('/')),
            mountpoint: h.mountpoint,
            subsystems: h.subsystems,
            unified: h.unified,
            path: path.clone(),
        })
        .collect();
    Ok(ContainerCgroups {
        placement: super::PlacementKind::Systemd,
        mounts,
        systemd: Some(unit),
        resources: Resources::default(),
    })
}

/// Where a container of the user's systemd instance is (berth rootless,
/// `rootless.rs`): the unit's cgroup under the manager's own, which the
/// manager tells (its `ControlGroup`), in the unified hierarchy `h`.
pub(super) fn resolve_user(cgroups_path: Option<&str>, id: &str, h: &Hierarchy) -> Result<ContainerCgroups> {
    let unit = SystemdPath::parse_for(cgroups_path, id, true)?;
    if !running() {
        return Err(Error::Unsupported(
            "--systemd-cgroup: systemd is not running on this host (no /run/systemd/system); use the cgroupfs driver".into(),
        ));
    }
    let base = Systemd::connect_to(Bus::User, DEFAULT_TIMEOUT)
        .and_then(|mut sd| sd.control_group())
        .map_err(|e| {
            Error::Unsupported(format!(
                "--systemd-cgroup: berth runs rootless and asks your systemd instance for the container's scope, \
                 which it cannot reach: {e}; it needs user@{}.service running (a login session, or \
                 `loginctl enable-linger`) and the user's bus (Debian's dbus-user-session)",
                crate::dbus::bus_uid()
            ))
        })?;
    if !base.starts_with('/') {
        return Err(Error::Unsupported(format!(
            "--systemd-cgroup: your systemd instance reports the cgroup {base:?}, not a path: is it a user instance on cgroup v2?"
        )));
    }
    let path = format!("{}{}", base.trim_end_matches('/'), unit.cgroup());
    Ok(ContainerCgroups {
        placement: super::PlacementKind::Systemd,
        mounts: vec![CgroupMount::unified(h, path)],
        systemd: Some(unit),
        resources: Resources::default(),
    })
}

const NO_SUCH_UNIT: &str = "org.freedesktop.systemd1.NoSuchUnit";
const UNIT_EXISTS: &str = "org.freedesktop.systemd1.UnitExists";

/// The systemd placement of one container record.
pub struct Scope<'a> {
    pub(super) cg: &'a ContainerCgroups,
    pub(super) unit: &'a SystemdPath,
}

impl Scope<'_> {
    /// The manager of the unit: the system's, or the user's instance.
    fn connect(&self) -> Result<Systemd> {
        let bus = if self.unit.user { Bus::User } else { Bus::System };
        Ok(Systemd::connect_to(bus, DEFAULT_TIMEOUT)?)
    }

    fn dirs(&self) -> Cgroupfs<'_> {
        Cgroupfs { cg: self.cg }
    }

    fn layout(&self) -> Layout {
        if self.cg.is_v2() {
            Layout::V2
        } else {
            Layout::V1
        }
    }

    /// What StartTransientUnit gets besides the resources.
    fn unit_properties(&self, pid: i32) -> Vec<Property> {
        let mut p: Vec<Property> = vec![
            ("Description".into(), Value::Str(format!("berth container {}", self.unit.unit))),
            ("DefaultDependencies".into(), Value::Bool(false)),
            ("MemoryAccounting".into(), Value::Bool(true)),
            ("CPUAccounting".into(), Value::Bool(true)),
            ("TasksAccounting".into(), Value::Bool(true)),
        ];
        p.push(match self.layout() {
            Layout::V2 => ("IOAccounting".into(), Value::Bool(true)),
            Layout::V1 => ("BlockIOAccounting".into(), Value::Bool(true)),
        });
        if self.unit.is_slice() {
            // A slice holds no processes and cannot be delegated; its
            // parent is in its name, and started with it.
            p.push(("Wants".into(), Value::Array("s".into(), vec![Value::Str(self.unit.slice.clone())])));
        } else {
            p.push(("Slice".into(), Value::Str(self.unit.slice.clone())));
            p.push(("Delegate".into(), Value::Bool(true)));
            p.push(("PIDs".into(), Value::Array("u".into(), vec![Value::U32(pid as u32)])));
        }
        p
    }

    /// StartTransientUnit, waited for. A failed unit of the same name left
    /// from before is reset and the start tried once more.
    fn start(&self, sd: &mut Systemd, props: Vec<Property>) -> Result<()> {
        let name = &self.unit.unit;
        let call = format!("StartTransientUnit({name})");
        let job = match sd.start_transient_unit(name, "replace", props.clone()) {
            Err(e) if e.remote_name() == Some(UNIT_EXISTS) => {
                let _ = sd.reset_failed_unit(name);
                sd.start_transient_unit(name, "replace", props).map_err(|e| exists(e, name))?
            }
            r => r?,
        };
        sd.wait_job(&job, &call)?;
        Ok(())
    }
}

/// UnitExists again after a reset: a live unit of that name.
fn exists(e: DbusError, unit: &str) -> Error {
    if e.remote_name() == Some(UNIT_EXISTS) {
        return Error::Exists(format!("systemd unit {unit}"));
    }
    e.into()
}

impl Placement for Scope<'_> {
    /// systemd makes the cgroup when it gets init's pid ([`Placement::place`]).
    fn create_where(&self, _pick: &dyn Fn(&CgroupMount) -> bool) -> Result<()> {
        Err(Error::Internal(format!(
            "the systemd placement of {} makes its cgroups with init's pid (place), not before",
            self.unit.unit
        )))
    }

    fn by_pid(&self) -> bool {
        true
    }

    fn place(&self, pid: i32, r: &Resources) -> Result<()> {
        let layout = self.layout();
        let mut sd = self.connect()?;
        let version = sd.version()?;
        let mut props = self.unit_properties(pid);
        props.extend(
            systemd_props::resource_properties(r, layout, version)
                .map_err(|error| Error::Cgroup { what: format!("systemd unit {}", self.unit.unit), error })?,
        );
        self.start(&mut sd, props)?;
        drop(sd);
        // What systemd did not make (v1 controllers it does not manage),
        // the controllers enabled down to the unit on v2, and init moved
        // into every cgroup systemd did not put it in.
        let v2 = self.cg.is_v2();
        let now = fs::read_to_string(format!("/proc/{pid}/cgroup"))
            .map_err(|e| Error::path("read", format!("/proc/{pid}/cgroup"), e))?;
        for m in &self.cg.mounts {
            let made = if v2 { super::create_dir_v2(m) } else { super::create_dir(m) };
            made.map_err(|e| Error::path("create cgroup", &m.dir, e))?;
            let h = Hierarchy { mountpoint: m.mountpoint.clone(), subsystems: m.subsystems.clone(), unified: m.unified };
            if super::own_path(&now, &h) != m.path {
                let procs = m.dir.join("cgroup.procs");
                fs::OpenOptions::new()
                    .write(true)
                    .open(&procs)
                    .and_then(|mut f| f.write_all(pid.to_string().as_bytes()))
                    .map_err(|e| Error::path("move container init into", &procs, e))?;
            }
        }
        Ok(())
    }

    /// The CPU quota rounded up as systemd keeps it (runc does the same).
    fn adjust(&self, r: &mut Resources) {
        if r.cpu_quota > 0 {
            r.cpu_quota = systemd_props::cpu_quota_per_sec(r.cpu_quota, r.cpu_period).1;
        }
    }

    fn update(&self, r: &Resources) -> Result<()> {
        let mut sd = self.connect()?;
        let version = sd.version()?;
        let props = systemd_props::resource_properties(r, self.layout(), version)
            .map_err(|error| Error::Cgroup { what: format!("systemd unit {}", self.unit.unit), error })?;
        if !props.is_empty() {
            sd.set_unit_properties(&self.unit.unit, true, props)?;
        }
        Ok(())
    }

    fn open_join(&self, v1: bool) -> Result<Join> {
        self.dirs().open_join(v1)
    }

    fn open_unified_procs(&self) -> Result<Option<OwnedFd>> {
        self.dirs().open_unified_procs()
    }

    fn join_v1_self(&self) -> Result<()> {
        self.dirs().join_v1_self()
    }

    fn pids(&self) -> Vec<i32> {
        self.dirs().pids()
    }

    /// Stop the unit (gone already is fine), reset it if it failed, then
    /// remove what is left of the directories (those berth made).
    fn remove(&self) -> Result<()> {
        let name = &self.unit.unit;
        let stopped = self.connect().and_then(|mut sd| {
            let r = match sd.stop_unit(name, "replace") {
                Ok(job) => sd.wait_job(&job, &format!("StopUnit({name})")),
                Err(e) if e.remote_name() == Some(NO_SUCH_UNIT) => Ok(()),
                Err(e) => Err(e),
            };
            // A unit that failed stays loaded until reset; gone is fine.
            let _ = sd.reset_failed_unit(name);
            r.map_err(Error::from)
        });
        let dirs = self.dirs().remove();
        stopped?;
        dirs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::PlacementKind;

    fn record(v2: bool) -> ContainerCgroups {
        let unit = SystemdPath::parse(Some("system.slice:test:c1"), "c1").unwrap();
        let path = unit.cgroup();
        let mounts = if v2 {
            vec![CgroupMount {
                mountpoint: "/sys/fs/cgroup".into(),
                subsystems: vec![],
                unified: true,
                dir: format!("/sys/fs/cgroup{path}").into(),
                path,
            }]
        } else {
            vec![CgroupMount {
                mountpoint: "/sys/fs/cgroup/memory".into(),
                subsystems: vec!["memory".into()],
                unified: false,
                dir: format!("/sys/fs/cgroup/memory{path}").into(),
                path,
            }]
        };
        ContainerCgroups { placement: PlacementKind::Systemd, systemd: Some(unit), mounts, resources: Resources::default() }
    }

    fn names(p: &[Property]) -> Vec<&str> {
        p.iter().map(|(k, _)| k.as_str()).collect()
    }

    #[test]
    fn a_scope_is_delegated_and_gets_init() {
        let cg = record(true);
        let s = Scope { cg: &cg, unit: cg.systemd.as_ref().unwrap() };
        let p = s.unit_properties(42);
        assert!(names(&p).contains(&"IOAccounting"), "{p:?}");
        assert!(p.contains(&("Delegate".into(), Value::Bool(true))));
        assert!(p.contains(&("Slice".into(), Value::str("system.slice"))));
        assert!(p.contains(&("PIDs".into(), Value::Array("u".into(), vec![Value::U32(42)]))));
        assert!(p.contains(&("DefaultDependencies".into(), Value::Bool(false))));
        assert!(s.by_pid());
        let cg = record(false);
        let s = Scope { cg: &cg, unit: cg.systemd.as_ref().unwrap() };
        assert!(names(&s.unit_properties(42)).contains(&"BlockIOAccounting"));
    }

    #[test]
    fn the_cpu_quota_is_rounded_as_systemd_keeps_it() {
        let cg = record(true);
        let s = Scope { cg: &cg, unit: cg.systemd.as_ref().unwrap() };
        let mut r = Resources { cpu_quota: 12345, cpu_period: 100_000, ..Resources::default() };
        s.adjust(&mut r);
        assert_eq!(r.cpu_quota, 13000);
        let mut r = Resources { cpu_quota: -1, ..Resources::default() };
        s.adjust(&mut r);
        assert_eq!(r.cpu_quota, -1);
    }

    #[test]
    fn a_slice_gets_no_pid_and_no_delegation() {
        let mut cg = record(true);
        cg.systemd = Some(SystemdPath::parse(Some("machine.slice:x:machine-c1.slice"), "c1").unwrap());
        let s = Scope { cg: &cg, unit: cg.systemd.as_ref().unwrap() };
        let p = s.unit_properties(42);
        let n = names(&p);
        assert!(!n.contains(&"PIDs") && !n.contains(&"Delegate") && !n.contains(&"Slice"), "{p:?}");
        assert!(p.contains(&("Wants".into(), Value::Array("s".into(), vec![Value::str("machine.slice")]))));
    }

    #[test]
    fn the_record_names_its_unit() {
        let cg = record(true);
        let json = serde_json::to_string(&cg).unwrap();
        assert!(json.contains(r#""placement":"systemd""#) && json.contains("test-c1.scope"), "{json}");
        let back: ContainerCgroups = serde_json::from_str(&json).unwrap();
        assert_eq!(back.systemd, cg.systemd);
        assert!(back.placement().by_pid());
        // Made before init: refused, naming the unit.
        let e = back.placement().create_where(&|_| true).unwrap_err().to_string();
        assert!(e.contains("test-c1.scope"), "{e}");
    }
}
