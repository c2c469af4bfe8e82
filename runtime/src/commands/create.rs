//! `berth create`: load the bundle, make the state dir and cgroups, launch
//! init and leave it blocked on exec.fifo. On any error nothing is left
//! behind: no state dir, cgroup, or process.

use std::ffi::CString;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::cgroups::ContainerCgroups;
use crate::cli::CreateArgs;
use crate::container::{rfc3339_now, State, StateDir};
use crate::error::{Error, Result};
use crate::process::{self, Launch, Launched};
use crate::spec;

/// A created container, for `run` to go on with.
pub struct Created {
    pub dir: StateDir,
    pub state: State,
    pub init: Launched,
}

pub fn create(root: &Path, a: &CreateArgs) -> Result<Created> {
    if a.console_socket.is_some() {
        return Err(Error::Usage("--console-socket: terminals are not supported yet".into()));
    }
    let bundle = spec::load_bundle(&a.bundle)?;
    if bundle.spec.process().as_ref().and_then(|p| p.terminal()) == Some(true) {
        return Err(Error::Usage(format!(
            "{}: process.terminal: terminals are not supported yet",
            bundle.config_path.display()
        )));
    }
    let cgroups_path = bundle.spec.linux().as_ref().and_then(|l| l.cgroups_path().as_ref());
    let mut cgroups = ContainerCgroups::resolve(cgroups_path.map(|p| p.to_str().unwrap_or("")), &a.id)
        .map_err(|e| config_error(&bundle, e))?;
    let resources = crate::cgroups::resources::from_bundle(&bundle).map_err(|e| config_error(&bundle, e))?;
    let dir = StateDir::create(root, &a.id)?;
    let mut undo = Undo { dir: Some(dir), cgroups: None };
    cgroups.create()?;
    undo.cgroups = Some(cgroups.clone());
    // Before init exists: it joins a cgroup that is already limited.
    cgroups.apply(resources).map_err(|e| config_error(&bundle, Error::Usage(e.to_string())))?;
    let dir = undo.dir.as_ref().unwrap();
    mkfifo(&dir.fifo_path())?;

    let init = process::launch(&Launch {
        id: &a.id,
        bundle: &bundle,
        state_dir: dir,
        cgroups: &cgroups,
        no_pivot: a.no_pivot,
        no_new_keyring: a.no_new_keyring,
        preserve_fds: a.preserve_fds,
        caps: bundle.spec.process().as_ref().and_then(crate::security::caps::plan),
    })?;
    let hooks = bundle.spec.hooks().as_ref();
    let state = State {
        id: a.id.clone(),
        pid: init.pid,
        start_time: init.start_time,
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        created: rfc3339_now(),
        annotations: bundle
            .spec
            .annotations()
            .as_ref()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
        cgroups,
        poststart: hooks.and_then(|h| h.poststart().clone()).unwrap_or_default(),
        poststop: hooks.and_then(|h| h.poststop().clone()).unwrap_or_default(),
        paused: false,
    };
    let saved = dir.save(&state).and_then(|()| match &a.pid_file {
        Some(p) => write_pid_file(p, init.pid),
        None => Ok(()),
    });
    if let Err(e) = saved {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(init.pid), nix::sys::signal::Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(init.pid), None);
        return Err(e);
    }
    let dir = undo.disarm();
    Ok(Created { dir, state, init })
}

fn config_error(bundle: &spec::Bundle, e: Error) -> Error {
    match e {
        Error::Usage(m) => Error::Usage(format!("{}: {m}", bundle.config_path.display())),
        e => e,
    }
}

fn mkfifo(path: &Path) -> Result<()> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| Error::Other("NUL in state path".into()))?;
    // 0622 whatever the umask: init may run as an unprivileged host uid
    // (user namespace) when it opens the fifo for writing.
    if unsafe { libc::mkfifo(c.as_ptr(), 0o622) } != 0 || unsafe { libc::chmod(c.as_ptr(), 0o622) } != 0 {
        return Err(Error::path("mkfifo", path, std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Write `pid` to `path` atomically, as runc does.
pub fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
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
}

impl Undo {
    fn disarm(mut self) -> StateDir {
        self.cgroups = None;
        self.dir.take().expect("state dir")
    }
}

impl Drop for Undo {
    fn drop(&mut self) {
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
