//! An unprivileged user of the test's own, to run berth rootless:
//! `useradd` with a unique name, a subordinate uid and gid range of its own
//! (`usermod --add-subuids/--add-subgids`), a private directory it owns
//! holding its `$XDG_RUNTIME_DIR` and bundles. [`User`]'s drop deletes its
//! containers (as the user), kills whatever still runs as it (by pid),
//! removes the ranges, the user and its directory, even when the test
//! panics.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use serde_json::Value;

use crate::bundle::make_busybox_rootfs;
use crate::harness::{self, berth_bin, Output, CMD_TIMEOUT};
use crate::host;

static COUNTER: AtomicUsize = AtomicUsize::new(0);
/// useradd, usermod and userdel of this process one at a time (they lock
/// /etc/passwd and /etc/subuid themselves, and fail rather than wait).
static ACCOUNTS: Mutex<()> = Mutex::new(());

/// Size of each user's subordinate range.
pub const SUBID_COUNT: u32 = 65536;

pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// First id of its subordinate uid and gid ranges ([`SUBID_COUNT`] each).
    pub subid: u32,
    /// Its own directory (mode 0700 but traversable... see [`User::create`]).
    pub dir: PathBuf,
    /// `$XDG_RUNTIME_DIR` for its berth commands.
    pub run_dir: PathBuf,
    bin: PathBuf,
    seq: AtomicUsize,
}

fn accounts(args: &[&str]) -> std::io::Result<()> {
    let _g = ACCOUNTS.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..50 {
        let out = Command::new(args[0]).args(&args[1..]).output()?;
        if out.status.success() {
            return Ok(());
        }
        let err = String::from_utf8_lossy(&out.stderr);
        // Another process (another test binary) holds the lock: retry.
        if !err.contains("lock") {
            return Err(std::io::Error::other(format!("{args:?}: {}", err.trim())));
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    Err(std::io::Error::other(format!(
        "{args:?}: /etc/passwd stayed locked"
    )))
}

fn id_of(name: &str, flag: &str) -> u32 {
    let out = Command::new("id")
        .args([flag, name])
        .output()
        .expect("run id");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("id {flag} {name}"))
}

/// Whether rootless tests can run here (root to make the user, the tools,
/// unprivileged user namespaces); prints a skip with the reason if not.
pub fn can_run(needs_helpers: bool) -> bool {
    use crate::test_skip::{skip, HOST, ROOT, TOOLS};
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        skip(ROOT, "making a test user needs root");
        return false;
    }
    let mut tools = vec!["runuser", "useradd", "usermod", "userdel"];
    if needs_helpers {
        tools.extend(["newuidmap", "newgidmap"]);
    }
    for t in tools {
        let found = ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
            .iter()
            .any(|d| Path::new(d).join(t).exists());
        if !found {
            skip(
                TOOLS,
                &format!("{t} not found (scripts/setup-deps.sh installs uidmap and util-linux)"),
            );
            return false;
        }
    }
    if fs::read_to_string("/proc/sys/kernel/unprivileged_userns_clone")
        .is_ok_and(|s| s.trim() == "0")
    {
        skip(
            HOST,
            "kernel.unprivileged_userns_clone is 0: no user namespaces without root",
        );
        return false;
    }
    true
}

impl User {
    /// A new system user (no automatic ranges) named after the test, with
    /// its own subordinate range, its directory under the tests' temp dir.
    pub fn create(tag: &str) -> User {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let name = format!("brt{}{}x{n}", tag.chars().take(8).collect::<String>(), pid);
        let subid = 1_000_000_000 + (((pid % 2000) * 16 + n as u32 % 16) * SUBID_COUNT);
        let base = std::env::temp_dir().join("berth-it");
        fs::create_dir_all(&base).expect("create temp base");
        let dir = base.canonicalize().expect("canonicalize").join(&name);
        // Partly made users are removed by the guard: build it first.
        let mut u = User {
            name: name.clone(),
            uid: 0,
            gid: 0,
            subid,
            run_dir: dir.join("run"),
            dir: dir.clone(),
            bin: berth_bin(),
            seq: AtomicUsize::new(0),
        };
        let home = dir.display().to_string();
        accounts(&[
            "useradd",
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            &home,
            "--shell",
            "/bin/sh",
            &name,
        ])
        .expect("useradd");
        let range = format!("{subid}-{}", subid + SUBID_COUNT - 1);
        accounts(&[
            "usermod",
            "--add-subuids",
            &range,
            "--add-subgids",
            &range,
            &name,
        ])
        .expect("usermod: add ranges");
        u.uid = id_of(&name, "-u");
        u.gid = id_of(&name, "-g");
        fs::create_dir_all(&u.run_dir).expect("create run dir");
        for d in [&u.dir, &u.run_dir] {
            std::os::unix::fs::chown(d, Some(u.uid), Some(u.gid)).expect("chown");
            fs::set_permissions(d, fs::Permissions::from_mode(0o700)).expect("chmod");
        }
        // A copy the user can reach: the build's own may sit below a
        // directory only root may enter (a CI checkout under /root).
        let bin = u.dir.join("berth");
        fs::copy(&u.bin, &bin).expect("copy berth for the user");
        fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).expect("chmod berth");
        u.bin = bin;
        u
    }

    /// A busybox bundle `name` owned by the user, with the config that
    /// `berth spec --rootless` writes as the user (no terminal), running
    /// `args`.
    pub fn bundle(&self, name: &str, args: &[&str]) -> PathBuf {
        let b = self.dir.join(name);
        make_busybox_rootfs(&b.join("rootfs")).expect("make rootfs");
        chown_tree(&b, self.uid, self.gid);
        self.berth_in(&b, &["spec", "--rootless"]).ok();
        let mut c = self.config(&b);
        c["process"]["terminal"] = Value::Bool(false);
        c["process"]["args"] = serde_json::json!(args);
        self.write_config(&b, &c);
        b
    }

    pub fn config(&self, bundle: &Path) -> Value {
        serde_json::from_slice(&fs::read(bundle.join("config.json")).expect("read config"))
            .expect("config is JSON")
    }

    pub fn write_config(&self, bundle: &Path, c: &Value) {
        let p = bundle.join("config.json");
        fs::write(&p, serde_json::to_vec_pretty(c).unwrap()).expect("write config");
        std::os::unix::fs::chown(&p, Some(self.uid), Some(self.gid)).expect("chown config");
    }

    /// A unique container id.
    pub fn id(&self, what: &str) -> String {
        format!(
            "{what}-{}-{}",
            self.name,
            self.seq.fetch_add(1, Ordering::SeqCst)
        )
    }

    /// `berth ARGS...` as the user (no `--root`: the default state root).
    #[track_caller]
    pub fn berth(&self, args: &[&str]) -> Output {
        self.berth_in(&self.dir, args)
    }

    /// `berth ARGS...` as the user in working directory `cwd`.
    #[track_caller]
    pub fn berth_in(&self, cwd: &Path, args: &[&str]) -> Output {
        let bin = self.bin.display().to_string();
        self.run_in(cwd, &bin, args)
    }

    /// `podman --runtime BERTH ARGS...` as the user, its HOME the user's
    /// directory (storage and configuration there: [`User::podman_setup`]).
    #[track_caller]
    pub fn podman(&self, args: &[&str]) -> Output {
        let bin = self.bin.display().to_string();
        let mut a = vec!["--runtime", bin.as_str()];
        a.extend(args);
        self.run_in(&self.dir, "podman", &a)
    }

    /// Rootless Podman's configuration for the user: the vfs storage driver
    /// (no fuse-overlayfs needed) under its directory.
    pub fn podman_setup(&self) {
        let conf = self.dir.join(".config/containers");
        fs::create_dir_all(&conf).expect("create podman config dir");
        fs::write(conf.join("storage.conf"), "[storage]\ndriver = \"vfs\"\n")
            .expect("write storage.conf");
        chown_tree(&self.dir.join(".config"), self.uid, self.gid);
    }

    /// `sh -c SCRIPT` as the user in its directory.
    #[track_caller]
    pub fn sh(&self, script: &str) -> Output {
        self.run_in(&self.dir, "sh", &["-c", script])
    }

    /// `PROG ARGS...` as the user in `cwd`, with its XDG_RUNTIME_DIR and HOME.
    #[track_caller]
    fn run_in(&self, cwd: &Path, prog: &str, args: &[&str]) -> Output {
        let mut a: Vec<String> = ["-u", &self.name, "--", "env"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        a.push(format!("XDG_RUNTIME_DIR={}", self.run_dir.display()));
        a.push(format!("HOME={}", self.dir.display()));
        a.push("sh".into());
        a.push("-c".into());
        a.push("cd \"$1\" && shift && exec \"$@\"".into());
        a.push("sh".into());
        a.push(cwd.display().to_string());
        a.push(prog.into());
        a.extend(args.iter().map(|s| s.to_string()));
        let n = self.seq.fetch_add(1, Ordering::SeqCst);
        let io = std::env::temp_dir()
            .join("berth-it")
            .join(format!("{}-io-{n}", self.name));
        harness::run_cmd(Path::new("runuser"), &a, &io, None, CMD_TIMEOUT)
    }

    /// Start `berth ARGS...` as the user in `cwd`, its stdio and
    /// controlling terminal the slave of `pty` (a new session), as a person
    /// at a terminal runs it. The caller waits for it; the guard kills it.
    pub fn spawn_on_pty(
        &self,
        cwd: &Path,
        args: &[&str],
        pty: &crate::tty::Pty,
    ) -> std::process::Child {
        self.spawn_prog_on_pty(cwd, &self.bin, args, pty)
    }

    /// `podman --runtime BERTH ARGS...` as the user on `pty`, as
    /// [`User::spawn_on_pty`].
    pub fn podman_on_pty(&self, args: &[&str], pty: &crate::tty::Pty) -> std::process::Child {
        let bin = self.bin.display().to_string();
        let mut a = vec!["--runtime", bin.as_str()];
        a.extend(args);
        self.spawn_prog_on_pty(&self.dir, Path::new("podman"), &a, pty)
    }

    fn spawn_prog_on_pty(
        &self,
        cwd: &Path,
        prog: &Path,
        args: &[&str],
        pty: &crate::tty::Pty,
    ) -> std::process::Child {
        use std::os::unix::process::CommandExt;
        let s = || std::process::Stdio::from(pty.slave.try_clone().expect("dup slave"));
        let mut cmd = Command::new(prog);
        cmd.args(args)
            .current_dir(cwd)
            .stdin(s())
            .stdout(s())
            .stderr(s());
        cmd.env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("HOME", &self.dir)
            .env("USER", &self.name)
            .env("XDG_RUNTIME_DIR", &self.run_dir);
        let (uid, gid) = (self.uid, self.gid);
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                let ok = libc::setsid() >= 0
                    && libc::ioctl(0, libc::TIOCSCTTY, 0) >= 0
                    && libc::setgroups(0, std::ptr::null()) == 0
                    && libc::setresgid(gid, gid, gid) == 0
                    && libc::setresuid(uid, uid, uid) == 0;
                if ok {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
        cmd.spawn().expect("spawn berth as the user")
    }

    /// The user's copy of berth (in its directory, its own).
    pub fn berth_bin(&self) -> &Path {
        &self.bin
    }

    /// `config` made to run as the user: a new user namespace, the user's
    /// own uid and gid as 0 inside and its subordinate range from 1 up
    /// (through newuidmap/newgidmap), so that the container has root and
    /// other ids as a root-made one has.
    pub fn make_rootless(&self, config: &mut Value) {
        let ns = config["linux"]["namespaces"].as_array_mut().expect("linux.namespaces");
        if !ns.iter().any(|n| n["type"] == "user") {
            ns.push(serde_json::json!({"type": "user"}));
        }
        for (key, own) in [("uidMappings", self.uid), ("gidMappings", self.gid)] {
            config["linux"][key] = serde_json::json!([
                {"containerID": 0, "hostID": own, "size": 1},
                {"containerID": 1, "hostID": self.subid, "size": SUBID_COUNT}]);
        }
    }

    /// The user's default state root.
    pub fn state_root(&self) -> PathBuf {
        self.run_dir.join("berth")
    }

    /// Pids of processes whose real uid is the user's.
    fn processes(&self) -> Vec<i32> {
        let mut pids = Vec::new();
        for e in fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            if fs::metadata(e.path()).is_ok_and(|m| m.uid() == self.uid) {
                pids.push(pid);
            }
        }
        pids
    }
}

/// Give `p` and everything below it (not following symlinks) to `uid`:`gid`.
pub fn chown_tree(p: &Path, uid: u32, gid: u32) {
    let _ = std::os::unix::fs::lchown(p, Some(uid), Some(gid));
    if fs::symlink_metadata(p).is_ok_and(|m| m.is_dir()) {
        for e in fs::read_dir(p).into_iter().flatten().flatten() {
            chown_tree(&e.path(), uid, gid);
        }
    }
}

impl Drop for User {
    fn drop(&mut self) {
        if self.uid != 0 {
            let root = self.state_root();
            for e in fs::read_dir(&root).into_iter().flatten().flatten() {
                let id = e.file_name().to_string_lossy().to_string();
                let _ = self.berth(&["delete", "--force", &id]);
            }
            // Whatever its containers or commands left: by pid.
            for _ in 0..20 {
                let pids = self.processes();
                if pids.is_empty() {
                    break;
                }
                pids.into_iter().for_each(host::kill9);
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        }
        let range = format!("{}-{}", self.subid, self.subid + SUBID_COUNT - 1);
        let _ = accounts(&[
            "usermod",
            "--del-subuids",
            &range,
            "--del-subgids",
            &range,
            &self.name,
        ]);
        let _ = accounts(&["userdel", &self.name]);
        host::umount_below(&self.dir);
        let _ = fs::remove_dir_all(&self.dir);
        if let Ok(rd) = fs::read_dir(std::env::temp_dir().join("berth-it")) {
            let prefix = format!("{}-io-", self.name);
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().starts_with(&prefix) {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
    }
}
