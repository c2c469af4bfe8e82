//! The crate error. Each module has its own error type; they are gathered
//! here. A message says what failed, on which path or config field, and the
//! OS error.

use std::fmt;
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
    fn bound_message_cuts_at_a_char_boundary() {
        assert_eq!(bound_message("short".into(), 100), "short");
        let m = bound_message("ü".repeat(100_000), 8192);
        assert!(m.len() <= 8192, "{}", m.len());
        assert!(m.ends_with("… (message cut, 200000 bytes)"), "{}", &m[m.len() - 40..]);
    }
}
