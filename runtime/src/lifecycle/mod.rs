//! The container API: what the `berth` binary, the containerd shim and
//! berthctl do to a container, as plain calls (runc's `libcontainer`, youki's
//! `Container`). The command line is the binary's (`main.rs`: `cli`,
//! `cli_fast`, `commands/`); it parses, calls this, and prints.
//!
//! ```text
//!  Container::create(&CreateOptions) ─▶ created ─ start() ─▶ running ─▶ stopped ─ delete()
//!  Container::load(root, id)          (kill, pause/resume, update, stats, events, exec, state)
//!  run(&CreateOptions, &RunOptions)   create + start (+ wait, forward signals, delete)
//! ```
//!
//! | file | what |
//! | --- | --- |
//! | `create.rs` | [`Container::create`]: bundle, state dir, cgroups, init blocked before the start |
//! | `start.rs` | [`Container::start`] through exec.fifo or init's sync socket; poststart; hooks whose failure is a warning |
//! | `run.rs` | [`run`]: create and start; in the foreground forward signals, proxy the terminal, wait, delete |
//! | `exec.rs` | [`Container::exec`]: a process in a created or running container ([`ExecOptions`]) |
//! | `kill.rs` | [`Container::kill`], signalling every process of the container, [`parse_signal`] |
//! | `delete.rs` | [`Container::delete`], [`Container::destroy`] (cgroups, state dir, poststop) |
//! | `pause.rs`, `resume.rs` | the freezer |
//! | `update.rs` | [`Container::update`], [`parse_resources`] |
//! | `notify.rs` | sd-notify: the container's notify socket, its READY passed on ([`NotifyProxy`]) |
//! | `events.rs` | [`Container::events`]: stats every interval and OOM notifications |
//!
//! A [`Container`] holds its state directory's lock from `create` or `load`
//! until it is dropped or consumed, so nothing else changes the container
//! meanwhile; `exec`, `events` and a foreground `run` give it up once they
//! no longer need it, as the commands always did.

mod create;
mod delete;
mod events;
mod exec;
mod kill;
mod notify;
mod pause;
mod resume;
mod run;
mod start;
mod update;

#[cfg(test)]
mod tests;

use std::os::fd::{OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use crate::cgroups::stats::Stats;
use crate::container::{self, OciState, State, StateDir};
use crate::error::{Error, Result};
use crate::process::Launched;

pub use create::check_inherited_fds;
pub use events::{Event, Watch};
pub use exec::{check_preserved_fds, ExecOptions, ExecProcess, Executed, ProcessSource, User};
pub use kill::parse_signal;
pub use notify::NotifyProxy;
pub use run::{run, AfterExit, Orphans, RunOptions};
pub use update::parse_resources;

/// Where the container's init gets its stdin, stdout and stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stdio {
    /// berth's own (the command line).
    Inherit,
    /// These fds (the shim's pipes), duplicated onto 0, 1 and 2 in init.
    Fds([RawFd; 3]),
}

/// Whether berth returns once a process runs or stays with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attach {
    /// Return once it runs; a terminal goes to the console socket.
    Detached,
    /// Stay: forward signals, proxy the terminal, wait for it.
    Foreground,
}

/// Who starts a created container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartBy {
    /// Anyone, later, with [`Container::start`]: init waits on exec.fifo.
    Fifo,
    /// The creating process itself, at once ([`run`]): no exec.fifo, init
    /// waits for the start on its sync socket, and nobody else sees the
    /// container before it runs (the state dir stays locked).
    Creator(Attach),
}

/// Who makes the container's cgroups.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CgroupManager {
    /// berth, in every mounted hierarchy (runc's default).
    #[default]
    Cgroupfs,
    /// systemd, as a transient unit (`--systemd-cgroup`): linux.cgroupsPath
    /// is `slice:prefix:name`, or empty for runc's defaults.
    Systemd,
    /// systemd when linux.cgroupsPath is `slice:prefix:name` and systemd
    /// runs the host, else cgroupfs. For callers told nothing about the
    /// driver but the path (the shim: containerd gives shims other than
    /// runc's no SystemdCgroup option, and CRI writes systemd paths then).
    ByPath,
}

impl CgroupManager {
    /// The placement for `cgroups_path`.
    pub(crate) fn placement(self, cgroups_path: Option<&str>) -> crate::cgroups::PlacementKind {
        use crate::cgroups::PlacementKind;
        match self {
            CgroupManager::Cgroupfs => PlacementKind::Cgroupfs,
            CgroupManager::Systemd => PlacementKind::Systemd,
            CgroupManager::ByPath => {
                let systemd_path = cgroups_path.is_some_and(|p| {
                    let parts: Vec<&str> = p.split(':').collect();
                    parts.len() == 3 && !p.starts_with('/')
                });
                if systemd_path && crate::cgroups::systemd_running() {
                    PlacementKind::Systemd
                } else {
                    PlacementKind::Cgroupfs
                }
            }
        }
    }
}

/// What [`Container::create`] makes.
#[derive(Debug, Clone)]
pub struct CreateOptions {
    /// The state root (`--root`).
    pub root: PathBuf,
    pub id: String,
    /// The bundle directory (holds config.json).
    pub bundle: PathBuf,
    /// Write init's pid there (atomically), as runc's `--pid-file`.
    pub pid_file: Option<PathBuf>,
    /// MS_MOVE + chroot instead of pivot_root.
    pub no_pivot: bool,
    /// No new session keyring for the container.
    pub no_new_keyring: bool,
    /// Pass fds 3 .. 3+N-1 on to the container (after LISTEN_FDS ones).
    pub preserve_fds: u32,
    /// The unix socket that receives the terminal's master (detached).
    pub console_socket: Option<PathBuf>,
    pub stdio: Stdio,
    pub start: StartBy,
    /// The caller's sd-notify socket (`NOTIFY_SOCKET`): the container gets
    /// one of its own, whose READY=1 `start`/`run` pass on (`notify.rs`).
    pub notify_socket: Option<PathBuf>,
    /// Who makes the cgroups (`--systemd-cgroup`).
    pub cgroup_manager: CgroupManager,
}

impl CreateOptions {
    /// Options with the defaults of `berth create -b BUNDLE ID`.
    pub fn new(root: impl Into<PathBuf>, id: impl Into<String>, bundle: impl Into<PathBuf>) -> CreateOptions {
        CreateOptions {
            root: root.into(),
            id: id.into(),
            bundle: bundle.into(),
            pid_file: None,
            no_pivot: false,
            no_new_keyring: false,
            preserve_fds: 0,
            console_socket: None,
            stdio: Stdio::Inherit,
            start: StartBy::Fifo,
            notify_socket: None,
            cgroup_manager: CgroupManager::Cgroupfs,
        }
    }
}

/// The container's cgroups, for callers that watch them (the shim's OOM
/// watch and its reply to Create).
#[derive(Debug, Clone)]
pub struct CgroupDirs {
    /// Its directory in every mounted hierarchy.
    pub dirs: Vec<PathBuf>,
    /// The one with the memory controller (v2: the unified one).
    pub memory: Option<PathBuf>,
    /// cgroup v2 only (no v1 hierarchies).
    pub v2: bool,
}

/// One container, with its state directory locked.
pub struct Container {
    id: String,
    /// Locked.
    dir: StateDir,
    /// None: its create died right after making the state directory.
    state: Option<State>,
    /// Set when this process created it: the clone's pidfd and sockets.
    init: Option<Launched>,
    /// A foreground `run` with a terminal: berth's end and its terminal.
    tty: Option<create::ForegroundTty>,
}

impl Container {
    /// The container `id` under `root`, its state directory locked.
    pub fn load(root: &Path, id: &str) -> Result<Container> {
        let dir = StateDir::open(root, id)?;
        let state = dir.load()?;
        Ok(Container { id: dir.id.clone(), dir, state, init: None, tty: None })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// init's host pid (0 while unknown).
    pub fn pid(&self) -> i32 {
        self.state.as_ref().map_or(0, |s| s.pid)
    }

    /// The spec's state of the container (`berth state`).
    pub fn state(&self) -> OciState {
        match &self.state {
            Some(st) => st.oci(st.status(&self.dir.path)),
            // Its create died before writing state.json: nothing was made.
            None => container::oci_unfinished(&self.id),
        }
    }

    /// The container's processes, in its cgroup and below.
    pub fn pids(&self) -> Result<Vec<i32>> {
        needs_cgroup(self.record()?, "ps")?;
        Ok(kill::all_pids(&self.record()?.cgroups).into_iter().collect())
    }

    /// Its cgroup directories.
    pub fn cgroups(&self) -> Result<CgroupDirs> {
        let cg = &self.record()?.cgroups;
        let v2 = cg.is_v2();
        let memory = cg
            .mounts
            .iter()
            .find(|m| if v2 { m.unified } else { m.subsystems.iter().any(|s| s == "memory") })
            .map(|m| m.dir.clone());
        Ok(CgroupDirs { dirs: cg.mounts.iter().map(|m| m.dir.clone()).collect(), memory, v2 })
    }

    /// The cgroup statistics (runc's shape).
    pub fn stats(&self) -> Result<Stats> {
        needs_cgroup(self.record()?, "stats")?;
        self.record()?.cgroups.driver().stats()
    }

    /// The pidfd of init from its clone, for a caller that watches it (the
    /// shim); None when this process did not create the container.
    pub fn take_init_pidfd(&mut self) -> Option<OwnedFd> {
        self.init.as_mut().and_then(|i| i.pidfd.take())
    }

    /// The record, as the commands that need one always required it.
    fn record(&self) -> Result<&State> {
        self.state.as_ref().ok_or_else(|| Error::NotFound(self.id.clone()))
    }

    /// The locked directory and the record.
    fn locked(&self) -> Result<(&StateDir, &State)> {
        Ok((&self.dir, self.record()?))
    }
}

/// The spec's state of every container under `root` (`berth list`); a
/// container that cannot be read is skipped with a warning.
pub fn list(root: &Path) -> Result<Vec<OciState>> {
    let mut rows = Vec::new();
    for id in container::list_ids(root)? {
        let Ok(dir) = StateDir::open(root, &id) else { continue };
        match dir.load() {
            Ok(state) => rows.push(Container { id, dir, state, init: None, tty: None }.state()),
            Err(e) => log::warn!("{id}: {e}"),
        }
    }
    Ok(rows)
}

/// Rootless on a host that delegates no cgroup to the user, a container
/// has no cgroup at all: `what` (pause, update, ps, events, stats), which
/// needs one, fails saying so rather than naming a missing controller.
pub(crate) fn needs_cgroup(state: &State, what: &str) -> Result<()> {
    if no_cgroup(state) {
        return Err(Error::Unsupported(format!(
            "{what}: container \"{}\" has no cgroup: berth runs rootless and had no cgroup it may write \
             (cgroup v1, or no delegated cgroup v2 subtree), so {what} is not available",
            state.id
        )));
    }
    Ok(())
}

/// A container made rootless on a host without a delegated cgroup.
pub(crate) fn no_cgroup(state: &State) -> bool {
    state.cgroups.mounts.is_empty() && crate::host::current().rootless().is_some()
}
