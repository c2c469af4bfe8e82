//! berthctl's state under `--root`:
//!
//! ```text
//! images/<id>/          id = sha256 of the image config
//!     rootfs/           the layers applied in order
//!     config.json       the image config, as imported
//!     image.json        names, created, layer count
//! containers/<name>/
//!     container.json    what `run` made (image, shim address, rootfs kind)
//!     bundle/           config.json, rootfs/ (overlay mount or copy), log (the shim's stderr)
//!     upper/ work/      the overlay's writable layer
//!     output.log        the container's stdout and stderr
//!     events            the shim's events, one JSON line each
//! tmp/                  imports, pulls and removals in progress (renamed or removed
//!                       at the end; those of a dead berthctl go at the next start)
//! blobs/ snapshots/     pulled images' content (image/content.rs)
//! lock                  flock for image names
//! ```

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub struct Store {
    pub root: PathBuf,
}

/// What `run` records about a container.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Container {
    pub name: String,
    /// The image reference as given (empty for --bundle).
    pub image: String,
    pub image_id: String,
    /// The bundle berthctl made (for --bundle: still ours; its rootfs is the user's).
    pub bundle: PathBuf,
    /// "overlay", "copy" or "bundle".
    pub rootfs: String,
    /// The shim's ttrpc address (unix://...).
    pub address: String,
    pub command: Vec<String>,
    pub created: u64,
    pub tty: bool,
}

impl Store {
    pub fn open(root: &Path) -> Result<Store, String> {
        if root.as_os_str().is_empty() || root.is_relative() {
            return Err(format!("--root {}: must be an absolute path", root.display()));
        }
        for d in ["images", "containers", "tmp"] {
            let p = root.join(d);
            fs::create_dir_all(&p).map_err(|e| format!("--root: create {}: {e}", p.display()))?;
        }
        let store = Store { root: root.to_path_buf() };
        store.clean_tmp();
        Ok(store)
    }

    /// Remove what berthctls that were killed (SIGKILL, ^C in a pull or an
    /// import) left in tmp/: entries `<what>-<pid>-<hex>` of a dead pid.
    fn clean_tmp(&self) {
        let Ok(rd) = fs::read_dir(self.root.join("tmp")) else { return };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(pid) = name.split('-').nth(1).and_then(|p| p.parse::<i32>().ok()) else { continue };
            // SAFETY: kill with signal 0 only checks that the pid exists; it sends nothing.
            if pid > 0 && unsafe { libc::kill(pid, 0) } != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH) {
                let _ = fs::remove_dir_all(e.path());
            }
        }
    }

    pub fn images(&self) -> PathBuf {
        self.root.join("images")
    }

    pub fn containers(&self) -> PathBuf {
        self.root.join("containers")
    }

    pub fn container_dir(&self, name: &str) -> PathBuf {
        self.containers().join(name)
    }

    /// A fresh directory under tmp/.
    pub fn scratch(&self, what: &str) -> Result<Scratch, String> {
        let p = self.root.join("tmp").join(format!("{what}-{}-{}", std::process::id(), random_hex(4)));
        fs::create_dir(&p).map_err(|e| format!("create {}: {e}", p.display()))?;
        Ok(Scratch { path: p, keep: false })
    }

    /// An exclusive lock on the store's image names, held until dropped.
    pub fn lock(&self) -> Result<File, String> {
        let p = self.root.join("lock");
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .map_err(|e| format!("{}: {e}", p.display()))?;
        // SAFETY: flock takes an fd (open, owned by `f`) and an integer; no memory.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(format!("lock {}: {}", p.display(), std::io::Error::last_os_error()));
        }
        Ok(f)
    }

    pub fn load_container(&self, name: &str) -> Result<Container, String> {
        check_name(name)?;
        let p = self.container_dir(name).join("container.json");
        let data = match fs::read(&p) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(format!("no such container: {name}"));
            }
            Err(e) => return Err(format!("{}: {e}", p.display())),
        };
        serde_json::from_slice(&data).map_err(|e| format!("{}: {e}", p.display()))
    }

    pub fn container_names(&self) -> Result<Vec<String>, String> {
        let mut names = Vec::new();
        let rd = fs::read_dir(self.containers()).map_err(|e| format!("{}: {e}", self.containers().display()))?;
        for e in rd.flatten() {
            if e.path().join("container.json").exists() {
                names.push(e.file_name().to_string_lossy().into_owned());
            }
        }
        names.sort();
        Ok(names)
    }
}

/// A temp directory removed on drop unless kept.
pub struct Scratch {
    pub path: PathBuf,
    pub keep: bool,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// Write `data` to `path` atomically (temp file + rename).
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<(), String> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let r = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = r {
        let _ = fs::remove_file(&tmp);
        return Err(format!("write {}: {e}", path.display()));
    }
    Ok(())
}

pub fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    if File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b)).is_err() {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let x = t.as_nanos() as u64 ^ ((std::process::id() as u64) << 32);
        for (i, v) in b.iter_mut().enumerate() {
            *v = (x >> ((i % 8) * 8)) as u8;
        }
    }
    crate::image::layer::hex(b)
}

pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Container names: what the shim and berth accept as an id.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid container name {name:?}: use 1 to 64 of [a-zA-Z0-9_.-], starting with a letter or digit"
        ))
    }
}

/// "5 minutes ago" style age.
pub fn age(created: u64) -> String {
    let s = now().saturating_sub(created);
    match s {
        0..=59 => format!("{s} seconds ago"),
        60..=3599 => format!("{} minutes ago", s / 60),
        3600..=86399 => format!("{} hours ago", s / 3600),
        _ => format!("{} days ago", s / 86400),
    }
}
