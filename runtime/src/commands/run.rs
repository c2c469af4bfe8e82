//! `berth run`: create + start. Detached, return once the container runs.
//! In the foreground, forward signals to init, wait for it, delete the
//! container and exit with init's status (the code, or 128+signal).

use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::cli::RunArgs;
use crate::error::{Error, Result};
use crate::sys;

use super::create::{create, Created};
use super::delete::destroy;
use super::start::start_created;

/// Signals a foreground `run` passes on to the container.
fn forwarded() -> SigSet {
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
        let c = create(root, &a.create)?;
        if let Err(e) = start_created(&c.dir, &c.state) {
            abort(c);
            return Err(e);
        }
        return Ok(0);
    }
    // Block what we forward, and SIGCHLD, before init exists: nothing is
    // lost between the clone and the wait loop. init unblocks before execve.
    let mut set = forwarded();
    set.add(Signal::SIGCHLD);
    let old = set.thread_swap_mask(nix::sys::signal::SigmaskHow::SIG_BLOCK).map_err(|e| Error::os("sigprocmask", e))?;
    let c = match create(root, &a.create) {
        Ok(c) => c,
        Err(e) => {
            let _ = old.thread_set_mask();
            return Err(e);
        }
    };
    if let Err(e) = start_created(&c.dir, &c.state) {
        abort(c);
        return Err(e);
    }
    // Let `state`, `kill` and `list` in while the container runs.
    let id = c.dir.id.clone();
    let Created { dir, state, init } = c;
    drop(dir);
    let status = wait_forwarding(&state, &init, &set);
    let dir = crate::container::StateDir::open(root, &id)?;
    destroy(dir, &state)?;
    status
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

fn wait_forwarding(state: &crate::container::State, init_proc: &crate::process::Launched, set: &SigSet) -> Result<i32> {
    let sfd = SignalFd::with_flags(set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK).map_err(|e| Error::os("signalfd", e))?;
    let init = state.pid;
    let mut fds = vec![libc::pollfd { fd: sfd.as_fd().as_raw_fd(), events: libc::POLLIN, revents: 0 }];
    if let Some(p) = &init_proc.pidfd {
        fds.push(libc::pollfd { fd: p.as_raw_fd(), events: libc::POLLIN, revents: 0 });
    }
    loop {
        if let Some(code) = reap(init)? {
            return Ok(code);
        }
        let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(Error::os("poll", e));
        }
        if fds[0].revents & libc::POLLIN != 0 {
            while let Ok(Some(info)) = sfd.read_signal() {
                let sig = info.ssi_signo as i32;
                if sig == libc::SIGCHLD {
                    continue;
                }
                let r = match &init_proc.pidfd {
                    Some(fd) => sys::pidfd_send_signal(fd, sig),
                    None => nix::sys::signal::kill(Pid::from_raw(init), Signal::try_from(sig).ok()).map_err(Into::into),
                };
                if let Err(e) = r {
                    log::debug!("forward signal {sig} to init {init}: {e}");
                }
            }
        }
    }
}

/// Reap exited children; `Some(status)` once init is among them.
fn reap(init: i32) -> Result<Option<i32>> {
    loop {
        match waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) if pid.as_raw() == init => return Ok(Some(code)),
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid.as_raw() == init => return Ok(Some(128 + sig as i32)),
            Ok(WaitStatus::StillAlive) => return Ok(None),
            Ok(_) => continue,
            Err(nix::errno::Errno::ECHILD) => {
                return Err(Error::Other(format!("container init {init} is not a child of berth run")))
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(Error::os("waitpid", e)),
        }
    }
}
