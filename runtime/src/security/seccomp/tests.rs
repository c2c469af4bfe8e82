use oci_spec::runtime::LinuxSeccomp;
use serde_json::json;

use super::profile::{self, FLAG_LOG, FLAG_NEW_LISTENER, FLAG_TSYNC, FLAG_TSYNC_ESRCH, FLAG_WAIT_KILLABLE_RECV};
use super::{cache, default_profile_json, Filter};

fn parse(v: serde_json::Value) -> LinuxSeccomp {
    serde_json::from_value(v).expect("valid LinuxSeccomp")
}

fn fault(v: serde_json::Value) -> profile::Fault {
    profile::check(&parse(v)).expect_err("check should fail")
}

#[test]
fn default_profile_parses_checks_and_compiles() {
    let s: LinuxSeccomp = serde_json::from_str(default_profile_json()).expect("default.json is a LinuxSeccomp");
    let c = profile::check(&s).expect("default.json checks");
    assert!(!c.notify);
    assert_eq!(c.flags, 0);
    let bpf = profile::compile(&s).expect("default.json compiles");
    assert_eq!(bpf.len() % 8, 0);
    assert!(bpf.len() / 8 > 50, "suspiciously small filter: {} instructions", bpf.len() / 8);
    let t = std::time::Instant::now();
    for _ in 0..5 {
        profile::compile(&s).unwrap();
    }
    eprintln!("default.json: {} BPF instructions, compiled in {:?}", bpf.len() / 8, t.elapsed() / 5);
}

#[test]
fn errno_ret_only_with_errno_or_trace() {
    let f = fault(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_KILL", "errnoRet": 5}]}));
    assert_eq!(f.path, "linux.seccomp.syscalls[0].errnoRet");
    assert!(f.msg.contains("SCMP_ACT_ERRNO"), "{}", f.msg);
    let f = fault(json!({"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 3}));
    assert_eq!(f.path, "linux.seccomp.defaultErrnoRet");
    let ok = parse(json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
        "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_TRACE", "errnoRet": 7}]}));
    profile::check(&ok).unwrap();
    profile::compile(&ok).unwrap();
}

#[test]
fn errno_ret_out_of_range() {
    let f = fault(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 70000}]}));
    assert_eq!(f.path, "linux.seccomp.syscalls[0].errnoRet");
}

#[test]
fn arg_index_and_names_are_checked() {
    let f = fault(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}));
    assert_eq!(f.path, "linux.seccomp.syscalls[0].args[0].index");
    let f = fault(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [], "action": "SCMP_ACT_ERRNO"}]}));
    assert_eq!(f.path, "linux.seccomp.syscalls[0].names");
}

#[test]
fn notify_needs_listener_path_and_sets_new_listener() {
    let f = fault(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}));
    assert_eq!(f.path, "linux.seccomp.listenerPath");
    let f = fault(json!({"defaultAction": "SCMP_ACT_NOTIFY"}));
    assert_eq!(f.path, "linux.seccomp.defaultAction");
    let f = fault(json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerMetadata": "x"}));
    assert_eq!(f.path, "linux.seccomp.listenerMetadata");
    let f = fault(json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/a.sock",
        "syscalls": [{"names": ["mkdir", "sendmsg"], "action": "SCMP_ACT_NOTIFY"}]}));
    assert_eq!(f.path, "linux.seccomp.syscalls[0].names[1]");
    let c = profile::check(&parse(json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/a.sock",
        "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]})))
    .unwrap();
    assert!(c.notify);
    assert_eq!(c.flags, FLAG_TSYNC | FLAG_TSYNC_ESRCH | FLAG_NEW_LISTENER | FLAG_WAIT_KILLABLE_RECV);
}

#[test]
fn flags_map_to_kernel_bits() {
    let c = profile::check(&parse(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]})))
    .unwrap();
    // WAIT_KILLABLE_RECV means nothing without a listener: dropped.
    assert_eq!(c.flags, FLAG_LOG);
}

#[test]
fn unknown_names_are_skipped_and_same_as_default_left_out() {
    let s = parse(json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["no_such_syscall", "getpid"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}));
    profile::check(&s).unwrap();
    profile::compile(&s).unwrap();
}

#[test]
fn same_argument_twice_compiles_as_separate_rules() {
    // libseccomp 2.5 rejects two comparisons of one argument in one rule.
    let s = parse(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "args": [
            {"index": 1, "value": 10, "op": "SCMP_CMP_EQ"}, {"index": 1, "value": 12, "op": "SCMP_CMP_EQ"}]},
        {"names": ["fchmodat"], "action": "SCMP_ACT_ERRNO", "args": [
            {"index": 2, "value": 2, "valueTwo": 2, "op": "SCMP_CMP_MASKED_EQ"},
            {"index": 0, "value": 5, "op": "SCMP_CMP_GE"}]}]}));
    profile::check(&s).unwrap();
    profile::compile(&s).unwrap();
}

#[test]
fn cache_entries_round_trip_and_reject_anything_else() {
    let key = cache::key(b"{\"defaultAction\":\"SCMP_ACT_ALLOW\"}");
    let bpf: Vec<u8> = (0..64u8).collect();
    let entry = cache::encode(&key, &bpf);
    assert_eq!(cache::parse(&entry, &key), Some(&bpf[..]));
    // another key, truncated, extended, corrupted header, odd BPF length
    let other = cache::key(b"{}");
    assert_eq!(cache::parse(&entry, &other), None);
    assert_eq!(cache::parse(&entry[..entry.len() - 1], &key), None);
    let mut longer = entry.clone();
    longer.push(0);
    assert_eq!(cache::parse(&longer, &key), None);
    let mut bad = entry.clone();
    bad[0] ^= 1;
    assert_eq!(cache::parse(&bad, &key), None);
    assert_eq!(cache::parse(&cache::encode(&key, &bpf[..12]), &key), None);
    assert_eq!(cache::parse(&cache::encode(&key, &[]), &key), None);
}

#[test]
fn cache_store_and_lookup() {
    let dir = std::env::temp_dir().join(format!("berth-seccomp-cache-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let key = cache::key(b"profile");
    assert_eq!(cache::lookup(&dir, &key), None);
    cache::store(&dir, &key, &[1, 2, 3, 4, 5, 6, 7, 8]).unwrap();
    assert_eq!(cache::lookup(&dir, &key), Some(vec![1, 2, 3, 4, 5, 6, 7, 8]));
    // A garbled entry is a miss.
    for e in std::fs::read_dir(&dir).unwrap() {
        std::fs::write(e.unwrap().path(), b"garbage").unwrap();
    }
    assert_eq!(cache::lookup(&dir, &key), None);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn filter_from_bpf_bytes() {
    let s = parse(json!({"defaultAction": "SCMP_ACT_ALLOW"}));
    let c = profile::check(&s).unwrap();
    let bpf = profile::compile(&s).unwrap();
    let f = Filter::new(&bpf, c);
    assert_eq!(f.len(), bpf.len() / 8);
    assert!(!f.notify());
}

/// Run a classic BPF program of the instructions the ENOSYS stub uses
/// (ld abs, jeq/jgt/jge k, ret k) on (nr, arch); None when it runs past
/// its end (into the program it was put before).
fn run_stub(prog: &[u8], nr: u32, arch: u32) -> Option<u32> {
    let mut pc = 0;
    let mut a = 0u32;
    while pc * 8 < prog.len() {
        let i = &prog[pc * 8..pc * 8 + 8];
        let (code, jt, jf, k) = (
            u16::from_ne_bytes([i[0], i[1]]),
            i[2] as usize,
            i[3] as usize,
            u32::from_ne_bytes([i[4], i[5], i[6], i[7]]),
        );
        pc += 1;
        match code {
            0x20 => a = if k == 0 { nr } else { arch },
            0x15 => pc += if a == k { jt } else { jf },
            0x25 => pc += if a > k { jt } else { jf },
            0x35 => pc += if a >= k { jt } else { jf },
            0x06 => return Some(k),
            c => panic!("unexpected instruction {c:#x}"),
        }
    }
    None
}

#[test]
fn enosys_stub_for_syscalls_newer_than_the_profile() {
    use libseccomp::ScmpArch;
    let s = parse(json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["read", "write", "futex_waitv", "_llseek"], "action": "SCMP_ACT_ALLOW"}]}));
    let archs = [ScmpArch::X8664, ScmpArch::X86, ScmpArch::X32];
    let stub = profile::enosys_stub(&s, &archs);
    const X86_64: u32 = 0xc000_003e;
    const I386: u32 = 0x4000_0003;
    let enosys = Some(0x0005_0000 | libc::ENOSYS as u32);
    // x86_64: futex_waitv is 449, the highest named.
    assert_eq!(run_stub(&stub, 0, X86_64), None);
    assert_eq!(run_stub(&stub, 449, X86_64), None);
    assert_eq!(run_stub(&stub, 450, X86_64), enosys);
    assert_eq!(run_stub(&stub, 1000, X86_64), enosys);
    // x32: numbers with bit 30 set, their own limit.
    assert_eq!(run_stub(&stub, 0x4000_0000 + 449, X86_64), None);
    assert_eq!(run_stub(&stub, 0x4000_0000 + 600, X86_64), enosys);
    // i386: _llseek is 140, futex_waitv 449.
    assert_eq!(run_stub(&stub, 449, I386), None);
    assert_eq!(run_stub(&stub, 451, I386), enosys);
    // Another architecture is left to libseccomp's program.
    assert_eq!(run_stub(&stub, 5000, 0xc000_00b7), None);
    // No x32 in the filter: x32 numbers go to libseccomp's program.
    let stub = profile::enosys_stub(&s, &[ScmpArch::X8664]);
    assert_eq!(run_stub(&stub, 0x4000_0000 + 600, X86_64), None);
    assert_eq!(run_stub(&stub, 600, X86_64), enosys);
    // An allowing default needs no stub.
    let s = parse(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO"}]}),
    );
    assert!(profile::enosys_stub(&s, &archs).is_empty());
}

