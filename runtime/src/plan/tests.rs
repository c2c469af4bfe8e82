//! Tests of the plan builder: the pure conversions (id maps, time offsets,
//! hooks) and [`build`] on real bundles in a temp dir, for what it takes
//! and what it refuses before anything exists.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use oci_spec::runtime::{LinuxNamespaceType, Spec};
use serde_json::{json, Value};

use super::*;
use crate::spec::load_bundle;

fn spec(v: Value) -> Spec {
    serde_json::from_value(v).expect("a valid spec")
}

fn linux(linux: Value) -> Spec {
    spec(json!({"ociVersion": "1.2.0", "linux": linux}))
}

fn map(c: u32, h: u32, size: u32) -> Value {
    json!({"containerID": c, "hostID": h, "size": size})
}

#[test]
fn id_maps_are_the_text_the_kernel_reads() {
    let s = linux(
        json!({"uidMappings": [map(0, 1000, 1), map(1, 100000, 65536)], "gidMappings": [map(0, 1000, 1)]}),
    );
    let m = id_maps(&s).unwrap();
    assert_eq!(m.uid, "0 1000 1\n1 100000 65536\n");
    assert_eq!(m.gid, "0 1000 1\n");
}

#[test]
fn overlapping_id_ranges_are_refused_on_either_side() {
    let s = linux(json!({"uidMappings": [map(0, 1000, 10), map(5, 5000, 10)]}));
    let (path, msg) = id_maps(&s).unwrap_err();
    assert_eq!(path, "linux.uidMappings[1]");
    assert!(
        msg.contains("container ids 5-14 overlap those of linux.uidMappings[0] (0-9)"),
        "{msg}"
    );
    let s = linux(json!({"gidMappings": [map(0, 1000, 10), map(100, 1009, 1)]}));
    let (path, msg) = id_maps(&s).unwrap_err();
    assert_eq!(path, "linux.gidMappings[1]");
    assert!(msg.contains("host ids 1009-1009"), "{msg}");
    // Adjacent ranges do not overlap.
    let s = linux(json!({"uidMappings": [map(0, 1000, 10), map(10, 1010, 10)]}));
    assert!(id_maps(&s).is_ok());
}

#[test]
fn id_ranges_past_the_last_id_and_too_many_lines_are_refused() {
    let s = linux(json!({"uidMappings": [map(0, u32::MAX - 1, 2)]}));
    let (path, msg) = id_maps(&s).unwrap_err();
    assert_eq!(path, "linux.uidMappings[0]");
    assert!(msg.starts_with("hostID 4294967294 + size 2"), "{msg}");
    let s = linux(json!({"uidMappings": [map(0, 0, u32::MAX)]}));
    assert!(id_maps(&s).is_ok(), "0 + 4294967295 ends at the last id");
    let many: Vec<Value> = (0..341).map(|i| map(i, 1000 + i, 1)).collect();
    let (path, msg) = id_maps(&linux(json!({"gidMappings": many}))).unwrap_err();
    assert_eq!(
        (path.as_str(), msg.as_str()),
        (
            "linux.gidMappings",
            "341 entries; the kernel takes at most 340"
        )
    );
}

#[test]
fn time_offsets_are_written_in_a_fixed_order() {
    let s = linux(
        json!({"timeOffsets": {"monotonic": {"secs": 10, "nanosecs": 5}, "boottime": {"secs": 3600}}}),
    );
    assert_eq!(
        time_offsets(&s).unwrap().unwrap(),
        "boottime 3600 0\nmonotonic 10 5\n"
    );
    assert_eq!(time_offsets(&linux(json!({}))).unwrap(), None);
}

#[test]
fn time_offsets_the_kernel_refuses_are_config_errors() {
    let s = linux(json!({"timeOffsets": {"monotonic": {"secs": 1, "nanosecs": 1_000_000_000u32}}}));
    let (path, msg) = time_offsets(&s).unwrap_err();
    assert_eq!(path, "linux.timeOffsets.monotonic.nanosecs");
    assert_eq!(msg, "1000000000 is not below 1000000000");
    // Before the clock's zero: the machine has not been up for 2^40 s.
    let s = linux(json!({"timeOffsets": {"boottime": {"secs": -(1i64 << 40)}}}));
    let (path, msg) = time_offsets(&s).unwrap_err();
    assert_eq!(path, "linux.timeOffsets.boottime.secs");
    assert!(msg.contains("outside 0..4611686018"), "{msg}");
    let s = linux(json!({"timeOffsets": {"realtime": {"secs": 1}}}));
    assert_eq!(
        time_offsets(&s).unwrap_err().0,
        "linux.timeOffsets.realtime"
    );
}

#[test]
fn hooks_keep_their_kinds_and_say_when_init_needs_them() {
    let h = |p: &str| json!([{"path": p}]);
    let s = spec(
        json!({"ociVersion": "1.2.0", "hooks": {"prestart": h("/a"), "createRuntime": h("/b"), "poststop": h("/c")}}),
    );
    let hooks = hooks(&s);
    assert_eq!(hooks.prestart[0].path(), &PathBuf::from("/a"));
    assert_eq!(hooks.create_runtime[0].path(), &PathBuf::from("/b"));
    assert_eq!(hooks.poststop.len(), 1);
    assert!(hooks.during_setup());
    let s =
        spec(json!({"ociVersion": "1.2.0", "hooks": {"poststart": h("/a"), "poststop": h("/c")}}));
    assert!(
        !self::hooks(&s).during_setup(),
        "poststart and poststop run after setup"
    );
    assert!(!self::hooks(&spec(json!({"ociVersion": "1.2.0"}))).during_setup());
}

/// A bundle (config.json, rootfs/) and a state root in the temp dir,
/// removed on drop.
struct Dirs {
    dir: PathBuf,
}

impl Dirs {
    fn new(config: Value) -> Dirs {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "berth-plan-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("bundle/rootfs")).unwrap();
        std::fs::create_dir_all(dir.join("root")).unwrap();
        std::fs::write(
            dir.join("bundle/config.json"),
            serde_json::to_vec(&config).unwrap(),
        )
        .unwrap();
        Dirs { dir }
    }

    fn bundle(&self) -> Bundle {
        load_bundle(&self.dir.join("bundle")).expect("the config loads")
    }

    fn root(&self) -> PathBuf {
        self.dir.join("root")
    }
}

impl Drop for Dirs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn config(linux: Value) -> Value {
    json!({
        "ociVersion": "1.2.0",
        "process": {"args": ["/bin/true"], "cwd": "/", "user": {"uid": 0, "gid": 0},
                    "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]}},
        "root": {"path": "rootfs"},
        "hooks": {"poststop": [{"path": "/bin/true"}]},
        "linux": linux,
    })
}

/// The config error `build` returns for `linux`.
fn build_err(linux: Value) -> ConfigError {
    let d = Dirs::new(config(linux));
    let b = d.bundle();
    match build(&b, "plan-test", &d.root(), Default::default()) {
        Err(Error::Config(e)) => {
            assert_eq!(e.file, b.config_path.display().to_string());
            e
        }
        Err(e) => panic!("not a config error: {e}"),
        Ok(p) => panic!("built a plan: {p:?}"),
    }
}

#[test]
fn build_gathers_every_part() {
    let d = Dirs::new(config(json!({
        "namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "user"}, {"type": "time"}, {"type": "network"}],
        "uidMappings": [map(0, 100000, 65536)],
        "gidMappings": [map(0, 100000, 65536)],
        "timeOffsets": {"monotonic": {"secs": 7}},
        "cgroupsPath": "/berth-plan-test/c1",
        "resources": {"pids": {"limit": 42}},
        "memoryPolicy": {"mode": "MPOL_LOCAL"},
        "seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["kexec_load"], "action": "SCMP_ACT_ERRNO"}]},
    })));
    let b = d.bundle();
    let p = build(&b, "c1", &d.root(), Default::default()).unwrap();
    assert_eq!(
        p.process.args().as_deref(),
        Some(&["/bin/true".to_string()][..])
    );
    assert!(
        p.namespaces.has_new(LinuxNamespaceType::User)
            && p.namespaces.has_new(LinuxNamespaceType::Time)
    );
    assert!(!p.mntns_inherited);
    let kill = 1u64 << crate::security::caps::number("CAP_KILL").unwrap();
    assert_eq!(
        p.caps.map(|c| (c.effective, c.permitted, c.ambient)),
        Some((kill, kill, 0))
    );
    assert_eq!(p.id_maps.uid, "0 100000 65536\n");
    assert_eq!(p.time_offsets.as_deref(), Some("monotonic 7 0\n"));
    assert!(
        p.cgroups
            .mounts
            .iter()
            .all(|m| m.path == "/berth-plan-test/c1"),
        "{:?}",
        p.cgroups.mounts
    );
    assert_eq!(p.resources.pids_limit, Some(42));
    assert!(p.mempolicy.is_some());
    let sc = p.seccomp.as_ref().expect("a compiled filter");
    assert!(sc.filter.len() > 0 && !sc.filter.notify() && sc.listener_path.is_none());
    assert_eq!(p.hooks.poststop.len(), 1);
    assert!(p.net_devices.is_empty() && p.idmapped_mounts.is_empty() && p.apparmor.is_none());
    assert!(
        !p.cgroups
            .mounts
            .iter()
            .any(|m| m.mountpoint.join("berth-plan-test").exists()),
        "no cgroup made"
    );
}

#[test]
fn without_a_mount_namespace_the_plan_says_inherited() {
    let d = Dirs::new(config(json!({"namespaces": [{"type": "pid"}]})));
    let b = d.bundle();
    let p = build(&b, "c2", &d.root(), Default::default()).unwrap();
    assert!(p.mntns_inherited);
    assert!(p.id_maps.uid.is_empty() && p.time_offsets.is_none());
}

#[test]
fn build_refuses_what_the_kernel_would_refuse_later() {
    let ns = json!([{"type": "mount"}, {"type": "user"}, {"type": "time"}]);
    let cases = [
        (
            json!({"namespaces": ns, "uidMappings": [map(0, 1000, 10), map(0, 2000, 1)], "gidMappings": [map(0, 1000, 1)]}),
            "linux.uidMappings[1]",
        ),
        (
            json!({"namespaces": ns, "uidMappings": [map(0, 1000, 1)], "gidMappings": [map(0, 1000, 1)],
                   "timeOffsets": {"boottime": {"secs": 0, "nanosecs": 1_500_000_000u32}}}),
            "linux.timeOffsets.boottime.nanosecs",
        ),
        (
            json!({"namespaces": [{"type": "mount"}], "cgroupsPath": "a:b:c"}),
            "linux.cgroupsPath",
        ),
        (
            json!({"namespaces": [{"type": "mount"}], "resources": {"blockIO": {"weight": 5}}}),
            "linux.resources.blockIO.weight",
        ),
        (
            json!({"namespaces": [{"type": "mount"}, {"type": "network"}], "netDevices": {"berth-no-such0": {}}}),
            "linux.netDevices.berth-no-such0",
        ),
        (
            json!({"namespaces": [{"type": "mount"}],
                   "seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "listenerMetadata": "x"}}),
            "linux.seccomp.listenerMetadata",
        ),
    ];
    for (linux, path) in cases {
        let e = build_err(linux.clone());
        assert_eq!(e.path, path, "{linux}: {e}");
    }
}

#[test]
fn build_refuses_capabilities_and_labels_before_anything_exists() {
    let mut c = config(json!({"namespaces": [{"type": "mount"}]}));
    c["process"]["capabilities"] = json!({"bounding": ["CAP_KILL"], "effective": ["CAP_KILL", "CAP_CHOWN"], "permitted": ["CAP_KILL"]});
    let d = Dirs::new(c);
    let b = d.bundle();
    let Err(Error::Config(e)) = build(&b, "c3", &d.root(), Default::default()) else {
        panic!("no config error")
    };
    assert_eq!(e.path, "process.capabilities.effective");

    let mut c = config(json!({"namespaces": [{"type": "mount"}]}));
    c["process"]["selinuxLabel"] = json!("system_u:system_r:container_t:s0");
    let d = Dirs::new(c);
    let b = d.bundle();
    let Err(Error::Config(e)) = build(&b, "c4", &d.root(), Default::default()) else {
        panic!("no config error")
    };
    assert_eq!(e.path, "process.selinuxLabel");
}

#[test]
fn idmapped_mounts_are_checked_and_planned() {
    let ns = json!([{"type": "mount"}, {"type": "user"}]);
    let mut c = config(
        json!({"namespaces": ns, "uidMappings": [map(0, 1000, 1)], "gidMappings": [map(0, 1000, 1)]}),
    );
    c["mounts"] = json!([{"destination": "/data", "type": "bind", "source": "/tmp", "options": ["rbind", "idmap"]}]);
    let d = Dirs::new(c.clone());
    let b = d.bundle();
    let p = build(&b, "c5", &d.root(), Default::default()).unwrap();
    assert_eq!(p.idmapped_mounts.len(), 1);
    let m = &p.idmapped_mounts[0];
    assert_eq!(
        (m.index, m.recursive_tree, m.recursive, m.uid_map.as_str()),
        (0, true, false, "0 1000 1\n")
    );

    c["mounts"][0]["uidMappings"] = json!([map(0, 1000, 5), map(2, 3000, 1)]);
    c["mounts"][0]["gidMappings"] = json!([map(0, 1000, 1)]);
    let d = Dirs::new(c.clone());
    let b = d.bundle();
    let Err(Error::Config(e)) = build(&b, "c6", &d.root(), Default::default()) else {
        panic!("no config error")
    };
    assert_eq!(e.path, "mounts[0].uidMappings[1]");

    c["mounts"][0]["type"] = json!("tmpfs");
    c["mounts"][0]["options"] = json!(["idmap"]);
    c["mounts"][0]["uidMappings"] = json!([map(0, 1000, 1)]);
    let d = Dirs::new(c);
    let b = d.bundle();
    let Err(Error::Config(e)) = build(&b, "c7", &d.root(), Default::default()) else {
        panic!("no config error")
    };
    assert_eq!(e.path, "mounts[0] (/data)");
    assert!(e.msg.contains("bind mounts only"), "{e}");
}
