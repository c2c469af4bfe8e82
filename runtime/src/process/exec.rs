//! Starting a process in an existing container (`berth exec`).
//!
//! berth clones the process itself, as for init (no re-exec), and the child
//! enters the container from the outside in:
//!
//! ```text
//!  berth (parent)                                  the new process (child)
//!  ──────────────                                  ───────────────────────
//!  open /proc/<init>/ns/* (those that differ from
//!  berth's own), verify init is still the same
//!  process, open the cgroup join files
//!  [setns(pid ns)] ── clone3 ────────────────────▶ not dumpable; write "0" to each
//!   (CLONE_INTO_CGROUP: the v2 cgroup)              v1 tasks file; rlimits,
//!  [restore own pid ns]
//!                                                   oom_score_adj (host /proc)
//!                                                   setns time, ipc, uts, net,
//!                                                   cgroup, mount (as host root),
//!                                                   then user (+ become its root)
//!                                                   setsid, cwd, [terminal],
//!                                                   scheduler, ioprio, find exe,
//!                                                   caps + user, no_new_privs,
//!                                                   [seccomp], fds CLOEXEC, execve
//!                               Error(msg) or EOF ◀─ (the sync socket is CLOEXEC:
//!  EOF: it runs; Error: reap, report                 EOF means execve succeeded)
//! ```
//!
//! The pid namespace applies to children only, so berth joins it around the
//! clone ([`super::NsRestore`]) and the process is berth's own child inside
//! the container's pid namespace: berth can wait for it and forward signals.
//! Every other namespace is joined by the child while it still has the host's
//! privileges (a namespace the container's user namespace does not own, such
//! as a time namespace unshared by berth before init's clone, can only be
//! joined from there); the user namespace comes last.

use std::fs;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;

use nix::sched::setns;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxNamespaceType, Process};

use super::sync::{self, Msg};
use super::{init, setup, NsRestore};
use crate::console;
use crate::error::{Error, Result};
use crate::namespaces;
use crate::security::caps::{self, CapSets};
use crate::sys::{self, Forked};

/// Namespaces joined by the child, in this order; user is joined last and
/// pid by the parent.
const JOIN_ORDER: [(LinuxNamespaceType, &str); 6] = [
    (LinuxNamespaceType::Time, "time"),
    (LinuxNamespaceType::Ipc, "ipc"),
    (LinuxNamespaceType::Uts, "uts"),
    (LinuxNamespaceType::Network, "net"),
    (LinuxNamespaceType::Cgroup, "cgroup"),
    (LinuxNamespaceType::Mount, "mnt"),
];

/// The container's namespaces that berth is not already in, opened from
/// `/proc/<init>/ns`.
#[derive(Debug, Default)]
pub struct Namespaces {
    pid: Option<OwnedFd>,
    user: Option<OwnedFd>,
    others: Vec<(LinuxNamespaceType, OwnedFd)>,
    /// init's root (`/proc/<init>/root`) when the container has no mount
    /// namespace of its own (it is berth's) and is chrooted: the process
    /// chroots there too instead of joining a mount namespace.
    root: Option<OwnedFd>,
}

impl Namespaces {
    /// Open init's namespaces. The caller must check afterwards that init
    /// is still the same live process (its pidfd), so none of these was
    /// opened through a recycled pid.
    pub fn open(init_pid: i32) -> Result<Namespaces> {
        let mut ns = Namespaces::default();
        for (t, name) in JOIN_ORDER {
            if let Some(fd) = open_ns(init_pid, name)? {
                ns.others.push((t, fd));
            }
        }
        ns.user = open_ns(init_pid, "user")?;
        ns.pid = open_ns(init_pid, "pid")?;
        if !ns.others.iter().any(|(t, _)| *t == LinuxNamespaceType::Mount) {
            ns.root = super::exec_root::open(init_pid)?;
        }
        Ok(ns)
    }

    /// Namespace types that will be joined (for messages and tests).
    pub fn joined(&self) -> Vec<&'static str> {
        let mut v: Vec<&'static str> = self
            .others
            .iter()
            .map(|(t, _)| namespaces::type_name(*t))
            .collect();
        if self.user.is_some() {
            v.push("user");
        }
        if self.pid.is_some() {
            v.push("pid");
        }
        v
    }
}

/// `/proc/<pid>/ns/<name>`, or None when it is berth's own namespace (or
/// the kernel has no such namespace type).
fn open_ns(pid: i32, name: &str) -> Result<Option<OwnedFd>> {
    let path = format!("/proc/{pid}/ns/{name}");
    let f = match fs::File::open(&path) {
        Ok(f) => f,
        Err(e)
            if e.kind() == io::ErrorKind::NotFound
                && !std::path::Path::new(&format!("/proc/self/ns/{name}")).exists() =>
        {
            return Ok(None)
        }
        Err(e) => return Err(Error::path("open the container's namespace", path, e)),
    };
    let theirs = f.metadata().map_err(|e| Error::path("stat", &path, e))?;
    let own_path = format!("/proc/self/ns/{name}");
    let ours = fs::metadata(&own_path).map_err(|e| Error::path("stat", own_path, e))?;
    if (theirs.dev(), theirs.ino()) == (ours.dev(), ours.ino()) {
        return Ok(None);
    }
    Ok(Some(f.into()))
}

/// Everything the new process needs. `process` is complete: the command
/// line's overrides and the container config's defaults are merged in.
pub struct Exec<'a> {
    pub process: &'a Process,
    pub namespaces: Namespaces,
    /// v1 `tasks` files of the cgroups to join, opened.
    pub cgroup_files: Vec<OwnedFd>,
    /// The v2 cgroup: its directory for clone3's CLONE_INTO_CGROUP (writing
    /// cgroup.procs waits for an RCU grace period), and its cgroup.procs in
    /// case the kernel refuses that.
    pub unified: Option<(OwnedFd, OwnedFd)>,
    /// With `process.terminal`: where the pty master goes.
    pub console: Option<&'a OwnedFd>,
    /// Extra fds (3 .. 3+N) passed to the process.
    pub preserve_fds: u32,
    /// process.capabilities as masks (None: keep what berth has).
    pub caps: Option<CapSets>,
    /// The container's linux.seccomp filter (never a NOTIFY one).
    pub seccomp: Option<&'a crate::security::seccomp::Filter>,
    /// The container's linux.memoryPolicy.
    pub mempolicy: Option<crate::mempolicy::Policy>,
}

/// The started process.
#[derive(Debug)]
pub struct Started {
    /// Its host pid.
    pub pid: i32,
    pub pidfd: Option<OwnedFd>,
}

/// Clone the process and wait until it has called execve (or failed, which
/// is reported with init's error convention and leaves no process behind).
pub fn start(mut e: Exec) -> Result<Started> {
    let (parent_sock, child_sock) = sync::pair().map_err(|e| Error::os("socketpair", e))?;
    let restore = match &e.namespaces.pid {
        Some(fd) => Some(NsRestore::join_pid(fd)?),
        None => None,
    };
    // SAFETY: berth is single-threaded; the child never returns.
    let mut forked = match &e.unified {
        Some((dir, _)) => unsafe { sys::clone_fork(0, Some(dir.as_raw_fd())) },
        None => unsafe { sys::clone_fork(0, None) },
    };
    if let Some((_, procs)) = e.unified.take() {
        if forked.is_err() {
            // No CLONE_INTO_CGROUP here: the child writes cgroup.procs.
            e.cgroup_files.push(procs);
            forked = unsafe { sys::clone_fork(0, None) };
        }
    }
    let (pid, pidfd) = match forked {
        Ok(Forked::Child) => {
            drop(parent_sock);
            std::mem::forget(restore);
            child_main(&e, child_sock)
        }
        Ok(Forked::Parent { pid, pidfd }) => (pid, pidfd),
        Err(err) => {
            if let Some(r) = restore {
                r.restore()?;
            }
            return Err(Error::os("clone the exec process", err));
        }
    };
    drop(child_sock);
    let killed = |err: Error| {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        let _ = waitpid(Pid::from_raw(pid), None);
        err
    };
    if let Some(r) = restore {
        r.restore().map_err(killed)?;
    }
    match sync::recv(&parent_sock, false) {
        Ok(None) => Ok(Started { pid, pidfd }),
        Ok(Some((Msg::Error(m), _))) => {
            let _ = waitpid(Pid::from_raw(pid), None);
            Err(Error::Init(m))
        }
        Ok(Some((other, _))) => Err(killed(Error::Other(format!(
            "unexpected message from the exec process: {other:?}"
        )))),
        Err(err) => Err(killed(Error::os("read from the exec process", err))),
    }
}

enum Never {}

fn child_main(e: &Exec, sock: OwnedFd) -> ! {
    let err = match child(e) {
        Ok(never) => match never {},
        Err(err) => err,
    };
    if sync::send(&sock, &Msg::Error(err.to_string())).is_err() {
        let _ = writeln!(io::stderr(), "berth: exec: {err}");
    }
    unsafe { libc::_exit(1) }
}

fn child(e: &Exec) -> Result<Never> {
    let p = e.process;
    // Not dumpable until execve: the container's processes may not open
    // /proc/<pid>/exe or read berth's memory while it runs here.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    setup::join_cgroups(&e.cgroup_files)?;
    // With the host's privileges, before the user namespace is joined.
    setup::rlimits(p)?;
    if let Some(adj) = p.oom_score_adj() {
        fs::write("/proc/self/oom_score_adj", adj.to_string()).map_err(|err| {
            Error::os(
                format!("process.oomScoreAdj: write {adj} to /proc/self/oom_score_adj"),
                err,
            )
        })?;
    }
    for (t, fd) in &e.namespaces.others {
        setns(fd.as_fd(), namespaces::flag(*t)).map_err(|err| {
            Error::os(
                format!(
                    "join the container's {} namespace",
                    namespaces::type_name(*t)
                ),
                err,
            )
        })?;
    }
    if let Some(fd) = &e.namespaces.root {
        super::exec_root::enter(fd)?;
    }
    if let Some(fd) = &e.namespaces.user {
        setns(fd.as_fd(), namespaces::flag(LinuxNamespaceType::User))
            .map_err(|err| Error::os("join the container's user namespace", err))?;
        init::become_root()?;
    }
    nix::unistd::setsid().map_err(|err| Error::os("setsid", err))?;
    // Before the user switch (root may reach more), else after it.
    let cwd_later = match nix::unistd::chdir(p.cwd().as_path()) {
        Ok(()) => false,
        Err(nix::errno::Errno::EACCES) | Err(nix::errno::Errno::EPERM) => true,
        Err(err) => {
            return Err(Error::os(
                format!("process.cwd: chdir {}", p.cwd().display()),
                err,
            ))
        }
    };
    if p.terminal() == Some(true) {
        let socket = e
            .console
            .ok_or_else(|| Error::Other("process.terminal: no console socket".into()))?;
        console::setup_in_container(&console::InContainer {
            socket: socket.as_fd(),
            size: p
                .console_size()
                .map(|b| (clamp_u16(b.height()), clamp_u16(b.width()))),
            owner: p.user().uid(),
            mount_console: false,
        })?;
    }
    setup::scheduler(p)?;
    setup::io_priority(p)?;
    if let Some(m) = &e.mempolicy {
        m.apply()?;
    }
    let exe = setup::find_executable(p)?;
    let argv = setup::cstrings(p.args().as_deref().unwrap_or(&[]), "process.args")?;
    let envp = setup::cstrings(&setup::env_with_home(p), "process.env")?;

    // seccomp as init loads it: without no_new_privs it needs CAP_SYS_ADMIN,
    // so before the capability drop; with it, last before execve.
    let nnp = p.no_new_privileges() == Some(true);
    if let Some(f) = e.seccomp.filter(|_| !nnp) {
        f.load().map_err(|err| Error::os(format!("linux.seccomp: {}", f.describe()), err))?;
    }
    if let Some(c) = &e.caps {
        caps::before_user_switch(c)?;
    }
    setup::user(p)?;
    if let Some(c) = &e.caps {
        caps::after_user_switch(c)?;
    }
    if cwd_later {
        setup::chdir(p)?;
    }
    if p.no_new_privileges() == Some(true)
        && unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0
    {
        return Err(Error::os("set no_new_privs", io::Error::last_os_error()));
    }
    setup::reset_signals();
    setup::fds_for_exec(e.preserve_fds)?;
    if let Some(f) = e.seccomp.filter(|_| nnp) {
        f.load().map_err(|err| Error::os(format!("linux.seccomp: {}", f.describe()), err))?;
    }
    let err = nix::unistd::execve(&exe, &argv, &envp).unwrap_err();
    Err(Error::os(format!("exec {}", exe.to_string_lossy()), err))
}

fn clamp_u16(v: u64) -> u16 {
    v.min(u16::MAX as u64) as u16
}

/// Is `fd` open in berth (for `--preserve-fds` and LISTEN_FDS)?
pub fn fd_is_open(fd: i32) -> bool {
    unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
}

/// Check that fds 3 .. 3+`n` are open, naming `what` otherwise.
pub fn check_fds_open(first: i32, n: u32, what: &str) -> Result<()> {
    for fd in first..first + n as i32 {
        if !fd_is_open(fd) {
            return Err(Error::Usage(format!(
                "{what}: fd {fd} is not open in berth"
            )));
        }
    }
    Ok(())
}

/// True while the process behind `pidfd` has not exited.
pub fn pidfd_alive(pidfd: &OwnedFd) -> bool {
    let mut p = libc::pollfd {
        fd: pidfd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    unsafe { libc::poll(&mut p, 1, 0) == 0 }
}
