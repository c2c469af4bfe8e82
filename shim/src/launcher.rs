//! The launcher: a single-threaded helper process that performs berth's
//! create and exec.
//!
//! berth clones the container's init from the calling process, which is only
//! safe in a single-threaded process, and the shim's ttrpc server is
//! threaded. So before it starts any thread, the shim forks this launcher.
//! For each create or exec, the launcher forks a short-lived child (a fork
//! of a single-threaded process is always safe) that calls
//! [`berth::commands::create::create_with_stdio`] or
//! [`berth::commands::exec::exec_detached`], replies with the new process's
//! pid and pidfd (or the error) over the shim's SEQPACKET socket and exits.
//! The process is then orphaned and, since the shim is a child subreaper
//! and the launcher is not, reparented to the shim, which reaps it and
//! reports its exit.
//!
//! Request: JSON `{"op":"create","root","id","bundle","console"?}` or
//! `{"op":"exec","root","id","process","console"?}` (`process`: a
//! process.json path; `console`: the console socket for a terminal) with
//! the three stdio fds as SCM_RIGHTS. Reply: JSON `{"pid":N}` with the
//! pidfd as SCM_RIGHTS (when the kernel gave one), or `{"error":"..."}`.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
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

    /// Create a container; returns init's pid and pidfd. init is set up and
    /// blocked on exec.fifo.
    pub fn create(
        &self,
        root: &Path,
        id: &str,
        bundle: &Path,
        console: Option<&Path>,
        stdio: [RawFd; 3],
    ) -> Result<(i32, Option<OwnedFd>), String> {
        let req = serde_json::json!({"op": "create", "root": root, "id": id, "bundle": bundle, "console": console});
        self.call(req, stdio)
    }

    /// Start the process described by the process.json at `process` in
    /// container `id`; returns its pid and pidfd.
    pub fn exec(
        &self,
        root: &Path,
        id: &str,
        process: &Path,
        console: Option<&Path>,
        stdio: [RawFd; 3],
    ) -> Result<(i32, Option<OwnedFd>), String> {
        let req = serde_json::json!({"op": "exec", "root": root, "id": id, "process": process, "console": console});
        self.call(req, stdio)
    }

    fn call(
        &self,
        req: serde_json::Value,
        stdio: [RawFd; 3],
    ) -> Result<(i32, Option<OwnedFd>), String> {
        let req = req.to_string();
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
        let (n, mut fds) = recv_with_fds(sock.as_raw_fd(), &mut buf)
            .map_err(|e| format!("read from the launcher: {e}"))?;
        if n == 0 {
            return Err("the launcher exited".into());
        }
        let v: serde_json::Value =
            serde_json::from_slice(&buf[..n]).map_err(|e| format!("launcher reply: {e}"))?;
        if let Some(pid) = v.get("pid").and_then(|p| p.as_i64()) {
            return Ok((pid as i32, fds.pop()));
        }
        Err(v
            .get("error")
            .and_then(|e| e.as_str())
            .unwrap_or("launcher: bad reply")
            .to_string())
    }
}

/// One message and the fds that came with it (SCM_RIGHTS, CLOEXEC).
fn recv_with_fds(sock: RawFd, buf: &mut [u8]) -> nix::Result<(usize, Vec<OwnedFd>)> {
    let mut cmsg = nix::cmsg_space!([RawFd; 3]);
    loop {
        let mut iov = [std::io::IoSliceMut::new(buf)];
        match recvmsg::<()>(sock, &mut iov, Some(&mut cmsg), MsgFlags::MSG_CMSG_CLOEXEC) {
            Ok(m) => {
                let mut fds: Vec<OwnedFd> = Vec::new();
                if let Ok(cm) = m.cmsgs() {
                    for c in cm {
                        if let ControlMessageOwned::ScmRights(v) = c {
                            fds.extend(v.into_iter().map(|f| unsafe { OwnedFd::from_raw_fd(f) }));
                        }
                    }
                }
                return Ok((m.bytes, fds));
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

fn reply(sock: &OwnedFd, r: Result<(i32, Option<OwnedFd>), String>) {
    let (msg, fd) = match r {
        Ok((pid, fd)) => (serde_json::json!({ "pid": pid }), fd),
        Err(e) => (serde_json::json!({ "error": e }), None),
    };
    let text = msg.to_string();
    let fds: Vec<RawFd> = fd.iter().map(|f| f.as_raw_fd()).collect();
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let _ = sendmsg::<()>(
        sock.as_raw_fd(),
        &[IoSlice::new(text.as_bytes())],
        if fds.is_empty() { &[] } else { &cmsg },
        MsgFlags::empty(),
        None,
    );
}

fn serve(sock: OwnedFd) -> ! {
    let mut buf = vec![0u8; 16384];
    loop {
        let (n, fds) = match recv_with_fds(sock.as_raw_fd(), &mut buf) {
            Ok(r) => r,
            Err(_) => unsafe { libc::_exit(0) },
        };
        if n == 0 {
            unsafe { libc::_exit(0) };
        }
        match unsafe { libc::fork() } {
            0 => {
                reply(&sock, handle(&buf[..n], fds));
                unsafe { libc::_exit(0) }
            }
            -1 => reply(
                &sock,
                Err(format!("fork: {}", std::io::Error::last_os_error())),
            ),
            pid => {
                drop(fds);
                let mut st = 0;
                while unsafe { libc::waitpid(pid, &mut st, 0) } < 0
                    && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted
                {
                }
            }
        }
    }
}

/// In the launcher's child: do the request.
fn handle(req: &[u8], fds: Vec<OwnedFd>) -> Result<(i32, Option<OwnedFd>), String> {
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
    let console = v.get("console").and_then(|c| c.as_str()).map(PathBuf::from);
    let root = PathBuf::from(s("root")?);
    let id = s("id")?;
    match s("op")?.as_str() {
        "create" => {
            let args = berth::cli::CreateArgs {
                bundle: PathBuf::from(s("bundle")?),
                pid_file: None,
                no_pivot: false,
                no_new_keyring: false,
                preserve_fds: 0,
                console_socket: console,
                id,
            };
            let stdio = [fds[0].as_raw_fd(), fds[1].as_raw_fd(), fds[2].as_raw_fd()];
            let created = berth::commands::create::create_with_stdio(&root, &args, Some(stdio))
                .map_err(|e| e.to_string())?;
            Ok((created.init.pid, created.init.pidfd))
        }
        "exec" => {
            // The process inherits this child's stdio; berth's log lines
            // (stderr) would land in its stderr: none from here on (errors
            // go back in the reply).
            log::set_max_level(log::LevelFilter::Off);
            for (i, fd) in fds.iter().enumerate() {
                if unsafe { libc::dup2(fd.as_raw_fd(), i as i32) } < 0 {
                    return Err(format!("dup2 stdio: {}", std::io::Error::last_os_error()));
                }
            }
            drop(fds);
            let args = berth::cli::ExecArgs {
                process: Some(PathBuf::from(s("process")?)),
                env: Vec::new(),
                cwd: None,
                user: None,
                additional_gids: Vec::new(),
                cap: Vec::new(),
                no_new_privs: None,
                apparmor: None,
                process_label: None,
                tty: None,
                console_socket: console,
                detach: true,
                pid_file: None,
                preserve_fds: 0,
                cgroup: Vec::new(),
                ignore_paused: false,
                id,
                command: Vec::new(),
            };
            let started =
                berth::commands::exec::exec_detached(&root, &args).map_err(|e| e.to_string())?;
            Ok((started.pid, started.pidfd))
        }
        op => Err(format!("launcher request: unknown op {op:?}")),
    }
}
