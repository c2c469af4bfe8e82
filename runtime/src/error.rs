//! The crate error. Each module has its own error type; they are gathered
//! here. A message says what failed, on which path or config field, and the
//! OS error.

use std::io;
use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] crate::spec::ConfigError),
    #[error(transparent)]
    Rootfs(#[from] crate::rootfs::RootfsError),
    #[error(transparent)]
    Hook(#[from] crate::hooks::HookError),
    #[error("container \"{0}\" does not exist")]
    NotFound(String),
    #[error("container \"{0}\" already exists")]
    Exists(String),
    /// An operation that the container's current status does not allow.
    #[error("{0}")]
    WrongState(String),
    /// Bad command-line input: names the flag or argument.
    #[error("{0}")]
    Usage(String),
    #[error("{what} {path}: {source}")]
    Path {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{what}: {source}")]
    Os {
        what: String,
        #[source]
        source: io::Error,
    },
    /// A failure reported by the container's init process.
    #[error("{0}")]
    Init(String),
    /// A hook run by init (createContainer, startContainer) failed: the
    /// lifecycle goes on with destroy and the poststop hooks.
    #[error("{0}")]
    HookFailed(String),
    #[error("{0}")]
    Other(String),
}

impl Error {
    /// A hook failure: per the spec's lifecycle the container is stopped and
    /// destroyed, then the poststop hooks run.
    pub fn is_hook_failure(&self) -> bool {
        matches!(self, Error::Hook(_) | Error::HookFailed(_))
    }

    /// An OS error on a path: `Error::path("open", p, e)` renders as
    /// `open /p: No such file or directory (os error 2)`.
    pub fn path(what: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Path { what, path: path.into(), source }
    }

    /// An OS error with a free-form description of what failed.
    pub fn os(what: impl Into<String>, source: impl Into<io::Error>) -> Self {
        Error::Os { what: what.into(), source: source.into() }
    }
}

impl From<nix::Error> for Error {
    fn from(e: nix::Error) -> Self {
        Error::Os { what: "system call".into(), source: e.into() }
    }
}
