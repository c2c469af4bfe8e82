//! Helpers for the cgroup tests: where a controller's files are for a
//! container, and whether this host has what a test needs (a test that
//! cannot run says why on stderr and returns).
#![allow(dead_code)]

use berth_integration::prelude::*;

/// The v1 hierarchy that holds `controller`, from mountinfo options.
pub fn v1_mount(controller: &str) -> Option<PathBuf> {
    let mi = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for l in mi.lines() {
        let Some((left, right)) = l.split_once(" - ") else { continue };
        let mut r = right.split_whitespace();
        if r.next() != Some("cgroup") {
            continue;
        }
        let opts = r.nth(1).unwrap_or("");
        if opts.split(',').any(|o| o == controller) {
            return left.split_whitespace().nth(4).map(PathBuf::from);
        }
    }
    None
}

/// The unified (cgroup2) mount, if any.
pub fn unified_mount() -> Option<PathBuf> {
    host::host_mounts().into_iter().find(|m| m.fstype == "cgroup2").map(|m| PathBuf::from(m.mount_point))
}

/// True when the host runs the v1 controllers these tests use; otherwise
/// prints why the calling test is skipped.
pub fn v1_host(test: &str) -> bool {
    let missing: Vec<&str> =
        ["memory", "cpu", "cpuset", "pids", "devices", "freezer"].into_iter().filter(|c| v1_mount(c).is_none()).collect();
    if missing.is_empty() {
        return true;
    }
    let _ = test; // the skip line names the test itself
    skip(CGROUP_V1, &format!("this host has no cgroup v1 {missing:?} hierarchy (the v2 tests run in the VM: scripts/test-cgroup-v2.sh)"));
    false
}

/// The container's directory for a v1 controller.
pub fn dir(env: &Env, controller: &str) -> PathBuf {
    v1_mount(controller).unwrap_or_else(|| panic!("no {controller} hierarchy")).join(env.cgroups_path.trim_start_matches('/'))
}

/// A cgroup file of the container, trimmed.
#[track_caller]
pub fn read(env: &Env, controller: &str, file: &str) -> String {
    let p = dir(env, controller).join(file);
    fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display())).trim().to_string()
}

/// Set `linux.resources` (merged over the default device rules).
pub fn set_resources(env: &mut Env, r: Value) {
    for (k, v) in r.as_object().expect("object") {
        env.set(&format!("/linux/resources/{k}"), v.clone());
    }
}

/// `create` must fail with exit 1 naming `needles`, leaving nothing behind.
#[track_caller]
pub fn create_fails(env: &Env, needles: &[&str]) {
    let out = env.try_create();
    out.fails_with(needles);
    assert!(!env.state_dir().exists(), "state dir left after failed create:\n{out}");
    assert_no_leftovers(env);
}
