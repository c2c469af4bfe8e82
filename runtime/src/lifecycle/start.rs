//! [`Container::start`] (`berth start`): release a created container's init
//! through exec.fifo (or its sync socket), then run the poststart hooks.

use std::fs::{self, OpenOptions};
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;

use crate::container::{State, StateDir, Status};
use crate::error::{Error, Result};
use crate::hooks::{self, HookKind};
use crate::process::sync::{self, Msg};

use super::Container;

impl Container {
    /// Start a created container: release init (through exec.fifo, or its
    /// sync socket when this process created it with
    /// [`super::StartBy::Creator`]), then run the poststart hooks.
    pub fn start(&mut self) -> Result<()> {
        let (dir, state) = self.locked()?;
        let Some(init) = &self.init else { return start(dir, state) };
        // Created by this process: the pidfd from its clone (no second
        // pidfd_open and /proc check).
        match (&init.start_socket, &init.pidfd) {
            (Some(sock), Some(fd)) => start_via_socket(state, sock, fd),
            (Some(sock), None) => {
                let fd = state.init_pidfd().ok_or_else(|| {
                    Error::WrongState(format!("cannot start container \"{}\": its init has exited", state.id))
                })?;
                start_via_socket(state, sock, &fd)
            }
            (None, Some(fd)) => start_with_pidfd(dir, state, fd),
            (None, None) => start_created(dir, state),
        }
    }
}

fn start(dir: &StateDir, state: &State) -> Result<()> {
    let id = &state.id;
    // One look at init: a pidfd verified against the recorded start time
    // (None: init has exited), used for the status and the wait below.
    let pidfd = state.init_pidfd();
    let status = match &pidfd {
        Some(_) => state.status_when_alive(&dir.path),
        None => Status::Stopped,
    };
    match (status, pidfd) {
        // On failure (init's error, a hook's, or init dead before the
        // program ran) the container is left stopped, as runc leaves it:
        // `state` shows it, `delete` destroys it and runs poststop.
        (Status::Created, Some(pidfd)) => start_with_pidfd(dir, state, &pidfd),
        (s, _) => Err(Error::WrongState(format!("cannot start container \"{id}\": it is {s}, not created"))),
    }
}

/// Open exec.fifo and wait for init's byte together with its pidfd, so a
/// dead init never hangs `start`.
fn start_created(dir: &StateDir, state: &State) -> Result<()> {
    // The pidfd first: once the fifo is open, init may run and exit at once.
    let pidfd = state
        .init_pidfd()
        .ok_or_else(|| Error::WrongState(format!("cannot start container \"{}\": its init has exited", state.id)))?;
    start_with_pidfd(dir, state, &pidfd)
}

/// [`start_created`] with a pidfd of init the caller holds already (`run`
/// has the one from the clone; `start` the one it checked the status with).
fn start_with_pidfd(dir: &StateDir, state: &State, pidfd: &OwnedFd) -> Result<()> {
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
        // SAFETY: `fds` is a live array of two pollfds and nfds is 2.
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
    // init holds its end until execve closes it: EOF means the program runs
    // (so poststart runs after startContainer and the exec, as the spec
    // orders); anything written before EOF is init's error.
    let mut rest = Vec::new();
    let mut p = libc::pollfd { fd: fifo.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    loop {
        let mut buf = [0u8; 4096];
        match fifo.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => rest.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                // SAFETY: `p` is a live pollfd and nfds is 1.
                unsafe { libc::poll(&mut p, 1, -1) };
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::path("read", &fifo_path, e)),
        }
    }
    if let Some(msg) = rest.strip_prefix(b"E") {
        // init closes the fifo on its way out: wait until it has exited, so
        // the caller sees it stopped.
        let mut p = libc::pollfd { fd: pidfd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: `p` is a live pollfd and nfds is 1; the wait is bounded (10 s).
        unsafe { libc::poll(&mut p, 1, 10_000) };
        return Err(Error::Init(
            sync::from_fifo(msg).context(format_args!("container \"{}\" failed to start", state.id)),
        ));
    }
    poststart(state, pidfd)
}

/// `run`'s start of a container it created itself (no exec.fifo): send
/// `Start` on init's sync socket and read it to EOF, which init's execve
/// makes; a message before that is init's error (the container is then
/// stopped).
fn start_via_socket(state: &State, sock: &OwnedFd, pidfd: &OwnedFd) -> Result<()> {
    if sync::send(sock, &Msg::Start).is_err() {
        return Err(Error::WrongState(format!(
            "cannot start container \"{}\": its init exited before start",
            state.id
        )));
    }
    // One message at most: EOF, or init's error (then it exits).
    match sync::recv(sock, false) {
        Ok(None) => poststart(state, pidfd),
        Ok(Some((Msg::Error(m), _))) => {
            // Wait until init has exited, so the caller sees it stopped.
            let mut p = libc::pollfd { fd: pidfd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
            // SAFETY: `p` is a live pollfd and nfds is 1; the wait is bounded (10 s).
            unsafe { libc::poll(&mut p, 1, 10_000) };
            Err(Error::Init(m.context(format_args!("container \"{}\" failed to start", state.id))))
        }
        Ok(Some((other, _))) => Err(Error::Protocol(format!("unexpected message from init: {other:?}"))),
        Err(e) => Err(Error::os("read from container init", e)),
    }
}

/// Once the program runs: the poststart hooks; if one fails, the
/// container is killed (the spec: generate an error and stop it).
fn poststart(state: &State, pidfd: &OwnedFd) -> Result<()> {
    log::debug!("{}: started, init {} has exec'd", state.id, state.pid);
    if !state.poststart.is_empty() {
        let json = serde_json::to_vec(&state.oci(Status::Running)).unwrap_or_default();
        if let Err(e) = hooks::run_hooks(HookKind::Poststart, &state.poststart, &json) {
            // The spec: generate an error and stop the container.
            let _ = crate::sys::pidfd_send_signal(pidfd, libc::SIGKILL);
            let mut p = libc::pollfd { fd: pidfd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
            // SAFETY: `p` is a live pollfd and nfds is 1; the wait is bounded (10 s).
            unsafe { libc::poll(&mut p, 1, 10_000) };
            return Err(e.into());
        }
    }
    Ok(())
}

/// Run hooks whose failure the spec says must only be logged (poststop):
/// every hook runs, each failure is a warning.
pub(super) fn run_warn(kind: HookKind, hooks: &[oci_spec::runtime::Hook], state: &State, status: Status) {
    if hooks.is_empty() {
        return;
    }
    warn_each(kind, hooks, &serde_json::to_vec(&state.oci(status)).unwrap_or_default());
}

/// Run every hook with `json` on stdin; a failure is a warning.
pub(super) fn warn_each(kind: HookKind, hooks: &[oci_spec::runtime::Hook], json: &[u8]) {
    for (i, h) in hooks.iter().enumerate() {
        if let Err(mut e) = hooks::run_hooks(kind, std::slice::from_ref(h), json) {
            e.index = i;
            log::warn!("{e}");
        }
    }
}
