//! The runner's private view of the host: a mount namespace of its own
//! (so nothing a runtime or a test mounts can leak to the host, and all of
//! it disappears with the runner), a tmpfs work directory, and, on hybrid
//! cgroup hosts, the cgroup2 hierarchy hidden when a runtime needs that.
//!
//! crun 1.8.1 refuses to create any container on a hybrid host (v1
//! controllers under /sys/fs/cgroup, cgroup2 at /sys/fs/cgroup/unified)
//! whose cgroup2 side has a controller ("cgroups in hybrid mode not
//! supported"). Unmounting /sys/fs/cgroup/unified inside the private
//! namespace gives every runtime the same plain v1 layout without changing
//! the host (bench/src/hostenv.rs does the same for the benchmark).

use std::ffi::CString;
use std::path::Path;

const TMPFS_MAGIC: i64 = 0x0102_1994;
const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
pub const UNIFIED: &str = "/sys/fs/cgroup/unified";

fn c(s: &str) -> CString {
    CString::new(s).unwrap_or_default()
}

fn os(what: &str) -> String {
    format!("{what}: {}", std::io::Error::last_os_error())
}

fn fs_magic(path: &str) -> Option<i64> {
    let p = c(path);
    // SAFETY: statfs fills a plain struct; the path is NUL-terminated.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(p.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some(st.f_type as i64)
}

/// Whether /sys/fs/cgroup is a cgroup2 mount (unified host).
pub fn cgroup2_unified_host() -> bool {
    fs_magic("/sys/fs/cgroup") == Some(CGROUP2_SUPER_MAGIC)
}

/// The controllers on the cgroup2 side of a hybrid host, if any.
pub fn hybrid_v2_controllers() -> Option<String> {
    if fs_magic("/sys/fs/cgroup")? != TMPFS_MAGIC || fs_magic(UNIFIED)? != CGROUP2_SUPER_MAGIC {
        return None;
    }
    let t = std::fs::read_to_string(format!("{UNIFIED}/cgroup.controllers")).ok()?;
    let t = t.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// Move into a private mount namespace whose mounts are slaves of the
/// host's: host mounts still propagate in, none propagate out. Must run
/// before the runner starts any thread.
pub fn enter_private_mount_ns() -> Result<(), String> {
    // SAFETY: plain syscalls on NUL-terminated strings, single-threaded.
    unsafe {
        if libc::unshare(libc::CLONE_NEWNS) != 0 {
            return Err(os("unshare(CLONE_NEWNS)"));
        }
        let root = c("/");
        if libc::mount(
            std::ptr::null(),
            root.as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_SLAVE,
            std::ptr::null(),
        ) != 0
        {
            return Err(os("making / a recursive slave mount"));
        }
    }
    Ok(())
}

/// Unmount the cgroup2 hierarchy of a hybrid host (in the private namespace).
pub fn hide_unified() -> Result<(), String> {
    let u = c(UNIFIED);
    // SAFETY: umount2 on a NUL-terminated path.
    if unsafe { libc::umount2(u.as_ptr(), libc::MNT_DETACH) } != 0 {
        return Err(os(&format!("umount {UNIFIED}")));
    }
    Ok(())
}

/// Mount a fresh tmpfs on `dir` (created if missing).
pub fn mount_tmpfs(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let d = c(&dir.display().to_string());
    let t = c("tmpfs");
    let data = c("mode=755");
    // SAFETY: mount with NUL-terminated strings.
    let rc = unsafe {
        libc::mount(
            t.as_ptr(),
            d.as_ptr(),
            t.as_ptr(),
            0,
            data.as_ptr() as *const libc::c_void,
        )
    };
    if rc != 0 {
        return Err(os(&format!("mount tmpfs on {}", dir.display())));
    }
    Ok(())
}
