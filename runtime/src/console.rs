//! Terminals (`process.terminal: true`).
//!
//! The pty is created by the container process itself (init, or the process
//! `exec` starts) once its root is the container's: it opens the container's
//! `/dev/ptmx`, so the pty lives in the container's devpts instance. Its
//! slave becomes the process's stdio and controlling terminal (init also gets
//! it bind-mounted on `/dev/console`); its master goes out over a unix socket
//! with SCM_RIGHTS, as runc does:
//!
//! ```text
//!  berth                          container process
//!  ─────                          ─────────────────
//!  connect(--console-socket)      [after pivot / after joining the mount ns]
//!   or socketpair (foreground)    open /dev/ptmx, unlock, TIOCGPTPEER → slave
//!  clone ───────────────────────▶ consoleSize, chown slave to process.user,
//!                                 [init: bind slave on /dev/console]
//!              (name, master fd) ◀ sendmsg SCM_RIGHTS; close master
//!                                 slave → 0, 1, 2; TIOCSCTTY
//! ```
//!
//! With `--console-socket` the caller (containerd, conmon, ...) receives the
//! master. A foreground `run` or `exec` without one receives it itself and
//! runs a [`Proxy`]: berth's terminal in raw mode (restored on exit), bytes
//! copied both ways, SIGWINCH turned into a resize of the pty.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::error::{Error, Result};
use crate::sys::cvt;

/// The name sent with the master fd (runc sends the master's path too).
const MASTER_NAME: &[u8] = b"/dev/ptmx";

/// runc's rules for `--console-socket`: needed exactly when the process has
/// a terminal and berth detaches (`create`, `run -d`, `exec -d`); a
/// foreground `run`/`exec` proxies the terminal itself.
pub fn check_flags(terminal: bool, detached: bool, socket: Option<&Path>) -> Result<()> {
    match (terminal, detached, socket) {
        (true, true, None) => Err(Error::Usage(
            "process.terminal is true and berth detaches (create, run -d, exec -d): \
             give --console-socket to receive the terminal"
                .into(),
        )),
        (false, _, Some(_)) => Err(Error::Usage(
            "--console-socket: the process has no terminal (process.terminal is false; exec takes -t)".into(),
        )),
        (true, false, Some(_)) => Err(Error::Usage(
            "--console-socket: only for a detached container or process (create, run -d, exec -d); \
             in the foreground berth proxies the terminal itself"
                .into(),
        )),
        _ => Ok(()),
    }
}

/// Connect to the `--console-socket` (a SOCK_STREAM unix socket, as runc
/// dials it).
pub fn connect(path: &Path) -> Result<OwnedFd> {
    let err = |e: io::Error| Error::os(format!("--console-socket {}", path.display()), e);
    // SAFETY: socket takes integer arguments and returns a new fd or -1 (cvt checks it).
    let fd = cvt(unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) })
        .map_err(err)?;
    // SAFETY: fd is the new socket cvt just checked; nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let bytes = path.as_os_str().as_bytes();
    // SAFETY: sockaddr_un is plain data; all-zero is a valid (empty) address.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    if bytes.len() >= addr.sun_path.len() {
        return Err(err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "socket path too long",
        )));
    }
    for (d, s) in addr.sun_path.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    let len = (std::mem::size_of::<libc::sa_family_t>() + bytes.len() + 1) as libc::socklen_t;
    loop {
        // SAFETY: `addr` is a live sockaddr_un and `len` stays within it (the path was
        // checked to fit with its NUL above); connect only reads it.
        let r = unsafe {
            libc::connect(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_un).cast(),
                len,
            )
        };
        if r == 0 {
            return Ok(fd);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(err(e));
        }
    }
}

/// A connected pair for a foreground `run`/`exec`: (berth's end, the
/// container process's end).
pub fn pair() -> Result<(OwnedFd, OwnedFd)> {
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    socketpair(AddressFamily::Unix, SockType::Stream, None, SockFlag::SOCK_CLOEXEC)
        .map_err(|e| Error::os("console socketpair", io::Error::from(e)))
}

/// Send `fd` with `name` as the payload (SCM_RIGHTS).
pub fn send_fd(sock: BorrowedFd, name: &[u8], fd: BorrowedFd) -> io::Result<()> {
    crate::sys::send_with_fd(sock.as_raw_fd(), name, fd.as_raw_fd()).map(drop)
}

/// Receive one fd sent with [`send_fd`].
pub fn recv_fd(sock: BorrowedFd) -> io::Result<OwnedFd> {
    crate::sys::recv_fd(sock.as_raw_fd())
}

/// What the container process needs to make its terminal.
pub struct InContainer<'a> {
    /// Where the master goes.
    pub socket: BorrowedFd<'a>,
    /// `process.consoleSize` (height, width); applied when both are non-zero.
    pub size: Option<(u16, u16)>,
    /// The uid the slave is given (the process's user), as runc does, so a
    /// non-root user can use its terminal.
    pub owner: u32,
    /// Bind the slave on /dev/console (init only).
    pub mount_console: bool,
}

/// In the container process, with the container's root as "/": make the pty,
/// send its master, make the slave stdio and the controlling terminal. The
/// caller must already be a session leader (setsid).
pub fn setup_in_container(t: &InContainer) -> Result<()> {
    let err = |what: &str, e: io::Error| Error::os(format!("process.terminal: {what}"), e);
    // SAFETY: a static NUL-terminated path; open returns a new fd or -1 (cvt checks it).
    let master = cvt(unsafe {
        libc::open(
            c"/dev/ptmx".as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    })
    .map_err(|e| {
        err(
            "open /dev/ptmx in the container (is devpts mounted at /dev/pts?)",
            e,
        )
    })?;
    // SAFETY: master is the new fd cvt just checked; nothing else owns it.
    let master = unsafe { OwnedFd::from_raw_fd(master) };
    check_ptmx(master.as_fd())?;
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads one c_int, and `unlock` is a live c_int.
    cvt(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) })
        .map_err(|e| err("unlockpt", e))?;
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes one c_uint, and `n` is a live c_uint.
    cvt(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut n) })
        .map_err(|e| err("ptsname", e))?;
    // The slave through the master, never by a path the container controls.
    // SAFETY: TIOCGPTPEER takes integer open flags and returns a new fd or -1.
    let slave = cvt(unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    })
    .map_err(|e| err("open the pty slave (TIOCGPTPEER)", e))?;
    // SAFETY: slave is the new fd TIOCGPTPEER returned (cvt checked it); nobody else owns it.
    let slave = unsafe { OwnedFd::from_raw_fd(slave) };
    if let Some((h, w)) = t.size.filter(|(h, w)| *h != 0 && *w != 0) {
        set_size(
            master.as_fd(),
            &libc::winsize {
                ws_row: h,
                ws_col: w,
                ws_xpixel: 0,
                ws_ypixel: 0,
            },
        )
        .map_err(|e| Error::os("process.consoleSize: TIOCSWINSZ", e))?;
    }
    if t.owner != 0 {
        // SAFETY: fchown takes integers only; the slave fd is open (owned by `slave`).
        let r = unsafe { libc::fchown(slave.as_raw_fd(), t.owner, u32::MAX) };
        if r != 0 {
            let e = io::Error::last_os_error();
            // Not mapped in this user namespace: leave it, as runc does.
            if !matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::EPERM)) {
                return Err(err("chown the pty slave to process.user.uid", e));
            }
        }
    }
    if t.mount_console {
        mount_console(slave.as_fd())?;
    }
    send_fd(t.socket, MASTER_NAME, master.as_fd())
        .map_err(|e| err("send the pty master over the console socket", e))?;
    drop(master);
    for target in 0..3 {
        // SAFETY: dup3 onto stdio numbers this process means to replace; no Rust value owns
        // 0..2 here, so no owner loses its fd behind its back.
        cvt(unsafe { libc::dup3(slave.as_raw_fd(), target, 0) })
            .map_err(|e| err("dup the pty slave to stdio", e))?;
    }
    drop(slave);
    // SAFETY: TIOCSCTTY takes an integer argument; fd 0 is the slave just dup'd there.
    cvt(unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) })
        .map_err(|e| err("make the pty the controlling terminal", e))?;
    Ok(())
}

/// Bind the pty slave on /dev/console (made, mode 0666, when missing).
/// Both ends are fds, never paths the container controls: the slave
/// itself (open_tree of the fd) onto /dev/console opened without following
/// a symlink in any component, so a /dev/console (or /dev) swapped for a
/// symlink cannot send the bind onto /proc or a host file (the class of
/// runc's CVE-2025-52565 and CVE-2026-41579).
fn mount_console(slave: BorrowedFd) -> Result<()> {
    use crate::sys;
    let merr = |what: &str, e: io::Error| Error::os(format!("process.terminal: {what}"), e);
    let root = sys::open(c"/", libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC).map_err(|e| merr("open /", e))?;
    let dev = sys::openat2(
        root.as_fd(),
        c"dev",
        libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        0,
        libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS | libc::RESOLVE_BENEATH,
    )
    .map_err(|e| merr("open /dev without following symlinks", e))?;
    // SAFETY: `dev` is an open directory fd and "console" a static C string; openat
    // returns a new fd or -1, checked below.
    let fd = unsafe {
        libc::openat(
            dev.as_raw_fd(),
            c"console".as_ptr(),
            libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            0o666,
        )
    };
    if fd >= 0 {
        // SAFETY: fd is the non-negative fd openat just returned and owned by no Rust value;
        // it is closed exactly once, here.
        unsafe {
            libc::fchmod(fd, 0o666);
            libc::close(fd);
        }
    } else {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EEXIST) {
            return Err(merr("create /dev/console", e));
        }
    }
    // SAFETY: `dev` is an open directory fd and "console" a static C string; openat
    // returns a new fd or -1 (cvt checks it).
    let target = cvt(unsafe {
        libc::openat(dev.as_raw_fd(), c"console".as_ptr(), libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC)
    })
    .map_err(|e| merr("open /dev/console", e))?;
    // SAFETY: target is the new fd cvt just checked; nothing else owns it.
    let target = unsafe { OwnedFd::from_raw_fd(target) };
    let st = sys::fstat(target.as_fd()).map_err(|e| merr("stat /dev/console", e))?;
    let kind = st.st_mode & libc::S_IFMT;
    if kind != libc::S_IFREG && kind != libc::S_IFCHR {
        return Err(Error::Rootfs(crate::rootfs::RootfsError::Config {
            at: "process.terminal".into(),
            msg: format!(
                "/dev/console in the container is not a file or a character device \
                 (mode {:o}); refusing to mount the console on it",
                st.st_mode
            ),
        }));
    }
    let tree = sys::open_tree_clone_fd(slave).map_err(|e| merr("open_tree of the pty slave", e))?;
    sys::move_mount_onto(tree.as_fd(), target.as_fd()).map_err(|e| merr("bind the pty slave on /dev/console", e))
}

/// The master must be the ptmx of a devpts instance (5:2 on devpts): a
/// /dev/ptmx or /dev/pts swapped for something else is refused.
fn check_ptmx(master: BorrowedFd) -> Result<()> {
    const DEVPTS_SUPER_MAGIC: libc::c_long = 0x1cd1;
    // SAFETY: statfs is plain integers; all-zero is a valid value, overwritten below.
    let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
    let st = crate::sys::fstat(master).map_err(|e| Error::os("process.terminal: stat /dev/ptmx", e))?;
    // SAFETY: `fs` is a live statfs the kernel fills; `master` is open for the call.
    let on_devpts = unsafe { libc::fstatfs(master.as_raw_fd(), &mut fs) } == 0 && fs.f_type as libc::c_long == DEVPTS_SUPER_MAGIC;
    if !on_devpts || st.st_mode & libc::S_IFMT != libc::S_IFCHR || st.st_rdev != libc::makedev(5, 2) {
        return Err(Error::Rootfs(crate::rootfs::RootfsError::Config {
            at: "process.terminal".into(),
            msg: "/dev/ptmx in the container is not a devpts ptmx (is /dev/pts a devpts mount?)".into(),
        }));
    }
    Ok(())
}

fn get_size(fd: BorrowedFd) -> io::Result<libc::winsize> {
    // SAFETY: winsize is four u16s; all-zero is a valid value.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes one winsize, and `ws` is a live winsize.
    cvt(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) })?;
    Ok(ws)
}

fn set_size(fd: BorrowedFd, ws: &libc::winsize) -> io::Result<()> {
    // SAFETY: TIOCSWINSZ reads one winsize, and `ws` is a live reference to one.
    cvt(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, ws) }).map(drop)
}

fn is_tty(fd: RawFd) -> bool {
    // SAFETY: isatty takes an fd number and reads no memory.
    unsafe { libc::isatty(fd) == 1 }
}

/// berth's own terminal, for a foreground `run -t` / `exec -t` without a
/// console socket. Restores its settings when dropped.
pub struct HostTerminal {
    /// One of berth's stdio fds, or /dev/tty opened.
    fd: RawFd,
    _owned: Option<OwnedFd>,
    saved: Option<libc::termios>,
}

impl HostTerminal {
    /// stderr, stdout or stdin, whichever is a terminal (as runc looks), else
    /// the controlling terminal through /dev/tty.
    pub fn find() -> Result<HostTerminal> {
        for fd in [2, 1, 0] {
            if is_tty(fd) {
                return Ok(HostTerminal {
                    fd,
                    _owned: None,
                    saved: None,
                });
            }
        }
        // SAFETY: a static NUL-terminated path; open returns a new fd or -1 (cvt checks it).
        let fd = cvt(unsafe { libc::open(c"/dev/tty".as_ptr(), libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) })
            .map_err(|e| {
                Error::os(
                    "process.terminal: berth's stdin, stdout and stderr are not terminals \
                     (give --console-socket and --detach, or run berth on a terminal), and /dev/tty",
                    e,
                )
            })?;
        Ok(HostTerminal {
            fd,
            // SAFETY: fd is the new fd cvt just checked; nothing else owns it.
            _owned: Some(unsafe { OwnedFd::from_raw_fd(fd) }),
            saved: None,
        })
    }

    fn set_raw(&mut self) -> io::Result<()> {
        // SAFETY: termios is plain data; all-zero is a valid value, overwritten by tcgetattr.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: `t` is a live termios that tcgetattr fills; self.fd is open while self lives.
        cvt(unsafe { libc::tcgetattr(self.fd, &mut t) })?;
        let saved = t;
        // SAFETY: cfmakeraw only edits the flags of the live, initialised `t`.
        unsafe { libc::cfmakeraw(&mut t) };
        // SAFETY: `t` is a live, initialised termios that tcsetattr only reads.
        cvt(unsafe { libc::tcsetattr(self.fd, libc::TCSANOW, &t) })?;
        self.saved = Some(saved);
        Ok(())
    }
}

impl Drop for HostTerminal {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            // SAFETY: `t` is the termios tcgetattr filled; self.fd is still open (dropped after).
            unsafe { libc::tcsetattr(self.fd, libc::TCSANOW, t) };
        }
    }
}

/// Copies berth's stdin to the pty master and the master to berth's stdout,
/// from the single-threaded wait loop of a foreground `run`/`exec`.
pub struct Proxy {
    master: OwnedFd,
    host: HostTerminal,
    /// Input read from stdin, not yet written to the master.
    pending: Vec<u8>,
    stdin_open: bool,
    master_open: bool,
    stdout_open: bool,
}

/// Indexes of the proxy's entries in a poll set.
pub struct PollSlots {
    stdin: Option<usize>,
    master: Option<usize>,
}

impl Proxy {
    /// Take over `master` (made non-blocking, sized like berth's terminal,
    /// which goes raw: the container's pty does the line discipline).
    pub fn start(master: OwnedFd, mut host: HostTerminal) -> Result<Proxy> {
        let m = master.as_raw_fd();
        // SAFETY: F_GETFL takes no pointer; `m` is open (owned by `master`).
        let fl = unsafe { libc::fcntl(m, libc::F_GETFL) };
        // SAFETY: F_SETFL takes integer flags only.
        cvt(unsafe { libc::fcntl(m, libc::F_SETFL, fl | libc::O_NONBLOCK) })
            .map_err(|e| Error::os("terminal master: O_NONBLOCK", e))?;
        host.set_raw()
            .map_err(|e| Error::os("set berth's terminal to raw mode", e))?;
        let p = Proxy {
            master,
            host,
            pending: Vec::new(),
            stdin_open: true,
            master_open: true,
            stdout_open: true,
        };
        p.resize();
        Ok(p)
    }

    /// Give the pty the size of berth's terminal (at start and on SIGWINCH;
    /// the kernel then signals the container's foreground process group).
    pub fn resize(&self) {
        // SAFETY: self.host.fd is one of berth's stdio fds or the /dev/tty fd that
        // self.host._owned keeps open for as long as `self`, which outlives `host`.
        let host = unsafe { BorrowedFd::borrow_raw(self.host.fd) };
        if let Ok(ws) = get_size(host) {
            if ws.ws_row != 0 || ws.ws_col != 0 {
                let _ = set_size(self.master.as_fd(), &ws);
            }
        }
    }

    /// Add the fds to wait for to a poll set.
    pub fn add_to(&self, fds: &mut Vec<libc::pollfd>) -> PollSlots {
        let mut slots = PollSlots {
            stdin: None,
            master: None,
        };
        if self.stdin_open && self.pending.is_empty() {
            slots.stdin = Some(fds.len());
            fds.push(libc::pollfd {
                fd: 0,
                events: libc::POLLIN,
                revents: 0,
            });
        }
        if self.master_open {
            let mut events = libc::POLLIN;
            if !self.pending.is_empty() {
                events |= libc::POLLOUT;
            }
            slots.master = Some(fds.len());
            fds.push(libc::pollfd {
                fd: self.master.as_raw_fd(),
                events,
                revents: 0,
            });
        }
        slots
    }

    /// Move what poll said is ready.
    pub fn on_ready(&mut self, fds: &[libc::pollfd], slots: &PollSlots) {
        if let Some(i) = slots.stdin {
            if fds[i].revents != 0 {
                self.read_stdin();
            }
        }
        if let Some(i) = slots.master {
            let r = fds[i].revents;
            if r & libc::POLLOUT != 0 {
                self.flush_input();
            }
            if r & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
                self.copy_output();
            }
        }
    }

    /// After the process exited: copy what is left in the pty.
    pub fn drain(&mut self) {
        if self.master_open {
            self.copy_output();
        }
    }

    fn read_stdin(&mut self) {
        let mut buf = [0u8; 4096];
        // SAFETY: `buf` is a live stack buffer and read writes at most buf.len() bytes.
        let n = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
        if n > 0 {
            self.pending.extend_from_slice(&buf[..n as usize]);
            self.flush_input();
        } else if n == 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            // EOF (or a broken stdin): the container keeps its terminal, as with runc.
            self.stdin_open = false;
        }
    }

    fn flush_input(&mut self) {
        while !self.pending.is_empty() {
            // SAFETY: `pending` is valid for pending.len() bytes and write only reads them.
            let n = unsafe {
                libc::write(
                    self.master.as_raw_fd(),
                    self.pending.as_ptr().cast(),
                    self.pending.len(),
                )
            };
            if n > 0 {
                self.pending.drain(..n as usize);
                continue;
            }
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::Interrupted => continue,
                io::ErrorKind::WouldBlock => return,
                _ => {
                    self.pending.clear();
                    return;
                }
            }
        }
    }

    fn copy_output(&mut self) {
        let mut buf = [0u8; 8192];
        loop {
            // SAFETY: `buf` is a live stack buffer and read writes at most buf.len() bytes.
            let n =
                unsafe { libc::read(self.master.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n > 0 {
                self.write_stdout(&buf[..n as usize]);
                continue;
            }
            if n < 0 {
                match io::Error::last_os_error().kind() {
                    io::ErrorKind::Interrupted => continue,
                    io::ErrorKind::WouldBlock => return,
                    _ => {}
                }
            }
            // EOF or EIO: every slave is closed.
            self.master_open = false;
            return;
        }
    }

    fn write_stdout(&mut self, mut data: &[u8]) {
        while self.stdout_open && !data.is_empty() {
            // SAFETY: `data` is valid for data.len() bytes and write only reads them.
            let n = unsafe { libc::write(1, data.as_ptr().cast(), data.len()) };
            if n > 0 {
                data = &data[n as usize..];
                continue;
            }
            match io::Error::last_os_error().kind() {
                _ if n == 0 => self.stdout_open = false,
                io::ErrorKind::Interrupted => {}
                io::ErrorKind::WouldBlock => {
                    // A non-blocking stdout shared with the caller: wait.
                    let mut p = libc::pollfd {
                        fd: 1,
                        events: libc::POLLOUT,
                        revents: 0,
                    };
                    // SAFETY: `p` is a live pollfd and nfds is 1.
                    unsafe { libc::poll(&mut p, 1, -1) };
                }
                _ => self.stdout_open = false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_socket_rules_are_runcs() {
        let p = Some(Path::new("/s"));
        assert!(check_flags(true, true, p).is_ok());
        assert!(check_flags(true, false, None).is_ok());
        assert!(check_flags(false, true, None).is_ok());
        assert!(check_flags(false, false, None).is_ok());
        assert!(check_flags(true, true, None).is_err());
        assert!(check_flags(false, true, p).is_err());
        assert!(check_flags(true, false, p).is_err());
    }

    #[test]
    fn fd_goes_over_the_socket_with_its_name() {
        let (a, b) = pair().unwrap();
        let f = std::fs::File::open("/proc/self/stat").unwrap();
        send_fd(a.as_fd(), MASTER_NAME, f.as_fd()).unwrap();
        let got = recv_fd(b.as_fd()).unwrap();
        let (s1, s2) = (
            std::fs::metadata(format!("/proc/self/fd/{}", f.as_raw_fd())).unwrap(),
            std::fs::metadata(format!("/proc/self/fd/{}", got.as_raw_fd())).unwrap(),
        );
        use std::os::unix::fs::MetadataExt;
        assert_eq!((s1.dev(), s1.ino()), (s2.dev(), s2.ino()));
        drop(a);
        assert!(recv_fd(b.as_fd()).is_err(), "EOF is an error, not a hang");
    }
}
