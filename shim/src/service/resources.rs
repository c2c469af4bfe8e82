//! The container's resources: Pause, Resume, Update, Stats and Pids.

use containerd_shim_protos::api::{self, Empty};
use containerd_shim_protos::events::task::{TaskPaused, TaskResumed};
use protobuf::MessageField;
use ttrpc::Code;

use super::{err, failed, not_found, Service, R};
use crate::launcher::{protocol, Op};

impl Service {
    /// Pause (freeze) or resume (thaw) container `id`, then publish
    /// TaskPaused or TaskResumed.
    pub(super) fn set_paused(&self, id: &str, paused: bool) -> R<Empty> {
        self.op(id, if paused { Op::Pause } else { Op::Resume })?;
        let mut g = self.lock();
        if let Some(c) = g.ctrs.get_mut(id) {
            c.paused = paused;
        }
        if paused {
            let mut e = TaskPaused::new();
            e.container_id = id.to_string();
            self.publisher
                .publish("/tasks/paused", "containerd.events.TaskPaused", &e);
        } else {
            let mut e = TaskResumed::new();
            e.container_id = id.to_string();
            self.publisher
                .publish("/tasks/resumed", "containerd.events.TaskResumed", &e);
        }
        Ok(Empty::new())
    }

    /// Update: new cgroup limits.
    pub(super) fn update_resources(&self, req: api::UpdateTaskRequest) -> R<Empty> {
        let data = req
            .resources
            .as_ref()
            .map(|a| a.value.as_slice())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| err(Code::INVALID_ARGUMENT, "update: no resources given"))?;
        if !self.lock().ctrs.contains_key(&req.id) {
            return Err(not_found(&req.id, ""));
        }
        // A LinuxResources JSON document, as containerd's runc shim reads it:
        // decoded by the request child; berth merges it as `berth update -r`.
        let update = protocol::update(data).map_err(failed)?;
        self.op(&req.id, update)?;
        Ok(Empty::new())
    }

    /// Stats: the container's cgroup metrics, as containerd's runc shim
    /// encodes them.
    pub(super) fn task_stats(&self, req: api::StatsRequest) -> R<api::StatsResponse> {
        if !self.lock().ctrs.contains_key(&req.id) {
            return Err(not_found(&req.id, ""));
        }
        let (type_url, value) = self.launcher.stats(&self.root, &req.id).map_err(failed)?;
        let mut any = protobuf::well_known_types::any::Any::new();
        any.type_url = type_url;
        any.value = value;
        let mut r = api::StatsResponse::new();
        r.stats = MessageField::some(any);
        Ok(r)
    }

    /// Pids: the processes in the container's cgroup.
    pub(super) fn task_pids(&self, req: api::PidsRequest) -> R<api::PidsResponse> {
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
}
