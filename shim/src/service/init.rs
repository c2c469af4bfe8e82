//! The container's init: Create, Start and Delete.

use std::path::Path;
use std::time::Duration;

use containerd_shim_protos::api;
use containerd_shim_protos::events::task::{TaskCreate, TaskDelete, TaskIO, TaskStart};
use protobuf::MessageField;
use ttrpc::Code;

use super::{err, failed, not_found, Service, R};
use crate::io::{ConsoleSocket, Stdio};
use crate::launcher::{Failure, Kind, Op, Started};
use crate::procs::{Ctr, Proc};

impl Service {
    pub(super) fn do_create(&self, req: &api::CreateTaskRequest) -> Result<u32, Failure> {
        if !req.checkpoint.is_empty() {
            return Err(Failure::new(
                Kind::Unsupported,
                "restoring from a checkpoint is not supported (berth has no checkpoint/restore)",
            ));
        }
        let bundle = Path::new(&req.bundle);
        let rootfs = bundle.join("rootfs");
        crate::mounts::mount_rootfs(&req.rootfs, &rootfs)?;
        let created = self.launch(
            &req.id,
            [&req.stdin, &req.stdout, &req.stderr],
            req.terminal,
            |io, console| {
                self.launcher
                    .create(&self.root, &req.id, bundle, console, io)
            },
        );
        let (started, io) = match created {
            Ok(c) => c,
            Err(e) => {
                if e.kind == Kind::Lost {
                    // berth's create died half-way: remove what it made.
                    if let Err(d) = self.launcher.run(&self.root, &req.id, Op::Delete) {
                        log::warn!("{}: remove the failed create: {d}", req.id);
                    }
                }
                if !req.rootfs.is_empty() {
                    let _ = crate::mounts::unmount_rootfs(&rootfs);
                }
                return Err(e);
            }
        };
        let (pid, pidfd) = (started.pid, started.pidfd);
        let cgroups = started.cgroups.unwrap_or_default();
        let cgroup_dirs = cgroups.procs_dirs;
        match cgroups.memory_dir {
            Some(dir) => {
                if let Err(e) = self.oom.add(&req.id, &dir, cgroups.v2) {
                    log::warn!("{}: no OOM events: {e}", req.id);
                }
            }
            None => log::warn!("{}: no OOM events: no memory cgroup", req.id),
        }
        let mut g = self.lock();
        let init = Proc {
            pid,
            pidfd,
            stdin: req.stdin.clone(),
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
            terminal: req.terminal,
            io: Some(io),
            ..Default::default()
        };
        g.ctrs.insert(
            req.id.clone(),
            Ctr {
                bundle: bundle.to_path_buf(),
                cgroup_dirs,
                init,
                execs: Default::default(),
                rootfs_mounted: !req.rootfs.is_empty(),
                paused: false,
            },
        );
        let mut e = TaskCreate::new();
        e.container_id = req.id.clone();
        e.bundle = req.bundle.clone();
        let mut tio = TaskIO::new();
        tio.stdin = req.stdin.clone();
        tio.stdout = req.stdout.clone();
        tio.stderr = req.stderr.clone();
        tio.terminal = req.terminal;
        e.io = MessageField::some(tio);
        e.pid = pid as u32;
        self.publisher
            .publish("/tasks/create", "containerd.events.TaskCreate", &e);
        // init may have died already (e.g. killed): its exit is here.
        self.claim_early_exit(g, &req.id, "");
        Ok(pid as u32)
    }

    /// Set up stdio (pipes, or a console socket for a terminal), run
    /// `start` (the launcher's create or exec) and return the process with
    /// its stdio copies running.
    pub(super) fn launch(
        &self,
        id: &str,
        [stdin, stdout, stderr]: [&str; 3],
        terminal: bool,
        start: impl FnOnce([std::os::fd::RawFd; 3], Option<&Path>) -> Result<Started, Failure>,
    ) -> Result<(Started, Stdio), Failure> {
        if terminal {
            let console = ConsoleSocket::bind()?;
            let placeholder = Stdio::for_terminal()?;
            let started = start(placeholder.raw(), Some(&console.path))?;
            let io = console
                .receive()
                .and_then(|master| Stdio::tty(master, stdin, stdout));
            return match io {
                Ok(io) => Ok((started, io)),
                Err(e) => {
                    if let Some(fd) = &started.pidfd {
                        let _ = berth::os::pidfd_send_signal(fd, libc::SIGKILL);
                    }
                    Err(e.into())
                }
            };
        }
        let mut io = crate::io::setup(id, &self.ns, stdin, stdout, stderr)?;
        let started = start(io.raw(), None)?;
        io.init_fds.clear();
        Ok((started, io))
    }

    pub(super) fn start_init(&self, id: &str) -> R<u32> {
        let pid = {
            let mut g = self.lock();
            let p = g.get(id, "").ok_or_else(|| not_found(id, ""))?;
            if p.started || p.starting || p.exit.is_some() {
                return Err(err(
                    Code::FAILED_PRECONDITION,
                    format!("container {id:?} is not created"),
                ));
            }
            p.starting = true;
            p.pid
        };
        let r = self.launcher.run(&self.root, id, Op::Start);
        let mut g = self.lock();
        let p = g.get(id, "").ok_or_else(|| not_found(id, ""))?;
        p.starting = false;
        if r.is_ok() {
            p.started = true;
            let mut e = TaskStart::new();
            e.container_id = id.to_string();
            e.pid = pid as u32;
            self.publisher
                .publish("/tasks/start", "containerd.events.TaskStart", &e);
        }
        self.publish_exit(id, "", p);
        r.map_err(failed)?;
        Ok(pid as u32)
    }

    /// Delete: remove a dead container (its state, cgroups, rootfs mount).
    pub(super) fn delete_init(&self, req: api::DeleteRequest) -> R<api::DeleteResponse> {
        let mut g = self.lock();
        let c = g.ctrs.get(&req.id).ok_or_else(|| not_found(&req.id, ""))?;
        if c.init.exit.is_none() {
            if c.init.started && !c.init.reaped {
                return Err(err(
                    Code::FAILED_PRECONDITION,
                    format!("container {:?} is running: kill it first", req.id),
                ));
            }
            // Created, never started: kill init and wait for its exit.
            if !c.init.reaped {
                if let Some(fd) = &c.init.pidfd {
                    let _ = berth::os::pidfd_send_signal(fd, libc::SIGKILL);
                }
            }
            let (g2, _) = self
                .exited
                .wait_timeout_while(g, Duration::from_secs(10), |i| {
                    i.ctrs.get(&req.id).is_some_and(|c| c.init.exit.is_none())
                })
                .unwrap_or_else(|e| e.into_inner());
            g = g2;
        }
        let c = g.ctrs.get(&req.id).ok_or_else(|| not_found(&req.id, ""))?;
        let (status, at) = c.init.exit.clone().ok_or_else(|| {
            err(
                Code::DEADLINE_EXCEEDED,
                format!("container {:?} did not exit", req.id),
            )
        })?;
        let (pid, bundle, mounted) = (c.init.pid, c.bundle.clone(), c.rootfs_mounted);
        drop(g);
        // Before the cgroup goes: on v1 its removal fires the OOM eventfd.
        self.oom.remove(&req.id);
        self.destroy(&req.id).map_err(failed)?;
        if mounted {
            crate::mounts::unmount_rootfs(&bundle.join("rootfs"))
                .map_err(|e| err(Code::UNKNOWN, e))?;
        }
        let mut g = self.lock();
        g.ctrs.remove(&req.id);
        let mut e = TaskDelete::new();
        e.container_id = req.id.clone();
        e.id = req.id.clone();
        e.pid = pid as u32;
        e.exit_status = status;
        e.exited_at = MessageField::some(at.clone());
        self.publisher
            .publish("/tasks/delete", "containerd.events.TaskDelete", &e);
        let mut r = api::DeleteResponse::new();
        r.pid = pid as u32;
        r.exit_status = status;
        r.exited_at = MessageField::some(at);
        Ok(r)
    }
}
