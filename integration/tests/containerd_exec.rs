//! containerd-shim-berth-v2's exec, terminals, pause/resume, OOM events,
//! metrics and Update under a real containerd, 1.6 (Debian 12) and 2.1
//! (Debian sid), each test with its own private containerd.

use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Stdio};

use berth_integration::containerd::{run_args, topics_seen, Containerd, Version};
use berth_integration::prelude::*;
use berth_integration::tty::{Pty, Reader};

berth_integration::each_containerd!(
    exec_output_stdin_and_exit_code,
    exec_events_in_order,
    exec_with_tty,
    run_with_tty_and_resize,
    pause_and_resume,
    oom_kill_event,
    task_metrics,
    update_resources,
);

fn exec_output_stdin_and_exit_code(v: Version) {
    let c = Containerd::start(v, "exec");
    c.sleeper("x1");
    let o = c.ctr(&[
        "tasks",
        "exec",
        "--exec-id",
        "e1",
        "x1",
        "sh",
        "-c",
        "echo out-$$; echo err >&2; exit 4",
    ]);
    o.exits_with(4);
    // Only the process's own output (no runtime log lines).
    assert_eq!(o.stderr.trim(), "err", "{o}");
    // The exec'd shell is in the container's pid namespace (not pid 1).
    assert!(
        o.stdout.contains("out-") && !o.stdout.contains("out-1\n"),
        "{o}"
    );
    assert!(o.stderr.contains("err"), "{o}");
    // stdin: ctr copies the file in and closes it; the process reads EOF.
    let input = c.dir.join("exec-input");
    fs::write(&input, "a\nb\n").unwrap();
    let o = c.ctr_full(
        &[
            "tasks",
            "exec",
            "--exec-id",
            "e2",
            "x1",
            "sh",
            "-c",
            "wc -l; echo stdin-done",
        ],
        Some(&input),
        Duration::from_secs(30),
    );
    o.exits_with(0);
    assert_eq!(
        o.stdout.split_whitespace().collect::<Vec<_>>(),
        ["2", "stdin-done"],
        "{o}"
    );
    // A killed exec reports 128 + the signal; the container keeps running.
    let run = c.ctr_spawn(&["tasks", "exec", "--exec-id", "e3", "x1", "sleep", "1000"]);
    assert!(
        wait_until(SHORT, || c.ctr(&["tasks", "ps", "x1"]).lines().len() >= 3),
        "{}",
        c.ctr(&["tasks", "ps", "x1"])
    );
    c.ctr(&["tasks", "kill", "--exec-id", "e3", "-s", "KILL", "x1"])
        .ok();
    run.wait(SHORT).exits_with(137);
    c.wait_status("x1", "RUNNING");
    // Bad input: an exec into a missing binary fails clearly.
    let o = c.ctr(&["tasks", "exec", "--exec-id", "e4", "x1", "/no/such/binary"]);
    assert!(!o.success(), "{o}");
    assert!(o.stderr.contains("/no/such/binary"), "{o}");
    c.remove("x1");
    c.assert_clean();
}

fn exec_events_in_order(v: Version) {
    let c = Containerd::start(v, "execev");
    let (events, path) = c.ctr_spawn_out(&["events"]);
    std::thread::sleep(Duration::from_millis(300));
    c.sleeper("xe");
    c.ctr(&["tasks", "exec", "--exec-id", "ev1", "xe", "true"])
        .exits_with(0);
    let want = ["/tasks/exec-added", "/tasks/exec-started", "/tasks/exit"];
    let ok = wait_until(SHORT, || topics_seen(&path, "xe", &want).len() >= 3);
    let text = fs::read_to_string(&path).unwrap_or_default();
    drop(events);
    assert!(ok, "{text}");
    assert_eq!(topics_seen(&path, "xe", &want), want, "{text}");
    // The exit is the exec's (its id), not the container's.
    let exit = text.lines().find(|l| l.contains(" /tasks/exit ")).unwrap();
    assert!(exit.contains("\"ev1\""), "{exit}");
    c.remove("xe");
    c.assert_clean();
}

/// `ctr ARGS` on a fresh pty (its controlling terminal), as a user's
/// terminal: ctr puts it in raw mode and forwards its size.
struct TtyCtr {
    child: Child,
    pty: Pty,
    out: Reader,
}

impl TtyCtr {
    fn spawn(c: &Containerd, args: &[&str], rows: u16, cols: u16) -> TtyCtr {
        let pty = Pty::open(rows, cols);
        let slave = pty.slave.as_raw_fd();
        let mut cmd = c.ctr_command(args);
        let dup = |_: ()| Stdio::from(pty.slave.try_clone().unwrap());
        cmd.stdin(dup(())).stdout(dup(())).stderr(dup(()));
        unsafe {
            cmd.pre_exec(move || {
                if libc::setsid() < 0 || libc::ioctl(slave, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn ctr on a pty");
        let out = Reader::start(&pty.master);
        TtyCtr { child, pty, out }
    }

    fn wait(&mut self, t: Duration) -> Option<i32> {
        let ok = wait_until(t, || self.child.try_wait().ok().flatten().is_some());
        assert!(ok, "ctr did not exit; terminal: {:?}", self.out.text());
        self.child.wait().ok().and_then(|s| s.code())
    }
}

impl Drop for TtyCtr {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// "/dev/pts/N" in terminal output.
fn has_pts(text: &str) -> bool {
    text.split(|c: char| c.is_whitespace()).any(|w| {
        w.strip_prefix("/dev/pts/")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    })
}

fn exec_with_tty(v: Version) {
    let c = Containerd::start(v, "exectty");
    c.sleeper("xt");
    let mut t = TtyCtr::spawn(
        &c,
        &[
            "tasks",
            "exec",
            "-t",
            "--exec-id",
            "t1",
            "xt",
            "sh",
            "-c",
            // ctr sends the size (ResizePty) right after Start, as with
            // runc: until then the new pty may still be 0x0.
            "tty; i=0; until [ \"$(stty size 2>/dev/null)\" = '31 97' ] || [ $i = 50 ]; do sleep 0.1; i=$((i+1)); done; stty size; read x; echo got-$x; exit 6",
        ],
        31,
        97,
    );
    let text = t.out.wait_for("31 97", Duration::from_secs(30));
    assert!(has_pts(&text), "{text:?}");
    // Typed input reaches the process through its pty (CR becomes NL).
    berth_integration::tty::write_all(&t.pty.master, b"hello\r");
    t.out.wait_for("got-hello", SHORT);
    assert_eq!(t.wait(SHORT), Some(6), "{:?}", t.out.text());
    c.remove("xt");
    c.assert_clean();
}

fn run_with_tty_and_resize(v: Version) {
    let c = Containerd::start(v, "runtty");
    let mut t = TtyCtr::spawn(
        &c,
        &run_args(
            &["-t", "--rm"],
            "rt",
            &["sh", "-c", "tty; while :; do stty size; sleep 0.2; done"],
        ),
        24,
        80,
    );
    let text = t.out.wait_for("24 80", Duration::from_secs(30));
    assert!(has_pts(&text), "{text:?}");
    // ctr sees SIGWINCH and sends ResizePty; the container's pty follows.
    t.pty.set_size(40, 132);
    t.out.wait_for("40 132", SHORT);
    c.ctr(&["tasks", "kill", "-s", "KILL", "rt"]).ok();
    assert_eq!(t.wait(SHORT), Some(137), "{:?}", t.out.text());
    c.assert_clean();
}

fn pause_and_resume(v: Version) {
    let c = Containerd::start(v, "pause");
    let (events, path) = c.ctr_spawn_out(&["events"]);
    std::thread::sleep(Duration::from_millis(300));
    c.run(
        &["-d"],
        "pz",
        &[
            "sh",
            "-c",
            "i=0; while :; do i=$((i+1)); echo $i > /tmp/n; sleep 0.05; done",
        ],
    )
    .ok();
    c.wait_status("pz", "RUNNING");
    // The counter, read through the container's rootfs mount.
    let counter = c
        .dir
        .join("state/io.containerd.runtime.v2.task")
        .join(&c.ns)
        .join("pz/rootfs/tmp/n");
    let n = || fs::read_to_string(&counter).unwrap_or_default();
    assert!(
        wait_until(SHORT, || !n().is_empty()),
        "no counter at {}",
        counter.display()
    );
    c.ctr(&["tasks", "pause", "pz"]).ok();
    c.wait_status("pz", "PAUSED");
    // Frozen: the counter does not move.
    let a = n();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(a, n(), "the counter moved while paused");
    let o = c.ctr(&["tasks", "exec", "--exec-id", "p1", "pz", "true"]);
    assert!(
        !o.success() && o.stderr.contains("paused"),
        "exec while paused: {o}"
    );
    c.ctr(&["tasks", "resume", "pz"]).ok();
    c.wait_status("pz", "RUNNING");
    let a = n();
    assert!(
        wait_until(SHORT, || n() != a),
        "the counter did not move after resume"
    );
    let want = ["/tasks/paused", "/tasks/resumed"];
    let ok = wait_until(SHORT, || topics_seen(&path, "pz", &want).len() >= 2);
    let text = fs::read_to_string(&path).unwrap_or_default();
    drop(events);
    assert!(ok, "{text}");
    assert_eq!(topics_seen(&path, "pz", &want), want, "{text}");
    // The refused exec was never added (as runc's shim: no TaskExecAdded).
    let added = topics_seen(&path, "pz", &["/tasks/exec-added"]);
    assert!(
        added.is_empty(),
        "exec into a paused container published {added:?}: {text}"
    );
    // SIGKILL ends a paused container too (the shim thaws it, as runc).
    c.ctr(&["tasks", "pause", "pz"]).ok();
    c.wait_status("pz", "PAUSED");
    c.remove("pz");
    c.assert_clean();
}

fn oom_kill_event(v: Version) {
    let c = Containerd::start(v, "oom");
    let (events, path) = c.ctr_spawn_out(&["events"]);
    std::thread::sleep(Duration::from_millis(300));
    // dd's 64 MiB buffer does not fit in 16 MiB (no swap here): the kernel
    // kills it.
    let o = c.run(
        &["--rm", "--memory-limit", "16777216"],
        "om",
        &["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"],
    );
    o.exits_with(137);
    let want = ["/tasks/oom", "/tasks/exit"];
    let ok = wait_until(SHORT, || topics_seen(&path, "om", &want).len() >= 2);
    let text = fs::read_to_string(&path).unwrap_or_default();
    drop(events);
    assert!(ok, "no TaskOOM: {text}");
    // The OOM event comes before the exit it caused.
    assert_eq!(topics_seen(&path, "om", &want), want, "{text}");
    c.assert_clean();
}

fn task_metrics(v: Version) {
    let c = Containerd::start(v, "metrics");
    c.run(
        &["-d", "--memory-limit", "67108864"],
        "mt",
        &["sh", "-c", "sleep 1000"],
    )
    .ok();
    c.wait_status("mt", "RUNNING");
    let o = c.ctr(&["tasks", "metrics", "mt"]).ok();
    // ctr decodes io.containerd.cgroups.v1.Metrics (v2 on a v2 host).
    let cgroup_v2 = host::cgroup_hierarchies()
        .iter()
        .all(|h| h.join("cgroup.controllers").exists());
    if cgroup_v2 {
        assert!(
            o.stdout.contains("memory.usage_limit") || o.stdout.contains("67108864"),
            "{o}"
        );
    } else {
        assert!(o.stdout.contains("memory.limit_in_bytes"), "{o}");
        assert!(o.stdout.contains("67108864"), "{o}");
        assert!(o.stdout.contains("pids.current"), "{o}");
    }
    let o = c.ctr(&["tasks", "metrics", "--format", "json", "mt"]).ok();
    let j: Value = serde_json::from_str(&o.stdout).unwrap_or_else(|e| panic!("{e}: {o}"));
    let pids = j
        .pointer("/pids/current")
        .or_else(|| j.pointer("/Pids/current"));
    // sh and sleep (or sh exec'ing into sleep): at least one process.
    assert!(pids.and_then(|p| p.as_u64()).unwrap_or(0) >= 1, "{j}");
    c.remove("mt");
    c.assert_clean();
}

/// The container's cgroup file `file` under controller dir `ctrl` (v1) or
/// the unified dir (v2).
fn cgroup_file(c: &Containerd, id: &str, ctrl: &str, file: &str) -> String {
    for h in host::cgroup_hierarchies() {
        let name = h.file_name().unwrap().to_string_lossy().to_string();
        let is_v2 = h.join("cgroup.controllers").exists();
        if is_v2 || name.split(',').any(|n| n == ctrl) {
            let p = h.join(&c.ns).join(id).join(file);
            if let Ok(s) = fs::read_to_string(&p) {
                return s.trim().to_string();
            }
        }
    }
    panic!("no cgroup file {ctrl}/{file} for {id}");
}

fn update_resources(v: Version) {
    let c = Containerd::start(v, "update");
    c.sleeper("up");
    let addr = c.shim_address("up");
    let v2 = host::cgroup_hierarchies()
        .iter()
        .all(|h| h.join("cgroup.controllers").exists());
    let (mem_file, pids_file) = if v2 {
        ("memory.max", "pids.max")
    } else {
        ("memory.limit_in_bytes", "pids.max")
    };
    berth_integration::shim_client::update(
        &addr,
        "up",
        r#"{"memory":{"limit":33554432},"pids":{"limit":77}}"#,
    )
    .unwrap();
    assert_eq!(cgroup_file(&c, "up", "memory", mem_file), "33554432");
    assert_eq!(cgroup_file(&c, "up", "pids", pids_file), "77");
    // Merged as `berth update -r`: a later update keeps the memory limit.
    berth_integration::shim_client::update(&addr, "up", r#"{"pids":{"limit":88}}"#).unwrap();
    assert_eq!(cgroup_file(&c, "up", "memory", mem_file), "33554432");
    assert_eq!(cgroup_file(&c, "up", "pids", pids_file), "88");
    // Bad input: a clear error naming the field; nothing changes.
    let e = berth_integration::shim_client::update(&addr, "up", r#"{"memory":{"limit":"lots"}}"#)
        .unwrap_err();
    assert!(e.contains("memory"), "{e}");
    assert_eq!(cgroup_file(&c, "up", "memory", mem_file), "33554432");
    c.remove("up");
    c.assert_clean();
}
