//! Device nodes (the default set and `linux.devices`) and the /dev symlinks.
//!
//! A node is made with mknodat relative to its resolved parent directory. In
//! a user namespace (where mknod of a device fails with EPERM) the host's
//! node, checked to be the requested device, is bind-mounted onto an empty
//! file instead. A node already present is kept when it is the same device.
//! Any other file at the path of a default device is replaced; at the path
//! of a `linux.devices` entry it is an error (config-linux.md: "If a file
//! already exists at path that does not match the requested device, the
//! runtime MUST generate an error").

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use oci_spec::runtime::LinuxDeviceType;

use super::paths::{InPath, Root};
use crate::sys::{self, CBuf, FdPath};
use super::{Fail, OrFail, RootfsError, RootfsOptions};

/// The devices every container gets (runtime-spec "Default Devices").
const DEFAULTS: [(&str, u64, u64); 6] = [
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

const LINKS: [(&CStr, &CStr); 4] = [
    (c"/proc/self/fd", c"fd"),
    (c"/proc/self/fd/0", c"stdin"),
    (c"/proc/self/fd/1", c"stdout"),
    (c"/proc/self/fd/2", c"stderr"),
];

const HERE: u64 = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;

struct Dev {
    /// S_IFCHR, S_IFBLK or S_IFIFO.
    kind: u32,
    perm: u32,
    major: u64,
    minor: u64,
    uid: Option<u32>,
    gid: Option<u32>,
}

impl Dev {
    fn rdev(&self) -> u64 {
        if self.kind == libc::S_IFIFO {
            0
        } else {
            sys::makedev(self.major, self.minor)
        }
    }

    fn matches(&self, st: &libc::stat) -> bool {
        st.st_mode & libc::S_IFMT == self.kind && (self.kind == libc::S_IFIFO || st.st_rdev == self.rdev())
    }
}

/// The parent directory of the last device, kept open: most devices are
/// in /dev, which is then resolved once.
#[derive(Default)]
struct Parent {
    path: Vec<u8>,
    fd: Option<OwnedFd>,
}

impl Parent {
    fn get(&mut self, root: &Root, path: &mut InPath) -> io::Result<BorrowedFd<'_>> {
        let n = path.parent_len();
        let same = self.fd.is_some() && self.path == path.bytes()[..n];
        if !same {
            self.fd = Some(root.resolve_parent(path)?);
            self.path.clear();
            self.path.extend_from_slice(&path.bytes()[..n]);
        }
        Ok(self.fd.as_ref().expect("set above").as_fd())
    }
}

/// Default devices, `linux.devices`, then the /dev symlinks.
pub(super) fn setup(o: &RootfsOptions, root: &Root, path: &mut InPath, devpts: bool) -> Result<(), RootfsError> {
    // Modes are exact: no umask.
    let old = sys::umask(0);
    let mut parent = Parent::default();
    let r = create_all(o, root, path, &mut parent);
    sys::umask(old);
    r?;
    dev_symlinks(root, path, &mut parent, devpts).map_err(|f| f.at("/dev symlinks"))
}

fn create_all(o: &RootfsOptions, root: &Root, path: &mut InPath, parent: &mut Parent) -> Result<(), RootfsError> {
    let mut host = CBuf::default();
    for (p, major, minor) in DEFAULTS {
        let d = Dev { kind: libc::S_IFCHR, perm: 0o666, major, minor, uid: None, gid: None };
        path.set(p.as_bytes()).or_fail(|| "bad path").map_err(|f| f.at(format_args!("default device {p}")))?;
        device(root, path, parent, &d, o.userns, false, &mut host).map_err(|f| f.at(format_args!("default device {p}")))?;
    }
    let Some(devices) = o.spec.linux().as_ref().and_then(|l| l.devices().as_ref()) else { return Ok(()) };
    for (i, d) in devices.iter().enumerate() {
        let at = || format!("linux.devices[{i}] ({})", d.path().display());
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => libc::S_IFCHR,
            LinuxDeviceType::B => libc::S_IFBLK,
            LinuxDeviceType::P => libc::S_IFIFO,
            LinuxDeviceType::A => return Err(Fail::Msg("type \"a\" is not a device type (c, b, u or p)".into()).at(at())),
        };
        if kind != libc::S_IFIFO && (d.major() < 0 || d.minor() < 0) {
            return Err(Fail::Msg(format!("invalid device number {}:{}", d.major(), d.minor())).at(at()));
        }
        let dev = Dev {
            kind,
            perm: d.file_mode().unwrap_or(0o666) & 0o7777,
            major: d.major() as u64,
            minor: d.minor() as u64,
            uid: d.uid(),
            gid: d.gid(),
        };
        path.set_path(d.path()).or_fail(|| "path contains a NUL byte").map_err(|f| f.at(at()))?;
        if path.is("/") {
            return Err(Fail::Msg("a device cannot be at /".into()).at(at()));
        }
        device(root, path, parent, &dev, o.userns, true, &mut host).map_err(|f| f.at(at()))?;
    }
    Ok(())
}

/// Make the node `d` at `path`. `strict`: a different file already there is
/// an error instead of being replaced.
fn device(root: &Root, path: &mut InPath, parent: &mut Parent, d: &Dev, userns: bool, strict: bool, host: &mut CBuf) -> Result<(), Fail> {
    let parent = parent.get(root, path).or_fail(|| format!("open parent of {} in rootfs", path.show()))?;
    let name = path.name();
    // In a user namespace mknod of a device always fails: go straight to the bind.
    if !userns || d.kind == libc::S_IFIFO {
        match sys::mknodat(parent, name, d.kind | d.perm, d.rdev()) {
            Ok(()) => return set_owner(parent, name, d).or_fail(|| format!("chown {}", path.show())),
            Err(e) if sys::errno(&e) == libc::EEXIST => {
                let st = sys::lstatat(parent, name).or_fail(|| format!("stat {}", path.show()))?;
                if d.matches(&st) {
                    return fix_existing(parent, name, d, &st).or_fail(|| format!("chmod/chown {}", path.show()));
                }
                if strict {
                    return Err(mismatch(path, d, &st));
                }
                sys::unlinkat(parent, name, 0).or_fail(|| format!("remove {} (not the requested device)", path.show()))?;
                return sys::mknodat(parent, name, d.kind | d.perm, d.rdev())
                    .and_then(|()| set_owner(parent, name, d))
                    .or_fail(|| format!("mknod {}", path.show()));
            }
            Err(e) if sys::errno(&e) == libc::EPERM && d.kind != libc::S_IFIFO => {}
            Err(e) => return Err(Fail::Os(format!("mknod {}", path.show()), e)),
        }
    }
    bind_host_device(parent, name, path, d, strict, host)
}

/// The error for an existing file that is not the requested device.
fn mismatch(path: &InPath, d: &Dev, st: &libc::stat) -> Fail {
    let kind = |m: u32| match m & libc::S_IFMT {
        libc::S_IFCHR => "a character device",
        libc::S_IFBLK => "a block device",
        libc::S_IFIFO => "a fifo",
        libc::S_IFREG => "a regular file",
        libc::S_IFDIR => "a directory",
        libc::S_IFLNK => "a symlink",
        libc::S_IFSOCK => "a socket",
        _ => "a file of unknown type",
    };
    let num = |m: u32, rdev: u64| match m & libc::S_IFMT {
        libc::S_IFCHR | libc::S_IFBLK => format!(" {}:{}", libc::major(rdev), libc::minor(rdev)),
        _ => String::new(),
    };
    Fail::Msg(format!(
        "{} already exists as {}{}, not the requested device ({}{})",
        path.show(),
        kind(st.st_mode),
        num(st.st_mode, st.st_rdev),
        kind(d.kind),
        num(d.kind, d.rdev())
    ))
}

fn set_owner(parent: BorrowedFd, name: &CStr, d: &Dev) -> std::io::Result<()> {
    match (d.uid.unwrap_or(0), d.gid.unwrap_or(0)) {
        (0, 0) => Ok(()),
        (u, g) => sys::lchownat(parent, name, u, g),
    }
}

fn fix_existing(parent: BorrowedFd, name: &CStr, d: &Dev, st: &libc::stat) -> std::io::Result<()> {
    if st.st_mode & 0o7777 != d.perm {
        // SAFETY: valid C string; the entry is a device node, not a symlink.
        if unsafe { libc::fchmodat(std::os::fd::AsRawFd::as_raw_fd(&parent), name.as_ptr(), d.perm, 0) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    let (u, g) = (d.uid.unwrap_or(0), d.gid.unwrap_or(0));
    if st.st_uid != u || st.st_gid != g {
        sys::lchownat(parent, name, u, g)?;
    }
    Ok(())
}

/// Bind the host's node at the same path, after checking it is the
/// requested device, onto an empty file.
fn bind_host_device(parent: BorrowedFd, name: &CStr, path: &InPath, d: &Dev, strict: bool, host: &mut CBuf) -> Result<(), Fail> {
    let hp = host.set(path.bytes()).or_fail(|| "bad path")?;
    let hfd = sys::open(hp, libc::O_PATH | libc::O_NOFOLLOW).or_fail(|| format!("open host device {} to bind it", path.show()))?;
    let hst = sys::fstat(hfd.as_fd()).or_fail(|| format!("stat host {}", path.show()))?;
    if !d.matches(&hst) {
        return Err(Fail::Msg(format!(
            "cannot create device {}:{} (mknod not permitted) and the host's {} is not that device",
            d.major,
            d.minor,
            path.show()
        )));
    }
    let create = libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_RDONLY;
    let tfd = match sys::openat2(parent, name, create, 0o644, HERE) {
        Ok(fd) => fd,
        Err(e) if sys::errno(&e) == libc::EEXIST => {
            let st = sys::lstatat(parent, name).or_fail(|| format!("stat {}", path.show()))?;
            if d.matches(&st) {
                return Ok(());
            }
            if strict {
                return Err(mismatch(path, d, &st));
            }
            if st.st_mode & libc::S_IFMT == libc::S_IFREG {
                sys::openat2(parent, name, libc::O_PATH | libc::O_NOFOLLOW, 0, HERE).or_fail(|| format!("open {}", path.show()))?
            } else {
                sys::unlinkat(parent, name, 0).or_fail(|| format!("remove {} (not the requested device)", path.show()))?;
                sys::openat2(parent, name, create, 0o644, HERE).or_fail(|| format!("create {}", path.show()))?
            }
        }
        Err(e) => return Err(Fail::Os(format!("create {}", path.show()), e)),
    };
    sys::mount(Some(FdPath::new(&hfd).as_cstr()), FdPath::new(&tfd).as_cstr(), None, libc::MS_BIND, None)
        .or_fail(|| format!("mount bind host {}", path.show()))
}

/// /dev/fd, /dev/stdin, /dev/stdout, /dev/stderr (kept if present) and,
/// with a devpts at /dev/pts, /dev/ptmx -> pts/ptmx.
fn dev_symlinks(root: &Root, path: &mut InPath, parent: &mut Parent, ptmx: bool) -> Result<(), Fail> {
    // Any name in /dev: its parent is /dev (usually still open from the devices).
    path.set(b"/dev/fd").or_fail(|| "bad path")?;
    let dev = parent.get(root, path).or_fail(|| "open /dev in rootfs")?;
    for (target, name) in LINKS {
        match sys::symlinkat(target, dev, name) {
            Err(e) if sys::errno(&e) != libc::EEXIST => {
                return Err(Fail::Os(format!("symlink /dev/{} -> {}", name.to_string_lossy(), target.to_string_lossy()), e))
            }
            _ => {}
        }
    }
    if ptmx {
        let op = || "symlink /dev/ptmx -> pts/ptmx";
        match sys::symlinkat(c"pts/ptmx", dev, c"ptmx") {
            Err(e) if sys::errno(&e) == libc::EEXIST => {
                // A node from the image would reach another devpts instance:
                // replace it. Keep a symlink, or a mount someone placed there.
                let st = sys::lstatat(dev, c"ptmx").or_fail(|| "stat /dev/ptmx")?;
                if st.st_mode & libc::S_IFMT != libc::S_IFLNK {
                    match sys::unlinkat(dev, c"ptmx", 0) {
                        Err(e) if sys::errno(&e) == libc::EBUSY => {}
                        Err(e) => return Err(Fail::Os("remove /dev/ptmx".into(), e)),
                        Ok(()) => sys::symlinkat(c"pts/ptmx", dev, c"ptmx").or_fail(op)?,
                    }
                }
            }
            r => r.or_fail(op)?,
        }
    }
    Ok(())
}
