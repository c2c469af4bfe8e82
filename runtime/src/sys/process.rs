//! Processes: clone3 (fork-like, with a pidfd and into a cgroup), pidfds,
//! scheduling attributes, I/O priority, personality, and /proc/PID/stat.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::cvt;

#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

pub const CLONE_PIDFD: u64 = 0x1000;
pub const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// The result of a fork-like clone: in the parent the child's pid (and a
/// pidfd when the kernel gave one), in the child `Child`.
pub enum Forked {
    Parent { pid: libc::pid_t, pidfd: Option<OwnedFd> },
    Child,
}

/// Fork-like clone with namespace `flags`: clone3 with CLONE_PIDFD (and
/// CLONE_INTO_CGROUP when `cgroup` is given), falling back to clone(2) when
/// clone3 is not available. The child continues on a copy of the caller's
/// stack, like fork; the caller must be single-threaded.
///
/// # Safety
/// The child must only do async-signal-safe work or be the only thread of
/// its process (true when the caller is single-threaded).
pub unsafe fn clone_fork(flags: u64, cgroup: Option<RawFd>) -> io::Result<Forked> {
    let mut pidfd: RawFd = -1;
    let mut args = CloneArgs {
        flags: flags | CLONE_PIDFD,
        pidfd: &mut pidfd as *mut RawFd as u64,
        // With CLONE_PARENT the child takes the caller's own exit signal;
        // clone3 refuses one given alongside.
        exit_signal: if flags & libc::CLONE_PARENT as u64 != 0 { 0 } else { libc::SIGCHLD as u64 },
        ..Default::default()
    };
    if let Some(fd) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd as u64;
    }
    let r = libc::syscall(libc::SYS_clone3, &mut args as *mut CloneArgs, std::mem::size_of::<CloneArgs>());
    if r == 0 {
        return Ok(Forked::Child);
    }
    if r > 0 {
        let pidfd = (pidfd >= 0).then(|| OwnedFd::from_raw_fd(pidfd));
        return Ok(Forked::Parent { pid: r as libc::pid_t, pidfd });
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() != Some(libc::ENOSYS) || cgroup.is_some() {
        return Err(err);
    }
    // clone(2): flags in the low word, exit signal in CSIGNAL, no new stack.
    let r = libc::syscall(
        libc::SYS_clone,
        (flags as libc::c_ulong) | libc::SIGCHLD as libc::c_ulong,
        0usize,
        0usize,
        0usize,
        0usize,
    );
    match r {
        0 => Ok(Forked::Child),
        r if r > 0 => Ok(Forked::Parent { pid: r as libc::pid_t, pidfd: pidfd_open(r as libc::pid_t).ok() }),
        _ => Err(io::Error::last_os_error()),
    }
}

pub fn pidfd_open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    let pid = rustix::process::Pid::from_raw(pid).ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
    rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).map_err(Into::into)
}

pub fn pidfd_send_signal(pidfd: &impl AsRawFd, sig: i32) -> io::Result<()> {
    // SAFETY: a null siginfo is allowed (the kernel fills in a default one); the pidfd is
    // open for the call, borrowed from the caller.
    cvt(unsafe {
        libc::syscall(libc::SYS_pidfd_send_signal, pidfd.as_raw_fd(), sig, std::ptr::null::<libc::siginfo_t>(), 0)
    })
    .map(drop)
}

#[repr(C)]
#[derive(Default)]
pub struct SchedAttr {
    pub size: u32,
    pub sched_policy: u32,
    pub sched_flags: u64,
    pub sched_nice: i32,
    pub sched_priority: u32,
    pub sched_runtime: u64,
    pub sched_deadline: u64,
    pub sched_period: u64,
}

pub fn sched_setattr(attr: &mut SchedAttr) -> io::Result<()> {
    attr.size = std::mem::size_of::<SchedAttr>() as u32;
    // SAFETY: `attr` is a live, exclusively borrowed repr(C) sched_attr whose `size`
    // field, set above, tells the kernel how many bytes it may read.
    cvt(unsafe { libc::syscall(libc::SYS_sched_setattr, 0, attr as *mut SchedAttr, 0) }).map(drop)
}

pub fn ioprio_set_self(class: u32, level: u32) -> io::Result<()> {
    const IOPRIO_WHO_PROCESS: libc::c_int = 1;
    let prio = (class << 13) | level;
    // SAFETY: ioprio_set takes integer arguments only and reads no memory.
    cvt(unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, prio) }).map(drop)
}

pub fn personality(persona: libc::c_ulong) -> io::Result<()> {
    // SAFETY: personality takes an integer and reads no memory.
    let r = unsafe { libc::personality(persona) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// A process's start time in clock ticks since boot (field 22 of
/// /proc/PID/stat), used to tell a live init from a recycled pid.
pub fn process_start_time(pid: libc::pid_t) -> io::Result<u64> {
    process_stat(pid).map(|(_, t)| t)
}

/// State letter ('Z' for a zombie) and start time of `pid`, from one read of /proc/PID/stat
/// into a stack buffer (the line is well under 1 KiB).
pub fn process_stat(pid: libc::pid_t) -> io::Result<(char, u64)> {
    let path = format!("/proc/{pid}/stat\0");
    // SAFETY: `path` ends in the NUL written into the format string and lives across the call.
    let fd = cvt(unsafe { libc::open(path.as_ptr().cast(), libc::O_RDONLY | libc::O_CLOEXEC) } as libc::c_long)?;
    // SAFETY: fd is the new fd cvt just checked; nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
    let mut buf = [0u8; 1024];
    let n = loop {
        // SAFETY: `buf` is a live stack buffer and read writes at most buf.len() bytes.
        let r = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if r >= 0 {
            break r as usize;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    };
    let text = String::from_utf8_lossy(&buf[..n]);
    parse_stat(&text).ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "malformed /proc/PID/stat"))
}

fn parse_stat(stat: &str) -> Option<(char, u64)> {
    // comm (field 2) may contain spaces and parentheses: split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    // rest starts at field 3 (state); start time is field 22.
    let mut f = rest.split_whitespace();
    let state = f.next()?.chars().next()?;
    Some((state, f.nth(18)?.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_survives_odd_comm() {
        let s = "42 (a b) c)) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(parse_stat(s), Some(('S', 987654)));
    }

    #[test]
    fn own_start_time_is_stable() {
        let pid = std::process::id() as i32;
        assert_eq!(process_start_time(pid).unwrap(), process_start_time(pid).unwrap());
        assert_ne!(process_stat(pid).unwrap().0, 'Z');
    }
}
