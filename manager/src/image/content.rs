//! The content store of pulled images, under `--root`:
//!
//! ```text
//! blobs/sha256/<hex>     verified blobs: indexes, manifests, configs, layers
//! blobs/ingest/<hex>     a download in progress or interrupted (the next
//!                        pull of that blob resumes it; flock while written)
//! snapshots/<chain>/     the rootfs after layers 1..n, named by the chain id
//!                        of those layers (OCI image spec); its files are hard
//!                        links to the parent snapshot's, so a layer shared by
//!                        two images is unpacked once and stored once
//! pulls.lock             shared by every pull while it runs; the garbage
//!                        collector runs only when it can take it exclusively
//! ```
//!
//! A snapshot is made in tmp/ (hard-link copy of its parent, then the layer
//! applied with [`super::layer::apply`], its diff_id checked) and renamed
//! into place only when complete. Blobs are renamed from ingest/ only once
//! their size and digest match. So nothing under blobs/sha256 or snapshots/
//! is ever half-written; an image (images/<id>/image.json) names the blobs
//! and snapshots it uses, and [`gc`] removes what no image names.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use super::{fsat, layer};
use crate::store::Store;

pub fn blob_path(store: &Store, hex: &str) -> PathBuf {
    store.root.join("blobs/sha256").join(hex)
}

pub fn ingest_path(store: &Store, hex: &str) -> PathBuf {
    store.root.join("blobs/ingest").join(hex)
}

pub fn snapshot_path(store: &Store, chain: &str) -> PathBuf {
    store.root.join("snapshots").join(chain)
}

/// The directories of the content store.
pub fn init(store: &Store) -> Result<(), String> {
    for d in ["blobs/sha256", "blobs/ingest", "snapshots"] {
        let p = store.root.join(d);
        fs::create_dir_all(&p).map_err(|e| format!("create {}: {e}", p.display()))?;
    }
    Ok(())
}

/// A verified blob of `size` bytes is already there.
pub fn has_blob(store: &Store, hex: &str, size: u64) -> bool {
    fs::metadata(blob_path(store, hex)).is_ok_and(|m| m.is_file() && m.len() == size)
}

/// Store `data` (already verified against `hex`) as a blob.
pub fn put_blob(store: &Store, hex: &str, data: &[u8]) -> Result<(), String> {
    if has_blob(store, hex, data.len() as u64) {
        return Ok(());
    }
    crate::store::write_atomic(&blob_path(store, hex), data)
}

/// Chain ids (hex) of a config's diff_ids (hex): chain(1) = diff(1),
/// chain(n) = sha256("sha256:<chain(n-1)> sha256:<diff(n)>").
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => layer::hex(Sha256::digest(format!("sha256:{prev} sha256:{d}"))),
        };
        out.push(next);
    }
    out
}

/// Make snapshot `chains[i]` from snapshot `chains[i-1]` and the layer in
/// `blob` (whose uncompressed digest must be `diff_id`). Returns false if
/// it was there already.
pub fn make_snapshot(
    store: &Store,
    chains: &[String],
    i: usize,
    blob: &Path,
    diff_id: &str,
) -> Result<bool, String> {
    let dst = snapshot_path(store, &chains[i]);
    if dst.is_dir() {
        return Ok(false);
    }
    let scratch = store.scratch("snapshot")?;
    let rootfs = scratch.path.join("rootfs");
    if i == 0 {
        fs::create_dir(&rootfs).map_err(|e| format!("create {}: {e}", rootfs.display()))?;
        fs::set_permissions(&rootfs, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .map_err(|e| format!("chmod {}: {e}", rootfs.display()))?;
    } else {
        let parent = snapshot_path(store, &chains[i - 1]);
        // Hard links for files (a layer replaces a file by unlinking it
        // first, never by writing into it), copies for the rest.
        let out = Command::new("cp")
            .arg("-al")
            .arg(&parent)
            .arg(&rootfs)
            .output()
            .map_err(|e| format!("run cp: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "copy snapshot {} to {}: {}",
                parent.display(),
                rootfs.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    let root = fsat::open_root(&rootfs).map_err(|e| format!("{}: {e}", rootfs.display()))?;
    let got = layer::apply(&root, blob)?;
    if got != diff_id {
        return Err(format!(
            "digest mismatch: the uncompressed layer has sha256:{got}, the config's diff_id is sha256:{diff_id}"
        ));
    }
    drop(root);
    if let Err(e) = fs::rename(&rootfs, &dst) {
        // A concurrent pull made it first: the same content.
        if !dst.is_dir() {
            return Err(format!("move into {}: {e}", dst.display()));
        }
    }
    Ok(true)
}

/// Remove snapshot `chain` (moved out of the way first, so no
/// half-removed snapshot keeps its name).
pub fn drop_snapshot(store: &Store, chain: &str) {
    if let Ok(scratch) = store.scratch("gc") {
        let _ = fs::rename(snapshot_path(store, chain), scratch.path.join("s"));
    }
}

/// Open (creating) and lock `path` (flock): shared or exclusive,
/// blocking or not. None if non-blocking and held elsewhere.
pub fn flock(path: &Path, exclusive: bool, block: bool) -> Result<Option<File>, String> {
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut op = if exclusive {
        libc::LOCK_EX
    } else {
        libc::LOCK_SH
    };
    if !block {
        op |= libc::LOCK_NB;
    }
    // SAFETY: flock takes an fd (open, owned by `f`) and an integer; no memory.
    if unsafe { libc::flock(f.as_raw_fd(), op) } != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
            return Ok(None);
        }
        return Err(format!("lock {}: {e}", path.display()));
    }
    Ok(Some(f))
}

/// Held by a pull while it runs: the collector leaves blobs alone then.
pub fn pull_lock(store: &Store) -> Result<File, String> {
    Ok(flock(&store.root.join("pulls.lock"), false, true)?.expect("a blocking flock"))
}

/// What [`gc`] removed.
#[derive(Default)]
pub struct Freed {
    pub blobs: usize,
    pub snapshots: usize,
    pub bytes: u64,
    /// Nothing was collected: a pull is running.
    pub busy: bool,
}

/// Remove the blobs and snapshots no image names (and, with `partial`,
/// interrupted downloads not being written). Call with the store lock held.
pub fn gc(store: &Store, partial: bool) -> Result<Freed, String> {
    let mut freed = Freed::default();
    if !store.root.join("blobs").is_dir() {
        return Ok(freed);
    }
    let Some(_pulls) = flock(&store.root.join("pulls.lock"), true, false)? else {
        freed.busy = true;
        return Ok(freed);
    };
    let mut blobs = HashSet::new();
    let mut snaps = HashSet::new();
    for img in super::list(store)? {
        blobs.extend(img.meta.blobs.iter().cloned());
        snaps.extend(img.meta.chain.iter().cloned());
    }
    let sweep = |dir: &Path, keep: &HashSet<String>| -> Vec<PathBuf> {
        let Ok(rd) = fs::read_dir(dir) else {
            return Vec::new();
        };
        rd.flatten()
            .filter(|e| !keep.contains(e.file_name().to_string_lossy().as_ref()))
            .map(|e| e.path())
            .collect()
    };
    for p in sweep(&store.root.join("blobs/sha256"), &blobs) {
        freed.bytes += fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
        fs::remove_file(&p).map_err(|e| format!("remove {}: {e}", p.display()))?;
        freed.blobs += 1;
    }
    for p in sweep(&store.root.join("snapshots"), &snaps) {
        freed.bytes += unshared_size(&p);
        // Out of the way first, so no half-removed snapshot keeps its name.
        let scratch = store.scratch("gc")?;
        fs::rename(&p, scratch.path.join("s"))
            .map_err(|e| format!("remove {}: {e}", p.display()))?;
        freed.snapshots += 1;
    }
    if partial {
        for p in sweep(&store.root.join("blobs/ingest"), &HashSet::new()) {
            if let Some(_held) = flock(&p, true, false)? {
                freed.bytes += fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
                let _ = fs::remove_file(&p);
            }
        }
    }
    Ok(freed)
}

/// Bytes of the files under `dir` that no other directory links to.
fn unshared_size(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    super::size_where(dir, |md| md.nlink() == 1)
}

#[cfg(test)]
mod tests {
    use super::chain_ids;

    #[test]
    fn chain_ids_follow_the_image_spec() {
        let a = "a".repeat(64);
        let b = "b".repeat(64);
        let c = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(c[0], a);
        let want = crate::image::layer::hex(<sha2::Sha256 as sha2::Digest>::digest(format!(
            "sha256:{a} sha256:{b}"
        )));
        assert_eq!(c[1], want);
    }
}
