//! Test bundles: a busybox rootfs template (made once per run) holding the
//! static payload at /oc-payload, copied for every container; and the
//! default config.json the tests start from.

use std::fs;
use std::io;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

/// The payload, built static by build.rs.
pub static PAYLOAD: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/oci-payload"));

/// Where the payload lives inside every test rootfs.
pub const PAYLOAD_IN_CTR: &str = "/oc-payload";

/// A file every rootfs holds; hooks look for it to tell whether the
/// container's root is still the host's (before pivot_root) or not.
pub const ROOTFS_MARKER: &str = "oc-rootfs-marker";

pub struct Template {
    pub rootfs: PathBuf,
    /// The payload on the host (for `hold-ns`).
    pub payload: PathBuf,
}

pub fn make_template(work: &Path) -> io::Result<Template> {
    let rootfs = work.join("rootfs-template");
    berth_integration::bundle::make_busybox_rootfs(&rootfs)?;
    for d in ["mnt", "oc", "home"] {
        fs::create_dir_all(rootfs.join(d))?;
    }
    let payload = work.join("oci-payload");
    for p in [payload.clone(), rootfs.join(PAYLOAD_IN_CTR.trim_start_matches('/'))] {
        fs::write(&p, PAYLOAD)?;
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755))?;
    }
    fs::write(rootfs.join(ROOTFS_MARKER), "rootfs\n")?;
    Ok(Template { rootfs, payload })
}

/// Copy a tree: directories (with their modes), symlinks, regular files.
pub fn copy_tree(src: &Path, dst: &Path) -> io::Result<()> {
    let meta = fs::symlink_metadata(src)?;
    let ft = meta.file_type();
    if ft.is_symlink() {
        symlink(fs::read_link(src)?, dst)
    } else if ft.is_dir() {
        fs::create_dir_all(dst)?;
        fs::set_permissions(dst, meta.permissions())?;
        for e in fs::read_dir(src)? {
            let e = e?;
            copy_tree(&e.path(), &dst.join(e.file_name()))?;
        }
        Ok(())
    } else {
        let _g = crate::proc::writing_executable();
        fs::copy(src, dst).map(|_| ())
    }
}

/// The config every test starts from: the payload printing its report,
/// the usual filesystems, five new namespaces, a cgroup of its own.
/// `marker` is appended to the args so cleanup can find the processes.
pub fn default_config(oci_version: &str, marker: &str, cgroups_path: &str) -> Value {
    // The integration suite's busybox config (runc spec's mounts and five
    // namespaces), with what the conformance tests start from instead: no
    // rlimits, no_new_privs, masked or readonly paths unless a test sets them.
    let mut c = berth_integration::bundle::default_config(&[PAYLOAD_IN_CTR, "report", marker]);
    c["ociVersion"] = json!(oci_version);
    c["hostname"] = json!("oc");
    let p = c["process"].as_object_mut().expect("process object");
    p.remove("rlimits");
    p.remove("noNewPrivileges");
    p.insert(
        "env".into(),
        json!(["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "OC_CONTAINER=1"]),
    );
    p.insert(
        "capabilities".into(),
        json!({"bounding": DEFAULT_CAPS, "effective": DEFAULT_CAPS, "permitted": DEFAULT_CAPS}),
    );
    let l = c["linux"].as_object_mut().expect("linux object");
    l.remove("maskedPaths");
    l.remove("readonlyPaths");
    l.insert("cgroupsPath".into(), json!(cgroups_path));
    c
}

/// `runc spec`'s capability set.
pub const DEFAULT_CAPS: [&str; 3] = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];

pub const CAP_NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The capability bits set in a `/proc/PID/status` hex mask, by name.
pub fn caps_from_mask(hex: &str) -> Vec<&'static str> {
    let v = u64::from_str_radix(hex.trim(), 16).unwrap_or(0);
    CAP_NAMES
        .iter()
        .enumerate()
        .filter(|(i, _)| v & (1u64 << i) != 0)
        .map(|(_, n)| *n)
        .collect()
}

/// The host's capability bounding set (our own).
pub fn host_bounding_set() -> Vec<&'static str> {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let hex = status.lines().find_map(|l| l.strip_prefix("CapBnd:")).unwrap_or("0");
    caps_from_mask(hex)
}
