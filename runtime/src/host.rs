//! Who berth runs as, and what follows from it: the default state root,
//! how a new user namespace gets its uid and gid maps, and whether berth
//! can manage cgroups. [`Root`] is berth as root; [`Rootless`] is berth as
//! any other user (`--rootless auto` on a non-root euid, or `true`): state
//! under `$XDG_RUNTIME_DIR/berth`, a single mapping of the caller's own id
//! written directly, ranges through newuidmap/newgidmap (the user's
//! /etc/subuid and /etc/subgid, see [`subid`]), and cgroups only where the
//! user has some (`cgroups/rootless.rs`; none on cgroup v1: resources are
//! skipped with one warning). [`select`] picks the host once per process; [`current`] is it.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use oci_spec::runtime::LinuxIdMapping;

use crate::error::{Error, Result};
use crate::plan::IdMaps;

pub mod subid;

/// What berth may do as the user it runs as.
pub trait Host: Send + Sync {
    /// A short name for messages (`root`, `rootless`).
    fn name(&self) -> &'static str;
    /// The state root when `--root` is not given.
    fn default_state_root(&self) -> PathBuf;
    /// Write the uid and gid maps of `pid`'s new user namespace.
    /// Errors name the config field (`linux.uidMappings`).
    fn write_id_maps(&self, pid: i32, maps: &IdMaps) -> Result<()>;
    /// Whether berth makes and removes the container's cgroups.
    fn manages_cgroups(&self) -> bool;
    /// The rootless host, whose limits the plan stage checks.
    fn rootless(&self) -> Option<&Rootless> {
        None
    }
}

/// berth running as root on the host: it writes the maps itself and
/// manages every cgroup hierarchy.
#[derive(Debug, Clone, Copy, Default)]
pub struct Root;

/// The state root for root (as runc's `/run/runc`).
pub const ROOT_STATE_DIR: &str = "/run/berth";

impl Host for Root {
    fn name(&self) -> &'static str {
        "root"
    }

    fn default_state_root(&self) -> PathBuf {
        PathBuf::from(ROOT_STATE_DIR)
    }

    fn write_id_maps(&self, pid: i32, maps: &IdMaps) -> Result<()> {
        for (file, text, field) in [
            ("uid_map", &maps.uid, "linux.uidMappings"),
            ("gid_map", &maps.gid, "linux.gidMappings"),
        ] {
            if text.is_empty() {
                continue;
            }
            write_proc(pid, file, text, field)?;
        }
        Ok(())
    }

    fn manages_cgroups(&self) -> bool {
        true
    }
}

/// Write `text` to `/proc/PID/FILE`; errors name `field`.
fn write_proc(pid: i32, file: &str, text: &str, field: &str) -> Result<()> {
    let p = format!("/proc/{pid}/{file}");
    let r = fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .and_then(|mut f| f.write_all(text.as_bytes()));
    r.map_err(|e| Error::os(format!("{field}: write {p}"), e))
}

/// berth running as a user without root: the ids it may map are its own
/// and its subordinate ranges; it makes no cgroups on this host. Also
/// berth as root of a user namespace other than the initial one (rootless
/// Podman runs the runtime so, as runc's `--rootless auto` sees it): it
/// writes maps as root there, but has no cgroup of its own either.
#[derive(Debug, Clone)]
pub struct Rootless {
    /// The caller's effective uid and gid.
    pub uid: u32,
    pub gid: u32,
    /// `$XDG_RUNTIME_DIR`, when set, not empty and honoured
    /// ([`honors_runtime_dir`]).
    pub runtime_dir: Option<PathBuf>,
}

impl Rootless {
    /// The caller as it is now.
    pub fn detect() -> Self {
        // SAFETY: geteuid and getegid have no preconditions and cannot fail.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        let user = std::env::var("USER").ok();
        let runtime_dir = std::env::var_os("XDG_RUNTIME_DIR")
            .filter(|d| !d.is_empty())
            .filter(|_| honors_runtime_dir(uid, in_user_namespace(), user.as_deref()))
            .map(PathBuf::from);
        Rootless {
            uid,
            gid,
            runtime_dir,
        }
    }
}

/// Which side of a mapping: the files, the helper and the config field.
struct Side {
    file: &'static str,
    helper: &'static str,
    field: &'static str,
    subid: &'static str,
}

const UIDS: Side = Side {
    file: "uid_map",
    helper: "newuidmap",
    field: "linux.uidMappings",
    subid: "/etc/subuid",
};
const GIDS: Side = Side {
    file: "gid_map",
    helper: "newgidmap",
    field: "linux.gidMappings",
    subid: "/etc/subgid",
};

impl Rootless {
    /// One side's maps: the caller's own id alone is written directly (for
    /// gid_map after `deny` to setgroups, as the kernel requires of an
    /// unprivileged writer); anything else goes through the setuid helper,
    /// which checks the ranges against /etc/subuid or /etc/subgid.
    fn write_side(&self, pid: i32, text: &str, side: &Side, own: u32) -> Result<()> {
        if text.is_empty() {
            return Ok(());
        }
        let triples: Vec<&str> = text.split_whitespace().collect();
        if triples.len() == 3 && triples[1] == own.to_string() && triples[2] == "1" {
            if side.file == "gid_map" {
                write_proc(pid, "setgroups", "deny", side.field)?;
            }
            return write_proc(pid, side.file, text, side.field);
        }
        let out = std::process::Command::new(side.helper)
            .arg(pid.to_string())
            .args(&triples)
            .output();
        let out = match out {
            Ok(o) => o,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::Usage(format!(
                    "{}: mapping more than your own id needs {} (Debian's uidmap package), which is not installed",
                    side.field, side.helper
                )))
            }
            Err(e) => return Err(Error::os(format!("{}: run {}", side.field, side.helper), e)),
        };
        if !out.status.success() {
            let said = String::from_utf8_lossy(&out.stderr);
            return Err(Error::Usage(format!(
                "{}: {} {pid} {} failed ({}): {}; the host ranges must be in {} for this user",
                side.field,
                side.helper,
                triples.join(" "),
                out.status,
                crate::error::clip_plain(said.trim()),
                side.subid
            )));
        }
        Ok(())
    }
}

impl Host for Rootless {
    fn name(&self) -> &'static str {
        "rootless"
    }

    /// runc's rule: `$XDG_RUNTIME_DIR/berth` when the variable is set (and
    /// honoured), else the root's directory (where a non-root user may not
    /// write: the error names it, and `--root` is the way out).
    fn default_state_root(&self) -> PathBuf {
        match &self.runtime_dir {
            Some(d) => d.join("berth"),
            None => PathBuf::from(ROOT_STATE_DIR),
        }
    }

    fn write_id_maps(&self, pid: i32, maps: &IdMaps) -> Result<()> {
        if self.uid == 0 {
            // Root of its user namespace: it may map what is mapped there.
            return Root.write_id_maps(pid, maps);
        }
        self.write_side(pid, &maps.uid, &UIDS, self.uid)?;
        self.write_side(pid, &maps.gid, &GIDS, self.gid)
    }

    /// Not the host's cgroups: the ones a user may have (the user's
    /// systemd instance, a delegated cgroup v2 subtree, or none on cgroup
    /// v1) are found by `cgroups/rootless.rs`.
    fn manages_cgroups(&self) -> bool {
        false
    }

    fn rootless(&self) -> Option<&Rootless> {
        Some(self)
    }
}

/// Rootless: the state root must be the caller's own and writable by no
/// one else. Another user who owns it (or may write in it) could rename a
/// container's directory away, put a forged state.json or seccomp cache
/// entry in its place, and so hide the caller's containers, point its
/// commands at other processes or swap the filter its containers get
/// (issue 16.5: no state of one user is changeable by another). A root
/// that does not exist yet is fine: berth makes it, mode 0700. As root,
/// nothing to check (the default root is root's own).
pub fn check_state_root(root: &Path) -> Result<()> {
    match current().rootless() {
        Some(r) => check_owned_by(root, r.uid),
        None => Ok(()),
    }
}

/// `dir` (followed if a symlink) belongs to `uid` and is not writable by
/// its group or others; a missing `dir` passes.
pub fn check_owned_by(dir: &Path, uid: u32) -> Result<()> {
    let m = match fs::metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::path("state root", dir, e)),
    };
    let mode = m.mode() & 0o7777;
    if m.uid() == uid && mode & 0o022 == 0 {
        return Ok(());
    }
    let why = format!(
        "owned by uid {} with mode {mode:o}: rootless berth keeps state only in a directory of the user's own \
         (uid {uid}) that no one else may write, or another user could change its containers; \
         use --root DIR or $XDG_RUNTIME_DIR",
        m.uid()
    );
    Err(Error::path("state root", dir, io::Error::new(io::ErrorKind::PermissionDenied, why)))
}

/// The `/proc/PID/uid_map` text of `maps`: one `inside outside count`
/// line each.
pub fn map_text(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

/// runc's `shouldHonorXDGRuntimeDir`: a non-root user always; root only
/// inside a user namespace and when `$USER` is not `root`.
pub fn honors_runtime_dir(euid: u32, in_userns: bool, user: Option<&str>) -> bool {
    euid != 0 || (in_userns && user != Some("root"))
}

/// `--rootless auto` (runc's rule): a non-root euid, or root in a user
/// namespace other than the initial one.
pub fn auto_rootless() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    (unsafe { libc::geteuid() }) != 0 || in_user_namespace()
}

/// Whether this process is in a user namespace other than the initial one,
/// whose uid_map maps every id to itself.
pub fn in_user_namespace() -> bool {
    fs::read_to_string("/proc/self/uid_map").is_ok_and(|m| !is_initial_map(&m))
}

fn is_initial_map(map: &str) -> bool {
    map.split_whitespace().eq(["0", "0", "4294967295"])
}

static SELECTED: OnceLock<Box<dyn Host>> = OnceLock::new();

/// The host berth runs as: the one [`select`]ed, else (a library caller
/// that selected none) as `--rootless auto` would choose.
pub fn current() -> &'static dyn Host {
    SELECTED.get_or_init(|| make(auto_rootless())).as_ref()
}

fn make(rootless: bool) -> Box<dyn Host> {
    if rootless {
        Box::new(Rootless::detect())
    } else {
        Box::new(Root)
    }
}

/// The host for `--rootless` (already resolved from true/false/auto), for
/// the rest of the process. A second call with another answer is refused.
pub fn select(rootless: bool) -> Result<&'static dyn Host> {
    let h = SELECTED.get_or_init(|| make(rootless)).as_ref();
    if (h.rootless().is_some()) != rootless {
        return Err(Error::Usage(format!(
            "--rootless: the host was already chosen as {}",
            h.name()
        )));
    }
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxIdMappingBuilder;
    use std::path::Path;

    fn maps(uids: &[LinuxIdMapping], gids: &[LinuxIdMapping]) -> IdMaps {
        IdMaps {
            uid: map_text(uids),
            gid: map_text(gids),
        }
    }

    fn map(inside: u32, outside: u32, size: u32) -> LinuxIdMapping {
        LinuxIdMappingBuilder::default()
            .container_id(inside)
            .host_id(outside)
            .size(size)
            .build()
            .unwrap()
    }

    #[test]
    fn root_is_the_host() {
        let h: &dyn Host = &Root;
        assert_eq!(h.name(), "root");
        assert_eq!(h.default_state_root(), Path::new("/run/berth"));
        assert!(h.manages_cgroups() && h.rootless().is_none());
    }

    /// runc's rule: $XDG_RUNTIME_DIR/berth for a non-root user, else the
    /// root's directory; no cgroups on this host.
    #[test]
    fn rootless_state_under_xdg_runtime_dir() {
        let r = |uid, dir: Option<&str>| Rootless {
            uid,
            gid: uid,
            runtime_dir: dir.map(PathBuf::from),
        };
        assert_eq!(
            r(1000, Some("/run/user/1000")).default_state_root(),
            Path::new("/run/user/1000/berth")
        );
        assert_eq!(r(1000, None).default_state_root(), Path::new("/run/berth"));
        // Whether the variable is honoured is decided at detection.
        assert!(honors_runtime_dir(1000, false, Some("root")));
        assert!(!honors_runtime_dir(0, false, Some("alice")));
        assert!(honors_runtime_dir(0, true, Some("alice")) && honors_runtime_dir(0, true, None));
        assert!(!honors_runtime_dir(0, true, Some("root")));
        let h: &dyn Host = &r(1000, None);
        assert!(!h.manages_cgroups() && h.rootless().is_some() && h.name() == "rootless");
    }

    #[test]
    fn a_state_root_of_another_user_or_writable_by_others_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let base = std::env::temp_dir().join(format!("berth-stateroot-{}", std::process::id()));
        let dir = base.join("root");
        fs::create_dir_all(&dir).unwrap();
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc::geteuid() };
        let set = |mode| fs::set_permissions(&dir, fs::Permissions::from_mode(mode)).unwrap();
        set(0o700);
        assert!(check_owned_by(&dir, me).is_ok());
        set(0o755);
        assert!(check_owned_by(&dir, me).is_ok());
        assert!(check_owned_by(&base.join("missing"), me).is_ok());
        for mode in [0o770, 0o777, 0o1777, 0o702] {
            set(mode);
            let e = check_owned_by(&dir, me).unwrap_err().to_string();
            assert!(e.contains("no one else may write") && e.contains(&format!("{mode:o}")), "{e}");
        }
        set(0o700);
        let e = check_owned_by(&dir, me + 1).unwrap_err().to_string();
        assert!(e.contains(&format!("owned by uid {me}")), "{e}");
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn the_initial_user_namespace_maps_all_ids_to_themselves() {
        assert!(is_initial_map("         0          0 4294967295\n"));
        assert!(!is_initial_map("         0       1000          1\n"));
        assert!(!is_initial_map("0 0 4294967295\n1 1 1\n"));
    }

    #[test]
    fn map_lines() {
        assert_eq!(
            map_text(&[map(0, 100000, 65536), map(65536, 1000, 1)]),
            "0 100000 65536\n65536 1000 1\n"
        );
        assert_eq!(map_text(&[]), "");
    }

    /// Maps go to the process's own files; a missing process is named
    /// with the field.
    #[test]
    fn writing_maps_of_a_gone_process_names_the_field() {
        let e = Root
            .write_id_maps(i32::MAX, &maps(&[map(0, 1000, 1)], &[]))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("linux.uidMappings: write /proc/2147483647/uid_map"),
            "{e}"
        );
        // Nothing to write: nothing touched.
        assert!(Root.write_id_maps(i32::MAX, &IdMaps::default()).is_ok());
    }

    /// A real new user namespace (util-linux's unshare) gets the maps.
    #[test]
    fn root_writes_the_maps_of_a_new_user_namespace() {
        // SAFETY: geteuid takes no argument.
        if unsafe { libc::geteuid() } != 0 {
            return crate::test_skip::skip(
                crate::test_skip::ROOT,
                "writing another process's maps needs root",
            );
        }
        let Ok(mut child) = std::process::Command::new("unshare")
            .args(["--user", "sleep", "30"])
            .spawn()
        else {
            return crate::test_skip::skip(crate::test_skip::TOOLS, "util-linux unshare not found");
        };
        let pid = child.id() as i32;
        let ours = fs::read_link("/proc/self/ns/user").unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while fs::read_link(format!("/proc/{pid}/ns/user")).ok().as_ref() == Some(&ours) {
            assert!(
                std::time::Instant::now() < deadline,
                "unshare made no user namespace"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let r = Root.write_id_maps(pid, &maps(&[map(0, 1000, 1)], &[map(0, 2000, 10)]));
        let uid_map = fs::read_to_string(format!("/proc/{pid}/uid_map"));
        let gid_map = fs::read_to_string(format!("/proc/{pid}/gid_map"));
        let _ = child.kill();
        let _ = child.wait();
        r.unwrap();
        let words = |t: String| t.split_whitespace().map(str::to_string).collect::<Vec<_>>();
        assert_eq!(words(uid_map.unwrap()), ["0", "1000", "1"]);
        assert_eq!(words(gid_map.unwrap()), ["0", "2000", "10"]);
    }
}
