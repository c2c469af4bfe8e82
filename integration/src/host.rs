//! Looking at (and cleaning) the host: cgroup hierarchies, processes,
//! mounts. Used by the test guard's cleanup and by `assert_no_leftovers`.

use std::ffi::CString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// One line of /proc/self/mountinfo, the fields tests need.
#[derive(Debug, Clone)]
pub struct MountInfo {
    pub root: String,
    pub mount_point: String,
    pub options: String,
    /// Optional fields such as `shared:12`, `master:3`.
    pub optional: Vec<String>,
    pub fstype: String,
    pub source: String,
    pub line: String,
}

/// Undo the octal escapes of mountinfo (`\040` for a space...).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parse a mountinfo text (ours, or one printed by a container).
pub fn parse_mountinfo(text: &str) -> Vec<MountInfo> {
    let mut v = Vec::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else { continue };
        let l: Vec<&str> = left.split(' ').collect();
        let r: Vec<&str> = right.split(' ').collect();
        if l.len() < 6 || r.len() < 2 {
            continue;
        }
        v.push(MountInfo {
            root: unescape(l[3]),
            mount_point: unescape(l[4]),
            options: l[5].to_string(),
            optional: l[6..].iter().map(|s| s.to_string()).collect(),
            fstype: r[0].to_string(),
            source: unescape(r[1]),
            line: line.to_string(),
        });
    }
    v
}

pub fn host_mounts() -> Vec<MountInfo> {
    parse_mountinfo(&fs::read_to_string("/proc/self/mountinfo").unwrap_or_default())
}

/// Host mount points at `/`, `/proc`, `/dev`, `/sys` or on a directory
/// above `dir`: where a mount redirected out of a rootfs at `dir` would
/// land (the escape tests compare them before and after).
pub fn mounts_where_escapes_land(dir: &Path) -> Vec<String> {
    let mut places: Vec<PathBuf> = ["/", "/proc", "/dev", "/sys"].iter().map(PathBuf::from).collect();
    places.extend(dir.ancestors().skip(1).map(Path::to_path_buf));
    let mut v: Vec<String> = host_mounts()
        .into_iter()
        .map(|m| m.mount_point)
        .filter(|m| places.iter().any(|p| p == Path::new(m)))
        .collect();
    v.sort();
    v
}

/// Mount points of every cgroup (v1) and cgroup2 hierarchy on the host.
pub fn cgroup_hierarchies() -> Vec<PathBuf> {
    host_mounts()
        .into_iter()
        .filter(|m| m.fstype == "cgroup" || m.fstype == "cgroup2")
        .map(|m| PathBuf::from(m.mount_point))
        .collect()
}

/// Mount points of the cgroup v1 hierarchies only.
pub fn cgroup_v1_hierarchies() -> Vec<PathBuf> {
    host_mounts()
        .into_iter()
        .filter(|m| m.fstype == "cgroup")
        .map(|m| PathBuf::from(m.mount_point))
        .collect()
}

/// `<hierarchy>/<cgroups_path>` for every hierarchy (absolute cgroupsPath
/// is relative to each hierarchy's root).
pub fn cgroup_dirs(cgroups_path: &str) -> Vec<PathBuf> {
    let rel = cgroups_path.trim_start_matches('/');
    cgroup_hierarchies().into_iter().map(|h| h.join(rel)).collect()
}

/// Pids listed in `dir/cgroup.procs` (and its sub-cgroups).
pub fn cgroup_pids(dir: &Path) -> Vec<i32> {
    let mut pids: Vec<i32> = fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                pids.extend(cgroup_pids(&e.path()));
            }
        }
    }
    pids
}

/// Remove a cgroup directory and its sub-cgroups (rmdir, deepest first).
pub fn rmdir_cgroup(dir: &Path) -> io::Result<()> {
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                rmdir_cgroup(&e.path())?;
            }
        }
    }
    match fs::remove_dir(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

/// Pids (other than ours) whose command line contains `marker`.
pub fn pids_with_marker(marker: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut v = Vec::new();
    let Ok(rd) = fs::read_dir("/proc") else { return v };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
        if pid == me {
            continue;
        }
        let Ok(cmd) = fs::read(format!("/proc/{pid}/cmdline")) else { continue };
        if contains_bytes(&cmd, marker.as_bytes()) && crate::harness::pid_alive(pid as i64) {
            v.push(pid);
        }
    }
    v
}

fn contains_bytes(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

pub fn kill9(pid: i32) {
    if pid > 1 {
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

/// Unmount (lazily) every host mount at or below `dir`, deepest first.
/// Returns the mount points that are still there afterwards.
pub fn umount_below(dir: &Path) -> Vec<String> {
    let prefix = dir.display().to_string();
    let under = |m: &MountInfo| m.mount_point == prefix || m.mount_point.starts_with(&format!("{prefix}/"));
    for _ in 0..5 {
        let mut mps: Vec<String> = host_mounts().into_iter().filter(under).map(|m| m.mount_point).collect();
        if mps.is_empty() {
            return mps;
        }
        mps.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for mp in mps {
            if let Ok(c) = CString::new(mp) {
                unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
            }
        }
    }
    host_mounts().into_iter().filter(under).map(|m| m.mount_point).collect()
}

/// `mount --bind src dst`.
pub fn bind_mount(src: &Path, dst: &Path) -> io::Result<()> {
    mount(Some(src), dst, None, libc::MS_BIND, None)
}

/// mount(2) with paths.
pub fn mount(src: Option<&Path>, dst: &Path, fstype: Option<&str>, flags: libc::c_ulong, data: Option<&str>) -> io::Result<()> {
    let c = |s: &str| CString::new(s).expect("nul in path");
    let src = src.map(|p| c(&p.display().to_string()));
    let dst = c(&dst.display().to_string());
    let fstype = fstype.map(c);
    let data = data.map(c);
    let rc = unsafe {
        libc::mount(
            src.as_ref().map_or(c"none".as_ptr(), |s| s.as_ptr()),
            dst.as_ptr(),
            fstype.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
            flags,
            data.as_ref().map_or(std::ptr::null(), |s| s.as_ptr() as *const libc::c_void),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Kill every process in the container's cgroups and with the marker,
/// wait (up to 3s) until they are gone, then rmdir the cgroups (retrying
/// for up to 3s). Returns a description of what could not be cleaned.
pub fn reap_container(marker: &str, cgroups_path: &str) -> Vec<String> {
    let dirs = cgroup_dirs(cgroups_path);
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let mut pids = pids_with_marker(marker);
        for d in &dirs {
            pids.extend(cgroup_pids(d));
        }
        pids.retain(|p| crate::harness::pid_alive(*p as i64));
        if pids.is_empty() || Instant::now() >= deadline {
            break;
        }
        for p in pids {
            kill9(p);
        }
        sleep(Duration::from_millis(20));
    }
    let mut left = Vec::new();
    for d in &dirs {
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            match rmdir_cgroup(d) {
                Ok(()) => break,
                Err(e) if Instant::now() >= deadline => {
                    left.push(format!("cgroup {}: {e}", d.display()));
                    break;
                }
                Err(_) => sleep(Duration::from_millis(30)),
            }
        }
    }
    left
}
