//! Standing in for containerd's event service: the shim runs
//! `berthctl --address <root>/events publish --topic T --namespace N` with
//! the event (a protobuf Any) on stdin; berthctl appends it as one JSON
//! line to `containers/<id>/events`. A container already removed gets
//! nothing (the file is never created here).

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::path::Path;

use containerd_shim_protos::events::task::{
    TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskOOM, TaskPaused, TaskResumed, TaskStart,
};
use protobuf::well_known_types::any::Any;
use protobuf::Message;
use serde_json::{json, Value};

fn decode(any: &Any) -> Result<(String, Value), String> {
    let t = any.type_url.rsplit('/').next().unwrap_or("");
    let v = &any.value;
    let bad = |e: protobuf::Error| format!("decode {t}: {e}");
    Ok(match t {
        "containerd.events.TaskCreate" => {
            let e = TaskCreate::parse_from_bytes(v).map_err(bad)?;
            (e.container_id, json!({"pid": e.pid, "bundle": e.bundle}))
        }
        "containerd.events.TaskStart" => {
            let e = TaskStart::parse_from_bytes(v).map_err(bad)?;
            (e.container_id, json!({"pid": e.pid}))
        }
        "containerd.events.TaskExit" => {
            let e = TaskExit::parse_from_bytes(v).map_err(bad)?;
            (e.container_id, json!({"id": e.id, "pid": e.pid, "exit_status": e.exit_status}))
        }
        "containerd.events.TaskDelete" => {
            let e = TaskDelete::parse_from_bytes(v).map_err(bad)?;
            (e.container_id, json!({"pid": e.pid, "exit_status": e.exit_status}))
        }
        "containerd.events.TaskOOM" => (TaskOOM::parse_from_bytes(v).map_err(bad)?.container_id, json!({})),
        "containerd.events.TaskPaused" => (TaskPaused::parse_from_bytes(v).map_err(bad)?.container_id, json!({})),
        "containerd.events.TaskResumed" => (TaskResumed::parse_from_bytes(v).map_err(bad)?.container_id, json!({})),
        "containerd.events.TaskExecAdded" => {
            let e = TaskExecAdded::parse_from_bytes(v).map_err(bad)?;
            (e.container_id, json!({"exec_id": e.exec_id}))
        }
        "containerd.events.TaskExecStarted" => {
            let e = TaskExecStarted::parse_from_bytes(v).map_err(bad)?;
            (e.container_id, json!({"exec_id": e.exec_id, "pid": e.pid}))
        }
        other => return Err(format!("unknown event type {other:?}")),
    })
}

/// The hidden `publish` subcommand.
pub fn publish(address: Option<&str>, topic: &str, namespace: &str) -> Result<(), String> {
    let address = address.ok_or("publish: --address is required")?;
    let root = Path::new(address).parent().ok_or("publish: --address has no parent directory")?;
    let mut data = Vec::new();
    std::io::stdin().read_to_end(&mut data).map_err(|e| format!("publish: read stdin: {e}"))?;
    let any = Any::parse_from_bytes(&data).map_err(|e| format!("publish: stdin is not a protobuf Any: {e}"))?;
    let (id, mut fields) = decode(&any)?;
    crate::store::check_name(&id)?;
    let path = root.join("containers").join(&id).join("events");
    let mut f = match OpenOptions::new().append(true).open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("publish: {}: {e}", path.display())),
    };
    fields["topic"] = json!(topic);
    fields["namespace"] = json!(namespace);
    fields["container"] = json!(id);
    fields["time"] = json!(crate::store::now());
    let mut line = serde_json::to_vec(&fields).unwrap();
    line.push(b'\n');
    f.write_all(&line).map_err(|e| format!("publish: {}: {e}", path.display()))
}
