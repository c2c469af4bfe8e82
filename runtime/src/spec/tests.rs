//! Tests for `load_bundle`: parsing, pre-filtering, error paths, validation.
//! The helpers are here, the tests by topic in tests/.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use oci_spec::runtime::{Capability, LinuxNamespaceType};
use serde_json::{json, Value};

use super::*;

/// A bundle directory with a `rootfs/` in the system temp dir, removed on drop.
struct TempBundle {
    dir: PathBuf,
}

impl TempBundle {
    fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "berth-spec-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("rootfs")).unwrap();
        TempBundle { dir }
    }

    fn write(&self, config: &Value) {
        self.write_raw(serde_json::to_string_pretty(config).unwrap().as_bytes());
    }

    fn write_raw(&self, data: &[u8]) {
        std::fs::write(self.dir.join("config.json"), data).unwrap();
    }

    fn load(&self) -> Result<Bundle, ConfigError> {
        load_bundle(&self.dir)
    }

    fn file(&self) -> String {
        self.dir.join("config.json").display().to_string()
    }
}

impl Drop for TempBundle {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What `runc spec` writes (rootful), trimmed of nothing.
fn runc_spec() -> Value {
    json!({
        "ociVersion": "1.2.0",
        "process": {
            "terminal": true,
            "user": { "uid": 0, "gid": 0 },
            "args": ["sh"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "ambient": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
            },
            "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 }],
            "noNewPrivileges": true
        },
        "root": { "path": "rootfs", "readonly": true },
        "hostname": "runc",
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            { "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
              "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
            { "destination": "/dev/pts", "type": "devpts", "source": "devpts",
              "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
            { "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
              "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
            { "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
              "options": ["nosuid", "noexec", "nodev"] },
            { "destination": "/sys", "type": "sysfs", "source": "sysfs",
              "options": ["nosuid", "noexec", "nodev", "ro"] },
            { "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
              "options": ["nosuid", "noexec", "nodev", "relatime", "ro"] }
        ],
        "linux": {
            "resources": {
                "devices": [{ "allow": false, "access": "rwm" }]
            },
            "namespaces": [
                { "type": "pid" },
                { "type": "network" },
                { "type": "ipc" },
                { "type": "uts" },
                { "type": "mount" },
                { "type": "cgroup" }
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

/// Load `config` from a fresh bundle and expect an error.
fn load_err(config: &Value) -> ConfigError {
    let b = TempBundle::new();
    b.write(config);
    let err = b.load().expect_err("config should have been rejected");
    assert_eq!(err.file, b.file(), "error must name the config file");
    err
}

/// Load `config` from a fresh bundle and expect success.
fn load_ok(config: &Value) {
    let b = TempBundle::new();
    b.write(config);
    if let Err(e) = b.load() {
        panic!("config should load: {e}");
    }
}

/// Expect an error at exactly `path` whose message contains `msg`.
#[track_caller]
fn assert_err(config: &Value, path: &str, msg: &str) {
    let err = load_err(config);
    assert_eq!(err.path, path, "wrong path in: {err}");
    assert!(err.msg.contains(msg), "{err:?} should contain {msg:?}");
}

#[track_caller]
fn assert_ok(config: &Value) -> Bundle {
    let b = TempBundle::new();
    b.write(config);
    b.load()
        .unwrap_or_else(|e| panic!("config should load: {e}"))
}

fn namespaces(list: &[Value]) -> Value {
    Value::Array(list.to_vec())
}

mod files;
mod linux;
mod namespaces;
mod process;
