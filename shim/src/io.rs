//! The container's stdio. containerd names each stream as a fifo path, a
//! `file://` path or a `binary://` logging program (or nothing). The shim
//! gives init pipes and copies between them and containerd's fifos itself,
//! so the container's IO outlives a containerd restart; `file://` streams
//! get the file itself. Copy threads have small stacks; stdin's copy stops
//! on CloseIO, which closes the pipe so the container reads EOF.
//!
//! A process with a terminal gets no pipes: its pty master comes back over
//! a console socket ([`ConsoleSocket`]) and the shim copies containerd's
//! stdin fifo to the master and the master to the stdout fifo
//! ([`Stdio::tty`]). As with runc's shim, when stdin ends (EOF or CloseIO)
//! the console is shut down: the output copy stops and the master closes.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver};
use std::sync::{Arc, Weak};
use std::time::Duration;

const COPY_STACK: usize = 64 << 10;

/// What the shim holds for one process's stdio.
pub struct Stdio {
    /// The fds init gets as 0, 1, 2 (closed in the shim after create).
    pub init_fds: Vec<OwnedFd>,
    /// Closing this ends stdin's copy (CloseIO).
    stdin_cancel: Option<OwnedFd>,
    /// One message per output copy when it has drained.
    done: Vec<Receiver<()>>,
    /// A terminal's pty master (for ResizePty); the copy threads own it.
    console: Weak<OwnedFd>,
    /// A terminal without stdin: closing this shuts its console down.
    hangup: Option<OwnedFd>,
}

impl Stdio {
    pub fn raw(&self) -> [RawFd; 3] {
        [
            self.init_fds[0].as_raw_fd(),
            self.init_fds[1].as_raw_fd(),
            self.init_fds[2].as_raw_fd(),
        ]
    }

    /// CloseIO: the container's stdin reads EOF (with a terminal: the
    /// console shuts down).
    pub fn close_stdin(&mut self) {
        self.stdin_cancel = None;
    }

    /// ResizePty.
    pub fn resize(&self, width: u32, height: u32) -> Result<(), String> {
        let master = self
            .console
            .upgrade()
            .ok_or("the process has no terminal (or its console is closed)")?;
        let ws = libc::winsize {
            ws_row: height.min(u16::MAX as u32) as u16,
            ws_col: width.min(u16::MAX as u32) as u16,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads one winsize, and `ws` is a live winsize.
        if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) } < 0 {
            return Err(format!(
                "resize the pty: {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(())
    }

    /// Placeholder stdio for a process that gets a terminal (the pty
    /// replaces 0, 1 and 2 in the container process).
    pub fn for_terminal() -> Result<Stdio, String> {
        Ok(Stdio {
            init_fds: vec![dev_null(false)?, dev_null(true)?, dev_null(true)?],
            stdin_cancel: None,
            done: Vec::new(),
            console: Weak::new(),
            hangup: None,
        })
    }

    /// Copy between containerd's fifos and the pty `master`.
    pub fn tty(master: OwnedFd, stdin: &str, stdout: &str) -> Result<Stdio, String> {
        let master = Arc::new(master);
        let mut s = Stdio {
            init_fds: Vec::new(),
            stdin_cancel: None,
            done: Vec::new(),
            console: Arc::downgrade(&master),
            hangup: None,
        };
        let (hangup_r, hangup_w) = pipe()?;
        if !stdout.is_empty() {
            let fifo = open_fifo(stdout.strip_prefix("fifo://").unwrap_or(stdout))?;
            let (tx, rx) = channel();
            s.done.push(rx);
            let m = master.clone();
            spawn("tty-out", move || {
                copy_console_out(&m, fifo, hangup_r);
                let _ = tx.send(());
            })?;
        }
        if !stdin.is_empty() {
            let fifo = OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_CLOEXEC | libc::O_NONBLOCK)
                .open(stdin)
                .map_err(|e| format!("open stdin fifo {stdin}: {e}"))?;
            let (cancel_r, cancel_w) = pipe()?;
            s.stdin_cancel = Some(cancel_w);
            let m = master;
            spawn("tty-in", move || {
                copy_stdin(fifo, FdWriter(&m), cancel_r);
                // stdin is over: shut the console down, as runc's shim.
                drop(hangup_w);
            })?;
        } else {
            // No stdin: the console lives until the process is gone.
            s.hangup = Some(hangup_w);
        }
        Ok(s)
    }

    /// Wait (bounded) for the output copies to drain after the container
    /// exited, so its last output reaches containerd before TaskExit.
    pub fn drain(&mut self, limit: Duration) {
        let end = std::time::Instant::now() + limit;
        for rx in self.done.drain(..) {
            let left = end.saturating_duration_since(std::time::Instant::now());
            let _ = rx.recv_timeout(left);
        }
    }
}

fn pipe() -> Result<(OwnedFd, OwnedFd), String> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))
}

fn dev_null(write: bool) -> Result<OwnedFd, String> {
    OpenOptions::new()
        .read(!write)
        .write(write)
        .open("/dev/null")
        .map(Into::into)
        .map_err(|e| format!("/dev/null: {e}"))
}

fn open_fifo(path: &str) -> Result<File, String> {
    // An output fifo: O_RDWR never blocks, whether or not containerd has
    // opened its end yet.
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| format!("open stdio fifo {path}: {e}"))
}

pub fn setup(
    id: &str,
    namespace: &str,
    stdin: &str,
    stdout: &str,
    stderr: &str,
) -> Result<Stdio, String> {
    let mut s = Stdio {
        init_fds: Vec::new(),
        stdin_cancel: None,
        done: Vec::new(),
        console: Weak::new(),
        hangup: None,
    };
    // stdin
    if stdin.is_empty() {
        s.init_fds.push(dev_null(false)?);
    } else {
        // Read-only and non-blocking: poll reports POLLHUP once containerd's
        // writer has come and gone (its EOF), not before.
        let fifo = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_CLOEXEC | libc::O_NONBLOCK)
            .open(stdin)
            .map_err(|e| format!("open stdin fifo {stdin}: {e}"))?;
        let (r, w) = pipe()?;
        let (cancel_r, cancel_w) = pipe()?;
        s.init_fds.push(r);
        s.stdin_cancel = Some(cancel_w);
        spawn("stdin", move || copy_stdin(fifo, File::from(w), cancel_r))?;
    }
    // stdout and stderr: a shared binary:// logger gets both pipes.
    if let Some(bin) = stdout.strip_prefix("binary://") {
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        start_logger(bin, id, namespace, out_r, err_r)?;
        s.init_fds.push(out_w);
        s.init_fds.push(err_w);
        return Ok(s);
    }
    for uri in [stdout, stderr] {
        if uri.is_empty() {
            s.init_fds.push(dev_null(true)?);
        } else if let Some(path) = uri.strip_prefix("file://") {
            if let Some(parent) = std::path::Path::new(path).parent() {
                let _ = std::fs::create_dir_all(parent);
            }
            let f = OpenOptions::new()
                .append(true)
                .create(true)
                .custom_flags(libc::O_CLOEXEC)
                .open(path)
                .map_err(|e| format!("open stdio file {path}: {e}"))?;
            s.init_fds.push(f.into());
        } else {
            let fifo = open_fifo(uri.strip_prefix("fifo://").unwrap_or(uri))?;
            let (r, w) = pipe()?;
            s.init_fds.push(w);
            let (tx, rx) = channel();
            s.done.push(rx);
            spawn("stdout", move || {
                copy_out(File::from(r), fifo);
                let _ = tx.send(());
            })?;
        }
    }
    Ok(s)
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<(), String> {
    std::thread::Builder::new()
        .name(name.into())
        .stack_size(COPY_STACK)
        .spawn(f)
        .map(|_| ())
        .map_err(|e| format!("spawn {name} copy thread: {e}"))
}

fn copy_out(mut from: File, mut to: File) {
    let mut buf = [0u8; 16384];
    while pass_on(&mut from, &mut to, &mut buf) {}
}

/// One read from `from` passed on to `to`: false at EOF or on an error
/// (EINTR and EAGAIN only retry).
fn pass_on(from: &mut impl Read, to: &mut impl Write, buf: &mut [u8]) -> bool {
    match from.read(buf) {
        Ok(0) => false,
        Ok(n) => to.write_all(&buf[..n]).is_ok(),
        Err(e) => matches!(
            e.kind(),
            std::io::ErrorKind::Interrupted | std::io::ErrorKind::WouldBlock
        ),
    }
}

/// poll(2) for input on `data` and on `stop` (EINTR retries): their
/// revents, or None when poll fails.
fn poll_pair(data: RawFd, stop: RawFd) -> Option<(libc::c_short, libc::c_short)> {
    let pfd = |fd| libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let mut p = [pfd(data), pfd(stop)];
    loop {
        // SAFETY: `p` is a live array of two pollfds and nfds is 2.
        if unsafe { libc::poll(p.as_mut_ptr(), 2, -1) } >= 0 {
            return Some((p[0].revents, p[1].revents));
        }
        if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return None;
        }
    }
}

/// Writes to a borrowed fd (the pty master shared by the copy threads).
struct FdWriter<'a>(&'a OwnedFd);

impl Write for FdWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // SAFETY: `buf` is valid for buf.len() bytes and write only reads them.
        let n = unsafe { libc::write(self.0.as_raw_fd(), buf.as_ptr().cast(), buf.len()) };
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(n as usize)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The master to the stdout fifo until the terminal's last slave closes
/// (EIO) or the console is shut down (`hangup` readable or closed).
fn copy_console_out(master: &OwnedFd, mut to: File, hangup: OwnedFd) {
    let mut buf = [0u8; 16384];
    loop {
        let Some((data, stop)) = poll_pair(master.as_raw_fd(), hangup.as_raw_fd()) else {
            return;
        };
        if data == 0 {
            if stop != 0 {
                return;
            }
            continue;
        }
        // SAFETY: `buf` is a live buffer and read writes at most buf.len() bytes.
        let n = unsafe { libc::read(master.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return; // EIO: no slave left
        }
        if n == 0 || to.write_all(&buf[..n as usize]).is_err() {
            return;
        }
    }
}

/// A listening socket the container process sends its pty master to
/// (runc's --console-socket); removed when dropped.
pub struct ConsoleSocket {
    pub path: PathBuf,
    listener: UnixListener,
}

impl ConsoleSocket {
    pub fn bind() -> Result<ConsoleSocket, String> {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = Path::new("/run/containerd-berth/c");
        std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        let path = dir.join(format!(
            "{}-{}.sock",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path)
            .map_err(|e| format!("console socket {}: {e}", path.display()))?;
        Ok(ConsoleSocket { path, listener })
    }

    /// The master, sent by a process that has already connected (berth's
    /// create or exec returned).
    pub fn receive(&self) -> Result<OwnedFd, String> {
        let _ = self.listener.set_nonblocking(true);
        let (conn, _) = self
            .listener
            .accept()
            .map_err(|e| format!("console socket: no connection from the container: {e}"))?;
        let _ = conn.set_nonblocking(false);
        let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
        berth::os::recv_fd(conn.as_raw_fd())
            .map_err(|e| format!("console socket: receive the pty master: {e}"))
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn copy_stdin(mut from: File, mut to: impl Write, cancel: OwnedFd) {
    let mut buf = [0u8; 16384];
    loop {
        let Some((data, stop)) = poll_pair(from.as_raw_fd(), cancel.as_raw_fd()) else {
            return;
        };
        if stop != 0 && data & libc::POLLIN == 0 {
            return; // CloseIO, nothing left to pass on
        }
        if data == 0 {
            continue;
        }
        // EOF (the writer left) or an error ends it.
        if !pass_on(&mut from, &mut to, &mut buf) {
            return;
        }
    }
}

/// URL unescaping: `%XX` and `+` (as in a query).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Run a `binary://` logging program: stdout pipe as fd 3, stderr as fd 4,
/// and fd 5 that it closes once ready; we wait for that (5 s at most).
fn start_logger(uri: &str, id: &str, ns: &str, out: OwnedFd, err: OwnedFd) -> Result<(), String> {
    let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
    let path = unescape(path);
    let (ready_r, ready_w) = pipe()?;
    let mut cmd = Command::new(&path);
    // As containerd's shims: each query key, then its value if any.
    for kv in query.split('&').filter(|s| !s.is_empty()) {
        match kv.split_once('=') {
            Some((k, "")) => cmd.arg(unescape(k)),
            Some((k, v)) => cmd.args([unescape(k), unescape(v)]),
            None => cmd.arg(unescape(kv)),
        };
    }
    cmd.env("CONTAINER_ID", id).env("CONTAINER_NAMESPACE", ns);
    let fds = [out.as_raw_fd(), err.as_raw_fd(), ready_w.as_raw_fd()];
    // SAFETY: the pre_exec closure runs in the forked child before execve and only makes
    // async-signal-safe calls (fcntl, dup2, close) on the copied fd numbers; it
    // allocates nothing and touches no lock.
    unsafe {
        cmd.pre_exec(move || {
            // Move the sources above 5 first, then into place without CLOEXEC.
            let mut hi = [0; 3];
            for (i, &fd) in fds.iter().enumerate() {
                hi[i] = libc::fcntl(fd, libc::F_DUPFD, 10);
                if hi[i] < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            for (i, &fd) in hi.iter().enumerate() {
                if libc::dup2(fd, 3 + i as i32) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    cmd.spawn()
        .map_err(|e| format!("start logging binary {path}: {e}"))?;
    drop(ready_w);
    let mut p = libc::pollfd {
        fd: ready_r.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `p` is a live pollfd and nfds is 1; the wait is bounded (5 s).
    unsafe { libc::poll(&mut p, 1, 5000) };
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn unescape() {
        assert_eq!(super::unescape("%2Ftmp%2Fa+b%zz%"), "/tmp/a b%zz%");
    }
}
