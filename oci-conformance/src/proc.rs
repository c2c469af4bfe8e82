//! Running the runtime (and helpers) with a deadline. Standard streams go
//! to files, never pipes: a container started by `create` inherits the
//! runtime's stdio, so a pipe would only see EOF when the container exits.
//! Each command runs in its own process group, killed whole on timeout.

use std::fs::{self, File};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// Executables the suite writes (rootfs copies with the payload and
/// busybox, hook scripts) are written holding this lock shared, and every
/// process is spawned holding it exclusively (`Command::spawn` returns once
/// the child has exec'd). Otherwise a child forked by one test thread
/// inherits, until its own exec, the write fd another thread has open on a
/// file it is copying; a runtime executing that file meanwhile gets
/// ETXTBSY (seen under load: "the container printed nothing; its stderr:
/// exec failed: errno 26", in whichever test's copy was hit).
static EXEC_FILES: RwLock<()> = RwLock::new(());

/// Hold while a file that will be executed is open for writing.
pub fn writing_executable() -> RwLockReadGuard<'static, ()> {
    EXEC_FILES.read().unwrap_or_else(|e| e.into_inner())
}

/// Hold across a fork and exec (`spawn`, `output`).
pub fn spawning() -> RwLockWriteGuard<'static, ()> {
    EXEC_FILES.write().unwrap_or_else(|e| e.into_inner())
}

/// Set in every runtime command's environment; tests check it does not
/// reach the container.
pub const HOST_ENV: (&str, &str) = ("OC_HOST_ONLY", "must-not-leak");

/// How to start one command.
pub struct Spec<'a> {
    pub prog: &'a Path,
    pub args: Vec<String>,
    /// Files for stdout and stderr (created or truncated).
    pub out: PathBuf,
    pub err: PathBuf,
    /// A file for stdin, else /dev/null.
    pub stdin: Option<PathBuf>,
    pub cwd: Option<PathBuf>,
    /// Write this to /proc/self/oom_score_adj before exec.
    pub oom_score_adj: Option<i32>,
    /// Leave this file open (not close-on-exec) as this fd number.
    pub extra_fd: Option<(i32, PathBuf)>,
    /// Join this namespace (a /proc/PID/ns/KIND path) before exec.
    pub setns: Option<PathBuf>,
    pub timeout: Duration,
}

impl<'a> Spec<'a> {
    pub fn new(prog: &'a Path, args: Vec<String>, io_base: &Path, timeout: Duration) -> Self {
        Spec {
            prog,
            args,
            out: io_base.with_extension("out"),
            err: io_base.with_extension("err"),
            stdin: None,
            cwd: None,
            oom_score_adj: None,
            extra_fd: None,
            setns: None,
            timeout,
        }
    }
}

/// A finished (or killed) command.
#[derive(Debug, Clone)]
pub struct Done {
    pub cmdline: String,
    /// None when it timed out and was killed.
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Done {
    pub fn ok(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    pub fn timed_out(&self) -> bool {
        self.status.is_none()
    }

    /// `CMD: exit 1: first stderr line(s)`, for failure messages.
    pub fn describe(&self) -> String {
        let st = match self.status {
            None => format!("timed out after {:.1}s and was killed", self.elapsed.as_secs_f64()),
            Some(s) => match (s.code(), s.signal()) {
                (Some(c), _) => format!("exit {c}"),
                (None, Some(sig)) => format!("killed by signal {sig}"),
                _ => format!("{s:?}"),
            },
        };
        let err = squeeze(&self.stderr, 300);
        if err.is_empty() {
            format!("`{}`: {st}", self.cmdline)
        } else {
            format!("`{}`: {st}: {err}", self.cmdline)
        }
    }
}

/// One line, at most `max` chars.
pub fn squeeze(s: &str, max: usize) -> String {
    let one = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one.chars().count() > max {
        format!("{}...", one.chars().take(max).collect::<String>())
    } else {
        one
    }
}

pub fn render(prog: &Path, args: &[String]) -> String {
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

/// A started command.
pub struct Running {
    pub cmdline: String,
    child: Child,
    out: PathBuf,
    err: PathBuf,
    started: Instant,
    timeout: Duration,
}

pub fn spawn(spec: Spec) -> Result<Running, String> {
    let cmdline = render(spec.prog, &spec.args);
    let out = File::create(&spec.out).map_err(|e| format!("create {}: {e}", spec.out.display()))?;
    let err = File::create(&spec.err).map_err(|e| format!("create {}: {e}", spec.err.display()))?;
    let stdin = match &spec.stdin {
        Some(p) => Stdio::from(File::open(p).map_err(|e| format!("open {}: {e}", p.display()))?),
        None => Stdio::null(),
    };
    let mut cmd = Command::new(spec.prog);
    cmd.args(&spec.args)
        .stdin(stdin)
        .stdout(out)
        .stderr(err)
        .env(HOST_ENV.0, HOST_ENV.1)
        .process_group(0);
    if let Some(d) = &spec.cwd {
        cmd.current_dir(d);
    }
    let extra = match &spec.extra_fd {
        Some((n, p)) => Some((*n, File::open(p).map_err(|e| format!("open {}: {e}", p.display()))?)),
        None => None,
    };
    let oom = spec.oom_score_adj.map(|v| format!("{v}\n"));
    let ns = match &spec.setns {
        Some(p) => Some(File::open(p).map_err(|e| format!("open {}: {e}", p.display()))?),
        None => None,
    };
    if extra.is_some() || oom.is_some() || ns.is_some() {
        use std::os::fd::AsRawFd;
        let extra_raw = extra.as_ref().map(|(n, f)| (*n, f.as_raw_fd()));
        let ns_raw = ns.as_ref().map(|f| f.as_raw_fd());
        // SAFETY: only async-signal-safe calls (open/write/close/dup2) on
        // data prepared before fork.
        unsafe {
            cmd.pre_exec(move || {
                if let Some(v) = &oom {
                    let fd = libc::open(c"/proc/self/oom_score_adj".as_ptr(), libc::O_WRONLY);
                    if fd < 0 || libc::write(fd, v.as_ptr() as *const libc::c_void, v.len()) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    libc::close(fd);
                }
                if let Some((n, raw)) = extra_raw {
                    if libc::dup2(raw, n) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                if let Some(fd) = ns_raw {
                    if libc::setns(fd, 0) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
    }
    let child = {
        let _g = spawning();
        cmd.spawn().map_err(|e| format!("cannot run {cmdline}: {e}"))?
    };
    drop(extra);
    drop(ns);
    Ok(Running {
        cmdline,
        child,
        out: spec.out,
        err: spec.err,
        started: Instant::now(),
        timeout: spec.timeout,
    })
}

impl Running {
    /// Wait until it exits or its timeout passes (then kill its group).
    pub fn wait(mut self) -> Done {
        let deadline = self.started + self.timeout;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) if Instant::now() < deadline => sleep(Duration::from_millis(5)),
                _ => {
                    kill_group(self.child.id() as i32);
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break None;
                }
            }
        };
        Done {
            cmdline: self.cmdline.clone(),
            status,
            stdout: fs::read_to_string(&self.out).unwrap_or_default(),
            stderr: fs::read_to_string(&self.err).unwrap_or_default(),
            elapsed: self.started.elapsed(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            kill_group(self.child.id() as i32);
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub fn kill_group(pgid: i32) {
    if pgid > 1 {
        // SAFETY: kill(2) on a process group we created.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
    }
}

/// Run to completion (bounded by `spec.timeout`).
pub fn run(spec: Spec) -> Done {
    let cmdline = render(spec.prog, &spec.args);
    match spawn(spec) {
        Ok(r) => r.wait(),
        Err(e) => Done {
            cmdline,
            status: Some(ExitStatus::from_raw(127 << 8)),
            stdout: String::new(),
            stderr: e,
            elapsed: Duration::ZERO,
        },
    }
}

/// Poll `cond` every 10 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        sleep(Duration::from_millis(10));
    }
}

/// Whether a process exists and is not a zombie.
pub fn pid_alive(pid: i64) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => {
            let state = s
                .rsplit_once(')')
                .map(|(_, r)| r.trim_start())
                .and_then(|r| r.chars().next());
            !matches!(state, Some('Z') | Some('X') | None)
        }
        Err(_) => false,
    }
}
