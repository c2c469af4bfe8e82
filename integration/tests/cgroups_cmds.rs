//! update, pause/resume, ps, events, OOM and the pids limit on this host's
//! cgroups (v1 here; the same commands run on v2 in the VM test).

mod cgroups_util;

use berth_integration::prelude::*;
use cgroups_util::*;

const COUNTER: &str = "i=0; while :; do i=$((i+1)); echo $i > /count; sleep 0.02; done";

fn count(env: &Env) -> u64 {
    fs::read_to_string(env.rootfs().join("count")).unwrap_or_default().trim().parse().unwrap_or(0)
}

#[test]
fn oom_kill_exits_137_and_reports_an_oom_event() {
    if !v1_host("oom_kill_exits_137_and_reports_an_oom_event") {
        return;
    }
    // The hog runs as a child of init: the kernel kills it, init exits
    // with its status.
    let mut env = Env::sh("cg_oom", "sleep 0.3; tail /dev/zero; exit $?");
    set_resources(&mut env, json!({"memory": {"limit": 16 << 20, "swap": 16 << 20}}));
    env.create();
    let events = env.spawn(&["events", "--interval", "1h", &env.id]);
    std::thread::sleep(Duration::from_millis(100));
    env.start();
    env.wait_status("stopped", Duration::from_secs(20));
    let out = events.wait(SHORT);
    assert!(out.success(), "events should end when the container stops:\n{out}");
    let lines: Vec<Value> = out.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(lines.iter().any(|v| v["type"] == "oom" && v["id"] == env.id.as_str()), "no oom event:\n{out}");
    env.delete().ok();

    let mut env = Env::sh("cg_oom_run", "tail /dev/zero; exit $?");
    set_resources(&mut env, json!({"memory": {"limit": 16 << 20}}));
    env.run().exits_with(137);
    assert_no_leftovers(&env);
}

#[test]
fn pids_limit_stops_forks() {
    if !v1_host("pids_limit_stops_forks") {
        return;
    }
    // busybox sh gives up (exit 2) at the first fork the limit refuses.
    let mut env = Env::sh("cg_pids_fork", "for i in 1 2 3 4 5 6 7 8; do sleep 2 & echo $i >> /forked; done 2>/err");
    set_resources(&mut env, json!({"pids": {"limit": 4}}));
    let out = env.run();
    let err = fs::read_to_string(env.rootfs().join("err")).unwrap_or_default();
    let forked = fs::read_to_string(env.rootfs().join("forked")).unwrap_or_default().lines().count();
    assert!(err.contains("can't fork") || err.contains("Resource temporarily unavailable"), "{err}\n{out}");
    assert_eq!(forked, 3, "init + 3 children fit a limit of 4:\n{out}");
    assert_no_leftovers(&env);
}

#[test]
fn pause_stops_progress_and_resume_restores_it() {
    if !v1_host("pause_stops_progress_and_resume_restores_it") {
        return;
    }
    let env = Env::sh("cg_pause", COUNTER);
    env.run_detached();
    assert!(wait_until(SHORT, || count(&env) > 2), "counter never ran");
    env.berth(&["pause", &env.id]).ok();
    assert_eq!(env.status(), "paused");
    assert_eq!(read(&env, "freezer", "freezer.state"), "FROZEN");
    let a = count(&env);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(count(&env), a, "the counter moved while paused");
    env.berth(&["pause", &env.id]).fails_with(&["cannot pause", "paused"]);
    env.berth(&["resume", &env.id]).ok();
    assert_eq!(env.status(), "running");
    assert_eq!(read(&env, "freezer", "freezer.state"), "THAWED");
    assert!(wait_until(SHORT, || count(&env) > a + 2), "the counter did not resume");
    env.berth(&["resume", &env.id]).fails_with(&["cannot resume", "running"]);
    // A freeze from outside berth shows too (as runc, which reads the freezer).
    let st = dir(&env, "freezer").join("freezer.state");
    fs::write(&st, "FROZEN").unwrap();
    assert!(wait_until(SHORT, || env.status() == "paused"), "status did not follow an outside freeze");
    env.berth(&["resume", &env.id]).ok();
    assert_eq!(read(&env, "freezer", "freezer.state"), "THAWED");
    assert_eq!(env.status(), "running");
    env.delete_force().ok();
    assert_no_leftovers(&env);
}

#[test]
fn delete_force_of_a_paused_container_leaves_nothing() {
    if !v1_host("delete_force_of_a_paused_container_leaves_nothing") {
        return;
    }
    let env = Env::sh("cg_pause_del", &format!("sleep 1000 & {COUNTER}"));
    env.run_detached();
    env.berth(&["pause", &env.id]).ok();
    env.delete().fails_with(&["paused"]);
    env.delete_force().ok();
    assert_no_leftovers(&env);
}

#[test]
fn update_changes_the_files_and_zero_means_unchanged() {
    if !v1_host("update_changes_the_files_and_zero_means_unchanged") {
        return;
    }
    let mut env = Env::sh("cg_update", SLEEPER);
    set_resources(
        &mut env,
        json!({"memory": {"limit": 64 << 20}, "cpu": {"shares": 512, "quota": 50000, "period": 100000}, "pids": {"limit": 20}}),
    );
    env.create();
    let id = env.id.clone();
    env.berth(&["update", "--memory", "128m", "--memory-swap", "256m", "--cpu-share", "256", &id]).ok();
    assert_eq!(read(&env, "memory", "memory.limit_in_bytes"), (128u64 << 20).to_string());
    assert_eq!(read(&env, "memory", "memory.memsw.limit_in_bytes"), (256u64 << 20).to_string());
    assert_eq!(read(&env, "cpu", "cpu.shares"), "256");
    assert_eq!(read(&env, "cpu", "cpu.cfs_quota_us"), "50000");
    // Docker sends zeros for what it does not change.
    env.berth(&["update", "--memory", "0", "--cpu-share", "0", "--cpu-quota", "0", "--pids-limit", "0", "--blkio-weight", "0", &id])
        .ok();
    assert_eq!(read(&env, "memory", "memory.limit_in_bytes"), (128u64 << 20).to_string());
    assert_eq!(read(&env, "cpu", "cpu.shares"), "256");
    assert_eq!(read(&env, "cpu", "cpu.cfs_quota_us"), "50000");
    assert_eq!(read(&env, "pids", "pids.max"), "20");
    env.berth(&["update", "--pids-limit", "-1", "--cpu-quota", "-1", "--cpuset-cpus", "0", &id]).ok();
    assert_eq!(read(&env, "pids", "pids.max"), "max");
    assert_eq!(read(&env, "cpu", "cpu.cfs_quota_us"), "-1");
    assert_eq!(read(&env, "cpuset", "cpuset.cpus"), "0");
    // --resources FILE and -: the JSON form, zeros unchanged.
    let f = env.file("res.json");
    fs::write(&f, r#"{"memory": {"limit": 0, "reservation": 33554432}, "cpu": {"quota": 30000, "period": 0}, "pids": {"limit": 9}}"#)
        .unwrap();
    env.berth(&["update", "--resources", f.to_str().unwrap(), &id]).ok();
    assert_eq!(read(&env, "memory", "memory.limit_in_bytes"), (128u64 << 20).to_string());
    assert_eq!(read(&env, "memory", "memory.soft_limit_in_bytes"), (32u64 << 20).to_string());
    assert_eq!(read(&env, "cpu", "cpu.cfs_quota_us"), "30000");
    assert_eq!(read(&env, "cpu", "cpu.cfs_period_us"), "100000");
    assert_eq!(read(&env, "pids", "pids.max"), "9");
    env.berth_stdin(&["update", "-r", "-", &id], br#"{"cpu": {"shares": 1024}}"#).ok();
    assert_eq!(read(&env, "cpu", "cpu.shares"), "1024");
    env.delete_force().ok();
    assert_no_leftovers(&env);
}

/// A value the kernel refuses (a memory limit below the usage: EBUSY; a
/// cpuset beyond the cpus: ERANGE) is a cgroup error naming the
/// file and the errno, not a usage error (runc: "unable to set memory
/// limit to ... (current usage: ..., peak usage: ...)").
#[test]
fn update_refused_by_the_kernel_names_the_cgroup_file_and_errno() {
    if !v1_host("update_refused_by_the_kernel_names_the_cgroup_file_and_errno") {
        return;
    }
    let mut env = Env::sh("cg_update_refused", "cat /dev/zero | head -c 8000000 > /dev/shm/fill; echo ok > /filled; while :; do sleep 0.1; done");
    set_resources(&mut env, json!({"memory": {"limit": 64 << 20}}));
    env.run_detached();
    env.wait_file("filled", "ok");
    let id = env.id.clone();
    let limit = dir(&env, "memory").join("memory.limit_in_bytes");
    let out = env.berth(&["--debug", "update", "--memory", "1m", &id]);
    out.fails_with(&[&limit.display().to_string(), "\"1048576\"", "os error 16", "current usage", "error kind cgroup, errno 16"]);
    assert!(!out.stderr.contains("error kind usage"), "{out}");
    assert_eq!(read(&env, "memory", "memory.limit_in_bytes"), (64u64 << 20).to_string());
    let cpus = dir(&env, "cpuset").join("cpuset.cpus");
    let before = read(&env, "cpuset", "cpuset.cpus");
    // Beyond the kernel's cpu ids: ERANGE (a cpu outside the parent's would be EINVAL).
    env.berth(&["--debug", "update", "--cpuset-cpus", "4095", &id]).fails_with(&[
        &cpus.display().to_string(),
        "\"4095\"",
        "os error 34",
        "error kind cgroup, errno 34",
    ]);
    assert_eq!(read(&env, "cpuset", "cpuset.cpus"), before, "the old cpuset was not kept");
    // A bad flag stays a usage error.
    env.berth(&["--debug", "update", "--memory", "12q", &id]).fails_with(&["--memory", "error kind usage"]);
    env.delete_force().ok();
    assert_no_leftovers(&env);
}

#[test]
fn update_errors_name_the_field_and_keep_the_old_values() {
    if !v1_host("update_errors_name_the_field_and_keep_the_old_values") {
        return;
    }
    let mut env = Env::sh("cg_update_bad", "cat /dev/zero | head -c 8000000 > /dev/shm/fill; echo ok > /filled; while :; do sleep 0.1; done");
    set_resources(&mut env, json!({"memory": {"limit": 64 << 20}, "cpu": {"shares": 512}}));
    env.run_detached();
    env.wait_file("filled", "ok");
    let id = env.id.clone();
    env.berth(&["update", "--cpu-share", "300", "--memory", "1m", &id]).fails_with(&["memory.limit", "current usage"]);
    assert_eq!(read(&env, "memory", "memory.limit_in_bytes"), (64u64 << 20).to_string());
    assert_eq!(read(&env, "cpu", "cpu.shares"), "512", "the old values were not restored");
    env.berth(&["update", "--memory", "12q", &id]).fails_with(&["--memory", "12q"]);
    env.berth(&["update", "--blkio-weight", "5", &id]).fails_with(&["blockIO.weight", "10-1000"]);
    let f = env.file("bad.json");
    fs::write(&f, r#"{"memory": {"limit": "lots"}}"#).unwrap();
    env.berth(&["update", "-r", f.to_str().unwrap(), &id]).fails_with(&["--resources", "memory.limit"]);
    env.berth(&["update", "-r", f.to_str().unwrap(), "--memory", "1g", &id]).fails_with(&["--resources", "cannot be combined"]);
    env.berth(&["update", "--kernel-memory", "1g", &id]).fails_with(&["--kernel-memory", "not supported"]);
    env.berth(&["update", "--memory", "1g", "nosuchcontainer"]).fails_with(&["does not exist"]);
    env.delete_force().ok();
    assert_no_leftovers(&env);
}

#[test]
fn ps_lists_the_containers_processes() {
    if !v1_host("ps_lists_the_containers_processes") {
        return;
    }
    // A fixed set of processes: init (sleep 999) and one child.
    let env = Env::sh("cg_ps", "sleep 1000 & exec sleep 999");
    env.run_detached();
    let pid = env.pid();
    assert!(wait_until(SHORT, || host::cgroup_pids(&dir(&env, "memory")).len() >= 2));
    let j = env.berth(&["ps", "--format", "json", &env.id]).ok().json();
    let pids: Vec<i64> = j.as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
    assert!(pids.contains(&pid) && pids.len() >= 2, "{j}");
    let t = env.berth(&["ps", &env.id]).ok();
    assert!(t.stdout.lines().next().unwrap().contains("PID"), "{t}");
    assert!(t.stdout.contains("sleep 1000") && t.stdout.contains("sleep 999"), "{t}");
    assert!(!t.stdout.contains("cargo") && !t.stdout.contains("berth-it"), "other processes listed:\n{t}");
    let t = env.berth(&["ps", &env.id, "--", "-o", "pid,comm"]).ok();
    assert_eq!(t.stdout.lines().next().unwrap().split_whitespace().collect::<Vec<_>>(), ["PID", "COMMAND"], "{t}");
    assert_eq!(t.lines().len(), 3, "{t}");
    assert_eq!(pids.len(), 2, "{j}");
    env.berth(&["ps", "-f", "json", &env.id, "--", "-o", "pid"]).fails_with(&["table"]);
    env.berth(&["ps", &env.id, "--", "--no-such-option"]).fails_with(&["ps --no-such-option"]);
    env.delete_force().ok();
    assert_no_leftovers(&env);
}

#[test]
fn events_stats_prints_runcs_json() {
    if !v1_host("events_stats_prints_runcs_json") {
        return;
    }
    let mut env = Env::sh("cg_stats", SLEEPER);
    set_resources(&mut env, json!({"memory": {"limit": 64 << 20}, "pids": {"limit": 30}}));
    env.run_detached();
    let v = env.berth(&["events", "--stats", &env.id]).ok().json();
    assert_eq!(v["type"], "stats", "{v}");
    assert_eq!(v["id"], env.id.as_str(), "{v}");
    let d = &v["data"];
    assert_eq!(d["memory"]["usage"]["limit"], 64u64 << 20, "{d}");
    assert!(d["memory"]["usage"]["usage"].as_u64().unwrap() > 0, "{d}");
    assert!(d["memory"]["swap"].get("limit").is_some() && d["memory"]["kernel"].get("failcnt").is_some(), "{d}");
    assert!(d["pids"]["current"].as_u64().unwrap() >= 1 && d["pids"]["limit"] == 30, "{d}");
    assert!(d["cpu"]["usage"]["total"].as_u64().unwrap() > 0, "{d}");
    assert!(d.get("blkio").is_some() && d.get("hugetlb").is_some(), "{d}");
    // Without --stats: a stats event every interval.
    let mut ev = env.spawn(&["events", "--interval", "100ms", &env.id]);
    let seen = ev.expect_file(&env.dir.join("cmd002.out"), "\"type\":\"stats\"", SHORT);
    assert!(seen.contains(&env.id), "{seen}");
    env.berth(&["events", "--interval", "soon", &env.id]).fails_with(&["--interval"]);
    env.delete_force().ok();
    let out = ev.wait(SHORT);
    assert!(out.success(), "events did not end with the container:\n{out}");
    assert_no_leftovers(&env);
}
