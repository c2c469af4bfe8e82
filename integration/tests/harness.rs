//! Self-tests of the harness: the guard cleans up after a panicking test,
//! even things the runtime failed to remove.

use std::process::{Command, Stdio};
use std::sync::Mutex;

use berth_integration::prelude::*;

struct Seen {
    dir: PathBuf,
    marker: String,
    cgroups: Vec<PathBuf>,
}

fn seen(env: &Env) -> Seen {
    Seen { dir: env.dir.clone(), marker: env.marker.clone(), cgroups: host::cgroup_dirs(&env.cgroups_path) }
}

fn assert_all_gone(s: &Seen) {
    assert!(!s.dir.exists(), "{} left", s.dir.display());
    for d in &s.cgroups {
        assert!(!d.exists(), "{} left", d.display());
    }
    assert!(host::pids_with_marker(&s.marker).is_empty(), "marker processes left");
    let prefix = s.dir.display().to_string();
    assert!(!host::host_mounts().iter().any(|m| m.mount_point.starts_with(&prefix)), "mounts left under {prefix}");
}

#[test]
fn guard_cleans_up_after_panic() {
    let info = Mutex::new(None);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let env = Env::sh("guard_panic", SLEEPER);
        *info.lock().unwrap() = Some(seen(&env));
        env.run_detached();
        panic!("test failure while the container runs");
    }));
    assert!(r.is_err());
    assert_all_gone(info.lock().unwrap().as_ref().unwrap());
}

#[test]
fn guard_removes_what_the_runtime_left() {
    // no runtime involved: a stray marker process, a cgroup dir, a mount
    let info = Mutex::new(None);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let env = Env::new("guard_strays");
        *info.lock().unwrap() = Some(seen(&env));
        let _stray = Command::new("/bin/sh")
            .args(["-c", "while :; do sleep 0.1; done", &env.marker])
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let cg = host::cgroup_dirs(&env.cgroups_path)[0].clone();
        fs::create_dir_all(&cg).unwrap();
        let mnt = env.file("mnt");
        fs::create_dir_all(&mnt).unwrap();
        host::mount(Some(Path::new("tmpfs")), &mnt, Some("tmpfs"), 0, Some("size=64k")).unwrap();
        fs::write(mnt.join("f"), "x").unwrap();
        assert!(!host::pids_with_marker(&env.marker).is_empty());
        std::mem::forget(_stray); // not reaped here: the guard must kill it
        panic!("fail with strays around");
    }));
    assert!(r.is_err());
    assert_all_gone(info.lock().unwrap().as_ref().unwrap());
}

#[test]
fn ids_and_markers_are_unique() {
    let a = Env::new("uniq");
    let b = Env::new("uniq");
    assert_ne!(a.id, b.id);
    assert_ne!(a.marker, b.marker);
    assert_ne!(a.root, b.root);
    assert_ne!(a.cgroups_path, b.cgroups_path);
    assert!(!a.id.contains(&a.marker) && !a.root.display().to_string().contains(&a.marker));
    assert_eq!(a.config()["linux"]["cgroupsPath"], a.cgroups_path.as_str());
    assert_eq!(a.config()["process"]["args"][3], a.marker.as_str());
}

#[test]
fn config_pointer_edits() {
    let mut e = Env::new("pointer_edits");
    e.set("/process/user/umask", json!(18));
    e.set("/linux/namespaces/0", json!({"type": "pid", "path": "/x"}));
    e.set("/brand/new/object", json!(1));
    e.push("/linux/maskedPaths", json!("/m"));
    e.remove("/hostname");
    let on_disk: Value = serde_json::from_slice(&fs::read(e.bundle_path().join("config.json")).unwrap()).unwrap();
    assert_eq!(on_disk["process"]["user"]["umask"], 18);
    assert_eq!(on_disk["linux"]["namespaces"][0]["path"], "/x");
    assert_eq!(on_disk["brand"]["new"]["object"], 1);
    assert_eq!(on_disk["linux"]["maskedPaths"].as_array().unwrap().last().unwrap(), "/m");
    assert!(on_disk.get("hostname").is_none());
}

#[test]
fn mountinfo_parsing() {
    let text = "36 35 98:0 /mnt\\040dir /mnt/a\\040b rw,noatime master:1 shared:2 - ext3 /dev/root rw,errors=continue\n";
    let m = &host::parse_mountinfo(text)[0];
    assert_eq!(m.root, "/mnt dir");
    assert_eq!(m.mount_point, "/mnt/a b");
    assert_eq!(m.optional, ["master:1", "shared:2"]);
    assert_eq!(m.fstype, "ext3");
    assert_eq!(m.source, "/dev/root");
    assert_eq!(squash("  a   b \n\n c\t d "), "a b\nc d");
}
