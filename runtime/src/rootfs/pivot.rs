//! Entering the rootfs: pivot_root (or, with `--no-pivot`, MS_MOVE onto "/"
//! and chroot), and the steps around it that act on the root mount.

use std::ffi::{CStr, CString};
use std::os::fd::AsFd;
use std::path::Path;

use super::paths::Root;
use crate::mountinfo;
use crate::sys;
use super::{Fail, OrFail};

/// Make the mount the rootfs lives on private (`flag` MS_PRIVATE) or a slave
/// (MS_SLAVE, for rootfsPropagation slave/rslave: the container's root then
/// stays a slave of the host's peer group): either way the rootfs bind does
/// not propagate elsewhere, and pivot_root refuses a shared parent. The
/// rootfs path is walked up until a mount point is found (a propagation
/// change on anything else is EINVAL); when the rootfs is itself a mount
/// (overlay), that is one call.
pub(super) fn make_parent_unshared(rootfs: &CStr, flag: libc::c_ulong) -> Result<(), Fail> {
    let mut buf = rootfs.to_bytes().to_vec();
    while buf.len() > 1 && buf.ends_with(b"/") {
        buf.pop();
    }
    buf.push(0);
    let mut end = buf.len() - 1;
    loop {
        let p = if end == 0 { c"/" } else { CStr::from_bytes_with_nul(&buf[..=end]).expect("NUL-terminated") };
        match sys::mount(None, p, None, flag, None) {
            Ok(()) => return Ok(()),
            Err(e) if sys::errno(&e) == libc::EINVAL && end > 0 => {
                end = buf[..end].iter().rposition(|&b| b == b'/').unwrap_or(0);
                buf[end] = 0;
            }
            Err(e) => {
                let what = if flag == libc::MS_SLAVE { "a slave" } else { "private" };
                return Err(Fail::Os(format!("make the mount at {} {what}", p.to_string_lossy()), e));
            }
        }
    }
}

/// pivot_root into the rootfs, stacking the old root on top of the new one
/// and detaching it; cwd ends at "/".
pub(super) fn pivot_root(root: &Root) -> Result<(), Fail> {
    let old = sys::open(c"/", libc::O_PATH | libc::O_DIRECTORY).or_fail(|| "open /")?;
    sys::fchdir(root.fd()).or_fail(|| "chdir to the rootfs")?;
    sys::pivot_root(c".", c".").or_fail(|| "pivot_root")?;
    // cwd still names the new root under the stacked old one: step onto
    // the old root so the propagation change below reaches it, and only it.
    sys::fchdir(old.as_fd()).or_fail(|| "chdir to the old root")?;
    drop(old);
    // Unmounts below must not propagate to the host.
    sys::mount(None, c".", None, libc::MS_SLAVE | libc::MS_REC, None).or_fail(|| "make the old root rslave")?;
    sys::umount2(c".", libc::MNT_DETACH).or_fail(|| "detach the old root")?;
    sys::chdir(c"/").or_fail(|| "chdir /")
}

/// `--no-pivot`: move the rootfs onto "/" and chroot into it. The host's
/// procfs and sysfs mounts would stay in this mount namespace, hidden but
/// enough for the kernel to allow new unmasked proc/sysfs mounts, so they
/// are detached first (as runc).
pub(super) fn move_root(root: &Root, rootfs: &Path) -> Result<(), Fail> {
    let text = mountinfo::read().or_fail(|| "read /proc/self/mountinfo")?;
    let mut hide: Vec<CString> = Vec::new();
    for m in mountinfo::parse(&text) {
        if m.root != "/" || (m.fstype != "proc" && m.fstype != "sysfs") {
            continue;
        }
        if Path::new(m.mountpoint.as_ref()).starts_with(rootfs) {
            continue;
        }
        if let Ok(c) = CString::new(m.mountpoint.into_owned()) {
            hide.push(c);
        }
    }
    // Children are listed after their parents: detach them first.
    for p in hide.iter().rev() {
        match sys::mount(None, p, None, libc::MS_SLAVE | libc::MS_REC, None) {
            Err(e) if matches!(sys::errno(&e), libc::ENOENT | libc::EINVAL) => continue,
            r => r.or_fail(|| format!("make {} rslave", p.to_string_lossy()))?,
        }
        match sys::umount2(p, libc::MNT_DETACH) {
            Err(e) if matches!(sys::errno(&e), libc::EINVAL | libc::EPERM) => {
                // Not ours to unmount (locked in a user namespace): cover it.
                sys::mount(Some(c"tmpfs"), p, Some(c"tmpfs"), 0, None).or_fail(|| format!("cover {} with a tmpfs", p.to_string_lossy()))?
            }
            r => r.or_fail(|| format!("detach {}", p.to_string_lossy()))?,
        }
    }
    sys::fchdir(root.fd()).or_fail(|| "chdir to the rootfs")?;
    sys::mount(Some(c"."), c"/", None, libc::MS_MOVE, None).or_fail(|| "move the rootfs onto /")?;
    sys::chroot(c".").or_fail(|| "chroot")?;
    sys::chdir(c"/").or_fail(|| "chdir /")
}

/// `root.readonly`: make "/" read-only, keeping its other (and locked) flags.
pub(super) fn readonly_root() -> Result<(), Fail> {
    let fd = sys::open(c"/", libc::O_PATH | libc::O_DIRECTORY).or_fail(|| "open /")?;
    sys::make_readonly(fd.as_fd()).or_fail(|| "remount / read-only")
}
