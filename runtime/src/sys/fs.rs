//! Files and paths: `/proc/self/fd/N` names, openat2 (the one
//! implementation; berthctl's image import uses it too) and the `*at`
//! family, stat, ownership, times and xattrs. None allocates except
//! `readlinkat`.

use std::ffi::CStr;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use super::cvt;

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
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    let flags = OFlags::from_bits_retain((flags | libc::O_CLOEXEC) as u32);
    let (mode, resolve) = (Mode::from_raw_mode(mode), ResolveFlags::from_bits_retain(resolve));
    let mut tries = 0;
    loop {
        match rustix::fs::openat2(dir, path, flags, mode, resolve) {
            Err(rustix::io::Errno::INTR) => continue,
            Err(rustix::io::Errno::AGAIN) if tries < 16 => tries += 1,
            r => return r.map_err(Into::into),
        }
    }
}

/// open(2) of a host path (not inside the rootfs). `O_CLOEXEC` is added.
pub fn open(path: &CStr, flags: i32) -> io::Result<OwnedFd> {
    // SAFETY: the path is a CStr borrowed for the call (NUL-terminated, alive until
    // it returns) and any fd is borrowed open; the kernel reads nothing else.
    let fd = cvt(unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC) })?;
    // SAFETY: open returned a new fd (cvt checked it) that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub fn mkdirat(dir: BorrowedFd, name: &CStr, mode: u32) -> io::Result<()> {
    // SAFETY: the path is a CStr borrowed for the call (NUL-terminated, alive until
    // it returns) and any fd is borrowed open; the kernel reads nothing else.
    cvt(unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), mode) }).map(drop)
}

pub fn mknodat(dir: BorrowedFd, name: &CStr, mode: u32, dev: u64) -> io::Result<()> {
    // SAFETY: the path is a CStr borrowed for the call (NUL-terminated, alive until
    // it returns) and any fd is borrowed open; the kernel reads nothing else.
    cvt(unsafe { libc::mknodat(dir.as_raw_fd(), name.as_ptr(), mode, dev) }).map(drop)
}

pub fn symlinkat(target: &CStr, dir: BorrowedFd, name: &CStr) -> io::Result<()> {
    // SAFETY: every pointer is a CStr borrowed for the call (NUL-terminated, alive
    // until it returns); the kernel reads nothing else.
    cvt(unsafe { libc::symlinkat(target.as_ptr(), dir.as_raw_fd(), name.as_ptr()) }).map(drop)
}

/// readlinkat(2) of `name` in `dir`.
pub fn readlinkat(dir: BorrowedFd, name: &CStr) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: `buf` is writable for buf.len() bytes, the length passed; the
    // kernel writes no more.
    let n = unsafe { libc::readlinkat(dir.as_raw_fd(), name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(buf)
}

pub fn unlinkat(dir: BorrowedFd, name: &CStr, flags: i32) -> io::Result<()> {
    // SAFETY: the path is a CStr borrowed for the call (NUL-terminated, alive until
    // it returns) and any fd is borrowed open; the kernel reads nothing else.
    cvt(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), flags) }).map(drop)
}

/// fchownat(2) without following a final symlink.
pub fn lchownat(dir: BorrowedFd, name: &CStr, uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: the path is a CStr borrowed for the call (NUL-terminated, alive until
    // it returns) and any fd is borrowed open; the kernel reads nothing else.
    cvt(unsafe { libc::fchownat(dir.as_raw_fd(), name.as_ptr(), uid, gid, libc::AT_SYMLINK_NOFOLLOW) }).map(drop)
}

/// fstatat(2) without following a final symlink.
pub fn lstatat(dir: BorrowedFd, name: &CStr) -> io::Result<libc::stat> {
    let mut st = MaybeUninit::<libc::stat>::uninit();
    // SAFETY: st is written by the kernel on success.
    cvt(unsafe { libc::fstatat(dir.as_raw_fd(), name.as_ptr(), st.as_mut_ptr(), libc::AT_SYMLINK_NOFOLLOW) })?;
    // SAFETY: the `?` above returned on failure, so the kernel filled `st`.
    Ok(unsafe { st.assume_init() })
}

pub fn fstat(fd: BorrowedFd) -> io::Result<libc::stat> {
    let mut st = MaybeUninit::<libc::stat>::uninit();
    // SAFETY: st is written by the kernel on success.
    cvt(unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) })?;
    // SAFETY: the `?` above returned on failure, so the kernel filled `st`.
    Ok(unsafe { st.assume_init() })
}

pub fn fchown(fd: BorrowedFd, uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: integer arguments and an fd borrowed open for the call; no memory.
    cvt(unsafe { libc::fchown(fd.as_raw_fd(), uid, gid) }).map(drop)
}

pub fn fchmod(fd: BorrowedFd, mode: u32) -> io::Result<()> {
    // SAFETY: integer arguments and an fd borrowed open for the call; no memory.
    cvt(unsafe { libc::fchmod(fd.as_raw_fd(), mode) }).map(drop)
}

/// fchmodat(2) of `name` in `dir` (follows a final symlink: callers use it
/// only on nodes they have just made in a directory of their own).
pub fn fchmodat(dir: BorrowedFd, name: &CStr, mode: u32) -> io::Result<()> {
    // SAFETY: the path is a CStr borrowed for the call (NUL-terminated, alive until
    // it returns) and any fd is borrowed open; the kernel reads nothing else.
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

/// flistxattr(2) into `buf` (ERANGE when too small; an empty `buf` asks for the size).
pub fn flistxattr(fd: BorrowedFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is writable for buf.len() bytes, the length passed; the
    // kernel writes no more.
    cvt(unsafe { libc::flistxattr(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) }).map(|n| n as usize)
}

/// fgetxattr(2) into `buf` (ERANGE when too small; an empty `buf` asks for the size).
pub fn fgetxattr(fd: BorrowedFd, name: &CStr, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: valid C string; buf is valid for its length.
    cvt(unsafe { libc::fgetxattr(fd.as_raw_fd(), name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) }).map(|n| n as usize)
}

pub fn fsetxattr(fd: BorrowedFd, name: &CStr, value: &[u8]) -> io::Result<()> {
    // SAFETY: valid C string; value is valid for its length.
    cvt(unsafe { libc::fsetxattr(fd.as_raw_fd(), name.as_ptr(), value.as_ptr().cast(), value.len(), 0) }).map(drop)
}

/// Sets the umask and returns the previous one.
pub fn umask(mask: u32) -> u32 {
    // SAFETY: umask takes an integer, touches no memory and cannot fail.
    unsafe { libc::umask(mask) }
}

pub fn makedev(major: u64, minor: u64) -> u64 {
    libc::makedev(major as u32, minor as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::RawFd;

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
}
