//! The server's side of the launcher: a single-threaded helper process
//! (`containerd-shim-berth-v2 launch`, see [`child`]) that runs every
//! berth operation on containers for the server. What the two sides send
//! each other is typed in [`protocol`].
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
//! The launcher runs from a sealed copy of the shim binary (a detached
//! read-only bind mount, else a sealed memfd: [`berth::seal`]),
//! executed with execveat: every process it forks (a container's init
//! before its execve, an exec child) has a `/proc/self/exe` that nobody can
//! write (CVE-2019-5736), so berth never needs to re-execute itself there.
//!
//! The launcher runs only while the server needs it: it is spawned for a
//! request when none is running, and the server closes its socket after
//! [`IDLE`] without requests in flight (the launcher exits on EOF). An idle
//! shim is then the server alone.
//!
//! Protocol ([`protocol`]). The server's SEQPACKET socketpair with the
//! launcher carries requests only: a [`Request`] with, as SCM_RIGHTS, the
//! reply socket (one end of a socketpair made for this request) and the
//! stdio fds (create, exec). The launcher forks a child per request and
//! reads on at once, so requests for different containers run side by side
//! (the server sends one at a time per container). The child replies on
//! the reply socket: an [`Answer`] with an fd (the new process's pidfd),
//! or a failure with its [`Kind`]. A child that dies without replying
//! closes the last copy of the reply socket: the server reads EOF and
//! fails the call. A child is killed (SIGALRM) after [`limit`]; the server
//! stops waiting shortly after.

pub mod child;
pub mod protocol;

use std::collections::HashSet;
use std::ffi::{CString, OsStr};
use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nix::sys::socket::{
    sendmsg, socketpair, AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType,
};

pub use protocol::{parse_reply, Answer, Cgroups, Op, Request};

/// How long the launcher outlives its last request.
pub const IDLE: Duration = Duration::from_secs(1);
/// The environment variable that sets [`limit`] (seconds), for hooks that
/// take longer; the shim inherits containerd's environment.
pub const LIMIT_VAR: &str = "BERTH_SHIM_REQUEST_LIMIT";

/// The longest a request may run (hooks included): its child is killed
/// then, and the call fails. 240 s, or `$BERTH_SHIM_REQUEST_LIMIT` seconds
/// (a positive whole number; another value is ignored with a warning).
pub fn limit() -> Duration {
    static LIMIT: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();
    *LIMIT.get_or_init(|| {
        let default = Duration::from_secs(240);
        let Some(v) = std::env::var_os(LIMIT_VAR) else {
            return default;
        };
        match v.to_str().and_then(|s| s.parse::<u32>().ok()) {
            Some(n) if n > 0 => Duration::from_secs(n.into()),
            _ => {
                log::warn!("{LIMIT_VAR}={v:?}: not a positive number of seconds; using 240");
                default
            }
        }
    })
}

/// The longest request or reply (one datagram; a longer one is refused).
pub const MAX_MESSAGE: usize = 1 << 16;

/// How much longer than [`limit`] the server waits for a reply.
const GRACE: Duration = Duration::from_secs(10);

/// What kind of failure a call reports (`kind` in the reply): the ttrpc
/// code the server answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    NotFound,
    Exists,
    WrongState,
    Invalid,
    /// A feature berth does not have.
    Unsupported,
    /// The kernel refused for lack of permission (EPERM, EACCES).
    Denied,
    /// Out of memory, space, processes (ENOMEM, ENOSPC, EAGAIN).
    Exhausted,
    /// A wait that ran out of time (ETIMEDOUT).
    TimedOut,
    Other,
    /// The request child died or ran out of time without replying: what it
    /// did is unknown.
    Lost,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::NotFound => "not_found",
            Kind::Exists => "exists",
            Kind::WrongState => "wrong_state",
            Kind::Invalid => "invalid",
            Kind::Unsupported => "unsupported",
            Kind::Denied => "denied",
            Kind::Exhausted => "exhausted",
            Kind::TimedOut => "timed_out",
            Kind::Other => "other",
            Kind::Lost => "lost",
        }
    }

    fn from_name(s: &str) -> Kind {
        [
            Kind::NotFound,
            Kind::Exists,
            Kind::WrongState,
            Kind::Invalid,
            Kind::Unsupported,
            Kind::Denied,
            Kind::Exhausted,
            Kind::TimedOut,
            Kind::Lost,
        ]
        .into_iter()
        .find(|k| k.name() == s)
        .unwrap_or(Kind::Other)
    }

    /// The kind of a berth error: by its kind, and for a failed system
    /// call (a cgroup file the kernel refused, a mount, init's errors
    /// alike) by its errno.
    pub fn of(e: &berth::Error) -> Kind {
        use berth::ErrorKind as K;
        match e.kind() {
            K::NotFound => Kind::NotFound,
            K::Exists => Kind::Exists,
            K::WrongState => Kind::WrongState,
            K::Config | K::Usage => Kind::Invalid,
            K::Unsupported => Kind::Unsupported,
            // A D-Bus timeout (systemd busy) has errno ETIMEDOUT.
            K::Cgroup | K::Mount | K::Os | K::Hook | K::Systemd => e.errno().map_or(Kind::Other, Kind::of_errno),
            K::Protocol | K::Internal | K::Unknown => Kind::Other,
        }
    }

    /// The kind of a failed system call.
    fn of_errno(errno: i32) -> Kind {
        match errno {
            libc::ENOENT | libc::ENODEV | libc::ESRCH => Kind::NotFound,
            libc::EEXIST => Kind::Exists,
            // memory.limit_in_bytes below the usage, a cgroup with tasks.
            libc::EBUSY => Kind::WrongState,
            libc::EINVAL | libc::ERANGE => Kind::Invalid,
            libc::EPERM | libc::EACCES => Kind::Denied,
            libc::ENOMEM
            | libc::ENOSPC
            | libc::EAGAIN
            | libc::EMFILE
            | libc::ENFILE
            | libc::EDQUOT => Kind::Exhausted,
            libc::ENOSYS | libc::EOPNOTSUPP => Kind::Unsupported,
            libc::ETIMEDOUT => Kind::TimedOut,
            _ => Kind::Other,
        }
    }
}

/// A failed call.
#[derive(Debug)]
pub struct Failure {
    pub kind: Kind,
    pub msg: String,
}

impl Failure {
    pub fn new(kind: Kind, msg: impl Into<String>) -> Failure {
        Failure {
            kind,
            msg: msg.into(),
        }
    }

    /// The ttrpc code for this failure.
    pub fn code(&self) -> ttrpc::Code {
        match self.kind {
            Kind::NotFound => ttrpc::Code::NOT_FOUND,
            Kind::Exists => ttrpc::Code::ALREADY_EXISTS,
            Kind::WrongState => ttrpc::Code::FAILED_PRECONDITION,
            Kind::Invalid => ttrpc::Code::INVALID_ARGUMENT,
            Kind::Unsupported => ttrpc::Code::UNIMPLEMENTED,
            Kind::Denied => ttrpc::Code::PERMISSION_DENIED,
            Kind::Exhausted => ttrpc::Code::RESOURCE_EXHAUSTED,
            Kind::TimedOut => ttrpc::Code::DEADLINE_EXCEEDED,
            Kind::Other | Kind::Lost => ttrpc::Code::UNKNOWN,
        }
    }
}

impl From<String> for Failure {
    fn from(msg: String) -> Failure {
        Failure::new(Kind::Other, msg)
    }
}

impl From<berth::Error> for Failure {
    fn from(e: berth::Error) -> Failure {
        Failure::new(Kind::of(&e), e.to_string())
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.msg)
    }
}

struct Live {
    sock: OwnedFd,
    pid: i32,
    last_used: Instant,
    /// Calls waiting for their reply: the launcher is not idle.
    calls: usize,
}

pub struct Launcher {
    namespace: String,
    address: String,
    live: Arc<Mutex<Option<Live>>>,
    /// Pids of launchers started (the reaper's exits for them are ours).
    pids: Mutex<HashSet<i32>>,
    /// The sealed copy of the shim binary the launcher runs from (when it
    /// is a read-only bind).
    exe: Mutex<Option<OwnedFd>>,
    /// Containers with a call in flight: one call at a time per container.
    busy: Mutex<HashSet<String>>,
    freed: Condvar,
}

/// A started process: pid, pidfd, and (create) the container's cgroups.
pub struct Started {
    pub pid: i32,
    pub pidfd: Option<OwnedFd>,
    pub cgroups: Option<Cgroups>,
}

/// What the service asks of the launcher: [`Launcher`], or a fake in the
/// service's tests.
pub trait Launch: Send + Sync {
    /// Run `req` in a request child, with `fds` (create and exec: stdio 0,
    /// 1, 2). The answer, and the fd it came with (a new process's pidfd).
    /// Calls for one container are run one at a time.
    fn call(&self, req: Request, fds: &[RawFd]) -> Result<(Answer, Option<OwnedFd>), Failure>;

    /// Was `pid` a launcher (its exit is not a container's)?
    fn owns(&self, pid: i32) -> bool;
}

/// The requests the service makes, typed.
impl dyn Launch {
    fn started(&self, req: Request, stdio: [RawFd; 3]) -> Result<Started, Failure> {
        match self.call(req, &stdio)? {
            (Answer::Created { pid, cgroups }, pidfd) => Ok(Started {
                pid,
                pidfd,
                cgroups: Some(cgroups),
            }),
            (Answer::Spawned { pid }, pidfd) => Ok(Started {
                pid,
                pidfd,
                cgroups: None,
            }),
            (a, _) => Err(unexpected(&a)),
        }
    }

    /// berth create; init is set up and blocked on exec.fifo.
    pub fn create(
        &self,
        root: &Path,
        id: &str,
        bundle: &Path,
        console: Option<&Path>,
        stdio: [RawFd; 3],
    ) -> Result<Started, Failure> {
        let op = Op::Create {
            bundle: bundle.into(),
            console: console.map(Into::into),
        };
        self.started(request(root, id, op), stdio)
    }

    /// berth exec --detach of the process.json at `process`.
    pub fn exec(
        &self,
        root: &Path,
        id: &str,
        process: &Path,
        console: Option<&Path>,
        stdio: [RawFd; 3],
    ) -> Result<Started, Failure> {
        let op = Op::Exec {
            process: process.into(),
            console: console.map(Into::into),
        };
        self.started(request(root, id, op), stdio)
    }

    /// An operation on container `id` that answers nothing: start, pause,
    /// resume, update, destroy, delete (forced).
    pub fn run(&self, root: &Path, id: &str, op: Op) -> Result<(), Failure> {
        match self.call(request(root, id, op), &[])? {
            (Answer::Done, _) => Ok(()),
            (a, _) => Err(unexpected(&a)),
        }
    }

    /// Container `id`'s metrics: the Any's type URL and value.
    pub fn stats(&self, root: &Path, id: &str) -> Result<(String, Vec<u8>), Failure> {
        match self.call(request(root, id, Op::Stats), &[])? {
            (Answer::Stats { type_url, value }, _) => Ok((type_url, value)),
            (a, _) => Err(unexpected(&a)),
        }
    }
}

fn request(root: &Path, id: &str, op: Op) -> Request {
    Request {
        root: root.into(),
        id: id.into(),
        op,
    }
}

fn unexpected(a: &Answer) -> Failure {
    Failure::from(format!("launcher reply: unexpected answer {a:?}"))
}

fn relock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Container `id`'s turn: taken while a call for it is in flight.
struct Turn<'a> {
    l: &'a Launcher,
    id: String,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        relock(&self.l.busy).remove(&self.id);
        self.l.freed.notify_all();
    }
}

/// A request sent to the launcher with pid `.1`: that launcher is kept
/// while the call waits.
struct InFlight<'a>(&'a Launcher, i32);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        // (Unless it died meanwhile and another replaced it.)
        if let Some(l) = relock(&self.0.live).as_mut().filter(|l| l.pid == self.1) {
            l.calls -= 1;
            l.last_used = Instant::now();
        }
    }
}

/// A C string of an OS string (argv, environment).
fn cstring(s: impl Into<std::ffi::OsString>) -> Result<CString, String> {
    CString::new(s.into().into_vec()).map_err(|_| "argument or environment contains NUL".into())
}

/// Pointers into C strings, handed to the launcher's child after fork.
struct Ptrs(Vec<*const libc::c_char>);
// SAFETY: the pointers are only read, in the forked child, while the
// strings they point to are alive in the spawning thread.
unsafe impl Send for Ptrs {}
// SAFETY: as for Send: the pointed-to strings are never written while shared.
unsafe impl Sync for Ptrs {}

impl Ptrs {
    fn of(v: &[CString]) -> Ptrs {
        let mut p: Vec<_> = v.iter().map(|s| s.as_ptr()).collect();
        p.push(std::ptr::null());
        Ptrs(p)
    }

    fn ptr(&self) -> *const *const libc::c_char {
        self.0.as_ptr()
    }
}

impl Launcher {
    pub fn new(namespace: &str, address: &str) -> Launcher {
        let live: Arc<Mutex<Option<Live>>> = Arc::new(Mutex::new(None));
        let watch = live.clone();
        let idle = move || loop {
            std::thread::sleep(IDLE / 2);
            let mut g = relock(&watch);
            if g.as_ref()
                .is_some_and(|l| l.calls == 0 && l.last_used.elapsed() >= IDLE)
            {
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
            exe: Mutex::new(None),
            busy: Mutex::new(HashSet::new()),
            freed: Condvar::new(),
        }
    }

    /// A sealed copy of the shim's main binary, numbered above 10 (clear
    /// of the fds the launcher is given). A read-only bind is made once and
    /// kept; a sealed memfd (kernels without mount_setattr) is a copy of
    /// the whole binary in memory, so it is made per launcher and goes
    /// with it.
    fn sealed_exe(&self, path: &Path) -> Result<OwnedFd, String> {
        let dup = |fd: &OwnedFd| {
            berth::seal::dup_above(fd, 10)
                .map_err(|e| format!("start the launcher: dup the sealed binary: {e}"))
        };
        let mut kept = relock(&self.exe);
        if let Some(fd) = kept.as_ref() {
            return dup(fd);
        }
        let fd = berth::seal::sealed_copy(path)
            .map_err(|e| format!("start the launcher: {e}"))?;
        let fd = dup(&fd)?;
        // SAFETY: F_GET_SEALS only reads the seals of an fd we own; no memory.
        let memfd = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) } >= 0;
        if !memfd {
            *kept = Some(dup(&fd)?);
        }
        Ok(fd)
    }

    /// Spawn the launcher (`containerd-shim-berth-v2 -namespace NS -address
    /// A launch`, executed from the sealed copy, the socket on fd 3). It
    /// exits when the socket closes: when the server closes it after
    /// [`IDLE`], or when the server is gone.
    fn spawn(&self) -> Result<(OwnedFd, i32), String> {
        let (parent, child) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|e| format!("socketpair: {e}"))?;
        let path = crate::sibling(crate::MAIN_BIN)?;
        let sealed = self.sealed_exe(&path)?;
        let exe = sealed.as_raw_fd();
        let args: [&OsStr; 6] = [
            path.as_os_str(),
            "-namespace".as_ref(),
            self.namespace.as_ref(),
            "-address".as_ref(),
            self.address.as_ref(),
            "launch".as_ref(),
        ];
        let argv = args
            .iter()
            .map(|a| cstring(*a))
            .collect::<Result<Vec<_>, _>>()?;
        let envp = std::env::vars_os()
            .map(|(k, v)| {
                let mut kv = k;
                kv.push("=");
                kv.push(v);
                cstring(kv)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let (argp, envpp) = (Ptrs::of(&argv), Ptrs::of(&envp));
        let mut cmd = std::process::Command::new(&path);
        cmd.stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null());
        let fd = child.as_raw_fd();
        // SAFETY: after fork only async-signal-safe calls (dup2, execveat)
        // on memory prepared before it.
        unsafe {
            cmd.pre_exec(move || {
                if libc::dup2(fd, 3) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::syscall(
                    libc::SYS_execveat,
                    exe,
                    c"".as_ptr(),
                    argp.ptr(),
                    envpp.ptr(),
                    libc::AT_EMPTY_PATH,
                );
                Err(std::io::Error::last_os_error())
            });
        }
        // The pid is recorded before the reaper can see its exit.
        let mut pids = relock(&self.pids);
        let c = cmd
            .spawn()
            .map_err(|e| format!("start the launcher {}: {e}", path.display()))?;
        pids.insert(c.id() as i32);
        drop((argv, envp, sealed));
        Ok((parent, c.id() as i32))
    }

    /// Wait for container `id`'s turn.
    fn turn(&self, id: &str) -> Turn<'_> {
        let mut busy = relock(&self.busy);
        while busy.contains(id) {
            busy = self.freed.wait(busy).unwrap_or_else(|e| e.into_inner());
        }
        busy.insert(id.to_string());
        Turn {
            l: self,
            id: id.to_string(),
        }
    }

    /// Send one request (with its fds) to the launcher, starting it if
    /// none runs.
    fn send(&self, req: &[u8], fds: &[RawFd]) -> Result<InFlight<'_>, String> {
        let mut live = relock(&self.live);
        let rights = [ControlMessage::ScmRights(fds)];
        // A launcher that died (killed) is replaced once: nothing of this
        // request ran in it.
        for _ in 0..2 {
            if live.is_none() {
                let (sock, pid) = self.spawn()?;
                *live = Some(Live {
                    sock,
                    pid,
                    last_used: Instant::now(),
                    calls: 0,
                });
            }
            let l = live.as_mut().unwrap();
            let r = sendmsg::<()>(
                l.sock.as_raw_fd(),
                &[IoSlice::new(req)],
                &rights,
                MsgFlags::empty(),
                None,
            );
            match r {
                Ok(_) => {
                    l.calls += 1;
                    return Ok(InFlight(self, l.pid));
                }
                Err(nix::errno::Errno::EPIPE) | Err(nix::errno::Errno::ECONNREFUSED) => {
                    *live = None
                }
                Err(e) => return Err(format!("send to the launcher: {e}")),
            }
        }
        Err("send to the launcher: it exits at once".into())
    }
}

impl Launch for Launcher {
    fn call(&self, req: Request, fds: &[RawFd]) -> Result<(Answer, Option<OwnedFd>), Failure> {
        let bytes = protocol::encode_request(&req)?;
        let _turn = self.turn(&req.id);
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|e| format!("socketpair: {e}"))?;
        let mut all = vec![theirs.as_raw_fd()];
        all.extend_from_slice(fds);
        let _in_flight = self.send(&bytes, &all)?;
        // Only the launcher and its child hold the other end now.
        drop(theirs);
        reply(&ours)
    }

    fn owns(&self, pid: i32) -> bool {
        relock(&self.pids).remove(&pid)
    }
}

/// The reply on a request's own socket, waited for at most [`limit`] +
/// [`GRACE`]: EOF (the request child died) and the timeout are failures.
fn reply(sock: &OwnedFd) -> Result<(Answer, Option<OwnedFd>), Failure> {
    let lost = |m: String| Failure::new(Kind::Lost, m);
    let deadline = Instant::now() + limit() + GRACE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(lost(format!(
                "no reply from the launcher within {}s",
                (limit() + GRACE).as_secs()
            )));
        }
        let mut p = libc::pollfd {
            fd: sock.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = left.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: `p` is a live pollfd and nfds is 1.
        let r = unsafe { libc::poll(&mut p, 1, ms) };
        if r < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return Err(lost(format!(
                "wait for the launcher: {}",
                std::io::Error::last_os_error()
            )));
        }
        if r > 0 {
            break;
        }
    }
    let mut buf = vec![0u8; MAX_MESSAGE];
    let (n, mut got) = recv_with_fds(sock.as_raw_fd(), &mut buf)
        .map_err(|e| lost(format!("read from the launcher: {e}")))?;
    if n == 0 {
        return Err(lost(
            "the launcher's request process exited without replying (killed?)".into(),
        ));
    }
    if n == buf.len() {
        return Err(Failure::from(format!(
            "launcher reply: longer than {MAX_MESSAGE} bytes"
        )));
    }
    Ok((parse_reply(&buf[..n])?, got.pop()))
}

/// One message and the fds that came with it (SCM_RIGHTS, CLOEXEC).
pub fn recv_with_fds(sock: RawFd, buf: &mut [u8]) -> std::io::Result<(usize, Vec<OwnedFd>)> {
    berth::os::recv_with_fds(sock, buf, 0).map(|got| (got.len, got.fds))
}

/// Send `msg` with `fd` (if any) as SCM_RIGHTS.
pub fn send_with_fd(sock: RawFd, msg: &[u8], fd: Option<RawFd>) {
    let fds: Vec<RawFd> = fd.into_iter().collect();
    let _ = berth::os::send_with_fds(sock, msg, &fds);
}

#[cfg(test)]
mod tests {
    use super::{Failure, Kind};

    #[test]
    fn kinds_cross_the_reply_and_map_to_codes() {
        let all = [
            Kind::NotFound,
            Kind::Exists,
            Kind::WrongState,
            Kind::Invalid,
            Kind::Unsupported,
            Kind::Denied,
            Kind::Exhausted,
            Kind::TimedOut,
            Kind::Other,
            Kind::Lost,
        ];
        for k in all {
            assert_eq!(Kind::from_name(k.name()), k);
        }
        assert_eq!(Kind::from_name("something-new"), Kind::Other);
        assert_eq!(Failure::new(Kind::Lost, "x").code(), ttrpc::Code::UNKNOWN);
    }

    fn code(e: berth::Error) -> ttrpc::Code {
        Failure::from(e).code()
    }

    /// A cgroup file the kernel refused a value for, with `errno`.
    fn refused(errno: i32) -> berth::Error {
        use berth::Refused;
        let file = std::path::PathBuf::from("/sys/fs/cgroup/memory/c/memory.limit_in_bytes");
        let error = berth::FieldError {
            refused: Some(Box::new(Refused {
                file,
                value: "1048576".into(),
                errno: Some(errno),
            })),
            ..berth::FieldError::new("memory.limit", "cannot write")
        };
        berth::Error::Cgroup {
            what: "update".into(),
            error,
        }
    }

    #[test]
    fn errors_map_to_codes_by_kind() {
        use berth::error::{ErrorKind, InitError};
        use ttrpc::Code;
        assert_eq!(code(berth::Error::NotFound("x".into())), Code::NOT_FOUND);
        assert_eq!(code(berth::Error::Exists("x".into())), Code::ALREADY_EXISTS);
        assert_eq!(
            code(berth::Error::WrongState("x".into())),
            Code::FAILED_PRECONDITION
        );
        assert_eq!(
            code(berth::Error::Usage("x".into())),
            Code::INVALID_ARGUMENT
        );
        assert_eq!(
            code(berth::Error::config("process.args", "must not be empty")),
            Code::INVALID_ARGUMENT
        );
        assert_eq!(
            code(berth::Error::Unsupported("x".into())),
            Code::UNIMPLEMENTED
        );
        assert_eq!(code(berth::Error::Protocol("x".into())), Code::UNKNOWN);
        assert_eq!(code(berth::Error::Internal("x".into())), Code::UNKNOWN);
        // an invalid linux.resources value (no write): the config's fault
        let invalid = berth::FieldError::new("blockIO.weight", "5 is not in 10-1000");
        assert_eq!(
            code(berth::Error::Cgroup {
                what: "update".into(),
                error: invalid
            }),
            Code::INVALID_ARGUMENT
        );
        // a cgroup file the kernel refused: by errno
        assert_eq!(code(refused(libc::EBUSY)), Code::FAILED_PRECONDITION);
        assert_eq!(code(refused(libc::EINVAL)), Code::INVALID_ARGUMENT);
        assert_eq!(code(refused(libc::EPERM)), Code::PERMISSION_DENIED);
        assert_eq!(code(refused(libc::ENOSPC)), Code::RESOURCE_EXHAUSTED);
        assert_eq!(code(refused(libc::ENOENT)), Code::NOT_FOUND);
        assert_eq!(code(refused(libc::EIO)), Code::UNKNOWN);
        let os = |errno| berth::Error::path("open", "/x", std::io::Error::from_raw_os_error(errno));
        assert_eq!(code(os(libc::EACCES)), Code::PERMISSION_DENIED);
        assert_eq!(code(os(libc::ETIMEDOUT)), Code::DEADLINE_EXCEEDED);
        assert_eq!(
            code(berth::Error::os("no errno", std::io::Error::other("x"))),
            Code::UNKNOWN
        );
        // init's errors keep their kind and errno across the sync socket
        let init = |kind, errno| {
            berth::Error::Init(InitError {
                kind,
                errno,
                msg: "x".into(),
            })
        };
        assert_eq!(code(init(ErrorKind::Config, None)), Code::INVALID_ARGUMENT);
        assert_eq!(
            code(init(ErrorKind::Mount, Some(libc::EPERM))),
            Code::PERMISSION_DENIED
        );
        assert_eq!(code(init(ErrorKind::Hook, None)), Code::UNKNOWN);
        assert_eq!(
            code(init(ErrorKind::Unknown, Some(libc::EBUSY))),
            Code::UNKNOWN
        );
    }
}
