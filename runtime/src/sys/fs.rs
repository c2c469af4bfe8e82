//! Thin system-call wrappers used by the rootfs module. Each returns
//! `io::Result` so callers can attach what failed and on which path; none
//! allocates.

use std::ffi::CStr;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::ptr;

pub use libc::c_ulong;

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// `/proc/self/fd/N` for an fd, on the stack. Mounting onto (or from) this
/// magic link uses exactly the file the fd refers to, so a path component
/// swapped for a symlink after resolution cannot redirect the operation.
pub struct FdPath {
    buf: [u8; 32],
    len: usize,
}

impl FdPath {
    pub fn new(fd: &impl AsRawFd) -> Self {
        const PREFIX: &[u8] = b"/proc/self/fd/";
        let mut buf = [0u8; 32];
        buf[..PREFIX.len()].copy_from_slice(PREFIX);
        let mut n = fd.as_raw_fd() as u32;
        let mut digits = [0u8; 10];
        let mut d = 0;
        loop {
            digits[d] = b'0' + (n % 10) as u8;
            d += 1;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        let mut len = PREFIX.len();
        while d > 0 {
            d -= 1;
            buf[len] = digits[d];
            len += 1;
        }
        // buf[len] is already 0.
        FdPath { buf, len: len + 1 }
    }

    pub fn as_cstr(&self) -> &CStr {
        CStr::from_bytes_with_nul(&self.buf[..self.len]).expect("fd path is NUL-terminated")
    }
}

/// A reusable buffer for turning a byte string into a C string without a
/// fresh allocation each time.
#[derive(Default)]
pub struct CBuf(Vec<u8>);

impl CBuf {
    /// `s` as a C string; EINVAL if it contains a NUL byte.
    pub fn set(&mut self, s: &[u8]) -> io::Result<&CStr> {
        self.0.clear();
        self.0.extend_from_slice(s);
        self.0.push(0);
        CStr::from_bytes_with_nul(&self.0).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
    }
}

/// openat2(2). `O_CLOEXEC` is always added. Retries the EAGAIN that
/// `RESOLVE_IN_ROOT` reports when a concurrent rename raced the lookup.
pub fn openat2(dir: BorrowedFd, path: &CStr, flags: i32, mode: u32, resolve: u64) -> io::Result<OwnedFd> {
    // SAFETY: open_how is plain data; all-zero is a valid value.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.mode = u64::from(mode);
    how.resolve = resolve;
    let mut tries = 0;
    loop {
        // SAFETY: valid pointers for the duration of the call.
        let r = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir.as_raw_fd(),
                path.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        if r >= 0 {
            // SAFETY: the kernel returned a new fd that we own.
            return Ok(unsafe { OwnedFd::from_raw_fd(r as RawFd) });
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EAGAIN) if tries < 16 => tries += 1,
            _ => return Err(e),
        }
    }
}

/// open(2) of a host path (not inside the rootfs). `O_CLOEXEC` is added.
pub fn open(path: &CStr, flags: i32) -> io::Result<OwnedFd> {
    // SAFETY: valid C string.
    let fd = cvt(unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC) })?;
    // SAFETY: new fd owned by us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn opt_ptr(s: Option<&CStr>) -> *const libc::c_char {
    s.map_or(ptr::null(), CStr::as_ptr)
}

pub fn mount(src: Option<&CStr>, target: &CStr, fstype: Option<&CStr>, flags: c_ulong, data: Option<&CStr>) -> io::Result<()> {
    // SAFETY: valid C strings or null.
    cvt(unsafe { libc::mount(opt_ptr(src), target.as_ptr(), opt_ptr(fstype), flags, opt_ptr(data).cast()) }).map(drop)
}

pub fn umount2(target: &CStr, flags: i32) -> io::Result<()> {
    // SAFETY: valid C string.
    cvt(unsafe { libc::umount2(target.as_ptr(), flags) }).map(drop)
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
    // SAFETY: mount_attr is plain data.
    let mut raw: libc::mount_attr = unsafe { std::mem::zeroed() };
    raw.attr_set = attr.set;
    raw.attr_clr = attr.clr;
    raw.propagation = attr.propagation;
    raw.userns_fd = attr.userns.map_or(0, |u| u.as_raw_fd() as u64);
    let flags = libc::AT_EMPTY_PATH | if recursive { libc::AT_RECURSIVE } else { 0 };
    // SAFETY: valid pointers for the duration of the call.
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
    const OPEN_TREE_CLONE: libc::c_uint = 1;
    let rec = if recursive { libc::AT_RECURSIVE as libc::c_uint } else { 0 };
    let flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint | rec;
    // SAFETY: valid C string.
    let r = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), flags) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        // SAFETY: open_tree returned a new fd that we own.
        Ok(unsafe { OwnedFd::from_raw_fd(r as RawFd) })
    }
}

/// move_mount(2) of the detached mount `from` onto the file `to` refers to.
pub fn move_mount_onto(from: BorrowedFd, to: BorrowedFd) -> io::Result<()> {
    const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
    const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;
    // SAFETY: valid fds and empty C strings.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from.as_raw_fd(),
            c"".as_ptr(),
            to.as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

pub fn pivot_root(new_root: &CStr, put_old: &CStr) -> io::Result<()> {
    // SAFETY: valid C strings.
    let r = unsafe { libc::syscall(libc::SYS_pivot_root, new_root.as_ptr(), put_old.as_ptr()) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

pub fn mkdirat(dir: BorrowedFd, name: &CStr, mode: u32) -> io::Result<()> {
    // SAFETY: valid C string.
    cvt(unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), mode) }).map(drop)
}

pub fn mknodat(dir: BorrowedFd, name: &CStr, mode: u32, dev: u64) -> io::Result<()> {
    // SAFETY: valid C string.
    cvt(unsafe { libc::mknodat(dir.as_raw_fd(), name.as_ptr(), mode, dev) }).map(drop)
}

pub fn symlinkat(target: &CStr, dir: BorrowedFd, name: &CStr) -> io::Result<()> {
    // SAFETY: valid C strings.
    cvt(unsafe { libc::symlinkat(target.as_ptr(), dir.as_raw_fd(), name.as_ptr()) }).map(drop)
}

/// readlinkat(2) of `name` in `dir`.
pub fn readlinkat(dir: BorrowedFd, name: &CStr) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: buf is valid for its length.
    let n = unsafe { libc::readlinkat(dir.as_raw_fd(), name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(buf)
}

pub fn unlinkat(dir: BorrowedFd, name: &CStr, flags: i32) -> io::Result<()> {
    // SAFETY: valid C string.
    cvt(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), flags) }).map(drop)
}

/// fchownat(2) without following a final symlink.
pub fn lchownat(dir: BorrowedFd, name: &CStr, uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: valid C string.
    cvt(unsafe { libc::fchownat(dir.as_raw_fd(), name.as_ptr(), uid, gid, libc::AT_SYMLINK_NOFOLLOW) }).map(drop)
}

/// fstatat(2) without following a final symlink.
pub fn lstatat(dir: BorrowedFd, name: &CStr) -> io::Result<libc::stat> {
    let mut st = MaybeUninit::<libc::stat>::uninit();
    // SAFETY: st is written by the kernel on success.
    cvt(unsafe { libc::fstatat(dir.as_raw_fd(), name.as_ptr(), st.as_mut_ptr(), libc::AT_SYMLINK_NOFOLLOW) })?;
    // SAFETY: initialised on success.
    Ok(unsafe { st.assume_init() })
}

pub fn fstat(fd: BorrowedFd) -> io::Result<libc::stat> {
    let mut st = MaybeUninit::<libc::stat>::uninit();
    // SAFETY: st is written by the kernel on success.
    cvt(unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) })?;
    // SAFETY: initialised on success.
    Ok(unsafe { st.assume_init() })
}

pub fn fchown(fd: BorrowedFd, uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: plain syscall.
    cvt(unsafe { libc::fchown(fd.as_raw_fd(), uid, gid) }).map(drop)
}

pub fn fchmod(fd: BorrowedFd, mode: u32) -> io::Result<()> {
    // SAFETY: plain syscall.
    cvt(unsafe { libc::fchmod(fd.as_raw_fd(), mode) }).map(drop)
}

/// fchmodat(2) of `name` in `dir` (follows a final symlink: callers use it
/// only on nodes they have just made in a directory of their own).
pub fn fchmodat(dir: BorrowedFd, name: &CStr, mode: u32) -> io::Result<()> {
    // SAFETY: valid C string.
    cvt(unsafe { libc::fchmodat(dir.as_raw_fd(), name.as_ptr(), mode, 0) }).map(drop)
}

/// Give `name` in `dir` (a final symlink itself, not its target), or `dir`
/// itself when `name` is None, the access and modification times of `st`.
pub fn set_times(dir: BorrowedFd, name: Option<&CStr>, st: &libc::stat) -> io::Result<()> {
    let ts = [
        libc::timespec { tv_sec: st.st_atime, tv_nsec: st.st_atime_nsec },
        libc::timespec { tv_sec: st.st_mtime, tv_nsec: st.st_mtime_nsec },
    ];
    // SAFETY: ts holds two timespecs; name is a valid C string.
    cvt(unsafe {
        match name {
            Some(n) => libc::utimensat(dir.as_raw_fd(), n.as_ptr(), ts.as_ptr(), libc::AT_SYMLINK_NOFOLLOW),
            None => libc::futimens(dir.as_raw_fd(), ts.as_ptr()),
        }
    })
    .map(drop)
}

fn cvt_size(r: libc::ssize_t) -> io::Result<usize> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

/// flistxattr(2) into `buf` (ERANGE when too small; an empty `buf` asks for the size).
pub fn flistxattr(fd: BorrowedFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: buf is valid for its length.
    cvt_size(unsafe { libc::flistxattr(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) })
}

/// fgetxattr(2) into `buf` (ERANGE when too small; an empty `buf` asks for the size).
pub fn fgetxattr(fd: BorrowedFd, name: &CStr, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: valid C string; buf is valid for its length.
    cvt_size(unsafe { libc::fgetxattr(fd.as_raw_fd(), name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) })
}

pub fn fsetxattr(fd: BorrowedFd, name: &CStr, value: &[u8]) -> io::Result<()> {
    // SAFETY: valid C string; value is valid for its length.
    cvt(unsafe { libc::fsetxattr(fd.as_raw_fd(), name.as_ptr(), value.as_ptr().cast(), value.len(), 0) }).map(drop)
}

/// The mount flags (`ST_*`, equal to the matching `MS_*`) of the mount `fd` is on.
pub fn fstatfs_flags(fd: BorrowedFd) -> io::Result<c_ulong> {
    let mut st = MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: st is written on success.
    cvt(unsafe { libc::fstatvfs(fd.as_raw_fd(), st.as_mut_ptr()) })?;
    // SAFETY: initialised on success.
    Ok(unsafe { st.assume_init() }.f_flag as c_ulong)
}

pub fn fchdir(fd: BorrowedFd) -> io::Result<()> {
    // SAFETY: plain syscall.
    cvt(unsafe { libc::fchdir(fd.as_raw_fd()) }).map(drop)
}

pub fn chdir(path: &CStr) -> io::Result<()> {
    // SAFETY: valid C string.
    cvt(unsafe { libc::chdir(path.as_ptr()) }).map(drop)
}

pub fn chroot(path: &CStr) -> io::Result<()> {
    // SAFETY: valid C string.
    cvt(unsafe { libc::chroot(path.as_ptr()) }).map(drop)
}

/// Sets the umask and returns the previous one.
pub fn umask(mask: u32) -> u32 {
    // SAFETY: always succeeds.
    unsafe { libc::umask(mask) }
}

pub fn makedev(major: u64, minor: u64) -> u64 {
    libc::makedev(major as u32, minor as u32)
}

pub fn errno(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(0)
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
    fn fd_path_formats() {
        struct Fd(RawFd);
        impl AsRawFd for Fd {
            fn as_raw_fd(&self) -> RawFd {
                self.0
            }
        }
        assert_eq!(FdPath::new(&Fd(0)).as_cstr(), c"/proc/self/fd/0");
        assert_eq!(FdPath::new(&Fd(1234567)).as_cstr(), c"/proc/self/fd/1234567");
        assert_eq!(FdPath::new(&Fd(i32::MAX)).as_cstr(), c"/proc/self/fd/2147483647");
    }

    #[test]
    fn locked_flags_keep_atime_only_when_unrequested() {
        let st = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOATIME | 0x20;
        assert_eq!(locked_flags(st, libc::MS_RDONLY), libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOATIME);
        assert_eq!(locked_flags(st, libc::MS_STRICTATIME), libc::MS_NOSUID | libc::MS_NODEV);
    }
}
