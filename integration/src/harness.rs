//! Running the runtime binary under test: locating it, running a command
//! with a timeout and capturing its output through files, and small polling
//! helpers. Every wait here has a deadline; nothing can hang a test.
//!
//! Output always goes to *files*, never pipes: a container started by
//! `create` or `run -d` inherits the runtime's stdio, so a pipe would only
//! reach EOF when the container exits.

use std::fmt;
use std::fs::{self, File};
use std::io;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// Default deadline of one runtime command.
pub const CMD_TIMEOUT: Duration = Duration::from_secs(30);

/// The runtime binary under test: `$BERTH_BIN`, else `berth` beside this
/// test binary's profile directory (`target/<triple>/debug/` when tests run
/// under cargo), else the workspace's `target/{,<triple>/}{debug,release}/berth`
/// (honouring `$CARGO_TARGET_DIR`). Panics with a clear message when none
/// exists.
pub fn berth_bin() -> PathBuf {
    find_bin("berth", "BERTH_BIN")
}

/// A workspace binary by name, found as [`berth_bin`] finds berth.
pub fn find_bin(name: &str, env_var: &str) -> PathBuf {
    if let Some(bin) = std::env::var_os(env_var) {
        let bin = PathBuf::from(bin);
        assert!(bin.is_file(), "{env_var}={} does not exist or is not a file", bin.display());
        return bin;
    }
    // target/<triple>/debug/deps/<test> -> target/<triple>/debug/<name>
    if let Some(profile_dir) = std::env::current_exe().ok().and_then(|e| Some(e.parent()?.parent()?.to_path_buf())) {
        let bin = profile_dir.join(name);
        if bin.is_file() {
            return bin;
        }
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut targets = Vec::new();
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        targets.push(PathBuf::from(t));
    }
    targets.push(workspace.join("target"));
    let triple = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
    for t in &targets {
        for profile in ["debug", "release"] {
            for bin in [t.join(&triple).join(profile).join(name), t.join(profile).join(name)] {
                if bin.is_file() {
                    return bin;
                }
            }
        }
    }
    panic!(
        "no {name} binary: set {env_var}=/path/to/it or build it \
         (cargo build --workspace); looked in {targets:?}"
    );
}

/// The result of one finished command.
#[derive(Debug)]
pub struct Output {
    pub cmdline: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub stdout_path: PathBuf,
    pub stderr_path: PathBuf,
}

impl Output {
    /// Exit code, None when killed by a signal.
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// Panic with the whole context unless the command exited 0.
    #[track_caller]
    pub fn ok(self) -> Self {
        assert!(self.success(), "command failed:\n{self}");
        self
    }

    /// Assert the command failed with exit status 1 and a stderr holding
    /// every one of `needles`.
    #[track_caller]
    pub fn fails_with(&self, needles: &[&str]) -> &Self {
        assert_eq!(self.code(), Some(1), "expected exit status 1:\n{self}");
        for n in needles {
            assert!(self.stderr.contains(n), "stderr lacks {n:?}:\n{self}");
        }
        self
    }

    /// Assert the exit code.
    #[track_caller]
    pub fn exits_with(&self, code: i32) -> &Self {
        assert_eq!(self.code(), Some(code), "unexpected exit status:\n{self}");
        self
    }

    /// Stdout re-read now: a container started by this command may have
    /// written more since the command returned.
    pub fn stdout_now(&self) -> String {
        fs::read_to_string(&self.stdout_path).unwrap_or_default()
    }

    pub fn stderr_now(&self) -> String {
        fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Stdout lines, trimmed, without empty ones.
    pub fn lines(&self) -> Vec<String> {
        self.stdout.lines().map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect()
    }

    /// Parse stdout as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{self}"))
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "  command: {}", self.cmdline)?;
        writeln!(f, "  status:  {}", describe_status(&self.status))?;
        writeln!(f, "  stdout:  {}", indent(&self.stdout))?;
        write!(f, "  stderr:  {}", indent(&self.stderr))
    }
}

fn indent(s: &str) -> String {
    if s.is_empty() {
        return "<empty>".into();
    }
    s.trim_end().replace('\n', "\n           ")
}

pub fn describe_status(s: &ExitStatus) -> String {
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("exit {c}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => format!("{s:?}"),
    }
}

/// Quote a command line for messages.
pub fn render_cmdline(prog: &Path, args: &[String]) -> String {
    let mut s = prog.display().to_string();
    for a in args {
        if a.is_empty() || a.contains(|c: char| c.is_whitespace() || "'\"\\$;&|<>()*?".contains(c)) {
            s.push_str(&format!(" '{}'", a.replace('\'', "'\\''")));
        } else {
            s.push(' ');
            s.push_str(a);
        }
    }
    s
}

/// Set in the environment of every runtime command, so tests can check
/// that the host's environment does not leak into containers or hooks.
pub const HOST_ENV_VAR: &str = "BERTH_IT_HOST_ENV";

/// Extra ways to start a command.
#[derive(Default)]
pub struct SpawnOpts<'a> {
    /// A file to use as stdin (else /dev/null).
    pub stdin: Option<&'a Path>,
    /// Working directory.
    pub cwd: Option<&'a Path>,
    /// Supplementary groups of the runtime process.
    pub groups: Option<&'a [u32]>,
    /// Extra environment variables.
    pub env: &'a [(String, String)],
    /// Run as this uid and gid (no supplementary groups unless `groups`
    /// names some): a rootless test's user.
    pub user: Option<(u32, u32)>,
}

/// `prog args` with `opts` applied (stdio left to the caller).
fn command(prog: &Path, args: &[String], opts: &SpawnOpts) -> Command {
    let mut cmd = Command::new(prog);
    cmd.args(args).env(HOST_ENV_VAR, "must-not-leak");
    if let Some(d) = opts.cwd {
        cmd.current_dir(d);
    }
    cmd.envs(opts.env.iter().map(|(k, v)| (k, v)));
    let groups: Option<Vec<libc::gid_t>> = opts.groups.map(<[u32]>::to_vec).or(opts.user.map(|_| Vec::new()));
    if let Some(groups) = groups {
        // SAFETY: setgroups is async-signal-safe; `groups` is owned by the closure.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setgroups(groups.len(), groups.as_ptr()) == 0 {
                    Ok(())
                } else {
                    Err(io::Error::last_os_error())
                }
            });
        }
    }
    if let Some((uid, gid)) = opts.user {
        // SAFETY: setresgid and setresuid are async-signal-safe and take integers.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setresgid(gid, gid, gid) == 0 && libc::setresuid(uid, uid, uid) == 0 {
                    Ok(())
                } else {
                    Err(io::Error::last_os_error())
                }
            });
        }
    }
    cmd
}

/// A command started in the background (e.g. a foreground `run` that a
/// test signals). Dropping it without `wait` kills and reaps it.
pub struct Spawned {
    pub cmdline: String,
    child: Option<Child>,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
}

impl Spawned {
    /// Start `prog args` with stdout/stderr to `<io_base>.out/.err`, stdin
    /// from `stdin` (a file) or /dev/null.
    pub fn start(prog: &Path, args: &[String], io_base: &Path, stdin: Option<&Path>) -> Spawned {
        Self::start_with(prog, args, io_base, &SpawnOpts { stdin, ..Default::default() })
    }

    /// As [`start`](Self::start), with more options.
    pub fn start_with(prog: &Path, args: &[String], io_base: &Path, opts: &SpawnOpts) -> Spawned {
        let cmdline = render_cmdline(prog, args);
        let stdout_path = io_base.with_extension("out");
        let stderr_path = io_base.with_extension("err");
        let out = File::create(&stdout_path).expect("create stdout file");
        let err = File::create(&stderr_path).expect("create stderr file");
        let stdin = match opts.stdin {
            Some(p) => Stdio::from(File::open(p).expect("open stdin file")),
            None => Stdio::null(),
        };
        let mut cmd = command(prog, args, opts);
        cmd.stdin(stdin).stdout(out).stderr(err);
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot spawn {cmdline}: {e}"));
        Spawned { cmdline, child: Some(child), stdout_path, stderr_path }
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(-1)
    }

    /// Send `sig` to the command itself (not its group).
    pub fn signal(&self, sig: i32) {
        let rc = unsafe { libc::kill(self.pid(), sig) };
        assert_eq!(rc, 0, "kill({}, {sig}): {}", self.pid(), io::Error::last_os_error());
    }

    /// Has it exited (without reaping the status for good: it is kept)?
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.as_mut().and_then(|c| c.try_wait().ok().flatten())
    }

    /// Wait until `path` holds `needle` while the command is still running;
    /// panics at once (with its output) if the command exits first.
    #[track_caller]
    pub fn expect_file(&mut self, path: &Path, needle: &str, timeout: Duration) -> String {
        let mut last = String::new();
        let mut exited = None;
        let ok = wait_until(timeout, || {
            last = fs::read_to_string(path).unwrap_or_default();
            if last.contains(needle) {
                return true;
            }
            exited = self.try_wait();
            exited.is_some()
        });
        if ok && exited.is_none() {
            return last;
        }
        panic!(
            "{} before {} held {needle:?}: {}\n  stdout: {}\n  stderr: {}",
            match exited {
                Some(s) => format!("command exited ({})", describe_status(&s)),
                None => format!("timed out after {timeout:?}"),
            },
            path.display(),
            self.cmdline,
            indent(&fs::read_to_string(&self.stdout_path).unwrap_or_default()),
            indent(&fs::read_to_string(&self.stderr_path).unwrap_or_default()),
        );
    }

    /// Wait up to `timeout`; on timeout kill it and panic with the command
    /// line and what it printed so far.
    #[track_caller]
    pub fn wait(mut self, timeout: Duration) -> Output {
        let deadline = Instant::now() + timeout;
        let mut child = self.child.take().expect("child already waited");
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break s,
                Ok(None) if Instant::now() < deadline => sleep(Duration::from_millis(10)),
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "timed out after {timeout:?}, killed: {}\n  stdout: {}\n  stderr: {}",
                        self.cmdline,
                        indent(&fs::read_to_string(&self.stdout_path).unwrap_or_default()),
                        indent(&fs::read_to_string(&self.stderr_path).unwrap_or_default()),
                    );
                }
                Err(e) => panic!("waiting for {}: {e}", self.cmdline),
            }
        };
        Output {
            cmdline: self.cmdline.clone(),
            status,
            stdout: fs::read_to_string(&self.stdout_path).unwrap_or_default(),
            stderr: fs::read_to_string(&self.stderr_path).unwrap_or_default(),
            stdout_path: self.stdout_path.clone(),
            stderr_path: self.stderr_path.clone(),
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Run `prog args` to completion within `timeout` (see [`Spawned::wait`]).
#[track_caller]
pub fn run_cmd(prog: &Path, args: &[String], io_base: &Path, stdin: Option<&Path>, timeout: Duration) -> Output {
    Spawned::start(prog, args, io_base, stdin).wait(timeout)
}

/// Run a command with no stdio, killing it after `timeout`. Never panics
/// (for use in destructors).
pub fn run_quiet(prog: &Path, args: &[String], timeout: Duration) -> io::Result<ExitStatus> {
    run_quiet_with(prog, args, &SpawnOpts::default(), timeout)
}

/// [`run_quiet`] with `opts` (its stdin is ignored: /dev/null).
pub fn run_quiet_with(prog: &Path, args: &[String], opts: &SpawnOpts, timeout: Duration) -> io::Result<ExitStatus> {
    let mut child = command(prog, args, opts).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn()?;
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(s) = child.try_wait()? {
            return Ok(s);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::new(io::ErrorKind::TimedOut, format!("{} timed out", render_cmdline(prog, args))));
        }
        sleep(Duration::from_millis(10));
    }
}

/// Poll `cond` every 20ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        sleep(Duration::from_millis(20));
    }
}

/// Wait until `path` exists and its content holds `needle`; panics on
/// timeout. Returns the content.
#[track_caller]
pub fn wait_for_file(path: &Path, needle: &str, timeout: Duration) -> String {
    let mut last = String::new();
    if wait_until(timeout, || {
        last = fs::read_to_string(path).unwrap_or_default();
        last.contains(needle)
    }) {
        return last;
    }
    panic!("timed out after {timeout:?} waiting for {needle:?} in {} (content: {last:?})", path.display());
}

/// `readlink /proc/<pid>/ns/<kind>`, e.g. `net:[4026531840]`.
pub fn ns_link(pid: &str, kind: &str) -> String {
    fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .unwrap_or_else(|e| panic!("readlink /proc/{pid}/ns/{kind}: {e}"))
        .display()
        .to_string()
}

/// Whether a process exists (and is not a zombie).
pub fn pid_alive(pid: i64) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => {
            // state is the field after the ")" closing comm
            let state = s.rsplit_once(')').map(|(_, r)| r.trim_start()).and_then(|r| r.chars().next());
            !matches!(state, Some('Z') | Some('X') | None)
        }
        Err(_) => false,
    }
}

/// Collapse runs of whitespace to single spaces and trim every line.
pub fn squash(s: &str) -> String {
    s.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}
