//! The host's cgroup layout as the runtimes see it.
//!
//! crun 1.8.1 (Debian 12) refuses to create any container on a hybrid
//! host (v1 controllers under /sys/fs/cgroup, cgroup2 at
//! /sys/fs/cgroup/unified) when the cgroup2 side has a controller
//! ("cgroups in hybrid mode not supported, drop all controllers from
//! cgroupv2"), whatever its --cgroup-manager. Rather than change the host,
//! the benchmark can move itself into a private mount namespace in which
//! /sys/fs/cgroup/unified is unmounted: every runtime it spawns then sees
//! the same plain v1 (legacy) layout, at no per-run cost.

use std::ffi::CString;

const TMPFS_MAGIC: i64 = 0x0102_1994;
const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
const UNIFIED: &str = "/sys/fs/cgroup/unified";

fn fs_magic(path: &str) -> Option<i64> {
    let c = CString::new(path).ok()?;
    // SAFETY: statfs is plain data; the path is NUL-terminated.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some(st.f_type as i64)
}

/// The controllers on the cgroup2 side of a hybrid host, if there are any.
pub fn hybrid_v2_controllers() -> Option<String> {
    if fs_magic("/sys/fs/cgroup")? != TMPFS_MAGIC || fs_magic(UNIFIED)? != CGROUP2_SUPER_MAGIC {
        return None;
    }
    let c = std::fs::read_to_string(format!("{UNIFIED}/cgroup.controllers")).ok()?;
    let c = c.trim();
    (!c.is_empty()).then(|| c.to_string())
}

/// Enter a private mount namespace (mounts still propagate in from the
/// host, none out) and unmount the cgroup2 hierarchy there. Must run
/// before any thread or child is started.
pub fn hide_unified_hierarchy() -> Result<(), String> {
    let os = |what: &str| format!("{what}: {}", std::io::Error::last_os_error());
    let root = CString::new("/").unwrap_or_default();
    let unified = CString::new(UNIFIED).unwrap_or_default();
    // SAFETY: plain syscalls on NUL-terminated strings; single-threaded.
    unsafe {
        if libc::unshare(libc::CLONE_NEWNS) != 0 {
            return Err(os("unshare(CLONE_NEWNS)"));
        }
        let flags = libc::MS_REC | libc::MS_SLAVE;
        if libc::mount(std::ptr::null(), root.as_ptr(), std::ptr::null(), flags, std::ptr::null()) != 0 {
            return Err(os("making / a slave mount"));
        }
        if libc::umount2(unified.as_ptr(), libc::MNT_DETACH) != 0 {
            return Err(os(&format!("umount {UNIFIED} in the private namespace")));
        }
    }
    Ok(())
}
