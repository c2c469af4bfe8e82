//! The server's side of the launcher: a single-threaded helper process
//! (`containerd-shim-berth-v2 launch`, see [`crate::ops`]) that runs every
//! berth operation on containers for the server.
//!
//! Why: berth clones a container's init (create) and exec'd processes from
//! the calling process, which is only safe in a single-threaded process,
//! and the server's ttrpc is threaded. And berth's code (spec parsing,
//! rootfs, seccomp, hooks, cgroups) is most of the main binary: run in the
//! launcher's short-lived children, it never becomes resident in the
//! long-lived processes. The launcher forks one child per request; the
//! child does the work, replies and exits. A container process it starts
//! is then orphaned and, since the server is a child subreaper and the
//! launcher is not, reparented to the server, which reaps it.
//!
//! The launcher runs only while the server needs it: it is spawned for a
//! request when none is running, and the server closes its socket after
//! [`IDLE`] without requests (the launcher exits on EOF). An idle shim is
//! then the server alone.
//!
//! Protocol (SEQPACKET socketpair, one request at a time): a JSON request
//! `{"op", "root", "id", ...}` with stdio fds (create, exec) as
//! SCM_RIGHTS; the reply is JSON, `{"ok": {...}}` with an fd (the new
//! process's pidfd) or `{"error": "..."}`.

use std::collections::HashSet;
use std::io::IoSlice;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};
use serde_json::{json, Value};

/// How long the launcher outlives its last request.
pub const IDLE: Duration = Duration::from_secs(1);

struct Live {
    sock: OwnedFd,
    last_used: Instant,
}

pub struct Launcher {
    namespace: String,
    address: String,
    live: Arc<Mutex<Option<Live>>>,
    /// Pids of launchers started (the reaper's exits for them are ours).
    pids: Mutex<HashSet<i32>>,
}

/// Decode a launcher reply: the `ok` object, or the `error` message.
/// Public for the fuzz target (fuzz/).
pub fn parse_reply(buf: &[u8]) -> Result<Value, String> {
    let mut v: Value = serde_json::from_slice(buf).map_err(|e| format!("launcher reply: {e}"))?;
    if let Some(ok) = v.get_mut("ok") {
        return Ok(ok.take());
    }
    Err(v
        .get("error")
        .and_then(|e| e.as_str())
        .unwrap_or("launcher: bad reply")
        .to_string())
}

/// A started process: pid, pidfd, and the reply's other fields.
pub struct Started {
    pub pid: i32,
    pub pidfd: Option<OwnedFd>,
    pub reply: Value,
}

impl Launcher {
    pub fn new(namespace: &str, address: &str) -> Launcher {
        let live: Arc<Mutex<Option<Live>>> = Arc::new(Mutex::new(None));
        let watch = live.clone();
        let idle = move || loop {
            std::thread::sleep(IDLE / 2);
            let mut g = watch.lock().unwrap_or_else(|e| e.into_inner());
            if g.as_ref().is_some_and(|l| l.last_used.elapsed() >= IDLE) {
                // EOF: the launcher exits.
                *g = None;
            }
        };
        std::thread::Builder::new()
            .name("launcher-idle".into())
            .stack_size(64 << 10)
            .spawn(idle)
            .expect("spawn the launcher idle thread");
        Launcher {
            namespace: namespace.to_string(),
            address: address.to_string(),
            live,
            pids: Mutex::new(HashSet::new()),
        }
    }

    /// Was `pid` a launcher (its exit is not a container's)?
    pub fn owns(&self, pid: i32) -> bool {
        self.pids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&pid)
    }

    /// Spawn the launcher (`containerd-shim-berth-v2 -namespace NS -address
    /// A launch`, the socket on fd 3). It exits when the socket closes: when
    /// the server closes it after [`IDLE`], or when the server is gone.
    fn spawn(&self) -> Result<OwnedFd, String> {
        let (parent, child) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|e| format!("socketpair: {e}"))?;
        let exe = crate::sibling(crate::MAIN_BIN)?;
        let mut cmd = std::process::Command::new(&exe);
        cmd.args([
            "-namespace",
            &self.namespace,
            "-address",
            &self.address,
            "launch",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null());
        let fd = child.as_raw_fd();
        unsafe {
            cmd.pre_exec(move || {
                if libc::dup2(fd, 3) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        // The pid is recorded before the reaper can see its exit.
        let mut pids = self.pids.lock().unwrap_or_else(|e| e.into_inner());
        let c = cmd
            .spawn()
            .map_err(|e| format!("start the launcher {}: {e}", exe.display()))?;
        pids.insert(c.id() as i32);
        Ok(parent)
    }

    /// One request; the reply's `ok` object and fd.
    fn call(&self, req: Value, fds: &[RawFd]) -> Result<(Value, Option<OwnedFd>), String> {
        let req = req.to_string();
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        let rights = [ControlMessage::ScmRights(fds)];
        let send = |sock: &OwnedFd| {
            sendmsg::<()>(
                sock.as_raw_fd(),
                &[IoSlice::new(req.as_bytes())],
                if fds.is_empty() { &[] } else { &rights },
                MsgFlags::empty(),
                None,
            )
        };
        // A launcher that died (killed) is replaced once: nothing of this
        // request ran in it.
        let mut sent = false;
        for _ in 0..2 {
            if live.is_none() {
                *live = Some(Live {
                    sock: self.spawn()?,
                    last_used: Instant::now(),
                });
            }
            match send(&live.as_ref().unwrap().sock) {
                Ok(_) => {
                    sent = true;
                    break;
                }
                Err(nix::errno::Errno::EPIPE) | Err(nix::errno::Errno::ECONNREFUSED) => {
                    *live = None
                }
                Err(e) => return Err(format!("send to the launcher: {e}")),
            }
        }
        if !sent {
            return Err("send to the launcher: it exits at once".into());
        }
        let l = live.as_mut().unwrap();
        let mut buf = vec![0u8; 65536];
        let r = recv_with_fds(l.sock.as_raw_fd(), &mut buf);
        l.last_used = Instant::now();
        let (n, mut got) = r.map_err(|e| format!("read from the launcher: {e}"))?;
        if n == 0 {
            *live = None;
            return Err("the launcher exited".into());
        }
        parse_reply(&buf[..n]).map(|ok| (ok, got.pop()))
    }

    fn started(&self, req: Value, stdio: [RawFd; 3]) -> Result<Started, String> {
        let (reply, pidfd) = self.call(req, &stdio)?;
        let pid = reply
            .get("pid")
            .and_then(|p| p.as_i64())
            .ok_or("launcher reply: no pid")? as i32;
        Ok(Started { pid, pidfd, reply })
    }

    /// berth create; init is set up and blocked on exec.fifo. The reply
    /// also names the container's cgroups (`procs_dirs`, `memory_dir`,
    /// `v2`).
    pub fn create(
        &self,
        root: &Path,
        id: &str,
        bundle: &Path,
        console: Option<&Path>,
        stdio: [RawFd; 3],
    ) -> Result<Started, String> {
        let req =
            json!({"op": "create", "root": root, "id": id, "bundle": bundle, "console": console});
        self.started(req, stdio)
    }

    /// berth exec --detach of the process.json at `process`.
    pub fn exec(
        &self,
        root: &Path,
        id: &str,
        process: &Path,
        console: Option<&Path>,
        stdio: [RawFd; 3],
    ) -> Result<Started, String> {
        let req =
            json!({"op": "exec", "root": root, "id": id, "process": process, "console": console});
        self.started(req, stdio)
    }

    /// An operation on container `id`: start, pause, resume, destroy,
    /// stats, update (with `arg`).
    pub fn op(&self, op: &str, root: &Path, id: &str, arg: Option<&str>) -> Result<Value, String> {
        let req = json!({"op": op, "root": root, "id": id, "arg": arg});
        self.call(req, &[]).map(|(v, _)| v)
    }
}

/// One message and the fds that came with it (SCM_RIGHTS, CLOEXEC).
pub fn recv_with_fds(sock: RawFd, buf: &mut [u8]) -> nix::Result<(usize, Vec<OwnedFd>)> {
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

/// Send `msg` with `fd` (if any) as SCM_RIGHTS.
pub fn send_with_fd(sock: RawFd, msg: &[u8], fd: Option<RawFd>) {
    let fds: Vec<RawFd> = fd.into_iter().collect();
    let rights = [ControlMessage::ScmRights(&fds)];
    let _ = sendmsg::<()>(
        sock,
        &[IoSlice::new(msg)],
        if fds.is_empty() { &[] } else { &rights },
        MsgFlags::empty(),
        None,
    );
}
