//! `berth events`: runc's JSON lines for a container. With `--stats`, one
//! `{"type":"stats","id":ID,"data":{...}}` and exit; otherwise a stats
//! event every `--interval` and `{"type":"oom","id":ID}` on each OOM, until
//! the container stops. The state lock is not held while it runs.

use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::container::{StateDir, Status};
use crate::error::{Error, Result};

pub fn events(root: &Path, id: &str, stats_once: bool, interval: &str) -> Result<i32> {
    let every = parse_duration(interval)?;
    let dir = StateDir::open(root, id)?;
    let state = dir.load_required()?;
    let status = state.status(&dir.path);
    drop(dir);
    if status == Status::Stopped {
        return Err(Error::WrongState(format!("container \"{id}\" is not running")));
    }
    let driver = state.cgroups.driver();
    let emit_stats = || -> Result<()> {
        let s = driver.stats()?;
        println!("{}", json!({"type": "stats", "id": id, "data": s}));
        Ok(())
    };
    if stats_once {
        emit_stats()?;
        return Ok(0);
    }
    let pidfd = state.init_pidfd().ok_or_else(|| Error::WrongState(format!("container \"{id}\" is not running")))?;
    let mut oom = match driver.oom_watch() {
        Ok(w) => Some(w),
        Err(e) => {
            log::warn!("events: no OOM notifications: {e}");
            None
        }
    };
    let mut next = Instant::now() + every;
    loop {
        let mut fds = vec![libc::pollfd { fd: pidfd.as_raw_fd(), events: libc::POLLIN, revents: 0 }];
        if let Some(w) = &oom {
            fds.push(libc::pollfd { fd: w.fd().as_raw_fd(), events: libc::POLLIN, revents: 0 });
        }
        let wait = next.saturating_duration_since(Instant::now());
        // SAFETY: `fds` is a live Vec of pollfds and nfds is its length.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, wait.as_millis().min(i32::MAX as u128) as i32) };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(Error::os("poll", e));
        }
        if let (Some(w), Some(p)) = (&mut oom, fds.get(1)) {
            if p.revents & libc::POLLIN != 0 && w.take() > 0 {
                println!("{}", json!({"type": "oom", "id": id}));
            }
        }
        if fds[0].revents & libc::POLLIN != 0 {
            // init is gone: report an OOM that killed it, then stop.
            if let Some(w) = &mut oom {
                let mut p = libc::pollfd { fd: w.fd().as_raw_fd(), events: libc::POLLIN, revents: 0 };
                // SAFETY: `p` is a live pollfd and nfds is 1; a zero timeout never blocks.
                if unsafe { libc::poll(&mut p, 1, 0) } > 0 && w.take() > 0 {
                    println!("{}", json!({"type": "oom", "id": id}));
                }
            }
            return Ok(0);
        }
        if Instant::now() >= next {
            emit_stats()?;
            next = Instant::now() + every;
        }
    }
}

/// Go's duration syntax for the values people pass: "5s", "500ms", "1m30s",
/// "1.5s", "100us", "2h".
pub fn parse_duration(s: &str) -> Result<Duration> {
    let bad = || Error::Usage(format!("--interval: invalid duration {s:?} (like 5s, 500ms, 1m)"));
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut nanos: u128 = 0;
    while !rest.is_empty() {
        let n = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(bad)?;
        let num = &rest[..n];
        rest = &rest[n..];
        let u = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let mult: u128 = match &rest[..u] {
            "ns" => 1,
            "us" | "µs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(bad()),
        };
        nanos += super::update::scaled(num, mult).ok_or_else(bad)?;
        rest = &rest[u..];
    }
    if nanos == 0 {
        return Err(Error::Usage(format!("--interval: {s:?} must be above zero")));
    }
    Ok(Duration::from_nanos(u64::try_from(nanos).map_err(|_| bad())?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("x").is_err());
    }
}
