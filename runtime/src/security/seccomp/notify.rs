//! SCMP_ACT_NOTIFY: handing the listener fd to the seccomp agent.
//!
//! init loads the filter, gets the listener fd from seccomp(2) and passes it
//! to berth over the sync socket ([`send_fd`]/[`recv_fd`], one datagram
//! with SCM_RIGHTS). berth connects to `linux.seccomp.listenerPath` (an
//! AF_UNIX SOCK_STREAM socket), sends one container process state with the
//! fd ([`send_to_agent`]) and closes the connection, as the runtime spec's
//! "The Container Process State" describes.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
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

fn sendmsg_fd(sock: RawFd, data: &[u8], fd: RawFd) -> io::Result<usize> {
    let mut iov = libc::iovec { iov_base: data.as_ptr() as *mut _, iov_len: data.len() };
    let mut cbuf = [0u64; 4];
    let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
    hdr.msg_iov = &mut iov;
    hdr.msg_iovlen = 1;
    hdr.msg_control = cbuf.as_mut_ptr().cast();
    hdr.msg_controllen = unsafe { libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) } as usize;
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&hdr);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as usize;
        std::ptr::write_unaligned(libc::CMSG_DATA(c) as *mut RawFd, fd);
    }
    loop {
        let n = unsafe { libc::sendmsg(sock, &hdr, libc::MSG_NOSIGNAL) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// init → berth: one datagram carrying `fd`.
pub fn send_fd(sock: &OwnedFd, fd: &OwnedFd) -> io::Result<()> {
    sendmsg_fd(sock.as_raw_fd(), b"F", fd.as_raw_fd()).map(drop)
}

/// berth ← init: the datagram [`send_fd`] sent, and its fd.
pub fn recv_fd(sock: &OwnedFd) -> io::Result<OwnedFd> {
    let mut byte = [0u8; 1];
    // Room for SCM_CREDENTIALS too: the socket has SO_PASSCRED in two-stage
    // (user namespace) setups.
    let mut cbuf = [0u64; 16];
    loop {
        let mut iov = libc::iovec { iov_base: byte.as_mut_ptr().cast(), iov_len: 1 };
        let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
        hdr.msg_iov = &mut iov;
        hdr.msg_iovlen = 1;
        hdr.msg_control = cbuf.as_mut_ptr().cast();
        hdr.msg_controllen = std::mem::size_of_val(&cbuf);
        let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut hdr, libc::MSG_CMSG_CLOEXEC) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "container init closed the socket"));
        }
        let mut got = None;
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&hdr);
            while !c.is_null() {
                if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                    let fd = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const RawFd);
                    let fd = OwnedFd::from_raw_fd(fd);
                    if got.is_none() {
                        got = Some(fd);
                    }
                }
                c = libc::CMSG_NXTHDR(&hdr, c);
            }
        }
        return got.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no fd in the listener message"));
    }
}

/// Connect to the agent at `path` and send `state` with the listener.
/// Errors say which step failed; the caller adds the config field.
pub fn send_to_agent(path: &Path, state: &ContainerProcessState, listener: &OwnedFd) -> Result<(), String> {
    let json = serde_json::to_vec(state).map_err(|e| format!("encode the container process state: {e}"))?;
    let stream = UnixStream::connect(path).map_err(|e| format!("connect to {}: {e}", path.display()))?;
    let n = sendmsg_fd(stream.as_raw_fd(), &json, listener.as_raw_fd())
        .map_err(|e| format!("send to {}: {e}", path.display()))?;
    // Only the first sendmsg carries the fd; the rest is plain payload.
    let mut rest = &json[n..];
    while !rest.is_empty() {
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
