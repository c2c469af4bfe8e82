//! Driving the runtime through real clients: Docker 20.10 (dockerd with
//! its own containerd) and Podman 4.3 (conmon), as Debian packages them.
//!
//! Each test binary (`tests/docker.rs`, `tests/podman.rs`) shares one
//! client set-up, started on first use in a private session directory
//! `/tmp/berth-cl/<kind>-<pid>` (unix sockets, data and exec roots,
//! configuration, the busybox image tarball), with cgroups under
//! `/<kind>-berth-<pid>` in every hierarchy. Nothing touches the host's
//! network: Docker runs with `"bridge": "none"` and no iptables, Podman
//! containers run with `--network none`.
//!
//! The set-up is torn down when the test binary exits (an `atexit`
//! handler: libtest has no global teardown): containers removed, daemons
//! stopped, every process that names the session directory killed by pid,
//! mounts below it detached, cgroups removed, the directory deleted, and
//! the few host paths the clients create on their own (`/run/docker`,
//! `/run/containerd/s`, `/var/lib/containers/cache`) removed when they did
//! not exist before. Anything it cannot clean makes the binary exit 101.
//! A session left by a killed run is swept at the next start.
//!
//! The runtime under test is `$BERTH_CLIENT_RUNTIME` (e.g.
//! `/usr/sbin/runc`, to prove the harness), else the berth binary
//! ([`berth_bin`]). Scenarios that need a runtime feature ask the runtime
//! itself whether it has it ([`probe`]) and are skipped with a printed
//! reason when it does not.

pub mod docker;
pub mod podman;
pub mod probe;
pub mod tty;

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, Once};
use std::time::Duration;

use crate::bundle::make_busybox_rootfs;
use crate::harness::{berth_bin, pid_alive, wait_until, Output, SpawnOpts, Spawned};
use crate::host;

/// Where the client sessions live (short: socket paths are limited).
pub const SESSION_BASE: &str = "/tmp/berth-cl";

/// Deadline of one client command.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);

/// The image both clients import from the busybox rootfs.
pub const IMAGE: &str = "localhost/berth-busybox:test";

/// The runtime the clients are told to use: `$BERTH_CLIENT_RUNTIME`, else
/// berth. Always an absolute path.
pub fn runtime_under_test() -> PathBuf {
    let p = match std::env::var_os("BERTH_CLIENT_RUNTIME").filter(|p| !p.is_empty()) {
        Some(p) => PathBuf::from(p),
        None => berth_bin(),
    };
    let p = fs::canonicalize(&p).unwrap_or_else(|e| panic!("runtime under test {}: {e}", p.display()));
    assert!(p.is_file(), "runtime under test {} is not a file", p.display());
    p
}

/// The runtime's name as the clients show it (the file name).
pub fn runtime_name() -> String {
    runtime_under_test().file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// The name libtest gives the current test thread (the test's path).
pub fn test_name() -> String {
    std::thread::current().name().unwrap_or("?").to_string()
}

/// Skip the current test: the runtime under test lacks a feature (see
/// [`crate::test_skip`]).
pub fn skip(reason: &str) {
    crate::test_skip::skip(crate::test_skip::RUNTIME_FEATURE, reason);
}

/// A unique container name for the current test.
pub fn unique_name(tag: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let t: String = tag.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).take(30).collect();
    format!("bt-{t}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst))
}

/// One client session's private directory and cgroup parent.
#[derive(Debug, Clone)]
pub struct Session {
    pub kind: &'static str,
    pub dir: PathBuf,
    /// Absolute cgroup path (same in every hierarchy) holding the
    /// containers, e.g. `/docker-berth-1234`.
    pub cgroup_parent: String,
    seq: std::sync::Arc<AtomicUsize>,
}

impl Session {
    /// Make `/tmp/berth-cl/<kind>-<pid>` (after sweeping sessions of dead
    /// test runs).
    pub fn new(kind: &'static str) -> io::Result<Session> {
        sweep_stale(kind);
        sweep_stale("probe");
        let pid = std::process::id();
        let dir = Path::new(SESSION_BASE).join(format!("{kind}-{pid}"));
        if dir.exists() {
            clean_session_dir(&dir, &cgroup_parent_of(kind, pid));
        }
        fs::create_dir_all(dir.join("io"))?;
        // SAFETY: plain prctl; orphaned shims and conmons become our children
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        Ok(Session { kind, dir, cgroup_parent: cgroup_parent_of(kind, pid), seq: Default::default() })
    }

    /// `<dir>/<name>`.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Run `prog args` (with `envs`) to completion, stdio to files in the
    /// session, stdin from /dev/null.
    pub fn run(&self, prog: &Path, args: &[String], envs: &[(String, String)], timeout: Duration) -> Output {
        let n = self.seq.fetch_add(1, Ordering::SeqCst);
        let base = self.dir.join("io").join(format!("c{n:04}"));
        Spawned::start_with(prog, args, &base, &SpawnOpts { env: envs, ..Default::default() }).wait(timeout)
    }
}

pub(crate) fn cgroup_parent_of(kind: &str, pid: u32) -> String {
    format!("/{kind}-berth-{pid}")
}

/// A busybox rootfs tarball in `dir` (`busybox-rootfs.tar`), for
/// `docker import` / `podman import`.
pub fn busybox_tarball(dir: &Path) -> io::Result<PathBuf> {
    let rootfs = dir.join("image-rootfs");
    make_busybox_rootfs(&rootfs)?;
    let tar = dir.join("busybox-rootfs.tar");
    let st = Command::new("tar").arg("-C").arg(&rootfs).arg("-cf").arg(&tar).arg(".").status()?;
    if !st.success() {
        return Err(io::Error::other(format!("tar -C {} -cf {} . failed: {st}", rootfs.display(), tar.display())));
    }
    fs::remove_dir_all(&rootfs)?;
    Ok(tar)
}

// ---- host paths the clients create outside the session -------------------

/// Host paths a client creates on its own; each one that did not exist
/// when the session started is removed at teardown (a directory only if
/// empty, except those marked recursive). The list is kept in the session
/// dir too, so the sweep of a killed run's session removes them.
pub struct HostPaths {
    created: Vec<(PathBuf, bool)>,
}

const HOST_PATHS_FILE: &str = "host-paths";

impl HostPaths {
    /// Record which of `paths` (path, remove recursively) are missing now.
    pub fn record(session: &Session, paths: &[(&str, bool)]) -> io::Result<HostPaths> {
        let created: Vec<(PathBuf, bool)> = paths
            .iter()
            .filter(|(p, _)| fs::symlink_metadata(p).is_err())
            .map(|(p, r)| (PathBuf::from(p), *r))
            .collect();
        let text: String =
            created.iter().map(|(p, r)| format!("{} {}\n", if *r { 'R' } else { 'D' }, p.display())).collect();
        fs::write(session.path(HOST_PATHS_FILE), text)?;
        Ok(HostPaths { created })
    }

    /// The list a session dir holds (empty if none).
    fn load(dir: &Path) -> HostPaths {
        let text = fs::read_to_string(dir.join(HOST_PATHS_FILE)).unwrap_or_default();
        let created =
            text.lines().filter_map(|l| l.split_once(' ')).map(|(kind, p)| (PathBuf::from(p), kind == "R")).collect();
        HostPaths { created }
    }

    /// Remove what was created; returns what could not be removed. A
    /// directory that is not empty is only warned about: another client
    /// on the host (another test run) may be using it.
    pub fn remove(&self) -> Vec<String> {
        let mut left = Vec::new();
        // deepest first, so a parent is empty when it is reached
        let mut v = self.created.clone();
        v.sort_by_key(|(p, _)| std::cmp::Reverse(p.components().count()));
        for (p, recursive) in v {
            let r = if !p.exists() {
                Ok(())
            } else if recursive {
                fs::remove_dir_all(&p)
            } else if p.is_dir() {
                fs::remove_dir(&p)
            } else {
                fs::remove_file(&p)
            };
            match r {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOTEMPTY) => {
                    eprintln!(
                        "warning: {} was created during the client tests and is in use: left in place",
                        p.display()
                    )
                }
                Err(e) => left.push(format!("{} (created by the client during the tests): {e}", p.display())),
            }
        }
        left
    }
}

// ---- teardown at exit -----------------------------------------------------

type Teardown = Box<dyn FnOnce() -> Vec<String> + Send>;

static TEARDOWNS: Mutex<Vec<Teardown>> = Mutex::new(Vec::new());

extern "C" fn run_teardowns() {
    let list: Vec<Teardown> = std::mem::take(&mut *TEARDOWNS.lock().unwrap_or_else(|e| e.into_inner()));
    let mut left = Vec::new();
    for t in list {
        left.extend(t());
    }
    reap_orphans();
    if !left.is_empty() {
        let _ = writeln!(io::stderr(), "client teardown left things behind:\n  {}", left.join("\n  "));
        // SAFETY: ending the process from an atexit handler; no unwinding.
        unsafe { libc::_exit(101) };
    }
}

/// Collect the exit status of every child we have: the clients' daemons
/// double-fork (containerd shims, conmon), and a session makes the test
/// process their subreaper so that they are not left as zombies.
fn reap_orphans() {
    loop {
        let mut st = 0;
        // SAFETY: waitpid with WNOHANG on any child; only at exit, when no
        // test holds a Child handle any more.
        if unsafe { libc::waitpid(-1, &mut st, libc::WNOHANG) } <= 0 {
            break;
        }
    }
}

/// Run `f` when the process exits (after every test); what it returns is
/// reported and fails the test binary.
pub fn at_exit(f: impl FnOnce() -> Vec<String> + Send + 'static) {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        // SAFETY: registering a plain extern "C" function.
        unsafe { libc::atexit(run_teardowns) };
    });
    TEARDOWNS.lock().unwrap_or_else(|e| e.into_inner()).push(Box::new(f));
}

// ---- killing and sweeping ------------------------------------------------

/// SIGTERM, then after `grace` SIGKILL, every process whose command line
/// names `needle`, until none is left (up to 10 s). Returns the survivors.
pub fn kill_processes_naming(needle: &str, grace: Duration) -> Vec<i32> {
    let pids = host::pids_with_marker(needle);
    for p in &pids {
        // SAFETY: plain kill(2) on pids found by their command line.
        unsafe { libc::kill(*p, libc::SIGTERM) };
    }
    if !pids.is_empty() {
        wait_until(grace, || host::pids_with_marker(needle).is_empty());
    }
    let mut left = Vec::new();
    wait_until(Duration::from_secs(10), || {
        left = host::pids_with_marker(needle);
        left.iter().for_each(|p| host::kill9(*p));
        left.is_empty()
    });
    left
}

/// Kill what runs in the cgroup parent (thawing frozen cgroups first, a
/// frozen task cannot die) and remove it in every hierarchy.
pub fn remove_cgroup_parent(parent: &str) -> Vec<String> {
    let dirs: Vec<PathBuf> = host::cgroup_dirs(parent).into_iter().filter(|d| d.exists()).collect();
    for d in &dirs {
        thaw_below(d);
    }
    wait_until(Duration::from_secs(5), || {
        let pids: Vec<i32> = dirs.iter().flat_map(|d| host::cgroup_pids(d)).filter(|p| pid_alive(*p as i64)).collect();
        pids.iter().for_each(|p| host::kill9(*p));
        pids.is_empty()
    });
    let mut left = Vec::new();
    for d in &dirs {
        let mut last = Ok(());
        if !wait_until(Duration::from_secs(3), || {
            last = host::rmdir_cgroup(d);
            last.is_ok()
        }) {
            left.push(format!("cgroup {}: {:?}", d.display(), last));
        }
    }
    left
}

fn thaw_below(dir: &Path) {
    let state = dir.join("freezer.state");
    if state.exists() {
        let _ = fs::write(&state, "THAWED");
    }
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                thaw_below(&e.path());
            }
        }
    }
}

/// Kill every process naming `dir`, empty `cgroup_parent`, detach mounts
/// below `dir` and remove it. Returns what is left.
pub fn clean_session_dir(dir: &Path, cgroup_parent: &str) -> Vec<String> {
    let mut left = Vec::new();
    let d = dir.display().to_string();
    // with the slash: docker-12 must not match docker-123
    let survivors = kill_processes_naming(&format!("{d}/"), Duration::from_secs(5));
    if !survivors.is_empty() {
        left.push(format!("processes naming {d} survive SIGKILL: {survivors:?}"));
    }
    left.extend(remove_cgroup_parent(cgroup_parent));
    let mounts = host::umount_below(dir);
    if !mounts.is_empty() {
        left.push(format!("still mounted: {mounts:?}"));
    } else if let Err(e) = fs::remove_dir_all(dir) {
        if e.kind() != io::ErrorKind::NotFound {
            left.push(format!("rm -r {d}: {e}"));
        }
    }
    let _ = fs::remove_dir(SESSION_BASE); // if no other session is there
    left
}

/// Clean the sessions of `kind` whose test process is gone.
pub(crate) fn sweep_stale(kind: &str) {
    let Ok(rd) = fs::read_dir(SESSION_BASE) else { return };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix(kind).and_then(|s| s.strip_prefix('-')).and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !pid_alive(pid as i64) {
            let host_paths = HostPaths::load(&e.path());
            let mut left = clean_session_dir(&e.path(), &cgroup_parent_of(kind, pid));
            left.extend(host_paths.remove());
            if !left.is_empty() {
                eprintln!("stale client session {}: {}", e.path().display(), left.join("; "));
            }
        }
    }
}

// ---- cgroups of a running container --------------------------------------

/// The host directory of `pid`'s cgroup in the v1 hierarchy that has
/// `controller` (e.g. `memory`, `cpu`, `pids`, `freezer`).
pub fn cgroup_dir_of(pid: i64, controller: &str) -> PathBuf {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").expect("read mountinfo");
    let mount = mountinfo
        .lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let mut r = right.split(' ');
            (r.next()? == "cgroup").then_some(())?;
            let supers = r.nth(1)?;
            supers.split(',').any(|o| o == controller).then(|| left.split(' ').nth(4).map(str::to_string))?
        })
        .next()
        .unwrap_or_else(|| panic!("no cgroup v1 hierarchy with controller {controller} on this host"));
    let cg = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_else(|e| panic!("/proc/{pid}/cgroup: {e}"));
    let rel = cg
        .lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
            ctrls.split(',').any(|c| c == controller).then(|| path.to_string())
        })
        .next()
        .unwrap_or_else(|| panic!("pid {pid} has no {controller} cgroup:\n{cg}"));
    Path::new(&mount).join(rel.trim_start_matches('/'))
}

/// Read `<cgroup dir of pid for controller>/<file>`, trimmed.
pub fn cgroup_value(pid: i64, controller: &str, file: &str) -> String {
    let p = cgroup_dir_of(pid, controller).join(file);
    fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).trim().to_string()
}

/// The effective capability set of `/proc/self/status` text, as a mask.
pub fn cap_mask(status: &str, field: &str) -> u64 {
    let line = status.lines().find(|l| l.starts_with(field)).unwrap_or_else(|| panic!("no {field} in:\n{status}"));
    u64::from_str_radix(line[field.len()..].trim(), 16).unwrap_or_else(|e| panic!("{line}: {e}"))
}
