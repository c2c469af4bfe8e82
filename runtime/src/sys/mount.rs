//! The mount API: mount(2) and umount2(2), the new fd-based calls
//! (open_tree, move_mount, mount_setattr), pivot_root, chroot, and the
//! bind-remount rules for flags a user namespace locks.

use std::ffi::CStr;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::ptr;

pub use libc::c_ulong;
use rustix::mount::OpenTreeFlags;

use super::{cvt, errno, FdPath};

fn opt_ptr(s: Option<&CStr>) -> *const libc::c_char {
    s.map_or(ptr::null(), CStr::as_ptr)
}

pub fn mount(src: Option<&CStr>, target: &CStr, fstype: Option<&CStr>, flags: c_ulong, data: Option<&CStr>) -> io::Result<()> {
    // SAFETY: each pointer is null (which mount(2) allows for source, type and
    // data) or a CStr borrowed for the call, NUL-terminated and alive until it returns.
    cvt(unsafe { libc::mount(opt_ptr(src), target.as_ptr(), opt_ptr(fstype), flags, opt_ptr(data).cast()) }).map(drop)
}

pub fn umount2(target: &CStr, flags: i32) -> io::Result<()> {
    rustix::mount::unmount(target, rustix::mount::UnmountFlags::from_bits_retain(flags as u32)).map_err(Into::into)
}

/// What a mount_setattr(2) call changes: attributes to set and to clear
/// (`MOUNT_ATTR_*`), a propagation type (`MS_PRIVATE`, …; 0 leaves it) and,
/// with `MOUNT_ATTR_IDMAP`, the user namespace whose mappings the mount takes.
#[derive(Clone, Copy, Default)]
pub struct MountAttr<'a> {
    pub set: u64,
    pub clr: u64,
    pub propagation: u64,
    pub userns: Option<BorrowedFd<'a>>,
}

impl<'a> MountAttr<'a> {
    /// Set `set` and clear `clr`.
    pub fn flags(set: u64, clr: u64) -> Self {
        MountAttr { set, clr, ..Self::default() }
    }

    /// Id-map the mount with the mappings of the user namespace `userns`.
    pub fn idmap(userns: BorrowedFd<'a>) -> Self {
        MountAttr { set: libc::MOUNT_ATTR_IDMAP, userns: Some(userns), ..Self::default() }
    }

    /// Change the propagation type only.
    pub fn propagation(propagation: u64) -> Self {
        MountAttr { propagation, ..Self::default() }
    }
}

/// mount_setattr(2) on the mount `fd` refers to (AT_EMPTY_PATH), and with
/// `recursive` on every mount below it (AT_RECURSIVE).
pub fn mount_setattr(fd: BorrowedFd, recursive: bool, attr: MountAttr) -> io::Result<()> {
    // SAFETY: mount_attr is plain integers; all-zero is a valid value.
    let mut raw: libc::mount_attr = unsafe { std::mem::zeroed() };
    raw.attr_set = attr.set;
    raw.attr_clr = attr.clr;
    raw.propagation = attr.propagation;
    raw.userns_fd = attr.userns.map_or(0, |u| u.as_raw_fd() as u64);
    let flags = libc::AT_EMPTY_PATH | if recursive { libc::AT_RECURSIVE } else { 0 };
    // SAFETY: "" is a static C string and `raw` a live mount_attr of the size
    // passed; `fd` (and the userns fd inside `raw`) are borrowed open.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags as libc::c_uint,
            &raw as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// open_tree(2) with OPEN_TREE_CLONE: a detached bind of `path` (with
/// `recursive`, of the whole tree below it, AT_RECURSIVE), close-on-exec.
pub fn open_tree_clone(path: &CStr, recursive: bool) -> io::Result<OwnedFd> {
    let rec = if recursive { OpenTreeFlags::AT_RECURSIVE } else { OpenTreeFlags::empty() };
    open_tree(rustix::fs::CWD, path, rec)
}

/// open_tree(fd, "", OPEN_TREE_CLONE | AT_EMPTY_PATH): a detached bind of
/// the file `fd` refers to, close-on-exec.
pub fn open_tree_clone_fd(fd: BorrowedFd) -> io::Result<OwnedFd> {
    open_tree(fd, c"", OpenTreeFlags::AT_EMPTY_PATH)
}

fn open_tree(dir: BorrowedFd, path: &CStr, flags: OpenTreeFlags) -> io::Result<OwnedFd> {
    let flags = OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC | flags;
    rustix::mount::open_tree(dir, path, flags).map_err(Into::into)
}

/// move_mount(2) of the detached mount `from` onto the file `to` refers to.
pub fn move_mount_onto(from: BorrowedFd, to: BorrowedFd) -> io::Result<()> {
    use rustix::mount::MoveMountFlags as F;
    rustix::mount::move_mount(from, c"", to, c"", F::MOVE_MOUNT_F_EMPTY_PATH | F::MOVE_MOUNT_T_EMPTY_PATH)
        .map_err(Into::into)
}

pub fn pivot_root(new_root: &CStr, put_old: &CStr) -> io::Result<()> {
    rustix::process::pivot_root(new_root, put_old).map_err(Into::into)
}

/// The mount flags (`ST_*`, equal to the matching `MS_*`) of the mount `fd` is on.
pub fn fstatfs_flags(fd: BorrowedFd) -> io::Result<c_ulong> {
    let mut st = MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `st` is a live MaybeUninit the kernel fills on success; it is
    // read only then.
    cvt(unsafe { libc::fstatvfs(fd.as_raw_fd(), st.as_mut_ptr()) })?;
    // SAFETY: the `?` above returned on failure, so the kernel filled `st`.
    Ok(unsafe { st.assume_init() }.f_flag as c_ulong)
}

pub fn fchdir(fd: BorrowedFd) -> io::Result<()> {
    rustix::process::fchdir(fd).map_err(Into::into)
}

pub fn chdir(path: &CStr) -> io::Result<()> {
    rustix::process::chdir(path).map_err(Into::into)
}

pub fn chroot(path: &CStr) -> io::Result<()> {
    rustix::process::chroot(path).map_err(Into::into)
}

/// Flags a bind remount must keep because the kernel may lock them on a
/// mount inherited by a less privileged user namespace (MNT_LOCK_*): taken
/// from the mount's current statfs flags. An atime mode is kept only when
/// the caller did not ask for one.
pub fn locked_flags(statfs_flags: c_ulong, requested: c_ulong) -> c_ulong {
    let mut keep = statfs_flags & (libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC);
    if requested & (libc::MS_NOATIME | libc::MS_RELATIME | libc::MS_STRICTATIME) == 0 {
        keep |= statfs_flags & (libc::MS_NOATIME | libc::MS_RELATIME | libc::MS_NODIRATIME);
    }
    keep
}

/// A bind remount (`flags` must contain MS_REMOUNT|MS_BIND) of `target`. If
/// the kernel refuses (EPERM: a flag locked in a user namespace would be
/// cleared), retry once keeping the locked flags read by `current`.
pub fn remount_keep_locked(target: &CStr, flags: c_ulong, current: impl FnOnce() -> io::Result<c_ulong>) -> io::Result<()> {
    match mount(None, target, None, flags, None) {
        Err(e) if errno(&e) == libc::EPERM => {
            let keep = locked_flags(current()?, flags);
            if keep & !flags == 0 {
                return Err(e);
            }
            mount(None, target, None, flags | keep, None)
        }
        r => r,
    }
}

/// Make the mount `fd` is the root of read-only, leaving its other flags
/// (nosuid, nodev, noexec, atime, including any the kernel locks in a user
/// namespace) as they are. mount_setattr does that in one call; kernels
/// without it get a bind remount that repeats the current flags (as runc).
pub fn make_readonly(fd: BorrowedFd) -> io::Result<()> {
    match mount_setattr(fd, false, MountAttr::flags(libc::MOUNT_ATTR_RDONLY, 0)) {
        Err(e) if errno(&e) == libc::ENOSYS => {
            let keep = locked_flags(fstatfs_flags(fd)?, 0);
            let flags = keep | libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY;
            mount(None, FdPath::new(&fd).as_cstr(), None, flags, None)
        }
        r => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locked_flags_keep_atime_only_when_unrequested() {
        let st = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOATIME | 0x20;
        assert_eq!(locked_flags(st, libc::MS_RDONLY), libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOATIME);
        assert_eq!(locked_flags(st, libc::MS_STRICTATIME), libc::MS_NOSUID | libc::MS_NODEV);
    }
}
