//! A container's on-disk state: `<root>/<id>/` holds `state.json` (written
//! atomically) and, between create and start, `exec.fifo`. Commands that act
//! on one container hold an exclusive flock on its directory.

mod status;
mod time;

pub use status::Status;
pub use time::rfc3339_now;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use oci_spec::runtime::Hook;
use serde::{Deserialize, Serialize};

use crate::cgroups::ContainerCgroups;
use crate::error::{Error, Result};
use crate::sys;

pub const STATE_FILE: &str = "state.json";
/// `create`'s first record (pid 0), written before any cgroup or process
/// exists; state.json, once written, supersedes it. A file of its own: on
/// ext4, renaming a new state.json over an existing one starts writeback
/// of its data (auto_da_alloc), which `delete` then waits for (measured
/// here: +3 ms per delete, +1.5 ms per `run`).
pub const CREATING_FILE: &str = "creating.json";
pub const EXEC_FIFO: &str = "exec.fifo";

/// What berth records about a container. Internal format: the spec's state
/// (what `berth state` prints) is derived from it by [`State::oci`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub id: String,
    /// init's host pid.
    pub pid: i32,
    /// init's start time in clock ticks (from /proc/PID/stat), so a recycled
    /// pid is never taken for the container.
    pub start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// RFC 3339 creation time.
    pub created: String,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub cgroups: ContainerCgroups,
    #[serde(default)]
    pub poststart: Vec<Hook>,
    #[serde(default)]
    pub poststop: Vec<Hook>,
    /// Set by `pause`, cleared by `resume`; `status` reads the freezer.
    #[serde(default)]
    pub paused: bool,
    /// Without a mount namespace: the rootfs bind `delete` unmounts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rootfs_bind: Option<crate::rootfs::inherited::RootfsBind>,
}

/// The state the spec defines (runtime.md "State"), plus runc's extra
/// `rootfs`, `created` and `owner` fields that tools read.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OciState {
    pub oci_version: String,
    pub id: String,
    pub status: Status,
    pub pid: i32,
    pub bundle: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rootfs: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub annotations: BTreeMap<String, String>,
}

impl State {
    /// Where init is now: alive (and the same process) or not, created or
    /// running. Without a known init (pid 0: its `create` died before it
    /// knew the pid), `creating` while anything is left in the container's
    /// cgroups, else stopped.
    pub fn status(&self, dir: &Path) -> Status {
        if !self.init_alive() {
            if self.pid <= 0 && !self.cgroups.pids().is_empty() {
                return Status::Creating;
            }
            return Status::Stopped;
        }
        self.status_when_alive(dir)
    }

    /// [`State::status`] once init is known to be alive (e.g. through a
    /// verified pidfd): paused, created or running.
    pub fn status_when_alive(&self, dir: &Path) -> Status {
        // Paused by `pause` (the flag), or frozen by anyone (the freezer).
        if self.paused || self.cgroups.driver().frozen().unwrap_or(false) {
            return Status::Paused;
        }
        if dir.join(EXEC_FIFO).exists() {
            Status::Created
        } else {
            Status::Running
        }
    }

    /// True while init is the process we started and has not exited.
    pub fn init_alive(&self) -> bool {
        if self.pid <= 0 {
            return false;
        }
        match sys::process_stat(self.pid) {
            Ok((s, t)) => t == self.start_time && s != 'Z' && s != 'X',
            Err(_) => false,
        }
    }

    /// A pidfd for init, verified against the recorded start time, or None
    /// when init is gone.
    pub fn init_pidfd(&self) -> Option<OwnedFd> {
        if self.pid <= 0 {
            return None;
        }
        let fd = sys::pidfd_open(self.pid).ok()?;
        // The pidfd pins the process: if the start time matches now, the fd
        // refers to our init and cannot be recycled under us.
        self.init_alive().then_some(fd)
    }

    pub fn oci(&self, status: Status) -> OciState {
        OciState {
            oci_version: crate::OCI_VERSION.to_string(),
            id: self.id.clone(),
            status,
            pid: if status == Status::Stopped { 0 } else { self.pid },
            bundle: self.bundle.clone(),
            rootfs: Some(self.rootfs.clone()),
            created: Some(self.created.clone()),
            owner: Some(String::new()),
            annotations: self.annotations.clone(),
        }
    }
}

/// The state `state` and `list` show for a directory without state.json:
/// its `create` died before it wrote one, so nothing was made yet.
pub fn oci_unfinished(id: &str) -> OciState {
    OciState {
        oci_version: crate::OCI_VERSION.to_string(),
        id: id.to_string(),
        status: Status::Stopped,
        pid: 0,
        bundle: PathBuf::new(),
        rootfs: None,
        created: None,
        owner: Some(String::new()),
        annotations: BTreeMap::new(),
    }
}

/// runc's rule for ids: letters, digits, `_ + - .`, not `.` or `..`.
pub fn validate_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id.len() <= 1024
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "invalid container id {id:?}: use letters, digits, '_', '+', '-' and '.'"
        )))
    }
}

/// A container's state directory, locked for the lifetime of this value.
#[derive(Debug)]
pub struct StateDir {
    pub id: String,
    pub path: PathBuf,
    dir: File,
}

impl StateDir {
    /// Make `<root>/<id>` (the root too, mode 0700, if missing) and lock it.
    /// An existing directory means the id is taken.
    pub fn create(root: &Path, id: &str) -> Result<StateDir> {
        validate_id(id)?;
        if let Err(e) = fs::DirBuilder::new().recursive(true).mode(0o700).create(root) {
            return Err(Error::path("create state root", root, e));
        }
        crate::host::check_state_root(root)?;
        let path = root.join(id);
        match fs::DirBuilder::new().mode(0o711).create(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Err(Error::Exists(id.to_string())),
            Err(e) => return Err(Error::path("create state dir", &path, e)),
        }
        let sd = Self::open_locked(&path, id)?;
        Ok(sd)
    }

    /// Open and lock an existing container's directory.
    pub fn open(root: &Path, id: &str) -> Result<StateDir> {
        validate_id(id)?;
        crate::host::check_state_root(root)?;
        let path = root.join(id);
        Self::open_locked(&path, id)
    }

    fn open_locked(path: &Path, id: &str) -> Result<StateDir> {
        let dir = match fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(Error::NotFound(id.to_string())),
            Err(e) => return Err(Error::path("open state dir", path, e)),
        };
        // SAFETY: flock takes an fd (open, owned by `dir`) and an integer; no memory.
        if unsafe { libc::flock(dir.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(Error::path("lock", path, io::Error::last_os_error()));
        }
        // Deleted while we waited for the lock?
        if !path.exists() {
            return Err(Error::NotFound(id.to_string()));
        }
        Ok(StateDir { id: id.to_string(), path: path.to_path_buf(), dir })
    }

    /// The locked directory fd. A cloned child must close its copy: the
    /// flock belongs to the open file description, which the copy shares.
    pub fn lock_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.dir.as_fd()
    }

    /// A second, unlocked O_PATH handle on the directory (init opens
    /// exec.fifo relative to it).
    pub fn open_path_fd(&self) -> Result<OwnedFd> {
        fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(&self.path)
            .map(OwnedFd::from)
            .map_err(|e| Error::path("open state dir", &self.path, e))
    }

    pub fn fifo_path(&self) -> PathBuf {
        self.path.join(EXEC_FIFO)
    }

    /// Load state.json, else `create`'s first record (creating.json, pid 0:
    /// its create died before init's pid was known). None: its create died
    /// right after making the directory, before anything else existed.
    pub fn load(&self) -> Result<Option<State>> {
        let p = self.path.join(STATE_FILE);
        match fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| {
                    Error::os(format!("{}: corrupt state", p.display()), io::Error::new(io::ErrorKind::InvalidData, e))
                }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => self.load_creating(),
            Err(e) => Err(Error::path("read", p, e)),
        }
    }

    fn load_creating(&self) -> Result<Option<State>> {
        let p = self.path.join(CREATING_FILE);
        match fs::read(&p) {
            // Cut short (create killed while writing it, before it made
            // any cgroup): as if there were none.
            Ok(b) => Ok(serde_json::from_slice(&b).ok()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::path("read", p, e)),
        }
    }

    /// Write `create`'s first record (see [`CREATING_FILE`]): one write
    /// into a new file, no rename (a torn one reads as none).
    pub fn save_creating(&self, state: &State) -> Result<()> {
        let p = self.path.join(CREATING_FILE);
        let data = serde_json::to_vec(state).map_err(|e| Error::encode("state", e))?;
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&p)
            .and_then(|mut f| f.write_all(&data))
            .map_err(|e| Error::path("write", p, e))
    }

    /// Write state.json atomically (temp file + rename).
    pub fn save(&self, state: &State) -> Result<()> {
        let tmp = self.path.join(".state.json.tmp");
        let data = serde_json::to_vec(state).map_err(|e| Error::encode("state", e))?;
        let write = || -> io::Result<()> {
            let mut f = fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
            f.write_all(&data)?;
            fs::rename(&tmp, self.path.join(STATE_FILE))
        };
        write().map_err(|e| Error::path("write state", self.path.join(STATE_FILE), e))
    }

    /// Remove the directory and everything in it.
    pub fn remove(self) -> Result<()> {
        match fs::remove_dir_all(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::path("remove state dir", &self.path, e)),
        }
    }
}

/// Ids of the containers under `root`, sorted.
pub fn list_ids(root: &Path) -> Result<Vec<String>> {
    crate::host::check_state_root(root)?;
    let rd = match fs::read_dir(root) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::path("read state root", root, e)),
    };
    let mut ids: Vec<String> = rd
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|id| validate_id(id).is_ok())
        .collect();
    ids.sort();
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        for ok in ["a", "abc-1.2_3+x", "A"] {
            assert!(validate_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "a b", "x\n"] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn load_falls_back_to_the_creating_record() {
        let root = std::env::temp_dir().join(format!("berth-unit-creating-{}", std::process::id()));
        let sd = StateDir::create(&root, "c1").unwrap();
        let mut st = State {
            id: "c1".into(),
            pid: 0,
            start_time: 0,
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: rfc3339_now(),
            annotations: BTreeMap::new(),
            cgroups: ContainerCgroups::default(),
            poststart: Vec::new(),
            poststop: Vec::new(),
            paused: false,
            rootfs_bind: None,
        };
        // Torn (create killed while writing it): none.
        fs::write(sd.path.join(CREATING_FILE), b"{\"id\":").unwrap();
        assert!(sd.load().unwrap().is_none());
        fs::remove_file(sd.path.join(CREATING_FILE)).unwrap();
        sd.save_creating(&st).unwrap();
        assert_eq!(sd.load().unwrap().map(|s| s.pid), Some(0));
        // state.json supersedes it.
        st.pid = 42;
        sd.save(&st).unwrap();
        assert_eq!(sd.load().unwrap().map(|s| s.pid), Some(42));
        sd.remove().unwrap();
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn create_twice_is_exists_and_open_missing_is_not_found() {
        let root = std::env::temp_dir().join(format!("berth-unit-{}", std::process::id()));
        let sd = StateDir::create(&root, "c1").unwrap();
        assert!(matches!(StateDir::create(&root, "c1"), Err(Error::Exists(_))));
        assert!(matches!(StateDir::open(&root, "nope"), Err(Error::NotFound(_))));
        assert!(sd.load().unwrap().is_none());
        sd.remove().unwrap();
        fs::remove_dir_all(&root).unwrap();
    }
}
