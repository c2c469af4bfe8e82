//! containerd-shim-berth-v2 under a real containerd: 1.6 (Debian 12) and
//! 2.1 (Debian sid), each test with its own private containerd, running
//! `ctr run --runtime io.containerd.berth.v2` on a locally made busybox
//! image. Every test ends with no shim, mount, cgroup or berth state left.

use berth_integration::containerd::{run_args, topics_seen, Containerd, Version};
use berth_integration::prelude::*;

berth_integration::each_containerd!(
    output_and_exit_code,
    stdin_to_eof,
    kill_and_delete,
    kill_all,
    events_in_order,
    pids,
    twenty_at_once,
    checkpoint_not_supported,
    shim_killed,
    grouped_containers_share_a_shim,
    log_uris,
    signal_exit_status,
    survives_containerd_restart,
);

fn output_and_exit_code(v: Version) {
    let c = Containerd::start(v, "output");
    let o = c.run(
        &["--rm"],
        "out3",
        &["sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 3"],
    );
    o.exits_with(3);
    assert!(o.stdout.contains("to-stdout"), "{o}");
    assert!(o.stderr.contains("to-stderr"), "{o}");
    let o = c.run(&["--rm"], "out0", &["sh", "-c", "seq 1 20000 | tail -n 1"]);
    o.exits_with(0);
    assert_eq!(o.stdout.trim(), "20000", "{o}");
    c.run(&["--rm"], "out255", &["sh", "-c", "exit 255"])
        .exits_with(255);
    c.assert_clean();
}

fn stdin_to_eof(v: Version) {
    let c = Containerd::start(v, "stdin");
    // ctr copies the file into the stdin fifo and closes it: the shim passes
    // the data on, then EOF, and cat ends.
    let input = c.dir.join("input");
    fs::write(&input, "line-1\nline-2\n").unwrap();
    let args = run_args(&["--rm"], "cat", &["sh", "-c", "cat; echo cat-done"]);
    let o = c.ctr_full(&args, Some(&input), Duration::from_secs(30));
    o.exits_with(0);
    assert_eq!(
        o.stdout.trim().lines().collect::<Vec<_>>(),
        ["line-1", "line-2", "cat-done"],
        "{o}"
    );
    c.assert_clean();
}

fn kill_and_delete(v: Version) {
    let c = Containerd::start(v, "kill");
    c.run(
        &["-d"],
        "k1",
        &[
            "sh",
            "-c",
            "trap 'exit 7' TERM; while :; do sleep 0.1; done",
        ],
    )
    .ok();
    c.wait_status("k1", "RUNNING");
    assert!(!c.shim_pids().is_empty(), "no shim process while k1 runs");
    c.ctr(&["tasks", "kill", "k1"]).ok();
    c.wait_status("k1", "STOPPED");
    let o = c.ctr(&["tasks", "rm", "k1"]).ok();
    assert!(!o.stdout.contains("k1") || o.stdout.contains("7"), "{o}");
    c.ctr(&["containers", "rm", "k1"]).ok();
    // The shim exits after its last container is deleted.
    assert!(
        c.wait_no_shims(SHORT),
        "shim still running: {:?}",
        c.shim_pids()
    );
    c.assert_clean();
}

fn kill_all(v: Version) {
    let c = Containerd::start(v, "killall");
    c.run(
        &["-d"],
        "ka",
        &["sh", "-c", "sleep 1000 & sleep 1000 & wait"],
    )
    .ok();
    c.wait_status("ka", "RUNNING");
    assert!(
        wait_until(SHORT, || c.ctr(&["tasks", "ps", "ka"]).lines().len() >= 4),
        "{}",
        c.ctr(&["tasks", "ps", "ka"])
    );
    c.ctr(&["tasks", "kill", "--all", "-s", "KILL", "ka"]).ok();
    c.wait_status("ka", "STOPPED");
    c.ctr(&["tasks", "rm", "ka"]).ok();
    c.ctr(&["containers", "rm", "ka"]).ok();
    c.assert_clean();
}

fn events_in_order(v: Version) {
    let c = Containerd::start(v, "events");
    let (events, path) = c.ctr_spawn_out(&["events"]);
    std::thread::sleep(Duration::from_millis(300));
    c.run(&["--rm"], "ev", &["true"]).exits_with(0);
    let want = [
        "/tasks/create",
        "/tasks/start",
        "/tasks/exit",
        "/tasks/delete",
    ];
    let seen = || topics_seen(&path, "ev", &want);
    let ok = wait_until(SHORT, || seen().len() >= 4);
    drop(events);
    assert!(
        ok,
        "events: {:?}\n{}",
        seen(),
        fs::read_to_string(&path).unwrap_or_default()
    );
    assert_eq!(
        seen(),
        want.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    );
    c.assert_clean();
}

fn pids(v: Version) {
    let c = Containerd::start(v, "pids");
    c.sleeper("p1");
    let task_pid = c
        .ctr(&["tasks", "ls"])
        .stdout
        .lines()
        .find(|l| l.starts_with("p1"))
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    let ps = c.ctr(&["tasks", "ps", "p1"]).ok();
    assert!(
        ps.stdout
            .lines()
            .any(|l| l.split_whitespace().next() == Some(task_pid.as_str())),
        "{ps}"
    );
    c.remove("p1");
    c.assert_clean();
}

fn twenty_at_once(v: Version) {
    let c = Containerd::start(v, "twenty");
    let ids: Vec<String> = (0..20).map(|i| format!("t{i}")).collect();
    let runs: Vec<_> = ids
        .iter()
        .map(|id| {
            let cmd = format!("echo hi-{id}; sleep 1; exit 5");
            c.ctr_spawn(&run_args(&["--rm"], id, &["sh", "-c", &cmd]))
        })
        .collect();
    for (id, r) in ids.iter().zip(runs) {
        let o = r.wait(Duration::from_secs(60));
        o.exits_with(5);
        assert!(o.stdout.contains(&format!("hi-{id}")), "{o}");
    }
    c.assert_clean();
}

fn checkpoint_not_supported(v: Version) {
    let c = Containerd::start(v, "unsup");
    c.sleeper("u1");
    // Every other RPC is served; Checkpoint answers a clear error.
    let o = c.ctr(&["tasks", "checkpoint", "u1"]);
    assert!(
        !o.success() && o.stderr.contains("Checkpoint is not supported"),
        "{o}"
    );
    c.wait_status("u1", "RUNNING");
    c.remove("u1");
    c.assert_clean();
}

fn shim_killed(v: Version) {
    let c = Containerd::start(v, "shimdead");
    c.sleeper("sd");
    let pids = c.shim_pids();
    assert!(!pids.is_empty());
    for p in pids {
        berth_integration::host::kill9(p);
    }
    // containerd notices, runs `containerd-shim-berth-v2 delete`, which
    // kills the container and removes its state, cgroups and rootfs mount.
    let gone = wait_until(Duration::from_secs(15), || {
        !c.ctr(&["tasks", "ls"]).stdout.contains("RUNNING")
    });
    assert!(gone, "{}", c.ctr(&["tasks", "ls"]));
    c.ctr(&["tasks", "rm", "-f", "sd"]);
    c.ctr(&["containers", "rm", "sd"]).ok();
    c.assert_clean();
}

fn grouped_containers_share_a_shim(v: Version) {
    let c = Containerd::start(v, "group");
    let group = "--annotation=io.containerd.runc.v2.group=g1";
    c.run(&["-d", group], "g-a", &["sh", "-c", "sleep 1000"])
        .ok();
    c.wait_status("g-a", "RUNNING");
    let one = c.shim_pids();
    c.run(&["-d", group], "g-b", &["sh", "-c", "sleep 1000"])
        .ok();
    c.wait_status("g-b", "RUNNING");
    // The same server (and its launcher) serves both.
    assert_eq!(
        c.shim_pids(),
        one,
        "a second shim started for the same group"
    );
    c.remove("g-a");
    // Still serving g-b.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        c.shim_pids(),
        one,
        "the group's shim exited with a container left"
    );
    c.wait_status("g-b", "RUNNING");
    c.remove("g-b");
    c.assert_clean();
}

fn log_uris(v: Version) {
    let c = Containerd::start(v, "logs");
    // file://: the container writes the file itself.
    let file = c.dir.join("file.log");
    let uri = format!("--log-uri=file://{}", file.display());
    c.run(
        &["-d", &uri],
        "lf",
        &["sh", "-c", "echo to-file; echo err-to-file >&2"],
    )
    .ok();
    c.wait_status("lf", "STOPPED");
    let text = fs::read_to_string(&file).unwrap_or_default();
    assert!(
        text.contains("to-file") && text.contains("err-to-file"),
        "file.log: {text:?}"
    );
    // binary://: a logging program gets stdout on fd 3, stderr on fd 4 and
    // closes fd 5 when ready.
    let out = c.dir.join("binary.log");
    let logger = c.dir.join("logger.sh");
    fs::write(
        &logger,
        "#!/bin/sh\nexec 5>&-\ncat <&3 > \"$1.out\" &\ncat <&4 > \"$1.err\"\nwait\n",
    )
    .unwrap();
    fs::set_permissions(&logger, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let uri = format!("--log-uri=binary://{}?{}", logger.display(), out.display());
    c.run(
        &["-d", &uri],
        "lb",
        &["sh", "-c", "echo to-binary; echo err-to-binary >&2"],
    )
    .ok();
    c.wait_status("lb", "STOPPED");
    let got =
        |ext: &str| fs::read_to_string(format!("{}.{ext}", out.display())).unwrap_or_default();
    assert!(
        wait_until(SHORT, || got("out").contains("to-binary")
            && got("err").contains("err-to-binary")),
        "logger got {:?} {:?}",
        got("out"),
        got("err")
    );
    for id in ["lf", "lb"] {
        c.ctr(&["tasks", "rm", id]).ok();
        c.ctr(&["containers", "rm", id]).ok();
    }
    c.assert_clean();
}

fn signal_exit_status(v: Version) {
    let c = Containerd::start(v, "sigexit");
    let run = c.ctr_spawn(&run_args(&["--rm"], "sx", &["sleep", "1000"]));
    c.wait_status("sx", "RUNNING");
    c.ctr(&["tasks", "kill", "-s", "KILL", "sx"]).ok();
    // 128 + SIGKILL, reported by Wait.
    run.wait(SHORT).exits_with(137);
    c.assert_clean();
}

/// containerd restarts (an upgrade, a crash) while a container runs: the
/// shim and the container keep running, the shim keeps the container's
/// output fifo open (writes neither fail nor stop while nobody reads), the
/// new containerd finds the task again, a new reader (`ctr tasks attach`)
/// gets the output, and the task is driven to its end.
fn survives_containerd_restart(v: Version) {
    let mut c = Containerd::start(v, "restart");
    // Detached: ctr leaves at once, the fifos stay (a foreground ctr run
    // would lose its containerd, and ctr 2.x then deletes the task).
    c.run(
        &["-d"],
        "rs",
        &[
            "sh",
            "-c",
            "i=0; while :; do i=$((i+1)); echo line-$i; sleep 0.05; done",
        ],
    )
    .ok();
    c.wait_status("rs", "RUNNING");
    let shims = c.shim_pids();
    let pid_of = |c: &Containerd| {
        c.ctr(&["tasks", "ls"])
            .stdout
            .lines()
            .find(|l| l.starts_with("rs "))
            .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
    };
    let pid = pid_of(&c).expect("rs in tasks ls");
    std::thread::sleep(Duration::from_millis(300));
    c.restart();
    assert_eq!(c.shim_pids(), shims, "the shim did not survive");
    c.wait_status("rs", "RUNNING");
    assert_eq!(pid_of(&c).as_deref(), Some(pid.as_str()), "another init");
    let (attach, out) = c.ctr_spawn_out(&["tasks", "attach", "rs"]);
    let text = || fs::read_to_string(&out).unwrap_or_default();
    let last = || {
        text()
            .lines()
            .filter_map(|l| l.strip_prefix("line-")?.parse::<u64>().ok())
            .max()
            .unwrap_or(0)
    };
    // What was written before the attach may sit in the fifo; the counter
    // going on past it shows the copy is live.
    assert!(wait_until(SHORT, || last() > 0), "no output through `ctr tasks attach`");
    let first = last();
    assert!(
        wait_until(SHORT, || last() > first + 10),
        "output stopped at line-{first} after the restart: {:?}",
        text()
    );
    // `ctr tasks attach` deletes the task once it exits: stop it first, so
    // the deletion below is the test's own.
    drop(attach);
    // The new containerd drives the task: exec, kill, exit status, delete.
    c.ctr(&["tasks", "exec", "--exec-id", "after", "rs", "true"])
        .exits_with(0);
    c.ctr(&["tasks", "kill", "-s", "KILL", "rs"]).ok();
    c.wait_status("rs", "STOPPED");
    c.ctr(&["tasks", "rm", "rs"]).ok();
    c.ctr(&["containers", "rm", "rs"]).ok();
    assert!(c.wait_no_shims(SHORT), "shim left after the last delete");
    c.assert_clean();
}
