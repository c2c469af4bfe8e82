//! The container's cgroup at `linux.cgroupsPath`, in every hierarchy.

use berth_integration::prelude::*;

#[test]
fn cgroup_in_every_hierarchy_holds_init() {
    let env = Env::sh("cgroup_every_hierarchy", SLEEPER);
    env.create();
    let pid = env.pid() as i32;
    let dirs = host::cgroup_dirs(&env.cgroups_path);
    assert!(!dirs.is_empty(), "no cgroup hierarchy mounted?");
    for d in &dirs {
        let procs = fs::read_to_string(d.join("cgroup.procs")).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
        assert!(procs.lines().any(|l| l.trim() == pid.to_string()), "{} lacks init {pid}: {procs:?}", d.display());
    }
    // the host view of init's cgroups agrees (v1 lines: "N:controllers:path")
    let cg = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    for line in cg.lines() {
        let path = line.splitn(3, ':').nth(2).unwrap_or_default();
        assert_eq!(path, env.cgroups_path, "init not in its cgroup: {line}");
    }
    env.start();
    env.delete_force().ok();
    for d in &dirs {
        assert!(!d.exists(), "{} left after delete", d.display());
    }
    assert_no_leftovers(&env);
}

#[test]
fn cgroup_children_follow_init() {
    // processes the container forks stay in its cgroup
    let env = Env::sh("cgroup_children", &format!("sleep 1000 & echo $! > /child; {SLEEPER}"));
    env.run_detached();
    env.wait_file("child", "\n");
    let pids = host::cgroup_pids(&host::cgroup_dirs(&env.cgroups_path)[0].clone());
    assert!(pids.len() >= 2, "expected init and its child in the cgroup: {pids:?}");
    env.delete_force().ok();
    for p in pids {
        assert!(wait_until(SHORT, || !pid_alive(p as i64)), "process {p} survived delete --force");
    }
    assert_no_leftovers(&env);
}

#[test]
fn cgroup_removed_after_container_exits() {
    let env = Env::sh("cgroup_exit", "true");
    env.create();
    env.start();
    env.wait_status("stopped", SHORT);
    env.delete().ok();
    assert_no_leftovers(&env);
}

#[test]
fn cgroup_removed_after_foreground_run() {
    let env = Env::sh("cgroup_fg", "cat /proc/self/cgroup");
    let out = env.run_ok();
    assert!(out.stdout.contains(&env.cgroups_path), "{out}");
    assert_no_leftovers(&env);
}
