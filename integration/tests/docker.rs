//! berth under Docker 20.10: `docker run --runtime berth` (daemon.json
//! `runtimes`), driven through dockerd, containerd and containerd's runc
//! shim. One private dockerd for the whole file (see `clients::docker`).
//! `BERTH_CLIENT_RUNTIME=/usr/sbin/runc` runs the same scenarios on runc.
//! Scenarios whose runtime feature is missing are skipped with the reason.

use berth_integration::clients::docker::{docker, Ctr, RUNTIME};
use berth_integration::clients::probe::{require, Feature};
use berth_integration::clients::tty::PtyRun;
use berth_integration::clients::{cap_mask, cgroup_value, runtime_under_test, unique_name, IMAGE};
use berth_integration::prelude::*;

const CAP_NET_RAW: u32 = 13;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_SYS_RESOURCE: u32 = 24;
const CAP_SYS_TIME: u32 = 25;

/// Runs until stopped; TERM ends it at once.
const SLEEPER: &str = "trap 'exit 0' TERM; while :; do sleep 0.1; done";

#[test]
fn echo() {
    let out = docker().run_ok(&[], &["echo", "hello from", "the runtime"]);
    assert_eq!(out, "hello from the runtime\n");
}

#[test]
fn exit_code() {
    docker().run(&[], &["sh", "-c", "exit 42"]).exits_with(42);
}

#[test]
fn interactive_tty() {
    if !require(&[Feature::Terminal]) {
        return;
    }
    let d = docker();
    let name = unique_name("tty");
    let _guard = Ctr { docker: d, name: name.clone() };
    let args: Vec<String> = ["run", "-it", "--rm", "--runtime", RUNTIME, "--name", &name, IMAGE, "sh", "-c"]
        .iter()
        .map(|s| s.to_string())
        .chain(["tty; read line; echo \"got:$line\"; exit 3".to_string()])
        .collect();
    let mut t = PtyRun::start(Path::new(berth_integration::clients::docker::DOCKER), &args, d.envs());
    t.expect("/dev/pts/", Duration::from_secs(30));
    t.send("hello\r");
    t.expect("got:hello", Duration::from_secs(10));
    let (status, text) = t.wait(Duration::from_secs(30));
    assert_eq!(status.code(), Some(3), "docker run -it exit status; terminal output: {text:?}");
}

#[test]
fn exec() {
    if !require(&[Feature::Exec]) {
        return;
    }
    let d = docker();
    let c = d.start(&["--hostname", "exec-box"], &["sh", "-c", SLEEPER]);
    let out = d.cli(&["exec", &c.name, "sh", "-c", "echo exec:$(hostname)"]).ok();
    assert_eq!(out.stdout, "exec:exec-box\n");
    let out = d
        .cli(&["exec", "-e", "FOO=bar", "-u", "500", "-w", "/tmp", &c.name, "sh", "-c", "echo $FOO $(id -u) $(pwd)"])
        .ok();
    assert_eq!(out.stdout, "bar 500 /tmp\n");
    d.cli(&["exec", &c.name, "sh", "-c", "exit 7"]).exits_with(7);
}

#[test]
fn logs() {
    let d = docker();
    let c = d.start(&[], &["sh", "-c", "echo to-stdout; echo to-stderr >&2"]);
    let code = d.cli(&["wait", &c.name]).ok();
    assert_eq!(code.stdout.trim(), "0");
    let out = c.logs();
    assert_eq!(out.stdout, "to-stdout\n", "{out}");
    assert_eq!(out.stderr, "to-stderr\n", "{out}");
}

#[test]
fn top() {
    if !require(&[Feature::Ps]) {
        return;
    }
    let d = docker();
    let c = d.start(&[], &["sh", "-c", SLEEPER, "top-marker"]);
    let pid = c.pid();
    let out = d.cli(&["top", &c.name]).ok();
    assert!(out.stdout.lines().next().unwrap_or("").contains("PID"), "{out}");
    let row =
        out.lines().into_iter().find(|l| l.contains("top-marker")).unwrap_or_else(|| panic!("no init row:\n{out}"));
    assert!(row.split_whitespace().any(|f| f == pid.to_string()), "init's pid {pid} not in {row:?}");
}

#[test]
fn stats_no_stream() {
    let d = docker();
    let c = d.start(&[], &["sh", "-c", SLEEPER]);
    let out = d.cli(&["stats", "--no-stream", "--format", "{{.PIDs}} {{.MemUsage}}", &c.name]).ok();
    let line = out.stdout.trim();
    let pids: u32 = line.split_whitespace().next().and_then(|p| p.parse().ok()).unwrap_or(0);
    assert!(pids >= 1, "no pids in docker stats: {line:?}");
    assert!(!line.contains(" 0B /"), "no memory usage in docker stats: {line:?}");
}

#[test]
fn pause_unpause() {
    if !require(&[Feature::Pause]) {
        return;
    }
    let d = docker();
    let c = d.start(&[], &["sh", "-c", SLEEPER]);
    let pid = c.pid();
    d.cli(&["pause", &c.name]).ok();
    assert_eq!(c.inspect("{{.State.Status}}"), "paused");
    assert_eq!(cgroup_value(pid, "freezer", "freezer.state"), "FROZEN");
    d.cli(&["unpause", &c.name]).ok();
    assert_eq!(c.inspect("{{.State.Status}}"), "running");
    assert_eq!(cgroup_value(pid, "freezer", "freezer.state"), "THAWED");
}

#[test]
fn update_memory() {
    if !require(&[Feature::Update]) {
        return;
    }
    let d = docker();
    let c = d.start(&[], &["sh", "-c", SLEEPER]);
    d.cli(&["update", "--memory", "96m", "--memory-swap", "192m", &c.name]).ok();
    assert_eq!(cgroup_value(c.pid(), "memory", "memory.limit_in_bytes"), (96u64 << 20).to_string());
}

#[test]
fn kill_usr1() {
    let d = docker();
    let c = d.start(&[], &["sh", "-c", "trap 'echo got-usr1' USR1; echo ready; while :; do sleep 0.1; done"]);
    c.wait_log("ready");
    d.cli(&["kill", "-s", "USR1", &c.name]).ok();
    c.wait_log("got-usr1");
    assert_eq!(c.inspect("{{.State.Status}}"), "running", "USR1 is trapped, the container goes on");
}

#[test]
fn wait() {
    let d = docker();
    let c = d.start(&[], &["sh", "-c", "sleep 0.3; exit 7"]);
    let out = d.cli(&["wait", &c.name]).ok();
    assert_eq!(out.stdout.trim(), "7");
}

#[test]
fn memory_limit() {
    if !require(&[Feature::MemoryLimit]) {
        return;
    }
    let d = docker();
    let c = d.start(&["--memory", "64m"], &["sh", "-c", SLEEPER]);
    assert_eq!(cgroup_value(c.pid(), "memory", "memory.limit_in_bytes"), (64u64 << 20).to_string());
}

#[test]
fn cpus_limit() {
    if !require(&[Feature::CpuQuota]) {
        return;
    }
    let d = docker();
    let c = d.start(&["--cpus", "0.5"], &["sh", "-c", SLEEPER]);
    let pid = c.pid();
    assert_eq!(cgroup_value(pid, "cpu", "cpu.cfs_period_us"), "100000");
    assert_eq!(cgroup_value(pid, "cpu", "cpu.cfs_quota_us"), "50000");
}

#[test]
fn pids_limit() {
    if !require(&[Feature::PidsLimit]) {
        return;
    }
    let d = docker();
    let c = d.start(&["--pids-limit", "50"], &["sh", "-c", SLEEPER]);
    assert_eq!(cgroup_value(c.pid(), "pids", "pids.max"), "50");
}

#[test]
fn read_only() {
    let out = docker()
        .run_ok(&["--read-only"], &["sh", "-c", "touch /probe 2>&1; echo rc=$?; touch /tmp/probe 2>&1; echo rc=$?"]);
    assert!(out.contains("Read-only file system"), "{out}");
    assert!(!out.contains("rc=0"), "{out}");
}

#[test]
fn user_500() {
    let out = docker().run_ok(&["-u", "500"], &["sh", "-c", "id -u; id -g"]);
    assert_eq!(out, "500\n0\n");
}

#[test]
fn bind_volume() {
    let d = docker();
    let host_dir = d.session.path(&unique_name("bind"));
    fs::create_dir_all(&host_dir).unwrap();
    fs::write(host_dir.join("in.txt"), "from-host\n").unwrap();
    let vol = format!("{}:/data", host_dir.display());
    let out = d.run_ok(&["-v", &vol], &["sh", "-c", "cat /data/in.txt; echo from-container > /data/out.txt"]);
    assert_eq!(out, "from-host\n");
    assert_eq!(fs::read_to_string(host_dir.join("out.txt")).unwrap(), "from-container\n");
}

#[test]
fn tmpfs() {
    let out = docker().run_ok(
        &["--tmpfs", "/scratch:size=1m"],
        &["sh", "-c", "grep ' /scratch ' /proc/mounts; echo data > /scratch/f && cat /scratch/f"],
    );
    let first = out.lines().next().unwrap_or("");
    assert!(first.starts_with("tmpfs /scratch tmpfs ") && first.contains("size=1024k"), "{out}");
    assert!(out.ends_with("data\n"), "{out}");
}

#[test]
fn hostname() {
    assert_eq!(docker().run_ok(&["--hostname", "box-7"], &["hostname"]), "box-7\n");
}

#[test]
fn cap_drop_and_add() {
    let d = docker();
    let status = "grep -E '^Cap(Eff|Bnd):' /proc/self/status";
    let default = d.run_ok(&[], &["sh", "-c", status]);
    assert_ne!(cap_mask(&default, "CapEff:") & (1 << CAP_NET_RAW), 0, "docker's default set has NET_RAW:\n{default}");
    assert_eq!(cap_mask(&default, "CapEff:") & (1 << CAP_SYS_TIME), 0, "{default}");
    let out = d.run_ok(&["--cap-drop", "NET_RAW", "--cap-add", "SYS_TIME"], &["sh", "-c", status]);
    for field in ["CapEff:", "CapBnd:"] {
        let m = cap_mask(&out, field);
        assert_eq!(m & (1 << CAP_NET_RAW), 0, "NET_RAW not dropped from {field}\n{out}");
        assert_ne!(m & (1 << CAP_SYS_TIME), 0, "SYS_TIME not added to {field}\n{out}");
    }
}

#[test]
fn seccomp_deny_mkdir() {
    if !require(&[Feature::Seccomp]) {
        return;
    }
    let d = docker();
    let dir = d.session.path("seccomp-profiles");
    fs::create_dir_all(&dir).unwrap();
    let profile = dir.join("deny-mkdir.json");
    let rule = json!({"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1});
    fs::write(&profile, json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule]}).to_string()).unwrap();
    let script = "mkdir /tmp/d 2>&1; echo rc=$?";
    let opt = format!("seccomp={}", profile.display());
    let out = d.run_ok(&["--security-opt", &opt], &["sh", "-c", script]);
    assert!(out.contains("Operation not permitted") && out.contains("rc=1"), "{out}");
    assert_eq!(d.run_ok(&[], &["sh", "-c", script]), "rc=0\n", "mkdir works without the profile");
}

#[test]
fn pid_container() {
    let d = docker();
    let other = d.start(&[], &["sh", "-c", SLEEPER, "pid-marker"]);
    let want = ns_link(&other.pid().to_string(), "pid");
    let pid_opt = format!("container:{}", other.name);
    let out = d.run_ok(&["--pid", &pid_opt], &["sh", "-c", "readlink /proc/self/ns/pid; ps"]);
    assert_eq!(out.lines().next(), Some(want.as_str()), "{out}");
    assert!(out.contains("pid-marker"), "the other container's init is not visible:\n{out}");
}

#[test]
fn net_host() {
    let want = ns_link("self", "net");
    let out = docker().run_ok(&["--net", "host"], &["readlink", "/proc/self/ns/net"]);
    assert_eq!(out.trim(), want);
}

#[test]
fn ulimit() {
    let out = docker().run_ok(&["--ulimit", "nofile=512:1024"], &["sh", "-c", "ulimit -Sn; ulimit -Hn"]);
    assert_eq!(out, "512\n1024\n");
}

#[test]
fn init() {
    let out = docker().run_ok(&["--init"], &["sh", "-c", "tr '\\0' ' ' < /proc/1/cmdline; echo; echo $$"]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines.first().is_some_and(|l| l.contains("docker-init")), "pid 1 is not docker-init:\n{out}");
    assert_ne!(lines.get(1), Some(&"1"), "the command must not be pid 1:\n{out}");
}

#[test]
fn privileged() {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let bounding = cap_mask(&status, "CapBnd:");
    if bounding & (1 << CAP_SYS_RESOURCE) == 0 {
        skip(
            HOST,
            "this VM's capability bounding set lacks CAP_SYS_RESOURCE, which --privileged grants, \
             so `docker run --privileged` fails with runc 1.1.5 as well (runc create: \
             \"unable to apply caps: operation not permitted\")",
        );
        return;
    }
    let out = docker().run_ok(&["--privileged"], &["grep", "^CapEff:", "/proc/self/status"]);
    let eff = cap_mask(&out, "CapEff:");
    for cap in [CAP_SYS_ADMIN, CAP_SYS_RESOURCE, CAP_NET_RAW, CAP_SYS_TIME] {
        assert_ne!(eff & (1 << cap), 0, "capability {cap} missing under --privileged: {out}");
    }
}

#[test]
fn runtime_error_reaches_client() {
    // the runc shim reads the runtime's --log (JSON lines) and hands the
    // last error to dockerd, which maps "no such file" to status 127
    let out = docker().run(&[], &["/no/such/cmd"]);
    out.exits_with(127);
    assert!(out.stderr.contains("/no/such/cmd"), "{out}");
}

#[test]
fn containerd_runc_shim_binary_name() {
    // containerd's own runc shim with the runtime as its BinaryName (what
    // `ctr run --runc-binary` and the CRI runtime options set)
    let d = docker();
    let id = unique_name("ctr");
    let rootfs = d.session.path(&format!("{id}-rootfs"));
    berth_integration::bundle::make_busybox_rootfs(&rootfs).unwrap();
    let runc_root = d.session.path("ctr-runc-root").display().to_string();
    let fifo_dir = d.session.path("ctr-fifo").display().to_string();
    let cgroup = format!("{}/{id}", d.session.cgroup_parent);
    let rt = d.runtime.display().to_string();
    let out = d.ctr(&[
        "run",
        "--rm",
        "--rootfs",
        "--fifo-dir",
        &fifo_dir,
        "--runc-binary",
        &rt,
        "--runc-root",
        &runc_root,
        "--cgroup",
        &cgroup,
        &rootfs.display().to_string(),
        &id,
        "/bin/sh",
        "-c",
        "echo hello from ctr; exit 9",
    ]);
    out.exits_with(9);
    assert_eq!(out.stdout, "hello from ctr\n", "{out}");
    let left = d.ctr(&["containers", "list", "-q"]).ok();
    assert!(!left.stdout.contains(&id), "ctr run --rm left the container:\n{left}");
}

#[test]
fn stop_escalates_to_kill() {
    // sleep as pid 1 has no TERM handler: the kernel drops TERM for a
    // pid-namespace init, so docker stop must fall back to SIGKILL
    let d = docker();
    let c = d.start(&[], &["sleep", "1000"]);
    d.cli(&["stop", "-t", "1", &c.name]).ok();
    assert_eq!(c.inspect("{{.State.Status}} {{.State.ExitCode}}"), "exited 137");
}

#[test]
fn info_shows_the_runtime_commit() {
    // dockerd parses the default runtime's `--version` ("commit:" line)
    let want = std::process::Command::new(runtime_under_test()).arg("--version").output().expect("runtime --version");
    let want = String::from_utf8_lossy(&want.stdout).lines().find_map(|l| l.strip_prefix("commit:").map(|c| c.trim().to_string()));
    let want = want.unwrap_or_else(|| panic!("{} --version prints no commit: line", runtime_under_test().display()));
    let out = docker().cli(&["info", "--format", "{{.DefaultRuntime}} {{.RuncCommit.ID}}"]).ok();
    assert_eq!(out.stdout.trim(), format!("{RUNTIME} {want}"), "{out}");
}
