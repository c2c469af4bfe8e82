//! Busybox bundles for tests and benchmarks, made from Debian's
//! busybox-static (`/bin/busybox`).

use std::fs;
use std::io;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

/// Where busybox-static installs its binary.
pub const BUSYBOX: &str = "/bin/busybox";

/// Fill `rootfs` with a static busybox, a symlink per applet under /bin, and
/// the directories a container expects (proc, sys, dev, tmp, etc, root).
pub fn make_busybox_rootfs(rootfs: &Path) -> io::Result<()> {
    let bin = rootfs.join("bin");
    fs::create_dir_all(&bin)?;
    for d in ["proc", "sys", "dev", "tmp", "etc", "root", "sbin", "usr/bin", "usr/sbin", "var", "run"] {
        fs::create_dir_all(rootfs.join(d))?;
    }
    fs::copy(BUSYBOX, bin.join("busybox")).map_err(|e| {
        io::Error::new(e.kind(), format!("copy {BUSYBOX} (install busybox-static): {e}"))
    })?;
    let out = Command::new(BUSYBOX).arg("--list").output()?;
    if !out.status.success() {
        return Err(io::Error::other("busybox --list failed"));
    }
    for applet in String::from_utf8_lossy(&out.stdout).lines() {
        let applet = applet.trim();
        if applet.is_empty() || applet == "busybox" {
            continue;
        }
        let link = bin.join(applet);
        if !link.exists() {
            symlink("busybox", &link)?;
        }
    }
    fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")?;
    fs::write(rootfs.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n")?;
    Ok(())
}

/// A config.json close to `runc spec`'s default, without a terminal and
/// without capabilities handling assumptions, running `args`.
///
/// `ociVersion` is 1.0.2 so that the same bundle runs on Debian's runc 1.1.5
/// and crun 1.8.1, which reject newer versions.
pub fn default_config(args: &[&str]) -> Value {
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root"],
            "cwd": "/",
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": false},
        "hostname": "berth",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]}
        ],
        "linux": {
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                {"type": "uts"}, {"type": "mount"}
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    })
}

/// A bundle directory: `dir/config.json` and `dir/rootfs`.
#[derive(Debug)]
pub struct Bundle {
    pub dir: PathBuf,
    pub config: Value,
}

impl Bundle {
    /// Make a busybox bundle in `dir` (created if missing) running `args`.
    pub fn create(dir: &Path, args: &[&str]) -> io::Result<Bundle> {
        fs::create_dir_all(dir)?;
        make_busybox_rootfs(&dir.join("rootfs"))?;
        let b = Bundle { dir: dir.to_path_buf(), config: default_config(args) };
        b.write_config()?;
        Ok(b)
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    /// Write `self.config` to `dir/config.json`.
    pub fn write_config(&self) -> io::Result<()> {
        let text = serde_json::to_vec_pretty(&self.config).map_err(io::Error::other)?;
        fs::write(self.dir.join("config.json"), text)
    }
}
