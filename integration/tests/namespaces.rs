//! Namespaces: new ones, joined ones (by path), user mappings, time
//! offsets, cgroup namespace, and namespaced sysctls.

use berth_integration::prelude::*;

const ALL_NS: [(&str, &str); 6] =
    [("pid", "pid"), ("network", "net"), ("ipc", "ipc"), ("uts", "uts"), ("mount", "mnt"), ("cgroup", "cgroup")];

fn host_ns(kind: &str) -> String {
    ns_link("self", kind)
}

#[test]
fn pid_namespace_init_is_pid_1() {
    let env = Env::sh("pidns_pid1", "echo $$; cat /proc/1/cmdline | tr '\\0' ' '");
    let out = env.run_ok();
    let lines = out.lines();
    assert_eq!(lines.first().map(String::as_str), Some("1"), "{out}");
    assert!(lines.get(1).is_some_and(|l| l.contains(&env.marker)), "pid 1 is not the container's init: {out}");
    assert_no_leftovers(&env);
}

#[test]
fn network_namespace_has_only_lo() {
    let env = Env::sh("netns_lo", "ls /sys/class/net; echo --; tail -n +3 /proc/net/dev | cut -d: -f1");
    let out = env.run_ok();
    let (sys, dev) = out.stdout.split_once("--").expect("separator");
    assert_eq!(squash(sys), "lo", "{out}");
    assert_eq!(squash(dev), "lo", "{out}");
    assert_no_leftovers(&env);
}

#[test]
fn new_namespaces_differ_from_host() {
    let mut env = Env::sh("new_ns_differ", "for n in pid net ipc uts mnt cgroup; do echo $n $(readlink /proc/self/ns/$n); done");
    env.set_namespaces(&ALL_NS.map(|(t, _)| t));
    let out = env.run_ok();
    for (_, p) in ALL_NS {
        let line = out.lines().into_iter().find(|l| l.starts_with(&format!("{p} "))).unwrap_or_else(|| panic!("{p}: {out}"));
        let inside = line.split_once(' ').unwrap().1;
        assert!(inside.starts_with(&format!("{p}:[")), "{line}");
        assert_ne!(inside, host_ns(p), "{p} namespace is the host's");
    }
    assert_no_leftovers(&env);
}

#[test]
fn omitted_namespaces_are_the_hosts() {
    let mut env = Env::sh("omitted_ns_host", "for n in net ipc cgroup; do echo $n $(readlink /proc/self/ns/$n); done");
    env.set_namespaces(&["pid", "mount", "uts"]);
    let out = env.run_ok();
    for p in ["net", "ipc", "cgroup"] {
        assert!(out.stdout.contains(&format!("{p} {}", host_ns(p))), "{p} should be the host's ({}):\n{out}", host_ns(p));
    }
    assert_no_leftovers(&env);
}

/// Container A runs; B joins A's `kind` namespace by path and prints its
/// own namespace link, which must equal A's init's.
fn join_by_path(name: &str, kind: &str, proc_name: &str) {
    let a = Env::sh(&format!("{name}_a"), SLEEPER);
    a.run_detached();
    let apid = a.pid();
    let want = ns_link(&apid.to_string(), proc_name);

    let mut b = Env::sh(&format!("{name}_b"), &format!("readlink /proc/self/ns/{proc_name}"));
    let ns: Vec<Value> = ALL_NS[..5]
        .iter()
        .map(|(t, _)| if *t == kind { json!({"type": t, "path": format!("/proc/{apid}/ns/{proc_name}")}) } else { json!({"type": t}) })
        .collect();
    b.set("/linux/namespaces", json!(ns));
    if kind == "uts" {
        b.remove("/hostname");
    }
    let out = b.run_ok();
    assert_eq!(out.stdout.trim(), want, "B did not join A's {kind} namespace:\n{out}");
    assert_ne!(want, host_ns(proc_name));
    assert_no_leftovers(&b);
    a.delete_force().ok();
    assert_no_leftovers(&a);
}

#[test]
fn join_network_namespace_by_path() {
    join_by_path("join_net", "network", "net");
}

#[test]
fn join_ipc_namespace_by_path() {
    join_by_path("join_ipc", "ipc", "ipc");
}

#[test]
fn join_uts_namespace_by_path() {
    join_by_path("join_uts", "uts", "uts");
}

#[test]
fn join_pid_namespace_by_path() {
    join_by_path("join_pid", "pid", "pid");
}

#[test]
fn namespace_path_missing_is_config_error() {
    let mut env = Env::sh("ns_path_missing", "true");
    let path = "/proc/2147483000/ns/net";
    env.set("/linux/namespaces/1", json!({"type": "network", "path": path}));
    env.try_create().fails_with(&["config.json", "linux.namespaces[1]", path]);
    assert_no_leftovers(&env);
}

#[test]
fn namespace_path_wrong_type_is_config_error() {
    let mut env = Env::sh("ns_path_wrong_type", "true");
    let path = format!("/proc/{}/ns/uts", std::process::id());
    env.set("/linux/namespaces/1", json!({"type": "network", "path": path}));
    env.try_create().fails_with(&["config.json", "linux.namespaces[1]", &path]);
    assert_no_leftovers(&env);
}

#[test]
fn user_namespace_mappings() {
    let mut env = Env::sh("userns_map", "cat /proc/self/uid_map; echo --; cat /proc/self/gid_map; echo --; id -u");
    env.push("/linux/namespaces", json!({"type": "user"}));
    env.set("/linux/uidMappings", json!([{"containerID": 0, "hostID": 100000, "size": 65536}]));
    env.set("/linux/gidMappings", json!([{"containerID": 0, "hostID": 200000, "size": 65536}]));
    let out = env.run_ok();
    let parts: Vec<String> = out.stdout.split("--").map(squash).collect();
    assert_eq!(parts, ["0 100000 65536", "0 200000 65536", "0"], "{out}");
    assert_ne!(ns_link("self", "user"), "", "host user ns");
    assert_no_leftovers(&env);
}

#[test]
fn user_namespace_is_new_and_init_runs_as_mapped_uid() {
    let mut env = Env::sh("userns_host_uid", &format!("readlink /proc/self/ns/user; {SLEEPER}"));
    env.push("/linux/namespaces", json!({"type": "user"}));
    env.set("/linux/uidMappings", json!([{"containerID": 0, "hostID": 100000, "size": 65536}]));
    env.set("/linux/gidMappings", json!([{"containerID": 0, "hostID": 100000, "size": 65536}]));
    let out = env.run_detached();
    let pid = env.pid();
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert_eq!(squash(uid), "Uid: 100000 100000 100000 100000", "host view of init's uid");
    wait_until(SHORT, || out.stdout_now().contains("user:["));
    assert_ne!(out.stdout_now().trim(), ns_link("self", "user"), "user ns is the host's");
    env.delete_force().ok();
    assert_no_leftovers(&env);
}

#[test]
fn time_namespace_offsets() {
    let mut env = Env::sh("timens_offsets", "cat /proc/self/timens_offsets; echo --; cut -d' ' -f1 /proc/uptime");
    env.set("/ociVersion", json!("1.2.0"));
    env.push("/linux/namespaces", json!({"type": "time"}));
    env.set("/linux/timeOffsets", json!({"monotonic": {"secs": 864000, "nanosecs": 0}, "boottime": {"secs": 1728000, "nanosecs": 0}}));
    let out = env.run_ok();
    let (offs, up) = out.stdout.split_once("--").unwrap_or_else(|| panic!("{out}"));
    let offs = squash(offs);
    assert!(offs.contains("monotonic 864000 0"), "{out}");
    assert!(offs.contains("boottime 1728000 0"), "{out}");
    let up: f64 = up.trim().parse().unwrap_or_else(|_| panic!("uptime: {out}"));
    assert!(up >= 1728000.0, "uptime {up} does not include the boottime offset");
    assert_no_leftovers(&env);
}

#[test]
fn cgroup_namespace_shows_root() {
    let mut env = Env::sh("cgroupns_root", "cat /proc/self/cgroup");
    env.push("/linux/namespaces", json!({"type": "cgroup"}));
    let out = env.run_ok();
    let lines = out.lines();
    assert!(!lines.is_empty(), "{out}");
    for l in &lines {
        assert!(l.ends_with(":/"), "cgroup path visible inside a cgroup namespace: {l}\n{out}");
    }
    assert_no_leftovers(&env);
}

#[test]
fn without_cgroup_namespace_path_is_visible() {
    let env = Env::sh("no_cgroupns", "cat /proc/self/cgroup");
    let out = env.run_ok();
    assert!(out.stdout.contains(&format!("memory:{}", env.cgroups_path)), "{out}");
    assert_no_leftovers(&env);
}

#[test]
fn sysctl_values_applied() {
    let mut env = Env::sh("sysctl", "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmax /proc/sys/net/ipv4/ping_group_range");
    env.set(
        "/linux/sysctl",
        json!({"net.ipv4.ip_forward": "1", "kernel.shmmax": "12345678", "net.ipv4.ping_group_range": "0 2147483647"}),
    );
    let out = env.run_ok();
    assert_eq!(squash(&out.stdout), "1\n12345678\n0 2147483647", "{out}");
    // the host's values are untouched
    assert_ne!(fs::read_to_string("/proc/sys/kernel/shmmax").unwrap().trim(), "12345678");
    assert_no_leftovers(&env);
}

/// A new user namespace together with a network namespace joined by path
/// that the host's user namespace owns: berth must join the network
/// namespace with the host's privileges first, then create the user
/// namespace (the two-stage path), and init is still pid 1.
#[test]
fn new_user_namespace_with_joined_host_owned_network_namespace() {
    let a = Env::sh("userns_joinnet_a", SLEEPER);
    a.run_detached();
    let apid = a.pid();
    let want_net = ns_link(&apid.to_string(), "net");

    let mut b = Env::sh(
        "userns_joinnet_b",
        "readlink /proc/self/ns/net; echo pid=$$; cat /proc/self/uid_map; readlink /proc/self/ns/user",
    );
    b.set(
        "/linux/namespaces",
        json!([{"type": "pid"}, {"type": "network", "path": format!("/proc/{apid}/ns/net")},
               {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "user"}]),
    );
    b.set("/linux/uidMappings", json!([{"containerID": 0, "hostID": 100000, "size": 65536}]));
    b.set("/linux/gidMappings", json!([{"containerID": 0, "hostID": 100000, "size": 65536}]));
    let out = b.run_ok();
    let lines: Vec<String> = out.stdout.lines().map(squash).collect();
    assert_eq!(lines.first().map(String::as_str), Some(want_net.as_str()), "net ns not joined:\n{out}");
    assert!(lines.contains(&"pid=1".to_string()), "init is not pid 1:\n{out}");
    assert!(lines.contains(&"0 100000 65536".to_string()), "uid map missing:\n{out}");
    assert_ne!(lines.last().cloned().unwrap_or_default(), ns_link("self", "user"), "user ns is the host's:\n{out}");
    assert_no_leftovers(&b);
    a.delete_force().ok();
    assert_no_leftovers(&a);
}

/// Joining another container's user namespace by path while creating a new
/// pid namespace: the pid namespace must be owned by the joined user
/// namespace (so /proc can be mounted), which needs the pid namespace's
/// init to be forked after the join (the two-stage path).
#[test]
fn joined_user_namespace_with_new_pid_namespace() {
    let mut a = Env::sh("join_userns_a", SLEEPER);
    a.push("/linux/namespaces", json!({"type": "user"}));
    a.set("/linux/uidMappings", json!([{"containerID": 0, "hostID": 100000, "size": 65536}]));
    a.set("/linux/gidMappings", json!([{"containerID": 0, "hostID": 100000, "size": 65536}]));
    a.run_detached();
    let apid = a.pid();
    let want_user = ns_link(&apid.to_string(), "user");

    let mut b = Env::sh("join_userns_b", "readlink /proc/self/ns/user; echo pid=$$; cat /proc/self/uid_map; id -u");
    b.set(
        "/linux/namespaces",
        json!([{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"},
               {"type": "user", "path": format!("/proc/{apid}/ns/user")}]),
    );
    let out = b.run_ok();
    let lines: Vec<String> = out.stdout.lines().map(squash).collect();
    assert_eq!(lines.first().map(String::as_str), Some(want_user.as_str()), "user ns not joined:\n{out}");
    assert!(lines.contains(&"pid=1".to_string()), "init is not pid 1:\n{out}");
    assert!(lines.contains(&"0 100000 65536".to_string()), "A's uid map not seen:\n{out}");
    assert_eq!(lines.last().map(String::as_str), Some("0"), "not root in the joined user ns:\n{out}");
    assert_no_leftovers(&b);
    a.delete_force().ok();
    assert_no_leftovers(&a);
}

/// Every network namespace berth makes has `lo` up, as with runc and crun
/// (issue 13.8): made by the clone (with a new user namespace), by init's
/// deferred unshare (hybrid host, no user namespace), or in the two-stage
/// path (a new user namespace and a joined uts namespace).
#[test]
fn new_network_namespace_has_loopback_up() {
    let script = "ip link show lo | head -n 1; ping -c 1 -W 2 127.0.0.1 >/dev/null && echo ping=ok";
    let userns = |env: &mut Env| {
        env.set("/linux/uidMappings", json!([{"containerID": 0, "hostID": 100000, "size": 65536}]));
        env.set("/linux/gidMappings", json!([{"containerID": 0, "hostID": 100000, "size": 65536}]));
    };
    for case in ["default", "userns", "two_stage"] {
        let mut env = Env::sh(&format!("netns_lo_up_{case}"), script);
        let caps = ["CAP_NET_RAW"];
        env.set("/process/capabilities", json!({"bounding": caps, "permitted": caps, "effective": caps}));
        match case {
            "userns" => {
                env.push("/linux/namespaces", json!({"type": "user"}));
                userns(&mut env);
            }
            "two_stage" => {
                env.set(
                    "/linux/namespaces",
                    json!([{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "mount"},
                           {"type": "uts", "path": format!("/proc/{}/ns/uts", std::process::id())}, {"type": "user"}]),
                );
                // The host's uts namespace: no hostname to set there.
                env.remove("/hostname");
                userns(&mut env);
            }
            _ => {}
        }
        let out = env.run_ok();
        let first = out.lines().into_iter().next().unwrap_or_default();
        assert!(first.contains("<LOOPBACK,UP"), "{case}: lo is not up:\n{out}");
        assert!(out.stdout.contains("ping=ok"), "{case}: 127.0.0.1 unreachable:\n{out}");
        assert_no_leftovers(&env);
    }
}

/// A process (`unshare --uts sleep`) holding a uts namespace of its own;
/// killed and reaped on drop.
struct UtsHolder(std::process::Child);

impl Drop for UtsHolder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// hostname and domainname with a uts namespace joined by path are set in
/// that namespace, as runc and crun do (issue 13.6: berth refused them).
#[test]
fn hostname_is_set_in_a_joined_uts_namespace() {
    let holder = UtsHolder(
        std::process::Command::new("unshare").args(["--uts", "sleep", "60"]).spawn().expect("spawn unshare --uts"),
    );
    let pid = holder.0.id();
    let path = format!("/proc/{pid}/ns/uts");
    let own_ns = wait_until(SHORT, || ns_link(&pid.to_string(), "uts") != host_ns("uts"));
    assert!(own_ns, "unshare --uts made no namespace");
    let host_name = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let mut env = Env::sh("join_uts_hostname", "hostname; cat /proc/sys/kernel/domainname");
    env.set(
        "/linux/namespaces",
        json!([{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "mount"},
               {"type": "uts", "path": path}]),
    );
    env.set("/hostname", json!("joined-uts"));
    env.set("/domainname", json!("joined.example"));
    let out = env.run_ok();
    assert_eq!(squash(&out.stdout), "joined-uts\njoined.example", "{out}");
    let seen = std::process::Command::new("nsenter")
        .args([&format!("--uts={path}"), "cat", "/proc/sys/kernel/hostname"])
        .output()
        .expect("nsenter");
    assert_eq!(String::from_utf8_lossy(&seen.stdout).trim(), "joined-uts", "not set in the joined namespace");
    assert_eq!(fs::read_to_string("/proc/sys/kernel/hostname").unwrap(), host_name, "the host's hostname changed");
    assert_no_leftovers(&env);
    drop(holder);
}

#[test]
fn new_user_namespace_with_a_joined_one_and_no_pid_namespace() {
    // Two-stage without a pid namespace: init is the first child itself
    // (no fork, no Hello); berth used to panic after Ready.
    let mut env = Env::sh("userns_join_nopid", "echo in-container");
    env.set_namespaces(&["mount", "user"]);
    let net = format!("/proc/{}/ns/net", std::process::id());
    env.push("/linux/namespaces", json!({"type": "network", "path": net}));
    env.set("/mounts", json!([{"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]}]));
    env.remove("/hostname");
    env.remove("/linux/maskedPaths");
    env.remove("/linux/readonlyPaths");
    env.set("/linux/uidMappings", json!([{"containerID": 0, "hostID": 100000, "size": 65536}]));
    env.set("/linux/gidMappings", json!([{"containerID": 0, "hostID": 100000, "size": 65536}]));
    let out = env.run_ok();
    assert_eq!(out.stdout.trim(), "in-container", "{out}");
    assert_no_leftovers(&env);
}
