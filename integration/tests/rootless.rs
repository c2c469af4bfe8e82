//! berth run by a user without root (issue 16): each test makes a user of
//! its own (`berth_integration::rootless::User`: useradd, a subordinate
//! range, a private `$XDG_RUNTIME_DIR`; all removed by its guard) and runs
//! berth as it through runuser, without `--root` or `--rootless`.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Command;

use berth_integration::prelude::*;
use berth_integration::rootless::{can_run, User};

/// `berth spec --rootless` writes a config that runs as is: the caller is
/// root inside, the container's exit status comes back, state is under
/// $XDG_RUNTIME_DIR/berth.
#[test]
fn spec_rootless_runs_true_and_maps_the_caller_to_root() {
    if !can_run(false) {
        return;
    }
    let u = User::create("spec");
    let b = u.bundle("b", &["/bin/true"]);
    let c = u.config(&b);
    let ns: Vec<&str> = c["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    assert!(ns.contains(&"user") && !ns.contains(&"network"), "{ns:?}");
    assert_eq!(
        c["linux"]["uidMappings"],
        json!([{"containerID": 0, "hostID": u.uid, "size": 1}])
    );
    assert!(c["linux"].get("resources").is_none(), "{c}");
    let id = u.id("true");
    let out = u.berth_in(&b, &["run", &id]);
    assert_eq!(out.code(), Some(0), "{out}");
    assert!(
        !out.stderr.contains("warning"),
        "no resources, no warning:\n{out}"
    );

    let mut c = c;
    c["process"]["args"] = json!(["sh", "-c", "id -u; id -g; cat /proc/self/uid_map; exit 3"]);
    u.write_config(&b, &c);
    let out = u.berth_in(&b, &["run", &u.id("id")]);
    assert_eq!(out.code(), Some(3), "{out}");
    let lines: Vec<String> = out.stdout.lines().map(squash).collect();
    assert_eq!(
        lines,
        ["0", "0", format!("0 {} 1", u.uid).as_str()],
        "{out}"
    );
    // The mounts a user may make: /sys a read-only bind, /dev/null a
    // usable device (a bind of the host's, no mknod in a user namespace).
    c["process"]["args"] = json!(["sh", "-c", "grep ' /sys ' /proc/self/mountinfo; test -c /dev/null && echo ok > /dev/null && echo null-ok"]);
    u.write_config(&b, &c);
    let out = u.berth_in(&b, &["run", &u.id("mounts")]);
    assert_eq!(out.code(), Some(0), "{out}");
    let sys = out.stdout.lines().next().unwrap_or_default();
    assert!(
        sys.split_whitespace()
            .nth(5)
            .is_some_and(|o| o.split(',').any(|o| o == "ro")),
        "{out}"
    );
    assert!(out.stdout.contains("null-ok"), "{out}");
    // Deleted after run: the state root is there, empty, the user's own.
    let root = u.state_root();
    assert_eq!(
        fs::read_dir(&root).unwrap().count(),
        0,
        "{root:?} not empty"
    );
    let m = fs::metadata(&root).unwrap();
    assert_eq!(
        (m.uid(), m.permissions().mode() & 0o077),
        (u.uid, 0),
        "{root:?}"
    );
}

/// create, start, state, list, kill, delete; and exec into it.
#[test]
fn lifecycle_and_exec_rootless() {
    if !can_run(false) {
        return;
    }
    let u = User::create("life");
    let b = u.bundle("b", &["sleep", "300"]);
    let id = u.id("life");
    let bs = b.display().to_string();
    u.berth(&["create", "--bundle", &bs, &id]).ok();
    assert!(
        u.state_root().join(&id).is_dir(),
        "state not under $XDG_RUNTIME_DIR/berth"
    );
    assert_eq!(u.berth(&["state", &id]).ok().json()["status"], "created");
    u.berth(&["start", &id]).ok();
    let st = u.berth(&["state", &id]).ok().json();
    assert_eq!(st["status"], "running", "{st}");
    let pid = st["pid"].as_i64().unwrap();
    // Init runs as the user on the host.
    assert_eq!(fs::metadata(format!("/proc/{pid}")).unwrap().uid(), u.uid);
    let list = u.berth(&["list"]).ok();
    assert!(
        list.stdout
            .lines()
            .any(|l| l.starts_with(&id) && l.trim_end().ends_with(&u.name)),
        "{list}"
    );

    let out = u.berth(&[
        "exec",
        &id,
        "sh",
        "-c",
        "id -u; cat /proc/1/cmdline; exit 5",
    ]);
    assert_eq!(out.code(), Some(5), "{out}");
    assert_eq!(out.stdout.lines().next(), Some("0"), "{out}");
    assert!(
        out.stdout.contains("sleep"),
        "exec is in the container's pid namespace:\n{out}"
    );

    u.berth(&["kill", &id, "KILL"]).ok();
    assert!(wait_until(Duration::from_secs(10), || u
        .berth(&["state", &id])
        .ok()
        .json()["status"]
        == "stopped"));
    u.berth(&["delete", &id]).ok();
    assert!(!u.state_root().join(&id).exists());
    u.berth(&["state", &id]).fails_with(&["does not exist"]);
}

/// Several ranges go through newuidmap/newgidmap: files in the rootfs
/// owned by the subordinate ids show up with the mapped owners inside.
#[test]
fn multi_range_mapping_through_newuidmap() {
    if !can_run(true) {
        return;
    }
    let u = User::create("multi");
    let b = u.bundle(
        "b",
        &[
            "sh",
            "-c",
            "cat /proc/self/uid_map /proc/self/gid_map; stat -c %u:%g /owned /etc/passwd",
        ],
    );
    let f = b.join("rootfs/owned");
    fs::write(&f, "x").unwrap();
    std::os::unix::fs::chown(&f, Some(u.subid + 4), Some(u.subid + 6)).unwrap();
    let mut c = u.config(&b);
    for (key, own) in [("uidMappings", u.uid), ("gidMappings", u.gid)] {
        c["linux"][key] = json!([{"containerID": 0, "hostID": own, "size": 1},
                                 {"containerID": 1, "hostID": u.subid, "size": 65536}]);
    }
    u.write_config(&b, &c);
    let out = u.berth_in(&b, &["run", &u.id("multi")]);
    assert_eq!(out.code(), Some(0), "{out}");
    let lines: Vec<String> = out.stdout.lines().map(squash).collect();
    let own_u = format!("0 {} 1", u.uid);
    let own_g = format!("0 {} 1", u.gid);
    let sub = format!("1 {} 65536", u.subid);
    assert_eq!(
        lines,
        [own_u.as_str(), &sub, &own_g, &sub, "5:7", "0:0"],
        "{out}"
    );
}

/// What needs root fails before anything is made, with what to change.
#[test]
fn what_needs_root_is_refused_with_what_to_change() {
    if !can_run(false) {
        return;
    }
    let u = User::create("errs");
    let b = u.bundle("b", &["/bin/true"]);
    let good = u.config(&b);
    let cases: Vec<(&str, Value, Vec<&str>)> = vec![
        (
            "subuid",
            {
                let mut c = good.clone();
                c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": u.uid, "size": 1},
                                                   {"containerID": 1, "hostID": u.subid + 65536, "size": 10}]);
                c
            },
            vec![
                "linux.uidMappings[1]",
                "not yours to map without root",
                "/etc/subuid",
            ],
        ),
        (
            "netdev",
            {
                let mut c = good.clone();
                c["linux"]["namespaces"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"type": "network"}));
                c["linux"]["netDevices"] = json!({"lo": {}});
                c
            },
            vec!["linux.netDevices", "needs root", "remove linux.netDevices"],
        ),
        (
            "oom",
            {
                let mut c = good.clone();
                c["process"]["oomScoreAdj"] = json!(-500);
                c
            },
            vec!["process.oomScoreAdj", "-500 is below", "needs root"],
        ),
        (
            "nouserns",
            {
                let mut c = good.clone();
                c["linux"]["namespaces"]
                    .as_array_mut()
                    .unwrap()
                    .retain(|n| n["type"] != "user");
                c["linux"].as_object_mut().unwrap().remove("uidMappings");
                c["linux"].as_object_mut().unwrap().remove("gidMappings");
                c
            },
            vec![
                "linux.namespaces",
                "needs a user namespace",
                "berth spec --rootless",
            ],
        ),
    ];
    for (what, c, needles) in cases {
        u.write_config(&b, &c);
        let id = u.id(what);
        let out = u.berth_in(&b, &["run", &id]);
        out.fails_with(&needles);
        assert!(
            out.stderr.contains("config.json"),
            "{what}: names the file:\n{out}"
        );
        assert!(
            !u.state_root().join(&id).exists(),
            "{what}: state left behind"
        );
    }
}

/// On this host no cgroup is delegated: linux.resources are skipped with
/// one warning and the container runs.
#[test]
fn resources_are_skipped_with_one_warning() {
    if !can_run(false) {
        return;
    }
    let u = User::create("res");
    let b = u.bundle("b", &["/bin/true"]);
    let mut c = u.config(&b);
    c["linux"]["resources"] = json!({"memory": {"limit": 67108864}, "pids": {"limit": 10}});
    u.write_config(&b, &c);
    let out = u.berth_in(&b, &["run", &u.id("res")]);
    assert_eq!(out.code(), Some(0), "{out}");
    assert_eq!(
        out.stderr.matches("linux.resources: skipped").count(),
        1,
        "{out}"
    );
}

/// `--systemd-cgroup` rootless is the user's systemd instance, which has
/// cgroup v2 subtrees only: on this cgroup v1 host it fails at the plan
/// stage, saying why and what to change, and leaves nothing behind (the
/// systemd VM's cases/60-rootless.sh runs it on cgroup v2).
#[test]
fn systemd_cgroup_rootless_needs_cgroup_v2() {
    if !can_run(false) {
        return;
    }
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        return skip(HOST, "this host is cgroup v2 only");
    }
    let u = User::create("sdv1");
    let b = u.bundle("b", &["/bin/true"]);
    let id = u.id("sdv1");
    let out = u.berth_in(&b, &["--systemd-cgroup", "run", &id]);
    out.fails_with(&["--systemd-cgroup", "rootless", "cgroup v2", "cgroup v1"]);
    assert!(!u.state_root().join(&id).exists(), "state left behind");
}

/// One user's state can be neither read nor changed by another.
#[test]
fn state_of_one_user_is_private() {
    if !can_run(false) {
        return;
    }
    let a = User::create("owna");
    let other = User::create("ownb");
    let b = a.bundle("b", &["sleep", "300"]);
    let id = a.id("priv");
    a.berth(&["run", "-d", "--bundle", &b.display().to_string(), &id])
        .ok();
    let root = a.state_root().display().to_string();
    for args in [
        vec!["state", &id],
        vec!["kill", &id, "KILL"],
        vec!["delete", "--force", &id],
    ] {
        let mut v = vec!["--root", root.as_str()];
        v.extend(args.iter().copied());
        let out = other.berth(&v);
        assert_eq!(out.code(), Some(1), "{out}");
        assert!(out.stderr.contains("ermission denied"), "{out}");
    }
    assert_eq!(
        other.berth(&["--root", &root, "list", "-q"]).code(),
        Some(1)
    );
    // Nor by hand: the files, the directory, the root.
    let sd = format!("{root}/{id}");
    for (what, cmd) in [
        ("read state.json", format!("cat {sd}/state.json")),
        ("list the root", format!("ls {root}")),
        ("write in the root", format!("touch {root}/forged")),
        ("rename the state dir", format!("mv {sd} {root}/gone")),
        ("write in the state dir", format!("touch {sd}/forged")),
        ("open exec.fifo", format!("echo x > {sd}/exec.fifo")),
    ] {
        let out = other.sh(&cmd);
        assert!(!out.success(), "another user could {what}:\n{out}");
    }
    assert_eq!(a.berth(&["state", &id]).ok().json()["status"], "running");
}

/// A state root that another user owns, or may write in, is refused: its
/// owner could rename a container's directory away and put a forged one
/// (state.json, seccomp cache) in its place. Before the check, user B made
/// `berth` in a shared directory, A ran a container there, and B hid it
/// and replaced it with a directory of its own (A's `state` then read B's).
#[test]
fn a_state_root_another_user_can_write_is_refused() {
    if !can_run(false) {
        return;
    }
    let a = User::create("rootA");
    let b = User::create("rootB");
    let shared = std::env::temp_dir().join(format!("berth-it/shared-{}", a.name));
    fs::create_dir_all(&shared).unwrap();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o1777)).unwrap();
    let bundle = a.bundle("b", &["sleep", "300"]);
    let bs = bundle.display().to_string();
    for (mode, why) in [("777", "with mode 777"), ("755", &*format!("owned by uid {}", b.uid))] {
        let root = shared.join(format!("berth{mode}"));
        let rs = root.display().to_string();
        b.sh(&format!("mkdir -m {mode} {rs}")).ok();
        let id = a.id("shared");
        for args in [
            vec!["--root", &rs, "run", "-d", "--bundle", &bs, &id],
            vec!["--root", &rs, "create", "--bundle", &bs, &id],
            vec!["--root", &rs, "list"],
            vec!["--root", &rs, "state", &id],
        ] {
            let out = a.berth(&args);
            out.fails_with(&["state root", &rs, why, "no one else may write"]);
        }
        assert_eq!(fs::read_dir(&root).unwrap().count(), 0, "{rs}: berth wrote there");
    }
    // XDG_RUNTIME_DIR set to a directory where another user made `berth`:
    // the same.
    let xdg = shared.join("xdg");
    b.sh(&format!("mkdir -m 1777 {0} && mkdir -m 777 {0}/berth", xdg.display())).ok();
    let out = a.sh(&format!("XDG_RUNTIME_DIR={} {} run -d --bundle {bs} {}", xdg.display(), a.berth_bin().display(), a.id("xdg")));
    out.fails_with(&["no one else may write"]);
    let _ = fs::remove_dir_all(&shared);
}

/// Without a cgroup (this host delegates none), what needs one says so;
/// kill --all reaches every process through init's pid namespace.
#[test]
fn what_needs_a_cgroup_says_so_and_kill_all_still_works() {
    if !can_run(false) {
        return;
    }
    let u = User::create("nocg");
    let b = u.bundle("b", &["sh", "-c", "sleep 300 & exec sleep 301"]);
    let id = u.id("nocg");
    u.berth(&["run", "-d", "--bundle", &b.display().to_string(), &id])
        .ok();
    for args in [
        vec!["pause"],
        vec!["update", "--memory", "100M"],
        vec!["ps"],
        vec!["events", "--stats"],
    ] {
        let what = args[0];
        let mut v = args.clone();
        v.push(&id);
        let out = u.berth(&v);
        out.fails_with(&[&format!("{what}: container"), "has no cgroup", "rootless"]);
    }
    let init = u.berth(&["state", &id]).ok().json()["pid"]
        .as_i64()
        .unwrap();
    let ns = ns_link(&init.to_string(), "pid");
    let in_ns = || {
        fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
            .filter(|e| {
                fs::read_link(e.path().join("ns/pid")).is_ok_and(|l| l.display().to_string() == ns)
            })
            .count()
    };
    assert_eq!(in_ns(), 2, "init and its background sleep");
    u.berth(&["kill", "--all", &id, "KILL"]).ok();
    assert!(
        wait_until(Duration::from_secs(10), || in_ns() == 0),
        "processes left in the container"
    );
    u.berth(&["kill", "--all", &id, "KILL"]).ok();
    u.berth(&["delete", &id]).ok();
}

/// The terminal paths: a foreground `run` of a terminal config and
/// `exec -t`, each on a pty of the caller's, as the user.
#[test]
fn terminal_run_and_exec_rootless() {
    use berth_integration::tty::{Pty, Reader};
    if !can_run(false) {
        return;
    }
    let u = User::create("tty");
    let b = u.bundle("b", &["sh", "-c", "tty; echo uid=$(id -u); exec sleep 300"]);
    let mut c = u.config(&b);
    c["process"]["terminal"] = json!(true);
    u.write_config(&b, &c);
    let id = u.id("tty");
    let pty = Pty::open(24, 80);
    let reader = Reader::start(&pty.master);
    let mut run = u.spawn_on_pty(&b, &["run", &id], &pty);
    reader.wait_for("uid=0", Duration::from_secs(20));
    assert!(reader.text().contains("/dev/pts/0"), "{:?}", reader.text());

    let pty2 = Pty::open(24, 80);
    let reader2 = Reader::start(&pty2.master);
    let mut exec = u.spawn_on_pty(
        &b,
        &["exec", "-t", &id, "sh", "-c", "tty; echo exec-ok; exit 4"],
        &pty2,
    );
    reader2.wait_for("exec-ok", Duration::from_secs(20));
    let wait = |child: &mut std::process::Child| {
        let mut status = None;
        wait_until(Duration::from_secs(20), || {
            status = child.try_wait().unwrap();
            status.is_some()
        });
        status.and_then(|s| s.code())
    };
    assert_eq!(wait(&mut exec), Some(4), "{:?}", reader2.text());
    assert!(
        reader2.text().contains("/dev/pts/1"),
        "{:?}",
        reader2.text()
    );

    u.berth(&["kill", &id, "KILL"]).ok();
    assert_eq!(wait(&mut run), Some(137), "{:?}", reader.text());
}

/// Rootless Podman with berth as its runtime (berth runs as root of
/// Podman's user namespace: `--rootless auto` sees it, state goes under
/// $XDG_RUNTIME_DIR/berth, no cgroup): run, exec, stop, rm.
#[test]
fn rootless_podman_runs_berth() {
    if !can_run(true) {
        return;
    }
    if Command::new("podman").arg("--version").output().is_err() {
        return skip(
            TOOLS,
            "podman not found (scripts/setup-deps.sh installs it)",
        );
    }
    let u = User::create("pod");
    u.podman_setup();
    let tar = berth_integration::clients::busybox_tarball(&u.dir).expect("busybox tarball");
    std::os::unix::fs::chown(&tar, Some(u.uid), Some(u.gid)).unwrap();
    let image = "localhost/berth-rootless:test";
    u.podman(&["import", &tar.display().to_string(), image])
        .ok();

    let out = u.podman(&[
        "run",
        "--rm",
        "--network",
        "none",
        image,
        "sh",
        "-c",
        "id -u; exit 6",
    ]);
    assert_eq!(out.code(), Some(6), "{out}");
    assert_eq!(out.stdout.lines().next(), Some("0"), "{out}");

    let name = format!("c-{}", u.name);
    u.podman(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "none",
        image,
        "sleep",
        "300",
    ])
    .ok();
    let out = u.podman(&["exec", &name, "sh", "-c", "echo exec-ok; exit 2"]);
    assert_eq!(out.code(), Some(2), "{out}");
    assert!(out.stdout.contains("exec-ok"), "{out}");
    // berth's state is the user's, under its XDG_RUNTIME_DIR (containers,
    // besides berth's own `@` entries such as the seccomp cache).
    let ids = || -> Vec<String> {
        fs::read_dir(u.state_root())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into())
            .filter(|n: &String| !n.starts_with('@'))
            .collect()
    };
    assert_eq!(ids().len(), 1, "{:?}", ids());
    // -it: the terminal through conmon's console socket.
    let pty = berth_integration::tty::Pty::open(24, 80);
    let reader = berth_integration::tty::Reader::start(&pty.master);
    let mut it = u.podman_on_pty(
        &[
            "run",
            "-it",
            "--rm",
            "--network",
            "none",
            image,
            "sh",
            "-c",
            "tty; exit 4",
        ],
        &pty,
    );
    reader.wait_for("/dev/pts/0", Duration::from_secs(60));
    let mut status = None;
    wait_until(Duration::from_secs(60), || {
        status = it.try_wait().unwrap();
        status.is_some()
    });
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(4),
        "{:?}",
        reader.text()
    );
    u.podman(&["stop", "-t", "1", &name]).ok();
    u.podman(&["rm", &name]).ok();
    assert!(ids().is_empty(), "berth's state left behind: {:?}", ids());
}
