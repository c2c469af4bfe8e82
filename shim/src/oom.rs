//! TaskOOM: one thread watches every container's OOM notifier with epoll
//! (berth's [`berth::OomWatch`]: on cgroup v1 an eventfd
//! registered on memory.oom_control, on v2 an inotify watch on
//! memory.events) and publishes `TaskOOM` for each OOM event.
//!
//! A container's watch is added after create and removed before its
//! cgroups are destroyed (on v1 removing the cgroup fires the eventfd).
//! Before init's TaskExit the service calls [`OomWatcher::check`], so an
//! OOM kill is published ahead of the exit it caused.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex};

use berth::OomWatch;
use containerd_shim_protos::events::task::TaskOOM;

use crate::publish::Publish;

/// An OOM notifier: berth's [`OomWatch`] of a memory cgroup (the service's
/// tests use an eventfd).
pub trait OomSource: Send {
    /// Readable when OOM events are pending.
    fn fd(&self) -> BorrowedFd<'_>;
    /// The number of OOM events since the last call.
    fn take(&mut self) -> u64;
}

impl OomSource for OomWatch {
    fn fd(&self) -> BorrowedFd<'_> {
        OomWatch::fd(self)
    }

    fn take(&mut self) -> u64 {
        OomWatch::take(self)
    }
}

struct Watch {
    id: String,
    w: Box<dyn OomSource>,
}

pub struct OomWatcher {
    epfd: OwnedFd,
    watches: Mutex<HashMap<RawFd, Watch>>,
    publisher: Arc<dyn Publish>,
}

impl OomWatcher {
    /// The watcher and its epoll thread.
    pub fn start(publisher: impl Publish + 'static) -> Result<Arc<OomWatcher>, String> {
        let me = Arc::new(OomWatcher::new(publisher)?);
        let w = me.clone();
        std::thread::Builder::new()
            .name("oom".into())
            .stack_size(64 << 10)
            .spawn(move || w.run())
            .map_err(|e| format!("spawn the OOM watcher: {e}"))?;
        Ok(me)
    }

    /// The watcher without its thread: events go out only through
    /// [`OomWatcher::check`].
    pub fn new(publisher: impl Publish + 'static) -> Result<OomWatcher, String> {
        // SAFETY: epoll_create1 takes integer flags and returns a new fd or -1, checked below.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(format!(
                "epoll_create1: {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(OomWatcher {
            // SAFETY: fd is the non-negative fd epoll_create1 just returned; nothing else owns it.
            epfd: unsafe { OwnedFd::from_raw_fd(fd) },
            watches: Mutex::new(HashMap::new()),
            publisher: Arc::new(publisher),
        })
    }

    fn run(&self) {
        let mut evs = [libc::epoll_event { events: 0, u64: 0 }; 16];
        loop {
            // SAFETY: `evs` is a live array and the count passed is its length; the kernel writes
            // at most that many events.
            let n = unsafe {
                libc::epoll_wait(
                    self.epfd.as_raw_fd(),
                    evs.as_mut_ptr(),
                    evs.len() as i32,
                    -1,
                )
            };
            if n < 0 {
                if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                log::warn!(
                    "OOM watcher: epoll_wait: {}",
                    std::io::Error::last_os_error()
                );
                return;
            }
            let mut g = self.watches.lock().unwrap_or_else(|e| e.into_inner());
            for ev in &evs[..n as usize] {
                if let Some(w) = g.get_mut(&(ev.u64 as RawFd)) {
                    self.take(w);
                }
            }
        }
    }

    fn take(&self, w: &mut Watch) {
        if w.w.take() > 0 {
            let mut e = TaskOOM::new();
            e.container_id = w.id.clone();
            self.publisher
                .publish("/tasks/oom", "containerd.events.TaskOOM", &e);
        }
    }

    /// Watch container `id`, whose memory cgroup is `dir` (v1's memory
    /// hierarchy, or the v2 cgroup).
    pub fn add(&self, id: &str, dir: &std::path::Path, v2: bool) -> Result<(), String> {
        let w = if v2 {
            OomWatch::v2(dir)
        } else {
            OomWatch::v1(dir)
        }
        .map_err(|e| e.to_string())?;
        self.watch(id, Box::new(w))
    }

    /// Watch container `id` through `w`.
    pub fn watch(&self, id: &str, w: Box<dyn OomSource>) -> Result<(), String> {
        let fd = w.fd().as_raw_fd();
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: fd as u64,
        };
        let mut g = self.watches.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: `ev` is a live epoll_event the kernel only reads; epfd is open (owned by self).
        if unsafe { libc::epoll_ctl(self.epfd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) } < 0 {
            return Err(format!("epoll_ctl: {}", std::io::Error::last_os_error()));
        }
        g.insert(
            fd,
            Watch {
                id: id.to_string(),
                w,
            },
        );
        Ok(())
    }

    /// Publish a pending OOM event of `id` now (before its init's exit).
    pub fn check(&self, id: &str) {
        let mut g = self.watches.lock().unwrap_or_else(|e| e.into_inner());
        for w in g.values_mut().filter(|w| w.id == id) {
            let mut p = libc::pollfd {
                fd: w.w.fd().as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: `p` is a live pollfd and nfds is 1; a zero timeout never blocks.
            if unsafe { libc::poll(&mut p, 1, 0) } > 0 {
                self.take(w);
            }
        }
    }

    /// Stop watching `id`.
    pub fn remove(&self, id: &str) {
        let mut g = self.watches.lock().unwrap_or_else(|e| e.into_inner());
        let fds: Vec<RawFd> = g
            .iter()
            .filter(|(_, w)| w.id == id)
            .map(|(fd, _)| *fd)
            .collect();
        for fd in fds {
            // SAFETY: EPOLL_CTL_DEL ignores the event pointer, so null is allowed.
            unsafe {
                libc::epoll_ctl(
                    self.epfd.as_raw_fd(),
                    libc::EPOLL_CTL_DEL,
                    fd,
                    std::ptr::null_mut(),
                )
            };
            g.remove(&fd);
        }
    }
}
