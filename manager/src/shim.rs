//! Driving `containerd-shim-berth-v2` as containerd does: `start` with
//! containerd's flags (cwd = bundle) prints the shim's ttrpc address, then
//! the Task API v2 over ttrpc. The shim publishes its events by running
//! `-publish-binary`, which is berthctl itself (`berthctl --address A
//! publish ...`, see [`crate::events`]); `-address` is `<root>/events`, so
//! the publisher finds the store.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use containerd_shim_protos::api;
use containerd_shim_protos::shim::shim_ttrpc::TaskClient;
use ttrpc::Code;

pub const SHIM: &str = "containerd-shim-berth-v2";

/// The shim binary: $BERTHCTL_SHIM, next to berthctl, or on PATH.
pub fn binary() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("BERTHCTL_SHIM") {
        return Ok(PathBuf::from(p));
    }
    if let Ok(exe) = std::env::current_exe() {
        let p = exe.with_file_name(SHIM);
        if p.is_file() {
            return Ok(p);
        }
    }
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        let p = dir.join(SHIM);
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(format!("{SHIM} not found next to berthctl nor on PATH (build it: cargo build -p containerd-shim-berth-v2; or set BERTHCTL_SHIM)"))
}

/// The containerd namespace of a store: one per --root, so stores never
/// share berth state (/run/containerd-berth/<ns>) or shim sockets.
pub fn namespace(root: &Path) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in root.as_os_str().as_encoded_bytes() {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("berthctl-{:012x}", h & 0xffff_ffff_ffff)
}

/// What the shim gets as `-address` (and passes back to the publisher).
pub fn events_address(root: &Path) -> String {
    root.join("events").to_string_lossy().into_owned()
}

/// `containerd-shim-berth-v2 ... start` in the bundle; returns the address.
pub fn start(root: &Path, id: &str, bundle: &Path) -> Result<String, String> {
    let shim = binary()?;
    let me = std::env::current_exe().map_err(|e| format!("berthctl's own path: {e}"))?;
    let out = Command::new(&shim)
        .args(["-namespace", &namespace(root), "-address", &events_address(root)])
        .arg("-publish-binary")
        .arg(&me)
        .args(["-id", id, "start"])
        .current_dir(bundle)
        .env_remove("TTRPC_ADDRESS")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("run {}: {e}", shim.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} start failed ({}): {}",
            shim.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let addr = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !addr.starts_with("unix://") {
        return Err(format!("{} start printed no address: {addr:?}", shim.display()));
    }
    Ok(addr)
}

/// A connection to one container's shim.
pub struct Shim {
    pub client: TaskClient,
    pub id: String,
}

/// Timeouts (ns) for the calls that should answer promptly.
const SHORT: i64 = 30_000_000_000;
const LONG: i64 = 120_000_000_000;

fn ctx(t: i64) -> ttrpc::context::Context {
    ttrpc::context::with_timeout(t)
}

/// The shim's error, said plainly; UNIMPLEMENTED says the shim lacks it.
pub fn rpc_err(what: &str, e: ttrpc::Error) -> String {
    match e {
        ttrpc::Error::RpcStatus(s) if s.code() == Code::UNIMPLEMENTED => {
            format!("{what}: this containerd-shim-berth-v2 does not serve it yet ({})", s.message())
        }
        ttrpc::Error::RpcStatus(s) => format!("{what}: {}", s.message()),
        other => format!("{what}: {other}"),
    }
}

pub fn is_not_found(e: &ttrpc::Error) -> bool {
    matches!(e, ttrpc::Error::RpcStatus(s) if s.code() == Code::NOT_FOUND)
}

impl Shim {
    pub fn connect(address: &str, id: &str) -> Result<Shim, String> {
        let c = ttrpc::Client::connect(address)
            .map_err(|e| format!("container {id}: its shim at {address} does not answer: {e}"))?;
        Ok(Shim { client: TaskClient::new(c), id: id.to_string() })
    }

    pub fn create(&self, bundle: &Path, terminal: bool, stdio: [&str; 3]) -> Result<u32, String> {
        let mut r = api::CreateTaskRequest::new();
        r.id = self.id.clone();
        r.bundle = bundle.to_string_lossy().into_owned();
        r.terminal = terminal;
        r.stdin = stdio[0].into();
        r.stdout = stdio[1].into();
        r.stderr = stdio[2].into();
        self.client.create(ctx(LONG), &r).map(|r| r.pid).map_err(|e| rpc_err("create", e))
    }

    pub fn start(&self, exec_id: &str) -> Result<u32, String> {
        let mut r = api::StartRequest::new();
        r.id = self.id.clone();
        r.exec_id = exec_id.into();
        self.client.start(ctx(LONG), &r).map(|r| r.pid).map_err(|e| rpc_err("start", e))
    }

    pub fn state(&self) -> Result<api::StateResponse, ttrpc::Error> {
        let mut r = api::StateRequest::new();
        r.id = self.id.clone();
        self.client.state(ctx(SHORT), &r)
    }

    /// Wait for the process's exit; `timeout` in ns, 0 for none.
    pub fn wait(&self, exec_id: &str, timeout: i64) -> Result<u32, ttrpc::Error> {
        let mut r = api::WaitRequest::new();
        r.id = self.id.clone();
        r.exec_id = exec_id.into();
        self.client.wait(ctx(timeout), &r).map(|r| r.exit_status)
    }

    pub fn kill(&self, exec_id: &str, sig: u32, all: bool) -> Result<(), ttrpc::Error> {
        let mut r = api::KillRequest::new();
        r.id = self.id.clone();
        r.exec_id = exec_id.into();
        r.signal = sig;
        r.all = all;
        self.client.kill(ctx(SHORT), &r).map(|_| ())
    }

    pub fn delete(&self, exec_id: &str) -> Result<u32, ttrpc::Error> {
        let mut r = api::DeleteRequest::new();
        r.id = self.id.clone();
        r.exec_id = exec_id.into();
        self.client.delete(ctx(LONG), &r).map(|r| r.exit_status)
    }

    pub fn resize(&self, exec_id: &str, cols: u32, rows: u32) -> Result<(), String> {
        let mut r = api::ResizePtyRequest::new();
        r.id = self.id.clone();
        r.exec_id = exec_id.into();
        r.width = cols;
        r.height = rows;
        self.client.resize_pty(ctx(SHORT), &r).map(|_| ()).map_err(|e| rpc_err("resize the terminal", e))
    }

    /// Ends the shim when it holds no container any more.
    pub fn shutdown(&self) {
        let mut r = api::ShutdownRequest::new();
        r.id = self.id.clone();
        let _ = self.client.shutdown(ctx(SHORT), &r);
    }

    pub fn exec(&self, exec_id: &str, process: &serde_json::Value, terminal: bool, stdio: [&str; 3]) -> Result<(), String> {
        let mut r = api::ExecProcessRequest::new();
        r.id = self.id.clone();
        r.exec_id = exec_id.into();
        r.terminal = terminal;
        r.stdin = stdio[0].into();
        r.stdout = stdio[1].into();
        r.stderr = stdio[2].into();
        let mut any = protobuf::well_known_types::any::Any::new();
        any.type_url = "types.containerd.io/opencontainers/runtime-spec/1/Process".into();
        any.value = serde_json::to_vec(process).map_err(|e| e.to_string())?;
        r.spec = protobuf::MessageField::some(any);
        self.client.exec(ctx(LONG), &r).map(|_| ()).map_err(|e| rpc_err("exec", e))
    }

    pub fn stats(&self) -> Result<protobuf::well_known_types::any::Any, String> {
        let mut r = api::StatsRequest::new();
        r.id = self.id.clone();
        self.client
            .stats(ctx(SHORT), &r)
            .map_err(|e| rpc_err("stats", e))?
            .stats
            .into_option()
            .ok_or_else(|| "stats: the shim returned no metrics".to_string())
    }
}
