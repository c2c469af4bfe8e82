//! A ttrpc frame sent to the shim's task service (shim/src/server.rs,
//! service/): the 10-byte header, the ttrpc Request, the task API message
//! its method names, and what the shim decodes from that message itself
//! (Create's rootfs mount options, Exec's process spec, Update's
//! resources) before any operation runs.
#![no_main]

use berth_shim::launcher::protocol::resources_from_any;
use berth_shim::mounts::parse_options;
use berth_shim::service::exec_spec_ok;
use containerd_shim_protos::api;
use libfuzzer_sys::fuzz_target;

/// Update's resources: decoded as the shim decodes them (once, into the
/// launcher request), then merged as `berth update` merges them.
fn update(data: &[u8]) {
    if let Ok(r) = resources_from_any(data) {
        let _ = berth::fuzzing::Resources::default().merge_spec(&r, true);
    }
}
use protobuf::Message;
use ttrpc::proto::{
    Codec, MessageHeader, Request, MESSAGE_HEADER_LENGTH, MESSAGE_LENGTH_MAX, MESSAGE_TYPE_REQUEST,
};

fn decode<M: Message>(payload: &[u8]) -> Option<M> {
    M::parse_from_bytes(payload).ok()
}

fn task_request(method: &str, payload: &[u8]) {
    match method {
        "Create" => {
            if let Some(r) = decode::<api::CreateTaskRequest>(payload) {
                for m in &r.rootfs {
                    let _ = parse_options(&m.options);
                }
            }
        }
        "Exec" => {
            if let Some(r) = decode::<api::ExecProcessRequest>(payload) {
                let spec = r.spec.as_ref().map(|a| a.value.clone()).unwrap_or_default();
                if exec_spec_ok(&spec) {
                    let _ = berth::fuzzing::parse_process("exec spec", &spec);
                }
            }
        }
        "Update" => {
            if let Some(r) = decode::<api::UpdateTaskRequest>(payload) {
                if let Some(a) = r.resources.as_ref() {
                    update(&a.value);
                }
            }
        }
        "State" => drop(decode::<api::StateRequest>(payload)),
        "Start" => drop(decode::<api::StartRequest>(payload)),
        "Delete" => drop(decode::<api::DeleteRequest>(payload)),
        "Pids" => drop(decode::<api::PidsRequest>(payload)),
        "Pause" => drop(decode::<api::PauseRequest>(payload)),
        "Resume" => drop(decode::<api::ResumeRequest>(payload)),
        "Kill" => drop(decode::<api::KillRequest>(payload)),
        "ResizePty" => drop(decode::<api::ResizePtyRequest>(payload)),
        "CloseIO" => drop(decode::<api::CloseIORequest>(payload)),
        "Wait" => drop(decode::<api::WaitRequest>(payload)),
        "Stats" => drop(decode::<api::StatsRequest>(payload)),
        "Connect" => drop(decode::<api::ConnectRequest>(payload)),
        "Shutdown" => drop(decode::<api::ShutdownRequest>(payload)),
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < MESSAGE_HEADER_LENGTH {
        return;
    }
    let h = MessageHeader::from(&data[..MESSAGE_HEADER_LENGTH]);
    let body = &data[MESSAGE_HEADER_LENGTH..];
    if h.type_ != MESSAGE_TYPE_REQUEST
        || h.length as usize > MESSAGE_LENGTH_MAX
        || h.length as usize != body.len()
    {
        return;
    }
    let Ok(req) = Request::decode(body) else {
        return;
    };
    if req.service == "containerd.task.v2.Task" {
        task_request(&req.method, &req.payload);
    }
});
