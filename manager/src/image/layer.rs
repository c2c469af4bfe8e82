//! Applying one layer (a tar stream: gzip, zstd or plain) onto an image rootfs:
//! members are created through [`super::fsat`] (never following a symlink
//! out of the rootfs), whiteouts (`.wh.NAME`) delete what lower layers made,
//! opaque markers (`.wh..wh..opq`) empty a directory of lower layers'
//! entries. The uncompressed stream's sha256 is computed on the way (the
//! image config's diff_id).

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tar::EntryType;

use super::fsat;

const WHITEOUT: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";

/// A reader that hashes what passes through.
pub struct HashReader<R> {
    inner: R,
    pub hash: Sha256,
    pub count: u64,
}

impl<R: Read> HashReader<R> {
    pub fn new(inner: R) -> Self {
        HashReader { inner, hash: Sha256::new(), count: 0 }
    }
}

impl<R: Read> Read for HashReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

pub fn hex(d: impl AsRef<[u8]>) -> String {
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// A layer blob's reader, decompressed by its magic number.
fn decompressed(path: &Path) -> Result<Box<dyn Read>, String> {
    let mut f = File::open(path).map_err(|e| format!("open: {e}"))?;
    let mut magic = [0u8; 4];
    let mut n = 0;
    while n < 4 {
        match f.read(&mut magic[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) => return Err(format!("read: {e}")),
        }
    }
    let f = File::open(path).map_err(|e| format!("open: {e}"))?;
    let r = BufReader::with_capacity(1 << 16, f);
    match &magic[..n] {
        [0x1f, 0x8b, ..] => Ok(Box::new(flate2::read::MultiGzDecoder::new(r))),
        [0x28, 0xb5, 0x2f, 0xfd] => Ok(Box::new(Zstd { inner: None, src: Some(r) })),
        [b'B', b'Z', b'h', ..] => Err("bzip2-compressed layers are not supported (gzip, zstd or plain tar only)".into()),
        _ => Ok(Box::new(r)),
    }
}

type ZstdFrame<R> = ruzstd::decoding::StreamingDecoder<R, ruzstd::decoding::FrameDecoder>;

/// A zstd stream of one or more frames (ruzstd decodes one frame at a time).
struct Zstd<R: io::BufRead> {
    inner: Option<ZstdFrame<R>>,
    src: Option<R>,
}

impl<R: io::BufRead> Read for Zstd<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(d) = self.inner.as_mut() {
                let n = d.read(buf)?;
                if n > 0 || buf.is_empty() {
                    return Ok(n);
                }
                self.src = self.inner.take().map(|d| d.into_inner());
            }
            let Some(mut src) = self.src.take() else { return Ok(0) };
            if src.fill_buf()?.is_empty() {
                return Ok(0); // no further frame
            }
            let d = ruzstd::decoding::StreamingDecoder::new(src)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("zstd: {e}")))?;
            self.inner = Some(d);
        }
    }
}

/// Apply the layer in `blob` onto the rootfs open as `root`; returns the
/// sha256 (hex) of the uncompressed tar stream.
pub fn apply(root: &OwnedFd, blob: &Path) -> Result<String, String> {
    let reader = HashReader::new(decompressed(blob)?);
    let mut ar = tar::Archive::new(reader);
    let mut created: HashSet<PathBuf> = HashSet::new();
    let entries = ar.entries().map_err(|e| format!("not a tar stream: {e}"))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("corrupt or truncated tar stream: {e}"))?;
        let raw = entry.path().map_err(|e| format!("bad member name: {e}"))?.into_owned();
        let Some(rel) = fsat::clean_member(&raw)? else {
            continue; // "./": the rootfs itself
        };
        apply_entry(root.as_raw_fd(), &rel, &mut entry, &mut created)
            .map_err(|e| format!("member {:?}: {e}", raw))?;
    }
    // The digest covers the whole stream, the end-of-archive blocks and any
    // padding too.
    let mut reader = ar.into_inner();
    io::copy(&mut reader, &mut io::sink()).map_err(|e| format!("corrupt or truncated layer: {e}"))?;
    Ok(hex(reader.hash.finalize()))
}

fn apply_entry<R: Read>(
    root: RawFd,
    rel: &Path,
    entry: &mut tar::Entry<R>,
    created: &mut HashSet<PathBuf>,
) -> Result<(), String> {
    if matches!(entry.header().entry_type(), EntryType::XGlobalHeader | EntryType::XHeader) {
        return Ok(());
    }
    let (parent, name) = fsat::split(rel).ok_or("empty name")?;
    fn io(what: &'static str) -> impl Fn(io::Error) -> String {
        move |e| format!("{what}: {e}")
    }
    let nb = name.as_bytes();
    if nb.starts_with(WHITEOUT.as_bytes()) {
        let pfd = match fsat::dir_in_root(root, parent) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
            Err(e) => return Err(format!("whiteout's directory: {e}")),
        };
        if nb == OPAQUE.as_bytes() {
            let rd = fsat::open_in_root(root, parent, libc::O_RDONLY | libc::O_DIRECTORY)
                .map_err(io("opaque directory"))?;
            for child in fsat::list_dir(&rd).map_err(io("list opaque directory"))? {
                if !created.contains(&parent.join(&child)) {
                    fsat::remove_at(pfd.as_raw_fd(), &child).map_err(io("opaque: remove"))?;
                }
            }
        } else {
            let target = OsStr::from_bytes(&nb[WHITEOUT.len()..]);
            if target.is_empty() || target == "." || target == ".." {
                return Err("invalid whiteout name".into());
            }
            fsat::remove_at(pfd.as_raw_fd(), target).map_err(io("whiteout: remove"))?;
        }
        return Ok(());
    }
    let h = entry.header().clone();
    let uid = h.uid().unwrap_or(0) as u32;
    let gid = h.gid().unwrap_or(0) as u32;
    let mode = h.mode().map_err(io("mode"))?;
    let mtime = h.mtime().unwrap_or(0) as i64;
    let pfd = fsat::ensure_dir(root, parent).map_err(io("parent directory"))?;
    let p = pfd.as_raw_fd();
    let existing = fsat::lstat_at(p, name).map_err(io("stat"))?;
    let kind = h.entry_type();
    // Everything but a directory over a directory replaces what is there.
    let keep_dir = kind == EntryType::Directory && existing.as_ref().is_some_and(fsat::is_dir);
    if existing.is_some() && !keep_dir {
        fsat::remove_at(p, name).map_err(io("replace"))?;
    }
    match kind {
        EntryType::Directory => {
            if !keep_dir {
                fsat::mkdir_at(p, name, 0o700).map_err(io("mkdir"))?;
            }
            fsat::set_meta(p, name, uid, gid, Some(mode), mtime).map_err(io("metadata"))?;
        }
        EntryType::Regular | EntryType::Continuous => {
            let mut f = fsat::create_file(p, name).map_err(io("create"))?;
            io::copy(entry, &mut f).map_err(io("write (corrupt or truncated layer?)"))?;
            drop(f);
            fsat::set_meta(p, name, uid, gid, Some(mode), mtime).map_err(io("metadata"))?;
        }
        EntryType::Symlink => {
            let target = entry
                .link_name()
                .map_err(io("link target"))?
                .ok_or("symlink without a target")?
                .into_owned();
            fsat::symlink_at(&target, p, name).map_err(io("symlink"))?;
            fsat::set_meta(p, name, uid, gid, None, mtime).map_err(io("metadata"))?;
        }
        EntryType::Link => {
            let target = entry
                .link_name()
                .map_err(io("link target"))?
                .ok_or("hard link without a target")?
                .into_owned();
            let t = fsat::clean_member(&target)?.ok_or("hard link to the rootfs itself")?;
            let (tp, tn) = fsat::split(&t).ok_or("hard link to the rootfs itself")?;
            let tfd = fsat::dir_in_root(root, tp).map_err(io("hard link target's directory"))?;
            fsat::link_at(tfd.as_raw_fd(), tn, p, name).map_err(io("hard link"))?;
        }
        EntryType::Char | EntryType::Block | EntryType::Fifo => {
            let fmt = match kind {
                EntryType::Char => libc::S_IFCHR,
                EntryType::Block => libc::S_IFBLK,
                _ => libc::S_IFIFO,
            };
            let major = h.device_major().ok().flatten().unwrap_or(0);
            let minor = h.device_minor().ok().flatten().unwrap_or(0);
            let dev = libc::makedev(major, minor);
            fsat::mknod_at(p, name, fmt | (mode & 0o7777), dev).map_err(io("mknod"))?;
            fsat::set_meta(p, name, uid, gid, Some(mode), mtime).map_err(io("metadata"))?;
        }
        other => return Err(format!("unsupported tar member type {other:?}")),
    }
    created.insert(rel.to_path_buf());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A zstd layer of two frames (as `zstd` writes for concatenated
    /// input): applied whole, its diff_id over the whole tar stream.
    #[test]
    fn zstd_layers_of_several_frames_apply() {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in [("a", &b"first\n"[..]), ("dir/b", &b"second\n"[..])] {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, data).unwrap();
        }
        let tar = b.into_inner().unwrap();
        let (one, two) = tar.split_at(700);
        let level = ruzstd::encoding::CompressionLevel::Fastest;
        let mut blob = ruzstd::encoding::compress_to_vec(one, level);
        blob.extend(ruzstd::encoding::compress_to_vec(two, level));
        let dir = std::env::temp_dir().join(format!("berthctl-zstd-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("rootfs")).unwrap();
        std::fs::write(dir.join("blob"), &blob).unwrap();
        let root = fsat::open_root(&dir.join("rootfs")).unwrap();
        let got = apply(&root, &dir.join("blob"));
        let files = (std::fs::read(dir.join("rootfs/a")), std::fs::read(dir.join("rootfs/dir/b")));
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(got.unwrap(), hex(Sha256::digest(&tar)));
        assert_eq!((files.0.unwrap(), files.1.unwrap()), (b"first\n".to_vec(), b"second\n".to_vec()));
    }
}
