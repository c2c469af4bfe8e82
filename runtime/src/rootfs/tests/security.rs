//! Hostile images (symlinks out of the rootfs), clear errors, user namespaces.

use std::fs;
use std::os::unix::fs::symlink;

use serde_json::json;

use super::*;
use crate::rootfs::{finish, prepare};

fn err(e: crate::rootfs::RootfsError) -> String {
    e.to_string()
}

#[test]
fn destination_symlinks_pointing_out_land_inside() {
    require_root!();
    let fx = Fixture::new("escape");
    let outside = fx.dir.join("outside");
    fs::create_dir(&outside).unwrap();
    // Relative and absolute symlinks that, followed on the host, lead out.
    symlink("../../../../../../../../outside", fx.rootfs.join("rel")).unwrap();
    symlink(&outside, fx.rootfs.join("abs")).unwrap();
    symlink("../outside/file", fx.rootfs.join("filelink")).unwrap();
    let src = fx.dir.join("src");
    fs::create_dir(&src).unwrap();
    fs::write(fx.dir.join("srcfile"), "f").unwrap();
    let spec = spec(json!({
        "ociVersion": "1.2.0",
        "root": {"path": "rootfs"},
        "mounts": [
            {"destination": "/rel/x", "type": "tmpfs", "source": "tmpfs"},
            {"destination": "/abs/y", "type": "bind", "source": "src", "options": ["rbind"]},
            {"destination": "/filelink", "type": "bind", "source": "srcfile", "options": ["bind"]}
        ],
        "linux": {"maskedPaths": ["/abs"], "readonlyPaths": ["/rel"]}
    }));
    let outside_s = outside.to_string_lossy().into_owned();
    let inside_abs = fx.rootfs.join(outside.strip_prefix("/").unwrap());
    let r = in_child(TIMEOUT, || {
        new_mount_ns()?;
        let o = fx.opts(&spec);
        prepare(&o).map_err(err)?;
        // Before the pivot the host paths are still visible here.
        ensure!(fs::read_dir(&outside).map_err(|e| e.to_string())?.next().is_none(), "something was created in the host dir {outside_s}");
        ensure!(mountinfo(&outside_s).is_none(), "a mount landed on the host dir");
        ensure!(fs_type(fx.rootfs.join("outside/x"))? == TMPFS_MAGIC, "/rel/x should be inside the rootfs at /outside/x");
        ensure!(mountinfo(&inside_abs.join("y").to_string_lossy()).is_some(), "/abs/y should be inside at {}", inside_abs.display());
        ensure!(fx.rootfs.join("outside/file").exists(), "/filelink should be created inside the rootfs");
        finish(&o).map_err(err)?;
        ensure!(fs_type("/outside/x")? == TMPFS_MAGIC, "inside view of /rel/x");
        ensure!(is_readonly("/rel")?, "readonly path through a symlink");
        Ok(())
    });
    fx.check_clean();
    r.unwrap();
    assert!(fs::read_dir(&outside).unwrap().next().is_none(), "host dir touched");
}

#[test]
fn proc_or_sys_symlinked_out_is_refused() {
    require_root!();
    for (dir, target, typ) in [("proc", "/", "proc"), ("sys", "..", "sysfs"), ("proc", "../../..", "proc")] {
        let fx = Fixture::new("procsym");
        fs::remove_dir(fx.rootfs.join(dir)).unwrap();
        symlink(target, fx.rootfs.join(dir)).unwrap();
        let spec = spec(json!({
            "ociVersion": "1.2.0",
            "root": {"path": "rootfs"},
            "mounts": [{"destination": format!("/{dir}"), "type": typ, "source": typ}]
        }));
        let rootfs_s = fx.rootfs.to_string_lossy().into_owned();
        let r = in_child(TIMEOUT, || {
            new_mount_ns()?;
            let before = fs::read_to_string("/proc/self/mountinfo").map_err(|e| e.to_string())?;
            let count = |mi: &str| mi.lines().filter(|l| l.contains(&format!(" - {typ} "))).count();
            let e = match prepare(&fx.opts(&spec)) {
                Ok(()) => return Err(format!("/{dir} -> {target}: prepare should refuse")),
                Err(e) => e.to_string(),
            };
            ensure!(e.starts_with(&format!("mounts[0] (/{dir}): ")) && e.contains("ordinary directory"), "message: {e}");
            let after = fs::read_to_string("/proc/self/mountinfo").map_err(|e| e.to_string())?;
            ensure!(count(&after) == count(&before), "a {typ} mount appeared:\n{after}");
            ensure!(mountinfo("/").is_some_and(|l| !l.contains(&format!(" - {typ} "))), "{typ} on the host /");
            ensure!(mountinfo(&rootfs_s).is_some_and(|l| !l.contains(&format!(" - {typ} "))), "{typ} on the rootfs");
            Ok(())
        });
        fx.check_clean();
        r.unwrap();
    }
}

#[test]
fn dev_symlinked_out_keeps_devices_inside() {
    require_root!();
    let fx = Fixture::new("devsym");
    fs::remove_dir(fx.rootfs.join("dev")).unwrap();
    symlink("../../..", fx.rootfs.join("dev")).unwrap();
    let spec = spec(json!({"ociVersion": "1.2.0", "root": {"path": "rootfs"}}));
    let r = in_child(TIMEOUT, || {
        new_mount_ns()?;
        let o = fx.opts(&spec);
        prepare(&o).map_err(err)?;
        // /dev resolves to the rootfs's own root: the nodes are made there.
        let m = fs::symlink_metadata(fx.rootfs.join("null")).map_err(|e| format!("rootfs/null: {e}"))?;
        ensure!(std::os::unix::fs::FileTypeExt::is_char_device(&m.file_type()), "rootfs/null");
        ensure!(!fx.dir.join("null").exists(), "device made in the bundle dir");
        ensure!(fs::read_link(fx.rootfs.join("fd")).is_ok(), "/dev/fd symlink inside");
        finish(&o).map_err(err)?;
        Ok(())
    });
    fx.check_clean();
    r.unwrap();
    assert!(!fx.dir.join("null").exists() && !std::path::Path::new("/null").exists());
}

#[test]
fn idmap_and_bad_source_are_clear_errors() {
    require_root!();
    let fx = Fixture::new("errors");
    let cases = [
        (json!([{"destination": "/data", "type": "bind", "source": "/", "options": ["rbind", "idmap"]}]),
         "mounts[0] (/data): the id-mapped mount was not prepared before init (rootfs::idmap::prepare)".to_string()),
        (json!([{"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"},
                {"destination": "/data", "type": "bind", "source": "nonexistent", "options": ["rbind"]}]),
         format!("mounts[1] (/data): mount bind {}/nonexistent: No such file or directory (os error 2)", fx.dir.display())),
        (json!([{"destination": "/x", "type": "nosuchfs", "source": "none"}]),
         "mounts[0] (/x): mount nosuchfs: No such device (os error 19)".to_string()),
    ];
    for (mounts, want) in cases {
        let spec = spec(json!({"ociVersion": "1.2.0", "root": {"path": "rootfs"}, "mounts": mounts}));
        let r = in_child(TIMEOUT, || {
            new_mount_ns()?;
            match prepare(&fx.opts(&spec)) {
                Ok(()) => Err("prepare should fail".into()),
                Err(e) if e.to_string() == want => Ok(()),
                Err(e) => Err(format!("got  {e}\nwant {want}")),
            }
        });
        fx.check_clean();
        r.unwrap();
    }
    let spec = spec(json!({"ociVersion": "1.2.0", "root": {"path": "rootfs"}, "linux": {"rootfsPropagation": "sideways"}}));
    in_child(TIMEOUT, || {
        new_mount_ns()?;
        let e = prepare(&fx.opts(&spec)).map(|()| "prepare should fail".to_string()).unwrap_or_else(|e| e.to_string());
        ensure!(e.starts_with("linux.rootfsPropagation: \"sideways\""), "{e}");
        Ok(())
    })
    .unwrap();
}

/// Write this process's single-id maps (0 -> 0) after unshare(CLONE_NEWUSER).
fn map_self_as_root() -> R {
    for (f, v) in [("/proc/self/setgroups", "deny"), ("/proc/self/uid_map", "0 0 1"), ("/proc/self/gid_map", "0 0 1")] {
        fs::write(f, v).map_err(|e| format!("write {f}: {e}"))?;
    }
    Ok(())
}

#[test]
fn user_namespace_devices_sysfs_and_locked_flags() {
    require_root!();
    let fx = Fixture::new("userns");
    let locked = fx.dir.join("locked");
    fs::create_dir(&locked).unwrap();
    let has_fuse = fs::metadata("/dev/fuse").is_ok();
    let devices = if has_fuse { json!([{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}]) } else { json!([]) };
    let spec = spec(json!({
        "ociVersion": "1.2.0",
        "root": {"path": "rootfs", "readonly": true},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/data", "type": "bind", "source": "locked", "options": ["rbind", "ro"]}
        ],
        "linux": {
            "namespaces": [{"type": "user"}, {"type": "mount"}, {"type": "pid"}],
            "devices": devices,
            "maskedPaths": ["/proc/version", "/proc/kcore"],
            "readonlyPaths": ["/proc/sys"]
        }
    }));
    let locked_s = locked.to_string_lossy().into_owned();
    let r = in_child(TIMEOUT, || {
        new_mount_ns()?;
        // A source whose nosuid/nodev/noatime the kernel will lock once this
        // mount is copied into a mount namespace owned by a user namespace.
        sys_mount(Some("tmpfs"), &locked_s, Some("tmpfs"), libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOATIME, None)?;
        // SAFETY: plain syscalls in the single-threaded child.
        ensure!(unsafe { libc::unshare(libc::CLONE_NEWUSER) } == 0, "unshare user: {}", io::Error::last_os_error());
        map_self_as_root()?;
        // SAFETY: unshare takes integer flags; the forked test child is single-threaded.
        ensure!(unsafe { libc::unshare(libc::CLONE_NEWNS | libc::CLONE_NEWPID) } == 0, "unshare mnt+pid: {}", io::Error::last_os_error());
        in_child(TIMEOUT, || {
            let mut o = fx.opts(&spec);
            o.userns = true;
            prepare(&o).map_err(err)?;
            finish(&o).map_err(err)?;
            let (a, b, chr, _, _) = dev_of("/dev/null")?;
            ensure!((a, b, chr) == (1, 3, true), "/dev/null in userns: {a}:{b}");
            ensure!(mountinfo("/dev/null").is_some(), "/dev/null should be a bind of the host node");
            if has_fuse {
                let (a, b, _, _, _) = dev_of("/dev/fuse")?;
                ensure!((a, b) == (10, 229), "/dev/fuse");
            }
            ensure!(fs::write("/dev/null", "x").is_ok(), "write /dev/null");
            ensure!(fs_type("/sys")? == SYSFS_MAGIC, "/sys (bind of the host's) type");
            ensure!(is_readonly("/sys")?, "/sys not ro");
            let (_, f) = statfs("/data")?;
            ensure!(f & libc::ST_RDONLY != 0 && f & libc::ST_NOSUID != 0 && f & libc::ST_NODEV != 0, "/data flags {f:#x}");
            ensure!(is_readonly("/proc/sys")?, "/proc/sys");
            let k = dev_of("/proc/version");
            ensure!(k.as_ref().map(|d| (d.0, d.1)) == Ok((1, 3)), "/proc/version masked: {k:?}");
            ensure!(is_readonly("/")?, "root.readonly");
            Ok(())
        })
    });
    fx.check_clean();
    r.unwrap();
}
