//! `berth run`: create + start. Detached, return once the container runs.
//! In the foreground, forward signals to init (and proxy its terminal), wait
//! for it, delete the container (unless --keep) and exit with init's status
//! (the code, or 128+signal).

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::cli::RunArgs;
use crate::console::{self, Proxy};
use crate::error::{Error, Result};
use crate::sys;

use super::create::{create_with, Created};
use super::delete::destroy;
use super::start::{start_created, start_via_socket, start_with_pidfd};

/// Signals a foreground `run` (or `exec`) passes on to the container.
pub(crate) fn forwarded() -> SigSet {
    let mut set = SigSet::empty();
    for s in Signal::iterator() {
        if !matches!(s, Signal::SIGCHLD | Signal::SIGKILL | Signal::SIGSTOP | Signal::SIGPIPE) {
            set.add(s);
        }
    }
    set
}

pub fn run(root: &Path, a: &RunArgs) -> Result<i32> {
    if a.detach {
        let c = create_with(root, &a.create, true)?;
        if let Err(e) = start(&c) {
            abort(c);
            return Err(e);
        }
        return Ok(0);
    }
    // As runc, a foreground run adopts the container's orphans (and reaps
    // them in the wait loop) unless told not to.
    if !a.no_subreaper {
        // SAFETY: PR_SET_CHILD_SUBREAPER takes integer arguments only and reads no memory.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    }
    // Block what we forward, and SIGCHLD, before init exists: nothing is
    // lost between the clone and the wait loop. init unblocks before execve.
    let mut set = forwarded();
    set.add(Signal::SIGCHLD);
    let old = set.thread_swap_mask(nix::sys::signal::SigmaskHow::SIG_BLOCK).map_err(|e| Error::os("sigprocmask", e))?;
    let mut c = match create_with(root, &a.create, false) {
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
    if let Err(e) = start(&c) {
        drop(proxy);
        abort(c);
        return Err(e);
    }
    // Let `state`, `kill` and `list` in while the container runs.
    let id = c.dir.id.clone();
    let Created { dir, state, init, .. } = c;
    drop(dir);
    let status = wait_forwarding(state.pid, init.pidfd.as_ref(), &set, proxy.as_mut());
    // Restore berth's terminal before anything else is printed.
    drop(proxy);
    if a.keep {
        // Left stopped, for `state` and `delete`.
        return status;
    }
    let dir = crate::container::StateDir::open(root, &id)?;
    destroy(dir, &state)?;
    status
}

/// `start` a container this process just created, with the pidfd from its
/// clone (no second pidfd_open and /proc check).
fn start(c: &Created) -> Result<()> {
    match (&c.init.start_socket, &c.init.pidfd) {
        (Some(sock), Some(fd)) => start_via_socket(&c.state, sock, fd),
        (Some(sock), None) => {
            let fd = c.state.init_pidfd().ok_or_else(|| {
                Error::WrongState(format!("cannot start container \"{}\": its init has exited", c.state.id))
            })?;
            start_via_socket(&c.state, sock, &fd)
        }
        (None, Some(fd)) => start_with_pidfd(&c.dir, &c.state, fd),
        (None, None) => start_created(&c.dir, &c.state),
    }
}

/// Kill a container that failed to start and remove it.
fn abort(c: Created) {
    if let Some(fd) = &c.init.pidfd {
        let _ = sys::pidfd_send_signal(fd, libc::SIGKILL);
    }
    let _ = waitpid(Pid::from_raw(c.state.pid), None);
    let Created { dir, state, .. } = c;
    if let Err(e) = destroy(dir, &state) {
        log::warn!("cleanup after failed start: {e}");
    }
}

/// Take the pty master from the console socket and start proxying.
pub(crate) fn receive_tty(socket: OwnedFd, host: console::HostTerminal) -> Result<Proxy> {
    let master = console::recv_fd(socket.as_fd()).map_err(|e| Error::os("receive the terminal from the container", e))?;
    Proxy::start(master, host)
}

/// Wait for `pid` (a child of berth), forwarding the signals in `set` to it.
/// With a terminal proxy, also copy its I/O; SIGWINCH then resizes the pty
/// instead of being forwarded.
pub(crate) fn wait_forwarding(
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
                return Err(Error::Other(format!("process {init} is not a child of berth")))
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(Error::os("waitpid", e)),
        }
    }
}
