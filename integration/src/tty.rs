//! Terminals and inherited fds for tests: a pty pair to be berth's stdio
//! (`run -t`, `exec -t` in the foreground), a `--console-socket` receiver,
//! a reader that collects what a pty master yields, and spawning berth with
//! extra fds and environment (`--preserve-fds`, LISTEN_FDS).

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::env::Env;
use crate::harness::{berth_bin, describe_status, render_cmdline};

/// A pty pair opened by the test, with a size.
pub struct Pty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
}

impl Pty {
    pub fn open(rows: u16, cols: u16) -> Pty {
        let (mut m, mut s) = (-1, -1);
        let ws = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let r =
            unsafe { libc::openpty(&mut m, &mut s, std::ptr::null_mut(), std::ptr::null(), &ws) };
        assert_eq!(r, 0, "openpty: {}", io::Error::last_os_error());
        for fd in [m, s] {
            unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        }
        unsafe {
            Pty {
                master: OwnedFd::from_raw_fd(m),
                slave: OwnedFd::from_raw_fd(s),
            }
        }
    }

    /// Resize: the kernel sends SIGWINCH to the slave's foreground group.
    pub fn set_size(&self, rows: u16, cols: u16) {
        set_size(self.master.as_raw_fd(), rows, cols);
    }

    /// The slave's termios (read through the master).
    pub fn termios(&self) -> libc::termios {
        termios(self.master.as_raw_fd())
    }
}

pub fn set_size(fd: RawFd, rows: u16, cols: u16) {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let r = unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) };
    assert_eq!(r, 0, "TIOCSWINSZ: {}", io::Error::last_os_error());
}

pub fn termios(fd: RawFd) -> libc::termios {
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::tcgetattr(fd, &mut t) };
    assert_eq!(r, 0, "tcgetattr: {}", io::Error::last_os_error());
    t
}

/// Write all of `data` to `fd` (a pty master).
pub fn write_all(fd: &OwnedFd, data: &[u8]) {
    let mut f = File::from(fd.try_clone().expect("dup"));
    io::Write::write_all(&mut f, data).expect("write to pty master");
}

/// Collects everything read from a pty master in a background thread (it
/// ends when every slave is closed).
pub struct Reader {
    buf: Arc<Mutex<Vec<u8>>>,
}

impl Reader {
    pub fn start(master: &OwnedFd) -> Reader {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let b = buf.clone();
        let mut f = File::from(master.try_clone().expect("dup master"));
        std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n) = f.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                b.lock().unwrap().extend_from_slice(&chunk[..n]);
            }
        });
        Reader { buf }
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf.lock().unwrap()).into_owned()
    }

    /// Wait until the output holds `needle`; panic with it otherwise.
    #[track_caller]
    pub fn wait_for(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let t = self.text();
            if t.contains(needle) {
                return t;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out after {timeout:?} waiting for {needle:?} on the terminal; got {t:?}"
                );
            }
            sleep(Duration::from_millis(20));
        }
    }
}

/// A `--console-socket`: a listening unix socket that receives the pty
/// master as runc's callers (containerd, conmon) do.
pub struct ConsoleSocket {
    pub path: PathBuf,
    listener: UnixListener,
}

impl ConsoleSocket {
    pub fn bind(path: &Path) -> ConsoleSocket {
        let _ = std::fs::remove_file(path);
        let listener =
            UnixListener::bind(path).unwrap_or_else(|e| panic!("bind {}: {e}", path.display()));
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        ConsoleSocket {
            path: path.to_path_buf(),
            listener,
        }
    }

    pub fn path_str(&self) -> String {
        self.path.display().to_string()
    }

    /// Accept one connection and receive (payload, fd) from it.
    #[track_caller]
    pub fn receive(&self, timeout: Duration) -> (String, OwnedFd) {
        let deadline = Instant::now() + timeout;
        let conn = loop {
            match self.listener.accept() {
                Ok((c, _)) => break c,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                    sleep(Duration::from_millis(10))
                }
                Err(e) => panic!("no connection on {} ({e})", self.path.display()),
            }
        };
        conn.set_nonblocking(false).expect("blocking conn");
        let mut buf = [0u8; 4096];
        let mut cmsg = [0u64; 8];
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
        hdr.msg_iov = &mut iov;
        hdr.msg_iovlen = 1;
        hdr.msg_control = cmsg.as_mut_ptr().cast();
        hdr.msg_controllen = std::mem::size_of_val(&cmsg);
        let n = unsafe { libc::recvmsg(conn.as_raw_fd(), &mut hdr, libc::MSG_CMSG_CLOEXEC) };
        assert!(
            n >= 0,
            "recvmsg on the console socket: {}",
            io::Error::last_os_error()
        );
        let fd = unsafe {
            let c = libc::CMSG_FIRSTHDR(&hdr);
            assert!(!c.is_null(), "the console socket message carried no fd");
            assert_eq!(
                ((*c).cmsg_level, (*c).cmsg_type),
                (libc::SOL_SOCKET, libc::SCM_RIGHTS)
            );
            std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const RawFd)
        };
        (
            String::from_utf8_lossy(&buf[..n as usize]).into_owned(),
            unsafe { OwnedFd::from_raw_fd(fd) },
        )
    }
}

/// How to start berth in [`spawn`].
#[derive(Default)]
pub struct Stdio3<'a> {
    /// The pty whose slave is berth's stdin, stdout and stderr and its
    /// controlling terminal (berth runs in a new session); else stdin is
    /// /dev/null and stdout/stderr go to files, and berth has no terminal.
    pub pty: Option<&'a Pty>,
    /// Files opened read-only at these fd numbers (3, 4, ...).
    pub fds: Vec<(RawFd, PathBuf)>,
    /// Extra environment.
    pub env: Vec<(String, String)>,
    /// Set LISTEN_PID to berth's own pid (systemd socket activation).
    pub listen_pid: bool,
}

/// berth started by [`spawn`]; killed and reaped on drop.
pub struct Berth {
    pub cmdline: String,
    child: Child,
    pub out: PathBuf,
    pub err: PathBuf,
}

impl Berth {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn signal(&self, sig: i32) {
        assert_eq!(
            unsafe { libc::kill(self.pid(), sig) },
            0,
            "kill: {}",
            io::Error::last_os_error()
        );
    }

    /// Wait for exit within `timeout`; panics (after killing it) otherwise.
    #[track_caller]
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                return s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "timed out after {timeout:?}: {}\n  stderr: {}",
                    self.cmdline,
                    self.stderr()
                );
            }
            sleep(Duration::from_millis(10));
        }
    }

    /// Wait and return the exit code (panics when killed by a signal).
    #[track_caller]
    pub fn code(&mut self, timeout: Duration) -> i32 {
        let s = self.wait(timeout);
        s.code().unwrap_or_else(|| {
            panic!(
                "{}: {}\n  stderr: {}",
                self.cmdline,
                describe_status(&s),
                self.stderr()
            )
        })
    }

    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }
}

impl Drop for Berth {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `berth --root ROOT ARGS...` for `env` with the given stdio, fds and
/// environment.
pub fn spawn(env: &Env, args: &[&str], how: Stdio3) -> Berth {
    let bin = berth_bin();
    let mut all = vec!["--root".to_string(), env.root.display().to_string()];
    all.extend(args.iter().map(|s| s.to_string()));
    let cmdline = render_cmdline(&bin, &all);
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let out = env.file(&format!("spawn-{n}.out"));
    let err = env.file(&format!("spawn-{n}.err"));
    // LISTEN_PID must be berth's own pid: a shell exports its $$ and execs berth.
    let mut cmd = if how.listen_pid {
        let mut c = Command::new("/bin/sh");
        c.arg("-c")
            .arg("export LISTEN_PID=$$; exec \"$0\" \"$@\"")
            .arg(&bin);
        c
    } else {
        Command::new(&bin)
    };
    cmd.args(&all);
    for (k, v) in &how.env {
        cmd.env(k, v);
    }
    match how.pty {
        Some(p) => {
            let s = || Stdio::from(p.slave.try_clone().expect("dup slave"));
            cmd.stdin(s()).stdout(s()).stderr(s());
        }
        None => {
            cmd.stdin(Stdio::null())
                .stdout(File::create(&out).expect("stdout file"))
                .stderr(File::create(&err).expect("stderr file"));
        }
    }
    // Each source fd is moved above every target first: File::open may hand
    // out a target number itself (fd 3 is free whenever no other test thread
    // holds it), and dup2(3, 3) would leave it CLOEXEC, so that berth would
    // not get it; or a later dup2 could overwrite a source not yet moved.
    let above = how.fds.iter().map(|(t, _)| *t).max().unwrap_or(2) + 1;
    let mut files: Vec<(RawFd, OwnedFd)> = Vec::new();
    for (target, path) in &how.fds {
        let f = File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
        let moved = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_DUPFD_CLOEXEC, above.max(64)) };
        assert!(moved >= 0, "dup {}: {}", path.display(), io::Error::last_os_error());
        files.push((*target, unsafe { OwnedFd::from_raw_fd(moved) }));
    }
    let with_tty = how.pty.is_some();
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            if with_tty && libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(io::Error::last_os_error());
            }
            for (target, fd) in &files {
                if libc::dup2(fd.as_raw_fd(), *target) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmdline}: {e}"));
    Berth {
        cmdline,
        child,
        out,
        err,
    }
}
