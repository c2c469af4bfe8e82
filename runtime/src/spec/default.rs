//! [`write_default`] (`berth spec [--bundle DIR] [--rootless]`): write a default config.json,
//! as `runc spec` does (same content, berth's spec version and hostname).

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use serde_json::{json, Value};

use crate::error::{Error, Result};

/// Write [`default_spec`] to `bundle`/config.json, which must not exist yet
/// (`berth spec`); `seccomp_default` embeds berth's default seccomp profile.
pub fn write_default(bundle: &Path, rootless: bool, seccomp_default: bool) -> Result<()> {
    let path = bundle.join(crate::spec::CONFIG_FILE);
    // SAFETY: geteuid and getegid have no preconditions and cannot fail.
    let mut spec = default_spec(rootless, unsafe { (libc::geteuid(), libc::getegid()) });
    if seccomp_default {
        let profile: Value = serde_json::from_str(crate::security::seccomp::default_profile_json())
            .expect("seccomp-profiles/default.json is valid JSON (unit-tested)");
        spec["linux"]["seccomp"] = profile;
    }
    let mut text = serde_json::to_string_pretty(&spec).expect("the default spec serializes");
    text.push('\n');
    let mut f = match fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            return Err(Error::os(format!("spec: {}: remove it first", path.display()), e))
        }
        Err(e) => return Err(Error::path("spec: create", path, e)),
    };
    f.write_all(text.as_bytes())
        .map_err(|e| Error::path("spec: write", &path, e))
}

/// runc's default config (a busybox-style `sh` on a terminal, a read-only
/// root, pid/net/ipc/uts/mount namespaces, three capabilities). Kept as text:
/// a `json!` literal this size compiles to a lot of code in every berth.
const DEFAULT_SPEC: &str = r#"{
  "ociVersion": "",
  "process": {
    "terminal": true,
    "user": {"uid": 0, "gid": 0},
    "args": ["sh"],
    "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
    "cwd": "/",
    "capabilities": {
      "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "ambient": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    },
    "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
    "noNewPrivileges": true
  },
  "root": {"path": "rootfs", "readonly": true},
  "hostname": "berth",
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
     "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
     "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
    {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
     "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
    {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
    {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
     "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
  ],
  "linux": {
    "resources": {"devices": [{"allow": false, "access": "rwm"}]},
    "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
    "maskedPaths": [
      "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
      "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
    ],
    "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
  }
}"#;

/// The default config with berth's spec version; `rootless` applies runc's
/// rootless changes for the user `ids` (euid, egid).
pub fn default_spec(rootless: bool, ids: (u32, u32)) -> Value {
    let mut spec: Value = serde_json::from_str(DEFAULT_SPEC).expect("DEFAULT_SPEC is JSON");
    spec["ociVersion"] = Value::String(crate::OCI_VERSION.into());
    if rootless {
        make_rootless(&mut spec, ids);
    }
    spec
}

/// runc's rootless changes: a user namespace (replacing the network one)
/// mapping the caller's ids to root, /sys bound from the host, no uid=/gid=
/// mount options, no cgroup resources.
fn make_rootless(spec: &mut Value, (uid, gid): (u32, u32)) {
    let linux = &mut spec["linux"];
    if let Some(ns) = linux["namespaces"].as_array_mut() {
        ns.retain(|n| !matches!(n["type"].as_str(), Some("network") | Some("user")));
        ns.push(json!({"type": "user"}));
    }
    linux["uidMappings"] = json!([{"containerID": 0, "hostID": uid, "size": 1}]);
    linux["gidMappings"] = json!([{"containerID": 0, "hostID": gid, "size": 1}]);
    if let Some(l) = linux.as_object_mut() {
        l.remove("resources");
    }
    if let Some(mounts) = spec["mounts"].as_array_mut() {
        for m in mounts.iter_mut() {
            if m["destination"] == "/sys" {
                *m = json!({"destination": "/sys", "type": "none", "source": "/sys",
                            "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
                continue;
            }
            if let Some(opts) = m.get_mut("options").and_then(Value::as_array_mut) {
                opts.retain(|o| {
                    o.as_str()
                        .is_none_or(|o| !o.starts_with("uid=") && !o.starts_with("gid="))
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_spec_is_a_valid_config() {
        for rootless in [false, true] {
            let v = default_spec(rootless, (1000, 1000));
            let data = serde_json::to_vec(&v).unwrap();
            let spec = crate::spec::parse_spec("config.json", &data).unwrap();
            assert_eq!(spec.process().as_ref().unwrap().terminal(), Some(true));
        }
    }

    #[test]
    fn rootless_maps_the_caller_and_drops_the_network_namespace() {
        let v = default_spec(true, (1234, 5678));
        assert_eq!(v["linux"]["uidMappings"][0]["hostID"], 1234);
        assert_eq!(v["linux"]["gidMappings"][0]["hostID"], 5678);
        let ns: Vec<&str> = v["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        assert_eq!(ns, ["pid", "ipc", "uts", "mount", "user"]);
        assert!(v["linux"].get("resources").is_none());
        let text = v.to_string();
        assert!(
            !text.contains("gid=5") && text.contains("\"rbind\"") && !text.contains("null"),
            "{text}"
        );
    }
}
