//! Where berth run rootless has cgroups (issue 16), as runc and crun have
//! them:
//!
//! * `--systemd-cgroup`: the user's own systemd instance (user@UID.service,
//!   on the user's bus) makes the container's scope, in `user.slice` by
//!   default. Its cgroup is under the manager's own cgroup
//!   (`/user.slice/user-1000.slice/user@1000.service/user.slice/runc-ID.scope`):
//!   berth asks the manager for its `ControlGroup` here, at the plan stage,
//!   so the record (state.json) has the directories before the unit exists.
//!   cgroup v2 only: a user's instance is delegated a v2 subtree only.
//! * cgroupfs on cgroup v2 where the user may write (a delegated subtree:
//!   berth inside `systemd-run --user --scope`, or a cgroup chowned to the
//!   user): berth makes the container's cgroup there itself, as runc does
//!   for rootless + v2 + a writable cgroup. Without a cgroupsPath the
//!   container's cgroup is `berth-ID` next to berth's own cgroup when that is
//!   a `.scope` (runc's rule: a scope has processes, berth's own, and the v2
//!   "no internal processes" rule keeps a cgroup with processes from
//!   enabling controllers for its children), else under it.
//! * Otherwise (cgroup v1, or no cgroup the user may write): no cgroup; the
//!   plan skips the resources with one warning.
//!
//! Only the controllers the subtree is delegated are there (Debian 12's
//! user@.service: `Delegate=pids memory cpu`); a limit of another one fails
//! naming its field, as runc fails (the cgroupfs driver's write errors).

use std::path::Path;

use super::resources::Resources;
use super::{clean, own_path, CgroupMount, ContainerCgroups, Hierarchy, PlacementKind};
use crate::error::{Error, Result};

/// The container's cgroups for berth rootless, placed by `kind`.
pub(super) fn resolve(kind: PlacementKind, cgroups_path: Option<&str>, id: &str) -> Result<ContainerCgroups> {
    let hs = super::hierarchies()?;
    let unified = match &hs[..] {
        [h] if h.unified => Some(h),
        _ => None,
    };
    match (kind, unified) {
        (PlacementKind::Systemd, Some(h)) => super::scope::resolve_user(cgroups_path, id, h),
        (PlacementKind::Systemd, None) => Err(Error::Unsupported(
            "--systemd-cgroup: berth runs rootless, and the user's systemd instance is delegated cgroups on \
             cgroup v2 only; this host has cgroup v1 hierarchies: run without --systemd-cgroup (the container \
             then runs without limits) or as root"
                .into(),
        )),
        (PlacementKind::Cgroupfs, Some(h)) => delegated(cgroups_path, id, h),
        (PlacementKind::Cgroupfs, None) => Ok(ContainerCgroups::default()),
    }
}

/// cgroupfs on cgroup v2: the container's cgroup where the user may make
/// it and move init into it, else none.
fn delegated(cgroups_path: Option<&str>, id: &str, h: &Hierarchy) -> Result<ContainerCgroups> {
    let own_text =
        std::fs::read_to_string("/proc/self/cgroup").map_err(|e| Error::path("read", "/proc/self/cgroup", e))?;
    let own = own_path(&own_text, h);
    let path = container_path(cgroups_path, id, &own)?;
    if let Err(why) = writable(&h.mountpoint, &own, &path) {
        log::debug!("rootless: no cgroup for {id}: {why}");
        return Ok(ContainerCgroups::default());
    }
    Ok(ContainerCgroups {
        placement: PlacementKind::Cgroupfs,
        mounts: vec![CgroupMount::unified(h, path)],
        systemd: None,
        resources: Resources::default(),
    })
}

/// The container's cgroup path rootless: an absolute cgroupsPath as is, a
/// relative one under berth's own cgroup `own`, none `berth-ID` next to
/// `own` when it is a scope, else under it.
pub(super) fn container_path(cgroups_path: Option<&str>, id: &str, own: &str) -> Result<String> {
    let path = match cgroups_path {
        Some(p) if p.contains(':') && !p.starts_with('/') => {
            return Err(Error::config(
                "linux.cgroupsPath",
                format!("\"{p}\" looks like a systemd slice:prefix:name path: use the systemd cgroup driver (--systemd-cgroup)"),
            ))
        }
        None | Some("") => {
            let base = match own.rsplit_once('/') {
                Some((parent, leaf)) if leaf.ends_with(".scope") => parent,
                _ => own,
            };
            clean(&format!("{base}/berth-{id}"))?
        }
        Some(p) if p.starts_with('/') => clean(p)?,
        Some(p) => clean(&format!("{own}/{p}"))?,
    };
    if path == "/" {
        return Err(Error::config("linux.cgroupsPath", "must not be the root cgroup"));
    }
    Ok(path)
}

/// The kernel's rules for a user making the cgroup at `path` and moving a
/// process from its own cgroup `own` there: write access to the deepest
/// directory of `path` that exists (to make the rest) and to the
/// `cgroup.procs` of the closest common ancestor of the two.
fn writable(mountpoint: &Path, own: &str, path: &str) -> std::result::Result<(), String> {
    let at = |p: &str| mountpoint.join(p.trim_start_matches('/'));
    let mut existing = path;
    while !at(existing).is_dir() {
        existing = match existing.rsplit_once('/') {
            Some(("", _)) | None => "/",
            Some((parent, _)) => parent,
        };
    }
    let common = common_ancestor(own, path);
    for (p, what) in [(at(existing), "make the container's cgroup in"), (at(&common).join("cgroup.procs"), "move init through")] {
        nix::unistd::access(&p, nix::unistd::AccessFlags::W_OK)
            .map_err(|e| format!("cannot {what} {}: {e}", p.display()))?;
    }
    Ok(())
}

/// The closest common ancestor of two clean cgroup paths.
pub(super) fn common_ancestor(a: &str, b: &str) -> String {
    let same: Vec<&str> = a
        .split('/')
        .zip(b.split('/'))
        .take_while(|(x, y)| x == y)
        .map(|(x, _)| x)
        .filter(|c| !c.is_empty())
        .collect();
    format!("/{}", same.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCOPE: &str = "/user.slice/user-1000.slice/user@1000.service/app.slice/run-r1.scope";

    #[test]
    fn the_default_place_is_next_to_berths_scope() {
        assert_eq!(
            container_path(None, "c1", SCOPE).unwrap(),
            "/user.slice/user-1000.slice/user@1000.service/app.slice/berth-c1"
        );
        // Not a scope (a cgroup chowned to the user): under it.
        assert_eq!(container_path(Some(""), "c1", "/mine").unwrap(), "/mine/berth-c1");
        assert_eq!(container_path(Some("/a/b"), "c1", SCOPE).unwrap(), "/a/b");
        assert_eq!(container_path(Some("x/y"), "c1", "/mine").unwrap(), "/mine/x/y");
        let e = container_path(Some("user.slice:berth:c1"), "c1", SCOPE).unwrap_err().to_string();
        assert!(e.contains("linux.cgroupsPath") && e.contains("--systemd-cgroup"), "{e}");
        assert!(container_path(Some("/"), "c1", SCOPE).is_err());
        assert!(container_path(Some("../x"), "c1", SCOPE).is_err());
    }

    #[test]
    fn common_ancestors() {
        let next = "/user.slice/user-1000.slice/user@1000.service/app.slice/berth-c1";
        assert_eq!(common_ancestor(SCOPE, next), "/user.slice/user-1000.slice/user@1000.service/app.slice");
        assert_eq!(common_ancestor("/a/bc", "/a/b"), "/a");
        assert_eq!(common_ancestor("/", "/a"), "/");
        assert_eq!(common_ancestor("/a", "/a/b"), "/a");
    }

    /// Real directories: a tree the caller may write, and the checks on it
    /// (as root everything is writable: the refusal is checked as nobody
    /// elsewhere, in the rootless integration tests).
    #[test]
    fn writable_finds_the_deepest_existing_directory() {
        let root = std::env::temp_dir().join(format!("berth-rootless-cg-{}", std::process::id()));
        std::fs::create_dir_all(root.join("a/s.scope")).unwrap();
        std::fs::write(root.join("a/cgroup.procs"), "").unwrap();
        let r = writable(&root, "/a/s.scope", "/a/berth-c1/x");
        let missing = writable(&root, "/a/s.scope", "/b/c");
        let _ = std::fs::remove_dir_all(&root);
        r.unwrap();
        // The common ancestor is the root here, which has no cgroup.procs.
        let e = missing.unwrap_err();
        assert!(e.contains("move init through") && e.ends_with("No such file or directory"), "{e}");
    }
}
