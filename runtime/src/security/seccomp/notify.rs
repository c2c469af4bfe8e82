//! SCMP_ACT_NOTIFY: handing the listener fd to the seccomp agent.
//!
//! init loads the filter, gets the listener fd from seccomp(2) and passes it
//! to berth over the sync socket ([`send_fd`]/[`recv_fd`], one datagram
//! with SCM_RIGHTS). berth connects to `linux.seccomp.listenerPath` (an
//! AF_UNIX SOCK_STREAM socket), sends one container process state with the
//! fd ([`send_to_agent`]) and closes the connection, as the runtime spec's
//! "The Container Process State" describes.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use serde::Serialize;

use crate::container::OciState;

/// What the agent receives (JSON), with the fds in SCM_RIGHTS order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerProcessState<'a> {
    pub oci_version: &'a str,
    pub fds: Vec<&'static str>,
    pub pid: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<&'a str>,
    pub state: &'a OciState,
}

/// The name of the listener in `fds`, as the spec defines it.
pub const SECCOMP_FD_NAME: &str = "seccompFd";

/// init → berth: one datagram carrying `fd`.
pub fn send_fd(sock: &OwnedFd, fd: &OwnedFd) -> io::Result<()> {
    crate::sys::send_with_fd(sock.as_raw_fd(), b"F", fd.as_raw_fd()).map(drop)
}

/// berth ← init: the datagram [`send_fd`] sent, and its fd (the socket
/// may carry SCM_CREDENTIALS too, in two-stage user namespace setups).
pub fn recv_fd(sock: &OwnedFd) -> io::Result<OwnedFd> {
    crate::sys::recv_fd(sock.as_raw_fd())
}

/// Connect to the agent at `path` and send `state` with the listener.
/// Errors say which step failed; the caller adds the config field.
pub fn send_to_agent(path: &Path, state: &ContainerProcessState, listener: &OwnedFd) -> Result<(), String> {
    let json = serde_json::to_vec(state).map_err(|e| format!("encode the container process state: {e}"))?;
    let stream = UnixStream::connect(path).map_err(|e| format!("connect to {}: {e}", path.display()))?;
    let n = crate::sys::send_with_fd(stream.as_raw_fd(), &json, listener.as_raw_fd())
        .map_err(|e| format!("send to {}: {e}", path.display()))?;
    // Only the first sendmsg carries the fd; the rest is plain payload.
    let mut rest = &json[n..];
    while !rest.is_empty() {
        // SAFETY: `rest` is valid for rest.len() bytes and send only reads it; MSG_NOSIGNAL
        // turns a closed peer into EPIPE.
        let r = unsafe { libc::send(stream.as_raw_fd(), rest.as_ptr().cast(), rest.len(), libc::MSG_NOSIGNAL) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(format!("send to {}: {e}", path.display()));
        }
        rest = &rest[r as usize..];
    }
    Ok(())
}
