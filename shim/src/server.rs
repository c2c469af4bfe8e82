//! The shim server process.
//!
//! Processes: the server (this process, `containerd-shim-berth-v2-server`;
//! a child subreaper, so every container process ends up its child) and,
//! while there is work, the single-threaded launcher it spawns on demand
//! ([`crate::launcher`]), which forks one short-lived child per berth
//! operation. Threads in the server: the ttrpc listener and its request
//! workers, the reaper ([`crate::reaper`]), the event publisher
//! ([`crate::publish`]), the OOM watcher ([`crate::oom`]), the launcher's
//! idle timer and small-stack stdio copy threads. SIGCHLD is blocked in all
//! of them; only the reaper takes it.

use std::os::fd::RawFd;
use std::sync::mpsc::channel;
use std::sync::Arc;

use containerd_shim_protos::create_task;
use nix::sys::socket::{getsockname, UnixAddr};

use crate::launcher::Launcher;
use crate::publish::Publisher;
use crate::service::Service;
use crate::Flags;

const LISTENER_FD: RawFd = 3;

pub fn serve(f: &Flags) -> Result<(), String> {
    let sock_path = getsockname::<UnixAddr>(LISTENER_FD)
        .ok()
        .and_then(|a| a.path().map(|p| p.to_path_buf()))
        .ok_or("serve: fd 3 is not a listening unix socket (this action is run by `start`)")?;
    // berth's warnings (e.g. failed poststart hooks) and, with -debug, its
    // debug lines go to stderr: the bundle's `log` fifo that containerd reads.
    berth::logging::init(None, berth::logging::LogFormat::Text, f.debug);
    // SAFETY: PR_SET_CHILD_SUBREAPER takes integer arguments only and reads no memory.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    // One malloc arena for all threads: per-thread arenas cost resident
    // pages in every shim, and the shim is not allocation-bound.
    // SAFETY: mallopt is called before any other thread exists and takes integers only.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) };
    // Before any thread starts: only the reaper may take SIGCHLD.
    crate::reaper::block_sigchld();
    // Started on demand (see crate::launcher).
    let launcher = Launcher::new(&f.namespace, &f.address);
    let publisher = Publisher::start(
        f.namespace.clone(),
        f.address.clone(),
        f.publish_binary.clone(),
    );
    let oom = crate::oom::OomWatcher::start(publisher.clone())?;
    let (shutdown_tx, shutdown_rx) = channel::<()>();
    let service = Arc::new(Service::new(
        f.namespace.clone(),
        launcher,
        publisher,
        oom,
        shutdown_tx,
    ));
    let reaping = service.clone();
    crate::reaper::start(move |pid, status| reaping.on_exit(pid, status));
    let mut server = ttrpc::Server::new()
        .add_listener(LISTENER_FD)
        .map_err(|e| format!("ttrpc listener: {e}"))?
        .register_service(create_task(service))
        // ttrpc wants default > min.
        .set_thread_count_default(2)
        .set_thread_count_min(1)
        .set_thread_count_max(64);
    server.start().map_err(|e| format!("ttrpc server: {e}"))?;
    let _ = shutdown_rx.recv();
    let _ = std::fs::remove_file(&sock_path);
    // Let the Shutdown reply go out before the process ends.
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::process::exit(0);
}
