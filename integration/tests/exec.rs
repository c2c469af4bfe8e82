//! `exec`: the new process joins every namespace and cgroup of the
//! container and gets the process settings runc gives it; every flag acts.

use berth_integration::prelude::*;
use berth_integration::tty::{self, Stdio3};

const NS: [&str; 8] = ["pid", "net", "ipc", "uts", "mnt", "cgroup", "user", "time"];

/// A running container from `env` (detached).
fn running(env: &Env) -> i64 {
    env.run_detached();
    env.pid()
}

/// `exec ID ARGS...` (flags go in `flags`, before the id).
fn exec(env: &Env, flags: &[&str], cmd: &[&str]) -> Output {
    let mut args = vec!["exec"];
    args.extend_from_slice(flags);
    args.push(&env.id);
    args.extend_from_slice(cmd);
    env.berth(&args)
}

fn sh(env: &Env, flags: &[&str], script: &str) -> Output {
    exec(env, flags, &["sh", "-c", script])
}

/// Start `sleep` with `exec -d --pid-file` and return its host pid.
fn exec_sleeper(env: &Env, flags: &[&str]) -> i64 {
    let pf = env.file(&format!("exec-{}.pid", flags.len()));
    let mut f = vec!["-d", "--pid-file", pf.to_str().unwrap()];
    f.extend_from_slice(flags);
    exec(env, &f, &["sleep", "600"]).ok();
    fs::read_to_string(&pf).unwrap().trim().parse().unwrap()
}

fn finish(env: &Env) {
    env.delete_force().ok();
    assert_no_leftovers(env);
}

fn status_field(pid: i64, key: &str) -> String {
    let s = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    squash(
        s.lines()
            .find(|l| l.starts_with(key))
            .unwrap_or_else(|| panic!("{key} in {s}")),
    )
}

#[test]
fn joins_every_namespace_including_user_and_time() {
    let mut env = Env::sh("exec_all_ns", SLEEPER);
    env.set("/ociVersion", json!("1.2.0"));
    env.set_namespaces(&[
        "pid", "network", "ipc", "uts", "mount", "cgroup", "user", "time",
    ]);
    env.set(
        "/linux/uidMappings",
        json!([{"containerID": 0, "hostID": 100000, "size": 65536}]),
    );
    env.set(
        "/linux/gidMappings",
        json!([{"containerID": 0, "hostID": 100000, "size": 65536}]),
    );
    env.set(
        "/linux/timeOffsets",
        json!({"boottime": {"secs": 864000, "nanosecs": 0}}),
    );
    let init = running(&env).to_string();
    let pid = exec_sleeper(&env, &[]).to_string();
    for ns in NS {
        assert_ne!(
            ns_link(&init, ns),
            ns_link("self", ns),
            "the container's {ns} namespace is the host's"
        );
        assert_eq!(
            ns_link(&pid, ns),
            ns_link(&init, ns),
            "exec did not join the {ns} namespace"
        );
    }
    // Root of the user namespace; the boottime offset applies.
    let out = sh(&env, &[], "id -u; cut -d. -f1 /proc/uptime; echo $$").ok();
    let l = out.lines();
    assert_eq!(l[0], "0", "{out}");
    assert!(l[1].parse::<u64>().unwrap() >= 864000, "{out}");
    assert_eq!(
        status_field(pid.parse().unwrap(), "Uid:"),
        "Uid: 100000 100000 100000 100000"
    );
    finish(&env);
}

#[test]
fn shares_namespaces_the_container_shares_with_the_host() {
    let mut env = Env::sh("exec_host_ns", SLEEPER);
    env.set_namespaces(&["pid", "mount"]);
    env.remove("/hostname");
    running(&env);
    let pid = exec_sleeper(&env, &[]).to_string();
    for ns in ["net", "ipc", "uts", "user"] {
        assert_eq!(ns_link(&pid, ns), ns_link("self", ns), "{ns}");
    }
    finish(&env);
}

#[test]
fn sees_the_containers_processes_and_root() {
    let env = Env::sh(
        "exec_view",
        &format!("echo inside > /marker-file; {SLEEPER}"),
    );
    running(&env);
    env.wait_file("marker-file", "inside");
    let out = sh(
        &env,
        &[],
        "cat /marker-file; cat /proc/1/cmdline | tr '\\0' ' '; echo; hostname",
    )
    .ok();
    let l = out.lines();
    assert_eq!(l[0], "inside");
    assert!(
        l[1].contains(&env.marker),
        "pid 1 is not the container's init: {out}"
    );
    assert_eq!(l[2], "berth");
    finish(&env);
}

#[test]
fn joins_the_containers_cgroups() {
    let env = Env::sh("exec_cgroups", SLEEPER);
    let init = running(&env);
    let pid = exec_sleeper(&env, &[]);
    let cg = |p: i64| fs::read_to_string(format!("/proc/{p}/cgroup")).unwrap();
    assert_eq!(cg(pid), cg(init));
    assert!(cg(pid).contains(&env.cgroups_path), "{}", cg(pid));
    finish(&env);
}

#[test]
fn sub_cgroup_with_cgroup_flag() {
    let env = Env::sh("exec_sub_cgroup", SLEEPER);
    running(&env);
    let cpu = host::cgroup_dirs(&env.cgroups_path).into_iter().find(|d| {
        d.components()
            .any(|c| c.as_os_str() == "cpu" || c.as_os_str() == "cpu,cpuacct")
    });
    let Some(cpu) = cpu else {
        skip(CGROUP_V1, "no v1 cpu hierarchy on this host; --cgroup CONTROLLER:PATH not checked");
        return finish(&env);
    };
    let sub = cpu.join("sub");
    fs::create_dir(&sub).unwrap();
    let pid = exec_sleeper(&env, &["--cgroup", "cpu:sub"]);
    let cg = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let cpu_line = cg
        .lines()
        .find(|l| {
            l.split(':')
                .nth(1)
                .is_some_and(|c| c.split(',').any(|c| c == "cpu"))
        })
        .unwrap();
    assert!(
        cpu_line.ends_with(&format!("{}/sub", env.cgroups_path)),
        "{cg}"
    );
    let mem_line = cg.lines().find(|l| l.contains(":memory:")).unwrap();
    assert!(
        mem_line.ends_with(&env.cgroups_path),
        "other controllers stay in the container's cgroup: {cg}"
    );
    // errors: missing sub-cgroup, unknown controller, bad syntax
    exec(&env, &["--cgroup", "cpu:nosuch"], &["true"]).fails_with(&["--cgroup", "nosuch"]);
    exec(&env, &["--cgroup", "nosuchctl:sub"], &["true"])
        .fails_with(&["--cgroup", "unknown controller"]);
    exec(&env, &["--cgroup", "a:b:c"], &["true"]).fails_with(&["--cgroup", "a:b:c"]);
    exec(&env, &["--cgroup", "cpu:x", "--cgroup", "y"], &["true"])
        .fails_with(&["--cgroup", "CONTROLLER"]);
    exec(&env, &["--cgroup", "../../escape"], &["true"]).fails_with(&["--cgroup", ".."]);
    host::kill9(pid as i32);
    wait_until(SHORT, || !pid_alive(pid));
    host::rmdir_cgroup(&sub).unwrap();
    finish(&env);
}

#[test]
fn exit_status_is_the_processes() {
    let env = Env::sh("exec_status", SLEEPER);
    running(&env);
    sh(&env, &[], "exit 7").exits_with(7);
    sh(&env, &[], "kill -9 $$").exits_with(137);
    sh(&env, &[], "echo out; echo err >&2").ok();
    let out = sh(&env, &[], "echo out; echo err >&2").ok();
    assert_eq!(
        (out.stdout.as_str(), out.stderr.as_str()),
        ("out\n", "err\n")
    );
    // stdin reaches the process
    let got = env
        .berth_stdin(&["exec", &env.id, "cat"], b"from stdin\n")
        .ok();
    assert_eq!(got.stdout, "from stdin\n");
    finish(&env);
}

#[test]
fn command_arguments_are_not_flags() {
    let env = Env::sh("exec_args", SLEEPER);
    running(&env);
    let out = exec(
        &env,
        &[],
        &["sh", "-c", "printf '[%s]' \"$@\"", "x", "-t", "--env", "-d"],
    )
    .ok();
    assert_eq!(out.stdout, "[-t][--env][-d]");
    finish(&env);
}

#[test]
fn foreground_exec_forwards_signals() {
    let env = Env::sh("exec_signal", SLEEPER);
    running(&env);
    let ready = env.rootfs().join("ready");
    let p = env.spawn(&[
        "exec",
        &env.id,
        "sh",
        "-c",
        "trap 'exit 5' TERM; touch /ready; while :; do sleep 0.05; done",
    ]);
    assert!(
        wait_until(SHORT, || ready.exists()),
        "the exec'd process did not start"
    );
    p.signal(libc::SIGTERM);
    p.wait(SHORT).exits_with(5);
    finish(&env);
}

#[test]
fn env_cwd_user_and_groups() {
    let mut env = Env::sh("exec_env_user", SLEEPER);
    env.set(
        "/process/env",
        json!(["PATH=/bin:/sbin", "KEEP=config", "OVER=config"]),
    );
    fs::create_dir_all(env.rootfs().join("work")).unwrap();
    running(&env);
    let out = sh(&env, &["-e", "OVER=flag", "--env", "NEW=x y", "--cwd", "/work", "-u", "1000:1001", "-g", "10", "--additional-gids", "20,30"],
        "echo $KEEP $OVER $NEW; pwd; id -u; id -g; grep Groups: /proc/self/status; env | grep -c ^OVER=").ok();
    let l = out.lines();
    assert_eq!(l[0], "config flag x y", "{out}");
    assert_eq!(l[1], "/work");
    assert_eq!((l[2].as_str(), l[3].as_str()), ("1000", "1001"));
    assert_eq!(squash(&l[4]), "Groups: 10 20 30");
    assert_eq!(l[5], "1", "--env must replace, not duplicate: {out}");
    // defaults come from config.json
    let out = sh(&env, &[], "echo $OVER; pwd; id -u").ok();
    assert_eq!(out.lines(), ["config", "/", "0"]);
    // bad values
    exec(&env, &["-u", "abc"], &["true"]).fails_with(&["--user", "abc"]);
    exec(&env, &["--cwd", "relative"], &["true"]).fails_with(&["--cwd", "absolute"]);
    exec(&env, &["-e", "NOEQUALS"], &["true"]).fails_with(&["--env", "NOEQUALS"]);
    exec(&env, &[], &[]).fails_with(&["no command"]);
    exec(&env, &[], &["/no/such/program"]).fails_with(&["/no/such/program"]);
    finish(&env);
}

#[test]
fn process_json() {
    let env = Env::sh("exec_process_json", SLEEPER);
    running(&env);
    let pj = env.file("process.json");
    fs::write(&pj, json!({
        "terminal": false, "user": {"uid": 33, "gid": 44}, "args": ["sh", "-c", "echo $FROM; pwd; id -u; id -g"],
        "env": ["PATH=/bin", "FROM=process.json"], "cwd": "/tmp",
        "capabilities": {"bounding": ["CAP_KILL", "CAP_NOT_KNOWN"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]}
    }).to_string()).unwrap();
    let out = exec(&env, &["--process", pj.to_str().unwrap()], &[]).ok();
    assert_eq!(out.lines(), ["process.json", "/tmp", "33", "44"], "{out}");
    // flags still apply on top of the file
    let out = exec(&env, &["-p", pj.to_str().unwrap(), "-u", "55"], &[]).ok();
    assert_eq!(out.lines()[2], "55");
    // errors name the file and the field
    fs::write(
        &pj,
        r#"{"user": {"uid": "x", "gid": 0}, "args": ["true"], "cwd": "/"}"#,
    )
    .unwrap();
    exec(&env, &["--process", pj.to_str().unwrap()], &[])
        .fails_with(&[pj.to_str().unwrap(), "user.uid"]);
    fs::write(
        &pj,
        r#"{"user": {"uid": 0, "gid": 0}, "args": ["true"], "cwd": "rel"}"#,
    )
    .unwrap();
    exec(&env, &["--process", pj.to_str().unwrap()], &[])
        .fails_with(&[pj.to_str().unwrap(), "cwd"]);
    exec(&env, &["--process", "/no/such/process.json"], &[]).fails_with(&["/no/such/process.json"]);
    fs::write(
        &pj,
        r#"{"user": {"uid": 0, "gid": 0}, "args": ["true"], "cwd": "/"}"#,
    )
    .unwrap();
    exec(&env, &["--process", pj.to_str().unwrap()], &["echo"]).fails_with(&["--process"]);
    finish(&env);
}

#[test]
fn capabilities_from_the_config_and_cap_flag() {
    let mut env = Env::sh("exec_caps", SLEEPER);
    let caps = json!(["CAP_CHOWN", "CAP_KILL"]);
    env.set(
        "/process/capabilities",
        json!({"bounding": caps, "effective": caps, "permitted": caps}),
    );
    running(&env);
    let out = sh(&env, &[], "grep -E '^Cap(Bnd|Eff)' /proc/self/status").ok();
    assert_eq!(
        squash(&out.stdout),
        "CapEff: 0000000000000021\nCapBnd: 0000000000000021",
        "{out}"
    );
    let out = sh(
        &env,
        &["--cap", "CAP_NET_RAW", "-c", "CAP_SYS_CHROOT"],
        "grep -E '^Cap(Bnd|Eff|Prm)' /proc/self/status",
    )
    .ok();
    // + NET_RAW (13) + SYS_CHROOT (18)
    assert_eq!(
        squash(&out.stdout),
        "CapPrm: 0000000000042021\nCapEff: 0000000000042021\nCapBnd: 0000000000042021",
        "{out}"
    );
    exec(&env, &["--cap", "CAP_NOPE"], &["true"]).fails_with(&["--cap", "CAP_NOPE"]);
    finish(&env);
}

#[test]
fn rlimits_and_no_new_privs() {
    let mut env = Env::sh("exec_rlimits_nnp", SLEEPER);
    env.set(
        "/process/rlimits",
        json!([{"type": "RLIMIT_NOFILE", "soft": 123, "hard": 456}]),
    );
    env.set("/process/noNewPrivileges", json!(false));
    running(&env);
    let out = sh(
        &env,
        &[],
        "grep 'open files' /proc/self/limits; grep NoNewPrivs /proc/self/status",
    )
    .ok();
    assert_eq!(
        squash(&out.stdout),
        "Max open files 123 456 files\nNoNewPrivs: 0",
        "{out}"
    );
    let out = sh(
        &env,
        &["--no-new-privs"],
        "grep NoNewPrivs /proc/self/status",
    )
    .ok();
    assert_eq!(squash(&out.stdout), "NoNewPrivs: 1");
    let out = sh(
        &env,
        &["--no-new-privs=false"],
        "grep NoNewPrivs /proc/self/status",
    )
    .ok();
    assert_eq!(squash(&out.stdout), "NoNewPrivs: 0");
    finish(&env);
}

#[test]
fn detach_and_pid_file() {
    let env = Env::sh("exec_detach", SLEEPER);
    let init = running(&env);
    let pid = exec_sleeper(&env, &[]);
    assert!(pid_alive(pid));
    assert_ne!(pid, init);
    assert_eq!(
        ns_link(&pid.to_string(), "pid"),
        ns_link(&init.to_string(), "pid")
    );
    // pid file for a foreground exec too
    let pf = env.file("fg.pid");
    sh(&env, &["--pid-file", pf.to_str().unwrap()], "echo $$").ok();
    assert!(
        fs::read_to_string(&pf)
            .unwrap()
            .trim()
            .parse::<i64>()
            .unwrap()
            > 0
    );
    // kill --all reaches exec'd processes too
    env.berth(&["kill", "--all", &env.id, "KILL"]).ok();
    wait_until(SHORT, || !pid_alive(pid));
    assert!(!pid_alive(pid));
    finish(&env);
}

#[test]
fn preserve_fds_passes_extra_fds() {
    let env = Env::sh("exec_preserve", SLEEPER);
    running(&env);
    let a = env.file("a.txt");
    let b = env.file("b.txt");
    fs::write(&a, "fd-three").unwrap();
    fs::write(&b, "fd-four").unwrap();
    let how = Stdio3 {
        fds: vec![(3, a.clone()), (4, b.clone())],
        ..Default::default()
    };
    let mut p = tty::spawn(
        &env,
        &[
            "exec",
            "--preserve-fds",
            "2",
            &env.id,
            "sh",
            "-c",
            "cat <&3; cat <&4; ls /proc/self/fd | sort -n | tr '\\n' ' '",
        ],
        how,
    );
    assert_eq!(p.code(SHORT), 0, "{}", p.stderr());
    let out = p.stdout();
    assert!(out.starts_with("fd-threefd-four"), "{out}");
    // 0-2, 3, 4, and ls's own directory fd; nothing else of berth's
    assert_eq!(
        out.trim_start_matches("fd-threefd-four")
            .split_whitespace()
            .count(),
        6,
        "{out}"
    );
    // without the flag, the fds are not passed
    let how = Stdio3 {
        fds: vec![(3, a)],
        ..Default::default()
    };
    let mut p = tty::spawn(
        &env,
        &[
            "exec",
            &env.id,
            "sh",
            "-c",
            "ls /proc/self/fd/3 2>/dev/null || echo closed",
        ],
        how,
    );
    assert_eq!(p.code(SHORT), 0);
    assert_eq!(p.stdout().trim(), "closed");
    // a missing fd is an error
    exec(&env, &["--preserve-fds", "3"], &["true"]).fails_with(&["--preserve-fds", "fd 3"]);
    finish(&env);
}

#[test]
fn states_created_stopped_paused_missing() {
    let env = Env::sh("exec_states", SLEEPER);
    env.create();
    // exec works in a created container (its namespaces exist), as runc
    let out = sh(&env, &[], "echo in-created").ok();
    assert_eq!(out.stdout.trim(), "in-created");
    assert_eq!(env.status(), "created");
    env.start();
    env.kill("KILL").ok();
    env.wait_status("stopped", SHORT);
    sh(&env, &[], "true").fails_with(&["stopped"]);
    env.delete().ok();
    sh(&env, &[], "true").fails_with(&[&format!("container \"{}\" does not exist", env.id)]);
    assert_no_leftovers(&env);

    // Paused: `pause` is not in this build; mark the state as `pause` does.
    let env = Env::sh("exec_paused", SLEEPER);
    running(&env);
    let sj = env.state_dir().join("state.json");
    let mut st: Value = serde_json::from_str(&fs::read_to_string(&sj).unwrap()).unwrap();
    st["paused"] = json!(true);
    fs::write(&sj, st.to_string()).unwrap();
    assert_eq!(env.status(), "paused");
    sh(&env, &[], "true").fails_with(&["paused", "--ignore-paused"]);
    let out = sh(&env, &["--ignore-paused"], "echo ran").ok();
    assert_eq!(out.stdout.trim(), "ran");
    st["paused"] = json!(false);
    fs::write(&sj, st.to_string()).unwrap();
    finish(&env);
}

#[test]
fn apparmor_and_process_label_on_a_host_without_them() {
    let env = Env::sh("exec_lsm", SLEEPER);
    running(&env);
    let aa = fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y");
    let out = exec(&env, &["--apparmor", "some-profile"], &["true"]);
    out.fails_with(&["apparmor", "some-profile"]);
    if !aa {
        out.fails_with(&["AppArmor is not enabled"]);
    }
    let se = Path::new("/sys/fs/selinux/enforce").exists();
    let out = exec(
        &env,
        &["--process-label", "system_u:system_r:container_t:s0"],
        &["true"],
    );
    out.fails_with(&["selinux", "container_t"]);
    if !se {
        out.fails_with(&["SELinux is not enabled"]);
    }
    finish(&env);
}

#[test]
fn the_containers_process_attributes_apply_to_exec() {
    // Everything init gets from the config, an exec'd process gets too
    // (crun does; personality used to be missing).
    let mut env = Env::sh("exec_attrs", SLEEPER);
    env.set("/ociVersion", json!("1.2.0"));
    env.set("/linux/personality", json!({"domain": "LINUX32"}));
    env.set(
        "/process/scheduler",
        json!({"policy": "SCHED_BATCH", "nice": 5}),
    );
    env.set(
        "/process/ioPriority",
        json!({"class": "IOPRIO_CLASS_IDLE", "priority": 0}),
    );
    env.set("/process/user/umask", json!(0o027));
    env.set(
        "/linux/memoryPolicy",
        json!({"mode": "MPOL_INTERLEAVE", "nodes": "0"}),
    );
    running(&env);
    let script = "uname -m; grep -E '^policy' /proc/self/sched; cut -d' ' -f19 /proc/self/stat; \
                  ionice -p $$; umask; head -n 1 /proc/self/numa_maps | cut -d' ' -f2";
    for flags in [&[][..], &["-d"][..]] {
        let text = if flags.is_empty() {
            sh(&env, flags, script).ok().stdout
        } else {
            // Detached: the output goes to a file in the container.
            sh(
                &env,
                flags,
                &format!("({script}) > /attrs 2>&1; echo done >> /attrs"),
            )
            .ok();
            env.wait_file("attrs", "done")
        };
        let s = squash(&text);
        let want = if cfg!(target_arch = "x86_64") {
            "i686"
        } else {
            ""
        };
        assert!(s.starts_with(want), "personality: {s}");
        for needle in ["policy : 3", "\n5\n", "idle", "0027", "interleave"] {
            assert!(
                s.contains(needle),
                "exec {flags:?}: {needle:?} missing in:\n{s}"
            );
        }
    }
    finish(&env);
}

#[test]
fn ignore_paused_exec_does_not_block_resume() {
    // The exec'd process is frozen with the container; `berth exec` waits
    // for it, and used to hold the container's lock meanwhile, so `resume`
    // blocked for good.
    let env = Env::sh("exec_ignore_paused", SLEEPER);
    running(&env);
    env.berth(&["pause", &env.id]).ok();
    let pending = env.spawn(&[
        "exec",
        "--ignore-paused",
        &env.id,
        "echo",
        "ran-after-resume",
    ]);
    std::thread::sleep(Duration::from_millis(300));
    let out = env.berth_timeout(&["resume", &env.id], SHORT);
    assert!(
        out.success(),
        "resume did not go through while exec waited:\n{out}"
    );
    let out = pending.wait(SHORT);
    assert!(
        out.success() && out.stdout.contains("ran-after-resume"),
        "{out}"
    );
    finish(&env);
}

#[test]
fn exec_racing_the_death_of_init_says_the_container_stopped() {
    // init killed while `exec` opens its namespaces: the error is that
    // the container stopped, never a missing /proc/<pid>/ns file.
    for i in 0..25 {
        let env = Env::sh(&format!("exec_init_dies{i}"), SLEEPER);
        let pid = running(&env);
        let pending = env.spawn(&["exec", &env.id, "true"]);
        std::thread::sleep(Duration::from_micros(300 * (i % 8)));
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        let out = pending.wait(SHORT);
        // Three outcomes are right: the process ran first; exec saw the
        // container stop; or the process got in and was killed with the
        // pid namespace when init died (status 128+SIGKILL, as runc
        // reports it, and berth has nothing to say).
        let killed_with_the_namespace = out.code() == Some(137) && out.stderr.trim().is_empty();
        if !out.success() && !killed_with_the_namespace {
            assert!(
                out.stderr.contains("stopped") && !out.stderr.contains("/proc/"),
                "exec racing init's death: {out}"
            );
        }
        finish(&env);
    }
}
