//! The five capability sets of `process.capabilities`, applied around the
//! uid switch:
//!
//! 1. drop from the bounding set what it does not list (needs CAP_SETPCAP,
//!    which init still has);
//! 2. PR_SET_KEEPCAPS, switch uid/gid, clear KEEPCAPS;
//! 3. capset permitted, effective, inheritable;
//! 4. clear the ambient set and raise what it lists.
//!
//! A name the kernel does not know, or that berth itself does not hold (not
//! in its bounding set: this host lacks CAP_SYS_RESOURCE, for one), is left
//! out of every set with a warning, never a failure, as the runtime spec
//! asks ("SHOULD NOT fail"). runc warns about unknown names too, but fails
//! (`unable to apply caps: operation not permitted`) when effective,
//! permitted or inheritable asks for one its bounding set lacks.
//!
//! The kernel raises an ambient capability only if it is also permitted and
//! inheritable. Those that are not are left out before init starts: quietly
//! (an info line in `--log`) when the inheritable set is empty, as in `runc
//! spec`'s config, where runc says nothing either; with a warning naming the
//! sets to add them to when inheritable lists anything (the user configured
//! the sets, so the mismatch is probably a mistake). With no
//! `process.capabilities` at all, init keeps what it has.

use oci_spec::runtime::{Capabilities, Process};

use crate::error::{Error, Result};

/// Capability numbers by name, as the kernel's <linux/capability.h>.
const NAMES: [&str; 41] = [
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
    "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
    "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
    "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
    "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF",
    "CHECKPOINT_RESTORE",
];

/// Every capability name berth knows, `CAP_`-prefixed, in kernel order
/// (for `features`).
pub fn names() -> impl Iterator<Item = String> {
    NAMES.iter().map(|n| format!("CAP_{n}"))
}

/// Number of a capability name (with or without `CAP_`).
pub fn number(name: &str) -> Option<u32> {
    let n = name.strip_prefix("CAP_").unwrap_or(name);
    NAMES.iter().position(|c| c.eq_ignore_ascii_case(n)).map(|i| i as u32)
}

/// The five sets as bit masks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CapSets {
    pub bounding: u64,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
}

fn in_bounding(cap: u32) -> bool {
    // SAFETY: PR_CAPBSET_READ takes integer arguments only and reads no memory.
    unsafe { libc::prctl(libc::PR_CAPBSET_READ, cap as libc::c_ulong, 0, 0, 0) == 1 }
}

/// Turn `process.capabilities` into masks, leaving out (with a warning)
/// what this host cannot grant. None when the config has no capabilities.
pub fn plan(p: &Process) -> Option<CapSets> {
    let c = p.capabilities().as_ref()?;
    let mut warned = std::collections::BTreeSet::new();
    let mut mask = |field: &str, set: &Option<Capabilities>| -> u64 {
        let mut m = 0u64;
        for cap in set.iter().flatten() {
            let name = cap.to_string();
            match number(&name) {
                Some(n) if in_bounding(n) => m |= 1 << n,
                _ => {
                    if warned.insert(name.clone()) {
                        log::warn!(
                            "process.capabilities.{field}: CAP_{name} is not available on this host (not in the capability bounding set berth runs with); left out of every set"
                        );
                    }
                }
            }
        }
        m
    };
    let mut sets = CapSets {
        bounding: mask("bounding", c.bounding()),
        effective: mask("effective", c.effective()),
        permitted: mask("permitted", c.permitted()),
        inheritable: mask("inheritable", c.inheritable()),
        ambient: mask("ambient", c.ambient()),
    };
    let refused = sets.ambient & !(sets.permitted & sets.inheritable);
    if refused != 0 {
        sets.ambient &= !refused;
        let missing = |set: u64| names_of(refused & !set).collect::<Vec<_>>().join(", ");
        let (prm, inh) = (missing(sets.permitted), missing(sets.inheritable));
        if sets.inheritable == 0 {
            log::info!(
                "process.capabilities.ambient: {} left out: the inheritable set is empty, and the kernel raises only capabilities that are permitted and inheritable",
                missing(0)
            );
        } else {
            let add = |set: &str, caps: &str| (!caps.is_empty()).then(|| format!("add {caps} to process.capabilities.{set}"));
            let fix: Vec<String> = [add("permitted", &prm), add("inheritable", &inh)].into_iter().flatten().collect();
            log::warn!(
                "process.capabilities.ambient: {} left out: the kernel raises only capabilities that are permitted and inheritable ({})",
                missing(0),
                fix.join("; ")
            );
        }
    }
    Some(sets)
}

/// What capset(2) would refuse, found before anything is created (runc
/// fails `create` on these; berth used to fail only at `start`): an
/// effective capability that is not permitted, an inheritable one outside
/// the bounding set (the kernel caps the inheritable set by the bounding
/// set and the caller's own inheritable set). The error names the field.
pub fn check(c: &CapSets) -> std::result::Result<(), (String, String)> {
    let not_permitted = c.effective & !c.permitted;
    if not_permitted != 0 {
        return Err((
            "process.capabilities.effective".into(),
            format!(
                "{} not in the permitted set: the kernel refuses an effective capability that is not permitted (add it to process.capabilities.permitted)",
                names_of(not_permitted).collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    let own_inheritable = own_inheritable();
    let outside = c.inheritable & !(c.bounding | own_inheritable);
    if outside != 0 {
        return Err((
            "process.capabilities.inheritable".into(),
            format!(
                "{} not in the bounding set: the kernel refuses an inheritable capability outside it (add it to process.capabilities.bounding)",
                names_of(outside).collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    Ok(())
}

/// This process's inheritable set (capget).
fn own_inheritable() -> u64 {
    let mut hdr = CapHeader { version: 0x2008_0522, pid: 0 };
    let mut data = [CapData::default(); 2];
    // SAFETY: `hdr` and `data` are live, repr(C) like the kernel's structs, and `data`
    // holds the two elements version 3 (0x20080522) writes.
    if unsafe { libc::syscall(libc::SYS_capget, &mut hdr as *mut CapHeader, data.as_mut_ptr()) } != 0 {
        return 0;
    }
    data[0].inheritable as u64 | (data[1].inheritable as u64) << 32
}

/// `CAP_` names of the bits of `mask`, in kernel order.
fn names_of(mask: u64) -> impl Iterator<Item = String> {
    (0..64u32).filter(move |n| mask & (1 << n) != 0).map(|n| format!("CAP_{}", NAMES.get(n as usize).unwrap_or(&"?")))
}

/// Step 1 and the start of step 2: shrink the bounding set, keep
/// capabilities across the coming uid switch.
pub fn before_user_switch(c: &CapSets) -> Result<()> {
    for n in 0..64u32 {
        if c.bounding & (1 << n) != 0 || !in_bounding(n) {
            continue;
        }
        // SAFETY: PR_CAPBSET_DROP takes integer arguments only and reads no memory.
        if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, n as libc::c_ulong, 0, 0, 0) } != 0 {
            return Err(Error::os(
                format!("process.capabilities.bounding: drop CAP_{}", NAMES.get(n as usize).unwrap_or(&"?")),
                std::io::Error::last_os_error(),
            ));
        }
    }
    // SAFETY: PR_SET_KEEPCAPS takes integer arguments only and reads no memory.
    if unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) } != 0 {
        return Err(Error::os("PR_SET_KEEPCAPS", std::io::Error::last_os_error()));
    }
    Ok(())
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Steps 2 to 4, after the uid switch.
pub fn after_user_switch(c: &CapSets) -> Result<()> {
    // SAFETY: PR_SET_KEEPCAPS takes integer arguments only and reads no memory.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) };
    let mut hdr = CapHeader { version: 0x2008_0522, pid: 0 };
    let data = [
        CapData { effective: c.effective as u32, permitted: c.permitted as u32, inheritable: c.inheritable as u32 },
        CapData {
            effective: (c.effective >> 32) as u32,
            permitted: (c.permitted >> 32) as u32,
            inheritable: (c.inheritable >> 32) as u32,
        },
    ];
    // SAFETY: `hdr` and `data` are live, repr(C) like the kernel's structs, and `data`
    // holds the two elements version 3 (0x20080522) reads.
    if unsafe { libc::syscall(libc::SYS_capset, &mut hdr as *mut CapHeader, data.as_ptr()) } != 0 {
        return Err(Error::os("process.capabilities: capset", std::io::Error::last_os_error()));
    }
    // SAFETY: PR_CAP_AMBIENT takes integer arguments only and reads no memory.
    unsafe { libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) };
    for n in 0..64u32 {
        if c.ambient & (1 << n) == 0 {
            continue;
        }
        // SAFETY: PR_CAP_AMBIENT takes integer arguments only and reads no memory.
        let r = unsafe { libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_RAISE, n as libc::c_ulong, 0, 0) };
        if r != 0 {
            // plan() kept only capabilities that are permitted and
            // inheritable: something else refused this one (securebits).
            log::warn!(
                "process.capabilities.ambient: raise CAP_{}: {}",
                NAMES.get(n as usize).unwrap_or(&"?"),
                std::io::Error::last_os_error()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_kernel_numbers() {
        assert_eq!(number("CAP_CHOWN"), Some(0));
        assert_eq!(number("KILL"), Some(5));
        assert_eq!(number("CAP_NET_RAW"), Some(13));
        assert_eq!(number("CAP_SYS_ADMIN"), Some(21));
        assert_eq!(number("CAP_AUDIT_WRITE"), Some(29));
        assert_eq!(number("CAP_CHECKPOINT_RESTORE"), Some(40));
        assert_eq!(number("CAP_NOPE"), None);
    }

    #[test]
    fn ambient_keeps_only_permitted_and_inheritable() {
        let json = serde_json::json!({
            "cwd": "/", "user": {"uid": 0, "gid": 0},
            "capabilities": {"permitted": ["CAP_KILL", "CAP_CHOWN"], "inheritable": ["CAP_KILL", "CAP_FOWNER"],
                "ambient": ["CAP_KILL", "CAP_CHOWN", "CAP_FOWNER"]}
        });
        let p: Process = serde_json::from_value(json).unwrap();
        assert_eq!(plan(&p).unwrap().ambient, 1 << 5, "only CAP_KILL is both permitted and inheritable");
        assert_eq!(names_of(1 | 1 << 5).collect::<Vec<_>>(), ["CAP_CHOWN", "CAP_KILL"]);
    }

    #[test]
    fn oci_spec_names_are_all_known() {
        let json = serde_json::json!({
            "cwd": "/", "user": {"uid": 0, "gid": 0},
            "capabilities": {"bounding": NAMES.iter().map(|n| format!("CAP_{n}")).collect::<Vec<_>>()}
        });
        let p: Process = serde_json::from_value(json).unwrap();
        for cap in p.capabilities().as_ref().unwrap().bounding().as_ref().unwrap() {
            assert!(number(&cap.to_string()).is_some(), "{cap}");
        }
    }
}
