//! [`Container::delete`] (`berth delete`): remove a stopped container (or,
//! with --force, kill a created or running one first): its cgroups, state
//! dir, then the poststop hooks.

use std::os::fd::AsRawFd;

use crate::container::{State, StateDir, Status};
use crate::error::{Error, Result};
use crate::hooks::HookKind;

use super::start::run_warn;
use super::Container;

impl Container {
    /// Remove a stopped container (with `force`, kill a created or running
    /// one first): its cgroups and state dir, then the poststop hooks.
    pub fn delete(self, force: bool) -> Result<()> {
        delete(self.dir, self.state, force)
    }

    /// Remove what is left of a container whose init is gone: its cgroups
    /// and state dir, then poststop, whatever its status (a container
    /// without a record only loses its state dir).
    pub fn destroy(self) -> Result<()> {
        match self.state {
            Some(state) => destroy(self.dir, &state),
            None => self.dir.remove(),
        }
    }
}

fn delete(dir: StateDir, state: Option<State>, force: bool) -> Result<()> {
    let id = dir.id.clone();
    let Some(state) = state else {
        // A create that died right after making the directory, before its
        // first record (creating.json, written before any cgroup or process):
        // at most its rootfs bind (no mount namespace) is left.
        if let Some(b) = crate::rootfs::inherited::read_record(&dir.path)? {
            crate::rootfs::inherited::unmount(&b)?;
        }
        return dir.remove();
    };
    match state.status(&dir.path) {
        Status::Stopped => {}
        s if force => kill_and_wait(&state, s)?,
        s => {
            return Err(Error::WrongState(format!(
                "cannot delete container \"{id}\": it is {s} (stop it first, or use --force)"
            )))
        }
    }
    if force || state.pid <= 0 {
        // Whatever is left in any of its cgroups (a create that died
        // before it knew init's pid, or init's children).
        super::kill::signal_all(&state.cgroups, libc::SIGKILL)?;
    }
    destroy(dir, &state)
}

/// SIGKILL everything in the container and wait until init is gone.
fn kill_and_wait(state: &State, status: Status) -> Result<()> {
    let pidfd = state.init_pidfd();
    for pid in state.cgroups.pids() {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
    }
    if let Some(fd) = &pidfd {
        let _ = crate::sys::pidfd_send_signal(fd, libc::SIGKILL);
    }
    // Frozen tasks (v1) only die once thawed.
    if state.paused || state.cgroups.driver().frozen().unwrap_or(false) {
        state.cgroups.driver().set_frozen(false)?;
    }
    if let Some(fd) = &pidfd {
        let mut p = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: `p` is a live pollfd and nfds is 1.
        let r = unsafe { libc::poll(&mut p, 1, 10_000) };
        if r == 0 {
            return Err(Error::os(
                format!("container \"{}\" ({status}) did not die within 10s of SIGKILL", state.id),
                std::io::Error::from_raw_os_error(libc::ETIMEDOUT),
            ));
        }
    }
    Ok(())
}

/// Remove a stopped container's cgroups and state dir, then run poststop.
pub(super) fn destroy(dir: StateDir, state: &State) -> Result<()> {
    log::debug!("{}: removing cgroups and state dir", state.id);
    kill_leftovers(state);
    if let Some(b) = &state.rootfs_bind {
        crate::rootfs::inherited::unmount(b)?;
    }
    state.cgroups.remove()?;
    dir.remove()?;
    run_warn(HookKind::Poststop, &state.poststop, state, Status::Stopped);
    Ok(())
}

/// A container without its own pid namespace can leave processes in its
/// cgroup after init exits; runc's delete kills them, so does berth. One
/// read of the first hierarchy tells whether there is anything to do.
fn kill_leftovers(state: &State) {
    let Some(first) = state.cgroups.mounts.first() else { return };
    if std::fs::read_to_string(first.dir.join("cgroup.procs")).is_ok_and(|t| !t.trim().is_empty()) {
        let _ = super::kill::signal_all(&state.cgroups, libc::SIGKILL);
    }
}
