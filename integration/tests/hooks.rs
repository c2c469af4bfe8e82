//! OCI hooks: order, state on stdin, namespaces, failures, env, timeout.

use std::os::unix::fs::PermissionsExt;

use berth_integration::prelude::*;

/// A hook: appends its name to LOG, saves stdin as DIR/state-NAME.json and
/// its net/mnt namespaces as DIR/ns-NAME, then exits with $HOOK_EXIT.
/// Usage: hook.sh NAME LOG DIR. Runs with the host's /bin/sh and inside the
/// container with busybox.
const HOOK: &str = r#"#!/bin/sh
echo "$1" >> "$2"
cat > "$3/state-$1.json"
echo "$(readlink /proc/self/ns/net) $(readlink /proc/self/ns/mnt)" > "$3/ns-$1"
env > "$3/env-$1"
exit ${HOOK_EXIT:-0}
"#;

fn write_exec(path: &Path, text: &str) {
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

/// Install the host hook script and return its path.
fn host_hook(env: &Env) -> PathBuf {
    let p = env.file("hook.sh");
    write_exec(&p, HOOK);
    p
}

/// A hook entry that logs into the rootfs (visible both from the host and,
/// as /hooks.log, from the container).
fn entry(env: &Env, hook: &Path, name: &str, exit: i32) -> Value {
    let rootfs = env.rootfs().display().to_string();
    json!({
        "path": hook,
        "args": [hook, name, format!("{rootfs}/hooks.log"), rootfs],
        "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", format!("HOOK_EXIT={exit}"), "HOOKVAR=abc"]
    })
}

fn read_state(env: &Env, name: &str) -> Value {
    let p = env.rootfs().join(format!("state-{name}.json"));
    let text = fs::read_to_string(&p).unwrap_or_else(|e| panic!("{name} hook left no state ({e})"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} hook got invalid state JSON ({e}): {text:?}"))
}

fn read_ns(env: &Env, name: &str) -> String {
    fs::read_to_string(env.rootfs().join(format!("ns-{name}"))).unwrap_or_default().trim().to_string()
}

fn log(env: &Env, what: &str) {
    use std::io::Write;
    let mut f = fs::OpenOptions::new().append(true).create(true).open(env.rootfs().join("hooks.log")).unwrap();
    writeln!(f, "{what}").unwrap();
}

#[test]
fn hooks_run_in_order_with_state() {
    let mut env = Env::sh("hooks_order", SLEEPER);
    let hook = host_hook(&env);
    write_exec(&env.rootfs().join("start-hook.sh"), HOOK);
    env.set("/annotations", json!({"org.berth.hooks": "yes"}));
    let mut hooks = json!({});
    for name in ["prestart", "createRuntime", "createContainer", "poststart", "poststop"] {
        hooks[name] = json!([entry(&env, &hook, name, 0)]);
    }
    hooks["startContainer"] = json!([{
        "path": "/start-hook.sh",
        "args": ["/start-hook.sh", "startContainer", "/hooks.log", "/"],
        "env": ["PATH=/bin", "HOOK_EXIT=0"]
    }]);
    env.set("/hooks", hooks);

    env.create();
    log(&env, "create-returned");
    let pid = env.pid();
    env.start();
    log(&env, "start-returned");
    env.kill("KILL").ok();
    env.wait_status("stopped", SHORT);
    env.delete().ok();
    log(&env, "delete-returned");

    let order = fs::read_to_string(env.rootfs().join("hooks.log")).unwrap();
    assert_eq!(
        order.lines().collect::<Vec<_>>(),
        [
            "prestart", "createRuntime", "createContainer", "create-returned", "startContainer",
            "poststart", "start-returned", "poststop", "delete-returned"
        ],
        "hook order"
    );

    for (name, status) in [
        ("prestart", "creating"),
        ("createRuntime", "creating"),
        ("createContainer", "creating"),
        ("startContainer", "created"),
        ("poststart", "running"),
        ("poststop", "stopped"),
    ] {
        let st = read_state(&env, name);
        assert_eq!(st["status"], status, "{name}: {st}");
        assert_eq!(st["id"], env.id.as_str(), "{name}: {st}");
        assert_eq!(st["bundle"], env.bundle_str().as_str(), "{name}: {st}");
        assert!(st["ociVersion"].is_string(), "{name}: {st}");
        assert_eq!(st["annotations"]["org.berth.hooks"], "yes", "{name}: {st}");
        if status != "stopped" {
            assert!(st["pid"].as_i64().is_some_and(|p| p > 0), "{name}: no pid: {st}");
        }
        if ["prestart", "createRuntime", "poststart"].contains(&name) {
            assert_eq!(st["pid"].as_i64(), Some(pid), "{name} hook runs in the runtime namespace: host pid expected: {st}");
        }
    }
    assert_no_leftovers(&env);
}

#[test]
fn hooks_run_in_the_right_namespaces() {
    let mut env = Env::sh("hooks_ns", SLEEPER);
    let hook = host_hook(&env);
    write_exec(&env.rootfs().join("start-hook.sh"), HOOK);
    let mut hooks = json!({});
    for name in ["createRuntime", "createContainer", "poststart"] {
        hooks[name] = json!([entry(&env, &hook, name, 0)]);
    }
    hooks["startContainer"] = json!([{"path": "/start-hook.sh", "args": ["/start-hook.sh", "startContainer", "/hooks.log", "/"]}]);
    env.set("/hooks", hooks);

    env.create();
    let pid = env.pid().to_string();
    let host = format!("{} {}", ns_link("self", "net"), ns_link("self", "mnt"));
    let container = format!("{} {}", ns_link(&pid, "net"), ns_link(&pid, "mnt"));
    assert_ne!(host, container);
    env.start();
    env.delete_force().ok();

    assert_eq!(read_ns(&env, "createRuntime"), host, "createRuntime runs in the runtime namespaces");
    assert_eq!(read_ns(&env, "createContainer"), container, "createContainer runs in the container's namespaces");
    assert_eq!(read_ns(&env, "startContainer"), container, "startContainer runs in the container's namespaces");
    assert_eq!(read_ns(&env, "poststart"), host, "poststart runs in the runtime namespaces");
    assert_no_leftovers(&env);
}

#[test]
fn hook_env_is_the_configs() {
    let mut env = Env::sh("hooks_env", "true");
    let hook = host_hook(&env);
    env.set("/hooks", json!({"createRuntime": [entry(&env, &hook, "createRuntime", 0)]}));
    env.run_ok();
    let text = fs::read_to_string(env.rootfs().join("env-createRuntime")).unwrap();
    assert!(text.lines().any(|l| l == "HOOKVAR=abc"), "{text}");
    assert!(!text.lines().any(|l| l.starts_with(HOST_ENV_VAR) || l.starts_with("CARGO")), "runtime env leaked into hook:\n{text}");
    assert_no_leftovers(&env);
}

/// A failing hook of `kind` makes create fail and leaves nothing behind.
fn failing_create_hook(name: &str, kind: &str) {
    let mut env = Env::sh(name, "true");
    let hook = host_hook(&env);
    env.set("/hooks", json!({ kind: [entry(&env, &hook, kind, 7)] }));
    let out = env.try_create();
    out.exits_with(1);
    assert!(out.stderr.to_lowercase().contains("hook"), "error should name the hook:\n{out}");
    assert!(fs::read_to_string(env.rootfs().join("hooks.log")).unwrap_or_default().contains(kind), "hook did not run");
    env.berth(&["state", &env.id]).fails_with(&["does not exist"]);
    assert_no_leftovers(&env);
}

#[test]
fn failing_prestart_hook_fails_create() {
    failing_create_hook("fail_prestart", "prestart");
}

#[test]
fn failing_create_runtime_hook_fails_create() {
    failing_create_hook("fail_create_runtime", "createRuntime");
}

#[test]
fn failing_create_container_hook_fails_create() {
    failing_create_hook("fail_create_container", "createContainer");
}

#[test]
fn failing_start_container_hook_fails_start_and_stops_the_container() {
    // The program would leave a marker; a failing startContainer hook must
    // stop the container before it runs and `start` must say so. As runc,
    // the container stays stopped until `delete` destroys it and runs
    // poststop (runtime.md steps 7, 12, 13; issue 13.5).
    let mut env = Env::sh("fail_start_container", "touch /program-ran; sleep 30");
    let hook = host_hook(&env);
    env.set(
        "/hooks",
        json!({
            "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "echo startContainer >> /hooks.log; exit 4"]}],
            "poststart": [entry(&env, &hook, "poststart", 0)],
            "poststop": [entry(&env, &hook, "poststop", 0)]
        }),
    );
    env.create();
    let out = env.berth(&["start", &env.id.clone()]);
    out.fails_with(&["startContainer", "exited with status 4"]);
    let log = fs::read_to_string(env.rootfs().join("hooks.log")).unwrap_or_default();
    assert_eq!(log.lines().collect::<Vec<_>>(), ["startContainer"], "hooks after a failed startContainer");
    assert!(!env.rootfs().join("program-ran").exists(), "the program ran although startContainer failed");
    assert_eq!(env.status(), "stopped");
    env.delete().ok();
    let log = fs::read_to_string(env.rootfs().join("hooks.log")).unwrap_or_default();
    assert_eq!(log.lines().collect::<Vec<_>>(), ["startContainer", "poststop"], "hooks after delete");
    env.berth(&["state", &env.id.clone()]).fails_with(&["does not exist"]);
    assert_no_leftovers(&env);
}

#[test]
fn failing_poststart_hook_fails_start_and_stops_the_container() {
    // runtime.md step 9: generate an error, stop the container; `delete`
    // destroys it and runs poststop (issue 13.5: left stopped, as runc).
    let mut env = Env::sh("fail_poststart", SLEEPER);
    let hook = host_hook(&env);
    env.set(
        "/hooks",
        json!({"poststart": [entry(&env, &hook, "poststart", 5)], "poststop": [entry(&env, &hook, "poststop", 0)]}),
    );
    env.create();
    env.berth(&["start", &env.id.clone()]).fails_with(&["poststart", "exited with status 5"]);
    let log = fs::read_to_string(env.rootfs().join("hooks.log")).unwrap_or_default();
    assert_eq!(log.lines().collect::<Vec<_>>(), ["poststart"], "hooks after a failed poststart");
    assert_eq!(env.status(), "stopped");
    env.delete().ok();
    let log = fs::read_to_string(env.rootfs().join("hooks.log")).unwrap_or_default();
    assert_eq!(log.lines().collect::<Vec<_>>(), ["poststart", "poststop"], "hooks after delete");
    env.berth(&["state", &env.id.clone()]).fails_with(&["does not exist"]);
    assert_no_leftovers(&env);
}

#[test]
fn failing_create_runtime_hook_runs_poststop() {
    let mut env = Env::sh("fail_cr_poststop", "true");
    let hook = host_hook(&env);
    env.set(
        "/hooks",
        json!({"createRuntime": [entry(&env, &hook, "createRuntime", 3)], "poststop": [entry(&env, &hook, "poststop", 0)]}),
    );
    env.berth(&["create", "--bundle", &env.bundle_str(), &env.id.clone()]).fails_with(&["createRuntime"]);
    let log = fs::read_to_string(env.rootfs().join("hooks.log")).unwrap_or_default();
    assert_eq!(log.lines().collect::<Vec<_>>(), ["createRuntime", "poststop"]);
    assert_eq!(read_state(&env, "poststop")["status"], "stopped");
    assert_no_leftovers(&env);
}

#[test]
fn failing_poststop_hook_only_warns_and_the_others_run() {
    let mut env = Env::sh("fail_poststop", "true");
    let hook = host_hook(&env);
    env.set(
        "/hooks",
        json!({"poststop": [entry(&env, &hook, "poststop1", 5), entry(&env, &hook, "poststop2", 0)]}),
    );
    env.create();
    env.start();
    env.wait_status("stopped", SHORT);
    env.delete();
    let log = fs::read_to_string(env.rootfs().join("hooks.log")).unwrap_or_default();
    assert_eq!(log.lines().collect::<Vec<_>>(), ["poststop1", "poststop2"], "every poststop hook runs");
    assert_no_leftovers(&env);
}

#[test]
fn hooks_run_by_foreground_run() {
    let mut env = Env::sh("hooks_fg_run", "echo container >> /hooks.log");
    let hook = host_hook(&env);
    let mut hooks = json!({});
    for name in ["createRuntime", "poststart", "poststop"] {
        hooks[name] = json!([entry(&env, &hook, name, 0)]);
    }
    env.set("/hooks", hooks);
    env.run_ok();
    let order = fs::read_to_string(env.rootfs().join("hooks.log")).unwrap();
    let lines: Vec<&str> = order.lines().collect();
    assert_eq!(lines.first(), Some(&"createRuntime"), "{order}");
    assert_eq!(lines.last(), Some(&"poststop"), "{order}");
    assert!(lines.contains(&"poststart") && lines.contains(&"container"), "{order}");
    assert_no_leftovers(&env);
}

#[test]
fn hook_timeout_fails_create() {
    let mut env = Env::sh("hook_timeout", "true");
    let slow = env.file("slow.sh");
    // the marker in argv lets the guard find the hook if it survives
    write_exec(&slow, "#!/bin/sh\nwhile :; do sleep 0.1; done\n");
    env.set("/hooks", json!({"createRuntime": [{"path": slow, "args": [slow, env.marker], "timeout": 1}]}));
    let started = std::time::Instant::now();
    let out = env.try_create();
    out.exits_with(1);
    assert!(started.elapsed() < Duration::from_secs(20), "hook timeout not enforced: {:?}", started.elapsed());
    assert_no_leftovers(&env);
}

/// A startContainer hook without `env` gets the container process's
/// environment (with the HOME berth adds), as with runc and crun (issue
/// 13.10: it got an empty one); an explicit empty `env` stays empty.
#[test]
fn start_container_hook_without_env_gets_the_process_env() {
    let mut env = Env::sh("hook_start_env", "true");
    env.set("/process/env", json!(["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "CTR_VAR=from-process"]));
    let dump = |file: &str| json!(["sh", "-c", format!("env > /tmp/{file}")]);
    env.set(
        "/hooks",
        json!({"startContainer": [
            {"path": "/bin/sh", "args": dump("env-default")},
            {"path": "/bin/sh", "args": dump("env-empty"), "env": []}
        ]}),
    );
    env.run_ok();
    let read = |file: &str| fs::read_to_string(env.rootfs().join("tmp").join(file)).unwrap_or_default();
    let default = read("env-default");
    for want in ["CTR_VAR=from-process", "HOME=/root", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"] {
        assert!(default.lines().any(|l| l == want), "{want} missing from the hook's env:\n{default}");
    }
    let empty = read("env-empty");
    assert!(!empty.is_empty() && !empty.contains("CTR_VAR"), "explicit empty env not kept:\n{empty}");
    assert_no_leftovers(&env);
}
