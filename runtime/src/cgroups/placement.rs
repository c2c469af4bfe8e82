//! Cgroup placement: where the container's cgroups are, how they are made
//! and removed, and how init and exec processes get into them. The
//! resource side (limits, freezer, stats) is the [`Driver`] a placement
//! hands out.
//!
//! [`ContainerCgroups`] is the record (state.json's `cgroups`): the
//! container's directory in every hierarchy, the applied resources and,
//! for any placement but the default one, its [`PlacementKind`]. The kind
//! picks the implementation of [`Placement`] each time the record is used
//! ([`ContainerCgroups::placement`]): [`Cgroupfs`] (`mod.rs`) makes the
//! directories itself before init's clone; the systemd placement
//! ([`super::scope::Scope`], `--systemd-cgroup`, `slice:prefix:name` paths)
//! has systemd make a transient unit with init's pid after the clone
//! ([`Placement::by_pid`]).

use std::os::fd::OwnedFd;

use super::resources::Resources;
use super::{CgroupMount, Cgroupfs, ContainerCgroups, Join};
use crate::error::Result;

/// How a container's cgroups are placed. Recorded in state.json only
/// when it is not the default, so the record of a cgroupfs container is
/// the same JSON as before the field existed, for old and new berth.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlacementKind {
    /// berth makes the directories in each mounted hierarchy.
    #[default]
    Cgroupfs,
    /// systemd makes a transient unit (`--systemd-cgroup`).
    Systemd,
}

impl PlacementKind {
    /// For `skip_serializing_if`.
    pub fn is_default(&self) -> bool {
        *self == PlacementKind::default()
    }

    /// Where the container's cgroups go, from linux.cgroupsPath (None or
    /// empty: the default place for `id`).
    pub fn resolve(self, cgroups_path: Option<&str>, id: &str) -> Result<ContainerCgroups> {
        match self {
            PlacementKind::Cgroupfs => Cgroupfs::resolve(cgroups_path, id),
            PlacementKind::Systemd => super::scope::resolve(cgroups_path, id),
        }
    }
}

/// What a placement does with a container's cgroups. Every method works on
/// the record it was made from, so it can run in any later berth process
/// (`delete`, `exec`, the shim).
pub trait Placement {
    /// Create the directories of the hierarchies `pick` selects (all, or
    /// the unified one before init's clone and the rest while init makes
    /// its network namespace). On failure, what this call made is removed.
    fn create_where(&self, pick: &dyn Fn(&CgroupMount) -> bool) -> Result<()>;
    /// Open what a new process needs to join: the v1 `tasks` files, and
    /// the v2 directory for clone3's CLONE_INTO_CGROUP. With `v1` false,
    /// only the v2 directory (the process joins v1 later, by
    /// [`Placement::join_v1_self`]).
    fn open_join(&self, v1: bool) -> Result<Join>;
    /// The v2 `cgroup.procs`, for when clone3 cannot place a process.
    fn open_unified_procs(&self) -> Result<Option<OwnedFd>>;
    /// Move the calling thread into the v1 cgroups.
    fn join_v1_self(&self) -> Result<()>;
    /// Pids in the container's cgroup (leftovers to kill on delete).
    fn pids(&self) -> Vec<i32>;
    /// Remove the container's cgroups (after its processes are gone).
    fn remove(&self) -> Result<()>;
    /// Whether the cgroups are made with init's pid, after the clone
    /// ([`Placement::place`]) instead of before it.
    fn by_pid(&self) -> bool {
        false
    }
    /// Make the cgroups with `pid` (init, cloned into berth's own cgroup
    /// and waiting) in them, `r` given to whoever keeps resources besides
    /// the files (systemd's unit properties). On failure, the caller
    /// removes what was made ([`Placement::remove`]).
    fn place(&self, pid: i32, r: &Resources) -> Result<()>;
    /// Make `r` what the placement can keep (systemd keeps a CPU quota in
    /// whole percents of a CPU): before the files are written, so the
    /// files and the placement agree. Nothing for cgroupfs.
    fn adjust(&self, _r: &mut Resources) {}
    /// `update`: `r` (all of the container's resources) to whoever keeps
    /// them besides the files. Nothing for cgroupfs.
    fn update(&self, _r: &Resources) -> Result<()> {
        Ok(())
    }
}
// The resource Driver (limits, freezer, stats) is picked by the hierarchy
// layout (`ContainerCgroups::driver`), not by the placement: a systemd
// placement writes unit properties at create and update besides it.

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::Resources;
    use std::fs;

    fn record(kind: PlacementKind) -> ContainerCgroups {
        ContainerCgroups {
            placement: kind,
            systemd: None,
            mounts: vec![CgroupMount {
                mountpoint: "/sys/fs/cgroup/cpu".into(),
                subsystems: vec!["cpu".into()],
                unified: false,
                path: "/berth/c1".into(),
                dir: "/sys/fs/cgroup/cpu/berth/c1".into(),
            }],
            resources: Resources::default(),
        }
    }

    /// The JSON berth wrote before placements existed.
    const OLD: &str = r#"{"mounts":[{"mountpoint":"/sys/fs/cgroup/cpu","subsystems":["cpu"],"unified":false,"path":"/berth/c1","dir":"/sys/fs/cgroup/cpu/berth/c1"}]}"#;

    #[test]
    fn cgroupfs_records_the_same_json_as_before() {
        assert_eq!(serde_json::to_string(&record(PlacementKind::Cgroupfs)).unwrap(), OLD);
        let back: ContainerCgroups = serde_json::from_str(OLD).unwrap();
        assert_eq!(back.placement, PlacementKind::Cgroupfs);
        assert_eq!(back.mounts, record(PlacementKind::Cgroupfs).mounts);
    }

    #[test]
    fn a_recorded_kind_is_read_back_and_unknown_ones_refused() {
        let with_kind = OLD.replacen('{', r#"{"placement":"cgroupfs","#, 1);
        let back: ContainerCgroups = serde_json::from_str(&with_kind).unwrap();
        assert_eq!(back.placement, PlacementKind::Cgroupfs);
        let other = OLD.replacen('{', r#"{"placement":"elsewhere","#, 1);
        let e = serde_json::from_str::<ContainerCgroups>(&other).unwrap_err().to_string();
        assert!(e.contains("elsewhere"), "{e}");
    }

    #[test]
    fn the_record_picks_its_placement() {
        let r = record(PlacementKind::Cgroupfs);
        // No such directory here: pids come back empty, remove is a no-op
        // for a cgroup that is already gone.
        assert!(r.placement().pids().is_empty());
        assert!(r.placement().remove().is_ok());
        assert!(!r.is_v2());
    }

    #[test]
    fn systemd_paths_are_refused_by_cgroupfs() {
        let e = PlacementKind::Cgroupfs.resolve(Some("system.slice:berth:c1"), "c1").unwrap_err().to_string();
        assert!(e.contains("linux.cgroupsPath") && e.contains("--systemd-cgroup"), "{e}");
    }

    #[test]
    fn systemd_needs_a_systemd_host() {
        // This host (no systemd as pid 1) is refused before anything is
        // made; a bad path is a config error first.
        if super::super::scope::running() {
            return crate::test_skip::skip(crate::test_skip::HOST, "this host runs systemd");
        }
        let e = PlacementKind::Systemd.resolve(Some("system.slice:berth:c1"), "c1").unwrap_err().to_string();
        assert!(e.contains("systemd is not running"), "{e}");
        let e = PlacementKind::Systemd.resolve(Some("/a/b"), "c1").unwrap_err().to_string();
        assert!(e.contains("linux.cgroupsPath") && e.contains("slice:prefix:name"), "{e}");
    }

    /// Removes the test's cgroups even when an assertion fails.
    struct Cleanup<'a>(&'a ContainerCgroups);

    impl Drop for Cleanup<'_> {
        fn drop(&mut self) {
            let _ = self.0.placement().remove();
            for m in &self.0.mounts {
                // The test's parent, `berth-unit`, if nothing else is in it.
                let _ = m.dir.parent().map(fs::remove_dir);
            }
        }
    }

    /// The cgroupfs placement on this host's real hierarchies: resolve,
    /// create, join handles, a process joined and listed, remove.
    #[test]
    fn cgroupfs_places_a_process_and_cleans_up() {
        // SAFETY: geteuid takes no argument.
        if unsafe { libc::geteuid() } != 0 {
            return crate::test_skip::skip(crate::test_skip::ROOT, "making cgroups needs root");
        }
        let id = format!("placement-test-{}", std::process::id());
        let cg = PlacementKind::Cgroupfs.resolve(Some(&format!("/berth-unit/{id}")), &id).unwrap();
        if cg.mounts.is_empty() {
            return crate::test_skip::skip(crate::test_skip::CGROUP_V1, "no cgroup hierarchy mounted");
        }
        let _cleanup = Cleanup(&cg);
        let p = cg.placement();
        p.create_where(&|_| true).unwrap();
        assert!(cg.mounts.iter().all(|m| m.dir.is_dir() && m.dir.ends_with(format!("berth-unit/{id}"))));
        let j = p.open_join(true).unwrap();
        assert_eq!(j.tasks.len(), cg.mounts.iter().filter(|m| !m.unified).count());
        assert_eq!(j.unified_dir.is_some(), cg.mounts.iter().any(|m| m.unified));
        assert!(p.pids().is_empty());
        // A real process in the first hierarchy's cgroup is listed.
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let first = &cg.mounts[0];
        let moved = fs::write(first.dir.join("cgroup.procs"), child.id().to_string());
        let listed = p.pids();
        let _ = child.kill();
        let _ = child.wait();
        moved.unwrap();
        assert_eq!(listed, [child.id() as i32]);
        // Once it is gone, the directories go.
        p.remove().unwrap();
        assert!(cg.mounts.iter().all(|m| !m.dir.exists()));
    }
}
