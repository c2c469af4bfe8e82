//! linux.namespaces, uts, user and time namespaces.

use super::*;

// ---- namespaces ----

#[test]
fn duplicate_namespace() {
    let mut c = runc_spec();
    c["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "ipc"}));
    assert_err(
        &c,
        "linux.namespaces[6].type",
        "duplicate namespace \"ipc\"",
    );
}

#[test]
fn no_mount_namespace() {
    let mut c = runc_spec();
    c["linux"]["namespaces"] = namespaces(&[json!({"type": "pid"}), json!({"type": "uts"})]);
    assert_ok(&c);
    c["linux"]["rootfsPropagation"] = json!("rprivate");
    assert_err(&c, "linux.rootfsPropagation", "cannot be set without a mount namespace");
    c["linux"].as_object_mut().unwrap().remove("rootfsPropagation");
    c["linux"]["namespaces"] = namespaces(&[json!({"type": "pid"}), json!({"type": "user"})]);
    c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    assert_err(&c, "linux.namespaces", "a user namespace needs a mount namespace too");
    c["linux"].as_object_mut().unwrap().remove("namespaces");
    c.as_object_mut().unwrap().remove("hostname");
    c["linux"].as_object_mut().unwrap().remove("uidMappings");
    c["linux"].as_object_mut().unwrap().remove("gidMappings");
    assert_ok(&c);
}

#[test]
fn namespace_path_of_matching_type() {
    let mut c = runc_spec();
    c["linux"]["namespaces"][1] = json!({"type": "network", "path": "/proc/self/ns/net"});
    c["linux"]["namespaces"][2] = json!({"type": "ipc", "path": "/proc/self/ns/ipc"});
    assert_ok(&c);
}

#[test]
fn namespace_path_of_wrong_type() {
    let mut c = runc_spec();
    c["linux"]["namespaces"][1] = json!({"type": "network", "path": "/proc/self/ns/ipc"});
    let err = load_err(&c);
    assert_eq!(err.path, "linux.namespaces[1].path");
    assert_eq!(
        err.msg,
        "\"/proc/self/ns/ipc\" is an ipc namespace, not net"
    );
    c["linux"]["namespaces"][1] = json!({"type": "network", "path": "/proc/self/ns/uts"});
    assert_err(
        &c,
        "linux.namespaces[1].path",
        "is a uts namespace, not net",
    );
}

#[test]
fn namespace_path_missing_or_not_ns() {
    let mut c = runc_spec();
    c["linux"]["namespaces"][0] = json!({"type": "pid", "path": "/proc/self/ns/no-such"});
    assert_err(&c, "linux.namespaces[0].path", "No such file or directory");
    c["linux"]["namespaces"][0] = json!({"type": "pid", "path": "/etc/hostname"});
    assert_err(&c, "linux.namespaces[0].path", "is not a namespace file");
    c["linux"]["namespaces"][0] = json!({"type": "pid", "path": "/etc"});
    assert_err(&c, "linux.namespaces[0].path", "is not a namespace file");
}

#[test]
fn check_ns_file_all_types() {
    for (t, name) in [
        (LinuxNamespaceType::Mount, "mnt"),
        (LinuxNamespaceType::Cgroup, "cgroup"),
        (LinuxNamespaceType::Uts, "uts"),
        (LinuxNamespaceType::Ipc, "ipc"),
        (LinuxNamespaceType::User, "user"),
        (LinuxNamespaceType::Pid, "pid"),
        (LinuxNamespaceType::Network, "net"),
        (LinuxNamespaceType::Time, "time"),
    ] {
        let p = format!("/proc/self/ns/{name}");
        if Path::new(&p).exists() {
            validate::check_ns_file(Path::new(&p), t).unwrap();
        }
    }
}

// ---- uts ----

#[test]
fn hostname_needs_a_uts_namespace() {
    let mut c = runc_spec();
    c["linux"]["namespaces"].as_array_mut().unwrap().remove(3); // uts
    assert_err(&c, "hostname", "requires a uts namespace");
    c.as_object_mut().unwrap().remove("hostname");
    assert_ok(&c);
    c["domainname"] = json!("example.org");
    assert_err(&c, "domainname", "requires a uts namespace");
}

/// Set in the joined namespace, as runc and crun do (issue 13.6).
#[test]
fn hostname_with_joined_uts_ok() {
    let mut c = runc_spec();
    c["domainname"] = json!("example.org");
    c["linux"]["namespaces"].as_array_mut().unwrap().remove(3); // uts
    c["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "uts", "path": "/proc/self/ns/uts"}));
    assert_ok(&c);
}

#[test]
fn hostname_with_new_uts_ok() {
    let mut c = runc_spec();
    c["domainname"] = json!("example.org");
    assert_ok(&c);
}

// ---- user namespace ----

fn with_userns(mut c: Value) -> Value {
    c["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    c
}

#[test]
fn user_namespace_with_mappings_ok() {
    assert_ok(&with_userns(runc_spec()));
}

#[test]
fn mappings_need_user_namespace() {
    let mut c = runc_spec();
    c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
    assert_err(&c, "linux.uidMappings", "require a user namespace");
    let mut c = runc_spec();
    c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
    assert_err(&c, "linux.gidMappings", "require a user namespace");
}

#[test]
fn new_user_namespace_needs_mappings() {
    let mut c = with_userns(runc_spec());
    c["linux"].as_object_mut().unwrap().remove("uidMappings");
    assert_err(
        &c,
        "linux.uidMappings",
        "a new user namespace requires uid mappings",
    );
    let mut c = with_userns(runc_spec());
    c["linux"]["gidMappings"] = json!([]);
    assert_err(
        &c,
        "linux.gidMappings",
        "a new user namespace requires gid mappings",
    );
}

#[test]
fn mapping_size_zero() {
    let mut c = with_userns(runc_spec());
    c["linux"]["uidMappings"][0]["size"] = json!(0);
    assert_err(&c, "linux.uidMappings[0].size", "greater than zero");
}

#[test]
fn joined_user_namespace_without_mappings_ok() {
    let mut c = runc_spec();
    c["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user", "path": "/proc/self/ns/user"}));
    assert_ok(&c);
}

// ---- time namespace ----

#[test]
fn time_offsets_need_time_namespace() {
    let mut c = runc_spec();
    c["linux"]["timeOffsets"] = json!({"monotonic": {"secs": 10}});
    assert_err(
        &c,
        "linux.timeOffsets",
        "time offsets require a new time namespace",
    );
    c["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "time"}));
    assert_ok(&c);
    c["linux"]["timeOffsets"]["realtime"] = json!({"secs": 1});
    assert_err(
        &c,
        "linux.timeOffsets.realtime",
        "unknown clock \"realtime\"",
    );
}
