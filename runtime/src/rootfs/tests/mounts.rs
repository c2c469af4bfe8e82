//! mounts[]: bind, tmpfs, proc, sysfs, devpts, mqueue, cgroup, propagation,
//! recursive attributes.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use serde_json::json;

use super::*;
use crate::cgroups::CgroupMount;
use crate::rootfs::{finish, prepare};
use crate::test_skip::{skip, CGROUP2, CGROUP_V1};

fn err(e: crate::rootfs::RootfsError) -> String {
    e.to_string()
}

#[test]
fn bind_ro_tmpfs_options_and_pivot() {
    require_root!();
    let fx = Fixture::new("bind");
    let src = fx.dir.join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("hello"), "hi").unwrap();
    fs::write(fx.dir.join("file-src"), "one file").unwrap();
    fs::set_permissions(fx.rootfs.join("etc"), fs::Permissions::from_mode(0o700)).unwrap();
    let spec = spec(json!({
        "ociVersion": "1.2.0",
        "root": {"path": "rootfs"},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/data", "type": "bind", "source": "src", "options": ["rbind", "ro", "nosuid"]},
            {"destination": "/deep/new/file", "source": fx.dir.join("file-src"), "options": ["bind", "ro"]},
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "size=1m", "mode=1777"]},
            {"destination": "/etc", "type": "tmpfs", "source": "tmpfs", "options": ["noexec"]}
        ]
    }));
    let r = in_child(TIMEOUT, || {
        new_mount_ns()?;
        let o = fx.opts(&spec);
        prepare(&o).map_err(err)?;
        finish(&o).map_err(err)?;
        ensure!(std::env::current_dir().map_err(|e| e.to_string())? == Path::new("/"), "cwd is not /");
        ensure!(fs::metadata("/bin/busybox").is_ok(), "/ is not the rootfs");
        ensure!(!fx.dir.exists(), "the host's bundle dir is still visible after pivot_root");
        ensure!(mountinfo("/sys/fs/cgroup/cpu").is_none(), "host mounts still present after pivot_root");
        ensure!(fs::read_to_string("/data/hello").map_err(|e| e.to_string())? == "hi", "bind content");
        let (_, f) = statfs("/data")?;
        ensure!(f & libc::ST_RDONLY != 0 && f & libc::ST_NOSUID != 0, "/data flags {f:#x}");
        write_is_erofs("/data")?;
        ensure!(fs::read_to_string("/deep/new/file").map_err(|e| e.to_string())? == "one file", "file bind");
        ensure!(is_readonly("/deep/new/file")?, "file bind not ro");
        let (t, f) = statfs("/tmp")?;
        ensure!(t == TMPFS_MAGIC && f & libc::ST_NODEV != 0 && f & libc::ST_NOSUID != 0, "/tmp {t:#x} {f:#x}");
        let mode = fs::metadata("/tmp").map_err(|e| e.to_string())?.permissions().mode() & 0o7777;
        ensure!(mode == 0o1777, "/tmp mode {mode:o}");
        ensure!(mountinfo("/tmp").is_some_and(|l| l.contains("size=1024k")), "/tmp size: {:?}", mountinfo("/tmp"));
        let mode = fs::metadata("/etc").map_err(|e| e.to_string())?.permissions().mode() & 0o7777;
        ensure!(mode == 0o700, "tmpfs over existing /etc should keep mode 700, got {mode:o}");
        let st = std::process::Command::new("/bin/busybox").arg("true").status().map_err(|e| e.to_string())?;
        ensure!(st.success(), "exec busybox in the new root");
        Ok(())
    });
    fx.check_clean();
    r.unwrap();
}

#[test]
fn proc_sysfs_devpts_mqueue_and_dev() {
    require_root!();
    let fx = Fixture::new("special");
    let spec = spec(json!({
        "ociVersion": "1.2.0",
        "root": {"path": "rootfs"},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k", "ro"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}
        ]
    }));
    let r = in_child(TIMEOUT, || {
        new_mount_ns()?;
        let o = fx.opts(&spec);
        prepare(&o).map_err(err)?;
        finish(&o).map_err(err)?;
        ensure!(fs_type("/proc")? == PROC_MAGIC, "/proc type");
        ensure!(fs_type("/sys")? == SYSFS_MAGIC && is_readonly("/sys")?, "/sys");
        ensure!(fs_type("/dev/pts")? == DEVPTS_MAGIC, "/dev/pts type");
        ensure!(fs_type("/dev/mqueue")? == MQUEUE_MAGIC, "/dev/mqueue type");
        ensure!(fs_type("/dev/shm")? == TMPFS_MAGIC, "/dev/shm type");
        ensure!(fs_type("/dev")? == TMPFS_MAGIC, "/dev type");
        // ro on the /dev tmpfs is applied after the devices are made.
        ensure!(is_readonly("/dev")?, "/dev should be read-only at the end");
        ensure!(statfs("/dev")?.1 & libc::ST_NOSUID != 0, "/dev kept nosuid");
        ensure!(fs::read_link("/dev/ptmx").map_err(|e| e.to_string())? == Path::new("pts/ptmx"), "/dev/ptmx");
        ensure!(fs::read_link("/dev/fd").map_err(|e| e.to_string())? == Path::new("/proc/self/fd"), "/dev/fd");
        for (n, t) in [("stdin", 0), ("stdout", 1), ("stderr", 2)] {
            let l = fs::read_link(format!("/dev/{n}")).map_err(|e| e.to_string())?;
            ensure!(l == Path::new(&format!("/proc/self/fd/{t}")), "/dev/{n} -> {l:?}");
        }
        for (p, ma, mi) in [("/dev/null", 1, 3), ("/dev/zero", 1, 5), ("/dev/full", 1, 7), ("/dev/random", 1, 8), ("/dev/urandom", 1, 9), ("/dev/tty", 5, 0)] {
            let (a, b, chr, mode, uid) = dev_of(p)?;
            ensure!((a, b, chr, mode, uid) == (ma, mi, true, 0o666, 0), "{p}: {a}:{b} chr={chr} mode={mode:o} uid={uid}");
        }
        ensure!(fs::write("/dev/null", "x").is_ok(), "write /dev/null");
        // The devpts instance is new: ptmx opens through the symlink.
        ensure!(fs::OpenOptions::new().read(true).write(true).open("/dev/ptmx").is_ok(), "open /dev/ptmx");
        Ok(())
    });
    fx.check_clean();
    r.unwrap();
}

fn v1_cgroups(unified_too: bool) -> Vec<CgroupMount> {
    crate::cgroups::hierarchies()
        .unwrap()
        .into_iter()
        .filter(|h| unified_too || !h.unified)
        .map(|h| CgroupMount { dir: h.mountpoint.clone(), mountpoint: h.mountpoint, subsystems: h.subsystems, unified: h.unified, path: "/".into() })
        .collect()
}

#[test]
fn cgroup_v1_binds_with_comount_symlinks() {
    require_root!();
    let mut cgs = v1_cgroups(true);
    if cgs.iter().all(|c| c.unified) {
        return skip(CGROUP_V1, "no cgroup v1 hierarchies");
    }
    // Stand in for a co-mounted cpu,cpuacct hierarchy (this host mounts them apart).
    cgs.retain(|c| c.name() != "cpu" && c.name() != "cpuacct");
    let cpu_dir = PathBuf::from("/sys/fs/cgroup/cpu");
    cgs.push(CgroupMount {
        mountpoint: "/nonexistent/cpu,cpuacct".into(),
        subsystems: vec!["cpu".into(), "cpuacct".into()],
        unified: false,
        path: "/".into(),
        dir: cpu_dir,
    });
    let fx = Fixture::new("cgroup1");
    let spec = spec(json!({
        "ociVersion": "1.2.0",
        "root": {"path": "rootfs"},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ]
    }));
    let r = in_child(TIMEOUT, || {
        new_mount_ns()?;
        let mut o = fx.opts(&spec);
        o.cgroups = &cgs;
        prepare(&o).map_err(err)?;
        finish(&o).map_err(err)?;
        let (t, f) = statfs("/sys/fs/cgroup")?;
        ensure!(t == TMPFS_MAGIC && f & libc::ST_RDONLY != 0, "/sys/fs/cgroup tmpfs ro: {t:#x} {f:#x}");
        for c in &cgs {
            let p = format!("/sys/fs/cgroup/{}", c.name());
            let want = if c.unified { CGROUP2_MAGIC } else { CGROUP_MAGIC };
            let (t, f) = statfs(&p)?;
            ensure!(t == want, "{p} type {t:#x}");
            ensure!(f & libc::ST_RDONLY != 0 && f & libc::ST_NOSUID != 0, "{p} flags {f:#x}");
        }
        for l in ["cpu", "cpuacct"] {
            let t = fs::read_link(format!("/sys/fs/cgroup/{l}")).map_err(|e| format!("{l}: {e}"))?;
            ensure!(t == Path::new("cpu,cpuacct"), "/sys/fs/cgroup/{l} -> {t:?}");
        }
        ensure!(fs::metadata("/sys/fs/cgroup/cpu/cpu.shares").is_ok(), "cpu.shares through the symlink");
        write_is_erofs("/sys/fs/cgroup/memory")?;
        Ok(())
    });
    fx.check_clean();
    r.unwrap();
}

#[test]
fn cgroup_v1_with_cgroupns_mounts_hierarchies() {
    require_root!();
    let cgs = v1_cgroups(true);
    if cgs.iter().all(|c| c.unified) {
        return skip(CGROUP_V1, "no cgroup v1 hierarchies");
    }
    let fx = Fixture::new("cgroupns");
    let spec = spec(json!({
        "ociVersion": "1.2.0",
        "root": {"path": "rootfs"},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "ro"]}
        ]
    }));
    let r = in_child(TIMEOUT, || {
        new_mount_ns()?;
        // SAFETY: plain syscall in the single-threaded child.
        ensure!(unsafe { libc::unshare(libc::CLONE_NEWCGROUP) } == 0, "unshare cgroupns");
        let mut o = fx.opts(&spec);
        o.cgroups = &cgs;
        o.cgroupns = true;
        prepare(&o).map_err(err)?;
        finish(&o).map_err(err)?;
        for c in &cgs {
            let p = format!("/sys/fs/cgroup/{}", c.name());
            let want = if c.unified { CGROUP2_MAGIC } else { CGROUP_MAGIC };
            ensure!(fs_type(&p)? == want, "{p} type");
            ensure!(is_readonly(&p)?, "{p} not ro");
            let line = mountinfo(&p).unwrap_or_default();
            let fstype = if c.unified { " - cgroup2 " } else { " - cgroup " };
            ensure!(line.contains(fstype), "{p} not a cgroup mount: {line}");
        }
        Ok(())
    });
    fx.check_clean();
    r.unwrap();
}

#[test]
fn propagation_flags_and_rootfs_propagation() {
    require_root!();
    let fx = Fixture::new("prop");
    let spec = spec(json!({
        "ociVersion": "1.2.0",
        "root": {"path": "rootfs"},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/a", "type": "tmpfs", "source": "tmpfs", "options": ["rshared"]},
            {"destination": "/b", "type": "tmpfs", "source": "tmpfs", "options": ["unbindable"]},
            {"destination": "/c", "type": "tmpfs", "source": "tmpfs", "options": ["shared", "private"]}
        ],
        "linux": {"rootfsPropagation": "shared"}
    }));
    let r = in_child(TIMEOUT, || {
        new_mount_ns()?;
        let o = fx.opts(&spec);
        prepare(&o).map_err(err)?;
        finish(&o).map_err(err)?;
        let a = mountinfo("/a").unwrap_or_default();
        ensure!(a.contains(" shared:"), "/a should be shared: {a}");
        let b = mountinfo("/b").unwrap_or_default();
        ensure!(b.contains(" unbindable"), "/b should be unbindable: {b}");
        let c = mountinfo("/c").unwrap_or_default();
        ensure!(!c.contains("shared:") && !c.contains("master:"), "/c should be private: {c}");
        let root = mountinfo("/").unwrap_or_default();
        ensure!(root.contains(" shared:"), "/ should be shared (rootfsPropagation): {root}");
        Ok(())
    });
    fx.check_clean();
    r.unwrap();
}

#[test]
fn recursive_rro_and_rnosuid_reach_submounts() {
    require_root!();
    let fx = Fixture::new("rro");
    let src = fx.dir.join("src");
    fs::create_dir_all(src.join("sub")).unwrap();
    let spec = spec(json!({
        "ociVersion": "1.2.0",
        "root": {"path": "rootfs"},
        "mounts": [
            {"destination": "/data", "type": "bind", "source": src, "options": ["rbind", "rro", "rnosuid"]},
            {"destination": "/plain", "type": "bind", "source": src, "options": ["rbind", "ro"]}
        ]
    }));
    let sub = src.join("sub").to_string_lossy().into_owned();
    let r = in_child(TIMEOUT, || {
        new_mount_ns()?;
        sys_mount(Some("tmpfs"), &sub, Some("tmpfs"), 0, None)?;
        let o = fx.opts(&spec);
        prepare(&o).map_err(err)?;
        finish(&o).map_err(err)?;
        for p in ["/data", "/data/sub"] {
            let (_, f) = statfs(p)?;
            ensure!(f & libc::ST_RDONLY != 0 && f & libc::ST_NOSUID != 0, "{p}: rro/rnosuid flags {f:#x}");
        }
        write_is_erofs("/data/sub")?;
        // Plain ro only reaches the top mount (as runc).
        ensure!(is_readonly("/plain")? && !is_readonly("/plain/sub")?, "ro should not be recursive");
        Ok(())
    });
    fx.check_clean();
    r.unwrap();
}

#[test]
fn cgroup_v2_only_bind_or_cgroup2_mount() {
    require_root!();
    let cgs: Vec<CgroupMount> = v1_cgroups(true).into_iter().filter(|c| c.unified).collect();
    if cgs.is_empty() {
        return skip(CGROUP2, "no cgroup2 hierarchy");
    }
    for cgroupns in [false, true] {
        let fx = Fixture::new("cgroup2");
        let spec = spec(json!({
            "ociVersion": "1.2.0",
            "root": {"path": "rootfs"},
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "ro"]}
            ]
        }));
        let r = in_child(TIMEOUT, || {
            new_mount_ns()?;
            let mut o = fx.opts(&spec);
            o.cgroups = &cgs;
            o.cgroupns = cgroupns;
            prepare(&o).map_err(err)?;
            finish(&o).map_err(err)?;
            let (t, f) = statfs("/sys/fs/cgroup")?;
            ensure!(t == CGROUP2_MAGIC, "cgroupns={cgroupns}: /sys/fs/cgroup type {t:#x}");
            ensure!(f & libc::ST_RDONLY != 0 && f & libc::ST_NOEXEC != 0, "cgroupns={cgroupns}: flags {f:#x}");
            let line = mountinfo("/sys/fs/cgroup").unwrap_or_default();
            ensure!(line.contains(" - cgroup2 "), "cgroupns={cgroupns}: {line}");
            ensure!(fs::metadata("/sys/fs/cgroup/cgroup.procs").is_ok(), "cgroup.procs");
            Ok(())
        });
        fx.check_clean();
        r.unwrap();
    }
}

#[test]
fn rootfs_propagation_variants() {
    require_root!();
    // (value, what "/" must show in mountinfo after finish)
    for (prop, want) in [("runbindable", "unbindable"), ("rprivate", "private"), ("slave", "private"), ("rshared", "shared")] {
        let fx = Fixture::new("rootprop");
        let spec = spec(json!({
            "ociVersion": "1.2.0",
            "root": {"path": "rootfs"},
            "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
            "linux": {"rootfsPropagation": prop}
        }));
        let r = in_child(TIMEOUT, || {
            new_mount_ns()?;
            let o = fx.opts(&spec);
            prepare(&o).map_err(err)?;
            finish(&o).map_err(err)?;
            let root = mountinfo("/").unwrap_or_default();
            let ok = match want {
                "unbindable" => root.contains(" unbindable"),
                "shared" => root.contains(" shared:"),
                _ => !root.contains("shared:") && !root.contains("master:") && !root.contains("unbindable"),
            };
            ensure!(ok, "rootfsPropagation {prop}: / should be {want}: {root}");
            Ok(())
        });
        fx.check_clean();
        r.unwrap();
    }
}
