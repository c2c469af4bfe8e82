//! `linux.seccomp`: actions, errno values, argument conditions, the 32-bit
//! x86 ABI, flags, SCMP_ACT_NOTIFY with an agent, the default profile, the
//! BPF cache, and errors.

use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::process::Command;

use berth_integration::prelude::*;

/// The repository's `seccomp-profiles/NAME`.
fn profile(name: &str) -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../seccomp-profiles").join(name);
    serde_json::from_str(&fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))).unwrap()
}

/// Run `script` with `linux.seccomp` = `sc`; the output (not checked).
fn run_with(name: &str, script: &str, sc: Value) -> Output {
    let mut env = Env::sh(name, script);
    env.set("/linux/seccomp", sc);
    let out = env.run();
    assert_no_leftovers(&env);
    out
}

/// 128 + SIGSYS: how `run` reports a process killed by seccomp.
const KILLED_BY_SIGSYS: i32 = 128 + libc::SIGSYS;

#[test]
fn errno_default_eperm_and_errno_ret() {
    let out =
        run_with("sc_errno", "mkdir /tmp/x; echo rc=$?; test -d /tmp/x || echo absent", profile("deny-mkdir.json"));
    assert!(out.success(), "{out}");
    assert!(out.stderr.contains("Operation not permitted") && out.stdout.contains("absent"), "{out}");
    let sc = json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENOSPC}]});
    let out = run_with("sc_errno_ret", "mkdir /tmp/x; echo rc=$?", sc);
    assert!(out.stderr.contains("No space left on device"), "errnoRet not applied:\n{out}");
    // defaultErrnoRet with an ERRNO default: everything but the listed calls.
    let mut allowed = profile("default.json");
    allowed["defaultErrnoRet"] = json!(libc::EXDEV);
    allowed["syscalls"].as_array_mut().unwrap().iter_mut().for_each(|r| {
        if let Some(n) = r["names"].as_array_mut() {
            n.retain(|v| v != "mkdir" && v != "mkdirat");
        }
    });
    let out = run_with("sc_default_errno_ret", "mkdir /tmp/x; echo rc=$?", allowed);
    assert!(out.stderr.contains("Invalid cross-device link"), "defaultErrnoRet not applied:\n{out}");
}

#[test]
fn kill_actions_end_the_process_with_sigsys() {
    for action in ["SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_TRAP"] {
        let sc =
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat"], "action": action}]});
        let out = run_with(&format!("sc_{}", action.to_lowercase()), "echo before; exec mkdir /tmp/x", sc);
        out.exits_with(KILLED_BY_SIGSYS);
        assert_eq!(out.stdout.trim(), "before", "{action}: {out}");
    }
}

/// Kernel log lines from seccomp (audit type 1326) for `comm`, waiting up
/// to `wait` for them to appear.
fn seccomp_audit(comm: &str, wait: Duration) -> Vec<String> {
    let mut found = Vec::new();
    wait_until(wait, || {
        let out = Command::new("dmesg").output().map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
        found = out
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("type=1326") && l.contains(&format!("comm=\"{comm}\"")))
            .map(String::from)
            .collect();
        !found.is_empty()
    });
    found
}

/// Run `env` (whose program runs as `comm`) until the kernel log shows a
/// seccomp record with `code`: up to three runs, as the kernel rate-limits
/// audit messages it prints.
fn run_until_logged(env: &Env, comm: &str, code: &str) -> Vec<String> {
    let mut lines = Vec::new();
    for _ in 0..3 {
        env.run_ok();
        lines = seccomp_audit(comm, Duration::from_secs(5));
        if lines.iter().any(|l| l.contains(code)) {
            break;
        }
    }
    lines
}

/// A unique busybox name (at most 15 bytes, the kernel's comm): busybox
/// runs argv[1] as the applet when its name starts with "busybox".
fn unique_busybox(env: &Env, tag: &str) -> String {
    let name = format!("busybox{tag}{:04}", std::process::id() % 10000);
    std::os::unix::fs::symlink("busybox", env.rootfs().join("bin").join(&name)).unwrap();
    name
}

#[test]
fn log_action_allows_and_logs() {
    let mut env = Env::new("sc_log");
    let bb = unique_busybox(&env, "L");
    env.set_args(&["sh", "-c", &format!("rm -rf /tmp/logged; {bb} mkdir /tmp/logged && echo made")]);
    env.set(
        "/linux/seccomp",
        json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_LOG"}]}),
    );
    let lines = run_until_logged(&env, &bb, "code=0x7ffc0000");
    assert!(lines.iter().any(|l| l.contains("code=0x7ffc0000")), "no SCMP_ACT_LOG record for {bb}: {lines:?}");
    assert_eq!(env.run_ok().stdout.trim(), "made", "SCMP_ACT_LOG must allow the call");
    assert_no_leftovers(&env);
}

#[test]
fn flag_log_logs_errno_actions() {
    // Without SECCOMP_FILTER_FLAG_LOG an ERRNO action is not logged...
    let mut env = Env::new("sc_flag_nolog");
    let quiet = unique_busybox(&env, "Q");
    env.set_args(&["sh", "-c", &format!("{quiet} mkdir /tmp/x; true")]);
    env.set("/linux/seccomp", profile("deny-mkdir.json"));
    let out = env.run_ok();
    assert!(out.stderr.contains("Operation not permitted"), "{out}");
    assert_eq!(seccomp_audit(&quiet, Duration::from_secs(1)), Vec::<String>::new(), "logged without the flag");
    // ...with it, it is (TSYNC and SPEC_ALLOW are accepted alongside).
    let bb = unique_busybox(&env, "F");
    env.set_args(&["sh", "-c", &format!("{bb} mkdir /tmp/x; true")]);
    let mut sc = profile("deny-mkdir.json");
    sc["flags"] = json!(["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]);
    env.set("/linux/seccomp", sc);
    // The audit record shows the action without its data (the errno).
    let lines = run_until_logged(&env, &bb, "code=0x50000");
    assert!(
        lines.iter().any(|l| l.contains("code=0x50000")),
        "no ERRNO record with SECCOMP_FILTER_FLAG_LOG: {lines:?}"
    );
    assert_no_leftovers(&env);
}

/// (operator, value, valueTwo, modes denied, modes allowed)
type Case = (&'static str, u64, Option<u64>, &'static [&'static str], &'static [&'static str]);

#[test]
fn argument_conditions_every_operator() {
    // chmod MODE /tmp/f: busybox calls fchmodat(AT_FDCWD, path, mode) (or
    // chmod(path, mode)); the rule tests the mode argument.
    let cases: [Case; 7] = [
        ("SCMP_CMP_EQ", 0o777, None, &["777"], &["755", "700"]),
        ("SCMP_CMP_NE", 0o644, None, &["755", "600"], &["644"]),
        ("SCMP_CMP_LT", 0o600, None, &["444", "500"], &["600", "700"]),
        ("SCMP_CMP_LE", 0o600, None, &["444", "600"], &["640", "700"]),
        ("SCMP_CMP_GT", 0o700, None, &["755", "777"], &["700", "600"]),
        ("SCMP_CMP_GE", 0o700, None, &["700", "777"], &["644", "600"]),
        // (mode & 0o002) == 0o002: world-writable modes.
        ("SCMP_CMP_MASKED_EQ", 0o002, Some(0o002), &["777", "646"], &["775", "644"]),
    ];
    for (op, value, value_two, denied, allowed) in cases {
        let mut arg = json!({"index": 2, "value": value, "op": op});
        let mut arg1 = json!({"index": 1, "value": value, "op": op});
        if let Some(v2) = value_two {
            arg["valueTwo"] = json!(v2);
            arg1["valueTwo"] = json!(v2);
        }
        let sc = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["fchmodat", "fchmodat2"], "action": "SCMP_ACT_ERRNO", "args": [arg]},
            {"names": ["chmod"], "action": "SCMP_ACT_ERRNO", "args": [arg1]}]});
        let modes: Vec<&str> = denied.iter().chain(allowed).copied().collect();
        let script = format!(
            "touch /tmp/f; for m in {}; do chmod $m /tmp/f 2>/dev/null && echo $m=ok || echo $m=denied; done",
            modes.join(" ")
        );
        let out = run_with(&format!("sc_arg_{}", op.to_lowercase()), &script, sc);
        let want: Vec<String> =
            denied.iter().map(|m| format!("{m}=denied")).chain(allowed.iter().map(|m| format!("{m}=ok"))).collect();
        assert_eq!(out.stdout.lines().collect::<Vec<_>>(), want, "{op}: {out}");
    }
}

#[test]
fn two_conditions_on_one_argument_are_ored() {
    // As runc: libseccomp 2.5 cannot AND two tests of one argument, so
    // each becomes a rule of its own. kill -USR1 and -USR2 denied, -CONT not.
    let sc = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_ERRNO",
        "args": [{"index": 1, "value": libc::SIGUSR1, "op": "SCMP_CMP_EQ"},
                 {"index": 1, "value": libc::SIGUSR2, "op": "SCMP_CMP_EQ"}]}]});
    let script =
        "trap '' USR1 USR2; for s in USR1 USR2 CONT; do kill -$s $$ 2>/dev/null && echo $s=ok || echo $s=denied; done";
    let out = run_with("sc_same_arg", script, sc);
    assert_eq!(squash(&out.stdout), "USR1=denied\nUSR2=denied\nCONT=ok", "{out}");
    // Conditions on different arguments are ANDed: pid 0 (the group) and USR1.
    let sc = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_ERRNO",
        "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"},
                 {"index": 1, "value": libc::SIGUSR1, "op": "SCMP_CMP_EQ"}]}]});
    let script =
        "trap '' USR1; kill -USR1 $$ && echo self=ok; kill -USR1 0 2>/dev/null && echo group=ok || echo group=denied";
    let out = run_with("sc_and_args", script, sc);
    assert_eq!(squash(&out.stdout), "self=ok\ngroup=denied", "{out}");
}

/// A static x86_64 program that calls getpid with the 64-bit ABI
/// (syscall) and the 32-bit one (int 0x80), printing both results.
const X86_HELPER: &str = r#"
#![no_std]
#![no_main]
use core::arch::asm;
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! { loop {} }
// The prebuilt libcore refers to it; nothing here unwinds.
#[no_mangle]
pub extern "C" fn rust_eh_personality() {}
fn num(buf: &mut [u8], mut at: usize, v: isize) -> usize {
    let mut u = if v < 0 { buf[at] = b'-'; at += 1; (-v) as usize } else { v as usize };
    let mut tmp = [0u8; 20];
    let mut n = 0;
    loop { tmp[n] = b'0' + (u % 10) as u8; n += 1; u /= 10; if u == 0 { break; } }
    while n > 0 { n -= 1; buf[at] = tmp[n]; at += 1; }
    at
}
// Entered with a 16-byte aligned stack and no return address: realign
// for a normal call.
core::arch::global_asm!(".globl _start", "_start:", "and rsp, -16", "call {}", sym entry);
extern "C" fn entry() -> ! {
    unsafe {
        let r64: isize;
        asm!("syscall", inlateout("rax") 39isize => r64, lateout("rcx") _, lateout("r11") _);
        let r32: i32;
        asm!("int 0x80", inlateout("eax") 20i32 => r32);
        let mut buf = [0u8; 64];
        buf[..4].copy_from_slice(b"r64=");
        let mut at = num(&mut buf, 4, if r64 < 0 { r64 } else { 1 });
        buf[at..at + 5].copy_from_slice(b" r32=");
        at = num(&mut buf, at + 5, if r32 < 0 { r32 as isize } else { 1 });
        buf[at] = b'\n';
        asm!("syscall", inlateout("rax") 1isize => _, in("rdi") 1, in("rsi") buf.as_ptr(), in("rdx") at + 1,
             lateout("rcx") _, lateout("r11") _);
        asm!("syscall", in("rax") 231, in("rdi") 0, options(noreturn));
    }
}
"#;

/// Build `source` (a no_std program) with rustc into `<rootfs>/<name>`;
/// false (with the reason printed) when there is no rustc.
fn build_helper(env: &Env, source: &str, name: &str) -> bool {
    let src = env.file(&format!("{name}.rs"));
    fs::write(&src, source).unwrap();
    let built = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .args(["--edition", "2021", "-C", "panic=abort", "-C", "opt-level=1", "-C", "relocation-model=static"])
        .args(["-C", "link-arg=-nostartfiles", "-C", "link-arg=-nostdlib", "-C", "link-arg=-static", "-o"])
        .arg(env.rootfs().join(name))
        .arg(&src)
        .output();
    match built {
        Ok(o) if o.status.success() => true,
        Ok(o) => panic!("building the helper failed:\n{}", String::from_utf8_lossy(&o.stderr)),
        Err(e) => {
            skip(TOOLS, &format!("rustc not found ({e}); needed to build the {name} helper"));
            false
        }
    }
}

#[test]
fn x86_32_bit_syscalls_follow_the_architectures_list() {
    if !cfg!(target_arch = "x86_64") {
        return skip(HOST, "the 32-bit x86 ABI test needs an x86_64 host");
    }
    let mut env = Env::new("sc_x86");
    if !build_helper(&env, X86_HELPER, "x86-getpid") {
        return;
    }
    // Without a filter: both ABIs work (int 0x80 needs IA32 emulation).
    env.set_args(&["/x86-getpid"]);
    let out = env.run_ok();
    if !out.stdout.contains("r32=1") {
        return skip(HOST, &format!("this kernel has no 32-bit x86 emulation ({})", out.stdout.trim()));
    }
    assert_eq!(out.stdout.trim(), "r64=1 r32=1", "{out}");
    let rule = json!([{"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 77}]);
    // With x86 listed, the rule applies to the 32-bit call too.
    env.set(
        "/linux/seccomp",
        json!({"defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"], "syscalls": rule}),
    );
    let out = env.run_ok();
    assert_eq!(out.stdout.trim(), "r64=-77 r32=-77", "{out}");
    // Without it, a 32-bit call is a foreign architecture: killed.
    env.set(
        "/linux/seccomp",
        json!({"defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"], "syscalls": rule}),
    );
    env.run().exits_with(KILLED_BY_SIGSYS);
    assert_no_leftovers(&env);
}

/// mseal (462, Linux 6.10; unknown to Debian 12's libseccomp) with bad
/// flags, and acct (163) with NULL: prints both results.
fn newer_syscall_helper() -> String {
    X86_HELPER
        .replace(
            r#"asm!("syscall", inlateout("rax") 39isize => r64, lateout("rcx") _, lateout("r11") _);"#,
            r#"asm!("syscall", inlateout("rax") 462isize => r64, in("rdi") 0, in("rsi") 0, in("rdx") 0xff, lateout("rcx") _, lateout("r11") _);"#,
        )
        .replace(
            r#"asm!("int 0x80", inlateout("eax") 20i32 => r32);"#,
            r#"let r: isize; asm!("syscall", inlateout("rax") 163isize => r, in("rdi") 0, lateout("rcx") _, lateout("r11") _); r32 = r as i32;"#,
        )
}

#[test]
fn syscalls_newer_than_the_profile_get_enosys() {
    // default.json names mseal, but Debian 12's libseccomp does not know it:
    // it is newer than every call the filter has, so it gets ENOSYS (a C
    // library then falls back) where an unlisted older call (acct) gets the
    // default EPERM.
    if !cfg!(target_arch = "x86_64") {
        return skip(HOST, "the helper is x86_64 code");
    }
    let mut env = Env::new("sc_enosys");
    let helper = newer_syscall_helper();
    assert!(helper.contains("462isize") && helper.contains("163isize"), "helper template changed");
    if !build_helper(&env, &helper, "newer") {
        return;
    }
    env.set_args(&["/newer"]);
    env.set("/linux/seccomp", profile("default.json"));
    let out = env.run_ok();
    // (A libseccomp that knows fchmodat2 lets it through: EBADF.)
    let ok =
        [format!("r64=-{} r32=-{}", libc::ENOSYS, libc::EPERM), format!("r64=-{} r32=-{}", libc::EBADF, libc::EPERM)];
    assert!(ok.contains(&out.stdout.trim().to_string()), "{out}");
    assert_no_leftovers(&env);
}

// ---- SCMP_ACT_NOTIFY --------------------------------------------------------

const NOTIF_RECV: libc::c_ulong = 0xc050_2100;
const NOTIF_SEND: libc::c_ulong = 0xc018_2101;

#[repr(C)]
#[derive(Default)]
struct Notif {
    id: u64,
    pid: u32,
    flags: u32,
    nr: i32,
    arch: u32,
    ip: u64,
    args: [u64; 6],
}

#[repr(C)]
struct NotifResp {
    id: u64,
    val: i64,
    error: i32,
    flags: u32,
}

/// Accept one connection on `l`: the container process state (JSON) and
/// the listener fd.
fn receive_state(l: &UnixListener) -> (Value, OwnedFd) {
    let (mut s, _) = l.accept().unwrap();
    let mut buf = vec![0u8; 65536];
    let mut cbuf = [0u64; 16];
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
    hdr.msg_iov = &mut iov;
    hdr.msg_iovlen = 1;
    hdr.msg_control = cbuf.as_mut_ptr().cast();
    hdr.msg_controllen = std::mem::size_of_val(&cbuf);
    let n = unsafe { libc::recvmsg(s.as_raw_fd(), &mut hdr, libc::MSG_CMSG_CLOEXEC) };
    assert!(n > 0, "recvmsg: {}", std::io::Error::last_os_error());
    let mut fds = Vec::new();
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&hdr);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let count = ((*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize) / 4;
                for i in 0..count {
                    fds.push(OwnedFd::from_raw_fd(std::ptr::read_unaligned((libc::CMSG_DATA(c) as *const i32).add(i))));
                }
            }
            c = libc::CMSG_NXTHDR(&hdr, c);
        }
    }
    let mut json = buf[..n as usize].to_vec();
    s.read_to_end(&mut json).unwrap();
    assert_eq!(fds.len(), 1, "fds sent with the state");
    (serde_json::from_slice(&json).expect("state is JSON"), fds.pop().unwrap())
}

/// Answer every notification with "success, 0" (the syscall is not run)
/// until the filter's processes are gone; returns the syscall numbers seen.
fn answer_all(fd: &OwnedFd) -> Vec<i32> {
    let mut seen = Vec::new();
    loop {
        let mut p = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        if unsafe { libc::poll(&mut p, 1, 10_000) } <= 0 || p.revents & libc::POLLHUP != 0 {
            return seen;
        }
        let mut n = Notif::default();
        if unsafe { libc::ioctl(fd.as_raw_fd(), NOTIF_RECV, &mut n) } != 0 {
            continue;
        }
        seen.push(n.nr);
        let mut r = NotifResp { id: n.id, val: 0, error: 0, flags: 0 };
        unsafe { libc::ioctl(fd.as_raw_fd(), NOTIF_SEND, &mut r) };
    }
}

fn notify_round_trip(name: &str, userns: bool) {
    let mut env =
        Env::sh(name, "mkdir /tmp/notified && echo mkdir-ok; test -d /tmp/notified && echo exists || echo absent");
    if userns {
        // The two-stage setup, where the sync socket also passes credentials.
        let mut ns = env.config()["linux"]["namespaces"].as_array().unwrap().clone();
        ns.push(json!({"type": "user"}));
        env.set("/linux/namespaces", json!(ns));
        env.set("/linux/uidMappings", json!([{"containerID": 0, "hostID": 100000, "size": 65536}]));
        env.set("/linux/gidMappings", json!([{"containerID": 0, "hostID": 100000, "size": 65536}]));
    }
    let sock = env.file("agent.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    env.set(
        "/linux/seccomp",
        json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": sock,
        "listenerMetadata": "agent-meta-1",
        "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", "SECCOMP_FILTER_FLAG_TSYNC"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]}),
    );
    let agent = std::thread::spawn(move || {
        let (state, fd) = receive_state(&listener);
        let seen = answer_all(&fd);
        (state, seen)
    });
    let out = env.run_ok();
    let (state, seen) = agent.join().unwrap();
    assert_eq!(squash(&out.stdout), "mkdir-ok\nabsent", "the agent's answer was not used:\n{out}");
    assert_eq!(state["fds"], json!(["seccompFd"]), "{state}");
    assert_eq!(state["metadata"], "agent-meta-1", "{state}");
    assert_eq!(state["state"]["id"], env.id.as_str(), "{state}");
    assert_eq!(state["state"]["status"], "creating", "{state}");
    assert_eq!(state["state"]["bundle"], env.bundle_str(), "{state}");
    assert!(state["pid"].as_i64().unwrap_or(0) > 0 && state["pid"] == state["state"]["pid"], "{state}");
    assert!(state["ociVersion"].is_string(), "{state}");
    assert!(!seen.is_empty(), "the agent saw no notification");
    assert_no_leftovers(&env);
}

#[test]
fn notify_round_trip_with_an_agent() {
    notify_round_trip("sc_notify", false);
}

#[test]
fn notify_round_trip_in_a_user_namespace() {
    notify_round_trip("sc_notify_userns", true);
}

#[test]
fn notify_without_a_reachable_agent_fails_cleanly() {
    let mut env = Env::new("sc_notify_noagent");
    env.set(
        "/linux/seccomp",
        json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": env.file("nobody.sock"),
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
    );
    env.run().exits_with(1).fails_with(&["linux.seccomp.listenerPath", "nobody.sock"]);
    assert_no_leftovers(&env);
}

// ---- the default profile ----------------------------------------------------

#[test]
fn default_profile_blocks_namespaces_mount_and_reboot() {
    let script = "unshare -U true 2>/dev/null && echo unshare=ok || echo unshare=denied; \
        unshare -n true 2>/dev/null && echo unshare-net=ok || echo unshare-net=denied; \
        mount -t tmpfs t /mnt 2>/dev/null && echo mount=ok || echo mount=denied; \
        swapon /dev/null 2>/dev/null && echo swapon=ok || echo swapon=denied; \
        reboot -f 2>/dev/null; echo still-here; grep ^Seccomp: /proc/self/status";
    // Every capability: only the profile stands in the way.
    let out = run_with("sc_default_denies", script, profile("default.json"));
    assert!(out.success(), "{out}");
    assert_eq!(
        squash(&out.stdout),
        "unshare=denied\nunshare-net=denied\nmount=denied\nswapon=denied\nstill-here\nSeccomp: 2",
        "{out}"
    );
}

#[test]
fn default_profile_keeps_a_busybox_session_working() {
    let script = "set -e; ls / >/dev/null; cat /etc/passwd >/dev/null; \
        printf 'for i in 1 2 3; do echo $i; done\\n' > /tmp/s.sh; sh /tmp/s.sh | tr '\\n' ' '; echo; \
        mkdir -p /tmp/d/e; touch /tmp/d/e/f; mv /tmp/d/e/f /tmp/d/g; ln -s g /tmp/d/h; cat /tmp/d/h; rm -r /tmp/d; \
        date +%Y >/dev/null; sleep 0.01; ps >/dev/null; wc -l < /proc/self/status >/dev/null; \
        (echo sub) | cat; echo x | sed s/x/y/; id -u; \
        ip link set lo up; ping -c 1 -W 2 127.0.0.1 >/dev/null && echo ping=ok";
    let mut env = Env::sh("sc_default_session", script);
    env.set("/linux/seccomp", profile("default.json"));
    env.set("/process/user", json!({"uid": 0, "gid": 0}));
    let caps = ["CAP_NET_RAW", "CAP_NET_ADMIN", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_KILL"];
    env.set("/process/capabilities", json!({"bounding": caps, "permitted": caps, "effective": caps}));
    let out = env.run_ok();
    assert_eq!(squash(&out.stdout), "1 2 3\nsub\ny\n0\nping=ok", "{out}");
    assert_no_leftovers(&env);
}

#[test]
fn filter_loads_without_no_new_privileges_for_a_non_root_user() {
    // Without no_new_privs seccomp(2) needs CAP_SYS_ADMIN, which a non-root
    // user without capabilities no longer has at execve: berth loads the
    // filter before the capability drop and the uid switch.
    let mut env = Env::sh(
        "sc_no_nnp",
        "mkdir /tmp/x 2>/dev/null || echo denied; grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status",
    );
    env.set("/process/noNewPrivileges", json!(false));
    env.set("/process/user", json!({"uid": 1000, "gid": 1000}));
    env.set("/process/capabilities", json!({"bounding": [], "permitted": [], "effective": []}));
    env.set("/linux/seccomp", profile("deny-mkdir.json"));
    let out = env.run_ok();
    assert_eq!(squash(&out.stdout), "denied\nNoNewPrivs: 0\nSeccomp: 2", "{out}");
    // And with it, loaded as the last step before execve.
    env.set("/process/noNewPrivileges", json!(true));
    let out = env.run_ok();
    assert_eq!(squash(&out.stdout), "denied\nNoNewPrivs: 1\nSeccomp: 2", "{out}");
    assert_no_leftovers(&env);
}

#[test]
fn unknown_syscall_names_are_skipped() {
    let sc = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["no_such_syscall_at_all", "mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]});
    let out = run_with("sc_unknown_name", "mkdir /tmp/x 2>/dev/null || echo denied", sc);
    assert_eq!(out.stdout.trim(), "denied", "{out}");
}

// ---- errors and the cache -----------------------------------------------------

#[test]
fn bad_profiles_fail_with_the_json_path_and_leave_nothing() {
    let cases = [
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_KILL", "errnoRet": 1}]}),
            "linux.seccomp.syscalls[0].errnoRet",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
            "linux.seccomp.listenerPath",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_ERRNO",
            "args": [{"index": 7, "value": 1, "op": "SCMP_CMP_EQ"}]}]}),
            "linux.seccomp.syscalls[0].args[0].index",
        ),
        (json!({"defaultAction": "SCMP_ACT_NOPE"}), "linux.seccomp.defaultAction"),
    ];
    for (i, (sc, path)) in cases.into_iter().enumerate() {
        let mut env = Env::new(&format!("sc_bad{i}"));
        env.set("/linux/seccomp", sc);
        env.run().exits_with(1).fails_with(&["config.json", path]);
        assert_no_leftovers(&env);
    }
}

#[test]
fn compiled_filters_are_cached_and_a_bad_entry_is_replaced() {
    let mut env = Env::sh("sc_cache", "mkdir /tmp/x 2>/dev/null || echo denied");
    env.set("/linux/seccomp", profile("default.json"));
    let mut env2 = env.config().clone();
    env2["linux"]["seccomp"] = profile("deny-mkdir.json");
    env.run_ok();
    let dir = env.root.join("@seccomp-cache");
    let entries = || -> Vec<PathBuf> { fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect() };
    assert_eq!(entries().len(), 1, "one entry after one profile");
    let entry = entries().pop().unwrap();
    assert_eq!(&fs::read(&entry).unwrap()[..8], b"BERTHBPF");
    // A garbled entry is never used: the profile is compiled again.
    fs::write(&entry, b"BERTHBPF garbage").unwrap();
    env.run_ok();
    assert_eq!(&fs::read(&entry).unwrap()[..8], b"BERTHBPF");
    assert!(fs::read(&entry).unwrap().len() > 100, "entry not rewritten");
    // Another profile, another entry; each container gets its own filter.
    *env.config_mut() = env2;
    env.write_config();
    let out = env.run_ok();
    assert_eq!(out.stdout.trim(), "denied", "{out}");
    assert_eq!(entries().len(), 2);
    assert_no_leftovers(&env);
}

/// `exec`'d processes get the container's filter too, with and without
/// noNewPrivileges (the filter is loaded at a different point for each).
#[test]
fn exec_gets_the_containers_filter() {
    for nnp in [true, false] {
        let mut env = Env::sh(&format!("sc_exec_{nnp}"), SLEEPER);
        env.set("/linux/seccomp", profile("deny-mkdir.json"));
        env.set("/process/noNewPrivileges", json!(nnp));
        env.run_detached();
        let out = env.berth(&["exec", &env.id.clone(), "sh", "-c", "mkdir /tmp/x; echo rc=$?; grep Seccomp: /proc/self/status"]);
        assert!(out.stdout.contains("rc=1"), "mkdir was not denied in exec (nnp {nnp}):\n{out}");
        assert!(out.stdout.contains("Seccomp:\t2"), "exec'd process has no filter (nnp {nnp}):\n{out}");
        env.delete_force().ok();
        assert_no_leftovers(&env);
    }
}

/// default.json as a profile written before Linux 5.9 would be: an ERRNO
/// default without close_range and the other calls added since.
fn pre_5_9_allowlist() -> Value {
    const NEWER: &[&str] = &[
        "close_range", "openat2", "faccessat2", "pidfd_open", "pidfd_getfd", "pidfd_send_signal", "clone3",
        "epoll_pwait2", "mount_setattr", "process_madvise", "landlock_create_ruleset", "landlock_add_rule",
        "landlock_restrict_self", "memfd_secret", "futex_waitv", "process_mrelease", "set_mempolicy_home_node",
        "cachestat", "fchmodat2", "map_shadow_stack",
    ];
    let mut p = profile("default.json");
    assert_eq!(p["defaultAction"], "SCMP_ACT_ERRNO", "default.json changed: this test needs an allowlist");
    let rules = p["syscalls"].as_array_mut().unwrap();
    for r in rules.iter_mut() {
        if let Some(n) = r["names"].as_array_mut() {
            n.retain(|v| !NEWER.contains(&v.as_str().unwrap_or("")));
        }
    }
    rules.retain(|r| r["names"].as_array().is_some_and(|n| !n.is_empty()));
    p
}

/// Under such a profile (issue 13.1), without noNewPrivileges the filter
/// is loaded before the uid switch, and berth's own fd clean-up must not
/// depend on it: `run` and `create` + `start` work, as root with
/// capabilities and as a user without, and only stdio reaches the program.
#[test]
fn start_under_an_allowlist_without_close_range() {
    let script = "grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status; echo fds $(ls /proc/self/fd)";
    let caps = ["CAP_CHOWN", "CAP_KILL", "CAP_SETUID", "CAP_SETGID", "CAP_NET_BIND_SERVICE"];
    for nnp in [false, true] {
        for uid in [0, 1000] {
            let mut env = Env::sh(&format!("sc_old_profile_{nnp}_{uid}"), script);
            env.set("/linux/seccomp", pre_5_9_allowlist());
            env.set("/process/noNewPrivileges", json!(nnp));
            env.set("/process/user", json!({"uid": uid, "gid": uid}));
            let caps = if uid == 0 { &caps[..] } else { &[] };
            env.set("/process/capabilities", json!({"bounding": caps, "permitted": caps, "effective": caps}));
            let want = format!("NoNewPrivs: {}\nSeccomp: 2\nfds 0 1 2 3", nnp as u8);
            let out = env.run_ok();
            assert_eq!(squash(&out.stdout), want, "run, noNewPrivileges {nnp}, uid {uid}:\n{out}");
            let created = env.create();
            env.start();
            env.wait_status("stopped", SHORT);
            assert_eq!(squash(&created.stdout_now()), want, "create + start, noNewPrivileges {nnp}, uid {uid}");
            env.delete().ok();
            assert_no_leftovers(&env);
        }
    }
}

/// `exec` under the same profile: close_range refused after the filter is
/// loaded falls back to /proc/self/fd.
#[test]
fn exec_under_an_allowlist_without_close_range() {
    for nnp in [false, true] {
        let mut env = Env::sh(&format!("sc_old_profile_exec_{nnp}"), SLEEPER);
        env.set("/linux/seccomp", pre_5_9_allowlist());
        env.set("/process/noNewPrivileges", json!(nnp));
        env.run_detached();
        let out = env.berth(&["exec", &env.id.clone(), "sh", "-c", "echo fds $(ls /proc/self/fd)"]).ok();
        assert_eq!(out.stdout.trim(), "fds 0 1 2 3", "noNewPrivileges {nnp}:\n{out}");
        env.delete_force().ok();
        assert_no_leftovers(&env);
    }
}
