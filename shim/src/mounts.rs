//! The rootfs mounts containerd hands over in Create (overlay from the
//! snapshotter, or bind), mounted on `<bundle>/rootfs` and unmounted on
//! delete.

use std::path::Path;

use containerd_shim_protos::api::Mount;
use nix::mount::{mount, umount2, MntFlags, MsFlags};

/// Mount flags, read-only, and the data string from fstab-style options
/// (Create's rootfs mounts). Public for the fuzz target (fuzz/).
pub fn parse_options(opts: &[String]) -> (MsFlags, bool, String) {
    let mut flags = MsFlags::empty();
    let mut ro = false;
    let mut data = Vec::new();
    for o in opts {
        match o.as_str() {
            "ro" => ro = true,
            "rw" => {}
            "bind" => flags |= MsFlags::MS_BIND,
            "rbind" => flags |= MsFlags::MS_BIND | MsFlags::MS_REC,
            "nosuid" => flags |= MsFlags::MS_NOSUID,
            "nodev" => flags |= MsFlags::MS_NODEV,
            "noexec" => flags |= MsFlags::MS_NOEXEC,
            "noatime" => flags |= MsFlags::MS_NOATIME,
            "relatime" => flags |= MsFlags::MS_RELATIME,
            "sync" => flags |= MsFlags::MS_SYNCHRONOUS,
            "private" | "rprivate" | "slave" | "rslave" | "shared" | "rshared" | "suid" | "dev"
            | "exec" => {}
            other => data.push(other),
        }
    }
    (flags, ro, data.join(","))
}

/// Mount each of containerd's mounts on `target`, in order. On error,
/// whatever was mounted is unmounted again.
pub fn mount_rootfs(mounts: &[Mount], target: &Path) -> Result<(), String> {
    if mounts.is_empty() {
        return Ok(());
    }
    std::fs::create_dir_all(target).map_err(|e| format!("create {}: {e}", target.display()))?;
    for m in mounts {
        if let Err(e) = mount_one(m, target) {
            let _ = unmount_rootfs(target);
            return Err(e);
        }
    }
    Ok(())
}

fn mount_one(m: &Mount, target: &Path) -> Result<(), String> {
    let (flags, ro, data) = parse_options(&m.options);
    let bind = flags.contains(MsFlags::MS_BIND);
    let fstype = if bind { None } else { Some(m.type_.as_str()) };
    let data = if data.is_empty() || bind {
        None
    } else {
        Some(data.as_str())
    };
    let first = if ro && !bind {
        flags | MsFlags::MS_RDONLY
    } else {
        flags
    };
    mount(Some(m.source.as_str()), target, fstype, first, data).map_err(|e| {
        format!(
            "mount {} ({}) on {}: {e}",
            m.source,
            m.type_,
            target.display()
        )
    })?;
    if ro && bind {
        mount(
            None::<&str>,
            target,
            None::<&str>,
            flags | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .map_err(|e| format!("remount {} read-only: {e}", target.display()))?;
    }
    Ok(())
}

/// Unmount everything stacked on `target` (nothing mounted is fine).
pub fn unmount_rootfs(target: &Path) -> Result<(), String> {
    for _ in 0..32 {
        match umount2(target, MntFlags::MNT_DETACH) {
            Ok(()) => continue,
            Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => return Ok(()),
            Err(e) => return Err(format!("unmount {}: {e}", target.display())),
        }
    }
    Err(format!(
        "unmount {}: still mounted after 32 unmounts",
        target.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options() {
        let o = |v: &[&str]| parse_options(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        let (f, ro, d) = o(&["rbind", "ro"]);
        assert!(f.contains(MsFlags::MS_BIND | MsFlags::MS_REC) && ro && d.is_empty());
        let (f, ro, d) = o(&["index=off", "workdir=/w", "upperdir=/u", "lowerdir=/l"]);
        assert!(f.is_empty() && !ro);
        assert_eq!(d, "index=off,workdir=/w,upperdir=/u,lowerdir=/l");
    }
}
