//! Running one runtime binary: timed invocations (wall time and the
//! runtime process's peak RSS from `wait4`), and the cleanup of every
//! container it may have left behind.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Catch SIGINT, SIGTERM and SIGHUP so that the benchmark stops after the
/// current command and still cleans up (the release profile aborts on
/// panic, so cleanup must happen on ordinary error returns).
pub fn install_signal_handlers() {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

pub fn check_interrupted() -> Result<(), String> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        Err("interrupted".into())
    } else {
        Ok(())
    }
}

/// One timed invocation of a runtime.
#[derive(Debug, Clone, Copy)]
pub struct Timed {
    pub wall: Duration,
    /// `ru_maxrss` of the runtime process as reported by `wait4`, in KiB.
    pub maxrss_kib: i64,
}

/// Where a runtime puts its containers' cgroups (the bundle's
/// `linux.cgroupsPath`, written before each create or run).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Placement {
    /// No cgroupsPath: the runtime's default.
    Default,
    /// `/berth-bench/ID`, cgroupfs.
    Cgroupfs,
    /// `--systemd-cgroup` and `system.slice:berth-bench-NAME:ID`: a
    /// transient scope `berth-bench-NAME-ID.scope` in system.slice.
    Systemd,
}

impl Placement {
    pub fn describe(self) -> &'static str {
        match self {
            Placement::Default => "runtime's default cgroup",
            Placement::Cgroupfs => "cgroupfs, cgroupsPath /berth-bench/ID",
            Placement::Systemd => "--systemd-cgroup, cgroupsPath system.slice:berth-bench-NAME:ID",
        }
    }
}

/// A runtime binary with its own private `--root`.
pub struct Runtime {
    pub name: String,
    pub path: PathBuf,
    pub root: PathBuf,
    pub placement: Placement,
    /// Where the runtime's stderr goes, shown if it fails.
    errlog: PathBuf,
    /// Containers that may exist (created and not yet seen deleted).
    live: BTreeSet<String>,
    /// Rootless: the user the runtime runs as.
    user: Option<RunAs>,
}

/// A user to run a runtime as (the rootless row): ids and environment.
#[derive(Debug, Clone)]
pub struct RunAs {
    pub uid: u32,
    pub gid: u32,
    pub env: Vec<(String, String)>,
}

impl Runtime {
    /// `workdir` is the benchmark's private temp dir; the runtime's root and
    /// stderr log are made inside it.
    pub fn new(name: &str, path: PathBuf, workdir: &Path, placement: Placement) -> Result<Runtime, String> {
        let root = workdir.join(format!("root-{name}"));
        fs::create_dir_all(&root).map_err(|e| format!("mkdir {}: {e}", root.display()))?;
        Ok(Runtime {
            name: name.to_string(),
            path,
            root,
            placement,
            errlog: workdir.join(format!("{name}.stderr")),
            live: BTreeSet::new(),
            user: None,
        })
    }

    /// Run every command of this runtime as `user` (its root becomes the
    /// user's).
    pub fn run_as(&mut self, user: RunAs) -> Result<(), String> {
        std::os::unix::fs::chown(&self.root, Some(user.uid), Some(user.gid))
            .map_err(|e| format!("chown {}: {e}", self.root.display()))?;
        self.user = Some(user);
        Ok(())
    }

    /// First line of `--version`, if the runtime has one.
    pub fn version(&self) -> Option<String> {
        let out = Command::new(&self.path).arg("--version").stdin(Stdio::null()).output().ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines().next().map(|l| l.trim().to_string()).filter(|l| !l.is_empty())
    }

    /// Set the bundle's `linux.cgroupsPath` for container `id` as the
    /// placement says (untimed; nothing for `Placement::Default`).
    fn place(&self, bundle: &Path, id: &str) -> Result<(), String> {
        let path = match self.placement {
            Placement::Default => return Ok(()),
            Placement::Cgroupfs => format!("/berth-bench/{id}"),
            Placement::Systemd => format!("system.slice:berth-bench-{}:{id}", self.name),
        };
        let file = bundle.join("config.json");
        let text = fs::read(&file).map_err(|e| format!("read {}: {e}", file.display()))?;
        let mut v: serde_json::Value =
            serde_json::from_slice(&text).map_err(|e| format!("{}: invalid JSON: {e}", file.display()))?;
        v["linux"]["cgroupsPath"] = serde_json::Value::String(path);
        let text = serde_json::to_vec_pretty(&v).map_err(|e| e.to_string())?;
        fs::write(&file, text).map_err(|e| format!("write {}: {e}", file.display()))
    }

    /// `run -b BUNDLE ID`; the runtime deletes the container when it exits.
    pub fn run(&mut self, bundle: &Path, id: &str) -> Result<Timed, String> {
        self.place(bundle, id)?;
        self.live.insert(id.to_string());
        let t = self.timed(&["run", "-b", path_str(bundle)?, id])?;
        self.live.remove(id);
        Ok(t)
    }

    pub fn create(&mut self, bundle: &Path, id: &str) -> Result<Timed, String> {
        self.place(bundle, id)?;
        self.live.insert(id.to_string());
        self.timed(&["create", "-b", path_str(bundle)?, id])
    }

    /// `exec ID ARGS...` in a running container.
    pub fn exec(&mut self, id: &str, args: &[&str]) -> Result<Timed, String> {
        let mut a = vec!["exec", id];
        a.extend_from_slice(args);
        self.timed(&a)
    }

    /// `run -d -b BUNDLE ID` (untimed); the caller deletes it.
    pub fn run_detached(&mut self, bundle: &Path, id: &str) -> Result<Timed, String> {
        self.place(bundle, id)?;
        self.live.insert(id.to_string());
        self.timed(&["run", "-d", "-b", path_str(bundle)?, id])
    }

    /// `delete --force ID`.
    pub fn delete_force(&mut self, id: &str) -> Result<Timed, String> {
        let t = self.timed(&["delete", "--force", id])?;
        self.live.remove(id);
        Ok(t)
    }

    pub fn start(&mut self, id: &str) -> Result<Timed, String> {
        self.timed(&["start", id])
    }

    pub fn delete(&mut self, id: &str) -> Result<Timed, String> {
        let t = self.timed(&["delete", id])?;
        self.live.remove(id);
        Ok(t)
    }

    /// The `status` field of `state ID` (untimed).
    pub fn status(&self, id: &str) -> Result<String, String> {
        let out = self
            .command(&["state", id])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("{}: cannot execute {}: {e}", self.name, self.path.display()))?;
        if !out.status.success() {
            return Err(self.failure(&["state", id], &out.status.to_string(), &out.stderr));
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .map_err(|e| format!("{}: state {id}: output is not JSON: {e}", self.name))?;
        v.get("status")
            .and_then(|s| s.as_str())
            .map(str::to_string)
            .ok_or_else(|| format!("{}: state {id}: no \"status\" in output", self.name))
    }

    /// Poll `state` until the container is stopped (untimed).
    pub fn wait_stopped(&self, id: &str, timeout: Duration) -> Result<(), String> {
        let t0 = Instant::now();
        loop {
            if self.status(id)? == "stopped" {
                return Ok(());
            }
            check_interrupted()?;
            if t0.elapsed() > timeout {
                return Err(format!("{}: container {id} not stopped after {timeout:?}", self.name));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// `delete --force` every container that may still exist: the ones this
    /// run created and did not see deleted, and any state dir left in the
    /// private root. Errors are ignored: this is best-effort cleanup.
    pub fn cleanup(&mut self) {
        let mut ids = std::mem::take(&mut self.live);
        if let Ok(rd) = fs::read_dir(&self.root) {
            for e in rd.flatten() {
                if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    if let Some(n) = e.file_name().to_str() {
                        ids.insert(n.to_string());
                    }
                }
            }
        }
        for id in ids {
            let _ = self
                .command(&["delete", "--force", &id])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }

    /// Options go before the container id: crun 1.8.1 rejects them after it.
    /// `--systemd-cgroup` is a global option: it goes before the command,
    /// on every command (runc's delete stops the unit only with it).
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.path);
        c.arg("--root").arg(&self.root);
        if self.placement == Placement::Systemd {
            c.arg("--systemd-cgroup");
        }
        c.args(args);
        if let Some(u) = &self.user {
            // std drops the supplementary groups when root sets a uid.
            use std::os::unix::process::CommandExt;
            c.uid(u.uid).gid(u.gid).envs(u.env.iter().map(|(k, v)| (k, v)));
        }
        c
    }

    /// Run one command, timing it from just before spawn to the return of
    /// `wait4`. stdout goes to /dev/null, stderr to a file read on failure.
    fn timed(&self, args: &[&str]) -> Result<Timed, String> {
        let err = File::create(&self.errlog).map_err(|e| format!("{}: {e}", self.errlog.display()))?;
        let mut cmd = self.command(args);
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::from(err));

        let t0 = Instant::now();
        let child = cmd
            .spawn()
            .map_err(|e| format!("{}: cannot execute {}: {e}", self.name, self.path.display()))?;
        let pid = child.id() as libc::pid_t;
        let mut status: libc::c_int = 0;
        // SAFETY: rusage is plain data; zero is a valid value.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        loop {
            // SAFETY: valid pointers to locals; `pid` is our own child,
            // reaped only here (std's Child is dropped without waiting).
            let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
            if r == pid {
                break;
            }
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINTR) {
                return Err(format!("{}: wait4({pid}): {e}", self.name));
            }
        }
        let wall = t0.elapsed();
        drop(child);

        check_interrupted()?;
        let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
        if !ok {
            let how = if libc::WIFEXITED(status) {
                format!("exit status {}", libc::WEXITSTATUS(status))
            } else {
                format!("killed by signal {}", libc::WTERMSIG(status))
            };
            let stderr = fs::read(&self.errlog).unwrap_or_default();
            return Err(self.failure(args, &how, &stderr));
        }
        Ok(Timed { wall, maxrss_kib: ru.ru_maxrss })
    }

    fn failure(&self, args: &[&str], how: &str, stderr: &[u8]) -> String {
        let text = String::from_utf8_lossy(stderr);
        let text = text.trim_end();
        format!(
            "{}: `{} --root {}{} {}` failed ({how}){}{}",
            self.name,
            self.path.display(),
            self.root.display(),
            if self.placement == Placement::Systemd { " --systemd-cgroup" } else { "" },
            args.join(" "),
            if text.is_empty() { ", no stderr" } else { ", stderr:\n" },
            text
        )
    }
}

fn path_str(p: &Path) -> Result<&str, String> {
    p.to_str().ok_or_else(|| format!("path is not UTF-8: {}", p.display()))
}

/// The benchmark's private temp dir and the runtimes using it. Dropping it
/// deletes every container the runtimes may have left, then the dir.
pub struct Workspace {
    pub dir: PathBuf,
    pub runtimes: Vec<Runtime>,
}

impl Workspace {
    pub fn new() -> Result<Workspace, String> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!("berth-bench-{}-{nanos}", std::process::id()));
        fs::create_dir(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
        Ok(Workspace { dir, runtimes: Vec::new() })
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        for rt in &mut self.runtimes {
            rt.cleanup();
        }
        // The cgroupfs placement's parent (empty once every container is
        // deleted; left, and said, if not).
        if self.runtimes.iter().any(|r| r.placement == Placement::Cgroupfs) {
            remove_cgroupfs_parents();
        }
        if let Err(e) = fs::remove_dir_all(&self.dir) {
            eprintln!("berth-bench: warning: cannot remove {}: {e}", self.dir.display());
        }
    }
}

/// rmdir `berth-bench` in every cgroup hierarchy (v2: one; v1: one per
/// controller). A missing dir is fine; any other error is reported.
fn remove_cgroupfs_parents() {
    let mut dirs = vec![PathBuf::from("/sys/fs/cgroup/berth-bench")];
    if let Ok(rd) = fs::read_dir("/sys/fs/cgroup") {
        dirs.extend(rd.flatten().map(|e| e.path().join("berth-bench")));
    }
    for d in dirs {
        match fs::remove_dir(&d) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR) => {}
            Err(e) => eprintln!("berth-bench: warning: cannot remove {}: {e}", d.display()),
        }
    }
}
