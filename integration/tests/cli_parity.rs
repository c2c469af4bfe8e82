//! runc's command line as a contract: every runc flag of the commands berth
//! has is accepted, `spec` and `features` match runc's, and the behaviours
//! callers rely on (socket activation, --preserve-fds, --no-new-keyring,
//! run --keep / --no-subreaper, kill --all, ps, error lines in log.json).

use std::process::Command;

use berth_integration::prelude::*;
use berth_integration::tty::{self, Stdio3};

fn runc() -> Option<&'static str> {
    let ok = Command::new("runc")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    ok.then_some("runc")
}

/// Long flags (and short ones) in a `--help` text's option lines.
fn help_flags(help: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in help.lines() {
        let l = line.trim_start();
        if !l.starts_with('-') {
            continue;
        }
        let spec = l.split("  ").next().unwrap_or("");
        for part in spec.split(',') {
            let flag = part.split_whitespace().next().unwrap_or("");
            // clap writes optional values as `--tty[=<BOOL>]`
            let flag = flag.split(['[', '=']).next().unwrap_or("");
            if flag.starts_with('-') && flag != "--help" && flag != "-h" {
                out.push(flag.to_string());
            }
        }
    }
    out
}

#[test]
fn every_runc_flag_is_accepted() {
    let Some(runc) = runc() else {
        return skip(TOOLS, "runc is not installed (scripts/setup-deps.sh installs it); flag parity not checked");
    };
    let env = Env::new("flag_parity");
    let mut missing = Vec::new();
    for cmd in [
        "", "create", "run", "start", "state", "kill", "delete", "list", "exec", "spec",
        "features", "ps",
    ] {
        let args: Vec<&str> = if cmd.is_empty() {
            vec!["--help"]
        } else {
            vec![cmd, "--help"]
        };
        let theirs = Command::new(runc)
            .args(&args)
            .output()
            .expect("runc --help");
        let theirs = String::from_utf8_lossy(&theirs.stdout).into_owned();
        let ours = env.berth(&args).ok().stdout;
        let ours_flags = help_flags(&ours);
        for f in help_flags(&theirs) {
            // runc's global -v is --version; berth's too.
            if !ours_flags.contains(&f) {
                missing.push(format!(
                    "{} {f}",
                    if cmd.is_empty() { "(global)" } else { cmd }
                ));
            }
        }
    }
    assert!(missing.is_empty(), "runc flags berth lacks: {missing:?}");
}

#[test]
fn unsupported_global_flags_are_clear_errors() {
    let env = Env::new("global_flags");
    env.berth(&["--criu", "/usr/sbin/criu", "list"])
        .fails_with(&["--criu", "not supported"]);
    // Rootless forced as root (runc's rootless cgroups): --root is still
    // honoured, the container runs, and no cgroup is made for it.
    env.berth(&["--rootless", "true", "list"]).ok();
    let mut env = env;
    env.set_script("sed -n 's/^[0-9]*:memory://p' /proc/self/cgroup");
    let out = env.berth(&["--rootless", "true", "run", "--bundle", &env.bundle_str(), &env.id]).ok();
    assert!(!out.stdout.contains(&env.id), "a cgroup was made:\n{out}");
    for d in host::cgroup_dirs(&env.cgroups_path) {
        assert!(!d.exists(), "{} exists", d.display());
    }
    env.berth(&["--rootless", "maybe", "list"])
        .fails_with(&["--rootless", "maybe"]);
    env.berth(&["--rootless", "false", "list"]).ok();
    env.berth(&["--rootless", "auto", "list"]).ok();
}

#[test]
fn spec_writes_runcs_default_config() {
    let env = Env::new("spec_default");
    let dir = env.file("specdir");
    fs::create_dir_all(&dir).unwrap();
    env.berth_in(&dir, &["spec"]).ok();
    let ours: Value =
        serde_json::from_str(&fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(ours["process"]["terminal"], true);
    assert_eq!(ours["root"]["path"], "rootfs");
    // It does not overwrite.
    env.berth_in(&dir, &["spec"])
        .fails_with(&["config.json", "exists"]);
    // --bundle, --rootless
    let other = env.file("specdir2");
    fs::create_dir_all(&other).unwrap();
    env.berth(&["spec", "--rootless", "--bundle", other.to_str().unwrap()])
        .ok();
    let rl: Value =
        serde_json::from_str(&fs::read_to_string(other.join("config.json")).unwrap()).unwrap();
    let ns: Vec<&str> = rl["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    assert!(ns.contains(&"user") && !ns.contains(&"network"), "{ns:?}");
    assert_eq!(
        rl["linux"]["uidMappings"][0]["hostID"], 0,
        "maps the caller (root here)"
    );
    env.berth(&["spec", "--bundle", env.file("nowhere").to_str().unwrap()])
        .fails_with(&["nowhere"]);
    // --seccomp-default embeds seccomp-profiles/default.json.
    let sdir = env.file("specdir3");
    fs::create_dir_all(&sdir).unwrap();
    env.berth(&["spec", "--seccomp-default", "--bundle", sdir.to_str().unwrap()]).ok();
    let sc: Value = serde_json::from_str(&fs::read_to_string(sdir.join("config.json")).unwrap()).unwrap();
    let want: Value = serde_json::from_str(
        &fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../seccomp-profiles/default.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(sc["linux"]["seccomp"], want, "spec --seccomp-default must embed default.json");
    assert!(ours["linux"]["seccomp"].is_null(), "plain spec has no seccomp");
    let Some(runc) = runc() else {
        return skip(TOOLS, "runc is not installed; berth spec not compared with runc spec");
    };
    for (flags, mine) in [(vec![], ours), (vec!["--rootless"], rl)] {
        let rdir = env.file(&format!("runcspec{}", flags.len()));
        fs::create_dir_all(&rdir).unwrap();
        let st = Command::new(runc)
            .arg("spec")
            .args(&flags)
            .current_dir(&rdir)
            .status()
            .unwrap();
        assert!(st.success());
        let mut theirs: Value =
            serde_json::from_str(&fs::read_to_string(rdir.join("config.json")).unwrap()).unwrap();
        let mut mine = mine.clone();
        for v in [&mut theirs, &mut mine] {
            v["ociVersion"] = json!("-");
            v["hostname"] = json!("-");
        }
        assert_eq!(
            mine, theirs,
            "berth spec {flags:?} differs from runc's beyond ociVersion and hostname"
        );
    }
}

#[test]
fn spec_config_runs_with_a_rootfs() {
    let env = Env::new("spec_runs");
    let dir = env.file("specrun");
    fs::create_dir_all(&dir).unwrap();
    berth_integration::bundle::make_busybox_rootfs(&dir.join("rootfs")).unwrap();
    env.berth(&["spec", "-b", dir.to_str().unwrap()]).ok();
    let p = dir.join("config.json");
    let mut v: Value = serde_json::from_str(&fs::read_to_string(&p).unwrap()).unwrap();
    v["process"]["terminal"] = json!(false);
    v["process"]["args"] = json!(["sh", "-c", "hostname; echo ran", env.marker]);
    v["linux"]["cgroupsPath"] = json!(env.cgroups_path);
    fs::write(&p, v.to_string()).unwrap();
    let out = env
        .berth(&["run", "-b", dir.to_str().unwrap(), &env.id])
        .ok();
    assert_eq!(out.lines(), ["berth", "ran"]);
    assert_no_leftovers(&env);
}

#[test]
fn features_lists_what_berth_implements() {
    let env = Env::new("features");
    let f = env.berth(&["features"]).ok().json();
    assert_eq!(f["ociVersionMin"], "1.0.0");
    assert!(f["ociVersionMax"].as_str().unwrap().starts_with("1."));
    assert_eq!(
        f["hooks"],
        json!([
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart",
            "poststop"
        ])
    );
    let ns = f["linux"]["namespaces"].as_array().unwrap();
    for n in [
        "cgroup", "ipc", "mount", "network", "pid", "user", "uts", "time",
    ] {
        assert!(ns.contains(&json!(n)), "{n} missing: {f}");
    }
    let sc = &f["linux"]["seccomp"];
    assert_eq!(sc["enabled"], true, "seccomp: {sc}");
    for (list, want) in [
        ("actions", "SCMP_ACT_NOTIFY"),
        ("operators", "SCMP_CMP_MASKED_EQ"),
        ("archs", "SCMP_ARCH_X86_64"),
        ("knownFlags", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"),
        ("supportedFlags", "SECCOMP_FILTER_FLAG_LOG"),
    ] {
        assert!(sc[list].as_array().is_some_and(|a| a.contains(&json!(want))), "{want} missing from seccomp.{list}: {sc}");
    }
    let Some(runc) = runc() else {
        return skip(TOOLS, "runc is not installed; features not compared with runc's");
    };
    let theirs: Value =
        serde_json::from_slice(&Command::new(runc).arg("features").output().unwrap().stdout)
            .unwrap();
    assert_eq!(
        f["linux"]["capabilities"], theirs["linux"]["capabilities"],
        "capability names"
    );
    assert_eq!(
        f["linux"]["namespaces"].as_array().unwrap().len(),
        theirs["linux"]["namespaces"].as_array().unwrap().len() + 1,
        "runc's and time"
    );
    let ours: Vec<&Value> = f["mountOptions"].as_array().unwrap().iter().collect();
    let known: Vec<&Value> = theirs["mountOptions"].as_array().unwrap().iter().collect();
    for o in [
        "ro",
        "rw",
        "nosuid",
        "nodev",
        "noexec",
        "bind",
        "rbind",
        "rprivate",
        "rslave",
        "rro",
        "nosymfollow",
    ] {
        assert!(
            ours.contains(&&json!(o)) && known.contains(&&json!(o)),
            "{o}"
        );
    }
}

#[test]
fn listen_fds_and_preserve_fds_reach_the_container() {
    let env = Env::sh("listen_fds", "echo $LISTEN_FDS $LISTEN_PID; cat <&3; echo; cat <&4; echo; cat <&5 2>/dev/null || echo no-fd-5");
    let a = env.file("listen.txt");
    let b = env.file("extra.txt");
    fs::write(&a, "listened").unwrap();
    fs::write(&b, "preserved").unwrap();
    let how = Stdio3 {
        fds: vec![(3, a.clone()), (4, b.clone())],
        env: vec![("LISTEN_FDS".into(), "1".into())],
        listen_pid: true,
        ..Default::default()
    };
    let mut p = tty::spawn(
        &env,
        &[
            "run",
            "--preserve-fds",
            "1",
            "--bundle",
            &env.bundle_str(),
            &env.id,
        ],
        how,
    );
    assert_eq!(p.code(SHORT), 0, "{}", p.stderr());
    assert_eq!(
        p.stdout().lines().collect::<Vec<_>>(),
        ["1 1", "listened", "preserved", "no-fd-5"],
        "{}",
        p.stderr()
    );
    assert_no_leftovers(&env);
    // LISTEN_PID naming another process: no socket activation, as runc.
    let env = Env::sh(
        "listen_other",
        "echo [$LISTEN_FDS]; ls /proc/self/fd/3 >/dev/null 2>&1 || echo no-fd-3",
    );
    let how = Stdio3 {
        fds: vec![(3, a)],
        env: vec![
            ("LISTEN_FDS".into(), "1".into()),
            ("LISTEN_PID".into(), "1".into()),
        ],
        ..Default::default()
    };
    let mut p = tty::spawn(&env, &["run", "--bundle", &env.bundle_str(), &env.id], how);
    assert_eq!(p.code(SHORT), 0, "{}", p.stderr());
    assert_eq!(p.stdout(), "[]\nno-fd-3\n");
    assert_no_leftovers(&env);
}

#[test]
fn preserve_fds_for_create_and_missing_fds() {
    let env = Env::sh("preserve_create", "cat <&3");
    let a = env.file("p.txt");
    fs::write(&a, "kept").unwrap();
    let how = Stdio3 {
        fds: vec![(3, a)],
        ..Default::default()
    };
    let mut p = tty::spawn(
        &env,
        &[
            "create",
            "--preserve-fds",
            "1",
            "--bundle",
            &env.bundle_str(),
            &env.id,
        ],
        how,
    );
    assert_eq!(p.code(SHORT), 0, "{}", p.stderr());
    env.start();
    env.wait_status("stopped", SHORT);
    assert_eq!(p.stdout(), "kept");
    env.delete().ok();
    env.berth(&[
        "run",
        "--preserve-fds",
        "2",
        "--bundle",
        &env.bundle_str(),
        &env.id,
    ])
    .fails_with(&["--preserve-fds", "fd 3"]);
    assert_no_leftovers(&env);
}

#[test]
fn no_new_keyring() {
    let keyring = |id: &str| {
        fs::read_to_string("/proc/keys")
            .unwrap()
            .lines()
            .any(|l| l.contains(&format!(" _ses.{id}: ")))
    };
    let env = Env::sh("keyring_new", SLEEPER);
    env.run_detached();
    assert!(
        keyring(&env.id),
        "no session keyring named after the container (runc's _ses.<id>)"
    );
    env.delete_force().ok();
    let env2 = Env::sh("keyring_none", SLEEPER);
    env2.berth(&[
        "run",
        "-d",
        "--no-new-keyring",
        "--bundle",
        &env2.bundle_str(),
        &env2.id,
    ])
    .ok();
    assert!(!keyring(&env2.id), "--no-new-keyring made a keyring");
    env2.delete_force().ok();
    assert_no_leftovers(&env);
    assert_no_leftovers(&env2);
}

#[test]
fn run_keep_leaves_the_stopped_container() {
    let env = Env::sh("run_keep", "exit 3");
    env.berth(&["run", "--keep", "--bundle", &env.bundle_str(), &env.id])
        .exits_with(3);
    assert_eq!(env.status(), "stopped");
    env.delete().ok();
    assert_no_leftovers(&env);
}

#[test]
fn run_adopts_orphans_unless_no_subreaper() {
    // No pid namespace: the orphan's parent is whoever adopts it.
    for (flag, adopted) in [(None, true), (Some("--no-subreaper"), false)] {
        let mut env = Env::sh(
            "subreaper",
            "(sleep 30 & echo $! > /spid); sleep 0.3; grep PPid /proc/$(cat /spid)/status",
        );
        env.set_namespaces(&["mount", "ipc"]);
        env.remove("/hostname");
        let mut args = vec!["run"];
        args.extend(flag);
        let b = env.bundle_str();
        args.extend(["--bundle", &b, &env.id]);
        let p = env.spawn(&args);
        let berth_pid = p.pid();
        let out = p.wait(SHORT).ok();
        let ppid = squash(&out.stdout);
        assert_eq!(
            ppid == format!("PPid: {berth_pid}"),
            adopted,
            "flag {flag:?}: {ppid:?} (berth is {berth_pid})"
        );
        // delete (in run) killed the orphan left in the cgroup, as runc does
        let spid: i64 = fs::read_to_string(env.rootfs().join("spid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(
            wait_until(SHORT, || !pid_alive(spid)),
            "the orphan {spid} outlived its container"
        );
        assert_no_leftovers(&env);
    }
}

#[test]
fn kill_all_reaches_processes_left_after_init() {
    // Without a pid namespace, init's children outlive it in the cgroup.
    let mut env = Env::sh(
        "kill_all_after_init",
        "sh -c 'while :; do sleep 0.1; done' $0 & echo $! > /orphan",
    );
    env.set_namespaces(&["mount", "ipc"]);
    env.remove("/hostname");
    env.run_detached();
    let orphan: i64 = env.wait_file("orphan", "\n").trim().parse().unwrap();
    env.wait_status("stopped", SHORT);
    // containerd's shim looks for "container not running"
    env.kill("KILL").fails_with(&["container not running"]);
    assert!(pid_alive(orphan));
    env.berth(&["kill", "--all", &env.id, "KILL"]).ok();
    assert!(
        wait_until(SHORT, || !pid_alive(orphan)),
        "kill --all missed {orphan}"
    );
    env.delete().ok();
    assert_no_leftovers(&env);
}

#[test]
fn ps_lists_the_containers_processes() {
    let env = Env::sh("ps_cmd", SLEEPER);
    env.run_detached();
    let init = env.pid();
    let pids = env.berth(&["ps", "--format", "json", &env.id]).ok().json();
    assert!(pids.as_array().unwrap().contains(&json!(init)), "{pids}");
    let table = env.berth(&["ps", &env.id]).ok();
    assert!(
        table.stdout.starts_with("UID") && table.stdout.contains(&env.marker),
        "{table}"
    );
    let custom = env.berth(&["ps", &env.id, "-o", "pid,comm"]).ok();
    assert_eq!(
        custom.lines()[0].split_whitespace().collect::<Vec<_>>(),
        ["PID", "COMMAND"],
        "{custom}"
    );
    assert!(
        custom
            .lines()
            .iter()
            .any(|l| l.starts_with(&init.to_string())),
        "{custom}"
    );
    env.berth(&["ps", "nosuch-container"])
        .fails_with(&["does not exist"]);
    env.delete_force().ok();
    assert_no_leftovers(&env);
}

#[test]
fn exec_errors_reach_log_json() {
    let env = Env::sh("exec_log_json", SLEEPER);
    env.run_detached();
    let log = env.file("log.json");
    let out = env.berth(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "exec",
        &env.id,
        "/no/such/binary",
    ]);
    out.exits_with(1);
    let text = fs::read_to_string(&log).unwrap();
    let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["level"], "error");
    assert!(
        last["msg"].as_str().unwrap().contains("/no/such/binary"),
        "{last}"
    );
    assert!(last["time"].is_string());
    env.delete_force().ok();
    assert_no_leftovers(&env);
}
