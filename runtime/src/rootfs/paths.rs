//! Safe resolution inside the rootfs.
//!
//! Every container path is opened with `openat2(rootfd, path,
//! RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`: symlinks inside the rootfs
//! resolve as if the rootfs were `/`, and nothing escapes it. Missing
//! components are created one at a time with `mkdirat` relative to the fd
//! of the already-resolved parent, never by path string. Callers then act
//! on `/proc/self/fd/N` of the returned `O_PATH` fd.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::sys;

const IN_ROOT: u64 = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
/// For a component we have just created in a directory we hold: it must
/// still be a plain entry of that directory (a swap to a symlink fails).
const HERE: u64 = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;

pub const DIR_MODE: u32 = 0o755;
pub const FILE_MODE: u32 = 0o644;

/// A lexically clean absolute container path (no `.`, `..`, `//`, trailing
/// `/`), NUL-terminated, in a buffer reused from entry to entry.
pub struct InPath {
    buf: Vec<u8>,
}

impl Default for InPath {
    fn default() -> Self {
        InPath { buf: Vec::with_capacity(256) }
    }
}

impl InPath {
    /// Replace the content with the clean form of `p` (relative paths are
    /// taken relative to `/`; `..` stops at `/`).
    pub fn set(&mut self, p: &[u8]) -> io::Result<()> {
        if p.contains(&0) {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        self.buf.clear();
        for comp in p.split(|&b| b == b'/') {
            match comp {
                b"" | b"." => {}
                b".." => {
                    let cut = self.buf.iter().rposition(|&b| b == b'/').unwrap_or(0);
                    self.buf.truncate(cut);
                }
                c => {
                    self.buf.push(b'/');
                    self.buf.extend_from_slice(c);
                }
            }
        }
        if self.buf.is_empty() {
            self.buf.push(b'/');
        }
        self.buf.push(0);
        Ok(())
    }

    pub fn set_path(&mut self, p: &Path) -> io::Result<()> {
        self.set(p.as_os_str().as_bytes())
    }

    pub fn as_cstr(&self) -> &CStr {
        CStr::from_bytes_with_nul(&self.buf).expect("InPath holds one trailing NUL")
    }

    pub fn bytes(&self) -> &[u8] {
        &self.buf[..self.buf.len() - 1]
    }

    pub fn is(&self, p: &str) -> bool {
        self.bytes() == p.as_bytes()
    }

    /// The path for messages.
    pub fn show(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(self.bytes())
    }

    /// The last component (empty for `/`).
    pub fn name(&self) -> &CStr {
        let start = self.buf.iter().rposition(|&b| b == b'/').map_or(0, |i| i + 1);
        CStr::from_bytes_with_nul(&self.buf[start..]).expect("NUL-terminated")
    }

    /// The parent path's length in bytes (`/dev` for `/dev/null`; 0 for a
    /// child of `/`).
    pub fn parent_len(&self) -> usize {
        self.buf.iter().rposition(|&b| b == b'/').unwrap_or(0)
    }

    /// Run `f` with the prefix `buf[..end]` as a C string (`end` is the
    /// index of a `/` or of the trailing NUL); an empty prefix is `/`.
    fn with_prefix<R>(&mut self, end: usize, f: impl FnOnce(&CStr) -> R) -> R {
        if end == 0 {
            return f(c"/");
        }
        let saved = self.buf[end];
        self.buf[end] = 0;
        let r = f(CStr::from_bytes_with_nul(&self.buf[..=end]).expect("NUL just written"));
        self.buf[end] = saved;
        r
    }
}

/// What to create at a missing final component.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Dir,
    File,
}

/// The container's rootfs, held open.
pub struct Root {
    fd: OwnedFd,
}

impl Root {
    /// Open the rootfs directory (a host path, trusted).
    pub fn open(rootfs: &CStr) -> io::Result<Root> {
        Ok(Root { fd: sys::open(rootfs, libc::O_PATH | libc::O_DIRECTORY)? })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Open `p` inside the rootfs. `flags` usually is `O_PATH`, plus
    /// `O_NOFOLLOW` / `O_DIRECTORY` where the caller needs them.
    pub fn resolve(&self, p: &CStr, flags: i32) -> io::Result<OwnedFd> {
        sys::openat2(self.fd.as_fd(), p, flags, 0, IN_ROOT)
    }

    /// Open `p` inside the rootfs, creating what is missing: directories
    /// for the intermediate components and `kind` for the last one.
    /// Returns the fd and whether the last component was created.
    pub fn resolve_or_create(&self, p: &mut InPath, kind: Kind, flags: i32) -> io::Result<(OwnedFd, bool)> {
        let len = p.buf.len() - 1;
        self.create_prefix(p, len, kind, flags)
    }

    /// Open the parent directory of `p`, creating it if missing.
    pub fn resolve_parent(&self, p: &mut InPath) -> io::Result<OwnedFd> {
        let len = p.buf.len() - 1;
        let end = p.buf[..len].iter().rposition(|&b| b == b'/').unwrap_or(0);
        if end == 0 {
            return self.resolve(c"/", libc::O_PATH | libc::O_DIRECTORY);
        }
        self.create_prefix(p, end, Kind::Dir, libc::O_PATH | libc::O_DIRECTORY).map(|(fd, _)| fd)
    }

    /// `resolve_or_create` of the prefix `p.buf[..len]`.
    fn create_prefix(&self, p: &mut InPath, len: usize, kind: Kind, flags: i32) -> io::Result<(OwnedFd, bool)> {
        self.create_prefix_depth(p, len, kind, flags, 0)
    }

    fn create_prefix_depth(&self, p: &mut InPath, len: usize, kind: Kind, flags: i32, depth: u32) -> io::Result<(OwnedFd, bool)> {
        match p.with_prefix(len, |pre| self.resolve(pre, flags)) {
            Err(e) if sys::errno(&e) == libc::ENOENT => {}
            r => return r.map(|fd| (fd, false)),
        }
        // Deepest existing ancestor. Usually the parent: one more lookup.
        let mut end = len;
        let mut parent = loop {
            end = p.buf[..end].iter().rposition(|&b| b == b'/').unwrap_or(0);
            match p.with_prefix(end, |pre| self.resolve(pre, libc::O_PATH | libc::O_DIRECTORY)) {
                Ok(fd) => break fd,
                Err(e) if sys::errno(&e) == libc::ENOENT && end > 0 => continue,
                Err(e) => return Err(e),
            }
        };
        // Create the rest, component by component, relative to the parent fd.
        let mut start = end + 1;
        while start <= len {
            let stop = p.buf[start..len].iter().position(|&b| b == b'/').map_or(len, |i| start + i);
            let last = stop == len;
            let dir = !last || kind == Kind::Dir;
            let created = p.with_prefix(stop, |pre| {
                let name = CStr::from_bytes_with_nul(&pre.to_bytes_with_nul()[start..]).expect("component");
                if dir {
                    match sys::mkdirat(parent.as_fd(), name, DIR_MODE) {
                        Ok(()) => sys::openat2(parent.as_fd(), name, libc::O_PATH | libc::O_DIRECTORY, 0, HERE).map(Some),
                        Err(e) if sys::errno(&e) == libc::EEXIST => Ok(None),
                        Err(e) => Err(e),
                    }
                } else {
                    let f = libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_RDONLY;
                    match sys::openat2(parent.as_fd(), name, f, FILE_MODE, HERE) {
                        Ok(fd) => Ok(Some(fd)),
                        Err(e) if sys::errno(&e) == libc::EEXIST => Ok(None),
                        Err(e) => Err(e),
                    }
                }
            })?;
            parent = match created {
                Some(fd) => fd,
                // Someone else created it (or it is a dangling symlink):
                // resolve it in the root like any existing path.
                None => {
                    let f = if last { flags } else { libc::O_PATH | libc::O_DIRECTORY };
                    match p.with_prefix(stop, |pre| self.resolve(pre, f)) {
                        Ok(fd) => fd,
                        Err(e) if sys::errno(&e) == libc::ENOENT => {
                            return self.follow_dangling(&parent, p, (start, stop, len), kind, flags, depth)
                        }
                        Err(e) => return Err(e),
                    }
                }
            };
            start = stop + 1;
        }
        Ok((parent, true))
    }

    /// The component `p.buf[start..stop]` is a dangling symlink: create its
    /// target (plus the rest of the path) inside the root instead, the way
    /// the kernel would resolve it with the rootfs as "/".
    fn follow_dangling(
        &self,
        parent: &OwnedFd,
        p: &mut InPath,
        (start, stop, len): (usize, usize, usize),
        kind: Kind,
        flags: i32,
        depth: u32,
    ) -> io::Result<(OwnedFd, bool)> {
        if depth >= 40 {
            return Err(io::Error::from_raw_os_error(libc::ELOOP));
        }
        let target = p.with_prefix(stop, |pre| {
            let name = CStr::from_bytes_with_nul(&pre.to_bytes_with_nul()[start..]).expect("component");
            sys::readlinkat(parent.as_fd(), name)
        });
        let target = match target {
            Ok(t) => t,
            // Not a symlink: it vanished under us.
            Err(e) if sys::errno(&e) == libc::EINVAL => return Err(io::Error::from_raw_os_error(libc::ENOENT)),
            Err(e) => return Err(e),
        };
        let mut joined = Vec::with_capacity(len + target.len() + 1);
        if !target.starts_with(b"/") {
            joined.extend_from_slice(&p.buf[..start.saturating_sub(1)]);
            joined.push(b'/');
        }
        joined.extend_from_slice(&target);
        joined.extend_from_slice(&p.buf[stop..len]);
        let mut q = InPath::default();
        q.set(&joined)?;
        let qlen = q.buf.len() - 1;
        self.create_prefix_depth(&mut q, qlen, kind, flags, depth + 1)
    }
}
