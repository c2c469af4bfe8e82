//! Creating the container's init: the parent side of the clone and the sync
//! protocol with init.
//!
//! berth stays single-threaded until init is cloned, and clones directly
//! (clone3 with CLONE_PIDFD; no re-exec of the binary). Parent and init talk
//! over one SOCK_SEQPACKET socketpair ([`sync::Msg`]) in this fixed order:
//!
//! ```text
//!  berth (parent)                                 init (child)
//!  ──────────────                                 ────────────
//!  (create: state dir, creating.json (pid 0):
//!   the cgroups and mounts `delete` removes)
//!  cgroups (all, or only the unified dir when
//!  init makes its own net ns), open ns paths,
//!  cgroup join files, socketpair
//!  [join pid ns by path] [unshare time ns,
//!   write offsets]
//!  clone3(new namespaces) ──────────────────────▶ PR_SET_PDEATHSIG(SIGKILL): dies
//!                                                  with berth until Ready (exits if
//!                                                  the socket hung up already)
//!                                                 [net ns deferred: unshare(NEWNET)
//!  [restore own pid/time ns]                       while the parent makes the v1
//!  [net ns deferred: v1 cgroups, resources         cgroups; wait for CgroupsReady,
//!   ─ CgroupsReady ─────────────────────────────▶  "0" to each v1 tasks file]
//!  [systemd placement: StartTransientUnit with    [systemd placement: wait for
//!   init's pid, resources ─ CgroupsReady ───────▶  CgroupsReady]
//!  [one stage: state.json (pid), while init      write "0" to each cgroup's join file
//!   works]
//!                                                 [two-stage: setns joins, unshare(USER)]
//!                                   RequestMaps ◀─ (only with a new user namespace)
//!  write uid_map, gid_map ─ MapsWritten ────────▶ setresuid(0), PDEATHSIG again
//!                                                 [two-stage: unshare rest, fork;
//!                                   Hello      ◀─  the child (pid-ns init) says Hello,
//!  pid from SCM_CREDENTIALS, reap the              the first child exits; the child
//!  first child, state.json (pid)]                  waits until berth adopted it,
//!                                                  then PDEATHSIG]
//!                                                 [setns joins, unshare] unshare(CGROUP)
//!                                                 [new network namespace: lo up]
//!                                MoveNetDevices ◀─ (only with linux.netDevices)
//!  move them in (netdev) ─ NetDevicesMoved ─────▶
//!                                                 rootfs::prepare, sysctl, oom_score_adj
//!                                   RunHooks   ◀─
//!  prestart, createRuntime hooks
//!                     ─ HooksDone(state) ───────▶ createContainer hooks
//!                                                 hostname, rootfs::finish (pivot),
//!                                                 rlimits, scheduler, ioprio,
//!                                                 personality, cwd, find executable
//!                                                 [SCMP_ACT_NOTIFY: load seccomp]
//!                               SeccompListener ◀─ (then a datagram with the fd)
//!  send it to listenerPath ─ SeccompSent ───────▶
//!                                   Ready      ◀─ (PDEATHSIG cleared just before:
//!                                                  EPIPE and EOF take over)
//!  (create) --pid-file ─ Detach ────────────────▶ (EOF instead: berth died, exit)
//!  exit                                           open exec.fifo for writing: blocks
//!  ...                                            (`run`: waits for Start on the socket
//!                                                  instead, and keeps the socket open
//!                                                  until execve as it would the fifo)
//!  `start`: open exec.fifo, poll it with the     write "0", keep the fifo open
//!  pidfd, read "0", unlink it                     (CLOEXEC), close fds, bounding set,
//!                                                 [seccomp if no no_new_privs], user,
//!                                                 groups, umask, capabilities,
//!                                                 startContainer hooks, no_new_privs,
//!                                                 [seccomp if no_new_privs],
//!                                                 execve (via the trampoline)
//!  read to EOF (= execve closed the fifo;         on failure: write "E<message>"
//!  "E<message>" = init failed, stopped)           into the fifo, exit
//!  poststart hooks
//! ```
//!
//! `Error(msg)` may come from init instead of any message it sends; the
//! parent then kills and reaps init and reports `msg`. A closed socket means
//! init died. Any other message is accepted only as the next step the
//! config calls for (`phase.rs`: [`phase::Steps`] from the config,
//! [`phase::Phase`] for where the parent is); one out of order kills init,
//! and the error names the message and the phase.
//!
//! Files: `sync.rs` (the messages), `phase.rs` (their order), `init.rs`
//! (init, one function per phase, in the order drawn above), `setup.rs`
//! (process attributes), `spread.rs` (CPU spreading), `join.rs` and
//! `join_root.rs` (the exec child, which joins a running container),
//! `tests.rs`.
//!
//! berth killed at any moment: whatever it made is recorded in the state
//! dir (cgroups and rootfs bind in creating.json from before they exist,
//! init's pid and start time in state.json as soon as it is known), so
//! `delete --force` finds it; and init does not live on without a record:
//! until Ready it dies with berth (parent-death signal, checked against a
//! berth already gone through the socket's hang-up), after Ready it reads
//! EOF where it waits for Detach (`create`) or Start (`run`). Two-stage:
//! the pid namespace's init arms the signal only once berth has adopted it
//! (its parent, the first child, has exited), and EOF covers the moment
//! before.

pub mod join;
mod join_root;
mod init;
pub mod phase;
mod setup;
mod spread;
pub mod sync;

use std::fs;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::LinuxNamespaceType;

use crate::cgroups::ContainerCgroups;
use crate::container::{OciState, StateDir, Status};
use crate::error::{Error, Result};
use crate::hooks::{self, HookKind};
use crate::namespaces::{self, Plan};
use crate::sys::{self, Forked};

use phase::{Phase, Steps};
use sync::Msg;

/// Everything needed to start a container's init.
pub struct Launch<'a> {
    pub id: &'a str,
    /// What to set up, from the bundle (`plan::build`): launch reads this,
    /// not the spec.
    pub plan: &'a crate::plan::Plan<'a>,
    pub state_dir: &'a StateDir,
    pub no_pivot: bool,
    /// `--no-new-keyring`: keep berth's session keyring.
    pub no_new_keyring: bool,
    /// Extra fds (3 .. 3+N) passed to the container.
    pub preserve_fds: u32,
    /// With process.terminal: the socket init sends the pty master on.
    pub console_socket: Option<&'a OwnedFd>,
    /// Appended to process.env (LISTEN_FDS, LISTEN_PID).
    pub extra_env: &'a [String],
    /// Explicit stdin, stdout, stderr for init (dup2'd onto 0, 1, 2 first
    /// thing in init); None: inherit berth's own. Used by the shim.
    pub stdio: Option<[std::os::fd::RawFd; 3]>,
    /// Creates the container's cgroups (the directories `plan.cgroups` names)
    /// and applies linux.resources. Called once with [`CgroupStep::All`]
    /// before the clone, or, when init makes its network namespace itself
    /// ([`defers_net`]), with `UnifiedDir` before the clone (clone3 puts
    /// init there) and `Rest` right after it, while init is busy with that
    /// namespace; init joins them once they are ready, before anything else.
    pub setup_cgroups: &'a dyn Fn(CgroupStep) -> Result<()>,
    /// Records init's host pid and start time (state.json). Called once,
    /// as soon as the pid is known, while init sets up: right after the
    /// clone in the one-stage case, at init's Hello in the two-stage one.
    /// An error kills init.
    pub record: &'a dyn Fn(i32, u64) -> Result<()>,
    /// The caller starts the container itself (`run`): init waits for
    /// `Msg::Start` on the sync socket instead of on exec.fifo (none is
    /// made), and [`Launched::start_socket`] is the parent's end.
    pub in_process_start: bool,
}

/// What [`Launch::setup_cgroups`] is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupStep {
    /// Every directory, then the resources.
    All,
    /// Only the unified (cgroup2) directory, if there is one.
    UnifiedDir,
    /// The other directories, then the resources.
    Rest,
    /// (a placement by pid: systemd) the cgroups made with init in them,
    /// then the resources.
    Place(i32),
}

/// Whether init creates its network namespace itself (unshare right after
/// the clone) instead of clone3 doing it, so that the parent's cgroup
/// setup runs meanwhile: a new network namespace (the costliest one to
/// make, about 0.4 ms here) in the one-stage case, with no user namespace
/// (which must own it: the clone makes both together), on a host with v1
/// hierarchies (on a v2-only host clone3 places init in its cgroup, which
/// must exist first).
pub fn defers_net(plan: &Plan, cgroups: &ContainerCgroups) -> bool {
    plan.clone_flags().contains(namespaces::flag(LinuxNamespaceType::Network))
        && !crate::fast::off("net")
        && !plan.has(LinuxNamespaceType::User)
        && !plan.two_stage()
        && cgroups.mounts.iter().any(|m| !m.unified)
}

/// A container init that is set up and blocked on exec.fifo.
#[derive(Debug)]
pub struct Launched {
    /// init's host pid.
    pub pid: i32,
    pub start_time: u64,
    pub pidfd: Option<OwnedFd>,
    /// With [`Launch::in_process_start`]: the sync socket, to send
    /// `Msg::Start` on and read to EOF (see `commands::start`).
    pub start_socket: Option<OwnedFd>,
    /// Without: the sync socket, for [`hand_over`] once init is recorded.
    /// Until then init dies with berth.
    pub detach_socket: Option<OwnedFd>,
}

/// `create`'s last step, once init is recorded everywhere (state.json,
/// --pid-file): let it go on to wait for `start` on its own. Before this,
/// a berth that dies takes init with it.
pub fn hand_over(init: &mut Launched) -> Result<()> {
    match init.detach_socket.take() {
        Some(sock) => sync::send(&sock, &Msg::Detach).map_err(|e| Error::os("hand over container init", e)),
        None => Ok(()),
    }
}

/// Clone the container's init and drive it until it is ready (blocked on
/// exec.fifo). On error, init is killed and reaped; the caller removes the
/// state dir and cgroups.
pub fn launch(l: &Launch) -> Result<Launched> {
    let plan = &l.plan.namespaces;
    let cgroups = &l.plan.cgroups;
    // systemd places init by its pid: clone it into berth's own cgroup,
    // and have it wait for CgroupsReady like a deferred network namespace.
    let by_pid = cgroups.placement().by_pid();
    let defer_net = !by_pid && defers_net(plan, cgroups);
    let cg = if by_pid {
        crate::cgroups::Join { tasks: Vec::new(), unified_dir: None }
    } else {
        (l.setup_cgroups)(if defer_net { CgroupStep::UnifiedDir } else { CgroupStep::All })?;
        cgroups.open_join(!defer_net)?
    };
    let mut join_files = cg.tasks;
    let state_fd = if l.in_process_start { None } else { Some(l.state_dir.open_path_fd()?) };
    let (parent_sock, child_sock) = sync::pair().map_err(|e| Error::os("socketpair", e))?;
    let two_stage = plan.two_stage();
    if two_stage {
        sync::pass_credentials(&parent_sock).map_err(|e| Error::os("SO_PASSCRED", e))?;
        // init will be our grandchild: adopt it when its parent exits.
        // SAFETY: PR_SET_CHILD_SUBREAPER takes integer arguments only; no memory is touched.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    }

    // Compiled (or taken from the cache) by the plan: init gets the BPF in
    // its copy of our memory.
    let seccomp = l.plan.seccomp.as_ref().map(|s| &s.filter);
    // The exec trampoline (CVE-2019-5736), above the fds the container keeps.
    let trampoline = match crate::security::seal::trampoline() {
        Some(fd) => Some(
            crate::security::seal::dup_above(fd, 3 + l.preserve_fds as i32)
                .map_err(|e| Error::os("duplicate the exec trampoline fd", e))?,
        ),
        None => None,
    };
    // Id-mapped mounts are made here, in berth's own namespaces (only
    // for configs that have them); init inherits the detached mounts.
    let idmapped = crate::rootfs::idmap::prepare(&l.plan.idmapped_mounts)?;
    let restore = NsRestore::enter(plan, l.plan.time_offsets.as_deref())?;
    // SAFETY: berth is single-threaded here; the child runs init::main and
    // never returns into the caller.
    let mut clone_flags = plan.clone_flags();
    if defer_net {
        clone_flags.remove(namespaces::flag(LinuxNamespaceType::Network));
    }
    let flags = clone_flags.bits() as u64;
    let into = cg.unified_dir.as_ref().map(|f| f.as_raw_fd());
    // SAFETY: berth is single-threaded until this clone (its documented precondition), and
    // init never returns into these frames: it ends in execve or _exit.
    let mut forked = unsafe { sys::clone_fork(flags, into) };
    if into.is_some() && forked.is_err() {
        // No CLONE_INTO_CGROUP (older kernel, or a cgroup it refuses):
        // init writes cgroup.procs itself instead.
        log::debug!("clone3 CLONE_INTO_CGROUP failed ({:?}); joining by cgroup.procs", forked.as_ref().err());
        if let Some(f) = cgroups.open_unified_procs()? {
            join_files.push(f);
        }
        // SAFETY: as above: still single-threaded, and init never returns.
        forked = unsafe { sys::clone_fork(flags, None) };
    }
    drop(cg.unified_dir);
    let forked = match forked {
        Ok(f) => f,
        Err(e) => {
            restore.restore()?;
            return Err(Error::os(format!("clone container init (flags {:?})", clone_flags), e));
        }
    };
    let (clone_pid, clone_pidfd) = match forked {
        Forked::Child => {
            drop(parent_sock);
            std::mem::forget(restore);
            init::main(init::Init {
                l,
                plan,
                join_files,
                state_fd,
                sock: child_sock,
                two_stage,
                seccomp,
                trampoline,
                apparmor: l.plan.apparmor.clone(),
                fifo: None,
                net_deferred: defer_net,
                cgroups_wait: defer_net || by_pid,
                idmapped: idmapped.as_ref(),
            })
        }
        Forked::Parent { pid, pidfd } => (pid, pidfd),
    };
    // init's network namespace overlaps our cgroup work only on another CPU.
    let spread = if defer_net && !crate::fast::off("spread") { spread::Spread::new() } else { None };
    if let Some(s) = &spread {
        s.push(clone_pid);
    }
    drop(child_sock);
    drop(join_files);
    drop(idmapped);
    drop(state_fd);
    let steps = Steps {
        cgroups_wait: defer_net || by_pid,
        maps: plan.has_new(LinuxNamespaceType::User),
        hello: two_stage && plan.has_new(LinuxNamespaceType::Pid),
        net_devices: !l.plan.net_devices.is_empty(),
        hooks: l.plan.hooks.during_setup(),
        seccomp_listener: seccomp.as_ref().is_some_and(|f| f.notify()),
    };
    let mut p = Parent {
        l,
        sock: parent_sock,
        clone_pid,
        steps,
        phase: Phase::Cloned,
        // Known at init's Hello when it forks a pid namespace's init.
        init_pid: if steps.hello { None } else { Some(clone_pid) },
        recorded: None,
    };
    if let Err(e) = restore.restore() {
        p.kill_all();
        return Err(e);
    }
    if defer_net || by_pid {
        // init is making its network namespace, or waits to be placed:
        // meanwhile, its cgroups.
        let step = if by_pid { CgroupStep::Place(clone_pid) } else { CgroupStep::Rest };
        if let Err(e) = (l.setup_cgroups)(step) {
            let e = p.pending_error().unwrap_or(e);
            p.kill_all();
            return Err(e);
        }
        if let Some(s) = &spread {
            s.release(clone_pid);
        }
        // A send to an init that died fails; drive() then reports why.
        let _ = p.send(&Msg::CgroupsReady);
    }
    // Init's pid is known now (unless it forks): record it while init
    // works (else at its Hello, in drive).
    if p.init_pid.is_some() {
        p.record(clone_pid)?;
    }
    match p.drive(two_stage) {
        Ok(()) => {}
        Err(e) => {
            p.kill_all();
            return Err(e);
        }
    }
    let pid = p.init_pid.expect("init pid known after Ready");
    let start_time = match p.recorded {
        Some(t) => t,
        None => p.record(pid)?,
    };
    let pidfd = if pid == clone_pid { clone_pidfd } else { sys::pidfd_open(pid).ok() };
    let (start_socket, detach_socket) = if l.in_process_start { (Some(p.sock), None) } else { (None, Some(p.sock)) };
    Ok(Launched { pid, start_time, pidfd, start_socket, detach_socket })
}

/// Namespaces the parent itself enters for the clone (a pid ns joined by
/// path, a new time ns with its offsets), and the handles to go back.
pub(super) struct NsRestore {
    pid: Option<OwnedFd>,
    time: Option<OwnedFd>,
}

impl NsRestore {
    fn enter(plan: &Plan, time_offsets: Option<&str>) -> Result<NsRestore> {
        let mut r = NsRestore { pid: None, time: None };
        if let Some(j) = plan.joins(LinuxNamespaceType::Pid) {
            r.pid = Some(open_ns("/proc/self/ns/pid")?);
            namespaces::enter(j)?;
        }
        if plan.has_new(LinuxNamespaceType::Time) {
            r.time = Some(open_ns("/proc/self/ns/time")?);
            if let Err(e) = unshare(namespaces::flag(LinuxNamespaceType::Time)) {
                r.restore()?;
                return Err(Error::os("unshare time namespace", e));
            }
            if let Err(e) = write_time_offsets(time_offsets.unwrap_or_default()) {
                r.restore()?;
                return Err(e);
            }
        } else if let Some(j) = plan.joins(LinuxNamespaceType::Time) {
            // The time namespace applies to children: join it for the clone.
            r.time = Some(open_ns("/proc/self/ns/time")?);
            namespaces::enter(j)?;
        }
        Ok(r)
    }

    pub(super) fn restore(self) -> Result<()> {
        if let Some(fd) = &self.pid {
            setns(fd.as_fd(), CloneFlags::CLONE_NEWPID).map_err(|e| Error::os("restore pid namespace", e))?;
        }
        if let Some(fd) = &self.time {
            setns(fd.as_fd(), namespaces::flag(LinuxNamespaceType::Time))
                .map_err(|e| Error::os("restore time namespace", e))?;
        }
        Ok(())
    }
}

fn open_ns(path: &str) -> Result<OwnedFd> {
    fs::File::open(path).map(OwnedFd::from).map_err(|e| Error::path("open", path, e))
}

/// Write the offsets the plan checked (`plan::time_offsets`), if any.
fn write_time_offsets(text: &str) -> Result<()> {
    if text.is_empty() {
        return Ok(());
    }
    let p = "/proc/self/timens_offsets";
    fs::OpenOptions::new()
        .write(true)
        .open(p)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| Error::path("write time offsets to", p, e))
}

struct Parent<'a> {
    l: &'a Launch<'a>,
    sock: OwnedFd,
    clone_pid: i32,
    init_pid: Option<i32>,
    /// init's start time, once [`Launch::record`] has run.
    recorded: Option<u64>,
    /// The steps this container's setup has, and the last one done.
    steps: Steps,
    phase: Phase,
}

impl Parent<'_> {
    fn drive(&mut self, two_stage: bool) -> Result<()> {
        loop {
            let got = sync::recv(&self.sock, two_stage).map_err(|e| Error::os("read from container init", e))?;
            let Some((msg, cred_pid)) = got else {
                return Err(self.died());
            };
            // Out of order: the caller kills init.
            self.phase = self.phase.received(&self.steps, &msg).map_err(|u| Error::Protocol(u.to_string()))?;
            match msg {
                Msg::RequestMaps => {
                    write_id_maps(self.clone_pid, &self.l.plan.id_maps)?;
                    self.send(&Msg::MapsWritten)?;
                }
                Msg::Hello => {
                    let pid = cred_pid.ok_or_else(|| Error::Protocol("init's hello carried no credentials".into()))?;
                    self.init_pid = Some(pid);
                    // The first child exits once it has forked init.
                    let _ = waitpid(Pid::from_raw(self.clone_pid), None);
                    self.record(pid)?;
                }
                Msg::RunHooks => {
                    let state = self.state();
                    let json = serde_json::to_vec(&state).map_err(|e| Error::encode("the container state", e))?;
                    let h = &self.l.plan.hooks;
                    hooks::run_hooks(HookKind::Prestart, &h.prestart, &json)?;
                    hooks::run_hooks(HookKind::CreateRuntime, &h.create_runtime, &json)?;
                    self.send(&Msg::HooksDone(state))?;
                }
                Msg::MoveNetDevices => {
                    crate::netdev::move_all(&self.l.plan.net_devices, self.init_pid.unwrap_or(self.clone_pid))?;
                    self.send(&Msg::NetDevicesMoved)?;
                }
                Msg::SeccompListener => {
                    self.seccomp_listener()?;
                    self.send(&Msg::SeccompSent)?;
                }
                Msg::Ready => return Ok(()),
                Msg::Error(m) => return Err(Error::Init(m)),
                // Every other message is refused by `received`.
                other => return Err(Error::Protocol(format!("sync protocol: unexpected {}", other.name()))),
            }
        }
    }

    /// Pass init's seccomp listener on to linux.seccomp.listenerPath.
    fn seccomp_listener(&self) -> Result<()> {
        use crate::security::seccomp::notify;
        let fd = notify::recv_fd(&self.sock).map_err(|e| Error::os("receive the seccomp listener from init", e))?;
        let sc = self.l.plan.seccomp.as_ref();
        let path = sc.and_then(|s| s.listener_path.as_deref()).ok_or_else(|| {
            Error::Protocol("linux.seccomp.listenerPath: init sent a listener but none is configured".into())
        })?;
        let state = self.state();
        let cps = notify::ContainerProcessState {
            oci_version: crate::OCI_VERSION,
            fds: vec![notify::SECCOMP_FD_NAME],
            pid: state.pid,
            metadata: sc.and_then(|s| s.listener_metadata.as_deref()),
            state: &state,
        };
        notify::send_to_agent(path, &cps, &fd)
            .map_err(|e| Error::os("linux.seccomp.listenerPath", std::io::Error::other(e)))
    }

    /// Send `m` as the protocol's next step.
    fn send(&mut self, m: &Msg) -> Result<()> {
        self.phase = self.phase.sent(&self.steps, m).map_err(|u| Error::Protocol(u.to_string()))?;
        sync::send(&self.sock, m).map_err(|e| Error::os("write to container init", e))
    }

    fn state(&self) -> OciState {
        OciState {
            oci_version: crate::OCI_VERSION.into(),
            id: self.l.id.into(),
            status: Status::Creating,
            pid: self.init_pid.unwrap_or(self.clone_pid),
            bundle: self.l.plan.bundle.dir.clone(),
            rootfs: None,
            created: None,
            owner: None,
            annotations: self
                .l
                .plan
                .bundle
                .spec
                .annotations()
                .as_ref()
                .map(|a| a.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default(),
        }
    }

    /// Read init's start time and hand both to [`Launch::record`]; on
    /// error, init is killed.
    fn record(&mut self, pid: i32) -> Result<u64> {
        let r = sys::process_start_time(pid)
            .map_err(|e| Error::os(format!("read start time of init {pid}"), e))
            .and_then(|t| (self.l.record)(pid, t).map(|()| t));
        match r {
            Ok(t) => self.recorded = Some(t),
            Err(_) => self.kill_all(),
        }
        r
    }

    /// The error init has sent already, if any (without waiting): when
    /// the parent fails while init runs on its own, init's own failure
    /// (e.g. its unshare) is the cause to report.
    fn pending_error(&self) -> Option<Error> {
        let mut p = libc::pollfd { fd: self.sock.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: `p` is a live pollfd and nfds is 1; a zero timeout never blocks.
        if unsafe { libc::poll(&mut p, 1, 0) } != 1 || p.revents & libc::POLLIN == 0 {
            return None;
        }
        match sync::recv(&self.sock, false) {
            Ok(Some((Msg::Error(m), _))) => Some(Error::Init(m)),
            _ => None,
        }
    }

    /// init closed the socket without a word: report how it ended.
    fn died(&self) -> Error {
        let how = match waitpid(Pid::from_raw(self.clone_pid), None) {
            Ok(nix::sys::wait::WaitStatus::Exited(_, c)) => format!("exited with status {c}"),
            Ok(nix::sys::wait::WaitStatus::Signaled(_, s, _)) => format!("was killed by {s}"),
            _ => "ended".to_string(),
        };
        Error::Protocol(format!("container init {how} during setup"))
    }

    /// Kill and reap whatever was started.
    fn kill_all(&self) {
        if let Some(pid) = self.init_pid {
            if pid != self.clone_pid {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                let _ = waitpid(Pid::from_raw(pid), None);
            }
        }
        let _ = kill(Pid::from_raw(self.clone_pid), Signal::SIGKILL);
        let _ = waitpid(Pid::from_raw(self.clone_pid), None);
    }
}

/// The maps of init's new user namespace, as the host writes them.
fn write_id_maps(pid: i32, maps: &crate::plan::IdMaps) -> Result<()> {
    crate::host::current().write_id_maps(pid, maps)
}

#[cfg(test)]
mod tests;
