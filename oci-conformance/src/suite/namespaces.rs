//! config-linux.md "Namespaces", "User namespace mappings", "Offset for
//! Time Namespace".

use std::fs;
use std::os::unix::fs::MetadataExt;

use serde_json::{json, Value};

use super::util::my_ns;
use super::{must, should, Test};
use crate::ctx::{Ctr, Ctx, Res};
use crate::ensure;

/// (spec type, /proc/PID/ns name)
const KINDS: [(&str, &str); 8] = [
    ("pid", "pid"),
    ("network", "net"),
    ("mount", "mnt"),
    ("ipc", "ipc"),
    ("uts", "uts"),
    ("user", "user"),
    ("cgroup", "cgroup"),
    ("time", "time"),
];

const MAP: [(&str, u32, u32, u32); 1] = [("", 0, 100000, 65536)];

pub fn tests() -> Vec<Test> {
    let ns = "config-linux.md/namespaces";
    let mut v = Vec::new();
    for (ty, proc_name) in KINDS {
        v.push(must(format!("{ns}/{ty}-new"), move |cx| new_ns(cx, ty, proc_name)));
        v.push(must(format!("{ns}/{ty}-inherited"), move |cx| {
            inherited(cx, ty, proc_name)
        }));
        v.push(must(format!("{ns}/{ty}-join-path"), move |cx| join(cx, ty, proc_name)));
    }
    v.push(must(format!("{ns}/path-wrong-type-error"), |cx| {
        let mut c = cx.ctr();
        c.set("/linux/namespaces", json!([{"type": "pid"}, {"type": "mount"}, {"type": "network", "path": format!("/proc/{}/ns/uts", std::process::id())}]));
        c.expect_create_error()
    }));
    v.push(must(format!("{ns}/path-absolute"), |cx| {
        let mut c = cx.ctr();
        c.set("/linux/namespaces", json!([{"type": "pid"}, {"type": "mount"}, {"type": "network", "path": format!("proc/{}/ns/net", std::process::id())}]));
        c.expect_create_error()
    }));
    v.push(must(format!("{ns}/duplicate-error"), |cx| {
        let mut c = cx.ctr();
        c.set(
            "/linux/namespaces",
            json!([{"type": "pid"}, {"type": "mount"}, {"type": "pid"}]),
        );
        c.expect_create_error()
    }));
    let um = "config-linux.md/user-namespace-mappings";
    v.push(must(format!("{um}/uid-mappings"), |cx| mappings(cx, "uid_map")));
    v.push(must(format!("{um}/gid-mappings"), |cx| mappings(cx, "gid_map")));
    v.push(should(format!("{um}/rootfs-ownership-unchanged"), rootfs_unchanged));
    let to = "config-linux.md/offset-for-time-namespace";
    v.push(must(format!("{to}/monotonic"), |cx| {
        time_offset(cx, "monotonic", "CLOCK_MONOTONIC")
    }));
    v.push(must(format!("{to}/boottime"), |cx| {
        time_offset(cx, "boottime", "CLOCK_BOOTTIME")
    }));
    v
}

fn add_user_mappings(c: &mut Ctr) {
    let m: Vec<Value> = MAP
        .iter()
        .map(|(_, c, h, s)| json!({"containerID": c, "hostID": h, "size": s}))
        .collect();
    c.set("/linux/uidMappings", json!(m));
    c.set("/linux/gidMappings", json!(m));
}

/// Namespaces of the default config plus `ty`, with what `ty` needs.
fn with_ns(c: &mut Ctr, ty: &str) {
    let mut kinds = vec!["pid", "network", "ipc", "uts", "mount"];
    if !kinds.contains(&ty) {
        kinds.push(ty);
    }
    c.namespaces(&kinds);
    if ty == "user" {
        add_user_mappings(c);
    }
}

fn new_ns(cx: &Ctx, ty: &str, proc_name: &str) -> Res {
    let mut c = cx.ctr();
    with_ns(&mut c, ty);
    let kv = c.run()?;
    let theirs = kv.req(&format!("ns.{proc_name}"))?;
    ensure!(
        theirs != my_ns(proc_name),
        "the container shares the runtime's {ty} namespace ({theirs})"
    );
    Ok(())
}

fn inherited(cx: &Ctx, ty: &str, proc_name: &str) -> Res {
    let mut c = cx.ctr();
    let kinds: Vec<&str> = ["pid", "network", "ipc", "uts", "mount"]
        .into_iter()
        .filter(|k| *k != ty)
        .collect();
    c.namespaces(&kinds);
    let mut reference = my_ns(proc_name);
    match ty {
        "uts" => c.remove("/hostname"),
        "network" => {
            // sysfs of the host's network namespace: bind it instead.
            let mounts = c.config["mounts"].as_array().cloned().unwrap_or_default();
            let kept: Vec<Value> = mounts.into_iter().filter(|m| m["destination"] != "/sys").collect();
            c.set("/mounts", json!(kept));
            c.add_mount(json!({"destination": "/sys", "type": "bind", "source": "/sys", "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]}));
        }
        "mount" => {
            // Without a mount namespace the runtime mounts (and pivots) in
            // its own: give it a disposable one.
            let h = cx.holder("mount")?;
            let p = h.ns("mnt");
            reference = fs::read_link(&p)
                .map(|l| l.display().to_string())
                .map_err(|e| format!("{e}"))?;
            c.setns = Some(p.into());
        }
        _ => {}
    }
    let kv = c.run()?;
    let theirs = kv.req(&format!("ns.{proc_name}"))?;
    ensure!(
        theirs == reference,
        "{ty} is not listed, but the container is in {ty} namespace {theirs}, not the runtime's {reference}"
    );
    Ok(())
}

fn join(cx: &Ctx, ty: &str, proc_name: &str) -> Res {
    let h = cx.holder(proc_name)?;
    if ty == "user" {
        for f in ["uid_map", "gid_map"] {
            let (_, c, host, size) = MAP[0];
            fs::write(format!("/proc/{}/{f}", h.pid), format!("{c} {host} {size}\n"))
                .map_err(|e| format!("write {f} of the holder: {e}"))?;
        }
    }
    let path = h.ns(proc_name);
    let want = fs::read_link(&path)
        .map(|l| l.display().to_string())
        .map_err(|e| format!("{e}"))?;
    let mut c = cx.ctr();
    let mut list: Vec<Value> = ["pid", "network", "ipc", "uts", "mount"]
        .iter()
        .filter(|k| **k != ty)
        .map(|k| json!({"type": k}))
        .collect();
    list.push(json!({"type": ty, "path": path}));
    c.set("/linux/namespaces", json!(list));
    if ty == "uts" {
        // Do not rename a namespace the container only joins.
        c.remove("/hostname");
    }
    let kv = c.run()?;
    let theirs = kv.req(&format!("ns.{proc_name}"))?;
    ensure!(
        theirs == want,
        "the container is in {ty} namespace {theirs}, not the one at the path ({want})"
    );
    Ok(())
}

fn mappings(cx: &Ctx, file: &str) -> Res {
    let mut c = cx.ctr();
    with_ns(&mut c, "user");
    let kv = c.run()?;
    let got = kv.all(file);
    ensure!(
        got == ["0 100000 65536"],
        "{file} in the container: {got:?}, want [\"0 100000 65536\"]"
    );
    Ok(())
}

fn rootfs_unchanged(cx: &Ctx) -> Res {
    let mut c = cx.ctr();
    with_ns(&mut c, "user");
    c.make()?;
    let owners = |c: &Ctr| -> Vec<(String, u32, u32)> {
        ["", "bin", "bin/busybox", "etc", "oc-payload"]
            .iter()
            .filter_map(|p| {
                fs::symlink_metadata(c.rootfs().join(p))
                    .ok()
                    .map(|m| (p.to_string(), m.uid(), m.gid()))
            })
            .collect()
    };
    let before = owners(&c);
    c.run()?;
    let after = owners(&c);
    ensure!(
        before == after,
        "the rootfs ownership changed: before {before:?}, after {after:?}"
    );
    Ok(())
}

fn time_offset(cx: &Ctx, clock: &str, clock_id: &str) -> Res {
    let mut c = cx.ctr();
    with_ns(&mut c, "time");
    let secs: i64 = 86_400 * 1000;
    c.set("/linux/timeOffsets", json!({clock: {"secs": secs, "nanosecs": 0}}));
    let kv = c.run()?;
    let offs = kv.all("timens_offsets");
    ensure!(
        offs.contains(&format!("{clock} {secs} 0").as_str()),
        "timens_offsets {offs:?}, want {clock} {secs} 0"
    );
    let now: i64 = kv.req(&format!("clock.{clock_id}"))?.parse().unwrap_or(0);
    ensure!(
        now >= secs,
        "{clock_id} reads {now}s in the container, below the offset {secs}s"
    );
    Ok(())
}
