//! config.md: specification version, root, annotations, extensibility,
//! valid values. config-linux.md: sysctl, network devices, memory policy.

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::json;

use super::{must, Test};
use crate::ctx::{Ctr, Ctx, Res};
use crate::{ensure, skip};

pub fn config_tests() -> Vec<Test> {
    vec![
        must("config.md/specification-version/invalid-error", |cx| {
            let mut c = cx.ctr();
            c.set("/ociVersion", json!("not-a-version"));
            c.expect_create_error()
        }),
        must("config.md/root/path-must-exist", |cx| {
            let mut c = cx.ctr();
            c.set("/root/path", json!("no-such-rootfs"));
            c.expect_create_error()
        }),
        must("config.md/root/readonly", |cx| {
            let mut c = cx.ctr();
            c.set("/root/readonly", json!(true));
            c.payload(&["write", "/oc-write-test"]);
            let kv = c.run()?;
            let r = kv.req("write./oc-write-test")?;
            ensure!(r.contains("EROFS"), "writing to / with root.readonly: {r}, want EROFS");
            Ok(())
        }),
        must("config.md/root/readonly-default-false", |cx| {
            let mut c = cx.ctr();
            c.remove("/root/readonly");
            c.payload(&["write", "/oc-write-test"]);
            let kv = c.run()?;
            let r = kv.req("write./oc-write-test")?;
            ensure!(r == "ok", "writing to / without root.readonly: {r}, want ok");
            Ok(())
        }),
        must("config.md/annotations/empty-key-error", |cx| {
            let mut c = cx.ctr();
            c.set("/annotations", json!({"": "value"}));
            c.expect_create_error()
        }),
        must("config.md/annotations/non-string-value-error", |cx| {
            let mut c = cx.ctr();
            c.set("/annotations", json!({"org.example.oc": 1}));
            c.expect_create_error()
        }),
        must("config.md/annotations/unknown-keys-ignored", |cx| {
            let mut c = cx.ctr();
            c.set(
                "/annotations",
                json!({"com.example.oc.unknown": "x", "org.opencontainers.image.os": "linux"}),
            );
            c.run().map(|_| ())
        }),
        must("config.md/extensibility/unknown-properties-ignored", |cx| {
            let mut c = cx.ctr();
            c.set("/ocUnknownTop", json!({"nested": [1, 2]}));
            c.set("/process/ocUnknown", json!("x"));
            c.set("/linux/ocUnknown", json!(true));
            c.set("/root/ocUnknown", json!(1));
            if let Some(m) = c.config["mounts"].get_mut(0) {
                m["ocUnknown"] = json!("x");
            }
            c.set("/linux/namespaces/0/ocUnknown", json!("x"));
            let kv = c.run()?;
            ensure!(kv.get("pid").is_some(), "the container did not run");
            Ok(())
        }),
        must("config.md/valid-values/unsupported-value-error", |cx| {
            let mut c = cx.ctr();
            c.set(
                "/linux/namespaces",
                json!([{"type": "pid"}, {"type": "mount"}, {"type": "oc-bogus"}]),
            );
            c.expect_create_error()
        }),
    ]
}

pub fn linux_tests() -> Vec<Test> {
    let nd = "config-linux.md/network-devices";
    vec![
        must("config-linux.md/sysctl/applied", |cx| {
            let mut c = cx.ctr();
            c.set(
                "/linux/sysctl",
                json!({"net.ipv4.ip_forward": "1", "kernel.msgmax": "4321"}),
            );
            c.payload(&["read", "/proc/sys/net/ipv4/ip_forward", "/proc/sys/kernel/msgmax"]);
            let kv = c.run()?;
            let a = kv.req("read./proc/sys/net/ipv4/ip_forward")?;
            let b = kv.req("read./proc/sys/kernel/msgmax")?;
            ensure!(
                a.ends_with("first=1") && b.ends_with("first=4321"),
                "net.ipv4.ip_forward: {a}; kernel.msgmax: {b}"
            );
            Ok(())
        }),
        must(format!("{nd}/moved"), |cx| {
            let (mut c, host) = netdev(cx, None)?;
            let kv = c.run()?;
            ensure!(
                kv.get("ls./sys/class/net")
                    .is_some_and(|l| l.split(',').any(|n| n == host)),
                "{host} is not in the container: {:?}",
                kv.get("ls./sys/class/net")
            );
            ensure!(
                !std::path::Path::new(&format!("/sys/class/net/{host}")).exists(),
                "{host} is still in the host's namespace"
            );
            Ok(())
        })
        .since("1.3.0"),
        must(format!("{nd}/renamed"), |cx| {
            let (mut c, _) = netdev(cx, Some("oc-eth"))?;
            let kv = c.run()?;
            ensure!(
                kv.get("ls./sys/class/net")
                    .is_some_and(|l| l.split(',').any(|n| n == "oc-eth")),
                "no oc-eth in the container: {:?}",
                kv.get("ls./sys/class/net")
            );
            Ok(())
        })
        .since("1.3.0"),
        must(format!("{nd}/state-up"), |cx| {
            let (mut c, _) = netdev(cx, Some("oc-eth"))?;
            let kv = c.run()?;
            let flags = kv.req("read./sys/class/net/oc-eth/flags")?;
            let v = flags
                .rsplit("first=0x")
                .next()
                .and_then(|h| u32::from_str_radix(h.trim(), 16).ok())
                .unwrap_or(0);
            ensure!(v & 1 == 1, "oc-eth flags {flags}: not up (IFF_UP)");
            Ok(())
        })
        .since("1.3.0"),
        must(format!("{nd}/addresses-preserved"), |cx| {
            let (mut c, _) = netdev(cx, Some("oc-eth"))?;
            c.sh(&format!(
                "ip -4 addr show dev oc-eth; {} ls /sys/class/net",
                crate::bundle::PAYLOAD_IN_CTR
            ));
            c.create_ok()?;
            c.start_ok()?;
            c.wait_stopped()?;
            let out = c.output();
            ensure!(
                out.contains("10.231."),
                "the permanent address of the device is gone in the container: {}",
                crate::proc::squeeze(&out, 300)
            );
            Ok(())
        })
        .since("1.3.0"),
        must(format!("{nd}/existing-name-error"), |cx| {
            let (mut c, _) = netdev(cx, Some("lo"))?;
            c.expect_create_error()
        })
        .since("1.3.0"),
        must("config-linux.md/memory-policy/mode-and-nodes", |cx| {
            let mut c = cx.ctr();
            c.set("/linux/memoryPolicy", json!({"mode": "MPOL_BIND", "nodes": "0"}));
            let kv = c.run()?;
            ensure!(
                kv.get("mempolicy") == Some("2 0x1"),
                "memory policy (mode nodemask) {:?}, want \"2 0x1\" (MPOL_BIND, node 0)",
                kv.get("mempolicy")
            );
            Ok(())
        })
        .since("1.3.0"),
        must("config-linux.md/memory-policy/flags", |cx| {
            let mut c = cx.ctr();
            c.set(
                "/linux/memoryPolicy",
                json!({"mode": "MPOL_INTERLEAVE", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES"]}),
            );
            let kv = c.run()?;
            let want = format!("{} 0x1", 3 | (1 << 15));
            ensure!(
                kv.get("mempolicy") == Some(want.as_str()),
                "memory policy {:?}, want {want:?} (MPOL_INTERLEAVE|MPOL_F_STATIC_NODES, node 0)",
                kv.get("mempolicy")
            );
            Ok(())
        })
        .since("1.3.0"),
        must("config-linux.md/memory-policy/invalid-mode-error", |cx| {
            let mut c = cx.ctr();
            c.set("/linux/memoryPolicy", json!({"mode": "MPOL_OC_BOGUS"}));
            c.expect_error().map(|_| ())
        })
        .since("1.3.0"),
    ]
}

static NETDEV: AtomicUsize = AtomicUsize::new(0);

/// A veth pair on the host with a permanent global address on one end,
/// listed in `linux.netDevices` (renamed to `name` if given). The payload
/// lists /sys/class/net and reads the device's flags.
fn netdev(cx: &Ctx, name: Option<&str>) -> Res<(Ctr, String)> {
    let n = NETDEV.fetch_add(1, Ordering::SeqCst);
    let host = format!("ocv{}n{n}", std::process::id() % 100_000);
    let peer = format!("{host}p");
    let ip = |args: &[&str]| -> Result<(), String> {
        let _g = crate::proc::spawning();
        let o = Command::new("ip")
            .args(args)
            .output()
            .map_err(|e| format!("run ip: {e}"))?;
        if o.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&o.stderr).trim().to_string())
        }
    };
    if let Err(e) = ip(&["link", "add", &host, "type", "veth", "peer", "name", &peer]) {
        skip!("cannot create a veth pair on this host (ip link add ... type veth): {e}");
    }
    let p2 = peer.clone();
    cx.on_cleanup(move || {
        let _g = crate::proc::spawning();
        let _ = Command::new("ip").args(["link", "del", &p2]).output();
    });
    ip(&["addr", "add", &format!("10.231.{}.1/24", n % 250), "dev", &host]).map_err(|e| format!("ip addr add: {e}"))?;
    let mut c = cx.ctr();
    let inner = name.unwrap_or(&host).to_string();
    let entry = match name {
        Some(nm) => json!({"name": nm}),
        None => json!({}),
    };
    c.set("/linux/netDevices", json!({ host.clone(): entry }));
    c.payload(&[
        "ls",
        "/sys/class/net",
        "--",
        "read",
        &format!("/sys/class/net/{inner}/flags"),
    ]);
    Ok((c, host))
}
