//! Measures the ways a new process can join the container's cgroups, on the
//! host's real hierarchies, as berth's create does it (clone3, then join):
//!
//! * `child-tasks`: the child writes "0" to `tasks` in each v1 hierarchy
//!   and to `cgroup.procs` in the v2 one (berth's join before this work);
//! * `child-tasks+clone-into`: the same on v1, the v2 hierarchy joined at
//!   birth with clone3(CLONE_INTO_CGROUP) (berth's join now);
//! * `child-procs`: the child writes "0" to `cgroup.procs` everywhere;
//! * `parent-procs`: the parent writes the child's pid to every
//!   `cgroup.procs` (runc's way);
//! * `clone-into` (v2-only hosts): clone3(CLONE_INTO_CGROUP), nothing else.
//!
//! Each sample is the time from clone to the child being reaped after it
//! joined; making and removing the directories is not counted. Methods are
//! interleaved. With IDLE_MS, each sample follows that much idle time (the
//! "cold" case: a migration may then wait for an RCU grace period).
//! Run as root: `cargo run --features internals --example cgroup_join -- [N [IDLE_MS]]`.

use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use berth::internals::{clone_fork, ContainerCgroups, Forked};

fn write_fd(fd: &OwnedFd, s: &str) -> bool {
    unsafe { libc::write(fd.as_raw_fd(), s.as_ptr().cast(), s.len()) == s.len() as isize }
}

fn open_w(p: &std::path::Path) -> OwnedFd {
    std::fs::OpenOptions::new().write(true).open(p).map(OwnedFd::from).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn one(method: &str, cg: &ContainerCgroups) -> Duration {
    let v2 = cg.is_v2();
    // (fd, written by the child) per hierarchy; the unified dir for clone3.
    let mut child_fds = Vec::new();
    let mut parent_fds = Vec::new();
    let mut into: Option<OwnedFd> = None;
    for m in &cg.mounts {
        let clone_into = m.unified && matches!(method, "child-tasks+clone-into" | "clone-into");
        if clone_into {
            into = Some(OwnedFd::from(std::fs::File::open(&m.dir).unwrap()));
            continue;
        }
        let file = match method {
            "child-tasks" | "child-tasks+clone-into" if !m.unified => "tasks",
            _ => "cgroup.procs",
        };
        let fd = open_w(&m.dir.join(file));
        if method == "parent-procs" {
            parent_fds.push(fd);
        } else {
            child_fds.push(fd);
        }
    }
    let _ = v2;
    let start = Instant::now();
    let mut pipe = [0; 2];
    unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) };
    let forked = unsafe { clone_fork(0, into.as_ref().map(|f| f.as_raw_fd())) }.expect("clone3");
    match forked {
        Forked::Child => {
            let mut code = 0;
            for fd in &child_fds {
                if !write_fd(fd, "0") {
                    code = 1;
                }
            }
            let mut b = [0u8; 1];
            unsafe { libc::close(pipe[1]) };
            unsafe { libc::read(pipe[0], b.as_mut_ptr().cast(), 1) };
            unsafe { libc::_exit(code) };
        }
        Forked::Parent { pid, .. } => {
            for fd in &parent_fds {
                assert!(write_fd(fd, &pid.to_string()), "parent write");
            }
            unsafe { libc::close(pipe[0]) };
            unsafe { libc::close(pipe[1]) };
            let mut st = 0;
            unsafe { libc::waitpid(pid, &mut st, 0) };
            let d = start.elapsed();
            assert!(libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0, "{method}: child failed to join ({st})");
            d
        }
    }
}

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(50);
    let idle = Duration::from_millis(std::env::args().nth(2).and_then(|a| a.parse().ok()).unwrap_or(0));
    let probe = ContainerCgroups::resolve(Some("/berth-joinbench/probe"), "probe").expect("cgroups");
    let methods: &[&str] = if probe.is_v2() {
        &["child-procs", "clone-into", "parent-procs"]
    } else {
        &["child-tasks", "child-tasks+clone-into", "child-procs", "parent-procs"]
    };
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); methods.len()];
    for i in 0..n {
        for (k, m) in methods.iter().enumerate() {
            let path = format!("/berth-joinbench/{}-{i}-{k}", std::process::id());
            let cg = ContainerCgroups::resolve(Some(&path), "x").expect("resolve");
            cg.create().expect("create cgroups");
            std::thread::sleep(idle);
            samples[k].push(one(m, &cg));
            cg.remove().expect("remove cgroups");
        }
    }
    for d in ContainerCgroups::resolve(Some("/berth-joinbench"), "x").unwrap().mounts {
        let _ = std::fs::remove_dir(&d.dir);
    }
    let host = if probe.is_v2() { "cgroup v2" } else { "cgroup v1/hybrid" };
    println!("{n} samples each, {host} host, {} ms idle before each", idle.as_millis());
    for (k, m) in methods.iter().enumerate() {
        let s = &mut samples[k];
        s.sort();
        let q = |f: f64| s[((s.len() - 1) as f64 * f) as usize].as_secs_f64() * 1000.0;
        println!("{m:<24} median {:7.3} ms   p10 {:7.3}   p90 {:7.3}", q(0.5), q(0.1), q(0.9));
    }
}
