//! Containers without a mount namespace (config-linux.md: an unlisted
//! namespace type is inherited from the runtime). berth mounts in its own
//! (here the host's) mount namespace under a private bind of the rootfs,
//! chroots, and removes the bind at delete and on a failed create; the
//! host's other mounts and their propagation are never changed.

use berth_integration::prelude::*;

/// The default namespaces without "mount".
const NO_MNT: [&str; 4] = ["pid", "network", "ipc", "uts"];

fn env(name: &str, script: &str) -> Env {
    let mut e = Env::sh(name, script);
    e.set_namespaces(&NO_MNT);
    e
}

/// Host mounts whose mount point is at or below `dir`.
fn mounts_under(dir: &Path) -> Vec<host::MountInfo> {
    let p = dir.display().to_string();
    host::host_mounts()
        .into_iter()
        .filter(|m| m.mount_point == p || m.mount_point.starts_with(&format!("{p}/")))
        .collect()
}

/// The host's "/" line without its mount id: propagation and options.
fn host_root() -> String {
    let m = host::host_mounts()
        .into_iter()
        .find(|m| m.mount_point == "/")
        .expect("host has /");
    format!("{} {} {:?}", m.options, m.fstype, m.optional)
}

#[test]
fn runs_in_the_runtimes_mount_namespace() {
    let script = "readlink /proc/self/ns/mnt; cat /etc/inside; cat /data/hostfile; \
                  wc -c < /proc/timer_list; ls -A /sys/firmware | wc -l; \
                  awk '$5 == \"/\" || $5 == \"/proc\" || $5 == \"/data\" {print $5}' /proc/self/mountinfo";
    let mut env = env("mntns_inherit_run", script);
    fs::write(env.rootfs().join("etc/inside"), "inside-rootfs\n").unwrap();
    let data = env.file("data");
    fs::create_dir_all(&data).unwrap();
    fs::write(data.join("hostfile"), "from-host\n").unwrap();
    env.add_bind(&data, "/data", &["ro"]);
    let before = host_root();
    let out = env.run_ok();
    let lines = out.lines();
    assert_eq!(
        lines.first().map(String::as_str),
        Some(ns_link("self", "mnt").as_str()),
        "not the runtime's mount namespace: {out}"
    );
    assert_eq!(
        &lines[1..],
        ["inside-rootfs", "from-host", "0", "0", "/", "/proc", "/data"],
        "rootfs, mounts[] or masked paths wrong (only mounts under the rootfs may be listed): {out}"
    );
    assert_eq!(host_root(), before, "the host's / changed");
    assert_no_leftovers(&env);
}

#[test]
fn bind_is_private_and_removed_at_delete() {
    let env = env("mntns_inherit_delete", SLEEPER);
    let rootfs = env.rootfs();
    env.create();
    let ours = mounts_under(&rootfs);
    let top = ours
        .iter()
        .find(|m| m.mount_point == rootfs.display().to_string())
        .expect("rootfs bind on the host");
    assert!(
        !top.optional.iter().any(|o| o.starts_with("shared:")),
        "rootfs bind is shared: {}",
        top.line
    );
    assert!(
        ours.iter()
            .any(|m| m.mount_point.ends_with("/proc") && m.fstype == "proc"),
        "no container /proc under the bind: {ours:?}"
    );
    let st: Value =
        serde_json::from_slice(&fs::read(env.state_dir().join("state.json")).unwrap()).unwrap();
    let rec = &st["rootfs_bind"];
    assert_eq!(rec["path"], json!(rootfs), "state.json: {st}");
    assert!(
        top.line.starts_with(&format!("{} ", rec["mountId"])),
        "state.json mountId {} is not the bind: {}",
        rec["mountId"],
        top.line
    );
    env.start();
    env.berth(&["kill", &env.id, "KILL"]).ok();
    env.wait_status("stopped", SHORT);
    env.delete().ok();
    assert!(
        mounts_under(&rootfs).is_empty(),
        "left after delete: {:?}",
        mounts_under(&rootfs)
    );
    assert_no_leftovers(&env);
}

#[test]
fn kill9_of_init_then_delete() {
    let env = env("mntns_inherit_kill9", SLEEPER);
    env.create();
    env.start();
    host::kill9(env.pid() as i32);
    env.wait_status("stopped", SHORT);
    assert!(
        !mounts_under(&env.rootfs()).is_empty(),
        "the bind should outlive init until delete"
    );
    env.delete().ok();
    assert_no_leftovers(&env);
}

#[test]
fn failed_create_leaves_no_mount() {
    // In init, while mounting mounts[] under the bind.
    let mut env = env("mntns_inherit_badmount", "true");
    let missing = env.file("no-such-dir");
    env.add_bind(&missing, "/data", &[]);
    env.try_create()
        .fails_with(&["mounts[", "/data", "No such file or directory"]);
    assert!(
        mounts_under(&env.rootfs()).is_empty(),
        "left: {:?}",
        mounts_under(&env.rootfs())
    );
    assert_no_leftovers(&env);

    // In init, after the chroot.
    let mut env = env_named("mntns_inherit_badexe");
    env.set_args(&["/no/such/program"]);
    env.try_create().fails_with(&["/no/such/program"]);
    assert_no_leftovers(&env);
}

fn env_named(name: &str) -> Env {
    env(name, "true")
}

#[test]
fn rootfs_propagation_refused() {
    let mut env = env("mntns_inherit_prop", "true");
    env.set("/linux/rootfsPropagation", json!("rprivate"));
    env.try_create().fails_with(&[
        "config.json",
        "linux.rootfsPropagation",
        "without a mount namespace",
    ]);
    assert!(!env.state_dir().exists());
    assert_no_leftovers(&env);
}

#[test]
fn user_namespace_without_mount_namespace_refused() {
    let mut env = env("mntns_inherit_userns", "true");
    env.set_namespaces(&["pid", "user"]);
    let map = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    env.set("/linux/uidMappings", map.clone());
    env.set("/linux/gidMappings", map);
    env.try_create()
        .fails_with(&["linux.namespaces", "needs a mount namespace"]);
    assert_no_leftovers(&env);
}

#[test]
fn exec_enters_the_containers_root() {
    let env = env("mntns_inherit_exec", SLEEPER);
    fs::write(env.rootfs().join("etc/inside"), "exec-sees-rootfs\n").unwrap();
    env.create();
    env.start();
    let out = env
        .berth(&[
            "exec",
            &env.id,
            "sh",
            "-c",
            "cat /etc/inside; readlink /proc/self/ns/mnt; ls /proc/1/root/etc/inside",
        ])
        .ok();
    assert_eq!(
        out.lines(),
        [
            "exec-sees-rootfs",
            &ns_link("self", "mnt"),
            "/proc/1/root/etc/inside"
        ],
        "{out}"
    );
    env.delete_force().ok();
    assert_no_leftovers(&env);
}

#[test]
fn readonly_root_leaves_host_rootfs_writable() {
    let mut env = env(
        "mntns_inherit_ro",
        "if touch /x 2>/dev/null; then echo rw; else echo ro; fi",
    );
    env.set("/root/readonly", json!(true));
    let out = env.run_ok();
    assert_eq!(squash(&out.stdout), "ro", "{out}");
    fs::write(env.rootfs().join("after"), "x").expect("the host's rootfs dir must stay writable");
    assert_no_leftovers(&env);
}

/// The rootfs sits on a shared mount with a peer elsewhere: the bind may
/// show up on the peer (the kernel propagates the attach), but nothing
/// berth mounts under it may, and the copy goes with delete.
#[test]
fn nothing_propagates_to_the_hosts_peers() {
    let env = env("mntns_inherit_peer", SLEEPER);
    let rootfs = env.rootfs();
    let peer = env.file("peer");
    fs::create_dir_all(&peer).unwrap();
    host::bind_mount(&rootfs, &rootfs).expect("bind rootfs");
    host::mount(None, &rootfs, None, libc::MS_SHARED, None).expect("make it shared");
    host::bind_mount(&rootfs, &peer).expect("bind a peer");
    let peer_mounts = || {
        mounts_under(&peer)
            .into_iter()
            .map(|m| m.mount_point)
            .collect::<Vec<_>>()
    };
    let peer_str = peer.display().to_string();
    env.create();
    let during = peer_mounts();
    assert!(
        during.iter().all(|m| *m == peer_str),
        "container mounts reached the peer: {during:?}"
    );
    env.delete_force().ok();
    let after = peer_mounts();
    assert_eq!(after, [peer_str], "the peer keeps a copy after delete");
    // Only the test's own two binds are left: remove them, then check.
    let left = host::umount_below(&env.dir);
    assert!(left.is_empty(), "could not unmount {left:?}");
    assert_no_leftovers(&env);
}
