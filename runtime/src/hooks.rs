//! OCI hooks: prestart, createRuntime, createContainer, startContainer,
//! poststart, poststop.
//!
//! A hook is executed with `hook.args` as its full argv (execv semantics),
//! exactly `hook.env` as its environment (startContainer hooks without one:
//! the container process's), the container state JSON on stdin,
//! and stdout/stderr captured. Its stderr ends up in the error when it fails.
//!
//! This runs inside the freshly cloned container init too, which is
//! single-threaded and must stay so: no helper threads. One `poll(2)` loop
//! feeds stdin, drains stdout/stderr and watches a pidfd for the hook's exit,
//! with the hook's timeout as the poll deadline.

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::Hook;

/// Which lifecycle point a hook list belongs to (used in messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookKind {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

impl HookKind {
    pub fn name(self) -> &'static str {
        match self {
            HookKind::Prestart => "prestart",
            HookKind::CreateRuntime => "createRuntime",
            HookKind::CreateContainer => "createContainer",
            HookKind::StartContainer => "startContainer",
            HookKind::Poststart => "poststart",
            HookKind::Poststop => "poststop",
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{kind} hook #{index} ({path}): {msg}")]
pub struct HookError {
    pub kind: &'static str,
    pub index: usize,
    pub path: String,
    pub msg: String,
}

/// How much of a failing hook's stderr goes into the error message.
const STDERR_IN_MESSAGE: usize = 4096;
/// How much of stdout/stderr is kept while the hook runs (the tail).
const CAPTURE_KEEP: usize = 2 * STDERR_IN_MESSAGE;
/// Poll interval when pidfds are not available (kernel < 5.3).
const NO_PIDFD_TICK: Duration = Duration::from_millis(10);

/// Run `hooks` in order, each with `state` (the OCI state JSON) on stdin.
/// Stops at the first failure and returns it.
pub fn run_hooks(kind: HookKind, hooks: &[Hook], state: &[u8]) -> Result<(), HookError> {
    for (index, hook) in hooks.iter().enumerate() {
        run_hook(hook, state).map_err(|msg| HookError {
            kind: kind.name(),
            index,
            path: crate::error::clip_plain(&hook.path().to_string_lossy()).into_owned(),
            msg,
        })?;
    }
    Ok(())
}

/// [`run_hooks`] where a hook without `env` gets `default_env` instead of
/// an empty environment: for startContainer hooks, the container process's
/// environment, as runc and crun give them (an explicit empty `env` stays
/// empty, as with runc).
pub fn run_hooks_with_default_env(
    kind: HookKind,
    hooks: &[Hook],
    state: &[u8],
    default_env: &[String],
) -> Result<(), HookError> {
    let hooks: Vec<Hook> = hooks
        .iter()
        .map(|h| {
            let mut h = h.clone();
            if h.env().is_none() {
                h.set_env(Some(default_env.to_vec()));
            }
            h
        })
        .collect();
    run_hooks(kind, &hooks, state)
}

/// Run one hook to completion; the error is the message for [`HookError`].
fn run_hook(hook: &Hook, state: &[u8]) -> Result<(), String> {
    run_hook_with(hook, state, true)
}

/// [`run_hook`]; `use_pidfd` false forces the fallback for kernels without
/// pidfd_open (tests only).
fn run_hook_with(hook: &Hook, state: &[u8], use_pidfd: bool) -> Result<(), String> {
    let path = hook.path();
    if !path.is_absolute() {
        return Err("hook path must be absolute".into());
    }
    let timeout = match hook.timeout() {
        Some(t) if t <= 0 => return Err(format!("invalid timeout {t}: must be greater than zero")),
        Some(t) => Some(t),
        None => None,
    };

    let mut cmd = Command::new(path);
    if let Some([arg0, rest @ ..]) = hook.args().as_deref() {
        cmd.arg0(arg0).args(rest);
    }
    cmd.env_clear();
    for entry in hook.env().iter().flatten() {
        match entry.split_once('=') {
            Some((key, value)) if !key.is_empty() => {
                cmd.env(key, value);
            }
            _ => log::warn!(
                "hook {}: ignoring environment entry without a name: {entry:?}",
                path.display()
            ),
        }
    }
    // The hook must start with an empty signal mask and SIGPIPE at SIG_DFL,
    // whatever the caller (e.g. the container init) has blocked or ignored.
    // std resets SIGPIPE but, as tested here, not the blocked mask.
    // SAFETY: the closure only makes async-signal-safe calls (sigemptyset,
    // sigprocmask, signal) between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let mut empty: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut empty);
            if libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut()) != 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::signal(libc::SIGPIPE, libc::SIG_DFL) == libc::SIG_ERR {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("cannot execute: {e}"))?;

    let deadline = timeout.and_then(|t| Instant::now().checked_add(Duration::from_secs(t as u64)));
    let result = supervise(&mut child, state, deadline, use_pidfd);
    match result {
        Ok(Outcome::Exited(status, out)) => {
            if !out.stdout.is_empty() {
                log::debug!(
                    "hook {} stdout: {}",
                    path.display(),
                    String::from_utf8_lossy(&out.stdout).trim_end()
                );
            }
            judge(status, &out.stderr)
        }
        Ok(Outcome::TimedOut) => {
            kill_and_reap(&mut child);
            Err(format!("timed out after {}s", timeout.unwrap_or_default()))
        }
        Err(e) => {
            kill_and_reap(&mut child);
            Err(e)
        }
    }
}

fn kill_and_reap(child: &mut Child) {
    // Not reaped yet, so the pid still names our child.
    let _ = child.kill();
    let _ = child.wait();
}

fn judge(status: ExitStatus, stderr: &[u8]) -> Result<(), String> {
    let what = if status.success() {
        return Ok(());
    } else if let Some(code) = status.code() {
        format!("exited with status {code}")
    } else if let Some(sig) = status.signal() {
        let core = if status.core_dumped() {
            " (core dumped)"
        } else {
            ""
        };
        format!("killed by signal {sig}{core}")
    } else {
        format!("failed: {status}")
    };
    let text = String::from_utf8_lossy(stderr);
    let text = text.trim();
    if text.is_empty() {
        return Err(what);
    }
    if text.len() <= STDERR_IN_MESSAGE {
        return Err(format!("{what}, stderr: {text}"));
    }
    let mut cut = text.len() - STDERR_IN_MESSAGE;
    while !text.is_char_boundary(cut) {
        cut += 1;
    }
    Err(format!("{what}, stderr: ...{}", &text[cut..]))
}

#[derive(Default)]
struct Captured {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

enum Outcome {
    Exited(ExitStatus, Captured),
    TimedOut,
}

/// Keep the tail of a stream: at most `CAPTURE_KEEP` bytes after trimming.
fn keep_tail(buf: &mut Vec<u8>, data: &[u8]) {
    buf.extend_from_slice(data);
    if buf.len() > 2 * CAPTURE_KEEP {
        let cut = buf.len() - CAPTURE_KEEP;
        buf.drain(..cut);
    }
}

enum ReadResult {
    Open,
    Closed,
}

/// Read what is available from a non-blocking pipe into `buf`.
fn read_some(pipe: &mut impl Read, buf: &mut Vec<u8>) -> ReadResult {
    let mut chunk = [0u8; 8192];
    match pipe.read(&mut chunk) {
        Ok(0) => ReadResult::Closed,
        Ok(n) => {
            keep_tail(buf, &chunk[..n]);
            ReadResult::Open
        }
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
            ) =>
        {
            ReadResult::Open
        }
        Err(_) => ReadResult::Closed,
    }
}

/// Read until the pipe is empty or closed (bounded, in case a grandchild keeps
/// the pipe open and writing).
fn drain(pipe: &mut Option<impl Read>, buf: &mut Vec<u8>) {
    let Some(p) = pipe.as_mut() else { return };
    let mut chunk = [0u8; 8192];
    for _ in 0..128 {
        match p.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => keep_tail(buf, &chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    *pipe = None;
}

fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a file descriptor we own.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// `pidfd_open(2)`; `None` where the kernel lacks it (ENOSYS) or refuses.
fn pidfd_open(pid: u32) -> Option<OwnedFd> {
    // SAFETY: plain syscall; on success it returns a new (CLOEXEC) fd we own.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0 as libc::c_uint) };
    if fd < 0 {
        None
    } else {
        // SAFETY: fd is a fresh descriptor returned by the kernel.
        Some(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
    }
}

fn pollfd(fd: RawFd, events: libc::c_short) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

/// Feed `state` to the hook, collect its output and wait for it to exit or
/// for `deadline`. On `TimedOut` or `Err` the child is still unreaped.
fn supervise(
    child: &mut Child,
    state: &[u8],
    deadline: Option<Instant>,
    use_pidfd: bool,
) -> Result<Outcome, String> {
    let mut stdin = child.stdin.take().filter(|_| !state.is_empty());
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    for fd in [
        stdin.as_ref().map(|f| f.as_raw_fd()),
        stdout.as_ref().map(|f| f.as_raw_fd()),
        stderr.as_ref().map(|f| f.as_raw_fd()),
    ]
    .into_iter()
    .flatten()
    {
        set_nonblocking(fd).map_err(|e| format!("cannot set up pipes: {e}"))?;
    }
    // While writing stdin, a hook that exits without reading must give us
    // EPIPE, not a SIGPIPE that kills the runtime.
    let _sigpipe = stdin.as_ref().map(|_| SigpipeBlocked::new());

    let pidfd = if use_pidfd {
        pidfd_open(child.id())
    } else {
        None
    };
    let mut written = 0usize;
    let mut out = Captured::default();
    let mut status: Option<ExitStatus> = None;

    loop {
        let mut fds = [pollfd(-1, 0); 4];
        let mut n = 0;
        let mut slot = |fd: Option<RawFd>, events| {
            fd.map(|fd| {
                fds[n] = pollfd(fd, events);
                n += 1;
                n - 1
            })
        };
        let i_in = slot(stdin.as_ref().map(|f| f.as_raw_fd()), libc::POLLOUT);
        let i_out = slot(stdout.as_ref().map(|f| f.as_raw_fd()), libc::POLLIN);
        let i_err = slot(stderr.as_ref().map(|f| f.as_raw_fd()), libc::POLLIN);
        let i_pid = slot(pidfd.as_ref().map(|f| f.as_raw_fd()), libc::POLLIN);

        let now = Instant::now();
        let mut wait: Option<Duration> = deadline.map(|d| d.saturating_duration_since(now));
        if pidfd.is_none() {
            wait = Some(wait.map_or(NO_PIDFD_TICK, |w| w.min(NO_PIDFD_TICK)));
        }
        let wait_ms: libc::c_int = match wait {
            None => -1,
            // Round up so the deadline is not missed by a fraction of a ms.
            Some(w) => w.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as libc::c_int,
        };
        // SAFETY: fds[..n] are valid pollfd structs for open descriptors.
        let ready = unsafe { libc::poll(fds.as_mut_ptr(), n as libc::nfds_t, wait_ms) };
        if ready < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(format!("poll: {e}"));
        }

        let fired = |i: Option<usize>| i.is_some_and(|i| fds[i].revents != 0);
        if fired(i_in) {
            if let Some(pipe) = stdin.as_mut() {
                match pipe.write(&state[written..]) {
                    Ok(k) => written += k,
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                        ) => {}
                    // EPIPE: the hook does not read its stdin; that is fine.
                    Err(_) => written = state.len(),
                }
                if written >= state.len() {
                    stdin = None; // close: the hook sees EOF
                }
            }
        }
        if fired(i_out) {
            if let Some(p) = stdout.as_mut() {
                if let ReadResult::Closed = read_some(p, &mut out.stdout) {
                    stdout = None;
                }
            }
        }
        if fired(i_err) {
            if let Some(p) = stderr.as_mut() {
                if let ReadResult::Closed = read_some(p, &mut out.stderr) {
                    stderr = None;
                }
            }
        }

        let exited = if pidfd.is_some() {
            fired(i_pid)
        } else {
            match child.try_wait() {
                Ok(Some(st)) => {
                    status = Some(st);
                    true
                }
                Ok(None) => false,
                Err(e) => return Err(format!("waiting for the hook: {e}")),
            }
        };
        if exited {
            // Collect what the hook wrote before exiting, but do not wait for
            // EOF: a daemon it left behind may hold the pipes open.
            drop(stdin.take());
            drain(&mut stdout, &mut out.stdout);
            drain(&mut stderr, &mut out.stderr);
            let status = match status {
                Some(st) => st,
                None => child
                    .wait()
                    .map_err(|e| format!("cannot get the hook's exit status: {e}"))?,
            };
            return Ok(Outcome::Exited(status, out));
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(Outcome::TimedOut);
        }
    }
}

/// Blocks SIGPIPE on this thread for its lifetime; on drop, discards a SIGPIPE
/// our own writes left pending (unless one was pending before) and restores
/// the previous mask.
struct SigpipeBlocked {
    old: libc::sigset_t,
    was_pending: bool,
}

fn sigpipe_set() -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset initialise the set we pass them.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        set
    }
}

impl SigpipeBlocked {
    fn new() -> Self {
        let set = sigpipe_set();
        // SAFETY: valid sigset pointers; pthread_sigmask affects this thread.
        unsafe {
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
            let mut pending: libc::sigset_t = std::mem::zeroed();
            libc::sigpending(&mut pending);
            let was_pending = libc::sigismember(&pending, libc::SIGPIPE) == 1;
            SigpipeBlocked { old, was_pending }
        }
    }
}

impl Drop for SigpipeBlocked {
    fn drop(&mut self) {
        let set = sigpipe_set();
        // SAFETY: valid sigset/timespec pointers; zero timeout never blocks.
        unsafe {
            if !self.was_pending {
                let zero = libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                };
                while libc::sigtimedwait(&set, std::ptr::null_mut(), &zero) == libc::SIGPIPE {}
            }
            libc::pthread_sigmask(libc::SIG_SETMASK, &self.old, std::ptr::null_mut());
        }
    }
}

#[cfg(test)]
mod tests;
