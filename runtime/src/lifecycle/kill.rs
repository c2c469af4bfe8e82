//! [`Container::kill`] (`berth kill`): signal init through a verified pidfd, or every process of
//! the container with --all (also once init is gone, as runc).

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use crate::cgroups::ContainerCgroups;
use crate::container::{State, StateDir, Status};
use crate::error::{Error, Result};
use crate::sys;

use super::Container;

impl Container {
    /// Signal init through a verified pidfd, or with `all` every process of
    /// the container (also once init is gone, as runc).
    pub fn kill(&self, sig: i32, all: bool) -> Result<()> {
        let (dir, state) = self.locked()?;
        kill(dir, state, sig, all)
    }
}

fn kill(dir: &StateDir, state: &State, sig: i32, all: bool) -> Result<()> {
    let id = &state.id;
    // Rootless without a cgroup, nothing lists the container's processes:
    // --all signals init (SIGKILL to a pid namespace's init ends them all).
    if all && !super::no_cgroup(state) {
        // Even when init is gone, as runc: with a shared pid namespace its
        // children may still run in the container's cgroup.
        return signal_all(&state.cgroups, sig);
    }
    // "container not running" is what containerd's shim looks for.
    let not_running = || Error::WrongState(format!("cannot kill container \"{id}\": container not running"));
    if state.status(&dir.path) == Status::Stopped {
        // --all on a stopped container is no error (as above).
        return if all { Ok(()) } else { Err(not_running()) };
    }
    let fd = state.init_pidfd().ok_or_else(not_running)?;
    sys::pidfd_send_signal(&fd, sig).map_err(|e| Error::os(format!("signal container \"{id}\""), e))
}

/// Signal every process in the container's cgroups, sub-cgroups included
/// (`exec --cgroup`). Processes forked meanwhile are caught by listing again
/// until no new pid shows up.
pub(super) fn signal_all(cgroups: &ContainerCgroups, sig: i32) -> Result<()> {
    let signal = nix::sys::signal::Signal::try_from(sig).ok();
    let mut done = BTreeSet::new();
    for _ in 0..10 {
        let fresh: Vec<i32> = all_pids(cgroups).into_iter().filter(|p| !done.contains(p)).collect();
        if fresh.is_empty() {
            break;
        }
        for pid in fresh {
            done.insert(pid);
            if let Err(e) = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal) {
                if e != nix::errno::Errno::ESRCH {
                    return Err(Error::os(format!("kill {pid}"), e));
                }
            }
        }
    }
    Ok(())
}

/// Pids in the container's cgroup and below it, in every hierarchy.
pub(super) fn all_pids(cgroups: &ContainerCgroups) -> BTreeSet<i32> {
    fn walk(dir: &Path, out: &mut BTreeSet<i32>) {
        if let Ok(t) = fs::read_to_string(dir.join("cgroup.procs")) {
            out.extend(t.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
        }
        for e in fs::read_dir(dir).into_iter().flatten().flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                walk(&e.path(), out);
            }
        }
    }
    let mut out = BTreeSet::new();
    for m in &cgroups.mounts {
        walk(&m.dir, &mut out);
    }
    out
}

/// `TERM`, `SIGTERM`, `sigterm`, `15`, `RTMIN+3`.
pub fn parse_signal(s: &str) -> Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=libc::SIGRTMAX()).contains(&n) {
            return Ok(n);
        }
        return Err(Error::Usage(format!("invalid signal number {n}")));
    }
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    if let Some(rest) = name.strip_prefix("RTMIN") {
        let off: i32 = if rest.is_empty() { 0 } else { rest.trim_start_matches('+').parse().unwrap_or(-1) };
        let n = libc::SIGRTMIN() + off;
        if off >= 0 && n <= libc::SIGRTMAX() {
            return Ok(n);
        }
    }
    if let Some(rest) = name.strip_prefix("RTMAX") {
        let off: i32 = if rest.is_empty() { 0 } else { rest.trim_start_matches('-').parse().unwrap_or(-1) };
        let n = libc::SIGRTMAX() - off;
        if off >= 0 && n >= libc::SIGRTMIN() {
            return Ok(n);
        }
    }
    format!("SIG{name}")
        .parse::<nix::sys::signal::Signal>()
        .map(|s| s as i32)
        .map_err(|_| Error::Usage(format!("unknown signal {s:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_spellings() {
        assert_eq!(parse_signal("TERM").unwrap(), 15);
        assert_eq!(parse_signal("SIGTERM").unwrap(), 15);
        assert_eq!(parse_signal("sigkill").unwrap(), 9);
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert_eq!(parse_signal("USR1").unwrap(), libc::SIGUSR1);
        assert_eq!(parse_signal("RTMIN+2").unwrap(), libc::SIGRTMIN() + 2);
        assert!(parse_signal("FOO").is_err());
        assert!(parse_signal("0").is_err());
        assert!(parse_signal("999").is_err());
    }
}
