//! The container's init, from the clone to execve. Runs in the cloned
//! child: single-threaded, on a copy of berth's memory. Any error is sent to
//! the parent as `Msg::Error` and init exits.

use std::ffi::CString;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use nix::sched::CloneFlags;
use nix::unistd::{setresgid, setresuid, Gid, Uid};
use oci_spec::runtime::LinuxNamespaceType;

use super::sync::{self, Msg};
use super::{setup, Launch};
use crate::container::{OciState, Status, EXEC_FIFO};
use crate::error::{Error, InitError, Result};
use crate::hooks::{self, HookKind};
use crate::namespaces::{self, Plan};
use crate::rootfs::{self, RootfsOptions};
use crate::security::caps;
use crate::security::seccomp::{notify, Filter};
use crate::security::{lsm, seal};
use crate::sys::{self, Forked};

pub(super) struct Init<'a> {
    pub l: &'a Launch<'a>,
    pub plan: &'a Plan,
    pub join_files: Vec<OwnedFd>,
    /// Unlocked handle on the state dir, for exec.fifo; closed once used
    /// (a host directory must not be reachable through /proc/self/fd).
    pub state_fd: Option<OwnedFd>,
    pub sock: OwnedFd,
    pub two_stage: bool,
    /// exec.fifo's write end once `start` opened it: held (CLOEXEC) until
    /// execve closes it, so `start` sees EOF exactly when the container's
    /// program runs; a failure before that is written into it.
    pub fifo: Option<OwnedFd>,
    /// linux.seccomp, compiled by the parent.
    pub seccomp: Option<&'a Filter>,
    /// The sealed exec trampoline (CVE-2019-5736), numbered above the fds
    /// the container keeps; None when none could be made (then berth
    /// runs from a sealed copy of itself).
    pub trampoline: Option<OwnedFd>,
    /// process.apparmorProfile, on a host with AppArmor.
    pub apparmor: Option<String>,
    /// The clone left out CLONE_NEWNET: unshare it, then wait for
    /// `CgroupsReady` and join the v1 cgroups (see [`super::defers_net`]).
    pub net_deferred: bool,
    /// Wait for `CgroupsReady` before anything else (with `net_deferred`,
    /// or when systemd places init by its pid).
    pub cgroups_wait: bool,
    /// Detached id-mapped mounts made by the parent (rootfs::idmap).
    pub idmapped: Option<&'a rootfs::idmap::IdmappedMounts>,
}

/// init's entry point: never returns.
pub(super) fn main(mut init: Init) -> ! {
    let err = match run(&mut init) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    if let Some(f) = &init.fifo {
        // `start` is waiting: it reports this and the container stops.
        let msg = format!("E{}", sync::fifo_text(&InitError::from(&err)));
        // SAFETY: `f` is init's open exec.fifo and `msg` a live buffer of msg.len() bytes; a
        // failed or short write only loses the report, which start then sees as EOF.
        unsafe { libc::write(f.as_raw_fd(), msg.as_ptr().cast(), msg.len()) };
    } else {
        // Before Ready, or after an in-process start (the socket is kept
        // open until execve then): the parent reports it.
        let msg = sync::error(&err);
        // write(2) as a fallback: a seccomp profile loaded after the start
        // may refuse send(2) but rarely write(2), as with exec.fifo.
        let sent = sync::send(&init.sock, &msg).is_ok() || {
            let buf = serde_json::to_vec(&msg).unwrap_or_default();
            // SAFETY: the socket fd is open (owned by `init`) and `buf` is valid for buf.len()
            // bytes for the call; write(2) only reads it.
            unsafe { libc::write(init.sock.as_raw_fd(), buf.as_ptr().cast(), buf.len()) == buf.len() as isize }
        };
        if !sent {
            // The parent is gone (after Ready, for `create`): tell the
            // container's stderr instead.
            let _ = writeln!(std::io::stderr(), "berth: error: container init: {err}");
        }
    }
    // SAFETY: _exit ends init without running destructors or atexit handlers, which belong
    // to the parent berth whose memory this forked child shares a copy of.
    unsafe { libc::_exit(1) }
}

enum Never {}

/// dup2 the given fds onto 0, 1, 2 (an fd already in place just loses
/// CLOEXEC).
fn set_stdio(fds: [std::os::fd::RawFd; 3]) -> Result<()> {
    for (target, &fd) in fds.iter().enumerate() {
        let target = target as i32;
        let r = if fd == target {
            // SAFETY: fcntl(F_SETFD, 0) only clears FD_CLOEXEC on a descriptor number; it touches
            // no memory, and an invalid fd is reported as an error below.
            unsafe { libc::fcntl(fd, libc::F_SETFD, 0) }
        } else {
            // SAFETY: dup2 onto a stdio number that init owns and means to replace; no Rust value
            // owns `target` (0..2 are never wrapped in OwnedFd here), so none is closed
            // behind an owner's back.
            unsafe { libc::dup2(fd, target) }
        };
        if r < 0 {
            return Err(Error::os(format!("set up fd {target} of init"), std::io::Error::last_os_error()));
        }
    }
    Ok(())
}

fn recv(sock: &OwnedFd) -> Result<Msg> {
    match sync::recv(sock, false) {
        Ok(Some((m, _))) => Ok(m),
        Ok(None) => Err(Error::Protocol("berth exited during setup".into())),
        Err(e) => Err(Error::os("read from berth", e)),
    }
}

fn send(sock: &OwnedFd, m: &Msg) -> Result<()> {
    sync::send(sock, m).map_err(|e| Error::os("write to berth", e))
}

/// Die with berth until it has recorded and handed over init: SIGKILL
/// when the berth thread that cloned us exits (berth is single-threaded
/// while it creates a container). A berth that died before the prctl has
/// closed its end of the sync socket already (exit closes files before it
/// signals children): that hang-up is checked right after. The kernel
/// clears the setting when credentials change: call again after each
/// change (become_root, joining a user namespace). Cleared before Ready,
/// where EOF on the socket takes over (see [`run`]).
fn die_with_parent(sock: &OwnedFd) {
    // SAFETY: PR_SET_PDEATHSIG takes integer arguments only and changes nothing but the
    // signal init gets when its parent thread dies.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) };
    let mut p = libc::pollfd { fd: sock.as_raw_fd(), events: 0, revents: 0 };
    // SAFETY: `p` is a live pollfd on the stack and nfds is 1; a zero timeout never blocks.
    if unsafe { libc::poll(&mut p, 1, 0) } == 1 && p.revents & libc::POLLHUP != 0 {
        // SAFETY: _exit skips the destructors of the parent's objects this forked copy shares.
        unsafe { libc::_exit(1) };
    }
}

/// (two-stage, in the pid namespace's init) Wait until our parent, the
/// first child, has exited: we are then berth's child (berth is a child
/// subreaper), and the parent-death signal can refer to berth.
fn adopted(first: OwnedFd, sock: &OwnedFd) {
    let mut p = libc::pollfd { fd: first.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    // SAFETY: `p` is a live pollfd and nfds is 1; EINTR just polls again.
    while unsafe { libc::poll(&mut p, 1, -1) } < 0 {}
    drop(first);
    die_with_parent(sock);
}

/// init's phases, in the order of the protocol drawn in
/// [`crate::process`]; each is one function below.
fn run(init: &mut Init) -> Result<Never> {
    begin(init)?;
    join_cgroups(init)?;
    if init.two_stage {
        enter_two_stage(init)?;
    } else {
        enter_one_stage(init)?;
    }
    finish_namespaces(init)?;
    let state = mounts_and_hooks(init)?;
    let prepared = finish_setup(init)?;
    ready(init)?;
    if init.l.in_process_start {
        wait_for_start_message(init)?;
    } else {
        wait_for_start_on_fifo(init)?;
    }
    close_host_fds(init, &prepared)?;
    exec(init, prepared, state)
}

/// Die with berth, take the caller's stdio, become non-dumpable and let go
/// of berth's lock.
fn begin(init: &Init) -> Result<()> {
    die_with_parent(&init.sock);
    if let Some(fds) = init.l.stdio {
        set_stdio(fds)?;
    }
    // Not dumpable until execve: nothing in the container may open
    // /proc/<init>/exe or read its memory while berth's code runs here.
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    // Our copy of the locked state-dir fd would hold berth's lock for as
    // long as init lives. (Never dropped: init ends in execve or _exit.)
    // SAFETY: closes init's copy of the fd; the OwnedFd naming it in the
    // copied StateDir is never dropped, so it is not closed twice.
    unsafe { libc::close(init.l.state_dir.lock_fd().as_raw_fd()) };
    Ok(())
}

/// Join the container's cgroups first: everything init forks inherits
/// them. With a deferred network namespace, make it while the parent makes
/// the v1 cgroups, and join those once they are ready.
fn join_cgroups(init: &mut Init) -> Result<()> {
    if init.net_deferred {
        // While the parent makes the cgroups; nothing else before the join.
        namespaces::unshare_flags(CloneFlags::CLONE_NEWNET)?;
    }
    if init.cgroups_wait {
        // Nothing forks before this: what init makes inherits the cgroups.
        match recv(&init.sock)? {
            Msg::CgroupsReady if init.net_deferred => init.l.plan.cgroups.join_v1_self()?,
            // systemd (and berth, for what systemd left) moved init.
            Msg::CgroupsReady => {}
            other => return Err(Error::Protocol(format!("unexpected message from berth: {other:?}"))),
        }
    }
    setup::join_cgroups(&init.join_files)?;
    init.join_files.clear();
    Ok(())
}

/// Two stages: join namespaces by path, make the user namespace (maps from
/// the parent), then the rest; a new pid namespace's init is our child,
/// which says Hello and goes on while we exit.
fn enter_two_stage(init: &Init) -> Result<()> {
    let plan = init.plan;
    if let Some(j) = plan.joins(LinuxNamespaceType::User) {
        namespaces::enter(j)?;
    }
    for j in plan.other_joins() {
        namespaces::enter(j)?;
    }
    if plan.has_new(LinuxNamespaceType::User) {
        namespaces::unshare_flags(CloneFlags::CLONE_NEWUSER)?;
        request_maps(&init.sock)?;
    }
    become_root()?;
    die_with_parent(&init.sock);
    namespaces::unshare_flags(plan.unshare_flags())?;
    if plan.has_new(LinuxNamespaceType::Pid) {
        // The pid namespace's init (our child) waits on it to be adopted.
        // SAFETY: getpid takes no argument.
        let me = sys::pidfd_open(unsafe { libc::getpid() }).map_err(|e| Error::os("pidfd_open(self)", e))?;
        // The pid namespace's init is our child; we are done.
        // SAFETY: init is single-threaded; the parent side only _exits.
        match unsafe { sys::clone_fork(0, None) }.map_err(|e| Error::os("fork pid namespace init", e))? {
            // SAFETY: _exit ends this process without running destructors.
            Forked::Parent { .. } => unsafe { libc::_exit(0) },
            Forked::Child => {
                send(&init.sock, &Msg::Hello)?;
                adopted(me, &init.sock);
            }
        }
    }
    Ok(())
}

/// One stage: the clone made the new namespaces; get the maps of a new
/// user namespace, or join one by path (then unshare the rest in it), and
/// join the others.
fn enter_one_stage(init: &Init) -> Result<()> {
    let plan = init.plan;
    if plan.has_new(LinuxNamespaceType::User) {
        request_maps(&init.sock)?;
        become_root()?;
        die_with_parent(&init.sock);
    }
    if let Some(j) = plan.joins(LinuxNamespaceType::User) {
        namespaces::enter(j)?;
        become_root()?;
        die_with_parent(&init.sock);
        namespaces::unshare_flags(plan.unshare_flags())?;
    }
    for j in plan.other_joins() {
        namespaces::enter(j)?;
    }
    Ok(())
}

/// The cgroup namespace (last, so it is rooted at the joined cgroup), the
/// loopback device, a session and keyring of its own, and the net devices.
fn finish_namespaces(init: &Init) -> Result<()> {
    let plan = init.plan;
    if plan.has_new(LinuxNamespaceType::Cgroup) {
        namespaces::unshare_flags(CloneFlags::CLONE_NEWCGROUP)?;
    }
    if plan.has_new(LinuxNamespaceType::Network) {
        // Whichever step made it (the clone, a deferred or two-stage unshare).
        crate::netdev::loopback_up()?;
    }
    // Its own session, as runc's init: berth's terminal signals reach berth
    // (which forwards them), and a pty can become the controlling terminal.
    nix::unistd::setsid().map_err(|e| Error::os("setsid", e))?;
    if !init.l.no_new_keyring {
        setup::join_session_keyring(init.l.id)?;
    }
    if !init.l.plan.net_devices.is_empty() {
        // The parent moves them into our (final) network namespace.
        send(&init.sock, &Msg::MoveNetDevices)?;
        match recv(&init.sock)? {
            Msg::NetDevicesMoved => {}
            other => return Err(Error::Protocol(format!("unexpected message from berth: {other:?}"))),
        }
    }
    Ok(())
}

fn rootfs_options<'a>(init: &Init<'a>) -> RootfsOptions<'a> {
    let (l, plan) = (init.l, init.plan);
    RootfsOptions {
        spec: &l.plan.bundle.spec,
        rootfs: &l.plan.bundle.rootfs,
        bundle: &l.plan.bundle.dir,
        cgroups: &l.plan.cgroups.mounts,
        cgroupns: plan.has_new(LinuxNamespaceType::Cgroup),
        userns: plan.has(LinuxNamespaceType::User),
        no_pivot: l.no_pivot,
        idmapped: init.idmapped,
        mntns_inherited: !plan.has(LinuxNamespaceType::Mount),
    }
}

/// Mounts, sysctl and oom_score_adj (through the host's /proc, still
/// mounted here, never one the container controls), then the hooks:
/// prestart and createRuntime by the parent, createContainer here. The
/// state the parent sent, for startContainer, if there are hooks.
fn mounts_and_hooks(init: &Init) -> Result<Option<OciState>> {
    let spec = &init.l.plan.bundle.spec;
    rootfs::prepare(&rootfs_options(init))?;
    setup::sysctl(spec)?;
    setup::oom_score_adj(spec)?;
    let hooks = &init.l.plan.hooks;
    if !hooks.during_setup() {
        return Ok(None);
    }
    send(&init.sock, &Msg::RunHooks)?;
    let state = match recv(&init.sock)? {
        Msg::HooksDone(s) => s,
        other => return Err(Error::Protocol(format!("unexpected message from berth: {other:?}"))),
    };
    let json = serde_json::to_vec(&state).map_err(|e| Error::encode("the container state", e))?;
    hooks::run_hooks(HookKind::CreateContainer, &hooks.create_container, &json)?;
    Ok(Some(state))
}

/// What execve needs, found before Ready, and AppArmor's exec attribute.
struct Prepared {
    exe: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
    /// process.env with the extra variables: what startContainer hooks
    /// without an `env` get.
    env: Vec<String>,
    apparmor: Option<(std::fs::File, String)>,
}

/// The hostname, the pivot, the terminal, the process's attributes and
/// cwd, and the program to run.
fn finish_setup(init: &mut Init) -> Result<Prepared> {
    let spec = &init.l.plan.bundle.spec;
    setup::hostname(spec)?;
    // Opened on the host's /proc, before the pivot; written just before execve.
    let apparmor = match init.apparmor.take() {
        Some(p) => Some((
            lsm::open_apparmor_exec().map_err(|e| Error::os("process.apparmorProfile: open /proc/self/attr/exec", e))?,
            p,
        )),
        None => None,
    };
    rootfs::finish(&rootfs_options(init))?;
    let process = &init.l.plan.process;
    if process.terminal() == Some(true) {
        // After the pivot: the pty comes from the container's own devpts.
        let socket =
            init.l.console_socket.ok_or_else(|| Error::Internal("process.terminal: no console socket".into()))?;
        crate::console::setup_in_container(&crate::console::InContainer {
            socket: socket.as_fd(),
            size: process.console_size().map(|b| (b.height().min(65535) as u16, b.width().min(65535) as u16)),
            owner: process.user().uid(),
            mount_console: true,
        })?;
    }
    setup::rlimits(process)?;
    setup::scheduler(process)?;
    setup::io_priority(process)?;
    setup::personality(spec)?;
    if let Some(p) = &init.l.plan.mempolicy {
        p.apply()?;
    }
    setup::chdir(process)?;
    cwd_inside_root(process)?;
    let exe = setup::find_executable(process)?;
    let argv = setup::cstrings(process.args().as_deref().unwrap_or(&[]), "process.args")?;
    let mut env = setup::env_with_home(process);
    let mut envp = setup::cstrings(&env, "process.env")?;
    envp.extend(setup::cstrings(init.l.extra_env, "LISTEN_FDS")?);
    // What execve passes: startContainer hooks without `env` get it too.
    env.extend(init.l.extra_env.iter().cloned());
    Ok(Prepared { exe, argv, envp, env, apparmor })
}

// When seccomp is loaded. It should be as late as possible, so that
// init's own setup is not subject to the container's profile, but:
// - SCMP_ACT_NOTIFY: berth must pass the listener to the agent, and
//   only the `create`/`run` parent is still there, so the filter goes
//   on in `ready`, before Ready (init still has all its capabilities).
// - noNewPrivileges: right before execve, after every other step.
// - otherwise: seccomp(2) needs CAP_SYS_ADMIN (in init's user
//   namespace) without no_new_privs, and the capability drop and uid
//   switch may take it away: load just before them (after `start`
//   and berth's fd clean-up), so the setgroups/setresuid/capset/prctl
//   calls that follow must be allowed by the profile (as with runc;
//   they are in default.json).
// (A NOTIFY filter applies to all the rest; close_range falls back to
// /proc/self/fd if it refuses that.)

/// Hand over a seccomp listener, then say Ready.
fn ready(init: &Init) -> Result<()> {
    if let Some(f) = init.seccomp.filter(|f| f.notify()) {
        hand_over_listener(f, &init.sock)?;
    }
    // From here a berth that dies shows as EPIPE on Ready or EOF on the
    // socket, which init reads next (Start or Detach). The parent-death
    // signal must be gone before berth can see Ready: `create` may hand
    // init over and exit at once, and `run -d` exits once init execs.
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, 0, 0, 0, 0) };
    send(&init.sock, &Msg::Ready)
}

/// `run`: the start comes on the socket, which then plays the part of
/// exec.fifo: kept open (CLOEXEC) until execve, so the parent sees EOF
/// exactly when the program runs, and a failure before that is sent on
/// it (see `main`).
fn wait_for_start_message(init: &mut Init) -> Result<()> {
    match recv(&init.sock)? {
        Msg::Start => {}
        other => return Err(Error::Protocol(format!("unexpected message from berth: {other:?}"))),
    }
    if (init.sock.as_raw_fd() as u32) < 3 + init.l.preserve_fds {
        // In a gap of the --preserve-fds range: it would leak into the container.
        init.sock = seal::dup_above(&init.sock, 3 + init.l.preserve_fds as i32)
            .map_err(|e| Error::os("dup the sync socket", e))?;
    }
    init.state_fd = None;
    Ok(())
}

/// `create` records init, then hands it over (EOF: it died first); then
/// block until `start` opens exec.fifo for reading.
fn wait_for_start_on_fifo(init: &mut Init) -> Result<()> {
    match recv(&init.sock)? {
        Msg::Detach => {}
        other => return Err(Error::Protocol(format!("unexpected message from berth: {other:?}"))),
    }
    let state_fd = init.state_fd.take().ok_or_else(|| Error::Internal("state dir handle missing".into()))?;
    let fifo = CString::new(EXEC_FIFO).unwrap();
    // SAFETY: a live directory fd and a NUL-terminated name.
    let fd = unsafe { libc::openat(state_fd.as_raw_fd(), fifo.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(Error::os("open exec.fifo", std::io::Error::last_os_error()));
    }
    // SAFETY: fd was just opened here and nothing else owns it.
    let mut fifo = unsafe { OwnedFd::from_raw_fd(fd) };
    if (fd as u32) < 3 + init.l.preserve_fds {
        // In a gap of the --preserve-fds range: it would leak into the container.
        fifo = seal::dup_above(&fifo, 3 + init.l.preserve_fds as i32).map_err(|e| Error::os("dup exec.fifo", e))?;
    }
    // SAFETY: writes one byte from a static buffer to an fd we own.
    if unsafe { libc::write(fifo.as_raw_fd(), b"0".as_ptr().cast(), 1) } != 1 {
        return Err(Error::os("write exec.fifo", std::io::Error::last_os_error()));
    }
    // The fifo stays open (CLOEXEC) until execve: `start` waits for its EOF
    // to run the poststart hooks after the startContainer hooks and the exec;
    // a failure before that is written into it.
    init.fifo = Some(fifo);
    drop(state_fd);
    Ok(())
}

/// berth's own clean-up, before the filter: nothing berth does after
/// loading it may depend on what the profile allows. Close, not only mark
/// CLOEXEC: execve resolves the program, a #! interpreter and the ELF
/// interpreter while CLOEXEC fds are still open, and a path through
/// /proc/self/fd/N must not reach anything of the host's (CVE-2024-21626).
/// Kept (CLOEXEC, execve closes them): stdio, --preserve-fds, exec.fifo or
/// the sync socket (which report a failure until execve), the exec
/// trampoline, AppArmor's exec attribute and the --log file (init may
/// still log). The OwnedFds naming closed fds are never dropped: init ends
/// in execve or _exit.
fn close_host_fds(init: &Init, prepared: &Prepared) -> Result<()> {
    if let Some(t) = seal::trampoline() {
        // berth's own copy (init uses the duplicate above the kept fds); it
        // may sit in the --preserve-fds range if the caller left a gap there.
        // SAFETY: the static OwnedFd naming it is never dropped in init.
        unsafe { libc::close(t.as_raw_fd()) };
    }
    setup::fds_for_exec(init.l.preserve_fds)?;
    let mut keep: Vec<u32> = init.fifo.iter().map(|f| f.as_raw_fd() as u32).collect();
    if init.l.in_process_start {
        keep.push(init.sock.as_raw_fd() as u32);
    }
    keep.extend(init.trampoline.as_ref().map(|t| t.as_raw_fd() as u32));
    keep.extend(prepared.apparmor.as_ref().map(|(f, _)| f.as_raw_fd() as u32));
    keep.extend(crate::logging::file_fd().map(|fd| fd as u32));
    setup::close_from(3 + init.l.preserve_fds, &keep)
}

/// The last steps, as in runc: after the filter (without no_new_privs:
/// it needs CAP_SYS_ADMIN) come only the uid and capability switch, the
/// startContainer hooks, the signal reset (errors ignored), AppArmor's
/// attribute and execve.
fn exec(init: &Init, prepared: Prepared, state: Option<OciState>) -> Result<Never> {
    let process = &init.l.plan.process;
    let nnp = process.no_new_privileges() == Some(true);
    let seccomp = init.seccomp;
    let Prepared { exe, argv, envp, env, mut apparmor } = prepared;
    if let Some(c) = &init.l.plan.caps {
        // The bounding set and keep-caps: not needed for seccomp(2).
        caps::before_user_switch(c)?;
    }
    if let Some(f) = seccomp.filter(|f| !f.notify() && !nnp) {
        f.load().map_err(|e| Error::os(format!("linux.seccomp: {}", f.describe()), e))?;
    }
    setup::user(process)?;
    if let Some(c) = &init.l.plan.caps {
        caps::after_user_switch(c)?;
    }
    if let Some(mut s) = state {
        s.status = Status::Created;
        let json = serde_json::to_vec(&s).map_err(|e| Error::encode("the container state", e))?;
        hooks::run_hooks_with_default_env(HookKind::StartContainer, &init.l.plan.hooks.start_container, &json, &env)?;
    }
    // SAFETY: prctl with integer arguments only.
    if nnp && unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(Error::os("set no_new_privs", std::io::Error::last_os_error()));
    }
    setup::reset_signals();
    if let Some((mut f, p)) = apparmor.take() {
        lsm::apply_apparmor(&mut f, &p)
            .map_err(|e| Error::os(format!("process.apparmorProfile: apply {}", crate::error::Clip(&p)), e))?;
        // A close the profile refuses leaves it CLOEXEC: execve closes it.
        drop(f);
    }
    if let Some(f) = seccomp.filter(|f| !f.notify() && nnp) {
        f.load().map_err(|e| Error::os(format!("linux.seccomp: {}", f.describe()), e))?;
    }
    let shown = Path::new(exe.to_str().unwrap_or("?")).display().to_string();
    if let Some(t) = &init.trampoline {
        let err = seal::exec_via(t, &exe, &argv, &envp);
        return Err(Error::os(format!("exec {shown} through berth's exec trampoline"), err));
    }
    let err = nix::unistd::execve(&exe, &argv, &envp).unwrap_err();
    Err(Error::os(format!("exec {shown}"), err))
}

/// SCMP_ACT_NOTIFY: load the filter and give its listener to berth, which
/// sends it to the agent; wait until it has.
fn hand_over_listener(f: &Filter, sock: &OwnedFd) -> Result<()> {
    let listener = f
        .load()
        .map_err(|e| Error::os(format!("linux.seccomp: {}", f.describe()), e))?
        .ok_or_else(|| Error::Unsupported("linux.seccomp: the kernel returned no listener".into()))?;
    send(sock, &Msg::SeccompListener)?;
    notify::send_fd(sock, &listener).map_err(|e| Error::os("pass the seccomp listener to berth", e))?;
    match recv(sock)? {
        Msg::SeccompSent => Ok(()),
        other => Err(Error::Protocol(format!("unexpected message from berth: {other:?}"))),
    }
}

/// After chdir: the working directory must be inside the container's root.
/// A cwd reached through an fd berth holds on a host directory
/// (`/proc/self/fd/N`) would be outside it (CVE-2024-21626); the kernel's
/// getcwd then answers a path that does not start with "/".
pub(super) fn cwd_inside_root(p: &oci_spec::runtime::Process) -> Result<()> {
    let mut buf = [0u8; 4096];
    // SAFETY: `buf` is a live stack buffer and getcwd writes at most buf.len() bytes.
    let r = unsafe { libc::syscall(libc::SYS_getcwd, buf.as_mut_ptr(), buf.len()) };
    // A path longer than a page (ENAMETOOLONG) cannot be checked: refused.
    if r <= 0 || buf[0] != b'/' {
        return Err(Error::Rootfs(rootfs::RootfsError::Config {
            at: "process.cwd".into(),
            msg: format!("{} is outside the container's root filesystem", p.cwd().display()),
        }));
    }
    Ok(())
}

/// Ask berth for the maps of our new user namespace. Rootless, berth can
/// only open our map files (its direct write of the caller's own id) while
/// we are dumpable: the kernel gives a non-dumpable process's /proc files
/// to root (setuid newuidmap opens them either way). Dumpable only for that
/// exchange, before anything of the container exists (runc's nsexec does
/// the same); as root, never.
fn request_maps(sock: &OwnedFd) -> Result<()> {
    let rootless = crate::host::current().rootless().is_some();
    if rootless {
        // SAFETY: prctl with integer arguments only.
        unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0) };
    }
    send(sock, &Msg::RequestMaps)?;
    let r = match recv(sock)? {
        Msg::MapsWritten => Ok(()),
        other => Err(Error::Protocol(format!("unexpected message from berth: {other:?}"))),
    };
    if rootless {
        // SAFETY: prctl with integer arguments only.
        unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    }
    r
}

/// In a user namespace, become its root so that we hold its capabilities
/// for the rest of the setup.
pub(super) fn become_root() -> Result<()> {
    setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0))
        .map_err(|e| Error::os("setresgid(0) in the user namespace (is gid 0 mapped?)", e))?;
    setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0))
        .map_err(|e| Error::os("setresuid(0) in the user namespace (is uid 0 mapped?)", e))?;
    Ok(())
}
