//! What a user without root cannot have, found in the plan stage (before
//! anything is created) with what to change: a container without a user
//! namespace, linux.netDevices, a mapping outside the user's own id and its
//! /etc/subuid or /etc/subgid ranges, an oomScoreAdj below berth's own.
//! linux.resources are checked as anywhere else, then applied in the
//! user's cgroup when berth has one (the user's systemd instance, or a
//! delegated cgroup v2 subtree: `cgroups/rootless.rs`), or skipped with one
//! warning when it has none (cgroup v1, no delegation).

use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Spec};

use super::Fault;
use crate::cgroups::resources::Resources;
use crate::cgroups::ContainerCgroups;
use crate::host::subid;
use crate::host::{Host, Rootless};

/// The limits of `host` on `spec`; `ns` is the namespaces' plan. Root of
/// a user namespace (rootless Podman's runtime) needs no namespace of the
/// container's own and may map what its namespace maps: the kernel judges.
pub(super) fn check(
    spec: &Spec,
    host: &Rootless,
    ns: &crate::namespaces::Plan,
) -> Result<(), Fault> {
    if host.uid == 0 {
        return oom_score_adj(spec, current_oom_score_adj());
    }
    if !ns.has(LinuxNamespaceType::User) {
        return Err((
            "linux.namespaces".into(),
            "berth runs rootless (not as root) and needs a user namespace: add {\"type\": \"user\"} \
             with linux.uidMappings and gidMappings (`berth spec --rootless` writes such a config)"
                .into(),
        ));
    }
    let linux = spec.linux().as_ref();
    if linux
        .and_then(|l| l.net_devices().as_ref())
        .is_some_and(|d| !d.is_empty())
    {
        return Err((
            "linux.netDevices".into(),
            "moving a network device into a container needs root (CAP_NET_ADMIN on the host); \
             remove linux.netDevices or run berth as root"
                .into(),
        ));
    }
    if ns.has_new(LinuxNamespaceType::User) {
        let uids = linux
            .and_then(|l| l.uid_mappings().as_deref())
            .unwrap_or(&[]);
        let gids = linux
            .and_then(|l| l.gid_mappings().as_deref())
            .unwrap_or(&[]);
        let subuids = subid::read(std::path::Path::new("/etc/subuid"), host.uid);
        let subgids = subid::read(std::path::Path::new("/etc/subgid"), host.uid);
        mappings("linux.uidMappings", uids, host.uid, &subuids, "/etc/subuid")?;
        mappings("linux.gidMappings", gids, host.gid, &subgids, "/etc/subgid")?;
    }
    oom_score_adj(spec, current_oom_score_adj())
}

/// Each mapping's host ids must be the caller's own id (size 1) or inside
/// one of its `ranges` from `file` (both files list ranges by user name or
/// uid); an empty list maps nothing, which a rootless container cannot run
/// with.
fn mappings(
    field: &str,
    maps: &[LinuxIdMapping],
    own: u32,
    ranges: &[subid::Range],
    file: &str,
) -> Result<(), Fault> {
    if maps.is_empty() {
        return Err((
            field.into(),
            format!(
                "a new user namespace needs a mapping; map at least your own id {own} (size 1)"
            ),
        ));
    }
    for (i, m) in maps.iter().enumerate() {
        if subid::allows(ranges, own, m.host_id(), m.size()) {
            continue;
        }
        let yours: Vec<String> = ranges
            .iter()
            .map(|r| format!("{}-{}", r.first, r.first + r.count - 1))
            .collect();
        let yours = if yours.is_empty() {
            "none".to_string()
        } else {
            yours.join(", ")
        };
        let last = m.host_id() as u64 + m.size() as u64 - 1;
        return Err((
            format!("{field}[{i}]"),
            format!(
                "host ids {}-{last} are not yours to map without root: map your own id {own} (size 1) \
                 or ids of your ranges in {file} ({yours}), or add a range there",
                m.host_id()
            ),
        ));
    }
    Ok(())
}

/// berth's own oom_score_adj (what init inherits); 0 if unreadable.
fn current_oom_score_adj() -> i32 {
    std::fs::read_to_string("/proc/self/oom_score_adj")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// Lowering the OOM score needs CAP_SYS_RESOURCE on the host.
fn oom_score_adj(spec: &Spec, current: i32) -> Result<(), Fault> {
    let Some(want) = spec.process().as_ref().and_then(|p| p.oom_score_adj()) else {
        return Ok(());
    };
    if want < current {
        return Err((
            "process.oomScoreAdj".into(),
            format!(
                "{want} is below berth's own {current}: lowering it needs root (CAP_SYS_RESOURCE); \
                 set it to {current} or more, or leave it out"
            ),
        ));
    }
    Ok(())
}

/// The resources to apply on `host` in `cgroups`: all of them when it
/// manages cgroups; rootless in a cgroup of the user's, all but the device
/// rules (an eBPF program needs CAP_SYS_ADMIN on the host, and in a user
/// namespace the container can make no device node anyway: runc ignores
/// the device controller's errors rootless); rootless without a cgroup,
/// none, with one warning when the config asked for any.
pub(super) fn resources(spec: &Spec, host: &dyn Host, cgroups: &ContainerCgroups, mut r: Resources) -> Resources {
    if host.manages_cgroups() {
        return r;
    }
    if !cgroups.mounts.is_empty() {
        r.devices = None;
        return r;
    }
    if spec
        .linux()
        .as_ref()
        .and_then(|l| l.resources().as_ref())
        .is_some()
    {
        log::warn!(
            "linux.resources: skipped: berth runs {} and has no cgroup it may write (cgroup v1, or no \
             delegated cgroup v2 subtree: run berth in a scope of your systemd instance, `systemd-run \
             --user --scope`, or use --systemd-cgroup), so the container runs without limits",
            host.name()
        );
    }
    Resources::default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxIdMappingBuilder;

    fn map(inside: u32, outside: u32, size: u32) -> LinuxIdMapping {
        LinuxIdMappingBuilder::default()
            .container_id(inside)
            .host_id(outside)
            .size(size)
            .build()
            .unwrap()
    }

    fn spec(v: serde_json::Value) -> Spec {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn own_id_maps_and_others_are_named() {
        // A uid no /etc/subuid line names.
        let own = 4_000_000_000;
        let r = [subid::Range {
            first: 100000,
            count: 10,
        }];
        assert!(mappings(
            "linux.uidMappings",
            &[map(0, own, 1), map(1, 100000, 10)],
            own,
            &r,
            "/etc/subuid"
        )
        .is_ok());
        let (at, msg) = mappings(
            "linux.uidMappings",
            &[map(0, own, 1), map(1, 0, 1)],
            own,
            &[],
            "/etc/subuid",
        )
        .unwrap_err();
        assert_eq!(at, "linux.uidMappings[1]");
        assert!(
            msg.contains("host ids 0-0 are not yours") && msg.contains("/etc/subuid (none)"),
            "{msg}"
        );
        let (at, msg) = mappings(
            "linux.uidMappings",
            &[map(1, 100005, 10)],
            own,
            &r,
            "/etc/subuid",
        )
        .unwrap_err();
        assert_eq!(at, "linux.uidMappings[0]");
        assert!(
            msg.contains("100005-100014") && msg.contains("(100000-100009)"),
            "{msg}"
        );
        let (at, msg) = mappings("linux.gidMappings", &[], own, &r, "/etc/subgid").unwrap_err();
        assert_eq!(at, "linux.gidMappings");
        assert!(msg.contains("needs a mapping"), "{msg}");
    }

    #[test]
    fn oom_score_adj_below_the_current_one() {
        let s = spec(
            serde_json::json!({"ociVersion": "1.2.0", "process": {"cwd": "/", "user": {"uid": 0, "gid": 0}, "oomScoreAdj": -10}}),
        );
        let (at, msg) = oom_score_adj(&s, 0).unwrap_err();
        assert_eq!(at, "process.oomScoreAdj");
        assert!(
            msg.contains("-10 is below berth's own 0") && msg.contains("needs root"),
            "{msg}"
        );
        assert!(oom_score_adj(&s, -10).is_ok());
        assert!(oom_score_adj(&s, -20).is_ok());
    }

    /// Rootless with a cgroup of the user's: every limit but the device
    /// rules; without one: none.
    #[test]
    fn a_users_cgroup_gets_every_limit_but_devices() {
        let s = spec(serde_json::json!({"ociVersion": "1.2.0", "linux": {"resources": {"memory": {"limit": 67108864}}}}));
        let host = Rootless { uid: 1000, gid: 1000, runtime_dir: None };
        let r = Resources { memory: 67108864, devices: Some(vec![]), ..Default::default() };
        let cg = ContainerCgroups {
            mounts: vec![crate::cgroups::CgroupMount {
                mountpoint: "/sys/fs/cgroup".into(),
                subsystems: vec![],
                unified: true,
                path: "/user.slice/berth-c1".into(),
                dir: "/sys/fs/cgroup/user.slice/berth-c1".into(),
            }],
            ..Default::default()
        };
        let got = resources(&s, &host, &cg, r.clone());
        assert_eq!((got.memory, got.devices), (67108864, None));
        let none = resources(&s, &host, &ContainerCgroups::default(), r.clone());
        assert_eq!(none, Resources::default());
        // As root: all of it.
        assert_eq!(resources(&s, &crate::host::Root, &ContainerCgroups::default(), r.clone()), r);
    }
}
