//! runtime.md (state, lifecycle, errors, operations) and runtime-linux.md.

use std::fs;
use std::time::Duration;

use serde_json::{json, Value};

use super::util::{expect_no_state, my_ns, ns_of, s, start_sleeper};
use super::{must, Test};
use crate::ctx::{Ctx, Res};
use crate::{ensure, fail};

pub fn tests() -> Vec<Test> {
    vec![
        must("runtime.md/scope/same-caller-operations", scope_same_caller),
        must("runtime.md/state/oci-version", |cx| created_state_check(cx, |c, st| {
            let v = s(st, "ociVersion");
            ensure!(!v.is_empty() && v.split('.').count() >= 3, "ociVersion {v:?} is not a SemVer version ({st})");
            let _ = c;
            Ok(())
        })),
        must("runtime.md/state/id", |cx| created_state_check(cx, |c, st| {
            ensure!(s(st, "id") == c.id, "state id {:?}, container id {:?}", s(st, "id"), c.id);
            Ok(())
        })),
        must("runtime.md/state/status-created", |cx| created_state_check(cx, |_, st| {
            ensure!(s(st, "status") == "created", "status after create is {:?}", s(st, "status"));
            Ok(())
        })),
        must("runtime.md/state/status-running", state_running),
        must("runtime.md/state/status-stopped", state_stopped),
        must("runtime.md/state/pid-created", state_pid_created),
        must("runtime.md/state/pid-running", state_pid_running),
        must("runtime.md/state/bundle-absolute", state_bundle),
        must("runtime.md/state/annotations", state_annotations),
        must("runtime.md/state/schema", state_schema),
        must("runtime.md/lifecycle/create-error", lifecycle_create_error),
        must("runtime.md/lifecycle/config-changes-ignored", config_changes_ignored),
        must("runtime.md/errors/failed-create-leaves-nothing", failed_create_leaves_nothing),
        must("runtime.md/query-state/missing-id-error", |cx| no_id(cx, "state")),
        must("runtime.md/query-state/nonexistent-error", |cx| {
            let d = cx.runtime(&["state", &format!("oc-nonexistent-{}", cx.next())]);
            ensure!(!d.ok() && !d.timed_out(), "state of a container that does not exist: {}", d.describe());
            Ok(())
        }),
        must("runtime.md/create/missing-id-error", |cx| {
            let mut c = cx.ctr();
            c.write_config()?;
            let d = cx.runtime(&["create", "--bundle", &c.bundle()]);
            ensure!(!d.ok() && !d.timed_out(), "create without an id: {}", d.describe());
            Ok(())
        }),
        must("runtime.md/create/missing-bundle-error", |cx| {
            let mut c = cx.ctr();
            c.dir = cx.file("no-such-bundle");
            let d = cx.runtime(&["create", "--bundle", &c.bundle(), &c.id]);
            ensure!(!d.ok() && !d.timed_out(), "create with a bundle path that does not exist: {}", d.describe());
            expect_no_state(&c)
        }),
        must("runtime.md/create/duplicate-id-error", duplicate_id),
        must("runtime.md/create/invalid-id-error", invalid_id),
        must("runtime.md/create/creates-container", |cx| created_state_check(cx, |_, st| {
            ensure!(st.is_object(), "no state after create");
            Ok(())
        })),
        must("runtime.md/create/applies-config-before-start", applies_config_before_start),
        must("runtime.md/create/args-not-applied-before-start", args_not_applied),
        must("runtime.md/create/unapplicable-property-error", |cx| {
            let mut c = cx.ctr();
            c.set("/linux/sysctl", json!({"net.ipv4.oc_no_such_key": "1"}));
            c.expect_create_error()
        }),
        must("runtime.md/start/missing-id-error", |cx| no_id(cx, "start")),
        must("runtime.md/start/running-error", start_running),
        must("runtime.md/start/stopped-error", start_stopped),
        must("runtime.md/start/runs-program", start_runs_program),
        must("runtime.md/start/process-required", start_process_required),
        must("runtime.md/kill/missing-id-error", |cx| no_id(cx, "kill")),
        must("runtime.md/kill/stopped-error", kill_stopped),
        must("runtime.md/kill/sends-signal", kill_sends_signal),
        must("runtime.md/kill/created-container", kill_created),
        must("runtime.md/kill/sigkill", kill_sigkill),
        must("runtime.md/delete/missing-id-error", |cx| no_id(cx, "delete")),
        must("runtime.md/delete/running-error", delete_running),
        must("runtime.md/delete/created-error", delete_created),
        must("runtime.md/delete/removes-resources", delete_removes),
        must("runtime.md/delete/keeps-foreign-resources", delete_keeps_foreign),
        must("runtime-linux.md/file-descriptors/only-stdio", only_stdio),
        must("runtime-linux.md/dev-symbolic-links/dev-fd", |cx| dev_link(cx, "/dev/fd", "/proc/self/fd")),
        must("runtime-linux.md/dev-symbolic-links/dev-stdin", |cx| dev_link(cx, "/dev/stdin", "/proc/self/fd/0")),
        must("runtime-linux.md/dev-symbolic-links/dev-stdout", |cx| dev_link(cx, "/dev/stdout", "/proc/self/fd/1")),
        must("runtime-linux.md/dev-symbolic-links/dev-stderr", |cx| dev_link(cx, "/dev/stderr", "/proc/self/fd/2")),
    ]
}

/// Create a waiting container and check its state.
fn created_state_check(cx: &Ctx, check: impl Fn(&crate::ctx::Ctr, &Value) -> Res) -> Res {
    let mut c = cx.ctr();
    c.payload(&["sleep"]);
    c.create_ok()?;
    let st = c.state()?;
    check(&c, &st)
}

fn no_id(cx: &Ctx, cmd: &str) -> Res {
    let d = cx.runtime(&[cmd]);
    ensure!(!d.ok() && !d.timed_out(), "`{cmd}` without a container id: {}", d.describe());
    Ok(())
}

fn scope_same_caller(cx: &Ctx) -> Res {
    let mut c = cx.ctr();
    c.payload(&["signals"]);
    c.create_ok()?;
    ensure!(c.status()? == "created", "status after create is not created");
    c.start_ok()?;
    c.wait_output("ready=1")?;
    ensure!(c.status()? == "running", "status after start is not running");
    let k = c.kill("TERM");
    ensure!(k.ok(), "kill: {}", k.describe());
    c.wait_stopped()?;
    let d = c.delete();
    ensure!(d.ok(), "delete: {}", d.describe());
    expect_no_state(&c)
}

fn state_running(cx: &Ctx) -> Res {
    let mut c = cx.ctr();
    start_sleeper(&mut c)?;
    let st = c.state()?;
    ensure!(s(&st, "status") == "running", "status after start is {:?}", s(&st, "status"));
    Ok(())
}

fn state_stopped(cx: &Ctx) -> Res {
    let mut c = cx.ctr();
    c.payload(&["exit", "0"]);
    c.create_ok()?;
    c.start_ok()?;
    c.wait_stopped()
}

fn state_pid_created(cx: &Ctx) -> Res {
    let mut c = cx.ctr();
    c.payload(&["sleep"]);
    c.create_ok()?;
    let st = c.state()?;
    let Some(pid) = st["pid"].as_i64().filter(|p| *p > 0) else { fail!("no positive pid in the created state: {st}") };
    ensure!(crate::proc::pid_alive(pid), "state pid {pid} is not a live process");
    ensure!(ns_of(pid, "mnt")? != my_ns("mnt"), "state pid {pid} is not in the container's mount namespace");
    Ok(())
}

fn state_pid_running(cx: &Ctx) -> Res {
    let mut c = cx.ctr();
    let pid = start_sleeper(&mut c)?;
    let cmd = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
    ensure!(cmd.contains("oc-payload sleep") && cmd.contains(&c.marker), "state pid {pid} runs {cmd:?}, not the container program");
    Ok(())
}

fn state_bundle(cx: &Ctx) -> Res {
    let mut c = cx.ctr();
    c.payload(&["sleep"]);
    c.write_config()?;
    // Pass the bundle as a relative path: the state must still hold the absolute one.
    let rel = c.dir.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    let (out, err, id, dir) = (c.out.clone(), c.err.clone(), c.id.clone(), cx.dir().to_path_buf());
    if let Ok(mut ids) = cx.0.track.ids.lock() {
        ids.push(id.clone());
    }
    let d = cx.runtime_with(&["create", "--bundle", &rel, &id], |s| {
        s.cwd = Some(dir);
        s.out = out;
        s.err = err;
    });
    ensure!(d.ok(), "create --bundle {rel} (relative, from {}): {}", cx.dir().display(), d.describe());
    let st = c.state()?;
    let want = c.dir.canonicalize().unwrap_or(c.dir.clone());
    ensure!(s(&st, "bundle") == want.display().to_string(), "state bundle {:?}, want the absolute path {:?}", s(&st, "bundle"), want.display());
    Ok(())
}

fn state_annotations(cx: &Ctx) -> Res {
    let mut c = cx.ctr();
    let ann = json!({"org.example.oc.key": "value", "com.example.empty": ""});
    c.set("/annotations", ann.clone());
    c.payload(&["sleep"]);
    c.create_ok()?;
    let st = c.state()?;
    ensure!(st["annotations"] == ann, "state annotations {}, config has {ann}", st["annotations"]);
    Ok(())
}

/// The state JSON against schema/state-schema.json (required properties and types).
fn check_schema(st: &Value, want_status: &str) -> Res {
    for k in ["ociVersion", "id", "status", "bundle"] {
        ensure!(st[k].is_string(), "state property {k:?} missing or not a string: {st}");
    }
    ensure!(s(st, "status") == want_status, "status {:?}, want {want_status:?}", s(st, "status"));
    if matches!(want_status, "created" | "running") {
        ensure!(st["pid"].as_i64().is_some_and(|p| p > 0), "pid is REQUIRED (an integer) when {want_status}: {st}");
    } else if !st["pid"].is_null() {
        ensure!(st["pid"].is_i64(), "pid is not an integer: {st}");
    }
    if !st["annotations"].is_null() {
        let ok = st["annotations"].as_object().is_some_and(|m| m.values().all(|v| v.is_string()));
        ensure!(ok, "annotations is not a map of strings: {st}");
    }
    Ok(())
}

fn state_schema(cx: &Ctx) -> Res {
    let mut c = cx.ctr();
    c.payload(&["signals"]);
    c.set("/annotations", json!({"org.example.oc": "1"}));
    c.create_ok()?;
    check_schema(&c.state()?, "created")?;
    c.start_ok()?;
    c.wait_output("ready=1")?;
    check_schema(&c.state()?, "running")?;
    let k = c.kill("TERM");
    ensure!(k.ok(), "kill: {}", k.describe());
    c.wait_stopped()?;
    check_schema(&c.state()?, "stopped")
}

fn lifecycle_create_error(cx: &Ctx) -> Res {
    let mut c = cx.ctr();
    let missing = cx.file("no-such-source");
    c.add_mount(json!({"destination": "/mnt", "type": "bind", "source": missing, "options": ["bind"]}));
    c.expect_create_error()
}

fn config_changes_ignored(cx: &Ctx) -> Res {
    let mut c = cx.ctr();
    c.create_ok()?;
    let mut changed = c.config.clone();
    changed["hostname"] = json!("changed");
    changed["process"]["args"] = json!(["/oc-payload", "echo", "CHANGED", c.marker]);
    fs::write(c.dir.join("config.json"), changed.to_string()).map_err(|e| format!("rewrite config.json: {e}"))?;
    c.start_ok()?;
    c.wait_stopped()?;
    let out = c.output();
    ensure!(!out.contains("CHANGED"), "start ran the args written to config.json after create");
    ensure!(out.contains("hostname=oc\n"), "the container does not have the hostname of create time: {}", crate::proc::squeeze(&out, 200));
    Ok(())
}

fn failed_create_leaves_nothing(cx: &Ctx) -> Res {
    let mut c = cx.ctr();
    c.add_mount(json!({"destination": "/mnt", "type": "bind", "source": cx.file("no-such-source"), "options": ["bind"]}));
    c.expect_create_error()?;
    expect_no_state(&c)?;
    let mut left = Vec::new();
    for h in cx.host().hierarchies() {
        let d = h.join(c.cgroups_path.trim_start_matches('/'));
        if d.exists() {
            left.push(format!("cgroup {}", d.display()));
        }
    }
    let procs = berth_integration::host::pids_with_marker(&c.marker);
    if !procs.is_empty() {
        left.push(format!("processes {procs:?}"));
    }
    let b = c.bundle();
    for m in berth_integration::host::host_mounts() {
        if m.mount_point.starts_with(&b) {
            left.push(format!("mount {}", m.mount_point));
        }
    }
    ensure!(left.is_empty(), "the failed create left: {}", left.join(", "));
    // The id is free again.
    c.config["mounts"].as_array_mut().map(|m| m.pop());
    let d = c.create();
    ensure!(d.ok(), "the id cannot be reused after the failed create: {}", d.describe());
    Ok(())
}

fn duplicate_id(cx: &Ctx) -> Res {
    let mut a = cx.ctr();
    a.payload(&["sleep"]);
    a.create_ok()?;
    let pid = a.pid()?;
    let mut b = cx.ctr();
    b.id = a.id.clone();
    b.payload(&["sleep"]);
    let d = b.create();
    ensure!(!d.ok() && !d.timed_out(), "a second create with the same id: {}", d.describe());
    let st = a.state()?;
    ensure!(s(&st, "status") == "created" && st["pid"].as_i64() == Some(pid), "the first container changed: {st}");
    Ok(())
}

fn invalid_id(cx: &Ctx) -> Res {
    let mut c = cx.ctr();
    c.id = format!("../oc-escape-{}", cx.next());
    c.payload(&["sleep"]);
    let d = c.create();
    let escaped = cx.root().join(&c.id);
    ensure!(!d.ok(), "create accepted the id {:?}", c.id);
    ensure!(!escaped.exists(), "the rejected id left {}", escaped.display());
    Ok(())
}

fn applies_config_before_start(cx: &Ctx) -> Res {
    let mut c = cx.ctr();
    c.add_mount(json!({"destination": "/oc-created", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}));
    c.payload(&["sleep"]);
    c.create_ok()?;
    let pid = c.pid()?;
    for ns in ["pid", "net", "ipc", "uts", "mnt"] {
        let kind = if ns == "pid" { "pid_for_children" } else { ns };
        let theirs = ns_of(pid, ns)?;
        let alt = ns_of(pid, kind).unwrap_or_default();
        ensure!(theirs != my_ns(ns) || alt != my_ns(ns), "after create the container process is still in the runtime's {ns} namespace");
    }
    let mi = fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap_or_default();
    ensure!(mi.lines().any(|l| l.split(' ').nth(4) == Some("/oc-created")), "after create the tmpfs at /oc-created is not mounted");
    let cg = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    ensure!(cg.contains(&c.cgroups_path), "after create the container process is not in {}: {}", c.cgroups_path, crate::proc::squeeze(&cg, 300));
    Ok(())
}

fn args_not_applied(cx: &Ctx) -> Res {
    let mut c = cx.ctr();
    c.payload(&["echo", "ran"]);
    c.create_ok()?;
    std::thread::sleep(Duration::from_millis(300));
    ensure!(c.output().is_empty(), "the program ran before start: {:?}", c.output());
    let pid = c.pid()?;
    let cmd = String::from_utf8_lossy(&fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default()).replace('\0', " ");
    ensure!(!cmd.contains("oc-payload"), "the container process already executes the program before start: {cmd:?}");
    c.start_ok()?;
    c.wait_output("echo=ran")?;
    Ok(())
}

fn start_running(cx: &Ctx) -> Res {
    let mut c = cx.ctr();
    let pid = start_sleeper(&mut c)?;
    let d = c.start();
    ensure!(!d.ok() && !d.timed_out(), "start of a running container: {}", d.describe());
    let st = c.state()?;
    ensure!(s(&st, "status") == "running" && st["pid"].as_i64() == Some(pid), "the failed start changed the container: {st}");
    Ok(())
}

fn start_stopped(cx: &Ctx) -> Res {
    let mut c = cx.ctr();
    c.payload(&["echo", "once"]);
    c.create_ok()?;
    c.start_ok()?;
    c.wait_stopped()?;
    let d = c.start();
    ensure!(!d.ok() && !d.timed_out(), "start of a stopped container: {}", d.describe());
    ensure!(c.status()? == "stopped", "the failed start changed the status");
    ensure!(c.output().matches("echo=once").count() == 1, "the program ran again");
    Ok(())
}

fn start_runs_program(cx: &Ctx) -> Res {
    let mut c = cx.ctr();
    c.set("/process/cwd", json!("/tmp"));
    c.set("/process/env", json!(["PATH=/bin", "HOME=/root", "OC_A=1", "OC_B=two words"]));
    c.payload(&["report", "extra arg"]);
    let kv = c.run()?;
    let args = kv.all("arg");
    let want = vec!["/oc-payload", "report", "extra arg", c.marker.as_str()];
    ensure!(args == want, "argv {args:?}, want {want:?}");
    let mut env = kv.all("env");
    env.sort();
    let mut want_env = vec!["PATH=/bin", "HOME=/root", "OC_A=1", "OC_B=two words"];
    want_env.sort();
    ensure!(env == want_env, "environment {env:?}, want exactly {want_env:?}");
    ensure!(kv.get("cwd") == Some("/tmp"), "cwd {:?}, want /tmp", kv.get("cwd"));
    Ok(())
}

fn start_process_required(cx: &Ctx) -> Res {
    let mut c = cx.ctr();
    c.remove("/process");
    let d = c.create();
    if !d.ok() {
        return Ok(());
    }
    let s = c.start();
    ensure!(!s.ok() && !s.timed_out(), "start succeeded without `process`: {}", s.describe());
    Ok(())
}

fn kill_stopped(cx: &Ctx) -> Res {
    let mut c = cx.ctr();
    c.payload(&["exit", "0"]);
    c.create_ok()?;
    c.start_ok()?;
    c.wait_stopped()?;
    let d = c.kill("KILL");
    ensure!(!d.ok() && !d.timed_out(), "kill of a stopped container: {}", d.describe());
    ensure!(c.status()? == "stopped", "the failed kill changed the status");
    Ok(())
}

fn kill_sends_signal(cx: &Ctx) -> Res {
    let mut c = cx.ctr();
    c.payload(&["signals"]);
    c.create_ok()?;
    c.start_ok()?;
    c.wait_output("ready=1")?;
    let d = c.kill("USR1");
    ensure!(d.ok(), "kill USR1: {}", d.describe());
    c.wait_output("signal=10")?;
    let d = c.kill("TERM");
    ensure!(d.ok(), "kill TERM: {}", d.describe());
    c.wait_output("signal=15")?;
    c.wait_stopped()
}

fn kill_created(cx: &Ctx) -> Res {
    let mut c = cx.ctr();
    c.payload(&["echo", "ran"]);
    c.create_ok()?;
    let d = c.kill("KILL");
    ensure!(d.ok(), "kill KILL of a created container: {}", d.describe());
    c.wait_stopped()?;
    ensure!(!c.output().contains("echo=ran"), "the program ran");
    Ok(())
}

fn kill_sigkill(cx: &Ctx) -> Res {
    let mut c = cx.ctr();
    // pid 1 of a pid namespace ignores TERM without a handler: only KILL ends it.
    start_sleeper(&mut c)?;
    let d = c.kill("KILL");
    ensure!(d.ok(), "kill KILL: {}", d.describe());
    c.wait_stopped()
}

fn delete_running(cx: &Ctx) -> Res {
    let mut c = cx.ctr();
    let pid = start_sleeper(&mut c)?;
    let d = c.delete();
    ensure!(!d.ok() && !d.timed_out(), "delete of a running container: {}", d.describe());
    let st = c.state()?;
    ensure!(s(&st, "status") == "running" && crate::proc::pid_alive(pid), "the failed delete changed the container: {st}");
    Ok(())
}

fn delete_created(cx: &Ctx) -> Res {
    let mut c = cx.ctr();
    c.payload(&["sleep"]);
    c.create_ok()?;
    let pid = c.pid()?;
    let d = c.delete();
    ensure!(!d.ok() && !d.timed_out(), "delete of a created (not stopped) container: {}", d.describe());
    let st = c.state()?;
    ensure!(s(&st, "status") == "created" && crate::proc::pid_alive(pid), "the failed delete changed the container: {st}");
    Ok(())
}

fn delete_removes(cx: &Ctx) -> Res {
    let mut c = cx.ctr();
    c.payload(&["exit", "0"]);
    c.create_ok()?;
    let pid = c.pid()?;
    c.start_ok()?;
    c.wait_stopped()?;
    let d = c.delete();
    ensure!(d.ok(), "delete of a stopped container: {}", d.describe());
    expect_no_state(&c)?;
    ensure!(!crate::proc::pid_alive(pid), "the container process {pid} is still alive");
    let mut left = Vec::new();
    for h in cx.host().hierarchies() {
        let dir = h.join(c.cgroups_path.trim_start_matches('/'));
        if dir.exists() {
            left.push(dir.display().to_string());
        }
    }
    ensure!(left.is_empty(), "cgroups left after delete: {}", left.join(", "));
    let d = c.create();
    ensure!(d.ok(), "the id cannot be reused after delete: {}", d.describe());
    Ok(())
}

fn delete_keeps_foreign(cx: &Ctx) -> Res {
    let shared = cx.file("shared");
    fs::create_dir_all(&shared).map_err(|e| format!("{e}"))?;
    fs::write(shared.join("keep"), "keep").map_err(|e| format!("{e}"))?;
    let holder = cx.holder("net")?;
    let netns = holder.ns("net");
    let before = fs::read_link(&netns).map_err(|e| format!("{e}"))?;
    let parent = format!("/oci-conformance/{}-parent", cx.0.tag);
    let mut parents = Vec::new();
    for h in cx.host().hierarchies() {
        let d = h.join(parent.trim_start_matches('/'));
        let made = fs::create_dir_all(&d).is_ok();
        if made {
            // cpuset children need cpus/mems before anyone can join them.
            for f in ["cpuset.cpus", "cpuset.mems"] {
                if let Ok(v) = fs::read_to_string(h.join(f)) {
                    let _ = fs::write(d.join(f), v.trim());
                }
            }
            parents.push(d);
        }
    }
    let mut c = cx.ctr();
    c.cgroups_path = format!("{parent}/leaf");
    c.set("/linux/cgroupsPath", json!(c.cgroups_path));
    c.set("/linux/namespaces", json!([{"type": "pid"}, {"type": "network", "path": netns}, {"type": "mount"}, {"type": "ipc"}, {"type": "uts"}]));
    c.add_mount(json!({"destination": "/mnt", "type": "bind", "source": shared, "options": ["rbind", "rw"]}));
    c.payload(&["exit", "0"]);
    c.create_ok()?;
    c.start_ok()?;
    c.wait_stopped()?;
    let d = c.delete();
    ensure!(d.ok(), "delete: {}", d.describe());
    ensure!(shared.join("keep").exists(), "delete removed the bind-mount source's content {}", shared.display());
    ensure!(crate::proc::pid_alive(holder.pid), "delete killed the process holding the joined network namespace");
    let after = fs::read_link(&netns).map_err(|e| format!("the joined network namespace is gone: {e}"))?;
    ensure!(before == after, "the joined network namespace changed");
    let gone: Vec<String> = parents.iter().filter(|p| !p.exists()).map(|p| p.display().to_string()).collect();
    ensure!(gone.is_empty(), "delete removed parent cgroups it did not create: {}", gone.join(", "));
    Ok(())
}

fn only_stdio(cx: &Ctx) -> Res {
    let mut c = cx.ctr();
    let extra = cx.file("extra-fd");
    fs::write(&extra, "x").map_err(|e| format!("{e}"))?;
    c.payload(&["report"]);
    let d = c.create_with(|s| s.extra_fd = Some((7, extra.clone())));
    ensure!(d.ok(), "create: {}", d.describe());
    c.start_ok()?;
    c.wait_stopped()?;
    let kv = crate::ctx::Kv::parse(&c.output());
    let fds = kv.req("fds")?;
    let extra_info: Vec<String> = kv.0.iter().filter(|(k, _)| k.starts_with("fd.")).map(|(k, v)| format!("{k}={v}")).collect();
    ensure!(fds == "0,1,2", "open fds in the container: {fds} ({}); the runtime itself was started with fd 7 open", extra_info.join(", "));
    Ok(())
}

fn dev_link(cx: &Ctx, path: &str, target: &str) -> Res {
    let mut c = cx.ctr();
    c.payload(&["stat", path]);
    let kv = c.run()?;
    let st = kv.req(&format!("stat.{path}"))?;
    ensure!(st.contains("type=l") && st.ends_with(&format!("link={target}")), "{path}: {st}, want a symlink to {target}");
    Ok(())
}
