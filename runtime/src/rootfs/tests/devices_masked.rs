//! Devices, /dev symlinks, maskedPaths, readonlyPaths, root.readonly, --no-pivot.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{symlink, FileTypeExt, MetadataExt};

use serde_json::json;

use super::*;
use crate::rootfs::{finish, prepare};

fn err(e: crate::rootfs::RootfsError) -> String {
    e.to_string()
}

#[test]
fn devices_default_custom_and_replaced() {
    require_root!();
    let fx = Fixture::new("devices");
    let dev = fx.rootfs.join("dev");
    // A file where /dev/zero goes (replaced), the right /dev/full (kept,
    // same inode), and /dev/null as a symlink out (replaced, not followed).
    fs::write(dev.join("zero"), "not a device").unwrap();
    symlink("/etc/passwd", dev.join("null")).unwrap();
    let spec = spec(json!({
        "ociVersion": "1.2.0",
        "root": {"path": "rootfs"},
        "linux": {"devices": [
            {"path": "/dev/myzero", "type": "c", "major": 1, "minor": 5, "fileMode": 384, "uid": 1000, "gid": 1001},
            {"path": "/dev/sub/dir/loopx", "type": "b", "major": 7, "minor": 0},
            {"path": "/dev/myfifo", "type": "p"},
            {"path": "/dev/stdin", "type": "u", "major": 1, "minor": 3}
        ]}
    }));
    let full_ino = std::cell::Cell::new(0);
    let r = in_child(TIMEOUT, || {
        new_mount_ns()?;
        // /dev/full made beforehand with the right numbers (and wrong mode).
        let full = CString::new(dev.join("full").as_os_str().as_bytes()).unwrap();
        // SAFETY: valid C string.
        let _ = unsafe { libc::mknod(full.as_ptr(), libc::S_IFCHR | 0o600, libc::makedev(1, 7)) };
        full_ino.set(fs::metadata(dev.join("full")).map_err(|e| e.to_string())?.ino());
        let o = fx.opts(&spec);
        prepare(&o).map_err(err)?;
        finish(&o).map_err(err)?;
        for (p, ma, mi) in [("/dev/null", 1, 3), ("/dev/zero", 1, 5), ("/dev/full", 1, 7), ("/dev/tty", 5, 0)] {
            let (a, b, chr, mode, _) = dev_of(p)?;
            ensure!((a, b, chr, mode) == (ma, mi, true, 0o666), "{p}: {a}:{b} chr={chr} mode={mode:o}");
        }
        ensure!(fs::metadata("/dev/full").map_err(|e| e.to_string())?.ino() == full_ino.get(), "/dev/full was recreated");
        let (a, b, chr, mode, uid) = dev_of("/dev/myzero")?;
        ensure!((a, b, chr, mode, uid) == (1, 5, true, 0o600, 1000), "/dev/myzero {a}:{b} {chr} {mode:o} {uid}");
        ensure!(fs::symlink_metadata("/dev/myzero").map_err(|e| e.to_string())?.gid() == 1001, "gid");
        let m = fs::symlink_metadata("/dev/sub/dir/loopx").map_err(|e| e.to_string())?;
        ensure!(m.file_type().is_block_device() && m.rdev() == libc::makedev(7, 0), "block device");
        ensure!(fs::symlink_metadata("/dev/myfifo").map_err(|e| e.to_string())?.file_type().is_fifo(), "fifo");
        // A device asked for at /dev/stdin wins over the symlink (made only when absent).
        let (a, b, chr, _, _) = dev_of("/dev/stdin")?;
        ensure!((a, b, chr) == (1, 3, true), "/dev/stdin device");
        // The other /dev symlinks exist (no /dev/pts mount: no ptmx link).
        ensure!(fs::read_link("/dev/stdout").is_ok() && fs::symlink_metadata("/dev/ptmx").is_err(), "dev symlinks");
        Ok(())
    });
    fx.check_clean();
    r.unwrap();
    // Nothing escaped through the /dev/null symlink.
    assert!(fs::symlink_metadata("/etc/passwd").unwrap().file_type().is_file());
}

#[test]
fn linux_device_over_a_different_file_is_an_error() {
    require_root!();
    let fx = Fixture::new("devmismatch");
    fs::write(fx.rootfs.join("oc-existing"), "a regular file").unwrap();
    for (path, typ, major, want) in [
        ("/oc-existing", "c", 1, "linux.devices[0] (/oc-existing): /oc-existing already exists as a regular file, not the requested device (a character device 1:3)"),
        ("/dev/null", "b", 1, "linux.devices[0] (/dev/null): /dev/null already exists as a character device 1:3, not the requested device (a block device 1:3)"),
    ] {
        let spec = spec(json!({
            "ociVersion": "1.2.0",
            "root": {"path": "rootfs"},
            "linux": {"devices": [{"path": path, "type": typ, "major": major, "minor": 3}]}
        }));
        let r = in_child(TIMEOUT, || {
            new_mount_ns()?;
            match prepare(&fx.opts(&spec)) {
                Ok(()) => Err(format!("{path}: prepare should fail")),
                Err(e) if e.to_string() == want => Ok(()),
                Err(e) => Err(format!("got  {e}\nwant {want}")),
            }
        });
        fx.check_clean();
        r.unwrap();
    }
    // The file was left as it was.
    assert_eq!(fs::read_to_string(fx.rootfs.join("oc-existing")).unwrap(), "a regular file");
}

#[test]
fn masked_and_readonly_paths() {
    require_root!();
    let fx = Fixture::new("masked");
    fs::create_dir_all(fx.rootfs.join("secret")).unwrap();
    fs::write(fx.rootfs.join("secret/key"), "k").unwrap();
    fs::write(fx.rootfs.join("etc/shadow"), "hash").unwrap();
    let data = fx.dir.join("data");
    fs::create_dir(&data).unwrap();
    let spec = spec(json!({
        "ociVersion": "1.2.0",
        "root": {"path": "rootfs"},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/data", "type": "bind", "source": "data", "options": ["rbind", "rw"]}
        ],
        "linux": {
            "maskedPaths": ["/proc/version", "/secret", "/etc/shadow", "/does/not/exist", "/proc/nonexistent"],
            "readonlyPaths": ["/proc/sys", "/data", "/missing/too"]
        }
    }));
    let rootfs_null = fx.rootfs.join("dev/null");
    let r = in_child(TIMEOUT, || {
        new_mount_ns()?;
        let o = fx.opts(&spec);
        prepare(&o).map_err(err)?;
        // CVE-2025-31133: between prepare and finish the container's
        // /dev/null becomes a symlink to a sensitive file. Masking must
        // still bind the host's /dev/null, not follow this.
        fs::remove_file(&rootfs_null).map_err(|e| format!("rm {}: {e}", rootfs_null.display()))?;
        symlink("/proc/sys/kernel/core_pattern", &rootfs_null).map_err(|e| format!("symlink: {e}"))?;
        finish(&o).map_err(err)?;
        for p in ["/proc/version", "/etc/shadow"] {
            let (a, b, chr, _, _) = dev_of(p).or_else(|_| {
                let m = fs::metadata(p).map_err(|e| e.to_string())?;
                Ok::<_, String>((libc::major(m.rdev()), libc::minor(m.rdev()), m.file_type().is_char_device(), 0, 0))
            })?;
            ensure!((a, b, chr) == (1, 3, true), "{p} should be the host /dev/null, is {a}:{b} chr={chr}");
            let mut s = String::new();
            fs::File::open(p).and_then(|mut f| f.read_to_string(&mut s)).map_err(|e| format!("{p}: {e}"))?;
            ensure!(s.is_empty(), "{p} readable content");
        }
        ensure!(fs_type("/secret")? == TMPFS_MAGIC && is_readonly("/secret")?, "/secret not a ro tmpfs");
        ensure!(fs::read_dir("/secret").map_err(|e| e.to_string())?.next().is_none(), "/secret not empty");
        let (_, f) = statfs("/proc/sys")?;
        ensure!(f & libc::ST_RDONLY != 0, "/proc/sys not ro");
        ensure!(f & libc::ST_NOSUID != 0 && f & libc::ST_NOEXEC != 0, "/proc/sys lost nosuid/noexec: {f:#x}");
        ensure!(fs::OpenOptions::new().write(true).open("/proc/sys/kernel/hostname").is_err(), "/proc/sys writable");
        write_is_erofs("/data")?;
        ensure!(!is_readonly("/proc")?, "/proc itself should stay rw");
        Ok(())
    });
    fx.check_clean();
    r.unwrap();
}

#[test]
fn root_readonly_with_no_pivot() {
    require_root!();
    let fx = Fixture::new("nopivot");
    fs::write(fx.rootfs.join("marker"), "inside").unwrap();
    let spec = spec(json!({
        "ociVersion": "1.2.0",
        "root": {"path": "rootfs", "readonly": true},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}
        ]
    }));
    let r = in_child(TIMEOUT, || {
        new_mount_ns()?;
        let mut o = fx.opts(&spec);
        o.no_pivot = true;
        let old_root = fs::File::open("/").map_err(|e| e.to_string())?;
        prepare(&o).map_err(err)?;
        finish(&o).map_err(err)?;
        ensure!(fs::read_to_string("/marker").map_err(|e| e.to_string())? == "inside", "/ is not the rootfs");
        ensure!(std::env::current_dir().map_err(|e| e.to_string())? == std::path::Path::new("/"), "cwd");
        ensure!(is_readonly("/")?, "/ not read-only");
        write_is_erofs("")?;
        ensure!(!is_readonly("/tmp")?, "/tmp should stay writable");
        fs::write("/tmp/x", "x").map_err(|e| format!("write /tmp: {e}"))?;
        // The host's procfs outside the rootfs is gone from the namespace:
        // through the old root, /proc is an empty directory now.
        let via_old = format!("/proc/self/fd/{}/proc/self", std::os::fd::AsRawFd::as_raw_fd(&old_root));
        ensure!(fs::symlink_metadata(&via_old).is_err(), "host /proc still mounted under the old root");
        ensure!(fs::symlink_metadata("/proc/self").is_ok(), "container /proc");
        Ok(())
    });
    fx.check_clean();
    r.unwrap();
}
