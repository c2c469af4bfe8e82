//! A private Docker 20.10 for the tests: our own containerd (own root,
//! state, socket and `opt` dir), and dockerd on a unix socket in the
//! session dir with its own data and exec roots, no bridge, no iptables,
//! no forwarding, containers under the session's cgroup parent, and the
//! runtime under test registered as `berth` in daemon.json. The busybox
//! image is `docker import`ed from a tarball.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use serde_json::json;

use super::{at_exit, busybox_tarball, clean_session_dir, runtime_under_test, unique_name, HostPaths, Session};
use super::{CLIENT_TIMEOUT, IMAGE};
use crate::harness::{wait_until, Output};

pub const DOCKER: &str = "/usr/bin/docker";
pub const DOCKERD: &str = "/usr/sbin/dockerd";
pub const CONTAINERD: &str = "/usr/bin/containerd";
pub const CTR: &str = "/usr/bin/ctr";

/// The name the runtime under test has in daemon.json.
pub const RUNTIME: &str = "berth";

pub struct Docker {
    pub session: Session,
    pub runtime: PathBuf,
    /// The containerd socket dockerd uses (for `ctr`).
    pub containerd_sock: PathBuf,
    envs: Vec<(String, String)>,
}

struct Daemons {
    containerd: Option<Child>,
    dockerd: Option<Child>,
}

static STARTED: OnceLock<Result<Docker, String>> = OnceLock::new();

static DAEMONS: Mutex<Daemons> = Mutex::new(Daemons { containerd: None, dockerd: None });

/// The shared Docker of this test binary, started on first use. Panics
/// (in every test that needs it) if it cannot start.
pub fn docker() -> &'static Docker {
    match STARTED.get_or_init(start) {
        Ok(d) => d,
        Err(e) => panic!("cannot start the test's Docker: {e}"),
    }
}

fn tail(path: &Path) -> String {
    let s = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

fn spawn_logged(prog: &str, args: &[String], log: &Path) -> Result<Child, String> {
    let f = fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let f2 = f.try_clone().map_err(|e| e.to_string())?;
    Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .stdout(f)
        .stderr(f2)
        .spawn()
        .map_err(|e| format!("cannot start {prog}: {e}"))
}

fn start() -> Result<Docker, String> {
    for bin in [DOCKER, DOCKERD, CONTAINERD, "/usr/bin/containerd-shim-runc-v2"] {
        if !Path::new(bin).is_file() {
            return Err(format!("{bin} is missing: install docker.io (scripts/setup-deps.sh)"));
        }
    }
    let runtime = runtime_under_test();
    let session = Session::new("docker").map_err(|e| format!("session dir: {e}"))?;
    // paths dockerd and the runc shim create on the host whatever they are told
    let host_paths = HostPaths::record(
        &session,
        &[
            ("/run/docker", false),
            ("/run/docker/plugins", false),
            ("/run/containerd", false),
            ("/run/containerd/s", false),
        ],
    )
    .map_err(|e| format!("session dir: {e}"))?;
    let dir = session.dir.clone();
    let cgroup_parent = session.cgroup_parent.clone();
    at_exit(move || teardown(&dir, &cgroup_parent, &host_paths));

    let d = |p: &str| session.path(p).display().to_string();
    let ctd_sock = d("containerd/containerd.sock");
    fs::create_dir_all(session.path("containerd")).map_err(|e| e.to_string())?;
    let toml = format!(
        r#"version = 2
root = "{root}"
state = "{state}"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "{ctd_sock}"
[debug]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{opt}"
[plugins."io.containerd.runtime.v1.linux"]
  runtime_root = "{v1root}"
"#,
        v1root = d("containerd/runc-v1"),
        root = d("containerd/root"),
        state = d("containerd/state"),
        opt = d("containerd/opt"),
    );
    fs::write(session.path("containerd.toml"), toml).map_err(|e| e.to_string())?;
    let containerd =
        spawn_logged(CONTAINERD, &["--config".into(), d("containerd.toml")], &session.path("containerd.log"))?;
    DAEMONS.lock().unwrap().containerd = Some(containerd);
    if !wait_until(Duration::from_secs(20), || Path::new(&ctd_sock).exists()) {
        return Err(format!("containerd did not listen on {ctd_sock}:\n{}", tail(&session.path("containerd.log"))));
    }

    let daemon_json = json!({
        "iptables": false,
        "ip-forward": false,
        "ip-masq": false,
        "bridge": "none",
        "cgroup-parent": session.cgroup_parent,
        "deprecated-key-path": d("key.json"),
        "storage-driver": "overlay2",
        "log-driver": "json-file",
        "runtimes": {RUNTIME: {"path": runtime}},
        // `docker info` reports the default runtime's `--version` commit.
        "default-runtime": RUNTIME
    });
    fs::write(session.path("daemon.json"), serde_json::to_vec_pretty(&daemon_json).unwrap())
        .map_err(|e| e.to_string())?;
    let sock = session.path("docker.sock");
    let args: Vec<String> = [
        "--config-file",
        &d("daemon.json"),
        "--containerd",
        &ctd_sock,
        "--data-root",
        &d("data"),
        "--exec-root",
        &d("exec"),
        "--pidfile",
        &d("docker.pid"),
        "--host",
        &format!("unix://{}", sock.display()),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let dockerd = spawn_logged(DOCKERD, &args, &session.path("dockerd.log"))?;
    DAEMONS.lock().unwrap().dockerd = Some(dockerd);

    let envs = vec![
        ("DOCKER_HOST".to_string(), format!("unix://{}", sock.display())),
        ("DOCKER_CONFIG".to_string(), d("client-config")),
    ];
    let docker = Docker { session, runtime, containerd_sock: PathBuf::from(&ctd_sock), envs };
    let mut last = None;
    if !wait_until(Duration::from_secs(60), || {
        let running = DAEMONS.lock().unwrap().dockerd.as_mut().is_some_and(|c| c.try_wait().ok().flatten().is_none());
        if !running {
            return true;
        }
        let out = docker.cli(&["version"]);
        let ok = out.success();
        last = Some(out);
        ok
    }) || !last.as_ref().is_some_and(|o| o.success())
    {
        return Err(format!("dockerd did not come up:\n{}", tail(&docker.session.path("dockerd.log"))));
    }
    let tar = busybox_tarball(&docker.session.dir).map_err(|e| format!("busybox tarball: {e}"))?;
    let out = docker.cli(&["import", "-c", r#"CMD ["sh"]"#, &tar.display().to_string(), IMAGE]);
    if !out.success() {
        return Err(format!("docker import failed:\n{out}"));
    }
    Ok(docker)
}

fn stop(child: Option<Child>, name: &str, grace: Duration) -> Option<String> {
    let mut c = child?;
    // SAFETY: signalling our own child.
    unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
    if wait_until(grace, || c.try_wait().ok().flatten().is_some()) {
        return None;
    }
    let _ = c.kill();
    let _ = c.wait();
    Some(format!("{name} did not stop within {grace:?} of SIGTERM (killed)"))
}

fn teardown(dir: &Path, cgroup_parent: &str, host_paths: &HostPaths) -> Vec<String> {
    let mut left = Vec::new();
    if let Some(Ok(d)) = STARTED.get() {
        // every test removes its containers, also when it fails
        let ids = d.cli(&["ps", "-aq"]).lines();
        if !ids.is_empty() {
            left.push(format!("containers left by the tests (now removed): {ids:?}"));
            let mut args = vec!["rm", "-f"];
            args.extend(ids.iter().map(String::as_str));
            let _ = d.cli(&args);
        }
    }
    let (containerd, dockerd) = {
        let mut g = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
        (g.containerd.take(), g.dockerd.take())
    };
    left.extend(stop(dockerd, "dockerd", Duration::from_secs(20)));
    left.extend(stop(containerd, "containerd", Duration::from_secs(10)));
    left.extend(clean_session_dir(dir, cgroup_parent));
    left.extend(host_paths.remove());
    left
}

impl Docker {
    /// `docker ARGS...` against this daemon.
    pub fn cli(&self, args: &[&str]) -> Output {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        self.session.run(Path::new(DOCKER), &args, &self.envs, CLIENT_TIMEOUT)
    }

    /// `ctr --address SOCK --namespace berth-ctr ARGS...` against the
    /// containerd under this dockerd (its own namespace).
    pub fn ctr(&self, args: &[&str]) -> Output {
        let mut a: Vec<String> = vec![
            "--address".into(),
            self.containerd_sock.display().to_string(),
            "--namespace".into(),
            "berth-ctr".into(),
        ];
        a.extend(args.iter().map(|s| s.to_string()));
        self.session.run(Path::new(CTR), &a, &[], CLIENT_TIMEOUT)
    }

    /// The environment that points the docker CLI at this daemon.
    pub fn envs(&self) -> &[(String, String)] {
        &self.envs
    }

    /// `docker run --rm --runtime berth --name N OPTS... IMAGE CMD...`;
    /// the caller checks the status.
    pub fn run(&self, opts: &[&str], cmd: &[&str]) -> Output {
        let name = unique_name(&super::test_name());
        // removes the container only if the command panics (times out)
        let guard = Ctr { docker: self, name: name.clone() };
        let mut args = vec!["run", "--rm", "--runtime", RUNTIME, "--name", &name];
        args.extend_from_slice(opts);
        args.push(IMAGE);
        args.extend_from_slice(cmd);
        let out = self.cli(&args);
        std::mem::forget(guard); // --rm: dockerd removes it
        out
    }

    /// As [`run`](Self::run), asserting exit 0; returns stdout.
    #[track_caller]
    pub fn run_ok(&self, opts: &[&str], cmd: &[&str]) -> String {
        self.run(opts, cmd).ok().stdout
    }

    /// `docker run -d --runtime berth --name N OPTS... IMAGE CMD...`; the
    /// container is removed when the guard drops.
    #[track_caller]
    pub fn start(&self, opts: &[&str], cmd: &[&str]) -> Ctr<'_> {
        let name = unique_name(&super::test_name());
        let c = Ctr { docker: self, name: name.clone() };
        let mut args = vec!["run", "-d", "--runtime", RUNTIME, "--name", &name];
        args.extend_from_slice(opts);
        args.push(IMAGE);
        args.extend_from_slice(cmd);
        self.cli(&args).ok();
        c
    }
}

/// A container by name; `docker rm -f` on drop.
pub struct Ctr<'a> {
    pub docker: &'a Docker,
    pub name: String,
}

impl Ctr<'_> {
    /// `docker inspect -f FORMAT NAME`, trimmed.
    #[track_caller]
    pub fn inspect(&self, format: &str) -> String {
        self.docker.cli(&["inspect", "-f", format, &self.name]).ok().stdout.trim().to_string()
    }

    /// The host pid of the container's init.
    #[track_caller]
    pub fn pid(&self) -> i64 {
        let p = self.inspect("{{.State.Pid}}");
        p.parse().ok().filter(|p| *p > 0).unwrap_or_else(|| panic!("container {} has no pid ({p:?})", self.name))
    }

    /// `docker logs NAME` (stdout, stderr).
    #[track_caller]
    pub fn logs(&self) -> Output {
        self.docker.cli(&["logs", &self.name]).ok()
    }

    /// Poll `docker logs` until stdout holds `needle`.
    #[track_caller]
    pub fn wait_log(&self, needle: &str) -> String {
        let mut last = String::new();
        if wait_until(Duration::from_secs(20), || {
            last = self.docker.cli(&["logs", &self.name]).stdout;
            last.contains(needle)
        }) {
            return last;
        }
        panic!("{needle:?} never showed in the logs of {}: {last:?}", self.name);
    }
}

impl Drop for Ctr<'_> {
    fn drop(&mut self) {
        let out = self.docker.cli(&["rm", "-f", &self.name]);
        let gone = out.success() || out.stderr.to_lowercase().contains("no such container");
        if !gone && !std::thread::panicking() {
            panic!("removing container {} failed:\n{out}", self.name);
        }
    }
}
