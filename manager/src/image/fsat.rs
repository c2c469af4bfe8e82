//! File operations confined to a root directory: every path is resolved
//! with openat2(RESOLVE_IN_ROOT), so `..` and symlinks (absolute or
//! relative) never lead out of it, and the last component is handled with
//! *at calls on its parent that never follow it.

use std::ffi::{CStr, CString, OsStr};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

fn cstr(s: &OsStr) -> io::Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

use berth::os::cvt as check;

/// Open `dir` (a real directory, not a symlink) as the root to resolve in.
pub fn open_root(dir: &Path) -> io::Result<OwnedFd> {
    let p = cstr(dir.as_os_str())?;
    // SAFETY: `p` is a NUL-terminated CString alive for the call; open returns a new fd or -1.
    let fd = check(unsafe {
        libc::open(
            p.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    })?;
    // SAFETY: fd is the new fd `check` just accepted; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// openat2 with RESOLVE_IN_ROOT (and no magic links) from `root`
/// (`berth::os::openat2`, which adds O_CLOEXEC).
pub fn open_in_root(root: RawFd, rel: &Path, flags: i32) -> io::Result<OwnedFd> {
    let rel = if rel.as_os_str().is_empty() { Path::new(".") } else { rel };
    let p = cstr(rel.as_os_str())?;
    // SAFETY: callers pass an fd they hold open (from open_root) for the duration of the call.
    let root = unsafe { BorrowedFd::borrow_raw(root) };
    berth::os::openat2(root, &p, flags, 0, libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS)
}

/// The directory `rel` inside the root, as an O_PATH fd.
pub fn dir_in_root(root: RawFd, rel: &Path) -> io::Result<OwnedFd> {
    open_in_root(root, rel, libc::O_PATH | libc::O_DIRECTORY)
}

/// The directory `rel` inside the root, made (0755, root-owned) where
/// missing.
pub fn ensure_dir(root: RawFd, rel: &Path) -> io::Result<OwnedFd> {
    match dir_in_root(root, rel) {
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
        r => return r,
    }
    let (parent, name) = split(rel).ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))?;
    let pfd = ensure_dir(root, parent)?;
    let n = cstr(name)?;
    // SAFETY: `n` is a CString alive for the call and `pfd` is open (owned above).
    let r = unsafe { libc::mkdirat(pfd.as_raw_fd(), n.as_ptr(), 0o755) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EEXIST) {
            return Err(e);
        }
    }
    dir_in_root(root, rel)
}

/// (parent, last component) of a relative path with at least one component.
pub fn split(rel: &Path) -> Option<(&Path, &OsStr)> {
    let name = rel.file_name()?;
    Some((rel.parent().unwrap_or(Path::new("")), name))
}

/// lstat of `name` in `dir`; None when it does not exist.
pub fn lstat_at(dir: RawFd, name: &OsStr) -> io::Result<Option<libc::stat>> {
    let n = cstr(name)?;
    // SAFETY: stat is plain integers; all-zero is a valid value, overwritten by fstatat.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `n` is a CString alive for the call and `st` a live stat the kernel fills;
    // `dir` is only a number to the kernel (a stale one gives EBADF, not UB).
    let r = unsafe { libc::fstatat(dir, n.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::ENOENT) {
            return Ok(None);
        }
        return Err(e);
    }
    Ok(Some(st))
}

pub fn is_dir(st: &libc::stat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFDIR
}

/// Remove `name` in `dir` (recursively for a directory, never following a
/// symlink). A missing entry is not an error.
pub fn remove_at(dir: RawFd, name: &OsStr) -> io::Result<()> {
    let Some(st) = lstat_at(dir, name)? else {
        return Ok(());
    };
    let n = cstr(name)?;
    if is_dir(&st) {
        // SAFETY: `n` is a CString alive for the call; openat returns a new fd or -1.
        let fd = check(unsafe {
            libc::openat(
                dir,
                n.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            )
        })?;
        // SAFETY: fd is the new fd `check` just accepted; nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        for child in list_dir(&fd)? {
            remove_at(fd.as_raw_fd(), &child)?;
        }
        // SAFETY: `n` is a CString alive for the call; no other memory is passed.
        check(unsafe { libc::unlinkat(dir, n.as_ptr(), libc::AT_REMOVEDIR) })?;
    } else {
        // SAFETY: `n` is a CString alive for the call; no other memory is passed.
        check(unsafe { libc::unlinkat(dir, n.as_ptr(), 0) })?;
    }
    Ok(())
}

/// The names in a directory (without `.` and `..`), read from `fd`.
pub fn list_dir(fd: &OwnedFd) -> io::Result<Vec<std::ffi::OsString>> {
    // SAFETY: a static C string; openat returns a new fd or -1.
    let dup = check(unsafe {
        libc::openat(
            fd.as_raw_fd(),
            c".".as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    })?;
    // SAFETY: `dup` is a new fd owned by no Rust value; on success the DIR takes it over
    // (closedir closes it), on failure it is closed below.
    let d = unsafe { libc::fdopendir(dup) };
    if d.is_null() {
        let e = io::Error::last_os_error();
        // SAFETY: fdopendir failed, so `dup` is still ours alone and closed exactly once.
        unsafe { libc::close(dup) };
        return Err(e);
    }
    let mut out = Vec::new();
    loop {
        // SAFETY: `d` is the non-null DIR from fdopendir, not yet closed, used by this thread only.
        let ent = unsafe { libc::readdir64(d) };
        if ent.is_null() {
            break;
        }
        // SAFETY: `ent` is non-null and points to readdir's entry, valid until the next
        // readdir/closedir on `d`; d_name is NUL-terminated, and the name is copied
        // out before either happens.
        let name = unsafe { CStr::from_ptr((*ent).d_name.as_ptr()) };
        let b = name.to_bytes();
        if b != b"." && b != b".." {
            out.push(OsStr::from_bytes(b).to_os_string());
        }
    }
    // SAFETY: `d` is the DIR from fdopendir, closed exactly once; no entry is used after.
    unsafe { libc::closedir(d) };
    Ok(out)
}

/// Create a regular file `name` in `dir` (it must not exist).
pub fn create_file(dir: RawFd, name: &OsStr) -> io::Result<File> {
    let n = cstr(name)?;
    // SAFETY: `n` is a CString alive for the call; openat returns a new fd or -1.
    let fd = check(unsafe {
        libc::openat(
            dir,
            n.as_ptr(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            0o600,
        )
    })?;
    // SAFETY: fd is the new fd `check` just accepted; nothing else owns it.
    Ok(unsafe { File::from_raw_fd(fd) })
}

pub fn mkdir_at(dir: RawFd, name: &OsStr, mode: u32) -> io::Result<()> {
    let n = cstr(name)?;
    // SAFETY: `n` is a CString alive for the call; no other memory is passed.
    check(unsafe { libc::mkdirat(dir, n.as_ptr(), mode) }).map(|_| ())
}

pub fn symlink_at(target: &Path, dir: RawFd, name: &OsStr) -> io::Result<()> {
    let (t, n) = (cstr(target.as_os_str())?, cstr(name)?);
    // SAFETY: `t` and `n` are CStrings alive for the call; no other memory is passed.
    check(unsafe { libc::symlinkat(t.as_ptr(), dir, n.as_ptr()) }).map(|_| ())
}

pub fn link_at(odir: RawFd, oname: &OsStr, dir: RawFd, name: &OsStr) -> io::Result<()> {
    let (o, n) = (cstr(oname)?, cstr(name)?);
    // SAFETY: `o` and `n` are CStrings alive for the call; no other memory is passed.
    check(unsafe { libc::linkat(odir, o.as_ptr(), dir, n.as_ptr(), 0) }).map(|_| ())
}

pub fn mknod_at(dir: RawFd, name: &OsStr, mode: u32, dev: libc::dev_t) -> io::Result<()> {
    let n = cstr(name)?;
    // SAFETY: `n` is a CString alive for the call; no other memory is passed.
    check(unsafe { libc::mknodat(dir, n.as_ptr(), mode, dev) }).map(|_| ())
}

/// Owner, mode (not for symlinks) and mtime of `name` in `dir`.
pub fn set_meta(dir: RawFd, name: &OsStr, uid: u32, gid: u32, mode: Option<u32>, mtime: i64) -> io::Result<()> {
    let n = cstr(name)?;
    // SAFETY: `n` is a CString alive for the call; no other memory is passed.
    check(unsafe { libc::fchownat(dir, n.as_ptr(), uid, gid, libc::AT_SYMLINK_NOFOLLOW) })?;
    if let Some(mode) = mode {
        // Not a symlink (the caller knows): fchmodat cannot follow one here.
        // SAFETY: `n` is a CString alive for the call; no other memory is passed.
        check(unsafe { libc::fchmodat(dir, n.as_ptr(), mode & 0o7777, 0) })?;
    }
    let ts = libc::timespec { tv_sec: mtime, tv_nsec: 0 };
    // SAFETY: `n` is a CString and the two timespecs a temporary array, both alive for the call.
    check(unsafe { libc::utimensat(dir, n.as_ptr(), [ts, ts].as_ptr(), libc::AT_SYMLINK_NOFOLLOW) })?;
    Ok(())
}

/// A member name made relative and checked: absolute names and `..`
/// components are refused (None: the name is the root itself).
pub fn clean_member(name: &Path) -> Result<Option<PathBuf>, String> {
    let mut out = PathBuf::new();
    for c in name.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!("member {:?} is an absolute path", name));
            }
            Component::ParentDir => {
                return Err(format!("member {:?} has a \"..\" component", name));
            }
        }
    }
    Ok(if out.as_os_str().is_empty() { None } else { Some(out) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_member_refuses_escapes() {
        assert_eq!(clean_member(Path::new("./bin/sh")).unwrap(), Some(PathBuf::from("bin/sh")));
        assert_eq!(clean_member(Path::new("./")).unwrap(), None);
        assert!(clean_member(Path::new("/etc/passwd")).is_err());
        assert!(clean_member(Path::new("a/../../b")).is_err());
    }
}
