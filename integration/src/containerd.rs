//! A private containerd per test, for the shim's tests: its own root, state,
//! socket and config under a temp dir, `containerd-shim-berth-v2` on its
//! PATH, a busybox image imported from an OCI archive made here (no
//! registry), and `ctr` of the same version.
//!
//! Versions: 1.6 is Debian 12's `containerd` package (/usr/bin); 2.1 is
//! Debian sid's, fetched by `scripts/containerd-sid.sh` into
//! `$BERTH_CONTAINERD_SID_DIR` (default /var/cache/berth/containerd-sid).
//! A missing version fails the test with the command that installs it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::harness::{find_bin, run_cmd, run_quiet, wait_until, Output};

pub const IMAGE: &str = "docker.io/library/berth-busybox:latest";
pub const RUNTIME: &str = "io.containerd.berth.v2";
pub const SHIM: &str = "containerd-shim-berth-v2";

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Version {
    V16,
    V21,
}

impl Version {
    /// The directory holding `containerd` and `ctr`.
    pub fn bin_dir(self) -> PathBuf {
        match self {
            Version::V16 => PathBuf::from("/usr/bin"),
            Version::V21 => {
                let d = std::env::var_os("BERTH_CONTAINERD_SID_DIR").map(PathBuf::from);
                d.unwrap_or_else(|| PathBuf::from("/var/cache/berth/containerd-sid"))
                    .join("usr/bin")
            }
        }
    }

    fn check(self) -> PathBuf {
        let d = self.bin_dir();
        let out = Command::new(d.join("containerd")).arg("--version").output();
        let v = match out {
            Ok(o) => String::from_utf8_lossy(&o.stdout).into_owned(),
            Err(e) => panic!(
                "containerd {self:?} not found in {} ({e}): install it with `scripts/setup-deps.sh` \
                 (1.6: Debian's containerd package; 2.1: scripts/containerd-sid.sh)",
                d.display()
            ),
        };
        let want = match self {
            Version::V16 => " 1.6.",
            Version::V21 => " 2.1.",
        };
        assert!(
            v.contains(want),
            "{}/containerd is not containerd{want}x: {v}",
            d.display()
        );
        d
    }
}

/// Make the busybox image as an OCI archive under `dir` (kept with the
/// containerd's own files, so it goes when they go).
pub fn image_archive(dir: &Path) -> PathBuf {
    let work = dir.join("image");
    let rootfs = work.join("rootfs");
    crate::bundle::make_busybox_rootfs(&rootfs).expect("busybox rootfs");
    let out = work.join("busybox-oci.tar");
    make_oci_archive(&rootfs, &work.join("layout"), &out);
    out
}

fn sha256_file(path: &Path) -> String {
    let o = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("run sha256sum");
    assert!(o.status.success(), "sha256sum {}", path.display());
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// Store `path` as a blob; returns (digest, size).
fn add_blob(layout: &Path, path: &Path) -> (String, u64) {
    let digest = sha256_file(path);
    let size = fs::metadata(path).unwrap().len();
    fs::rename(path, layout.join("blobs/sha256").join(&digest)).unwrap();
    (format!("sha256:{digest}"), size)
}

/// The image config of the busybox image: `sh`.
pub fn busybox_config() -> serde_json::Value {
    serde_json::json!({"Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["sh"]})
}

/// An OCI image layout (one uncompressed layer) as a tar archive: the
/// busybox image `IMAGE`.
pub fn make_oci_archive(rootfs: &Path, layout: &Path, out: &Path) {
    make_oci_archive_images(rootfs, layout, out, &[(IMAGE, busybox_config())]);
}

/// An OCI image layout as a tar archive holding one image per `(name,
/// config)` (the image config's `config` object), all of `rootfs` as their
/// one uncompressed layer.
pub fn make_oci_archive_images(
    rootfs: &Path,
    layout: &Path,
    out: &Path,
    images: &[(&str, serde_json::Value)],
) {
    fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
    let tmp = layout.join("tmp");
    let st = Command::new("tar")
        .args(["--numeric-owner", "--owner=0", "--group=0", "-C"])
        .arg(rootfs)
        .arg("-cf")
        .arg(&tmp)
        .arg(".")
        .status()
        .expect("run tar");
    assert!(st.success(), "tar the image layer");
    let (layer, layer_size) = add_blob(layout, &tmp);
    let mut manifests = Vec::new();
    for (name, image_config) in images {
        let config = serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "config": image_config,
            "rootfs": {"type": "layers", "diff_ids": [layer]}
        });
        fs::write(&tmp, config.to_string()).unwrap();
        let (config, config_size) = add_blob(layout, &tmp);
        let manifest = serde_json::json!({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": config_size},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": layer_size}]
        });
        fs::write(&tmp, manifest.to_string()).unwrap();
        let (manifest, manifest_size) = add_blob(layout, &tmp);
        let tag = name.rsplit_once(':').map(|(_, t)| t).unwrap_or("latest");
        manifests.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest, "size": manifest_size,
            "annotations": {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": tag}
        }));
    }
    let index = serde_json::json!({"schemaVersion": 2, "manifests": manifests});
    fs::write(layout.join("index.json"), index.to_string()).unwrap();
    fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let st = Command::new("tar")
        .arg("-C")
        .arg(layout)
        .arg("-cf")
        .arg(out)
        .args(["oci-layout", "index.json", "blobs"])
        .status()
        .unwrap();
    assert!(st.success(), "tar the OCI layout");
}

/// Each scenario `fn NAME(v: Version)` of a test file once per containerd
/// version: a module `NAME` with tests `containerd_1_6` and `containerd_2_1`.
#[macro_export]
macro_rules! each_containerd {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn containerd_1_6() {
                super::$name($crate::containerd::Version::V16)
            }
            #[test]
            fn containerd_2_1() {
                super::$name($crate::containerd::Version::V21)
            }
        }
    )*};
}

/// The arguments of `ctr run --runtime io.containerd.berth.v2 [extra] IMAGE
/// ID CMD...`.
pub fn run_args<'a>(extra: &[&'a str], id: &'a str, cmd: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec!["run", "--runtime", RUNTIME];
    a.extend_from_slice(extra);
    a.push(IMAGE);
    a.push(id);
    a.extend_from_slice(cmd);
    a
}

/// The topics among `topics` of the `ctr events` lines (written to `path`)
/// for container `id`, in order.
pub fn topics_seen(path: &Path, id: &str, topics: &[&str]) -> Vec<String> {
    let text = fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter(|l| l.contains(&format!("\"{id}\"")))
        .filter_map(|l| {
            topics
                .iter()
                .find(|t| l.contains(&format!(" {t} ")))
                .map(|t| t.to_string())
        })
        .collect()
}

/// Start containerd with the config in `dir`, logging (appending) to
/// `dir/containerd.log`, with `dir/bin` (the shims) first on PATH and `env`
/// added to its environment.
fn spawn_containerd(bin: &Path, dir: &Path, env: &[(String, String)]) -> Child {
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("containerd.log"))
        .unwrap();
    let path = format!(
        "{}:{}",
        dir.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    Command::new(bin.join("containerd"))
        .arg("--config")
        .arg(dir.join("config.toml"))
        .env("PATH", path)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("spawn containerd")
}

/// A running private containerd; dropping it stops it and removes
/// everything it and its shims left.
pub struct Containerd {
    pub version: Version,
    pub dir: PathBuf,
    pub sock: PathBuf,
    /// The containerd namespace `ctr` uses: unique per test and test
    /// process (it names the cgroup parent and berth's state root), or, for
    /// a [`Setup`] with a `namespace`, that one (the CRI plugin's `k8s.io`),
    /// which tests running at the same time share.
    pub ns: String,
    /// The unique name of this test's containerd (`ns` when that is
    /// unique): the cgroup parent its containers are made under.
    pub scope: String,
    bin: PathBuf,
    env: Vec<(String, String)>,
    child: Option<Child>,
    seq: AtomicU32,
    /// With a shared `ns`: the container ids this test made, whose berth
    /// state dirs are its own to check and remove.
    tracked: std::sync::Mutex<Vec<String>>,
}

/// How [`Containerd::start_with`] sets a containerd up.
pub struct Setup<'a> {
    /// The containerd namespace of `ctr` and the image import; None: a
    /// unique one per test.
    pub namespace: Option<&'a str>,
    /// The config.toml, given the containerd's dir and socket path.
    pub config: &'a dyn Fn(&Path, &Path) -> String,
    /// Extra environment of containerd (and so of its shims).
    pub env: &'a [(&'a str, &'a str)],
    /// More executables linked into `dir/bin`, first on containerd's PATH
    /// (name, target).
    pub bins: &'a [(&'a str, PathBuf)],
}

impl Containerd {
    /// Start containerd `v` for test `name` (CRI disabled) and import the
    /// busybox image.
    pub fn start(v: Version, name: &str) -> Containerd {
        let config = |dir: &Path, sock: &Path| {
            format!(
                "version = 2\nroot = \"{d}/root\"\nstate = \"{d}/state\"\n\
                 disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
                 [grpc]\n  address = \"{s}\"\n[debug]\n  level = \"debug\"\n",
                d = dir.display(),
                s = sock.display()
            )
        };
        let c = Containerd::start_with(
            v,
            name,
            &Setup {
                namespace: None,
                config: &config,
                env: &[],
                bins: &[],
            },
        );
        c.ctr(&["images", "import", image_archive(&c.dir).to_str().unwrap()])
            .ok();
        c
    }

    /// Start containerd `v` for test `name` as `setup` says; the caller
    /// imports its images.
    pub fn start_with(v: Version, name: &str, setup: &Setup) -> Containerd {
        let bin = v.check();
        let shim = find_bin(SHIM, "BERTH_SHIM_BIN");
        let scope = format!(
            "bt{}-{name}-{}",
            match v {
                Version::V16 => "16",
                Version::V21 => "21",
            },
            std::process::id()
        );
        let dir = std::env::temp_dir().join(format!("berth-ctd-{scope}"));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("bin")).unwrap();
        std::os::unix::fs::symlink(&shim, dir.join("bin").join(SHIM)).unwrap();
        for (name, target) in setup.bins {
            std::os::unix::fs::symlink(target, dir.join("bin").join(name)).unwrap();
        }
        let sock = dir.join("containerd.sock");
        fs::write(dir.join("config.toml"), (setup.config)(&dir, &sock)).unwrap();
        let env: Vec<(String, String)> = setup
            .env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let child = spawn_containerd(&bin, &dir, &env);
        let c = Containerd {
            version: v,
            dir,
            sock,
            ns: setup
                .namespace
                .map(str::to_string)
                .unwrap_or_else(|| scope.clone()),
            scope,
            bin,
            env,
            child: Some(child),
            seq: AtomicU32::new(0),
            tracked: Default::default(),
        };
        let up = wait_until(Duration::from_secs(20), || c.ctr(&["version"]).success());
        assert!(
            up,
            "containerd {v:?} did not come up; its log:\n{}",
            c.log()
        );
        c
    }

    /// Record container (or sandbox) `id` as made by this test, in a shared
    /// namespace (see `ns`): its berth state dir is then this test's.
    pub fn track(&self, id: &str) {
        self.tracked.lock().unwrap().push(id.to_string());
    }

    fn shares_ns(&self) -> bool {
        self.ns != self.scope
    }

    /// Stop containerd (SIGTERM, as a service manager would) and start it
    /// again on the same root, state and socket; its shims keep running.
    pub fn restart(&mut self) {
        if let Some(mut c) = self.child.take() {
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let _ = c.wait();
        }
        self.child = Some(spawn_containerd(&self.bin, &self.dir, &self.env));
        let up = wait_until(Duration::from_secs(20), || self.ctr(&["version"]).success());
        assert!(up, "containerd did not come back; its log:\n{}", self.log());
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("containerd.log")).unwrap_or_default()
    }

    fn ctr_args(&self, args: &[&str]) -> Vec<String> {
        let mut v = vec![
            "--address".to_string(),
            self.sock.display().to_string(),
            "--namespace".into(),
            self.ns.clone(),
        ];
        v.extend(args.iter().map(|s| s.to_string()));
        v
    }

    /// `ctr ARGS` against this containerd (30 s timeout).
    pub fn ctr(&self, args: &[&str]) -> Output {
        self.ctr_timeout(args, Duration::from_secs(30))
    }

    pub fn ctr_timeout(&self, args: &[&str], t: Duration) -> Output {
        self.ctr_full(args, None, t)
    }

    /// `ctr ARGS` with stdin from a file.
    pub fn ctr_full(&self, args: &[&str], stdin: Option<&Path>, t: Duration) -> Output {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        run_cmd(
            &self.bin.join("ctr"),
            &self.ctr_args(args),
            &self.dir.join(format!("ctr-{n}")),
            stdin,
            t,
        )
    }

    /// A `ctr ARGS` command against this containerd, for callers that set
    /// up its stdio themselves (a terminal).
    pub fn ctr_command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(self.bin.join("ctr"));
        c.args(self.ctr_args(args));
        c
    }

    /// The `address` of the shim serving task `id` (from its bundle).
    pub fn shim_address(&self, id: &str) -> String {
        let p = self
            .dir
            .join("state/io.containerd.runtime.v2.task")
            .join(&self.ns)
            .join(id)
            .join("address");
        fs::read_to_string(&p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .trim()
            .to_string()
    }

    /// `ctr ARGS` in the background.
    pub fn ctr_spawn(&self, args: &[&str]) -> crate::harness::Spawned {
        self.ctr_spawn_out(args).0
    }

    /// `ctr ARGS` in the background, and the file its stdout goes to.
    pub fn ctr_spawn_out(&self, args: &[&str]) -> (crate::harness::Spawned, PathBuf) {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let base = self.dir.join(format!("ctr-{n}"));
        let s = crate::harness::Spawned::start(
            &self.bin.join("ctr"),
            &self.ctr_args(args),
            &base,
            None,
        );
        (s, base.with_extension("out"))
    }

    /// `ctr run --runtime io.containerd.berth.v2 [extra] IMAGE ID CMD...`.
    pub fn run(&self, extra: &[&str], id: &str, cmd: &[&str]) -> Output {
        self.ctr(&run_args(extra, id, cmd))
    }

    /// Wait (SHORT) until `ctr tasks ls` shows task `id` with status `want`
    /// (RUNNING, STOPPED, PAUSED); panics with the task list otherwise.
    #[track_caller]
    pub fn wait_status(&self, id: &str, want: &str) {
        let ok = wait_until(crate::prelude::SHORT, || {
            self.ctr(&["tasks", "ls"])
                .stdout
                .lines()
                .any(|l| l.split_whitespace().next() == Some(id) && l.contains(want))
        });
        assert!(
            ok,
            "task {id} never {want}: {}",
            self.ctr(&["tasks", "ls"]).stdout
        );
    }

    /// The host pid of task `id`'s init (`ctr tasks ls`); panics when the
    /// task is not listed.
    #[track_caller]
    pub fn task_pid(&self, id: &str) -> i32 {
        let o = self.ctr(&["tasks", "ls"]).ok();
        o.stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(id))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no pid for task {id}: {o}"))
    }

    /// Start a long-running container `id` (`sh -c "sleep 1000"`, detached)
    /// and wait until it runs.
    #[track_caller]
    pub fn sleeper(&self, id: &str) {
        self.run(&["-d"], id, &["sh", "-c", "sleep 1000"]).ok();
        self.wait_status(id, "RUNNING");
    }

    /// SIGKILL task `id`, wait until it stopped, then delete the task and
    /// the container.
    #[track_caller]
    pub fn remove(&self, id: &str) {
        self.ctr(&["tasks", "kill", "-s", "KILL", id]).ok();
        self.wait_status(id, "STOPPED");
        self.ctr(&["tasks", "rm", id]).ok();
        self.ctr(&["containers", "rm", id]).ok();
    }

    /// Pids of this containerd's shims, berth's (server processes and their
    /// launchers) or runc's (CRI tests).
    pub fn shim_pids(&self) -> Vec<i32> {
        let needle = format!("-address\0{}\0", self.sock.display());
        let mut pids = Vec::new();
        for e in fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let Ok(cmd) = fs::read(e.path().join("cmdline")) else {
                continue;
            };
            let cmd = String::from_utf8_lossy(&cmd);
            if cmd.contains("containerd-shim-") && cmd.contains(&needle) {
                pids.push(pid);
            }
        }
        pids
    }

    /// Wait until no shim of this containerd is left.
    pub fn wait_no_shims(&self, t: Duration) -> bool {
        wait_until(t, || self.shim_pids().is_empty())
    }

    /// The cgroup dirs of this test's containers still present (below
    /// `scope` in every hierarchy).
    pub fn leftover_cgroups(&self) -> Vec<PathBuf> {
        let mut left = Vec::new();
        for h in crate::host::cgroup_hierarchies() {
            if let Ok(rd) = fs::read_dir(h.join(&self.scope)) {
                left.extend(rd.flatten().filter(|e| e.path().is_dir()).map(|e| e.path()));
            }
        }
        left
    }

    /// Mounts below this containerd's dir.
    pub fn leftover_mounts(&self) -> Vec<String> {
        let d = self.dir.display().to_string();
        crate::host::host_mounts()
            .into_iter()
            .map(|m| m.mount_point)
            .filter(|p| p.starts_with(&d))
            .collect()
    }

    /// berth state dirs of this namespace still present (in a shared
    /// namespace: of the tracked ids).
    pub fn leftover_state(&self) -> Vec<PathBuf> {
        let root = Path::new("/run/containerd-berth").join(&self.ns);
        let tracked = self.tracked.lock().unwrap().clone();
        fs::read_dir(root)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| !self.shares_ns() || tracked.iter().any(|id| e.file_name() == id.as_str()))
            .map(|e| e.path())
            .collect()
    }

    /// Assert that the containers are all gone: no shim, mount, cgroup or
    /// berth state left behind.
    #[track_caller]
    pub fn assert_clean(&self) {
        assert!(
            self.wait_no_shims(Duration::from_secs(10)),
            "shims left: {:?}",
            self.shim_pids()
        );
        assert_eq!(self.leftover_mounts(), Vec::<String>::new(), "mounts left");
        assert_eq!(
            self.leftover_cgroups(),
            Vec::<PathBuf>::new(),
            "cgroups left"
        );
        assert_eq!(
            self.leftover_state(),
            Vec::<PathBuf>::new(),
            "berth state left"
        );
    }

    /// SIGKILL this containerd's shims (hung ones too) and remove berth's
    /// shim sockets they leave behind (berth's shim removes its socket on
    /// delete).
    pub fn kill_shims(&self) {
        let shims = self.shim_pids();
        let sockets: Vec<PathBuf> = shims.iter().flat_map(|&p| shim_sockets(p)).collect();
        for pid in shims {
            crate::host::kill9(pid);
        }
        for s in sockets {
            let _ = fs::remove_file(s);
        }
    }

    fn cleanup(&mut self) {
        // Containers first, through containerd, then containerd itself.
        let tasks = self.ctr(&["tasks", "ls", "-q"]);
        for id in tasks.lines() {
            run_quiet(
                &self.bin.join("ctr"),
                &self.ctr_args(&["tasks", "kill", "-s", "KILL", &id]),
                Duration::from_secs(10),
            )
            .ok();
            run_quiet(
                &self.bin.join("ctr"),
                &self.ctr_args(&["tasks", "rm", "-f", &id]),
                Duration::from_secs(10),
            )
            .ok();
        }
        for id in self.ctr(&["containers", "ls", "-q"]).lines() {
            run_quiet(
                &self.bin.join("ctr"),
                &self.ctr_args(&["containers", "rm", &id]),
                Duration::from_secs(10),
            )
            .ok();
        }
        if let Some(mut c) = self.child.take() {
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let end = Instant::now() + Duration::from_secs(10);
            while c.try_wait().ok().flatten().is_none() && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        self.kill_shims();
        for m in self.leftover_mounts().into_iter().rev() {
            let c = std::ffi::CString::new(m).unwrap();
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
        // Processes a hung or killed shim left in the containers' cgroups.
        for h in crate::host::cgroup_hierarchies() {
            for pid in crate::host::cgroup_pids(&h.join(&self.scope)) {
                crate::host::kill9(pid);
            }
        }
        for h in crate::host::cgroup_hierarchies() {
            let parent = h.join(&self.scope);
            for d in fs::read_dir(&parent).into_iter().flatten().flatten() {
                if d.path().is_dir() {
                    let path = d.path();
                    wait_until(Duration::from_secs(2), || {
                        crate::host::rmdir_cgroup(&path).is_ok()
                    });
                }
            }
            let _ = fs::remove_dir(&parent);
        }
        if self.shares_ns() {
            for p in self.leftover_state() {
                let _ = fs::remove_dir_all(p);
            }
        } else {
            let _ = fs::remove_dir_all(Path::new("/run/containerd-berth").join(&self.ns));
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// The unix sockets below /run/containerd-berth/s that process `pid` has
/// open (a berth shim server's listening socket).
fn shim_sockets(pid: i32) -> Vec<PathBuf> {
    let inodes: Vec<String> = fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| fs::read_link(e.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
        })
        .collect();
    // /proc/net/unix: Num RefCount Protocol Flags Type St Inode Path
    let table = fs::read_to_string("/proc/net/unix").unwrap_or_default();
    table
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 8 && inodes.iter().any(|i| i == f[6])).then(|| PathBuf::from(f[7]))
        })
        .filter(|p| p.starts_with("/run/containerd-berth/s/"))
        .collect()
}

impl Drop for Containerd {
    fn drop(&mut self) {
        self.cleanup();
    }
}
