//! Id-mapped mounts (`idmap`, `ridmap`, `uidMappings`/`gidMappings` on a
//! mount; config.md "Mounts").
//!
//! Prepared by berth itself before init is cloned, in the runtime's mount,
//! user and pid namespaces, where it has every privilege the kernel asks for
//! (CAP_SYS_ADMIN over the source filesystem):
//!
//! ```text
//!   user namespace fd   a short-lived child in a new user namespace; berth
//!                       writes the mount's mappings to its uid_map/gid_map,
//!                       opens /proc/PID/ns/user and lets it exit
//!   open_tree(src, OPEN_TREE_CLONE [| AT_RECURSIVE for rbind])
//!                       a detached copy of the source (tree)
//!   mount_setattr(MOUNT_ATTR_IDMAP, userns) [AT_RECURSIVE for ridmap]
//! ```
//!
//! The detached mounts reach init through its copy of berth's fd table;
//! init moves each onto its destination (`move_mount` onto the fd of the
//! destination resolved inside the rootfs, see `mounts`), then applies the
//! mount's other options as for any bind. Configs without such mounts pay one
//! scan of `mounts[]` options.
//!
//! The mappings are the mount's own; without them, those of the container's
//! new user namespace (`linux.uidMappings`/`gidMappings`, as the spec allows);
//! with neither, create fails.

use std::ffi::CString;
use std::fs;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use oci_spec::runtime::{LinuxIdMapping, Mount, Spec};

use super::options::{Idmap, MountOptions};
use crate::sys::{self, MountAttr};
use super::RootfsError;

/// Detached id-mapped mounts, by index in `mounts[]`.
#[derive(Debug, Default)]
pub struct IdmappedMounts {
    fds: Vec<(usize, OwnedFd)>,
}

impl IdmappedMounts {
    /// The detached mount prepared for `mounts[index]`.
    pub fn get(&self, index: usize) -> Option<BorrowedFd<'_>> {
        self.fds.iter().find(|(i, _)| *i == index).map(|(_, fd)| fd.as_fd())
    }
}

/// True when `mounts[i]` asks for an id-mapped mount.
pub fn wants_idmap(m: &Mount) -> bool {
    m.uid_mappings().is_some()
        || m.gid_mappings().is_some()
        || m.options()
            .as_ref()
            .is_some_and(|o| o.iter().any(|s| s == "idmap" || s == "ridmap"))
}

/// One id-mapped mount, checked: what [`prepare`] makes at launch time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdmapMount {
    /// Index in `mounts[]`.
    pub index: usize,
    /// `mounts[index].destination`, for messages.
    pub destination: std::path::PathBuf,
    /// The bind source, absolute.
    pub source: std::path::PathBuf,
    /// `rbind`: clone the whole tree.
    pub recursive_tree: bool,
    /// `ridmap`: map every mount of the tree.
    pub recursive: bool,
    /// The user namespace's maps, as written to uid_map and gid_map.
    pub uid_map: String,
    pub gid_map: String,
}

/// Check the id-mapped mounts of `spec` (before anything is created) and
/// return what [`prepare`] needs. `userns`: the container gets a new user
/// namespace (its mappings are the default ones).
pub fn plan(spec: &Spec, bundle: &Path, userns: bool) -> Result<Vec<IdmapMount>, RootfsError> {
    let Some(mounts) = spec.mounts() else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    for (i, m) in mounts.iter().enumerate() {
        if !wants_idmap(m) {
            continue;
        }
        let cfg = |msg: String| RootfsError::Config { at: format!("mounts[{i}] ({})", m.destination().display()), msg };
        let opts = MountOptions::parse(m.options().as_deref().unwrap_or(&[])).map_err(cfg)?;
        if !(opts.is_bind() || m.typ().as_deref() == Some("bind")) {
            return Err(cfg(
                "id-mapped mounts (idmap, ridmap, uidMappings) are supported on bind mounts only".into(),
            ));
        }
        if opts.flags & libc::MS_REMOUNT != 0 {
            return Err(cfg("an id-mapped mount cannot be a remount".into()));
        }
        let (uids, gids) = mappings(spec, m, userns).map_err(cfg)?;
        let src = m.source().as_deref().ok_or_else(|| cfg("bind mount without a source".into()))?;
        let source = if src.is_absolute() { src.to_path_buf() } else { bundle.join(src) };
        if source.as_os_str().as_bytes().contains(&0) {
            return Err(cfg("source contains a NUL byte".into()));
        }
        out.push(IdmapMount {
            index: i,
            destination: m.destination().clone(),
            source,
            recursive_tree: opts.flags & libc::MS_REC != 0,
            recursive: opts.idmap == Idmap::Recursive,
            uid_map: crate::host::map_text(uids),
            gid_map: crate::host::map_text(gids),
        });
    }
    Ok(out)
}

/// Make the detached id-mapped mounts [`plan`] checked (None when there
/// are none).
pub fn prepare(planned: &[IdmapMount]) -> Result<Option<IdmappedMounts>, RootfsError> {
    if planned.is_empty() {
        return Ok(None);
    }
    let mut out = IdmappedMounts::default();
    let mut namespaces: Vec<(String, OwnedFd)> = Vec::new();
    for p in planned {
        let src = &p.source;
        let at = || format!("mounts[{}] ({})", p.index, p.destination.display());
        let os = |op: String, e: io::Error| RootfsError::Os { at: at(), op, source: e };
        let key = format!("{}\n--\n{}", p.uid_map, p.gid_map);
        let ns = match namespaces.iter().position(|(k, _)| *k == key) {
            Some(n) => n,
            None => {
                let fd = userns_fd(&p.uid_map, &p.gid_map)
                    .map_err(|e| os("make a user namespace with the mount's mappings".into(), e))?;
                namespaces.push((key, fd));
                namespaces.len() - 1
            }
        };
        let csrc = CString::new(src.as_os_str().as_bytes())
            .map_err(|_| RootfsError::Config { at: at(), msg: "source contains a NUL byte".into() })?;
        let tree =
            sys::open_tree_clone(&csrc, p.recursive_tree).map_err(|e| os(format!("open_tree {}", src.display()), e))?;
        sys::mount_setattr(tree.as_fd(), p.recursive, MountAttr::idmap(namespaces[ns].1.as_fd()))
            .map_err(|e| os(format!("mount_setattr(MOUNT_ATTR_IDMAP) on {}", src.display()), e))?;
        out.fds.push((p.index, tree));
    }
    Ok(Some(out))
}

/// The mount's mappings, else the container's (with a new user namespace).
fn mappings<'a>(spec: &'a Spec, m: &'a Mount, userns: bool) -> Result<(&'a [LinuxIdMapping], &'a [LinuxIdMapping]), String> {
    match (m.uid_mappings(), m.gid_mappings()) {
        (Some(u), Some(g)) if !u.is_empty() && !g.is_empty() => return Ok((u, g)),
        (Some(_), Some(_)) => return Err("uidMappings and gidMappings must not be empty".into()),
        (Some(_), None) => return Err("uidMappings is given without gidMappings".into()),
        (None, Some(_)) => return Err("gidMappings is given without uidMappings".into()),
        (None, None) => {}
    }
    let linux = spec.linux().as_ref();
    let u = linux.and_then(|l| l.uid_mappings().as_deref()).unwrap_or(&[]);
    let g = linux.and_then(|l| l.gid_mappings().as_deref()).unwrap_or(&[]);
    if userns && !u.is_empty() && !g.is_empty() {
        return Ok((u, g));
    }
    Err("an id-mapped mount needs uidMappings and gidMappings on the mount, or a new user namespace with linux.uidMappings and linux.gidMappings".into())
}

/// A user namespace with these uid and gid maps: a child that waits in a
/// new user namespace until its maps are written and the namespace opened.
fn userns_fd(uid_map: &str, gid_map: &str) -> io::Result<OwnedFd> {
    let mut fds = [0; 2];
    // SAFETY: fds is an array of two ints.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 returned two new fds we own.
    let (rd, wr) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: berth is single-threaded here; the child only blocks in
    // read(2) and _exits.
    let pid = match unsafe { crate::sys::clone_fork(libc::CLONE_NEWUSER as u64, None)? } {
        crate::sys::Forked::Child => {
            drop(wr);
            let mut b = 0u8;
            // SAFETY: one byte into a local; returns at EOF.
            unsafe {
                libc::read(rd.as_raw_fd(), (&mut b as *mut u8).cast(), 1);
                libc::_exit(0)
            }
        }
        crate::sys::Forked::Parent { pid, .. } => pid,
    };
    drop(rd);
    let r = (|| {
        for (file, text) in [("uid_map", uid_map), ("gid_map", gid_map)] {
            let p = format!("/proc/{pid}/{file}");
            // One write(2): the kernel takes the map whole.
            fs::OpenOptions::new()
                .write(true)
                .open(&p)
                .and_then(|mut f| f.write_all(text.as_bytes()))
                .map_err(|e| io::Error::new(e.kind(), format!("write {p}: {e}")))?;
        }
        let p = format!("/proc/{pid}/ns/user");
        fs::File::open(&p)
            .map(OwnedFd::from)
            .map_err(|e| io::Error::new(e.kind(), format!("open {p}: {e}")))
    })();
    drop(wr);
    let mut status = 0;
    // SAFETY: our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    r
}
