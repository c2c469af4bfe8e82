//! config.md "Process", "POSIX process" (rlimits), "Linux Process"
//! (capabilities, noNewPrivileges, oomScoreAdj, scheduler, ioPriority,
//! AppArmor, SELinux), "User", "Hostname", "Domainname", and
//! config-linux.md "Personality".

use std::time::Duration;

use serde_json::json;

use super::{must, should, Test};
use crate::bundle::{caps_from_mask, host_bounding_set};
use crate::console::Console;
use crate::ctx::{Ctx, Kv, Res};
use crate::{ensure, skip};

pub fn tests() -> Vec<Test> {
    let p = "config.md/process";
    let lp = "config.md/linux-process";
    vec![
        must(format!("{p}/terminal"), terminal),
        must(format!("{p}/console-size"), console_size),
        must(format!("{p}/console-size-ignored-without-terminal"), |cx| {
            let mut c = cx.ctr();
            c.set("/process/consoleSize", json!({"height": 10, "width": 20}));
            let kv = c.run()?;
            ensure!(
                kv.get("isatty.1") == Some("0"),
                "the process got a terminal although terminal is false"
            );
            Ok(())
        }),
        must(format!("{p}/cwd"), |cx| {
            let mut c = cx.ctr();
            c.set("/process/cwd", json!("/etc"));
            let kv = c.run()?;
            ensure!(kv.get("cwd") == Some("/etc"), "cwd {:?}, want /etc", kv.get("cwd"));
            Ok(())
        }),
        must(format!("{p}/cwd-absolute-error"), |cx| {
            let mut c = cx.ctr();
            c.set("/process/cwd", json!("etc"));
            c.expect_error().map(|_| ())
        }),
        must(format!("{p}/env"), |cx| {
            let mut c = cx.ctr();
            c.set("/process/env", json!(["PATH=/bin", "OC_ONE=1", "OC_EMPTY="]));
            let kv = c.run()?;
            // A runtime may add HOME (runc does, from /etc/passwd): nothing else.
            let mut env: Vec<&str> = kv.all("env").into_iter().filter(|e| !e.starts_with("HOME=")).collect();
            env.sort();
            ensure!(
                env == ["OC_EMPTY=", "OC_ONE=1", "PATH=/bin"],
                "environment {env:?}, want exactly OC_EMPTY=, OC_ONE=1, PATH=/bin"
            );
            Ok(())
        }),
        must(format!("{p}/args-path-lookup"), |cx| {
            let mut c = cx.ctr();
            c.set("/process/env", json!(["PATH=/bin:/"]));
            let m = c.marker.clone();
            c.set("/process/args", json!(["oc-payload", "echo", "found", m]));
            let kv = c.run()?;
            ensure!(
                kv.get("echo") == Some("found"),
                "args[0] \"oc-payload\" was not found through PATH=/bin:/"
            );
            Ok(())
        }),
        must(format!("{p}/args-required"), |cx| {
            let mut c = cx.ctr();
            c.set("/process/args", json!([]));
            c.expect_error().map(|_| ())
        }),
        must("config.md/posix-process/rlimits-soft", |cx| rlimits(cx, 0)),
        must("config.md/posix-process/rlimits-hard", |cx| rlimits(cx, 1)),
        must("config.md/posix-process/rlimits-invalid-type-error", |cx| {
            let mut c = cx.ctr();
            c.set(
                "/process/rlimits",
                json!([{"type": "RLIMIT_OC_BOGUS", "soft": 1, "hard": 1}]),
            );
            c.expect_error().map(|_| ())
        }),
        must("config.md/posix-process/rlimits-duplicate-error", |cx| {
            let mut c = cx.ctr();
            c.set(
                "/process/rlimits",
                json!([{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 100}, {"type": "RLIMIT_NOFILE", "soft": 200, "hard": 200}]),
            );
            c.expect_error().map(|_| ())
        }),
        must(format!("{lp}/capabilities-bounding"), |cx| {
            caps(cx, "CapBnd", "bounding")
        }),
        must(format!("{lp}/capabilities-effective"), |cx| {
            caps(cx, "CapEff", "effective")
        }),
        must(format!("{lp}/capabilities-permitted"), |cx| {
            caps(cx, "CapPrm", "permitted")
        }),
        must(format!("{lp}/capabilities-inheritable"), caps_inheritable),
        must(format!("{lp}/capabilities-ambient"), caps_ambient),
        should(format!("{lp}/capabilities-ungrantable-no-fail"), |cx| {
            if host_bounding_set().contains(&"CAP_SYS_RESOURCE") {
                skip!("the host's bounding set has every capability; nothing is ungrantable here");
            }
            caps_no_fail(cx, "CAP_SYS_RESOURCE")
        }),
        should(format!("{lp}/capabilities-unknown-no-fail"), |cx| {
            caps_no_fail(cx, "CAP_OC_UNKNOWN")
        }),
        must(format!("{lp}/no-new-privileges"), |cx| {
            let mut c = cx.ctr();
            c.set("/process/noNewPrivileges", json!(true));
            let kv = c.run()?;
            ensure!(
                kv.get("status.NoNewPrivs") == Some("1"),
                "NoNewPrivs is {:?}",
                kv.get("status.NoNewPrivs")
            );
            Ok(())
        }),
        must(format!("{lp}/oom-score-adj-set"), |cx| {
            let mut c = cx.ctr();
            c.set("/process/oomScoreAdj", json!(432));
            let kv = c.run()?;
            ensure!(
                kv.get("oom_score_adj") == Some("432"),
                "oom_score_adj {:?}, want 432",
                kv.get("oom_score_adj")
            );
            Ok(())
        }),
        must(format!("{lp}/oom-score-adj-unset-unchanged"), oom_unset),
        must(format!("{lp}/scheduler"), |cx| {
            let mut c = cx.ctr();
            c.set("/process/scheduler", json!({"policy": "SCHED_BATCH", "nice": 7}));
            let kv = c.run()?;
            ensure!(
                kv.get("sched.policy") == Some("3") && kv.get("nice") == Some("7"),
                "policy {:?} (want 3 = SCHED_BATCH), nice {:?} (want 7)",
                kv.get("sched.policy"),
                kv.get("nice")
            );
            Ok(())
        })
        .since("1.2.0"),
        must(format!("{lp}/scheduler-flags"), |cx| {
            let mut c = cx.ctr();
            c.set(
                "/process/scheduler",
                json!({"policy": "SCHED_OTHER", "flags": ["SCHED_FLAG_RESET_ON_FORK"]}),
            );
            let kv = c.run()?;
            let flags: u64 = kv.req("sched.flags")?.parse().unwrap_or(0);
            ensure!(flags & 1 == 1, "sched_flags {flags:#x} lack SCHED_FLAG_RESET_ON_FORK");
            Ok(())
        })
        .since("1.2.0"),
        must(format!("{lp}/io-priority"), |cx| {
            let mut c = cx.ctr();
            c.set(
                "/process/ioPriority",
                json!({"class": "IOPRIO_CLASS_BE", "priority": 6}),
            );
            let kv = c.run()?;
            ensure!(
                kv.get("ioprio") == Some("2 6"),
                "ioprio (class data) {:?}, want \"2 6\" (IOPRIO_CLASS_BE, 6)",
                kv.get("ioprio")
            );
            Ok(())
        })
        .since("1.2.0"),
        must(format!("{lp}/apparmor-profile"), |cx| {
            if !std::path::Path::new("/sys/kernel/security/apparmor").exists() {
                skip!("AppArmor is not enabled on this host");
            }
            let mut c = cx.ctr();
            c.set("/process/apparmorProfile", json!("unconfined"));
            c.payload(&["read", "/proc/self/attr/current"]);
            let kv = c.run()?;
            let r = kv.req("read./proc/self/attr/current")?;
            ensure!(r.contains("first=unconfined"), "AppArmor label {r}, want unconfined");
            Ok(())
        }),
        must(format!("{lp}/selinux-label"), |_cx| {
            if !std::path::Path::new("/sys/fs/selinux/enforce").exists() {
                skip!("SELinux is not enabled on this host");
            }
            skip!("SELinux labels are not checked by this suite yet")
        }),
        must("config.md/user/uid-gid", |cx| {
            let mut c = cx.ctr();
            c.set("/process/user", json!({"uid": 1000, "gid": 1001}));
            let kv = c.run()?;
            ensure!(
                kv.get("uid") == Some("1000 1000 1000") && kv.get("gid") == Some("1001 1001 1001"),
                "uid (r e s) {:?}, gid {:?}",
                kv.get("uid"),
                kv.get("gid")
            );
            Ok(())
        }),
        must("config.md/user/additional-gids", |cx| {
            let mut c = cx.ctr();
            c.set(
                "/process/user",
                json!({"uid": 1000, "gid": 1001, "additionalGids": [5, 2000]}),
            );
            let kv = c.run()?;
            let g = kv.req("groups")?;
            ensure!(
                g == "5,2000" || g == "5,1001,2000",
                "supplementary groups {g:?}, want 5,2000"
            );
            Ok(())
        }),
        must("config.md/user/umask", |cx| {
            let mut c = cx.ctr();
            c.set("/process/user/umask", json!(0o027));
            let kv = c.run()?;
            ensure!(
                kv.get("umask") == Some("0027"),
                "umask {:?}, want 0027",
                kv.get("umask")
            );
            Ok(())
        }),
        must("config.md/hostname/set", |cx| {
            let mut c = cx.ctr();
            c.set("/hostname", json!("oc-host-name"));
            let kv = c.run()?;
            ensure!(
                kv.get("hostname") == Some("oc-host-name"),
                "hostname {:?}",
                kv.get("hostname")
            );
            Ok(())
        }),
        must("config.md/domainname/set", |cx| {
            let mut c = cx.ctr();
            c.set("/domainname", json!("oc.example.test"));
            let kv = c.run()?;
            ensure!(
                kv.get("domainname") == Some("oc.example.test"),
                "domainname {:?}",
                kv.get("domainname")
            );
            Ok(())
        })
        .since("1.1.0"),
        must("config-linux.md/personality/linux32", |cx| {
            if std::env::consts::ARCH != "x86_64" {
                skip!("LINUX32 is checked on x86_64 hosts only (uname -m becomes i686)");
            }
            let mut c = cx.ctr();
            c.set("/linux/personality", json!({"domain": "LINUX32"}));
            let kv = c.run()?;
            ensure!(
                kv.get("machine") == Some("i686") && kv.get("personality") == Some("0x8"),
                "machine {:?} personality {:?}, want i686 and 0x8 (PER_LINUX32)",
                kv.get("machine"),
                kv.get("personality")
            );
            Ok(())
        }),
        must("config-linux.md/personality/linux", |cx| {
            let mut c = cx.ctr();
            c.set("/linux/personality", json!({"domain": "LINUX"}));
            let kv = c.run()?;
            ensure!(
                kv.get("personality") == Some("0x0"),
                "personality {:?}, want 0x0 (PER_LINUX)",
                kv.get("personality")
            );
            Ok(())
        }),
        must("config-linux.md/personality/invalid-domain-error", |cx| {
            let mut c = cx.ctr();
            c.set("/linux/personality", json!({"domain": "LINUX_OC_BOGUS"}));
            c.expect_error().map(|_| ())
        }),
    ]
}

/// Run the payload on a terminal through --console-socket.
pub(crate) fn on_terminal(cx: &Ctx, size: Option<(u32, u32)>) -> Res<Kv> {
    let mut c = cx.ctr();
    c.set("/process/terminal", json!(true));
    if let Some((h, w)) = size {
        c.set("/process/consoleSize", json!({"height": h, "width": w}));
    }
    c.payload(&["report", "--", "stat", "/dev/console"]);
    let sock = cx.file("console.sock");
    let console = Console::listen(&sock, cx.remaining())?;
    let s = sock.display().to_string();
    let d = c.create_full(&["--console-socket", &s], |_| {});
    ensure!(
        d.ok(),
        "create with process.terminal and --console-socket: {}",
        d.describe()
    );
    c.start_ok()?;
    c.wait_stopped()?;
    let out = console.output(Duration::from_secs(5))?;
    ensure!(
        out.contains("pid="),
        "nothing came through the terminal: {:?}",
        crate::proc::squeeze(&out, 200)
    );
    Ok(Kv::parse(&out))
}

fn terminal(cx: &Ctx) -> Res {
    let kv = on_terminal(cx, None)?;
    for fd in 0..3 {
        ensure!(
            kv.get(&format!("isatty.{fd}")) == Some("1"),
            "fd {fd} is not a terminal"
        );
    }
    Ok(())
}

fn console_size(cx: &Ctx) -> Res {
    let kv = on_terminal(cx, Some((33, 101)))?;
    ensure!(
        kv.get("winsize") == Some("33 101"),
        "terminal size (rows cols) {:?}, want 33 101",
        kv.get("winsize")
    );
    Ok(())
}

fn rlimits(cx: &Ctx, which: usize) -> Res {
    let want = [
        ("RLIMIT_NOFILE", 512u64, 1024u64),
        ("RLIMIT_CORE", 0, 4096),
        ("RLIMIT_NPROC", 1000, 2000),
        ("RLIMIT_MSGQUEUE", 4096, 8192),
    ];
    let mut c = cx.ctr();
    let v: Vec<_> = want
        .iter()
        .map(|(t, s, h)| json!({"type": t, "soft": s, "hard": h}))
        .collect();
    c.set("/process/rlimits", json!(v));
    let kv = c.run()?;
    let mut bad = Vec::new();
    for (t, s, h) in want {
        let got = kv.get(&format!("rlimit.{t}")).unwrap_or("?");
        let parts: Vec<&str> = got.split(' ').collect();
        let expect = if which == 0 { s } else { h };
        if parts.get(which).copied() != Some(expect.to_string().as_str()) {
            bad.push(format!(
                "{t} is {got} (soft hard), want {} {expect}",
                if which == 0 { "soft" } else { "hard" }
            ));
        }
    }
    ensure!(bad.is_empty(), "{}", bad.join("; "));
    Ok(())
}

const CAPS: [&str; 4] = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW", "CAP_SYS_CHROOT"];

/// As root, all sets = CAPS: `field` must be exactly CAPS.
fn caps(cx: &Ctx, field: &str, set: &str) -> Res {
    let mut c = cx.ctr();
    c.set(
        "/process/capabilities",
        json!({"bounding": CAPS, "effective": CAPS, "permitted": CAPS}),
    );
    let kv = c.run()?;
    let got = caps_from_mask(kv.req(&format!("status.{field}"))?);
    ensure!(got == CAPS, "{set} set {got:?}, want {CAPS:?}");
    Ok(())
}

fn caps_inheritable(cx: &Ctx) -> Res {
    let mut c = cx.ctr();
    c.set(
        "/process/capabilities",
        json!({"bounding": CAPS, "effective": CAPS, "permitted": CAPS, "inheritable": ["CAP_NET_RAW"]}),
    );
    let kv = c.run()?;
    let got = caps_from_mask(kv.req("status.CapInh")?);
    ensure!(got == ["CAP_NET_RAW"], "inheritable set {got:?}, want [CAP_NET_RAW]");
    Ok(())
}

/// A non-root process keeps across execve only its ambient capabilities.
fn caps_ambient(cx: &Ctx) -> Res {
    let mut c = cx.ctr();
    let one = ["CAP_NET_RAW"];
    c.set("/process/user", json!({"uid": 1000, "gid": 1000}));
    c.set(
        "/process/capabilities",
        json!({"bounding": one, "effective": one, "permitted": one, "inheritable": one, "ambient": one}),
    );
    let kv = c.run()?;
    let amb = caps_from_mask(kv.req("status.CapAmb")?);
    let eff = caps_from_mask(kv.req("status.CapEff")?);
    ensure!(
        amb == one && eff == one,
        "as uid 1000: ambient {amb:?}, effective {eff:?}; want [CAP_NET_RAW] in both"
    );
    Ok(())
}

fn caps_no_fail(cx: &Ctx, extra: &str) -> Res {
    let mut c = cx.ctr();
    let mut set: Vec<&str> = CAPS.to_vec();
    set.push(extra);
    c.set(
        "/process/capabilities",
        json!({"bounding": set, "effective": set, "permitted": set}),
    );
    let kv = c.run()?;
    let eff = caps_from_mask(kv.req("status.CapEff")?);
    ensure!(
        CAPS.iter().all(|x| eff.contains(x)),
        "the grantable capabilities were not all given: {eff:?}"
    );
    Ok(())
}

fn oom_unset(cx: &Ctx) -> Res {
    let mut c = cx.ctr();
    c.remove("/process/oomScoreAdj");
    let d = c.create_with(|s| s.oom_score_adj = Some(123));
    ensure!(d.ok(), "create: {}", d.describe());
    c.start_ok()?;
    c.wait_stopped()?;
    let kv = Kv::parse(&c.output());
    ensure!(
        kv.get("oom_score_adj") == Some("123"),
        "oom_score_adj {:?}; the runtime ran with 123 and oomScoreAdj is unset",
        kv.get("oom_score_adj")
    );
    Ok(())
}
