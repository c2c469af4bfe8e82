//! `berthctl pull` and `run` of an image not yet here, against a real
//! registry (Debian's docker-registry, distribution 2.8) on 127.0.0.1: TLS
//! with a CA made by the test and htpasswd auth, images put in with skopeo.
//! Each test has its own registry, store (--root) and DOCKER_CONFIG, all
//! removed at the end.

use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::process::{Command, Stdio};

use berth_integration::berthctl::sha256;
use berth_integration::berthctl::Ctl;
use berth_integration::prelude::*;
use berth_integration::registry::{
    available, base64, busybox_layer, file_layer, layout, zstd_layer, CutProxy, Img, Registry,
    TokenServer, PASSWORD, USER,
};

/// berthctl's own failures exit 125 (as docker's), with a clear message.
trait Refused {
    fn refused(&self, needles: &[&str]);
}

impl Refused for berth_integration::harness::Output {
    #[track_caller]
    fn refused(&self, needles: &[&str]) {
        self.exits_with(125);
        for n in needles {
            assert!(self.stderr.contains(n), "stderr lacks {n:?}:\n{self}");
        }
    }
}

/// DOCKER_CONFIG in the test's dir: never the host's ~/.docker.
fn env(ctl: &Ctl) -> Vec<(String, String)> {
    vec![(
        "DOCKER_CONFIG".into(),
        ctl.dir.join("docker").display().to_string(),
    )]
}

/// The busybox image of scripts/mkimage.sh, pushed as `dest`.
fn push_mkimage(ctl: &Ctl, reg: &Registry, dest: &str) {
    let out = ctl.dir.join("busybox.tar");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/mkimage.sh");
    let st = Command::new("sh")
        .arg(&script)
        .arg(&out)
        .output()
        .expect("run scripts/mkimage.sh");
    assert!(
        st.status.success(),
        "mkimage.sh: {}",
        String::from_utf8_lossy(&st.stderr)
    );
    reg.push(&out, dest, false);
}

/// Push a single-platform image made of `img` as `dest`.
fn push_img(ctl: &Ctl, reg: &Registry, img: Img, dest: &str) {
    let p = ctl
        .dir
        .join(format!("{}.tar", dest.replace([':', '/'], "_")));
    layout(&[img], false, &p);
    reg.push(&p, dest, false);
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Nothing of a failed pull: no image, no snapshot, nothing in tmp/.
#[track_caller]
fn assert_no_image(ctl: &Ctl) {
    for d in ["images", "snapshots", "tmp"] {
        assert_eq!(
            entries(&ctl.root.join(d)),
            Vec::<String>::new(),
            "{d}/ after a failed pull"
        );
    }
}

#[test]
fn pull_by_tag_and_by_digest_over_tls_with_auth() {
    if !available() {
        return;
    }
    let ctl = Ctl::new("pull-tag");
    let reg = Registry::start("pull-tag", true, true);
    push_mkimage(&ctl, &reg, "busybox:latest");
    let (env, ca) = (env(&ctl), reg.ca().display().to_string());
    let r = format!("{}/busybox:latest", reg.addr);
    // The registry's certificate is signed by the test's CA only.
    ctl.run_env(&["pull", &r], &env)
        .refused(&["certificate", "--ca FILE"]);
    ctl.run_env(&["pull", "--ca", &ca, &r], &env)
        .refused(&["authentication required", "berthctl login"]);
    assert_no_image(&ctl);
    let o = ctl
        .run_env(
            &["login", "--ca", &ca, "-u", USER, "-p", PASSWORD, &reg.addr],
            &env,
        )
        .ok();
    assert!(o.stdout.contains("login succeeded"), "{o}");
    let o = ctl.run_env(&["pull", "--ca", &ca, &r], &env).ok();
    assert!(o.stdout.contains(&format!("pulled {r} (sha256:")), "{o}");
    // Not a terminal: a plain line per layer.
    assert!(
        o.stderr.contains(": downloaded ") && o.stderr.contains(": unpacked"),
        "{o}"
    );
    let id = o
        .stdout
        .split("sha256:")
        .nth(1)
        .unwrap()
        .trim_end_matches([')', '\n'])
        .to_string();
    let ls = ctl.run(&["image", "ls"]).ok();
    assert!(ls.stdout.contains(&r) && ls.stdout.contains("MB"), "{ls}");
    // By digest: the same image, no layer fetched again.
    let digest = reg.tag_digest("busybox", "latest");
    let manifest: Value =
        serde_json::from_slice(&fs::read(reg.blob_file(&digest[7..])).unwrap()).unwrap();
    let layer = manifest["layers"][0]["digest"].as_str().unwrap()[7..].to_string();
    let rd = format!("{}/busybox@{digest}", reg.addr);
    let o = ctl.run_env(&["pull", "-q", "--ca", &ca, &rd], &env).ok();
    assert!(o.stdout.contains(&format!("(sha256:{id})")), "{o}");
    assert_eq!(o.stderr, "", "--quiet");
    assert_eq!(reg.blob_gets(&layer).len(), 1, "the layer is fetched once");
    // Docker's media types (schema 2 manifest, rootfs.diff.tar.gzip).
    let archive = ctl.dir.join("busybox.tar");
    reg.push_with(&archive, "busybox:docker", &["--format", "v2s2"]);
    let manifest = fs::read(reg.blob_file(&reg.tag_digest("busybox", "docker")[7..])).unwrap();
    assert!(String::from_utf8_lossy(&manifest)
        .contains("application/vnd.docker.distribution.manifest.v2+json"));
    let o = ctl
        .run_env(
            &["pull", "--ca", &ca, &format!("{}/busybox:docker", reg.addr)],
            &env,
        )
        .ok();
    assert!(o.stdout.contains("pulled"), "{o}");
    // The system's CAs are used: the test CA as the only one (SSL_CERT_FILE), no --ca.
    let mut sys = env.clone();
    sys.push(("SSL_CERT_FILE".into(), ca.clone()));
    ctl.run_env(&["pull", &r], &sys).ok();
    // A digest that is not there.
    let bad = format!("{}/busybox@sha256:{}", reg.addr, "0".repeat(64));
    ctl.run_env(&["pull", "--ca", &ca, &bad], &env)
        .refused(&["no such image"]);
    ctl.assert_clean();
}

#[test]
fn run_pulls_a_missing_image_and_runs_it() {
    if !available() {
        return;
    }
    let ctl = Ctl::new("pull-run");
    let reg = Registry::start("pull-run", true, true);
    push_mkimage(&ctl, &reg, "busybox:latest");
    let (env, ca) = (env(&ctl), reg.ca().display().to_string());
    ctl.run_env(
        &["login", "--ca", &ca, "-u", USER, "-p", PASSWORD, &reg.addr],
        &env,
    )
    .ok();
    let r = format!("{}/busybox:latest", reg.addr);
    let o = ctl
        .run_env(&["run", "--rm", "--ca", &ca, &r, "echo", "hi"], &env)
        .ok();
    assert_eq!(o.stdout, "hi\n", "{o}");
    assert!(o.stderr.contains(&format!("pulling {r}")), "{o}");
    // Present now: the second run pulls nothing.
    let o = ctl
        .run_env(&["run", "--rm", &r, "echo", "again"], &env)
        .ok();
    assert_eq!(
        (o.stdout.as_str(), o.stderr.as_str()),
        ("again\n", ""),
        "{o}"
    );
    // --pull never for an image that is not here.
    let missing = format!("{}/other:latest", reg.addr);
    ctl.run_env(&["run", "--rm", "--pull", "never", &missing, "true"], &env)
        .refused(&["no such image"]);
    ctl.assert_clean();
}

#[test]
fn shared_layers_are_fetched_and_unpacked_once() {
    if !available() {
        return;
    }
    let ctl = Ctl::new("pull-shared");
    let reg = Registry::start("pull-shared", false, false);
    let a = Img::new(&[busybox_layer()], "amd64");
    // b's own layer is zstd-compressed.
    let b = Img::new(
        &[busybox_layer(), zstd_layer("etc/extra", "only in b\n")],
        "amd64",
    );
    let (base, extra) = (a.layer_hex(0), b.layer_hex(1));
    assert_eq!(base, b.layer_hex(0));
    push_img(&ctl, &reg, a, "a:latest");
    push_img(&ctl, &reg, b, "b:latest");
    let env = env(&ctl);
    // Plain HTTP: the registry is on 127.0.0.0/8.
    ctl.run_env(&["pull", &format!("{}/a", reg.addr)], &env)
        .ok();
    // The second pull on a terminal: progress bars.
    let term = pull_on_terminal(&ctl, &format!("{}/b", reg.addr));
    assert!(
        // indicatif's bar (binary units, a cleared line), then the lines that stay.
        term.contains("already unpacked")
            && term.contains(" B/s")
            && term.contains("\x1b[2K")
            && term.contains(": downloaded"),
        "{term}"
    );
    assert_eq!(
        reg.blob_gets(&base).len(),
        1,
        "the shared layer is fetched once"
    );
    assert_eq!(reg.blob_gets(&extra).len(), 1);
    let snaps = entries(&ctl.root.join("snapshots"));
    assert_eq!(snaps.len(), 2, "{snaps:?}");
    // One copy of busybox on disk: b's snapshot links to a's.
    let inos: Vec<u64> = snaps
        .iter()
        .map(|s| {
            fs::metadata(ctl.root.join("snapshots").join(s).join("bin/busybox"))
                .unwrap()
                .ino()
        })
        .collect();
    assert_eq!(inos[0], inos[1]);
    let ls = ctl.run(&["image", "ls"]).ok();
    assert_eq!(
        ls.stdout.lines().filter(|l| l.contains("MB")).count(),
        2,
        "{ls}"
    );
    // a goes: b still has every layer it needs, and runs.
    let o = ctl.run(&["image", "rm", &format!("{}/a", reg.addr)]).ok();
    assert!(o.stdout.contains("freed 2 blobs and 0 snapshots"), "{o}");
    let o = ctl
        .run_env(
            &[
                "run",
                "--rm",
                "--pull",
                "never",
                &format!("{}/b", reg.addr),
                "cat",
                "/etc/extra",
            ],
            &env,
        )
        .ok();
    assert_eq!(o.stdout, "only in b\n");
    ctl.run(&["image", "rm", &format!("{}/b", reg.addr)]).ok();
    assert_eq!(
        entries(&ctl.root.join("blobs/sha256")),
        Vec::<String>::new()
    );
    assert_eq!(entries(&ctl.root.join("snapshots")), Vec::<String>::new());
    ctl.assert_clean();
}

/// `berthctl pull REF` with stderr on a pty; what the terminal showed.
fn pull_on_terminal(ctl: &Ctl, r: &str) -> String {
    let pty = berth_integration::tty::Pty::open(24, 120);
    let reader = berth_integration::tty::Reader::start(&pty.master);
    let slave = fs::File::from(pty.slave.try_clone().unwrap());
    let st = Command::new(berth_integration::berthctl::berthctl_bin())
        .args(["--root", ctl.root.to_str().unwrap(), "pull", r])
        .env("DOCKER_CONFIG", ctl.dir.join("docker"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(slave)
        .status()
        .unwrap();
    assert!(st.success(), "pull on a terminal: {st}");
    drop(pty.slave);
    assert!(pty.master.as_raw_fd() >= 0);
    std::thread::sleep(Duration::from_millis(200));
    reader.text()
}

#[test]
fn an_index_resolves_to_this_platform_and_other_platforms_are_refused() {
    if !available() {
        return;
    }
    let ctl = Ctl::new("pull-index");
    let reg = Registry::start("pull-index", false, false);
    let amd = Img::new(&[busybox_layer()], "amd64");
    let arm = Img::new(&[file_layer("arm", "arm64\n")], "arm64");
    let (amd_id, arm_layer) = (amd.config_hex(), arm.layer_hex(0));
    let multi = ctl.dir.join("multi.tar");
    layout(&[amd, arm], true, &multi);
    reg.push(&multi, "multi:latest", true);
    let env = env(&ctl);
    let o = ctl
        .run_env(&["pull", &format!("{}/multi:latest", reg.addr)], &env)
        .ok();
    assert!(o.stdout.contains(&format!("(sha256:{amd_id})")), "{o}");
    assert!(
        reg.blob_gets(&arm_layer).is_empty(),
        "the arm64 layer is not fetched"
    );
    // Only another platform: a single manifest, and an index.
    let ctl2 = Ctl::new("pull-index-arm");
    push_img(
        &ctl2,
        &reg,
        Img::new(&[file_layer("a", "a\n")], "arm64"),
        "armonly:latest",
    );
    ctl2.run_env(&["pull", &format!("{}/armonly", reg.addr)], &env)
        .refused(&[
            "the image is for linux/arm64",
            "this machine runs linux/amd64",
        ]);
    let idx = ctl2.dir.join("armindex.tar");
    layout(&[Img::new(&[file_layer("b", "b\n")], "arm64")], true, &idx);
    reg.push(&idx, "armindex:latest", true);
    ctl2.run_env(&["pull", &format!("{}/armindex", reg.addr)], &env)
        .refused(&["no linux/amd64 image in the index: it has linux/arm64"]);
    assert_no_image(&ctl2);
    ctl.assert_clean();
}

#[test]
fn wrong_credentials_and_unknown_images_are_clear_errors() {
    if !available() {
        return;
    }
    let ctl = Ctl::new("pull-auth");
    let reg = Registry::start("pull-auth", true, true);
    push_mkimage(&ctl, &reg, "busybox:latest");
    let (env, ca) = (env(&ctl), reg.ca().display().to_string());
    let cfg = ctl.dir.join("docker/config.json");
    ctl.run_env(
        &["login", "--ca", &ca, "-u", USER, "-p", "wrong", &reg.addr],
        &env,
    )
    .refused(&["authentication failed: wrong user name or password"]);
    assert!(!cfg.exists(), "a failed login saves nothing");
    // Wrong credentials saved by someone else (docker login's format).
    fs::create_dir_all(cfg.parent().unwrap()).unwrap();
    let b64 = base64(format!("{USER}:nope").as_bytes(), false);
    fs::write(
        &cfg,
        json!({"auths": {reg.addr.clone(): {"auth": b64}}}).to_string(),
    )
    .unwrap();
    let r = format!("{}/busybox:latest", reg.addr);
    ctl.run_env(&["pull", "--ca", &ca, &r], &env)
        .refused(&["authentication failed: wrong user name or password"]);
    assert_no_image(&ctl);
    ctl.run_env(
        &["login", "--ca", &ca, "-u", USER, "-p", PASSWORD, &reg.addr],
        &env,
    )
    .ok();
    ctl.run_env(
        &["pull", "--ca", &ca, &format!("{}/nosuch:latest", reg.addr)],
        &env,
    )
    .refused(&["no such image in"]);
    ctl.run_env(&["pull", "--ca", &ca, "Not A Ref"], &env)
        .refused(&["invalid image reference"]);
    assert_no_image(&ctl);
    let o = ctl.run_env(&["logout", &reg.addr], &env).ok();
    assert!(o.stdout.contains("removed"), "{o}");
    ctl.run_env(&["pull", "--ca", &ca, &r], &env)
        .refused(&["authentication required"]);
    ctl.assert_clean();
}

#[test]
fn a_corrupted_blob_is_refused_and_nothing_is_kept() {
    if !available() {
        return;
    }
    let ctl = Ctl::new("pull-corrupt");
    let reg = Registry::start("pull-corrupt", false, false);
    let img = Img::new(&[busybox_layer()], "amd64");
    let layer = img.layer_hex(0);
    push_img(&ctl, &reg, img, "c:latest");
    // Same size, other bytes: only the digest can tell.
    let f = reg.blob_file(&layer);
    let mut data = fs::read(&f).unwrap();
    let mid = data.len() / 2;
    for b in &mut data[mid..mid + 64] {
        *b ^= 0x5a;
    }
    fs::write(&f, data).unwrap();
    ctl.run_env(&["pull", &format!("{}/c", reg.addr)], &env(&ctl))
        .refused(&["digest mismatch", &layer]);
    assert_no_image(&ctl);
    assert_eq!(
        entries(&ctl.root.join("blobs/ingest")),
        Vec::<String>::new(),
        "bad bytes are not kept"
    );
    // A config whose diff_id of the second layer is wrong: the first
    // layer's snapshot, made already, goes too.
    let layers = [file_layer("y", "y\n"), file_layer("x", "x\n")];
    let diffs = vec![
        format!("sha256:{}", sha256(&layers[0].tar)),
        format!("sha256:{}", "1".repeat(64)),
    ];
    push_img(
        &ctl,
        &reg,
        Img::with_diff_ids(&layers, "amd64", diffs),
        "d:latest",
    );
    ctl.run_env(&["pull", &format!("{}/d", reg.addr)], &env(&ctl))
        .refused(&[
            "layer 2",
            "digest mismatch: the uncompressed layer has sha256:",
        ]);
    assert_no_image(&ctl);
    ctl.assert_clean();
}

#[test]
fn an_interrupted_transfer_fails_cleanly_and_resumes() {
    if !available() {
        return;
    }
    let ctl = Ctl::new("pull-cut");
    let reg = Registry::start("pull-cut", false, false);
    let img = Img::new(&[busybox_layer()], "amd64");
    let (layer, size) = (img.layer_hex(0), img.blobs[1].len() as u64);
    assert!(size > 400_000, "the layer must be larger than the cut");
    push_img(&ctl, &reg, img, "cut:latest");
    let proxy = CutProxy::start(&reg.addr, 300_000);
    let r = format!("{}/cut:latest", proxy.addr);
    let env = env(&ctl);
    ctl.run_env(&["pull", &r], &env)
        .refused(&["transfer broke off after", "the next pull resumes"]);
    assert_no_image(&ctl);
    let kept = fs::metadata(ctl.root.join("blobs/ingest").join(&layer))
        .unwrap()
        .len();
    assert!(kept > 0 && kept < size, "kept {kept} of {size}");
    // What a berthctl killed while unpacking leaves in tmp/ goes at the next start.
    let mut dead = Command::new("true").spawn().unwrap();
    dead.wait().unwrap();
    let stale = ctl
        .root
        .join(format!("tmp/snapshot-{}-0badf00d", dead.id()));
    fs::create_dir_all(stale.join("rootfs/bin")).unwrap();
    let o = ctl.run_env(&["pull", &r], &env).ok();
    assert!(o.stderr.contains("resumed at"), "{o}");
    assert!(!stale.exists(), "a dead berthctl's tmp entry stays");
    let gets = reg.blob_gets(&layer);
    assert_eq!(
        gets.last(),
        Some(&(size - kept)),
        "the second GET sends only the rest: {gets:?}"
    );
    assert_eq!(
        entries(&ctl.root.join("blobs/ingest")),
        Vec::<String>::new()
    );
    ctl.assert_clean();
}

#[test]
fn bearer_tokens_from_the_registry_challenge() {
    if !available() {
        return;
    }
    let ctl = Ctl::new("pull-token");
    let tokens = TokenServer::start("pull-token", "busybox");
    let reg = Registry::start_token("pull-token", &tokens);
    push_mkimage(&ctl, &reg, "busybox:latest");
    let env = env(&ctl);
    let r = format!("{}/busybox:latest", reg.addr);
    let count = |c: &std::sync::atomic::AtomicUsize| c.load(std::sync::atomic::Ordering::SeqCst);
    let refused = count(&tokens.refused);
    // Anonymous, then a wrong password: the token server refuses both.
    ctl.run_env(&["pull", &r], &env)
        .refused(&["authentication required", "berthctl login"]);
    ctl.run_env(&["login", "-u", USER, "-p", "wrong", &reg.addr], &env)
        .refused(&["authentication failed"]);
    assert!(count(&tokens.refused) >= refused + 2);
    assert_no_image(&ctl);
    // The password from stdin (as `docker login --password-stdin`).
    let pw = ctl.dir.join("password");
    fs::write(&pw, format!("{PASSWORD}\n")).unwrap();
    let args: Vec<String> = [
        "--root",
        ctl.root.to_str().unwrap(),
        "login",
        "-u",
        USER,
        "--password-stdin",
        &reg.addr,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let opts = SpawnOpts {
        env: &env,
        stdin: Some(&pw),
        ..Default::default()
    };
    Spawned::start_with(
        &berth_integration::berthctl::berthctl_bin(),
        &args,
        &ctl.dir.join("login"),
        &opts,
    )
    .wait(SHORT)
    .ok();
    let granted = count(&tokens.granted);
    let o = ctl.run_env(&["pull", &r], &env).ok();
    assert!(o.stdout.contains(&format!("pulled {r}")), "{o}");
    assert!(
        count(&tokens.granted) > granted,
        "the pull got its token from the realm"
    );
    let log = reg.log();
    assert!(
        !log.lines()
            .any(|l| l.contains("level=error") && l.contains("token")),
        "{log}"
    );
    ctl.assert_clean();
}

#[test]
fn concurrent_pulls_share_one_download() {
    if !available() {
        return;
    }
    let ctl = Ctl::new("pull-concurrent");
    let reg = Registry::start("pull-concurrent", false, false);
    let a = Img::new(&[busybox_layer(), file_layer("a", "a\n")], "amd64");
    let b = Img::new(&[busybox_layer(), file_layer("b", "b\n")], "amd64");
    let base = a.layer_hex(0);
    push_img(&ctl, &reg, a, "a:latest");
    push_img(&ctl, &reg, b, "b:latest");
    let env = env(&ctl);
    let opts = SpawnOpts {
        env: &env,
        ..Default::default()
    };
    let pulls: Vec<Spawned> = ["a", "b"]
        .iter()
        .map(|n| {
            let args: Vec<String> = [
                "--root",
                ctl.root.to_str().unwrap(),
                "pull",
                &format!("{}/{n}", reg.addr),
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            Spawned::start_with(
                &berth_integration::berthctl::berthctl_bin(),
                &args,
                &ctl.dir.join(format!("pull-{n}")),
                &opts,
            )
        })
        .collect();
    for p in pulls {
        p.wait(Duration::from_secs(60)).ok();
    }
    assert_eq!(
        reg.blob_gets(&base).len(),
        1,
        "the shared layer is fetched once"
    );
    // The base snapshot and one per image, whoever made the base.
    assert_eq!(entries(&ctl.root.join("snapshots")).len(), 3);
    for n in ["a", "b"] {
        let o = ctl
            .run_env(
                &[
                    "run",
                    "--rm",
                    "--pull",
                    "never",
                    &format!("{}/{n}", reg.addr),
                    "cat",
                    &format!("/{n}"),
                ],
                &env,
            )
            .ok();
        assert_eq!(o.stdout, format!("{n}\n"));
    }
    assert_eq!(
        entries(&ctl.root.join("blobs/ingest")),
        Vec::<String>::new()
    );
    ctl.assert_clean();
}

#[test]
fn a_pull_killed_mid_blob_leaves_no_image_and_is_resumed() {
    if !available() {
        return;
    }
    let ctl = Ctl::new("pull-kill");
    let reg = Registry::start("pull-kill", false, false);
    let img = Img::new(&[busybox_layer()], "amd64");
    let (layer, size) = (img.layer_hex(0), img.blobs[1].len() as u64);
    push_img(&ctl, &reg, img, "k:latest");
    let proxy = CutProxy::stalling(&reg.addr, 300_000);
    let env = env(&ctl);
    let opts = SpawnOpts {
        env: &env,
        ..Default::default()
    };
    let args: Vec<String> = [
        "--root",
        ctl.root.to_str().unwrap(),
        "pull",
        &format!("{}/k", proxy.addr),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut pull = Spawned::start_with(
        &berth_integration::berthctl::berthctl_bin(),
        &args,
        &ctl.dir.join("killed"),
        &opts,
    );
    let ingest = ctl.root.join("blobs/ingest").join(&layer);
    // The transfer stalls after the cut: kill berthctl there (as ^C would).
    assert!(
        wait_until(SHORT, || fs::metadata(&ingest)
            .is_ok_and(|m| m.len() > 200_000)),
        "the download did not start"
    );
    pull.signal(libc::SIGKILL);
    assert!(wait_until(SHORT, || pull.try_wait().is_some()));
    assert_no_image(&ctl);
    let kept = fs::metadata(&ingest).unwrap().len();
    assert!(kept < size);
    // The next pull (straight from the registry) takes the rest only.
    let o = ctl
        .run_env(&["pull", &format!("{}/k", reg.addr)], &env)
        .ok();
    assert!(o.stderr.contains("resumed at"), "{o}");
    assert_eq!(reg.blob_gets(&layer).last(), Some(&(size - kept)));
    drop(proxy);
    ctl.assert_clean();
}
