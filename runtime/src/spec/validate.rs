//! Semantic validation of a parsed [`Spec`]: what the types cannot say.
//!
//! Each check returns a [`Fault`] naming the JSON path it is about. The rules
//! follow the runtime spec's MUSTs and runc's `libcontainer/configs/validate`
//! (sysctl namespacing, uts/user/time namespace requirements), plus a few
//! stricter checks that would otherwise only fail later, inside the container
//! init, with a bare `EINVAL`.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    Hook, LinuxDeviceType, LinuxNamespace, LinuxNamespaceType, LinuxSchedulerPolicy, Spec,
};

use super::{ConfigError, Fault};
use crate::error::{clip_plain, Clip};

type Check = Result<(), Fault>;

/// The longest hostname or domainname the kernel takes (`__NEW_UTS_LEN`).
const HOST_NAME_MAX: usize = 64;

/// `ioctl(fd, NS_GET_NSTYPE)`: `_IO(0xb7, 0x3)`, returns a `CLONE_NEW*` value.
const NS_GET_NSTYPE: libc::c_ulong = 0xb703;

/// Validate `spec` (loaded from `file`, in bundle directory `dir`, which should
/// be canonical) and return the canonical absolute path of its rootfs.
pub fn validate_spec(file: &str, spec: &Spec, dir: &Path) -> Result<PathBuf, ConfigError> {
    validate(spec, dir).map_err(|f| f.in_file(file))
}

pub(crate) fn validate(spec: &Spec, dir: &Path) -> Result<PathBuf, Fault> {
    let rootfs = check_root(spec, dir)?;
    check_process(spec)?;
    check_namespaces(spec)?;
    check_uts(spec)?;
    check_user(spec)?;
    check_time(spec)?;
    check_sysctl(spec)?;
    check_mounts(spec)?;
    check_devices(spec)?;
    check_hooks(spec)?;
    Ok(rootfs)
}

fn not_absolute(p: &Path) -> String {
    format!("{} is not an absolute path", Clip(&p.to_string_lossy()))
}

fn check_root(spec: &Spec, dir: &Path) -> Result<PathBuf, Fault> {
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| Fault::new("root", "required field is missing"))?;
    let path = root.path();
    if path.as_os_str().is_empty() {
        return Err(Fault::new("root.path", "must not be empty"));
    }
    // join() keeps an absolute root.path as is.
    let full = dir.join(path);
    let rootfs = std::fs::canonicalize(&full)
        .map_err(|e| Fault::new("root.path", format!("{}: {e}", full.display())))?;
    let meta = std::fs::metadata(&rootfs)
        .map_err(|e| Fault::new("root.path", format!("{}: {e}", rootfs.display())))?;
    if !meta.is_dir() {
        return Err(Fault::new(
            "root.path",
            format!("{} is not a directory", rootfs.display()),
        ));
    }
    Ok(rootfs)
}

fn check_process(spec: &Spec) -> Check {
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| Fault::new("process", "required field is missing"))?;
    check_process_fields(process)
}

/// The checks of `process` alone (also for `exec`'s process).
pub(crate) fn check_process_fields(process: &oci_spec::runtime::Process) -> Check {
    match process.args().as_deref() {
        None | Some([]) => return Err(Fault::new("process.args", "must not be empty")),
        Some([first, ..]) if first.is_empty() => {
            return Err(Fault::new("process.args[0]", "must not be empty"))
        }
        Some(_) => {}
    }
    if !process.cwd().is_absolute() {
        return Err(Fault::new("process.cwd", not_absolute(process.cwd())));
    }
    // (uid_t)-1 means "leave unchanged" to setresuid/setresgid/setgroups'
    // callers: the process would keep running as root.
    let u = process.user();
    let unchanged = |field: &str| {
        Fault::new(field.to_string(), "4294967295 is not a valid id (to the kernel it means \"unchanged\")")
    };
    if u.uid() == u32::MAX {
        return Err(unchanged("process.user.uid"));
    }
    if u.gid() == u32::MAX {
        return Err(unchanged("process.user.gid"));
    }
    if let Some(i) = u.additional_gids().iter().flatten().position(|g| *g == u32::MAX) {
        return Err(unchanged(&format!("process.user.additionalGids[{i}]")));
    }

    let mut seen: u32 = 0;
    for (i, rl) in process.rlimits().iter().flatten().enumerate() {
        let bit = 1u32 << (rl.typ() as u32);
        if seen & bit != 0 {
            return Err(Fault::new(
                format!("process.rlimits[{i}].type"),
                format!("duplicate rlimit \"{}\"", rl.typ()),
            ));
        }
        seen |= bit;
        if rl.soft() > rl.hard() {
            return Err(Fault::new(
                format!("process.rlimits[{i}]"),
                format!(
                    "soft limit {} is greater than hard limit {}",
                    rl.soft(),
                    rl.hard()
                ),
            ));
        }
    }

    if let Some(adj) = process.oom_score_adj() {
        if !(-1000..=1000).contains(&adj) {
            return Err(Fault::new(
                "process.oomScoreAdj",
                format!("{adj} is out of range (-1000 to 1000)"),
            ));
        }
    }

    if let Some(io) = process.io_priority() {
        if !(0..=7).contains(&io.priority()) {
            return Err(Fault::new(
                "process.ioPriority.priority",
                format!("{} is out of range (0 to 7)", io.priority()),
            ));
        }
    }

    if let Some(sched) = process.scheduler() {
        let policy = *sched.policy();
        if let Some(nice) = *sched.nice() {
            if !(-20..=19).contains(&nice) {
                return Err(Fault::new(
                    "process.scheduler.nice",
                    format!("{nice} is out of range (-20 to 19)"),
                ));
            }
        }
        let realtime = matches!(
            policy,
            LinuxSchedulerPolicy::SchedFifo | LinuxSchedulerPolicy::SchedRr
        );
        if sched.priority().is_some_and(|p| p != 0) && !realtime {
            return Err(Fault::new(
                "process.scheduler.priority",
                format!("can only be set for SCHED_FIFO or SCHED_RR, not {policy}"),
            ));
        }
        if policy != LinuxSchedulerPolicy::SchedDeadline {
            for (name, v) in [
                ("runtime", sched.runtime()),
                ("deadline", sched.deadline()),
                ("period", sched.period()),
            ] {
                if v.is_some_and(|v| v != 0) {
                    return Err(Fault::new(
                        format!("process.scheduler.{name}"),
                        format!("can only be set for SCHED_DEADLINE, not {policy}"),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// The `/proc/PID/ns` name of a namespace type (`mnt`, `net`, ...).
pub(crate) fn ns_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}

const ALL_NS: [LinuxNamespaceType; 8] = [
    LinuxNamespaceType::Mount,
    LinuxNamespaceType::Cgroup,
    LinuxNamespaceType::Uts,
    LinuxNamespaceType::Ipc,
    LinuxNamespaceType::User,
    LinuxNamespaceType::Pid,
    LinuxNamespaceType::Network,
    LinuxNamespaceType::Time,
];

fn namespaces(spec: &Spec) -> &[LinuxNamespace] {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_deref())
        .unwrap_or_default()
}

/// The entry for namespace type `t`, if the config asks for one.
fn find_ns(spec: &Spec, t: LinuxNamespaceType) -> Option<&LinuxNamespace> {
    namespaces(spec).iter().find(|ns| ns.typ() == t)
}

/// Whether the config asks for a *new* namespace of type `t` (no path).
fn new_ns(spec: &Spec, t: LinuxNamespaceType) -> bool {
    find_ns(spec, t).is_some_and(|ns| ns.path().is_none())
}

fn check_namespaces(spec: &Spec) -> Check {
    let mut seen: i32 = 0;
    for (i, ns) in namespaces(spec).iter().enumerate() {
        let t = ns.typ();
        if seen & (t as i32) != 0 {
            return Err(Fault::new(
                format!("linux.namespaces[{i}].type"),
                format!("duplicate namespace \"{}\"", crate::namespaces::type_name(t)),
            ));
        }
        seen |= t as i32;
        if let Some(path) = ns.path() {
            check_ns_file(path, t)
                .map_err(|msg| Fault::new(format!("linux.namespaces[{i}].path"), msg))?;
        }
    }
    if seen & (LinuxNamespaceType::Mount as i32) == 0 {
        check_no_mount_ns(spec, seen)?;
    }
    Ok(())
}

/// Without a mount namespace the container's mounts are made in berth's own
/// (the host's): refuse what would have to change the host's mounts, or
/// cannot work there (rootfs/inherited.rs).
fn check_no_mount_ns(spec: &Spec, seen: i32) -> Check {
    let linux = spec.linux().as_ref();
    if linux.and_then(|l| l.rootfs_propagation().as_ref()).is_some() {
        return Err(Fault::new(
            "linux.rootfsPropagation",
            "cannot be set without a mount namespace: it would change the propagation of \
             the runtime's own (the host's) mounts; add a mount namespace or remove it",
        ));
    }
    if seen & (LinuxNamespaceType::User as i32) != 0 {
        return Err(Fault::new(
            "linux.namespaces",
            "a user namespace needs a mount namespace too: without one, init could not \
             mount anything in the runtime's mount namespace",
        ));
    }
    Ok(())
}

/// The spelling of a namespace type in config.json.
/// Check that `path` is a namespace file of type `want`.
pub(crate) fn check_ns_file(path: &Path, want: LinuxNamespaceType) -> Result<(), String> {
    // Only regular files can be nsfs files; checking first also avoids
    // opening FIFOs or devices named by mistake.
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", Clip(&path.to_string_lossy())))?;
    if !meta.is_file() {
        return Err(format!("{} is not a namespace file", Clip(&path.to_string_lossy())));
    }
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| format!("{}: {e}", Clip(&path.to_string_lossy())))?;
    // SAFETY: NS_GET_NSTYPE takes no argument and only returns a value.
    let got = unsafe { libc::ioctl(file.as_raw_fd(), NS_GET_NSTYPE as _) };
    if got < 0 {
        let e = std::io::Error::last_os_error();
        return Err(match e.raw_os_error() {
            Some(libc::ENOTTY) | Some(libc::EINVAL) => {
                format!("{} is not a namespace file", Clip(&path.to_string_lossy()))
            }
            _ => format!("{}: NS_GET_NSTYPE: {e}", Clip(&path.to_string_lossy())),
        });
    }
    if got == want as i32 {
        return Ok(());
    }
    let got_name = ALL_NS
        .iter()
        .find(|t| **t as i32 == got)
        .map(|t| ns_name(*t))
        .unwrap_or("unknown");
    let article = if got_name == "ipc" { "an" } else { "a" };
    Err(format!(
        "{} is {article} {got_name} namespace, not {}", Clip(&path.to_string_lossy()),
        ns_name(want)
    ))
}

/// hostname and domainname need a uts namespace of the container's own:
/// a new one, or one joined by path (set there, as runc and crun do).
fn check_uts(spec: &Spec) -> Check {
    let has_uts = find_ns(spec, LinuxNamespaceType::Uts).is_some();
    for (field, value) in [
        ("hostname", spec.hostname()),
        ("domainname", spec.domainname()),
    ] {
        if let Some(v) = value.as_deref().filter(|v| v.len() > HOST_NAME_MAX) {
            return Err(Fault::new(
                field,
                format!("{} is {} bytes long; the kernel allows at most {HOST_NAME_MAX}", Clip(v), v.len()),
            ));
        }
        if value.as_deref().is_some_and(|v| !v.is_empty()) && !has_uts {
            return Err(Fault::new(
                field,
                format!("setting the {field} requires a uts namespace (new or joined by path)"),
            ));
        }
    }
    Ok(())
}

fn check_user(spec: &Spec) -> Check {
    let Some(linux) = spec.linux() else {
        return Ok(());
    };
    let uid = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty());
    let gid = linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
    match find_ns(spec, LinuxNamespaceType::User) {
        None => {
            if linux.uid_mappings().is_some() {
                return Err(Fault::new(
                    "linux.uidMappings",
                    "uid mappings require a user namespace",
                ));
            }
            if linux.gid_mappings().is_some() {
                return Err(Fault::new(
                    "linux.gidMappings",
                    "gid mappings require a user namespace",
                ));
            }
        }
        Some(ns) if ns.path().is_none() => {
            if !uid {
                return Err(Fault::new(
                    "linux.uidMappings",
                    "a new user namespace requires uid mappings",
                ));
            }
            if !gid {
                return Err(Fault::new(
                    "linux.gidMappings",
                    "a new user namespace requires gid mappings",
                ));
            }
        }
        // Joining a user namespace: mappings may be given (they describe the
        // joined namespace) or not.
        Some(_) => {}
    }
    for (name, maps) in [
        ("uidMappings", linux.uid_mappings()),
        ("gidMappings", linux.gid_mappings()),
    ] {
        for (i, m) in maps.iter().flatten().enumerate() {
            if m.size() == 0 {
                return Err(Fault::new(
                    format!("linux.{name}[{i}].size"),
                    "must be greater than zero",
                ));
            }
        }
    }
    Ok(())
}

fn check_time(spec: &Spec) -> Check {
    let Some(offsets) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.time_offsets().as_ref())
    else {
        return Ok(());
    };
    if offsets.is_empty() {
        return Ok(());
    }
    if !new_ns(spec, LinuxNamespaceType::Time) {
        return Err(Fault::new(
            "linux.timeOffsets",
            "time offsets require a new time namespace",
        ));
    }
    let mut clocks: Vec<&String> = offsets.keys().collect();
    clocks.sort();
    for clock in clocks {
        if clock != "monotonic" && clock != "boottime" {
            return Err(Fault::new(
                format!("linux.timeOffsets.{}", clip_plain(clock)),
                format!("unknown clock {} (expected monotonic or boottime)", Clip(clock)),
            ));
        }
    }
    Ok(())
}

/// sysctls in the ipc namespace besides `fs.mqueue.*` (as runc).
const IPC_SYSCTLS: [&str; 8] = [
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// sysctl(8) accepts `/` as separator: `net/ipv4/conf/eth0.100/rp_filter` is
/// `net.ipv4.conf.eth0/100.rp_filter`. Normalise to the dotted form.
pub(crate) fn normalize_sysctl(key: &str) -> std::borrow::Cow<'_, str> {
    match key.find(['.', '/']) {
        Some(i) if key.as_bytes()[i] == b'/' => key
            .chars()
            .map(|c| match c {
                '/' => '.',
                '.' => '/',
                c => c,
            })
            .collect::<String>()
            .into(),
        _ => key.into(),
    }
}

fn check_sysctl(spec: &Spec) -> Check {
    let Some(sysctl) = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) else {
        return Ok(());
    };
    if sysctl.is_empty() {
        return Ok(());
    }
    let has_ipc = find_ns(spec, LinuxNamespaceType::Ipc).is_some();
    let has_uts = find_ns(spec, LinuxNamespaceType::Uts).is_some();
    let net = find_ns(spec, LinuxNamespaceType::Network);
    let mut host_net: Option<Result<bool, String>> = None;

    let mut keys: Vec<&String> = sysctl.keys().collect();
    keys.sort();
    for raw in keys {
        let key = normalize_sysctl(raw);
        let key = key.as_ref();
        let path = format!("linux.sysctl.{}", clip_plain(raw));
        if IPC_SYSCTLS.contains(&key) || key.starts_with("fs.mqueue.") {
            if !has_ipc {
                return Err(Fault::new(
                    path,
                    format!("sysctl {} is not allowed in the host's ipc namespace", Clip(key)),
                ));
            }
            continue;
        }
        if key.starts_with("net.") {
            let host = host_net.get_or_insert_with(|| match net {
                None => Ok(true),
                Some(ns) => match ns.path() {
                    None => Ok(false),
                    Some(p) => is_host_netns(p),
                },
            });
            match host {
                Err(e) => return Err(Fault::new(path, e.clone())),
                Ok(true) => {
                    return Err(Fault::new(
                        path,
                        format!("sysctl {} is not allowed in the host's network namespace", Clip(key)),
                    ))
                }
                Ok(false) => continue,
            }
        }
        if key == "kernel.hostname" || key == "kernel.domainname" {
            if !has_uts {
                return Err(Fault::new(
                    path,
                    format!("sysctl {} is not allowed in the host's uts namespace", Clip(key)),
                ));
            }
            let field = &key["kernel.".len()..];
            let set = if field == "hostname" {
                spec.hostname()
            } else {
                spec.domainname()
            };
            if set.as_deref().is_some_and(|v| !v.is_empty()) {
                return Err(Fault::new(
                    path,
                    format!("sysctl {} conflicts with the {field:?} field", Clip(key)),
                ));
            }
            continue;
        }
        return Err(Fault::new(
            path,
            format!("sysctl {} is not in a separate kernel namespace", Clip(key)),
        ));
    }
    Ok(())
}

/// Whether `path` names the network namespace berth itself runs in.
fn is_host_netns(path: &Path) -> Result<bool, String> {
    let own =
        std::fs::metadata("/proc/self/ns/net").map_err(|e| format!("/proc/self/ns/net: {e}"))?;
    let other = std::fs::metadata(path).map_err(|e| format!("{}: {e}", Clip(&path.to_string_lossy())))?;
    Ok(own.dev() == other.dev() && own.ino() == other.ino())
}

fn check_mounts(spec: &Spec) -> Check {
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        if !m.destination().is_absolute() {
            // config.md: SHOULD be absolute; a relative one MAY be given and
            // MUST be taken relative to "/" (deprecated). Mounts resolve
            // inside the rootfs either way.
            log::warn!(
                "mounts[{i}].destination: {} is relative (deprecated); taken as relative to /",
                Clip(&m.destination().to_string_lossy())
            );
        }
    }
    let linux = spec.linux().as_ref();
    for (field, paths) in [
        ("linux.maskedPaths", linux.and_then(|l| l.masked_paths().as_ref())),
        ("linux.readonlyPaths", linux.and_then(|l| l.readonly_paths().as_ref())),
    ] {
        for (i, p) in paths.into_iter().flatten().enumerate() {
            if !p.starts_with('/') {
                return Err(Fault::new(format!("{field}[{i}]"), format!("{} is not an absolute path", Clip(p))));
            }
        }
    }
    if spec.annotations().as_ref().is_some_and(|a| a.contains_key("")) {
        return Err(Fault::new("annotations", "keys must not be empty"));
    }
    crate::netdev::validate(spec).map_err(|(path, msg)| Fault::new(path, msg))?;
    crate::mempolicy::from_spec(spec).map_err(|e| Fault::new(e.path, e.msg))?;
    // Spec fields berth does not implement yet: refused, never ignored.
    if linux.and_then(|l| l.intel_rdt().as_ref()).is_some() {
        let resctrl = std::fs::read_to_string("/proc/self/mountinfo")
            .map(|t| t.lines().any(|l| l.split(" - ").nth(1).is_some_and(|r| r.starts_with("resctrl "))))
            .unwrap_or(false);
        let msg = if resctrl {
            "Intel RDT (resctrl) is not supported by berth yet"
        } else {
            "no resctrl filesystem is mounted on this host"
        };
        return Err(Fault::new("linux.intelRdt", msg));
    }
    Ok(())
}

fn check_devices(spec: &Spec) -> Check {
    let Some(devices) = spec.linux().as_ref().and_then(|l| l.devices().as_ref()) else {
        return Ok(());
    };
    for (i, d) in devices.iter().enumerate() {
        if d.typ() == LinuxDeviceType::A {
            return Err(Fault::new(
                format!("linux.devices[{i}].type"),
                "\"a\" is not a device type (expected c, b, u or p)",
            ));
        }
        if !d.path().is_absolute() {
            return Err(Fault::new(
                format!("linux.devices[{i}].path"),
                not_absolute(d.path()),
            ));
        }
    }
    Ok(())
}

fn check_hooks(spec: &Spec) -> Check {
    let Some(hooks) = spec.hooks() else {
        return Ok(());
    };
    #[allow(deprecated)]
    let prestart = hooks.prestart();
    let lists: [(&str, &Option<Vec<Hook>>); 6] = [
        ("prestart", prestart),
        ("createRuntime", hooks.create_runtime()),
        ("createContainer", hooks.create_container()),
        ("startContainer", hooks.start_container()),
        ("poststart", hooks.poststart()),
        ("poststop", hooks.poststop()),
    ];
    for (kind, list) in lists {
        for (i, h) in list.iter().flatten().enumerate() {
            if !h.path().is_absolute() {
                return Err(Fault::new(
                    format!("hooks.{kind}[{i}].path"),
                    not_absolute(h.path()),
                ));
            }
            if let Some(t) = h.timeout() {
                if t <= 0 {
                    return Err(Fault::new(
                        format!("hooks.{kind}[{i}].timeout"),
                        format!("must be greater than zero, not {t}"),
                    ));
                }
            }
        }
    }
    Ok(())
}
