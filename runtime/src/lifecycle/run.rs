//! [`run`] (`berth run`): create + start. Detached, return once the container runs.
//! In the foreground, forward signals to init (and proxy its terminal), wait
//! for it, delete the container (unless --keep) and exit with init's status
//! (the code, or 128+signal).

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::console::{self, Proxy};
use crate::error::{Error, Result};
use crate::sys;

use super::delete::destroy;
use super::{Attach, Container, CreateOptions, NotifyProxy, StartBy};

/// What a foreground [`run`] does once the container's init has exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterExit {
    /// Delete the container.
    Delete,
    /// Leave it stopped, for `state` and `delete` (`--keep`).
    Keep,
}

/// Whether a foreground [`run`] adopts the container's orphans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Orphans {
    /// Become their subreaper and reap them (runc's default).
    Adopt,
    /// Do not (`--no-subreaper`; init, a grandchild, is adopted anyway).
    Leave,
}

/// How [`run`] goes on once the container is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunOptions {
    pub attach: Attach,
    /// Foreground only.
    pub after_exit: AfterExit,
    /// Foreground only.
    pub orphans: Orphans,
}

/// Signals a foreground `run` (or `exec`) passes on to the container.
pub(super) fn forwarded() -> SigSet {
    let mut set = SigSet::empty();
    for s in Signal::iterator() {
        if !matches!(s, Signal::SIGCHLD | Signal::SIGKILL | Signal::SIGSTOP | Signal::SIGPIPE) {
            set.add(s);
        }
    }
    set
}

/// Create and start a container (`create.start` is replaced by
/// [`StartBy::Creator`]). Detached: return 0 once it runs. In the
/// foreground: forward signals to init (and proxy its terminal), wait for
/// it, delete the container (unless [`AfterExit::Keep`]) and return init's
/// status (the code, or 128+signal).
pub fn run(create: &CreateOptions, a: &RunOptions) -> Result<i32> {
    let o = CreateOptions { start: StartBy::Creator(a.attach), ..create.clone() };
    if a.attach == Attach::Detached {
        let mut c = Container::create(&o)?;
        let proxy = match bind_notify(&c, &o) {
            Ok(p) => p,
            Err(e) => {
                abort(c);
                return Err(e);
            }
        };
        if let Err(e) = c.start() {
            abort(c);
            return Err(e);
        }
        // As runc's `run -d`: wait for READY (or init's exit), MAINPID init.
        let pid = c.pid();
        drop(c);
        forward_notify(proxy, pid);
        return Ok(0);
    }
    // As runc, a foreground run adopts the container's orphans (and reaps
    // them in the wait loop) unless told not to.
    if a.orphans == Orphans::Adopt {
        // SAFETY: PR_SET_CHILD_SUBREAPER takes integer arguments only and reads no memory.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    }
    // Block what we forward, and SIGCHLD, before init exists: nothing is
    // lost between the clone and the wait loop. init unblocks before execve.
    let mut set = forwarded();
    set.add(Signal::SIGCHLD);
    let old = set.thread_swap_mask(nix::sys::signal::SigmaskHow::SIG_BLOCK).map_err(|e| Error::os("sigprocmask", e))?;
    let mut c = match Container::create(&o) {
        Ok(c) => c,
        Err(e) => {
            let _ = old.thread_set_mask();
            return Err(e);
        }
    };
    // With a terminal, init has sent the pty master already.
    let mut proxy = match c.tty.take().map(|t| receive_tty(t.socket, t.host)).transpose() {
        Ok(p) => p,
        Err(e) => {
            abort(c);
            return Err(e);
        }
    };
    let notify = match bind_notify(&c, &o) {
        Ok(n) => n,
        Err(e) => {
            drop(proxy);
            abort(c);
            return Err(e);
        }
    };
    if let Err(e) = c.start() {
        drop(proxy);
        abort(c);
        return Err(e);
    }
    // Let `state`, `kill` and `list` in while the container runs.
    let id = c.dir.id.clone();
    let Container { dir, state: Some(state), init: Some(init), .. } = c else { unreachable!("created here") };
    drop(dir);
    // In the foreground systemd watches berth, which exits with the
    // container: MAINPID is berth's (runc's). Signals wait meanwhile.
    forward_notify(notify, std::process::id() as i32);
    let status = wait_forwarding(state.pid, init.pidfd.as_ref(), &set, proxy.as_mut());
    // Restore berth's terminal before anything else is printed.
    drop(proxy);
    if a.after_exit == AfterExit::Keep {
        // Left stopped, for `state` and `delete`.
        return status;
    }
    let dir = crate::container::StateDir::open(&o.root, &id)?;
    destroy(dir, &state)?;
    status
}

/// The container's notify socket, bound before its start, when the caller
/// has one (`NOTIFY_SOCKET`).
fn bind_notify(c: &Container, o: &CreateOptions) -> Result<Option<NotifyProxy>> {
    match &o.notify_socket {
        Some(host) => c.notify_proxy(host),
        None => Ok(None),
    }
}

/// Pass the container's READY on; a failure is a warning, as in runc's
/// `run` (the container runs either way).
fn forward_notify(proxy: Option<NotifyProxy>, mainpid: i32) {
    if let Some(Err(e)) = proxy.map(|p| p.forward_ready(mainpid)) {
        log::warn!("sd-notify: {e}");
    }
}

/// Kill a container that failed to start and remove it.
fn abort(c: Container) {
    let Container { dir, state: Some(state), init: Some(init), .. } = c else { unreachable!("created here") };
    if let Some(fd) = &init.pidfd {
        let _ = sys::pidfd_send_signal(fd, libc::SIGKILL);
    }
    let _ = waitpid(Pid::from_raw(state.pid), None);
    if let Err(e) = destroy(dir, &state) {
        log::warn!("cleanup after failed start: {e}");
    }
}

/// Take the pty master from the console socket and start proxying.
pub(super) fn receive_tty(socket: OwnedFd, host: console::HostTerminal) -> Result<Proxy> {
    let master = console::recv_fd(socket.as_fd()).map_err(|e| Error::os("receive the terminal from the container", e))?;
    Proxy::start(master, host)
}

/// Wait for `pid` (a child of berth), forwarding the signals in `set` to it.
/// With a terminal proxy, also copy its I/O; SIGWINCH then resizes the pty
/// instead of being forwarded.
pub(super) fn wait_forwarding(
    pid: i32,
    pidfd: Option<&OwnedFd>,
    set: &SigSet,
    mut tty: Option<&mut Proxy>,
) -> Result<i32> {
    let sfd = SignalFd::with_flags(set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK).map_err(|e| Error::os("signalfd", e))?;
    let mut fds = Vec::with_capacity(4);
    loop {
        if let Some(code) = reap(pid)? {
            if let Some(p) = tty.as_deref_mut() {
                p.drain();
            }
            return Ok(code);
        }
        fds.clear();
        fds.push(libc::pollfd { fd: sfd.as_fd().as_raw_fd(), events: libc::POLLIN, revents: 0 });
        if let Some(p) = pidfd {
            fds.push(libc::pollfd { fd: p.as_raw_fd(), events: libc::POLLIN, revents: 0 });
        }
        let slots = tty.as_deref().map(|p| p.add_to(&mut fds));
        // SAFETY: `fds` is a live Vec of pollfds and nfds is its length.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(Error::os("poll", e));
        }
        // Signals first: a resize lands before the input that follows it.
        if fds[0].revents & libc::POLLIN != 0 {
            while let Ok(Some(info)) = sfd.read_signal() {
                let sig = info.ssi_signo as i32;
                if sig == libc::SIGCHLD {
                    continue;
                }
                if sig == libc::SIGWINCH {
                    if let Some(p) = tty.as_deref() {
                        p.resize();
                        continue;
                    }
                }
                let r = match pidfd {
                    Some(fd) => sys::pidfd_send_signal(fd, sig),
                    None => nix::sys::signal::kill(Pid::from_raw(pid), Signal::try_from(sig).ok()).map_err(Into::into),
                };
                if let Err(e) = r {
                    log::debug!("forward signal {sig} to {pid}: {e}");
                }
            }
        }
        if let (Some(p), Some(s)) = (tty.as_deref_mut(), &slots) {
            p.on_ready(&fds, s);
        }
    }
}

/// Reap exited children; `Some(status)` once `init` is among them.
fn reap(init: i32) -> Result<Option<i32>> {
    loop {
        match waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) if pid.as_raw() == init => return Ok(Some(code)),
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid.as_raw() == init => return Ok(Some(128 + sig as i32)),
            Ok(WaitStatus::StillAlive) => return Ok(None),
            Ok(_) => continue,
            Err(nix::errno::Errno::ECHILD) => {
                let what = format!("process {init} is not a child of berth: waitpid");
                return Err(Error::os(what, nix::errno::Errno::ECHILD));
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(Error::os("waitpid", e)),
        }
    }
}
