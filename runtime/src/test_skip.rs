//! The one way a test skips itself when the host lacks what it needs, so
//! that skips are counted, listed and, where CI says the host has what a
//! test needs, failures (scripts/test.sh). Used by berth's unit tests and,
//! compiled from this file, by the integration harness
//! (`berth_integration::skip`).
//!
//! ```ignore
//! if unsafe { libc::geteuid() } != 0 {
//!     return test_skip::skip(test_skip::ROOT, "needs root");
//! }
//! ```
//!
//! [`skip`] writes `SKIP: <test>: <reason> [needs <need>]` straight to
//! stderr (libtest captures only the print macros, so the line shows even
//! for a passing test) and appends it to the file named by
//! `$BERTH_SKIP_LOG` if set (scripts/test.sh reads that file: a line on a
//! shared stderr can land inside libtest's own lines). When the
//! comma-separated `$BERTH_REQUIRE` lists `need`, it panics instead: the
//! test fails, because whoever runs the tests declared that this host has
//! what the test needs.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Running as root (euid 0).
pub const ROOT: &str = "root";
/// The cgroup v1 hierarchies the tests use (memory, cpu, pids, ...).
pub const CGROUP_V1: &str = "cgroup-v1";
/// A mounted cgroup2 hierarchy (unified, or hybrid's /sys/fs/cgroup/unified).
pub const CGROUP2: &str = "cgroup2";
/// A tool scripts/setup-deps.sh installs (runc, rustc, ...).
pub const TOOLS: &str = "tools";
/// A feature the runtime under test lacks (the client tests' probes, which
/// also run against runc or crun): listed, never required.
pub const RUNTIME_FEATURE: &str = "runtime-feature";
/// Anything else the host may truly lack (a device, a kernel feature, a
/// tool, an LSM): listed, never required.
pub const HOST: &str = "host";

/// The variable naming the needs that must not cause a skip.
pub const REQUIRE_VAR: &str = "BERTH_REQUIRE";
/// The variable naming the file that collects skip lines.
pub const LOG_VAR: &str = "BERTH_SKIP_LOG";

/// Whether `require` (comma-separated, as `$BERTH_REQUIRE`) lists `need`.
fn required(require: Option<&str>, need: &str) -> bool {
    require.is_some_and(|v| v.split(',').any(|r| r.trim() == need))
}

/// The skip line for the current test.
fn line(need: &str, reason: &str) -> String {
    let test = std::thread::current().name().unwrap_or("?").to_string();
    format!("SKIP: {test}: {reason} [needs {need}]\n")
}

/// Skip the calling test (the caller returns right after): print and log
/// the reason; panic instead when `need` is required (see the module doc).
pub fn skip(need: &str, reason: &str) {
    let require = std::env::var(REQUIRE_VAR).ok();
    let log = std::env::var_os(LOG_VAR).map(PathBuf::from);
    let msg = skip_with(need, reason, require.as_deref(), log.as_deref());
    let _ = std::io::stderr().write_all(msg.as_bytes());
}

/// [`skip`] with the environment given; returns the line for stderr.
fn skip_with(need: &str, reason: &str, require: Option<&str>, log: Option<&Path>) -> String {
    let msg = line(need, reason);
    if required(require, need) {
        panic!(
            "{}: this test must not skip here (${REQUIRE_VAR} lists {need:?})",
            msg.trim_end()
        );
    }
    if let Some(path) = log {
        // One append of one short line: lines of parallel tests do not mix.
        let _ = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| f.write_all(msg.as_bytes()));
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_names_test_reason_and_need() {
        assert_eq!(
            line(HOST, "no RDMA device"),
            "SKIP: test_skip::tests::line_names_test_reason_and_need: no RDMA device [needs host]\n"
        );
    }

    #[test]
    fn required_needs_fail_and_others_are_logged() {
        let log = std::env::temp_dir().join(format!("berth-skip-test-{}", std::process::id()));
        let _ = std::fs::remove_file(&log);
        let require = Some("root, cgroup-v1");
        assert!(required(require, ROOT) && required(require, CGROUP_V1));
        assert!(!required(require, CGROUP2) && !required(None, ROOT));
        let r = std::panic::catch_unwind(|| skip_with(ROOT, "needs root", require, Some(&log)));
        let msg = *r.unwrap_err().downcast::<String>().unwrap();
        assert!(
            msg.contains("needs root [needs root]: this test must not skip here"),
            "{msg}"
        );
        skip_with(HOST, "no RDMA device", require, Some(&log));
        skip_with(ROOT, "needs root", None, Some(&log));
        let logged = std::fs::read_to_string(&log).unwrap();
        let _ = std::fs::remove_file(&log);
        let lines: Vec<&str> = logged.lines().collect();
        assert_eq!(lines.len(), 2, "{logged}");
        assert!(
            lines[0].ends_with(": no RDMA device [needs host]"),
            "{logged}"
        );
        assert!(lines[1].ends_with(": needs root [needs root]"), "{logged}");
    }
}
