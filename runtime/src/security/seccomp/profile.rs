//! `linux.seccomp` → a libseccomp filter → classic BPF.
//!
//! [`check`] validates the object and works out the seccomp(2) flags; it is
//! cheap and runs on every create, cached filter or not. [`compile`] builds
//! the filter with libseccomp and exports the BPF program; it costs
//! milliseconds for a large profile, which is why [`super::cache`] exists.
//!
//! Semantics follow runc, so profiles written for runc behave the same:
//!
//! * `SCMP_ACT_KILL` is `SCMP_ACT_KILL_THREAD`; `errnoRet` (and
//!   `defaultErrnoRet`) default to EPERM and are only valid with
//!   `SCMP_ACT_ERRNO` and `SCMP_ACT_TRACE`.
//! * A rule whose action equals the default action is left out (libseccomp
//!   refuses it, and it changes nothing).
//! * A syscall name libseccomp does not know is skipped with a debug log.
//! * The conditions of one rule are ANDed, except when two of them test the
//!   same argument: libseccomp 2.5 cannot express that in one rule, so each
//!   condition then becomes a rule of its own (ORed), as runc does.
//! * `SCMP_CMP_MASKED_EQ` takes the mask from `value` and the datum from
//!   `valueTwo`: `(arg & value) == valueTwo`.

use std::io::{Read, Seek};
use std::os::fd::{FromRawFd, OwnedFd};

use libseccomp::{ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction as A, LinuxSeccompFilterFlag as F, LinuxSeccompOperator as Op,
};

/// A problem at a JSON path under `linux.seccomp` (the path is complete,
/// e.g. `linux.seccomp.syscalls[2].errnoRet`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub path: String,
    pub msg: String,
}

fn fault(path: impl Into<String>, msg: impl Into<String>) -> Fault {
    Fault { path: path.into(), msg: msg.into() }
}

// seccomp(2) flags (<linux/seccomp.h>).
pub const FLAG_TSYNC: u32 = 1;
pub const FLAG_LOG: u32 = 2;
pub const FLAG_SPEC_ALLOW: u32 = 4;
pub const FLAG_NEW_LISTENER: u32 = 8;
pub const FLAG_TSYNC_ESRCH: u32 = 16;
pub const FLAG_WAIT_KILLABLE_RECV: u32 = 32;

/// Syscalls init itself makes between loading a NOTIFY filter and handing
/// the listener to berth: notifying them would wait for an agent that does
/// not have the listener yet.
const INIT_HANDOFF_SYSCALLS: [&str; 4] = ["sendmsg", "sendto", "recvmsg", "recvfrom"];

/// What [`check`] learns: the flags for seccomp(2) and whether a listener
/// must be handed to `listenerPath`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    pub flags: u32,
    pub notify: bool,
}

const EPERM: u32 = libc::EPERM as u32;

/// The libseccomp action for an OCI action and its errnoRet; `at` is the
/// JSON path of the object holding both (`linux.seccomp` or a rule).
fn action(a: A, errno: Option<u32>, at: &str, errno_field: &str) -> Result<ScmpAction, Fault> {
    let ret = |what: &str| -> Result<u16, Fault> {
        let v = errno.unwrap_or(EPERM);
        u16::try_from(v)
            .map_err(|_| fault(format!("{at}.{errno_field}"), format!("{v} is too large for {what} (at most 65535)")))
    };
    if errno.is_some() && !matches!(a, A::ScmpActErrno | A::ScmpActTrace) {
        return Err(fault(
            format!("{at}.{errno_field}"),
            format!("only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not {a}"),
        ));
    }
    Ok(match a {
        A::ScmpActKill | A::ScmpActKillThread => ScmpAction::KillThread,
        A::ScmpActKillProcess => ScmpAction::KillProcess,
        A::ScmpActTrap => ScmpAction::Trap,
        A::ScmpActErrno => ScmpAction::Errno(i32::from(ret("an errno")?)),
        A::ScmpActTrace => ScmpAction::Trace(ret("a trace message")?),
        A::ScmpActNotify => ScmpAction::Notify,
        A::ScmpActLog => ScmpAction::Log,
        A::ScmpActAllow => ScmpAction::Allow,
    })
}

fn arch(a: Arch) -> ScmpArch {
    match a {
        Arch::ScmpArchNative => ScmpArch::Native,
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchArm => ScmpArch::Arm,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        Arch::ScmpArchMips => ScmpArch::Mips,
        Arch::ScmpArchMips64 => ScmpArch::Mips64,
        Arch::ScmpArchMips64n32 => ScmpArch::Mips64N32,
        Arch::ScmpArchMipsel => ScmpArch::Mipsel,
        Arch::ScmpArchMipsel64 => ScmpArch::Mipsel64,
        Arch::ScmpArchMipsel64n32 => ScmpArch::Mipsel64N32,
        Arch::ScmpArchPpc => ScmpArch::Ppc,
        Arch::ScmpArchPpc64 => ScmpArch::Ppc64,
        Arch::ScmpArchPpc64le => ScmpArch::Ppc64Le,
        Arch::ScmpArchS390 => ScmpArch::S390,
        Arch::ScmpArchS390x => ScmpArch::S390X,
        Arch::ScmpArchParisc => ScmpArch::Parisc,
        Arch::ScmpArchParisc64 => ScmpArch::Parisc64,
        Arch::ScmpArchRiscv64 => ScmpArch::Riscv64,
        Arch::ScmpArchLoongarch64 => ScmpArch::Loongarch64,
        Arch::ScmpArchM68k => ScmpArch::M68k,
        Arch::ScmpArchSh => ScmpArch::Sh,
        Arch::ScmpArchSheb => ScmpArch::Sheb,
    }
}

/// Whether a process of architecture `a` can run on a `native` kernel. A
/// profile lists every architecture it has rules for (default.json lists
/// x86 and Arm ones); the kernel only ever reports its own ABIs, so a
/// foreign architecture's part of the filter would be dead code that costs
/// compile time. Unknown combinations are kept.
fn runs_on(native: ScmpArch, a: ScmpArch) -> bool {
    use ScmpArch::*;
    match native {
        X8664 => matches!(a, Native | X8664 | X86 | X32),
        Aarch64 => matches!(a, Native | Aarch64 | Arm),
        _ => true,
    }
}

/// Validate `s` and work out the seccomp(2) flags. Everything [`compile`]
/// could reject about the object's shape is caught here, so a cached filter
/// is never used for a config that would not compile.
pub fn check(s: &LinuxSeccomp) -> Result<Checked, Fault> {
    let default = s.default_action();
    if default == A::ScmpActNotify {
        return Err(fault(
            "linux.seccomp.defaultAction",
            "SCMP_ACT_NOTIFY cannot be the default action (it would stop the container's init before the agent has the listener)",
        ));
    }
    action(default, s.default_errno_ret(), "linux.seccomp", "defaultErrnoRet").map_err(|f| {
        if f.path.ends_with("defaultErrnoRet") {
            f
        } else {
            fault("linux.seccomp.defaultAction", f.msg)
        }
    })?;
    let mut notify = false;
    for (i, r) in s.syscalls().iter().flatten().enumerate() {
        let at = format!("linux.seccomp.syscalls[{i}]");
        if r.names().is_empty() {
            return Err(fault(format!("{at}.names"), "must contain at least one syscall name"));
        }
        for (j, n) in r.names().iter().enumerate() {
            if n.is_empty() || n.contains('\0') {
                return Err(fault(format!("{at}.names[{j}]"), format!("invalid syscall name {n:?}")));
            }
        }
        action(r.action(), r.errno_ret(), &at, "errnoRet")?;
        if r.action() == A::ScmpActNotify {
            notify = true;
            if let Some((j, n)) =
                r.names().iter().enumerate().find(|(_, n)| INIT_HANDOFF_SYSCALLS.contains(&n.as_str()))
            {
                return Err(fault(
                    format!("{at}.names[{j}]"),
                    format!("SCMP_ACT_NOTIFY on {n} is not supported: berth's init uses it to hand the listener over"),
                ));
            }
        }
        for (k, a) in r.args().iter().flatten().enumerate() {
            if a.index() >= 6 {
                return Err(fault(format!("{at}.args[{k}].index"), format!("{} is out of range (0 to 5)", a.index())));
            }
        }
    }
    if s.listener_metadata().is_some() && s.listener_path().is_none() {
        return Err(fault("linux.seccomp.listenerMetadata", "must not be set without listenerPath"));
    }
    if notify {
        match s.listener_path() {
            None => return Err(fault("linux.seccomp.listenerPath", "required when a rule uses SCMP_ACT_NOTIFY")),
            Some(p) if !p.is_absolute() => {
                return Err(fault("linux.seccomp.listenerPath", format!("{} is not an absolute path", p.display())))
            }
            Some(_) => {}
        }
    }
    let mut flags = 0;
    for f in s.flags().iter().flatten() {
        flags |= match f {
            F::SeccompFilterFlagTsync => FLAG_TSYNC,
            F::SeccompFilterFlagLog => FLAG_LOG,
            F::SeccompFilterFlagSpecAllow => FLAG_SPEC_ALLOW,
            F::SeccompFilterFlagWaitKillableRecv => FLAG_WAIT_KILLABLE_RECV,
        };
    }
    if notify {
        flags |= FLAG_NEW_LISTENER;
        if flags & FLAG_TSYNC != 0 {
            // The kernel takes TSYNC with NEW_LISTENER only in this form.
            flags |= FLAG_TSYNC_ESRCH;
        }
    } else if flags & FLAG_WAIT_KILLABLE_RECV != 0 {
        // Only meaningful for notifications; the kernel rejects it alone.
        log::debug!(
            "linux.seccomp.flags: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV ignored: no rule uses SCMP_ACT_NOTIFY"
        );
        flags &= !FLAG_WAIT_KILLABLE_RECV;
    }
    Ok(Checked { flags, notify })
}

fn cmp(op: Op, index: u32, value: u64, value_two: Option<u64>) -> ScmpArgCompare {
    let (op, datum) = match op {
        Op::ScmpCmpNe => (ScmpCompareOp::NotEqual, value),
        Op::ScmpCmpLt => (ScmpCompareOp::Less, value),
        Op::ScmpCmpLe => (ScmpCompareOp::LessOrEqual, value),
        Op::ScmpCmpEq => (ScmpCompareOp::Equal, value),
        Op::ScmpCmpGe => (ScmpCompareOp::GreaterEqual, value),
        Op::ScmpCmpGt => (ScmpCompareOp::Greater, value),
        Op::ScmpCmpMaskedEq => (ScmpCompareOp::MaskedEqual(value), value_two.unwrap_or(0)),
    };
    ScmpArgCompare::new(index, op, datum)
}

fn lib_err(path: String, what: &str, e: libseccomp::error::SeccompError) -> Fault {
    fault(path, format!("libseccomp: {what}: {e}"))
}

/// Build the filter with libseccomp and export it as classic BPF (a byte
/// string of `struct sock_filter`). Call [`check`] first.
pub fn compile(s: &LinuxSeccomp) -> Result<Vec<u8>, Fault> {
    let default = action(s.default_action(), s.default_errno_ret(), "linux.seccomp", "defaultErrnoRet")?;
    let mut ctx = ScmpFilterContext::new(default).map_err(|e| lib_err("linux.seccomp".into(), "create filter", e))?;
    // berth sets no_new_privs itself when the config asks; libseccomp would
    // set it on every load otherwise. (The filter is exported, not loaded by
    // libseccomp, but keep the context honest.)
    ctx.set_ctl_nnp(false).map_err(|e| lib_err("linux.seccomp".into(), "clear NNP", e))?;
    // A binary tree of syscall numbers instead of a linear list: every
    // syscall the container makes walks O(log n) instructions, not O(n).
    ctx.set_ctl_optimize(2).map_err(|e| lib_err("linux.seccomp".into(), "set optimize level 2", e))?;
    let native = ScmpArch::native();
    let mut archs = vec![native];
    for (i, a) in s.architectures().iter().flatten().enumerate() {
        let a = arch(*a);
        if !runs_on(native, a) {
            log::debug!("linux.seccomp.architectures[{i}]: {a:?} cannot run on this {native:?} kernel; left out");
            continue;
        }
        if ctx.is_arch_present(a).unwrap_or(false) {
            continue;
        }
        archs.push(a);
        ctx.add_arch(a).map_err(|e| lib_err(format!("linux.seccomp.architectures[{i}]"), &format!("add {a:?}"), e))?;
    }
    let default_raw = s.default_action().as_u32(s.default_errno_ret());
    for (i, r) in s.syscalls().iter().flatten().enumerate() {
        let at = format!("linux.seccomp.syscalls[{i}]");
        if r.action().as_u32(r.errno_ret()) == default_raw {
            log::debug!("{at}: same action as defaultAction; left out");
            continue;
        }
        let act = action(r.action(), r.errno_ret(), &at, "errnoRet")?;
        let args = r.args().as_deref().unwrap_or(&[]);
        let conds: Vec<ScmpArgCompare> =
            args.iter().map(|a| cmp(a.op(), a.index() as u32, a.value(), a.value_two())).collect();
        let mut seen = [0u8; 6];
        for a in args {
            seen[a.index()] += 1;
        }
        let split = seen.iter().any(|&n| n > 1);
        for (j, name) in r.names().iter().enumerate() {
            let nr = match ScmpSyscall::from_name(name) {
                Ok(nr) => nr,
                Err(_) => {
                    log::debug!("{at}.names[{j}]: syscall {name:?} is unknown to libseccomp; skipped");
                    continue;
                }
            };
            let what = format!("add rule for {name}");
            if split {
                for c in &conds {
                    ctx.add_rule_conditional(act, nr, std::slice::from_ref(c))
                        .map_err(|e| lib_err(format!("{at}.names[{j}]"), &what, e))?;
                }
            } else {
                ctx.add_rule_conditional(act, nr, &conds).map_err(|e| lib_err(format!("{at}.names[{j}]"), &what, e))?;
            }
        }
    }
    let bpf = export(&ctx)?;
    let stub = enosys_stub(s, &archs);
    if stub.is_empty() {
        return Ok(bpf);
    }
    if (stub.len() + bpf.len()) / 8 > 4096 {
        return Err(fault("linux.seccomp", "the filter is longer than the kernel's 4096 instructions"));
    }
    Ok([stub, bpf].concat())
}

/// The audit architecture value the kernel puts in `seccomp_data.arch`.
fn audit_arch(a: ScmpArch) -> Option<u32> {
    match a {
        ScmpArch::X8664 | ScmpArch::X32 => Some(0xc000_003e),
        ScmpArch::X86 => Some(0x4000_0003),
        ScmpArch::Aarch64 => Some(0xc000_00b7),
        ScmpArch::Arm => Some(0x4000_0028),
        _ => None,
    }
}

const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// As runc: system calls newer than every one the profile names (per
/// architecture) fail with ENOSYS instead of the default action, so that a
/// C library falls back to an older call, as it would on an older kernel.
/// (The profile's author cannot have meant to deny a call they did not
/// know; names libseccomp does not know count as unknown too.) A few
/// classic BPF instructions put before libseccomp's program:
///
/// ```text
///     ld  [arch]
///     jeq X86_64, 0, next      ; one block per architecture
///     ld  [nr]
///     jge X32_BIT, x32, 0      ; x86_64 only
///     jgt MAX, enosys, end
/// x32: jgt MAX_X32, enosys, end
/// next: ...
/// enosys: ret ERRNO(ENOSYS)
/// end:  (libseccomp's program)
/// ```
///
/// Not made when the default action allows (or only logs) the call.
pub(super) fn enosys_stub(s: &LinuxSeccomp, archs: &[ScmpArch]) -> Vec<u8> {
    if matches!(s.default_action(), A::ScmpActAllow | A::ScmpActLog) {
        return Vec::new();
    }
    let names: Vec<&str> = s.syscalls().iter().flatten().flat_map(|r| r.names().iter().map(String::as_str)).collect();
    let max = |a: ScmpArch| -> Option<u32> {
        names
            .iter()
            .filter_map(|n| ScmpSyscall::from_name_by_arch(n, a).ok())
            .map(i32::from)
            .filter(|nr| *nr >= 0)
            .map(|nr| nr as u32)
            .max()
    };
    // (audit arch, max for the native ABI, max for x32 if present)
    let mut blocks: Vec<(u32, Option<u32>, Option<u32>)> = Vec::new();
    for &a in archs {
        let Some(token) = audit_arch(a) else { continue };
        let m = max(a);
        match blocks.iter_mut().find(|b| b.0 == token) {
            Some(b) if a == ScmpArch::X32 => b.2 = m,
            Some(b) => b.1 = m,
            None if a == ScmpArch::X32 => blocks.push((token, None, m)),
            None => blocks.push((token, m, None)),
        }
    }
    blocks.retain(|b| b.1.is_some() || b.2.is_some());
    if blocks.is_empty() {
        return Vec::new();
    }
    // Instructions with jump targets as labels: Next(i) = start of block
    // i+1 (or `end`), Enosys, End, Rel(n) = n instructions ahead.
    #[derive(Clone, Copy)]
    enum T {
        Next,
        Enosys,
        End,
        Here(u8),
    }
    const LD: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    const JEQ: u16 = 0x15;
    const JGT: u16 = 0x25;
    const JGE: u16 = 0x35;
    const RET: u16 = 0x06;
    let mut prog: Vec<(u16, T, T, u32)> = vec![(LD, T::Here(0), T::Here(0), 4)];
    let mut block_starts = Vec::new();
    for (token, native, x32) in &blocks {
        block_starts.push(prog.len());
        prog.push((JEQ, T::Here(0), T::Next, *token));
        prog.push((LD, T::Here(0), T::Here(0), 0));
        let is_x86_64 = *token == 0xc000_003e;
        if is_x86_64 {
            // x32 numbers carry X32_SYSCALL_BIT: their own limit, or none.
            let x32_target = if x32.is_some() { T::Here(1) } else { T::End };
            prog.push((JGE, x32_target, T::Here(0), X32_SYSCALL_BIT));
        }
        match native {
            Some(m) => prog.push((JGT, T::Enosys, T::End, *m)),
            None => prog.push((JGE, T::End, T::End, 0)),
        }
        if let (true, Some(m)) = (is_x86_64, x32) {
            prog.push((JGT, T::Enosys, T::End, *m));
        }
    }
    let enosys = prog.len();
    prog.push((RET, T::Here(0), T::Here(0), 0x0005_0000 | libc::ENOSYS as u32));
    let end = prog.len();
    let mut out = Vec::with_capacity(end * 8);
    let mut block = 0;
    for (i, (code, jt, jf, k)) in prog.iter().enumerate() {
        while block + 1 < block_starts.len() && block_starts[block + 1] <= i {
            block += 1;
        }
        let next = block_starts.get(block + 1).copied().unwrap_or(end);
        let off = |t: T| -> u8 {
            let target = match t {
                T::Next => next,
                T::Enosys => enosys,
                T::End => end,
                T::Here(n) => i + 1 + n as usize,
            };
            (target - i - 1) as u8
        };
        out.extend_from_slice(&code.to_ne_bytes());
        out.push(off(*jt));
        out.push(off(*jf));
        out.extend_from_slice(&k.to_ne_bytes());
    }
    out
}

/// The BPF program, through a memfd (libseccomp 2.5 exports to an fd only).
fn export(ctx: &ScmpFilterContext) -> Result<Vec<u8>, Fault> {
    // SAFETY: a static NUL-terminated name; memfd_create returns a new fd or -1.
    let fd = unsafe { libc::memfd_create(c"berth-seccomp".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(fault("linux.seccomp", format!("memfd_create: {}", std::io::Error::last_os_error())));
    }
    // SAFETY: fd is the non-negative fd memfd_create just returned; nothing else owns it.
    let mut f = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    ctx.export_bpf(&f).map_err(|e| lib_err("linux.seccomp".into(), "export BPF", e))?;
    let mut buf = Vec::new();
    f.rewind()
        .and_then(|_| f.read_to_end(&mut buf))
        .map_err(|e| fault("linux.seccomp", format!("read exported BPF: {e}")))?;
    if buf.is_empty() || buf.len() % 8 != 0 {
        return Err(fault("linux.seccomp", format!("libseccomp exported {} bytes, not a BPF program", buf.len())));
    }
    Ok(buf)
}

/// What `berth features` reports under `linux.seccomp`. Every name below
/// is an oci-spec enum value that [`action`], [`cmp`] and [`arch`] map
/// exhaustively (the unit test parses each one), so the lists cannot
/// claim more than the compiler takes.
pub const ACTIONS: [&str; 9] = [
    "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP", "SCMP_ACT_ERRNO",
    "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY",
];
pub const OPERATORS: [&str; 7] = [
    "SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ",
];
pub const ARCHES: [&str; 23] = [
    "SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64", "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64", "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390", "SCMP_ARCH_S390X", "SCMP_ARCH_PARISC",
    "SCMP_ARCH_PARISC64", "SCMP_ARCH_RISCV64", "SCMP_ARCH_LOONGARCH64", "SCMP_ARCH_M68K", "SCMP_ARCH_SH",
    "SCMP_ARCH_SHEB",
];
/// The spec's flags with their seccomp(2) values.
pub const FLAGS: [(&str, u32); 4] = [
    ("SECCOMP_FILTER_FLAG_TSYNC", FLAG_TSYNC),
    ("SECCOMP_FILTER_FLAG_LOG", FLAG_LOG),
    ("SECCOMP_FILTER_FLAG_SPEC_ALLOW", FLAG_SPEC_ALLOW),
    ("SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", FLAG_WAIT_KILLABLE_RECV),
];

/// Does this kernel know `flag`? seccomp(SECCOMP_SET_MODE_FILTER, flag,
/// NULL) fails with EFAULT for a known flag (bad pointer) and EINVAL for an
/// unknown one; nothing is loaded either way.
fn kernel_knows(flag: u32) -> bool {
    const SECCOMP_SET_MODE_FILTER: libc::c_long = 1;
    // SAFETY: a null filter with SECCOMP_SET_MODE_FILTER is refused (EFAULT for a known
    // flag, EINVAL otherwise) before anything is installed: a pure probe.
    let r = unsafe { libc::syscall(libc::SYS_seccomp, SECCOMP_SET_MODE_FILTER, flag, std::ptr::null::<u8>()) };
    r < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EFAULT)
}

pub fn features() -> serde_json::Value {
    // WAIT_KILLABLE_RECV is only valid together with NEW_LISTENER.
    let probe = |v: u32| if v == FLAG_WAIT_KILLABLE_RECV { v | FLAG_NEW_LISTENER } else { v };
    let supported: Vec<&str> = FLAGS.iter().filter(|(_, v)| kernel_knows(probe(*v))).map(|(n, _)| *n).collect();
    serde_json::json!({
        "enabled": true,
        "actions": ACTIONS,
        "operators": OPERATORS,
        "archs": ARCHES,
        "knownFlags": FLAGS.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        "supportedFlags": supported,
    })
}

#[cfg(test)]
mod feature_tests {
    use super::*;

    #[test]
    fn every_feature_name_is_one_the_compiler_maps() {
        for a in ACTIONS {
            let v: A = serde_json::from_value(serde_json::json!(a)).unwrap_or_else(|e| panic!("{a}: {e}"));
            let _ = action(v, None, "x", "errnoRet");
        }
        for o in OPERATORS {
            let v: Op = serde_json::from_value(serde_json::json!(o)).unwrap_or_else(|e| panic!("{o}: {e}"));
            let _ = cmp(v, 0, 1, Some(1));
        }
        for n in ARCHES {
            let v: Arch = serde_json::from_value(serde_json::json!(n)).unwrap_or_else(|e| panic!("{n}: {e}"));
            let _ = arch(v);
        }
        let f = features();
        assert_eq!(f["enabled"], true);
        assert!(f["supportedFlags"].as_array().unwrap().iter().any(|x| x == "SECCOMP_FILTER_FLAG_LOG"));
    }
}
