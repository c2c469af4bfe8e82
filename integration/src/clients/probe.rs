//! Asking the runtime under test whether it has what a client scenario
//! needs, so that a scenario whose feature is not built yet is skipped
//! with a reason, and runs with no edit once the feature lands.
//!
//! Every probe runs the runtime itself: `RT CMD --help` for a command,
//! `RT features` for seccomp, a `create` with `--console-socket` for
//! terminals, and a real container with `linux.resources` for resource
//! limits (the limit must show in the container's cgroup). Results are
//! cached for the test binary.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::json;

use super::{runtime_name, runtime_under_test, skip};
use crate::bundle::Bundle;
use crate::harness::{run_cmd, Output};
use crate::host;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Feature {
    /// `exec` (docker exec, podman exec; the shim runs `exec --process`).
    Exec,
    /// `process.terminal` with `--console-socket` (docker -t, podman -t).
    Terminal,
    /// `ps --format json` (docker top).
    Ps,
    /// `pause` and `resume`.
    Pause,
    /// `update --resources -` (docker update).
    Update,
    /// `linux.resources.memory.limit` applied to the memory cgroup.
    MemoryLimit,
    /// `linux.resources.cpu.quota`/`period` applied to the cpu cgroup.
    CpuQuota,
    /// `linux.resources.pids.limit` applied to the pids cgroup.
    PidsLimit,
    /// seccomp filters (`features` says `linux.seccomp.enabled`).
    Seccomp,
}

/// Why the runtime under test lacks `f`, or None when it has it.
pub fn missing(f: Feature) -> Option<String> {
    static CACHE: Mutex<Option<HashMap<Feature, Option<String>>>> = Mutex::new(None);
    let mut guard = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    let cache = guard.get_or_insert_with(HashMap::new);
    if let Some(r) = cache.get(&f) {
        return r.clone();
    }
    let r = match f {
        Feature::Exec => command("exec"),
        Feature::Terminal => terminal(),
        Feature::Ps => command("ps"),
        Feature::Pause => command("pause").or_else(|| command("resume")),
        Feature::Update => command("update"),
        Feature::MemoryLimit | Feature::CpuQuota | Feature::PidsLimit => {
            let r = resources();
            cache.insert(Feature::MemoryLimit, r.memory.clone());
            cache.insert(Feature::CpuQuota, r.cpu.clone());
            cache.insert(Feature::PidsLimit, r.pids.clone());
            cache.get(&f).cloned().flatten()
        }
        Feature::Seccomp => seccomp(),
    };
    cache.insert(f, r.clone());
    r
}

/// True when the runtime has every feature in `fs`; otherwise print why
/// the current test is skipped and return false.
pub fn require(fs: &[Feature]) -> bool {
    let reasons: Vec<String> = fs.iter().filter_map(|f| missing(*f)).collect();
    if reasons.is_empty() {
        return true;
    }
    skip(&reasons.join("; "));
    false
}

/// `/tmp/berth-cl/probe-<pid>`, removed at exit.
fn scratch() -> PathBuf {
    let d = Path::new(super::SESSION_BASE).join(format!("probe-{}", std::process::id()));
    static MADE: std::sync::Once = std::sync::Once::new();
    MADE.call_once(|| {
        super::sweep_stale("probe");
        let d2 = d.clone();
        super::at_exit(move || super::clean_session_dir(&d2, &super::cgroup_parent_of("probe", std::process::id())));
    });
    fs::create_dir_all(&d).expect("create probe dir");
    d
}

fn rt(args: &[&str], tag: &str) -> Output {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    run_cmd(&runtime_under_test(), &args, &scratch().join(tag), None, Duration::from_secs(30))
}

fn first_line(s: &str) -> &str {
    s.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("")
}

/// `RT NAME --help` must succeed.
fn command(name: &str) -> Option<String> {
    let out = rt(&[name, "--help"], &format!("help-{name}"));
    if out.success() {
        return None;
    }
    Some(format!(
        "{} has no `{name}` command (`{name} --help`: {}: {})",
        runtime_name(),
        crate::harness::describe_status(&out.status),
        first_line(&out.stderr)
    ))
}

/// A `create` with `--console-socket` on a missing bundle: a runtime
/// without terminals refuses the flag ("not supported") before it looks
/// at the bundle; one with terminals fails on the bundle instead.
fn terminal() -> Option<String> {
    let d = scratch();
    let root = d.join("root-terminal");
    let sock = d.join("no-such.sock").display().to_string();
    let bundle = d.join("no-such-bundle").display().to_string();
    let out = rt(
        &["--root", &root.display().to_string(), "create", "--console-socket", &sock, "--bundle", &bundle, "probe-tty"],
        "terminal",
    );
    if !out.success() && out.stderr.contains("not supported") {
        return Some(format!(
            "{} has no terminal support (create --console-socket: {})",
            runtime_name(),
            first_line(&out.stderr)
        ));
    }
    None
}

fn seccomp() -> Option<String> {
    let out = rt(&["features"], "features");
    if !out.success() {
        return Some(format!(
            "{} cannot say whether it has seccomp: `features` fails ({}: {})",
            runtime_name(),
            crate::harness::describe_status(&out.status),
            first_line(&out.stderr)
        ));
    }
    let v: serde_json::Value = match serde_json::from_str(&out.stdout) {
        Ok(v) => v,
        Err(e) => return Some(format!("{} `features` printed no JSON ({e})", runtime_name())),
    };
    if v.pointer("/linux/seccomp/enabled") == Some(&json!(true)) {
        None
    } else {
        Some(format!("{} has no seccomp (`features`: linux.seccomp.enabled is not true)", runtime_name()))
    }
}

struct Resources {
    memory: Option<String>,
    cpu: Option<String>,
    pids: Option<String>,
}

/// Create a container with memory, cpu and pids limits and read them back
/// from its cgroups.
fn resources() -> Resources {
    let d = scratch().join("resources");
    let root = d.join("root").display().to_string();
    let id = format!("probe-res-{}", std::process::id());
    let cgpath = super::cgroup_parent_of("probe", std::process::id());
    let mut b = Bundle::create(&d.join("bundle"), &["sleep", "10"]).expect("make probe bundle");
    b.config["linux"]["cgroupsPath"] = json!(cgpath);
    b.config["linux"]["resources"] = json!({
        "memory": {"limit": 67108864},
        "cpu": {"quota": 50000, "period": 100000},
        "pids": {"limit": 50}
    });
    b.write_config().expect("write probe config");
    let bundle = b.dir.display().to_string();
    let name = runtime_name();
    let created = rt(&["--root", &root, "create", "--bundle", &bundle, &id], "res-create");
    let res = if !created.success() {
        let why = format!("{name} cannot create a container with linux.resources: {}", first_line(&created.stderr));
        Resources { memory: Some(why.clone()), cpu: Some(why.clone()), pids: Some(why) }
    } else {
        let read = |ctrl: &str, file: &str| {
            host::cgroup_v1_hierarchies()
                .into_iter()
                .map(|h| h.join(cgpath.trim_start_matches('/')).join(file))
                .find(|p| p.exists())
                .and_then(|p| fs::read_to_string(p).ok())
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|| format!("<no {ctrl} cgroup file {file}>"))
        };
        let check = |what: &str, ctrl: &str, file: &str, want: &str| {
            let got = read(ctrl, file);
            (got != want).then(|| format!("{name} does not apply linux.resources.{what} ({file} is {got}, not {want})"))
        };
        Resources {
            memory: check("memory.limit", "memory", "memory.limit_in_bytes", "67108864"),
            cpu: check("cpu.quota", "cpu", "cpu.cfs_quota_us", "50000"),
            pids: check("pids.limit", "pids", "pids.max", "50"),
        }
    };
    let _ = rt(&["--root", &root, "delete", "--force", &id], "res-delete");
    let left = super::remove_cgroup_parent(&cgpath);
    assert!(left.is_empty(), "resource probe left cgroups: {left:?}");
    host::umount_below(&d);
    let _ = fs::remove_dir_all(&d);
    res
}
