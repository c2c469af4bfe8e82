//! One registry, through oci-client: the connection (HTTPS with the system
//! CAs and --ca; plain HTTP only for a loopback or --insecure-registry
//! registry that does not speak TLS), authentication (the Bearer token
//! dance of the WWW-Authenticate challenge, or Basic) and fetching
//! manifests and blobs, each checked against its digest and size while it
//! streams into the content store.

use std::error::Error as _;
use std::fs::{self, OpenOptions};
use std::io::{Read, Seek, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::StreamExt;
use oci_client::client::{
    BlobResponse, Certificate, CertificateEncoding, ClientConfig, ClientProtocol,
};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};
use sha2::{Digest, Sha256};

use super::progress::Bar;
use crate::image::{content, layer::hex};
use crate::store::Store;

/// What a manifest may be: an index or a single-platform manifest, OCI or Docker.
const ACCEPT: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// Connection options shared by pull, run and login.
#[derive(Clone, Default)]
pub struct Conn {
    /// A PEM file of CA certificates to trust besides the system's.
    pub ca: Option<PathBuf>,
    /// Registries (HOST[:PORT]) that may be reached over plain HTTP.
    pub insecure: Vec<String>,
}

/// A blob to fetch: sha256 hex, size, media type.
pub struct Blob {
    pub hex: String,
    pub size: u64,
    pub media_type: String,
}

pub struct Remote {
    client: Client,
    auth: RegistryAuth,
    /// As written in the reference (docker.io for Docker Hub).
    pub registry: String,
    /// The registry's token server gave a Bearer token (for these
    /// credentials, if any): they are right.
    pub bearer: bool,
}

/// Loopback registries may use plain HTTP, as Docker allows.
fn is_loopback(registry: &str) -> bool {
    let host = match registry.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => registry,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// An error with its causes (reqwest's own message hides them).
pub fn causes(e: &OciDistributionError) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        let t = c.to_string();
        if !s.contains(&t) {
            s = format!("{s}: {t}");
        }
        src = c.source();
    }
    s
}

fn client(conn: &Conn, protocol: ClientProtocol) -> Result<Client, String> {
    let mut extra = Vec::new();
    if let Some(ca) = &conn.ca {
        let data = fs::read(ca).map_err(|e| format!("--ca {}: {e}", ca.display()))?;
        if !String::from_utf8_lossy(&data).contains("-----BEGIN CERTIFICATE-----") {
            return Err(format!("--ca {}: not a PEM certificate file", ca.display()));
        }
        extra.push(Certificate {
            encoding: CertificateEncoding::Pem,
            data,
        });
    }
    let cfg = ClientConfig {
        protocol,
        extra_root_certificates: extra,
        platform_resolver: None,
        connect_timeout: Some(Duration::from_secs(30)),
        read_timeout: Some(Duration::from_secs(60)),
        max_concurrent_download: 3,
        ..Default::default()
    };
    Client::try_from(cfg).map_err(|e| format!("registry client: {}", causes(&e)))
}

impl Remote {
    /// Reach `r`'s registry and authenticate (anonymously without `creds`).
    pub async fn connect(
        r: &Reference,
        conn: &Conn,
        creds: Option<(String, String)>,
    ) -> Result<Remote, String> {
        let registry = r.registry().to_string();
        let auth = match creds {
            Some((u, p)) => RegistryAuth::Basic(u, p),
            None => RegistryAuth::Anonymous,
        };
        let https = client(conn, ClientProtocol::Https)?;
        let first = match https.auth(r, &auth, RegistryOperation::Pull).await {
            Ok(token) => {
                return Ok(Remote {
                    client: https,
                    auth,
                    registry,
                    bearer: token.is_some(),
                })
            }
            Err(e) => e,
        };
        let plain_ok = is_loopback(r.resolve_registry())
            || conn
                .insecure
                .iter()
                .any(|h| *h == registry || h == r.resolve_registry());
        let text = causes(&first);
        let tls_refused = text.to_lowercase().contains("certificate");
        if !plain_ok || tls_refused || !matches!(first, OciDistributionError::RequestError(_)) {
            let mut msg = explain(&registry, &first, &auth);
            if tls_refused && conn.ca.is_none() {
                msg += " (a private CA? give it with --ca FILE)";
            }
            return Err(msg);
        }
        // Not TLS: a loopback or listed registry may speak plain HTTP.
        let http = client(conn, ClientProtocol::Http)?;
        match http.auth(r, &auth, RegistryOperation::Pull).await {
            Ok(token) => Ok(Remote {
                client: http,
                auth,
                registry,
                bearer: token.is_some(),
            }),
            // It answered over HTTP: that is its error.
            Err(e) if !matches!(e, OciDistributionError::RequestError(_)) => {
                Err(explain(&registry, &e, &auth))
            }
            Err(e) => Err(format!(
                "{registry}: over HTTPS: {text}; over HTTP: {}",
                causes(&e)
            )),
        }
    }

    /// The manifest (or index) `r` names, and its sha256 (hex), checked
    /// against the digest of `r` if it has one.
    pub async fn manifest(&self, r: &Reference) -> Result<(Vec<u8>, String), String> {
        let (bytes, _) = self
            .client
            .pull_manifest_raw(r, &self.auth, ACCEPT)
            .await
            .map_err(|e| explain(&self.registry, &e, &self.auth))?;
        let got = hex(Sha256::digest(&bytes));
        if let Some(d) = r.digest() {
            if d != format!("sha256:{got}") {
                return Err(format!(
                    "digest mismatch: the registry sent a manifest of sha256:{got} for {d}"
                ));
            }
        }
        Ok((bytes.to_vec(), got))
    }

    /// Fetch blob `b` of repository `r` into the content store, resuming an
    /// interrupted download; returns false if it was there already.
    pub async fn blob(
        &self,
        store: &Store,
        r: &Reference,
        b: &Blob,
        bar: &mut Bar,
    ) -> Result<bool, String> {
        if content::has_blob(store, &b.hex, b.size) {
            return Ok(false);
        }
        let ingest = content::ingest_path(store, &b.hex);
        // One writer per blob: a concurrent pull of the same blob waits here.
        let mut f = content::flock(&ingest, true, true)?.expect("a blocking flock");
        if content::has_blob(store, &b.hex, b.size) {
            let _ = fs::remove_file(&ingest);
            return Ok(false);
        }
        let io = |e: std::io::Error| format!("{}: {e}", ingest.display());
        let (mut have, mut h) = kept(&mut f, &ingest, b.size)?;
        if have > 0 {
            bar.resume(have);
        }
        let desc = OciDescriptor {
            media_type: b.media_type.clone(),
            digest: format!("sha256:{}", b.hex),
            size: b.size as i64,
            ..Default::default()
        };
        let resp = match self
            .client
            .pull_blob_stream_partial(r, &desc, have, None)
            .await
        {
            Ok(resp) => resp,
            Err(e) => {
                if have == 0 {
                    drop(f);
                    let _ = fs::remove_file(&ingest);
                }
                return Err(explain(&self.registry, &e, &self.auth));
            }
        };
        let mut stream = match resp {
            BlobResponse::Full(s) => {
                // No range support (or nothing kept): from the start.
                if have > 0 {
                    bar.restart();
                }
                f.set_len(0).map_err(io)?;
                have = 0;
                h = Sha256::new();
                s
            }
            BlobResponse::Partial(s) => s,
        };
        f.seek(std::io::SeekFrom::Start(have)).map_err(io)?;
        let mut broken = None;
        while let Some(chunk) = stream.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    broken = Some(e.to_string());
                    break;
                }
            };
            if have + chunk.len() as u64 > b.size {
                drop(f);
                let _ = fs::remove_file(&ingest);
                return Err(format!(
                    "the registry sent more than the {} bytes the manifest gives",
                    b.size
                ));
            }
            f.write_all(&chunk).map_err(io)?;
            h.update(&chunk);
            have += chunk.len() as u64;
            bar.inc(chunk.len() as u64);
        }
        if have < b.size {
            f.sync_all().map_err(io)?;
            let why = broken.map(|e| format!(" ({e})")).unwrap_or_default();
            return Err(format!(
                "the transfer broke off after {have} of {} bytes{why}: the {have} bytes are kept in {}, and the next pull resumes from there",
                b.size,
                ingest.display()
            ));
        }
        settle(store, b, f, &ingest, h)?;
        Ok(true)
    }
}

/// All of blob `b` is in `ingest` (open as `f`) and hashed in `h`: into
/// the store if the digest matches, else away.
fn settle(store: &Store, b: &Blob, f: fs::File, ingest: &Path, h: Sha256) -> Result<(), String> {
    let got = hex(h.finalize());
    if got != b.hex {
        drop(f);
        let _ = fs::remove_file(ingest);
        return Err(format!(
            "digest mismatch: the registry sent {} bytes of sha256:{got}, not sha256:{}",
            b.size, b.hex
        ));
    }
    f.sync_all()
        .map_err(|e| format!("{}: {e}", ingest.display()))?;
    let dst = content::blob_path(store, &b.hex);
    fs::rename(ingest, &dst)
        .map_err(|e| format!("move {} to {}: {e}", ingest.display(), dst.display()))
}

/// What an interrupted pull left of a blob in `ingest` (open as `f`):
/// its length and hash, to go on from there (nothing if it is too long).
fn kept(f: &mut fs::File, ingest: &Path, size: u64) -> Result<(u64, Sha256), String> {
    let io = |e: std::io::Error| format!("{}: {e}", ingest.display());
    let mut h = Sha256::new();
    let have = f.metadata().map_err(io)?.len();
    if have > size {
        f.set_len(0).map_err(io)?;
        return Ok((0, h));
    }
    let rd = OpenOptions::new().read(true).open(ingest).map_err(io)?;
    let n = std::io::copy(&mut rd.take(have), &mut h).map_err(io)?;
    Ok((n, h))
}

/// A registry error in words: not found, authentication, or the causes.
pub fn explain(registry: &str, e: &OciDistributionError, auth: &RegistryAuth) -> String {
    use OciDistributionError as E;
    let codes: Vec<&OciErrorCode> = match e {
        E::RegistryError { envelope, .. } => envelope.errors.iter().map(|x| &x.code).collect(),
        _ => Vec::new(),
    };
    let denied = matches!(e, E::UnauthorizedError { .. } | E::AuthenticationFailure(_))
        || matches!(
            e,
            E::ServerError {
                code: 401 | 403,
                ..
            }
        )
        || codes
            .iter()
            .any(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied));
    let missing = matches!(e, E::ImageManifestNotFoundError(_))
        || matches!(e, E::ServerError { code: 404, .. })
        || codes.iter().any(|c| {
            matches!(
                c,
                OciErrorCode::ManifestUnknown | OciErrorCode::NameUnknown | OciErrorCode::NotFound
            )
        });
    if denied {
        return match auth {
            RegistryAuth::Anonymous => format!(
                "{registry}: authentication required ({}): log in first with `berthctl login {registry}`",
                causes(e)
            ),
            _ => format!(
                "{registry}: authentication failed: wrong user name or password (from {}; log in again with `berthctl login {registry}`)",
                super::auth::config_path().display()
            ),
        };
    }
    if missing {
        return format!("no such image in {registry} ({})", causes(e));
    }
    format!("{registry}: {}", causes(e))
}

#[cfg(test)]
mod tests {
    use super::is_loopback;

    #[test]
    fn loopback_registries() {
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("127.3.4.5"));
        assert!(is_loopback("localhost:5000"));
        assert!(is_loopback("[::1]:5000"));
        assert!(!is_loopback("10.0.0.1:5000"));
        assert!(!is_loopback("registry.example:5000"));
    }
}
