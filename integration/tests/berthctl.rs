//! berthctl end to end: the busybox image from scripts/mkimage.sh, run
//! through containerd-shim-berth-v2 (the built binaries), each test with
//! its own --root (see integration/src/berthctl.rs for the cleanup).

use berth_integration::berthctl::{berthctl_bin, Ctl};
use berth_integration::harness::wait_until;
use berth_integration::prelude::*;

/// `berthctl ARGS` with a pty (24x80) as its stdin, stdout and stderr:
/// its exit code and what the terminal showed.
fn run_on_pty(c: &Ctl, args: &[&str]) -> (i32, String) {
    use berth_integration::tty::{Pty, Reader};
    let pty = Pty::open(24, 80);
    let reader = Reader::start(&pty.master);
    let slave = || std::process::Stdio::from(pty.slave.try_clone().unwrap());
    let mut child = std::process::Command::new(berthctl_bin())
        .arg("--root")
        .arg(&c.root)
        .args(args)
        .stdin(slave())
        .stdout(slave())
        .stderr(slave())
        .spawn()
        .unwrap();
    let mut status = None;
    wait_until(Duration::from_secs(60), || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("berthctl {args:?} did not exit in 60 s; the terminal showed {:?}", reader.text());
    };
    std::thread::sleep(Duration::from_millis(200));
    (status.code().unwrap_or(-1), reader.text())
}

#[test]
fn import_and_run_with_exit_codes_and_events() {
    let c = Ctl::new("run");
    c.import_busybox();
    let ls = c.run(&["image", "ls"]).ok();
    assert!(ls.stdout.contains("busybox:latest"), "{ls}");
    let o = c.run(&["run", "--rm", "busybox", "echo", "hello"]).ok();
    assert_eq!(o.stdout, "hello\n", "{o}");
    let o = c.run(&["run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 7"]);
    o.exits_with(7);
    assert_eq!((o.stdout.as_str(), o.stderr.as_str()), ("out\n", "err\n"), "{o}");
    // Image config applied: Cmd (sh) reads stdin with -i; env and hostname.
    let input = c.dir.join("in");
    fs::write(&input, "echo from-stdin $HOSTNAME $FOO\n").unwrap();
    let o = c.run_stdin(&["run", "--rm", "-i", "--name", "n1", "-e", "FOO=bar", "busybox"], &input).ok();
    assert_eq!(o.stdout, "from-stdin n1 bar\n", "{o}");
    // Without --rm: kept, stopped, its log and events on disk.
    c.run(&["run", "--name", "keep", "busybox", "sh", "-c", "echo logged; exit 3"]).exits_with(3);
    assert_eq!(c.status("keep"), "exited (3)");
    assert_eq!(c.run(&["logs", "keep"]).ok().stdout, "logged\n");
    let events = fs::read_to_string(c.root.join("containers/keep/events")).unwrap();
    let topics: Vec<String> = events
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["topic"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(topics, ["/tasks/create", "/tasks/start", "/tasks/exit"], "{events}");
    c.run(&["rm", "keep"]).ok();
    assert_eq!(c.status("keep"), "absent");
    c.assert_clean();
}

#[test]
fn run_a_bundle() {
    let c = Ctl::new("bundle");
    let b = Bundle::create(&c.dir.join("b"), &["sh", "-c", "echo bundle $(hostname)"]).unwrap();
    let o = c.run(&["run", "--rm", "--bundle", b.dir.to_str().unwrap(), "--hostname", "hb"]).ok();
    assert_eq!(o.stdout, "bundle hb\n", "{o}");
    let o = c.run(&["run", "--rm", "--bundle", b.dir.to_str().unwrap(), "echo", "override"]).ok();
    assert_eq!(o.stdout, "override\n", "{o}");
    c.assert_clean();
}

#[test]
fn tty() {
    let c = Ctl::new("tty");
    c.import_busybox();
    // The container's terminal has berthctl's terminal's size from the start.
    let (code, out) = run_on_pty(&c, &["run", "--rm", "-t", "busybox", "sh", "-c", "tty; stty size; exit 5"]);
    assert_eq!(code, 5, "{out}");
    assert!(out.contains("/dev/pts/") && out.contains("24 80"), "{out:?}");
    c.run(&["run", "-d", "--name", "t1", "busybox", "sleep", "300"]).ok();
    let (code, out) = run_on_pty(&c, &["exec", "-t", "t1", "sh", "-c", "tty; stty size; exit 6"]);
    assert_eq!(code, 6, "{out}");
    assert!(out.contains("/dev/pts/") && out.contains("24 80"), "{out:?}");
    // Without -t, no terminal.
    let o = c.run(&["exec", "t1", "sh", "-c", "tty || echo no-tty"]);
    assert!(o.stdout.contains("no-tty"), "{o}");
    c.run(&["rm", "-f", "t1"]).ok();
    c.assert_clean();
}

#[test]
fn detached_exec_logs_stop_rm() {
    let c = Ctl::new("detach");
    c.import_busybox();
    let script = "trap 'echo bye; exit 0' TERM; echo started; while :; do sleep 0.1; done";
    let o = c.run(&["run", "-d", "--name", "d1", "busybox", "sh", "-c", script]).ok();
    assert_eq!(o.stdout, "d1\n");
    assert!(wait_until(SHORT, || c.run(&["logs", "d1"]).stdout.contains("started")));
    assert_eq!(c.status("d1"), "running");
    let o = c.run(&["exec", "d1", "sh", "-c", "echo in-exec; echo exec-err >&2; exit 4"]);
    o.exits_with(4);
    assert_eq!((o.stdout.as_str(), o.stderr.as_str()), ("in-exec\n", "exec-err\n"), "{o}");
    let input = c.dir.join("in");
    fs::write(&input, "piped\n").unwrap();
    let o = c.run_stdin(&["exec", "-i", "-e", "X=1", "d1", "sh", "-c", "cat; echo X=$X"], &input).ok();
    assert_eq!(o.stdout, "piped\nX=1\n", "{o}");
    let o = c.run(&["stats", "--json", "d1"]).ok();
    let st: Value = serde_json::from_str(&o.stdout).unwrap();
    assert!(st["pids"].as_u64().unwrap() >= 1 && st["memory_usage"].as_u64().unwrap() > 0, "{o}");
    assert!(c.run(&["stats", "d1"]).ok().stdout.contains("MEM USAGE / LIMIT"));
    // rm refuses a running container without -f.
    let o = c.run(&["rm", "d1"]);
    assert_eq!(o.code(), Some(125), "{o}");
    assert!(o.stderr.contains("is running: stop it first, or use rm -f"), "{o}");
    c.run(&["stop", "d1"]).ok();
    assert_eq!(c.status("d1"), "exited (0)");
    assert_eq!(c.run(&["logs", "d1"]).ok().stdout, "started\nbye\n");
    c.run(&["rm", "d1"]).ok();
    // kill and rm -f.
    c.run(&["run", "-d", "--name", "d2", "busybox", "sleep", "300"]).ok();
    c.run(&["kill", "-s", "TERM", "d2"]).ok(); // pid 1 ignores TERM
    assert_eq!(c.status("d2"), "running");
    c.run(&["kill", "d2"]).ok();
    assert!(wait_until(SHORT, || c.status("d2") == "exited (137)"));
    c.run(&["run", "-d", "--name", "d3", "busybox", "sleep", "300"]).ok();
    c.run(&["rm", "-f", "d2", "d3"]).ok();
    c.assert_clean();
}

#[test]
fn logs_follow_until_exit() {
    let c = Ctl::new("follow");
    c.import_busybox();
    c.run(&["run", "-d", "--name", "f", "busybox", "sh", "-c", "for i in 1 2 3; do echo line$i; sleep 0.2; done"]).ok();
    let o = c.run(&["logs", "-f", "f"]).ok();
    assert_eq!(o.stdout, "line1\nline2\nline3\n", "{o}");
    c.run(&["rm", "f"]).ok();
    c.assert_clean();
}

#[test]
fn memory_limit_oom_exits_137() {
    let c = Ctl::new("oom");
    c.import_busybox();
    let o = c.run(&["run", "--rm", "--memory", "16m", "busybox", "sh", "-c", "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived"]);
    o.exits_with(137);
    assert!(!o.stdout.contains("survived"), "{o}");
    c.assert_clean();
}

#[test]
fn volumes_and_read_only() {
    let c = Ctl::new("vol");
    c.import_busybox();
    let (rw, ro) = (c.dir.join("rw"), c.dir.join("ro"));
    fs::create_dir_all(&rw).unwrap();
    fs::create_dir_all(&ro).unwrap();
    fs::write(ro.join("f"), "from-host\n").unwrap();
    let v1 = format!("{}:/rw", rw.display());
    let v2 = format!("{}:/ro:ro", ro.display());
    let o = c.run(&["run", "--rm", "-v", &v1, "-v", &v2, "busybox", "sh", "-c", "cat /ro/f; echo x > /ro/g || echo ro-refused; echo made > /rw/new"]).ok();
    assert!(o.stdout.contains("from-host") && o.stdout.contains("ro-refused"), "{o}");
    assert_eq!(fs::read_to_string(rw.join("new")).unwrap(), "made\n");
    assert!(!ro.join("g").exists());
    let o = c.run(&["run", "--rm", "--read-only", "busybox", "sh", "-c", "touch /x || echo root-ro; touch /tmp/y || echo tmp-ro"]).ok();
    assert!(o.stdout.contains("root-ro"), "{o}");
    // Without --read-only, writes go to the container's own upper layer.
    c.run(&["run", "--rm", "busybox", "sh", "-c", "echo w > /written"]).ok();
    let img = c.root.join("images");
    let leaked = fs::read_dir(&img).unwrap().flatten().any(|e| e.path().join("rootfs/written").exists());
    assert!(!leaked, "a container's write reached the image");
    // A missing volume source: a clear error, nothing made.
    let o = c.run(&["run", "--rm", "-v", "/nonexistent-berthctl:/x", "busybox", "true"]);
    assert_eq!(o.code(), Some(125), "{o}");
    assert!(o.stderr.contains("-v /nonexistent-berthctl:/x"), "{o}");
    c.assert_clean();
}

#[test]
fn user_caps_limits_flags() {
    let c = Ctl::new("flags");
    c.import_busybox();
    let o = c.run(&["run", "--rm", "-u", "65534:65534", "--hostname", "hh", "busybox", "sh", "-c", "id -u; id -g; hostname"]).ok();
    assert_eq!(o.stdout, "65534\n65534\nhh\n", "{o}");
    let o = c.run(&["run", "--rm", "--cap-drop", "ALL", "--pids-limit", "7", "--cpus", "0.5", "busybox", "sh", "-c",
        "grep CapEff /proc/self/status; cat /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/cpu/cpu.cfs_quota_us"]).ok();
    assert!(o.stdout.contains("CapEff:\t0000000000000000"), "{o}");
    assert!(o.stdout.contains("\n7\n50000\n"), "{o}");
    let o = c.run(&["run", "--rm", "--cap-add", "NET_ADMIN", "busybox", "sh", "-c", "ip link set lo down && echo admin"]).ok();
    assert_eq!(o.stdout, "admin\n", "{o}");
    // seccomp: unconfined, and a profile file that denies mkdir.
    let prof = c.dir.join("deny-mkdir.json");
    fs::write(&prof, r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]}"#).unwrap();
    let o = c.run(&["run", "--rm", "--seccomp", prof.to_str().unwrap(), "busybox", "sh", "-c", "mkdir /tmp/d || echo denied"]).ok();
    assert_eq!(o.stdout.trim(), "denied", "{o}");
    c.run(&["run", "--rm", "--seccomp", "unconfined", "busybox", "true"]).ok();
    for (args, needle) in [
        (vec!["--memory", "lots"], "--memory \"lots\""),
        (vec!["--cpus", "0"], "--cpus 0"),
        (vec!["--cap-add", "BOGUS"], "--cap-add BOGUS"),
        (vec!["-u", "nosuchuser"], "no user \"nosuchuser\""),
        (vec!["--seccomp", "/nonexistent.json"], "--seccomp /nonexistent.json"),
        (vec!["--name", "bad/name"], "invalid container name"),
    ] {
        let mut a = vec!["run", "--rm"];
        a.extend(args);
        a.extend(["busybox", "true"]);
        let o = c.run(&a);
        assert_eq!(o.code(), Some(125), "{o}");
        assert!(o.stderr.contains(needle), "stderr lacks {needle:?}: {o}");
    }
    c.assert_clean();
}

#[test]
fn twenty_containers_at_once() {
    let c = Ctl::new("twenty");
    c.import_busybox();
    let names: Vec<String> = (0..20).map(|i| format!("m{i}")).collect();
    let runs: Vec<Spawned> = names
        .iter()
        .map(|n| c.spawn(&["run", "-d", "--name", n, "busybox", "sh", "-c", &format!("echo hi-{n}; exec sleep 300")]))
        .collect();
    for r in runs {
        r.wait(Duration::from_secs(120)).ok();
    }
    let ps = c.ps();
    assert_eq!(ps.len(), 20);
    assert!(ps.iter().all(|p| p["status"] == "running"), "{ps:?}");
    for n in &names {
        assert!(wait_until(SHORT, || c.run(&["logs", n]).stdout == format!("hi-{n}\n")), "{n}");
    }
    let rms: Vec<Spawned> = names.iter().map(|n| c.spawn(&["rm", "-f", n])).collect();
    for r in rms {
        r.wait(Duration::from_secs(120)).ok();
    }
    assert!(c.ps().is_empty());
    c.assert_clean();
}

#[test]
fn containers_outlive_berthctl() {
    let c = Ctl::new("restart");
    c.import_busybox();
    c.run(&["run", "-d", "--name", "bg", "busybox", "sleep", "300"]).ok();
    // A foreground run whose berthctl dies: the container keeps running.
    let fg = c.spawn(&["run", "--name", "fg", "busybox", "sh", "-c", "echo up; exec sleep 300"]);
    assert!(wait_until(SHORT, || c.status("fg") == "running"));
    // "running" comes before the shell's first write reaches the log: wait
    // for it, so the kill below cuts berthctl off mid-run, not mid-copy.
    assert!(wait_until(SHORT, || c.run(&["logs", "fg"]).stdout.contains("up")));
    host::kill9(fg.pid());
    drop(fg);
    std::thread::sleep(Duration::from_millis(300));
    let ps = c.ps();
    assert_eq!(ps.len(), 2, "{ps:?}");
    assert!(ps.iter().all(|p| p["status"] == "running"), "{ps:?}");
    for p in &ps {
        assert!(pid_alive(p["pid"].as_i64().unwrap()), "{p}");
    }
    c.run(&["stop", "-t", "1", "bg", "fg"]).ok();
    assert_eq!(c.status("bg"), "exited (137)");
    c.run(&["rm", "bg", "fg"]).ok();
    c.assert_clean();
}
