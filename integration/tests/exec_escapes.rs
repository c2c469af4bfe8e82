//! The container escapes through `exec` (CVE-2019-5736, CVE-2024-21626
//! and host handles seen through ptrace), each attack tried through every
//! way `berth exec` starts a process: in the foreground, `-d`, `-t` (with a
//! console socket) and `--process FILE`. The attacks run as root in the
//! container with Docker's default capabilities (and CAP_SYS_PTRACE for the
//! ptrace class). The same attacks through `create`/`run` are in
//! security.rs. Each runs twice: with berth as root, and rootless (berth
//! run by a test user of its own, the container in the user's user
//! namespace, "root" the user's own uid).

use std::os::unix::fs::PermissionsExt;

use berth_integration::attacks::{host_objects_in, host_objects_or_refused, watcher, DEFAULT_CAPS};
use berth_integration::prelude::*;
use berth_integration::root_and_rootless;
use berth_integration::tty::{ConsoleSocket, Reader};

/// How `berth exec` is asked to start the process.
#[derive(Debug, Clone, Copy)]
enum Entry {
    Foreground,
    Detached,
    /// `-t -d --console-socket`
    Tty,
    /// `--process FILE`
    ProcessFile,
}

const ENTRIES: [Entry; 4] = [
    Entry::Foreground,
    Entry::Detached,
    Entry::Tty,
    Entry::ProcessFile,
];

/// The process to exec: its args and, optionally, `--cwd`.
struct Proc<'a> {
    args: &'a [&'a str],
    cwd: Option<&'a str>,
}

/// The container `env` (berth run by `who`) with Docker's default
/// capabilities (plus `extra`), running `script` as root, and no HOME in
/// its environment.
fn container(who: &Who, name: &str, script: &str, extra: &[&str]) -> Env {
    let mut env = Env::sh_as(name, script, who);
    let caps: Vec<&str> = DEFAULT_CAPS.iter().chain(extra).copied().collect();
    env.set(
        "/process/capabilities",
        json!({"bounding": caps, "permitted": caps, "effective": caps}),
    );
    env.set(
        "/process/env",
        json!(["PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]),
    );
    env.set("/process/noNewPrivileges", json!(false));
    env
}

/// Run `berth exec` (binary `bin`) of `p` in `env` through `entry`; wait
/// for the process to end and return (berth's exit status was success,
/// everything the process and berth printed).
fn exec_via(env: &Env, bin: &Path, entry: Entry, p: &Proc, tag: &str) -> (bool, String) {
    let base = env.file(&format!("exec-{tag}-{entry:?}"));
    let pid_file = env.file(&format!("exec-{tag}-{entry:?}.pid"));
    let _ = fs::remove_file(&pid_file);
    let mut args: Vec<String> = vec![
        "--root".into(),
        env.root.display().to_string(),
        "exec".into(),
    ];
    let mut console = None;
    match entry {
        Entry::Foreground => {}
        Entry::Detached => args.push("-d".into()),
        Entry::Tty => {
            let sock = ConsoleSocket::bind(&env.file(&format!("console-{tag}")));
            env.give(Path::new(&sock.path_str()));
            args.extend([
                "-t".into(),
                "-d".into(),
                "--console-socket".into(),
                sock.path_str(),
            ]);
            console = Some(sock);
        }
        Entry::ProcessFile => {
            let mut process = json!({
                "terminal": false,
                "user": {"uid": 0, "gid": 0},
                "args": p.args,
                "env": ["PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                "cwd": p.cwd.unwrap_or("/"),
            });
            if p.cwd.is_none() {
                // The container's configured cwd, as a plain exec would use.
                process["cwd"] = env.config()["process"]["cwd"].clone();
            }
            // Named so the ptrace test's watcher finds berth by its command line.
            let file = env.file(&format!("process-{tag}-escmark.json"));
            fs::write(&file, process.to_string()).unwrap();
            args.extend(["--process".into(), file.display().to_string()]);
        }
    }
    if let (Some(cwd), false) = (p.cwd, matches!(entry, Entry::ProcessFile)) {
        args.extend(["--cwd".into(), cwd.into()]);
    }
    args.extend([
        "--pid-file".into(),
        pid_file.display().to_string(),
        env.id.clone(),
    ]);
    if !matches!(entry, Entry::ProcessFile) {
        args.extend(p.args.iter().map(|s| s.to_string()));
    }
    let out = env.run_prog(bin, &args, &base, CMD_TIMEOUT);
    let reader = console
        .as_ref()
        .filter(|_| out.success())
        .map(|c| Reader::start(&c.receive(SHORT).1));
    if out.success() && !matches!(entry, Entry::Foreground) {
        // The detached process writes after berth is gone: wait for its end.
        let pid: i64 = fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(
            wait_until(SHORT, || !pid_alive(pid)),
            "exec'd process {pid} did not end"
        );
    }
    let mut text = format!(
        "{}\n{}\n({})",
        fs::read_to_string(&out.stdout_path).unwrap_or_default(),
        out.stderr,
        out.status
    );
    if let Some(r) = reader {
        std::thread::sleep(Duration::from_millis(100));
        text.push_str(&r.text());
    }
    (out.success(), text)
}

/// A private copy of berth for the attack to aim at: if it worked, the
/// copy is what changes. Rootless, the user's own file, as a user's
/// berth is (root's would be out of the user's reach anyway).
fn berth_copy(env: &Env) -> PathBuf {
    let copy = env.file("berth-copy");
    fs::copy(berth_bin(), &copy).unwrap();
    env.give(&copy);
    copy
}

/// The copy of berth the attack aimed at is still berth.
fn assert_unchanged(copy: &Path) {
    assert_eq!(fs::read(copy).unwrap(), fs::read(berth_bin()).unwrap(), "berth's binary was changed");
}

fn executable(path: &Path, text: &str) {
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

// ---- CVE-2019-5736: the host binary executed inside the container --------

fn exec_5736(who: &Who) {
    // The container's /bin/sh and a program on its PATH are replaced with
    // a script whose interpreter is /proc/self/exe (and a symlink to it):
    // the next `exec` of them used to execute the host's berth, as a
    // dumpable root process in the container.
    let env = container(who, "cve_2019_5736_exec", SLEEPER, &[]);
    env.run_detached();
    let copy = berth_copy(&env);
    let rootfs = env.rootfs();
    executable(&rootfs.join("evil.sh"), "#!/proc/self/exe --version\n");
    fs::create_dir_all(rootfs.join("usr/local/bin")).unwrap();
    std::os::unix::fs::symlink("/proc/self/exe", rootfs.join("usr/local/bin/evil")).unwrap();
    for entry in ENTRIES {
        for args in [
            &["/evil.sh", "x"][..],
            &["evil", "--version"][..],
            &["/proc/self/exe", "--version"][..],
        ] {
            let (_, text) = exec_via(&env, &copy, entry, &Proc { args, cwd: None }, "2019");
            assert!(
                !text.contains("berth version"),
                "{entry:?} {args:?} executed berth's binary:\n{text}"
            );
        }
    }
    assert_unchanged(&copy);
    env.delete_force();
    assert_no_leftovers(&env);
}

// ---- CVE-2024-21626: a cwd or program reached through a leaked fd ---------

/// Markers in every host directory a leaked fd could lead to.
fn plant_markers(env: &Env) {
    for dir in [
        env.dir.clone(),
        env.root.clone(),
        env.state_dir(),
        env.bundle_path().to_path_buf(),
    ] {
        fs::write(dir.join("escape-marker"), "host\n").unwrap();
    }
}

/// What the exec'd process sees around its cwd.
const LOOK_AROUND: [&str; 3] = [
    "sh",
    "-c",
    "ls -a . .. ../.. ../../.. ../../../.. 2>/dev/null; echo looked",
];

fn exec_21626_a(who: &Who) {
    // (a) The container replaces its configured cwd with a symlink to
    // /proc/self/fd/N: a plain exec used to start in berth's state dir.
    let mut env = container(who, "cve_2024_21626_exec_a", SLEEPER, &[]);
    env.set("/process/cwd", json!("/work"));
    fs::create_dir_all(env.rootfs().join("work")).unwrap();
    env.run_detached();
    plant_markers(&env);
    let bin = env.bin().to_path_buf();
    for n in 3..=12 {
        let work = env.rootfs().join("work");
        let _ = fs::remove_dir(&work);
        let _ = fs::remove_file(&work);
        std::os::unix::fs::symlink(format!("/proc/self/fd/{n}"), &work).unwrap();
        for entry in ENTRIES {
            let (_, text) = exec_via(
                &env,
                &bin,
                entry,
                &Proc {
                    args: &LOOK_AROUND,
                    cwd: None,
                },
                "a",
            );
            assert!(
                !text.contains("escape-marker"),
                "{entry:?}: cwd through fd {n} reached the host:\n{text}"
            );
        }
    }
    env.delete_force();
    assert_no_leftovers(&env);
}

fn exec_21626_b(who: &Who) {
    // (b) `exec --cwd /proc/self/fd/N` (and `cwd` in --process).
    let env = container(who, "cve_2024_21626_exec_b", SLEEPER, &[]);
    env.run_detached();
    plant_markers(&env);
    let bin = env.bin().to_path_buf();
    let mut refused = 0;
    for n in 3..=12 {
        let cwd = format!("/proc/self/fd/{n}");
        for entry in ENTRIES {
            let (ok, text) = exec_via(
                &env,
                &bin,
                entry,
                &Proc {
                    args: &LOOK_AROUND,
                    cwd: Some(&cwd),
                },
                "b",
            );
            assert!(
                !text.contains("escape-marker"),
                "{entry:?}: --cwd {cwd} reached the host:\n{text}"
            );
            refused += usize::from(!ok);
        }
    }
    assert!(
        refused > 0,
        "no --cwd through an fd was refused: the attack was not exercised"
    );
    env.delete_force();
    assert_no_leftovers(&env);
}

fn exec_21626_c(who: &Who) {
    // (c) A program in the container is a symlink through /proc/self/fd/N
    // to a host program: it used to run the host's file inside the
    // container (the set-up for overwriting a host binary through
    // /proc/PID/exe). Tried as a path, through PATH and as a #! line.
    let env = container(who, "cve_2024_21626_exec_c", SLEEPER, &[]);
    env.run_detached();
    let bin = env.bin().to_path_buf();
    let rootfs = env.rootfs();
    fs::create_dir_all(rootfs.join("escape")).unwrap();
    fs::create_dir_all(rootfs.join("usr/local/bin")).unwrap();
    // The host's busybox, as `sh`: it says whether it is the container's.
    let check = "[ /proc/$$/exe -ef /bin/busybox ] || echo ESCAPED; echo ran";
    for n in 3..=12 {
        let target = format!("/proc/self/fd/{n}/../../../../../../../../../../bin/busybox");
        for link in [rootfs.join("escape/sh"), rootfs.join("usr/local/bin/sh")] {
            let _ = fs::remove_file(&link);
            std::os::unix::fs::symlink(&target, &link).unwrap();
        }
        executable(
            &rootfs.join("interp.sh"),
            &format!("#!{target} sh\n{check}\n"),
        );
        for entry in ENTRIES {
            // /usr/local/bin comes first on the container's PATH.
            for args in [
                &["/escape/sh", "-c", check][..],
                &["sh", "-c", check][..],
                &["/interp.sh"][..],
            ] {
                let (_, text) = exec_via(&env, &bin, entry, &Proc { args, cwd: None }, "c");
                assert!(
                    !text.contains("ESCAPED"),
                    "{entry:?} {args:?}: ran a host program through fd {n}:\n{text}"
                );
            }
        }
    }
    env.delete_force();
    assert_no_leftovers(&env);
}

// ---- what a ptrace-capable container process sees of an exec'd process ---

fn exec_ptrace(who: &Who) {
    // From the moment an exec'd process can be seen in the container, a
    // container process with CAP_SYS_PTRACE must find no fd, cwd or root
    // of the host's in it, and no writable berth binary behind its exe.
    let env = container(who, "exec_ptrace_view", &watcher("escmark"), &["CAP_SYS_PTRACE"]);
    env.run_detached();
    let copy = berth_copy(&env);
    for (k, entry) in ENTRIES.into_iter().enumerate() {
        let k = k + 1;
        fs::write(env.rootfs().join(format!("go{k}")), "").unwrap();
        env.wait_file(&format!("ready{k}"), "ok");
        let (ok, text) = exec_via(
            &env,
            &copy,
            entry,
            &Proc {
                args: &["sh", "-c", "echo escmark-ran"],
                cwd: None,
            },
            "pt",
        );
        assert!(
            ok && text.contains("escmark-ran"),
            "{entry:?}: the exec failed:\n{text}"
        );
        fs::write(env.rootfs().join(format!("later{k}")), "").unwrap();
        let report = env.wait_file(&format!("report{k}"), "done");
        // Rootless, the watcher may not even look (see
        // host_objects_or_refused); as root it must, or the test proves nothing.
        let bad = if env.user().is_some() { host_objects_or_refused(&report) } else { host_objects_in(&report) };
        assert!(
            bad.is_empty(),
            "{entry:?}: the exec'd process exposed host objects {bad:?}:\n{report}"
        );
    }
    assert_unchanged(&copy);
    env.delete_force();
    assert_no_leftovers(&env);
}

// ---- exec -u: every user form runs as the user asked, or fails -----------

fn exec_user_forms(who: &Who) {
    let env = container(who, "exec_user_forms", SLEEPER, &[]);
    env.run_detached();
    let id = |u: &str| {
        env.berth(&[
            "exec",
            &format!("--user={u}"),
            &env.id,
            "sh",
            "-c",
            "echo ids=$(id -u):$(id -g)",
        ])
    };
    for (user, want) in [
        ("1", "ids=1:0"),
        ("1:1", "ids=1:1"),
        ("0:2", "ids=0:2"),
        ("4294967294:7", "ids=4294967294:7"),
    ] {
        let out = id(user);
        if env.user().is_some() && user.starts_with("4294967294") {
            // Rootless: not mapped in the user's namespace; it must not
            // run at all (as the overflow uid or any other).
            assert!(!out.success() && !out.stdout.contains("ids="), "-u {user} (unmapped) ran:\n{out}");
            continue;
        }
        assert!(
            out.success() && out.stdout.contains(want),
            "-u {user}:\n{out}"
        );
    }
    for user in [
        "4294967295",
        "1:4294967295",
        "4294967296",
        "-1",
        "+1",
        "root",
        "nobody:nogroup",
        "1:",
        ":1",
        "",
        "1:1:1",
    ] {
        let out = id(user);
        assert!(!out.success(), "-u {user:?} ran:\n{out}");
        assert!(
            out.stderr.contains("--user"),
            "-u {user:?}: the error does not name the flag:\n{out}"
        );
        assert!(
            !out.stdout.contains("ids="),
            "-u {user:?} ran a process:\n{out}"
        );
    }
    env.delete_force();
    assert_no_leftovers(&env);
}

root_and_rootless! {
    exec_user_forms => exec_user_forms_never_run_as_another_user, exec_user_forms_never_run_as_another_user_rootless;
    exec_5736 => cve_2019_5736_exec_never_runs_berth_in_the_container, cve_2019_5736_exec_never_runs_berth_in_the_container_rootless;
    exec_21626_a => cve_2024_21626_exec_configured_cwd_symlinked_to_a_leaked_fd, cve_2024_21626_exec_configured_cwd_symlinked_to_a_leaked_fd_rootless;
    exec_21626_b => cve_2024_21626_exec_cwd_flag_through_a_leaked_fd, cve_2024_21626_exec_cwd_flag_through_a_leaked_fd_rootless;
    exec_21626_c => cve_2024_21626_exec_program_through_a_leaked_fd, cve_2024_21626_exec_program_through_a_leaked_fd_rootless;
    exec_ptrace => exec_process_holds_nothing_of_the_host_when_visible, exec_process_holds_nothing_of_the_host_when_visible_rootless;
}
