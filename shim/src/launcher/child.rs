//! The launcher process (`containerd-shim-berth-v2 launch`): runs berth's
//! operations for the server, one short-lived child per request (see
//! [`crate::launcher`] for why and for the protocol).
//!
//! This is the child side of the launcher; [`crate::launcher`] is the
//! server's, and [`super::protocol`] types what crosses between them.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use super::protocol::{
    encode_reply, parse_request, resources_from_any, Answer, Cgroups, Op, Request,
};
use super::{limit, recv_with_fds, send_with_fd, Failure, MAX_MESSAGE};

const SOCK_FD: RawFd = 3;

/// The launcher's loop; returns only on a setup error.
pub fn launcher_main() -> Result<(), String> {
    // SAFETY: F_GETFD only reads the flags of a descriptor number; no memory.
    if unsafe { libc::fcntl(SOCK_FD, libc::F_GETFD) } < 0 {
        return Err("launch: fd 3 is not open (this action is run by the shim server)".into());
    }
    // SAFETY: fd 3 is open (checked above) and is the server's socket, given
    // to this process alone; nothing else owns it.
    let sock = unsafe { OwnedFd::from_raw_fd(SOCK_FD) };
    // SAFETY: F_SETFD with integer flags on an fd we own.
    unsafe { libc::fcntl(SOCK_FD, libc::F_SETFD, libc::FD_CLOEXEC) };
    // Containers inherit nothing odd from here: every signal unblocked.
    let _ = nix::sys::signal::SigSet::all().thread_unblock();
    // Requests run side by side: the launcher never waits for a child, the
    // kernel reaps them.
    // SAFETY: SIG_IGN installs no handler code; the launcher is single-threaded.
    unsafe { libc::signal(libc::SIGCHLD, libc::SIG_IGN) };
    let limit = limit().as_secs() as u32;
    let mut buf = vec![0u8; MAX_MESSAGE];
    loop {
        let (n, mut fds) = match recv_with_fds(sock.as_raw_fd(), &mut buf) {
            Ok(r) => r,
            Err(_) => std::process::exit(0),
        };
        if n == 0 {
            std::process::exit(0); // the server is gone
        }
        if fds.is_empty() {
            continue; // no reply socket: nobody to answer
        }
        let reply = fds.remove(0);
        // SAFETY: the launcher is single-threaded (no locks held by other
        // threads); the child ends in _exit below, never returning here.
        match unsafe { libc::fork() } {
            0 => {
                // berth waits for its own children (hooks, init).
                // SAFETY: SIG_DFL installs no handler code.
                unsafe { libc::signal(libc::SIGCHLD, libc::SIG_DFL) };
                // Not this child's to keep (the process exits without
                // returning, so `sock` is never dropped).
                // SAFETY: `sock` owns fd 3 but is never dropped in this
                // child (it ends in _exit), so fd 3 is closed once.
                unsafe { libc::close(SOCK_FD) };
                // Killed (SIGALRM) if it takes too long: the reply socket
                // closes, the server's call fails.
                // SAFETY: alarm takes an integer and touches no memory.
                unsafe { libc::alarm(limit) };
                let (answer, fd) = match handle(&buf[..n], fds) {
                    Ok((a, fd)) => (Ok(a), fd),
                    Err(f) => (Err(f), None),
                };
                send_with_fd(
                    reply.as_raw_fd(),
                    &encode_reply(&answer),
                    fd.as_ref().map(|f| f.as_raw_fd()),
                );
                // SAFETY: _exit ends the forked child without running the
                // parent's destructors or atexit handlers, as a fork child must.
                unsafe { libc::_exit(0) }
            }
            -1 => {
                let e = Failure::from(format!("fork: {}", std::io::Error::last_os_error()));
                send_with_fd(reply.as_raw_fd(), &encode_reply(&Err(e)), None);
            }
            _ => drop((reply, fds)),
        }
    }
}

type Reply = (Answer, Option<OwnedFd>);

/// In the launcher's child: do the request.
fn handle(req: &[u8], fds: Vec<OwnedFd>) -> Result<Reply, Failure> {
    if req.len() == MAX_MESSAGE {
        return Err(format!("launcher request: longer than {MAX_MESSAGE} bytes").into());
    }
    let Request { root, id, op } = parse_request(req)?;
    let stdio = || -> Result<[RawFd; 3], String> {
        match &fds[..] {
            [a, b, c] => Ok([a.as_raw_fd(), b.as_raw_fd(), c.as_raw_fd()]),
            _ => Err(format!("launcher request: {} stdio fds, want 3", fds.len())),
        }
    };
    let e = Failure::from;
    let none = |r: berth::Result<()>| r.map(|()| (Answer::Done, None)).map_err(Failure::from);
    match op {
        Op::Create { bundle, console } => {
            let mut opts = berth::CreateOptions::new(&root, id, bundle);
            opts.console_socket = console;
            opts.stdio = berth::Stdio::Fds(stdio()?);
            // containerd gives this shim no SystemdCgroup option; with it,
            // CRI and ctr write slice:prefix:name paths: systemd places those.
            opts.cgroup_manager = berth::CgroupManager::ByPath;
            let mut created = berth::Container::create(&opts).map_err(e)?;
            let cg = created.cgroups().map_err(e)?;
            let cgroups = Cgroups { procs_dirs: cg.dirs, memory_dir: cg.memory, v2: cg.v2 };
            Ok((Answer::Created { pid: created.pid(), cgroups }, created.take_init_pidfd()))
        }
        Op::Exec { process, console } => {
            // The process inherits this child's stdio; berth's log lines
            // (stderr) would land in its stderr: none from here on (errors
            // go back in the reply).
            log::set_max_level(log::LevelFilter::Off);
            for (i, fd) in stdio()?.iter().enumerate() {
                // SAFETY: dup2 onto 0-2 of this single-threaded child; `fd` is one of
                // the request's fds, open until `fds` is dropped below.
                if unsafe { libc::dup2(*fd, i as i32) } < 0 {
                    return Err(format!("dup2 stdio: {}", std::io::Error::last_os_error()).into());
                }
            }
            drop(fds);
            let mut opts = berth::ExecOptions::new(berth::ProcessSource::File(process));
            opts.console_socket = console;
            let exec = berth::Container::load(&root, &id).and_then(|c| c.exec(&opts));
            let started = match exec.map_err(e)? {
                berth::Executed::Running(p) => p,
                berth::Executed::Exited(_) => unreachable!("a detached exec returns a running process"),
            };
            Ok((Answer::Spawned { pid: started.pid }, started.pidfd))
        }
        Op::Start => none(berth::Container::load(&root, &id).and_then(|mut c| c.start())),
        Op::Pause => none(berth::Container::load(&root, &id).and_then(|mut c| c.pause())),
        Op::Resume => none(berth::Container::load(&root, &id).and_then(|mut c| c.resume())),
        Op::Update { resources } => {
            // Decoded once, here, into the LinuxResources the API takes.
            let resources = resources_from_any(resources.get().as_bytes())?;
            none(berth::Container::load(&root, &id).and_then(|mut c| c.update(&resources)))
        }
        Op::Stats => {
            let c = berth::Container::load(&root, &id).map_err(e)?;
            let any = crate::metrics::collect(&c)?;
            let (type_url, value) = (any.type_url, any.value);
            Ok((Answer::Stats { type_url, value }, None))
        }
        Op::Destroy => destroy(&root, &id).map(|()| (Answer::Done, None)),
        Op::Delete => none(match berth::Container::load(&root, &id) {
            Err(berth::Error::NotFound(_)) => Ok(()),
            c => c.and_then(|c| c.delete(true)),
        }),
    }
}

/// Remove berth's state and cgroups of a dead container.
fn destroy(root: &Path, id: &str) -> Result<(), Failure> {
    match berth::Container::load(root, id) {
        Ok(c) => Ok(c.destroy()?),
        Err(berth::Error::NotFound(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::{handle, MAX_MESSAGE};
    use crate::launcher::Kind;

    /// Refused before berth is called, with what is wrong.
    #[test]
    fn bad_requests_are_refused_before_anything_runs() {
        let refused = |req: &[u8]| handle(req, Vec::new()).map(|_| ()).unwrap_err();
        let f = refused(br#"{"root":"/nonexistent","id":"c","op":"nope"}"#);
        assert_eq!(f.kind, Kind::Other);
        assert!(
            f.msg
                .starts_with("launcher request: op: unknown variant `nope`"),
            "{}",
            f.msg
        );
        let f = refused(br#"{"root":"/nonexistent","id":"c","op":{"create":{"bundle":"/b"}}}"#);
        assert_eq!(f.msg, "launcher request: 0 stdio fds, want 3");
        let f = refused(&vec![b' '; MAX_MESSAGE]);
        assert_eq!(
            f.msg,
            format!("launcher request: longer than {MAX_MESSAGE} bytes")
        );
    }
}
