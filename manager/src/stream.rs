//! A foreground process's stdio: fifos the shim copies to and from (as
//! containerd's fifos), copied here to berthctl's own stdio and appended
//! to the container's log; the terminal in raw mode for `-t`; signals
//! passed on to the process (SIGWINCH as a resize).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::shim::Shim;

/// The fifos of one process (paths; empty = not used).
pub struct Fifos {
    pub stdin: Option<PathBuf>,
    pub stdout: PathBuf,
    pub stderr: Option<PathBuf>,
    /// Output fifos, opened (non-blocking) before Create.
    out: Vec<(File, bool)>,
    /// Our own writer on each output fifo, held until the process exited:
    /// whenever the shim opens its end (Create, Exec or Start), our reader
    /// never sees an early EOF.
    hold: Vec<File>,
}

fn mkfifo(p: &Path) -> Result<(), String> {
    nix::unistd::mkfifo(p, nix::sys::stat::Mode::from_bits_truncate(0o600))
        .map_err(|e| format!("mkfifo {}: {e}", p.display()))
}

fn open_reader(p: &Path) -> Result<File, String> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(p)
        .map_err(|e| format!("open {}: {e}", p.display()))
}

impl Fifos {
    /// Make the fifos `<dir>/<prefix>.{stdin,stdout,stderr}`.
    pub fn make(dir: &Path, prefix: &str, stdin: bool, tty: bool) -> Result<Fifos, String> {
        let path = |s: &str| dir.join(format!("{prefix}.{s}"));
        let f = Fifos {
            stdin: stdin.then(|| path("stdin")),
            stdout: path("stdout"),
            stderr: (!tty).then(|| path("stderr")),
            out: Vec::new(),
            hold: Vec::new(),
        };
        let mut made = Vec::new();
        for p in f.stdin.iter().chain(std::iter::once(&f.stdout)).chain(f.stderr.iter()) {
            if let Err(e) = mkfifo(p) {
                for m in made {
                    let _ = std::fs::remove_file(m);
                }
                return Err(e);
            }
            made.push(p.clone());
        }
        let mut f = f;
        let outs: Vec<(PathBuf, bool)> =
            std::iter::once((f.stdout.clone(), false)).chain(f.stderr.clone().map(|e| (e, true))).collect();
        for (p, is_err) in outs {
            let opened = open_reader(&p).and_then(|r| {
                OpenOptions::new()
                    .write(true)
                    .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
                    .open(&p)
                    .map(|w| (r, w))
                    .map_err(|e| format!("open {}: {e}", p.display()))
            });
            match opened {
                Ok((r, w)) => {
                    f.out.push((r, is_err));
                    f.hold.push(w);
                }
                Err(e) => {
                    f.remove();
                    return Err(e);
                }
            }
        }
        Ok(f)
    }

    /// The three URIs for Create/Exec.
    pub fn uris(&self) -> [String; 3] {
        let s = |p: Option<&PathBuf>| p.map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
        [s(self.stdin.as_ref()), s(Some(&self.stdout)), s(self.stderr.as_ref())]
    }

    pub fn remove(&self) {
        for p in self.stdin.iter().chain(std::iter::once(&self.stdout)).chain(self.stderr.iter()) {
            let _ = std::fs::remove_file(p);
        }
    }

    /// Copy output to our stdout/stderr and to `log`, and our stdin to the
    /// process (its fifo opened once the shim opens its end).
    pub fn attach(&mut self, log: Option<File>) -> Result<Copies, String> {
        let log = log.map(|l| Arc::new(Mutex::new(l)));
        let mut done = Vec::new();
        for (f, is_err) in self.out.drain(..) {
            // Blocking from now on: EOF only once we and the shim closed
            // our writers.
            // SAFETY: fcntl F_GETFL/F_SETFL take integers only; `f` keeps the fd open.
            unsafe {
                let fl = libc::fcntl(f.as_raw_fd(), libc::F_GETFL);
                libc::fcntl(f.as_raw_fd(), libc::F_SETFL, fl & !libc::O_NONBLOCK);
            }
            let (tx, rx) = channel();
            let log = log.clone();
            std::thread::spawn(move || {
                copy_out(f, is_err, log);
                let _ = tx.send(());
            });
            done.push(rx);
        }
        if let Some(p) = self.stdin.clone() {
            std::thread::spawn(move || {
                if let Ok(w) = OpenOptions::new().write(true).custom_flags(libc::O_CLOEXEC).open(&p) {
                    copy_in(w);
                }
            });
        }
        Ok(Copies { done, hold: std::mem::take(&mut self.hold) })
    }
}

fn copy_out(mut from: File, is_err: bool, log: Option<Arc<Mutex<File>>>) {
    let mut buf = [0u8; 16384];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        if is_err {
            let mut e = std::io::stderr().lock();
            let _ = e.write_all(&buf[..n]).and_then(|_| e.flush());
        } else {
            let mut o = std::io::stdout().lock();
            let _ = o.write_all(&buf[..n]).and_then(|_| o.flush());
        }
        if let Some(l) = &log {
            let _ = l.lock().map(|mut l| l.write_all(&buf[..n]));
        }
    }
}

/// Our stdin into the process; at EOF the fifo closes, which the shim
/// passes on as EOF.
fn copy_in(mut to: File) {
    let mut buf = [0u8; 16384];
    let mut stdin = std::io::stdin();
    loop {
        match stdin.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

pub struct Copies {
    done: Vec<Receiver<()>>,
    hold: Vec<File>,
}

impl Copies {
    /// Wait (bounded) for the output to drain after the process exited.
    pub fn drain(mut self, limit: Duration) {
        self.hold.clear();
        let end = Instant::now() + limit;
        for rx in self.done {
            let _ = rx.recv_timeout(end.saturating_duration_since(Instant::now()));
        }
    }
}

/// berthctl's terminal in raw mode while it lives (for -t).
pub struct RawTerm {
    saved: Option<nix::sys::termios::Termios>,
}

impl RawTerm {
    pub fn enter() -> RawTerm {
        use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
        let stdin = std::io::stdin();
        let Ok(saved) = tcgetattr(&stdin) else {
            return RawTerm { saved: None };
        };
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        let _ = tcsetattr(&stdin, SetArg::TCSANOW, &raw);
        RawTerm { saved: Some(saved) }
    }
}

impl Drop for RawTerm {
    fn drop(&mut self) {
        if let Some(s) = &self.saved {
            let _ = nix::sys::termios::tcsetattr(std::io::stdin(), nix::sys::termios::SetArg::TCSANOW, s);
        }
    }
}

/// The size of berthctl's terminal (cols, rows), if it has one.
pub fn term_size() -> Option<(u32, u32)> {
    for fd in [0, 1] {
        // SAFETY: winsize is four u16s; all-zero is a valid value.
        let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
        // SAFETY: TIOCGWINSZ writes one winsize, and `ws` is a live winsize.
        if unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) } == 0 && ws.ws_col > 0 {
            return Some((ws.ws_col as u32, ws.ws_row as u32));
        }
    }
    None
}

/// Block the signals berthctl passes on to the container, in this thread
/// (before other threads start, so they inherit the mask): they stay
/// pending until [`forward_signals`] takes them.
pub fn block_signals() -> nix::sys::signal::SigSet {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP, Signal::SIGQUIT, Signal::SIGUSR1, Signal::SIGUSR2, Signal::SIGWINCH] {
        set.add(s);
    }
    let _ = set.thread_block();
    set
}

/// Pass the blocked signals on from a thread of their own: SIGWINCH
/// resizes the terminal (with -t); the others go to the process.
pub fn forward_signals(set: nix::sys::signal::SigSet, shim: Arc<Shim>, exec_id: String, tty: bool) {
    use nix::sys::signal::Signal;
    std::thread::spawn(move || loop {
        let Ok(sig) = set.wait() else { return };
        if sig == Signal::SIGWINCH {
            if tty {
                if let Some((c, r)) = term_size() {
                    let _ = shim.resize(&exec_id, c, r);
                }
            }
            continue;
        }
        let _ = shim.kill(&exec_id, sig as i32 as u32, false);
    });
}
