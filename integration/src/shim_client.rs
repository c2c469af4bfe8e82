//! A task API (v2) client that talks to a shim directly, for RPCs `ctr`
//! cannot send (Update).

use containerd_shim_protos::api::UpdateTaskRequest;
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::MessageField;
use containerd_shim_protos::TaskClient;

/// Update task `id` with a linux.resources JSON document, as containerd
/// sends it (`specs.LinuxResources` marshalled by typeurl as JSON).
pub fn update(address: &str, id: &str, resources_json: &str) -> Result<(), String> {
    let client = ttrpc::Client::connect(address).map_err(|e| format!("connect {address}: {e}"))?;
    let task = TaskClient::new(client);
    let mut any = Any::new();
    any.type_url = "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources".into();
    any.value = resources_json.as_bytes().to_vec();
    let mut req = UpdateTaskRequest::new();
    req.id = id.to_string();
    req.resources = MessageField::some(any);
    task.update(ttrpc::context::with_timeout(10_000_000_000), &req)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// A task API client of the shim at `address` (10 s per call).
pub fn connect(address: &str) -> Result<TaskClient, String> {
    let client = ttrpc::Client::connect(address).map_err(|e| format!("connect {address}: {e}"))?;
    Ok(TaskClient::new(client))
}

/// The context for one call: a 10 s deadline.
pub fn ctx() -> ttrpc::context::Context {
    ttrpc::context::with_timeout(10_000_000_000)
}

/// The ttrpc code of a failed call (UNKNOWN for a transport error), and
/// the error as text.
pub fn code(r: Result<impl std::fmt::Debug, ttrpc::Error>) -> (ttrpc::Code, String) {
    match r {
        Ok(v) => panic!("the call succeeded: {v:?}"),
        Err(ttrpc::Error::RpcStatus(s)) => (
            s.code.enum_value_or(ttrpc::Code::UNKNOWN),
            s.message.clone(),
        ),
        Err(e) => (ttrpc::Code::UNKNOWN, e.to_string()),
    }
}
