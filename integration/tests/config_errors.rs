//! One bad config per area of the spec-to-plan stage (`runtime/src/plan`):
//! `create` and `run` fail with exit 1 and a message naming config.json and
//! the JSON path, and nothing is left: no state dir under `--root` (only the
//! seccomp cache may be there), no cgroup, no mount, no process.
//!
//! Some of these are caught while the bundle loads; the others used to fail
//! only once the state dir and cgroups existed (seccomp, LSM, id-mapped
//! mounts), or after init's clone (uid/gid maps the kernel refuses, a net
//! device missing on the host), or when writing the time namespace's
//! offsets; they must all fail before anything is created.

use berth_integration::prelude::*;

/// What may be in `--root` after a failed create: the seccomp BPF cache.
const SECCOMP_CACHE: &str = "@seccomp-cache";

/// `create`, then `run`, fail naming config.json and `path`; nothing is
/// left after either. Then `create` with a `--root` that is a regular file:
/// the config error still comes first, so it is raised before berth tries
/// to make the state dir (and so before any cgroup or process).
#[track_caller]
fn refused(env: &Env, path: &str) {
    let want = format!("config.json: {path}: ");
    env.try_create().fails_with(&[&want]);
    assert_nothing_left(env);
    env.berth(&["run", "--bundle", &env.bundle_str(), &env.id])
        .fails_with(&[&want]);
    assert_nothing_left(env);
    let blocked = env.file("root-is-a-file");
    fs::write(&blocked, "").unwrap();
    let blocked = blocked.to_str().unwrap();
    env.berth_raw(&[
        "--root",
        blocked,
        "create",
        "--bundle",
        &env.bundle_str(),
        &env.id,
    ])
    .fails_with(&[&want]);
    assert_nothing_left(env);
}

#[track_caller]
fn assert_nothing_left(env: &Env) {
    assert_no_leftovers(env);
    let entries: Vec<String> = match fs::read_dir(&env.root) {
        Ok(d) => d
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    let unexpected: Vec<&String> = entries.iter().filter(|n| *n != SECCOMP_CACHE).collect();
    assert!(
        unexpected.is_empty(),
        "--root {} holds {unexpected:?}",
        env.root.display()
    );
}

#[test]
fn namespace_path_that_does_not_exist() {
    let mut env = Env::new("cfgerr_ns_path");
    env.set(
        "/linux/namespaces/2/path",
        json!("/proc/self/ns/no-such-namespace"),
    );
    refused(&env, "linux.namespaces[2].path");
}

#[test]
fn effective_capability_that_is_not_permitted() {
    let mut env = Env::new("cfgerr_caps");
    env.set(
        "/process/capabilities",
        json!({"bounding": ["CAP_KILL", "CAP_CHOWN"], "effective": ["CAP_KILL", "CAP_CHOWN"], "permitted": ["CAP_KILL"]}),
    );
    refused(&env, "process.capabilities.effective");
}

#[test]
fn seccomp_listener_metadata_without_a_listener() {
    let mut env = Env::new("cfgerr_seccomp");
    env.set(
        "/linux/seccomp",
        json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerMetadata": "x"}),
    );
    refused(&env, "linux.seccomp.listenerMetadata");
}

#[test]
fn seccomp_notify_without_a_listener_path() {
    let mut env = Env::new("cfgerr_seccomp_notify");
    env.set(
        "/linux/seccomp",
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
    );
    refused(&env, "linux.seccomp.listenerPath");
}

#[test]
fn cgroup_resource_out_of_range() {
    let mut env = Env::new("cfgerr_cgroup_res");
    env.set("/linux/resources/blockIO/weight", json!(5));
    refused(&env, "linux.resources.blockIO.weight");
}

#[test]
fn cgroups_path_in_the_systemd_form() {
    let mut env = Env::new("cfgerr_cgroups_path");
    env.set("/linux/cgroupsPath", json!("system.slice:berth:cfgerr"));
    refused(&env, "linux.cgroupsPath");
}

/// `--systemd-cgroup` on this host (systemd is not pid 1): refused before
/// anything is made, for create and run; a path not in the
/// slice:prefix:name form is a config error first.
#[test]
fn systemd_cgroup_without_systemd() {
    if std::path::Path::new("/run/systemd/system").is_dir() {
        return skip(HOST, "systemd runs this host (the systemd VM tests cover it)");
    }
    let mut env = Env::new("cfgerr_systemd");
    env.set("/linux/cgroupsPath", json!("system.slice:berth:cfgerr"));
    for cmd in ["create", "run"] {
        env.berth(&["--systemd-cgroup", cmd, "--bundle", &env.bundle_str(), &env.id])
            .fails_with(&["--systemd-cgroup: systemd is not running on this host"]);
        assert_nothing_left(&env);
    }
    env.set("/linux/cgroupsPath", json!("/berth/cfgerr"));
    env.berth(&["--systemd-cgroup", "create", "--bundle", &env.bundle_str(), &env.id])
        .fails_with(&["config.json: linux.cgroupsPath: ", "slice:prefix:name"]);
    assert_nothing_left(&env);
}

#[test]
fn memory_policy_with_bad_nodes() {
    let mut env = Env::new("cfgerr_mempolicy");
    env.set(
        "/linux/memoryPolicy",
        json!({"mode": "MPOL_BIND", "nodes": "zero"}),
    );
    refused(&env, "linux.memoryPolicy.nodes");
}

#[test]
fn net_device_missing_on_the_host() {
    let mut env = Env::new("cfgerr_netdev");
    let name = format!("bnone{}", std::process::id() % 100_000);
    env.set("/linux/netDevices", json!({ &name: {} }));
    refused(&env, &format!("linux.netDevices.{name}"));
}

#[test]
fn uid_mappings_that_overlap() {
    let mut env = Env::new("cfgerr_idmap");
    env.set_namespaces(&["pid", "mount", "uts", "user"]);
    env.set(
        "/linux/uidMappings",
        json!([{"containerID": 0, "hostID": 100000, "size": 100}, {"containerID": 50, "hostID": 200000, "size": 1}]),
    );
    env.set(
        "/linux/gidMappings",
        json!([{"containerID": 0, "hostID": 100000, "size": 65536}]),
    );
    refused(&env, "linux.uidMappings[1]");
}

#[test]
fn idmapped_mount_that_is_not_a_bind() {
    let mut env = Env::new("cfgerr_idmap_mount");
    env.push(
        "/mounts",
        json!({"destination": "/data", "type": "tmpfs", "source": "tmpfs", "options": ["idmap"],
               "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
               "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]}),
    );
    refused(&env, "mounts[6] (/data)");
}

#[test]
fn selinux_label_on_a_host_without_selinux() {
    if Path::new("/sys/fs/selinux/enforce").exists() {
        return skip(HOST, "this host has SELinux; the test is for hosts without");
    }
    let mut env = Env::new("cfgerr_lsm");
    env.set(
        "/process/selinuxLabel",
        json!("system_u:system_r:container_t:s0"),
    );
    refused(&env, "process.selinuxLabel");
}

#[test]
fn time_offset_the_kernel_refuses() {
    if !Path::new("/proc/self/ns/time").exists() {
        return skip(HOST, "this kernel has no time namespaces");
    }
    let mut env = Env::new("cfgerr_time");
    env.set_namespaces(&["pid", "mount", "uts", "time"]);
    env.set(
        "/linux/timeOffsets",
        json!({"monotonic": {"secs": 1, "nanosecs": 1_000_000_000u32}}),
    );
    refused(&env, "linux.timeOffsets.monotonic.nanosecs");
    // Before the clock's zero.
    env.set(
        "/linux/timeOffsets",
        json!({"boottime": {"secs": -(1i64 << 40)}}),
    );
    refused(&env, "linux.timeOffsets.boottime.secs");
}

#[test]
fn hook_path_that_is_not_absolute() {
    let mut env = Env::new("cfgerr_hook");
    env.set("/hooks/prestart", json!([{"path": "bin/true"}]));
    refused(&env, "hooks.prestart[0].path");
}
