//! Foreground `run`: stdio, exit codes, signal forwarding, cleanup.

use berth_integration::prelude::*;

#[test]
fn run_exit_code_0() {
    let env = Env::sh("exit_0", "exit 0");
    env.run().exits_with(0);
    assert_no_leftovers(&env);
}

#[test]
fn run_exit_code_3() {
    let env = Env::sh("exit_3", "exit 3");
    env.run().exits_with(3);
    assert_no_leftovers(&env);
}

#[test]
fn run_exit_code_255() {
    let env = Env::sh("exit_255", "exit 255");
    env.run().exits_with(255);
    assert_no_leftovers(&env);
}

#[test]
fn run_exit_code_137_when_killed_from_outside() {
    let env = Env::sh("exit_137_kill", &format!("echo r > /ready; {SLEEPER}"));
    let mut run = env.spawn_run();
    run.expect_file(&env.rootfs().join("ready"), "r", SHORT);
    env.kill("KILL").ok();
    run.wait(SHORT).exits_with(137);
    assert_no_leftovers(&env);
}

#[test]
fn run_exit_code_137_when_init_kills_itself() {
    // without a pid namespace init is not protected from its own SIGKILL
    let mut env = Env::sh("exit_137_self", "kill -9 $$; sleep 5");
    env.set_namespaces(&["mount", "ipc", "uts", "network"]);
    env.run().exits_with(137);
    assert_no_leftovers(&env);
}

#[test]
fn run_exit_code_143_on_sigterm_without_trap() {
    let mut env = Env::sh("exit_143_self", "kill -TERM $$; sleep 5");
    env.set_namespaces(&["mount", "ipc", "uts", "network"]);
    env.run().exits_with(143);
    assert_no_leftovers(&env);
}

/// Send `sig` to the `berth run` process; the container's init traps it,
/// writes a marker and exits with `code`.
fn forwards(name: &str, sig: i32, trap_name: &str, code: i32) {
    let script = format!("trap 'echo got-{trap_name} > /got; exit {code}' {trap_name}; echo r > /ready; while :; do sleep 0.05; done");
    let env = Env::sh(name, &script);
    let mut run = env.spawn_run();
    run.expect_file(&env.rootfs().join("ready"), "r", SHORT);
    run.signal(sig);
    let out = run.wait(SHORT);
    out.exits_with(code);
    assert_eq!(fs::read_to_string(env.rootfs().join("got")).unwrap_or_default().trim(), format!("got-{trap_name}"));
    assert_no_leftovers(&env);
}

#[test]
fn run_forwards_sigterm() {
    forwards("fwd_term", libc::SIGTERM, "TERM", 42);
}

#[test]
fn run_forwards_sigint() {
    forwards("fwd_int", libc::SIGINT, "INT", 43);
}

#[test]
fn run_forwards_sighup() {
    forwards("fwd_hup", libc::SIGHUP, "HUP", 44);
}

#[test]
fn run_forwards_sigusr1() {
    forwards("fwd_usr1", libc::SIGUSR1, "USR1", 45);
}

#[test]
fn run_forwards_sigusr2() {
    forwards("fwd_usr2", libc::SIGUSR2, "USR2", 46);
}

#[test]
fn run_forwarded_sigterm_without_trap_gives_143() {
    // without a pid namespace init has no special signal protection, so
    // the default action applies and run reports 128+15
    let mut env = Env::sh("fwd_term_default", "echo r > /ready; while :; do sleep 0.05; done");
    env.set_namespaces(&["mount", "ipc", "uts", "network"]);
    let mut run = env.spawn_run();
    run.expect_file(&env.rootfs().join("ready"), "r", SHORT);
    run.signal(libc::SIGTERM);
    run.wait(SHORT).exits_with(143);
    assert_no_leftovers(&env);
}

#[test]
fn run_stdio_is_berths() {
    let env = Env::sh("run_stdio", "cat; echo to-stderr >&2; echo done");
    let out = env.run_stdin(b"line one\nline two\n");
    out.exits_with(0);
    assert_eq!(out.stdout, "line one\nline two\ndone\n", "{out}");
    assert!(out.stderr.contains("to-stderr"), "{out}");
    assert_no_leftovers(&env);
}

#[test]
fn run_with_options_after_id() {
    let env = Env::sh("run_opts_after", "echo after");
    let out = env.berth(&["run", &env.id, "--bundle", &env.bundle_str()]).ok();
    assert_eq!(out.stdout.trim(), "after", "{out}");
    assert_no_leftovers(&env);
}

#[test]
fn run_detached_with_options_after_id() {
    let env = Env::sh("run_d_opts_after", SLEEPER);
    let pf = env.file("pid");
    env.berth(&["run", &env.id, "-d", "--pid-file", pf.to_str().unwrap(), "-b", &env.bundle_str()]).ok();
    assert_eq!(env.status(), "running");
    assert_eq!(fs::read_to_string(&pf).unwrap().trim(), env.pid().to_string());
    env.delete_force().ok();
    assert_no_leftovers(&env);
}

#[test]
fn run_from_bundle_cwd_by_default() {
    // without --bundle the bundle is the current directory
    let env = Env::sh("run_cwd_bundle", "echo cwd-bundle");
    let out = env.berth_in(env.bundle_path(), &["run", &env.id]).ok();
    assert_eq!(out.stdout.trim(), "cwd-bundle", "{out}");
    assert_no_leftovers(&env);
}

#[test]
fn run_init_keeps_berths_cpu_affinity() {
    // berth narrows init's affinity for a moment after the clone (see
    // process/spread.rs): the container must end up with berth's mask.
    let ours = fs::read_to_string("/proc/self/status").unwrap();
    let mask = |s: &str| {
        let line = s.lines().find(|l| l.starts_with("Cpus_allowed_list:"));
        line.map(|l| l.split(':').nth(1).unwrap().trim().to_string())
    };
    let env = Env::sh("run_affinity", "grep Cpus_allowed_list: /proc/self/status");
    let out = env.run();
    out.exits_with(0);
    assert_eq!(mask(&out.stdout), mask(&ours), "{out}");
    assert_no_leftovers(&env);
}
