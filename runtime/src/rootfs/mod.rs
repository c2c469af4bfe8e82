//! The container's root filesystem: mounts, devices, pivot_root, masked and
//! readonly paths. Every path is resolved inside the rootfs.
//!
//! Called by the container's init, in its new mount namespace (without
//! one, see [`inherited`]: no propagation change, a private bind made by
//! berth, chroot):
//!
//! ```text
//!   prepare()   "/" gets rootfsPropagation (rslave by default and until
//!               finish() for (r)unbindable), the rootfs's parent mount is
//!               made private (a slave with an explicit slave/rslave), the
//!               rootfs is bound onto itself, then mounts[] in order,
//!               default + linux.devices, /dev symlinks
//!   (hooks)     createRuntime / createContainer
//!   finish()    a read-only /dev tmpfs is made read-only, maskedPaths,
//!               readonlyPaths (before the pivot: host /proc and a verified
//!               host /dev/null are still reachable), pivot_root (or MS_MOVE
//!               + chroot), root.readonly, final rootfsPropagation
//! ```
//!
//! Files: [`paths`] (resolution inside the rootfs), [`options`] (mount option
//! table), `mounts` (mounts[] entries, cgroup), `copyup` (tmpcopyup), [`idmap`] (id-mapped mounts,
//! prepared by the parent before the clone), `devices` (device nodes and
//! /dev symlinks), `masked` (maskedPaths, readonlyPaths), `pivot`. The
//! system-call wrappers are in `crate::sys`.
//!
//! Every destination is opened with `openat2(RESOLVE_IN_ROOT |
//! RESOLVE_NO_MAGICLINKS)` and mounted onto `/proc/self/fd/N`, so neither a
//! symlink in the image nor one swapped in later can send a mount outside
//! the rootfs (CVE-2021-30465, CVE-2025-31133 class).

use std::ffi::CString;
use std::fmt;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use oci_spec::runtime::Spec;

use crate::cgroups::CgroupMount;
use crate::error::bound_message;
use crate::sys;

mod copyup;
mod devices;
pub mod idmap;
pub mod inherited;
mod masked;
mod mounts;
pub mod options;
pub mod paths;
mod pivot;
#[cfg(test)]
mod tests;

/// A rootfs setup failure: where (the config entry or step, with its path),
/// what was being done, and the OS error.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    /// A system call failed, e.g.
    /// `mounts[3] (/data): mount bind /srv/x: No such file or directory (os error 2)`.
    #[error("{at}: {op}: {source}")]
    Os {
        at: String,
        op: String,
        #[source]
        source: io::Error,
    },
    /// The configuration asks for something berth refuses or does not support.
    #[error("{at}: {msg}")]
    Config { at: String, msg: String },
}

impl RootfsError {
    /// The OS error number, if the failure was a system call.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            RootfsError::Os { source, .. } => source.raw_os_error(),
            RootfsError::Config { .. } => None,
        }
    }
}

/// A failure inside one step, before it is tagged with the entry it belongs to.
#[derive(Debug)]
pub(crate) enum Fail {
    Os(String, io::Error),
    Msg(String),
}

impl Fail {
    /// Tag with the entry. Both parts are bounded: they may echo a config
    /// path of any length (a mount destination, a device path).
    fn at(self, at: impl fmt::Display) -> RootfsError {
        let at = bound_message(at.to_string(), 1024);
        match self {
            Fail::Os(op, source) => RootfsError::Os { at, op: bound_message(op, 2048), source },
            Fail::Msg(msg) => RootfsError::Config { at, msg: bound_message(msg, 2048) },
        }
    }
}

/// `.or_fail(|| "what")` on an io::Result: the message is built only on error.
pub(crate) trait OrFail<T> {
    fn or_fail<S: Into<String>>(self, op: impl FnOnce() -> S) -> Result<T, Fail>;
}

impl<T> OrFail<T> for io::Result<T> {
    fn or_fail<S: Into<String>>(self, op: impl FnOnce() -> S) -> Result<T, Fail> {
        self.map_err(|e| Fail::Os(op().into(), e))
    }
}

/// What rootfs setup needs to know. Built by the process module in the
/// container's init, which is already in its new mount namespace (and user
/// namespace, with maps written, if any).
pub struct RootfsOptions<'a> {
    pub spec: &'a Spec,
    /// Absolute host path of the rootfs.
    pub rootfs: &'a Path,
    /// Absolute bundle dir (relative bind sources are resolved against it).
    pub bundle: &'a Path,
    /// The container's cgroups, for mounts of type "cgroup".
    pub cgroups: &'a [CgroupMount],
    /// True when the container has its own cgroup namespace.
    pub cgroupns: bool,
    /// True when the container has its own user namespace.
    pub userns: bool,
    /// `--no-pivot`: MS_MOVE + chroot instead of pivot_root.
    pub no_pivot: bool,
    /// The id-mapped mounts berth prepared before the clone ([`idmap`]).
    pub idmapped: Option<&'a idmap::IdmappedMounts>,
    /// No mount namespace: init is in the runtime's, berth has bound the
    /// rootfs privately ([`inherited`]); no propagation change, chroot.
    pub mntns_inherited: bool,
}

fn rootfs_cstr(o: &RootfsOptions) -> Result<CString, RootfsError> {
    CString::new(o.rootfs.as_os_str().as_bytes()).map_err(|_| RootfsError::Config {
        at: "root.path".into(),
        msg: format!("{} contains a NUL byte", o.rootfs.display()),
    })
}

fn propagation(o: &RootfsOptions) -> Result<Option<libc::c_ulong>, RootfsError> {
    let v = o.spec.linux().as_ref().and_then(|l| l.rootfs_propagation().as_deref());
    options::root_propagation(v).map_err(|msg| RootfsError::Config { at: "linux.rootfsPropagation".into(), msg })
}

/// Everything before the createRuntime/createContainer hooks: root
/// propagation, the rootfs bind, `mounts`, default and `linux.devices`,
/// /dev symlinks. Runs in init, in its mount namespace, before pivot.
pub fn prepare(o: &RootfsOptions) -> Result<(), RootfsError> {
    let rootfs = rootfs_cstr(o)?;
    if o.mntns_inherited {
        inherited::check_private(&rootfs).map_err(|f| f.at(format_args!("root.path ({})", o.rootfs.display())))?;
    } else {
        bind_in_own_namespace(o, &rootfs)?;
    }
    let root = paths::Root::open(&rootfs).map_err(|e| RootfsError::Os {
        at: format!("root.path ({})", o.rootfs.display()),
        op: "open rootfs".into(),
        source: e,
    })?;
    let mut path = paths::InPath::default();
    let summary = mounts::mount_all(o, &root, &mut path)?;
    if !summary.dev_is_bind {
        devices::setup(o, &root, &mut path, summary.devpts)?;
    }
    Ok(())
}

/// In the container's own mount namespace: "/" gets rootfsPropagation, the
/// rootfs's parent mount is made unshared, the rootfs is bound onto itself.
fn bind_in_own_namespace(o: &RootfsOptions, rootfs: &CString) -> Result<(), RootfsError> {
    let explicit = propagation(o)?;
    // (r)unbindable waits for finish(), after the pivot: an unbindable host
    // tree here would leave maskedPaths no /dev/null to bind from (crun
    // fails so with runbindable, runc with both). Until then the tree is a
    // slave, as by default.
    let prop = explicit.filter(|p| p & libc::MS_UNBINDABLE == 0).unwrap_or(libc::MS_SLAVE | libc::MS_REC);
    sys::mount(None, c"/", None, libc::MS_REC | prop, None)
        .or_fail(|| "mount --make-r* /")
        .map_err(|f| f.at("linux.rootfsPropagation"))?;
    // An explicit slave/rslave keeps the rootfs a slave of its host peer
    // group (else nothing would reach the container's "/" from the host).
    let parent = if explicit.is_some_and(|p| p & libc::MS_SLAVE != 0) { libc::MS_SLAVE } else { libc::MS_PRIVATE };
    pivot::make_parent_unshared(rootfs, parent).map_err(|f| f.at(format_args!("root.path ({})", o.rootfs.display())))?;
    sys::mount(Some(rootfs), rootfs, None, libc::MS_BIND | libc::MS_REC, None)
        .or_fail(|| format!("bind {} onto itself", o.rootfs.display()))
        .map_err(|f| f.at(format_args!("root.path ({})", o.rootfs.display())))
}

/// After the hooks: maskedPaths, readonlyPaths, pivot_root (or move +
/// chroot), root.readonly, rootfsPropagation. Leaves cwd at "/".
pub fn finish(o: &RootfsOptions) -> Result<(), RootfsError> {
    let rootfs = rootfs_cstr(o)?;
    let prop = propagation(o)?;
    let root = paths::Root::open(&rootfs).map_err(|e| RootfsError::Os {
        at: format!("root.path ({})", o.rootfs.display()),
        op: "open rootfs".into(),
        source: e,
    })?;
    let mut path = paths::InPath::default();
    mounts::readonly_dev(o, &root, &mut path)?;
    if let Some(linux) = o.spec.linux() {
        if let Some(masked) = linux.masked_paths() {
            masked::mask_paths(&root, &mut path, masked)?;
        }
        if let Some(ro) = linux.readonly_paths() {
            masked::readonly_paths(&root, &mut path, ro)?;
        }
    }
    if o.mntns_inherited {
        inherited::chroot_into(&root).map_err(|f| f.at("root.path (chroot)"))?;
    } else if o.no_pivot {
        pivot::move_root(&root, o.rootfs).map_err(|f| f.at("--no-pivot"))?;
    } else {
        pivot::pivot_root(&root).map_err(|f| f.at("pivot_root"))?;
    }
    drop(root);
    if o.spec.root().as_ref().and_then(|r| r.readonly()).unwrap_or(false) {
        pivot::readonly_root().map_err(|f| f.at("root.readonly"))?;
    }
    // As runc: after the pivot, re-apply the propagation to the new "/"
    // (private was already arranged by making the parent mount private).
    if let Some(p) = prop {
        if p & libc::MS_PRIVATE == 0 {
            sys::mount(None, c"/", None, p, None)
                .or_fail(|| "mount --make-* /")
                .map_err(|f| f.at("linux.rootfsPropagation"))?;
        }
    }
    Ok(())
}
