//! [`Container::exec`] (`berth exec`): run a process in a created or running container, as runc.
//!
//! The process comes from `--process FILE` or from the container's
//! config.json `process` with the command line after the container id; the
//! flags apply on top of either, and what the process leaves unset
//! (capabilities, rlimits, no_new_privs, AppArmor profile, SELinux label)
//! comes from the container's config. A foreground exec forwards signals and
//! exits with the process's status (128+signal when killed); `--detach`
//! returns once the process runs.

use std::collections::BTreeMap;
use std::fs;
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::{Capabilities, Capability, Process};

use crate::cgroups::{CgroupMount, ContainerCgroups};
use crate::console::{self, HostTerminal};
use crate::container::Status;
use crate::error::{Error, Result};
use crate::process::join::{self as pexec, check_fds_open, pidfd_alive, Exec, Namespaces};
use crate::security::caps;
use crate::spec::{self, Bundle};

use super::create::write_pid_file;
use super::run::{forwarded, receive_tty, wait_forwarding};
use super::{Attach, Container};

/// The process to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessSource {
    /// A process.json (the config's `process` object), runc's `--process`.
    File(PathBuf),
    /// The container's config.json `process` with these arguments (and no
    /// terminal unless [`ExecOptions::tty`]).
    Args(Vec<String>),
}

/// A numeric user (and group) to run as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: Option<u32>,
}

/// What [`Container::exec`] runs, and how: the process, and runc's `exec`
/// flags that apply on top of it.
#[derive(Debug, Clone)]
pub struct ExecOptions {
    pub process: ProcessSource,
    /// KEY=VALUE, added to (or replacing) the process's environment.
    pub env: Vec<String>,
    /// Absolute working directory in the container.
    pub cwd: Option<PathBuf>,
    pub user: Option<User>,
    pub additional_gids: Vec<u32>,
    /// Capability names added to the bounding, effective and permitted
    /// sets (and ambient, when the process has inheritable ones).
    pub cap: Vec<String>,
    pub no_new_privs: Option<bool>,
    pub apparmor: Option<String>,
    pub process_label: Option<String>,
    /// Give the process a terminal (or take it away).
    pub tty: Option<bool>,
    /// The unix socket that receives the terminal's master (detached).
    pub console_socket: Option<PathBuf>,
    pub attach: Attach,
    /// Write the process's pid there.
    pub pid_file: Option<PathBuf>,
    /// Pass fds 3 .. 3+N-1 on to the process.
    pub preserve_fds: u32,
    /// runc's `--cgroup [CONTROLLER[,CONTROLLER]:]PATH`: a sub-cgroup.
    pub cgroup: Vec<String>,
    /// Run in a paused container too.
    pub ignore_paused: bool,
}

impl ExecOptions {
    /// A detached exec of `process` with no flags (the shim's).
    pub fn new(process: ProcessSource) -> ExecOptions {
        ExecOptions {
            process,
            env: Vec::new(),
            cwd: None,
            user: None,
            additional_gids: Vec::new(),
            cap: Vec::new(),
            no_new_privs: None,
            apparmor: None,
            process_label: None,
            tty: None,
            console_socket: None,
            attach: Attach::Detached,
            pid_file: None,
            preserve_fds: 0,
            cgroup: Vec::new(),
            ignore_paused: false,
        }
    }
}

/// A process a detached exec started in the container; its parent is the
/// caller.
#[derive(Debug)]
pub struct ExecProcess {
    /// Its host pid.
    pub pid: i32,
    pub pidfd: Option<OwnedFd>,
}

/// How [`Container::exec`] ended.
#[derive(Debug)]
pub enum Executed {
    /// Foreground: the process's exit status (128+signal when killed).
    Exited(i32),
    /// Detached: the process runs.
    Running(ExecProcess),
}

impl Container {
    /// Run a process in a created or running container, as runc's `exec`.
    /// The state directory is unlocked once the process is about to start.
    pub fn exec(self, a: &ExecOptions) -> Result<Executed> {
        let (status, started) = exec_impl(self, a)?;
        Ok(match a.attach {
            Attach::Foreground => Executed::Exited(status),
            Attach::Detached => Executed::Running(ExecProcess { pid: started.pid, pidfd: started.pidfd }),
        })
    }
}

/// Fds 3 .. 3+`preserve_fds`-1 are open. Call it before anything is opened
/// (before [`Container::load`]) that could take those numbers.
pub fn check_preserved_fds(preserve_fds: u32) -> Result<()> {
    check_fds_open(3, preserve_fds, &format!("--preserve-fds {preserve_fds}"))
}

fn stopped(id: &str) -> Error {
    Error::WrongState(format!("cannot exec in a stopped container (\"{id}\")"))
}

fn exec_impl(c: Container, a: &ExecOptions) -> Result<(i32, pexec::Started)> {
    let (Container { dir, state, .. }, detach) = (c, a.attach == Attach::Detached);
    let (id, root) = (&*dir.id.clone(), &*dir.path.parent().unwrap_or(&dir.path).to_path_buf());
    // Again (the caller checked before it opened anything: see
    // check_preserved_fds), for callers that did not.
    check_preserved_fds(a.preserve_fds)?;
    // The process is visible in the container while it runs berth's code:
    // berth must run from a sealed binary (CVE-2019-5736).
    crate::security::seal::prepare_exec()?;
    let state = state.ok_or_else(|| Error::NotFound(id.to_string()))?;
    let init = joinable(&dir.path, &state, a.ignore_paused)?;
    let bundle = spec::load_bundle(&state.bundle)?;
    let process = resolve_process(a, &bundle)?;
    check_lsm(&process)?;
    // The container's seccomp filter applies to exec'd processes too (from
    // the cache init's create filled).
    let seccomp = crate::security::seccomp::prepare(&bundle, root)?;
    if seccomp.as_ref().is_some_and(|f| f.notify()) {
        return Err(Error::Unsupported(format!(
            "exec in \"{id}\": its seccomp profile uses SCMP_ACT_NOTIFY, which exec does not support yet"
        )));
    }
    let exec_caps = caps::plan(&process);
    if let Some(Err((path, msg))) = exec_caps.as_ref().map(caps::check) {
        return Err(spec::ConfigError::new("exec", path, msg).into());
    }
    let terminal = process.terminal() == Some(true);
    console::check_flags(terminal, detach, a.console_socket.as_deref())?;
    let (cgroup_files, unified) = open_cgroup_files(&state.cgroups, &a.cgroup)?;
    // init was alive when its pidfd was taken; still alive after the
    // namespaces are opened means they are its own, not those of a
    // recycled pid. An init that died meanwhile is a stopped container,
    // whatever failed to open.
    let namespaces = Namespaces::open(state.pid);
    if !pidfd_alive(&init) {
        return Err(stopped(id));
    }
    let namespaces = namespaces.map_err(|e| if init_exiting(&init) { stopped(id) } else { e })?;
    log::debug!("exec in {id}: joining namespaces {:?}", namespaces.joined());
    let (console_theirs, host) = match (terminal, detach, &a.console_socket) {
        (true, true, Some(path)) => (Some(console::connect(path)?), None),
        (true, false, _) => {
            let host = HostTerminal::find()?;
            let (ours, theirs) = console::pair()?;
            (Some(theirs), Some((ours, host)))
        }
        _ => (None, None),
    };
    // Block what a foreground exec forwards, and SIGCHLD, before the process
    // exists; it unblocks before execve.
    let mut set = forwarded();
    set.add(Signal::SIGCHLD);
    if !detach {
        set.thread_block()
            .map_err(|e| Error::os("sigprocmask", e))?;
    }
    // Let other commands at the container before the process is started:
    // in a paused container (--ignore-paused) it stays frozen until
    // `resume`, which needs the lock.
    drop(dir);
    let started = pexec::start(Exec {
        process: &process,
        namespaces,
        cgroup_files,
        unified,
        console: console_theirs.as_ref(),
        preserve_fds: a.preserve_fds,
        caps: exec_caps,
        seccomp: seccomp.as_ref(),
        // Checked when the bundle was loaded.
        mempolicy: crate::mempolicy::from_spec(&bundle.spec).ok().flatten(),
        personality: bundle.spec.linux().as_ref().and_then(|l| l.personality().as_ref()),
        apparmor: process.apparmor_profile().as_deref().filter(|s| !s.is_empty()),
    })
    // init died meanwhile (joining its namespaces, or forking into its pid
    // namespace, fails then): the container stopped.
    .map_err(|e| if init_exiting(&init) { stopped(id) } else { e })?;
    drop(console_theirs);
    let abort = |e: Error| {
        let _ = kill(Pid::from_raw(started.pid), Signal::SIGKILL);
        let _ = waitpid(Pid::from_raw(started.pid), None);
        e
    };
    if let Some(pf) = &a.pid_file {
        write_pid_file(pf, started.pid).map_err(abort)?;
    }
    if detach {
        return Ok((0, started));
    }
    let mut proxy = match host {
        Some((ours, host)) => Some(receive_tty(ours, host).map_err(abort)?),
        None => None,
    };
    let status = wait_forwarding(started.pid, started.pidfd.as_ref(), &set, proxy.as_mut());
    drop(proxy);
    let _ = set.thread_unblock();
    Ok((status?, started))
}

/// init's pidfd, when a process may join the container (created or
/// running; paused too with `ignore_paused`).
fn joinable(dir: &Path, state: &crate::container::State, ignore_paused: bool) -> Result<OwnedFd> {
    let id = state.id.as_str();
    match state.status(dir) {
        Status::Stopped => return Err(stopped(id)),
        Status::Paused if !ignore_paused => {
            return Err(Error::WrongState(format!(
                "cannot exec in a paused container (\"{id}\"; use --ignore-paused to override)"
            )))
        }
        _ => {}
    }
    state.init_pidfd().ok_or_else(|| stopped(id))
}

/// After a failure that an exiting init explains (its namespaces are
/// released before it becomes a zombie and its pidfd readable): whether
/// init is gone, or goes within a moment.
fn init_exiting(init: &OwnedFd) -> bool {
    let mut p = libc::pollfd { fd: std::os::fd::AsRawFd::as_raw_fd(init), events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut p, 1, 200) > 0 }
}

/// The process to run: `--process FILE` or the config's process with the
/// command line, then the flags, then the config's defaults.
fn resolve_process(a: &ExecOptions, bundle: &Bundle) -> Result<Process> {
    let base = bundle.spec.process().as_ref().ok_or_else(|| {
        spec::ConfigError::new(bundle.config_path.display().to_string(), "process", "required field is missing")
    })?;
    let mut p = match &a.process {
        ProcessSource::File(file) => {
            let data = fs::read(file).map_err(|e| Error::path("--process: read", file, e))?;
            spec::parse_process(&file.display().to_string(), &data)?
        }
        ProcessSource::Args(command) => {
            if command.is_empty() {
                return Err(Error::Usage(
                    "exec: no command: give it after the container id, or give --process FILE"
                        .into(),
                ));
            }
            let mut p = base.clone();
            p.set_args(Some(command.clone()));
            p.set_terminal(Some(false));
            p
        }
    };
    // What the process leaves unset comes from the container (as runc).
    if p.capabilities().is_none() {
        p.set_capabilities(base.capabilities().clone());
    }
    if p.rlimits().as_ref().is_none_or(|r| r.is_empty()) {
        p.set_rlimits(base.rlimits().clone());
    }
    if p.no_new_privileges().is_none() {
        p.set_no_new_privileges(base.no_new_privileges());
    }
    if p.apparmor_profile().as_deref().is_none_or(str::is_empty) {
        p.set_apparmor_profile(base.apparmor_profile().clone());
    }
    if p.selinux_label().as_deref().is_none_or(str::is_empty) {
        p.set_selinux_label(base.selinux_label().clone());
    }
    apply_flags(a, &mut p)?;
    crate::spec::check_exec_process(&p).map_err(|e| spec::ConfigError::whole_file("exec", e))?;
    Ok(p)
}

fn apply_flags(a: &ExecOptions, p: &mut Process) -> Result<()> {
    if let Some(t) = a.tty {
        p.set_terminal(Some(t));
    }
    if let Some(cwd) = &a.cwd {
        if !cwd.is_absolute() {
            return Err(Error::Usage(format!(
                "--cwd {}: must be an absolute path",
                cwd.display()
            )));
        }
        p.set_cwd(cwd.clone());
    }
    if let Some(ap) = &a.apparmor {
        p.set_apparmor_profile(Some(ap.clone()));
    }
    if let Some(l) = &a.process_label {
        p.set_selinux_label(Some(l.clone()));
    }
    if !a.cap.is_empty() {
        add_caps(p, &a.cap)?;
    }
    for e in &a.env {
        if !e.contains('=') || e.starts_with('=') {
            return Err(Error::Usage(format!("--env {e:?}: expected KEY=VALUE")));
        }
    }
    let mut env = p.env().clone().unwrap_or_default();
    env.extend(a.env.iter().cloned());
    p.set_env(Some(dedup_env(env)));
    if let Some(n) = a.no_new_privs {
        p.set_no_new_privileges(Some(n));
    }
    if let Some(User { uid, gid }) = a.user {
        p.user_mut().set_uid(uid);
        if let Some(g) = gid {
            p.user_mut().set_gid(g);
        }
    }
    if !a.additional_gids.is_empty() {
        let mut g = p.user().additional_gids().clone().unwrap_or_default();
        g.extend(&a.additional_gids);
        p.user_mut().set_additional_gids(Some(g));
    }
    Ok(())
}

/// Later KEY=VALUE entries replace earlier ones in place (execve would
/// otherwise see both, and getenv the first).
fn dedup_env(env: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(env.len());
    let mut at: BTreeMap<String, usize> = BTreeMap::new();
    for e in env {
        let key = e.split_once('=').map_or(e.as_str(), |(k, _)| k).to_string();
        match at.get(&key) {
            Some(&i) => out[i] = e,
            None => {
                at.insert(key, out.len());
                out.push(e);
            }
        }
    }
    out
}

/// `--cap`: added to bounding, effective and permitted, and to ambient when
/// the process has an inheritable set (runc's rule). A process without
/// `capabilities` keeps everything berth has; adding changes nothing.
fn add_caps(p: &mut Process, names: &[String]) -> Result<()> {
    let mut add: Vec<Capability> = Vec::new();
    for n in names {
        let c: Capability = serde_json::from_value(serde_json::Value::String(n.clone()))
            .map_err(|_| Error::Usage(format!("--cap {n:?}: unknown capability")))?;
        add.push(c);
    }
    let Some(mut c) = p.capabilities().clone() else {
        return Ok(());
    };
    let with = |set: &Option<Capabilities>| -> Option<Capabilities> {
        let mut s = set.clone().unwrap_or_default();
        s.extend(add.iter().copied());
        Some(s)
    };
    c.set_bounding(with(c.bounding()));
    c.set_effective(with(c.effective()));
    c.set_permitted(with(c.permitted()));
    if c.inheritable().is_some() {
        c.set_ambient(with(c.ambient()));
    }
    p.set_capabilities(Some(c));
    Ok(())
}

/// AppArmor: a profile needs AppArmor on this host (the exec'd process
/// applies it, `process::join`). SELinux: berth applies no label; one is an
/// error, worded for this host (runc fails the same way where it is off).
fn check_lsm(p: &Process) -> Result<()> {
    if let Some(profile) = p.apparmor_profile().as_deref().filter(|s| !s.is_empty()) {
        let on = fs::read_to_string("/sys/module/apparmor/parameters/enabled")
            .is_ok_and(|s| s.trim() == "Y");
        if !on {
            return Err(Error::Unsupported(format!(
                "apparmor profile {profile:?} (--apparmor, process.apparmorProfile): AppArmor is not enabled on this host"
            )));
        }
    }
    if let Some(label) = p.selinux_label().as_deref().filter(|s| !s.is_empty()) {
        let on = Path::new("/sys/fs/selinux/enforce").exists();
        let why = if on {
            "berth does not apply SELinux labels yet"
        } else {
            "SELinux is not enabled on this host"
        };
        return Err(Error::Unsupported(format!(
            "selinux label {label:?} (--process-label, process.selinuxLabel): {why}"
        )));
    }
    Ok(())
}

/// runc's `--cgroup [CONTROLLER[,CONTROLLER]:]PATH`: the key "" applies to
/// every hierarchy. Paths are relative to the container's cgroup.
fn parse_sub_cgroups(args: &[String]) -> Result<BTreeMap<String, PathBuf>> {
    let mut out = BTreeMap::new();
    for arg in args {
        let bad = |why: &str| Error::Usage(format!("--cgroup {arg:?}: {why}"));
        let parts: Vec<&str> = arg.splitn(3, ':').collect();
        let (ctrls, path) = match parts[..] {
            [path] if args.len() == 1 => (vec![""], path),
            [_] => {
                return Err(bad(
                    "missing CONTROLLER: prefix (needed when --cgroup is given more than once)",
                ))
            }
            [ctrls, path] => (ctrls.split(',').collect(), path),
            _ => return Err(bad("expected [CONTROLLER[,CONTROLLER]:]PATH")),
        };
        let path = clean_sub(path)
            .ok_or_else(|| bad("the path must stay below the container's cgroup (no \"..\")"))?;
        for c in ctrls {
            if c.is_empty() && parts.len() == 2 {
                return Err(bad("empty controller name"));
            }
            if out.insert(c.to_string(), path.clone()).is_some() {
                return Err(bad(&format!("controller {c:?} given more than once")));
            }
        }
    }
    Ok(out)
}

fn clean_sub(p: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in Path::new(p).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// Does `--cgroup CONTROLLER:` select hierarchy `m`?
fn selects(m: &CgroupMount, ctrl: &str) -> bool {
    if m.unified {
        let enabled = fs::read_to_string(m.dir.join("cgroup.controllers")).unwrap_or_default();
        return enabled.split_whitespace().any(|c| c == ctrl);
    }
    m.subsystems
        .iter()
        .any(|s| s == ctrl || s.strip_prefix("name=") == Some(ctrl))
}

/// What the process joins: the v1 `tasks` files it writes "0" to, and the
/// v2 directory (CLONE_INTO_CGROUP) with its cgroup.procs as a fallback; of
/// the container's cgroup, or of a sub-cgroup chosen by --cgroup (which
/// must exist, as with runc).
type CgroupJoin = (Vec<OwnedFd>, Option<(OwnedFd, OwnedFd)>);

fn open_cgroup_files(cg: &ContainerCgroups, args: &[String]) -> Result<CgroupJoin> {
    let subs = parse_sub_cgroups(args)?;
    for ctrl in subs.keys().filter(|k| !k.is_empty()) {
        if !cg.mounts.iter().any(|m| selects(m, ctrl)) {
            return Err(Error::Usage(format!(
                "--cgroup: unknown controller {ctrl:?} (not a hierarchy of this container)"
            )));
        }
    }
    let mut tasks = Vec::with_capacity(cg.mounts.len());
    let mut unified = None;
    for m in &cg.mounts {
        let sub = subs
            .iter()
            .find(|(k, _)| !k.is_empty() && selects(m, k))
            .or_else(|| subs.get_key_value(""));
        let dir = match sub {
            Some((_, p)) => m.dir.join(p),
            None => m.dir.clone(),
        };
        let what = if sub.is_some() {
            "--cgroup: open"
        } else {
            "open"
        };
        let open = |p: &Path, flags: i32, write: bool| -> Result<OwnedFd> {
            fs::OpenOptions::new()
                .read(!write)
                .write(write)
                .custom_flags(flags)
                .open(p)
                .map(OwnedFd::from)
                .map_err(|e| Error::path(what, p, e))
        };
        if m.unified {
            let d = open(&dir, libc::O_DIRECTORY | libc::O_CLOEXEC, false)?;
            unified = Some((d, open(&dir.join("cgroup.procs"), libc::O_CLOEXEC, true)?));
        } else {
            tasks.push(open(&dir.join("tasks"), libc::O_CLOEXEC, true)?);
        }
    }
    Ok((tasks, unified))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subs(args: &[&str]) -> Result<BTreeMap<String, PathBuf>> {
        parse_sub_cgroups(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn sub_cgroup_arguments() {
        assert_eq!(subs(&["a/b"]).unwrap().get(""), Some(&PathBuf::from("a/b")));
        let m = subs(&["cpu,cpuacct:x", "memory:/y"]).unwrap();
        assert_eq!(m.get("cpu"), Some(&PathBuf::from("x")));
        assert_eq!(m.get("cpuacct"), Some(&PathBuf::from("x")));
        assert_eq!(m.get("memory"), Some(&PathBuf::from("y")));
        assert!(subs(&["a:b:c"]).is_err());
        assert!(subs(&["memory:x", "y"]).is_err());
        assert!(subs(&["memory:x", "memory:y"]).is_err());
        assert!(subs(&[",cpu:x"]).is_err());
        assert!(subs(&["../escape"]).is_err());
        assert!(subs(&["cpu:a/../../b"]).is_err());
    }

    #[test]
    fn env_later_wins_in_place() {
        let v = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            dedup_env(v(&["A=1", "B=2", "A=3", "C"])),
            v(&["A=3", "B=2", "C"])
        );
    }
}
