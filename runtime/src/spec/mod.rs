//! Loading and validating a bundle's `config.json`.
//!
//! OWNER: spec helper. Interface fixed; implementation to be filled in.

use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

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
/// Displays as `FILE: PATH: MSG`, or `FILE: MSG` when `path` is empty, e.g.
/// `/b/config.json: linux.namespaces[2].type: unknown namespace "foo"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub path: String,
    pub msg: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}: {}", self.file, self.msg)
        } else {
            write!(f, "{}: {}: {}", self.file, self.path, self.msg)
        }
    }
}

impl std::error::Error for ConfigError {}

/// Load `<dir>/config.json`, pre-filter and validate it.
pub fn load_bundle(dir: &Path) -> Result<Bundle, ConfigError> {
    let _ = dir;
    unimplemented!("spec::load_bundle")
}
