//! What a test works with: `Ctx` (one test against one runtime: its
//! scratch dir, `--root`, deadline, and the record of everything to clean
//! up) and `Ctr` (one container: its bundle, config and commands).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::bundle::{self, Template};
use crate::host::Host;
pub use crate::kv::{set_pointer, Kv};
use crate::proc::{self, Done, Spec};
use crate::runtime::Runtime;

/// A test that did not pass.
#[derive(Debug, Clone)]
pub enum Verdict {
    Fail(String),
    Skip(String),
}

pub type Res<T = ()> = Result<T, Verdict>;

impl From<String> for Verdict {
    fn from(s: String) -> Self {
        Verdict::Fail(s)
    }
}

#[macro_export]
macro_rules! fail {
    ($($t:tt)*) => { return Err($crate::ctx::Verdict::Fail(format!($($t)*))) };
}

#[macro_export]
macro_rules! skip {
    ($($t:tt)*) => { return Err($crate::ctx::Verdict::Skip(format!($($t)*))) };
}

#[macro_export]
macro_rules! ensure {
    ($c:expr, $($t:tt)*) => { if !($c) { $crate::fail!($($t)*) } };
}

/// Shared by every test of a run.
pub struct RunInfo {
    /// Short unique token of this run (in ids, cgroup names, markers).
    pub id: String,
    pub work: PathBuf,
    pub tpl: Template,
    pub host: Host,
}

/// What a test left that cleanup must remove (shared with the watchdog).
#[derive(Default)]
pub struct Track {
    pub ids: Mutex<Vec<String>>,
    pub children: Mutex<Vec<Child>>,
    /// Extra host-side undo actions (e.g. delete a network device).
    pub undo: Mutex<Vec<Box<dyn FnOnce() + Send>>>,
    /// Commands run, for --verbose.
    pub log: Mutex<Vec<String>>,
}

pub struct Inner {
    pub rt: Arc<Runtime>,
    pub run: Arc<RunInfo>,
    pub dir: PathBuf,
    pub root: PathBuf,
    /// `<runid>-<runtime index>t<test index>`: prefix of ids and cgroups.
    pub tag: String,
    pub deadline: Instant,
    pub track: Arc<Track>,
    seq: AtomicUsize,
}

#[derive(Clone)]
pub struct Ctx(pub Arc<Inner>);

/// Default bound of one runtime command.
const CMD_TIMEOUT: Duration = Duration::from_secs(15);

impl Ctx {
    pub fn new(
        rt: Arc<Runtime>,
        run: Arc<RunInfo>,
        dir: PathBuf,
        tag: String,
        deadline: Instant,
        track: Arc<Track>,
    ) -> Ctx {
        let root = dir.join("root");
        Ctx(Arc::new(Inner {
            rt,
            run,
            root,
            dir,
            tag,
            deadline,
            track,
            seq: AtomicUsize::new(0),
        }))
    }

    pub fn host(&self) -> &Host {
        &self.0.run.host
    }

    pub fn dir(&self) -> &Path {
        &self.0.dir
    }

    pub fn root(&self) -> &Path {
        &self.0.root
    }

    /// A scratch path on the host, in the test's private dir.
    pub fn file(&self, name: &str) -> PathBuf {
        self.0.dir.join(name)
    }

    /// The payload binary on the host.
    pub fn payload(&self) -> &Path {
        &self.0.run.tpl.payload
    }

    pub fn next(&self) -> usize {
        self.0.seq.fetch_add(1, Ordering::SeqCst)
    }

    pub fn remaining(&self) -> Duration {
        self.0.deadline.saturating_duration_since(Instant::now())
    }

    /// Timeout for one command: the default, cut to what the test has left.
    pub fn cmd_timeout(&self) -> Duration {
        CMD_TIMEOUT.min(self.remaining()).max(Duration::from_millis(200))
    }

    pub fn io_base(&self) -> PathBuf {
        self.0.dir.join(format!("cmd{:03}", self.next()))
    }

    /// The marker cleanup looks for in command lines.
    pub fn marker(&self) -> String {
        format!("ocmk{}", self.0.tag)
    }

    pub fn log(&self, line: String) {
        if let Ok(mut l) = self.0.track.log.lock() {
            l.push(line);
        }
    }

    /// Run `RUNTIME --root ROOT ARGS...`.
    pub fn runtime(&self, args: &[&str]) -> Done {
        self.runtime_with(args, |_| {})
    }

    /// As [`runtime`](Self::runtime), adjusting the spawn first.
    pub fn runtime_with(&self, args: &[&str], adjust: impl FnOnce(&mut Spec)) -> Done {
        let rt = &self.0.rt;
        let mut spec = Spec::new(
            &rt.path,
            rt.args(&self.0.root, args),
            &self.io_base(),
            self.cmd_timeout(),
        );
        adjust(&mut spec);
        let d = proc::run(spec);
        self.log(format!("{} -> {}", d.cmdline, d.describe()));
        d
    }

    pub fn kill_cmd(&self, id: &str, sig: &str, adjust: impl FnOnce(&mut Spec)) -> Done {
        let mut a = vec!["--root".to_string(), self.0.root.display().to_string()];
        a.extend(self.0.rt.kill_args(id, sig));
        let mut spec = Spec::new(&self.0.rt.path, a, &self.io_base(), self.cmd_timeout());
        adjust(&mut spec);
        let d = proc::run(spec);
        self.log(format!("{} -> {}", d.cmdline, d.describe()));
        d
    }

    /// A new container with the default config (see bundle::default_config).
    pub fn ctr(&self) -> Ctr {
        let n = self.next();
        let id = format!("oc-{}-{n}", self.0.tag);
        let dir = self.0.dir.join(format!("b{n}"));
        let cgroups_path = format!("/oci-conformance/{}-{n}", self.0.tag);
        let marker = self.marker();
        let config = bundle::default_config(&self.0.rt.oci_version, &marker, &cgroups_path);
        Ctr {
            cx: self.clone(),
            out: self.0.dir.join(format!("c{n}.out")),
            err: self.0.dir.join(format!("c{n}.err")),
            id,
            dir,
            config,
            cgroups_path,
            marker,
            made: false,
            pid: None,
            setns: None,
        }
    }

    /// Start `oci-payload hold-ns KINDS` on the host: a process in new
    /// namespaces of those kinds, for tests that join namespaces by path.
    pub fn holder(&self, kinds: &str) -> Res<Holder> {
        let out = self.file(&format!("holder-{}.out", self.next()));
        let f = fs::File::create(&out).map_err(|e| format!("create {}: {e}", out.display()))?;
        let child = {
            use std::os::unix::process::CommandExt;
            let _g = proc::spawning();
            Command::new(self.payload())
                .args(["hold-ns", kinds, &self.marker()])
                .stdin(Stdio::null())
                .stdout(f)
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .map_err(|e| format!("start the namespace holder: {e}"))?
        };
        if let Ok(mut c) = self.0.track.children.lock() {
            c.push(child);
        }
        let mut text = String::new();
        proc::wait_until(Duration::from_secs(5), || {
            text = fs::read_to_string(&out).unwrap_or_default();
            text.contains("pid=") || text.contains("error=")
        });
        let kv = Kv::parse(&text);
        if let Some(e) = kv.get("error") {
            skip!("the host cannot create a {kinds} namespace to join: {e}");
        }
        let pid: i64 = kv
            .get("pid")
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| format!("namespace holder printed no pid: {text:?}"))?;
        Ok(Holder { pid })
    }

    /// Register a host-side undo action for cleanup.
    pub fn on_cleanup(&self, f: impl FnOnce() + Send + 'static) {
        if let Ok(mut u) = self.0.track.undo.lock() {
            u.push(Box::new(f));
        }
    }
}

pub struct Holder {
    /// A process inside the new namespaces.
    pub pid: i64,
}

impl Holder {
    pub fn ns(&self, kind: &str) -> String {
        format!("/proc/{}/ns/{kind}", self.pid)
    }
}

/// One container under test.
pub struct Ctr {
    pub cx: Ctx,
    pub id: String,
    /// The bundle directory.
    pub dir: PathBuf,
    pub config: Value,
    pub cgroups_path: String,
    pub marker: String,
    /// The container's stdout/stderr (create's stdio).
    pub out: PathBuf,
    pub err: PathBuf,
    made: bool,
    pid: Option<i64>,
    /// Run every runtime command for this container in this mount
    /// namespace (tests of a container without a mount namespace).
    pub setns: Option<PathBuf>,
}

impl Ctr {
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    pub fn bundle(&self) -> String {
        self.dir.display().to_string()
    }

    /// Make the bundle directory and rootfs (done by `create` if needed).
    pub fn make(&mut self) -> Res {
        if !self.made {
            bundle::copy_tree(&self.cx.0.run.tpl.rootfs, &self.rootfs()).map_err(|e| format!("copy rootfs: {e}"))?;
            self.made = true;
        }
        Ok(())
    }

    pub fn write_config(&mut self) -> Res {
        self.make()?;
        let text = serde_json::to_vec_pretty(&self.config).map_err(|e| format!("serialize config: {e}"))?;
        fs::write(self.dir.join("config.json"), text).map_err(|e| format!("write config.json: {e}"))?;
        Ok(())
    }

    /// Set the value at a JSON pointer, creating objects on the way.
    pub fn set(&mut self, pointer: &str, v: Value) {
        set_pointer(&mut self.config, pointer, v);
    }

    /// Append to the array at a JSON pointer (created if missing).
    pub fn push(&mut self, pointer: &str, v: Value) {
        let mut arr = self
            .config
            .pointer(pointer)
            .cloned()
            .filter(|a| a.is_array())
            .unwrap_or(json!([]));
        if let Some(a) = arr.as_array_mut() {
            a.push(v);
        }
        self.set(pointer, arr);
    }

    pub fn remove(&mut self, pointer: &str) {
        if let Some((parent, key)) = pointer.rsplit_once('/') {
            if let Some(o) = self.config.pointer_mut(parent).and_then(|v| v.as_object_mut()) {
                o.remove(key);
            }
        }
    }

    /// `process.args = [/oc-payload, ARGS..., MARKER]`.
    pub fn payload(&mut self, args: &[&str]) {
        let mut v: Vec<String> = vec![bundle::PAYLOAD_IN_CTR.into()];
        v.extend(args.iter().map(|s| s.to_string()));
        v.push(self.marker.clone());
        self.set("/process/args", json!(v));
    }

    /// `process.args = [sh, -c, SCRIPT, MARKER]` (busybox sh).
    pub fn sh(&mut self, script: &str) {
        let m = self.marker.clone();
        self.set("/process/args", json!(["/bin/sh", "-c", script, m]));
    }

    /// Replace the namespace list.
    pub fn namespaces(&mut self, kinds: &[&str]) {
        let v: Vec<Value> = kinds.iter().map(|k| json!({"type": k})).collect();
        self.set("/linux/namespaces", json!(v));
    }

    pub fn add_mount(&mut self, m: Value) {
        self.push("/mounts", m);
    }

    // ---- commands -----------------------------------------------------

    /// `create --bundle DIR ID` (writes the config first). Raw result.
    pub fn create(&mut self) -> Done {
        self.create_with(|_| {})
    }

    pub fn create_with(&mut self, adjust: impl FnOnce(&mut Spec)) -> Done {
        self.create_full(&[], adjust)
    }

    /// `create [OPTS...] --bundle DIR ID`, adjusting the spawn.
    pub fn create_full(&mut self, opts: &[&str], adjust: impl FnOnce(&mut Spec)) -> Done {
        if let Err(Verdict::Fail(e) | Verdict::Skip(e)) = self.write_config() {
            return proc::Done {
                cmdline: "write bundle".into(),
                status: None,
                stdout: String::new(),
                stderr: e,
                elapsed: Duration::ZERO,
            };
        }
        if let Ok(mut ids) = self.cx.0.track.ids.lock() {
            ids.push(self.id.clone());
        }
        let (out, err, b, id) = (self.out.clone(), self.err.clone(), self.bundle(), self.id.clone());
        let mut args = vec!["create"];
        args.extend_from_slice(opts);
        args.extend_from_slice(&["--bundle", &b, &id]);
        let ns = self.setns.clone();
        self.cx.runtime_with(&args, |s| {
            s.out = out;
            s.err = err;
            s.setns = ns;
            adjust(s);
        })
    }

    /// `RUNTIME --root ROOT ARGS...` for this container.
    pub fn cmd(&self, args: &[&str]) -> Done {
        let ns = self.setns.clone();
        self.cx.runtime_with(args, |s| s.setns = ns)
    }

    /// `create`, failing the test unless it succeeds.
    pub fn create_ok(&mut self) -> Res<Done> {
        let d = self.create();
        ensure!(d.ok(), "create failed: {}", d.describe());
        Ok(d)
    }

    pub fn start(&self) -> Done {
        self.cmd(&["start", &self.id])
    }

    pub fn start_ok(&mut self) -> Res<Done> {
        let d = self.start();
        ensure!(d.ok(), "start failed: {}", d.describe());
        Ok(d)
    }

    pub fn state_raw(&self) -> Done {
        self.cmd(&["state", &self.id])
    }

    /// `state ID`, parsed.
    pub fn state(&self) -> Res<Value> {
        let d = self.state_raw();
        ensure!(d.ok(), "state failed: {}", d.describe());
        serde_json::from_str(&d.stdout).map_err(|e| {
            Verdict::Fail(format!(
                "state printed no JSON ({e}): {}",
                proc::squeeze(&d.stdout, 200)
            ))
        })
    }

    pub fn status(&self) -> Res<String> {
        Ok(self.state()?["status"].as_str().unwrap_or_default().to_string())
    }

    /// The container process's pid from `state`.
    pub fn pid(&mut self) -> Res<i64> {
        if let Some(p) = self.pid {
            return Ok(p);
        }
        let st = self.state()?;
        let p = st["pid"]
            .as_i64()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("state has no pid: {st}"))?;
        self.pid = Some(p);
        Ok(p)
    }

    pub fn kill(&self, sig: &str) -> Done {
        let ns = self.setns.clone();
        self.cx.kill_cmd(&self.id, sig, |s| s.setns = ns)
    }

    pub fn delete(&self) -> Done {
        self.cmd(&["delete", &self.id])
    }

    /// Poll `state` until the status is `want`.
    pub fn wait_status(&self, want: &str) -> Res {
        let mut last = String::new();
        let mut err = None;
        let ok = proc::wait_until(self.cx.remaining(), || {
            match self.state() {
                Ok(s) => last = s["status"].as_str().unwrap_or_default().to_string(),
                Err(Verdict::Fail(e) | Verdict::Skip(e)) => err = Some(e),
            }
            last == want || err.is_some()
        });
        if let Some(e) = err {
            fail!("waiting for status {want:?}: {e}");
        }
        ensure!(ok, "status stayed {last:?}, never {want:?}");
        Ok(())
    }

    /// Wait until the container process has exited and state says stopped.
    pub fn wait_stopped(&mut self) -> Res {
        if let Ok(pid) = self.pid() {
            proc::wait_until(self.cx.remaining(), || !proc::pid_alive(pid));
        }
        self.wait_status("stopped")
    }

    /// The container's stdout so far.
    pub fn output(&self) -> String {
        fs::read_to_string(&self.out).unwrap_or_default()
    }

    pub fn errput(&self) -> String {
        fs::read_to_string(&self.err).unwrap_or_default()
    }

    /// Wait until the container's stdout holds `needle`.
    pub fn wait_output(&self, needle: &str) -> Res<String> {
        let mut text = String::new();
        if proc::wait_until(self.cx.remaining(), || {
            text = self.output();
            text.contains(needle)
        }) {
            return Ok(text);
        }
        fail!(
            "the container never printed {needle:?}; stdout: {:?}; stderr: {:?}",
            proc::squeeze(&text, 300),
            proc::squeeze(&self.errput(), 300)
        )
    }

    /// create, start, wait for the exit; the payload's output parsed.
    pub fn run(&mut self) -> Res<Kv> {
        self.create_ok()?;
        self.start_ok()?;
        self.wait_stopped()?;
        let text = self.output();
        if text.trim().is_empty() {
            fail!(
                "the container printed nothing; its stderr: {:?}",
                proc::squeeze(&self.errput(), 300)
            );
        }
        Ok(Kv::parse(&text))
    }

    /// The runtime must refuse this config: at `create`, or (for process
    /// settings, which MAY be applied by `start`) at `start`. Returns which
    /// command failed. Fails the test if both succeed or the program ran.
    pub fn expect_error(&mut self) -> Res<&'static str> {
        let d = self.create();
        if d.timed_out() {
            fail!("create hung: {}", d.describe());
        }
        if !d.ok() {
            return Ok("create");
        }
        let s = self.start();
        if !s.ok() && !s.timed_out() {
            let out = self.output();
            ensure!(
                out.trim().is_empty(),
                "start failed but the program ran and printed: {}",
                proc::squeeze(&out, 200)
            );
            return Ok("start");
        }
        fail!("the runtime accepted the config and ran the container (create and start exited 0)")
    }

    /// The runtime must refuse this config at `create`.
    pub fn expect_create_error(&mut self) -> Res {
        let d = self.create();
        ensure!(!d.timed_out(), "create hung: {}", d.describe());
        ensure!(!d.ok(), "create accepted the config (exit 0)");
        Ok(())
    }

    /// Directories of this container's cgroup in every v1 hierarchy (or
    /// the unified one), when cgroupsPath is absolute.
    pub fn cgroup_dir(&self, controller: &str) -> Option<PathBuf> {
        self.cx.host().cgroup_dir(controller, &self.cgroups_path)
    }
}
