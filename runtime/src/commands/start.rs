//! `berth start`: release a created container's init through exec.fifo,
//! then run the poststart hooks.

use std::fs::{self, OpenOptions};
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::container::{State, StateDir, Status};
use crate::error::{Error, Result};
use crate::hooks::{self, HookKind};

pub fn start(root: &Path, id: &str) -> Result<()> {
    let dir = StateDir::open(root, id)?;
    let state = dir.load_required()?;
    match state.status(&dir.path) {
        Status::Created => start_created(&dir, &state),
        s => Err(Error::WrongState(format!("cannot start container \"{id}\": it is {s}, not created"))),
    }
}

/// Open exec.fifo and wait for init's byte together with its pidfd, so a
/// dead init never hangs `start`.
pub fn start_created(dir: &StateDir, state: &State) -> Result<()> {
    // The pidfd first: once the fifo is open, init may run and exit at once.
    let pidfd = state
        .init_pidfd()
        .ok_or_else(|| Error::WrongState(format!("cannot start container \"{}\": its init has exited", state.id)))?;
    let fifo_path = dir.fifo_path();
    let mut fifo = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&fifo_path)
        .map_err(|e| Error::path("open", &fifo_path, e))?;
    let mut fds = [
        libc::pollfd { fd: fifo.as_raw_fd(), events: libc::POLLIN, revents: 0 },
        libc::pollfd { fd: pidfd.as_raw_fd(), events: libc::POLLIN, revents: 0 },
    ];
    loop {
        let r = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if r >= 0 {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(Error::os("poll exec.fifo", e));
        }
    }
    let mut b = [0u8; 1];
    let got = if fds[0].revents & libc::POLLIN != 0 { fifo.read(&mut b).unwrap_or(0) } else { 0 };
    if got != 1 {
        return Err(Error::WrongState(format!(
            "cannot start container \"{}\": its init exited before start",
            state.id
        )));
    }
    fs::remove_file(&fifo_path).map_err(|e| Error::path("remove", &fifo_path, e))?;
    // init keeps its end open (CLOEXEC) until it executes the container's
    // program: poststart hooks run after that, and after startContainer.
    loop {
        fds[0].revents = 0;
        fds[1].revents = 0;
        if unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) } < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            break;
        }
        if fds[0].revents & (libc::POLLHUP | libc::POLLERR) != 0 || fds[1].revents != 0 {
            break;
        }
        if fds[0].revents & libc::POLLIN != 0 && fifo.read(&mut b).unwrap_or(0) == 0 {
            break;
        }
    }
    run_warn(HookKind::Poststart, &state.poststart, state, Status::Running);
    Ok(())
}

/// Run hooks whose failure the spec says must only be logged.
pub fn run_warn(kind: HookKind, hooks: &[oci_spec::runtime::Hook], state: &State, status: Status) {
    if hooks.is_empty() {
        return;
    }
    let json = serde_json::to_vec(&state.oci(status)).unwrap_or_default();
    if let Err(e) = hooks::run_hooks(kind, hooks, &json) {
        log::warn!("{e}");
    }
}
