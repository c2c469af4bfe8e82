//! Reading an image archive: an OCI image layout (`oci-layout`,
//! `index.json`, `blobs/sha256/...`) or a docker-archive (`manifest.json`,
//! as `docker save` writes), plain or gzip-compressed. Members are copied
//! into a scratch directory first (regular files only; symlinks between
//! members are resolved by name, never on disk), then the manifests are
//! followed with every digest and size checked.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest, Sha256};
use tar::EntryType;

use super::fsat::clean_member;
use super::layer::hex;

/// The archive's members, as files in a scratch directory.
pub struct Members {
    files: HashMap<String, PathBuf>,
    links: HashMap<String, String>,
}

/// One image to unpack: its config (verified) and its layers in order.
pub struct Found {
    pub config: Vec<u8>,
    /// sha256 hex of the config: the image id.
    pub id: String,
    pub layers: Vec<Layer>,
    pub names: Vec<String>,
}

pub struct Layer {
    pub path: PathBuf,
    /// The uncompressed stream's sha256 (hex), from the config's diff_ids.
    pub diff_id: String,
    /// What the layer was called in the archive (for errors).
    pub what: String,
}

impl Members {
    /// Copy every member of `archive` into `scratch`.
    pub fn read(archive: &Path, scratch: &Path) -> Result<Members, String> {
        let f = File::open(archive).map_err(|e| format!("open: {e}"))?;
        let mut r = BufReader::with_capacity(1 << 16, f);
        let gz = {
            use std::io::BufRead;
            let b = r.fill_buf().map_err(|e| format!("read: {e}"))?;
            b.len() >= 2 && b[0] == 0x1f && b[1] == 0x8b
        };
        let reader: Box<dyn Read> = if gz {
            Box::new(flate2::read::MultiGzDecoder::new(r))
        } else {
            Box::new(r)
        };
        let mut ar = tar::Archive::new(reader);
        let mut m = Members { files: HashMap::new(), links: HashMap::new() };
        let bad = |e: io::Error| format!("not a tar archive, or corrupt or truncated: {e}");
        for (n, entry) in ar.entries().map_err(bad)?.enumerate() {
            let mut entry = entry.map_err(bad)?;
            let raw = entry.path().map_err(bad)?.into_owned();
            let Some(name) = clean_member(&raw)? else { continue };
            let name = name.to_string_lossy().into_owned();
            match entry.header().entry_type() {
                EntryType::Regular | EntryType::Continuous => {
                    let dst = scratch.join(format!("m{n}"));
                    let mut out = File::create(&dst).map_err(|e| format!("scratch file {}: {e}", dst.display()))?;
                    io::copy(&mut entry, &mut out).map_err(bad)?;
                    m.files.insert(name, dst);
                }
                EntryType::Symlink | EntryType::Link => {
                    let target = entry.link_name().map_err(bad)?.ok_or("link without a target")?;
                    let base = if entry.header().entry_type() == EntryType::Symlink {
                        Path::new(&name).parent().unwrap_or(Path::new("")).join(target)
                    } else {
                        target.into_owned()
                    };
                    let t = normalize(&base).ok_or_else(|| format!("member {name:?} links out of the archive"))?;
                    m.links.insert(name, t);
                }
                EntryType::Directory | EntryType::XGlobalHeader | EntryType::XHeader => {}
                other => return Err(format!("member {name:?}: unexpected type {other:?} in an image archive")),
            }
        }
        if m.files.is_empty() {
            return Err("not an image archive: it has no files".into());
        }
        Ok(m)
    }

    /// The file of member `name` (following links between members).
    pub fn get(&self, name: &str) -> Option<&Path> {
        let mut n = name.trim_start_matches("./").to_string();
        for _ in 0..16 {
            if let Some(p) = self.files.get(&n) {
                return Some(p);
            }
            n = self.links.get(&n)?.clone();
        }
        None
    }

    fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    fn json(&self, name: &str) -> Result<(Vec<u8>, Value), String> {
        let p = self.get(name).ok_or_else(|| format!("{name} is missing"))?;
        let data = std::fs::read(p).map_err(|e| format!("{name}: {e}"))?;
        let v = serde_json::from_slice(&data).map_err(|e| format!("{name}: invalid JSON: {e}"))?;
        Ok((data, v))
    }

    /// Find the images: OCI layout first (docker 25+ writes both), else
    /// docker-archive.
    pub fn images(&self) -> Result<Vec<Found>, String> {
        if self.has("index.json") {
            if !self.has("oci-layout") {
                return Err("index.json without oci-layout: not an OCI image layout".into());
            }
            return self.oci();
        }
        if self.has("manifest.json") {
            return self.docker();
        }
        Err("not an image archive: no index.json (OCI image layout) nor manifest.json (docker-archive)".into())
    }

    /// A blob by descriptor, its digest and size checked.
    fn blob(&self, desc: &Value, at: &str) -> Result<(PathBuf, String), String> {
        let digest = desc["digest"].as_str().ok_or_else(|| format!("{at}.digest: missing"))?;
        let want = digest
            .strip_prefix("sha256:")
            .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| format!("{at}.digest: {digest:?} is not a sha256 digest"))?;
        let name = format!("blobs/sha256/{want}");
        let path = self.get(&name).ok_or_else(|| format!("{at}: blob {digest} is missing"))?;
        let (got, size) = sha256_file(path)?;
        if got != want {
            return Err(format!("{at}: digest mismatch: blob {name} has sha256:{got}, expected {digest}"));
        }
        if let Some(want_size) = desc["size"].as_u64() {
            if want_size != size {
                return Err(format!("{at}: size mismatch: blob {name} has {size} bytes, expected {want_size}"));
            }
        }
        Ok((path.to_path_buf(), want.to_string()))
    }

    fn oci(&self) -> Result<Vec<Found>, String> {
        let (_, index) = self.json("index.json")?;
        let manifests = index["manifests"].as_array().ok_or("index.json: .manifests: missing")?;
        let mut out = Vec::new();
        for (i, desc) in manifests.iter().enumerate() {
            let at = format!("index.json: .manifests[{i}]");
            let ann = &desc["annotations"];
            let name = ann["io.containerd.image.name"]
                .as_str()
                .or_else(|| ann["org.opencontainers.image.ref.name"].as_str().filter(|n| n.contains(['/', ':'])));
            out.push(self.oci_manifest(desc, &at, name, 0)?);
        }
        if out.is_empty() {
            return Err("index.json: .manifests: no image".into());
        }
        Ok(out)
    }

    fn oci_manifest(&self, desc: &Value, at: &str, name: Option<&str>, depth: u32) -> Result<Found, String> {
        let (path, _) = self.blob(desc, at)?;
        let data = std::fs::read(&path).map_err(|e| format!("{at}: {e}"))?;
        let m: Value = serde_json::from_slice(&data).map_err(|e| format!("{at}: manifest: invalid JSON: {e}"))?;
        let media = m["mediaType"].as_str().or(desc["mediaType"].as_str()).unwrap_or("");
        if media.contains("index") || media.contains("manifest.list") || m["manifests"].is_array() {
            // A multi-platform index: this machine's platform.
            if depth > 2 {
                return Err(format!("{at}: indexes nested too deep"));
            }
            let list = m["manifests"].as_array().ok_or_else(|| format!("{at}: .manifests: missing"))?;
            let arch = std::env::consts::ARCH.replace("x86_64", "amd64").replace("aarch64", "arm64");
            let (j, d) = list
                .iter()
                .enumerate()
                .find(|(_, d)| d["platform"]["os"] == "linux" && d["platform"]["architecture"] == arch.as_str())
                .ok_or_else(|| format!("{at}: no linux/{arch} image in the index"))?;
            return self.oci_manifest(d, &format!("{at}.manifests[{j}]"), name, depth + 1);
        }
        let (cpath, id) = self.blob(&m["config"], &format!("{at}: manifest .config"))?;
        let config = std::fs::read(&cpath).map_err(|e| format!("{at}: config: {e}"))?;
        let diff_ids = diff_ids(&config, &format!("config sha256:{id}"))?;
        let layers = m["layers"].as_array().ok_or_else(|| format!("{at}: manifest .layers: missing"))?;
        if layers.len() != diff_ids.len() {
            return Err(format!(
                "{at}: the manifest has {} layers but the config's rootfs.diff_ids has {}",
                layers.len(),
                diff_ids.len()
            ));
        }
        let mut out = Vec::new();
        for (j, l) in layers.iter().enumerate() {
            let lat = format!("{at}: manifest .layers[{j}]");
            let media = l["mediaType"].as_str().unwrap_or("");
            if media.contains("nondistributable") || l["urls"].is_array() {
                return Err(format!("{lat}: foreign layers (urls) are not supported"));
            }
            let (p, _) = self.blob(l, &lat)?;
            out.push(Layer { path: p, diff_id: diff_ids[j].clone(), what: lat });
        }
        Ok(Found { config, id, layers: out, names: name.map(|n| vec![n.to_string()]).unwrap_or_default() })
    }

    fn docker(&self) -> Result<Vec<Found>, String> {
        let (_, manifest) = self.json("manifest.json")?;
        let list = manifest.as_array().ok_or("manifest.json: not a list")?;
        let mut out = Vec::new();
        for (i, img) in list.iter().enumerate() {
            let at = format!("manifest.json: [{i}]");
            let cname = img["Config"].as_str().ok_or_else(|| format!("{at}.Config: missing"))?;
            let cpath = self.get(cname).ok_or_else(|| format!("{at}.Config: {cname} is missing"))?;
            let (id, _) = sha256_file(cpath)?;
            // The config's name carries its digest (<hex>.json, or a blob path).
            let stem = Path::new(cname).file_name().unwrap_or_default().to_string_lossy();
            let named = stem.trim_end_matches(".json");
            if named.len() == 64 && named.bytes().all(|b| b.is_ascii_hexdigit()) && named != id {
                return Err(format!("{at}.Config: digest mismatch: {cname} has sha256:{id}"));
            }
            let config = std::fs::read(cpath).map_err(|e| format!("{cname}: {e}"))?;
            let diff_ids = diff_ids(&config, cname)?;
            let layers = img["Layers"].as_array().ok_or_else(|| format!("{at}.Layers: missing"))?;
            if layers.len() != diff_ids.len() {
                return Err(format!(
                    "{at}: {} layers but {cname}'s rootfs.diff_ids has {}",
                    layers.len(),
                    diff_ids.len()
                ));
            }
            let mut ls = Vec::new();
            for (j, l) in layers.iter().enumerate() {
                let lat = format!("{at}.Layers[{j}]");
                let lname = l.as_str().ok_or_else(|| format!("{lat}: not a string"))?;
                let p = self.get(lname).ok_or_else(|| format!("{lat}: {lname} is missing"))?;
                // A blob path names its digest: check it too.
                if let Some(h) = lname.strip_prefix("blobs/sha256/") {
                    let (got, _) = sha256_file(p)?;
                    if got != h {
                        return Err(format!("{lat}: digest mismatch: {lname} has sha256:{got}"));
                    }
                }
                ls.push(Layer { path: p.to_path_buf(), diff_id: diff_ids[j].clone(), what: format!("{lat} ({lname})") });
            }
            let names = img["RepoTags"]
                .as_array()
                .map(|t| t.iter().filter_map(|n| n.as_str().map(String::from)).collect())
                .unwrap_or_default();
            out.push(Found { config, id, layers: ls, names });
        }
        if out.is_empty() {
            return Err("manifest.json: no image".into());
        }
        Ok(out)
    }
}

/// The config's rootfs.diff_ids as sha256 hex strings.
pub fn diff_ids(config: &[u8], what: &str) -> Result<Vec<String>, String> {
    let v: Value = serde_json::from_slice(config).map_err(|e| format!("{what}: invalid JSON: {e}"))?;
    let ids = v["rootfs"]["diff_ids"].as_array().ok_or_else(|| format!("{what}: .rootfs.diff_ids: missing"))?;
    ids.iter()
        .enumerate()
        .map(|(i, d)| {
            d.as_str()
                .and_then(|d| d.strip_prefix("sha256:"))
                .filter(|h| h.len() == 64)
                .map(String::from)
                .ok_or_else(|| format!("{what}: .rootfs.diff_ids[{i}]: not a sha256 digest"))
        })
        .collect()
}

/// sha256 (hex) and size of a file.
pub fn sha256_file(path: &Path) -> Result<(String, u64), String> {
    let mut f = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(|e| format!("{}: {e}", path.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        size += n as u64;
    }
    Ok((hex(h.finalize()), size))
}

/// A relative path with `..` resolved lexically; None if it climbs out.
fn normalize(p: &Path) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    for c in p.components() {
        match c {
            std::path::Component::Normal(s) => parts.push(s.to_string_lossy().into_owned()),
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                parts.pop()?;
            }
            _ => return None,
        }
    }
    Some(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_stays_inside() {
        assert_eq!(normalize(Path::new("a/../b/layer.tar")).as_deref(), Some("b/layer.tar"));
        assert_eq!(normalize(Path::new("a/../../x")), None);
        assert_eq!(normalize(Path::new("/etc/passwd")), None);
    }
}
