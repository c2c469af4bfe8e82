//! `tmpcopyup`: a tmpfs mounted over a directory of the rootfs starts with
//! a copy of that directory's tree, as with runc and crun (Podman asks for
//! it on every `--tmpfs` mount and on the tmpfs mounts of `--read-only`).
//!
//! The source is the covered directory itself: `mounts` opens it (a real
//! directory fd, from the O_PATH fd the destination resolved to inside the
//! rootfs) before the tmpfs goes over it, and the fd goes on reading the
//! rootfs's directory afterwards. Below it every entry is looked up by name
//! in the directory fd that holds it, with `RESOLVE_BENEATH |
//! RESOLVE_NO_SYMLINKS` and `O_NOFOLLOW`, and its type checked against the
//! `lstat` that chose how to copy it: nothing is followed and nothing
//! outside the tree is read, whatever the image holds or swaps in.
//!
//! Kept: the type, mode bits (setuid, setgid, sticky included), owner,
//! extended attributes (of directories and regular files), access and
//! modification times. Symlinks are copied as symlinks, never followed.
//! Device nodes, fifos and sockets are made with mknod(2) where the kernel
//! permits (in a user namespace it refuses devices). What the kernel does
//! not let berth make (those devices, an xattr a user namespace may not set)
//! is left out, with one warning per mount. Hard links become separate
//! copies.

use std::ffi::{CStr, CString};
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use crate::sys;
use super::{Fail, OrFail};

/// Deeper trees are refused (each level holds two directory fds).
const MAX_DEPTH: usize = 128;
/// One component in a directory we hold: no symlink, no escape.
const HERE: u64 = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;

/// Copy the tree of the directory `src` into the (empty) directory `dst`,
/// then give `dst` the owner, mode, extended attributes and times of `src`
/// (`keep_owner`: false when the mount options set uid=/gid=, `keep_mode`:
/// false when they set mode=). `dest` names the mount in messages.
pub(super) fn copy_tree(src: &OwnedFd, dst: &OwnedFd, dest: &str, keep_owner: bool, keep_mode: bool) -> Result<(), Fail> {
    let mut c = Copier { path: dest.as_bytes().to_vec(), list: Vec::new(), value: Vec::new(), left_out: (0, None) };
    c.dir(src, dst, 0)?;
    let st = sys::fstat(src.as_fd()).or_fail(|| c.op("stat"))?;
    c.meta(src.as_fd(), dst.as_fd(), &st, keep_owner, keep_mode)?;
    if let (n, Some(first)) = &c.left_out {
        let more = if *n > 1 { format!(" and {} more", n - 1) } else { String::new() };
        log::warn!("{first}; left out of the copy{more}");
    }
    Ok(())
}

struct Copier {
    /// The container path being copied, for messages.
    path: Vec<u8>,
    /// Buffers for the xattr names and one value.
    list: Vec<u8>,
    value: Vec<u8>,
    /// What the kernel did not let berth make (a device node in a user
    /// namespace, an xattr it may not set): how many, and the first one,
    /// for a single warning at the end.
    left_out: (usize, Option<String>),
}

impl Copier {
    fn op(&self, what: &str) -> String {
        format!("tmpcopyup: {what} {}", String::from_utf8_lossy(&self.path))
    }

    fn dir(&mut self, src: &OwnedFd, dst: &OwnedFd, depth: usize) -> Result<(), Fail> {
        if depth >= MAX_DEPTH {
            return Err(Fail::Msg(format!("{}: more than {MAX_DEPTH} nested directories", self.op("copy"))));
        }
        for name in self.names(src)? {
            let len = self.path.len();
            self.path.push(b'/');
            self.path.extend_from_slice(name.to_bytes());
            let r = self.entry(src, dst, &name, depth);
            self.path.truncate(len);
            r?;
        }
        Ok(())
    }

    /// The entries of `src` (without `.` and `..`), read through a fresh
    /// open file description so `src`'s own offset is left alone.
    fn names(&self, src: &OwnedFd) -> Result<Vec<CString>, Fail> {
        let fl = nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC;
        let mut d = nix::dir::Dir::openat(src, c".", fl, nix::sys::stat::Mode::empty())
            .map_err(|e| Fail::Os(self.op("read directory"), e.into()))?;
        let mut names = Vec::new();
        for e in d.iter() {
            let e = e.map_err(|e| Fail::Os(self.op("read directory"), e.into()))?;
            let n = e.file_name();
            if n != c"." && n != c".." {
                names.push(n.to_owned());
            }
        }
        Ok(names)
    }

    fn entry(&mut self, src: &OwnedFd, dst: &OwnedFd, name: &CStr, depth: usize) -> Result<(), Fail> {
        let (s, d) = (src.as_fd(), dst.as_fd());
        let st = sys::lstatat(s, name).or_fail(|| self.op("stat"))?;
        match st.st_mode & libc::S_IFMT {
            libc::S_IFDIR => {
                let sfd = self.open_checked(s, name, libc::O_RDONLY | libc::O_DIRECTORY, &st)?;
                sys::mkdirat(d, name, 0o700).or_fail(|| self.op("mkdir"))?;
                let dfd = sys::openat2(d, name, libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW, 0, HERE)
                    .or_fail(|| self.op("open new"))?;
                self.dir(&sfd, &dfd, depth + 1)?;
                self.meta(sfd.as_fd(), dfd.as_fd(), &st, true, true)
            }
            libc::S_IFREG => {
                // O_NONBLOCK: a fifo swapped in must not block the open.
                let sfd = self.open_checked(s, name, libc::O_RDONLY | libc::O_NONBLOCK, &st)?;
                let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW;
                let dfd = sys::openat2(d, name, flags, 0o600, HERE).or_fail(|| self.op("create"))?;
                let (mut sf, mut df) = (File::from(sfd), File::from(dfd));
                std::io::copy(&mut sf, &mut df).or_fail(|| self.op("copy"))?;
                self.meta(sf.as_fd(), df.as_fd(), &st, true, true)
            }
            libc::S_IFLNK => {
                let target = sys::readlinkat(s, name).or_fail(|| self.op("readlink"))?;
                let target = CString::new(target).map_err(|_| Fail::Msg(format!("{}: NUL in symlink", self.op("copy"))))?;
                sys::symlinkat(&target, d, name).or_fail(|| self.op("symlink"))?;
                sys::lchownat(d, name, st.st_uid, st.st_gid).or_fail(|| self.op("chown"))?;
                sys::set_times(d, Some(name), &st).or_fail(|| self.op("set times of"))
            }
            _ => self.node(d, name, &st),
        }
    }

    /// A device node, fifo or socket.
    fn leave_out(&mut self, what: String) {
        self.left_out.0 += 1;
        self.left_out.1.get_or_insert(what);
    }

    fn node(&mut self, d: BorrowedFd, name: &CStr, st: &libc::stat) -> Result<(), Fail> {
        match sys::mknodat(d, name, (st.st_mode & libc::S_IFMT) | 0o600, st.st_rdev) {
            Ok(()) => {}
            Err(e) if sys::errno(&e) == libc::EPERM => {
                self.leave_out(format!("{}: {e}", self.op("mknod")));
                return Ok(());
            }
            Err(e) => return Err(Fail::Os(self.op("mknod"), e)),
        }
        sys::lchownat(d, name, st.st_uid, st.st_gid).or_fail(|| self.op("chown"))?;
        sys::fchmodat(d, name, st.st_mode & 0o7777).or_fail(|| self.op("chmod"))?;
        sys::set_times(d, Some(name), st).or_fail(|| self.op("set times of"))
    }

    /// Open `name` in `dir` without following anything and check it is
    /// still the inode `st` describes.
    fn open_checked(&self, dir: BorrowedFd, name: &CStr, flags: i32, st: &libc::stat) -> Result<OwnedFd, Fail> {
        let fd = sys::openat2(dir, name, flags | libc::O_NOFOLLOW, 0, HERE).or_fail(|| self.op("open"))?;
        let now = sys::fstat(fd.as_fd()).or_fail(|| self.op("stat"))?;
        if (now.st_dev, now.st_ino, now.st_mode & libc::S_IFMT) != (st.st_dev, st.st_ino, st.st_mode & libc::S_IFMT) {
            return Err(Fail::Msg(format!("{}: it changed while being copied", self.op("copy"))));
        }
        Ok(fd)
    }

    /// Owner, then extended attributes (a chown clears security.capability),
    /// then mode (a chown clears setuid), then times.
    fn meta(&mut self, s: BorrowedFd, d: BorrowedFd, st: &libc::stat, keep_owner: bool, keep_mode: bool) -> Result<(), Fail> {
        if keep_owner {
            sys::fchown(d, st.st_uid, st.st_gid).or_fail(|| self.op("chown"))?;
        }
        self.xattrs(s, d)?;
        if keep_mode {
            sys::fchmod(d, st.st_mode & 0o7777).or_fail(|| self.op("chmod"))?;
        }
        sys::set_times(d, None, st).or_fail(|| self.op("set times of"))
    }

    fn xattrs(&mut self, s: BorrowedFd, d: BorrowedFd) -> Result<(), Fail> {
        let n = match fill(&mut self.list, |b| sys::flistxattr(s, b)) {
            Ok(n) => n,
            Err(e) if matches!(sys::errno(&e), libc::ENOTSUP) => return Ok(()),
            Err(e) => return Err(Fail::Os(self.op("list xattrs of"), e)),
        };
        let list = std::mem::take(&mut self.list);
        let r = list[..n].split(|&b| b == 0).filter(|k| !k.is_empty()).try_for_each(|key| {
            let key = CString::new(key).expect("split at NUL");
            let len = match fill(&mut self.value, |b| sys::fgetxattr(s, &key, b)) {
                Ok(len) => len,
                // Removed meanwhile.
                Err(e) if sys::errno(&e) == libc::ENODATA => return Ok(()),
                Err(e) => return Err(Fail::Os(format!("{} ({})", self.op("read xattr of"), key.to_string_lossy()), e)),
            };
            match sys::fsetxattr(d, &key, &self.value[..len]) {
                Ok(()) => Ok(()),
                // An attribute tmpfs does not store, or one this (user)
                // namespace may not set: the copy goes on without it.
                Err(e) if matches!(sys::errno(&e), libc::ENOTSUP | libc::EPERM) => {
                    self.leave_out(format!("{} ({}): {e}", self.op("set xattr of"), key.to_string_lossy()));
                    Ok(())
                }
                Err(e) => Err(Fail::Os(format!("{} ({})", self.op("set xattr of"), key.to_string_lossy()), e)),
            }
        });
        self.list = list;
        r
    }
}

/// Call `f` with `buf`, growing it to the size the kernel asks for (an
/// empty slice asks) on ERANGE.
fn fill(buf: &mut Vec<u8>, mut f: impl FnMut(&mut [u8]) -> std::io::Result<usize>) -> std::io::Result<usize> {
    loop {
        if !buf.is_empty() {
            match f(buf) {
                Err(e) if sys::errno(&e) == libc::ERANGE => {}
                r => return r,
            }
        }
        let want = f(&mut [])?;
        if want == 0 {
            return Ok(0);
        }
        buf.resize(want.max(buf.len() * 2), 0);
    }
}
