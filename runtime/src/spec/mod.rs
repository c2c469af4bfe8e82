//! Loading and validating a bundle's `config.json`.
//!
//! [`load_bundle`] is on the hot path of every `create`, so it reads the file
//! once, parses it into a [`serde_json::Value`] once, pre-filters that value
//! (see [`load`]), deserializes the typed [`Spec`] from it with
//! `serde_path_to_error`, and then runs the semantic checks in [`validate`].
//!
//! Every error is a [`ConfigError`] naming the file and the JSON path in the
//! spec's notation (`linux.namespaces[2].type`, `mounts[3].destination`).

use std::io;
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

mod default;
mod load;
mod validate;

pub use default::{default_spec, write_default};

#[cfg(test)]
mod tests;

pub use load::{parse_process, parse_spec};
#[cfg(test)]
pub use load::version_supported;
pub use validate::validate_spec;

/// A loaded, validated bundle.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// Absolute, canonical bundle directory.
    pub dir: PathBuf,
    /// `<dir>/config.json`.
    pub config_path: PathBuf,
    /// The parsed configuration.
    pub spec: Spec,
    /// Absolute path of the root filesystem (root.path resolved against `dir`).
    pub rootfs: PathBuf,
}

/// An error in a configuration file, naming the file and the JSON path.
///
/// Displays as `FILE: PATH: MSG`, `FILE: MSG` when `path` is empty, or
/// `PATH: MSG` when `file` is (not known where the error was found), e.g.
/// `/b/config.json: linux.namespaces[2].type: unknown namespace "foo"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub path: String,
    pub msg: String,
}

impl ConfigError {
    /// An error at `path` (spec notation, may be empty) in `file`.
    pub fn new(file: impl Into<String>, path: impl Into<String>, msg: impl Into<String>) -> Self {
        ConfigError {
            file: file.into(),
            path: path.into(),
            msg: msg.into(),
        }
    }

    /// An error about `file` as a whole (no JSON path).
    pub fn whole_file(file: impl Into<String>, msg: impl Into<String>) -> Self {
        Self::new(file, String::new(), msg)
    }
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}: {}", self.file, self.msg)
        } else if self.file.is_empty() {
            // Found while the container is set up (Error::config): the
            // caller that knows the file fills it in.
            write!(f, "{}: {}", self.path, self.msg)
        } else {
            write!(f, "{}: {}: {}", self.file, self.path, self.msg)
        }
    }
}

impl std::error::Error for ConfigError {}

/// A problem found at a JSON path, before the file name is attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fault {
    pub path: String,
    pub msg: String,
}

impl Fault {
    /// Both parts are bounded (config values are clipped where they are
    /// echoed; this catches the rest, e.g. serde's own messages).
    pub(crate) fn new(path: impl Into<String>, msg: impl Into<String>) -> Self {
        Fault {
            path: crate::error::bound_message(path.into(), 1024),
            msg: crate::error::bound_message(msg.into(), 2048),
        }
    }

    pub(crate) fn in_file(self, file: &str) -> ConfigError {
        ConfigError::new(file, self.path, self.msg)
    }
}

/// The checks config.json's `process` gets, for `exec`'s process:
/// `Err("process.cwd: ...")`.
pub fn check_exec_process(p: &oci_spec::runtime::Process) -> Result<(), String> {
    validate::check_process_fields(p).map_err(|f| format!("{}: {}", f.path, f.msg))
}

/// The name of the configuration file inside a bundle.
pub const CONFIG_FILE: &str = "config.json";

/// Load `<dir>/config.json`, pre-filter and validate it.
pub fn load_bundle(dir: &Path) -> Result<Bundle, ConfigError> {
    // Errors name the file as the user spelled the bundle directory.
    let file = dir.join(CONFIG_FILE).display().to_string();

    let canonical = std::fs::canonicalize(dir).map_err(|e| bundle_dir_error(dir, &e))?;
    let config_path = canonical.join(CONFIG_FILE);
    let data = std::fs::read(&config_path).map_err(|e| {
        if e.raw_os_error() == Some(libc::ENOTDIR) {
            bundle_dir_error(dir, &e)
        } else {
            ConfigError::whole_file(&file, format!("cannot read: {e}"))
        }
    })?;

    let spec = parse_spec(&file, &data)?;
    let rootfs = validate_spec(&file, &spec, &canonical)?;
    Ok(Bundle {
        dir: canonical,
        config_path,
        spec,
        rootfs,
    })
}

fn bundle_dir_error(dir: &Path, e: &io::Error) -> ConfigError {
    let msg = if e.raw_os_error() == Some(libc::ENOTDIR) {
        "bundle is not a directory".to_string()
    } else {
        format!("cannot use bundle directory: {e}")
    };
    ConfigError::whole_file(dir.display().to_string(), msg)
}
