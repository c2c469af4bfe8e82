//! The launcher process (`containerd-shim-berth-v2 launch`): runs berth's
//! operations for the server, one short-lived child per request (see
//! [`crate::launcher`] for why and for the protocol).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::launcher::{limit, recv_with_fds, send_with_fd, Failure};

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
    let mut buf = vec![0u8; 16384];
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
                let (msg, fd) = match handle(&buf[..n], fds) {
                    Ok((v, fd)) => (json!({ "ok": v }), fd),
                    Err(f) => (json!({ "error": f.msg, "kind": f.kind.name() }), None),
                };
                send_with_fd(
                    reply.as_raw_fd(),
                    msg.to_string().as_bytes(),
                    fd.as_ref().map(|f| f.as_raw_fd()),
                );
                unsafe { libc::_exit(0) }
            }
            -1 => {
                let e = json!({ "error": format!("fork: {}", std::io::Error::last_os_error()) });
                send_with_fd(reply.as_raw_fd(), e.to_string().as_bytes(), None);
            }
            _ => drop((reply, fds)),
        }
    }
}

type Reply = (Value, Option<OwnedFd>);

/// A decoded launcher request: `{"op", "root", "id", "console"?, ...}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub root: PathBuf,
    pub id: String,
    pub console: Option<PathBuf>,
    pub op: Op,
}

/// The operation of a [`Request`], with its own fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Create {
        bundle: PathBuf,
    },
    Exec {
        process: PathBuf,
    },
    Start,
    Pause,
    Resume,
    /// `arg`: a linux.resources JSON document.
    Update {
        resources: String,
    },
    Stats,
    Destroy,
    /// After a create whose child was lost: kill and remove what it made.
    Delete,
}

/// Decode a launcher request (no effect; public for the fuzz target).
pub fn parse_request(req: &[u8]) -> Result<Request, String> {
    let v: Value = serde_json::from_slice(req).map_err(|e| format!("launcher request: {e}"))?;
    let s = |k: &str| {
        v.get(k)
            .and_then(|x| x.as_str())
            .map(str::to_string)
            .ok_or_else(|| format!("launcher request: no {k}"))
    };
    let (root, id) = (PathBuf::from(s("root")?), s("id")?);
    let op = match s("op")?.as_str() {
        "create" => Op::Create {
            bundle: PathBuf::from(s("bundle")?),
        },
        "exec" => Op::Exec {
            process: PathBuf::from(s("process")?),
        },
        "start" => Op::Start,
        "pause" => Op::Pause,
        "resume" => Op::Resume,
        "update" => Op::Update {
            resources: s("arg")?,
        },
        "stats" => Op::Stats,
        "destroy" => Op::Destroy,
        "delete" => Op::Delete,
        op => return Err(format!("launcher request: unknown op {op:?}")),
    };
    Ok(Request {
        root,
        id,
        console: v.get("console").and_then(|c| c.as_str()).map(PathBuf::from),
        op,
    })
}

/// In the launcher's child: do the request.
fn handle(req: &[u8], fds: Vec<OwnedFd>) -> Result<Reply, Failure> {
    let Request {
        root,
        id,
        console,
        op,
    } = parse_request(req)?;
    let stdio = || -> Result<[RawFd; 3], String> {
        match &fds[..] {
            [a, b, c] => Ok([a.as_raw_fd(), b.as_raw_fd(), c.as_raw_fd()]),
            _ => Err(format!("launcher request: {} stdio fds, want 3", fds.len())),
        }
    };
    let e = Failure::from;
    let none = |r: berth::Result<()>| r.map(|()| (json!({}), None)).map_err(Failure::from);
    match op {
        Op::Create { bundle } => {
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
            let reply = json!({
                "pid": created.init.pid,
                "procs_dirs": cg.mounts.iter().map(|m| &m.dir).collect::<Vec<_>>(),
                "memory_dir": memory,
                "v2": cg.is_v2(),
            });
            Ok((reply, created.init.pidfd))
        }
        Op::Exec { process } => {
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
            Ok((json!({ "pid": started.pid }), started.pidfd))
        }
        Op::Start => none(
            berth::container::StateDir::open(&root, &id)
                .and_then(|dir| dir.load_required().map(|s| (dir, s)))
                .and_then(|(dir, state)| berth::commands::start::start_created(&dir, &state)),
        ),
        Op::Pause => none(berth::commands::pause::pause(&root, &id)),
        Op::Resume => none(berth::commands::resume::resume(&root, &id)),
        Op::Update { resources } => none(berth::commands::update::update_from_json(
            &root,
            &id,
            "update: resources",
            resources.as_bytes(),
        )),
        Op::Stats => {
            let state = berth::container::StateDir::open(&root, &id)
                .and_then(|d| d.load_required())
                .map_err(e)?;
            let any = crate::metrics::collect(&state)?;
            Ok((
                json!({"type_url": any.type_url, "value": hex(&any.value)}),
                None,
            ))
        }
        Op::Destroy => destroy(&root, &id).map(|()| (json!({}), None)),
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

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{parse_request, Op};
    use std::path::PathBuf;

    #[test]
    fn requests_decode_or_name_what_is_wrong() {
        let r = parse_request(br#"{"op":"update","root":"/r","id":"c","arg":"{}"}"#).unwrap();
        assert_eq!(
            (r.root, r.id.as_str(), r.console),
            (PathBuf::from("/r"), "c", None)
        );
        assert_eq!(
            r.op,
            Op::Update {
                resources: "{}".into()
            }
        );
        let err = |b: &[u8]| parse_request(b).unwrap_err();
        assert_eq!(
            err(br#"{"op":"create","root":"/r","id":"c"}"#),
            "launcher request: no bundle"
        );
        assert_eq!(
            err(br#"{"op":"nope","root":"/r","id":"c"}"#),
            "launcher request: unknown op \"nope\""
        );
        assert_eq!(
            err(br#"{"op":"start","id":"c"}"#),
            "launcher request: no root"
        );
        assert!(err(b"[").starts_with("launcher request: "));
    }

    #[test]
    fn hex_round_trip() {
        let b = [0u8, 1, 0xab, 0xff];
        assert_eq!(super::hex(&b), "0001abff");
        assert_eq!(super::unhex("0001abff").unwrap(), b);
        assert!(super::unhex("0").is_none());
        assert!(super::unhex("zz").is_none());
    }
}
