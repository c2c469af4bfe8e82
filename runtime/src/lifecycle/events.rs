//! [`Container::events`]: what `berth events` prints as runc's JSON lines.
//! With [`Watch::StatsOnce`], the stats once; otherwise the stats every
//! interval and each OOM, until the container stops. The state lock is not
//! held while it runs.

use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use crate::cgroups::stats::Stats;
use crate::container::Status;
use crate::error::{Error, Result};

use super::Container;

/// What [`Container::events`] reports.
#[derive(Debug)]
pub enum Event {
    /// The cgroup statistics, once or every interval.
    Stats(Box<Stats>),
    /// The kernel's OOM killer acted in the container.
    Oom,
}

/// How long [`Container::events`] watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watch {
    /// One [`Event::Stats`], then return.
    StatsOnce,
    /// Stats every interval and each OOM, until init exits.
    Every(Duration),
}

type Emit<'a> = &'a mut dyn FnMut(Event) -> Result<()>;

impl Container {
    /// Report the container's events to `emit`, whose error ends the
    /// watch. The state directory is unlocked meanwhile.
    pub fn events(self, watch: Watch, emit: Emit) -> Result<()> {
        events(self, watch, emit)
    }
}

fn events(c: Container, watch: Watch, emit: Emit) -> Result<()> {
    let Container { dir, state, .. } = c;
    let id = dir.id.clone();
    let state = state.ok_or_else(|| Error::NotFound(id.clone()))?;
    let status = state.status(&dir.path);
    drop(dir);
    if status == Status::Stopped {
        return Err(Error::WrongState(format!("container \"{id}\" is not running")));
    }
    super::needs_cgroup(&state, "events")?;
    let driver = state.cgroups.driver();
    let emit_stats = |emit: Emit| -> Result<()> {
        let s = driver.stats()?;
        emit(Event::Stats(Box::new(s)))
    };
    let every = match watch {
        Watch::StatsOnce => return emit_stats(emit),
        Watch::Every(every) => every,
    };
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
                emit(Event::Oom)?;
            }
        }
        if fds[0].revents & libc::POLLIN != 0 {
            // init is gone: report an OOM that killed it, then stop.
            if let Some(w) = &mut oom {
                let mut p = libc::pollfd { fd: w.fd().as_raw_fd(), events: libc::POLLIN, revents: 0 };
                // SAFETY: `p` is a live pollfd and nfds is 1; a zero timeout never blocks.
                if unsafe { libc::poll(&mut p, 1, 0) } > 0 && w.take() > 0 {
                    emit(Event::Oom)?;
                }
            }
            return Ok(());
        }
        if Instant::now() >= next {
            emit_stats(&mut *emit)?;
            next = Instant::now() + every;
        }
    }
}
