//! Facts about the host the tests need: where each cgroup controller is
//! mounted, and small probes for optional kernel features (so a test can
//! skip with a reason when the host, not the runtime, lacks something).

use std::fs;
use std::path::{Path, PathBuf};

use berth_integration::host::{host_mounts, MountInfo};

#[derive(Debug, Clone, Default)]
pub struct Host {
    /// (controller names of the hierarchy, mount point) for cgroup v1.
    pub v1: Vec<(Vec<String>, PathBuf)>,
    /// The cgroup2 mount, if any (unified host or hybrid).
    pub unified: Option<PathBuf>,
    /// Whether /sys/fs/cgroup itself is cgroup2.
    pub unified_only: bool,
}

impl Host {
    pub fn detect() -> Host {
        let mut h = Host::default();
        for m in host_mounts() {
            if m.fstype == "cgroup" {
                let ctrls: Vec<String> = m
                    .line
                    .rsplit(' ')
                    .next()
                    .unwrap_or("")
                    .split(',')
                    .filter(|o| !matches!(*o, "rw" | "ro") && !o.contains('='))
                    .map(|o| o.to_string())
                    .collect();
                let names = if ctrls.is_empty() { vec![name_opt(&m)] } else { ctrls };
                h.v1.push((names, PathBuf::from(&m.mount_point)));
            } else if m.fstype == "cgroup2" {
                h.unified = Some(PathBuf::from(&m.mount_point));
            }
        }
        h.unified_only = crate::hostenv::cgroup2_unified_host();
        h
    }

    /// The directory of `cgroups_path` (absolute) for `controller`: its v1
    /// hierarchy, or the unified one when the controller lives there.
    pub fn cgroup_dir(&self, controller: &str, cgroups_path: &str) -> Option<PathBuf> {
        let rel = cgroups_path.trim_start_matches('/');
        if let Some((_, mp)) = self.v1.iter().find(|(c, _)| c.iter().any(|x| x == controller)) {
            return Some(mp.join(rel));
        }
        let u = self.unified.as_ref()?;
        let ctrls = fs::read_to_string(u.join("cgroup.controllers")).unwrap_or_default();
        ctrls.split_whitespace().any(|c| c == controller).then(|| u.join(rel))
    }

    /// The mount point of a controller's hierarchy (v1 or unified).
    pub fn controller_root(&self, controller: &str) -> Option<PathBuf> {
        self.cgroup_dir(controller, "/")
    }

    /// Every hierarchy's mount point (v1 and unified).
    pub fn hierarchies(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = self.v1.iter().map(|(_, p)| p.clone()).collect();
        v.extend(self.unified.clone());
        v
    }

    /// A short description of the cgroup layout.
    pub fn describe_cgroups(&self) -> String {
        if self.unified_only {
            "cgroup v2 (unified)".into()
        } else if self.unified.is_some() {
            format!(
                "cgroup v1 + cgroup2 at {} (hybrid)",
                self.unified
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            )
        } else {
            "cgroup v1".into()
        }
    }
}

fn name_opt(m: &MountInfo) -> String {
    m.line
        .split(',')
        .find_map(|o| o.strip_prefix("name="))
        .unwrap_or("unknown")
        .trim()
        .to_string()
}

/// Whether a file exists (for feature probes).
pub fn exists(p: impl AsRef<Path>) -> bool {
    p.as_ref().exists()
}

/// The kernel release.
pub fn kernel() -> String {
    fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// major:minor of the block device behind `/`, e.g. "253:0" (for blkio tests).
pub fn root_block_device() -> Option<(u64, u64)> {
    let mi = host_mounts().into_iter().find(|m| m.mount_point == "/")?;
    let f: Vec<&str> = mi.line.split(' ').collect();
    let (maj, min) = f.get(2)?.split_once(':')?;
    let (maj, min): (u64, u64) = (maj.parse().ok()?, min.parse().ok()?);
    // Partitions: throttling wants the whole disk.
    let sys = format!("/sys/dev/block/{maj}:{min}");
    if exists(format!("{sys}/partition")) {
        let parent = fs::read_link(&sys).ok()?;
        let disk = parent.parent()?.file_name()?.to_string_lossy().into_owned();
        let dev = fs::read_to_string(format!("/sys/class/block/{disk}/dev")).ok()?;
        let (a, b) = dev.trim().split_once(':')?;
        return Some((a.parse().ok()?, b.parse().ok()?));
    }
    Some((maj, min))
}
