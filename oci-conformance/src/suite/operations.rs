//! runtime.md operations start, kill and delete, and runtime-linux.md
//! (file descriptors, /dev symlinks).

use std::fs;

use serde_json::json;

use super::lifecycle::no_id;
use super::util::{expect_no_state, s, start_sleeper};
use super::{must, Test};
use crate::ctx::{Ctx, Res};
use crate::ensure;

pub fn tests() -> Vec<Test> {
    vec![
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
        must("runtime-linux.md/dev-symbolic-links/dev-fd", |cx| {
            dev_link(cx, "/dev/fd", "/proc/self/fd")
        }),
        must("runtime-linux.md/dev-symbolic-links/dev-stdin", |cx| {
            dev_link(cx, "/dev/stdin", "/proc/self/fd/0")
        }),
        must("runtime-linux.md/dev-symbolic-links/dev-stdout", |cx| {
            dev_link(cx, "/dev/stdout", "/proc/self/fd/1")
        }),
        must("runtime-linux.md/dev-symbolic-links/dev-stderr", |cx| {
            dev_link(cx, "/dev/stderr", "/proc/self/fd/2")
        }),
    ]
}

fn start_running(cx: &Ctx) -> Res {
    let mut c = cx.ctr();
    let pid = start_sleeper(&mut c)?;
    let d = c.start();
    ensure!(
        !d.ok() && !d.timed_out(),
        "start of a running container: {}",
        d.describe()
    );
    let st = c.state()?;
    ensure!(
        s(&st, "status") == "running" && st["pid"].as_i64() == Some(pid),
        "the failed start changed the container: {st}"
    );
    Ok(())
}

fn start_stopped(cx: &Ctx) -> Res {
    let mut c = cx.ctr();
    c.payload(&["echo", "once"]);
    c.create_ok()?;
    c.start_ok()?;
    c.wait_stopped()?;
    let d = c.start();
    ensure!(
        !d.ok() && !d.timed_out(),
        "start of a stopped container: {}",
        d.describe()
    );
    ensure!(c.status()? == "stopped", "the failed start changed the status");
    ensure!(c.output().matches("echo=once").count() == 1, "the program ran again");
    Ok(())
}

fn start_runs_program(cx: &Ctx) -> Res {
    let mut c = cx.ctr();
    c.set("/process/cwd", json!("/tmp"));
    c.set(
        "/process/env",
        json!(["PATH=/bin", "HOME=/root", "OC_A=1", "OC_B=two words"]),
    );
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
    ensure!(
        !s.ok() && !s.timed_out(),
        "start succeeded without `process`: {}",
        s.describe()
    );
    Ok(())
}

fn kill_stopped(cx: &Ctx) -> Res {
    let mut c = cx.ctr();
    c.payload(&["exit", "0"]);
    c.create_ok()?;
    c.start_ok()?;
    c.wait_stopped()?;
    let d = c.kill("KILL");
    ensure!(
        !d.ok() && !d.timed_out(),
        "kill of a stopped container: {}",
        d.describe()
    );
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
    ensure!(
        !d.ok() && !d.timed_out(),
        "delete of a running container: {}",
        d.describe()
    );
    let st = c.state()?;
    ensure!(
        s(&st, "status") == "running" && crate::proc::pid_alive(pid),
        "the failed delete changed the container: {st}"
    );
    Ok(())
}

fn delete_created(cx: &Ctx) -> Res {
    let mut c = cx.ctr();
    c.payload(&["sleep"]);
    c.create_ok()?;
    let pid = c.pid()?;
    let d = c.delete();
    ensure!(
        !d.ok() && !d.timed_out(),
        "delete of a created (not stopped) container: {}",
        d.describe()
    );
    let st = c.state()?;
    ensure!(
        s(&st, "status") == "created" && crate::proc::pid_alive(pid),
        "the failed delete changed the container: {st}"
    );
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
    ensure!(
        !crate::proc::pid_alive(pid),
        "the container process {pid} is still alive"
    );
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
    ensure!(
        shared.join("keep").exists(),
        "delete removed the bind-mount source's content {}",
        shared.display()
    );
    ensure!(
        crate::proc::pid_alive(holder.pid),
        "delete killed the process holding the joined network namespace"
    );
    let after = fs::read_link(&netns).map_err(|e| format!("the joined network namespace is gone: {e}"))?;
    ensure!(before == after, "the joined network namespace changed");
    let gone: Vec<String> = parents
        .iter()
        .filter(|p| !p.exists())
        .map(|p| p.display().to_string())
        .collect();
    ensure!(
        gone.is_empty(),
        "delete removed parent cgroups it did not create: {}",
        gone.join(", ")
    );
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
    let extra_info: Vec<String> =
        kv.0.iter()
            .filter(|(k, _)| k.starts_with("fd."))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
    ensure!(
        fds == "0,1,2",
        "open fds in the container: {fds} ({}); the runtime itself was started with fd 7 open",
        extra_info.join(", ")
    );
    Ok(())
}

fn dev_link(cx: &Ctx, path: &str, target: &str) -> Res {
    let mut c = cx.ctr();
    c.payload(&["stat", path]);
    let kv = c.run()?;
    let st = kv.req(&format!("stat.{path}"))?;
    ensure!(
        st.contains("type=l") && st.ends_with(&format!("link={target}")),
        "{path}: {st}, want a symlink to {target}"
    );
    Ok(())
}
