//! A container's root filesystem: overlayfs with the image's rootfs as the
//! lower layer and upper/work per container, or a copy of the image where
//! overlayfs cannot be mounted (no overlay module, a store on a filesystem
//! overlayfs refuses as upper).

use std::path::Path;
use std::process::Command;

use nix::mount::{mount, umount2, MntFlags, MsFlags};

/// Make `<cdir>/bundle/rootfs` from `image_rootfs`; returns "overlay" or "copy".
pub fn prepare(image_rootfs: &Path, cdir: &Path) -> Result<&'static str, String> {
    let target = cdir.join("bundle/rootfs");
    std::fs::create_dir_all(&target).map_err(|e| format!("create {}: {e}", target.display()))?;
    let (upper, work) = (cdir.join("upper"), cdir.join("work"));
    for d in [&upper, &work] {
        std::fs::create_dir(d).map_err(|e| format!("create {}: {e}", d.display()))?;
    }
    for p in [image_rootfs, &upper, &work] {
        if p.to_string_lossy().contains([',', ':']) {
            return Err(format!("{}: a path with ',' or ':' cannot be an overlayfs layer; use another --root", p.display()));
        }
    }
    let data = format!(
        "lowerdir={},upperdir={},workdir={}",
        image_rootfs.display(),
        upper.display(),
        work.display()
    );
    match mount(Some("overlay"), &target, Some("overlay"), MsFlags::empty(), Some(data.as_str())) {
        Ok(()) => Ok("overlay"),
        Err(e) => {
            eprintln!("berthctl: overlayfs cannot be mounted here ({e}); copying the image's rootfs instead");
            let _ = std::fs::remove_dir(&upper);
            let _ = std::fs::remove_dir_all(&work);
            let src = image_rootfs.join(".");
            let out = Command::new("cp")
                .arg("-a")
                .arg(&src)
                .arg(&target)
                .output()
                .map_err(|e| format!("run cp: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "copy {} to {}: {}",
                    src.display(),
                    target.display(),
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
            Ok("copy")
        }
    }
}

/// Unmount the overlay (if mounted). A rootfs that is not a mount point
/// (a copy, or already unmounted) is fine.
pub fn release(cdir: &Path) -> Result<(), String> {
    let target = cdir.join("bundle/rootfs");
    loop {
        match umount2(&target, MntFlags::UMOUNT_NOFOLLOW) {
            Ok(()) => continue, // stacked mounts: until none is left
            Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => return Ok(()),
            Err(nix::errno::Errno::EBUSY) => {
                umount2(&target, MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW)
                    .map_err(|e| format!("unmount {}: {e}", target.display()))?;
                return Ok(());
            }
            Err(e) => return Err(format!("unmount {}: {e}", target.display())),
        }
    }
}
