//! Running a client on a pseudo-terminal (`docker run -it`, `podman run
//! -t`): the client's stdin, stdout and stderr are the pty's slave, its
//! controlling terminal too; the test reads the master, waits for text and
//! types input.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A command running on a pty.
pub struct PtyRun {
    pub cmdline: String,
    master: File,
    child: Option<Child>,
    /// Everything read from the master so far.
    pub output: Vec<u8>,
}

impl PtyRun {
    /// Start `prog args` with `envs` on a new 24x80 pty, in a new session
    /// whose controlling terminal it is.
    pub fn start(prog: &Path, args: &[String], envs: &[(String, String)]) -> PtyRun {
        let mut master: libc::c_int = -1;
        let mut slave: libc::c_int = -1;
        let ws = libc::winsize { ws_row: 24, ws_col: 80, ws_xpixel: 0, ws_ypixel: 0 };
        // SAFETY: openpty fills two fds; the name buffer and termios are not used.
        let rc = unsafe { libc::openpty(&mut master, &mut slave, std::ptr::null_mut(), std::ptr::null(), &ws) };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: both fds were just opened and are owned here.
        let (master, slave) = unsafe { (File::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        let cmdline = crate::harness::render_cmdline(prog, args);
        let mut cmd = Command::new(prog);
        cmd.args(args)
            .envs(envs.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::from(slave.try_clone().expect("dup pty slave")))
            .stdout(Stdio::from(slave.try_clone().expect("dup pty slave")))
            .stderr(Stdio::from(slave));
        // SAFETY: setsid and ioctl are async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot spawn {cmdline}: {e}"));
        // the parent's copies of the slave were moved into `cmd` and are
        // closed with it
        drop(cmd);
        let fl = unsafe { libc::fcntl(master.as_raw_fd(), libc::F_GETFL) };
        unsafe { libc::fcntl(master.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK) };
        PtyRun { cmdline, master, child: Some(child), output: Vec::new() }
    }

    /// Read what is available within `wait`. Returns false once the slave
    /// side is closed by everyone (EIO).
    fn pump(&mut self, wait: Duration) -> bool {
        let mut pfd = libc::pollfd { fd: self.master.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut pfd, 1, wait.as_millis() as libc::c_int) };
        let mut buf = [0u8; 4096];
        loop {
            match self.master.read(&mut buf) {
                Ok(0) => return false,
                Ok(n) => self.output.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return false, // EIO: no slave left
            }
        }
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.output).into_owned()
    }

    /// Wait until the output holds `needle`; panics on timeout or if the
    /// command exits first.
    #[track_caller]
    pub fn expect(&mut self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let open = self.pump(Duration::from_millis(50));
            if self.text().contains(needle) {
                return;
            }
            let exited = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
            if !open || exited.is_some() || Instant::now() >= deadline {
                let why = match exited {
                    Some(s) => format!("it exited ({})", crate::harness::describe_status(&s)),
                    None if Instant::now() >= deadline => format!("timed out after {timeout:?}"),
                    None => "the pty closed".to_string(),
                };
                panic!("{needle:?} never showed on the terminal of {}: {why}; output: {:?}", self.cmdline, self.text());
            }
        }
    }

    /// Type `input` on the terminal.
    pub fn send(&mut self, input: &str) {
        self.master.write_all(input.as_bytes()).expect("write to pty master");
    }

    /// Wait for the command to exit (kill it after `timeout`), then read
    /// the rest of its output.
    #[track_caller]
    pub fn wait(mut self, timeout: Duration) -> (ExitStatus, String) {
        let deadline = Instant::now() + timeout;
        let mut child = self.child.take().expect("waited twice");
        let status = loop {
            self.pump(Duration::from_millis(20));
            if let Some(s) = child.try_wait().expect("wait for pty command") {
                break s;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("timed out after {timeout:?}, killed: {}; output: {:?}", self.cmdline, self.text());
            }
        };
        let drain = Instant::now() + Duration::from_millis(500);
        while self.pump(Duration::from_millis(20)) && Instant::now() < drain {}
        (status, self.text())
    }
}

impl Drop for PtyRun {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
