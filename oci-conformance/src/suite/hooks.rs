//! config.md "POSIX-platform Hooks" and the hook steps of runtime.md's
//! lifecycle (failure handling).

use std::collections::HashMap;
use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::util::{my_ns, ns_of, read, write_exec};
use super::{must, Test};
use crate::bundle::ROOTFS_MARKER;
use crate::ctx::{Ctr, Ctx, Kv, Res};
use crate::ensure;

/// A hook (POSIX sh: the host's /bin/sh, or busybox inside the
/// container). `hook.sh NAME DIR`: saves stdin as DIR/state-NAME.json,
/// appends NAME to DIR/order, and writes what it sees to DIR/info-NAME.
/// The startContainer hook first sleeps 0.2 s ($OC_DELAY), so a runtime
/// that does not wait for it (and for the program's exec) before running
/// poststart fails every time, not by chance.
const HOOK: &str = r#"#!/bin/sh
n=$1; d=$2
[ -n "$OC_DELAY" ] && sleep "$OC_DELAY"
cat > "$d/state-$n.json"
echo "$n" >> "$d/order"
pid=$(sed -n 's/.*"pid"[^0-9]*\([0-9][0-9]*\).*/\1/p' "$d/state-$n.json" | head -n 1)
{
  echo "mnt=$(readlink /proc/self/ns/mnt)"
  echo "net=$(readlink /proc/self/ns/net)"
  echo "statepid=$pid"
  if [ -e "$OC_ROOTFS/MARKER" ]; then echo "ownroot=host"; else echo "ownroot=other"; fi
  if [ -n "$pid" ] && [ -e "/proc/$pid/root$OC_ROOTFS/MARKER" ]; then echo "pidroot=host"; else echo "pidroot=other"; fi
  if [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ]; then echo "pidcmd=$(tr '\0' ' ' < /proc/$pid/cmdline)"; else echo "pidcmd="; fi
  echo "one=$(tr '\0' ' ' < /proc/1/cmdline)"
  if [ -n "$OC_CGDIR" ] && [ -d "$OC_CGDIR" ]; then echo "cgroup=present"; else echo "cgroup=absent"; fi
} > "$d/info-$n"
[ -n "$OC_SLEEP" ] && sleep "$OC_SLEEP"
exit ${OC_EXIT:-0}
"#;

pub fn tests() -> Vec<Test> {
    let h = "config.md/posix-platform-hooks";
    vec![
        must(format!("{h}/listed-order"), listed_order),
        must(format!("{h}/lifecycle-order"), |cx| {
            let r = HookRun::full(cx)?;
            let want = [
                "prestart",
                "createRuntime",
                "createContainer",
                "create-returned",
                "startContainer",
                "poststart",
                "start-returned",
                "poststop",
                "delete-returned",
            ];
            ensure!(r.order == want, "hook order {:?}, want {want:?}", r.order);
            Ok(())
        }),
        must(format!("{h}/state-on-stdin"), state_on_stdin),
        must(format!("{h}/prestart-runtime-namespace"), |cx| {
            runtime_ns(cx, "prestart")
        }),
        must(format!("{h}/prestart-during-create-before-pivot"), |cx| {
            before_pivot(cx, "prestart")
        }),
        must(format!("{h}/prestart-before-createruntime"), |cx| {
            before(cx, "prestart", "createRuntime")
        }),
        must(format!("{h}/createruntime-runtime-namespace"), |cx| {
            runtime_ns(cx, "createRuntime")
        }),
        must(format!("{h}/createruntime-during-create-before-pivot"), |cx| {
            before_pivot(cx, "createRuntime")
        }),
        must(format!("{h}/createcontainer-container-namespace"), |cx| {
            container_ns(cx, "createContainer")
        }),
        must(format!("{h}/createcontainer-during-create-before-pivot"), |cx| {
            before_pivot(cx, "createContainer")
        }),
        must(format!("{h}/createcontainer-after-createruntime"), |cx| {
            before(cx, "createRuntime", "createContainer")
        }),
        must(format!("{h}/startcontainer-container-namespace"), |cx| {
            container_ns(cx, "startContainer")
        }),
        must(
            format!("{h}/startcontainer-before-program"),
            startcontainer_before_program,
        ),
        must(format!("{h}/poststart-runtime-namespace"), |cx| {
            runtime_ns(cx, "poststart")
        }),
        must(
            format!("{h}/poststart-after-program-before-start-returns"),
            poststart_when,
        ),
        must(format!("{h}/poststop-runtime-namespace"), |cx| {
            runtime_ns(cx, "poststop")
        }),
        must(format!("{h}/poststop-after-delete-before-return"), poststop_when),
        // On poststop hooks, which do not run during create: only validating
        // the config can make create fail.
        must(format!("{h}/path-absolute"), |cx| {
            let mut c = cx.ctr();
            c.set("/hooks", json!({"poststop": [{"path": "bin/true"}]}));
            c.expect_create_error()
        }),
        must(format!("{h}/timeout-positive"), |cx| {
            let mut c = cx.ctr();
            c.set(
                "/hooks",
                json!({"poststop": [{"path": "/bin/true", "timeout": 0}]}),
            );
            c.expect_create_error()
        }),
        must(format!("{h}/timeout-aborts-hook"), hook_timeout),
        must(format!("{h}/args-and-env"), hook_args_env),
        must("runtime.md/lifecycle/prestart-failure", |cx| {
            create_hook_failure(cx, "prestart")
        }),
        must("runtime.md/lifecycle/createruntime-failure", |cx| {
            create_hook_failure(cx, "createRuntime")
        }),
        must("runtime.md/lifecycle/createcontainer-failure", |cx| {
            create_hook_failure(cx, "createContainer")
        }),
        must("runtime.md/lifecycle/hook-failure-runs-poststop", hook_failure_poststop),
        must("runtime.md/lifecycle/startcontainer-failure", |cx| {
            start_hook_failure(cx, "startContainer")
        }),
        must("runtime.md/lifecycle/poststart-failure", |cx| {
            start_hook_failure(cx, "poststart")
        }),
        must("runtime.md/lifecycle/poststop-failure-warns", poststop_failure),
    ]
}

/// One container whose hooks all log into `log` (bind-mounted into the
/// container at /oc-hooks for the container-side hooks).
struct HookRun {
    log: PathBuf,
    order: Vec<String>,
    /// The container's namespaces (from its pid after create).
    ctr_mnt: String,
    ctr_net: String,
}

impl HookRun {
    fn setup(cx: &Ctx, c: &mut Ctr, exits: &HashMap<&str, i32>) -> Res<PathBuf> {
        let log = cx.file(&format!("hooks{}", cx.next()));
        fs::create_dir_all(&log).map_err(|e| format!("{e}"))?;
        let hook = log.join("hook.sh");
        write_exec(&hook, &HOOK.replace("MARKER", ROOTFS_MARKER))?;
        let rootfs = c.rootfs().display().to_string();
        let cg = cx
            .host()
            .v1
            .first()
            .map(|(_, p)| p.join(c.cgroups_path.trim_start_matches('/')).display().to_string())
            .unwrap_or_default();
        let entry = |name: &str, path: &str, dir: &str| {
            let exit = exits.get(name).copied().unwrap_or(0);
            let delay = if name == "startContainer" { "0.2" } else { "" };
            json!({
                "path": path,
                "args": [path, name, dir],
                "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", format!("OC_ROOTFS={rootfs}"), format!("OC_CGDIR={cg}"), format!("OC_EXIT={exit}"), format!("OC_DELAY={delay}")]
            })
        };
        let (hp, ld) = (hook.display().to_string(), log.display().to_string());
        let mut hooks = json!({});
        for name in ["prestart", "createRuntime", "createContainer", "poststart", "poststop"] {
            hooks[name] = json!([entry(name, &hp, &ld)]);
        }
        hooks["startContainer"] = json!([entry("startContainer", "/oc-hooks/hook.sh", "/oc-hooks")]);
        c.set("/hooks", hooks);
        c.add_mount(json!({"destination": "/oc-hooks", "type": "bind", "source": log, "options": ["rbind", "rw"]}));
        Ok(log)
    }

    /// create, start, kill, delete; the markers *-returned go into the order.
    fn full(cx: &Ctx) -> Res<HookRun> {
        let mut c = cx.ctr();
        c.payload(&["sleep"]);
        let log = HookRun::setup(cx, &mut c, &HashMap::new())?;
        let mark = |what: &str| {
            use std::io::Write;
            if let Ok(mut f) = fs::OpenOptions::new().append(true).create(true).open(log.join("order")) {
                let _ = writeln!(f, "{what}");
            }
        };
        c.create_ok()?;
        mark("create-returned");
        let pid = c.pid()?;
        let (ctr_mnt, ctr_net) = (ns_of(pid, "mnt")?, ns_of(pid, "net")?);
        c.start_ok()?;
        mark("start-returned");
        // Let the container reach its program (a runtime may return from
        // start before startContainer ran): the hooks must not be cut short.
        crate::proc::wait_until(cx.remaining().min(Duration::from_secs(5)), || {
            String::from_utf8_lossy(&fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default())
                .contains("oc-payload")
        });
        let k = c.kill("KILL");
        ensure!(k.ok(), "kill: {}", k.describe());
        c.wait_stopped()?;
        let d = c.delete();
        ensure!(d.ok(), "delete: {}", d.describe());
        mark("delete-returned");
        let order = read(&log.join("order")).lines().map(String::from).collect();
        Ok(HookRun {
            log,
            order,
            ctr_mnt,
            ctr_net,
        })
    }

    fn info(&self, name: &str) -> Res<Kv> {
        let t = read(&self.log.join(format!("info-{name}")));
        ensure!(
            !t.is_empty(),
            "the {name} hook did not run (hooks run: {:?})",
            self.order
        );
        Ok(Kv::parse(&t))
    }

    fn state(&self, name: &str) -> Res<Value> {
        let t = read(&self.log.join(format!("state-{name}.json")));
        serde_json::from_str(&t).map_err(|e| format!("the {name} hook's stdin is not a JSON state ({e}): {t:?}").into())
    }

    fn pos(&self, name: &str) -> Res<usize> {
        self.order
            .iter()
            .position(|o| o == name)
            .ok_or_else(|| format!("the {name} hook did not run (order {:?})", self.order).into())
    }
}

fn listed_order(cx: &Ctx) -> Res {
    let mut c = cx.ctr();
    let log = cx.file("order");
    let hooks: Vec<Value> = (1..=3)
        .map(|i| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("cat > /dev/null; echo {i} >> {}", log.display())]}))
        .collect();
    c.set("/hooks", json!({"createRuntime": hooks.clone(), "poststart": hooks}));
    c.payload(&["sleep"]);
    c.create_ok()?;
    c.start_ok()?;
    let got = read(&log);
    ensure!(
        got == "1\n2\n3\n1\n2\n3\n",
        "hooks ran in this order: {got:?} (want 1 2 3 for createRuntime, then for poststart)"
    );
    Ok(())
}

fn state_on_stdin(cx: &Ctx) -> Res {
    let r = HookRun::full(cx)?;
    let mut bad = Vec::new();
    for name in [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ] {
        match r.state(name) {
            Err(e) => bad.push(format!("{e:?}")),
            Ok(st) => {
                let id_ok = st["id"].as_str().is_some_and(|i| i.starts_with("oc-"));
                let b_ok = st["bundle"].as_str().is_some_and(|b| b.starts_with('/'));
                let v_ok = st["ociVersion"].is_string() && st["status"].is_string();
                if !(id_ok && b_ok && v_ok) {
                    bad.push(format!("{name}: {st}"));
                }
            }
        }
    }
    ensure!(
        bad.is_empty(),
        "hooks without a valid state on stdin: {}",
        bad.join("; ")
    );
    Ok(())
}

fn runtime_ns(cx: &Ctx, name: &str) -> Res {
    let r = HookRun::full(cx)?;
    let i = r.info(name)?;
    ensure!(
        i.get("mnt") == Some(my_ns("mnt").as_str()),
        "the {name} hook ran in mount namespace {:?}, not the runtime's",
        i.get("mnt")
    );
    ensure!(
        i.get("net") == Some(my_ns("net").as_str()),
        "the {name} hook ran in network namespace {:?}, not the runtime's",
        i.get("net")
    );
    Ok(())
}

fn container_ns(cx: &Ctx, name: &str) -> Res {
    let r = HookRun::full(cx)?;
    let i = r.info(name)?;
    ensure!(
        i.get("mnt") == Some(r.ctr_mnt.as_str()),
        "the {name} hook ran in mount namespace {:?}, the container's is {}",
        i.get("mnt"),
        r.ctr_mnt
    );
    ensure!(
        i.get("net") == Some(r.ctr_net.as_str()),
        "the {name} hook ran in network namespace {:?}, the container's is {}",
        i.get("net"),
        r.ctr_net
    );
    Ok(())
}

fn before_pivot(cx: &Ctx, name: &str) -> Res {
    let r = HookRun::full(cx)?;
    let create = r.pos("create-returned")?;
    ensure!(
        r.pos(name)? < create,
        "the {name} hook ran after create returned (order {:?})",
        r.order
    );
    let i = r.info(name)?;
    // Runtime-namespace hooks look at the container through /proc/PID/root;
    // container-namespace hooks at their own root.
    let key = if name == "createContainer" {
        "ownroot"
    } else {
        "pidroot"
    };
    ensure!(
        i.get(key) == Some("host"),
        "the {name} hook ran after pivot_root: the container's root no longer showed the host's {}",
        "rootfs path"
    );
    Ok(())
}

fn before(cx: &Ctx, first: &str, second: &str) -> Res {
    let r = HookRun::full(cx)?;
    ensure!(
        r.pos(first)? < r.pos(second)?,
        "{first} ran after {second} (order {:?})",
        r.order
    );
    Ok(())
}

fn startcontainer_before_program(cx: &Ctx) -> Res {
    let r = HookRun::full(cx)?;
    let create = r.pos("create-returned")?;
    let start = r.pos("start-returned")?;
    let p = r.pos("startContainer")?;
    ensure!(create < p && p < start, "startContainer did not run within the start operation (after create returned, before start returned; order {:?})", r.order);
    let i = r.info("startContainer")?;
    let one = i.get("one").unwrap_or("");
    ensure!(
        !one.contains("oc-payload"),
        "when startContainer ran, the container process already executed the program: {one:?}"
    );
    Ok(())
}

fn poststart_when(cx: &Ctx) -> Res {
    let r = HookRun::full(cx)?;
    let p = r.pos("poststart")?;
    ensure!(
        r.pos("startContainer")? < p && p < r.pos("start-returned")?,
        "poststart did not run within start (order {:?})",
        r.order
    );
    let i = r.info("poststart")?;
    let cmd = i.get("pidcmd").unwrap_or("");
    ensure!(
        cmd.contains("oc-payload"),
        "when poststart ran, the container process had not executed the program yet: {cmd:?}"
    );
    Ok(())
}

fn poststop_when(cx: &Ctx) -> Res {
    let r = HookRun::full(cx)?;
    let p = r.pos("poststop")?;
    ensure!(
        r.pos("start-returned")? < p && p < r.pos("delete-returned")?,
        "poststop did not run within delete (order {:?})",
        r.order
    );
    let i = r.info("poststop")?;
    ensure!(
        i.get("cgroup") == Some("absent"),
        "when poststop ran, the container's cgroup still existed (not deleted yet)"
    );
    ensure!(
        i.get("pidcmd").unwrap_or("").is_empty(),
        "when poststop ran, the container process still existed"
    );
    Ok(())
}

fn hook_timeout(cx: &Ctx) -> Res {
    let mut c = cx.ctr();
    c.set(
        "/hooks",
        json!({"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}]}),
    );
    let t = Instant::now();
    let d = c.create();
    let took = t.elapsed();
    ensure!(
        !d.ok(),
        "create succeeded although its createRuntime hook ran past its 1s timeout"
    );
    ensure!(
        took < Duration::from_secs(10),
        "the hook was not aborted after its 1s timeout: create took {:.1}s",
        took.as_secs_f64()
    );
    Ok(())
}

fn hook_args_env(cx: &Ctx) -> Res {
    let mut c = cx.ctr();
    let out = cx.file("hook-report");
    let p = cx.payload().display().to_string();
    c.set(
        "/hooks",
        json!({"createRuntime": [{"path": p, "args": ["oc-argv0", "drain", "--", "to", out, "--", "report", "second"], "env": ["OC_HOOK=1", "PATH=/bin"]}]}),
    );
    c.create_ok()?;
    let kv = Kv::parse(&read(&out));
    let args = kv.all("arg");
    ensure!(
        args.first() == Some(&"oc-argv0") && args.contains(&"second"),
        "hook argv {args:?}, want [oc-argv0, drain, --, to, FILE, --, report, second]"
    );
    let mut env = kv.all("env");
    env.sort();
    ensure!(
        env == ["OC_HOOK=1", "PATH=/bin"],
        "hook environment {env:?}, want exactly [OC_HOOK=1, PATH=/bin]"
    );
    Ok(())
}

/// A hook of `name` (create time) fails: create errors, the program never
/// runs, no container process or cgroup is left.
fn create_hook_failure(cx: &Ctx, name: &str) -> Res {
    let mut c = cx.ctr();
    c.payload(&["echo", "ran"]);
    HookRun::setup(cx, &mut c, &HashMap::from([(name, 1)]))?;
    let d = c.create();
    ensure!(
        !d.ok() && !d.timed_out(),
        "create succeeded although the {name} hook failed: {}",
        d.describe()
    );
    // The failing hook must not be followed by the later create hooks.
    expect_stopped_or_gone(cx, &c)
}

/// After a failed hook: the program did not run, and the container is
/// stopped or gone (state fails), with no process left.
fn expect_stopped_or_gone(cx: &Ctx, c: &Ctr) -> Res {
    std::thread::sleep(Duration::from_millis(100));
    ensure!(!c.output().contains("echo=ran"), "the program ran");
    let st = c.state_raw();
    if st.ok() {
        let v: Value = serde_json::from_str(&st.stdout).unwrap_or_default();
        ensure!(
            v["status"] == "stopped",
            "after the failure the container is {:?}, not stopped",
            v["status"]
        );
    }
    let mut procs = Vec::new();
    crate::proc::wait_until(cx.remaining().min(Duration::from_secs(3)), || {
        procs = berth_integration::host::pids_with_marker(&c.marker);
        procs.is_empty()
    });
    ensure!(
        procs.is_empty(),
        "container processes still alive after the failure: {procs:?}"
    );
    Ok(())
}

fn hook_failure_poststop(cx: &Ctx) -> Res {
    let mut c = cx.ctr();
    c.payload(&["echo", "ran"]);
    let log = HookRun::setup(cx, &mut c, &HashMap::from([("createRuntime", 1)]))?;
    let d = c.create();
    ensure!(!d.ok(), "create succeeded although the createRuntime hook failed");
    // Step 12 (destroy) and 13 (poststop) follow the failure; a caller's
    // delete may be what triggers them.
    let _ = c.delete();
    let order = read(&log.join("order"));
    ensure!(
        order.lines().any(|l| l == "poststop"),
        "poststop hooks did not run after the failed create (hooks run: {:?})",
        order.lines().collect::<Vec<_>>()
    );
    Ok(())
}

fn start_hook_failure(cx: &Ctx, name: &str) -> Res {
    let mut c = cx.ctr();
    c.payload(&["echo", "ran"]);
    HookRun::setup(cx, &mut c, &HashMap::from([(name, 1)]))?;
    c.create_ok()?;
    let d = c.start();
    ensure!(
        !d.ok() && !d.timed_out(),
        "start succeeded although the {name} hook failed: {}",
        d.describe()
    );
    if name == "startContainer" {
        return expect_stopped_or_gone(cx, &c);
    }
    // poststart: the program may have run; the container must be stopped.
    let mut procs = Vec::new();
    crate::proc::wait_until(cx.remaining().min(Duration::from_secs(3)), || {
        procs = berth_integration::host::pids_with_marker(&c.marker);
        procs.is_empty()
    });
    ensure!(
        procs.is_empty(),
        "the container still runs after its poststart hook failed: {procs:?}"
    );
    Ok(())
}

fn poststop_failure(cx: &Ctx) -> Res {
    let mut c = cx.ctr();
    let log = cx.file("poststop");
    c.set(
        "/hooks",
        json!({"poststop": [
            {"path": "/bin/sh", "args": ["sh", "-c", format!("cat > /dev/null; echo first >> {}; exit 1", log.display())]},
            {"path": "/bin/sh", "args": ["sh", "-c", format!("cat > /dev/null; echo second >> {}", log.display())]}
        ]}),
    );
    c.payload(&["exit", "0"]);
    c.create_ok()?;
    c.start_ok()?;
    c.wait_stopped()?;
    let d = c.delete();
    ensure!(
        d.ok(),
        "delete failed because a poststop hook failed (a warning only): {}",
        d.describe()
    );
    let got = read(&log);
    ensure!(
        got == "first\nsecond\n",
        "poststop hooks ran: {got:?}, want both (the failing one only warns)"
    );
    super::util::expect_no_state(&c)
}
