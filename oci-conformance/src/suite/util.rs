//! Helpers shared by the test files.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::Value;

use crate::ctx::{Ctr, Res, Verdict};
use crate::proc;
use crate::{ensure, fail};

/// The runner's own namespace of a kind (`net`, `mnt`, ...).
pub fn my_ns(kind: &str) -> String {
    fs::read_link(format!("/proc/self/ns/{kind}"))
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// A process's namespace of a kind.
pub fn ns_of(pid: i64, kind: &str) -> Res<String> {
    fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .map(|p| p.display().to_string())
        .map_err(|e| Verdict::Fail(format!("readlink /proc/{pid}/ns/{kind}: {e}")))
}

/// Write an executable file.
pub fn write_exec(path: &Path, text: &str) -> Res {
    let _g = crate::proc::writing_executable();
    fs::write(path, text).map_err(|e| format!("write {}: {e}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))
        .map_err(|e| format!("chmod {}: {e}", path.display()))?;
    Ok(())
}

pub fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_default()
}

/// The container must be gone: `state` fails.
pub fn expect_no_state(c: &Ctr) -> Res {
    let d = c.state_raw();
    ensure!(!d.ok(), "state still succeeds: {}", proc::squeeze(&d.stdout, 200));
    Ok(())
}

/// Create and start a container that waits until killed; return its pid.
pub fn start_sleeper(c: &mut Ctr) -> Res<i64> {
    c.payload(&["sleep"]);
    c.create_ok()?;
    c.start_ok()?;
    c.wait_status("running")?;
    c.pid()
}

/// Fetch a string field from a JSON value.
pub fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_default()
}

/// The mountinfo lines the payload printed (`mi=` keys), for a mount point.
pub fn mount_lines<'a>(kv: &'a crate::ctx::Kv, mount_point: &str) -> Vec<&'a str> {
    kv.all("mi")
        .into_iter()
        .filter(|l| l.split(' ').nth(4) == Some(mount_point))
        .collect()
}

/// Per-mount options, super options and optional fields of the last
/// (topmost) mount at `mount_point`.
pub struct MountLine {
    pub opts: Vec<String>,
    pub super_opts: Vec<String>,
    pub optional: Vec<String>,
    pub fstype: String,
    pub count: usize,
}

pub fn mount_at(kv: &crate::ctx::Kv, mount_point: &str) -> Res<MountLine> {
    let lines = mount_lines(kv, mount_point);
    let Some(line) = lines.last() else {
        fail!("nothing is mounted at {mount_point} in the container");
    };
    let (left, right) = line.split_once(" - ").unwrap_or((line, ""));
    let l: Vec<&str> = left.split(' ').collect();
    let r: Vec<&str> = right.split(' ').collect();
    Ok(MountLine {
        opts: l
            .get(5)
            .map(|o| o.split(',').map(String::from).collect())
            .unwrap_or_default(),
        optional: l.iter().skip(6).map(|s| s.to_string()).collect(),
        fstype: r.first().unwrap_or(&"").to_string(),
        super_opts: r
            .get(2)
            .map(|o| o.split(',').map(String::from).collect())
            .unwrap_or_default(),
        count: lines.len(),
    })
}

impl MountLine {
    pub fn has(&self, o: &str) -> bool {
        self.opts.iter().any(|x| x == o)
    }

    pub fn has_super(&self, o: &str) -> bool {
        self.super_opts.iter().any(|x| x == o)
    }

    pub fn propagation(&self) -> String {
        if self.optional.is_empty() {
            "private".into()
        } else {
            self.optional.join(" ")
        }
    }
}
