//! berth killed at any moment: a SIGKILL of `create`, `run -d` or `run`
//! leaves nothing that `delete --force` cannot find and remove (state dir,
//! cgroups, processes, mounts), `list` and `state` show a half-made
//! container, and an init whose creator died before it was handed over
//! does not live on. Also: a failed `start` leaves the container stopped.
//!
//! Each kill test uses one bundle and one id per kill (`<env id>-kNNN`),
//! without `linux.cgroupsPath`, so each container has its own cgroup
//! `/berth/<id>`; the kills are spread over 0-20 ms after the spawn.
//!
//! The kills of create, run -d and run, and the handover, also run rootless
//! (berth as a test user of its own, killed by the test): the user's own
//! `delete --force` must then remove everything. Not rootless: the
//! two-stage create (it joins the host's uts namespace, which a user
//! cannot), and the hook outliving init (found through the container's
//! cgroups, which a rootless container has none of here).

use berth_integration::prelude::*;
use berth_integration::root_and_rootless;

/// Kill delays spread over this window (berth's create takes ~5 ms here).
const WINDOW_US: u64 = 20_000;

/// The containers one kill test made; dropping it deletes and reaps all of
/// them, even when the test fails.
struct Made<'a> {
    env: &'a Env,
    ids: Vec<String>,
}

impl Drop for Made<'_> {
    fn drop(&mut self) {
        for id in &self.ids {
            let _ = self.env.berth_quiet(&["delete", "--force", id], Duration::from_secs(10));
            let left = host::reap_container(id, &cgroups_path(id));
            if !left.is_empty() {
                eprintln!("cleanup of {id}: {}", left.join("; "));
            }
        }
    }
}

fn cgroups_path(id: &str) -> String {
    format!("/berth/{id}")
}

/// A bundle running a sleeper, with berth's default cgroup path, berth
/// run by `who`.
fn sleeper_env_as(name: &str, who: &Who) -> Env {
    let mut env = Env::sh_as(name, SLEEPER, who);
    env.remove("/linux/cgroupsPath");
    env
}

/// [`sleeper_env_as`] as root.
fn sleeper_env(name: &str) -> Env {
    sleeper_env_as(name, &Who::Root)
}

/// Processes of `id` that have not exec'd the container's program: clones
/// of berth, whose command line carries the id.
fn berth_clones(id: &str) -> Vec<i32> {
    host::pids_with_marker(&format!("\0{id}\0"))
}

/// Spawn `berth VERB... --bundle B ID` `kills` times, SIGKILL it after a
/// delay spread over [`WINDOW_US`], then check what it left and that
/// `delete --force` removes all of it.
fn kill_at_spread_delays(env: &Env, verb: &[&str], kills: usize) {
    let mut made = Made { env, ids: Vec::new() };
    let bundle = env.bundle_str();
    let (mut seen_dir, mut mid_way) = (0, 0);
    let mut problems = Vec::new();
    for i in 0..kills {
        let id = format!("{}-k{i:03}", env.id);
        made.ids.push(id.clone());
        // Spread over the window, denser where berth still works (the
        // i-th of n at WINDOW * (i/n)^2: half of them in its first quarter),
        // with a jitter of up to ~0.3 ms so that repeated runs hit other
        // moments.
        let jitter =
            (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos() as u64 / 1000)
                % 300;
        let (i2, n2) = ((i * i) as u64, (kills * kills) as u64);
        let delay = Duration::from_micros(i2 * WINDOW_US / n2 + jitter);
        let mut args: Vec<&str> = verb.to_vec();
        args.extend(["--bundle", &bundle, &id]);
        let child = env.spawn(&args);
        std::thread::sleep(delay);
        child.signal(libc::SIGKILL);
        let out = child.wait(SHORT);
        let what = format!("{} killed after {delay:?} ({})", verb.join(" "), out.status);
        if out.status.code().is_none() {
            mid_way += 1;
        }
        if env.root.join(&id).exists() {
            seen_dir += 1;
            check_half_made(env, &id, &what, &mut problems);
        }
        let del = env.berth(&["delete", "--force", &id]);
        if !del.success() {
            problems.push(format!("{what}: delete --force failed:\n{del}"));
        }
        check_gone(env, &id, &what, &mut problems);
        assert!(problems.is_empty(), "after {} kills:\n  {}", i + 1, problems.join("\n  "));
    }
    eprintln!("{}: {kills} kills, {mid_way} before it exited, {seen_dir} left a state dir", verb.join(" "));
    assert_no_leftovers(env);
}

/// Before `delete`: `list` and `state` see the container, and a clone of
/// berth (init before its execve) only lives on if `state` records it as
/// the container's created init (its create had handed it over).
fn check_half_made(env: &Env, id: &str, what: &str, problems: &mut Vec<String>) {
    let list = env.berth(&["list", "--quiet"]);
    if !list.stdout.lines().any(|l| l == id) {
        problems.push(format!("{what}: state dir exists but `list` omits {id}:\n{list}"));
    }
    let st = env.berth(&["state", id]);
    if !st.success() {
        problems.push(format!("{what}: state dir exists but `state` fails:\n{st}"));
        return;
    }
    let mut clones = Vec::new();
    wait_until(Duration::from_secs(1), || {
        clones = berth_clones(id);
        clones.is_empty()
    });
    if clones.is_empty() {
        return;
    }
    // Read again: the create may have finished just before the kill.
    let st = env.berth(&["state", id]).json();
    let recorded = st["pid"].as_i64().unwrap_or(0) as i32;
    if st["status"] != "created" || clones != [recorded] {
        problems.push(format!("{what}: init clone(s) {clones:?} outlive berth; state: {st}"));
    }
}

/// After `delete --force`: no state dir, cgroup, process or mount of `id`.
fn check_gone(env: &Env, id: &str, what: &str, problems: &mut Vec<String>) {
    if env.root.join(id).exists() {
        problems.push(format!("{what}: state dir {} left", env.root.join(id).display()));
    }
    for d in host::cgroup_dirs(&cgroups_path(id)) {
        if d.exists() {
            problems.push(format!("{what}: cgroup {} left (procs {:?})", d.display(), host::cgroup_pids(&d)));
        }
    }
    let mut procs = Vec::new();
    wait_until(Duration::from_secs(1), || {
        procs = berth_clones(id);
        procs.extend(host::pids_with_marker(&env.marker));
        procs.is_empty()
    });
    for p in procs {
        let cmd = fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
        let ns = ["pid", "mnt", "net"].map(|k| ns_link(&p.to_string(), k) != ns_link("self", k));
        problems.push(format!(
            "{what}: process {p} left ({}; own pid/mnt/net ns: {ns:?})",
            String::from_utf8_lossy(&cmd).replace('\0', " ")
        ));
    }
    let state_dir = env.root.join(id).display().to_string();
    for m in fs::read_to_string("/proc/self/mountinfo").unwrap_or_default().lines() {
        if m.contains(&state_dir) || m.contains(&env.bundle_str()) {
            problems.push(format!("{what}: host mount left: {m}"));
        }
    }
}

fn killed_create(who: &Who) {
    let env = sleeper_env_as("killsafe_create", who);
    kill_at_spread_delays(&env, &["create"], 40);
}

fn killed_run_detached(who: &Who) {
    let env = sleeper_env_as("killsafe_run_d", who);
    kill_at_spread_delays(&env, &["run", "--detach"], 30);
}

fn killed_run(who: &Who) {
    let env = sleeper_env_as("killsafe_run", who);
    kill_at_spread_delays(&env, &["run"], 20);
}

root_and_rootless! {
    killed_create => killed_create_leaves_nothing_delete_cannot_remove, killed_create_leaves_nothing_delete_cannot_remove_rootless;
    killed_run_detached => killed_run_detached_leaves_nothing_delete_cannot_remove, killed_run_detached_leaves_nothing_delete_cannot_remove_rootless;
    killed_run => killed_run_leaves_nothing_delete_cannot_remove, killed_run_leaves_nothing_delete_cannot_remove_rootless;
    handover => created_init_outlives_create_and_starts, created_init_outlives_create_and_starts_rootless;
}

/// The two-stage path: a new user namespace with a namespace joined by
/// path (the host's uts), where init forks the pid namespace's init.
#[test]
fn killed_two_stage_create_leaves_nothing_delete_cannot_remove() {
    let mut env = sleeper_env("killsafe_2stage");
    env.set("/linux/namespaces/3", json!({"type": "uts", "path": format!("/proc/{}/ns/uts", std::process::id())}));
    env.remove("/hostname");
    env.push("/linux/namespaces", json!({"type": "user"}));
    env.set("/linux/uidMappings", json!([{"containerID": 0, "hostID": 100000, "size": 65536}]));
    env.set("/linux/gidMappings", json!([{"containerID": 0, "hostID": 100000, "size": 65536}]));
    kill_at_spread_delays(&env, &["create"], 30);
}

/// init dies with berth at once, even where it waits for something else
/// than berth (here a createContainer hook that sleeps): the container is
/// then stopped, and `delete --force` removes everything, the hook that
/// still runs in its cgroups (no pid namespace) included.
#[test]
fn init_dies_with_berth_while_in_a_hook() {
    let mut env = sleeper_env("killsafe_in_hook");
    let started = env.rootfs().join("hook-started");
    let script = format!("touch {}; exec sleep 30", started.display());
    env.set("/hooks", json!({"createContainer": [{"path": "/bin/sh", "args": ["sh", "-c", script]}]}));
    // No pid namespace: the hook outlives init (it would die with the
    // namespace's init otherwise), and only `delete` can stop it.
    env.set_namespaces(&["network", "ipc", "uts", "mount"]);
    let mut made = Made { env: &env, ids: vec![env.id.clone()] };
    let child = env.spawn(&["create", "--bundle", &env.bundle_str(), &env.id]);
    assert!(wait_until(SHORT, || started.exists()), "the createContainer hook did not start");
    let mut clones = berth_clones(&env.id);
    clones.retain(|p| *p != child.pid());
    assert_eq!(clones.len(), 1, "one init waiting for its hook: {clones:?}");
    child.signal(libc::SIGKILL);
    child.wait(SHORT);
    let mut left = Vec::new();
    let gone = wait_until(Duration::from_secs(1), || {
        left = berth_clones(&env.id);
        left.is_empty()
    });
    assert!(gone, "init {left:?} outlived berth by 1s");
    // init (recorded) is dead; its hook still runs in the container's cgroups.
    assert_eq!(env.status(), "stopped");
    let hook: Vec<i32> = host::cgroup_dirs(&cgroups_path(&env.id)).iter().flat_map(|d| host::cgroup_pids(d)).collect();
    assert!(!hook.is_empty(), "the hook should still run in the container's cgroups");
    let list = env.berth(&["list", "--format", "json"]).ok().json();
    assert!(list.as_array().unwrap().iter().any(|c| c["id"] == env.id.as_str() && c["status"] == "stopped"), "{list}");
    env.delete_force().ok();
    let mut problems = Vec::new();
    check_gone(&env, &env.id, "delete --force", &mut problems);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    made.ids.clear();
    assert_no_leftovers(&env);
}

/// A `create` that completes hands init over: it outlives berth (whose
/// exit must not fire init's parent-death signal, however soon after the
/// handover it comes), and `start` still works.
fn handover(who: &Who) {
    let env = sleeper_env_as("killsafe_handover", who);
    let mut made = Made { env: &env, ids: Vec::new() };
    for i in 0..50 {
        let id = format!("{}-h{i:03}", env.id);
        made.ids.push(id.clone());
        env.berth(&["create", "--bundle", &env.bundle_str(), &id]).ok();
        let st = env.berth(&["state", &id]).ok().json();
        assert_eq!(st["status"], "created", "create {i}: init did not outlive berth: {st}");
    }
    let last = made.ids.last().unwrap().clone();
    let pid = env.berth(&["state", &last]).ok().json()["pid"].as_i64().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert!(pid_alive(pid), "init {pid} died after create exited");
    env.berth(&["start", &last]).ok();
    assert_eq!(env.berth(&["state", &last]).ok().json()["status"], "running");
    for id in &made.ids {
        env.berth(&["delete", "--force", id]).ok();
    }
    let mut problems = Vec::new();
    for id in &made.ids {
        check_gone(&env, id, "delete --force", &mut problems);
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_no_leftovers(&env);
}

/// issue 13.5: a failed `start` (here a startContainer hook that fails)
/// leaves the container stopped, visible to `state` and `list`; `delete`
/// removes it and runs poststop then.
#[test]
fn failed_start_leaves_the_container_stopped() {
    let mut env = Env::sh("killsafe_failed_start", "touch /program-ran; sleep 30");
    env.set(
        "/hooks",
        json!({
            "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 4"]}],
            "poststop": [{"path": "/bin/sh", "args": ["sh", "-c", format!("echo poststop >> {}/poststop.log", env.dir.display())]}]
        }),
    );
    env.create();
    env.berth(&["start", &env.id]).fails_with(&["startContainer", "exited with status 4"]);
    assert!(!env.rootfs().join("program-ran").exists(), "the program ran although startContainer failed");
    let st = env.state();
    assert_eq!(st["status"], "stopped", "{st}");
    assert_eq!(st["pid"], 0, "{st}");
    let list = env.berth(&["list", "--quiet"]).ok();
    assert!(list.stdout.lines().any(|l| l == env.id), "{list}");
    assert!(!env.file("poststop.log").exists(), "poststop ran before delete");
    env.berth(&["start", &env.id]).fails_with(&["cannot start", "stopped"]);
    env.delete().ok();
    assert_eq!(fs::read_to_string(env.file("poststop.log")).unwrap_or_default(), "poststop\n");
    env.berth(&["state", &env.id]).fails_with(&["does not exist"]);
    assert_no_leftovers(&env);
}
