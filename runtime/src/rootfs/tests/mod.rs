//! Tests. The root-only ones fork a child (the test binary is
//! multi-threaded: the child only does simple things and `_exit`s), put it in
//! its own mount namespace (with "/" made rprivate first, so nothing can
//! propagate to the host), build a tiny rootfs in a temp dir, run `prepare` +
//! `finish`, and check from inside. The verdict comes back through the exit
//! code and a message through a pipe; a timeout guard kills a stuck child.

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use oci_spec::runtime::Spec;

use super::paths::InPath;
use super::RootfsOptions;

mod devices_masked;
mod mounts;
mod security;

pub(super) type R = Result<(), String>;

pub(super) const PROC_MAGIC: i64 = 0x9fa0;
pub(super) const SYSFS_MAGIC: i64 = 0x6265_6572;
pub(super) const TMPFS_MAGIC: i64 = 0x0102_1994;
pub(super) const DEVPTS_MAGIC: i64 = 0x1cd1;
pub(super) const MQUEUE_MAGIC: i64 = 0x1980_0202;
pub(super) const CGROUP_MAGIC: i64 = 0x0027_e0eb;
pub(super) const CGROUP2_MAGIC: i64 = 0x6367_7270;

/// Fail the check with a message unless `cond`.
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!("{}:{}: {}", file!(), line!(), format!($($fmt)+)));
        }
    };
}
pub(super) use ensure;

/// Skip (pass) a test when not root.
macro_rules! require_root {
    () => {
        if !super::is_root() {
            return $crate::test_skip::skip($crate::test_skip::ROOT, "needs root");
        }
    };
}
pub(super) use require_root;

pub(super) fn is_root() -> bool {
    // SAFETY: plain syscall.
    unsafe { libc::geteuid() == 0 }
}

/// A bundle dir in /tmp with `rootfs/` holding busybox and a few dirs.
/// Removed on drop, unless a mount under it leaked into the test's own
/// mount namespace (then it is left alone, and `check_clean` fails).
pub(super) struct Fixture {
    pub dir: PathBuf,
    pub rootfs: PathBuf,
}

impl Fixture {
    pub fn new(name: &str) -> Fixture {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "berth-rootfs-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        let rootfs = dir.join("rootfs");
        for d in ["bin", "proc", "sys", "dev", "tmp", "etc"] {
            fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        let bb = rootfs.join("bin/busybox");
        if fs::hard_link("/bin/busybox", &bb).is_err() {
            fs::copy("/bin/busybox", &bb).unwrap();
        }
        Fixture { dir, rootfs }
    }

    pub fn opts<'a>(&'a self, spec: &'a Spec) -> RootfsOptions<'a> {
        RootfsOptions {
            spec,
            rootfs: &self.rootfs,
            bundle: &self.dir,
            cgroups: &[],
            cgroupns: false,
            userns: false,
            no_pivot: false,
            idmapped: None,
            mntns_inherited: false,
        }
    }

    fn leaked(&self) -> Vec<String> {
        let mi = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let prefix = self.dir.to_string_lossy().into_owned();
        mi.lines().filter(|l| l.split(' ').nth(4).is_some_and(|m| m.starts_with(&prefix))).map(str::to_string).collect()
    }

    /// No mount made by the test is visible in the test process.
    pub fn check_clean(&self) {
        let l = self.leaked();
        assert!(l.is_empty(), "mounts leaked to the host: {l:?}");
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if self.leaked().is_empty() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

pub(super) fn spec(v: serde_json::Value) -> Spec {
    serde_json::from_value(v).expect("test spec parses")
}

/// Run `f` in a forked child and return its verdict. The child gets
/// PDEATHSIG so a killed parent (timeout, nested use) takes it along.
pub(super) fn in_child(timeout: Duration, f: impl FnOnce() -> R) -> R {
    let mut fds = [0i32; 2];
    // SAFETY: fds has room for two fds.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } < 0 {
        return Err(format!("pipe2: {}", io::Error::last_os_error()));
    }
    // SAFETY: the child only runs `f` (simple, single-threaded code) and _exits.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(format!("fork: {}", io::Error::last_os_error()));
    }
    if pid == 0 {
        // SAFETY: child side of fork.
        unsafe {
            libc::close(fds[0]);
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        }
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
            .unwrap_or_else(|p| Err(format!("panic: {:?}", p.downcast_ref::<String>().map(String::as_str).or(p.downcast_ref::<&str>().copied()))));
        let (code, msg) = match r {
            Ok(()) => (0, String::new()),
            Err(m) => (1, m),
        };
        let b = msg.as_bytes();
        let mut off = 0;
        while off < b.len() {
            // SAFETY: writing from a valid buffer.
            let n = unsafe { libc::write(fds[1], b[off..].as_ptr().cast(), b.len() - off) };
            if n <= 0 {
                break;
            }
            off += n as usize;
        }
        // SAFETY: leave without running the parent's destructors or atexit.
        unsafe { libc::_exit(code) };
    }
    // SAFETY: parent side: close the write end.
    unsafe { libc::close(fds[1]) };
    let start = Instant::now();
    let mut status = 0;
    let mut msg = Vec::new();
    let mut buf = [0u8; 4096];
    let timed_out = loop {
        // SAFETY: reading into a valid buffer; non-blocking.
        let n = unsafe { libc::read(fds[0], buf.as_mut_ptr().cast(), buf.len()) };
        if n > 0 {
            msg.extend_from_slice(&buf[..n as usize]);
            continue;
        }
        // SAFETY: plain syscall.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            break false;
        }
        if start.elapsed() > timeout {
            // SAFETY: our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            break true;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    loop {
        // SAFETY: as above.
        let n = unsafe { libc::read(fds[0], buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            break;
        }
        msg.extend_from_slice(&buf[..n as usize]);
    }
    // SAFETY: our fd.
    unsafe { libc::close(fds[0]) };
    let msg = String::from_utf8_lossy(&msg).into_owned();
    if timed_out {
        return Err(format!("child timed out after {timeout:?}: {msg}"));
    }
    if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
        Ok(())
    } else if msg.is_empty() {
        Err(format!("child failed with wait status {status:#x}"))
    } else {
        Err(msg)
    }
}

pub(super) const TIMEOUT: Duration = Duration::from_secs(60);

/// In the child: a private mount namespace of its own.
pub(super) fn new_mount_ns() -> R {
    // SAFETY: plain syscalls; the child is single-threaded.
    if unsafe { libc::unshare(libc::CLONE_NEWNS) } < 0 {
        return Err(format!("unshare(CLONE_NEWNS): {}", io::Error::last_os_error()));
    }
    sys_mount(None, "/", None, libc::MS_REC | libc::MS_PRIVATE, None)
}

pub(super) fn sys_mount(src: Option<&str>, target: &str, fstype: Option<&str>, flags: libc::c_ulong, data: Option<&str>) -> R {
    let c = |s: &str| CString::new(s).unwrap();
    let (src, fstype, data) = (src.map(c), fstype.map(c), data.map(c));
    let t = c(target);
    let p = |o: &Option<CString>| o.as_ref().map_or(std::ptr::null(), |s| s.as_ptr());
    // SAFETY: valid C strings or null.
    if unsafe { libc::mount(p(&src), t.as_ptr(), p(&fstype), flags, p(&data).cast()) } < 0 {
        return Err(format!("mount {target}: {}", io::Error::last_os_error()));
    }
    Ok(())
}

/// (f_type, f_flag) of the filesystem at `p`.
pub(super) fn statfs(p: impl AsRef<Path>) -> Result<(i64, u64), String> {
    let c = CString::new(p.as_ref().as_os_str().as_bytes()).unwrap();
    // SAFETY: out-params written on success.
    unsafe {
        let mut s: libc::statfs = std::mem::zeroed();
        let mut v: libc::statvfs = std::mem::zeroed();
        if libc::statfs(c.as_ptr(), &mut s) < 0 || libc::statvfs(c.as_ptr(), &mut v) < 0 {
            return Err(format!("statfs {}: {}", p.as_ref().display(), io::Error::last_os_error()));
        }
        Ok((s.f_type as i64, v.f_flag as u64))
    }
}

pub(super) fn fs_type(p: impl AsRef<Path>) -> Result<i64, String> {
    statfs(p).map(|s| s.0)
}

pub(super) fn is_readonly(p: impl AsRef<Path>) -> Result<bool, String> {
    statfs(p).map(|s| s.1 & libc::ST_RDONLY != 0)
}

/// Writing a new file under `dir` fails with EROFS.
pub(super) fn write_is_erofs(dir: &str) -> R {
    match fs::write(format!("{dir}/berth-test-write"), b"x") {
        Err(e) if e.raw_os_error() == Some(libc::EROFS) => Ok(()),
        Err(e) => Err(format!("write under {dir}: expected EROFS, got {e}")),
        Ok(()) => Err(format!("write under {dir} succeeded; expected EROFS")),
    }
}

/// The mountinfo line of the topmost mount at `mountpoint`.
pub(super) fn mountinfo(mountpoint: &str) -> Option<String> {
    let mi = fs::read_to_string("/proc/self/mountinfo").ok()?;
    mi.lines().rfind(|l| l.split(' ').nth(4) == Some(mountpoint)).map(str::to_string)
}

/// (major, minor, is char device, permission bits, uid).
pub(super) fn dev_of(p: &str) -> Result<(u32, u32, bool, u32, u32), String> {
    let m = fs::symlink_metadata(p).map_err(|e| format!("lstat {p}: {e}"))?;
    let rdev = m.rdev();
    Ok((libc::major(rdev), libc::minor(rdev), m.file_type().is_char_device(), m.mode() & 0o7777, m.uid()))
}

#[test]
fn inpath_cleans_lexically() {
    let mut p = InPath::default();
    for (i, o) in [
        ("/a/b/../c/./d//", "/a/c/d"),
        ("relative/x", "/relative/x"),
        ("/../../etc", "/etc"),
        ("/", "/"),
        ("", "/"),
        ("/..", "/"),
    ] {
        p.set(i.as_bytes()).unwrap();
        assert_eq!(p.bytes(), o.as_bytes(), "{i}");
        assert_eq!(p.as_cstr().to_bytes(), o.as_bytes());
    }
    p.set(b"/dev/null").unwrap();
    assert_eq!(p.name(), c"null");
    assert!(p.set(b"/a\0b").is_err());
}

#[test]
fn error_messages_name_entry_path_and_os_error() {
    let e = super::Fail::Os("mount bind /srv/x".into(), io::Error::from_raw_os_error(libc::ENOENT)).at("mounts[3] (/data)");
    assert_eq!(e.to_string(), "mounts[3] (/data): mount bind /srv/x: No such file or directory (os error 2)");
    assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
}
