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
    if unsafe { libc::fcntl(SOCK_FD, libc::F_GETFD) } < 0 {
        return Err("launch: fd 3 is not open (this action is run by the shim server)".into());
    }
    let sock = unsafe { OwnedFd::from_raw_fd(SOCK_FD) };
    unsafe { libc::fcntl(SOCK_FD, libc::F_SETFD, libc::FD_CLOEXEC) };
    // Containers inherit nothing odd from here: every signal unblocked.
    let _ = nix::sys::signal::SigSet::all().thread_unblock();
    // Requests run side by side: the launcher never waits for a child, the
    // kernel reaps them.
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
        match unsafe { libc::fork() } {
            0 => {
                // berth waits for its own children (hooks, init).
                unsafe { libc::signal(libc::SIGCHLD, libc::SIG_DFL) };
                // Not this child's to keep (the process exits without
                // returning, so `sock` is never dropped).
                unsafe { libc::close(SOCK_FD) };
                // Killed (SIGALRM) if it takes too long: the reply socket
                // closes, the server's call fails.
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
            let args = berth::cli::CreateArgs {
                bundle,
                pid_file: None,
                no_pivot: false,
                no_new_keyring: false,
                preserve_fds: 0,
                console_socket: console,
                id,
            };
            let created = berth::commands::create::create_with_stdio(&root, &args, Some(stdio()?))
                .map_err(e)?;
            let cg = &created.state.cgroups;
            let memory = cg
                .mounts
                .iter()
                .find(|m| {
                    if cg.is_v2() {
                        m.unified
                    } else {
                        m.subsystems.iter().any(|s| s == "memory")
                    }
                })
                .map(|m| m.dir.clone());
            let cgroups = Cgroups {
                procs_dirs: cg.mounts.iter().map(|m| m.dir.clone()).collect(),
                memory_dir: memory,
                v2: cg.is_v2(),
            };
            let pid = created.init.pid;
            Ok((Answer::Created { pid, cgroups }, created.init.pidfd))
        }
        Op::Exec { process, console } => {
            // The process inherits this child's stdio; berth's log lines
            // (stderr) would land in its stderr: none from here on (errors
            // go back in the reply).
            log::set_max_level(log::LevelFilter::Off);
            for (i, fd) in stdio()?.iter().enumerate() {
                if unsafe { libc::dup2(*fd, i as i32) } < 0 {
                    return Err(format!("dup2 stdio: {}", std::io::Error::last_os_error()).into());
                }
            }
            drop(fds);
            let args = berth::cli::ExecArgs {
                process: Some(process),
                env: Vec::new(),
                cwd: None,
                user: None,
                additional_gids: Vec::new(),
                cap: Vec::new(),
                no_new_privs: None,
                apparmor: None,
                process_label: None,
                tty: None,
                console_socket: console,
                detach: true,
                pid_file: None,
                preserve_fds: 0,
                cgroup: Vec::new(),
                ignore_paused: false,
                id,
                command: Vec::new(),
            };
            let started = berth::commands::exec::exec_detached(&root, &args).map_err(e)?;
            Ok((Answer::Spawned { pid: started.pid }, started.pidfd))
        }
        Op::Start => none(
            berth::container::StateDir::open(&root, &id)
                .and_then(|dir| dir.load_required().map(|s| (dir, s)))
                .and_then(|(dir, state)| berth::commands::start::start_created(&dir, &state)),
        ),
        Op::Pause => none(berth::commands::pause::pause(&root, &id)),
        Op::Resume => none(berth::commands::resume::resume(&root, &id)),
        Op::Update { resources } => {
            // Decoded once, here; berth's update takes the document as
            // JSON until its container API takes a LinuxResources.
            let resources = resources_from_any(resources.get().as_bytes())?;
            let json = serde_json::to_vec(&resources).map_err(|e| format!("update: {e}"))?;
            none(berth::commands::update::update_from_json(
                &root,
                &id,
                "update: resources",
                &json,
            ))
        }
        Op::Stats => {
            let state = berth::container::StateDir::open(&root, &id)
                .and_then(|d| d.load_required())
                .map_err(e)?;
            let any = crate::metrics::collect(&state)?;
            let (type_url, value) = (any.type_url, any.value);
            Ok((Answer::Stats { type_url, value }, None))
        }
        Op::Destroy => destroy(&root, &id).map(|()| (Answer::Done, None)),
        Op::Delete => none(berth::commands::delete::delete(&root, &id, true)),
    }
}

/// Remove berth's state and cgroups of a dead container.
fn destroy(root: &Path, id: &str) -> Result<(), Failure> {
    match berth::container::StateDir::open(root, id) {
        Ok(dir) => match dir.load()? {
            Some(state) => Ok(berth::commands::delete::destroy(dir, &state)?),
            None => Ok(dir.remove()?),
        },
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
