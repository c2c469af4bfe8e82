//! berth: an OCI container runtime with runc's command line.
//!
//! The library is what the `berth` binary and the containerd shim
//! (`containerd-shim-berth-v2`) are built from. Layout (see docs/design.md):
//!
//! * [`spec`]: load `config.json`, pre-filter it, validate it; every error names
//!   the file and the JSON path.
//! * [`container`]: the state directory, `state.json`, locking, status.
//! * [`process`]: cloning the container's init, the parent/init sync protocol,
//!   and everything init does before `execve`.
//! * [`rootfs`]: mounts, devices, pivot_root, masked and readonly paths, with
//!   every path resolved inside the rootfs.
//! * [`cgroups`]: the container's cgroup in every mounted hierarchy.
//! * [`hooks`]: OCI hooks with state on stdin and timeouts.
//! * [`console`]: terminals: the pty, the console socket, the foreground proxy.
//! * [`commands`]: one small module per subcommand, called by the CLI.
//!
//! Raw system calls live in [`sys`]; every `unsafe` block says why it is
//! sound in a `// SAFETY:` comment (denied otherwise).

#![deny(clippy::undocumented_unsafe_blocks)]

pub mod cgroups;
pub mod cli;
pub mod cli_fast;
pub mod commands;
pub mod console;
pub mod container;
pub mod error;
pub mod fast;
pub mod hooks;
pub mod logging;
pub mod mempolicy;
pub(crate) mod mountinfo;
pub mod namespaces;
pub mod netdev;
pub mod process;
pub mod rootfs;
pub mod security;
pub mod spec;
pub mod sys;
pub mod test_skip;

pub use error::{Error, Result};

/// Version string printed by `berth --version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The git commit berth was built from (`unknown` outside git; see build.rs).
pub const COMMIT: &str = env!("BERTH_COMMIT");
/// The runtime-spec version berth implements.
pub const OCI_VERSION: &str = "1.3.0";
