//! `mounts[]`: bind mounts, filesystems (proc, sysfs, tmpfs, devpts,
//! mqueue, anything else mount(2) knows) and cgroup mounts, each onto
//! `/proc/self/fd/N` of its destination resolved inside the rootfs.

use std::borrow::Cow;
use std::ffi::CStr;
use std::fmt::Display;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use oci_spec::runtime::{LinuxNamespaceType, Mount};

use super::options::MountOptions;
use super::paths::{InPath, Kind, Root, DIR_MODE};
use crate::sys::{self, c_ulong, CBuf, FdPath};
use super::{Fail, OrFail, RootfsError, RootfsOptions};

/// What later steps need to know about the mounts.
#[derive(Debug, Default)]
pub(super) struct Summary {
    /// A devpts is mounted at /dev/pts (so /dev/ptmx -> pts/ptmx).
    pub devpts: bool,
    /// /dev is a bind mount: no device nodes or /dev symlinks are made (as runc).
    pub dev_is_bind: bool,
}

/// How to check that a destination re-opened after a mount is that mount.
#[derive(Clone, Copy)]
enum Expect {
    /// A bind: the mount's root is the source inode.
    Same(u64, u64),
    /// A new filesystem: its device differs from the directory under it.
    NewDev(u64),
    /// A remount of what is there.
    Any,
}

const BIND_FLAGS: c_ulong = libc::MS_BIND | libc::MS_REC | libc::MS_REMOUNT;
const CGROUP_TMPFS_FLAGS: c_ulong = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;

struct Mounter<'a> {
    o: &'a RootfsOptions<'a>,
    root: &'a Root,
    /// Index in `mounts[]` of the entry being mounted.
    index: usize,
    netns: bool,
    src: CBuf,
    typ: CBuf,
    data: CBuf,
}

pub(super) fn mount_all(o: &RootfsOptions, root: &Root, path: &mut InPath) -> Result<Summary, RootfsError> {
    let mut summary = Summary::default();
    let Some(mounts) = o.spec.mounts() else { return Ok(summary) };
    let netns = o
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| ns.iter().any(|n| n.typ() == LinuxNamespaceType::Network));
    let mut m = Mounter { o, root, index: 0, netns, src: CBuf::default(), typ: CBuf::default(), data: CBuf::default() };
    for (i, e) in mounts.iter().enumerate() {
        m.index = i;
        m.entry(e, path, &mut summary)
            .map_err(|f| f.at(format_args!("mounts[{i}] ({})", e.destination().display())))?;
    }
    Ok(summary)
}

/// In finish(): a tmpfs /dev asked to be read-only was mounted read-write so
/// the device nodes could be made; make it read-only now.
pub(super) fn readonly_dev(o: &RootfsOptions, root: &Root, path: &mut InPath) -> Result<(), RootfsError> {
    let Some(mounts) = o.spec.mounts() else { return Ok(()) };
    let mut last = None;
    for (i, e) in mounts.iter().enumerate() {
        if path.set_path(e.destination()).is_ok() && path.is("/dev") {
            last = Some((i, e));
        }
    }
    let Some((i, e)) = last else { return Ok(()) };
    let at = || format!("mounts[{i}] ({})", e.destination().display());
    let opts = MountOptions::parse(e.options().as_deref().unwrap_or(&[])).map_err(|m| Fail::Msg(m).at(at()))?;
    if opts.is_bind() || e.typ().as_deref() == Some("bind") || opts.flags & libc::MS_RDONLY == 0 {
        return Ok(());
    }
    let fd = root.resolve(c"/dev", libc::O_PATH | libc::O_DIRECTORY).or_fail(|| "open /dev in rootfs").map_err(|f| f.at(at()))?;
    sys::make_readonly(fd.as_fd()).or_fail(|| "remount /dev read-only").map_err(|f| f.at(at()))
}

impl Mounter<'_> {
    fn entry(&mut self, e: &Mount, path: &mut InPath, s: &mut Summary) -> Result<(), Fail> {
        let typ = e.typ().as_deref().unwrap_or("");
        let opts = MountOptions::parse(e.options().as_deref().unwrap_or(&[])).map_err(Fail::Msg)?;
        path.set_path(e.destination()).or_fail(|| "destination contains a NUL byte")?;
        if opts.tmpcopyup && (opts.is_bind() || typ != "tmpfs") {
            return Err(Fail::Msg(format!("mount option \"tmpcopyup\" applies to tmpfs mounts only, not to type {typ:?}")));
        }
        if opts.is_bind() || typ == "bind" {
            if path.is("/dev") {
                s.dev_is_bind = true;
            }
            return self.bind(e, &opts, path);
        }
        match typ {
            "cgroup" => self.cgroup(&opts, path),
            // A user namespace without its own network namespace cannot
            // mount sysfs: bind the host's /sys instead, as runc does.
            "sysfs" if self.o.userns && !self.netns => self.bind_host_sys(&opts, path),
            _ => {
                if typ == "devpts" && path.is("/dev/pts") {
                    s.devpts = true;
                }
                let src = e.source().as_deref().map_or(typ.as_bytes(), |p| p.as_os_str().as_bytes());
                self.filesystem(typ, src, &opts, path)
            }
        }
    }

    fn bind(&mut self, e: &Mount, opts: &MountOptions, path: &mut InPath) -> Result<(), Fail> {
        let src = e.source().as_deref().ok_or_else(|| Fail::Msg("bind mount without a source".into()))?;
        let src: Cow<Path> = if src.is_absolute() { Cow::Borrowed(src) } else { Cow::Owned(self.o.bundle.join(src)) };
        if opts.flags & libc::MS_REMOUNT != 0 {
            // A remount of what is already at the destination.
            let fd = self.root.resolve(path.as_cstr(), libc::O_PATH).or_fail(|| format!("open {} in rootfs", path.show()))?;
            let flags = (opts.flags & !libc::MS_REC) | libc::MS_BIND;
            return sys::remount_keep_locked(FdPath::new(&fd).as_cstr(), flags, || sys::fstatfs_flags(fd.as_fd()))
                .or_fail(|| format!("remount bind {}", path.show()));
        }
        if super::idmap::wants_idmap(e) {
            return self.move_idmapped(&src.display(), opts, path);
        }
        let csrc = self.src.set(src.as_os_str().as_bytes()).or_fail(|| "source contains a NUL byte")?;
        let sfd = sys::open(csrc, libc::O_PATH).or_fail(|| format!("mount bind {}", src.display()))?;
        self.bind_fd(&sfd, &src.display(), opts, path, 0)
    }

    /// An id-mapped bind: move the detached mount berth prepared before the
    /// clone (`rootfs::idmap`) onto the destination, then apply the options.
    fn move_idmapped(&mut self, what: &dyn Display, opts: &MountOptions, path: &mut InPath) -> Result<(), Fail> {
        let tree = self
            .o
            .idmapped
            .and_then(|m| m.get(self.index))
            .ok_or_else(|| Fail::Msg("the id-mapped mount was not prepared before init (rootfs::idmap::prepare)".into()))?;
        let st = sys::fstat(tree).or_fail(|| format!("stat id-mapped mount of {what}"))?;
        let kind = if st.st_mode & libc::S_IFMT == libc::S_IFDIR { Kind::Dir } else { Kind::File };
        let (tfd, _) = self.root.resolve_or_create(path, kind, libc::O_PATH).or_fail(|| format!("open {} in rootfs", path.show()))?;
        sys::move_mount_onto(tree, tfd.as_fd()).or_fail(|| format!("move_mount id-mapped {what}"))?;
        self.after_mount(opts, path, Expect::Same(st.st_dev, st.st_ino), opts.bind_remount_flags(), 0)
    }

    /// Bind the file `sfd` refers to onto the destination, then remount with
    /// the flags, propagation and recursive attributes of `opts`.
    fn bind_fd(&mut self, sfd: &OwnedFd, what: &dyn Display, opts: &MountOptions, path: &mut InPath, oflags: i32) -> Result<(), Fail> {
        let st = sys::fstat(sfd.as_fd()).or_fail(|| format!("stat bind source {what}"))?;
        let kind = if st.st_mode & libc::S_IFMT == libc::S_IFDIR { Kind::Dir } else { Kind::File };
        let (tfd, _) = self
            .root
            .resolve_or_create(path, kind, libc::O_PATH | oflags)
            .or_fail(|| format!("open {} in rootfs", path.show()))?;
        let flags = libc::MS_BIND | (opts.flags & libc::MS_REC);
        sys::mount(Some(FdPath::new(sfd).as_cstr()), FdPath::new(&tfd).as_cstr(), None, flags, None)
            .or_fail(|| format!("mount bind {what}"))?;
        self.after_mount(opts, path, Expect::Same(st.st_dev, st.st_ino), opts.bind_remount_flags(), oflags)
    }

    fn bind_host_sys(&mut self, opts: &MountOptions, path: &mut InPath) -> Result<(), Fail> {
        let sfd = sys::open(c"/sys", libc::O_PATH | libc::O_DIRECTORY).or_fail(|| "mount bind /sys (sysfs in a user namespace)")?;
        let o = MountOptions { flags: opts.flags | libc::MS_BIND | libc::MS_REC, ..opts.clone() };
        self.bind_fd(&sfd, &"/sys", &o, path, libc::O_NOFOLLOW | libc::O_DIRECTORY).map_err(|f| match f {
            Fail::Os(op, e) if sys::errno(&e) == libc::ENOTDIR => {
                Fail::Msg(format!("sysfs must be mounted on an ordinary directory: {} is a symlink or not a directory ({op})", path.show()))
            }
            f => f,
        })
    }

    /// A mount of filesystem `typ` (not bind, not cgroup).
    fn filesystem(&mut self, typ: &str, src: &[u8], opts: &MountOptions, path: &mut InPath) -> Result<(), Fail> {
        if typ.is_empty() {
            return Err(Fail::Msg("mount without a type that is not a bind mount".into()));
        }
        // proc and sysfs go only on a real directory, never through a final
        // symlink (CVE-2019-19921 class); other symlinks resolve in the root.
        let proc_like = typ == "proc" || typ == "sysfs";
        let oflags = if proc_like { libc::O_NOFOLLOW | libc::O_DIRECTORY } else { 0 };
        let (tfd, created) = match self.root.resolve_or_create(path, Kind::Dir, libc::O_PATH | oflags) {
            Err(e) if proc_like && matches!(sys::errno(&e), libc::ENOTDIR | libc::ELOOP) => {
                return Err(Fail::Msg(format!(
                    "{typ} must be mounted on an ordinary directory: {} is a symlink or not a directory",
                    path.show()
                )))
            }
            r => r.or_fail(|| format!("open {} in rootfs", path.show()))?,
        };
        let mut flags = opts.flags;
        // tmpcopyup: the directory the tmpfs will cover, opened before it does.
        let covered = if opts.tmpcopyup && !created && flags & libc::MS_REMOUNT == 0 {
            Some(open_dir(&tfd).or_fail(|| format!("tmpcopyup: open {}", path.show()))?)
        } else {
            None
        };
        if path.is("/dev") || covered.is_some() {
            // Read-only only after the device nodes are made (finish()), or
            // after the copy.
            flags &= !libc::MS_RDONLY;
        }
        let has_mode = opts.data.split(',').any(|d| d.starts_with("mode="));
        let data: Option<&CStr> = if typ == "tmpfs" && !created && !has_mode && flags & libc::MS_REMOUNT == 0 {
            // A tmpfs over an existing directory keeps its mode unless the
            // options say otherwise (as runc).
            let st = sys::fstat(tfd.as_fd()).or_fail(|| format!("stat {}", path.show()))?;
            let mode = format!("mode={:o}", st.st_mode & 0o7777);
            let d = if opts.data.is_empty() { mode } else { format!("{mode},{}", opts.data) };
            Some(self.data.set(d.as_bytes()).or_fail(|| "mount data contains a NUL byte")?)
        } else if opts.data.is_empty() {
            None
        } else {
            Some(self.data.set(opts.data.as_bytes()).or_fail(|| "mount data contains a NUL byte")?)
        };
        let csrc = self.src.set(src).or_fail(|| "source contains a NUL byte")?;
        let ctyp = self.typ.set(typ.as_bytes()).or_fail(|| "type contains a NUL byte")?;
        match sys::mount(Some(csrc), FdPath::new(&tfd).as_cstr(), Some(ctyp), flags, data) {
            Ok(()) => {}
            Err(e) if typ == "sysfs" && self.o.userns && sys::errno(&e) == libc::EPERM => {
                drop(tfd);
                return self.bind_host_sys(opts, path);
            }
            Err(e) => return Err(Fail::Os(format!("mount {typ}"), e)),
        }
        if let Some(src) = covered {
            self.copy_up(&src, &tfd, opts, path)?;
        }
        if opts.propagation.is_empty() && !opts.has_rec_attrs() {
            return Ok(());
        }
        let expect = if flags & libc::MS_REMOUNT != 0 {
            Expect::Any
        } else {
            Expect::NewDev(sys::fstat(tfd.as_fd()).or_fail(|| format!("stat {}", path.show()))?.st_dev)
        };
        self.after_mount(opts, path, expect, 0, oflags)
    }

    /// tmpcopyup: copy the covered directory `src` into the tmpfs just
    /// mounted on `tfd` (see `rootfs::copyup`), then make it read-only if
    /// the options ask.
    fn copy_up(&self, src: &OwnedFd, tfd: &OwnedFd, opts: &MountOptions, path: &InPath) -> Result<(), Fail> {
        let under = sys::fstat(tfd.as_fd()).or_fail(|| format!("stat {}", path.show()))?.st_dev;
        let mnt = reopen(self.root, path, Expect::NewDev(under), libc::O_DIRECTORY)?;
        let dst = open_dir(&mnt).or_fail(|| format!("open {}", path.show()))?;
        let has = |key: &str| opts.data.split(',').any(|d| d.strip_prefix(key).is_some_and(|v| v.starts_with('=')));
        super::copyup::copy_tree(src, &dst, &path.show(), !has("uid") && !has("gid"), !has("mode"))?;
        if opts.flags & libc::MS_RDONLY != 0 && !path.is("/dev") {
            sys::make_readonly(mnt.as_fd()).or_fail(|| format!("remount {} read-only", path.show()))?;
        }
        Ok(())
    }

    /// Re-open the destination (the fd used for the mount still refers to
    /// the directory under it), check it is the new mount, and apply the
    /// bind remount flags, propagation and recursive attributes.
    fn after_mount(&self, opts: &MountOptions, path: &InPath, expect: Expect, remount: c_ulong, oflags: i32) -> Result<(), Fail> {
        if remount == 0 && opts.propagation.is_empty() && !opts.has_rec_attrs() {
            return Ok(());
        }
        let mfd = reopen(self.root, path, expect, oflags)?;
        let mp = FdPath::new(&mfd);
        if remount != 0 {
            let flags = remount | libc::MS_BIND | libc::MS_REMOUNT;
            sys::remount_keep_locked(mp.as_cstr(), flags, || sys::fstatfs_flags(mfd.as_fd()))
                .or_fail(|| format!("remount bind {} with its options", path.show()))?;
        }
        for &p in &opts.propagation {
            sys::mount(None, mp.as_cstr(), None, p, None).or_fail(|| format!("change propagation of {}", path.show()))?;
        }
        if opts.has_rec_attrs() {
            sys::mount_setattr(mfd.as_fd(), true, sys::MountAttr::flags(opts.rec_set, opts.rec_clr))
                .or_fail(|| format!("mount_setattr (recursive options) on {}", path.show()))?;
        }
        Ok(())
    }

    /// A mount of type "cgroup". v1 (or hybrid): a tmpfs with one directory
    /// per hierarchy, each a cgroup mount (own cgroup namespace) or a bind of
    /// the container's cgroup directory. v2 only: one cgroup2 mount or bind.
    fn cgroup(&mut self, opts: &MountOptions, path: &mut InPath) -> Result<(), Fail> {
        let cgs = self.o.cgroups;
        let flags = opts.flags & !BIND_FLAGS;
        if !cgs.is_empty() && cgs.iter().all(|c| c.unified) {
            if self.o.cgroupns {
                let o = MountOptions { flags, ..opts.clone() };
                return self.filesystem("cgroup2", b"cgroup2", &o, path);
            }
            let o = MountOptions { flags: opts.flags | libc::MS_BIND | libc::MS_REC, ..opts.clone() };
            return self.bind_host_dir(&cgs[0].dir, &o, path);
        }
        let (tfd, _) = self.root.resolve_or_create(path, Kind::Dir, libc::O_PATH).or_fail(|| format!("open {} in rootfs", path.show()))?;
        sys::mount(Some(c"tmpfs"), FdPath::new(&tfd).as_cstr(), Some(c"tmpfs"), CGROUP_TMPFS_FLAGS, Some(c"mode=755"))
            .or_fail(|| "mount tmpfs for the cgroup hierarchies")?;
        let under = sys::fstat(tfd.as_fd()).or_fail(|| format!("stat {}", path.show()))?.st_dev;
        let dir = reopen(self.root, path, Expect::NewDev(under), libc::O_DIRECTORY)?;
        for c in cgs {
            let name = c.name();
            if name.is_empty() {
                continue;
            }
            self.cgroup_hierarchy(&dir, c, &name, flags).map_err(|f| match f {
                Fail::Os(op, e) => Fail::Os(format!("{op} (hierarchy {name})"), e),
                m => m,
            })?;
        }
        let dp = FdPath::new(&dir);
        if flags & libc::MS_RDONLY != 0 {
            sys::make_readonly(dir.as_fd()).or_fail(|| format!("remount {} read-only", path.show()))?;
        }
        for &p in &opts.propagation {
            sys::mount(None, dp.as_cstr(), None, p, None).or_fail(|| format!("change propagation of {}", path.show()))?;
        }
        if opts.has_rec_attrs() {
            sys::mount_setattr(dir.as_fd(), true, sys::MountAttr::flags(opts.rec_set, opts.rec_clr))
                .or_fail(|| format!("mount_setattr (recursive options) on {}", path.show()))?;
        }
        Ok(())
    }

    /// One hierarchy under the cgroup tmpfs `dir` (fresh, ours alone).
    fn cgroup_hierarchy(&mut self, dir: &OwnedFd, c: &crate::cgroups::CgroupMount, name: &str, flags: c_ulong) -> Result<(), Fail> {
        let cname = self.typ.set(name.as_bytes()).or_fail(|| "cgroup name contains a NUL byte")?;
        match sys::mkdirat(dir.as_fd(), cname, DIR_MODE) {
            Err(e) if sys::errno(&e) != libc::EEXIST => return Err(Fail::Os(format!("mkdir {name}"), e)),
            _ => {}
        }
        let here = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS;
        let sub = sys::openat2(dir.as_fd(), cname, libc::O_PATH | libc::O_DIRECTORY, 0, here).or_fail(|| format!("open {name}"))?;
        let sp = FdPath::new(&sub);
        if self.o.cgroupns {
            let (fstype, data) = if c.unified {
                (c"cgroup2", None)
            } else {
                let joined = c.subsystems.join(",");
                (c"cgroup", Some(self.data.set(joined.as_bytes()).or_fail(|| "cgroup subsystem contains a NUL byte")?))
            };
            sys::mount(Some(fstype), sp.as_cstr(), Some(fstype), flags, data).or_fail(|| format!("mount {}", fstype.to_string_lossy()))?;
        } else {
            let src = self.src.set(c.dir.as_os_str().as_bytes()).or_fail(|| "cgroup dir contains a NUL byte")?;
            let sfd = sys::open(src, libc::O_PATH | libc::O_DIRECTORY).or_fail(|| format!("mount bind {}", c.dir.display()))?;
            sys::mount(Some(FdPath::new(&sfd).as_cstr()), sp.as_cstr(), None, libc::MS_BIND | libc::MS_REC, None)
                .or_fail(|| format!("mount bind {}", c.dir.display()))?;
            if flags != 0 {
                let cname = self.typ.set(name.as_bytes()).or_fail(|| "cgroup name contains a NUL byte")?;
                let m = sys::openat2(dir.as_fd(), cname, libc::O_PATH | libc::O_DIRECTORY, 0, here).or_fail(|| format!("open {name}"))?;
                sys::remount_keep_locked(FdPath::new(&m).as_cstr(), flags | libc::MS_BIND | libc::MS_REMOUNT, || {
                    sys::fstatfs_flags(m.as_fd())
                })
                .or_fail(|| format!("remount bind {} with its options", c.dir.display()))?;
            }
        }
        if name.contains(',') && !name.contains('=') {
            // Co-mounted controllers: cpu -> cpu,cpuacct and cpuacct -> cpu,cpuacct.
            let target = self.data.set(name.as_bytes()).or_fail(|| "cgroup name contains a NUL byte")?;
            for ctrl in name.split(',') {
                let link = self.typ.set(ctrl.as_bytes()).or_fail(|| "cgroup name contains a NUL byte")?;
                match sys::symlinkat(target, dir.as_fd(), link) {
                    Err(e) if sys::errno(&e) != libc::EEXIST => return Err(Fail::Os(format!("symlink {ctrl} -> {name}"), e)),
                    _ => {}
                }
            }
        }
        Ok(())
    }

    fn bind_host_dir(&mut self, dir: &Path, opts: &MountOptions, path: &mut InPath) -> Result<(), Fail> {
        let src = self.src.set(dir.as_os_str().as_bytes()).or_fail(|| "source contains a NUL byte")?;
        let sfd = sys::open(src, libc::O_PATH | libc::O_DIRECTORY).or_fail(|| format!("mount bind {}", dir.display()))?;
        self.bind_fd(&sfd, &dir.display(), opts, path, 0)
    }
}

/// Re-open `path` after a mount and check it is that mount, so a component
/// swapped in the meantime cannot redirect the follow-up operations.
fn reopen(root: &Root, path: &InPath, expect: Expect, oflags: i32) -> Result<OwnedFd, Fail> {
    let fd = root.resolve(path.as_cstr(), libc::O_PATH | oflags).or_fail(|| format!("reopen {} after mount", path.show()))?;
    let st = sys::fstat(fd.as_fd()).or_fail(|| format!("stat {}", path.show()))?;
    let ok = match expect {
        Expect::Same(dev, ino) => st.st_dev == dev && st.st_ino == ino,
        Expect::NewDev(dev) => st.st_dev != dev,
        Expect::Any => true,
    };
    if ok {
        Ok(fd)
    } else {
        Err(Fail::Msg(format!("{} changed while it was being mounted (concurrent rename or symlink swap?)", path.show())))
    }
}

/// A readable directory fd for the directory the O_PATH `fd` refers to.
fn open_dir(fd: &OwnedFd) -> std::io::Result<OwnedFd> {
    sys::openat2(fd.as_fd(), c".", libc::O_RDONLY | libc::O_DIRECTORY, 0, libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS)
}
