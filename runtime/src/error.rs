//! The crate error. Each module has its own error type; they are gathered
//! here. A message says what failed, on which path or config field, and the
//! OS error.
//!
//! Every variant has a kind ([`ErrorKind`], from [`Error::kind`]) and, when
//! a system call failed, its errno ([`Error::errno`]): the shim maps them to
//! ttrpc codes. init and exec's child send theirs over the sync socket as an
//! [`InitError`], which keeps both (`Error::Init`).

use std::fmt;
use std::io;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A config value that cannot be used, with its file and JSON path.
    #[error(transparent)]
    Config(#[from] crate::spec::ConfigError),
    /// A mount or another rootfs step (names the mount: `mounts[3] (/data)`).
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
    /// A linux.resources value that cannot be used, or a cgroup file the
    /// kernel refused (then `error.refused` has the file, value and errno);
    /// `what` says where the value came from (the config file, `update`).
    #[error("{what}: {error}")]
    Cgroup { what: String, error: crate::cgroups::FieldError },
    /// A failure reported by the container's init or exec's child, with
    /// the kind and errno it had there.
    #[error(transparent)]
    Init(#[from] InitError),
    /// Something this host (or berth) does not have: a cgroup controller,
    /// a kernel feature.
    #[error("{0}")]
    Unsupported(String),
    /// The sync protocol with init or exec's child broke: an unexpected
    /// message, a peer gone without a word.
    #[error("{0}")]
    Protocol(String),
    /// A step that cannot fail did (a bug in berth): encoding a struct.
    #[error("{0}")]
    Internal(String),
    /// A call to systemd over D-Bus (the systemd cgroup driver) failed or
    /// timed out; the error names the call and the unit.
    #[error(transparent)]
    Systemd(#[from] crate::dbus::DbusError),
}

/// What kind of failure an [`Error`] is: crosses the sync socket (in an
/// [`InitError`]) and is what the shim maps to a ttrpc code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    NotFound,
    Exists,
    WrongState,
    /// A config value (config.json, linux.resources from `update`).
    Config,
    /// Bad command-line input.
    Usage,
    /// A cgroup file the kernel refused.
    Cgroup,
    /// A mount or another rootfs step.
    Mount,
    Hook,
    /// A system call.
    Os,
    Unsupported,
    Protocol,
    Internal,
    /// A D-Bus call to systemd (the systemd cgroup driver).
    Systemd,
    /// A kind this build does not know (sent by another version).
    #[serde(other)]
    Unknown,
}

impl ErrorKind {
    /// The kind's name, as it is serialized (`not_found`).
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not_found",
            ErrorKind::Exists => "exists",
            ErrorKind::WrongState => "wrong_state",
            ErrorKind::Config => "config",
            ErrorKind::Usage => "usage",
            ErrorKind::Cgroup => "cgroup",
            ErrorKind::Mount => "mount",
            ErrorKind::Hook => "hook",
            ErrorKind::Os => "os",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Internal => "internal",
            ErrorKind::Systemd => "systemd",
            ErrorKind::Unknown => "unknown",
        }
    }
}

/// An error of the container's init (or exec's child) as it crosses the
/// sync socket or exec.fifo: the message, its kind and errno. The parent
/// returns it as `Error::Init`, which keeps the kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{msg}")]
pub struct InitError {
    pub kind: ErrorKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno: Option<i32>,
    pub msg: String,
}

impl InitError {
    pub fn new(kind: ErrorKind, msg: impl Into<String>) -> Self {
        InitError { kind, errno: None, msg: msg.into() }
    }

    /// The same failure with `prefix: ` before its message.
    pub fn context(mut self, prefix: impl fmt::Display) -> Self {
        self.msg = format!("{prefix}: {}", self.msg);
        self
    }
}

impl From<&Error> for InitError {
    fn from(e: &Error) -> Self {
        InitError { kind: e.kind(), errno: e.errno(), msg: e.to_string() }
    }
}

impl Error {
    /// A hook failure: per the spec's lifecycle the container is stopped and
    /// destroyed, then the poststop hooks run.
    pub fn is_hook_failure(&self) -> bool {
        self.kind() == ErrorKind::Hook
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Config(_) => ErrorKind::Config,
            Error::Rootfs(crate::rootfs::RootfsError::Config { .. }) => ErrorKind::Config,
            Error::Rootfs(_) => ErrorKind::Mount,
            Error::Hook(_) => ErrorKind::Hook,
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::Exists(_) => ErrorKind::Exists,
            Error::WrongState(_) => ErrorKind::WrongState,
            Error::Usage(_) => ErrorKind::Usage,
            Error::Path { .. } | Error::Os { .. } => ErrorKind::Os,
            Error::Cgroup { error, .. } if error.refused.is_some() => ErrorKind::Cgroup,
            Error::Cgroup { .. } => ErrorKind::Config,
            Error::Init(e) => e.kind,
            Error::Unsupported(_) => ErrorKind::Unsupported,
            Error::Protocol(_) => ErrorKind::Protocol,
            Error::Internal(_) => ErrorKind::Internal,
            Error::Systemd(_) => ErrorKind::Systemd,
        }
    }

    /// The OS error number when a system call failed (a cgroup write the
    /// kernel refused, a mount, an open).
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Rootfs(e) => e.raw_os_error(),
            Error::Path { source, .. } | Error::Os { source, .. } => source.raw_os_error(),
            Error::Cgroup { error, .. } => error.refused.as_ref().and_then(|r| r.errno),
            Error::Init(e) => e.errno,
            Error::Systemd(e) => e.errno(),
            _ => None,
        }
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

    /// A config value found unusable while the container is set up, where
    /// the file is not at hand (create names it): `process.args: must not
    /// be empty`.
    pub fn config(path: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::Config(crate::spec::ConfigError::new(String::new(), path, msg))
    }

    /// A struct that could not be encoded (cannot happen for berth's own
    /// types): `what` names it.
    pub fn encode(what: &str, e: serde_json::Error) -> Self {
        Error::Internal(format!("encode {what}: {e}"))
    }
}

impl From<nix::Error> for Error {
    fn from(e: nix::Error) -> Self {
        Error::Os { what: "system call".into(), source: e.into() }
    }
}

/// How many characters of a config value a message echoes.
pub const CLIP_CHARS: usize = 256;

/// A config value (or other outside text) echoed in a message: quoted as
/// `{:?}` and, past [`CLIP_CHARS`] characters, cut with an ellipsis and the
/// total length, so a 10 MB hostname makes a short message:
/// `"xxxx…" (10485760 bytes)`.
pub struct Clip<'a>(pub &'a str);

impl fmt::Display for Clip<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.char_indices().nth(CLIP_CHARS) {
            None => write!(f, "{:?}", self.0),
            Some((cut, _)) => write!(f, "{:?}… ({} bytes)", &self.0[..cut], self.0.len()),
        }
    }
}

/// A piece of outside text used unquoted (a JSON path component such as a
/// sysctl key), cut as [`Clip`] cuts.
pub fn clip_plain(s: &str) -> std::borrow::Cow<'_, str> {
    match s.char_indices().nth(CLIP_CHARS) {
        None => s.into(),
        Some((cut, _)) => format!("{}… ({} bytes)", &s[..cut], s.len()).into(),
    }
}

/// Cut a whole message to at most `max` bytes (at a character boundary),
/// saying how long it was: the last line of defence for text that crosses
/// a bounded channel (the sync socket, exec.fifo) or reaches a log.
pub fn bound_message(mut s: String, max: usize) -> String {
    if s.len() <= max {
        return s;
    }
    let total = s.len();
    let mut cut = max.saturating_sub(64);
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    s.truncate(cut);
    s.push_str(&format!("… (message cut, {total} bytes)"));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_keeps_short_values_and_cuts_long_ones() {
        assert_eq!(Clip("web-1").to_string(), "\"web-1\"");
        let long = "é".repeat(300);
        let shown = Clip(&long).to_string();
        assert_eq!(shown, format!("{:?}… (600 bytes)", "é".repeat(CLIP_CHARS)));
    }

    #[test]
    fn kinds_and_errnos() {
        use crate::cgroups::resources::Refused;
        let invalid = crate::cgroups::FieldError::new("blockIO.weight", "5 is not in 10-1000");
        let e = Error::Cgroup { what: "update".into(), error: invalid.clone() };
        assert_eq!((e.kind(), e.errno()), (ErrorKind::Config, None));
        assert_eq!(e.to_string(), "update: linux.resources.blockIO.weight: 5 is not in 10-1000");
        let file = PathBuf::from("/sys/fs/cgroup/memory/c/memory.limit_in_bytes");
        let refused = Refused { file, value: "1".into(), errno: Some(libc::EBUSY) };
        let e = Error::Cgroup {
            what: "update".into(),
            error: crate::cgroups::FieldError { refused: Some(Box::new(refused)), ..invalid },
        };
        assert_eq!((e.kind(), e.errno()), (ErrorKind::Cgroup, Some(libc::EBUSY)));
        let e = Error::path("open", "/x", io::Error::from_raw_os_error(libc::ENOENT));
        assert_eq!((e.kind(), e.errno()), (ErrorKind::Os, Some(libc::ENOENT)));
        let e = Error::config("process.args", "must not be empty");
        assert_eq!((e.kind(), e.to_string().as_str()), (ErrorKind::Config, "process.args: must not be empty"));
        let e = Error::Rootfs(crate::rootfs::RootfsError::Config { at: "mounts[0]".into(), msg: "x".into() });
        assert_eq!(e.kind(), ErrorKind::Config);
        assert_eq!(Error::Usage("--x".into()).kind(), ErrorKind::Usage);
        assert!(!Error::Usage("--x".into()).is_hook_failure());
    }

    #[test]
    fn an_unknown_kind_reads_as_unknown() {
        let e: InitError = serde_json::from_str(r#"{"kind":"from_the_future","msg":"m"}"#).unwrap();
        assert_eq!(e, InitError::new(ErrorKind::Unknown, "m"));
        for k in [ErrorKind::NotFound, ErrorKind::WrongState, ErrorKind::Cgroup, ErrorKind::Internal] {
            assert_eq!(serde_json::to_string(&k).unwrap(), format!("\"{}\"", k.name()));
        }
    }

    #[test]
    fn bound_message_cuts_at_a_char_boundary() {
        assert_eq!(bound_message("short".into(), 100), "short");
        let m = bound_message("ü".repeat(100_000), 8192);
        assert!(m.len() <= 8192, "{}", m.len());
        assert!(m.ends_with("… (message cut, 200000 bytes)"), "{}", &m[m.len() - 40..]);
    }
}
