//! Who berth runs as, and what follows from it: the default state root,
//! how a new user namespace gets its uid and gid maps, and whether berth
//! can manage cgroups. [`Root`] is the only implementation today;
//! `--rootless` is refused ([`select`]) until a rootless host (state under
//! `$XDG_RUNTIME_DIR`, maps through newuidmap/newgidmap, cgroups only when
//! delegated) is another implementation of [`Host`].

use std::fs;
use std::io::Write;
use std::path::Path;

use oci_spec::runtime::LinuxIdMapping;

use crate::error::{Error, Result};
use crate::plan::IdMaps;

/// What berth may do as the user it runs as.
pub trait Host {
    /// A short name for messages (`root`).
    fn name(&self) -> &'static str;
    /// The state root when `--root` is not given.
    fn default_state_root(&self) -> &'static Path;
    /// Write the uid and gid maps of `pid`'s new user namespace.
    /// Errors name the config field (`linux.uidMappings`).
    fn write_id_maps(&self, pid: i32, maps: &IdMaps) -> Result<()>;
    /// Whether berth makes and removes the container's cgroups.
    fn manages_cgroups(&self) -> bool;
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

    fn default_state_root(&self) -> &'static Path {
        Path::new(ROOT_STATE_DIR)
    }

    fn write_id_maps(&self, pid: i32, maps: &IdMaps) -> Result<()> {
        for (file, text, field) in [("uid_map", &maps.uid, "linux.uidMappings"), ("gid_map", &maps.gid, "linux.gidMappings")] {
            if text.is_empty() {
                continue;
            }
            let p = format!("/proc/{pid}/{file}");
            let r = fs::OpenOptions::new().write(true).open(&p).and_then(|mut f| f.write_all(text.as_bytes()));
            if let Err(e) = r {
                return Err(Error::os(format!("{field}: write {p}"), e));
            }
        }
        Ok(())
    }

    fn manages_cgroups(&self) -> bool {
        true
    }
}

/// The `/proc/PID/uid_map` text of `maps`: one `inside outside count`
/// line each.
pub fn map_text(maps: &[LinuxIdMapping]) -> String {
    maps.iter().map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size())).collect()
}

/// The host berth runs as.
pub fn current() -> &'static dyn Host {
    &Root
}

/// The host for `--rootless` (already resolved from true/false/auto):
/// rootless mode is not supported.
pub fn select(rootless: bool) -> Result<&'static dyn Host> {
    if rootless {
        return Err(Error::Usage(
            "--rootless: berth runs containers as root only (rootless mode is not supported)".into(),
        ));
    }
    Ok(current())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxIdMappingBuilder;

    fn maps(uids: &[LinuxIdMapping], gids: &[LinuxIdMapping]) -> IdMaps {
        IdMaps { uid: map_text(uids), gid: map_text(gids) }
    }

    fn map(inside: u32, outside: u32, size: u32) -> LinuxIdMapping {
        LinuxIdMappingBuilder::default().container_id(inside).host_id(outside).size(size).build().unwrap()
    }

    #[test]
    fn root_is_the_host() {
        let h = select(false).unwrap();
        assert_eq!(h.name(), "root");
        assert_eq!(h.default_state_root(), Path::new("/run/berth"));
        assert!(h.manages_cgroups());
    }

    #[test]
    fn rootless_is_refused_by_name() {
        let e = select(true).err().expect("rootless refused").to_string();
        assert!(e.contains("--rootless") && e.contains("not supported"), "{e}");
    }

    #[test]
    fn map_lines() {
        assert_eq!(map_text(&[map(0, 100000, 65536), map(65536, 1000, 1)]), "0 100000 65536\n65536 1000 1\n");
        assert_eq!(map_text(&[]), "");
    }

    /// Maps go to the process's own files; a missing process is named
    /// with the field.
    #[test]
    fn writing_maps_of_a_gone_process_names_the_field() {
        let e = Root.write_id_maps(i32::MAX, &maps(&[map(0, 1000, 1)], &[])).unwrap_err().to_string();
        assert!(e.starts_with("linux.uidMappings: write /proc/2147483647/uid_map"), "{e}");
        // Nothing to write: nothing touched.
        assert!(Root.write_id_maps(i32::MAX, &IdMaps::default()).is_ok());
    }

    /// A real new user namespace (util-linux's unshare) gets the maps.
    #[test]
    fn root_writes_the_maps_of_a_new_user_namespace() {
        // SAFETY: geteuid takes no argument.
        if unsafe { libc::geteuid() } != 0 {
            return crate::test_skip::skip(crate::test_skip::ROOT, "writing another process's maps needs root");
        }
        let Ok(mut child) = std::process::Command::new("unshare").args(["--user", "sleep", "30"]).spawn() else {
            return crate::test_skip::skip(crate::test_skip::TOOLS, "util-linux unshare not found");
        };
        let pid = child.id() as i32;
        let ours = fs::read_link("/proc/self/ns/user").unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while fs::read_link(format!("/proc/{pid}/ns/user")).ok().as_ref() == Some(&ours) {
            assert!(std::time::Instant::now() < deadline, "unshare made no user namespace");
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
