//! Process attributes init applies before execve: sysctl, oom_score_adj,
//! hostname, rlimits, scheduler, I/O priority, personality, cwd, user and
//! groups, and the executable's lookup.

use std::ffi::CString;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::unistd::{setgroups, setresgid, setresuid, Gid, Uid};
use oci_spec::runtime::{
    IOPriorityClass, LinuxPersonalityDomain, LinuxSchedulerFlag, LinuxSchedulerPolicy, PosixRlimitType, Process, Spec,
};

use crate::error::{Clip, Error, Result};
use crate::sys;

fn write_proc(path: &str, value: &str, field: &str) -> Result<()> {
    fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|mut f| f.write_all(value.as_bytes()))
        .map_err(|e| Error::os(format!("{field}: write {} to {path}", Clip(value)), e))
}

/// Join cgroups by writing "0" to their `tasks` / `cgroup.procs` files
/// (opened by the parent with the host's credentials).
pub fn join_cgroups(files: &[std::os::fd::OwnedFd]) -> Result<()> {
    use std::os::fd::AsRawFd;
    for f in files {
        // SAFETY: writes one byte from a static string to an open cgroup tasks file.
        let r = unsafe { libc::write(f.as_raw_fd(), b"0".as_ptr().cast(), 1) };
        if r != 1 {
            return Err(Error::os("join the container's cgroup", std::io::Error::last_os_error()));
        }
    }
    Ok(())
}

pub fn sysctl(spec: &Spec) -> Result<()> {
    let Some(map) = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) else { return Ok(()) };
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    for k in keys {
        if k.contains('/') || k.split('.').any(str::is_empty) {
            return Err(Error::config(format!("linux.sysctl.{k}"), "invalid key"));
        }
        let path = format!("/proc/sys/{}", k.replace('.', "/"));
        write_proc(&path, &map[k], &format!("linux.sysctl.{k}"))?;
    }
    Ok(())
}

pub fn oom_score_adj(spec: &Spec) -> Result<()> {
    if let Some(v) = spec.process().as_ref().and_then(|p| p.oom_score_adj()) {
        write_proc("/proc/self/oom_score_adj", &v.to_string(), "process.oomScoreAdj")?;
    }
    Ok(())
}

pub fn hostname(spec: &Spec) -> Result<()> {
    if let Some(h) = spec.hostname() {
        nix::unistd::sethostname(h).map_err(|e| Error::os(format!("hostname: set {}", Clip(h)), e))?;
    }
    if let Some(d) = spec.domainname() {
        // SAFETY: `d` is a live &str; setdomainname reads exactly d.len() bytes of it.
        let r = unsafe { libc::setdomainname(d.as_ptr().cast(), d.len()) };
        if r != 0 {
            return Err(Error::os(format!("domainname: set {}", Clip(d)), std::io::Error::last_os_error()));
        }
    }
    Ok(())
}

fn rlimit_resource(t: PosixRlimitType) -> libc::__rlimit_resource_t {
    use PosixRlimitType::*;
    match t {
        RlimitCpu => libc::RLIMIT_CPU,
        RlimitFsize => libc::RLIMIT_FSIZE,
        RlimitData => libc::RLIMIT_DATA,
        RlimitStack => libc::RLIMIT_STACK,
        RlimitCore => libc::RLIMIT_CORE,
        RlimitRss => libc::RLIMIT_RSS,
        RlimitNproc => libc::RLIMIT_NPROC,
        RlimitNofile => libc::RLIMIT_NOFILE,
        RlimitMemlock => libc::RLIMIT_MEMLOCK,
        RlimitAs => libc::RLIMIT_AS,
        RlimitLocks => libc::RLIMIT_LOCKS,
        RlimitSigpending => libc::RLIMIT_SIGPENDING,
        RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        RlimitNice => libc::RLIMIT_NICE,
        RlimitRtprio => libc::RLIMIT_RTPRIO,
        RlimitRttime => libc::RLIMIT_RTTIME,
    }
}

pub fn rlimits(p: &Process) -> Result<()> {
    for (i, r) in p.rlimits().as_deref().unwrap_or(&[]).iter().enumerate() {
        let lim = libc::rlimit { rlim_cur: r.soft(), rlim_max: r.hard() };
        // SAFETY: `lim` is a live, initialised rlimit; setrlimit only reads it.
        if unsafe { libc::setrlimit(rlimit_resource(r.typ()), &lim) } != 0 {
            return Err(Error::os(
                format!("process.rlimits[{i}]: set {:?} soft {} hard {}", r.typ(), r.soft(), r.hard()),
                std::io::Error::last_os_error(),
            ));
        }
    }
    Ok(())
}

pub fn scheduler(p: &Process) -> Result<()> {
    let Some(s) = p.scheduler() else { return Ok(()) };
    let mut attr = sys::SchedAttr {
        sched_policy: match s.policy() {
            LinuxSchedulerPolicy::SchedOther => 0,
            LinuxSchedulerPolicy::SchedFifo => 1,
            LinuxSchedulerPolicy::SchedRr => 2,
            LinuxSchedulerPolicy::SchedBatch => 3,
            LinuxSchedulerPolicy::SchedIso => 4,
            LinuxSchedulerPolicy::SchedIdle => 5,
            LinuxSchedulerPolicy::SchedDeadline => 6,
        },
        sched_nice: s.nice().unwrap_or(0),
        sched_priority: s.priority().unwrap_or(0) as u32,
        sched_runtime: s.runtime().unwrap_or(0),
        sched_deadline: s.deadline().unwrap_or(0),
        sched_period: s.period().unwrap_or(0),
        ..Default::default()
    };
    for f in s.flags().as_deref().unwrap_or(&[]) {
        attr.sched_flags |= match f {
            LinuxSchedulerFlag::SchedResetOnFork => 0x01,
            LinuxSchedulerFlag::SchedFlagReclaim => 0x02,
            LinuxSchedulerFlag::SchedFlagDLOverrun => 0x04,
            LinuxSchedulerFlag::SchedFlagKeepPolicy => 0x08,
            LinuxSchedulerFlag::SchedFlagKeepParams => 0x10,
            LinuxSchedulerFlag::SchedFlagUtilClampMin => 0x20,
            LinuxSchedulerFlag::SchedFlagUtilClampMax => 0x40,
        };
    }
    sys::sched_setattr(&mut attr).map_err(|e| Error::os(format!("process.scheduler: sched_setattr {:?}", s.policy()), e))
}

pub fn io_priority(p: &Process) -> Result<()> {
    let Some(io) = p.io_priority() else { return Ok(()) };
    let class = match io.class() {
        IOPriorityClass::IoprioClassRt => 1,
        IOPriorityClass::IoprioClassBe => 2,
        IOPriorityClass::IoprioClassIdle => 3,
    };
    let level = io.priority();
    if !(0..=7).contains(&level) {
        return Err(Error::config("process.ioPriority.priority", format!("{level} is not in 0..7")));
    }
    sys::ioprio_set_self(class, level as u32).map_err(|e| Error::os("process.ioPriority: ioprio_set", e))
}

pub fn personality(spec: &Spec) -> Result<()> {
    match spec.linux().as_ref().and_then(|l| l.personality().as_ref()) {
        Some(p) => set_personality(p),
        None => Ok(()),
    }
}

/// linux.personality, for init and exec'd processes alike.
pub fn set_personality(p: &oci_spec::runtime::LinuxPersonality) -> Result<()> {
    let persona = match p.domain() {
        LinuxPersonalityDomain::PerLinux => 0x0000,
        LinuxPersonalityDomain::PerLinux32 => 0x0008,
    };
    sys::personality(persona).map_err(|e| Error::os("linux.personality: personality", e))
}

/// After the pivot, so the path is inside the container's root.
pub fn chdir(p: &Process) -> Result<()> {
    let cwd = p.cwd();
    nix::unistd::chdir(cwd.as_path()).map_err(|e| Error::os(format!("process.cwd: chdir {}", cwd.display()), e))
}

fn env_path(p: &Process) -> String {
    p.env()
        .as_deref()
        .unwrap_or(&[])
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        .to_string()
}

fn is_executable(p: &Path) -> bool {
    fs::metadata(p).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

/// args[0], looked up in the process's PATH (inside the container) when it
/// has no slash, like execvp.
pub fn find_executable(p: &Process) -> Result<CString> {
    let args = p.args().as_deref().unwrap_or(&[]);
    let Some(arg0) = args.first() else {
        return Err(Error::config("process.args", "must not be empty"));
    };
    let found: Option<PathBuf> = if arg0.contains('/') {
        Some(PathBuf::from(arg0))
    } else {
        env_path(p)
            .split(':')
            .map(|d| Path::new(if d.is_empty() { "." } else { d }).join(arg0))
            .find(|c| is_executable(c))
    };
    match found {
        Some(path) if arg0.contains('/') && !path.exists() => {
            Err(Error::config("process.args[0]", format!("exec {arg0:?}: no such file or directory")))
        }
        Some(path) => CString::new(path.into_os_string().into_encoded_bytes())
            .map_err(|_| Error::config("process.args[0]", "contains a NUL byte")),
        None => Err(Error::config("process.args[0]", format!("exec {arg0:?}: executable file not found in $PATH"))),
    }
}

/// The process env, with HOME added when it has none, as runc does: the
/// user's home from the container's /etc/passwd (read after the pivot),
/// else "/".
pub fn env_with_home(p: &Process) -> Vec<String> {
    let mut env: Vec<String> = p.env().as_deref().unwrap_or(&[]).to_vec();
    if env.iter().any(|e| e.starts_with("HOME=")) {
        return env;
    }
    let uid = p.user().uid();
    let home = fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|t| passwd_home(&t, uid))
        .unwrap_or_else(|| "/".to_string());
    env.push(format!("HOME={home}"));
    env
}

fn passwd_home(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 6 && f[2].parse() == Ok(uid) && !f[5].is_empty()).then(|| f[5].to_string())
    })
}

pub fn cstrings(v: &[String], field: &str) -> Result<Vec<CString>> {
    v.iter()
        .enumerate()
        .map(|(i, s)| {
            CString::new(s.as_bytes()).map_err(|_| Error::config(format!("{field}[{i}]"), "contains a NUL byte"))
        })
        .collect()
}

/// Groups, gid, uid and umask of the container process.
pub fn user(p: &Process) -> Result<()> {
    let u = p.user();
    let groups: Vec<Gid> = u.additional_gids().as_deref().unwrap_or(&[]).iter().map(|g| Gid::from_raw(*g)).collect();
    if let Err(e) = setgroups(&groups) {
        // A user namespace whose gid_map its unprivileged creator wrote
        // denies setgroups: fine while there are no groups to set.
        if !(groups.is_empty() && setgroups_denied()) {
            return Err(Error::os("process.user.additionalGids: setgroups", e));
        }
    }
    let gid = Gid::from_raw(u.gid());
    setresgid(gid, gid, gid).map_err(|e| Error::os(format!("process.user.gid: setresgid {}", u.gid()), e))?;
    let uid = Uid::from_raw(u.uid());
    setresuid(uid, uid, uid).map_err(|e| Error::os(format!("process.user.uid: setresuid {}", u.uid()), e))?;
    if let Some(m) = u.umask() {
        // SAFETY: umask only swaps the process's file mode mask; it cannot fail.
        unsafe { libc::umask(m as libc::mode_t) };
    }
    Ok(())
}

/// Whether this user namespace denies setgroups (`/proc/self/setgroups`).
fn setgroups_denied() -> bool {
    std::fs::read_to_string("/proc/self/setgroups").is_ok_and(|s| s.trim() == "deny")
}

/// Undo berth's signal state: an empty mask, SIGPIPE at default (Rust
/// ignores it, and ignored dispositions survive execve).
pub fn reset_signals() {
    // SAFETY: `set` is a zeroed sigset_t (plain data) that sigemptyset initialises before
    // sigprocmask reads it; SIG_DFL is a valid disposition for the signals named,
    // and no Rust code relies on their handlers (the next step is execve).
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// No fd of berth's survives execve: everything from 3 + preserve_fds up is
/// CLOEXEC; the preserved ones are made inheritable.
///
/// close_range(CLOSE_RANGE_CLOEXEC) (Linux 5.11), else, when the kernel
/// lacks it or a seccomp filter refuses it, fcntl on each fd listed in
/// /proc/self/fd.
pub fn fds_for_exec(preserve: u32) -> Result<()> {
    for fd in 3..3 + preserve as i32 {
        // SAFETY: fcntl on a descriptor number only reads and sets fd flags; a closed number
        // fails with EBADF and is skipped.
        unsafe {
            let fl = libc::fcntl(fd, libc::F_GETFD);
            if fl >= 0 {
                libc::fcntl(fd, libc::F_SETFD, fl & !libc::FD_CLOEXEC);
            }
        }
    }
    match sys::cloexec_from(3 + preserve) {
        Err(e) if close_range_missing(&e) => {
            let fds = open_fds_from(3 + preserve as i32).map_err(|_| Error::os("close_range", e))?;
            for fd in fds {
                // SAFETY: fcntl(F_SETFD) only sets a flag on an fd listed as open in /proc/self/fd.
                unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
            }
            Ok(())
        }
        r => r.map_err(|e| Error::os("close_range", e)),
    }
}

/// Close every fd from `first` up but those in `keep` (close_range, Linux
/// 5.9, else close(2) on each fd listed in /proc/self/fd). The kept ones
/// are left as they are.
pub fn close_from(first: u32, keep: &[u32]) -> Result<()> {
    let mut keep: Vec<u32> = keep.iter().copied().filter(|k| *k >= first).collect();
    keep.sort_unstable();
    let mut ranges = Vec::with_capacity(keep.len() + 1);
    let mut lo = first;
    for &k in &keep {
        if k > lo {
            ranges.push((lo, k - 1));
        }
        lo = lo.max(k.saturating_add(1));
    }
    ranges.push((lo, u32::MAX));
    for (lo, hi) in ranges {
        // SAFETY: close_range with integer arguments; it closes fds no Rust owner will use
        // again (we are about to execve, and kept fds are outside the ranges).
        if lo > hi || unsafe { libc::syscall(libc::SYS_close_range, lo, hi, 0) } == 0 {
            continue;
        }
        let e = std::io::Error::last_os_error();
        if !close_range_missing(&e) {
            return Err(Error::os("close_range", e));
        }
        let fds = open_fds_from(first as i32).map_err(|_| Error::os("close_range", e))?;
        for fd in fds.into_iter().filter(|fd| !keep.contains(&(*fd as u32))) {
            // SAFETY: same as close_range above: fds outside `keep`, about to be lost by execve,
            // and never used again by their Rust owners in this process.
            unsafe { libc::close(fd) };
        }
        return Ok(());
    }
    Ok(())
}

/// close_range(2) is not there (ENOSYS, Linux < 5.9), lacks
/// CLOSE_RANGE_CLOEXEC (EINVAL, 5.9 and 5.10) or is refused by a seccomp
/// filter berth itself runs under (EPERM).
fn close_range_missing(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSYS | libc::EINVAL | libc::EPERM))
}

/// The open fds from `first` up, from /proc/self/fd, which must be procfs
/// (after the pivot it is the container's /proc: an image's own directory
/// there must not decide what is closed). The listing's own fd is closed by
/// the time they are returned (acting on it then fails with EBADF,
/// harmlessly: nothing has reused it yet).
fn open_fds_from(first: i32) -> std::io::Result<Vec<i32>> {
    use nix::dir::Dir;
    use nix::fcntl::OFlag;
    use nix::sys::stat::Mode;
    let mut dir = Dir::open("/proc/self/fd", OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())?;
    let fs = nix::sys::statfs::fstatfs(&dir)?;
    if fs.filesystem_type() != nix::sys::statfs::PROC_SUPER_MAGIC {
        return Err(std::io::Error::other("/proc/self/fd is not on procfs"));
    }
    let mut fds = Vec::new();
    for e in dir.iter() {
        if let Some(fd) = e?.file_name().to_str().ok().and_then(|n| n.parse::<i32>().ok()) {
            if fd >= first {
                fds.push(fd);
            }
        }
    }
    Ok(fds)
}

/// A new session keyring named after the container, so keys don't leak
/// between containers (runc's default; `--no-new-keyring` skips it). The
/// name is runc's `_ses.<id>`: the kernel refuses names that start with
/// `.` (kept for its own keyrings), which ids like `.x` would otherwise be.
pub fn join_session_keyring(id: &str) -> Result<()> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    let name = CString::new(format!("_ses.{id}")).map_err(|_| Error::Usage("container id contains NUL".into()))?;
    // SAFETY: `name` is a NUL-terminated CString alive for the call; keyctl reads it.
    let r = unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        // No keyring support in this kernel: nothing to isolate.
        if e.raw_os_error() != Some(libc::ENOSYS) {
            return Err(Error::os("join a new session keyring", e));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn home_from_passwd() {
        let pw = "root:x:0:0:root:/root:/bin/sh\nweb:x:500:500::/srv/web:/bin/false\nbad line\n";
        assert_eq!(passwd_home(pw, 0).as_deref(), Some("/root"));
        assert_eq!(passwd_home(pw, 500).as_deref(), Some("/srv/web"));
        assert_eq!(passwd_home(pw, 7), None);
    }
}
