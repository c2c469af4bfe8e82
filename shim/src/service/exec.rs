//! Exec processes (Exec, and their Start and Delete) and terminal sizes.

use containerd_shim_protos::api::{self, Empty};
use containerd_shim_protos::events::task::{TaskExecAdded, TaskExecStarted};
use protobuf::MessageField;
use ttrpc::Code;

use super::{ctr_proc, err, name, not_found, not_stopped, Service, R};
use crate::launcher::{Failure, Started};
use crate::procs::Proc;

/// Exec's check of the request's `spec` (its Any's value): a JSON object
/// now; berth checks the process itself at Start (as runc). Public for the
/// fuzz target (fuzz/).
pub fn exec_spec_ok(spec: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(spec).is_ok_and(|v| v.is_object())
}

impl Service {
    /// Exec: register an exec process (started by Start).
    pub(super) fn add_exec(&self, req: api::ExecProcessRequest) -> R<Empty> {
        if req.exec_id.is_empty() {
            return Err(err(Code::INVALID_ARGUMENT, "exec: exec_id is empty"));
        }
        let spec = req
            .spec
            .as_ref()
            .map(|a| a.value.clone())
            .unwrap_or_default();
        if !exec_spec_ok(&spec) {
            return Err(err(
                Code::INVALID_ARGUMENT,
                format!("exec {:?}: spec: not a process JSON object", req.exec_id),
            ));
        }
        let mut g = self.lock();
        let c = g
            .ctrs
            .get_mut(&req.id)
            .ok_or_else(|| not_found(&req.id, ""))?;
        not_stopped(c, &req.id)?;
        // Refused before anything is published (as runc's shim).
        if c.paused {
            return Err(err(
                Code::FAILED_PRECONDITION,
                format!("container {:?} is paused: cannot exec in it", req.id),
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

    pub(super) fn start_exec(&self, id: &str, exec_id: &str) -> R<u32> {
        let (bundle, spec, stdin, stdout, stderr, terminal) = {
            let mut g = self.lock();
            let c = g.ctrs.get_mut(id).ok_or_else(|| not_found(id, ""))?;
            not_stopped(c, id)?;
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
            .map_err(|e| Failure::from(format!("write {}: {e}", file.display())))
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
                return Err(err(e.code(), format!("{}: {e}", name(id, exec_id))));
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

    pub(super) fn delete_exec(&self, id: &str, exec_id: &str) -> R<api::DeleteResponse> {
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

    /// ResizePty: the terminal size of a process with a terminal.
    pub(super) fn resize_terminal(&self, req: api::ResizePtyRequest) -> R<Empty> {
        let g = self.lock();
        let (_, p) = ctr_proc(&g, &req.id, &req.exec_id)?;
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
}
