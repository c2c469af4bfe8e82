//! containerd-shim-berth-v2: a containerd runtime v2 shim (task API v2) that
//! runs containers with the berth library.
//!
//! Two binaries, built from this crate, installed side by side:
//!
//! * `containerd-shim-berth-v2`, which containerd runs: `start`, `delete`
//!   and `launch` (the launcher, see [`launcher`]). It links all of berth.
//! * `containerd-shim-berth-v2-server`, the long-lived task server that
//!   `start` spawns ([`server`]). It links only what the server itself runs
//!   (ttrpc, the task API messages, stdio copies, reaping, events, the OOM
//!   watch); every berth operation that touches containers (create, start,
//!   exec, pause, resume, update, stats, destroy) runs in a short-lived
//!   child of the single-threaded launcher. The server is what stays
//!   resident next to every container: a small binary keeps its resident
//!   text small.

#![deny(clippy::undocumented_unsafe_blocks)]

pub mod io;
pub mod launcher;
pub mod metrics;
pub mod mounts;
pub mod oom;
pub mod procs;
pub mod publish;
pub mod reaper;
pub mod server;
pub mod service;

use std::path::PathBuf;

/// The server binary, beside the main one.
pub const SERVER_BIN: &str = "containerd-shim-berth-v2-server";
/// The main binary (start, delete, launch).
pub const MAIN_BIN: &str = "containerd-shim-berth-v2";

/// `name` in the directory of the running executable.
pub fn sibling(name: &str) -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("own executable: {e}"))?;
    Ok(exe.with_file_name(name))
}

/// Flags containerd passes (Go `flag` syntax: `-name value`).
#[derive(Default, Debug, Clone)]
pub struct Flags {
    pub namespace: String,
    pub address: String,
    pub publish_binary: String,
    pub id: String,
    pub bundle: Option<PathBuf>,
    pub debug: bool,
    pub action: String,
}

pub fn parse_flags() -> Result<Flags, String> {
    let mut f = Flags::default();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let Some(name) = a.strip_prefix("--").or_else(|| a.strip_prefix('-')) else {
            if !f.action.is_empty() {
                return Err(format!("unexpected argument {a:?}"));
            }
            f.action = a;
            continue;
        };
        let (name, inline) = match name.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (name, None),
        };
        if name == "debug" || name == "v" {
            f.debug = inline.map(|v| v != "false").unwrap_or(true);
            if name == "v" {
                println!(
                    "containerd-shim-berth-v2 {} (task API v2, berth {})",
                    env!("CARGO_PKG_VERSION"),
                    berth::VERSION
                );
                std::process::exit(0);
            }
            continue;
        }
        let value = match inline {
            Some(v) => v,
            None => args
                .next()
                .ok_or_else(|| format!("flag -{name} needs a value"))?,
        };
        match name {
            "namespace" => f.namespace = value,
            "address" => f.address = value,
            "publish-binary" => f.publish_binary = value,
            "id" => f.id = value,
            "bundle" => f.bundle = Some(PathBuf::from(value)),
            // containerd 1.6 passes these to runc shims; they change nothing here.
            "socket" | "systemd-cgroup" | "criu" => {}
            _ => return Err(format!("unknown flag -{name}")),
        }
    }
    if f.namespace.is_empty() {
        return Err("-namespace is required".into());
    }
    if f.id.is_empty() && f.action != "serve" && f.action != "launch" {
        return Err("-id is required".into());
    }
    Ok(f)
}

/// berth's state root for a containerd namespace.
pub fn berth_root(namespace: &str) -> PathBuf {
    PathBuf::from("/run/containerd-berth").join(namespace)
}

/// FNV-1a: a stable hash for the socket name.
pub fn fnv(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for p in parts {
        for b in p.bytes().chain(std::iter::once(0)) {
            h ^= b as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
    }
    h
}
