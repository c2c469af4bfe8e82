//! `linux.maskedPaths` and `linux.readonlyPaths`, done before the pivot
//! with every path resolved inside the rootfs.
//!
//! A masked file gets a bind of the host's /dev/null, opened and checked to
//! be the character device 1:3 first and bound from that fd: never from
//! whatever the container has at /dev/null (CVE-2025-31133). A masked
//! directory gets an empty read-only tmpfs.

use std::os::fd::{AsFd, OwnedFd};

use super::paths::{InPath, Root};
use crate::sys::{self, FdPath};
use super::{Fail, OrFail, RootfsError};

/// The host's /dev/null, verified.
fn open_dev_null() -> Result<OwnedFd, Fail> {
    let fd = sys::open(c"/dev/null", libc::O_PATH | libc::O_NOFOLLOW).or_fail(|| "open host /dev/null")?;
    let st = sys::fstat(fd.as_fd()).or_fail(|| "stat host /dev/null")?;
    if st.st_mode & libc::S_IFMT != libc::S_IFCHR || st.st_rdev != sys::makedev(1, 3) {
        return Err(Fail::Msg("the host's /dev/null is not the character device 1:3".into()));
    }
    Ok(fd)
}

pub(super) fn mask_paths(root: &Root, path: &mut InPath, paths: &[String]) -> Result<(), RootfsError> {
    let mut null: Option<OwnedFd> = None;
    each_path(root, path, "linux.maskedPaths", paths, |path, fd, st| mask_one(path, fd, st, &mut null))
}

pub(super) fn readonly_paths(root: &Root, path: &mut InPath, paths: &[String]) -> Result<(), RootfsError> {
    each_path(root, path, "linux.readonlyPaths", paths, |path, fd, st| readonly_one(root, path, fd, st))
}

/// `one` on each of `paths` (config field `field`, named in errors) that
/// exists in the rootfs, with its O_PATH fd and its stat.
fn each_path(
    root: &Root,
    path: &mut InPath,
    field: &str,
    paths: &[String],
    mut one: impl FnMut(&InPath, OwnedFd, libc::stat) -> Result<(), Fail>,
) -> Result<(), RootfsError> {
    for (i, p) in paths.iter().enumerate() {
        let mut each = || {
            path.set(p.as_bytes()).or_fail(|| "path contains a NUL byte")?;
            let fd = match root.resolve(path.as_cstr(), libc::O_PATH) {
                Ok(fd) => fd,
                Err(e) if sys::errno(&e) == libc::ENOENT => return Ok(()),
                Err(e) => return Err(Fail::Os(format!("open {} in rootfs", path.show()), e)),
            };
            let st = sys::fstat(fd.as_fd()).or_fail(|| format!("stat {}", path.show()))?;
            one(path, fd, st)
        };
        each().map_err(|f| f.at(format_args!("{field}[{i}] ({p})")))?;
    }
    Ok(())
}

fn mask_one(path: &InPath, fd: OwnedFd, st: libc::stat, null: &mut Option<OwnedFd>) -> Result<(), Fail> {
    let target = FdPath::new(&fd);
    if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
        let flags = libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
        sys::mount(Some(c"tmpfs"), target.as_cstr(), Some(c"tmpfs"), flags, None)
            .or_fail(|| format!("mount read-only tmpfs over {}", path.show()))
    } else {
        let null = match null {
            Some(fd) => fd,
            None => null.insert(open_dev_null()?),
        };
        sys::mount(Some(FdPath::new(null).as_cstr()), target.as_cstr(), None, libc::MS_BIND, None)
            .or_fail(|| format!("mount bind /dev/null over {}", path.show()))
    }
}

fn readonly_one(root: &Root, path: &InPath, fd: OwnedFd, st: libc::stat) -> Result<(), Fail> {
    let fp = FdPath::new(&fd);
    sys::mount(Some(fp.as_cstr()), fp.as_cstr(), None, libc::MS_BIND | libc::MS_REC, None)
        .or_fail(|| format!("bind {} onto itself", path.show()))?;
    // The fd still names the file under the new mount: re-open, and check
    // it is the bind (same inode), before the remount.
    let m = root.resolve(path.as_cstr(), libc::O_PATH).or_fail(|| format!("reopen {} after mount", path.show()))?;
    let mst = sys::fstat(m.as_fd()).or_fail(|| format!("stat {}", path.show()))?;
    if mst.st_dev != st.st_dev || mst.st_ino != st.st_ino {
        return Err(Fail::Msg(format!("{} changed while it was being mounted", path.show())));
    }
    sys::make_readonly(m.as_fd()).or_fail(|| format!("remount {} read-only", path.show()))
}
