//! config.md "Linux mount options": one test per option of the table
//! (MUST and SHOULD as the table says), plus the rules below it.
//!
//! Plain options are tried on a tmpfs and read back from the container's
//! /proc/self/mountinfo. Options that clear a flag are given after the flag
//! they clear (mount(8) semantics: the last one wins). Options without a
//! visible effect (`silent`, `iversion`...) must at least be understood: a
//! runtime that passed them to tmpfs as data would fail the mount.
//! Recursive (`r*`) options are tried on an rbind of a host directory with
//! a submount whose flags are the opposite, so both mounts must change.

use serde_json::json;

use super::mounts::bind_source;
use super::util::{mount_at, MountLine};
use super::{must, should, Level, Test};
use crate::ctx::{Ctx, Kv, Res};
use crate::ensure;

#[derive(Clone, Copy)]
enum Want {
    /// Per-mount option present / absent.
    Has(&'static str),
    Lacks(&'static str),
    /// Super-block option present / absent.
    Super(&'static str),
    NoSuper(&'static str),
    /// Neither relatime nor noatime (strictatime).
    Strict,
    /// The mount exists (the option was understood).
    Mounted,
}

fn check(m: &MountLine, w: Want) -> bool {
    match w {
        Want::Has(o) => m.has(o),
        Want::Lacks(o) => !m.has(o),
        Want::Super(o) => m.has_super(o),
        Want::NoSuper(o) => !m.has_super(o),
        Want::Strict => !m.has("relatime") && !m.has("noatime"),
        Want::Mounted => true,
    }
}

fn describe(w: Want) -> String {
    match w {
        Want::Has(o) => format!("the mount should have {o}"),
        Want::Lacks(o) => format!("the mount should not have {o}"),
        Want::Super(o) => format!("the superblock should have {o}"),
        Want::NoSuper(o) => format!("the superblock should not have {o}"),
        Want::Strict => "the mount should use strictatime (neither relatime nor noatime)".into(),
        Want::Mounted => "the mount should exist".into(),
    }
}

/// (option, level, options given, expectation) on a tmpfs.
const TMPFS: &[(&str, Level, &[&str], Want)] = &[
    ("async", Level::Must, &["sync", "async"], Want::NoSuper("sync")),
    ("atime", Level::Must, &["noatime", "atime"], Want::Lacks("noatime")),
    ("defaults", Level::Must, &["defaults"], Want::Has("rw")),
    ("dev", Level::Must, &["nodev", "dev"], Want::Lacks("nodev")),
    (
        "diratime",
        Level::Must,
        &["nodiratime", "diratime"],
        Want::Lacks("nodiratime"),
    ),
    ("dirsync", Level::Must, &["dirsync"], Want::Super("dirsync")),
    ("exec", Level::Must, &["noexec", "exec"], Want::Lacks("noexec")),
    ("iversion", Level::Must, &["iversion"], Want::Mounted),
    ("lazytime", Level::Must, &["lazytime"], Want::Super("lazytime")),
    ("loud", Level::Must, &["silent", "loud"], Want::Mounted),
    ("noatime", Level::Must, &["noatime"], Want::Has("noatime")),
    ("nodev", Level::Must, &["nodev"], Want::Has("nodev")),
    ("nodiratime", Level::Must, &["nodiratime"], Want::Has("nodiratime")),
    ("noexec", Level::Must, &["noexec"], Want::Has("noexec")),
    ("noiversion", Level::Must, &["noiversion"], Want::Mounted),
    (
        "nolazytime",
        Level::Must,
        &["lazytime", "nolazytime"],
        Want::NoSuper("lazytime"),
    ),
    ("norelatime", Level::Must, &["norelatime"], Want::Mounted),
    (
        "nostrictatime",
        Level::Must,
        &["strictatime", "nostrictatime"],
        Want::Has("relatime"),
    ),
    ("nosuid", Level::Must, &["nosuid"], Want::Has("nosuid")),
    ("nosymfollow", Level::Should, &["nosymfollow"], Want::Has("nosymfollow")),
    ("ro", Level::Must, &["ro"], Want::Has("ro")),
    ("rw", Level::Must, &["ro", "rw"], Want::Has("rw")),
    ("silent", Level::Must, &["silent"], Want::Mounted),
    ("strictatime", Level::Must, &["strictatime"], Want::Strict),
    ("suid", Level::Must, &["nosuid", "suid"], Want::Lacks("nosuid")),
    ("sync", Level::Must, &["sync"], Want::Super("sync")),
    (
        "symfollow",
        Level::Should,
        &["nosymfollow", "symfollow"],
        Want::Lacks("nosymfollow"),
    ),
];

/// Recursive options: (option, flags the host gives the submount, expectation on both mounts).
const RECURSIVE: &[(&str, libc::c_ulong, Want)] = &[
    ("rro", 0, Want::Has("ro")),
    ("rrw", libc::MS_RDONLY, Want::Has("rw")),
    ("rnosuid", 0, Want::Has("nosuid")),
    ("rsuid", libc::MS_NOSUID, Want::Lacks("nosuid")),
    ("rnodev", 0, Want::Has("nodev")),
    ("rdev", libc::MS_NODEV, Want::Lacks("nodev")),
    ("rnoexec", 0, Want::Has("noexec")),
    ("rexec", libc::MS_NOEXEC, Want::Lacks("noexec")),
    ("rnoatime", 0, Want::Has("noatime")),
    ("ratime", libc::MS_NOATIME, Want::Lacks("noatime")),
    ("rnodiratime", 0, Want::Has("nodiratime")),
    ("rdiratime", libc::MS_NODIRATIME, Want::Lacks("nodiratime")),
    ("rrelatime", libc::MS_STRICTATIME, Want::Has("relatime")),
    ("rnorelatime", 0, Want::Mounted),
    ("rstrictatime", 0, Want::Strict),
    ("rnostrictatime", libc::MS_STRICTATIME, Want::Has("relatime")),
    ("rnosymfollow", 0, Want::Has("nosymfollow")),
    ("rsymfollow", 256 /* MS_NOSYMFOLLOW */, Want::Lacks("nosymfollow")),
];

const SECTION: &str = "config.md/linux-mount-options";

pub fn tests() -> Vec<Test> {
    let mut v = Vec::new();
    for &(name, level, opts, want) in TMPFS {
        let t = move |cx: &Ctx| tmpfs_option(cx, opts, want);
        v.push(match level {
            Level::Must => must(format!("{SECTION}/{name}"), t),
            Level::Should => should(format!("{SECTION}/{name}"), t),
        });
    }
    v.push(must(format!("{SECTION}/relatime"), relatime));
    v.push(must(format!("{SECTION}/remount"), remount));
    v.push(must(format!("{SECTION}/bind"), bind));
    v.push(must(format!("{SECTION}/rbind"), rbind));
    // (option, bind kind, source shared on the host). For the slave
    // options the rootfs is shared too (rootfsPropagation), so the bind
    // would be shared without the option.
    for (name, base, src_shared) in [
        ("shared", "bind", false),
        ("rshared", "rbind", false),
        ("private", "bind", true),
        ("rprivate", "rbind", true),
        ("slave", "bind", true),
        ("rslave", "rbind", true),
        ("unbindable", "bind", false),
        ("runbindable", "rbind", false),
    ] {
        v.push(must(format!("{SECTION}/{name}"), move |cx| {
            propagation(cx, name, base, src_shared)
        }));
    }
    for &(name, sub_flags, want) in RECURSIVE {
        v.push(should(format!("{SECTION}/{name}"), move |cx| {
            recursive(cx, name, sub_flags, want)
        }));
    }
    v.push(should(format!("{SECTION}/idmap"), |cx| idmap(cx, "idmap")));
    v.push(should(format!("{SECTION}/ridmap"), |cx| idmap(cx, "ridmap")));
    v.push(should(format!("{SECTION}/idmap-without-mappings-error"), |cx| {
        let mut c = cx.ctr();
        let src = bind_source(cx, libc::MS_PRIVATE, 0)?;
        c.add_mount(json!({"destination": "/oc-m", "type": "bind", "source": src, "options": ["bind", "idmap"]}));
        c.expect_create_error()
    }));
    v.push(should(format!("{SECTION}/unknown-as-filesystem-data"), |cx| {
        let mut c = cx.ctr();
        c.add_mount(
            json!({"destination": "/oc-m", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m", "mode=711"]}),
        );
        c.payload(&["mountinfo"]);
        let m = mount_at(&c.run()?, "/oc-m")?;
        ensure!(
            m.has_super("size=1024k") && m.has_super("mode=711"),
            "tmpfs data size=1m,mode=711 not applied: {:?}",
            m.super_opts
        );
        Ok(())
    }));
    v
}

fn tmpfs_option(cx: &Ctx, opts: &[&str], want: Want) -> Res {
    let mut c = cx.ctr();
    c.add_mount(json!({"destination": "/oc-m", "type": "tmpfs", "source": "tmpfs", "options": opts}));
    c.payload(&["mountinfo"]);
    let kv = c.run()?;
    let m = mount_at(&kv, "/oc-m")?;
    ensure!(
        check(&m, want),
        "options {opts:?}: {}; mount options {:?}, superblock {:?}",
        describe(want),
        m.opts,
        m.super_opts
    );
    Ok(())
}

/// `relatime` on a bind of a strictatime mount: without the option the
/// bind keeps strictatime.
fn relatime(cx: &Ctx) -> Res {
    let src = bind_source(cx, libc::MS_PRIVATE, 0)?;
    berth_integration::host::mount(
        None,
        &src,
        None,
        libc::MS_REMOUNT | libc::MS_BIND | libc::MS_STRICTATIME,
        None,
    )
    .map_err(|e| format!("remount {} strictatime: {e}", src.display()))?;
    let mut c = cx.ctr();
    c.add_mount(json!({"destination": "/oc-m", "type": "bind", "source": src, "options": ["bind", "relatime"]}));
    c.payload(&["mountinfo"]);
    let m = mount_at(&c.run()?, "/oc-m")?;
    ensure!(
        m.has("relatime"),
        "relatime on a bind of a strictatime mount: options {:?}",
        m.opts
    );
    Ok(())
}

fn remount(cx: &Ctx) -> Res {
    let mut c = cx.ctr();
    c.add_mount(json!({"destination": "/oc-m", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}));
    c.add_mount(json!({"destination": "/oc-m", "type": "tmpfs", "source": "tmpfs", "options": ["remount", "ro"]}));
    c.payload(&["mountinfo"]);
    let kv = c.run()?;
    let m = mount_at(&kv, "/oc-m")?;
    ensure!(m.count == 1, "remount stacked a new mount: {} mounts at /oc-m", m.count);
    ensure!(m.has("ro"), "remount,ro did not make /oc-m read-only: {:?}", m.opts);
    Ok(())
}

fn bind(cx: &Ctx) -> Res {
    let src = bind_source(cx, libc::MS_PRIVATE, 0)?;
    let mut c = cx.ctr();
    c.add_mount(json!({"destination": "/oc-m", "type": "bind", "source": src, "options": ["bind"]}));
    c.payload(&["read", "/oc-m/file", "--", "mountinfo"]);
    let kv = c.run()?;
    ensure!(
        kv.get("read./oc-m/file").is_some_and(|r| r.starts_with("ok")),
        "the bind-mounted file is not readable: {:?}",
        kv.get("read./oc-m/file")
    );
    ensure!(
        super::util::mount_lines(&kv, "/oc-m/sub").is_empty(),
        "a plain bind mount carried the submount along (that is rbind)"
    );
    Ok(())
}

fn rbind(cx: &Ctx) -> Res {
    let src = bind_source(cx, libc::MS_PRIVATE, 0)?;
    let mut c = cx.ctr();
    c.add_mount(json!({"destination": "/oc-m", "type": "bind", "source": src, "options": ["rbind"]}));
    c.payload(&["read", "/oc-m/sub/sub-file"]);
    let kv = c.run()?;
    let r = kv.req("read./oc-m/sub/sub-file")?;
    ensure!(
        r.starts_with("ok"),
        "the submount is not visible through the rbind: {r}"
    );
    Ok(())
}

fn propagation(cx: &Ctx, name: &str, base: &str, src_shared: bool) -> Res {
    let prop = if src_shared { libc::MS_SHARED } else { libc::MS_PRIVATE };
    let src = bind_source(cx, prop, 0)?;
    let opts = vec![base, name];
    let mut c = cx.ctr();
    if name.ends_with("slave") {
        c.set("/linux/rootfsPropagation", json!("shared"));
    }
    c.add_mount(json!({"destination": "/oc-m", "type": "bind", "source": src, "options": opts}));
    c.payload(&["mountinfo"]);
    let kv = c.run()?;
    let mut points = vec!["/oc-m"];
    if base == "rbind" {
        points.push("/oc-m/sub");
    }
    for mp in points {
        let m = mount_at(&kv, mp)?;
        let has = |k: &str| m.optional.iter().any(|o| o.starts_with(k));
        let ok = match name.trim_start_matches('r') {
            "shared" => has("shared:"),
            "private" => !has("shared:") && !has("master:"),
            "slave" => has("master:") && !has("shared:"),
            "unbindable" => has("unbindable"),
            _ => false,
        };
        ensure!(ok, "options {opts:?}: {mp} has propagation {:?}", m.propagation());
    }
    Ok(())
}

fn recursive(cx: &Ctx, name: &str, sub_flags: libc::c_ulong, want: Want) -> Res {
    let src = bind_source(cx, libc::MS_PRIVATE, sub_flags)?;
    let mut c = cx.ctr();
    c.add_mount(json!({"destination": "/oc-m", "type": "bind", "source": src, "options": ["rbind", name]}));
    c.payload(&["mountinfo"]);
    let kv = c.run()?;
    for mp in ["/oc-m", "/oc-m/sub"] {
        let m = mount_at(&kv, mp)?;
        ensure!(
            check(&m, want),
            "{name} on an rbind: {mp}: {}; options {:?}",
            describe(want),
            m.opts
        );
    }
    Ok(())
}

/// An id-mapped bind mount with the mapping 0 -> 1000 (the mapping of a
/// user namespace: ids of the source filesystem are container ids): files
/// owned by 0 on disk show as 1000 in a container without a user namespace.
fn idmap(cx: &Ctx, opt: &str) -> Res {
    let src = bind_source(cx, libc::MS_PRIVATE, 0)?;
    let mut c = cx.ctr();
    c.add_mount(json!({
        "destination": "/oc-m", "type": "bind", "source": src, "options": ["rbind", opt],
        "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
        "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]
    }));
    c.payload(&["stat", "/oc-m/file", "/oc-m/sub/sub-file"]);
    let kv: Kv = c.run()?;
    let top = kv.req("stat./oc-m/file")?;
    let sub = kv.req("stat./oc-m/sub/sub-file")?;
    ensure!(
        top.contains("uid=1000 gid=1000"),
        "{opt}: a file owned by 0:0 on disk shows as {top} (want uid=1000 gid=1000 through the mapping 0 -> 1000)"
    );
    if opt == "ridmap" {
        ensure!(
            sub.contains("uid=1000 gid=1000"),
            "ridmap: the submount is not id-mapped: {sub}"
        );
    }
    Ok(())
}
