//! Removing everything a test left, even when the runtime hung or crashed:
//! `delete --force` (or kill + delete) of every container it created, then
//! SIGKILL to every process still in its cgroups or carrying its marker,
//! rmdir of its cgroups (all under `/oci-conformance/<tag>-*`), lazy
//! unmount of everything below its directory, and the directory itself.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use berth_integration::host;

use crate::ctx::{Inner, Track};
use crate::proc::{self, Spec};

/// Parent of every cgroup the suite makes (in each hierarchy).
pub const CGROUP_PARENT: &str = "oci-conformance";

/// Clean up after one test. Returns what could not be removed.
pub fn after_test(cx: &Inner) -> Vec<String> {
    let mut left = Vec::new();
    let rt = &cx.rt;
    let ids: Vec<String> = cx.track.ids.lock().map(|v| v.clone()).unwrap_or_default();
    let t = Duration::from_secs(10);
    for (i, id) in ids.iter().enumerate() {
        let base = cx.dir.join(format!("cleanup{i}"));
        if rt.force_delete {
            let _ = proc::run(Spec::new(
                &rt.path,
                rt.args(&cx.root, &["delete", "--force", id]),
                &base,
                t,
            ));
        } else {
            let mut a = vec!["--root".to_string(), cx.root.display().to_string()];
            a.extend(rt.kill_args(id, "KILL"));
            let _ = proc::run(Spec::new(&rt.path, a, &base, t));
            let _ = proc::run(Spec::new(&rt.path, rt.args(&cx.root, &["delete", id]), &base, t));
        }
    }
    kill_children(&cx.track);
    if let Ok(mut undo) = cx.track.undo.lock() {
        for f in undo.drain(..) {
            f();
        }
    }
    left.extend(reap(&format!("{}-", cx.tag), &format!("ocmk{}", cx.tag)));
    let mounts = host::umount_below(&cx.dir);
    if !mounts.is_empty() {
        left.push(format!("mounts still under {}: {mounts:?}", cx.dir.display()));
    } else if let Err(e) = fs::remove_dir_all(&cx.dir) {
        if e.kind() != std::io::ErrorKind::NotFound {
            left.push(format!("remove {}: {e}", cx.dir.display()));
        }
    }
    left
}

pub fn kill_children(track: &Track) {
    if let Ok(mut children) = track.children.lock() {
        for mut c in children.drain(..) {
            proc::kill_group(c.id() as i32);
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Kill the processes in every cgroup named `<prefix>*` under the suite's
/// parent (in all hierarchies) or carrying `marker`, then remove those
/// cgroups. Returns what is left.
pub fn reap(prefix: &str, marker: &str) -> Vec<String> {
    let mut dirs = Vec::new();
    for h in host::cgroup_hierarchies() {
        if let Ok(rd) = fs::read_dir(h.join(CGROUP_PARENT)) {
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().starts_with(prefix) && e.path().is_dir() {
                    dirs.push(e.path());
                }
            }
        }
    }
    for d in &dirs {
        thaw(d);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut pids = if marker.is_empty() {
            Vec::new()
        } else {
            host::pids_with_marker(marker)
        };
        for d in &dirs {
            pids.extend(host::cgroup_pids(d));
        }
        pids.retain(|p| proc::pid_alive(*p as i64));
        if pids.is_empty() || Instant::now() >= deadline {
            break;
        }
        for p in pids {
            host::kill9(p);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut left = Vec::new();
    for d in &dirs {
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            match host::rmdir_cgroup(d) {
                Ok(()) => break,
                Err(e) if Instant::now() >= deadline => {
                    left.push(format!("cgroup {}: {e}", d.display()));
                    break;
                }
                Err(_) => std::thread::sleep(Duration::from_millis(30)),
            }
        }
    }
    left
}

/// Unfreeze a cgroup tree (v1 freezer, v2 cgroup.freeze) so its
/// processes can die.
fn thaw(dir: &Path) {
    for (f, v) in [("freezer.state", "THAWED"), ("cgroup.freeze", "0")] {
        let f = dir.join(f);
        if f.exists() {
            let _ = fs::write(f, v);
        }
    }
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.path().is_dir() {
                thaw(&e.path());
            }
        }
    }
}

/// At the end of a run: everything of this run, then the parent if empty.
pub fn final_sweep(run_id: &str) -> Vec<String> {
    let left = reap(&format!("{run_id}-"), &format!("ocmk{run_id}"));
    for h in host::cgroup_hierarchies() {
        let _ = fs::remove_dir(h.join(CGROUP_PARENT));
    }
    left
}
