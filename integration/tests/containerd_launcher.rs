//! containerd-shim-berth-v2's launcher (the process that runs berth's
//! operations for the shim server) under a real containerd, 1.6 and 2.1:
//! containers that share a pid namespace, a slow create beside other
//! containers of the same shim, a request child that dies, the launcher's
//! sealed executable, Create without rootfs mounts and the ttrpc codes of
//! errors.

use std::os::unix::io::AsRawFd;

use berth_integration::containerd::{run_args, Containerd, Version, RUNTIME};
use berth_integration::prelude::*;
use berth_integration::shim_client;
use containerd_shim_protos::api;
use containerd_shim_protos::protobuf::MessageField;
use ttrpc::Code;

berth_integration::each_containerd!(
    shared_pid_namespace,
    slow_create_blocks_no_other_container,
    request_child_killed,
    create_without_rootfs,
    error_codes,
);

/// The parent pid of `pid` (0 once it is gone).
fn ppid(pid: i32) -> i32 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit_once(')')
        .and_then(|(_, r)| r.split_whitespace().nth(1))
        .and_then(|p| p.parse().ok())
        .unwrap_or(0)
}

/// A spec file for `ctr run --config` (no image, so no rootfs mounts in
/// the Create request): a busybox rootfs of its own, the cgroup ctr would
/// give, and optionally a shim group and a createRuntime hook.
fn spec_file(
    c: &Containerd,
    id: &str,
    args: &[&str],
    group: Option<&str>,
    hook: Option<Value>,
) -> PathBuf {
    let rootfs = c.dir.join(format!("rootfs-{id}"));
    berth_integration::bundle::make_busybox_rootfs(&rootfs).unwrap();
    let mut spec = default_config(args);
    spec["root"]["path"] = json!(rootfs);
    spec["linux"]["cgroupsPath"] = json!(format!("/{}/{id}", c.ns));
    if let Some(g) = group {
        spec["annotations"] = json!({ "io.containerd.runc.v2.group": g });
    }
    if let Some(h) = hook {
        spec["hooks"] = json!({ "createRuntime": [h] });
    }
    let path = c.dir.join(format!("spec-{id}.json"));
    fs::write(&path, spec.to_string()).unwrap();
    path
}

/// A createRuntime hook that sleeps `secs` (a shell with `marker` as its
/// $0, to be found on the host; `; true` keeps it from exec'ing sleep).
fn sleep_hook(secs: u32, marker: &str) -> Value {
    json!({"path": "/bin/sh", "args": ["sh", "-c", format!("sleep {secs}; true"), marker]})
}

/// Start `ctr run --rm --config SPEC ID` in the background and wait until
/// its createRuntime hook (found by `marker`) runs; returns the hook's pid.
fn start_slow(c: &Containerd, spec: &Path, id: &str, marker: &str) -> (Spawned, i32) {
    let run = c.ctr_spawn(&[
        "run",
        "--rm",
        "--runtime",
        RUNTIME,
        "--config",
        spec.to_str().unwrap(),
        id,
    ]);
    let mut hook = 0;
    let found = wait_until(Duration::from_secs(20), || {
        hook = host::pids_with_marker(marker)
            .into_iter()
            .next()
            .unwrap_or(0);
        hook != 0
    });
    assert!(
        found,
        "the createRuntime hook of {id} never ran: {}",
        c.log()
    );
    (run, hook)
}

fn shared_pid_namespace(v: Version) {
    let c = Containerd::start(v, "pidns");
    c.sleeper("pa");
    let pid = c.task_pid("pa");
    // Join the other container's pid namespace (a pod with
    // shareProcessNamespace): its sleep is visible.
    let ns = format!("pid:/proc/{pid}/ns/pid");
    let o = c.ctr(&run_args(&["--rm", "--with-ns", &ns], "pb", &["ps"]));
    o.exits_with(0);
    assert!(o.stdout.contains("sleep 1000"), "{o}");
    // The host's pid namespace (hostPID; this test's, as pid 1 may not be
    // readable on a VM): this test's process is visible.
    let me = std::process::id();
    let ns = format!("pid:/proc/{me}/ns/pid");
    let script = format!("test -d /proc/{me} && echo host-pid-ok");
    let o = c.ctr(&run_args(
        &["--rm", "--with-ns", &ns],
        "pc",
        &["sh", "-c", &script],
    ));
    o.exits_with(0);
    assert!(o.stdout.contains("host-pid-ok"), "{o}");
    // A long-running one, and an exec into it.
    let ns = format!("pid:/proc/{pid}/ns/pid");
    c.run(&["-d", "--with-ns", &ns], "pd", &["sh", "-c", "sleep 999"])
        .ok();
    c.wait_status("pd", "RUNNING");
    let o = c.ctr(&["tasks", "exec", "--exec-id", "e1", "pd", "ps"]);
    o.exits_with(0);
    assert!(
        o.stdout.contains("sleep 1000") && o.stdout.contains("sleep 999"),
        "{o}"
    );
    c.remove("pd");
    c.remove("pa");
    c.assert_clean();
}

/// Whether the executable behind `/proc/<pid>/exe` cannot be written: on a
/// read-only mount, or a memfd sealed against writes (CVE-2019-5736).
fn exe_sealed(pid: i32) -> Result<(), String> {
    let f = fs::File::open(format!("/proc/{pid}/exe"))
        .map_err(|e| format!("open /proc/{pid}/exe: {e}"))?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    let ro =
        unsafe { libc::fstatvfs(f.as_raw_fd(), &mut st) } == 0 && st.f_flag & libc::ST_RDONLY != 0;
    let seals = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GET_SEALS) };
    if ro || (seals >= 0 && seals & libc::F_SEAL_WRITE != 0) {
        return Ok(());
    }
    Err(format!(
        "/proc/{pid}/exe ({:?}) is writable from the host: neither a read-only mount nor a sealed memfd",
        fs::read_link(format!("/proc/{pid}/exe"))
    ))
}

fn slow_create_blocks_no_other_container(v: Version) {
    let c = Containerd::start(v, "slowcr");
    let group = "--annotation=io.containerd.runc.v2.group=g1";
    c.run(&["-d", group], "fast", &["sh", "-c", "sleep 1000"])
        .ok();
    c.wait_status("fast", "RUNNING");
    let marker = format!("slow-hook-{}", c.ns);
    let spec = spec_file(
        &c,
        "slow",
        &["sh", "-c", "echo slow-done"],
        Some("g1"),
        Some(sleep_hook(6, &marker)),
    );
    let (run, hook) = start_slow(&c, &spec, "slow", &marker);
    // While the hook sleeps, the other container of the same shim is served
    // (Exec and Start go through the launcher).
    c.ctr(&["tasks", "exec", "--exec-id", "e1", "fast", "true"])
        .exits_with(0);
    c.ctr(&["tasks", "pause", "fast"]).ok();
    c.ctr(&["tasks", "resume", "fast"]).ok();
    assert!(
        pid_alive(hook as i64),
        "the slow create's hook ended before the other container's RPCs were served"
    );
    // The launcher, its request child (the hook's parent) and the init it
    // cloned (before its execve) run from a sealed copy of the shim binary.
    // (Request children of the RPCs above may still be exiting: a process
    // gone meanwhile is skipped.)
    let cmdline = |p: i32| fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
    let launch: Vec<i32> = c
        .shim_pids()
        .into_iter()
        .filter(|p| cmdline(*p).ends_with(b"launch\0"))
        .collect();
    assert!(
        launch
            .iter()
            .any(|p| cmdline(ppid(*p)).ends_with(b"serve\0")),
        "no launcher (child of the server) among {launch:?}"
    );
    assert!(
        launch.contains(&ppid(hook)),
        "the hook's parent is not the launcher's child: {launch:?}"
    );
    for p in &launch {
        if let Err(e) = exe_sealed(*p) {
            assert!(!pid_alive(*p as i64), "{e}");
        }
    }
    // A killed launcher fails no call in flight (the request child replies
    // on its own socket) and is replaced for the next one.
    let launchers: Vec<i32> = launch
        .into_iter()
        .filter(|p| cmdline(ppid(*p)).ends_with(b"serve\0"))
        .collect();
    for p in launchers {
        host::kill9(p);
    }
    c.ctr(&["tasks", "exec", "--exec-id", "e2", "fast", "true"])
        .exits_with(0);
    let o = run.wait(Duration::from_secs(30));
    o.exits_with(0);
    assert!(o.stdout.contains("slow-done"), "{o}");
    c.remove("fast");
    c.ctr(&["containers", "rm", "slow"]);
    c.assert_clean();
}

fn request_child_killed(v: Version) {
    let c = Containerd::start(v, "reqkill");
    let group = "--annotation=io.containerd.runc.v2.group=g2";
    c.run(&["-d", group], "other", &["sh", "-c", "sleep 1000"])
        .ok();
    c.wait_status("other", "RUNNING");
    let marker = format!("stuck-hook-{}", c.ns);
    let spec = spec_file(
        &c,
        "stuck",
        &["true"],
        Some("g2"),
        Some(sleep_hook(60, &marker)),
    );
    let (run, hook) = start_slow(&c, &spec, "stuck", &marker);
    // The request child (berth's create, the hook's parent) dies without
    // replying: Create fails at once instead of hanging the shim.
    let child = ppid(hook);
    assert!(child > 1, "the hook {hook} has no parent");
    host::kill9(child);
    let o = run.wait(SHORT);
    host::kill9(hook);
    assert!(!o.success(), "{o}");
    assert!(o.stderr.contains("without replying"), "{o}");
    // The shim goes on serving the group's other container.
    c.ctr(&["tasks", "exec", "--exec-id", "e1", "other", "true"])
        .exits_with(0);
    c.remove("other");
    c.ctr(&["containers", "rm", "stuck"]);
    c.assert_clean();
}

fn create_without_rootfs(v: Version) {
    let c = Containerd::start(v, "norootfs");
    // --rootfs: a directory containerd does not manage, so the Create
    // request has no rootfs mounts.
    let rootfs = c.dir.join("own-rootfs");
    berth_integration::bundle::make_busybox_rootfs(&rootfs).unwrap();
    let o = c.ctr(&[
        "run",
        "--rm",
        "--runtime",
        RUNTIME,
        "--rootfs",
        rootfs.to_str().unwrap(),
        "nr",
        "sh",
        "-c",
        "echo rootfs-in-place",
    ]);
    o.exits_with(0);
    assert!(o.stdout.contains("rootfs-in-place"), "{o}");
    // The rootfs is left as it was (nothing mounted on it, nothing removed).
    assert!(rootfs.join("bin/busybox").is_file());
    c.assert_clean();
}

fn error_codes(v: Version) {
    let c = Containerd::start(v, "codes");
    c.sleeper("ec");
    let task = shim_client::connect(&c.shim_address("ec")).unwrap();
    let ctx = shim_client::ctx;
    // Not found: an unknown container.
    let mut req = api::PauseRequest::new();
    req.id = "nope".into();
    assert_eq!(
        shim_client::code(task.pause(ctx(), &req)).0,
        Code::NOT_FOUND
    );
    // Wrong state: resume a running container.
    let mut req = api::ResumeRequest::new();
    req.id = "ec".into();
    let (code, msg) = shim_client::code(task.resume(ctx(), &req));
    assert_eq!(code, Code::FAILED_PRECONDITION, "{msg}");
    // Invalid argument: a bad resources document.
    let mut req = api::UpdateTaskRequest::new();
    req.id = "ec".into();
    let mut any = containerd_shim_protos::protobuf::well_known_types::any::Any::new();
    any.type_url = "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources".into();
    any.value = br#"{"memory":{"limit":"lots"}}"#.to_vec();
    req.resources = MessageField::some(any);
    let (code, msg) = shim_client::code(task.update(ctx(), &req));
    assert_eq!(code, Code::INVALID_ARGUMENT, "{msg}");
    // Invalid argument: a bundle whose config.json is bad (no rootfs mounts).
    let bundle = c.dir.join("bad-bundle");
    fs::create_dir_all(bundle.join("rootfs")).unwrap();
    fs::write(
        bundle.join("config.json"),
        r#"{"ociVersion": "1.0.2", "process": {"args": 7}}"#,
    )
    .unwrap();
    let mut req = api::CreateTaskRequest::new();
    req.id = "bad".into();
    req.bundle = bundle.display().to_string();
    let (code, msg) = shim_client::code(task.create(ctx(), &req));
    assert_eq!(code, Code::INVALID_ARGUMENT, "{msg}");
    assert!(msg.contains("config.json"), "{msg}");
    // Unimplemented: restore from a checkpoint.
    let mut req = api::CreateTaskRequest::new();
    req.id = "restored".into();
    req.bundle = bundle.display().to_string();
    req.checkpoint = "/nonexistent/checkpoint".into();
    let (code, msg) = shim_client::code(task.create(ctx(), &req));
    assert_eq!(code, Code::UNIMPLEMENTED, "{msg}");
    // Already exists.
    let mut req = api::CreateTaskRequest::new();
    req.id = "ec".into();
    req.bundle = bundle.display().to_string();
    assert_eq!(
        shim_client::code(task.create(ctx(), &req)).0,
        Code::ALREADY_EXISTS
    );
    // Wrong state: an exec into a paused container.
    c.ctr(&["tasks", "pause", "ec"]).ok();
    let mut req = api::ExecProcessRequest::new();
    req.id = "ec".into();
    req.exec_id = "x".into();
    let mut any = containerd_shim_protos::protobuf::well_known_types::any::Any::new();
    any.value = br#"{"args": ["true"], "cwd": "/"}"#.to_vec();
    req.spec = MessageField::some(any);
    let (code, msg) = shim_client::code(task.exec(ctx(), &req));
    assert_eq!(code, Code::FAILED_PRECONDITION, "{msg}");
    c.ctr(&["tasks", "resume", "ec"]).ok();
    c.remove("ec");
    c.assert_clean();
}
