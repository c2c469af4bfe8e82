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
//!
//! The launcher and the publisher are injected ([`Launch`], [`Publish`]):
//! the unit tests (`service/tests.rs`) check the event order with fakes of
//! both, no containerd and no container.

mod exec;
mod init;
mod resources;
#[cfg(test)]
mod tests;

pub use exec::exec_spec_ok;

use std::sync::mpsc::Sender;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use containerd_shim_protos::api::{self, Empty};
use containerd_shim_protos::events::task::TaskExit;
use containerd_shim_protos::Task;
use protobuf::well_known_types::timestamp::Timestamp;
use protobuf::MessageField;
use ttrpc::{Code, TtrpcContext};

use crate::io::Stdio;
use crate::launcher::{Failure, Launch, Op};
use crate::oom::OomWatcher;
use crate::procs::{Ctr, Inner, Proc};
use crate::publish::Publish;

type R<T> = ttrpc::Result<T>;

fn err(code: Code, msg: impl Into<String>) -> ttrpc::Error {
    ttrpc::Error::RpcStatus(ttrpc::get_status(code, msg.into()))
}

/// A launcher failure, with the code for its kind.
fn failed(f: Failure) -> ttrpc::Error {
    err(f.code(), f.msg)
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

/// Container `id` and its process `exec_id` (the init when empty).
fn ctr_proc<'a>(g: &'a Inner, id: &str, exec_id: &str) -> R<(&'a Ctr, &'a Proc)> {
    let c = g.ctrs.get(id).ok_or_else(|| not_found(id, ""))?;
    let p = c.proc(exec_id).ok_or_else(|| not_found(id, exec_id))?;
    Ok((c, p))
}

/// FAILED_PRECONDITION unless container `id`'s init is still running.
fn not_stopped(c: &Ctr, id: &str) -> R<()> {
    if c.init.exit.is_some() || c.init.reaped {
        return Err(err(
            Code::FAILED_PRECONDITION,
            format!("container {id:?} has stopped"),
        ));
    }
    Ok(())
}

pub struct Service {
    ns: String,
    root: std::path::PathBuf,
    launcher: Box<dyn Launch>,
    publisher: Arc<dyn Publish>,
    oom: Arc<OomWatcher>,
    inner: Mutex<Inner>,
    exited: Condvar,
    shutdown: Mutex<Sender<()>>,
}

impl Service {
    pub fn new(
        ns: String,
        launcher: impl Launch + 'static,
        publisher: impl Publish + 'static,
        oom: Arc<OomWatcher>,
        shutdown: Sender<()>,
    ) -> Service {
        Service {
            root: crate::berth_root(&ns),
            ns,
            launcher: Box::new(launcher),
            publisher: Arc::new(publisher),
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
        let ctr = match g.ctrs.get(&id) {
            Some(c) if exec_id.is_empty() => Some((c.bundle.clone(), c.cgroup_dirs.clone())),
            _ => None,
        };
        drop(g);
        if let Some((bundle, cgroup_dirs)) = ctr {
            for pid in crate::procs::left_after_init(&bundle, &cgroup_dirs) {
                // SAFETY: kill takes integers and touches no memory. (The pids were just read
                // from the container's cgroups; a reused pid is runc's kill --all race too.)
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
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

    /// Remove berth's state and cgroups of a dead container.
    fn destroy(&self, id: &str) -> Result<(), Failure> {
        self.launcher.run(&self.root, id, Op::Destroy)
    }

    /// A berth operation on container `id` (which must be ours).
    fn op(&self, id: &str, op: Op) -> R<()> {
        if !self.lock().ctrs.contains_key(id) {
            return Err(not_found(id, ""));
        }
        self.launcher.run(&self.root, id, op).map_err(failed)
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
        let pid = self.do_create(&req).map_err(failed)?;
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
        self.add_exec(req)
    }

    fn state(&self, _: &TtrpcContext, req: api::StateRequest) -> R<api::StateResponse> {
        let g = self.lock();
        let (c, p) = ctr_proc(&g, &req.id, &req.exec_id)?;
        Ok(p.state(&req.id, &req.exec_id, &c.bundle.to_string_lossy(), c.paused))
    }

    fn kill(&self, _: &TtrpcContext, req: api::KillRequest) -> R<Empty> {
        let g = self.lock();
        let (c, p) = ctr_proc(&g, &req.id, &req.exec_id)?;
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
                // SAFETY: kill takes integers and touches no memory. (The pids were just read
                // from the container's cgroups; a reused pid is runc's kill --all race too.)
                unsafe { libc::kill(pid, sig) };
            }
        }
        // Through the pidfd: the reaper may have reaped the process a moment
        // ago (before it took the lock), and its pid may be reused.
        let r = match &p.pidfd {
            Some(fd) => berth::os::pidfd_send_signal(fd, sig),
            None => Err(std::io::Error::from_raw_os_error(libc::ESRCH)),
        };
        // A frozen container cannot die: SIGKILL thaws it (as runc does).
        let thaw = r.is_ok() && sig == libc::SIGKILL && req.exec_id.is_empty() && c.paused;
        drop(g);
        if thaw {
            self.launcher
                .run(&self.root, &req.id, Op::Resume)
                .map_err(|e| err(e.code(), format!("{what}: thaw after SIGKILL: {e}")))?;
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
        self.delete_init(req)
    }

    fn pids(&self, _: &TtrpcContext, req: api::PidsRequest) -> R<api::PidsResponse> {
        self.task_pids(req)
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
        self.resize_terminal(req)
    }

    fn pause(&self, _: &TtrpcContext, req: api::PauseRequest) -> R<Empty> {
        self.set_paused(&req.id, true)
    }

    fn resume(&self, _: &TtrpcContext, req: api::ResumeRequest) -> R<Empty> {
        self.set_paused(&req.id, false)
    }

    fn update(&self, _: &TtrpcContext, req: api::UpdateTaskRequest) -> R<Empty> {
        self.update_resources(req)
    }

    fn stats(&self, _: &TtrpcContext, req: api::StatsRequest) -> R<api::StatsResponse> {
        self.task_stats(req)
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
