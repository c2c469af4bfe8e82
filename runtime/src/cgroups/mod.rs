//! The container's cgroups: a directory at the container's cgroup path in
//! every mounted hierarchy (v1 controllers, named v1 hierarchies, and the
//! v2 unified hierarchy), joined by init and removed on delete, and the
//! resource layer behind one trait, [`Driver`]: [`v1::V1`] on legacy and
//! hybrid hosts, [`v2::V2`] when the unified hierarchy is the only one.
//!
//! Placement (resolve, create, join, remove) is the trait
//! [`placement::Placement`]: [`Cgroupfs`], here, and the systemd placement
//! (`scope.rs`, `systemd.rs` for its names, `systemd_props.rs` for unit
//! properties), picked by the [`ContainerCgroups`] record state.json keeps.
//!
//! Files: `placement.rs` (the placement trait and kinds), `resources.rs`
//! (the spec's `linux.resources` in runc's form, and runc's v1 <-> v2
//! conversions), `devices.rs` (device rules),
//! `devices_bpf.rs` (the v2 eBPF device program), `v1.rs`, `v2.rs`,
//! `stats.rs` (runc's `events --stats` JSON), `events.rs` (OOM watch).

pub mod devices;
pub mod devices_bpf;
mod devices_v1;
pub mod events;
mod fsutil;
pub mod placement;
pub mod resources;
mod rootless;
pub mod stats;
mod scope;
pub mod systemd;
pub mod systemd_props;
pub mod v1;
pub mod v2;

pub use placement::{Placement, PlacementKind};
pub use scope::running as systemd_running;
pub use resources::{FieldError, Resources};

use std::fs;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::mountinfo;

/// One mounted cgroup hierarchy on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// Where it is mounted, e.g. `/sys/fs/cgroup/cpu`.
    pub mountpoint: PathBuf,
    /// v1 controllers and `name=` entries from the mount options
    /// (`["cpu"]`, `["name=systemd"]`); empty for v2.
    pub subsystems: Vec<String>,
    /// True for the cgroup2 (unified) hierarchy.
    pub unified: bool,
}

/// The container's cgroup in one hierarchy.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct CgroupMount {
    /// Host mountpoint of the hierarchy, e.g. `/sys/fs/cgroup/cpu`.
    pub mountpoint: PathBuf,
    /// v1 controllers and `name=` entries; empty for v2.
    pub subsystems: Vec<String>,
    pub unified: bool,
    /// The container's cgroup path inside this hierarchy, e.g. `/berth/ID`.
    pub path: String,
    /// `mountpoint` + `path`: the container's cgroup directory on the host.
    pub dir: PathBuf,
}

impl CgroupMount {
    /// The container's cgroup `path` in the unified hierarchy `h`.
    pub fn unified(h: &Hierarchy, path: String) -> CgroupMount {
        CgroupMount {
            dir: h.mountpoint.join(path.trim_start_matches('/')),
            mountpoint: h.mountpoint.clone(),
            subsystems: vec![],
            unified: true,
            path,
        }
    }

    /// The name the container sees under /sys/fs/cgroup: the mountpoint's
    /// last component (`cpu`, `cpu,cpuacct`, `systemd`, `unified`).
    pub fn name(&self) -> String {
        self.mountpoint
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

/// The cgroup mounts in a mountinfo text.
pub fn parse_mountinfo(text: &str) -> Vec<Hierarchy> {
    let mut out = Vec::new();
    for m in mountinfo::parse(text) {
        match m.fstype {
            "cgroup2" => out.push(Hierarchy {
                mountpoint: m.mountpoint.as_ref().into(),
                subsystems: vec![],
                unified: true,
            }),
            "cgroup" => {
                let subsystems = m
                    .super_options
                    .split(',')
                    .filter(|o| {
                        !matches!(
                            *o,
                            "rw" | "ro" | "noprefix" | "xattr" | "clone_children" | "cpuset_v2_mode" | "favordynmods"
                        ) && !o.starts_with("release_agent=")
                    })
                    .map(str::to_string)
                    .collect();
                out.push(Hierarchy {
                    mountpoint: m.mountpoint.as_ref().into(),
                    subsystems,
                    unified: false,
                });
            }
            _ => {}
        }
    }
    // A hierarchy mounted twice (bind mounts) is listed once.
    let mut seen = std::collections::HashSet::new();
    out.retain(|h| seen.insert((h.subsystems.clone(), h.unified)));
    out
}

/// The hierarchies mounted in this mount namespace.
pub fn hierarchies() -> Result<Vec<Hierarchy>> {
    let text = mountinfo::read().map_err(|e| Error::path("read", mountinfo::PATH, e))?;
    Ok(parse_mountinfo(&text))
}

/// This process's cgroup path in `h`, from a `/proc/self/cgroup` text.
pub(crate) fn own_path(cgroup_text: &str, h: &Hierarchy) -> String {
    for line in cgroup_text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if h.unified {
            if ctrls.is_empty() {
                return path.to_string();
            }
        } else if !ctrls.is_empty() {
            let mut a: Vec<&str> = ctrls.split(',').collect();
            let mut b: Vec<&str> = h.subsystems.iter().map(String::as_str).collect();
            a.sort_unstable();
            b.sort_unstable();
            if a == b {
                return path.to_string();
            }
        }
    }
    "/".to_string()
}

/// Normalise a cgroup path: absolute, no empty, `.` or `..` components.
fn clean(path: &str) -> Result<String> {
    let mut parts = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                return Err(Error::config("linux.cgroupsPath", format!("\"{path}\" must not contain \"..\"")))
            }
            c => parts.push(c),
        }
    }
    Ok(format!("/{}", parts.join("/")))
}

fn open_write(p: &Path) -> Result<OwnedFd> {
    fs::OpenOptions::new().write(true).open(p).map(OwnedFd::from).map_err(|e| Error::path("open", p, e))
}

/// Handles for joining the container's cgroups, see
/// [`Placement::open_join`].
#[derive(Debug)]
pub struct Join {
    /// v1 `tasks` files: init writes "0" to each.
    pub tasks: Vec<OwnedFd>,
    /// The v2 cgroup directory, for CLONE_INTO_CGROUP.
    pub unified_dir: Option<OwnedFd>,
}

/// The container's cgroups: one directory per hierarchy. This is the
/// record state.json keeps; [`ContainerCgroups::placement`] acts on it.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct ContainerCgroups {
    /// How they are placed (absent in state.json: cgroupfs).
    #[serde(default, skip_serializing_if = "PlacementKind::is_default")]
    pub placement: PlacementKind,
    pub mounts: Vec<CgroupMount>,
    /// The systemd placement's unit and slice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systemd: Option<systemd::SystemdPath>,
    /// What was applied (merged into by `update`).
    #[serde(default, skip_serializing_if = "resources_unset")]
    pub resources: Resources,
}

fn resources_unset(r: &Resources) -> bool {
    r.only_devices()
}

/// What a cgroup driver does for a container.
pub trait Driver {
    /// Apply `r` to the container's cgroup (new, or running for `update`).
    fn apply(&self, r: &Resources) -> Result<(), FieldError>;
    /// Freeze or thaw, returning once the kernel says it is done.
    fn set_frozen(&self, frozen: bool) -> Result<()>;
    /// The freezer's state now.
    fn frozen(&self) -> Result<bool>;
    /// Usage figures for `events --stats`.
    fn stats(&self) -> Result<stats::Stats>;
    /// A handle that becomes readable on an OOM event.
    fn oom_watch(&self) -> Result<events::OomWatch>;
}

/// `rdma.max` line: `mlx4_0 hca_handle=2 hca_object=max`.
pub(crate) fn rdma_line(dev: &str, l: &resources::RdmaLimit) -> String {
    let v = |x: Option<u32>| x.map_or("max".to_string(), |v| v.to_string());
    format!("{dev} hca_handle={} hca_object={}", v(l.hca_handles), v(l.hca_objects))
}

impl ContainerCgroups {
    /// Where the container's cgroups go, placed by `kind` (see
    /// [`PlacementKind::resolve`]). berth rootless
    /// ([`crate::host::Host::manages_cgroups`] false): the user's systemd
    /// instance, a delegated cgroup v2 subtree, or none at all
    /// (`rootless.rs`).
    pub fn resolve_with(kind: PlacementKind, cgroups_path: Option<&str>, id: &str) -> Result<Self> {
        if !crate::host::current().manages_cgroups() {
            return rootless::resolve(kind, cgroups_path, id);
        }
        kind.resolve(cgroups_path, id)
    }

    /// The placement this record was made by.
    pub fn placement(&self) -> Box<dyn Placement + '_> {
        match (self.placement, &self.systemd) {
            (PlacementKind::Systemd, Some(unit)) => Box::new(scope::Scope { cg: self, unit }),
            // A systemd record without its unit (edited by hand): only
            // the directories are known.
            _ => Box::new(Cgroupfs { cg: self }),
        }
    }

    /// True on a cgroup v2 only host (the unified hierarchy is all there is).
    pub fn is_v2(&self) -> bool {
        !self.mounts.is_empty() && self.mounts.iter().all(|m| m.unified)
    }

    /// The resource driver: v1 (per hierarchy, plus the unified keys on a
    /// hybrid host), or v2 when the unified hierarchy is all there is.
    pub fn driver(&self) -> Box<dyn Driver + '_> {
        if self.is_v2() {
            Box::new(v2::V2 { dir: &self.mounts[0].dir })
        } else {
            Box::new(v1::V1 { cg: self })
        }
    }

    /// Record `r` as applied (at create, for `update` and stats).
    pub fn remember(&mut self, r: Resources) {
        let mut stored = r;
        stored.devices = None;
        self.resources = stored;
    }

    /// Create every directory (see [`Placement::create_where`]).
    pub fn create(&self) -> Result<()> {
        self.placement().create_where(&|_| true)
    }

    /// See [`Placement::create_where`].
    pub fn create_where(&self, pick: impl Fn(&CgroupMount) -> bool) -> Result<()> {
        self.placement().create_where(&pick)
    }

    /// See [`Placement::join_v1_self`].
    pub fn join_v1_self(&self) -> Result<()> {
        self.placement().join_v1_self()
    }

    /// See [`Placement::open_join`].
    pub fn open_join(&self, v1: bool) -> Result<Join> {
        self.placement().open_join(v1)
    }

    /// See [`Placement::open_unified_procs`].
    pub fn open_unified_procs(&self) -> Result<Option<OwnedFd>> {
        self.placement().open_unified_procs()
    }

    /// See [`Placement::pids`].
    pub fn pids(&self) -> Vec<i32> {
        self.placement().pids()
    }

    /// See [`Placement::remove`].
    pub fn remove(&self) -> Result<()> {
        self.placement().remove()
    }
}

/// The cgroupfs placement: berth makes the container's directory in every
/// mounted hierarchy itself, and init joins through files the parent
/// opened (v1 `tasks`, the v2 directory for CLONE_INTO_CGROUP).
pub struct Cgroupfs<'a> {
    cg: &'a ContainerCgroups,
}

impl Cgroupfs<'_> {
    /// Where the container's cgroup goes. An absolute `cgroups_path` is used
    /// as is in every hierarchy; a relative one is nested under berth's own
    /// cgroup in each hierarchy; none means `/berth/ID`.
    pub fn resolve(cgroups_path: Option<&str>, id: &str) -> Result<ContainerCgroups> {
        let hs = hierarchies()?;
        let own = match cgroups_path {
            Some(p) if !p.starts_with('/') && !p.is_empty() => {
                fs::read_to_string("/proc/self/cgroup").map_err(|e| Error::path("read", "/proc/self/cgroup", e))?
            }
            _ => String::new(),
        };
        if let Some(p) = cgroups_path {
            if p.contains(':') && !p.starts_with('/') {
                return Err(Error::config(
                    "linux.cgroupsPath",
                    format!("\"{p}\" looks like a systemd slice:prefix:name path: use the systemd cgroup driver (--systemd-cgroup)"),
                ));
            }
        }
        let mut mounts = Vec::with_capacity(hs.len());
        for h in hs {
            let path = match cgroups_path {
                None | Some("") => clean(&format!("/berth/{id}"))?,
                Some(p) if p.starts_with('/') => clean(p)?,
                Some(p) => clean(&format!("{}/{}", own_path(&own, &h), p))?,
            };
            if path == "/" {
                return Err(Error::config("linux.cgroupsPath", "must not be the root cgroup"));
            }
            let dir = h.mountpoint.join(path.trim_start_matches('/'));
            mounts.push(CgroupMount {
                mountpoint: h.mountpoint,
                subsystems: h.subsystems,
                unified: h.unified,
                path,
                dir,
            });
        }
        Ok(ContainerCgroups { placement: PlacementKind::Cgroupfs, mounts, systemd: None, resources: Resources::default() })
    }
}

impl Placement for Cgroupfs<'_> {
    fn create_where(&self, pick: &dyn Fn(&CgroupMount) -> bool) -> Result<()> {
        let v2 = self.cg.is_v2();
        let picked: Vec<&CgroupMount> = self.cg.mounts.iter().filter(|m| pick(m)).collect();
        for (i, m) in picked.iter().enumerate() {
            let r = if v2 { create_dir_v2(m) } else { create_dir(m) };
            if let Err(e) = r {
                for done in &picked[..i] {
                    let _ = fs::remove_dir(&done.dir);
                }
                return Err(Error::path("create cgroup", &m.dir, e));
            }
        }
        Ok(())
    }

    /// Move the calling thread (init, before it has others) into the
    /// container's v1 cgroups: "0" to each `tasks` file. Writing "0" moves
    /// the caller without the global threadgroup lock that writing another
    /// pid takes (a full RCU grace period, 6-14 ms measured here).
    fn join_v1_self(&self) -> Result<()> {
        for m in self.cg.mounts.iter().filter(|m| !m.unified) {
            let p = m.dir.join("tasks");
            let f = open_write(&p)?;
            // SAFETY: writes one byte from a static string to the open tasks file.
            if unsafe { libc::write(std::os::fd::AsRawFd::as_raw_fd(&f), b"0".as_ptr().cast(), 1) } != 1 {
                return Err(Error::path("join the container's cgroup: write", &p, io::Error::last_os_error()));
            }
        }
        Ok(())
    }

    /// Open what init needs to join its cgroups: the v1 `tasks` files init
    /// writes "0" to (measured faster than cgroup.procs on this kernel), and
    /// the v2 directory for clone3's CLONE_INTO_CGROUP (writing cgroup.procs
    /// on v2 waits for an RCU grace period: about 8 ms here). Opened by the
    /// parent, so the opener's credentials and cgroup namespace are the
    /// host's.
    /// With `v1` false, only the unified directory is opened (init joins
    /// the v1 cgroups later, by [`Placement::join_v1_self`]).
    fn open_join(&self, v1: bool) -> Result<Join> {
        let mut j = Join { tasks: Vec::with_capacity(self.cg.mounts.len()), unified_dir: None };
        for m in &self.cg.mounts {
            if !m.unified && !v1 {
                continue;
            }
            if m.unified {
                let f = fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
                    .open(&m.dir)
                    .map_err(|e| Error::path("open", &m.dir, e))?;
                j.unified_dir = Some(OwnedFd::from(f));
            } else {
                j.tasks.push(open_write(&m.dir.join("tasks"))?);
            }
        }
        Ok(j)
    }

    /// cgroup.procs of the v2 hierarchy, when clone3 can't place init there.
    fn open_unified_procs(&self) -> Result<Option<OwnedFd>> {
        self.cg.mounts.iter().find(|m| m.unified).map(|m| open_write(&m.dir.join("cgroup.procs"))).transpose()
    }

    /// Pids in the container's cgroup (from the first hierarchy that has any).
    fn pids(&self) -> Vec<i32> {
        for m in &self.cg.mounts {
            if let Ok(t) = fs::read_to_string(m.dir.join("cgroup.procs")) {
                let v: Vec<i32> = t.lines().filter_map(|l| l.trim().parse().ok()).collect();
                if !v.is_empty() {
                    return v;
                }
            }
        }
        Vec::new()
    }

    /// Not used by create (the directories are made before the clone), but
    /// whole: make them all and move `pid` in through cgroup.procs.
    fn place(&self, pid: i32, _r: &Resources) -> Result<()> {
        self.create_where(&|_| true)?;
        for m in &self.cg.mounts {
            fsutil::write(&m.dir, "cgroup.procs", &pid.to_string())
                .map_err(|e| Error::path("move a process into", m.dir.join("cgroup.procs"), e))?;
        }
        Ok(())
    }

    /// Remove the directories (leaf only; parents are shared). A cgroup whose
    /// last process has just exited can be busy for a moment: retry briefly.
    fn remove(&self) -> Result<()> {
        let mut first_err = None;
        for m in &self.cg.mounts {
            if let Err(e) = remove_dir_retry(&m.dir) {
                first_err.get_or_insert(Error::path("remove cgroup", &m.dir, e));
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

/// mkdir -p of the container's cgroup. A new v1 cpuset cgroup starts with
/// no cpus and no mems, and nothing can join it: copy them from the parent
/// at each level that is still empty.
fn create_dir(m: &CgroupMount) -> io::Result<()> {
    let cpuset = !m.unified && m.subsystems.iter().any(|s| s == "cpuset");
    if !cpuset {
        return fs::create_dir_all(&m.dir);
    }
    let mut dir = m.mountpoint.clone();
    // The values of the level above, once read (or written) on the way down.
    let mut above: Option<[String; 2]> = None;
    for comp in m.path.split('/').filter(|c| !c.is_empty()) {
        let parent = dir.clone();
        dir.push(comp);
        // A directory made just now is empty: no need to read it.
        let fresh = match fs::create_dir(&dir) {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => false,
            Err(e) => return Err(e),
        };
        let mut here: [String; 2] = Default::default();
        for (k, f) in ["cpuset.cpus", "cpuset.mems"].into_iter().enumerate() {
            let cur = if fresh { String::new() } else { fs::read_to_string(dir.join(f))?.trim().to_string() };
            here[k] = if cur.is_empty() {
                let v = match &above {
                    Some(a) => a[k].clone(),
                    None => fs::read_to_string(parent.join(f))?.trim().to_string(),
                };
                fs::write(dir.join(f), &v)?;
                v
            } else {
                cur
            };
        }
        above = Some(here);
    }
    Ok(())
}

/// mkdir -p on a v2-only host, with every available controller enabled in
/// the ancestors' cgroup.subtree_control (the container's own directory is
/// a leaf and enables none). A controller the kernel refuses is left out;
/// a resource that needs it then fails naming its field.
fn create_dir_v2(m: &CgroupMount) -> io::Result<()> {
    let mut dir = m.mountpoint.clone();
    let comps: Vec<&str> = m.path.split('/').filter(|c| !c.is_empty()).collect();
    for (i, comp) in comps.iter().enumerate() {
        enable_controllers(&dir)?;
        dir.push(comp);
        match fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && i + 1 < comps.len() => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn enable_controllers(dir: &Path) -> io::Result<()> {
    let avail = fs::read_to_string(dir.join("cgroup.controllers"))?;
    let on = fs::read_to_string(dir.join("cgroup.subtree_control"))?;
    let missing: Vec<&str> = avail
        .split_whitespace()
        .filter(|c| !on.split_whitespace().any(|o| o == *c))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let all: Vec<String> = missing.iter().map(|c| format!("+{c}")).collect();
    if fsutil::write(dir, "cgroup.subtree_control", &all.join(" ")).is_err() {
        for c in all {
            let _ = fsutil::write(dir, "cgroup.subtree_control", &c);
        }
    }
    Ok(())
}

fn remove_dir_retry(dir: &Path) -> io::Result<()> {
    let mut delay = std::time::Duration::from_micros(200);
    for _ in 0..40 {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                std::thread::sleep(delay);
                delay = (delay * 2).min(std::time::Duration::from_millis(50));
            }
            Err(e) => return Err(e),
        }
    }
    fs::remove_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MI: &str = "\
30 22 0:26 / /sys/fs/cgroup rw,nosuid - tmpfs tmpfs rw,mode=755
31 30 0:27 / /sys/fs/cgroup/cpu rw,relatime shared:9 - cgroup cgroup rw,cpu
32 30 0:28 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
33 30 0:29 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
34 30 0:30 / /sys/fs/cgroup/cpu\\040x rw - cgroup cgroup rw,cpuacct,release_agent=/x
";

    #[test]
    fn parses_cgroup_mounts() {
        let h = parse_mountinfo(MI);
        assert_eq!(h.len(), 4);
        assert_eq!(h[0].mountpoint, PathBuf::from("/sys/fs/cgroup/cpu"));
        assert_eq!(h[0].subsystems, vec!["cpu"]);
        assert_eq!(h[1].subsystems, vec!["name=systemd"]);
        assert!(h[2].unified);
        assert_eq!(h[3].mountpoint, PathBuf::from("/sys/fs/cgroup/cpu x"));
        assert_eq!(h[3].subsystems, vec!["cpuacct"]);
    }

    #[test]
    fn own_path_matches_controllers() {
        let cg = "4:memory:/a/b\n2:cpu,cpuacct:/c\n0::/u\n";
        let mem = Hierarchy {
            mountpoint: "/m".into(),
            subsystems: vec!["memory".into()],
            unified: false,
        };
        let cpu = Hierarchy {
            mountpoint: "/c".into(),
            subsystems: vec!["cpuacct".into(), "cpu".into()],
            unified: false,
        };
        let u = Hierarchy {
            mountpoint: "/u".into(),
            subsystems: vec![],
            unified: true,
        };
        assert_eq!(own_path(cg, &mem), "/a/b");
        assert_eq!(own_path(cg, &cpu), "/c");
        assert_eq!(own_path(cg, &u), "/u");
    }

    #[test]
    fn rdma_lines() {
        let l = resources::RdmaLimit { hca_handles: Some(3), hca_objects: None };
        assert_eq!(rdma_line("mlx5_0", &l), "mlx5_0 hca_handle=3 hca_object=max");
    }

    #[test]
    fn clean_rejects_dotdot() {
        assert_eq!(clean("a//b/./c").unwrap(), "/a/b/c");
        assert!(clean("/a/../b").is_err());
    }
}
