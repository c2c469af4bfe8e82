//! Sealing berth's own binary against CVE-2019-5736.
//!
//! The container's init is a clone of berth, so its `/proc/self/exe` is the
//! berth binary on the host. A container whose program is `/proc/self/exe`
//! (directly, through a symlink, or as a `#!` interpreter) makes init
//! execute that binary inside the container; another process there can
//! keep a handle on `/proc/<pid>/exe` and, once that process exits, reopen
//! it for writing and replace berth on the host. Being non-dumpable until
//! execve does not help here: the new process is dumpable.
//!
//! So `create` and `run` first re-execute berth from a sealed copy of
//! itself, and init inherits that as its `/proc/self/exe`:
//!
//! 1. a read-only bind mount of the binary, made with `open_tree(2)`
//!    (`OPEN_TREE_CLONE`, a detached mount nobody else can see) and
//!    `mount_setattr(2)` (`MOUNT_ATTR_RDONLY`), executed with `execveat(2)`:
//!    writes through it fail with EROFS. Costs one execve, no copy.
//! 2. else (kernel before 5.12, or no mount privilege) a memfd copy sealed
//!    with `F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL`.
//!
//! Nothing is done when berth already runs from a read-only mount or a
//! write-sealed memfd (which is also how the re-executed berth knows it is
//! done).

use std::ffi::{CString, OsString};
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;

use crate::error::{Error, Result};

const OPEN_TREE_CLONE: libc::c_uint = 1;
const OPEN_TREE_CLOEXEC: libc::c_uint = libc::O_CLOEXEC as libc::c_uint;
const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

fn cvt(r: libc::c_long) -> io::Result<libc::c_long> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Whether the binary behind `fd` cannot be written: on a read-only mount,
/// or a memfd sealed against writes.
fn is_sealed(fd: &fs::File) -> bool {
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstatvfs(fd.as_raw_fd(), &mut st) } == 0 && st.f_flag & libc::ST_RDONLY != 0 {
        return true;
    }
    let seals = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) };
    seals >= 0 && seals & libc::F_SEAL_WRITE != 0
}

/// Re-execute berth from a sealed copy of itself unless it already runs
/// from one. Returns only when berth is sealed (or on error).
pub fn ensure_sealed() -> Result<()> {
    let exe = fs::File::open("/proc/self/exe").map_err(|e| Error::path("open", "/proc/self/exe", e))?;
    if is_sealed(&exe) {
        return Ok(());
    }
    let argv = cstrings(std::env::args_os())?;
    let envp = cstrings(std::env::vars_os().map(|(k, v)| {
        let mut kv = k;
        kv.push("=");
        kv.push(v);
        kv
    }))?;
    let bind_err = match ro_bind() {
        Ok(fd) => exec(&fd, &argv, &envp),
        Err(e) => e,
    };
    log::debug!("seal berth binary: read-only bind failed ({bind_err}); using a sealed memfd copy");
    let memfd_err = match memfd_copy(&exe) {
        Ok(fd) => exec(&fd, &argv, &envp),
        Err(e) => e,
    };
    Err(Error::Other(format!(
        "cannot seal the berth binary against overwrites from a container (CVE-2019-5736): \
         read-only bind: {bind_err}; sealed memfd: {memfd_err}"
    )))
}

fn cstrings(it: impl Iterator<Item = OsString>) -> Result<Vec<CString>> {
    it.map(|s| CString::new(s.into_vec()).map_err(|_| Error::Other("argument or environment contains NUL".into())))
        .collect()
}

/// A detached, read-only bind mount of the running binary.
fn ro_bind() -> io::Result<OwnedFd> {
    let fd = cvt(unsafe {
        libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, c"/proc/self/exe".as_ptr(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC)
    })?;
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    cvt(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    })?;
    Ok(fd)
}

/// A memfd holding a copy of the binary, sealed against any change.
fn memfd_copy(exe: &fs::File) -> io::Result<OwnedFd> {
    let fd = cvt(unsafe {
        libc::memfd_create(c"berth".as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) as libc::c_long
    })?;
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let len = exe.metadata()?.len();
    let mut copied = 0u64;
    while copied < len {
        let n = cvt(unsafe {
            libc::sendfile(fd.as_raw_fd(), exe.as_raw_fd(), std::ptr::null_mut(), (len - copied) as usize) as libc::c_long
        })?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "binary shrank while being copied"));
        }
        copied += n as u64;
    }
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) } as libc::c_long)?;
    Ok(fd)
}

/// execveat(fd, "", AT_EMPTY_PATH): returns only on failure.
fn exec(fd: &OwnedFd, argv: &[CString], envp: &[CString]) -> io::Error {
    let mut a: Vec<*const libc::c_char> = argv.iter().map(|s| s.as_ptr()).collect();
    a.push(std::ptr::null());
    let mut e: Vec<*const libc::c_char> = envp.iter().map(|s| s.as_ptr()).collect();
    e.push(std::ptr::null());
    unsafe { libc::syscall(libc::SYS_execveat, fd.as_raw_fd(), c"".as_ptr(), a.as_ptr(), e.as_ptr(), libc::AT_EMPTY_PATH) };
    io::Error::last_os_error()
}
