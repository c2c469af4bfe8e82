//! `berth kill`: signal init through a verified pidfd, or every process of
//! the container with --all.

use std::path::Path;

use crate::container::{StateDir, Status};
use crate::error::{Error, Result};
use crate::sys;

pub fn kill(root: &Path, id: &str, signal: Option<&str>, all: bool) -> Result<()> {
    let sig = parse_signal(signal.unwrap_or("SIGTERM"))?;
    let dir = StateDir::open(root, id)?;
    let state = dir.load_required()?;
    if state.status(&dir.path) == Status::Stopped {
        return Err(Error::WrongState(format!("container \"{id}\" is not running")));
    }
    if all {
        for pid in state.cgroups.pids() {
            if let Err(e) = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::try_from(sig).ok()) {
                if e != nix::errno::Errno::ESRCH {
                    return Err(Error::os(format!("kill {pid}"), e));
                }
            }
        }
        return Ok(());
    }
    let fd = state.init_pidfd().ok_or_else(|| Error::WrongState(format!("container \"{id}\" is not running")))?;
    sys::pidfd_send_signal(&fd, sig).map_err(|e| Error::os(format!("signal container \"{id}\""), e))
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
