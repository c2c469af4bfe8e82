//! The image store: `image import`, `image ls`, `image rm`, and looking an
//! image up by name or id. An import unpacks into tmp/ and renames into
//! images/ only when every image of the archive is complete and verified.
//! A pulled image has no rootfs of its own: it names a snapshot and the
//! blobs of the content store ([`content`]), shared with other images.

pub mod archive;
pub mod content;
pub mod fsat;
pub mod layer;

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::store::{now, write_atomic, Store};

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Meta {
    pub id: String,
    pub names: Vec<String>,
    pub created: u64,
    pub layers: usize,
    /// A pulled image: the chain ids of its layers (the last is its rootfs,
    /// snapshots/<chain>), and the digests (hex) of the blobs it uses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chain: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blobs: Vec<String>,
}

pub struct Image {
    pub meta: Meta,
    pub dir: PathBuf,
}

impl Image {
    pub fn rootfs(&self) -> PathBuf {
        match (self.meta.chain.last(), self.dir.parent().and_then(Path::parent)) {
            (Some(top), Some(root)) => root.join("snapshots").join(top),
            _ => self.dir.join("rootfs"),
        }
    }

    /// The image config's `config` object (Env, Cmd, ...).
    pub fn config(&self) -> Result<Value, String> {
        let p = self.dir.join("config.json");
        let data = fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        let v: Value = serde_json::from_slice(&data).map_err(|e| format!("{}: {e}", p.display()))?;
        Ok(v.get("config").cloned().unwrap_or(Value::Null))
    }
}

/// `busybox` -> `busybox:latest`; `docker.io/library/x:1` -> `x:1`.
pub fn normalize(r: &str) -> String {
    let mut s = r;
    for p in ["docker.io/library/", "docker.io/", "library/"] {
        if let Some(rest) = s.strip_prefix(p) {
            s = rest;
            break;
        }
    }
    let last = s.rsplit('/').next().unwrap_or(s);
    if last.contains(':') || s.contains('@') {
        s.to_string()
    } else {
        format!("{s}:latest")
    }
}

pub fn list(store: &Store) -> Result<Vec<Image>, String> {
    let mut out = Vec::new();
    let dir = store.images();
    for e in fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?.flatten() {
        let p = e.path().join("image.json");
        let Ok(data) = fs::read(&p) else { continue };
        let meta: Meta = serde_json::from_slice(&data).map_err(|e| format!("{}: {e}", p.display()))?;
        out.push(Image { meta, dir: e.path() });
    }
    out.sort_by(|a, b| b.meta.created.cmp(&a.meta.created).then(a.meta.id.cmp(&b.meta.id)));
    Ok(out)
}

/// An image by name (normalized), id, `sha256:id` or unique id prefix.
pub fn lookup(store: &Store, r: &str) -> Result<Image, String> {
    let images = list(store)?;
    let want = normalize(r);
    let id = r.strip_prefix("sha256:").unwrap_or(r);
    let mut by_id = Vec::new();
    for img in images {
        if img.meta.names.iter().any(|n| normalize(n) == want) {
            return Ok(img);
        }
        if id.len() >= 4 && img.meta.id.starts_with(id) && id.bytes().all(|b| b.is_ascii_hexdigit()) {
            by_id.push(img);
        }
    }
    match by_id.len() {
        1 => Ok(by_id.pop().unwrap()),
        0 => Err(format!(
            "no such image: {r} (see `berthctl image ls`; get one with `berthctl pull REF` or `berthctl image import FILE`)"
        )),
        _ => Err(format!("image id prefix {r} is ambiguous")),
    }
}

/// `image import FILE [--name REF]`: prints one line per image.
pub fn import(store: &Store, file: &Path, name: Option<&str>) -> Result<Vec<String>, String> {
    let scratch = store.scratch("import")?;
    let members_dir = scratch.path.join("members");
    fs::create_dir(&members_dir).map_err(|e| format!("{}: {e}", members_dir.display()))?;
    let fail = |e: String| format!("image import {}: {e}", file.display());
    let members = archive::Members::read(file, &members_dir).map_err(fail)?;
    let mut found = members.images().map_err(fail)?;
    if let Some(n) = name {
        if found.len() != 1 {
            return Err(fail(format!("--name: the archive holds {} images, not one", found.len())));
        }
        found[0].names = vec![n.to_string()];
    }
    // Unpack every new image into the scratch dir first.
    let mut ready = Vec::new();
    for f in &found {
        if store.images().join(&f.id).join("image.json").exists() || ready.iter().any(|(id, _): &(String, PathBuf)| *id == f.id) {
            continue;
        }
        let dir = scratch.path.join(format!("image-{}", f.id));
        let rootfs = dir.join("rootfs");
        fs::create_dir_all(&rootfs).map_err(|e| fail(format!("{}: {e}", rootfs.display())))?;
        let root = fsat::open_root(&rootfs).map_err(|e| fail(format!("{}: {e}", rootfs.display())))?;
        for l in &f.layers {
            let got = layer::apply(&root, &l.path).map_err(|e| fail(format!("{}: {e}", l.what)))?;
            if got != l.diff_id {
                return Err(fail(format!(
                    "{}: digest mismatch: the uncompressed layer has sha256:{got}, the config's diff_id is sha256:{}",
                    l.what, l.diff_id
                )));
            }
        }
        fs::write(dir.join("config.json"), &f.config).map_err(|e| fail(e.to_string()))?;
        let meta = Meta {
            id: f.id.clone(),
            names: Vec::new(),
            created: now(),
            layers: f.layers.len(),
            chain: Vec::new(),
            blobs: Vec::new(),
        };
        fs::write(dir.join("image.json"), serde_json::to_vec_pretty(&meta).unwrap()).map_err(|e| fail(e.to_string()))?;
        ready.push((f.id.clone(), dir));
    }
    // Then move them in, and name them, under the store lock.
    let _lock = store.lock()?;
    for (id, dir) in ready {
        let dst = store.images().join(&id);
        if let Err(e) = fs::rename(&dir, &dst) {
            // A concurrent import of the same image got there first.
            if !dst.join("image.json").exists() {
                return Err(fail(format!("move into {}: {e}", dst.display())));
            }
        }
    }
    let mut lines = Vec::new();
    for f in &found {
        set_names(store, &f.id, &f.names)?;
        let shown = f.names.first().cloned().unwrap_or_else(|| "<no name>".into());
        lines.push(format!("imported {shown} (sha256:{})", f.id));
    }
    Ok(lines)
}

/// Record a pulled image (its snapshots and blobs complete) under `names`.
pub fn commit_pulled(store: &Store, config: &[u8], id: &str, names: &[String], chain: Vec<String>, blobs: Vec<String>) -> Result<(), String> {
    let _lock = store.lock()?;
    let dir = store.images().join(id);
    if !dir.join("image.json").exists() {
        let scratch = store.scratch("image")?;
        let tmp = scratch.path.join("image");
        fs::create_dir(&tmp).map_err(|e| format!("create {}: {e}", tmp.display()))?;
        fs::write(tmp.join("config.json"), config).map_err(|e| format!("write {}/config.json: {e}", tmp.display()))?;
        let meta = Meta { id: id.to_string(), names: Vec::new(), created: now(), layers: chain.len(), chain, blobs };
        write_atomic(&tmp.join("image.json"), &serde_json::to_vec_pretty(&meta).unwrap())?;
        fs::rename(&tmp, &dir).map_err(|e| format!("move into {}: {e}", dir.display()))?;
    }
    set_names(store, id, names)
}

/// Give image `id` the names `add`, taking them off any other image.
fn set_names(store: &Store, id: &str, add: &[String]) -> Result<(), String> {
    let norm: Vec<String> = add.iter().map(|n| normalize(n)).collect();
    for mut img in list(store)? {
        let before = img.meta.names.len();
        if img.meta.id == id {
            for n in &norm {
                if !img.meta.names.contains(n) {
                    img.meta.names.push(n.clone());
                }
            }
        } else {
            img.meta.names.retain(|n| !norm.contains(n));
            if img.meta.names.len() == before {
                continue;
            }
        }
        write_atomic(&img.dir.join("image.json"), &serde_json::to_vec_pretty(&img.meta).unwrap())?;
    }
    Ok(())
}

/// `image rm REF`: a name of an image with other names is untagged;
/// otherwise the image goes, unless a container uses it.
pub fn remove(store: &Store, r: &str) -> Result<String, String> {
    let _lock = store.lock()?;
    let mut img = lookup(store, r)?;
    let n = normalize(r);
    if img.meta.names.len() > 1 && img.meta.names.contains(&n) {
        img.meta.names.retain(|x| *x != n);
        write_atomic(&img.dir.join("image.json"), &serde_json::to_vec_pretty(&img.meta).unwrap())?;
        return Ok(format!("untagged {n}"));
    }
    for c in store.container_names()? {
        if let Ok(ct) = store.load_container(&c) {
            if ct.image_id == img.meta.id {
                return Err(format!("image {r} is used by container {c}: remove the container first (berthctl rm -f {c})"));
            }
        }
    }
    let scratch = store.scratch("rm")?;
    let dst = scratch.path.join("image");
    fs::rename(&img.dir, &dst).map_err(|e| format!("remove {}: {e}", img.dir.display()))?;
    drop(scratch); // removes it
    let freed = content::gc(store, false)?;
    let mut line = format!("deleted sha256:{}", img.meta.id);
    if freed.blobs + freed.snapshots > 0 {
        line += &format!(
            " (freed {} blobs and {} snapshots no image uses: {})",
            freed.blobs,
            freed.snapshots,
            human(freed.bytes)
        );
    }
    Ok(line)
}

/// `image prune`: the blobs, snapshots and interrupted downloads no image uses.
pub fn prune(store: &Store) -> Result<String, String> {
    let _lock = store.lock()?;
    let f = content::gc(store, true)?;
    if f.busy {
        return Err("a pull is running in this store: prune after it".into());
    }
    Ok(format!("freed {} blobs and {} snapshots: {}", f.blobs, f.snapshots, human(f.bytes)))
}

/// Total size of the files under `dir` (not following symlinks).
pub fn du(dir: &Path) -> u64 {
    size_where(dir, |_| true)
}

/// Total size of the files under `dir` (not following symlinks) whose
/// metadata `count` accepts.
pub fn size_where(dir: &Path, count: impl Fn(&fs::Metadata) -> bool) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let Ok(md) = e.metadata() else { continue };
            if md.is_dir() {
                stack.push(e.path());
            } else if count(&md) {
                total += md.len();
            }
        }
    }
    total
}

pub fn human(bytes: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1000.0 && i + 1 < units.len() {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{bytes}B")
    } else {
        format!("{v:.1}{}", units[i])
    }
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn names_normalize() {
        assert_eq!(normalize("busybox"), "busybox:latest");
        assert_eq!(normalize("docker.io/library/busybox:1.36"), "busybox:1.36");
        assert_eq!(normalize("localhost:5000/x"), "localhost:5000/x:latest");
        assert_eq!(normalize("docker.io/library/berth-busybox:latest"), "berth-busybox:latest");
    }
}
