//! sd-notify for containers (runc's `notify_socket.go`): with `NOTIFY_SOCKET`
//! in berth's environment, the container gets a socket of its own and berth
//! passes its READY=1 on to the caller's socket once the container runs.
//!
//! ```text
//!  create  (CreateOptions::notify_socket)  <state>/notify/ (0755), bind-mounted
//!          read-only (nosuid, nodev, noexec) on /run/notify in the container;
//!          process.env gets NOTIFY_SOCKET=/run/notify/notify.sock
//!  start / run   bind <state>/notify/notify.sock (0777) before init is released,
//!          then wait for a datagram with a READY= line, or init's exit
//!  READY   to the caller's socket: "READY=1\n", "MAINPID=<pid>\n", then
//!          "BARRIER=1" with a pipe's write end; wait (at most 30 s) for EOF
//! ```
//!
//! MAINPID is init's pid for `start` and `run -d`, berth's own for a
//! foreground `run` (systemd then watches berth, which exits with the
//! container), as runc sends it. Other lines (STATUS=, ...) are not passed
//! on, as in runc. A container that never sends READY: berth waits until its
//! init exits, as runc does (systemd's TimeoutStartSec bounds the unit), then
//! returns without sending anything. Unlike runc, a foreground `run` also
//! stops waiting when init exits (runc watches its own pid there, so it
//! never returns), and a READY= line is found anywhere in the datagram (runc
//! looks at its start only). No thread: one poll on the socket and init's
//! pidfd.

use std::fs;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::Duration;

use oci_spec::runtime::{Mount, Spec};

use crate::error::{Error, Result};

use super::Container;

/// The directory in the state dir that the container sees as [`IN_CONTAINER_DIR`].
const DIR: &str = "notify";
const SOCKET: &str = "notify.sock";
const IN_CONTAINER_DIR: &str = "/run/notify";
/// The container's NOTIFY_SOCKET.
pub const IN_CONTAINER: &str = "/run/notify/notify.sock";
/// How long berth waits for the caller to acknowledge BARRIER=1 (runc's 30 s).
const BARRIER_TIMEOUT: Duration = Duration::from_secs(30);

/// Give the container its notify socket in `spec` (runc's `setupSpec`): the
/// bind mount of `<state_dir>/notify` on /run/notify and NOTIFY_SOCKET in
/// process.env (replacing one the config sets).
pub(super) fn add_to_spec(spec: &mut Spec, state_dir: &Path) -> Result<()> {
    let mount = oci_spec::runtime::MountBuilder::default()
        .destination(IN_CONTAINER_DIR)
        .typ("bind")
        .source(state_dir.join(DIR))
        .options(
            ["bind", "nosuid", "noexec", "nodev", "ro"]
                .map(String::from)
                .to_vec(),
        )
        .build()
        .map_err(|e| {
            Error::os(
                "build the notify socket's mount",
                io::Error::other(e.to_string()),
            )
        })?;
    let mut mounts: Vec<Mount> = spec.mounts().clone().unwrap_or_default();
    mounts.push(mount);
    spec.set_mounts(Some(mounts));
    if let Some(p) = spec.process_mut() {
        let mut env: Vec<String> = p.env().clone().unwrap_or_default();
        env.retain(|e| !e.starts_with("NOTIFY_SOCKET="));
        env.push(format!("NOTIFY_SOCKET={IN_CONTAINER}"));
        p.set_env(Some(env));
    }
    Ok(())
}

/// Make `<state_dir>/notify` (create, before init mounts it).
pub(super) fn make_dir(state_dir: &Path) -> Result<()> {
    let dir = state_dir.join(DIR);
    fs::DirBuilder::new()
        .mode(0o755)
        .create(&dir)
        .map_err(|e| Error::path("create notify socket directory", &dir, e))
}

/// The container's notify socket, bound, and where READY goes.
pub struct NotifyProxy {
    sock: UnixDatagram,
    host: PathBuf,
    /// init's pidfd (None: no pidfd on this kernel; /proc is polled).
    pidfd: Option<OwnedFd>,
    pid: i32,
}

impl Container {
    /// Bind the container's notify socket so its READY can be passed on to
    /// `host` ([`NotifyProxy::forward_ready`]); call before
    /// [`Container::start`]. None when it was created without
    /// [`super::CreateOptions::notify_socket`] (it has no socket to send to).
    pub fn notify_proxy(&self, host: &Path) -> Result<Option<NotifyProxy>> {
        let (dir, state) = self.locked()?;
        let ndir = dir.path.join(DIR);
        if !ndir.is_dir() {
            log::debug!(
                "{}: NOTIFY_SOCKET is set but create made no notify socket",
                self.id
            );
            return Ok(None);
        }
        let path = ndir.join(SOCKET);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(Error::path("remove", &path, e))
            }
            _ => {}
        }
        let sock =
            UnixDatagram::bind(&path).map_err(|e| Error::path("bind notify socket", &path, e))?;
        // Any user in the container may notify (runc: 0777).
        fs::set_permissions(&path, fs::Permissions::from_mode(0o777))
            .map_err(|e| Error::path("chmod notify socket", &path, e))?;
        sock.set_nonblocking(true)
            .map_err(|e| Error::path("set nonblocking", &path, e))?;
        let pidfd = match self.init.as_ref().and_then(|i| i.pidfd.as_ref()) {
            Some(fd) => Some(
                fd.try_clone()
                    .map_err(|e| Error::os("dup init's pidfd", e))?,
            ),
            None => state.init_pidfd(),
        };
        Ok(Some(NotifyProxy {
            sock,
            host: host.to_path_buf(),
            pidfd,
            pid: state.pid,
        }))
    }
}

impl NotifyProxy {
    /// Wait until the container sends a READY= line, then pass it on with
    /// `MAINPID=mainpid` and a barrier; or until init exits (then nothing
    /// is sent). Call after [`Container::start`], without the container's
    /// lock (drop the [`Container`]): this may take as long as the container runs.
    pub fn forward_ready(self, mainpid: i32) -> Result<()> {
        let Some(ready) = self.wait_ready()? else {
            log::debug!("notify socket: init {} exited before READY", self.pid);
            return Ok(());
        };
        let host = UnixDatagram::unbound().map_err(|e| Error::os("notify socket", e))?;
        let to = |e| Error::path("send to NOTIFY_SOCKET", &self.host, e);
        host.connect(&self.host).map_err(to)?;
        host.send(format!("{ready}\n").as_bytes()).map_err(to)?;
        host.send(format!("MAINPID={mainpid}\n").as_bytes())
            .map_err(to)?;
        barrier(&host).map_err(to)
    }

    /// The READY= line, or None once init has exited.
    fn wait_ready(&self) -> Result<Option<String>> {
        let mut buf = vec![0u8; 4096];
        loop {
            loop {
                match self.sock.recv(&mut buf) {
                    Ok(n) => {
                        if let Some(l) = ready_line(&buf[..n]) {
                            return Ok(Some(l));
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(Error::os("receive on the container's notify socket", e)),
                }
            }
            let mut fds = [
                libc::pollfd {
                    fd: self.sock.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: self.pidfd.as_ref().map_or(-1, |f| f.as_raw_fd()),
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            // Without a pidfd, look at /proc every 100 ms (runc's ticker).
            let timeout = if self.pidfd.is_some() { -1 } else { 100 };
            // SAFETY: `fds` is a live array of two pollfds and nfds is 2; a
            // negative fd is ignored by poll.
            let r = unsafe { libc::poll(fds.as_mut_ptr(), 2, timeout) };
            if r < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(Error::os("poll the container's notify socket", e));
            }
            let exited = match &self.pidfd {
                Some(_) => fds[1].revents != 0,
                None => !Path::new(&format!("/proc/{}", self.pid)).exists(),
            };
            // A READY sent just before the exit still counts.
            if exited && fds[0].revents & libc::POLLIN == 0 {
                return Ok(None);
            }
        }
    }
}

/// The READY= line of one datagram, if it has one (sd_notify(3) puts one
/// assignment on each line).
fn ready_line(datagram: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(datagram);
    text.lines()
        .find(|l| l.starts_with("READY="))
        .map(str::to_string)
}

/// sd_notify_barrier: send BARRIER=1 with a pipe's write end and wait until
/// the receiver closes it (at most [`BARRIER_TIMEOUT`]; a receiver that does
/// not know the protocol is only logged, as runc does).
fn barrier(host: &UnixDatagram) -> io::Result<()> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    crate::sys::send_with_fd(host.as_raw_fd(), b"BARRIER=1", w.as_raw_fd())?;
    drop(w);
    let mut p = libc::pollfd {
        fd: r.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let deadline = std::time::Instant::now() + BARRIER_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            log::warn!(
                "NOTIFY_SOCKET: no answer to BARRIER=1 after {}s; ignored",
                BARRIER_TIMEOUT.as_secs()
            );
            return Ok(());
        }
        // SAFETY: `p` is a live pollfd and nfds is 1.
        let n = unsafe { libc::poll(&mut p, 1, left.as_millis() as i32) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n > 0 {
            // POLLHUP: the receiver closed the write end (it never writes).
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_line_is_found_on_any_line_and_only_there() {
        assert_eq!(ready_line(b"READY=1").as_deref(), Some("READY=1"));
        assert_eq!(
            ready_line(b"STATUS=up\nREADY=1\n").as_deref(),
            Some("READY=1")
        );
        assert_eq!(ready_line(b"STATUS=READY=1\nMAINPID=7"), None);
        assert_eq!(ready_line(b""), None);
    }

    #[test]
    fn spec_gets_the_mount_and_one_notify_socket() {
        let mut spec = Spec::default();
        let mut p = spec.process().clone().unwrap_or_default();
        p.set_env(Some(vec![
            "PATH=/bin".into(),
            "NOTIFY_SOCKET=/elsewhere".into(),
        ]));
        spec.set_process(Some(p));
        let before = spec.mounts().as_ref().map_or(0, |m| m.len());
        add_to_spec(&mut spec, Path::new("/run/berth/c1")).unwrap();
        let env = spec.process().as_ref().unwrap().env().clone().unwrap();
        assert_eq!(
            env,
            vec![
                "PATH=/bin".to_string(),
                format!("NOTIFY_SOCKET={IN_CONTAINER}")
            ]
        );
        let mounts = spec.mounts().as_ref().unwrap();
        assert_eq!(mounts.len(), before + 1);
        let m = mounts.last().unwrap();
        assert_eq!(m.destination(), Path::new("/run/notify"));
        assert_eq!(
            m.source().as_deref(),
            Some(Path::new("/run/berth/c1/notify"))
        );
        let opts = m.options().clone().unwrap();
        for o in ["bind", "ro", "nosuid", "nodev", "noexec"] {
            assert!(opts.iter().any(|x| x == o), "{o} missing from {opts:?}");
        }
    }
}
