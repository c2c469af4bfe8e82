//! `Env`: one container under test and the guard that removes everything
//! it may have left on the host, even when the test panics.
//!
//! Each `Env` has a unique id (test name + pid + counter), its own temp dir
//! holding `--root` and the bundle, its own `linux.cgroupsPath`
//! (`/berth-test/<id>`) and a unique marker token that the default args
//! carry (`sh -c SCRIPT MARKER`, so the marker is the shell's `$0`).
//!
//! Commands are issued runc-style, options before the container id, so the
//! harness runs against runc 1.1.5 too.

use std::cell::Cell;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::bundle::Bundle;
use crate::harness::{self, berth_bin, Output, SpawnOpts, Spawned, CMD_TIMEOUT};
use crate::host;
use crate::rootless::{self, User};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Where berth keeps state when no `--root` is given.
pub const DEFAULT_ROOT: &str = "/run/berth";

/// Who runs berth for an [`Env`]: root, or a test user of its own
/// (rootless berth, the container in a user namespace of the user's).
#[derive(Clone)]
pub enum Who {
    Root,
    Rootless(Arc<User>),
}

impl Who {
    /// A new test user (`tag` in its name), or None with a printed skip
    /// where rootless tests cannot run.
    pub fn rootless(tag: &str) -> Option<Who> {
        rootless::can_run(true).then(|| Who::Rootless(Arc::new(User::create(tag))))
    }
}

pub struct Env {
    pub id: String,
    /// Private temp dir: `root/`, `bundle/`, command output, scratch files.
    pub dir: PathBuf,
    /// The `--root` given to every command.
    pub root: PathBuf,
    pub bundle: Bundle,
    pub marker: String,
    /// `linux.cgroupsPath`, e.g. `/berth-test/<id>`.
    pub cgroups_path: String,
    bin: PathBuf,
    seq: Cell<usize>,
    used_default_root: Cell<bool>,
    /// Rootless: the user berth runs as, and its environment.
    user: Option<Arc<User>>,
    user_env: Vec<(String, String)>,
}

fn sanitize(name: &str) -> String {
    let s: String = name
        .rsplit("::")
        .next()
        .unwrap_or(name)
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' })
        .collect();
    s.chars().take(40).collect()
}

impl Env {
    /// A container running `sh -c true MARKER`; change it with
    /// [`set_script`](Self::set_script) or [`set_args`](Self::set_args).
    #[track_caller]
    pub fn new(name: &str) -> Env {
        Self::build(name, None, &Who::Root)
    }

    /// [`new`](Self::new) run by `who`: rootless, berth runs as the user
    /// (its copy of berth), the test dir (bundle, rootfs, `--root`) is the
    /// user's and the config has a user namespace mapping it to root.
    #[track_caller]
    pub fn new_as(name: &str, who: &Who) -> Env {
        Self::build(name, None, who)
    }

    /// [`sh`](Self::sh) run by `who` (see [`new_as`](Self::new_as)).
    #[track_caller]
    pub fn sh_as(name: &str, script: &str, who: &Who) -> Env {
        let mut e = Self::new_as(name, who);
        e.set_script(script);
        e
    }

    /// A container running `sh -c SCRIPT MARKER`.
    #[track_caller]
    pub fn sh(name: &str, script: &str) -> Env {
        let mut e = Self::new(name);
        e.set_script(script);
        e
    }

    /// A second container in the same `--root` as `other` (own bundle, id,
    /// cgroup and marker). Declare it after `other` so it is dropped first.
    #[track_caller]
    pub fn sharing_root(name: &str, other: &Env) -> Env {
        Self::build(name, Some(other.root.clone()), &other.who())
    }

    #[track_caller]
    fn build(name: &str, root: Option<PathBuf>, who: &Who) -> Env {
        assert_eq!(unsafe { libc::geteuid() }, 0, "berth's integration tests run as root");
        let bin = berth_bin();
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let id = format!("{}-{pid}-{n}", sanitize(name));
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let marker = format!("bmk{pid}x{n}x{nanos}");
        let base = std::env::temp_dir().join("berth-it");
        fs::create_dir_all(&base).expect("create temp base");
        let base = base.canonicalize().expect("canonicalize temp base");
        let dir = base.join(&id);
        if dir.exists() {
            host::umount_below(&dir);
            let _ = fs::remove_dir_all(&dir);
        }
        fs::create_dir_all(&dir).expect("create test dir");
        let root = root.unwrap_or_else(|| dir.join("root"));
        let cgroups_path = format!("/berth-test/{id}");
        let mut bundle = Bundle::create(&dir.join("bundle"), &["sh", "-c", "true", &marker])
            .unwrap_or_else(|e| panic!("make bundle in {}: {e}", dir.display()));
        bundle.config["linux"]["cgroupsPath"] = json!(cgroups_path);
        let (mut bin, mut user, mut user_env) = (bin, None, Vec::new());
        if let Who::Rootless(u) = who {
            u.make_rootless(&mut bundle.config);
            rootless::chown_tree(&dir, u.uid, u.gid);
            bin = u.berth_bin().to_path_buf();
            user_env = vec![
                ("XDG_RUNTIME_DIR".into(), u.run_dir.display().to_string()),
                ("HOME".into(), u.dir.display().to_string()),
                ("USER".into(), u.name.clone()),
            ];
            user = Some(u.clone());
        }
        bundle.write_config().expect("write config.json");
        Env {
            id,
            dir,
            root,
            bundle,
            marker,
            cgroups_path,
            bin,
            seq: Cell::new(0),
            used_default_root: Cell::new(false),
            user,
            user_env,
        }
    }

    /// Who runs berth for this container.
    pub fn who(&self) -> Who {
        self.user.clone().map_or(Who::Root, Who::Rootless)
    }

    /// The test user berth runs as, if rootless.
    pub fn user(&self) -> Option<&User> {
        self.user.as_deref()
    }

    /// The binary `berth` commands run (rootless: the user's copy).
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// Rootless: give `p` (and what is below it) to the user, as if the
    /// user had made it. Root: nothing to do.
    pub fn give(&self, p: &Path) {
        if let Some(u) = self.user() {
            rootless::chown_tree(p, u.uid, u.gid);
        }
    }

    /// `opts` with the user and its environment (rootless), its cwd the
    /// test dir unless `opts` names one.
    fn as_who<'a>(&'a self, opts: &SpawnOpts<'a>) -> SpawnOpts<'a> {
        let Some(u) = self.user() else {
            return SpawnOpts { stdin: opts.stdin, cwd: opts.cwd, groups: opts.groups, env: opts.env, user: None };
        };
        assert!(opts.env.is_empty(), "extra environment for a rootless command");
        SpawnOpts {
            stdin: opts.stdin,
            cwd: Some(opts.cwd.unwrap_or(&self.dir)),
            groups: opts.groups,
            env: &self.user_env,
            user: Some((u.uid, u.gid)),
        }
    }

    /// `prog ARGS...` as whoever runs berth here (another copy of berth,
    /// say), to completion within `timeout`.
    #[track_caller]
    pub fn run_prog(&self, prog: &Path, args: &[String], io_base: &Path, timeout: Duration) -> Output {
        Spawned::start_with(prog, args, io_base, &self.as_who(&SpawnOpts::default())).wait(timeout)
    }

    /// `berth --root R ARGS...` that never panics (for guards); the error
    /// says why it did not succeed.
    pub fn berth_quiet(&self, args: &[&str], timeout: Duration) -> std::io::Result<()> {
        let args: Vec<String> = self.rooted(args);
        let s = harness::run_quiet_with(&self.bin, &args, &self.as_who(&SpawnOpts::default()), timeout)?;
        if s.success() {
            Ok(())
        } else {
            Err(std::io::Error::other(format!("exited {s}")))
        }
    }

    // ---- bundle and config -------------------------------------------

    pub fn bundle_path(&self) -> &Path {
        &self.bundle.dir
    }

    pub fn bundle_str(&self) -> String {
        self.bundle.dir.display().to_string()
    }

    pub fn rootfs(&self) -> PathBuf {
        self.bundle.rootfs()
    }

    /// A path in the test's private dir (host side scratch space).
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// `process.args = ["sh", "-c", script, MARKER]`.
    pub fn set_script(&mut self, script: &str) {
        let m = self.marker.clone();
        self.set_args(&["sh", "-c", script, &m]);
    }

    pub fn set_args(&mut self, args: &[&str]) {
        self.set("/process/args", json!(args));
    }

    pub fn config(&self) -> &Value {
        &self.bundle.config
    }

    /// Edit the config in memory; call [`write_config`](Self::write_config).
    pub fn config_mut(&mut self) -> &mut Value {
        &mut self.bundle.config
    }

    pub fn write_config(&self) {
        self.bundle.write_config().expect("write config.json");
    }

    /// Set the value at a JSON pointer (`/process/user/uid`), creating
    /// missing objects on the way, and write config.json.
    pub fn set(&mut self, pointer: &str, v: Value) {
        let mut cur = &mut self.bundle.config;
        let parts: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
        let (last, path) = parts.split_last().expect("empty pointer");
        for p in path {
            if cur.is_array() {
                let i: usize = p.parse().expect("array index");
                cur = &mut cur[i];
            } else {
                if !cur.get(*p).is_some_and(|v| v.is_object() || v.is_array()) {
                    cur[*p] = json!({});
                }
                cur = &mut cur[*p];
            }
        }
        if cur.is_array() {
            cur[last.parse::<usize>().expect("array index")] = v;
        } else {
            cur[*last] = v;
        }
        self.write_config();
    }

    /// Append to the array at a JSON pointer (created if missing).
    pub fn push(&mut self, pointer: &str, v: Value) {
        let mut arr = self.bundle.config.pointer(pointer).cloned().unwrap_or(json!([]));
        arr.as_array_mut().expect("not an array").push(v);
        self.set(pointer, arr);
    }

    /// Remove the key at a JSON pointer.
    pub fn remove(&mut self, pointer: &str) {
        let (parent, key) = pointer.rsplit_once('/').expect("pointer");
        if let Some(obj) = self.bundle.config.pointer_mut(parent).and_then(|v| v.as_object_mut()) {
            obj.remove(key);
        }
        self.write_config();
    }

    /// Replace the namespace list by these types.
    pub fn set_namespaces(&mut self, kinds: &[&str]) {
        let v: Vec<Value> = kinds.iter().map(|k| json!({"type": k})).collect();
        self.set("/linux/namespaces", json!(v));
    }

    /// Add a bind mount of a host path.
    pub fn add_bind(&mut self, host: &Path, dest: &str, options: &[&str]) {
        let mut opts = vec!["bind"];
        opts.extend_from_slice(options);
        self.push("/mounts", json!({"destination": dest, "type": "bind", "source": host, "options": opts}));
    }

    // ---- running the binary --------------------------------------------

    fn io_base(&self) -> PathBuf {
        let n = self.seq.get();
        self.seq.set(n + 1);
        self.dir.join(format!("cmd{n:03}"))
    }

    fn rooted(&self, args: &[&str]) -> Vec<String> {
        let mut v = vec!["--root".to_string(), self.root.display().to_string()];
        v.extend(args.iter().map(|s| s.to_string()));
        v
    }

    /// `berth --root R ARGS...` with the default timeout.
    #[track_caller]
    pub fn berth(&self, args: &[&str]) -> Output {
        self.berth_timeout(args, CMD_TIMEOUT)
    }

    #[track_caller]
    pub fn berth_timeout(&self, args: &[&str], timeout: Duration) -> Output {
        self.run_prog(&self.bin, &self.rooted(args), &self.io_base(), timeout)
    }

    /// `berth --root R ARGS...` with `stdin` as standard input.
    #[track_caller]
    pub fn berth_stdin(&self, args: &[&str], stdin: &[u8]) -> Output {
        let base = self.io_base();
        let inp = base.with_extension("in");
        fs::write(&inp, stdin).expect("write stdin file");
        let opts = SpawnOpts { stdin: Some(&inp), ..Default::default() };
        Spawned::start_with(&self.bin, &self.rooted(args), &base, &self.as_who(&opts)).wait(CMD_TIMEOUT)
    }

    /// `berth ARGS...` without `--root` (the default root). The guard then
    /// also cleans the container up in the default root.
    #[track_caller]
    pub fn berth_raw(&self, args: &[&str]) -> Output {
        self.used_default_root.set(true);
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        self.run_prog(&self.bin, &args, &self.io_base(), CMD_TIMEOUT)
    }

    /// `berth --root R ARGS...` run in working directory `cwd`.
    #[track_caller]
    pub fn berth_in(&self, cwd: &Path, args: &[&str]) -> Output {
        self.berth_opts(args, &SpawnOpts { cwd: Some(cwd), ..Default::default() })
    }

    /// `berth --root R ARGS...` started with `opts`, default timeout.
    #[track_caller]
    pub fn berth_opts(&self, args: &[&str], opts: &SpawnOpts) -> Output {
        Spawned::start_with(&self.bin, &self.rooted(args), &self.io_base(), &self.as_who(opts)).wait(CMD_TIMEOUT)
    }

    /// Start `berth --root R ARGS...` in the background.
    pub fn spawn(&self, args: &[&str]) -> Spawned {
        Spawned::start_with(&self.bin, &self.rooted(args), &self.io_base(), &self.as_who(&SpawnOpts::default()))
    }

    // ---- lifecycle shorthands (options before the id) -----------------

    #[track_caller]
    pub fn try_create(&self) -> Output {
        self.berth(&["create", "--bundle", &self.bundle_str(), &self.id])
    }

    #[track_caller]
    pub fn create(&self) -> Output {
        self.try_create().ok()
    }

    #[track_caller]
    pub fn start(&self) -> Output {
        self.berth(&["start", &self.id]).ok()
    }

    /// Foreground `run`; the caller checks the status.
    #[track_caller]
    pub fn run(&self) -> Output {
        self.berth(&["run", "--bundle", &self.bundle_str(), &self.id])
    }

    /// Foreground `run` with `stdin` as the container's standard input.
    #[track_caller]
    pub fn run_stdin(&self, stdin: &[u8]) -> Output {
        self.berth_stdin(&["run", "--bundle", &self.bundle_str(), &self.id], stdin)
    }

    /// Foreground `run`, asserting exit 0; returns its output.
    #[track_caller]
    pub fn run_ok(&self) -> Output {
        self.run().ok()
    }

    /// Foreground `run` in the background, to signal it or watch it.
    pub fn spawn_run(&self) -> Spawned {
        self.spawn(&["run", "--bundle", &self.bundle_str(), &self.id])
    }

    #[track_caller]
    pub fn run_detached(&self) -> Output {
        self.berth(&["run", "--detach", "--bundle", &self.bundle_str(), &self.id]).ok()
    }

    /// `state ID` parsed; panics unless it succeeds.
    #[track_caller]
    pub fn state(&self) -> Value {
        self.berth(&["state", &self.id]).ok().json()
    }

    #[track_caller]
    pub fn status(&self) -> String {
        self.state()["status"].as_str().unwrap_or_default().to_string()
    }

    /// Init's host pid from `state`.
    #[track_caller]
    pub fn pid(&self) -> i64 {
        let st = self.state();
        st["pid"].as_i64().filter(|p| *p > 0).unwrap_or_else(|| panic!("state has no pid: {st}"))
    }

    /// Poll `state` until status is `want`.
    #[track_caller]
    pub fn wait_status(&self, want: &str, timeout: Duration) {
        let mut last = String::new();
        if !harness::wait_until(timeout, || {
            last = self.status();
            last == want
        }) {
            panic!("container {} did not reach status {want:?} in {timeout:?} (last {last:?})", self.id);
        }
    }

    #[track_caller]
    pub fn kill(&self, sig: &str) -> Output {
        self.berth(&["kill", &self.id, sig])
    }

    #[track_caller]
    pub fn delete(&self) -> Output {
        self.berth(&["delete", &self.id])
    }

    #[track_caller]
    pub fn delete_force(&self) -> Output {
        self.berth(&["delete", "--force", &self.id])
    }

    /// Wait until `<rootfs>/<rel>` holds `needle` (written by the
    /// container); on timeout panic with the container's state.
    #[track_caller]
    pub fn wait_file(&self, rel: &str, needle: &str) -> String {
        let path = self.rootfs().join(rel);
        let mut last = String::new();
        if harness::wait_until(Duration::from_secs(10), || {
            last = fs::read_to_string(&path).unwrap_or_default();
            last.contains(needle)
        }) {
            return last;
        }
        let st = self.berth(&["state", &self.id]);
        panic!("timed out waiting for {needle:?} in /{rel} of container {} (content {last:?}); state:\n{st}", self.id);
    }

    /// The state dir the runtime keeps for this container.
    pub fn state_dir(&self) -> PathBuf {
        self.root.join(&self.id)
    }
}

/// Assert the container left nothing behind: no `<root>/<id>`, no cgroup
/// dir in any hierarchy, no process with the marker (1s grace), no host
/// mount mentioning the bundle path.
#[track_caller]
pub fn assert_no_leftovers(env: &Env) {
    let mut problems = Vec::new();
    for root in [env.root.clone(), PathBuf::from(DEFAULT_ROOT)] {
        let sd = root.join(&env.id);
        if sd.exists() {
            problems.push(format!("state dir {} exists", sd.display()));
        }
    }
    for d in host::cgroup_dirs(&env.cgroups_path) {
        if d.exists() {
            problems.push(format!("cgroup dir {} exists", d.display()));
        }
    }
    let mut procs = Vec::new();
    harness::wait_until(Duration::from_secs(1), || {
        procs = host::pids_with_marker(&env.marker);
        procs.is_empty()
    });
    for p in procs {
        let cmd = fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
        problems.push(format!("process {p} alive: {}", String::from_utf8_lossy(&cmd).replace('\0', " ")));
    }
    let b = env.bundle_str();
    for m in fs::read_to_string("/proc/self/mountinfo").unwrap_or_default().lines() {
        if m.contains(&b) {
            problems.push(format!("host mount: {m}"));
        }
    }
    assert!(problems.is_empty(), "container {} left things behind:\n  {}", env.id, problems.join("\n  "));
}

impl Drop for Env {
    fn drop(&mut self) {
        let quick = Duration::from_secs(10);
        // Nothing here may panic: this may run while a failed test unwinds.
        if let Err(e) = self.berth_quiet(&["delete", "--force", &self.id], quick) {
            eprintln!("cleanup of {}: {e}", self.id);
        }
        if self.used_default_root.get() {
            let args = ["delete".to_string(), "--force".into(), self.id.clone()];
            if let Err(e) = harness::run_quiet_with(&self.bin, &args, &self.as_who(&SpawnOpts::default()), quick) {
                eprintln!("cleanup of {}: {e}", self.id);
            }
        }
        let mut left = host::reap_container(&self.marker, &self.cgroups_path);
        let mounts = host::umount_below(&self.dir);
        if mounts.is_empty() {
            if let Err(e) = fs::remove_dir_all(&self.dir) {
                left.push(format!("remove {}: {e}", self.dir.display()));
            }
        } else {
            left.push(format!("mounts still under {}: {mounts:?}; dir kept", self.dir.display()));
        }
        if self.used_default_root.get() {
            let _ = fs::remove_dir_all(Path::new(DEFAULT_ROOT).join(&self.id));
        }
        if !left.is_empty() {
            eprintln!("cleanup of {}: {}", self.id, left.join("; "));
        }
    }
}
