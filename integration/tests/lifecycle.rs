//! create / start / state / kill / delete / list, and `run -d`.

use berth_integration::prelude::*;

/// A script that signals readiness, records each SIGNAL it gets in /sig
/// without exiting, and loops.
fn trap_script(sig: &str) -> String {
    format!("trap 'echo got-{sig} >> /sig' {sig}; echo r > /ready; while :; do sleep 0.05; done")
}

#[test]
fn state_transitions_created_running_stopped() {
    let mut env = Env::sh("state_transitions", &format!("echo ran > /ran; {WAIT_GO}; exit 0"));
    env.set("/annotations", json!({"org.berth.test": "yes"}));
    let ran = env.rootfs().join("ran");

    env.create();
    let st = env.state();
    assert_eq!(st["status"], "created", "{st}");
    assert_eq!(st["id"], env.id.as_str(), "{st}");
    assert_eq!(st["bundle"], env.bundle_str().as_str(), "{st}");
    assert!(st["ociVersion"].as_str().is_some_and(|v| v.starts_with("1.")), "ociVersion: {st}");
    let pid = st["pid"].as_i64().expect("pid while created");
    assert!(pid > 0 && pid_alive(pid), "init {pid} not alive: {st}");
    std::thread::sleep(Duration::from_millis(300));
    assert!(!ran.exists(), "the user program ran before start");

    env.start();
    env.wait_file("ran", "ran");
    let st = env.state();
    assert_eq!(st["status"], "running", "{st}");
    assert_eq!(st["pid"].as_i64(), Some(pid), "pid changed across start: {st}");

    fs::write(env.rootfs().join("go"), "").unwrap();
    env.wait_status("stopped", SHORT);

    env.delete().ok();
    env.berth(&["state", &env.id]).fails_with(&[&format!("container \"{}\" does not exist", env.id)]);
    assert_no_leftovers(&env);
}

#[test]
fn state_reports_annotations() {
    let mut env = Env::sh("state_annotations", SLEEPER);
    env.set("/annotations", json!({"org.berth.a": "1", "org.berth.b": "two words"}));
    env.create();
    let st = env.state();
    assert_eq!(st["annotations"], json!({"org.berth.a": "1", "org.berth.b": "two words"}), "{st}");
    env.delete_force().ok();
    assert_no_leftovers(&env);
}

#[test]
fn run_detached_returns_once_running() {
    let env = Env::sh("run_detached", SLEEPER);
    env.run_detached();
    let st = env.state();
    assert_eq!(st["status"], "running", "{st}");
    assert!(pid_alive(st["pid"].as_i64().unwrap()), "{st}");
    env.kill("KILL").ok();
    env.wait_status("stopped", SHORT);
    env.delete().ok();
    assert_no_leftovers(&env);
}

#[test]
fn foreground_run_deletes_container() {
    let env = Env::sh("fg_run_deletes", "echo hello");
    let out = env.run_ok();
    assert_eq!(out.stdout.trim(), "hello", "{out}");
    assert!(!env.state_dir().exists(), "state dir left after foreground run");
    env.berth(&["state", &env.id]).fails_with(&["does not exist"]);
    assert_no_leftovers(&env);
}

#[test]
fn pid_file_on_create() {
    let env = Env::sh("pid_file_create", SLEEPER);
    let pf = env.file("init.pid");
    env.berth(&["create", "--pid-file", pf.to_str().unwrap(), "--bundle", &env.bundle_str(), &env.id]).ok();
    let written: i64 = fs::read_to_string(&pf).expect("pid file").trim().parse().expect("pid file holds a number");
    assert_eq!(written, env.pid());
    env.delete_force().ok();
    assert_no_leftovers(&env);
}

#[test]
fn pid_file_on_run_detached() {
    let env = Env::sh("pid_file_run_d", SLEEPER);
    let pf = env.file("init.pid");
    env.berth(&["run", "-d", "--pid-file", pf.to_str().unwrap(), "--bundle", &env.bundle_str(), &env.id]).ok();
    let written: i64 = fs::read_to_string(&pf).expect("pid file").trim().parse().expect("pid file holds a number");
    assert_eq!(written, env.pid());
    assert!(pid_alive(written));
    env.delete_force().ok();
    assert_no_leftovers(&env);
}

#[test]
fn list_shows_containers() {
    let a = Env::sh("list_a", SLEEPER);
    let mut b = Env::sharing_root("list_b", &a);
    b.set_script(SLEEPER);
    a.create();
    b.run_detached();

    let q = a.berth(&["list", "-q"]).ok();
    let mut ids = q.lines();
    ids.sort();
    let mut want = vec![a.id.clone(), b.id.clone()];
    want.sort();
    assert_eq!(ids, want, "{q}");

    let mut long = a.berth(&["list", "--quiet"]).ok().lines();
    long.sort();
    assert_eq!(long, want, "list --quiet");

    for args in [&["list"][..], &["list", "--format", "table"][..]] {
        let table = a.berth(args).ok();
        assert!(table.stdout.contains(&a.id) && table.stdout.contains(&b.id), "{table}");
        assert!(table.stdout.contains("created") && table.stdout.contains("running"), "{table}");
    }

    let js = a.berth(&["list", "--format", "json"]).ok().json();
    let arr = js.as_array().unwrap_or_else(|| panic!("not an array: {js}"));
    assert_eq!(arr.len(), 2, "{js}");
    for (env, status) in [(&a, "created"), (&b, "running")] {
        let o = arr.iter().find(|o| o["id"] == env.id.as_str()).unwrap_or_else(|| panic!("{} missing: {js}", env.id));
        assert_eq!(o["status"], status, "{o}");
        assert_eq!(o["bundle"], env.bundle_str().as_str(), "{o}");
        assert_eq!(o["pid"].as_i64(), Some(env.pid()), "{o}");
    }

    b.delete_force().ok();
    a.delete_force().ok();
    let q = a.berth(&["list", "-q"]).ok();
    assert!(q.stdout.trim().is_empty(), "list after delete: {q}");
    assert_no_leftovers(&a);
    assert_no_leftovers(&b);
}

fn kill_spelling(name: &str, spelling: Option<&str>, trapped: &str) {
    let env = Env::sh(name, &trap_script(trapped));
    env.run_detached();
    env.wait_file("ready", "r");
    let out = match spelling {
        Some(s) => env.kill(s),
        None => env.berth(&["kill", &env.id]),
    };
    out.ok();
    env.wait_file("sig", &format!("got-{trapped}"));
    assert_eq!(env.status(), "running", "the trap should keep the container running");
    env.kill("KILL").ok();
    env.wait_status("stopped", SHORT);
    env.delete().ok();
    assert_no_leftovers(&env);
}

#[test]
fn kill_signal_by_name() {
    kill_spelling("kill_name", Some("TERM"), "TERM");
}

#[test]
fn kill_signal_by_sig_name() {
    kill_spelling("kill_signame", Some("SIGTERM"), "TERM");
}

#[test]
fn kill_signal_by_number() {
    kill_spelling("kill_number", Some("15"), "TERM");
}

#[test]
fn kill_default_is_sigterm() {
    kill_spelling("kill_default", None, "TERM");
}

#[test]
fn kill_other_signals_every_spelling() {
    for (i, s) in ["USR1", "SIGUSR1", "10"].iter().enumerate() {
        let env = Env::sh(&format!("kill_usr1_{i}"), &trap_script("USR1"));
        env.run_detached();
        env.wait_file("ready", "r");
        env.kill(s).ok();
        env.wait_file("sig", "got-USR1");
        env.delete_force().ok();
        assert_no_leftovers(&env);
    }
}

#[test]
fn kill_sigkill_stops_container() {
    let env = Env::sh("kill_sigkill", "while :; do sleep 0.1; done");
    env.run_detached();
    env.kill("KILL").ok();
    env.wait_status("stopped", SHORT);
    env.delete().ok();
    assert_no_leftovers(&env);
}

#[test]
fn kill_all_reaches_every_process() {
    let child = "trap 'echo child >> /sig' USR1; echo c > /child-ready; while :; do sleep 0.05; done";
    let script = format!(
        "sh -c \"{child}\" & trap 'echo init >> /sig' USR1; echo r > /ready; while :; do sleep 0.05; done"
    );
    let env = Env::sh("kill_all", &script);
    env.run_detached();
    env.wait_file("ready", "r");
    env.wait_file("child-ready", "c");
    let sig = env.rootfs().join("sig");

    // Without --all only init gets it.
    env.kill("USR1").ok();
    env.wait_file("sig", "init");
    std::thread::sleep(Duration::from_millis(400));
    let got = fs::read_to_string(&sig).unwrap();
    assert!(!got.contains("child"), "kill without --all reached a child: {got:?}");

    fs::write(&sig, "").unwrap();
    env.berth(&["kill", "--all", &env.id, "USR1"]).ok();
    env.wait_file("sig", "child");
    env.wait_file("sig", "init");

    env.berth(&["kill", "-a", &env.id, "KILL"]).ok();
    env.wait_status("stopped", SHORT);
    env.delete().ok();
    assert_no_leftovers(&env);
}

#[test]
fn delete_force_running_container() {
    let env = Env::sh("delete_force_running", SLEEPER);
    env.run_detached();
    let pid = env.pid();
    env.delete_force().ok();
    assert!(wait_until(SHORT, || !pid_alive(pid)), "init {pid} survived delete --force");
    assert_no_leftovers(&env);
}

#[test]
fn delete_force_created_container() {
    let env = Env::sh("delete_force_created", SLEEPER);
    env.create();
    let pid = env.pid();
    env.berth(&["delete", "-f", &env.id]).ok();
    assert!(wait_until(SHORT, || !pid_alive(pid)), "init {pid} survived delete -f");
    assert_no_leftovers(&env);
}
