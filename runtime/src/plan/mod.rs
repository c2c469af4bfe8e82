//! The spec-to-plan stage (runc's `specconv` + `validate`): a loaded bundle
//! becomes a typed [`Plan`] of everything `create` sets up, in one call,
//! before any state dir, cgroup or process exists.
//!
//! ```text
//!  spec::load_bundle      config.json -> Spec, checked field by field
//!  plan::build            Spec -> Plan: namespaces (opened for joins),
//!                         capability masks, seccomp BPF (cache or compile),
//!                         LSM, cgroup paths and resources, mempolicy, net
//!                         devices (present on the host), uid/gid maps,
//!                         id-mapped mounts, time offsets, hooks, process
//!  StateDir::create       only now is anything made
//!  process::launch(plan)  cgroups, clone, init: reads the plan, not the spec
//! ```
//!
//! Everything a config can get wrong is found here, so each config error
//! is a [`ConfigError`] naming config.json and the JSON path, raised while
//! nothing has been created on disk or in the kernel. What must be made at
//! launch time stays there (the detached id-mapped mounts, the cgroups), but
//! from checked values. The namespaces to join are opened here (handles,
//! nothing created). The mounts, sysctls, hostname and personality are still
//! read from the spec by init (`rootfs`, `process/setup.rs`).
//! Run rootless, what needs root is refused here too (`rootless.rs`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{Hook, LinuxIdMapping, LinuxNamespaceType, Process, Spec};

use crate::cgroups::resources::Resources;
use crate::cgroups::ContainerCgroups;
use crate::error::{Error, Result};
use crate::namespaces;
use crate::rootfs::idmap::IdmapMount;
use crate::security::caps::CapSets;
use crate::security::seccomp::Filter;
use crate::spec::{Bundle, ConfigError};

mod rootless;
#[cfg(test)]
mod tests;

/// What `create` sets up for a container, derived from its bundle.
#[derive(Debug)]
pub struct Plan<'a> {
    pub bundle: &'a Bundle,
    /// `process`, which a container's config must have.
    pub process: Process,
    pub namespaces: namespaces::Plan,
    /// process.capabilities as masks (None: keep init's).
    pub caps: Option<CapSets>,
    pub seccomp: Option<Seccomp>,
    /// process.apparmorProfile, on a host with AppArmor.
    pub apparmor: Option<String>,
    /// The container's cgroup directories (linux.cgroupsPath resolved).
    pub cgroups: ContainerCgroups,
    /// linux.resources in berth's form.
    pub resources: Resources,
    pub mempolicy: Option<crate::mempolicy::Policy>,
    /// linux.netDevices: host name -> name in the container.
    pub net_devices: BTreeMap<String, String>,
    /// The uid and gid maps of a new user namespace.
    pub id_maps: IdMaps,
    /// The id-mapped mounts, made at launch time.
    pub idmapped_mounts: Vec<IdmapMount>,
    /// linux.timeOffsets as written to timens_offsets (new time ns only).
    pub time_offsets: Option<String>,
    /// No mount namespace: the container runs in berth's own
    /// (`rootfs/inherited.rs`).
    pub mntns_inherited: bool,
    pub hooks: Hooks,
}

/// linux.seccomp: the compiled filter and where its listener goes.
#[derive(Debug)]
pub struct Seccomp {
    pub filter: Filter,
    /// linux.seccomp.listenerPath (with SCMP_ACT_NOTIFY rules).
    pub listener_path: Option<PathBuf>,
    pub listener_metadata: Option<String>,
}

/// The text berth writes to `/proc/PID/uid_map` and `gid_map` (empty: none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdMaps {
    pub uid: String,
    pub gid: String,
}

/// The config's hooks, by kind.
#[derive(Debug, Clone, Default)]
pub struct Hooks {
    pub prestart: Vec<Hook>,
    pub create_runtime: Vec<Hook>,
    pub create_container: Vec<Hook>,
    pub start_container: Vec<Hook>,
    pub poststop: Vec<Hook>,
}

impl Hooks {
    /// Hooks run while init sets up (init asks the parent for them).
    pub fn during_setup(&self) -> bool {
        [
            &self.prestart,
            &self.create_runtime,
            &self.create_container,
            &self.start_container,
        ]
        .iter()
        .any(|v| !v.is_empty())
    }
}

/// The kernel takes at most this many lines in a uid_map or gid_map.
const MAX_ID_MAP_LINES: usize = 340;

/// KTIME_SEC_MAX / 2: the largest time a time namespace's clock may show.
const TIME_SEC_MAX: i64 = i64::MAX / 1_000_000_000 / 2;

/// A config error before the file name is attached.
type Fault = (String, String);

/// Build the plan of container `id` from `bundle`; `root` is the state
/// root (the seccomp cache lives under it). Creates nothing but the seccomp
/// cache entry (and the root above it), and that only once every other
/// part is checked.
pub fn build<'a>(
    bundle: &'a Bundle,
    id: &str,
    root: &Path,
    manager: crate::lifecycle::CgroupManager,
) -> Result<Plan<'a>> {
    let spec = &bundle.spec;
    let cfg = |(path, msg): Fault| {
        Error::Config(ConfigError::new(
            bundle.config_path.display().to_string(),
            path,
            msg,
        ))
    };
    let process = spec
        .process()
        .clone()
        .ok_or_else(|| cfg(("process".into(), "required field is missing".into())))?;
    let caps = crate::security::caps::plan(&process);
    if let Some(c) = &caps {
        crate::security::caps::check(c).map_err(cfg)?;
    }
    let namespaces = namespaces::Plan::from_spec(spec).map_err(cfg)?;
    let host = crate::host::current();
    if let Some(r) = host.rootless() {
        rootless::check(spec, r, &namespaces).map_err(cfg)?;
    }
    let userns = namespaces.has_new(LinuxNamespaceType::User);
    let apparmor = crate::security::lsm::check(bundle)?;
    let cgroups = cgroups(spec, id, manager).map_err(|e| match config_fault(&e, "linux.cgroupsPath") {
        Some(f) => cfg(f),
        None => e,
    })?;
    let resources = crate::cgroups::resources::from_bundle(bundle)
        .map_err(|e| cfg((format!("linux.resources.{}", e.field), e.msg)))?;
    let mut resources = rootless::resources(spec, host, &cgroups, resources);
    cgroups.placement().adjust(&mut resources);
    let mempolicy = crate::mempolicy::from_spec(spec).map_err(|e| cfg((e.path.into(), e.msg)))?;
    let net_devices = crate::netdev::planned(spec);
    net_devices_on_host(&net_devices).map_err(cfg)?;
    let id_maps = if userns {
        id_maps(spec).map_err(cfg)?
    } else {
        IdMaps::default()
    };
    mount_id_maps(spec).map_err(cfg)?;
    let idmapped_mounts =
        crate::rootfs::idmap::plan(spec, &bundle.dir, userns).map_err(|e| match e {
            crate::rootfs::RootfsError::Config { at, msg } => cfg((at, msg)),
            e => e.into(),
        })?;
    let time_offsets = if namespaces.has_new(LinuxNamespaceType::Time) {
        time_offsets(spec).map_err(cfg)?
    } else {
        None
    };
    // Last: the only step that may write (the seccomp cache, under root).
    let seccomp = seccomp(bundle, root)?;
    Ok(Plan {
        bundle,
        process,
        caps,
        seccomp,
        apparmor,
        cgroups,
        resources,
        mempolicy,
        net_devices,
        id_maps,
        idmapped_mounts,
        time_offsets,
        mntns_inherited: !namespaces.has(LinuxNamespaceType::Mount),
        hooks: hooks(spec),
        namespaces,
    })
}

fn seccomp(bundle: &Bundle, root: &Path) -> Result<Option<Seccomp>> {
    let Some(filter) = crate::security::seccomp::prepare(bundle, root)? else {
        return Ok(None);
    };
    let s = bundle
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref());
    Ok(Some(Seccomp {
        filter,
        listener_path: s.and_then(|s| s.listener_path().clone()),
        listener_metadata: s.and_then(|s| s.listener_metadata().clone()),
    }))
}

fn cgroups(spec: &Spec, id: &str, manager: crate::lifecycle::CgroupManager) -> Result<ContainerCgroups> {
    let path = spec
        .linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().as_ref())
        .map(|p| p.to_str().unwrap_or(""));
    ContainerCgroups::resolve_with(manager.placement(path), path, id)
}

/// An error whose message starts with `field: `: a config fault at `field`.
fn config_fault(e: &Error, field: &str) -> Option<Fault> {
    let text = e.to_string();
    let msg = text.strip_prefix(field)?.strip_prefix(": ")?;
    Some((field.to_string(), msg.to_string()))
}

/// Each device to move must exist in berth's network namespace.
fn net_devices_on_host(devices: &BTreeMap<String, String>) -> std::result::Result<(), Fault> {
    for host in devices.keys() {
        // Names are checked (no NUL) by netdev::validate at load.
        let name = std::ffi::CString::new(host.as_str()).unwrap_or_default();
        // SAFETY: if_nametoindex reads a NUL-terminated string.
        if unsafe { libc::if_nametoindex(name.as_ptr()) } == 0 {
            return Err((
                format!("linux.netDevices.{host}"),
                format!("there is no network device {host:?} on the host"),
            ));
        }
    }
    Ok(())
}

/// linux.uidMappings and gidMappings as the kernel takes them: at most 340
/// lines, no range past 2^32-1, no two ranges overlapping on either side.
pub(crate) fn id_maps(spec: &Spec) -> std::result::Result<IdMaps, Fault> {
    let linux = spec.linux().as_ref();
    let uid = linux
        .and_then(|l| l.uid_mappings().as_deref())
        .unwrap_or(&[]);
    let gid = linux
        .and_then(|l| l.gid_mappings().as_deref())
        .unwrap_or(&[]);
    Ok(IdMaps {
        uid: id_map("linux.uidMappings", uid)?,
        gid: id_map("linux.gidMappings", gid)?,
    })
}

/// The mappings of id-mapped mounts, by the same rules.
fn mount_id_maps(spec: &Spec) -> std::result::Result<(), Fault> {
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        id_map(
            &format!("mounts[{i}].uidMappings"),
            m.uid_mappings().as_deref().unwrap_or(&[]),
        )?;
        id_map(
            &format!("mounts[{i}].gidMappings"),
            m.gid_mappings().as_deref().unwrap_or(&[]),
        )?;
    }
    Ok(())
}

fn id_map(field: &str, maps: &[LinuxIdMapping]) -> std::result::Result<String, Fault> {
    if maps.len() > MAX_ID_MAP_LINES {
        return Err((
            field.into(),
            format!(
                "{} entries; the kernel takes at most {MAX_ID_MAP_LINES}",
                maps.len()
            ),
        ));
    }
    let range = |first: u32, size: u32| (first as u64, first as u64 + size as u64);
    for (i, m) in maps.iter().enumerate() {
        for (side, first) in [("containerID", m.container_id()), ("hostID", m.host_id())] {
            if range(first, m.size()).1 > u32::MAX as u64 {
                return Err((
                    format!("{field}[{i}]"),
                    format!("{side} {first} + size {} is past 4294967295", m.size()),
                ));
            }
        }
        for (j, o) in maps[..i].iter().enumerate() {
            for (side, a, b) in [
                ("container", m.container_id(), o.container_id()),
                ("host", m.host_id(), o.host_id()),
            ] {
                let (a, b) = (range(a, m.size()), range(b, o.size()));
                if a.0 < b.1 && b.0 < a.1 {
                    return Err((
                        format!("{field}[{i}]"),
                        format!(
                            "its {side} ids {}-{} overlap those of {field}[{j}] ({}-{})",
                            a.0,
                            a.1 - 1,
                            b.0,
                            b.1 - 1
                        ),
                    ));
                }
            }
        }
    }
    Ok(crate::host::map_text(maps))
}

/// linux.timeOffsets as written to /proc/self/timens_offsets, with the
/// kernel's checks: nanoseconds below a second, and the clock it shifts
/// stays between 0 and KTIME_SEC_MAX/2.
pub(crate) fn time_offsets(spec: &Spec) -> std::result::Result<Option<String>, Fault> {
    let Some(offsets) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.time_offsets().as_ref())
    else {
        return Ok(None);
    };
    let mut clocks: Vec<&String> = offsets.keys().collect();
    clocks.sort();
    let mut text = String::new();
    for clock in clocks {
        let off = &offsets[clock];
        let id = match clock.as_str() {
            "monotonic" => libc::CLOCK_MONOTONIC,
            "boottime" => libc::CLOCK_BOOTTIME,
            other => {
                let path = format!("linux.timeOffsets.{}", crate::error::clip_plain(other));
                return Err((path, "unknown clock (monotonic or boottime)".into()));
            }
        };
        let (secs, nanos) = (off.secs().unwrap_or(0), off.nanosecs().unwrap_or(0));
        if nanos >= 1_000_000_000 {
            return Err((
                format!("linux.timeOffsets.{clock}.nanosecs"),
                format!("{nanos} is not below 1000000000"),
            ));
        }
        let shown = now(id).saturating_add(secs);
        if !(0..=TIME_SEC_MAX).contains(&shown) {
            return Err((
                format!("linux.timeOffsets.{clock}.secs"),
                format!("{secs} would set the {clock} clock to {shown} s, outside 0..{TIME_SEC_MAX} (the kernel refuses it)"),
            ));
        }
        text.push_str(&format!("{clock} {secs} {nanos}\n"));
    }
    Ok(Some(text))
}

/// Seconds on clock `id` now.
fn now(id: libc::clockid_t) -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into `ts`.
    unsafe { libc::clock_gettime(id, &mut ts) };
    ts.tv_sec
}

pub(crate) fn hooks(spec: &Spec) -> Hooks {
    let Some(h) = spec.hooks() else {
        return Hooks::default();
    };
    let list = |v: &Option<Vec<Hook>>| v.clone().unwrap_or_default();
    #[allow(deprecated)]
    let prestart = list(h.prestart());
    Hooks {
        prestart,
        create_runtime: list(h.create_runtime()),
        create_container: list(h.create_container()),
        start_container: list(h.start_container()),
        poststop: list(h.poststop()),
    }
}
