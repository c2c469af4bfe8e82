//! The one place for raw system calls and `unsafe` wrappers over them: what
//! std and nix do not cover, or cover only with an allocation the hot path
//! avoids. Each wrapper returns the OS error unchanged (`io::Result`);
//! callers add what failed and on which path.
//!
//! * `fs`: `/proc/self/fd/N` names, openat2, the `*at` calls, stat, xattrs.
//! * `mount`: mount/umount, open_tree, move_mount, mount_setattr, pivot_root,
//!   chroot, bind remounts that keep locked flags.
//! * `fd`: fd passing over unix sockets, close_range.
//! * `process`: clone3, pidfds, sched_setattr, ioprio, personality,
//!   /proc/PID/stat.
//!
//! Where rustix has the call with the same semantics (openat2, open_tree,
//! move_mount, umount2, pivot_root, chdir/fchdir/chroot, pidfd_open), the
//! wrapper goes through it and has no `unsafe` of its own: rustix makes raw
//! syscalls without libc, and berth's release binary and `run` times were
//! unchanged by it (measured; docs/design.md). mount(2) stays on libc:
//! rustix's `mount` cannot pass a NULL source or type, which changes what
//! mountinfo shows. mount_setattr, clone3, close_range, sched_setattr and
//! fd passing are not in rustix 1.1 in the form berth needs.
//!
//! Every item is re-exported here, so callers write `crate::sys::mount`.
//! Every `unsafe` block in the crate carries a `// SAFETY:` comment saying
//! why it is sound (`#![deny(clippy::undocumented_unsafe_blocks)]` in
//! lib.rs and main.rs).

use std::io;

mod fd;
mod fs;
mod mount;
mod process;

pub use fd::*;
pub use fs::*;
pub use mount::*;
pub use process::*;

/// A raw system-call return value: negative means failure, with the reason
/// in errno.
pub trait SysRet: Copy {
    fn failed(self) -> bool;
}

macro_rules! sys_ret {
    ($($t:ty),*) => {$(
        impl SysRet for $t {
            fn failed(self) -> bool {
                self < 0
            }
        }
    )*};
}
sys_ret!(i32, i64, isize);

/// `r`, or errno as an `io::Error` when `r` is negative.
pub fn cvt<T: SysRet>(r: T) -> io::Result<T> {
    if r.failed() {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// The errno of an OS error (0 for an error that has none).
pub fn errno(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cvt_keeps_values_and_reads_errno() {
        assert_eq!(cvt(3i32).unwrap(), 3);
        assert_eq!(cvt(0i64).unwrap(), 0);
        // SAFETY: close(-1) touches no fd; it only fails with EBADF.
        let e = cvt(unsafe { libc::close(-1) }).unwrap_err();
        assert_eq!(errno(&e), libc::EBADF);
        assert_eq!(errno(&io::Error::other("no errno")), 0);
    }
}
