//! The five capability sets, checked from /proc/self/status inside, an
//! ambient capability kept by a non-root user, and CAP_NET_RAW deciding
//! whether ping works.

use berth_integration::prelude::*;

const CAP_CHOWN: u32 = 0;
const CAP_KILL: u32 = 5;
const CAP_SETGID: u32 = 6;
const CAP_SETUID: u32 = 7;
const CAP_NET_BIND_SERVICE: u32 = 10;
const CAP_NET_ADMIN: u32 = 12;
const CAP_NET_RAW: u32 = 13;
const CAP_SYS_CHROOT: u32 = 18;
const CAP_AUDIT_WRITE: u32 = 29;

fn mask(caps: &[u32]) -> u64 {
    caps.iter().fold(0, |m, c| m | 1 << c)
}

fn names(caps: &[u32]) -> Vec<String> {
    let n = |c: u32| match c {
        CAP_CHOWN => "CAP_CHOWN",
        CAP_KILL => "CAP_KILL",
        CAP_SETGID => "CAP_SETGID",
        CAP_SETUID => "CAP_SETUID",
        CAP_NET_BIND_SERVICE => "CAP_NET_BIND_SERVICE",
        CAP_NET_ADMIN => "CAP_NET_ADMIN",
        CAP_NET_RAW => "CAP_NET_RAW",
        CAP_SYS_CHROOT => "CAP_SYS_CHROOT",
        CAP_AUDIT_WRITE => "CAP_AUDIT_WRITE",
        _ => unreachable!(),
    };
    caps.iter().map(|c| n(*c).to_string()).collect()
}

/// The five masks of /proc/self/status, in the order Inh Prm Eff Bnd Amb.
fn cap_masks(status: &str) -> [u64; 5] {
    let get = |key: &str| {
        let line = status.lines().find(|l| l.starts_with(key)).unwrap_or_else(|| panic!("no {key} in {status}"));
        u64::from_str_radix(line[key.len()..].trim(), 16).unwrap_or_else(|_| panic!("bad {line}"))
    };
    [get("CapInh:"), get("CapPrm:"), get("CapEff:"), get("CapBnd:"), get("CapAmb:")]
}

#[test]
fn capability_masks_for_all_five_sets() {
    let bnd = [CAP_CHOWN, CAP_KILL, CAP_SETGID, CAP_SETUID, CAP_NET_BIND_SERVICE, CAP_NET_RAW, CAP_AUDIT_WRITE];
    let prm = [CAP_CHOWN, CAP_KILL, CAP_NET_BIND_SERVICE, CAP_NET_RAW];
    let eff = [CAP_CHOWN, CAP_KILL, CAP_NET_BIND_SERVICE];
    let inh = [CAP_NET_BIND_SERVICE, CAP_NET_RAW];
    let amb = [CAP_NET_BIND_SERVICE];
    let caps = json!({"bounding": names(&bnd), "permitted": names(&prm), "effective": names(&eff),
        "inheritable": names(&inh), "ambient": names(&amb)});
    // A non-root user: after execve (of a file without capabilities) the
    // permitted and effective sets are the ambient set; the others stay.
    let mut env = Env::sh("caps_user", "grep ^Cap /proc/self/status");
    env.set("/process/user", json!({"uid": 1000, "gid": 1000}));
    env.set("/process/capabilities", caps.clone());
    let out = env.run_ok();
    assert_eq!(
        cap_masks(&out.stdout),
        [mask(&inh), mask(&amb), mask(&amb), mask(&bnd), mask(&amb)],
        "Inh Prm Eff Bnd Amb as uid 1000:\n{}",
        out.stdout
    );
    assert_no_leftovers(&env);
    // root with noNewPrivileges (the test config's): execve keeps root's
    // permitted set and makes it effective.
    let mut env = Env::sh("caps_root", "grep ^Cap /proc/self/status");
    env.set("/process/capabilities", caps);
    let out = env.run_ok();
    assert_eq!(
        cap_masks(&out.stdout),
        [mask(&inh), mask(&prm), mask(&prm), mask(&bnd), mask(&amb)],
        "Inh Prm Eff Bnd Amb as root:\n{}",
        out.stdout
    );
    assert_no_leftovers(&env);
}

#[test]
fn ambient_needs_permitted_and_inheritable() {
    // CAP_NET_RAW in ambient but not permitted: the kernel refuses it; berth
    // warns and goes on (as runc), keeping the rest.
    let mut env = Env::sh("caps_ambient_refused", "grep ^CapAmb /proc/self/status");
    env.set("/process/user", json!({"uid": 1000, "gid": 1000}));
    env.set(
        "/process/capabilities",
        json!({"bounding": names(&[CAP_NET_BIND_SERVICE, CAP_NET_RAW]),
            "permitted": names(&[CAP_NET_BIND_SERVICE]), "inheritable": names(&[CAP_NET_BIND_SERVICE, CAP_NET_RAW]),
            "ambient": names(&[CAP_NET_BIND_SERVICE, CAP_NET_RAW])}),
    );
    let out = env.run_ok();
    assert_eq!(squash(&out.stdout), format!("CapAmb: {:016x}", mask(&[CAP_NET_BIND_SERVICE])), "{out}");
    assert!(out.stderr.contains("CAP_NET_RAW"), "no warning about the refused ambient cap:\n{out}");
    assert_no_leftovers(&env);
}

/// A warning from init after it closed berth's fds (a startContainer
/// hook runs after the clean-up, and an env entry without a name is
/// warned about): with `--log`, it still reaches the log file (init keeps
/// that fd).
#[test]
fn init_warnings_after_the_fd_clean_up_reach_the_log_file() {
    let mut env = Env::sh("init_warn_log", "true");
    env.set(
        "/hooks",
        json!({"startContainer": [{"path": "/bin/true", "env": ["NO_EQUALS_SIGN"]}]}),
    );
    let log = env.file("berth.log");
    let id = env.id.clone();
    env.berth(&["--log", log.to_str().unwrap(), "run", "--bundle", &env.bundle_str(), &id]).ok();
    let text = fs::read_to_string(&log).unwrap_or_default();
    assert!(
        text.contains("ignoring environment entry without a name") && text.contains("NO_EQUALS_SIGN"),
        "init's warning is not in the log file:\n{text}"
    );
    assert_no_leftovers(&env);
}

#[test]
fn runc_spec_capabilities_run_quietly() {
    // `runc spec`'s sets: ambient without inheritable, which the kernel
    // cannot raise. runc says nothing; neither does berth (no warning
    // that the user cannot act on), and CapAmb stays empty.
    let caps = names(&[CAP_AUDIT_WRITE, CAP_KILL, CAP_NET_BIND_SERVICE]);
    let mut env = Env::sh("caps_runc_spec", "grep -E '^Cap(Eff|Amb)' /proc/self/status");
    env.set("/process/capabilities", json!({"bounding": caps, "effective": caps, "permitted": caps, "ambient": caps}));
    let out = env.run_ok();
    assert_eq!(out.stderr, "", "warnings for runc spec's capabilities:\n{out}");
    let m = mask(&[CAP_AUDIT_WRITE, CAP_KILL, CAP_NET_BIND_SERVICE]);
    assert_eq!(squash(&out.stdout), format!("CapEff: {m:016x}\nCapAmb: {:016x}", 0), "{out}");
    assert_no_leftovers(&env);
}

#[test]
fn unknown_and_unavailable_capabilities_are_warned_and_skipped() {
    // CAP_SYS_RESOURCE is not in this host's bounding set; CAP_NOT_A_CAP is
    // not a capability at all.
    let mut env = Env::sh("caps_unknown", "grep ^CapBnd /proc/self/status");
    env.set("/process/capabilities", json!({"bounding": ["CAP_KILL", "CAP_SYS_RESOURCE", "CAP_NOT_A_CAP"]}));
    let out = env.run_ok();
    let bnd = cap_masks(&format!("{}\nCapInh: 0\nCapPrm: 0\nCapEff: 0\nCapAmb: 0", out.stdout))[3];
    let sys_resource_available =
        fs::read_to_string("/proc/self/status").map(|s| cap_masks(&s)[3] & (1 << 24) != 0).unwrap_or(false);
    let want = mask(&[CAP_KILL]) | if sys_resource_available { 1 << 24 } else { 0 };
    assert_eq!(bnd, want, "{out}");
    assert!(out.stderr.contains("CAP_NOT_A_CAP"), "no warning for the unknown name:\n{out}");
    if !sys_resource_available {
        assert!(out.stderr.contains("SYS_RESOURCE"), "no warning for the unavailable cap:\n{out}");
    }
    assert_no_leftovers(&env);
}

/// `ip link set lo up` then one ping to 127.0.0.1; prints the outcome and
/// the netns's ping_group_range (which must not allow ICMP datagram
/// sockets, or ping would not need CAP_NET_RAW).
const PING: &str = "ip link set lo up || echo lo-down; cat /proc/sys/net/ipv4/ping_group_range; \
    if ping -c 1 -W 2 127.0.0.1 >/dev/null; then echo ping=ok; else echo ping=fail; fi";

#[test]
fn non_root_user_keeps_an_ambient_capability() {
    let caps = names(&[CAP_NET_ADMIN, CAP_NET_RAW]);
    let mut env = Env::sh("caps_ambient_ping", PING);
    env.set("/process/user", json!({"uid": 1000, "gid": 1000}));
    env.set(
        "/process/capabilities",
        json!({"bounding": caps, "permitted": caps, "effective": caps,
        "inheritable": caps, "ambient": caps}),
    );
    let out = env.run_ok();
    assert!(out.stdout.contains("ping=ok") && !out.stdout.contains("lo-down"), "uid 1000 with ambient NET_RAW:\n{out}");
    assert_no_leftovers(&env);
}

#[test]
fn dropping_cap_net_raw_stops_ping() {
    let run = |name: &str, caps: &[u32]| {
        let mut env = Env::sh(name, PING);
        let n = names(caps);
        env.set("/process/capabilities", json!({"bounding": n, "permitted": n, "effective": n}));
        let out = env.run_ok();
        assert_no_leftovers(&env);
        out.stdout
    };
    let with = run("ping_with_net_raw", &[CAP_NET_ADMIN, CAP_NET_RAW]);
    assert!(with.contains("ping=ok"), "ping with CAP_NET_RAW:\n{with}");
    let without = run("ping_without_net_raw", &[CAP_NET_ADMIN]);
    let range = without.lines().next().unwrap_or_default().split_whitespace().collect::<Vec<_>>();
    assert_eq!(
        range,
        ["1", "0"],
        "ICMP datagram sockets allowed in the container's netns; test meaningless:\n{without}"
    );
    assert!(without.contains("ping=fail"), "ping without CAP_NET_RAW:\n{without}");
}

#[test]
fn sets_the_kernel_refuses_fail_at_create() {
    // runc fails `create` on these (capset refuses them); berth used to
    // fail only at `start`, and then removed the container.
    for (name, caps, field) in [
        (
            "caps_inh_outside_bounding",
            json!({"effective": ["CAP_SYS_ADMIN"], "permitted": ["CAP_SYS_ADMIN"], "inheritable": ["CAP_SYS_ADMIN"]}),
            "process.capabilities.inheritable",
        ),
        (
            "caps_eff_not_permitted",
            json!({"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": []}),
            "process.capabilities.effective",
        ),
    ] {
        let mut env = Env::sh(name, "echo ran");
        env.set("/process/capabilities", caps);
        let out = env.try_create();
        out.exits_with(1).fails_with(&["config.json", field, "CAP_"]);
        assert!(env.berth(&["state", &env.id]).stderr.contains("does not exist"));
        assert_no_leftovers(&env);
    }
}
