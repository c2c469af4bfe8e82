//! A connection to a message bus: a non-blocking unix socket, SASL
//! EXTERNAL, Hello, then method calls and signals. Nothing here blocks
//! without a bound: every step polls with what is left of its deadline,
//! so a bus (or systemd behind it) that does not answer ends the call with
//! [`DbusError::Timeout`]. No threads.
//!
//! After an error other than an error reply the connection is spent (a
//! message may be half written or half read): later calls fail at once.

use std::collections::VecDeque;
use std::io::{ErrorKind as IoKind, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{
    connect, send, socket, AddressFamily, MsgFlags, SockFlag, SockType, UnixAddr,
};

use super::message::{decode, frame_len, Kind, Message};
use super::wire::Value;
use super::DbusError;

/// The system bus when `$DBUS_SYSTEM_BUS_ADDRESS` does not name one.
pub const SYSTEM_BUS: &str = "/run/dbus/system_bus_socket";

/// The socket path of the system bus: `$DBUS_SYSTEM_BUS_ADDRESS`'s first
/// `unix:path=` entry, else [`SYSTEM_BUS`].
pub fn system_bus_path() -> Result<PathBuf, DbusError> {
    match std::env::var("DBUS_SYSTEM_BUS_ADDRESS") {
        Ok(addr) if !addr.is_empty() => parse_address(&addr),
        _ => Ok(PathBuf::from(SYSTEM_BUS)),
    }
}

/// The socket path of the user's bus (the bus of the user's systemd
/// instance), as runc finds it: `$DBUS_SESSION_BUS_ADDRESS`'s first
/// `unix:path=` entry, else `$XDG_RUNTIME_DIR/bus`, else
/// `/run/user/UID/bus` for the caller's uid as the bus sees it
/// ([`bus_uid`]).
pub fn session_bus_path() -> Result<PathBuf, DbusError> {
    if let Ok(addr) = std::env::var("DBUS_SESSION_BUS_ADDRESS") {
        if !addr.is_empty() {
            return parse_address(&addr);
        }
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) if !d.is_empty() => Ok(Path::new(&d).join("bus")),
        _ => Ok(PathBuf::from(format!("/run/user/{}/bus", bus_uid()))),
    }
}

/// The caller's euid as a bus in the initial user namespace sees it (the
/// kernel gives the bus the socket peer's uid there): the euid itself,
/// or, in a user namespace (root of rootless Podman's), the id it maps to
/// in /proc/self/uid_map. SASL EXTERNAL must send this uid, or the bus
/// refuses the connection.
pub fn bus_uid() -> u32 {
    let euid = nix::unistd::geteuid().as_raw();
    std::fs::read_to_string("/proc/self/uid_map")
        .ok()
        .and_then(|m| outer_uid(&m, euid))
        .unwrap_or(euid)
}

/// `uid` of this namespace as the parent namespace sees it, from a
/// uid_map text (`inside outside count` lines); None if no line maps it.
pub fn outer_uid(uid_map: &str, uid: u32) -> Option<u32> {
    uid_map.lines().find_map(|line| {
        let n: Vec<u64> = line.split_whitespace().filter_map(|w| w.parse().ok()).collect();
        let [inside, outside, count] = n[..] else {
            return None;
        };
        let uid = u64::from(uid);
        (uid >= inside && uid - inside < count)
            .then(|| u32::try_from(outside + (uid - inside)).ok())
            .flatten()
    })
}

/// The path of the first `unix:path=` entry of a bus address.
pub fn parse_address(addr: &str) -> Result<PathBuf, DbusError> {
    for entry in addr.split(';') {
        let Some(params) = entry.strip_prefix("unix:") else {
            continue;
        };
        for kv in params.split(',') {
            if let Some(p) = kv.strip_prefix("path=") {
                return unescape(p)
                    .map(PathBuf::from)
                    .ok_or_else(|| DbusError::Address(addr.to_string()));
            }
        }
    }
    Err(DbusError::Address(addr.to_string()))
}

/// Undo a bus address's %XX escapes.
fn unescape(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A connection to a bus.
pub struct Connection {
    sock: UnixStream,
    rbuf: Vec<u8>,
    serial: u32,
    /// Signals read while waiting for a reply.
    signals: VecDeque<Message>,
    /// The unique name the bus gave us.
    pub unique_name: String,
    timeout: Duration,
    spent: bool,
}

impl Connection {
    /// Connect to the bus at `path`, authenticate and say Hello, all within
    /// `timeout` (which is also the bound of every later call).
    pub fn open(path: &Path, timeout: Duration) -> Result<Connection, DbusError> {
        let call = format!("Hello on {}", path.display());
        let deadline = Instant::now() + timeout;
        let sock = connect_unix(path, deadline).map_err(|source| DbusError::Connect {
            path: path.to_path_buf(),
            source,
        })?;
        let mut c = Connection {
            sock,
            rbuf: Vec::new(),
            serial: 0,
            signals: VecDeque::new(),
            unique_name: String::new(),
            timeout,
            spent: false,
        };
        c.auth(&call, deadline)?;
        let hello = Message::call(
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "Hello",
            vec![],
        );
        let reply = c.call_until(hello, &call, deadline)?;
        c.unique_name = reply.first_str().to_string();
        Ok(c)
    }

    /// SASL EXTERNAL with our euid as the bus sees it ([`bus_uid`]);
    /// BEGIN goes out with Hello.
    fn auth(&mut self, call: &str, deadline: Instant) -> Result<(), DbusError> {
        let uid = bus_uid().to_string();
        let hex: String = uid.bytes().map(|b| format!("{b:02x}")).collect();
        self.write_all(
            format!("\0AUTH EXTERNAL {hex}\r\n").as_bytes(),
            call,
            deadline,
        )?;
        let line = self.read_line(call, deadline)?;
        if !line.starts_with("OK ") {
            self.spent = true;
            return Err(DbusError::Auth {
                call: call.into(),
                line,
            });
        }
        self.write_all(b"BEGIN\r\n", call, deadline)
    }

    fn read_line(&mut self, call: &str, deadline: Instant) -> Result<String, DbusError> {
        loop {
            if let Some(end) = self.rbuf.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.rbuf.drain(..end + 2).collect();
                return Ok(String::from_utf8_lossy(&line[..end]).into_owned());
            }
            if self.rbuf.len() > 1024 {
                return Err(self.fail(DbusError::Garbage {
                    call: call.into(),
                    what: "authentication line over 1 KiB".into(),
                }));
            }
            self.fill(call, deadline)?;
        }
    }

    /// Call a method and wait for its reply (a Return; an Error reply is
    /// [`DbusError::Remote`]). `call` names the call in errors.
    pub fn call(&mut self, msg: Message, call: &str) -> Result<Message, DbusError> {
        let deadline = Instant::now() + self.timeout;
        self.call_until(msg, call, deadline)
    }

    fn call_until(
        &mut self,
        mut msg: Message,
        call: &str,
        deadline: Instant,
    ) -> Result<Message, DbusError> {
        if self.spent {
            return Err(DbusError::Spent { call: call.into() });
        }
        self.serial = self.serial.wrapping_add(1).max(1);
        msg.serial = self.serial;
        self.write_all(&msg.encode(), call, deadline)?;
        loop {
            let m = self.read_message(call, deadline)?;
            match m.kind {
                Kind::Return | Kind::Error if m.reply_serial == Some(msg.serial) => {
                    if m.kind == Kind::Error {
                        let name = m.error_name.clone().unwrap_or_default();
                        return Err(DbusError::Remote {
                            call: call.into(),
                            name,
                            message: m.first_str().into(),
                        });
                    }
                    return Ok(m);
                }
                Kind::Signal => self.signals.push_back(m),
                // Replies to calls that timed out, calls to us: not ours to answer.
                _ => {}
            }
        }
    }

    /// Send a message without waiting for anything (a reply to a call).
    pub fn send(&mut self, mut msg: Message, call: &str) -> Result<(), DbusError> {
        if self.spent {
            return Err(DbusError::Spent { call: call.into() });
        }
        self.serial = self.serial.wrapping_add(1).max(1);
        msg.serial = self.serial;
        let deadline = Instant::now() + self.timeout;
        self.write_all(&msg.encode(), call, deadline)
    }

    /// The next message that `want` accepts (signals queued during calls
    /// first), within the connection's timeout; others are dropped.
    pub fn wait_for(
        &mut self,
        call: &str,
        want: &dyn Fn(&Message) -> bool,
    ) -> Result<Message, DbusError> {
        if let Some(i) = self.signals.iter().position(want) {
            return Ok(self.signals.remove(i).expect("index from position"));
        }
        let deadline = Instant::now() + self.timeout;
        loop {
            let m = self.read_message(call, deadline)?;
            if want(&m) {
                return Ok(m);
            }
        }
    }

    /// AddMatch: ask the bus for the signals `rule` selects.
    pub fn add_match(&mut self, rule: &str) -> Result<(), DbusError> {
        let m = Message::call(
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "AddMatch",
            vec![Value::str(rule)],
        );
        self.call(m, "AddMatch").map(drop)
    }

    fn read_message(&mut self, call: &str, deadline: Instant) -> Result<Message, DbusError> {
        loop {
            if let Some(head) = self.rbuf.get(..16) {
                let head: &[u8; 16] = head.try_into().expect("16 bytes");
                let len = frame_len(head).map_err(|e| {
                    self.fail(DbusError::Garbage {
                        call: call.into(),
                        what: e.0,
                    })
                })?;
                if self.rbuf.len() >= len {
                    let frame: Vec<u8> = self.rbuf.drain(..len).collect();
                    return decode(&frame).map_err(|e| {
                        self.fail(DbusError::Garbage {
                            call: call.into(),
                            what: e.0,
                        })
                    });
                }
            }
            self.fill(call, deadline)?;
        }
    }

    /// Read what is there, waiting at most until `deadline`.
    fn fill(&mut self, call: &str, deadline: Instant) -> Result<(), DbusError> {
        self.wait(PollFlags::POLLIN, call, deadline)?;
        let mut buf = [0u8; 4096];
        match self.sock.read(&mut buf) {
            Ok(0) => Err(self.fail(DbusError::Closed { call: call.into() })),
            Ok(n) => {
                self.rbuf.extend_from_slice(&buf[..n]);
                Ok(())
            }
            Err(e) if matches!(e.kind(), IoKind::WouldBlock | IoKind::Interrupted) => Ok(()),
            Err(e) if e.kind() == IoKind::ConnectionReset => {
                Err(self.fail(DbusError::Closed { call: call.into() }))
            }
            Err(source) => Err(self.fail(DbusError::Io {
                call: call.into(),
                source,
            })),
        }
    }

    fn write_all(
        &mut self,
        mut data: &[u8],
        call: &str,
        deadline: Instant,
    ) -> Result<(), DbusError> {
        while !data.is_empty() {
            // MSG_NOSIGNAL: a bus that went away is EPIPE, not SIGPIPE.
            match send(self.sock.as_raw_fd(), data, MsgFlags::MSG_NOSIGNAL) {
                Ok(n) => data = &data[n..],
                Err(Errno::EAGAIN) => self.wait(PollFlags::POLLOUT, call, deadline)?,
                Err(Errno::EINTR) => {}
                Err(Errno::EPIPE | Errno::ECONNRESET) => {
                    return Err(self.fail(DbusError::Closed { call: call.into() }))
                }
                Err(e) => {
                    return Err(self.fail(DbusError::Io {
                        call: call.into(),
                        source: e.into(),
                    }))
                }
            }
        }
        Ok(())
    }

    /// Poll the socket for `ev` until `deadline`.
    fn wait(&mut self, ev: PollFlags, call: &str, deadline: Instant) -> Result<(), DbusError> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(self.fail(DbusError::Timeout {
                    call: call.into(),
                    timeout: self.timeout,
                }));
            }
            // Round up so a wait never ends a little before the deadline.
            let ms =
                PollTimeout::try_from(left.as_millis().saturating_add(1).min(i32::MAX as u128))
                    .unwrap_or(PollTimeout::MAX);
            let mut fds = [PollFd::new(self.sock.as_fd(), ev)];
            match poll(&mut fds, ms) {
                Ok(0) => continue,
                Ok(_) => return Ok(()),
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    return Err(self.fail(DbusError::Io {
                        call: call.into(),
                        source: e.into(),
                    }))
                }
            }
        }
    }

    fn fail(&mut self, e: DbusError) -> DbusError {
        self.spent = true;
        e
    }
}

/// Connect a non-blocking, close-on-exec stream socket to `path`; a bus
/// whose listen queue is full (EAGAIN) is retried until `deadline`.
fn connect_unix(path: &Path, deadline: Instant) -> std::io::Result<UnixStream> {
    let fd: OwnedFd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    let addr = UnixAddr::new(path)?;
    loop {
        match connect(fd.as_raw_fd(), &addr) {
            Ok(()) => return Ok(UnixStream::from(fd)),
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(Errno::EAGAIN) => {
                return Err(std::io::Error::new(
                    IoKind::TimedOut,
                    "the bus's listen queue stayed full",
                ))
            }
            Err(e) => return Err(e.into()),
        }
    }
}
