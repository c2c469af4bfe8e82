//! [`Container::create`] (`berth create`): load the bundle, make the state
//! dir and cgroups, launch init and leave it blocked on exec.fifo. On any error nothing is left
//! behind: no state dir, cgroup, or process.
//!
//! Killed at any moment (SIGKILL), berth leaves what `delete --force`
//! removes: creating.json (pid 0) is written before any cgroup or process
//! exists, state.json with init's pid and start time as soon as it is known;
//! init dies with berth until `create` has recorded it and handed it over
//! (parent-death signal, then EOF on the sync socket: see `process`).

use std::cell::RefCell;
use std::ffi::CString;
use std::fs;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::cgroups::ContainerCgroups;
use crate::console::{self, HostTerminal};
use crate::container::{rfc3339_now, State, StateDir};
use crate::error::{Error, Result};
use crate::process::join::check_fds_open;
use crate::process::{self, CgroupStep, Launch};
use crate::spec;

use super::{Attach, Container, CreateOptions, StartBy, Stdio};

/// berth's end of the console socket and its own terminal, for the proxy.
pub(super) struct ForegroundTty {
    pub socket: OwnedFd,
    pub host: HostTerminal,
}

impl Container {
    /// Create the container: load the bundle, make the state dir and
    /// cgroups, launch init and leave it waiting for the start (see
    /// [`StartBy`]). On any error nothing is left behind.
    pub fn create(o: &CreateOptions) -> Result<Container> {
        let detached = o.start != StartBy::Creator(Attach::Foreground);
        let in_process_start = matches!(o.start, StartBy::Creator(_));
        let stdio = match o.stdio {
            Stdio::Inherit => None,
            Stdio::Fds(fds) => Some(fds),
        };
        create_full(&o.root, o, detached, stdio, in_process_start)
    }
}

/// `detached` is false for a foreground `run`, which proxies a terminal
/// itself instead of sending it to `--console-socket`. With
/// `in_process_start` (`run`) there is no exec.fifo: init waits for the
/// start on its sync socket ([`process::Launched::start_socket`]).
fn create_full(
    root: &Path,
    a: &CreateOptions,
    detached: bool,
    stdio: Option<[std::os::fd::RawFd; 3]>,
    in_process_start: bool,
) -> Result<Container> {
    check_inherited_fds(a.preserve_fds)?;
    // The exec trampoline (CVE-2019-5736); the CLI made it already, or
    // re-executed itself sealed. Never re-executes here.
    crate::security::seal::prepare_library()?;
    let listen = listen_fds();
    let mut bundle = spec::load_bundle(&a.bundle)?;
    if a.notify_socket.is_some() {
        // Its own socket, mounted from the state dir (made below).
        super::notify::add_to_spec(&mut bundle.spec, &root.join(&a.id))?;
    }
    // May re-execute berth from a sealed copy (CVE-2019-5736).
    crate::security::seal::for_config(&bundle.spec)?;
    // Every config error is raised here, before anything is created.
    let plan = crate::plan::build(&bundle, &a.id, root, a.cgroup_manager)?;
    let terminal = bundle.spec.process().as_ref().and_then(|p| p.terminal()) == Some(true);
    console::check_flags(terminal, detached, a.console_socket.as_deref())
        .map_err(|e| config_error(&bundle, e))?;
    let extra_env: Vec<String> =
        if listen > 0 { vec![format!("LISTEN_FDS={listen}"), "LISTEN_PID=1".into()] } else { Vec::new() };
    let (console_theirs, tty) = match (terminal, detached, &a.console_socket) {
        (true, true, Some(path)) => (Some(console::connect(path)?), None),
        (true, false, _) => {
            let host = HostTerminal::find()?;
            let (ours, theirs) = console::pair()?;
            (Some(theirs), Some(ForegroundTty { socket: ours, host }))
        }
        _ => (None, None),
    };
    let (cgroups, resources) = (&plan.cgroups, &plan.resources);
    log::debug!("{}: bundle {} loaded, rootfs {}", a.id, bundle.dir.display(), bundle.rootfs.display());
    let dir = StateDir::create(root, &a.id)?;
    // Removing cgroups that were never made is not an error: armed first.
    let mut undo = Undo { dir: Some(dir), cgroups: Some(cgroups.clone()), rootfs_bind: None };
    let dir = undo.dir.as_ref().unwrap();
    if !in_process_start {
        mkfifo(&dir.fifo_path())?;
    }
    if a.notify_socket.is_some() {
        super::notify::make_dir(&dir.path)?;
    }
    if plan.mntns_inherited {
        // No mount namespace: a private bind of the rootfs in berth's own.
        undo.rootfs_bind = Some(crate::rootfs::inherited::bind(&bundle.rootfs, &dir.path)?);
    }
    let rootfs_bind = undo.rootfs_bind.as_ref().map(|b| b.record().clone());
    // Before any cgroup or process exists: what `delete --force` removes if
    // berth dies before it is done (pid 0: no init known yet).
    let unborn = unborn_state(&a.id, &bundle, cgroups, resources, rootfs_bind);
    dir.save_creating(&unborn)?;
    // launch() calls this before init's clone, or partly while init makes
    // its network namespace; either way before init goes on: it runs in a
    // cgroup that is already limited.
    let setup_cgroups = |step: CgroupStep| -> Result<()> {
        match step {
            CgroupStep::All => cgroups.create()?,
            CgroupStep::UnifiedDir => return cgroups.create_where(|m| m.unified),
            CgroupStep::Rest => cgroups.create_where(|m| !m.unified)?,
            CgroupStep::Place(pid) => cgroups.placement().place(pid, resources)?,
        }
        log::debug!("{}: cgroup {:?} in {} hierarchies", a.id, cgroups.mounts.first().map(|m| &m.path), cgroups.mounts.len());
        cgroups
            .driver()
            .apply(resources)
            .map_err(|error| Error::Cgroup { what: bundle.config_path.display().to_string(), error })
    };

    // state.json again once init's pid is known, while init sets up
    // (nobody sees it before create returns: the state dir stays locked).
    let recorded: RefCell<Option<State>> = RefCell::new(None);
    let record = |pid: i32, start_time: u64| -> Result<()> {
        let state = State { pid, start_time, created: rfc3339_now(), ..unborn.clone() };
        dir.save(&state)?;
        *recorded.borrow_mut() = Some(state);
        Ok(())
    };

    let init = process::launch(&Launch {
        id: &a.id,
        plan: &plan,
        state_dir: dir,
        no_pivot: a.no_pivot,
        no_new_keyring: a.no_new_keyring,
        preserve_fds: listen + a.preserve_fds,
        console_socket: console_theirs.as_ref(),
        extra_env: &extra_env,
        stdio,
        setup_cgroups: &setup_cgroups,
        record: &record,
        in_process_start,
    });
    let mut init = match init {
        Ok(i) => i,
        Err(e) if e.is_hook_failure() => {
            // runtime.md lifecycle steps 3-5: stop (init is gone), destroy
            // (the undo), then the poststop hooks.
            drop(undo);
            let poststop = &plan.hooks.poststop;
            if !poststop.is_empty() {
                let state = crate::container::OciState {
                    oci_version: crate::OCI_VERSION.into(),
                    id: a.id.clone(),
                    status: crate::container::Status::Stopped,
                    pid: 0,
                    bundle: bundle.dir.clone(),
                    rootfs: Some(bundle.rootfs.clone()),
                    created: None,
                    owner: None,
                    annotations: Default::default(),
                };
                let json = serde_json::to_vec(&state).unwrap_or_default();
                super::start::warn_each(crate::hooks::HookKind::Poststop, poststop, &json);
            }
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    drop(console_theirs);
    log::debug!("{}: init {} (start time {}) ready (waiting for the start)", a.id, init.pid, init.start_time);
    let state = recorded.into_inner().expect("launch records the state");
    // Recorded everywhere: hand init over (it dies with berth until then).
    let handed = match &a.pid_file {
        Some(p) => write_pid_file(p, init.pid),
        None => Ok(()),
    }
    .and_then(|()| process::hand_over(&mut init));
    if let Err(e) = handed {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(init.pid), nix::sys::signal::Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(init.pid), None);
        return Err(e);
    }
    let dir = undo.disarm();
    Ok(Container { id: a.id.clone(), dir, state: Some(state), init: Some(init), tty })
}

/// The container's record before init exists (pid 0).
fn unborn_state(
    id: &str,
    bundle: &spec::Bundle,
    cgroups: &ContainerCgroups,
    resources: &crate::cgroups::resources::Resources,
    rootfs_bind: Option<crate::rootfs::inherited::RootfsBind>,
) -> State {
    let mut cg = cgroups.clone();
    cg.remember(resources.clone());
    let hooks = bundle.spec.hooks().as_ref();
    State {
        id: id.to_string(),
        pid: 0,
        start_time: 0,
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        created: rfc3339_now(),
        annotations: bundle
            .spec
            .annotations()
            .as_ref()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
        cgroups: cg,
        poststart: hooks.and_then(|h| h.poststart().clone()).unwrap_or_default(),
        poststop: hooks.and_then(|h| h.poststop().clone()).unwrap_or_default(),
        paused: false,
        rootfs_bind,
    }
}

/// A config error found after loading (`Error::config`, no file yet), or
/// a flag that does not fit the config: named with the config file.
fn config_error(bundle: &spec::Bundle, e: Error) -> Error {
    match e {
        Error::Config(mut c) if c.file.is_empty() => {
            c.file = bundle.config_path.display().to_string();
            Error::Config(c)
        }
        Error::Usage(m) => Error::Usage(format!("{}: {m}", bundle.config_path.display())),
        e => e,
    }
}

fn mkfifo(path: &Path) -> Result<()> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|e| Error::path("mkfifo", path, e.into()))?;
    // 0622 whatever the umask: init may run as an unprivileged host uid
    // (user namespace) when it opens the fifo for writing.
    // SAFETY: `c` is a NUL-terminated CString alive for both calls, which take no other memory.
    if unsafe { libc::mkfifo(c.as_ptr(), 0o622) } != 0 || unsafe { libc::chmod(c.as_ptr(), 0o622) } != 0 {
        return Err(Error::path("mkfifo", path, std::io::Error::last_os_error()));
    }
    Ok(())
}

/// `LISTEN_FDS` when `LISTEN_PID` is berth's pid (systemd socket
/// activation), else 0.
/// Socket activation, as runc: fds 3 .. 3+LISTEN_FDS go first, then
/// --preserve-fds; each must be open. Called before berth opens anything
/// itself (dispatch does, before the exec trampoline's memfd exists), so a
/// missing fd is reported as missing, never filled by one of berth's own.
pub fn check_inherited_fds(preserve_fds: u32) -> Result<()> {
    let listen = listen_fds();
    check_fds_open(3, listen, "LISTEN_FDS")?;
    check_fds_open(3 + listen as i32, preserve_fds, &format!("--preserve-fds {preserve_fds}"))
}

fn listen_fds() -> u32 {
    let ours = std::env::var("LISTEN_PID").ok().and_then(|p| p.parse::<u32>().ok()) == Some(std::process::id());
    if !ours {
        return 0;
    }
    std::env::var("LISTEN_FDS").ok().and_then(|n| n.parse().ok()).unwrap_or(0)
}

/// Write `pid` to `path` atomically, as runc does.
pub(super) fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let tmp = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    ));
    let r = fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(pid.to_string().as_bytes()))
        .and_then(|()| fs::rename(&tmp, path));
    r.map_err(|e| Error::path("--pid-file: write", path, e))
}

/// Removes what create made unless disarmed.
struct Undo {
    dir: Option<StateDir>,
    cgroups: Option<ContainerCgroups>,
    /// Unmounted (lazily) when dropped armed.
    rootfs_bind: Option<crate::rootfs::inherited::Bound>,
}

impl Undo {
    fn disarm(mut self) -> StateDir {
        self.cgroups = None;
        if let Some(b) = self.rootfs_bind.take() {
            b.disarm();
        }
        self.dir.take().expect("state dir")
    }
}

impl Drop for Undo {
    fn drop(&mut self) {
        // Before the cgroups: init, if it lived, is gone by now.
        drop(self.rootfs_bind.take());
        if let Some(c) = self.cgroups.take() {
            if let Err(e) = c.remove() {
                log::warn!("cleanup after failed create: {e}");
            }
        }
        if let Some(d) = self.dir.take() {
            if let Err(e) = d.remove() {
                log::warn!("cleanup after failed create: {e}");
            }
        }
    }
}
