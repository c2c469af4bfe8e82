//! berthctl tests: a store per test (`Ctl`, its own --root under a temp
//! dir, cleaned up on drop: containers removed, shims killed, overlays
//! unmounted, cgroups and berth state removed) and image archives made
//! here (tar members written by hand, so bad ones can be made too).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::harness::{find_bin, run_cmd, Output, Spawned};
use crate::host;

pub fn berthctl_bin() -> PathBuf {
    find_bin("berthctl", "BERTHCTL_BIN")
}

/// The same namespace berthctl derives from its --root.
pub fn namespace(root: &Path) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in root.as_os_str().as_encoded_bytes() {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("berthctl-{:012x}", h & 0xffff_ffff_ffff)
}

pub struct Ctl {
    pub dir: PathBuf,
    pub root: PathBuf,
    pub ns: String,
    seq: AtomicU32,
}

impl Ctl {
    pub fn new(test: &str) -> Ctl {
        let dir = PathBuf::from(format!("/tmp/berthctl-t-{test}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let root = dir.join("root");
        Ctl { ns: namespace(&root), dir, root, seq: AtomicU32::new(0) }
    }

    fn argv(&self, args: &[&str]) -> Vec<String> {
        let mut a = vec!["--root".to_string(), self.root.display().to_string()];
        a.extend(args.iter().map(|s| s.to_string()));
        a
    }

    fn io_base(&self) -> PathBuf {
        self.dir.join(format!("cmd{}", self.seq.fetch_add(1, Ordering::SeqCst)))
    }

    /// `berthctl --root ROOT ARGS` to completion (60 s at most).
    #[track_caller]
    pub fn run(&self, args: &[&str]) -> Output {
        run_cmd(&berthctl_bin(), &self.argv(args), &self.io_base(), None, Duration::from_secs(60))
    }

    /// With stdin from a file.
    #[track_caller]
    pub fn run_stdin(&self, args: &[&str], stdin: &Path) -> Output {
        run_cmd(&berthctl_bin(), &self.argv(args), &self.io_base(), Some(stdin), Duration::from_secs(60))
    }

    /// With extra environment variables (DOCKER_CONFIG for the pull tests).
    #[track_caller]
    pub fn run_env(&self, args: &[&str], env: &[(String, String)]) -> Output {
        let opts = crate::harness::SpawnOpts { env, ..Default::default() };
        Spawned::start_with(&berthctl_bin(), &self.argv(args), &self.io_base(), &opts).wait(Duration::from_secs(60))
    }

    pub fn spawn(&self, args: &[&str]) -> Spawned {
        Spawned::start(&berthctl_bin(), &self.argv(args), &self.io_base(), None)
    }

    /// Import the busybox image made by scripts/mkimage.sh (as busybox:latest).
    pub fn import_busybox(&self) {
        let out = self.dir.join("busybox.tar");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/mkimage.sh");
        let st = std::process::Command::new("sh")
            .arg(&script)
            .arg(&out)
            .arg("busybox:latest")
            .output()
            .expect("run scripts/mkimage.sh");
        assert!(st.status.success(), "mkimage.sh: {}", String::from_utf8_lossy(&st.stderr));
        let o = self.run(&["image", "import", out.to_str().unwrap()]).ok();
        assert!(o.stdout.contains("imported busybox:latest (sha256:"), "{o}");
    }

    pub fn ps(&self) -> Vec<Value> {
        let o = self.run(&["ps", "--json"]).ok();
        o.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    pub fn status(&self, name: &str) -> String {
        self.ps()
            .into_iter()
            .find(|c| c["name"] == name)
            .map(|c| c["status"].as_str().unwrap().to_string())
            .unwrap_or_else(|| "absent".into())
    }

    /// The shims of this store still running.
    pub fn shims(&self) -> Vec<i32> {
        host::pids_with_marker(&self.ns)
            .into_iter()
            .filter(|p| fs::read(format!("/proc/{p}/cmdline")).is_ok_and(|c| c.windows(24).any(|w| w == b"containerd-shim-berth-v2")))
            .collect()
    }

    /// Leftovers of this store's containers on the host.
    pub fn leftovers(&self) -> Vec<String> {
        let mut v = Vec::new();
        // A shim exits a moment after Shutdown answered.
        crate::harness::wait_until(Duration::from_secs(5), || self.shims().is_empty());
        for p in self.shims() {
            v.push(format!("shim process {p}"));
        }
        for m in host::host_mounts() {
            if m.mount_point.starts_with(&self.dir.display().to_string()) {
                v.push(format!("mount {}", m.mount_point));
            }
        }
        for h in host::cgroup_hierarchies() {
            if let Ok(rd) = fs::read_dir(h.join("berth")) {
                for e in rd.flatten() {
                    if e.file_name().to_string_lossy().starts_with(&self.ns) {
                        v.push(format!("cgroup {}", e.path().display()));
                    }
                }
            }
        }
        let state = Path::new("/run/containerd-berth").join(&self.ns);
        if let Ok(rd) = fs::read_dir(&state) {
            for e in rd.flatten() {
                if !e.file_name().to_string_lossy().starts_with('@') {
                    v.push(format!("berth state {}", e.path().display()));
                }
            }
        }
        if let Ok(rd) = fs::read_dir(self.root.join("containers")) {
            for e in rd.flatten() {
                v.push(format!("container dir {}", e.path().display()));
            }
        }
        if let Ok(rd) = fs::read_dir(self.root.join("tmp")) {
            for e in rd.flatten() {
                v.push(format!("tmp entry {}", e.path().display()));
            }
        }
        v
    }

    #[track_caller]
    pub fn assert_clean(&self) {
        let l = self.leftovers();
        assert!(l.is_empty(), "leftovers: {l:#?}");
    }
}

impl Drop for Ctl {
    fn drop(&mut self) {
        if let Ok(rd) = fs::read_dir(self.root.join("containers")) {
            for e in rd.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                let _ = run_cmd(&berthctl_bin(), &self.argv(&["rm", "-f", &n]), &self.io_base(), None, Duration::from_secs(60));
            }
        }
        for p in self.shims() {
            host::kill9(p);
        }
        host::umount_below(&self.dir);
        for h in host::cgroup_hierarchies() {
            if let Ok(rd) = fs::read_dir(h.join("berth")) {
                for e in rd.flatten() {
                    if e.file_name().to_string_lossy().starts_with(&self.ns) {
                        for pid in host::cgroup_pids(&e.path()) {
                            host::kill9(pid);
                        }
                        let _ = host::rmdir_cgroup(&e.path());
                    }
                }
            }
        }
        let _ = fs::remove_dir_all(Path::new("/run/containerd-berth").join(&self.ns));
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// One tar member for [`tar`].
pub enum Member<'a> {
    File(&'a str, &'a [u8]),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
}

/// A ustar archive of `members`, names as given (even `../x` or `/x`).
pub fn tar(members: &[Member]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in members {
        let (name, flag, data, link, mode): (&str, u8, &[u8], &str, u32) = match m {
            Member::File(n, d) => (n, b'0', d, "", 0o755),
            Member::Dir(n) => (n, b'5', &[], "", 0o755),
            Member::Symlink(n, t) => (n, b'2', &[], t, 0o777),
            Member::Hardlink(n, t) => (n, b'1', &[], t, 0o644),
        };
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        let octal = |h: &mut [u8; 512], at: usize, len: usize, v: u64| {
            let s = format!("{v:0w$o}\0", w = len - 1);
            h[at..at + len].copy_from_slice(s.as_bytes());
        };
        octal(&mut h, 100, 8, mode as u64);
        octal(&mut h, 108, 8, 0);
        octal(&mut h, 116, 8, 0);
        octal(&mut h, 124, 12, data.len() as u64);
        octal(&mut h, 136, 12, 1_700_000_000);
        h[156] = flag;
        h[157..157 + link.len()].copy_from_slice(link.as_bytes());
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|b| *b as u32).sum();
        let s = format!("{sum:06o}\0 ");
        h[148..156].copy_from_slice(s.as_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

pub fn sha256(data: &[u8]) -> String {
    Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// A layer for an archive: the blob as stored and its uncompressed tar.
pub struct LayerBlob {
    pub blob: Vec<u8>,
    pub tar: Vec<u8>,
}

impl LayerBlob {
    pub fn plain(tar: Vec<u8>) -> Self {
        LayerBlob { blob: tar.clone(), tar }
    }
    pub fn gz(tar: Vec<u8>) -> Self {
        LayerBlob { blob: gzip(&tar), tar }
    }
}

fn image_config(layers: &[LayerBlob]) -> Vec<u8> {
    let diff: Vec<String> = layers.iter().map(|l| format!("sha256:{}", sha256(&l.tar))).collect();
    serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff}
    }))
    .unwrap()
}

/// An OCI image layout archive named `name`.
pub fn oci_archive(layers: &[LayerBlob], name: &str) -> Vec<u8> {
    let config = image_config(layers);
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let mut descs = Vec::new();
    for l in layers {
        let d = sha256(&l.blob);
        descs.push(json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": format!("sha256:{d}"), "size": l.blob.len()}));
        files.push((format!("blobs/sha256/{d}"), l.blob.clone()));
    }
    let cd = sha256(&config);
    files.push((format!("blobs/sha256/{cd}"), config.clone()));
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": format!("sha256:{cd}"), "size": config.len()},
        "layers": descs
    }))
    .unwrap();
    let md = sha256(&manifest);
    files.push((format!("blobs/sha256/{md}"), manifest.clone()));
    let index = serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": format!("sha256:{md}"),
        "size": manifest.len(), "annotations": {"io.containerd.image.name": name}}]}))
    .unwrap();
    files.push(("index.json".into(), index));
    files.push(("oci-layout".into(), br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()));
    let members: Vec<Member> = files.iter().map(|(n, d)| Member::File(n, d)).collect();
    tar(&members)
}

/// A docker-archive (`docker save` before docker 25) named `tag`.
pub fn docker_archive(layers: &[LayerBlob], tag: &str) -> Vec<u8> {
    let config = image_config(layers);
    let cname = format!("{}.json", sha256(&config));
    let mut files: Vec<(String, Vec<u8>)> = vec![(cname.clone(), config)];
    let mut names = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let n = format!("layer{i}/layer.tar");
        files.push((n.clone(), l.blob.clone()));
        names.push(n);
    }
    let manifest = serde_json::to_vec(&json!([{"Config": cname, "RepoTags": [tag], "Layers": names}])).unwrap();
    files.push(("manifest.json".into(), manifest));
    let members: Vec<Member> = files.iter().map(|(n, d)| Member::File(n, d)).collect();
    tar(&members)
}
