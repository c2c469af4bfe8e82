//! A private Podman 4.3 for the tests: storage (`--root`, `--runroot`),
//! `--tmpdir`, events log, file locks and network config all in the
//! session dir, `containers.conf` with default ulimits this VM allows,
//! cgroupfs, and containers in the session's cgroup parent with
//! `--network none`. The runtime under test is given as `--runtime PATH`;
//! conmon calls it without `--root` (podman 4.3 passes no runtime flags
//! to `delete`), so it keeps its state in its default root.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use super::{at_exit, busybox_tarball, clean_session_dir, runtime_under_test, unique_name, HostPaths, Session};
use super::{CLIENT_TIMEOUT, IMAGE};
use crate::harness::{wait_until, Output};

pub const PODMAN: &str = "/usr/bin/podman";
pub const CONMON: &str = "/usr/bin/conmon";

pub struct Podman {
    pub session: Session,
    pub runtime: PathBuf,
    global: Vec<String>,
    envs: Vec<(String, String)>,
}

static STARTED: OnceLock<Result<Podman, String>> = OnceLock::new();

/// The shared Podman set-up of this test binary, made on first use.
pub fn podman() -> &'static Podman {
    match STARTED.get_or_init(start) {
        Ok(p) => p,
        Err(e) => panic!("cannot set up the test's Podman: {e}"),
    }
}

fn start() -> Result<Podman, String> {
    for bin in [PODMAN, CONMON] {
        if !Path::new(bin).is_file() {
            return Err(format!("{bin} is missing: install podman (scripts/setup-deps.sh)"));
        }
    }
    let runtime = runtime_under_test();
    let session = Session::new("podman").map_err(|e| format!("session dir: {e}"))?;
    // containers/image keeps its blob info cache there for root, whatever
    // the storage root is
    let host_paths =
        HostPaths::record(&session, &[("/var/lib/containers", true)]).map_err(|e| format!("session dir: {e}"))?;
    let dir = session.dir.clone();
    let cgroup_parent = session.cgroup_parent.clone();
    at_exit(move || teardown(&dir, &cgroup_parent, &host_paths));

    let d = |p: &str| session.path(p).display().to_string();
    let name = super::runtime_name();
    let conf = format!(
        r#"[containers]
# podman's default raises nofile and nproc to 1048576, above this VM's hard
# limits (no CAP_SYS_RESOURCE in the bounding set)
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
netns = "none"
log_driver = "k8s-file"

[network]
network_config_dir = "{net}"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{events}"
tmp_dir = "{tmp}"
lock_type = "file"
runtime_supports_json = ["crun", "runc", "{name}"]
"#,
        net = d("net"),
        events = d("events.log"),
        tmp = d("tmp"),
    );
    // the runtime is also known by name, so that any later command can
    // handle a container made by `runtime_from_containers_conf`
    let runtimes = format!("\n[engine.runtimes]\n{name} = [\"{}\"]\n", runtime.display());
    fs::write(session.path("containers.conf"), format!("{conf}{runtimes}")).map_err(|e| e.to_string())?;
    fs::write(session.path("containers-runtime.conf"), format!("{conf}runtime = \"{name}\"\n{runtimes}"))
        .map_err(|e| e.to_string())?;
    let storage =
        format!("[storage]\ndriver = \"overlay\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n", d("storage"), d("runroot"));
    fs::write(session.path("storage.conf"), storage).map_err(|e| e.to_string())?;
    fs::write(session.path("registries.conf"), "unqualified-search-registries = []\n").map_err(|e| e.to_string())?;
    let envs = vec![
        ("CONTAINERS_CONF".to_string(), d("containers.conf")),
        ("CONTAINERS_STORAGE_CONF".to_string(), d("storage.conf")),
        ("CONTAINERS_REGISTRIES_CONF".to_string(), d("registries.conf")),
    ];
    let global: Vec<String> = [
        "--root",
        &d("storage"),
        "--runroot",
        &d("runroot"),
        "--tmpdir",
        &d("tmp"),
        "--storage-driver",
        "overlay",
        "--cgroup-manager",
        "cgroupfs",
        "--events-backend",
        "file",
        "--runtime",
        &runtime.display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let p = Podman { session, runtime, global, envs };
    let tar = busybox_tarball(&p.session.dir).map_err(|e| format!("busybox tarball: {e}"))?;
    let out = p.cli(&["import", "--change", r#"CMD ["sh"]"#, &tar.display().to_string(), IMAGE]);
    if !out.success() {
        return Err(format!("podman import failed:\n{out}"));
    }
    Ok(p)
}

fn teardown(dir: &Path, cgroup_parent: &str, host_paths: &HostPaths) -> Vec<String> {
    let mut left = Vec::new();
    if let Some(Ok(p)) = STARTED.get() {
        // every test removes its containers, also when it fails
        let ids = p.cli(&["ps", "-aq"]).lines();
        if !ids.is_empty() {
            left.push(format!("containers left by the tests (now removed): {ids:?}"));
            let out = p.cli(&["rm", "-a", "-f"]);
            if !out.success() {
                left.push(format!("podman rm -a -f failed:\n{out}"));
            }
        }
        // conmon's exit commands (podman container cleanup) may still run
        let needle = format!("{}/", dir.display());
        wait_until(Duration::from_secs(10), || crate::host::pids_with_marker(&needle).is_empty());
    }
    left.extend(clean_session_dir(dir, cgroup_parent));
    left.extend(host_paths.remove());
    left
}

impl Podman {
    /// `podman GLOBAL... ARGS...` with this set-up.
    pub fn cli(&self, args: &[&str]) -> Output {
        let mut a = self.global.clone();
        a.extend(args.iter().map(|s| s.to_string()));
        self.session.run(Path::new(PODMAN), &a, &self.envs, CLIENT_TIMEOUT)
    }

    /// `podman ARGS...` without `--runtime`: the runtime comes from a
    /// containers.conf that names it in `[engine] runtime` and
    /// `[engine.runtimes]` (as the README shows).
    pub fn cli_runtime_from_conf(&self, args: &[&str]) -> Output {
        let mut envs = self.envs.clone();
        envs[0].1 = self.session.path("containers-runtime.conf").display().to_string();
        let i = self.global.iter().position(|a| a == "--runtime").expect("--runtime in global flags");
        let mut a = self.global.clone();
        a.drain(i..i + 2);
        a.extend(args.iter().map(|s| s.to_string()));
        self.session.run(Path::new(PODMAN), &a, &envs, CLIENT_TIMEOUT)
    }

    /// The full command line (program and arguments) of `podman ARGS...`,
    /// and its environment, for running it another way (on a pty).
    pub fn command(&self, args: &[&str]) -> (PathBuf, Vec<String>, Vec<(String, String)>) {
        let mut a = self.global.clone();
        a.extend(args.iter().map(|s| s.to_string()));
        (PathBuf::from(PODMAN), a, self.envs.clone())
    }

    /// Options every container gets: the session's cgroup parent, no network.
    pub fn container_opts(&self) -> Vec<String> {
        vec!["--cgroup-parent".into(), self.session.cgroup_parent.clone(), "--network".into(), "none".into()]
    }

    /// `podman run --rm OPTS... IMAGE CMD...`; the caller checks the status.
    pub fn run(&self, opts: &[&str], cmd: &[&str]) -> Output {
        let name = unique_name(&super::test_name());
        let guard = Ctr { podman: self, name: name.clone() };
        let base = self.container_opts();
        let mut args: Vec<&str> = vec!["run", "--rm", "--name", &name];
        args.extend(base.iter().map(String::as_str));
        args.extend_from_slice(opts);
        args.push(IMAGE);
        args.extend_from_slice(cmd);
        let out = self.cli(&args);
        std::mem::forget(guard); // --rm removed it
        out
    }

    /// `podman run -d OPTS... IMAGE CMD...`; removed when the guard drops.
    #[track_caller]
    pub fn start(&self, opts: &[&str], cmd: &[&str]) -> Ctr<'_> {
        let name = unique_name(&super::test_name());
        let c = Ctr { podman: self, name: name.clone() };
        let base = self.container_opts();
        let mut args: Vec<&str> = vec!["run", "-d", "--name", &name];
        args.extend(base.iter().map(String::as_str));
        args.extend_from_slice(opts);
        args.push(IMAGE);
        args.extend_from_slice(cmd);
        self.cli(&args).ok();
        c
    }
}

/// A container by name; `podman rm -f` on drop.
pub struct Ctr<'a> {
    pub podman: &'a Podman,
    pub name: String,
}

impl Ctr<'_> {
    /// `podman inspect -f FORMAT NAME`, trimmed.
    #[track_caller]
    pub fn inspect(&self, format: &str) -> String {
        self.podman.cli(&["inspect", "-f", format, &self.name]).ok().stdout.trim().to_string()
    }

    /// The container's full id.
    #[track_caller]
    pub fn id(&self) -> String {
        self.inspect("{{.Id}}")
    }

    /// Poll `podman logs` until stdout holds `needle`.
    #[track_caller]
    pub fn wait_log(&self, needle: &str) -> String {
        let mut last = String::new();
        if wait_until(Duration::from_secs(20), || {
            last = self.podman.cli(&["logs", &self.name]).stdout;
            last.contains(needle)
        }) {
            return last;
        }
        panic!("{needle:?} never showed in the logs of {}: {last:?}", self.name);
    }
}

impl Drop for Ctr<'_> {
    fn drop(&mut self) {
        let out = self.podman.cli(&["rm", "-f", &self.name]);
        let gone = out.success() || out.stderr.to_lowercase().contains("no such container");
        if !gone && !std::thread::panicking() {
            panic!("removing container {} failed:\n{out}", self.name);
        }
    }
}
