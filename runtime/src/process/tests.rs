//! Unit tests of `process/` that need no container: the sync codec over a
//! real socketpair, the parent's pure decisions, the CPU spread on a
//! thread, the exec child's root and namespace checks, and init's cwd
//! check in a forked child.

use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

use super::sync::{self, Msg};
use super::*;
use crate::cgroups::CgroupMount;
use crate::container::OciState;

fn spec(v: serde_json::Value) -> oci_spec::runtime::Spec {
    serde_json::from_value(v).expect("test spec parses")
}

fn ns(types: &[&str]) -> serde_json::Value {
    serde_json::json!({
        "ociVersion": "1.3.0",
        "process": {"args": ["/bin/true"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
        "root": {"path": "rootfs"},
        "linux": {"namespaces": types.iter().map(|t| serde_json::json!({"type": t})).collect::<Vec<_>>()}
    })
}

fn mount(unified: bool) -> CgroupMount {
    let (mp, subs) =
        if unified { ("/sys/fs/cgroup/unified", vec![]) } else { ("/sys/fs/cgroup/cpu", vec!["cpu".into()]) };
    CgroupMount {
        mountpoint: mp.into(),
        subsystems: subs,
        unified,
        path: "/berth/t".into(),
        dir: format!("{mp}/berth/t").into(),
    }
}

fn cgroups(mounts: Vec<CgroupMount>) -> ContainerCgroups {
    ContainerCgroups { mounts, ..ContainerCgroups::default() }
}

fn state() -> OciState {
    OciState {
        oci_version: "1.3.0".into(),
        id: "c1".into(),
        status: Status::Creating,
        pid: 42,
        bundle: "/b".into(),
        rootfs: None,
        created: None,
        owner: None,
        annotations: [("a".to_string(), "b".to_string())].into_iter().collect(),
    }
}

fn recv(fd: &OwnedFd) -> Msg {
    sync::recv(fd, false).unwrap().expect("a message").0
}

#[test]
fn every_message_crosses_the_socket_whole() {
    let (a, b) = sync::pair().unwrap();
    let all = [
        Msg::RequestMaps,
        Msg::Hello,
        Msg::RunHooks,
        Msg::Ready,
        Msg::Error(crate::error::InitError::new(crate::error::ErrorKind::Os, "init: no such file")),
        sync::error(&Error::Protocol("hook 0 failed".into())),
        Msg::SeccompListener,
        Msg::Spawned(1234),
        Msg::MoveNetDevices,
        Msg::Start,
        Msg::Detach,
        Msg::CgroupsReady,
        Msg::MapsWritten,
        Msg::SeccompSent,
        Msg::NetDevicesMoved,
        Msg::HooksDone(state()),
    ];
    for m in &all {
        sync::send(&a, m).unwrap();
    }
    for m in &all {
        let got = recv(&b);
        // Msg has no PartialEq: compare the encoding both sides agree on.
        assert_eq!(serde_json::to_string(&got).unwrap(), serde_json::to_string(m).unwrap());
    }
    drop(a);
    assert!(sync::recv(&b, false).unwrap().is_none(), "EOF once the peer is gone");
}

#[test]
fn a_long_init_error_arrives_cut() {
    let (a, b) = sync::pair().unwrap();
    sync::send(&a, &sync::error(&Error::Protocol("x".repeat(sync::MAX_TEXT * 3)))).unwrap();
    match recv(&b) {
        Msg::Error(e) => assert!(e.msg.len() <= sync::MAX_TEXT && e.msg.contains("message cut"), "{}", e.msg.len()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_datagram_that_is_no_message_is_named() {
    let (a, b) = sync::pair().unwrap();
    let junk = b"{\"Nonsense\":1}";
    // SAFETY: sends from a valid buffer on an fd we own.
    assert_eq!(unsafe { libc::send(a.as_raw_fd(), junk.as_ptr().cast(), junk.len(), 0) }, junk.len() as isize);
    let e = sync::recv(&b, false).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
    assert!(e.to_string().starts_with("bad sync message"), "{e}");
}

#[test]
fn hello_carries_the_senders_pid() {
    let (a, b) = sync::pair().unwrap();
    sync::pass_credentials(&b).unwrap();
    sync::send(&a, &Msg::Hello).unwrap();
    let (m, pid) = sync::recv(&b, true).unwrap().unwrap();
    assert!(matches!(m, Msg::Hello));
    assert_eq!(pid, Some(std::process::id() as i32));
}

#[test]
fn net_is_deferred_only_where_it_pays() {
    let plan = |t: &[&str]| Plan::from_spec(&spec(ns(t))).unwrap();
    let hybrid = cgroups(vec![mount(false), mount(true)]);
    let v2 = cgroups(vec![mount(true)]);
    let fast = !crate::fast::off("net");
    assert_eq!(defers_net(&plan(&["network", "mount", "pid"]), &hybrid), fast);
    // No new network namespace, a user namespace that must own it, or
    // a v2-only host (clone3 places init in a cgroup that must exist).
    assert!(!defers_net(&plan(&["mount", "pid"]), &hybrid));
    assert!(!defers_net(&plan(&["network", "user", "mount"]), &hybrid));
    assert!(!defers_net(&plan(&["network", "mount"]), &v2));
    assert!(!defers_net(&plan(&["network"]), &cgroups(vec![])));
}

fn affinity(tid: libc::pid_t) -> usize {
    // SAFETY: cpu_set_t is plain data, filled by the kernel.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: a valid set of the size given.
    assert_eq!(unsafe { libc::sched_getaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &mut set) }, 0);
    // SAFETY: reads the set filled above.
    unsafe { libc::CPU_COUNT(&set) as usize }
}

#[test]
fn spread_moves_a_task_off_our_cpu_and_back() {
    let mine = affinity(0);
    let Some(s) = spread::Spread::new() else {
        assert_eq!(mine, 1, "no spread only with one CPU");
        return crate::test_skip::skip(crate::test_skip::HOST, "one CPU: nothing to spread to");
    };
    let (tx, rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let t = std::thread::spawn(move || {
        // SAFETY: gettid takes no argument.
        tx.send(unsafe { libc::gettid() }).unwrap();
        let _ = done_rx.recv_timeout(Duration::from_secs(10));
    });
    let tid = rx.recv().unwrap();
    s.push(tid);
    assert_eq!(affinity(tid), mine - 1, "all our CPUs but the current one");
    s.release(tid);
    assert_eq!(affinity(tid), mine, "the inherited mask again");
    done_tx.send(()).unwrap();
    t.join().unwrap();
}

#[test]
fn exec_into_ourselves_joins_nothing() {
    let me = std::process::id() as i32;
    let n = join::Namespaces::open(me).unwrap();
    assert!(n.joined().is_empty(), "{:?}", n.joined());
    assert!(join_root::open(me).unwrap().is_none(), "our own root is nothing to enter");
    let e = join::Namespaces::open(i32::MAX).unwrap_err().to_string();
    assert!(e.contains("/proc/2147483647/ns/"), "{e}");
    let e = join_root::open(i32::MAX).unwrap_err().to_string();
    assert!(e.contains("open the container's root") && e.contains("/proc/2147483647/root"), "{e}");
}

#[test]
fn preserved_fds_must_be_open() {
    let (a, _b) = sync::pair().unwrap();
    let fd = a.as_raw_fd();
    assert!(join::fd_is_open(fd));
    assert!(join::check_fds_open(fd, 1, "--preserve-fds").is_ok());
    drop(a);
    assert!(!join::fd_is_open(fd));
    let e = join::check_fds_open(fd, 1, "--preserve-fds").unwrap_err().to_string();
    assert!(e.contains(&format!("--preserve-fds: fd {fd} is not open in berth")), "{e}");
}

#[test]
fn a_pidfd_says_when_its_process_ends() {
    let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
    let fd = crate::sys::pidfd_open(child.id() as i32).unwrap();
    assert!(join::pidfd_alive(&fd));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!join::pidfd_alive(&fd));
}

/// Run `f` in a forked child; its exit code (0: passed). The child does
/// only syscalls and small allocations, and _exits.
fn in_child(f: impl FnOnce() -> i32) -> i32 {
    // SAFETY: the child runs `f` and _exits; it never returns here.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        // SAFETY: dies with the test; _exit skips the parent's destructors.
        unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            libc::_exit(f());
        }
    }
    let mut status = 0;
    // SAFETY: waits for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status), "child status {status:#x}");
    libc::WEXITSTATUS(status)
}

#[test]
fn a_cwd_outside_the_root_is_refused() {
    // SAFETY: geteuid takes no argument.
    if unsafe { libc::geteuid() } != 0 {
        return crate::test_skip::skip(crate::test_skip::ROOT, "chroot needs root");
    }
    let p: oci_spec::runtime::Process =
        serde_json::from_value(serde_json::json!({"args": ["/x"], "cwd": "/work", "user": {"uid": 0, "gid": 0}}))
            .unwrap();
    assert!(init::cwd_inside_root(&p).is_ok(), "the test's own cwd is inside its root");
    let dir = std::env::temp_dir().join(format!("berth-cwd-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("marker"), "").unwrap();
    let root = std::fs::File::open(&dir).unwrap();
    let code = in_child(|| {
        // Chroot without moving the cwd: it is now outside the root, as a
        // cwd reached through a leaked host fd would be (CVE-2024-21626).
        let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: chroot with a valid C string.
        if unsafe { libc::chroot(c.as_ptr()) } != 0 {
            return 2;
        }
        match init::cwd_inside_root(&p) {
            Err(e) if e.to_string().contains("process.cwd: /work is outside") => {}
            _ => return 3,
        }
        // join_root::enter: into a root by fd, cwd at its "/".
        if join_root::enter(&OwnedFd::from(root)).is_err() || !std::path::Path::new("/marker").exists() {
            return 4;
        }
        if init::cwd_inside_root(&p).is_err() {
            return 5;
        }
        0
    });
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(code, 0, "2: chroot, 3: cwd not refused, 4: enter, 5: cwd after enter");
}

/// The parent's loop against a stand-in for init on a real socketpair,
/// with a sleeping child in init's place.
struct Drive {
    root: std::path::PathBuf,
    bundle: crate::spec::Bundle,
}

impl Drive {
    fn new(name: &str, v: serde_json::Value) -> Drive {
        let root = std::env::temp_dir().join(format!("berth-{name}-{}", std::process::id()));
        let bundle = crate::spec::Bundle {
            dir: root.clone(),
            config_path: root.join("config.json"),
            spec: spec(v),
            rootfs: root.join("rootfs"),
        };
        Drive { root, bundle }
    }

    /// Run `drive` with `steps` after `init` has sent `script`; what it
    /// returned, what came back to init, and whether "init" is gone.
    fn run(&self, steps: Steps, script: &[Msg]) -> (Result<()>, Vec<String>, bool) {
        let sd = StateDir::create(&self.root, "c1").unwrap();
        let setup = |_: CgroupStep| Ok(());
        let record = |_: i32, _: u64| Ok(());
        let plan = crate::plan::build(&self.bundle, "c1", &self.root, Default::default()).unwrap();
        let l = Launch {
            id: "c1",
            plan: &plan,
            state_dir: &sd,
            no_pivot: false,
            no_new_keyring: true,
            preserve_fds: 0,
            console_socket: None,
            extra_env: &[],
            stdio: None,
            setup_cgroups: &setup,
            record: &record,
            in_process_start: false,
        };
        let (ours, theirs) = sync::pair().unwrap();
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id() as i32;
        let mut p = Parent {
            l: &l,
            sock: ours,
            clone_pid: pid,
            init_pid: Some(pid),
            recorded: None,
            steps,
            phase: Phase::Cloned,
        };
        for m in script {
            sync::send(&theirs, m).unwrap();
        }
        let r = p.drive(false);
        // As launch does on an error; a success leaves init to the caller.
        p.kill_all();
        drop(p);
        let mut back = Vec::new();
        while let Ok(Some((m, _))) = sync::recv(&theirs, false) {
            back.push(m.name().to_string());
        }
        // kill_all reaped it: the pid is free.
        let gone = nix::sys::signal::kill(Pid::from_raw(pid), None).is_err();
        // (Already reaped: this finds nothing, ECHILD.)
        let _ = child.wait();
        let _ = fs::remove_dir_all(&self.root);
        (r, back, gone)
    }
}

#[test]
fn drive_answers_the_steps_in_order() {
    let d = Drive::new("drive-ok", ns(&["mount"]));
    let steps = Steps { hooks: true, ..Steps::default() };
    let (r, back, gone) = d.run(steps, &[Msg::RunHooks, Msg::Ready]);
    r.unwrap();
    assert_eq!(back, ["HooksDone"]);
    assert!(gone);
}

#[test]
fn drive_refuses_a_message_out_of_order_and_kills_init() {
    let d = Drive::new("drive-bad", ns(&["mount"]));
    // Hooks when the config has none, a second RunHooks, Ready before the maps.
    let cases = [
        (
            Steps::default(),
            vec![Msg::RunHooks],
            "container init sent RunHooks out of order in phase Cloned (expected Ready)",
        ),
        (
            Steps { hooks: true, ..Steps::default() },
            vec![Msg::RunHooks, Msg::RunHooks],
            "RunHooks out of order in phase HooksRun (expected Ready)",
        ),
        (
            Steps { maps: true, ..Steps::default() },
            vec![Msg::Ready],
            "Ready out of order in phase Cloned (expected RequestMaps)",
        ),
        (Steps::default(), vec![Msg::Spawned(1)], "Spawned out of order in phase Cloned"),
    ];
    for (steps, script, want) in cases {
        let (r, _, gone) = d.run(steps, &script);
        let e = r.unwrap_err().to_string();
        assert!(e.contains(want), "{e}");
        assert!(gone, "init killed and reaped");
    }
}
