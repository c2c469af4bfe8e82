//! Id-mapped bind mounts (`idmap`, `ridmap`, `uidMappings`/`gidMappings`
//! on a mount): the ids a container sees through the mount, what it writes
//! through it, the container's own mappings as the default, and the errors.

use std::fs;
use std::os::unix::fs::MetadataExt;

use berth_integration::prelude::*;
use serde_json::json;

/// A source directory with `f` owned by 0:0 and `g` owned by 1000:1000.
fn source(env: &Env) -> std::path::PathBuf {
    let src = env.file("idsrc");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("f"), "f").unwrap();
    fs::write(src.join("g"), "g").unwrap();
    std::os::unix::fs::chown(src.join("g"), Some(1000), Some(1000)).unwrap();
    src
}

#[test]
fn mount_mappings_shift_ids_without_a_user_namespace() {
    let mut env = Env::sh(
        "idmap_shift",
        "stat -c '%u:%g' /data/f /data/g; touch /data/new 2>/dev/null || echo refused",
    );
    let src = source(&env);
    env.push(
        "/mounts",
        json!({"destination": "/data", "type": "bind", "source": src, "options": ["bind", "idmap"],
               "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 10}],
               "gidMappings": [{"containerID": 0, "hostID": 2000, "size": 10}]}),
    );
    let out = env.run_ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    // Disk 0 -> 1000 (uid) / 2000 (gid); disk 1000 is outside the mapping.
    assert_eq!(lines.first().copied(), Some("1000:2000"), "{out}");
    assert_eq!(lines.get(1).copied(), Some("65534:65534"), "{out}");
    // Container root (uid 0) has no disk id through this mount: a file it
    // would own cannot be written (EOVERFLOW).
    assert_eq!(lines.get(2).copied(), Some("refused"), "{out}");
    assert!(!src.join("new").exists());
    assert_no_leftovers(&env);
}

#[test]
fn mapped_writes_land_as_the_disk_ids() {
    // Container ids 1000.. are disk ids 0..: a file made by uid 1000 in the
    // container is owned by 0 on disk.
    let mut env = Env::sh("idmap_write", "touch /data/made && stat -c '%u:%g' /data/made /data/f");
    env.set("/process/user", json!({"uid": 1000, "gid": 1000}));
    let src = source(&env);
    fs::set_permissions(&src, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    env.push(
        "/mounts",
        json!({"destination": "/data", "type": "bind", "source": src, "options": ["rbind", "ridmap", "rw"],
               "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
               "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]}),
    );
    let out = env.run_ok();
    assert_eq!(
        out.stdout.split_whitespace().collect::<Vec<_>>(),
        ["1000:1000", "1000:1000"],
        "{out}"
    );
    let m = fs::metadata(src.join("made")).unwrap();
    assert_eq!((m.uid(), m.gid()), (0, 0), "on disk");
    assert_no_leftovers(&env);
}

#[test]
fn container_user_namespace_mappings_are_the_default() {
    // Without idmap, a root-owned file shows as the overflow id in a user
    // namespace; with idmap and no mount mappings, as the container's root.
    let mut env = Env::sh("idmap_userns", "stat -c '%u:%g' /plain/f /mapped/f; touch /mapped/made");
    env.push("/linux/namespaces", json!({"type": "user"}));
    env.set("/linux/uidMappings", json!([{"containerID": 0, "hostID": 100000, "size": 65536}]));
    env.set("/linux/gidMappings", json!([{"containerID": 0, "hostID": 100000, "size": 65536}]));
    let src = source(&env);
    // Mount points made beforehand: the rootfs belongs to the host's root,
    // which the container's root is not.
    for d in ["plain", "mapped"] {
        fs::create_dir(env.rootfs().join(d)).unwrap();
    }
    env.push(
        "/mounts",
        json!({"destination": "/plain", "type": "bind", "source": src, "options": ["rbind", "ro"]}),
    );
    env.push(
        "/mounts",
        json!({"destination": "/mapped", "type": "bind", "source": src, "options": ["rbind", "idmap"]}),
    );
    let out = env.run_ok();
    assert_eq!(out.stdout.split_whitespace().collect::<Vec<_>>(), ["65534:65534", "0:0"], "{out}");
    let m = fs::metadata(src.join("made")).unwrap();
    assert_eq!((m.uid(), m.gid()), (0, 0), "written by container root through the id-mapped mount");
    assert_no_leftovers(&env);
}

#[test]
fn bad_idmap_configs_are_clear_errors() {
    let cases = [
        (
            json!({"destination": "/data", "type": "bind", "options": ["rbind", "idmap"]}),
            "needs uidMappings and gidMappings",
        ),
        (
            json!({"destination": "/data", "type": "bind", "options": ["rbind", "idmap"],
                   "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]}),
            "uidMappings is given without gidMappings",
        ),
        (
            json!({"destination": "/data", "type": "tmpfs", "source": "tmpfs", "options": ["idmap"],
                   "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
                   "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]}),
            "bind mounts only",
        ),
    ];
    for (mut m, needle) in cases {
        let mut env = Env::sh("idmap_bad", "true");
        if m.get("source").is_none() {
            m["source"] = json!(source(&env));
        }
        env.push("/mounts", m);
        let n = env.config()["mounts"].as_array().unwrap().len() - 1;
        env.try_create().fails_with(&[&format!("mounts[{n}] (/data)"), needle]);
        assert_no_leftovers(&env);
    }
}
