//! config.md "Mounts" (order, destinations, POSIX mount fields) and
//! config-linux.md "Default Filesystems" and "Rootfs Mount Propagation".

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::json;

use super::util::{mount_at, mount_lines};
use super::{must, should, Test};
use crate::ctx::{Ctx, Res};
use crate::ensure;

pub fn tests() -> Vec<Test> {
    let mut v = vec![
        must("config.md/mounts/listed-order", listed_order),
        must("config.md/mounts/relative-destination", |cx| {
            let mut c = cx.ctr();
            c.add_mount(json!({"destination": "oc-rel", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}));
            c.payload(&["mountinfo"]);
            let kv = c.run()?;
            ensure!(
                !mount_lines(&kv, "/oc-rel").is_empty(),
                "the relative destination \"oc-rel\" is not mounted at /oc-rel"
            );
            Ok(())
        }),
        must("config.md/posix-platform-mounts/uid-mappings-need-gid-mappings", |cx| {
            idmap_half(cx, "uidMappings")
        }),
        must("config.md/posix-platform-mounts/gid-mappings-need-uid-mappings", |cx| {
            idmap_half(cx, "gidMappings")
        }),
        should(
            "config-linux.md/default-filesystems/proc-sys-devpts-shm",
            default_filesystems,
        ),
    ];
    for p in ["shared", "slave", "private", "unbindable"] {
        v.push(must(
            format!("config-linux.md/rootfs-mount-propagation/{p}"),
            move |cx| rootfs_propagation(cx, p),
        ));
    }
    v
}

fn listed_order(cx: &Ctx) -> Res {
    let mut c = cx.ctr();
    c.add_mount(json!({"destination": "/oc-a", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}));
    c.add_mount(json!({"destination": "/oc-a/b", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}));
    c.payload(&["mountinfo"]);
    let kv = c.run()?;
    let mi = kv.all("mi");
    let pos = |mp: &str| mi.iter().position(|l| l.split(' ').nth(4) == Some(mp));
    match (pos("/oc-a"), pos("/oc-a/b")) {
        (Some(a), Some(b)) if a < b => Ok(()),
        (a, b) => crate::fail!("mounts not made in the listed order (/oc-a then /oc-a/b): positions {a:?}, {b:?}"),
    }
}

fn idmap_half(cx: &Ctx, field: &str) -> Res {
    let mut c = cx.ctr();
    let src = cx.file("src");
    fs::create_dir_all(&src).map_err(|e| format!("{e}"))?;
    let mut m = json!({"destination": "/mnt", "type": "bind", "source": src, "options": ["bind", "idmap"]});
    m[field] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    c.add_mount(m);
    c.expect_create_error()
}

fn default_filesystems(cx: &Ctx) -> Res {
    let mut c = cx.ctr();
    c.payload(&["mountinfo"]);
    let kv = c.run()?;
    for (mp, ty) in [
        ("/proc", "proc"),
        ("/sys", "sysfs"),
        ("/dev/pts", "devpts"),
        ("/dev/shm", "tmpfs"),
    ] {
        let m = mount_at(&kv, mp)?;
        ensure!(m.fstype == ty, "{mp} is {}, want {ty}", m.fstype);
    }
    Ok(())
}

/// Make `dir` a mount point (bind onto itself) with the given propagation.
pub fn make_mount(dir: &Path, propagation: libc::c_ulong) -> Res {
    use berth_integration::host::mount;
    fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    mount(Some(dir), dir, None, libc::MS_BIND, None).map_err(|e| format!("bind {} onto itself: {e}", dir.display()))?;
    mount(None, dir, None, propagation, None).map_err(|e| format!("set propagation of {}: {e}", dir.display()))?;
    Ok(())
}

fn rootfs_propagation(cx: &Ctx, p: &str) -> Res {
    let mut c = cx.ctr();
    c.make()?;
    // The rootfs is a shared mount on the host, so the container's root
    // starts in a peer group: each value must visibly change that.
    make_mount(&c.rootfs(), libc::MS_SHARED)?;
    c.set("/linux/rootfsPropagation", json!(p));
    c.payload(&["mountinfo"]);
    let kv = c.run()?;
    let root = mount_at(&kv, "/")?;
    let opt = root.optional.join(" ");
    let has = |k: &str| root.optional.iter().any(|o| o.starts_with(k));
    let ok = match p {
        "shared" => has("shared:"),
        "slave" => has("master:") && !has("shared:"),
        "private" => root.optional.is_empty(),
        "unbindable" => has("unbindable"),
        _ => false,
    };
    ensure!(
        ok,
        "rootfsPropagation {p:?}: the container's / has propagation {:?} (the rootfs is a shared mount on the host)",
        if opt.is_empty() { "private" } else { &opt }
    );
    Ok(())
}

/// A source directory for bind tests: `DIR/file`, and a tmpfs at
/// `DIR/sub` (with `sub_flags`) holding `sub-file`; DIR is itself a mount
/// with propagation `prop` (MS_SHARED or MS_PRIVATE, recursive).
pub fn bind_source(cx: &Ctx, prop: libc::c_ulong, sub_flags: libc::c_ulong) -> Res<PathBuf> {
    use berth_integration::host::mount;
    let dir = cx.file(&format!("src{}", cx.next()));
    make_mount(&dir, libc::MS_PRIVATE)?;
    fs::write(dir.join("file"), "file").map_err(|e| format!("{e}"))?;
    let sub = dir.join("sub");
    fs::create_dir_all(&sub).map_err(|e| format!("{e}"))?;
    mount(
        Some(Path::new("tmpfs")),
        &sub,
        Some("tmpfs"),
        sub_flags & !libc::MS_RDONLY,
        Some("size=1m"),
    )
    .map_err(|e| format!("mount tmpfs on {}: {e}", sub.display()))?;
    fs::write(sub.join("sub-file"), "sub").map_err(|e| format!("{e}"))?;
    if sub_flags & libc::MS_RDONLY != 0 {
        mount(None, &sub, None, libc::MS_REMOUNT | libc::MS_BIND | sub_flags, None)
            .map_err(|e| format!("remount {} read-only: {e}", sub.display()))?;
    }
    mount(None, &dir, None, prop | libc::MS_REC, None)
        .map_err(|e| format!("set propagation of {}: {e}", dir.display()))?;
    Ok(dir)
}
