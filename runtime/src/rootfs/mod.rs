//! The container's root filesystem: mounts, devices, pivot_root, masked and
//! readonly paths. Every path is resolved inside the rootfs.
//!
//! OWNER: rootfs helper. Interface fixed; implementation to be filled in.

use std::path::Path;

use oci_spec::runtime::Spec;

use crate::cgroups::CgroupMount;

#[derive(Debug, thiserror::Error)]
#[error("{msg}")]
pub struct RootfsError {
    pub msg: String,
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
}

/// Everything before the createRuntime/createContainer hooks: root
/// propagation, the rootfs bind, `mounts`, default and `linux.devices`,
/// /dev symlinks. Runs in init, in its mount namespace, before pivot.
pub fn prepare(o: &RootfsOptions) -> Result<(), RootfsError> {
    let _ = o;
    unimplemented!("rootfs::prepare")
}

/// After the hooks: pivot_root (or move + chroot), maskedPaths,
/// readonlyPaths, root.readonly, rootfsPropagation. Leaves cwd at "/".
pub fn finish(o: &RootfsOptions) -> Result<(), RootfsError> {
    let _ = o;
    unimplemented!("rootfs::finish")
}
