//! OCI hooks: prestart, createRuntime, createContainer, startContainer,
//! poststart, poststop.
//!
//! OWNER: spec helper. Interface fixed; implementation to be filled in.

use oci_spec::runtime::Hook;

/// Which lifecycle point a hook list belongs to (used in messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookKind {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

impl HookKind {
    pub fn name(self) -> &'static str {
        match self {
            HookKind::Prestart => "prestart",
            HookKind::CreateRuntime => "createRuntime",
            HookKind::CreateContainer => "createContainer",
            HookKind::StartContainer => "startContainer",
            HookKind::Poststart => "poststart",
            HookKind::Poststop => "poststop",
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{kind} hook #{index} ({path}): {msg}")]
pub struct HookError {
    pub kind: &'static str,
    pub index: usize,
    pub path: String,
    pub msg: String,
}

/// Run `hooks` in order, each with `state` (the OCI state JSON) on stdin.
/// Stops at the first failure and returns it.
pub fn run_hooks(kind: HookKind, hooks: &[Hook], state: &[u8]) -> Result<(), HookError> {
    let _ = (kind, hooks, state);
    unimplemented!("hooks::run_hooks")
}
