//! berthctl image import: OCI layouts and docker-archives made here,
//! gzip and plain layers, whiteouts and opaque directories, symlinks that
//! point out of the rootfs, and every bad archive (each a clear error,
//! nothing left in the store).

use berth_integration::berthctl::{docker_archive, oci_archive, tar, Ctl, LayerBlob, Member};
use berth_integration::prelude::*;

fn base_layer() -> Vec<u8> {
    let bb = fs::read("/bin/busybox").expect("busybox-static");
    tar(&[
        Member::Dir("bin/"),
        Member::File("bin/busybox", &bb),
        Member::Symlink("bin/sh", "busybox"),
        Member::Symlink("bin/cat", "busybox"),
        Member::Symlink("bin/ls", "busybox"),
        Member::Symlink("bin/sleep", "busybox"),
        Member::Dir("a/"),
        Member::File("a/gone", b"lower\n"),
        Member::File("a/kept", b"lower\n"),
        Member::Dir("opq/"),
        Member::File("opq/old", b"lower\n"),
        Member::Dir("proc/"),
        Member::Dir("dev/"),
        Member::Dir("sys/"),
        // Links pointing out of the rootfs.
        Member::Symlink("escape", "/"),
        Member::Symlink("up", "../../../../.."),
    ])
}

fn top_layer() -> Vec<u8> {
    tar(&[
        Member::File("a/.wh.gone", b""),
        Member::Dir("opq/"),
        Member::File("opq/new", b"upper\n"),
        Member::File("opq/.wh..wh..opq", b""),
        // Written through the escaping links: must land inside.
        Member::File("escape/pwned-berthctl", b"inside\n"),
        Member::File("up/pwned-berthctl-up", b"inside\n"),
        Member::Hardlink("a/hard", "a/kept"),
    ])
}

fn image_rootfs(c: &Ctl) -> PathBuf {
    let d = fs::read_dir(c.root.join("images")).unwrap().flatten().next().expect("an image").path();
    d.join("rootfs")
}

fn write(c: &Ctl, name: &str, data: &[u8]) -> String {
    let p = c.dir.join(name);
    fs::write(&p, data).unwrap();
    p.display().to_string()
}

#[test]
fn oci_layers_whiteouts_and_links_stay_inside() {
    let c = Ctl::new("oci");
    let arch = oci_archive(&[LayerBlob::gz(base_layer()), LayerBlob::plain(top_layer())], "example.org/test/two:1");
    let f = write(&c, "two.tar", &arch);
    let o = c.run(&["image", "import", &f]).ok();
    assert!(o.stdout.contains("imported example.org/test/two:1"), "{o}");
    let r = image_rootfs(&c);
    assert!(!r.join("a/gone").exists(), "whiteout not applied");
    assert_eq!(fs::read_to_string(r.join("a/kept")).unwrap(), "lower\n");
    assert!(!r.join("opq/old").exists(), "opaque dir kept a lower entry");
    assert_eq!(fs::read_to_string(r.join("opq/new")).unwrap(), "upper\n");
    assert_eq!(fs::read_to_string(r.join("pwned-berthctl")).unwrap(), "inside\n");
    assert_eq!(fs::read_to_string(r.join("pwned-berthctl-up")).unwrap(), "inside\n");
    assert!(!Path::new("/pwned-berthctl").exists() && !Path::new("/pwned-berthctl-up").exists());
    use std::os::unix::fs::MetadataExt;
    assert_eq!(fs::metadata(r.join("a/hard")).unwrap().ino(), fs::metadata(r.join("a/kept")).unwrap().ino());
    // It runs, by a short name too.
    let o = c.run(&["run", "--rm", "example.org/test/two:1", "cat", "/opq/new", "/a/kept"]).ok();
    assert_eq!(o.stdout, "upper\nlower\n");
    // Importing again adds nothing; rm by name removes it.
    c.run(&["image", "import", &f]).ok();
    assert_eq!(fs::read_dir(c.root.join("images")).unwrap().count(), 1);
    c.run(&["image", "rm", "example.org/test/two:1"]).ok();
    assert_eq!(fs::read_dir(c.root.join("images")).unwrap().count(), 0);
    c.assert_clean();
}

#[test]
fn docker_archive_import() {
    let c = Ctl::new("docker");
    let arch = docker_archive(&[LayerBlob::plain(base_layer()), LayerBlob::gz(top_layer())], "dtest:latest");
    let f = write(&c, "d.tar", &arch);
    let o = c.run(&["image", "import", &f]).ok();
    assert!(o.stdout.contains("imported dtest:latest"), "{o}");
    let o = c.run(&["run", "--rm", "dtest", "ls", "/opq"]).ok();
    assert_eq!(o.stdout, "new\n");
    // An image in use is not removed.
    c.run(&["run", "-d", "--name", "user", "dtest", "sleep", "100"]).ok();
    let o = c.run(&["image", "rm", "dtest"]);
    assert!(o.stderr.contains("is used by container user"), "{o}");
    c.run(&["rm", "-f", "user"]).ok();
    c.run(&["image", "rm", "dtest"]).ok();
    c.assert_clean();
}

/// Each bad archive: exit 125, the error holds `needle`, the store is empty.
#[track_caller]
fn refused(c: &Ctl, file: &str, needle: &str) {
    let o = c.run(&["image", "import", file]);
    assert_eq!(o.code(), Some(125), "{o}");
    assert!(o.stderr.contains(needle), "stderr lacks {needle:?}:\n{o}");
    assert_eq!(fs::read_dir(c.root.join("images")).unwrap().count(), 0, "an image was left: {o}");
    c.assert_clean();
}

#[test]
fn bad_archives_are_refused_and_leave_nothing() {
    let c = Ctl::new("bad");
    let good = oci_archive(&[LayerBlob::gz(base_layer())], "good:1");
    // Not an archive at all; truncated; empty.
    refused(&c, &write(&c, "junk.tar", &[0x42; 3000]), "not a tar archive");
    refused(&c, &write(&c, "trunc.tar", &good[..good.len() / 2]), "corrupt or truncated");
    refused(&c, &write(&c, "empty.tar", &tar(&[])), "no files");
    refused(&c, "/nonexistent/x.tar", "/nonexistent/x.tar");
    // A layer blob with a changed byte: digest mismatch.
    let mut bad = good.clone();
    let layer = LayerBlob::gz(base_layer());
    let blob_pos = bad.windows(64).position(|w| w == &layer.blob[..64]).expect("layer blob in archive");
    bad[blob_pos + 100] ^= 0xff;
    refused(&c, &write(&c, "digest.tar", &bad), "digest mismatch");
    // A config whose diff_id does not match the layer (docker-archive: the
    // only check of its layers).
    let mut d = docker_archive(&[LayerBlob::plain(base_layer())], "x:1");
    let pos = d.windows(9).position(|w| w == b"diff_ids\"").unwrap();
    let hex_at = d[pos..].windows(7).position(|w| w == b"sha256:").unwrap() + pos + 7;
    d[hex_at] = if d[hex_at] == b'0' { b'1' } else { b'0' };
    refused(&c, &write(&c, "diffid.tar", &d), "digest mismatch");
    // Layers with ../ and absolute member names.
    for (n, member) in [("dotdot", "../escaped-berthctl"), ("abs", "/etc/escaped-berthctl")] {
        let l = tar(&[Member::File("ok", b"1"), Member::File(member, b"x")]);
        let a = oci_archive(&[LayerBlob::plain(l)], "evil:1");
        let needle = if n == "abs" { "is an absolute path" } else { "has a \"..\" component" };
        refused(&c, &write(&c, &format!("{n}.tar"), &a), needle);
    }
    // A hard link to outside: refused too.
    let l = tar(&[Member::Hardlink("h", "../../etc/passwd")]);
    refused(&c, &write(&c, "hard.tar", &oci_archive(&[LayerBlob::plain(l)], "h:1")), "\"..\" component");
    // Archive members with ../ in the outer archive.
    refused(&c, &write(&c, "outer.tar", &tar(&[Member::File("../index.json", b"{}")])), "has a \"..\" component");
    // Missing blob.
    let idx = tar(&[
        Member::File("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#),
        Member::File("index.json", br#"{"schemaVersion":2,"manifests":[{"digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":2}]}"#),
    ]);
    refused(&c, &write(&c, "missing.tar", &idx), "is missing");
    // Unknown image and container names.
    let o = c.run(&["run", "--rm", "nosuchimage", "true"]);
    assert!(o.code() == Some(125) && o.stderr.contains("no such image: nosuchimage"), "{o}");
    for cmd in [&["rm", "ghost"][..], &["logs", "ghost"], &["kill", "ghost"], &["stop", "ghost"], &["exec", "ghost", "true"], &["stats", "ghost"]] {
        let o = c.run(cmd);
        assert!(o.code() == Some(125) && o.stderr.contains("no such container: ghost"), "{o}");
    }
    c.run(&["image", "rm", "nosuchimage"]).exits_with(125);
    c.assert_clean();
}
