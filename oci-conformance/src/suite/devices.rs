//! config-linux.md "Devices" and "Default Devices".

use std::fs;

use serde_json::json;

use super::{must, Test};
use crate::ctx::{Ctx, Res};
use crate::ensure;

pub fn tests() -> Vec<Test> {
    let d = "config-linux.md/devices";
    let dd = "config-linux.md/default-devices";
    let mut v = vec![
        must(format!("{d}/char-device"), |cx| {
            device(cx, json!({"type": "c", "major": 1, "minor": 3}), "type=c", "rdev=1:3")
        }),
        must(format!("{d}/block-device"), |cx| {
            device(
                cx,
                json!({"type": "b", "major": 7, "minor": 250}),
                "type=b",
                "rdev=7:250",
            )
        }),
        must(format!("{d}/unbuffered-char-device"), |cx| {
            device(cx, json!({"type": "u", "major": 1, "minor": 5}), "type=c", "rdev=1:5")
        }),
        must(format!("{d}/fifo"), |cx| device(cx, json!({"type": "p"}), "type=p", "")),
        must(format!("{d}/file-mode"), |cx| {
            device(
                cx,
                json!({"type": "c", "major": 1, "minor": 3, "fileMode": 0o640}),
                "mode=0640",
                "",
            )
        }),
        must(format!("{d}/owner"), |cx| {
            device(
                cx,
                json!({"type": "c", "major": 1, "minor": 3, "uid": 1000, "gid": 1001}),
                "uid=1000 gid=1001",
                "",
            )
        }),
        must(format!("{d}/existing-file-mismatch-error"), |cx| {
            let mut c = cx.ctr();
            c.make()?;
            fs::write(c.rootfs().join("oc-existing"), "a regular file").map_err(|e| format!("{e}"))?;
            c.set(
                "/linux/devices",
                json!([{"path": "/oc-existing", "type": "c", "major": 1, "minor": 3}]),
            );
            c.expect_create_error()
        }),
    ];
    for (name, rdev, check) in [
        ("null", "1:3", "ok read=0"),
        ("zero", "1:5", "ok"),
        ("full", "1:7", "ok write=ENOSPC(28)"),
        ("random", "1:8", "ok"),
        ("urandom", "1:9", "ok"),
        ("tty", "5:0", ""),
    ] {
        v.push(must(format!("{dd}/dev-{name}"), move |cx| {
            default_device(cx, name, rdev, check)
        }));
    }
    v.push(must(format!("{dd}/dev-ptmx"), ptmx));
    v.push(must(format!("{dd}/dev-console-with-terminal"), console));
    v
}

fn device(cx: &Ctx, mut dev: serde_json::Value, want1: &str, want2: &str) -> Res {
    let mut c = cx.ctr();
    dev["path"] = json!("/dev/oc-dev");
    c.set("/linux/devices", json!([dev]));
    c.payload(&["stat", "/dev/oc-dev"]);
    let kv = c.run()?;
    let st = kv.req("stat./dev/oc-dev")?;
    ensure!(
        st.contains(want1) && st.contains(want2),
        "/dev/oc-dev for {dev}: {st} (want {want1} {want2})"
    );
    Ok(())
}

fn default_device(cx: &Ctx, name: &str, rdev: &str, check: &str) -> Res {
    let mut c = cx.ctr();
    let p = format!("/dev/{name}");
    c.payload(&["stat", &p, "--", "devcheck"]);
    let kv = c.run()?;
    let st = kv.req(&format!("stat.{p}"))?;
    ensure!(
        st.contains("type=c") && st.contains(&format!("rdev={rdev} ")),
        "{p}: {st}, want a character device {rdev}"
    );
    let used = kv.req(&format!("dev.{p}"))?;
    let ok = if name == "tty" {
        // No controlling terminal: ENXIO is the device answering.
        used == "ok" || used.contains("ENXIO")
    } else {
        used == check
    };
    ensure!(
        ok,
        "using {p}: {used} (want {})",
        if check.is_empty() { "ok or ENXIO" } else { check }
    );
    Ok(())
}

fn ptmx(cx: &Ctx) -> Res {
    let mut c = cx.ctr();
    c.payload(&["stat", "/dev/ptmx", "/dev/pts/ptmx"]);
    let kv = c.run()?;
    let st = kv.req("stat./dev/ptmx")?;
    let link_ok = st.contains("type=l") && (st.ends_with("link=pts/ptmx") || st.ends_with("link=/dev/pts/ptmx"));
    // A bind mount of /dev/pts/ptmx shows the same device (5:2).
    let bind_ok = st.contains("type=c") && st.contains("rdev=5:2 ");
    ensure!(
        link_ok || bind_ok,
        "/dev/ptmx: {st}; want a symlink to pts/ptmx or a bind of /dev/pts/ptmx"
    );
    Ok(())
}

fn console(cx: &Ctx) -> Res {
    let kv = super::process::on_terminal(cx, None)?;
    let st = kv.req("stat./dev/console")?;
    // The pty's slave: a character device of a Unix98 pty major (136-143).
    let major: u32 = st
        .split("rdev=")
        .nth(1)
        .and_then(|r| r.split(':').next())
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    ensure!(
        st.contains("type=c") && (136..=143).contains(&major),
        "/dev/console: {st}; want the terminal's pty bind-mounted"
    );
    Ok(())
}
