//! The caller's side of runtime-cli.md's `--console-socket`: listen on an
//! AF_UNIX socket, receive the pseudoterminal master over SCM_RIGHTS, and
//! collect what the container writes to its terminal.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// Receive one fd (and the JSON/plain payload bytes) from a connected socket.
pub fn recv_fd(sock: &impl AsRawFd) -> Result<(OwnedFd, Vec<u8>), String> {
    let mut data = vec![0u8; 4096];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    // Room for a few fds.
    let mut cbuf = [0u64; 16];
    // SAFETY: msghdr points at live local buffers; CMSG macros walk them.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr() as *mut libc::c_void;
        msg.msg_controllen = std::mem::size_of_val(&cbuf);
        let n = libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC);
        if n < 0 {
            return Err(format!("recvmsg: {}", std::io::Error::last_os_error()));
        }
        data.truncate(n as usize);
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let fd = *(libc::CMSG_DATA(c) as *const libc::c_int);
                return Ok((OwnedFd::from_raw_fd(fd), data));
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Err(format!(
        "no SCM_RIGHTS fd in the message ({} bytes: {:?})",
        data.len(),
        String::from_utf8_lossy(&data)
    ))
}

/// A console socket being served in a thread: it accepts one connection,
/// takes the pty master and reads it until EOF (the container exits) or
/// `limit` passes.
pub struct Console {
    rx: mpsc::Receiver<Result<String, String>>,
}

impl Console {
    pub fn listen(path: &Path, limit: Duration) -> Result<Console, String> {
        let l = UnixListener::bind(path).map_err(|e| format!("bind {}: {e}", path.display()))?;
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let r = (|| {
                l.set_nonblocking(true).map_err(|e| e.to_string())?;
                let start = std::time::Instant::now();
                let (conn, _) = loop {
                    match l.accept() {
                        Ok(c) => break c,
                        Err(_) if start.elapsed() < limit => thread::sleep(Duration::from_millis(10)),
                        Err(e) => return Err(format!("no runtime connected to the console socket: {e}")),
                    }
                };
                conn.set_nonblocking(false).map_err(|e| e.to_string())?;
                let (fd, _) = recv_fd(&conn)?;
                let mut master = File::from(fd);
                let mut out = Vec::new();
                let mut buf = [0u8; 4096];
                // EIO once the slave side is closed by every process.
                while start.elapsed() < limit {
                    match master.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => out.extend_from_slice(&buf[..n]),
                    }
                }
                Ok(String::from_utf8_lossy(&out).replace('\r', ""))
            })();
            let _ = tx.send(r);
        });
        Ok(Console { rx })
    }

    /// What the container wrote to its terminal.
    pub fn output(self, limit: Duration) -> Result<String, String> {
        self.rx
            .recv_timeout(limit)
            .map_err(|_| "the console reader did not finish".to_string())?
    }
}
