//! The Task service (containerd.task.v2.Task) over the berth library.
//!
//! One mutex guards the containers; events are queued under it, so they
//! reach containerd in order: TaskCreate, TaskStart, TaskExit, TaskDelete.
//! An exit that arrives while Start is still running is held back until
//! TaskStart is out.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use containerd_shim_protos::api::{self, Empty, Status as TaskStatus};
use containerd_shim_protos::events::task::{TaskCreate, TaskDelete, TaskExit, TaskIO, TaskStart};
use containerd_shim_protos::Task;
use protobuf::well_known_types::timestamp::Timestamp;
use protobuf::MessageField;
use ttrpc::{Code, TtrpcContext};

use crate::io::Stdio;
use crate::launcher::Launcher;
use crate::publish::Publisher;

type R<T> = ttrpc::Result<T>;

fn err(code: Code, msg: impl Into<String>) -> ttrpc::Error {
    ttrpc::Error::RpcStatus(ttrpc::get_status(code, msg.into()))
}

fn unimplemented(what: &str) -> ttrpc::Error {
    err(
        Code::UNIMPLEMENTED,
        format!("containerd-shim-berth-v2: {what}"),
    )
}

struct Ctr {
    bundle: PathBuf,
    pid: i32,
    stdin: String,
    stdout: String,
    stderr: String,
    /// berth's state for the container (cgroups for Pids and kill --all).
    state: Option<berth::container::State>,
    /// init's pidfd, opened right after create (init is then blocked on
    /// exec.fifo, so it is init's).
    pidfd: Option<std::os::fd::OwnedFd>,
    started: bool,
    starting: bool,
    reaped: bool,
    exit: Option<(u32, Timestamp)>,
    exit_published: bool,
    io: Option<Stdio>,
    rootfs_mounted: bool,
}

struct Inner {
    ctrs: HashMap<String, Ctr>,
    /// Exits of children not (yet) known as a container's init.
    unclaimed: HashMap<i32, u32>,
}

pub struct Service {
    ns: String,
    root: PathBuf,
    launcher: Launcher,
    publisher: Publisher,
    inner: Mutex<Inner>,
    exited: Condvar,
    shutdown: Mutex<Sender<()>>,
}

impl Service {
    pub fn new(
        ns: String,
        launcher: Launcher,
        publisher: Publisher,
        shutdown: Sender<()>,
    ) -> Service {
        Service {
            root: crate::berth_root(&ns),
            ns,
            launcher,
            publisher,
            inner: Mutex::new(Inner {
                ctrs: HashMap::new(),
                unclaimed: HashMap::new(),
            }),
            exited: Condvar::new(),
            shutdown: Mutex::new(shutdown),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// From the reaper: a child exited.
    pub fn on_exit(&self, pid: i32, status: u32) {
        let mut g = self.lock();
        let Some((id, c)) = g.ctrs.iter_mut().find(|(_, c)| c.pid == pid && !c.reaped) else {
            if g.unclaimed.len() < 4096 {
                g.unclaimed.insert(pid, status);
            }
            return;
        };
        c.reaped = true;
        let id = id.clone();
        let io = c.io.take();
        drop(g);
        self.finish_exit(id, status, io);
    }

    /// Drain the output copies (off the reaper thread), then record the exit,
    /// wake Wait and publish TaskExit.
    fn finish_exit(&self, id: String, status: u32, io: Option<Stdio>) {
        // SAFETY: the server holds the Service in an Arc it never drops (the
        // process ends with exit), so it outlives this thread.
        let me: &'static Service = unsafe { &*(self as *const Service) };
        let run = move || {
            if let Some(mut io) = io {
                io.close_stdin();
                io.drain(Duration::from_secs(2));
            }
            let mut g = me.lock();
            if let Some(c) = g.ctrs.get_mut(&id) {
                c.exit = Some((status, Timestamp::now()));
                if !c.starting {
                    me.publish_exit(&id, c);
                }
            }
            me.exited.notify_all();
        };
        std::thread::Builder::new()
            .name("exit".into())
            .stack_size(64 << 10)
            .spawn(run)
            .expect("spawn an exit thread");
    }

    fn publish_exit(&self, id: &str, c: &mut Ctr) {
        if c.exit_published {
            return;
        }
        let Some((status, at)) = &c.exit else { return };
        c.exit_published = true;
        let mut e = TaskExit::new();
        e.container_id = id.to_string();
        e.id = id.to_string();
        e.pid = c.pid as u32;
        e.exit_status = *status;
        e.exited_at = MessageField::some(at.clone());
        self.publisher
            .publish("/tasks/exit", "containerd.events.TaskExit", &e);
    }

    fn do_create(&self, req: &api::CreateTaskRequest) -> Result<i32, String> {
        if req.terminal {
            return Err("terminal (tty) containers are not supported yet: berth's terminal support (exec/terminals work) is not merged".into());
        }
        if !req.checkpoint.is_empty() {
            return Err("restoring from a checkpoint is not supported".into());
        }
        let bundle = Path::new(&req.bundle);
        let rootfs = bundle.join("rootfs");
        crate::mounts::mount_rootfs(&req.rootfs, &rootfs)?;
        let created = crate::io::setup(&req.id, &self.ns, &req.stdin, &req.stdout, &req.stderr)
            .and_then(|io| {
                self.launcher
                    .create(&self.root, &req.id, bundle, io.raw())
                    .map(|pid| (pid, io))
            });
        match created {
            Ok((pid, mut io)) => {
                io.init_fds.clear();
                let state = berth::container::StateDir::open(&self.root, &req.id)
                    .ok()
                    .and_then(|d| d.load().ok().flatten());
                let mut g = self.lock();
                g.ctrs.insert(
                    req.id.clone(),
                    Ctr {
                        bundle: bundle.to_path_buf(),
                        pid,
                        stdin: req.stdin.clone(),
                        stdout: req.stdout.clone(),
                        stderr: req.stderr.clone(),
                        state,
                        pidfd: berth::sys::pidfd_open(pid).ok(),
                        started: false,
                        starting: false,
                        reaped: false,
                        exit: None,
                        exit_published: false,
                        io: Some(io),
                        rootfs_mounted: !req.rootfs.is_empty(),
                    },
                );
                let mut e = TaskCreate::new();
                e.container_id = req.id.clone();
                e.bundle = req.bundle.clone();
                let mut tio = TaskIO::new();
                tio.stdin = req.stdin.clone();
                tio.stdout = req.stdout.clone();
                tio.stderr = req.stderr.clone();
                e.io = MessageField::some(tio);
                e.pid = pid as u32;
                self.publisher
                    .publish("/tasks/create", "containerd.events.TaskCreate", &e);
                // init may have died already (e.g. killed): its exit is here.
                // An entry for a pid that is alive again is stale (an earlier
                // process with that pid, reaped before reuse): dropped.
                let unclaimed = g
                    .unclaimed
                    .remove(&pid)
                    .filter(|_| unsafe { libc::kill(pid, 0) } != 0);
                if let Some(status) = unclaimed {
                    let c = g.ctrs.get_mut(&req.id).unwrap();
                    c.reaped = true;
                    let io = c.io.take();
                    drop(g);
                    self.finish_exit(req.id.clone(), status, io);
                }
                Ok(pid)
            }
            Err(e) => {
                if !req.rootfs.is_empty() {
                    let _ = crate::mounts::unmount_rootfs(&rootfs);
                }
                Err(e)
            }
        }
    }

    fn no_exec(exec_id: &str) -> R<()> {
        if exec_id.is_empty() {
            Ok(())
        } else {
            Err(err(
                Code::NOT_FOUND,
                format!("exec {exec_id:?} not found (exec is not supported yet)"),
            ))
        }
    }

    fn not_found(id: &str) -> ttrpc::Error {
        err(Code::NOT_FOUND, format!("container {id:?} not found"))
    }

    /// Remove berth's state and cgroups of a dead container.
    fn destroy(&self, id: &str) -> Result<(), String> {
        match berth::container::StateDir::open(&self.root, id) {
            Ok(dir) => match dir.load() {
                Ok(Some(state)) => {
                    berth::commands::delete::destroy(dir, &state).map_err(|e| e.to_string())
                }
                Ok(None) => dir.remove().map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            },
            Err(berth::Error::NotFound(_)) => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }
}

impl Task for Service {
    fn create(&self, _: &TtrpcContext, req: api::CreateTaskRequest) -> R<api::CreateTaskResponse> {
        if self.lock().ctrs.contains_key(&req.id) {
            return Err(err(
                Code::ALREADY_EXISTS,
                format!("container {:?} already exists", req.id),
            ));
        }
        let pid = self.do_create(&req).map_err(|e| err(Code::UNKNOWN, e))?;
        let mut r = api::CreateTaskResponse::new();
        r.pid = pid as u32;
        Ok(r)
    }

    fn start(&self, _: &TtrpcContext, req: api::StartRequest) -> R<api::StartResponse> {
        Self::no_exec(&req.exec_id)?;
        let pid = {
            let mut g = self.lock();
            let c = g
                .ctrs
                .get_mut(&req.id)
                .ok_or_else(|| Self::not_found(&req.id))?;
            if c.started || c.starting || c.exit.is_some() {
                return Err(err(
                    Code::FAILED_PRECONDITION,
                    format!("container {:?} is not created", req.id),
                ));
            }
            c.starting = true;
            c.pid
        };
        let r = berth::container::StateDir::open(&self.root, &req.id)
            .and_then(|dir| dir.load_required().map(|s| (dir, s)))
            .and_then(|(dir, state)| berth::commands::start::start_created(&dir, &state));
        let mut g = self.lock();
        let c = g
            .ctrs
            .get_mut(&req.id)
            .ok_or_else(|| Self::not_found(&req.id))?;
        c.starting = false;
        if r.is_ok() {
            c.started = true;
            let mut e = TaskStart::new();
            e.container_id = req.id.clone();
            e.pid = pid as u32;
            self.publisher
                .publish("/tasks/start", "containerd.events.TaskStart", &e);
        }
        self.publish_exit(&req.id, c);
        r.map_err(|e| err(Code::UNKNOWN, e.to_string()))?;
        let mut resp = api::StartResponse::new();
        resp.pid = pid as u32;
        Ok(resp)
    }

    fn state(&self, _: &TtrpcContext, req: api::StateRequest) -> R<api::StateResponse> {
        Self::no_exec(&req.exec_id)?;
        let g = self.lock();
        let c = g
            .ctrs
            .get(&req.id)
            .ok_or_else(|| Self::not_found(&req.id))?;
        let mut r = api::StateResponse::new();
        r.id = req.id.clone();
        r.bundle = c.bundle.to_string_lossy().into_owned();
        r.pid = c.pid as u32;
        r.stdin = c.stdin.clone();
        r.stdout = c.stdout.clone();
        r.stderr = c.stderr.clone();
        let status = match (&c.exit, c.started) {
            (Some((code, at)), _) => {
                r.exit_status = *code;
                r.exited_at = MessageField::some(at.clone());
                TaskStatus::STOPPED
            }
            (None, true) => TaskStatus::RUNNING,
            (None, false) => TaskStatus::CREATED,
        };
        r.status = status.into();
        Ok(r)
    }

    fn kill(&self, _: &TtrpcContext, req: api::KillRequest) -> R<Empty> {
        Self::no_exec(&req.exec_id)?;
        let g = self.lock();
        let c = g
            .ctrs
            .get(&req.id)
            .ok_or_else(|| Self::not_found(&req.id))?;
        if c.reaped {
            return Err(err(
                Code::NOT_FOUND,
                format!("container {:?}: process already finished", req.id),
            ));
        }
        let sig = req.signal as i32;
        if req.all {
            if let Some(s) = &c.state {
                for pid in s.cgroups.pids() {
                    unsafe { libc::kill(pid, sig) };
                }
            }
        }
        // Through init's pidfd: the reaper may have reaped init a moment ago
        // (before it took the lock), and its pid may be reused.
        let r = match &c.pidfd {
            Some(fd) => berth::sys::pidfd_send_signal(fd, sig),
            None => Err(std::io::Error::from_raw_os_error(libc::ESRCH)),
        };
        match r {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {
                return Err(err(
                    Code::NOT_FOUND,
                    format!("container {:?}: process already finished", req.id),
                ))
            }
            Err(e) => {
                return Err(err(
                    Code::UNKNOWN,
                    format!("signal {sig} to container {:?}: {e}", req.id),
                ))
            }
        }
        Ok(Empty::new())
    }

    fn wait(&self, _: &TtrpcContext, req: api::WaitRequest) -> R<api::WaitResponse> {
        Self::no_exec(&req.exec_id)?;
        let mut g = self.lock();
        loop {
            let c = g
                .ctrs
                .get(&req.id)
                .ok_or_else(|| Self::not_found(&req.id))?;
            if let Some((status, at)) = &c.exit {
                let mut r = api::WaitResponse::new();
                r.exit_status = *status;
                r.exited_at = MessageField::some(at.clone());
                return Ok(r);
            }
            g = self.exited.wait(g).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn delete(&self, _: &TtrpcContext, req: api::DeleteRequest) -> R<api::DeleteResponse> {
        Self::no_exec(&req.exec_id)?;
        let mut g = self.lock();
        let c = g
            .ctrs
            .get(&req.id)
            .ok_or_else(|| Self::not_found(&req.id))?;
        if c.exit.is_none() {
            if c.started && !c.reaped {
                return Err(err(
                    Code::FAILED_PRECONDITION,
                    format!("container {:?} is running: kill it first", req.id),
                ));
            }
            // Created, never started: kill init and wait for its exit.
            if !c.reaped {
                if let Some(fd) = &c.pidfd {
                    let _ = berth::sys::pidfd_send_signal(fd, libc::SIGKILL);
                }
            }
            let (g2, _) = self
                .exited
                .wait_timeout_while(g, Duration::from_secs(10), |i| {
                    i.ctrs.get(&req.id).is_some_and(|c| c.exit.is_none())
                })
                .unwrap_or_else(|e| e.into_inner());
            g = g2;
        }
        let c = g
            .ctrs
            .get(&req.id)
            .ok_or_else(|| Self::not_found(&req.id))?;
        let (status, at) = c.exit.clone().ok_or_else(|| {
            err(
                Code::DEADLINE_EXCEEDED,
                format!("container {:?} did not exit", req.id),
            )
        })?;
        let (pid, bundle, mounted) = (c.pid, c.bundle.clone(), c.rootfs_mounted);
        drop(g);
        self.destroy(&req.id).map_err(|e| err(Code::UNKNOWN, e))?;
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

    fn pids(&self, _: &TtrpcContext, req: api::PidsRequest) -> R<api::PidsResponse> {
        let g = self.lock();
        let c = g
            .ctrs
            .get(&req.id)
            .ok_or_else(|| Self::not_found(&req.id))?;
        let mut r = api::PidsResponse::new();
        let mut pids = c
            .state
            .as_ref()
            .map(|s| s.cgroups.pids())
            .unwrap_or_default();
        if pids.is_empty() && !c.reaped {
            pids.push(c.pid);
        }
        for pid in pids {
            let mut p = api::ProcessInfo::new();
            p.pid = pid as u32;
            r.processes.push(p);
        }
        Ok(r)
    }

    fn close_io(&self, _: &TtrpcContext, req: api::CloseIORequest) -> R<Empty> {
        Self::no_exec(&req.exec_id)?;
        let mut g = self.lock();
        let c = g
            .ctrs
            .get_mut(&req.id)
            .ok_or_else(|| Self::not_found(&req.id))?;
        if req.stdin {
            if let Some(io) = c.io.as_mut() {
                io.close_stdin();
            }
        }
        Ok(Empty::new())
    }

    fn connect(&self, _: &TtrpcContext, req: api::ConnectRequest) -> R<api::ConnectResponse> {
        let g = self.lock();
        let mut r = api::ConnectResponse::new();
        r.shim_pid = std::process::id();
        r.task_pid = g.ctrs.get(&req.id).map(|c| c.pid as u32).unwrap_or(0);
        r.version = format!("berth {}", berth::VERSION);
        Ok(r)
    }

    fn shutdown(&self, _: &TtrpcContext, _req: api::ShutdownRequest) -> R<Empty> {
        if self.lock().ctrs.is_empty() {
            let _ = self
                .shutdown
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .send(());
        }
        Ok(Empty::new())
    }

    fn exec(&self, _: &TtrpcContext, _: api::ExecProcessRequest) -> R<Empty> {
        Err(unimplemented("Exec is not supported yet: it needs `berth exec` (exec/terminals work, not merged into this build)"))
    }

    fn resize_pty(&self, _: &TtrpcContext, _: api::ResizePtyRequest) -> R<Empty> {
        Err(unimplemented("ResizePty is not supported yet: terminals need berth's console support (exec/terminals work, not merged into this build)"))
    }

    fn pause(&self, _: &TtrpcContext, _: api::PauseRequest) -> R<Empty> {
        Err(unimplemented("Pause is not supported yet: it needs berth's cgroup freezer (cgroups work, not merged into this build)"))
    }

    fn resume(&self, _: &TtrpcContext, _: api::ResumeRequest) -> R<Empty> {
        Err(unimplemented("Resume is not supported yet: it needs berth's cgroup freezer (cgroups work, not merged into this build)"))
    }

    fn update(&self, _: &TtrpcContext, _: api::UpdateTaskRequest) -> R<Empty> {
        Err(unimplemented("Update is not supported yet: it needs berth's cgroup resources (cgroups work, not merged into this build)"))
    }

    fn stats(&self, _: &TtrpcContext, _: api::StatsRequest) -> R<api::StatsResponse> {
        Err(unimplemented("Stats is not supported yet: it needs berth's cgroup stats (cgroups work, not merged into this build)"))
    }

    fn checkpoint(&self, _: &TtrpcContext, _: api::CheckpointTaskRequest) -> R<Empty> {
        Err(unimplemented("Checkpoint is not supported"))
    }
}
