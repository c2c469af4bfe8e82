//! The Task service (containerd.task.v2.Task) over the berth library.
//!
//! One mutex guards the containers and their processes; events are queued
//! under it, so they reach containerd in order: TaskCreate, TaskStart,
//! TaskExecAdded, TaskExecStarted, TaskPaused, TaskResumed, TaskOOM,
//! TaskExit, TaskDelete. An exit that arrives while Start is still running
//! is held back until the start event is out; a pending OOM event of a
//! container goes out before its init's exit.
//!
//! Every berth operation on a container (create, start, exec, pause,
//! resume, update, stats, destroy) runs in a child of the single-threaded
//! launcher ([`crate::launcher`]); signals (pidfds), reaping, stdio, events
//! and the OOM watch run here.

use std::path::Path;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use containerd_shim_protos::api::{self, Empty};
use containerd_shim_protos::events::task::{
    TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskIO, TaskPaused,
    TaskResumed, TaskStart,
};
use containerd_shim_protos::Task;
use protobuf::well_known_types::timestamp::Timestamp;
use protobuf::MessageField;
use ttrpc::{Code, TtrpcContext};

use crate::io::{ConsoleSocket, Stdio};
use crate::launcher::{Launcher, Started};
use crate::oom::OomWatcher;
use crate::procs::{Ctr, Inner, Proc};
use crate::publish::Publisher;

type R<T> = ttrpc::Result<T>;

fn err(code: Code, msg: impl Into<String>) -> ttrpc::Error {
    ttrpc::Error::RpcStatus(ttrpc::get_status(code, msg.into()))
}

fn not_found(id: &str, exec_id: &str) -> ttrpc::Error {
    if exec_id.is_empty() {
        err(Code::NOT_FOUND, format!("container {id:?} not found"))
    } else {
        err(
            Code::NOT_FOUND,
            format!("exec {exec_id:?} in container {id:?} not found"),
        )
    }
}

fn name(id: &str, exec_id: &str) -> String {
    if exec_id.is_empty() {
        format!("container {id:?}")
    } else {
        format!("exec {exec_id:?} of container {id:?}")
    }
}

pub struct Service {
    ns: String,
    root: std::path::PathBuf,
    launcher: Launcher,
    publisher: Publisher,
    oom: Arc<OomWatcher>,
    inner: Mutex<Inner>,
    exited: Condvar,
    shutdown: Mutex<Sender<()>>,
}

impl Service {
    pub fn new(
        ns: String,
        launcher: Launcher,
        publisher: Publisher,
        oom: Arc<OomWatcher>,
        shutdown: Sender<()>,
    ) -> Service {
        Service {
            root: crate::berth_root(&ns),
            ns,
            launcher,
            publisher,
            oom,
            inner: Mutex::new(Inner {
                ctrs: Default::default(),
                unclaimed: Default::default(),
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
        if self.launcher.owns(pid) {
            return;
        }
        let mut g = self.lock();
        let Some((id, exec_id)) = g.find_pid(pid) else {
            if g.unclaimed.len() < 4096 {
                g.unclaimed.insert(pid, status);
            }
            return;
        };
        let p = g.get(&id, &exec_id).unwrap();
        p.reaped = true;
        let io = p.io.take();
        drop(g);
        self.finish_exit(id, exec_id, status, io);
    }

    /// A process was just registered with `pid`: its exit may have come
    /// already. (An entry for a pid whose process is alive is stale: an
    /// earlier child with that pid.)
    fn claim_early_exit(&self, mut g: MutexGuard<'_, Inner>, id: &str, exec_id: &str) {
        let Some(p) = g.get(id, exec_id) else { return };
        let pid = p.pid;
        if !p.gone() {
            return;
        }
        let Some(status) = g.unclaimed.remove(&pid) else {
            return;
        };
        let p = g.get(id, exec_id).unwrap();
        p.reaped = true;
        let io = p.io.take();
        drop(g);
        self.finish_exit(id.to_string(), exec_id.to_string(), status, io);
    }

    /// Drain the output copies (off the reaper thread), then record the exit,
    /// wake Wait and publish TaskExit.
    fn finish_exit(&self, id: String, exec_id: String, status: u32, io: Option<Stdio>) {
        // SAFETY: the server holds the Service in an Arc it never drops (the
        // process ends with exit), so it outlives this thread.
        let me: &'static Service = unsafe { &*(self as *const Service) };
        let run = move || {
            if let Some(mut io) = io {
                io.close_stdin();
                io.drain(Duration::from_secs(2));
            }
            if exec_id.is_empty() {
                me.oom.check(&id);
            }
            let mut g = me.lock();
            if let Some(p) = g.get(&id, &exec_id) {
                p.exit = Some((status, Timestamp::now()));
                if !p.starting {
                    me.publish_exit(&id, &exec_id, p);
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

    fn publish_exit(&self, id: &str, exec_id: &str, p: &mut Proc) {
        if p.exit_published {
            return;
        }
        let Some((status, at)) = &p.exit else { return };
        p.exit_published = true;
        let mut e = TaskExit::new();
        e.container_id = id.to_string();
        e.id = if exec_id.is_empty() { id } else { exec_id }.to_string();
        e.pid = p.pid as u32;
        e.exit_status = *status;
        e.exited_at = MessageField::some(at.clone());
        self.publisher
            .publish("/tasks/exit", "containerd.events.TaskExit", &e);
    }

    fn do_create(&self, req: &api::CreateTaskRequest) -> Result<u32, String> {
        if !req.checkpoint.is_empty() {
            return Err("restoring from a checkpoint is not supported".into());
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
                if !req.rootfs.is_empty() {
                    let _ = crate::mounts::unmount_rootfs(&rootfs);
                }
                return Err(e);
            }
        };
        let (pid, pidfd) = (started.pid, started.pidfd);
        let reply = &started.reply;
        let cgroup_dirs: Vec<std::path::PathBuf> = reply
            .get("procs_dirs")
            .and_then(|d| d.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|p| p.as_str())
                    .map(Into::into)
                    .collect()
            })
            .unwrap_or_default();
        let v2 = reply.get("v2").and_then(|v| v.as_bool()).unwrap_or(false);
        match reply.get("memory_dir").and_then(|d| d.as_str()) {
            Some(dir) => {
                if let Err(e) = self.oom.add(&req.id, Path::new(dir), v2) {
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
    fn launch(
        &self,
        id: &str,
        [stdin, stdout, stderr]: [&str; 3],
        terminal: bool,
        start: impl FnOnce([std::os::fd::RawFd; 3], Option<&Path>) -> Result<Started, String>,
    ) -> Result<(Started, Stdio), String> {
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
                        let _ = berth::sys::pidfd_send_signal(fd, libc::SIGKILL);
                    }
                    Err(e)
                }
            };
        }
        let mut io = crate::io::setup(id, &self.ns, stdin, stdout, stderr)?;
        let started = start(io.raw(), None)?;
        io.init_fds.clear();
        Ok((started, io))
    }

    /// Remove berth's state and cgroups of a dead container.
    fn destroy(&self, id: &str) -> Result<(), String> {
        self.launcher
            .op("destroy", &self.root, id, None)
            .map(|_| ())
    }

    fn start_init(&self, id: &str) -> R<u32> {
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
        let r = self.launcher.op("start", &self.root, id, None);
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
        r.map_err(|e| err(Code::UNKNOWN, e))?;
        Ok(pid as u32)
    }

    fn start_exec(&self, id: &str, exec_id: &str) -> R<u32> {
        let (bundle, spec, stdin, stdout, stderr, terminal) = {
            let mut g = self.lock();
            let c = g.ctrs.get_mut(id).ok_or_else(|| not_found(id, ""))?;
            if c.init.exit.is_some() || c.init.reaped {
                return Err(err(
                    Code::FAILED_PRECONDITION,
                    format!("container {id:?} has stopped"),
                ));
            }
            let bundle = c.bundle.clone();
            let p = c
                .execs
                .get_mut(exec_id)
                .ok_or_else(|| not_found(id, exec_id))?;
            if p.started || p.starting {
                return Err(err(
                    Code::FAILED_PRECONDITION,
                    format!("{} was started already", name(id, exec_id)),
                ));
            }
            p.starting = true;
            let t = (p.stdin.clone(), p.stdout.clone(), p.stderr.clone());
            (
                bundle,
                std::mem::take(&mut p.spec),
                t.0,
                t.1,
                t.2,
                p.terminal,
            )
        };
        // The process.json for berth's exec, next to the bundle's config.
        let file = bundle.join(format!(".berth-exec-{}.json", crate::fnv(&[id, exec_id])));
        let r = std::fs::write(&file, &spec)
            .map_err(|e| format!("write {}: {e}", file.display()))
            .and_then(|()| {
                self.launch(id, [&stdin, &stdout, &stderr], terminal, |io, console| {
                    self.launcher.exec(&self.root, id, &file, console, io)
                })
            });
        let _ = std::fs::remove_file(&file);
        let mut g = self.lock();
        let Some(p) = g.get(id, exec_id) else {
            // Deleted meanwhile (it cannot be: Delete refuses a starting exec).
            return Err(not_found(id, exec_id));
        };
        p.starting = false;
        let (Started { pid, pidfd, .. }, io) = match r {
            Ok(x) => x,
            Err(e) => {
                p.spec = spec;
                return Err(err(Code::UNKNOWN, format!("{}: {e}", name(id, exec_id))));
            }
        };
        p.pid = pid;
        p.pidfd = pidfd;
        p.io = Some(io);
        p.started = true;
        let mut e = TaskExecStarted::new();
        e.container_id = id.to_string();
        e.exec_id = exec_id.to_string();
        e.pid = pid as u32;
        self.publisher.publish(
            "/tasks/exec-started",
            "containerd.events.TaskExecStarted",
            &e,
        );
        // Its exit may have come before it was registered.
        if p.exit.is_some() {
            self.publish_exit(id, exec_id, p);
        }
        self.claim_early_exit(g, id, exec_id);
        Ok(pid as u32)
    }

    /// A berth operation on container `id` (which must be ours).
    fn op(&self, op: &str, id: &str, arg: Option<&str>) -> R<serde_json::Value> {
        if !self.lock().ctrs.contains_key(id) {
            return Err(not_found(id, ""));
        }
        self.launcher
            .op(op, &self.root, id, arg)
            .map_err(|e| err(Code::FAILED_PRECONDITION, e))
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
        r.pid = pid;
        Ok(r)
    }

    fn start(&self, _: &TtrpcContext, req: api::StartRequest) -> R<api::StartResponse> {
        let pid = if req.exec_id.is_empty() {
            self.start_init(&req.id)?
        } else {
            self.start_exec(&req.id, &req.exec_id)?
        };
        let mut resp = api::StartResponse::new();
        resp.pid = pid;
        Ok(resp)
    }

    fn exec(&self, _: &TtrpcContext, req: api::ExecProcessRequest) -> R<Empty> {
        if req.exec_id.is_empty() {
            return Err(err(Code::INVALID_ARGUMENT, "exec: exec_id is empty"));
        }
        let spec = req
            .spec
            .as_ref()
            .map(|a| a.value.clone())
            .unwrap_or_default();
        // JSON now; berth checks the process itself at Start (as runc).
        serde_json::from_slice::<serde_json::Value>(&spec)
            .ok()
            .filter(|v| v.is_object())
            .ok_or_else(|| {
                err(
                    Code::INVALID_ARGUMENT,
                    format!("exec {:?}: spec: not a process JSON object", req.exec_id),
                )
            })?;
        let mut g = self.lock();
        let c = g
            .ctrs
            .get_mut(&req.id)
            .ok_or_else(|| not_found(&req.id, ""))?;
        if c.init.exit.is_some() || c.init.reaped {
            return Err(err(
                Code::FAILED_PRECONDITION,
                format!("container {:?} has stopped", req.id),
            ));
        }
        if c.execs.contains_key(&req.exec_id) {
            return Err(err(
                Code::ALREADY_EXISTS,
                format!("exec {:?} already exists", req.exec_id),
            ));
        }
        c.execs.insert(
            req.exec_id.clone(),
            Proc {
                stdin: req.stdin.clone(),
                stdout: req.stdout.clone(),
                stderr: req.stderr.clone(),
                terminal: req.terminal,
                spec,
                ..Default::default()
            },
        );
        let mut e = TaskExecAdded::new();
        e.container_id = req.id.clone();
        e.exec_id = req.exec_id.clone();
        self.publisher
            .publish("/tasks/exec-added", "containerd.events.TaskExecAdded", &e);
        Ok(Empty::new())
    }

    fn state(&self, _: &TtrpcContext, req: api::StateRequest) -> R<api::StateResponse> {
        let g = self.lock();
        let c = g.ctrs.get(&req.id).ok_or_else(|| not_found(&req.id, ""))?;
        let p = c
            .proc(&req.exec_id)
            .ok_or_else(|| not_found(&req.id, &req.exec_id))?;
        Ok(p.state(&req.id, &req.exec_id, &c.bundle.to_string_lossy(), c.paused))
    }

    fn kill(&self, _: &TtrpcContext, req: api::KillRequest) -> R<Empty> {
        let g = self.lock();
        let c = g.ctrs.get(&req.id).ok_or_else(|| not_found(&req.id, ""))?;
        let p = c
            .proc(&req.exec_id)
            .ok_or_else(|| not_found(&req.id, &req.exec_id))?;
        let what = name(&req.id, &req.exec_id);
        if !req.exec_id.is_empty() && !p.started {
            return Err(err(
                Code::FAILED_PRECONDITION,
                format!("{what}: not started"),
            ));
        }
        if p.reaped {
            return Err(err(
                Code::NOT_FOUND,
                format!("{what}: process already finished"),
            ));
        }
        let sig = req.signal as i32;
        if req.all && req.exec_id.is_empty() {
            for pid in c.cgroup_pids() {
                unsafe { libc::kill(pid, sig) };
            }
        }
        // Through the pidfd: the reaper may have reaped the process a moment
        // ago (before it took the lock), and its pid may be reused.
        let r = match &p.pidfd {
            Some(fd) => berth::sys::pidfd_send_signal(fd, sig),
            None => Err(std::io::Error::from_raw_os_error(libc::ESRCH)),
        };
        // A frozen container cannot die: SIGKILL thaws it (as runc does).
        let thaw = r.is_ok() && sig == libc::SIGKILL && req.exec_id.is_empty() && c.paused;
        drop(g);
        if thaw {
            self.launcher
                .op("resume", &self.root, &req.id, None)
                .map_err(|e| err(Code::UNKNOWN, format!("{what}: thaw after SIGKILL: {e}")))?;
            if let Some(c) = self.lock().ctrs.get_mut(&req.id) {
                c.paused = false;
            }
        }
        match r {
            Ok(()) => Ok(Empty::new()),
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Err(err(
                Code::NOT_FOUND,
                format!("{what}: process already finished"),
            )),
            Err(e) => Err(err(Code::UNKNOWN, format!("signal {sig} to {what}: {e}"))),
        }
    }

    fn wait(&self, _: &TtrpcContext, req: api::WaitRequest) -> R<api::WaitResponse> {
        let mut g = self.lock();
        loop {
            let p = g
                .get(&req.id, &req.exec_id)
                .ok_or_else(|| not_found(&req.id, &req.exec_id))?;
            if let Some((status, at)) = &p.exit {
                let mut r = api::WaitResponse::new();
                r.exit_status = *status;
                r.exited_at = MessageField::some(at.clone());
                return Ok(r);
            }
            g = self.exited.wait(g).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn delete(&self, _: &TtrpcContext, req: api::DeleteRequest) -> R<api::DeleteResponse> {
        if !req.exec_id.is_empty() {
            return self.delete_exec(&req.id, &req.exec_id);
        }
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
                    let _ = berth::sys::pidfd_send_signal(fd, libc::SIGKILL);
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
        let c = g.ctrs.get(&req.id).ok_or_else(|| not_found(&req.id, ""))?;
        let mut r = api::PidsResponse::new();
        let mut pids = c.cgroup_pids();
        if pids.is_empty() && !c.init.reaped {
            pids.push(c.init.pid);
        }
        for pid in pids {
            let mut p = api::ProcessInfo::new();
            p.pid = pid as u32;
            r.processes.push(p);
        }
        Ok(r)
    }

    fn close_io(&self, _: &TtrpcContext, req: api::CloseIORequest) -> R<Empty> {
        let mut g = self.lock();
        let p = g
            .get(&req.id, &req.exec_id)
            .ok_or_else(|| not_found(&req.id, &req.exec_id))?;
        if req.stdin {
            if let Some(io) = p.io.as_mut() {
                io.close_stdin();
            }
        }
        Ok(Empty::new())
    }

    fn resize_pty(&self, _: &TtrpcContext, req: api::ResizePtyRequest) -> R<Empty> {
        let g = self.lock();
        let c = g.ctrs.get(&req.id).ok_or_else(|| not_found(&req.id, ""))?;
        let p = c
            .proc(&req.exec_id)
            .ok_or_else(|| not_found(&req.id, &req.exec_id))?;
        let what = name(&req.id, &req.exec_id);
        if !p.terminal {
            return Err(err(
                Code::FAILED_PRECONDITION,
                format!("{what}: the process has no terminal"),
            ));
        }
        let io =
            p.io.as_ref()
                .ok_or_else(|| err(Code::FAILED_PRECONDITION, format!("{what}: not running")))?;
        io.resize(req.width, req.height)
            .map_err(|e| err(Code::FAILED_PRECONDITION, format!("{what}: {e}")))?;
        Ok(Empty::new())
    }

    fn pause(&self, _: &TtrpcContext, req: api::PauseRequest) -> R<Empty> {
        self.op("pause", &req.id, None)?;
        let mut g = self.lock();
        if let Some(c) = g.ctrs.get_mut(&req.id) {
            c.paused = true;
        }
        let mut e = TaskPaused::new();
        e.container_id = req.id.clone();
        self.publisher
            .publish("/tasks/paused", "containerd.events.TaskPaused", &e);
        Ok(Empty::new())
    }

    fn resume(&self, _: &TtrpcContext, req: api::ResumeRequest) -> R<Empty> {
        self.op("resume", &req.id, None)?;
        let mut g = self.lock();
        if let Some(c) = g.ctrs.get_mut(&req.id) {
            c.paused = false;
        }
        let mut e = TaskResumed::new();
        e.container_id = req.id.clone();
        self.publisher
            .publish("/tasks/resumed", "containerd.events.TaskResumed", &e);
        Ok(Empty::new())
    }

    fn update(&self, _: &TtrpcContext, req: api::UpdateTaskRequest) -> R<Empty> {
        let data = req
            .resources
            .as_ref()
            .map(|a| a.value.as_slice())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| err(Code::INVALID_ARGUMENT, "update: no resources given"))?;
        // A LinuxResources JSON document, as containerd's runc shim reads it;
        // berth merges it as `berth update -r`.
        let json = std::str::from_utf8(data)
            .map_err(|_| err(Code::INVALID_ARGUMENT, "update: resources: not UTF-8 JSON"))?;
        self.op("update", &req.id, Some(json))?;
        Ok(Empty::new())
    }

    fn stats(&self, _: &TtrpcContext, req: api::StatsRequest) -> R<api::StatsResponse> {
        let v = self.op("stats", &req.id, None)?;
        let mut any = protobuf::well_known_types::any::Any::new();
        any.type_url = v
            .get("type_url")
            .and_then(|t| t.as_str())
            .unwrap_or_default()
            .to_string();
        any.value = v
            .get("value")
            .and_then(|t| t.as_str())
            .and_then(crate::ops::unhex)
            .ok_or_else(|| err(Code::UNKNOWN, "stats: bad reply from the launcher"))?;
        let mut r = api::StatsResponse::new();
        r.stats = MessageField::some(any);
        Ok(r)
    }

    fn connect(&self, _: &TtrpcContext, req: api::ConnectRequest) -> R<api::ConnectResponse> {
        let g = self.lock();
        let mut r = api::ConnectResponse::new();
        r.shim_pid = std::process::id();
        r.task_pid = g.ctrs.get(&req.id).map(|c| c.init.pid as u32).unwrap_or(0);
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

    fn checkpoint(&self, _: &TtrpcContext, _: api::CheckpointTaskRequest) -> R<Empty> {
        Err(err(
            Code::UNIMPLEMENTED,
            "containerd-shim-berth-v2: Checkpoint is not supported (berth has no checkpoint/restore)",
        ))
    }
}

impl Service {
    fn delete_exec(&self, id: &str, exec_id: &str) -> R<api::DeleteResponse> {
        let mut g = self.lock();
        let c = g.ctrs.get_mut(id).ok_or_else(|| not_found(id, ""))?;
        let p = c.execs.get(exec_id).ok_or_else(|| not_found(id, exec_id))?;
        if p.starting || (p.started && p.exit.is_none()) {
            return Err(err(
                Code::FAILED_PRECONDITION,
                format!("{} is running: kill it first", name(id, exec_id)),
            ));
        }
        let p = c.execs.remove(exec_id).unwrap();
        let mut r = api::DeleteResponse::new();
        r.pid = p.pid as u32;
        if let Some((status, at)) = p.exit {
            r.exit_status = status;
            r.exited_at = MessageField::some(at);
        }
        Ok(r)
    }
}
