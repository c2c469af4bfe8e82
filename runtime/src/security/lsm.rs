//! `process.apparmorProfile`, `process.selinuxLabel`, `linux.mountLabel`.
//!
//! As runc (1.1.5, checked on a host without either):
//!
//! * an AppArmor profile on a host without AppArmor is an error (runc fails
//!   writing `/proc/self/attr/exec`); with AppArmor, init asks for the
//!   profile on its next exec (`exec NAME` written to
//!   `/proc/self/attr/apparmor/exec`, else `/proc/self/attr/exec`), through
//!   a handle opened before the pivot on the host's /proc; `exec` does the
//!   same in the exec'd process, through the container's /proc checked to
//!   be procfs and not mounted over (`open_apparmor_exec_in_container`);
//! * an SELinux label (process or mount) on a host without SELinux is an
//!   error (runc: "selinux label is specified in config, but selinux is
//!   disabled or not supported"; its mount label breaks the tmpfs mount).
//!   On an SELinux host berth refuses both with a clear error: applying
//!   labels is not implemented.
//!
//! The checks run in berth before init is cloned, so a refused config
//! leaves nothing behind.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use crate::error::{Error, Result};
use crate::spec::{Bundle, ConfigError};

fn apparmor_enabled() -> bool {
    fs::read("/sys/module/apparmor/parameters/enabled").is_ok_and(|b| b.first() == Some(&b'Y'))
}

fn selinux_enabled() -> bool {
    Path::new("/sys/fs/selinux/enforce").exists()
}

fn err(bundle: &Bundle, path: &str, msg: String) -> Error {
    Error::Config(ConfigError::new(bundle.config_path.display().to_string(), path, msg))
}

/// Check the three fields against the host; returns the AppArmor profile
/// init must apply, if any.
pub fn check(bundle: &Bundle) -> Result<Option<String>> {
    let process = bundle.spec.process().as_ref();
    let label = process.and_then(|p| p.selinux_label().as_deref()).filter(|l| !l.is_empty());
    let mount_label = bundle.spec.linux().as_ref().and_then(|l| l.mount_label().as_deref()).filter(|l| !l.is_empty());
    for (field, value) in [("process.selinuxLabel", label), ("linux.mountLabel", mount_label)] {
        if let Some(v) = value {
            let msg = if selinux_enabled() {
                format!("{v:?}: SELinux labels are not supported by berth yet")
            } else {
                format!("{v:?}: SELinux is not enabled on this host")
            };
            return Err(err(bundle, field, msg));
        }
    }
    let profile = process.and_then(|p| p.apparmor_profile().as_deref()).filter(|p| !p.is_empty());
    match profile {
        None => Ok(None),
        Some(p) if apparmor_enabled() => Ok(Some(p.to_string())),
        Some(p) => Err(err(bundle, "process.apparmorProfile", format!("{p:?}: AppArmor is not enabled on this host"))),
    }
}

/// In init, before the pivot (the host's /proc): open the file that sets
/// the AppArmor profile for the next exec.
pub fn open_apparmor_exec() -> io::Result<fs::File> {
    let open = |p: &str| fs::OpenOptions::new().write(true).open(p);
    open("/proc/self/attr/apparmor/exec").or_else(|_| open("/proc/self/attr/exec"))
}

/// In exec's process, inside the container's mount namespace: the same
/// file, through the container's /proc, which the container controls
/// (CVE-2019-16884: a /proc or an attr file mounted over makes the write
/// land elsewhere and the profile silently not apply). The /proc opened
/// must be a procfs, and the lookup from it may not cross a mount
/// (openat2 RESOLVE_NO_XDEV), so an overmount fails instead. thread-self:
/// the file acts on the calling task only.
pub fn open_apparmor_exec_in_container() -> io::Result<fs::File> {
    use std::os::fd::AsFd;
    let proc_dir = crate::sys::open(c"/proc", libc::O_PATH | libc::O_DIRECTORY)?;
    let fs = nix::sys::statfs::fstatfs(&proc_dir)?;
    if fs.filesystem_type() != nix::sys::statfs::PROC_SUPER_MAGIC {
        return Err(io::Error::other("the container's /proc is not a procfs"));
    }
    let open = |p: &std::ffi::CStr| {
        crate::sys::openat2(proc_dir.as_fd(), p, libc::O_WRONLY, 0, libc::RESOLVE_NO_XDEV)
    };
    let f = match open(c"thread-self/attr/apparmor/exec") {
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => open(c"thread-self/attr/exec")?,
        r => r?,
    };
    Ok(fs::File::from(f))
}

/// In init, just before execve: ask for `profile` on exec.
pub fn apply_apparmor(f: &mut fs::File, profile: &str) -> io::Result<()> {
    f.write_all(format!("exec {profile}").as_bytes())
}
