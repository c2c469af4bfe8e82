//! Bad input and wrong states: each a clear error (exit 1, a message on
//! stderr) and nothing left behind.

use berth_integration::prelude::*;

fn missing(id: &str) -> String {
    format!("container \"{id}\" does not exist")
}

#[test]
fn missing_bundle() {
    let env = Env::new("missing_bundle");
    let nowhere = env.file("no-such-bundle");
    let nowhere = nowhere.to_str().unwrap();
    env.berth(&["create", "--bundle", nowhere, &env.id]).fails_with(&[nowhere]);
    assert_no_leftovers(&env);
    env.berth(&["run", "--bundle", nowhere, &env.id]).fails_with(&[nowhere]);
    assert_no_leftovers(&env);
}

#[test]
fn invalid_json() {
    let env = Env::new("invalid_json");
    fs::write(env.bundle_path().join("config.json"), "{ \"ociVersion\": \"1.0.2\", \"process\": ").unwrap();
    env.try_create().fails_with(&["config.json"]);
    assert_no_leftovers(&env);
}

#[test]
fn unknown_namespace() {
    let mut env = Env::new("unknown_namespace");
    env.set("/linux/namespaces/2/type", json!("foo"));
    let want = format!("{}/config.json: linux.namespaces[2].type: unknown namespace \"foo\"", env.bundle_str());
    env.try_create().fails_with(&[&want]);
    assert_no_leftovers(&env);
}

#[test]
fn empty_args_is_config_error() {
    let mut env = Env::new("empty_args");
    env.set("/process/args", json!([]));
    env.try_create().fails_with(&["config.json", "process.args"]);
    assert_no_leftovers(&env);
}

#[test]
fn missing_rootfs_names_the_path() {
    let mut env = Env::new("missing_rootfs");
    env.set("/root/path", json!("rootfs-is-not-here"));
    env.try_create().fails_with(&["rootfs-is-not-here"]);
    assert_no_leftovers(&env);
}

#[test]
fn terminal_without_console_socket() {
    let mut env = Env::new("terminal");
    env.set("/process/terminal", json!(true));
    env.try_create().fails_with(&["process.terminal", "--console-socket"]);
    assert_no_leftovers(&env);
}

#[test]
fn duplicate_id() {
    let env = Env::sh("duplicate_id", SLEEPER);
    env.create();
    let pid = env.pid();
    env.try_create().fails_with(&[&format!("container \"{}\" already exists", env.id)]);
    // the first container is untouched
    let st = env.state();
    assert_eq!(st["status"], "created", "{st}");
    assert_eq!(st["pid"].as_i64(), Some(pid), "{st}");
    for d in host::cgroup_v1_hierarchies() {
        let dir = d.join(env.cgroups_path.trim_start_matches('/'));
        assert!(dir.exists(), "duplicate create removed {}", dir.display());
    }
    env.delete_force().ok();
    assert_no_leftovers(&env);
}

#[test]
fn start_running_container() {
    let env = Env::sh("start_running", SLEEPER);
    env.create();
    env.start();
    env.berth(&["start", &env.id]).fails_with(&["cannot start", "running"]);
    assert_eq!(env.status(), "running");
    env.delete_force().ok();
    assert_no_leftovers(&env);
}

#[test]
fn start_stopped_container() {
    let env = Env::sh("start_stopped", "true");
    env.create();
    env.start();
    env.wait_status("stopped", SHORT);
    env.berth(&["start", &env.id]).fails_with(&["cannot start", "stopped"]);
    env.delete().ok();
    assert_no_leftovers(&env);
}

#[test]
fn delete_running_without_force() {
    let env = Env::sh("delete_running", SLEEPER);
    env.run_detached();
    env.delete().fails_with(&["cannot delete", "--force"]);
    assert_eq!(env.status(), "running");
    assert!(pid_alive(env.pid()));
    env.delete_force().ok();
    assert_no_leftovers(&env);
}

#[test]
fn delete_created_without_force() {
    let env = Env::sh("delete_created", SLEEPER);
    env.create();
    env.delete().fails_with(&["cannot delete", "--force"]);
    assert_eq!(env.status(), "created");
    env.delete_force().ok();
    assert_no_leftovers(&env);
}

#[test]
fn commands_on_missing_container() {
    let env = Env::new("missing_container");
    let msg = missing(&env.id);
    env.kill("TERM").fails_with(&[&msg]);
    env.berth(&["kill", "--all", &env.id, "KILL"]).fails_with(&[&msg]);
    env.berth(&["state", &env.id]).fails_with(&[&msg]);
    env.berth(&["start", &env.id]).fails_with(&[&msg]);
    env.delete().fails_with(&[&msg]);
    assert_no_leftovers(&env);
}

#[test]
fn kill_missing_container() {
    let env = Env::new("kill_missing");
    env.kill("KILL").fails_with(&[&missing(&env.id)]);
    assert_no_leftovers(&env);
}

#[test]
fn kill_invalid_signal() {
    let env = Env::sh("kill_bad_signal", SLEEPER);
    env.run_detached();
    env.kill("NOTASIGNAL").fails_with(&["NOTASIGNAL"]);
    assert_eq!(env.status(), "running");
    env.delete_force().ok();
    assert_no_leftovers(&env);
}

#[test]
fn failing_create_runtime_hook_leaves_nothing() {
    let mut env = Env::new("bad_create_runtime_hook");
    env.set("/hooks", json!({"createRuntime": [{"path": "/bin/false", "args": ["false", env.marker]}]}));
    let out = env.try_create();
    out.exits_with(1);
    assert!(out.stderr.to_lowercase().contains("hook"), "error should name the hook:\n{out}");
    assert_no_leftovers(&env);
}

#[test]
fn failed_run_leaves_nothing() {
    // the program does not exist in the rootfs
    let mut env = Env::new("exec_missing");
    env.set_args(&["/no/such/program", &env.marker.clone()]);
    let out = env.run();
    assert_ne!(out.code(), Some(0), "{out}");
    assert!(out.stderr.contains("/no/such/program"), "{out}");
    assert_no_leftovers(&env);
}

#[test]
fn long_config_values_give_short_clear_errors() {
    // A 100 KB hostname used to reach init and come back as "bad sync
    // message"; a 10 MB one made a 10 MB message. Now the value is checked
    // up front and echoed clipped, with its length.
    for len in [100 * 1024, 10 * 1024 * 1024] {
        let mut env = Env::new("long_hostname");
        env.set("/hostname", json!("h".repeat(len)));
        let out = env.try_create();
        out.fails_with(&["hostname", &format!("({len} bytes)"), "at most 64"]);
        assert!(!out.stderr.contains("bad sync message"), "{}", &out.stderr[..out.stderr.len().min(300)]);
        assert!(out.stderr.len() < 2048, "a {} byte message for a {len} byte hostname", out.stderr.len());
        assert_no_leftovers(&env);
    }
    // An error init reports (a createContainer hook that cannot run): the
    // 100 KB path is clipped in the message, which crosses the sync socket.
    let mut env = Env::new("long_hook_path");
    let path = format!("/{}", "p/".repeat(50 * 1024));
    env.set("/hooks", json!({"createContainer": [{"path": path}]}));
    let out = env.try_create();
    out.fails_with(&["createContainer", &format!("({} bytes)", path.len())]);
    assert!(!out.stderr.contains("bad sync message"), "{}", &out.stderr[..out.stderr.len().min(300)]);
    assert!(out.stderr.len() < 2048, "a {} byte message for a {} byte hook path", out.stderr.len(), path.len());
    assert_no_leftovers(&env);
}

#[test]
fn ids_starting_with_a_dot() {
    // runc's id rule allows them (only "." and ".." are refused); the session
    // keyring is named `_ses.<id>`, since the kernel keeps names starting
    // with "." for itself.
    for prefix in [".", ".."] {
        let mut env = Env::sh("dot_id", "echo ran");
        env.id = format!("{prefix}{}", env.id);
        let out = env.run_ok();
        assert_eq!(out.stdout, "ran\n", "{out}");
        assert_no_leftovers(&env);
    }
    for bad in [".", ".."] {
        let env = Env::new("dot_id_bad");
        env.berth(&["run", "--bundle", &env.bundle_str(), bad]).fails_with(&["invalid container id"]);
        assert_no_leftovers(&env);
    }
}
