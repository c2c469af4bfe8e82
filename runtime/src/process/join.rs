//! Joining a running container: the two-stage child behind `berth exec`
//! and the shim's Exec. (Of the other "exec"s: `commands/exec.rs` is the
//! command, which builds [`Exec`]; the exec trampoline that every init and
//! joined process execve's through is `security/seal.rs`.)
//!
//! berth clones the process itself, as for init (the child does not
//! re-execute; the `berth exec` command has re-executed itself from a
//! sealed copy before, see [`crate::security::seal::prepare_exec`]), in two
//! stages, so that nothing of the host's is ever seen from inside the
//! container (CVE-2019-5736, CVE-2024-21626 through exec):
//!
//! ```text
//!  berth (parent, sealed: runs from a read-only
//!  bind or sealed memfd of its binary)            stage 1 (host pid namespace:
//!  ──────────────                                  invisible to the container)
//!  open /proc/<init>/ns/* (those that differ from  ───────────────────────────
//!  berth's own), verify init is still the same
//!  process, open the cgroup join files
//!  clone3 (CLONE_INTO_CGROUP: the v2 cgroup) ────▶ oom_score_adj (host /proc);
//!                                                  not dumpable; write "0" to each
//!                                                  v1 tasks file; rlimits;
//!                                                  setns pid (for its child), time,
//!                                                  ipc, uts, net, cgroup, mount (its
//!                                                  root and cwd become the
//!                                                  container's), then user (+ become
//!                                                  its root); close every fd but
//!                                                  stdio, the preserved ones, the
//!                                                  sync socket, the console socket
//!                                                  and the exec trampoline
//!                                                  clone (CLONE_PARENT) ──▶ stage 2: the process,
//!                                Spawned(pid)  ◀── exit                    in the container's pid
//!  reap stage 1, pidfd_open(pid)                                           namespace: setsid, cwd
//!                                                                          (checked inside the root),
//!                                                                          [terminal], scheduler,
//!                                                                          ioprio, personality,
//!                                                                          mempolicy, find exe, caps
//!                                                                          + user, no_new_privs,
//!                                                                          [seccomp], execve through
//!                               Error(msg) or EOF ◀─────────────────────── the trampoline
//!  EOF: it runs; Error: reap, report                (the sync socket is CLOEXEC:
//!                                                    EOF means execve succeeded)
//! ```
//!
//! Stage 2 is born in the container's pid namespace, so from the moment a
//! container process can see it, it holds no fd, cwd or root of the host's
//! and is non-dumpable, and its exe is berth's sealed copy (the caller's
//! duty, see [`crate::security::seal::prepare_exec`]); its program is
//! executed through the sealed trampoline. `CLONE_PARENT` makes it berth's
//! own child, so berth can wait for it and forward signals. Every namespace
//! is joined by stage 1 while it still has the host's privileges (a
//! namespace the container's user namespace does not own, such as a time
//! namespace unshared by berth before init's clone, can only be joined from
//! there); the user namespace comes last. Nothing runs after the seccomp
//! filter is loaded but the calls execve needs: fds are closed before.

use std::fs;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;

use nix::sched::setns;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxNamespaceType, Process};

use super::phase::JoinPhase;
use super::sync::{self, Msg};
use super::{init, setup};
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
            ns.root = super::join_root::open(init_pid)?;
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
    /// The container's linux.personality.
    pub personality: Option<&'a oci_spec::runtime::LinuxPersonality>,
    /// process.apparmorProfile (checked: AppArmor is on).
    pub apparmor: Option<&'a str>,
}

/// The started process.
#[derive(Debug)]
pub struct Started {
    /// Its host pid.
    pub pid: i32,
    pub pidfd: Option<OwnedFd>,
}

/// The fds stage 1 keeps for stage 2 (besides stdio and the preserved
/// ones), each numbered above the preserved range so that none of them
/// can be passed on by mistake. All are CLOEXEC.
struct Kept {
    sock: OwnedFd,
    console: Option<OwnedFd>,
    trampoline: Option<OwnedFd>,
}

impl Kept {
    fn new(sock: OwnedFd, e: &Exec) -> Result<Kept> {
        let min = 3 + e.preserve_fds as i32;
        let above = |fd: &OwnedFd, what: &str| {
            crate::security::seal::dup_above(fd, min).map_err(|err| Error::os(format!("duplicate the {what} fd"), err))
        };
        Ok(Kept {
            sock: if sock.as_raw_fd() < min { above(&sock, "sync socket")? } else { sock },
            console: e.console.map(|c| above(c, "console socket")).transpose()?,
            trampoline: crate::security::seal::trampoline().map(|t| above(t, "exec trampoline")).transpose()?,
        })
    }

    fn raw(&self) -> Vec<u32> {
        let mut v = vec![self.sock.as_raw_fd() as u32];
        v.extend(self.console.iter().chain(&self.trampoline).map(|f| f.as_raw_fd() as u32));
        v
    }
}

/// Clone the process and wait until it has called execve (or failed, which
/// is reported with init's error convention and leaves no process behind).
pub fn start(mut e: Exec) -> Result<Started> {
    let (parent_sock, child_sock) = sync::pair().map_err(|e| Error::os("socketpair", e))?;
    let kept = Kept::new(child_sock, &e)?;
    // SAFETY: berth is single-threaded; the child never returns.
    let mut forked = match &e.unified {
        // SAFETY: berth is single-threaded here, `dir` is an open cgroup directory fd for the
        // call, and the child runs stage 1 and never returns (it _exits).
        Some((dir, _)) => unsafe { sys::clone_fork(0, Some(dir.as_raw_fd())) },
        // SAFETY: berth is single-threaded here; the child runs stage 1 and never returns.
        None => unsafe { sys::clone_fork(0, None) },
    };
    if let Some((_, procs)) = e.unified.take() {
        if forked.is_err() {
            // No CLONE_INTO_CGROUP here: stage 1 writes cgroup.procs.
            e.cgroup_files.push(procs);
            // SAFETY: as above: single-threaded caller, the child never returns.
            forked = unsafe { sys::clone_fork(0, None) };
        }
    }
    let stage1 = match forked {
        Ok(Forked::Child) => {
            drop(parent_sock);
            stage_main(|| stage1(&e, &kept), &kept.sock)
        }
        Ok(Forked::Parent { pid, .. }) => Pid::from_raw(pid),
        Err(err) => return Err(Error::os("clone the exec process", err)),
    };
    drop(kept);
    let stage1_failed = |err: Error| {
        let _ = kill(stage1, Signal::SIGKILL);
        let _ = waitpid(stage1, None);
        err
    };
    let phase = JoinPhase::Joining;
    let pid = match sync::recv(&parent_sock, false) {
        Ok(Some((m, _))) => match (phase.received(&m), m) {
            (Err(u), _) => return Err(stage1_failed(Error::Protocol(u.to_string()))),
            (Ok(_), Msg::Spawned(pid)) => pid,
            (Ok(_), Msg::Error(m)) => {
                let _ = waitpid(stage1, None);
                return Err(Error::Init(m));
            }
            (Ok(_), m) => return Err(stage1_failed(Error::Protocol(format!("sync protocol: unexpected {}", m.name())))),
        },
        Ok(None) => {
            let status = waitpid(stage1, None);
            return Err(Error::Protocol(format!(
                "the exec process died before it entered the container ({status:?})"
            )));
        }
        Err(err) => return Err(stage1_failed(Error::os("read from the exec process", err))),
    };
    let _ = waitpid(stage1, None);
    // Our own unreaped child (CLONE_PARENT): its pid cannot be reused.
    let pidfd = sys::pidfd_open(pid).ok();
    let killed = |err: Error| {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        let _ = waitpid(Pid::from_raw(pid), None);
        err
    };
    match sync::recv(&parent_sock, false) {
        Ok(None) => Ok(Started { pid, pidfd }),
        Ok(Some((m, _))) => match (JoinPhase::Spawned.received(&m), m) {
            (Err(u), _) => Err(killed(Error::Protocol(u.to_string()))),
            (Ok(_), Msg::Error(m)) => {
                let _ = waitpid(Pid::from_raw(pid), None);
                Err(Error::Init(m))
            }
            (Ok(_), m) => Err(killed(Error::Protocol(format!("sync protocol: unexpected {}", m.name())))),
        },
        Err(err) => Err(killed(Error::os("read from the exec process", err))),
    }
}

enum Never {}

/// Run a stage; on error report it on the sync socket and exit.
fn stage_main(stage: impl FnOnce() -> Result<Never>, sock: &OwnedFd) -> ! {
    let err = match stage() {
        Ok(never) => match never {},
        Err(err) => err,
    };
    if sync::send(sock, &sync::error(&err)).is_err() {
        let _ = writeln!(io::stderr(), "berth: error: exec: {err}");
    }
    // SAFETY: _exit: a forked child must not run the parent's destructors or atexit.
    unsafe { libc::_exit(1) }
}

/// Join the container's user namespace (if it has its own) as its root.
fn join_user(e: &Exec) -> Result<()> {
    if let Some(fd) = &e.namespaces.user {
        setns(fd.as_fd(), namespaces::flag(LinuxNamespaceType::User))
            .map_err(|err| Error::os("join the container's user namespace", err))?;
        init::become_root()?;
    }
    Ok(())
}

/// Stage 1, in the host's pid namespace: join the cgroups and every
/// namespace, drop every host fd, then fork stage 2 into the container's
/// pid namespace.
fn stage1(e: &Exec, kept: &Kept) -> Result<Never> {
    let p = e.process;
    // While still dumpable (a non-dumpable process's /proc files belong to
    // the host's root, which rootless berth is not), in the host's pid
    // namespace where the container sees nothing of us.
    if let Some(adj) = p.oom_score_adj() {
        fs::write("/proc/self/oom_score_adj", adj.to_string()).map_err(|err| {
            Error::os(format!("process.oomScoreAdj: write {adj} to /proc/self/oom_score_adj"), err)
        })?;
    }
    // Not dumpable until execve: nothing may open /proc/<pid>/exe or read
    // berth's memory (stage 2 inherits this).
    // SAFETY: PR_SET_DUMPABLE takes integer arguments only; no memory is touched.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    setup::join_cgroups(&e.cgroup_files)?;
    // With the host's privileges, before the user namespace is joined.
    setup::rlimits(p)?;
    // Rootless, berth holds no privilege over the container's namespaces
    // but through their user namespace: join it first (as runc's nsexec).
    let user_first = crate::host::current().rootless().is_some();
    if user_first {
        join_user(e)?;
    }
    if let Some(fd) = &e.namespaces.pid {
        // For stage 2: setns(CLONE_NEWPID) moves only the children.
        setns(fd.as_fd(), namespaces::flag(LinuxNamespaceType::Pid))
            .map_err(|err| Error::os("join the container's pid namespace", err))?;
    }
    for (t, fd) in &e.namespaces.others {
        setns(fd.as_fd(), namespaces::flag(*t)).map_err(|err| {
            Error::os(format!("join the container's {} namespace", namespaces::type_name(*t)), err)
        })?;
    }
    if let Some(fd) = &e.namespaces.root {
        super::join_root::enter(fd)?;
    }
    if !user_first {
        join_user(e)?;
    }
    // Root and cwd are the container's now (setns of the mount namespace
    // or the chroot set both). Of the fds, only stdio, the preserved ones
    // (made inheritable) and what stage 2 needs stay: the namespace and
    // cgroup handles, berth's state dir and lock go before anything can
    // see this process from inside the container.
    for fd in 3..3 + e.preserve_fds as i32 {
        // SAFETY: fcntl on a descriptor number only reads and sets fd flags; a closed number
        // fails with EBADF and is skipped.
        unsafe {
            let fl = libc::fcntl(fd, libc::F_GETFD);
            if fl >= 0 {
                libc::fcntl(fd, libc::F_SETFD, fl & !libc::FD_CLOEXEC);
            }
        }
    }
    // The --log file is a host fd too: nothing is logged from here on
    // (an error still reaches berth on the sync socket, which logs it).
    log::set_max_level(log::LevelFilter::Off);
    setup::close_from(3 + e.preserve_fds, &kept.raw())?;
    // SAFETY: single-threaded (a fork of berth's one thread); the child
    // never returns.
    match unsafe { sys::clone_fork(libc::CLONE_PARENT as u64, None) } {
        Ok(Forked::Child) => stage_main(|| stage2(e, kept), &kept.sock),
        Ok(Forked::Parent { pid, .. }) => {
            sync::send(&kept.sock, &Msg::Spawned(pid)).map_err(|err| Error::os("report the exec process", err))?;
            // SAFETY: _exit: stage 1 is done; a forked child must not run the parent's destructors.
            unsafe { libc::_exit(0) }
        }
        Err(err) => Err(Error::os("clone the exec process into the container's pid namespace", err)),
    }
}

/// Stage 2, the process itself, inside the container: its attributes,
/// then execve.
fn stage2(e: &Exec, kept: &Kept) -> Result<Never> {
    let p = e.process;
    nix::unistd::setsid().map_err(|err| Error::os("setsid", err))?;
    // The profile for execve, asked for while still root with every
    // capability (runc's setns init does it as early).
    if let Some(profile) = e.apparmor {
        let clip = crate::error::Clip(profile);
        crate::security::lsm::open_apparmor_exec_in_container()
            .and_then(|mut f| crate::security::lsm::apply_apparmor(&mut f, profile))
            .map_err(|err| Error::os(format!("process.apparmorProfile: apply {clip}"), err))?;
    }
    // Before the user switch (root may reach more), else after it.
    let cwd_later = match nix::unistd::chdir(p.cwd().as_path()) {
        Ok(()) => false,
        Err(nix::errno::Errno::EACCES) | Err(nix::errno::Errno::EPERM) => true,
        Err(err) => return Err(Error::os(format!("process.cwd: chdir {}", p.cwd().display()), err)),
    };
    if !cwd_later {
        init::cwd_inside_root(p)?;
    }
    if p.terminal() == Some(true) {
        let socket =
            kept.console.as_ref().ok_or_else(|| Error::Internal("process.terminal: no console socket".into()))?;
        console::setup_in_container(&console::InContainer {
            socket: socket.as_fd(),
            size: p.console_size().map(|b| (clamp_u16(b.height()), clamp_u16(b.width()))),
            owner: p.user().uid(),
            mount_console: false,
        })?;
    }
    setup::scheduler(p)?;
    setup::io_priority(p)?;
    if let Some(persona) = e.personality {
        setup::set_personality(persona)?;
    }
    if let Some(m) = &e.mempolicy {
        m.apply()?;
    }
    let exe = setup::find_executable(p)?;
    let argv = setup::cstrings(p.args().as_deref().unwrap_or(&[]), "process.args")?;
    let envp = setup::cstrings(&setup::env_with_home(p), "process.env")?;

    // seccomp as init loads it: without no_new_privs it needs CAP_SYS_ADMIN,
    // so before the capability drop; with it, last before execve. After
    // the load only what the profile must allow anyway for the container's
    // own processes: capset, setgroups/setres[ug]id, chdir, prctl,
    // rt_sigprocmask and execve.
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
        init::cwd_inside_root(p)?;
    }
    // SAFETY: PR_SET_NO_NEW_PRIVS takes integer arguments only; no memory is touched.
    if nnp && unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(Error::os("set no_new_privs", io::Error::last_os_error()));
    }
    setup::reset_signals();
    if let Some(f) = e.seccomp.filter(|_| nnp) {
        f.load().map_err(|err| Error::os(format!("linux.seccomp: {}", f.describe()), err))?;
    }
    let shown = exe.to_string_lossy().into_owned();
    if let Some(t) = &kept.trampoline {
        let err = crate::security::seal::exec_via(t, &exe, &argv, &envp);
        return Err(Error::os(format!("exec {shown} through berth's exec trampoline"), err));
    }
    let err = nix::unistd::execve(&exe, &argv, &envp).unwrap_err();
    Err(Error::os(format!("exec {shown}"), err))
}

fn clamp_u16(v: u64) -> u16 {
    v.min(u16::MAX as u64) as u16
}

/// Is `fd` open in berth (for `--preserve-fds` and LISTEN_FDS)?
pub fn fd_is_open(fd: i32) -> bool {
    // SAFETY: F_GETFD reads fd flags of a number; an unused number fails with EBADF.
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
    // SAFETY: `p` is a live pollfd and nfds is 1; a zero timeout never blocks.
    unsafe { libc::poll(&mut p, 1, 0) == 0 }
}
