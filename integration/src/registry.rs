//! A real registry for berthctl's pull tests: Debian's `docker-registry`
//! (distribution 2.8) on a free 127.0.0.1 port, its storage, config and log
//! in a temp dir of its own, optionally with TLS (a CA and a server
//! certificate made here with openssl) and htpasswd auth (apache2-utils'
//! htpasswd); images are put into it with skopeo. Dropping it kills the
//! registry and removes the dir. Also a TCP proxy that breaks off a
//! transfer, and OCI archives of several images (an index of two platforms).

use std::fs;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::berthctl::{sha256, tar, LayerBlob, Member};

pub const USER: &str = "berth";
pub const PASSWORD: &str = "s3cret-pw";

pub struct Registry {
    pub dir: PathBuf,
    /// 127.0.0.1:PORT
    pub addr: String,
    pub tls: bool,
    pub auth: bool,
    child: Child,
}

fn sh(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Skip (with the reason printed) when the registry tools are missing.
pub fn available() -> bool {
    for t in ["docker-registry", "skopeo", "openssl", "htpasswd", "zstd"] {
        if Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {t}"))
            .stdout(Stdio::null())
            .status()
            .map(|s| !s.success())
            .unwrap_or(true)
        {
            crate::test_skip::skip(
                crate::test_skip::TOOLS,
                &format!("{t} is not installed (scripts/setup-deps.sh installs docker-registry, skopeo, apache2-utils)"),
            );
            return false;
        }
    }
    true
}

impl Registry {
    /// Start a registry for test `name` (auth: htpasswd, Basic).
    pub fn start(name: &str, tls: bool, auth: bool) -> Registry {
        let dir = registry_dir(name);
        if auth {
            let line = sh(Command::new("htpasswd").args(["-Bbn", USER, PASSWORD]));
            fs::write(dir.join("htpasswd"), line).unwrap();
        }
        let yaml = auth.then(|| {
            format!(
                "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                dir.join("htpasswd").display()
            )
        });
        Self::start_with(dir, tls, yaml)
    }

    /// Start a registry (plain HTTP) that wants Bearer tokens from `tokens`.
    pub fn start_token(name: &str, tokens: &TokenServer) -> Registry {
        let yaml = format!(
            "auth:\n  token:\n    realm: http://{}/token\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
            tokens.addr,
            tokens.dir.join("token.pem").display()
        );
        Self::start_with(registry_dir(name), false, Some(yaml))
    }

    fn start_with(dir: PathBuf, tls: bool, auth_yaml: Option<String>) -> Registry {
        if tls {
            make_certs(&dir);
        }
        let auth = auth_yaml.is_some();
        for _attempt in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let addr = format!("127.0.0.1:{port}");
            let mut cfg = format!(
                "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
                dir.join("data").display()
            );
            if tls {
                cfg += &format!(
                    "  tls:\n    certificate: {}\n    key: {}\n",
                    dir.join("server.pem").display(),
                    dir.join("server.key").display()
                );
            }
            cfg += auth_yaml.as_deref().unwrap_or("");
            fs::write(dir.join("config.yml"), cfg).unwrap();
            let log = fs::File::create(dir.join("registry.log")).unwrap();
            let child = Command::new("docker-registry")
                .arg("serve")
                .arg(dir.join("config.yml"))
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("start docker-registry");
            let mut reg = Registry {
                dir: dir.clone(),
                addr,
                tls,
                auth,
                child,
            };
            let t = Instant::now();
            while t.elapsed() < Duration::from_secs(10) {
                if reg.child.try_wait().unwrap().is_some() {
                    break; // the port was taken meanwhile: another one
                }
                if TcpStream::connect(&reg.addr).is_ok() {
                    return reg;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            eprintln!("registry on {} did not start: {}", reg.addr, reg.log());
        }
        panic!("docker-registry did not start (see above)");
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("registry.log")).unwrap_or_default()
    }

    /// Push an OCI archive to `dest` (REPO:TAG) with skopeo (`--all`: every
    /// image of an index).
    pub fn push(&self, archive: &Path, dest: &str, all: bool) {
        self.push_with(archive, dest, if all { &["--all"] } else { &[] });
    }

    /// As [`push`](Self::push), with more skopeo flags (`--format v2s2`:
    /// Docker's media types).
    pub fn push_with(&self, archive: &Path, dest: &str, extra: &[&str]) {
        let mut c = Command::new("skopeo");
        c.args(["copy", "--quiet", "--dest-tls-verify=false"])
            .args(extra);
        if self.auth {
            c.arg("--dest-creds").arg(format!("{USER}:{PASSWORD}"));
        }
        c.arg(format!("oci-archive:{}", archive.display()))
            .arg(format!("docker://{}/{dest}", self.addr));
        sh(&mut c);
    }

    /// The digest (sha256:...) tag `tag` of `repo` points at.
    pub fn tag_digest(&self, repo: &str, tag: &str) -> String {
        let p = self.dir.join(format!(
            "data/docker/registry/v2/repositories/{repo}/_manifests/tags/{tag}/current/link"
        ));
        fs::read_to_string(&p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .trim()
            .to_string()
    }

    /// The registry's file of blob `hex`.
    pub fn blob_file(&self, hex: &str) -> PathBuf {
        self.dir.join(format!(
            "data/docker/registry/v2/blobs/sha256/{}/{hex}/data",
            &hex[..2]
        ))
    }

    /// The bytes written for each GET of blob `hex`, in order (access log).
    pub fn blob_gets(&self, hex: &str) -> Vec<u64> {
        let uri = format!("/blobs/sha256:{hex}\"");
        self.log()
            .lines()
            .filter(|l| {
                l.contains("response completed")
                    && l.contains("http.request.method=GET")
                    && l.contains(&uri)
            })
            .map(|l| {
                l.split_whitespace()
                    .find_map(|f| f.strip_prefix("http.response.written="))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0)
            })
            .collect()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn registry_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(format!("/tmp/berth-registry-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("data")).unwrap();
    dir
}

pub const SERVICE: &str = "berth-test-registry";
pub const ISSUER: &str = "berth-test-issuer";

/// A token server for a registry's Bearer auth: GET /token with Basic
/// USER:PASSWORD gets a JWT (RS256, signed with a key made here with
/// openssl, its certificate in the x5c header and in the registry's
/// rootcertbundle) granting pull and push on `repo`; anything else 401.
pub struct TokenServer {
    pub dir: PathBuf,
    pub addr: String,
    /// Requests that got a token / were refused.
    pub granted: Arc<AtomicUsize>,
    pub refused: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl TokenServer {
    pub fn start(name: &str, repo: &str) -> TokenServer {
        let dir = PathBuf::from(format!("/tmp/berth-tokens-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let token = make_token(&dir, repo);
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let granted = Arc::new(AtomicUsize::new(0));
        let refused = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (g, r, s) = (granted.clone(), refused.clone(), stop.clone());
        let want = format!(
            "authorization: basic {}",
            base64(format!("{USER}:{PASSWORD}").as_bytes(), false)
        );
        std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                let Ok((mut c, _)) = l.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                c.set_nonblocking(false).unwrap();
                let head = read_head(&mut c);
                let ok = head
                    .lines()
                    .any(|h| h.trim().eq_ignore_ascii_case(&want) || h.trim() == want);
                let (status, body) = if ok {
                    g.fetch_add(1, Ordering::SeqCst);
                    (
                        "200 OK",
                        json!({"token": token, "expires_in": 3600}).to_string(),
                    )
                } else {
                    r.fetch_add(1, Ordering::SeqCst);
                    (
                        "401 Unauthorized",
                        r#"{"details":"wrong user name or password"}"#.to_string(),
                    )
                };
                let _ = write!(
                    c,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        TokenServer {
            dir,
            addr,
            granted,
            refused,
            stop,
        }
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A signing key and certificate in `dir`, and a JWT for `repo` signed with it.
fn make_token(dir: &Path, repo: &str) -> String {
    let p = |n: &str| dir.join(n).display().to_string();
    sh(Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=berth token signer",
        ])
        .args(["-keyout", &p("token.key"), "-out", &p("token.pem")]));
    let der =
        sh_bytes(Command::new("openssl").args(["x509", "-in", &p("token.pem"), "-outform", "DER"]));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = json!({"alg": "RS256", "typ": "JWT", "x5c": [base64(&der, false)]});
    let claims = json!({"iss": ISSUER, "sub": USER, "aud": SERVICE, "exp": now + 3600, "nbf": now - 60, "iat": now - 60,
        "jti": format!("berth-{now}"), "access": [{"type": "repository", "name": repo, "actions": ["pull", "push"]}]});
    let signing = format!(
        "{}.{}",
        base64(header.to_string().as_bytes(), true),
        base64(claims.to_string().as_bytes(), true)
    );
    fs::write(dir.join("signing"), &signing).unwrap();
    let sig = sh_bytes(Command::new("openssl").args([
        "dgst",
        "-sha256",
        "-sign",
        &p("token.key"),
        &p("signing"),
    ]));
    format!("{signing}.{}", base64(&sig, true))
}

fn read_head(c: &mut TcpStream) -> String {
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = Vec::new();
    let mut b = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match c.read(&mut b) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&b[..n]),
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

fn sh_bytes(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Base64: standard with padding, or URL-safe without (JWS).
pub fn base64(data: &[u8], url: bool) -> String {
    let t: &[u8; 64] = if url {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    } else {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    };
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(t[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else if !url {
                out.push('=');
            }
        }
    }
    out
}

/// A CA, and a server certificate for 127.0.0.1 signed by it.
fn make_certs(dir: &Path) {
    let p = |n: &str| dir.join(n).display().to_string();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    sh(Command::new("openssl")
        .args(["req", "-x509", "-days", "2", "-subj", "/CN=berth test CA"])
        .args(ec)
        .args(["-keyout", &p("ca.key"), "-out", &p("ca.pem")]));
    sh(Command::new("openssl")
        .args(["req", "-subj", "/CN=127.0.0.1"])
        .args(ec)
        .args(["-keyout", &p("server.key"), "-out", &p("server.csr")]));
    fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    sh(Command::new("openssl").args([
        "x509",
        "-req",
        "-days",
        "2",
        "-in",
        &p("server.csr"),
        "-CA",
        &p("ca.pem"),
        "-CAkey",
        &p("ca.key"),
        "-CAcreateserial",
        "-extfile",
        &p("ext.cnf"),
        "-out",
        &p("server.pem"),
    ]));
}

/// A TCP proxy to `target` that, while armed, breaks off the first
/// connection that relays more than `cut` bytes from the server.
pub struct CutProxy {
    pub addr: String,
    pub armed: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl CutProxy {
    /// Closes the connection at the cut.
    pub fn start(target: &str, cut: usize) -> CutProxy {
        Self::start_with(target, cut, false)
    }

    /// Stops relaying at the cut but keeps the connection open (a stalled
    /// transfer, for a client killed while it waits).
    pub fn stalling(target: &str, cut: usize) -> CutProxy {
        Self::start_with(target, cut, true)
    }

    fn start_with(target: &str, cut: usize, stall: bool) -> CutProxy {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let armed = Arc::new(AtomicBool::new(true));
        let stop = Arc::new(AtomicBool::new(false));
        l.set_nonblocking(true).unwrap();
        let (a, s, target) = (armed.clone(), stop.clone(), target.to_string());
        std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                match l.accept() {
                    Ok((c, _)) => {
                        c.set_nonblocking(false).unwrap();
                        let srv = TcpStream::connect(&target).unwrap();
                        let (c2, srv2) = (c.try_clone().unwrap(), srv.try_clone().unwrap());
                        std::thread::spawn(move || pipe(c2, srv2, None));
                        let held = stall.then(|| s.clone());
                        let a = a.clone();
                        std::thread::spawn(move || pipe(srv, c, Some((a, cut, held))));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        CutProxy { addr, armed, stop }
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Where [`pipe`] cuts: the armed flag, the byte count, and (stall) the
/// proxy's stop flag to wait for instead of closing.
type Cut = (Arc<AtomicBool>, usize, Option<Arc<AtomicBool>>);

/// Relay until EOF, or (armed) the cut: then close both sockets, or in
/// stall mode hold them open, relaying nothing, until the proxy stops.
fn pipe(mut from: TcpStream, mut to: TcpStream, cut: Option<Cut>) {
    let mut buf = [0u8; 16384];
    let mut sent = 0usize;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some((armed, limit, stall)) = &cut {
            if sent + n > *limit && armed.swap(false, Ordering::SeqCst) {
                let _ = to.write_all(&buf[..limit - sent]);
                while stall.as_ref().is_some_and(|s| !s.load(Ordering::SeqCst)) {
                    std::thread::sleep(Duration::from_millis(20));
                }
                break;
            }
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
        sent += n;
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

/// A busybox layer: /bin/busybox and a few links to it, the usual dirs.
pub fn busybox_layer() -> LayerBlob {
    let bb = fs::read("/bin/busybox").expect("/bin/busybox (busybox-static)");
    let mut m = vec![Member::Dir("bin/"), Member::File("bin/busybox", &bb)];
    for l in ["sh", "echo", "cat", "ls", "true"] {
        m.push(Member::Symlink(
            Box::leak(format!("bin/{l}").into_boxed_str()),
            "busybox",
        ));
    }
    for d in ["dev/", "proc/", "sys/", "tmp/", "etc/"] {
        m.push(Member::Dir(d));
    }
    LayerBlob::gz(tar(&m))
}

/// The media type of a layer blob, by its magic number.
fn layer_media_type(blob: &[u8]) -> &'static str {
    match blob {
        [0x1f, 0x8b, ..] => "application/vnd.oci.image.layer.v1.tar+gzip",
        [0x28, 0xb5, 0x2f, 0xfd, ..] => "application/vnd.oci.image.layer.v1.tar+zstd",
        _ => "application/vnd.oci.image.layer.v1.tar",
    }
}

/// A layer with one file, compressed with zstd(1).
pub fn zstd_layer(path: &str, content: &str) -> LayerBlob {
    let t = tar(&[Member::File(path, content.as_bytes())]);
    let mut c = Command::new("zstd")
        .args(["-q", "-c"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run zstd");
    c.stdin.take().unwrap().write_all(&t).unwrap();
    let out = c.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]),
        "zstd failed"
    );
    LayerBlob {
        blob: out.stdout,
        tar: t,
    }
}

/// A small layer with one file.
pub fn file_layer(path: &str, content: &str) -> LayerBlob {
    LayerBlob::gz(tar(&[Member::File(path, content.as_bytes())]))
}

/// An image: its manifest and blobs, for [`layout`].
pub struct Img {
    pub manifest: Vec<u8>,
    pub blobs: Vec<Vec<u8>>,
    pub arch: String,
}

impl Img {
    pub fn new(layers: &[LayerBlob], arch: &str) -> Img {
        let diff: Vec<String> = layers
            .iter()
            .map(|l| format!("sha256:{}", sha256(&l.tar)))
            .collect();
        Self::with_diff_ids(layers, arch, diff)
    }

    /// With the config's rootfs.diff_ids as given (wrong ones, say).
    pub fn with_diff_ids(layers: &[LayerBlob], arch: &str, diff: Vec<String>) -> Img {
        let config = serde_json::to_vec(&json!({
            "architecture": arch, "os": "linux",
            "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": diff}
        }))
        .unwrap();
        let desc = |media: &str, b: &[u8]| json!({"mediaType": media, "digest": format!("sha256:{}", sha256(b)), "size": b.len()});
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": desc("application/vnd.oci.image.config.v1+json", &config),
            "layers": layers.iter().map(|l| desc(layer_media_type(&l.blob), &l.blob)).collect::<Vec<Value>>()
        }))
        .unwrap();
        let mut blobs = vec![config];
        blobs.extend(layers.iter().map(|l| l.blob.clone()));
        Img {
            manifest,
            blobs,
            arch: arch.into(),
        }
    }

    pub fn layer_hex(&self, i: usize) -> String {
        sha256(&self.blobs[i + 1])
    }

    pub fn config_hex(&self) -> String {
        sha256(&self.blobs[0])
    }
}

/// An OCI layout archive at `out`: one image, or (`index`) an image index
/// of all of `imgs` with their platforms.
pub fn layout(imgs: &[Img], index: bool, out: &Path) {
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let mut descs = Vec::new();
    for i in imgs {
        for b in i.blobs.iter().chain([&i.manifest]) {
            files.push((format!("blobs/sha256/{}", sha256(b)), b.clone()));
        }
        descs.push(json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": format!("sha256:{}", sha256(&i.manifest)),
            "size": i.manifest.len(), "platform": {"os": "linux", "architecture": i.arch}}));
    }
    let top = if index {
        let idx = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": descs})).unwrap();
        let d = json!({"mediaType": "application/vnd.oci.image.index.v1+json", "digest": format!("sha256:{}", sha256(&idx)), "size": idx.len()});
        files.push((format!("blobs/sha256/{}", sha256(&idx)), idx));
        d
    } else {
        assert_eq!(imgs.len(), 1);
        descs[0].clone()
    };
    files.push((
        "index.json".into(),
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [top]})).unwrap(),
    ));
    files.push((
        "oci-layout".into(),
        br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
    ));
    let members: Vec<Member> = files.iter().map(|(n, d)| Member::File(n, d)).collect();
    fs::write(out, tar(&members)).unwrap();
}
