//! Containers without a mount namespace of their own (no `mount` entry in
//! `linux.namespaces`: config-linux.md says the container then inherits
//! the runtime's). Everything is mounted in the runtime's mount namespace,
//! usually the host's, so the setup must not touch anything of the host's:
//!
//! ```text
//!   berth, before the clone   open_tree(rootfs, CLONE | RECURSIVE)
//!                             mount_setattr(propagation = private, recursive)
//!                             statx ids of the detached bind, move_mount onto
//!                             the rootfs, private again (attached under a
//!                             shared mount it joins the peer group); record
//!                             it (rootfs-bind.json, then state.json)
//!   init (same namespace)     checks the rootfs is that private mount, then
//!                             mounts[], devices, masked/readonly paths under
//!                             it exactly as usual (paths resolved inside it),
//!                             then chroot (never pivot_root, which would move
//!                             the root of every process in the namespace)
//!   delete, or a failed       one lazy unmount of the bind, after checking
//!   create                    that the mount on the rootfs is still ours
//! ```
//!
//! The bind is private before anything is mounted under it, so none of the
//! container's mounts reach the host's peer groups (the kernel may copy the
//! bare bind onto peers of the rootfs's mount when it is attached; the lazy
//! unmount propagates to them too); the propagation of "/" and of the
//! rootfs's parent mount is never changed (an explicit
//! `linux.rootfsPropagation` is refused by validation). The container's
//! processes are chrooted, not pivoted: with CAP_SYS_CHROOT a process can
//! leave a chroot and reach the host's mount table (see README, Security).

use std::ffi::CString;
use std::fs;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::paths::Root;
use crate::mountinfo;
use crate::sys;
use super::{Fail, OrFail, RootfsError};
use crate::error::{Error, Result};

/// The record of the bind in the state dir, written right after the bind
/// (before state.json exists), so that `delete` of a create that died
/// half-way still finds it.
pub const RECORD_FILE: &str = "rootfs-bind.json";

const STATX_MNT_ID: libc::c_uint = 0x1000;
const STATX_MNT_ID_UNIQUE: libc::c_uint = 0x4000;
const STATX_ATTR_MOUNT_ROOT: u64 = 0x2000;

/// What `delete` needs to remove the bind: where it is, which mount it is,
/// and in which mount namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RootfsBind {
    pub path: PathBuf,
    /// The mount id as /proc/self/mountinfo shows it (STATX_MNT_ID).
    pub mount_id: u64,
    /// The 64-bit id that is never reused (STATX_MNT_ID_UNIQUE, Linux
    /// 6.8); None on older kernels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unique_id: Option<u64>,
    /// Inode of the mount namespace (/proc/self/ns/mnt) it was made in.
    pub mnt_ns: u64,
}

/// The bind made by [`bind`]: unmounted when dropped, unless disarmed.
#[derive(Debug)]
pub struct Bound {
    rec: Option<RootfsBind>,
}

impl Bound {
    pub fn record(&self) -> &RootfsBind {
        self.rec.as_ref().expect("armed")
    }

    /// Keep the bind (create succeeded): `delete` removes it.
    pub fn disarm(mut self) -> RootfsBind {
        self.rec.take().expect("armed")
    }
}

impl Drop for Bound {
    fn drop(&mut self) {
        if let Some(rec) = self.rec.take() {
            if let Err(e) = unmount(&rec) {
                log::warn!("cleanup after failed create: {e}");
            }
        }
    }
}

struct Ids {
    mount_id: u64,
    unique_id: Option<u64>,
    mount_root: bool,
}

fn statx_fd(fd: BorrowedFd, mask: libc::c_uint) -> io::Result<libc::statx> {
    let mut st = MaybeUninit::<libc::statx>::zeroed();
    // SAFETY: valid fd, empty path with AT_EMPTY_PATH, st written on success.
    let r = unsafe {
        libc::statx(
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            mask,
            st.as_mut_ptr(),
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: initialised (zeroed, then filled by the kernel).
    Ok(unsafe { st.assume_init() })
}

fn ids(fd: BorrowedFd) -> io::Result<Ids> {
    let st = statx_fd(fd, STATX_MNT_ID)?;
    if st.stx_mask & STATX_MNT_ID == 0 {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "statx gives no mount id (Linux 5.8 or later needed)",
        ));
    }
    let unique = statx_fd(fd, STATX_MNT_ID_UNIQUE)?;
    Ok(Ids {
        mount_id: st.stx_mnt_id,
        unique_id: (unique.stx_mask & STATX_MNT_ID_UNIQUE != 0).then_some(unique.stx_mnt_id),
        mount_root: st.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT != 0
            && st.stx_attributes & STATX_ATTR_MOUNT_ROOT != 0,
    })
}

/// Make the mount tree `tree` is the root of private (mount_setattr).
fn set_private(tree: BorrowedFd) -> io::Result<()> {
    sys::mount_setattr(tree, true, sys::MountAttr::propagation(libc::MS_PRIVATE))
}

fn mnt_ns() -> io::Result<u64> {
    fs::metadata("/proc/self/ns/mnt").map(|m| m.ino())
}

/// Bind the rootfs onto itself, private (recursively) before it is
/// attached, and record it in `state_dir`. Runs in berth before init is
/// cloned. The returned guard unmounts it if create fails.
pub fn bind(rootfs: &Path, state_dir: &Path) -> Result<Bound> {
    let at = || format!("root.path ({})", rootfs.display());
    let os = |op: &str, e: io::Error| {
        Error::from(RootfsError::Os {
            at: at(),
            op: op.into(),
            source: e,
        })
    };
    let c = CString::new(rootfs.as_os_str().as_bytes()).map_err(|_| {
        Error::from(RootfsError::Config {
            at: at(),
            msg: "contains a NUL byte".into(),
        })
    })?;
    let tree = sys::open_tree_clone(&c, true).map_err(|e| os("open_tree (a detached bind of the rootfs)", e))?;
    set_private(tree.as_fd())
        .map_err(|e| os("make the detached bind private (mount_setattr)", e))?;
    let id = ids(tree.as_fd()).map_err(|e| os("statx the detached bind", e))?;
    let rec = RootfsBind {
        path: rootfs.to_path_buf(),
        mount_id: id.mount_id,
        unique_id: id.unique_id,
        mnt_ns: mnt_ns().map_err(|e| Error::path("stat", "/proc/self/ns/mnt", e))?,
    };
    let target = sys::open(&c, libc::O_PATH | libc::O_DIRECTORY).map_err(|e| os("open", e))?;
    sys::move_mount_onto(tree.as_fd(), target.as_fd())
        .map_err(|e| os("move_mount the bind onto the rootfs", e))?;
    let bound = Bound { rec: Some(rec) };
    // From here on the guard removes the bind on any error. A tree attached
    // under a shared mount joins its peer group (the kernel's rule): make
    // it private again, before anything is mounted under it.
    set_private(tree.as_fd()).map_err(|e| os("make the rootfs bind private (mount_setattr)", e))?;
    let json = serde_json::to_vec(bound.record()).map_err(|e| Error::encode("the rootfs bind record", e))?;
    let file = state_dir.join(RECORD_FILE);
    fs::write(&file, json).map_err(|e| Error::path("write", file, e))?;
    log::debug!(
        "rootfs bind {:?} in mount namespace {}",
        bound.record(),
        bound.record().mnt_ns
    );
    Ok(bound)
}

/// The record written by [`bind`] into a state dir, if any.
pub fn read_record(state_dir: &Path) -> Result<Option<RootfsBind>> {
    let file = state_dir.join(RECORD_FILE);
    match fs::read(&file) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| Error::path("parse", file, io::Error::new(io::ErrorKind::InvalidData, e))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::path("read", file, e)),
    }
}

/// Remove the bind (and everything mounted under it) with one lazy
/// unmount, if the mount on `rec.path` is still the one berth made. A bind
/// that is already gone is fine; one covered by another mount, or made in
/// another mount namespace, is an error (nothing is unmounted).
pub fn unmount(rec: &RootfsBind) -> Result<()> {
    let ns = mnt_ns().map_err(|e| Error::path("stat", "/proc/self/ns/mnt", e))?;
    if ns != rec.mnt_ns {
        return Err(Error::WrongState(format!(
            "the container's rootfs bind on {} is in mount namespace mnt:[{}], but berth runs in mnt:[{ns}]: \
             run delete in that namespace",
            rec.path.display(),
            rec.mnt_ns
        )));
    }
    let c = CString::new(rec.path.as_os_str().as_bytes())
        .map_err(|e| Error::path("open", &rec.path, e.into()))?;
    let fd = match sys::open(&c, libc::O_PATH | libc::O_DIRECTORY) {
        Ok(fd) => fd,
        // The rootfs is gone, and with it anything mounted there.
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(e) => return Err(Error::path("open", &rec.path, e)),
    };
    let got = ids(fd.as_fd()).map_err(|e| Error::path("statx", &rec.path, e))?;
    let ours = match (rec.unique_id, got.unique_id) {
        (Some(want), Some(have)) => want == have,
        _ => got.mount_id == rec.mount_id,
    };
    if !ours {
        if mounted_at(rec) {
            return Err(Error::WrongState(format!(
                "rootfs bind {}: another mount covers berth's bind (mount {}); not unmounted",
                rec.path.display(),
                rec.mount_id
            )));
        }
        log::debug!("rootfs bind {} already gone", rec.path.display());
        return Ok(());
    }
    // Through the fd: exactly the mount that was checked.
    let p = sys::FdPath::new(&fd);
    sys::umount2(p.as_cstr(), libc::MNT_DETACH)
        .map_err(|e| Error::path("unmount (lazy) the rootfs bind", &rec.path, e))?;
    log::debug!(
        "rootfs bind {} (mount {}) unmounted",
        rec.path.display(),
        rec.mount_id
    );
    Ok(())
}

/// Does /proc/self/mountinfo list mount `rec.mount_id` on `rec.path`
/// (under another mount that covers it)?
fn mounted_at(rec: &RootfsBind) -> bool {
    let path = rec.path.to_string_lossy();
    mountinfo::read().is_ok_and(|t| mountinfo::parse(&t).any(|m| m.id == rec.mount_id && m.mountpoint == path))
}

/// In init, before mounting anything: the rootfs must be a private mount
/// root (the bind berth made), so nothing mounted under it reaches the
/// host's peer groups.
pub(super) fn check_private(rootfs: &CString) -> std::result::Result<(), Fail> {
    let fd = sys::open(rootfs, libc::O_PATH | libc::O_DIRECTORY).or_fail(|| "open the rootfs")?;
    let id = ids(fd.as_fd()).or_fail(|| "statx the rootfs")?;
    if !id.mount_root {
        return Err(Fail::Msg(
            "without a mount namespace the rootfs must be berth's private bind; it is not a mount"
                .into(),
        ));
    }
    let info = mountinfo::read().or_fail(|| "read /proc/self/mountinfo")?;
    let mount = mountinfo::parse(&info).find(|m| m.id == id.mount_id);
    if mount.as_ref().is_none_or(|m| m.shared()) {
        return Err(Fail::Msg(format!(
            "without a mount namespace the rootfs must be berth's private bind; mount {} is {}",
            id.mount_id,
            if mount.is_none() {
                "not in /proc/self/mountinfo"
            } else {
                "shared"
            }
        )));
    }
    Ok(())
}

/// Enter the rootfs with chroot (cwd ends at "/"). pivot_root would change
/// the root of every process in the runtime's mount namespace.
pub(super) fn chroot_into(root: &Root) -> std::result::Result<(), Fail> {
    sys::fchdir(root.fd()).or_fail(|| "chdir to the rootfs")?;
    sys::chroot(c".").or_fail(|| "chroot")?;
    sys::chdir(c"/").or_fail(|| "chdir /")
}
