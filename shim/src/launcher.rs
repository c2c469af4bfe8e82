//! The launcher: a single-threaded helper process that performs berth's
//! create.
//!
//! berth clones the container's init from the calling process, which is only
//! safe in a single-threaded process, and the shim's ttrpc server is
//! threaded. So before it starts any thread, the shim forks this launcher.
//! For each create, the launcher forks a short-lived child (a fork of a
//! single-threaded process is always safe) that calls
//! [`berth::commands::create::create_with_stdio`], replies with init's pid
//! (or the error) over the shim's SEQPACKET socket and exits. init is then
//! orphaned and, since the shim is a child subreaper and the launcher is
//! not, reparented to the shim, which reaps it and reports its exit.
//!
//! Request: JSON `{"root","id","bundle"}` with the three stdio fds as
//! SCM_RIGHTS. Reply: JSON `{"pid":N}` or `{"error":"..."}`.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::Mutex;

use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};

pub struct Launcher {
    sock: Mutex<OwnedFd>,
}

impl Launcher {
    /// Fork the launcher. Must be called while the shim is single-threaded.
    pub fn fork() -> Result<Launcher, String> {
        let (parent, child) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|e| format!("socketpair: {e}"))?;
        match unsafe { libc::fork() } {
            -1 => Err(format!(
                "fork the launcher: {}",
                std::io::Error::last_os_error()
            )),
            0 => {
                drop(parent);
                unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
                serve(child)
            }
            _ => Ok(Launcher {
                sock: Mutex::new(parent),
            }),
        }
    }

    /// Create a container; returns init's pid. init is set up and blocked on
    /// exec.fifo.
    pub fn create(
        &self,
        root: &std::path::Path,
        id: &str,
        bundle: &std::path::Path,
        stdio: [RawFd; 3],
    ) -> Result<i32, String> {
        let req = serde_json::json!({"root": root, "id": id, "bundle": bundle}).to_string();
        let sock = self.sock.lock().unwrap_or_else(|e| e.into_inner());
        let fds = ControlMessage::ScmRights(&stdio);
        sendmsg::<()>(
            sock.as_raw_fd(),
            &[IoSlice::new(req.as_bytes())],
            &[fds],
            MsgFlags::empty(),
            None,
        )
        .map_err(|e| format!("send to the launcher: {e}"))?;
        let mut buf = vec![0u8; 65536];
        let n = loop {
            match nix::sys::socket::recv(sock.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Err(nix::errno::Errno::EINTR) => continue,
                r => break r.map_err(|e| format!("read from the launcher: {e}"))?,
            }
        };
        if n == 0 {
            return Err("the launcher exited".into());
        }
        let v: serde_json::Value =
            serde_json::from_slice(&buf[..n]).map_err(|e| format!("launcher reply: {e}"))?;
        if let Some(pid) = v.get("pid").and_then(|p| p.as_i64()) {
            return Ok(pid as i32);
        }
        Err(v
            .get("error")
            .and_then(|e| e.as_str())
            .unwrap_or("launcher: bad reply")
            .to_string())
    }
}

fn serve(sock: OwnedFd) -> ! {
    loop {
        let mut buf = vec![0u8; 16384];
        let mut cmsg = nix::cmsg_space!([RawFd; 3]);
        let (n, fds) = {
            let mut iov = [std::io::IoSliceMut::new(&mut buf)];
            match recvmsg::<()>(
                sock.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Ok(m) => {
                    let mut fds: Vec<OwnedFd> = Vec::new();
                    if let Ok(cm) = m.cmsgs() {
                        for c in cm {
                            if let ControlMessageOwned::ScmRights(v) = c {
                                fds.extend(
                                    v.into_iter().map(|f| unsafe { OwnedFd::from_raw_fd(f) }),
                                );
                            }
                        }
                    }
                    (m.bytes, fds)
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => unsafe { libc::_exit(0) },
            }
        };
        if n == 0 {
            unsafe { libc::_exit(0) };
        }
        match unsafe { libc::fork() } {
            0 => {
                let reply = match create(&buf[..n], &fds) {
                    Ok(pid) => serde_json::json!({ "pid": pid }),
                    Err(e) => serde_json::json!({ "error": e }),
                };
                let _ = nix::sys::socket::send(
                    sock.as_raw_fd(),
                    reply.to_string().as_bytes(),
                    MsgFlags::empty(),
                );
                unsafe { libc::_exit(0) }
            }
            -1 => {
                let e = serde_json::json!({ "error": format!("fork: {}", std::io::Error::last_os_error()) });
                let _ = nix::sys::socket::send(
                    sock.as_raw_fd(),
                    e.to_string().as_bytes(),
                    MsgFlags::empty(),
                );
            }
            pid => {
                let mut st = 0;
                while unsafe { libc::waitpid(pid, &mut st, 0) } < 0
                    && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted
                {
                }
            }
        }
        drop(fds);
    }
}

fn create(req: &[u8], fds: &[OwnedFd]) -> Result<i32, String> {
    let v: serde_json::Value =
        serde_json::from_slice(req).map_err(|e| format!("launcher request: {e}"))?;
    let s = |k: &str| {
        v.get(k)
            .and_then(|x| x.as_str())
            .map(str::to_string)
            .ok_or_else(|| format!("launcher request: no {k}"))
    };
    if fds.len() != 3 {
        return Err(format!("launcher request: {} stdio fds, want 3", fds.len()));
    }
    let args = berth::cli::CreateArgs {
        bundle: PathBuf::from(s("bundle")?),
        pid_file: None,
        no_pivot: false,
        no_new_keyring: false,
        preserve_fds: 0,
        console_socket: None,
        id: s("id")?,
    };
    let root = PathBuf::from(s("root")?);
    let stdio = [fds[0].as_raw_fd(), fds[1].as_raw_fd(), fds[2].as_raw_fd()];
    let created = berth::commands::create::create_with_stdio(&root, &args, Some(stdio))
        .map_err(|e| e.to_string())?;
    Ok(created.init.pid)
}
