//! OOM notification for `events`: on v1 an eventfd registered through
//! cgroup.event_control on memory.oom_control (fires on every OOM), on v2
//! an inotify watch on memory.events (an OOM is a rise of `oom_kill`).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use super::fsutil;
use crate::error::{Error, Result};

pub struct OomWatch {
    fd: OwnedFd,
    kind: Kind,
}

enum Kind {
    V1 { _control: std::fs::File },
    V2 { dir: PathBuf, oom_kills: u64 },
}

fn oom_kills(dir: &Path) -> u64 {
    fsutil::read(dir, "memory.events")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("oom_kill ").and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0)
}

impl OomWatch {
    pub fn v1(dir: &Path) -> Result<OomWatch> {
        // SAFETY: eventfd takes integer arguments and returns a new fd or -1.
        let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if efd < 0 {
            return Err(Error::os("eventfd", io::Error::last_os_error()));
        }
        // SAFETY: efd is the non-negative fd eventfd just returned; nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(efd) };
        let control = std::fs::File::open(dir.join("memory.oom_control"))
            .map_err(|e| Error::path("open", dir.join("memory.oom_control"), e))?;
        let line = format!("{} {}", fd.as_raw_fd(), control.as_raw_fd());
        fsutil::write(dir, "cgroup.event_control", &line)
            .map_err(|e| Error::path("write", dir.join("cgroup.event_control"), e))?;
        Ok(OomWatch {
            fd,
            kind: Kind::V1 { _control: control },
        })
    }

    pub fn v2(dir: &Path) -> Result<OomWatch> {
        // SAFETY: inotify_init1 takes integer flags and returns a new fd or -1.
        let ifd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) };
        if ifd < 0 {
            return Err(Error::os("inotify_init1", io::Error::last_os_error()));
        }
        // SAFETY: ifd is the non-negative fd inotify_init1 just returned; nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(ifd) };
        let p = dir.join("memory.events");
        let c =
            std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).map_err(|e| Error::path("watch", &p, e.into()))?;
        // SAFETY: `c` is a NUL-terminated CString alive for the call; ifd is open (owned by `fd`).
        if unsafe { libc::inotify_add_watch(ifd, c.as_ptr(), libc::IN_MODIFY) } < 0 {
            return Err(Error::path("watch", p, io::Error::last_os_error()));
        }
        Ok(OomWatch {
            fd,
            kind: Kind::V2 {
                dir: dir.to_path_buf(),
                oom_kills: oom_kills(dir),
            },
        })
    }

    /// The fd to poll for POLLIN.
    pub fn fd(&self) -> BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.fd.as_fd()
    }

    /// After POLLIN: drain, and say how many OOM events happened.
    pub fn take(&mut self) -> u64 {
        let mut buf = [0u8; 4096];
        // SAFETY: `buf` is a live stack buffer and read writes at most buf.len() bytes into it.
        let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        match &mut self.kind {
            Kind::V1 { .. } => {
                if n == 8 {
                    u64::from_ne_bytes(buf[..8].try_into().unwrap())
                } else {
                    0
                }
            }
            Kind::V2 { dir, oom_kills: last } => {
                let now = oom_kills(dir);
                let d = now.saturating_sub(*last);
                *last = now;
                d
            }
        }
    }
}
