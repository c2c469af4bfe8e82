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
    for (i, a) in s.architectures().iter().flatten().enumerate() {
        let a = arch(*a);
        if !runs_on(native, a) {
            log::debug!("linux.seccomp.architectures[{i}]: {a:?} cannot run on this {native:?} kernel; left out");
            continue;
        }
        if ctx.is_arch_present(a).unwrap_or(false) {
            continue;
        }
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
    export(&ctx)
}

/// The BPF program, through a memfd (libseccomp 2.5 exports to an fd only).
fn export(ctx: &ScmpFilterContext) -> Result<Vec<u8>, Fault> {
    let fd = unsafe { libc::memfd_create(c"berth-seccomp".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(fault("linux.seccomp", format!("memfd_create: {}", std::io::Error::last_os_error())));
    }
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
