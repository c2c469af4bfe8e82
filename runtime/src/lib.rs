//! berth: an OCI container runtime with runc's command line.
//!
//! The library is what the `berth` binary, the containerd shim
//! (`containerd-shim-berth-v2`) and berthctl are built from. Its public
//! surface is the container API ([`Container`], see `lifecycle/`) and the
//! types it needs; everything else is private to the crate. The command
//! line (`cli`, `cli_fast`, `commands/`) belongs to the binary (`main.rs`).
//! Layout (see docs/design.md):
//!
//! * `lifecycle`: the container API: create, load, start, kill, pause,
//!   resume, update, stats, events, exec, delete, run.
//! * `spec`: load `config.json`, pre-filter it, validate it; every error
//!   names the file and the JSON path.
//! * `plan`: turn a loaded bundle into the typed plan of what `create` sets
//!   up, before anything is created; every config error is raised there.
//! * `container`: the state directory, `state.json`, locking, status.
//! * `process`: cloning the container's init, the parent/init sync protocol,
//!   and everything init does before `execve`.
//! * `rootfs`: mounts, devices, pivot_root, masked and readonly paths, with
//!   every path resolved inside the rootfs.
//! * `cgroups`: the container's cgroup in every mounted hierarchy.
//! * `hooks`: OCI hooks with state on stdin and timeouts.
//! * `console`: terminals: the pty, the console socket, the foreground proxy.
//!
//! Raw system calls live in `sys`; every `unsafe` block says why it is
//! sound in a `// SAFETY:` comment (denied otherwise).

#![deny(clippy::undocumented_unsafe_blocks)]

mod cgroups;
mod console;
mod container;
// The systemd driver's D-Bus client; wired into a systemd placement next.
#[allow(dead_code, unused_imports)]
mod dbus;
pub mod error;
pub mod fast;
mod features;
mod hooks;
mod host;
mod lifecycle;
pub mod logging;
mod mempolicy;
mod namespaces;
mod netdev;
mod plan;
mod process;
mod rootfs;
mod security;
mod mountinfo;
mod spec;
mod sys;
// Shared with the integration harness (integration/src/lib.rs), which uses
// the needs the unit tests do not.
#[cfg(test)]
#[allow(dead_code)]
mod test_skip;

pub use error::{Error, ErrorKind, InitError, Result};
// What Error's variants carry.
pub use cgroups::resources::Refused;
pub use cgroups::FieldError;

// Who berth runs as (root; rootless is refused until it is built).
pub use host::subid::user_name;
pub use host::{auto_rootless as host_is_rootless, current as current_host, select as select_host, Host, Rootless};

// The container API.
pub use lifecycle::{
    check_inherited_fds, check_preserved_fds, list, parse_resources, parse_signal, run, AfterExit, Attach,
    CgroupDirs, CgroupManager, Container, CreateOptions, Event, ExecOptions, ExecProcess, Executed, NotifyProxy, Orphans, ProcessSource,
    RunOptions, StartBy, Stdio, User, Watch,
};

// The types it returns.
pub use cgroups::events::OomWatch;
pub use container::{OciState, Status};

/// The cgroup statistics ([`Container::stats`], [`Event::Stats`]), in runc's shape.
pub mod stats {
    pub use crate::cgroups::stats::{
        Blkio, BlkioEntry, Cpu, CpuSet, CpuUsage, Hugetlb, Memory, MemoryEntry, Pids, Stats, Throttling,
    };
}

// For bundles and manifests: the default spec and the names it may use.
pub use features::features_json;
pub use security::caps::{names as capability_names, number as capability_number};
pub use security::seccomp::default_profile_json as default_seccomp_profile_json;
pub use spec::{default_spec, write_default as write_default_spec};

/// CVE-2019-5736: the binary seals itself before create, run and exec
/// (`prepare`, `ensure_sealed`); the shim seals the launcher it starts
/// (`sealed_copy`, `dup_above`).
pub mod seal {
    pub use crate::security::seal::{dup_above, ensure_sealed, prepare, sealed_copy};
}

/// The system calls the shim and berthctl share with the runtime: fd
/// passing (the shim's launcher and stdio), pidfd signals (the shim's init
/// watch), openat2 and the errno check (berthctl's image unpacking).
pub mod os {
    pub use crate::sys::{cvt, openat2, pidfd_send_signal, recv_fd, recv_with_fds, send_with_fds, Received, SysRet};
}

/// Internal parsers of untrusted input, for the fuzz targets (fuzz/) only.
#[cfg(feature = "fuzzing")]
pub mod fuzzing {
    pub use crate::cgroups::Resources;
    pub use crate::dbus::{decode as dbus_decode, frame_len as dbus_frame_len};
    pub use crate::lifecycle::parse_resources;
    pub use crate::netdev::rtnl::{parse_addr, parse_link, parse_reply};
    pub use crate::rootfs::options::{root_propagation, MountOptions};
    pub use crate::security::seccomp::{cache, profile};
    pub use crate::spec::{parse_process, parse_spec, validate_spec};
}

/// The cgroup, clone and D-Bus internals, for examples/cgroup_join.rs and
/// examples/dbus_call.rs only.
#[cfg(feature = "internals")]
pub mod internals {
    pub use crate::cgroups::ContainerCgroups;
    pub use crate::cgroups::{devices::default_rules, devices::Rule, systemd_props, Resources};
    pub use crate::dbus::{system_bus_path, Connection, Message, Systemd, Value};
    pub use crate::sys::{clone_fork, Forked};
}

/// Version string printed by `berth --version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The git commit berth was built from (`unknown` outside git; see build.rs).
pub const COMMIT: &str = env!("BERTH_COMMIT");
/// The runtime-spec version berth implements.
pub const OCI_VERSION: &str = "1.3.0";
