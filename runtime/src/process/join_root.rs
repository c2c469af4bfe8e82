//! Joining ([`super::join`]) a container that has no mount namespace of
//! its own (it shares berth's, see rootfs/inherited.rs): there is no
//! namespace to join, so the new process chroots into init's root instead,
//! as init did.

use std::fs;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};

use crate::error::{Error, Result};

/// `/proc/<init>/root` as an O_PATH directory fd, or None when it is the
/// same directory as berth's own root (nothing to enter). The caller
/// checks afterwards that init is still the same process.
pub(super) fn open(init_pid: i32) -> Result<Option<OwnedFd>> {
    let path = format!("/proc/{init_pid}/root");
    let f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(&path)
        .map_err(|e| Error::path("open the container's root", &path, e))?;
    let theirs = f.metadata().map_err(|e| Error::path("stat", &path, e))?;
    let ours = fs::metadata("/").map_err(|e| Error::path("stat", "/", e))?;
    if (theirs.dev(), theirs.ino()) == (ours.dev(), ours.ino()) {
        return Ok(None);
    }
    Ok(Some(f.into()))
}

/// In the exec child, with the host's privileges: chroot into `root`.
pub(super) fn enter(root: &OwnedFd) -> Result<()> {
    // SAFETY: fchdir on an fd `root` keeps open for the call; no memory is passed.
    if unsafe { libc::fchdir(root.as_fd().as_raw_fd()) } != 0 {
        return Err(Error::os(
            "chdir to the container's root",
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: a static NUL-terminated C string.
    if unsafe { libc::chroot(c".".as_ptr()) } != 0 {
        return Err(Error::os(
            "chroot into the container's root",
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: a static NUL-terminated C string.
    if unsafe { libc::chdir(c"/".as_ptr()) } != 0 {
        return Err(Error::os(
            "chdir / in the container's root",
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}
