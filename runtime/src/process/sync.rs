//! Typed messages between berth (the parent) and the container's init over
//! one SOCK_SEQPACKET socketpair: one message per datagram, JSON-encoded.
//! The order is drawn in the module docs of [`crate::process`].

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use serde::{Deserialize, Serialize};

use crate::container::OciState;
use crate::error::InitError;

#[derive(Debug, Serialize, Deserialize)]
pub enum Msg {
    // init -> parent
    /// init is in its new user namespace: write its uid/gid maps.
    RequestMaps,
    /// (two-stage only) sent by the pid namespace's init; the parent reads
    /// its host pid from the SCM_CREDENTIALS the kernel attaches.
    Hello,
    /// Namespaces and mounts are ready: run prestart and createRuntime
    /// hooks, then answer `HooksDone`.
    RunHooks,
    /// Everything is set up; init now blocks on exec.fifo.
    Ready,
    /// Setup failed; init exits after sending this. The kind and errno
    /// cross with the message (a failed createContainer hook is kind
    /// `hook`): the parent returns it as `Error::Init`.
    Error(InitError),
    /// A seccomp filter with SCMP_ACT_NOTIFY is loaded: the next datagram
    /// carries the listener fd (SCM_RIGHTS) for linux.seccomp.listenerPath.
    SeccompListener,
    /// (exec) stage 1 has forked the process into the container's pid
    /// namespace: its host pid (see [`crate::process::join`]).
    Spawned(i32),
    /// (only with linux.netDevices) init is in its final network
    /// namespace: move the devices in, then answer `NetDevicesMoved`.
    MoveNetDevices,
    // parent -> init
    /// (in-process start, `run`) start: go on to execve; the socket then
    /// stays open until execve closes it (EOF), or carries init's error.
    Start,
    /// (`create`) init is recorded (state.json, --pid-file) and handed
    /// over: go on to wait for `start` on exec.fifo. Until this comes,
    /// init dies with berth (parent-death signal, then EOF here).
    Detach,
    /// (only when init makes its own network namespace) the v1 cgroups
    /// exist, with linux.resources applied: init joins them and goes on.
    CgroupsReady,
    MapsWritten,
    /// The seccomp listener reached the agent.
    SeccompSent,
    /// The linux.netDevices are in the container's network namespace.
    NetDevicesMoved,
    /// The hooks ran; carries the container's state for the hooks init
    /// runs itself (createContainer, startContainer).
    HooksDone(OciState),
}

impl Msg {
    /// The variant's name, for errors about the protocol's order.
    pub fn name(&self) -> &'static str {
        match self {
            Msg::RequestMaps => "RequestMaps",
            Msg::Hello => "Hello",
            Msg::RunHooks => "RunHooks",
            Msg::Ready => "Ready",
            Msg::Error { .. } => "Error",
            Msg::SeccompListener => "SeccompListener",
            Msg::Spawned { .. } => "Spawned",
            Msg::MoveNetDevices => "MoveNetDevices",
            Msg::Start => "Start",
            Msg::Detach => "Detach",
            Msg::CgroupsReady => "CgroupsReady",
            Msg::MapsWritten => "MapsWritten",
            Msg::SeccompSent => "SeccompSent",
            Msg::NetDevicesMoved => "NetDevicesMoved",
            Msg::HooksDone { .. } => "HooksDone",
        }
    }
}

/// The receive buffer: every message fits (errors are cut to
/// [`MAX_TEXT`] bytes, which JSON escaping can at most multiply by six).
const MAX: usize = 64 * 1024;
/// The longest error text sent (longer ones are cut, saying so).
pub const MAX_TEXT: usize = 8 * 1024;
const _: () = assert!(MAX_TEXT * 6 + 64 <= MAX);

/// Bound an error text for the socket or exec.fifo.
pub fn bounded(text: String) -> String {
    crate::error::bound_message(text, MAX_TEXT)
}

/// The message that reports `err` (its kind, errno and bounded text).
pub fn error(err: &crate::error::Error) -> Msg {
    let e = InitError::from(err);
    Msg::Error(InitError { msg: bounded(e.msg), ..e })
}

/// init's error as it writes it into exec.fifo (after `E`): the
/// [`InitError`] as JSON, its message bounded as on the socket.
pub fn fifo_text(e: &InitError) -> String {
    let e = InitError { msg: bounded(e.msg.clone()), ..e.clone() };
    serde_json::to_string(&e).unwrap_or(e.msg)
}

/// Read back what [`fifo_text`] wrote; anything else is kept as the
/// message of an error of unknown kind.
pub fn from_fifo(b: &[u8]) -> InitError {
    serde_json::from_slice(b)
        .unwrap_or_else(|_| InitError::new(crate::error::ErrorKind::Unknown, String::from_utf8_lossy(b)))
}

pub fn pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let (a, b) = nix::sys::socket::socketpair(
        nix::sys::socket::AddressFamily::Unix,
        nix::sys::socket::SockType::SeqPacket,
        None,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
    )?;
    Ok((a, b))
}

pub fn send(fd: &OwnedFd, msg: &Msg) -> io::Result<()> {
    let cut;
    let msg = match msg {
        Msg::Error(e) if e.msg.len() > MAX_TEXT => {
            cut = Msg::Error(InitError { msg: bounded(e.msg.clone()), ..e.clone() });
            &cut
        }
        m => m,
    };
    let buf = serde_json::to_vec(msg).map_err(io::Error::other)?;
    loop {
        // SAFETY: `buf` is valid for buf.len() bytes for the call and send only reads it;
        // MSG_NOSIGNAL turns a closed peer into EPIPE instead of SIGPIPE.
        let r = unsafe { libc::send(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL) };
        if r >= 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Receive one message; `Ok(None)` when the peer has closed its end. With
/// `want_pid`, also returns the sender's pid (translated by the kernel into
/// our pid namespace) from SCM_CREDENTIALS; SO_PASSCRED must be set.
pub fn recv(fd: &OwnedFd, want_pid: bool) -> io::Result<Option<(Msg, Option<i32>)>> {
    let mut buf = vec![0u8; MAX];
    let got = crate::sys::recv_with_fds(fd.as_raw_fd(), &mut buf, libc::MSG_TRUNC)?;
    let n = got.len;
    if n == 0 {
        return Ok(None);
    }
    if n > buf.len() {
        // MSG_TRUNC: n is the datagram's real length.
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("sync message of {n} bytes is longer than the {MAX}-byte limit"),
        ));
    }
    let pid = if want_pid { got.pid } else { None };
    let msg = serde_json::from_slice(&buf[..n])
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("bad sync message: {e}")))?;
    Ok(Some((msg, pid)))
}

/// Ask the kernel to attach the sender's credentials to received messages.
pub fn pass_credentials(fd: &OwnedFd) -> io::Result<()> {
    nix::sys::socket::setsockopt(fd, nix::sys::socket::sockopt::PassCred, &true).map_err(Into::into)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn a_long_error_arrives_cut() {
        let (a, b) = pair().unwrap();
        // control characters: the worst case of JSON escaping (\u0001)
        let text = "\u{1}".repeat(100 * 1024);
        send(&a, &Msg::Error(InitError::new(ErrorKind::Os, text))).unwrap();
        match recv(&b, false).unwrap() {
            Some((Msg::Error(e), _)) => {
                let t = e.msg;
                assert!(t.len() <= MAX_TEXT && t.ends_with("(message cut, 102400 bytes)"), "{}", t.len());
                assert_eq!(e.kind, ErrorKind::Os);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_init_error_keeps_its_kind_and_errno() {
        use crate::error::Error;
        let (a, b) = pair().unwrap();
        let cases = [
            (Error::config("process.args", "must not be empty"), ErrorKind::Config, None),
            (Error::path("open", "/x", io::Error::from_raw_os_error(libc::EACCES)), ErrorKind::Os, Some(libc::EACCES)),
            (
                crate::rootfs::RootfsError::Os {
                    at: "mounts[1] (/data)".into(),
                    op: "mount bind /srv".into(),
                    source: io::Error::from_raw_os_error(libc::ENOENT),
                }
                .into(),
                ErrorKind::Mount,
                Some(libc::ENOENT),
            ),
            (
                crate::hooks::HookError { kind: "createContainer", index: 0, path: "/h".into(), msg: "exit 1".into() }
                    .into(),
                ErrorKind::Hook,
                None,
            ),
        ];
        for (err, kind, errno) in cases {
            let text = err.to_string();
            send(&a, &Msg::Error(InitError::from(&err))).unwrap();
            let Some((Msg::Error(got), _)) = recv(&b, false).unwrap() else { panic!("not an error") };
            let back = Error::Init(got);
            assert_eq!((back.kind(), back.errno(), back.to_string()), (kind, errno, text));
            assert_eq!(back.is_hook_failure(), kind == ErrorKind::Hook);
        }
    }

    #[test]
    fn an_init_error_crosses_exec_fifo() {
        let e = InitError { kind: ErrorKind::Cgroup, errno: Some(libc::EBUSY), msg: "x".repeat(MAX_TEXT * 2) };
        let back = from_fifo(fifo_text(&e).as_bytes());
        assert_eq!((back.kind, back.errno), (ErrorKind::Cgroup, Some(libc::EBUSY)));
        assert!(back.msg.len() <= MAX_TEXT && back.msg.ends_with("bytes)"), "{}", back.msg.len());
        assert_eq!(from_fifo(b"plain text"), InitError::new(ErrorKind::Unknown, "plain text"));
    }

    #[test]
    fn an_oversized_datagram_is_named() {
        let (a, b) = pair().unwrap();
        let big = vec![b'x'; MAX + 1];
        // SAFETY: `big` is valid for big.len() bytes and send only reads it.
        assert_eq!(unsafe { libc::send(a.as_raw_fd(), big.as_ptr().cast(), big.len(), 0) }, big.len() as isize);
        let e = recv(&b, false).unwrap_err().to_string();
        assert!(e.contains(&format!("{} bytes", MAX + 1)), "{e}");
    }
}
