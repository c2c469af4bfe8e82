//! Shared helpers for berth's black-box tests and benchmarks: busybox
//! bundles (`bundle`), running the binary under test with timeouts
//! (`harness`), the per-test container guard (`env`) and host inspection
//! and cleanup (`host`), the Docker and Podman set-ups that drive the
//! runtime through real clients (`clients`), private containerds
//! (`containerd`) and the Kubernetes CRI client and set-up (`cri`).
//!
//! The binary under test is `$BERTH_BIN`, else the workspace's
//! `target/{debug,release}/berth`.

pub mod attacks;
pub mod berthctl;
pub mod bundle;
pub mod clients;
pub mod containerd;
pub mod cri;
pub mod env;
pub mod harness;
pub mod host;
pub mod registry;
pub mod rootless;
pub mod shim_client;
/// The skip helper, shared with berth's unit tests (see its module doc).
#[path = "../../runtime/src/test_skip.rs"]
pub mod test_skip;
pub mod tty;

/// What a test file needs: `use berth_integration::prelude::*;`.
pub mod prelude {
    pub use crate::bundle::{default_config, Bundle};
    pub use crate::env::{assert_no_leftovers, Env, Who};
    pub use crate::harness::{
        berth_bin, ns_link, pid_alive, squash, wait_for_file, wait_until, Output, SpawnOpts, Spawned, CMD_TIMEOUT,
        HOST_ENV_VAR,
    };
    pub use crate::host;
    pub use crate::test_skip::{skip, CGROUP2, CGROUP_V1, HOST, ROOT, TOOLS};
    pub use serde_json::{json, Value};
    pub use std::fs;
    pub use std::path::{Path, PathBuf};
    pub use std::time::Duration;

    /// A short wait for things that happen promptly.
    pub const SHORT: Duration = Duration::from_secs(10);

    /// A container script that runs until killed; SIGTERM ends it (exit 0).
    pub const SLEEPER: &str = "trap 'exit 0' TERM; while :; do sleep 0.1; done";

    /// Script fragment: wait until the host creates `<rootfs>/go`.
    pub const WAIT_GO: &str = "while [ ! -e /go ]; do sleep 0.05; done";
}

/// Two tests per attack body `fn body(who: &Who)`: `$root` runs it as root,
/// `$rootless` as a test user of its own (rootless berth), or prints a skip
/// with the reason where rootless tests cannot run here.
#[macro_export]
macro_rules! root_and_rootless {
    ($($body:ident => $root:ident, $rootless:ident;)*) => {$(
        #[test]
        fn $root() {
            $body(&$crate::env::Who::Root)
        }
        #[test]
        fn $rootless() {
            if let Some(who) = $crate::env::Who::rootless(stringify!($body)) {
                $body(&who)
            }
        }
    )*};
}
