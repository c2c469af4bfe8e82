//! sysctl, mounts, devices and other linux fields, annotations, hooks.

use super::*;

// ---- sysctl ----

#[test]
fn sysctl_rules() {
    let ok = |key: &str, c: &Value| {
        let mut c = c.clone();
        c["linux"]["sysctl"] = json!({ key: "1" });
        assert_ok(&c);
    };
    let bad = |key: &str, c: &Value, msg: &str| {
        let mut c = c.clone();
        c["linux"]["sysctl"] = json!({ key: "1" });
        assert_err(&c, &format!("linux.sysctl.{key}"), msg);
    };
    let full = runc_spec();
    for k in [
        "net.ipv4.ip_forward",
        "kernel.msgmax",
        "kernel.shm_rmid_forced",
        "fs.mqueue.msg_max",
        "kernel.domainname",
    ] {
        ok(k, &full);
    }
    // Slash separator as sysctl(8).
    ok("net/ipv4/conf/eth0.100/rp_filter", &full);
    bad(
        "kernel.hostname",
        &full,
        "conflicts with the \"hostname\" field",
    );
    let mut no_hostname = full.clone();
    no_hostname.as_object_mut().unwrap().remove("hostname");
    ok("kernel.hostname", &no_hostname);
    bad(
        "vm.swappiness",
        &full,
        "sysctl \"vm.swappiness\" is not in a separate kernel namespace",
    );
    bad(
        "kernel.pid_max",
        &full,
        "is not in a separate kernel namespace",
    );

    // Without the namespaces.
    let mut host = full.clone();
    host.as_object_mut().unwrap().remove("hostname");
    host["linux"]["namespaces"] = json!([{"type": "mount"}]);
    bad(
        "net.ipv4.ip_forward",
        &host,
        "not allowed in the host's network namespace",
    );
    bad(
        "kernel.sem",
        &host,
        "not allowed in the host's ipc namespace",
    );
    bad(
        "fs.mqueue.queues_max",
        &host,
        "not allowed in the host's ipc namespace",
    );
    bad(
        "kernel.domainname",
        &host,
        "not allowed in the host's uts namespace",
    );

    // Joining the host's network namespace counts as the host's.
    let mut joined = full.clone();
    joined["linux"]["namespaces"][1] = json!({"type": "network", "path": "/proc/self/ns/net"});
    bad(
        "net.core.somaxconn",
        &joined,
        "not allowed in the host's network namespace",
    );
    // Joining an ipc namespace is enough for ipc sysctls.
    let mut joined = full.clone();
    joined["linux"]["namespaces"][2] = json!({"type": "ipc", "path": "/proc/self/ns/ipc"});
    ok("kernel.msgmnb", &joined);
}

#[test]
fn normalize_sysctl_keys() {
    assert_eq!(
        validate::normalize_sysctl("net.ipv4.ip_forward"),
        "net.ipv4.ip_forward"
    );
    assert_eq!(
        validate::normalize_sysctl("net/ipv4/conf/eno2.100/rp_filter"),
        "net.ipv4.conf.eno2/100.rp_filter"
    );
}

// ---- mounts and devices ----

#[test]
fn spec_scheduler_flag_names_load() {
    let mut c = runc_spec();
    c["process"]["scheduler"] = json!({"policy": "SCHED_OTHER", "flags": ["SCHED_FLAG_RESET_ON_FORK", "SCHED_FLAG_DL_OVERRUN"]});
    load_ok(&c);
}

#[test]
fn relative_mount_destination_is_accepted() {
    // config.md: relative is deprecated but allowed, taken relative to "/".
    let mut c = runc_spec();
    c["mounts"][3]["destination"] = json!("tmp");
    load_ok(&c);
}

#[test]
fn masked_and_readonly_paths_must_be_absolute() {
    let mut c = runc_spec();
    c["linux"]["maskedPaths"] = json!(["/proc/kcore", "secret"]);
    let err = load_err(&c);
    assert_eq!(err.path, "linux.maskedPaths[1]");
    let mut c = runc_spec();
    c["linux"]["readonlyPaths"] = json!(["ro"]);
    assert_eq!(load_err(&c).path, "linux.readonlyPaths[0]");
}

#[test]
fn empty_annotation_key_is_an_error() {
    let mut c = runc_spec();
    c["annotations"] = json!({"": "v"});
    assert_eq!(load_err(&c).path, "annotations");
}

#[test]
fn net_devices_and_memory_policy_are_checked() {
    let mut c = runc_spec();
    c["linux"]["netDevices"] = json!({"eth1": {"name": "in/valid"}});
    assert_eq!(load_err(&c).path, "linux.netDevices.eth1.name");
    c["linux"]["netDevices"] = json!({"eth1": {"name": "ceth1"}});
    c["linux"]["namespaces"] = json!([{"type": "mount"}, {"type": "uts"}]);
    assert_eq!(load_err(&c).path, "linux.netDevices");
    let mut c = runc_spec();
    c["linux"]["memoryPolicy"] = json!({"mode": "MPOL_BIND"});
    assert_eq!(load_err(&c).path, "linux.memoryPolicy.nodes");
    c["linux"]["memoryPolicy"] = json!({"mode": "MPOL_NOPE", "nodes": "0"});
    assert_eq!(load_err(&c).path, "linux.memoryPolicy.mode");
    c["linux"]["memoryPolicy"] = json!({"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_NOPE"]});
    assert_eq!(load_err(&c).path, "linux.memoryPolicy.flags[0]");
}

#[test]
fn intel_rdt_without_resctrl_is_an_error() {
    let mut c = runc_spec();
    c["linux"]["intelRdt"] = json!({"closID": "x"});
    assert_eq!(load_err(&c).path, "linux.intelRdt");
}

#[test]
fn devices() {
    let mut c = runc_spec();
    c["linux"]["devices"] = json!([
        {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438},
        {"path": "/dev/loop9", "type": "b", "major": 7, "minor": 9},
        {"path": "/dev/ttyX", "type": "u", "major": 4, "minor": 70},
        {"path": "/dev/myfifo", "type": "p"}
    ]);
    assert_ok(&c);
    c["linux"]["devices"][1]["type"] = json!("a");
    assert_err(&c, "linux.devices[1].type", "\"a\" is not a device type");
    c["linux"]["devices"][1]["type"] = json!("x");
    assert_err(&c, "linux.devices[1].type", "unknown device type \"x\"");
    c["linux"]["devices"][1]["type"] = json!("b");
    c["linux"]["devices"][2]["path"] = json!("dev/ttyX");
    assert_err(
        &c,
        "linux.devices[2].path",
        "\"dev/ttyX\" is not an absolute path",
    );
}

#[test]
fn cgroup_device_rule_type_a_is_fine() {
    let mut c = runc_spec();
    c["linux"]["resources"]["devices"] = json!([{"allow": false, "type": "a", "access": "rwm"}]);
    assert_ok(&c);
}

// ---- hooks ----

#[test]
fn hooks_validated() {
    let mut c = runc_spec();
    c["hooks"] = json!({
        "createRuntime": [{"path": "/bin/true", "timeout": 5}],
        "poststop": [{"path": "/bin/true"}, {"path": "bin/false"}]
    });
    assert_err(
        &c,
        "hooks.poststop[1].path",
        "\"bin/false\" is not an absolute path",
    );
    c["hooks"]["poststop"][1]["path"] = json!("/bin/false");
    assert_ok(&c);
    c["hooks"]["createRuntime"][0]["timeout"] = json!(0);
    assert_err(
        &c,
        "hooks.createRuntime[0].timeout",
        "must be greater than zero",
    );
}
