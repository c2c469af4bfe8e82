//! The container process: identity, environment, limits and attributes.

use berth_integration::prelude::*;

/// Run `script` with the config edited by `edit`; return trimmed stdout.
fn run_with(name: &str, script: &str, edit: impl FnOnce(&mut Env)) -> String {
    let mut env = Env::sh(name, script);
    edit(&mut env);
    let out = env.run_ok();
    assert_no_leftovers(&env);
    out.stdout.trim().to_string()
}

fn status_line(text: &str, key: &str) -> String {
    squash(text.lines().find(|l| l.starts_with(key)).unwrap_or_else(|| panic!("no {key} in {text}")))
}

#[test]
fn hostname_and_domainname() {
    let out = run_with("hostname", "hostname; cat /proc/sys/kernel/domainname", |e| {
        e.set("/hostname", json!("box-one"));
        e.set("/domainname", json!("example.test"));
    });
    assert_eq!(squash(&out), "box-one\nexample.test");
}

#[test]
fn user_uid_gid_and_additional_gids() {
    let out = run_with("user_ids", "id -u; id -g; grep -E '^(Uid|Gid|Groups):' /proc/self/status", |e| {
        e.set("/process/user", json!({"uid": 1000, "gid": 1001, "additionalGids": [10, 20]}));
    });
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(&lines[..2], ["1000", "1001"], "{out}");
    assert_eq!(status_line(&out, "Uid:"), "Uid: 1000 1000 1000 1000");
    assert_eq!(status_line(&out, "Gid:"), "Gid: 1001 1001 1001 1001");
    assert_eq!(status_line(&out, "Groups:"), "Groups: 10 20");
}

#[test]
fn user_without_additional_gids_has_no_groups() {
    // the runtime itself runs with supplementary groups; none may leak in
    let mut env = Env::sh("user_no_groups", "grep Groups: /proc/self/status");
    env.set("/process/user", json!({"uid": 0, "gid": 0}));
    let args = ["run", "--bundle", &env.bundle_str(), &env.id];
    let out = env.berth_opts(&args, &SpawnOpts { groups: Some(&[4242, 4343]), ..Default::default() }).ok();
    assert_eq!(squash(&out.stdout), "Groups:", "the runtime's supplementary groups leaked in:\n{out}");
    assert_no_leftovers(&env);
}

#[test]
fn id_reports_user_and_groups() {
    // busybox id prints names from /etc/passwd and /etc/group in the rootfs
    let out = run_with("id_cmd", "id", |e| {
        e.set("/process/user", json!({"uid": 65534, "gid": 65534, "additionalGids": [0]}));
    });
    assert!(out.starts_with("uid=65534(nobody) gid=65534(nogroup)"), "{out}");
    assert!(out.contains("groups=") && out.contains("0(root)"), "{out}");
}

#[test]
fn env_is_exactly_the_configs() {
    let out = run_with("env", "env", |e| {
        e.set("/process/env", json!(["PATH=/bin:/sbin", "HOME=/root", "FOO=bar baz", "EMPTY=", "EQ=a=b"]));
    });
    let lines: Vec<&str> = out.lines().collect();
    for want in ["PATH=/bin:/sbin", "HOME=/root", "FOO=bar baz", "EMPTY=", "EQ=a=b"] {
        assert!(lines.contains(&want), "{want:?} missing from env:\n{out}");
    }
    assert!(!lines.iter().any(|l| l.starts_with(HOST_ENV_VAR) || l.starts_with("CARGO")), "host env leaked:\n{out}");
}

#[test]
fn home_is_set_from_passwd_when_env_lacks_it() {
    // rootfs /etc/passwd: root's home is /root; uid 65534 is nobody with home /.
    let out = run_with("home_root", "echo $HOME", |e| {
        e.set("/process/env", json!(["PATH=/bin"]));
    });
    assert_eq!(out, "/root");
    let out = run_with("home_unknown", "echo $HOME", |e| {
        e.set("/process/env", json!(["PATH=/bin"]));
        e.set("/process/user", json!({"uid": 4321, "gid": 4321}));
    });
    assert_eq!(out, "/", "a uid absent from /etc/passwd gets HOME=/");
    let out = run_with("home_kept", "echo $HOME", |e| {
        e.set("/process/env", json!(["PATH=/bin", "HOME=/elsewhere"]));
    });
    assert_eq!(out, "/elsewhere");
}

#[test]
fn cwd_is_set() {
    let out = run_with("cwd", "pwd", |e| {
        fs::create_dir_all(e.rootfs().join("var/work dir")).unwrap();
        e.set("/process/cwd", json!("/var/work dir"));
    });
    assert_eq!(out, "/var/work dir");
}

#[test]
fn umask_is_set() {
    let out = run_with("umask", "umask; touch /tmp/f; mkdir /tmp/d; stat -c %a /tmp/f /tmp/d", |e| {
        e.set("/process/user/umask", json!(0o027));
    });
    assert_eq!(squash(&out), "0027\n640\n750");
}

#[test]
fn rlimits_are_set() {
    let out = run_with("rlimits", "cat /proc/self/limits", |e| {
        e.set(
            "/process/rlimits",
            json!([
                {"type": "RLIMIT_NOFILE", "soft": 123, "hard": 456},
                {"type": "RLIMIT_NPROC", "soft": 777, "hard": 888},
                {"type": "RLIMIT_CORE", "soft": 0, "hard": 4096}
            ]),
        );
    });
    let limits = squash(&out);
    for want in ["Max open files 123 456 files", "Max processes 777 888 processes", "Max core file size 0 4096 bytes"] {
        assert!(limits.contains(want), "{want:?} not in\n{limits}");
    }
}

#[test]
fn oom_score_adj_is_set() {
    let out = run_with("oom_score_adj", "cat /proc/self/oom_score_adj", |e| {
        e.set("/process/oomScoreAdj", json!(123));
    });
    assert_eq!(out, "123");
}

#[test]
fn no_new_privileges_true() {
    let out = run_with("nnp_true", "grep NoNewPrivs /proc/self/status", |e| {
        e.set("/process/noNewPrivileges", json!(true));
    });
    assert_eq!(squash(&out), "NoNewPrivs: 1");
}

#[test]
fn no_new_privileges_false() {
    let host = fs::read_to_string("/proc/self/status").unwrap();
    if status_line(&host, "NoNewPrivs:") != "NoNewPrivs: 0" {
        return skip(HOST, "the test process has NoNewPrivs set; cannot check false");
    }
    let out = run_with("nnp_false", "grep NoNewPrivs /proc/self/status", |e| {
        e.set("/process/noNewPrivileges", json!(false));
    });
    assert_eq!(squash(&out), "NoNewPrivs: 0");
}

#[test]
fn personality_linux32() {
    if std::env::consts::ARCH != "x86_64" {
        return skip(HOST, "personality test written for x86_64");
    }
    let out = run_with("personality32", "uname -m", |e| {
        e.set("/ociVersion", json!("1.2.0"));
        e.set("/linux/personality", json!({"domain": "LINUX32"}));
    });
    assert_eq!(out, "i686");
}

#[test]
fn personality_linux_is_native() {
    let out = run_with("personality64", "uname -m", |e| {
        e.set("/ociVersion", json!("1.2.0"));
        e.set("/linux/personality", json!({"domain": "LINUX"}));
    });
    assert_eq!(out, std::env::consts::ARCH);
}

#[test]
fn io_priority_best_effort() {
    let out = run_with("ioprio_be", "ionice -p $$", |e| {
        e.set("/ociVersion", json!("1.2.0"));
        e.set("/process/ioPriority", json!({"class": "IOPRIO_CLASS_BE", "priority": 4}));
    });
    assert_eq!(out, "best-effort: prio 4");
}

#[test]
fn io_priority_idle() {
    let out = run_with("ioprio_idle", "ionice -p $$", |e| {
        e.set("/ociVersion", json!("1.2.0"));
        e.set("/process/ioPriority", json!({"class": "IOPRIO_CLASS_IDLE", "priority": 0}));
    });
    assert!(out.starts_with("idle"), "{out}");
}

#[test]
fn scheduler_policy_batch() {
    let out = run_with("sched_batch", "grep -E '^policy' /proc/self/sched; cut -d' ' -f19 /proc/self/stat", |e| {
        e.set("/ociVersion", json!("1.2.0"));
        e.set("/process/scheduler", json!({"policy": "SCHED_BATCH", "nice": 5}));
    });
    let s = squash(&out);
    assert!(s.starts_with("policy : 3"), "SCHED_BATCH is policy 3:\n{s}");
    assert!(s.ends_with("\n5"), "nice 5 expected:\n{s}");
}

#[test]
fn args_are_passed_verbatim() {
    let mut env = Env::new("args_verbatim");
    let m = env.marker.clone();
    env.set_args(&["sh", "-c", "printf '[%s]\\n' \"$0\" \"$@\"", &m, "a b", "", "c'd", "$HOME", "*"]);
    let out = env.run_ok();
    assert_eq!(out.stdout, format!("[{m}]\n[a b]\n[]\n[c'd]\n[$HOME]\n[*]\n"), "{out}");
    assert_no_leftovers(&env);
}

#[test]
fn program_found_through_path() {
    // args[0] without a slash is looked up in the container's PATH
    let mut env = Env::new("path_lookup");
    fs::create_dir_all(env.rootfs().join("opt/tools")).unwrap();
    fs::write(env.rootfs().join("opt/tools/hello-tool"), "#!/bin/sh\necho tool-ran \"$@\"\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(env.rootfs().join("opt/tools/hello-tool"), fs::Permissions::from_mode(0o755)).unwrap();
    let m = env.marker.clone();
    env.set("/process/env", json!(["PATH=/opt/tools:/bin"]));
    env.set_args(&["hello-tool", &m]);
    let out = env.run_ok();
    assert_eq!(out.stdout.trim(), format!("tool-ran {m}"), "{out}");
    assert_no_leftovers(&env);
}
