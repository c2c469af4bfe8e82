//! runtime.md: scope, state, lifecycle, errors, query state, create.
//! The other operations and runtime-linux.md are in operations.rs.

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
        must("runtime.md/state/oci-version", |cx| {
            created_state_check(cx, |c, st| {
                let v = s(st, "ociVersion");
                ensure!(
                    !v.is_empty() && v.split('.').count() >= 3,
                    "ociVersion {v:?} is not a SemVer version ({st})"
                );
                let _ = c;
                Ok(())
            })
        }),
        must("runtime.md/state/id", |cx| {
            created_state_check(cx, |c, st| {
                ensure!(
                    s(st, "id") == c.id,
                    "state id {:?}, container id {:?}",
                    s(st, "id"),
                    c.id
                );
                Ok(())
            })
        }),
        must("runtime.md/state/status-created", |cx| {
            created_state_check(cx, |_, st| {
                ensure!(
                    s(st, "status") == "created",
                    "status after create is {:?}",
                    s(st, "status")
                );
                Ok(())
            })
        }),
        must("runtime.md/state/status-running", state_running),
        must("runtime.md/state/status-stopped", state_stopped),
        must("runtime.md/state/pid-created", state_pid_created),
        must("runtime.md/state/pid-running", state_pid_running),
        must("runtime.md/state/bundle-absolute", state_bundle),
        must("runtime.md/state/annotations", state_annotations),
        must("runtime.md/state/schema", state_schema),
        must("runtime.md/lifecycle/create-error", lifecycle_create_error),
        must("runtime.md/lifecycle/config-changes-ignored", config_changes_ignored),
        must(
            "runtime.md/errors/failed-create-leaves-nothing",
            failed_create_leaves_nothing,
        ),
        must("runtime.md/query-state/missing-id-error", |cx| no_id(cx, "state")),
        must("runtime.md/query-state/nonexistent-error", |cx| {
            let d = cx.runtime(&["state", &format!("oc-nonexistent-{}", cx.next())]);
            ensure!(
                !d.ok() && !d.timed_out(),
                "state of a container that does not exist: {}",
                d.describe()
            );
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
            ensure!(
                !d.ok() && !d.timed_out(),
                "create with a bundle path that does not exist: {}",
                d.describe()
            );
            expect_no_state(&c)
        }),
        must("runtime.md/create/duplicate-id-error", duplicate_id),
        must("runtime.md/create/invalid-id-error", invalid_id),
        must("runtime.md/create/creates-container", |cx| {
            created_state_check(cx, |_, st| {
                ensure!(st.is_object(), "no state after create");
                Ok(())
            })
        }),
        must(
            "runtime.md/create/applies-config-before-start",
            applies_config_before_start,
        ),
        must("runtime.md/create/args-not-applied-before-start", args_not_applied),
        must("runtime.md/create/unapplicable-property-error", |cx| {
            let mut c = cx.ctr();
            c.set("/linux/sysctl", json!({"net.ipv4.oc_no_such_key": "1"}));
            c.expect_create_error()
        }),
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

pub(super) fn no_id(cx: &Ctx, cmd: &str) -> Res {
    let d = cx.runtime(&[cmd]);
    ensure!(
        !d.ok() && !d.timed_out(),
        "`{cmd}` without a container id: {}",
        d.describe()
    );
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
    ensure!(
        s(&st, "status") == "running",
        "status after start is {:?}",
        s(&st, "status")
    );
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
    let Some(pid) = st["pid"].as_i64().filter(|p| *p > 0) else {
        fail!("no positive pid in the created state: {st}")
    };
    ensure!(crate::proc::pid_alive(pid), "state pid {pid} is not a live process");
    ensure!(
        ns_of(pid, "mnt")? != my_ns("mnt"),
        "state pid {pid} is not in the container's mount namespace"
    );
    Ok(())
}

fn state_pid_running(cx: &Ctx) -> Res {
    let mut c = cx.ctr();
    let pid = start_sleeper(&mut c)?;
    let cmd = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
    ensure!(
        cmd.contains("oc-payload sleep") && cmd.contains(&c.marker),
        "state pid {pid} runs {cmd:?}, not the container program"
    );
    Ok(())
}

fn state_bundle(cx: &Ctx) -> Res {
    let mut c = cx.ctr();
    c.payload(&["sleep"]);
    c.write_config()?;
    // Pass the bundle as a relative path: the state must still hold the absolute one.
    let rel = c
        .dir
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (out, err, id, dir) = (c.out.clone(), c.err.clone(), c.id.clone(), cx.dir().to_path_buf());
    if let Ok(mut ids) = cx.0.track.ids.lock() {
        ids.push(id.clone());
    }
    let d = cx.runtime_with(&["create", "--bundle", &rel, &id], |s| {
        s.cwd = Some(dir);
        s.out = out;
        s.err = err;
    });
    ensure!(
        d.ok(),
        "create --bundle {rel} (relative, from {}): {}",
        cx.dir().display(),
        d.describe()
    );
    let st = c.state()?;
    let want = c.dir.canonicalize().unwrap_or(c.dir.clone());
    ensure!(
        s(&st, "bundle") == want.display().to_string(),
        "state bundle {:?}, want the absolute path {:?}",
        s(&st, "bundle"),
        want.display()
    );
    Ok(())
}

fn state_annotations(cx: &Ctx) -> Res {
    let mut c = cx.ctr();
    let ann = json!({"org.example.oc.key": "value", "com.example.empty": ""});
    c.set("/annotations", ann.clone());
    c.payload(&["sleep"]);
    c.create_ok()?;
    let st = c.state()?;
    ensure!(
        st["annotations"] == ann,
        "state annotations {}, config has {ann}",
        st["annotations"]
    );
    Ok(())
}

/// The state JSON against schema/state-schema.json (required properties and types).
fn check_schema(st: &Value, want_status: &str) -> Res {
    for k in ["ociVersion", "id", "status", "bundle"] {
        ensure!(st[k].is_string(), "state property {k:?} missing or not a string: {st}");
    }
    ensure!(
        s(st, "status") == want_status,
        "status {:?}, want {want_status:?}",
        s(st, "status")
    );
    if matches!(want_status, "created" | "running") {
        ensure!(
            st["pid"].as_i64().is_some_and(|p| p > 0),
            "pid is REQUIRED (an integer) when {want_status}: {st}"
        );
    } else if !st["pid"].is_null() {
        ensure!(st["pid"].is_i64(), "pid is not an integer: {st}");
    }
    if !st["annotations"].is_null() {
        let ok = st["annotations"]
            .as_object()
            .is_some_and(|m| m.values().all(|v| v.is_string()));
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
    ensure!(
        !out.contains("CHANGED"),
        "start ran the args written to config.json after create"
    );
    ensure!(
        out.contains("hostname=oc\n"),
        "the container does not have the hostname of create time: {}",
        crate::proc::squeeze(&out, 200)
    );
    Ok(())
}

fn failed_create_leaves_nothing(cx: &Ctx) -> Res {
    let mut c = cx.ctr();
    c.add_mount(
        json!({"destination": "/mnt", "type": "bind", "source": cx.file("no-such-source"), "options": ["bind"]}),
    );
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
    ensure!(
        d.ok(),
        "the id cannot be reused after the failed create: {}",
        d.describe()
    );
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
    ensure!(
        !d.ok() && !d.timed_out(),
        "a second create with the same id: {}",
        d.describe()
    );
    let st = a.state()?;
    ensure!(
        s(&st, "status") == "created" && st["pid"].as_i64() == Some(pid),
        "the first container changed: {st}"
    );
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
        ensure!(
            theirs != my_ns(ns) || alt != my_ns(ns),
            "after create the container process is still in the runtime's {ns} namespace"
        );
    }
    let mi = fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap_or_default();
    ensure!(
        mi.lines().any(|l| l.split(' ').nth(4) == Some("/oc-created")),
        "after create the tmpfs at /oc-created is not mounted"
    );
    let cg = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    ensure!(
        cg.contains(&c.cgroups_path),
        "after create the container process is not in {}: {}",
        c.cgroups_path,
        crate::proc::squeeze(&cg, 300)
    );
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
    ensure!(
        !cmd.contains("oc-payload"),
        "the container process already executes the program before start: {cmd:?}"
    );
    c.start_ok()?;
    c.wait_output("echo=ran")?;
    Ok(())
}
