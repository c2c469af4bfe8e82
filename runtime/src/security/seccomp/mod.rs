//! `linux.seccomp`: the whole OCI object, compiled with libseccomp.
//!
//! * berth (the parent) runs [`prepare`] before cloning init: it validates
//!   the object ([`profile::check`], errors name `linux.seccomp...`), then
//!   takes the BPF from the cache ([`cache`]) or compiles it
//!   ([`profile::compile`]) and stores it. init inherits the program in its
//!   copy of berth's memory; libseccomp never runs in init.
//! * init installs it with seccomp(2) ([`Filter::load`]) as late as
//!   possible before execve; `process::init` explains the exact point, which
//!   depends on noNewPrivileges and on SCMP_ACT_NOTIFY.
//! * With SCMP_ACT_NOTIFY, init passes the listener fd to berth, which sends
//!   it to `listenerPath` ([`notify`]).
//!
//! The filter is loaded with the raw system call rather than libseccomp's
//! `seccomp_load`, so cached and fresh filters take the same path, the
//! flags (SECCOMP_FILTER_FLAG_LOG, SPEC_ALLOW, TSYNC, WAIT_KILLABLE_RECV)
//! are passed exactly as configured, and no_new_privs is only set when the
//! config asks for it.

pub mod cache;
pub mod notify;
pub mod profile;
#[cfg(test)]
mod tests;

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;

use oci_spec::runtime::LinuxSeccomp;

use crate::error::{Error, Result};
use crate::spec::{Bundle, ConfigError};

/// `seccomp-profiles/default.json`, the project's default profile, for
/// embedding in a generated config.
pub fn default_profile_json() -> &'static str {
    include_str!("../../../../seccomp-profiles/default.json")
}

/// A compiled filter, ready for init to load.
#[derive(Debug, Clone)]
pub struct Filter {
    prog: Vec<libc::sock_filter>,
    flags: u32,
    notify: bool,
}

impl Filter {
    /// Build from exported BPF bytes and the checked flags.
    fn new(bpf: &[u8], checked: profile::Checked) -> Filter {
        let prog = bpf
            .chunks_exact(8)
            .map(|c| libc::sock_filter {
                code: u16::from_ne_bytes([c[0], c[1]]),
                jt: c[2],
                jf: c[3],
                k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect();
        Filter { prog, flags: checked.flags, notify: checked.notify }
    }

    /// Whether the filter has SCMP_ACT_NOTIFY rules (a listener to hand over).
    pub fn notify(&self) -> bool {
        self.notify
    }

    /// Number of BPF instructions.
    pub fn len(&self) -> usize {
        self.prog.len()
    }

    /// Install the filter on the calling thread (init). Needs no_new_privs
    /// or CAP_SYS_ADMIN in init's user namespace. Returns the listener fd
    /// when the filter has NOTIFY rules.
    pub fn load(&self) -> io::Result<Option<OwnedFd>> {
        const SECCOMP_SET_MODE_FILTER: libc::c_ulong = 1;
        let prog = libc::sock_fprog { len: self.prog.len() as u16, filter: self.prog.as_ptr() as *mut _ };
        // SAFETY: `prog` points into self.prog, alive for the call; the kernel copies the
        // filter. Installing it only restricts this process.
        let r =
            unsafe { libc::syscall(libc::SYS_seccomp, SECCOMP_SET_MODE_FILTER, self.flags as libc::c_ulong, &prog) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        if self.notify {
            // SAFETY: with SECCOMP_FILTER_FLAG_NEW_LISTENER the return value is a new listener
            // fd (r >= 0 checked above) that nothing else owns.
            return Ok(Some(unsafe { OwnedFd::from_raw_fd(r as i32) }));
        }
        Ok(None)
    }

    /// How [`load`](Self::load) failures read: with the flags, since a
    /// kernel that lacks one rejects the whole filter.
    pub fn describe(&self) -> String {
        format!("load seccomp filter ({} instructions, flags {:#x})", self.prog.len(), self.flags)
    }
}

fn config_error(bundle: &Bundle, f: profile::Fault) -> Error {
    Error::Config(ConfigError::new(bundle.config_path.display().to_string(), f.path, f.msg))
}

/// The filter for the bundle's `linux.seccomp`, if it has one: checked,
/// then taken from the cache under `root` or compiled (and cached).
pub fn prepare(bundle: &Bundle, root: &Path) -> Result<Option<Filter>> {
    let Some(s) = bundle.spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) else { return Ok(None) };
    let checked = profile::check(s).map_err(|f| config_error(bundle, f))?;
    let bpf = cached_or_compile(s, root).map_err(|f| config_error(bundle, f))?;
    let filter = Filter::new(&bpf, checked);
    log::debug!("seccomp: {} BPF instructions, flags {:#x}", filter.len(), filter.flags);
    Ok(Some(filter))
}

fn cached_or_compile(s: &LinuxSeccomp, root: &Path) -> Result<Vec<u8>, profile::Fault> {
    let json = match serde_json::to_vec(s) {
        Ok(j) => j,
        Err(e) => {
            log::debug!("seccomp cache: cannot encode the profile ({e}); compiling without the cache");
            return profile::compile(s);
        }
    };
    let dir = root.join(cache::DIR_NAME);
    if let Err(e) = crate::host::check_state_root(root).and_then(|()| crate::host::check_state_root(&dir)) {
        // Entries another user could have written are not used (create
        // then fails on the same check, with its message).
        log::debug!("seccomp cache: not used: {e}");
        return profile::compile(s);
    }
    let key = cache::key(&json);
    if let Some(bpf) = cache::lookup(&dir, &key) {
        return Ok(bpf);
    }
    let bpf = profile::compile(s)?;
    if let Err(e) = cache::store(&dir, &key, &bpf) {
        log::debug!("seccomp cache: cannot store in {}: {e}", dir.display());
    }
    Ok(bpf)
}
