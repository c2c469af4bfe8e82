//! `berthctl pull REF` (and `run` of an image not yet here): references as
//! Docker reads them (`busybox` is `docker.io/library/busybox:latest`), the
//! OCI distribution API through oci-client, an index resolved to this
//! machine's linux platform, every blob checked by digest and size as it
//! streams into the content store, then each layer not yet unpacked applied
//! onto a snapshot with berthctl's own confined layer code
//! ([`crate::image::layer`]). The image exists only once all of it is
//! there: a failed pull leaves no image, no snapshot and nothing in tmp/;
//! complete blobs and the part of an interrupted one stay for the next
//! pull to resume (`image prune` drops them).

pub mod auth;
pub mod progress;
pub mod registry;

use std::str::FromStr;

use futures_util::StreamExt;
use oci_client::Reference;
use serde_json::Value;

use crate::image::{self, content};
use crate::store::Store;
use progress::Progress;
use registry::{Blob, Conn, Remote};

/// This machine's architecture as OCI names it.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "powerpc64" => "ppc64le",
        "x86" => "386",
        a => a,
    }
}

pub fn parse_ref(r: &str) -> Result<Reference, String> {
    Reference::from_str(r).map_err(|e| format!("invalid image reference {r:?}: {e}"))
}

/// An async runtime for one registry operation (oci-client is async;
/// berthctl is not): one thread, made per command.
pub fn block_on<T>(f: impl std::future::Future<Output = T>) -> Result<T, String> {
    // reqwest is built without a default TLS provider: ring, set once
    // (aws-lc-rs, the default, needs a C and assembly build of its own).
    #[allow(deprecated)]
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("async runtime: {e}"))?;
    Ok(rt.block_on(f))
}

/// Pull `r` into the store; returns the image id (sha256 hex of its config).
pub fn pull(store: &Store, r: &str, conn: &Conn, quiet: bool) -> Result<String, String> {
    let reference = parse_ref(r)?;
    let progress = Progress::new(quiet);
    let id = block_on(pull_async(store, r, &reference, conn, &progress))?
        .map_err(|e| format!("pull {r}: {e}"))?;
    Ok(id)
}

async fn pull_async(
    store: &Store,
    r: &str,
    reference: &Reference,
    conn: &Conn,
    progress: &Progress,
) -> Result<String, String> {
    content::init(store)?;
    let _pulling = content::pull_lock(store)?;
    let creds = auth::lookup(reference.registry())?;
    let remote = Remote::connect(reference, conn, creds).await?;
    progress.say(&format!("pulling {}", reference.whole()));
    let (top, top_hex) = remote.manifest(reference).await?;
    let mut manifests = vec![(top_hex.clone(), top.clone())];
    let v: Value = serde_json::from_slice(&top)
        .map_err(|e| format!("manifest sha256:{top_hex}: invalid JSON: {e}"))?;
    let manifest = if v["manifests"].is_array() {
        let (digest, size) = select_platform(&v)?;
        let by_digest = Reference::with_digest(
            reference.registry().into(),
            reference.repository().into(),
            digest.clone(),
        );
        let (m, m_hex) = remote.manifest(&by_digest).await?;
        if m.len() as u64 != size {
            return Err(format!(
                "size mismatch: the manifest {digest} has {} bytes, the index gives {size}",
                m.len()
            ));
        }
        manifests.push((m_hex, m.clone()));
        m
    } else {
        top
    };
    let m: Value =
        serde_json::from_slice(&manifest).map_err(|e| format!("manifest: invalid JSON: {e}"))?;
    if m["schemaVersion"].as_i64() == Some(1) {
        return Err("a schema 1 manifest (deprecated by Docker in 2019) is not supported".into());
    }
    // The config: small, and it says the platform and the layers' diff_ids.
    let cdesc = blob_desc(&m["config"], "manifest .config")?;
    let mut quiet_bar = Progress::Quiet.blob("config", cdesc.size);
    remote
        .blob(store, reference, &cdesc, &mut quiet_bar)
        .await
        .map_err(|e| format!("config sha256:{}: {e}", cdesc.hex))?;
    let config =
        std::fs::read(content::blob_path(store, &cdesc.hex)).map_err(|e| format!("config: {e}"))?;
    let cfg: Value = serde_json::from_slice(&config)
        .map_err(|e| format!("config sha256:{}: invalid JSON: {e}", cdesc.hex))?;
    check_platform(&cfg)?;
    let diff_ids = image::archive::diff_ids(&config, &format!("config sha256:{}", cdesc.hex))?;
    let layers = m["layers"].as_array().ok_or("manifest .layers: missing")?;
    if layers.len() != diff_ids.len() {
        return Err(format!(
            "the manifest has {} layers but the config's rootfs.diff_ids has {}",
            layers.len(),
            diff_ids.len()
        ));
    }
    let mut blobs = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        blobs.push(layer_desc(l, &format!("manifest .layers[{i}]"))?);
    }
    let chains = content::chain_ids(&diff_ids);
    // Layers already unpacked (shared with another image) are not fetched.
    let first_new = (0..chains.len())
        .rev()
        .find(|&i| content::snapshot_path(store, &chains[i]).is_dir())
        .map_or(0, |i| i + 1);
    for b in &blobs[..first_new] {
        progress.say(&format!("{}: already unpacked", short(&b.hex)));
    }
    fetch_layers(store, &remote, reference, &blobs[first_new..], progress).await?;
    let mut made = Vec::new();
    for i in first_new..blobs.len() {
        let path = content::blob_path(store, &blobs[i].hex);
        match content::make_snapshot(store, &chains, i, &path, &diff_ids[i]) {
            Ok(new) => made.extend(new.then(|| chains[i].clone())),
            Err(e) => {
                // The layers below go too: no snapshot of a failed pull stays.
                for c in made {
                    content::drop_snapshot(store, &c);
                }
                return Err(format!("layer {} (sha256:{}): {e}", i + 1, blobs[i].hex));
            }
        }
        progress.say(&format!("{}: unpacked", short(&blobs[i].hex)));
    }
    let mut used: Vec<String> = manifests.iter().map(|(h, _)| h.clone()).collect();
    for (h, data) in &manifests {
        content::put_blob(store, h, data)?;
    }
    used.push(cdesc.hex.clone());
    used.extend(blobs.iter().map(|b| b.hex.clone()));
    let id = cdesc.hex.clone();
    image::commit_pulled(store, &config, &id, &[image::normalize(r)], chains, used)?;
    Ok(id)
}

/// Download `blobs` (three at a time), each with its bar.
async fn fetch_layers(
    store: &Store,
    remote: &Remote,
    r: &Reference,
    blobs: &[Blob],
    progress: &Progress,
) -> Result<(), String> {
    let results: Vec<Result<(), String>> = futures_util::stream::iter(blobs.iter())
        .map(|b| async move {
            let mut bar = progress.blob(&short(&b.hex), b.size);
            match remote.blob(store, r, b, &mut bar).await {
                Ok(true) => {
                    bar.done("downloaded");
                    Ok(())
                }
                Ok(false) => {
                    bar.done("already there");
                    Ok(())
                }
                Err(e) => {
                    bar.failed();
                    Err(format!("layer sha256:{}: {e}", b.hex))
                }
            }
        })
        .buffer_unordered(3)
        .collect()
        .await;
    results.into_iter().collect()
}

fn short(hex: &str) -> String {
    format!("sha256:{}", &hex[..12.min(hex.len())])
}

fn blob_desc(d: &Value, at: &str) -> Result<Blob, String> {
    let digest = d["digest"]
        .as_str()
        .ok_or_else(|| format!("{at}.digest: missing"))?;
    let h = digest
        .strip_prefix("sha256:")
        .filter(|h| {
            h.len() == 64
                && h.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        })
        .ok_or_else(|| format!("{at}.digest: {digest:?} is not a sha256 digest"))?;
    let size = d["size"]
        .as_u64()
        .ok_or_else(|| format!("{at}.size: missing or negative"))?;
    Ok(Blob {
        hex: h.to_string(),
        size,
        media_type: d["mediaType"].as_str().unwrap_or("").to_string(),
    })
}

fn layer_desc(d: &Value, at: &str) -> Result<Blob, String> {
    let b = blob_desc(d, at)?;
    let m = b.media_type.as_str();
    if m.contains("nondistributable") || m.contains("foreign") || d["urls"].is_array() {
        return Err(format!(
            "{at}: {m}: foreign layers (urls) are not supported"
        ));
    }
    if !m.is_empty() && !m.contains("tar") {
        return Err(format!(
            "{at}.mediaType: {m}: not an image layer (tar, tar+gzip or tar+zstd)"
        ));
    }
    Ok(b)
}

/// The digest and size of this machine's linux image in an index.
fn select_platform(index: &Value) -> Result<(String, u64), String> {
    let arch = host_arch();
    let list = index["manifests"].as_array().cloned().unwrap_or_default();
    let found = list.iter().enumerate().find(|(_, d)| {
        let p = &d["platform"];
        p["os"] == "linux"
            && p["architecture"] == arch
            && (arch != "arm64" || p["variant"].is_null() || p["variant"] == "v8")
    });
    let Some((i, d)) = found else {
        let have: Vec<String> = list
            .iter()
            .filter(|d| d["platform"].is_object())
            .map(|d| {
                let p = &d["platform"];
                let v = p["variant"]
                    .as_str()
                    .map(|v| format!("/{v}"))
                    .unwrap_or_default();
                format!(
                    "{}/{}{v}",
                    p["os"].as_str().unwrap_or("?"),
                    p["architecture"].as_str().unwrap_or("?")
                )
            })
            .collect();
        return Err(format!(
            "no linux/{arch} image in the index: it has {}",
            if have.is_empty() {
                "none".into()
            } else {
                have.join(", ")
            }
        ));
    };
    let b = blob_desc(d, &format!("index .manifests[{i}]"))?;
    Ok((format!("sha256:{}", b.hex), b.size))
}

/// A single-platform image must be for this machine.
fn check_platform(cfg: &Value) -> Result<(), String> {
    let (os, arch) = (
        cfg["os"].as_str().unwrap_or("linux"),
        cfg["architecture"].as_str().unwrap_or(host_arch()),
    );
    if os != "linux" || arch != host_arch() {
        return Err(format!(
            "the image is for {os}/{arch}, and this machine runs linux/{}: no image for this platform",
            host_arch()
        ));
    }
    Ok(())
}

/// `berthctl login REGISTRY`: check the credentials, then save them.
pub fn login(registry: &str, user: &str, password: &str, conn: &Conn) -> Result<String, String> {
    let probe = parse_ref(&format!("{registry}/berthctl-login-probe:latest"))?;
    let creds = Some((user.to_string(), password.to_string()));
    block_on(async {
        // A token server that hands out a token for these credentials
        // accepts them (a wrong password fails here).
        let remote = Remote::connect(&probe, conn, creds).await?;
        if remote.bearer {
            return Ok(());
        }
        // Basic: a repository that need not exist; wrong credentials get
        // 401, right ones 404 (or the manifest).
        match remote.manifest(&probe).await {
            Ok(_) => Ok(()),
            Err(e) if e.contains("no such image") => Ok(()),
            Err(e) => Err(e),
        }
    })??;
    let p = auth::save(probe.registry(), user, password)?;
    Ok(format!(
        "login succeeded: credentials for {} saved in {}",
        probe.registry(),
        p.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn references_as_docker_reads_them() {
        let r = parse_ref("busybox").unwrap();
        assert_eq!(
            (r.registry(), r.repository(), r.tag()),
            ("docker.io", "library/busybox", Some("latest"))
        );
        let r = parse_ref(&format!("127.0.0.1:5000/x/y@sha256:{}", "a".repeat(64))).unwrap();
        assert_eq!((r.registry(), r.repository()), ("127.0.0.1:5000", "x/y"));
        assert!(parse_ref("Busy Box").is_err());
    }

    #[test]
    fn index_selects_this_platform_or_says_what_it_has() {
        let d = |arch: &str, c: char| json!({"digest": format!("sha256:{}", c.to_string().repeat(64)), "size": 5, "platform": {"os": "linux", "architecture": arch}});
        let both = json!({"manifests": [d("s390x", 'a'), d(host_arch(), 'b')]});
        assert_eq!(
            select_platform(&both).unwrap().0,
            format!("sha256:{}", "b".repeat(64))
        );
        let other = json!({"manifests": [d("s390x", 'a')]});
        let e = select_platform(&other).unwrap_err();
        assert!(e.contains("no linux/") && e.contains("linux/s390x"), "{e}");
    }
}
