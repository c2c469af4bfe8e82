//! `linux.memoryPolicy`: the container's NUMA memory policy, set by init with
//! set_mempolicy(2) just before it reports Ready, so the program inherits it
//! across execve (and every process it forks); `exec` sets it the same way
//! in the process it starts.
//!
//! The config is checked at load time ([`from_spec`] in spec validation):
//! the node list syntax (`"0-3,7"`), which modes need nodes and which take
//! none, and flag combinations the kernel always refuses. What depends on
//! the host (a node that is not online, or outside the cpuset's mems) is the
//! kernel's answer at `create`, reported naming the field.

use oci_spec::runtime::{LinuxMemoryPolicy, MemoryPolicyFlagType, MemoryPolicyModeType, Spec};

use crate::error::{Error, Result};

/// The modes berth recognizes, as `berth features` reports them.
pub const MODES: [(MemoryPolicyModeType, &str, i32); 7] = [
    (MemoryPolicyModeType::MpolDefault, "MPOL_DEFAULT", 0),
    (MemoryPolicyModeType::MpolBind, "MPOL_BIND", 2),
    (MemoryPolicyModeType::MpolInterleave, "MPOL_INTERLEAVE", 3),
    (
        MemoryPolicyModeType::MpolWeightedInterleave,
        "MPOL_WEIGHTED_INTERLEAVE",
        6,
    ),
    (MemoryPolicyModeType::MpolPreferred, "MPOL_PREFERRED", 1),
    (
        MemoryPolicyModeType::MpolPreferredMany,
        "MPOL_PREFERRED_MANY",
        5,
    ),
    (MemoryPolicyModeType::MpolLocal, "MPOL_LOCAL", 4),
];

/// The mode flags berth recognizes (linux/mempolicy.h values).
pub const FLAGS: [(MemoryPolicyFlagType, &str, i32); 3] = [
    (
        MemoryPolicyFlagType::MpolFNumaBalancing,
        "MPOL_F_NUMA_BALANCING",
        1 << 13,
    ),
    (
        MemoryPolicyFlagType::MpolFRelativeNodes,
        "MPOL_F_RELATIVE_NODES",
        1 << 14,
    ),
    (
        MemoryPolicyFlagType::MpolFStaticNodes,
        "MPOL_F_STATIC_NODES",
        1 << 15,
    ),
];

/// The kernel reads at most a page of nodemask bits (get_nodes: maxnode
/// above PAGE_SIZE * 8 is EINVAL).
const MAX_NODE: u32 = 4096 * 8 - 1;

/// The match fails to compile when oci-spec adds a mode that is not in
/// [`MODES`].
fn mode_entry(m: MemoryPolicyModeType) -> (&'static str, i32) {
    match m {
        MemoryPolicyModeType::MpolDefault
        | MemoryPolicyModeType::MpolBind
        | MemoryPolicyModeType::MpolInterleave
        | MemoryPolicyModeType::MpolWeightedInterleave
        | MemoryPolicyModeType::MpolPreferred
        | MemoryPolicyModeType::MpolPreferredMany
        | MemoryPolicyModeType::MpolLocal => {}
    }
    let (_, name, v) = MODES
        .iter()
        .find(|(t, _, _)| *t == m)
        .expect("every mode is in MODES");
    (name, *v)
}

fn flag_entry(f: MemoryPolicyFlagType) -> (&'static str, i32) {
    match f {
        MemoryPolicyFlagType::MpolFNumaBalancing
        | MemoryPolicyFlagType::MpolFRelativeNodes
        | MemoryPolicyFlagType::MpolFStaticNodes => {}
    }
    let (_, name, v) = FLAGS
        .iter()
        .find(|(t, _, _)| *t == f)
        .expect("every flag is in FLAGS");
    (name, *v)
}

/// A checked policy, ready for set_mempolicy(2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// mode | flags.
    pub mode: i32,
    /// The nodemask, 64 nodes a word; empty for no nodes.
    pub mask: Vec<u64>,
    /// For messages: `MPOL_BIND|MPOL_F_STATIC_NODES nodes "0-1"`.
    pub describe: String,
}

/// A config error at a JSON path under `linux.memoryPolicy`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    pub path: &'static str,
    pub msg: String,
}

fn err(path: &'static str, msg: impl Into<String>) -> PolicyError {
    PolicyError {
        path,
        msg: msg.into(),
    }
}

/// The config's policy, checked; `Ok(None)` without `linux.memoryPolicy`.
pub fn from_spec(spec: &Spec) -> Result<Option<Policy>, PolicyError> {
    match spec
        .linux()
        .as_ref()
        .and_then(|l| l.memory_policy().as_ref())
    {
        Some(p) => check(p).map(Some),
        None => Ok(None),
    }
}

fn check(p: &LinuxMemoryPolicy) -> Result<Policy, PolicyError> {
    let (mode_name, mut mode) = mode_entry(p.mode());
    let nodes_text = p.nodes().as_deref().unwrap_or("");
    let nodes = parse_nodes(nodes_text).map_err(|m| err("linux.memoryPolicy.nodes", m))?;
    use MemoryPolicyModeType as M;
    match p.mode() {
        M::MpolDefault | M::MpolLocal if !nodes.is_empty() => {
            return Err(err(
                "linux.memoryPolicy.nodes",
                format!("{mode_name} takes no nodes, found {nodes_text:?}"),
            ));
        }
        M::MpolBind | M::MpolInterleave | M::MpolWeightedInterleave | M::MpolPreferredMany
            if nodes.is_empty() =>
        {
            return Err(err(
                "linux.memoryPolicy.nodes",
                format!("{mode_name} needs at least one node"),
            ));
        }
        _ => {}
    }
    let mut names = vec![mode_name];
    let flags = p.flags().as_deref().unwrap_or(&[]);
    for f in flags {
        let (name, v) = flag_entry(*f);
        if mode & v == 0 {
            names.push(name);
        }
        mode |= v;
    }
    let has = |f: MemoryPolicyFlagType| flags.contains(&f);
    if has(MemoryPolicyFlagType::MpolFStaticNodes) && has(MemoryPolicyFlagType::MpolFRelativeNodes)
    {
        return Err(err(
            "linux.memoryPolicy.flags",
            "MPOL_F_STATIC_NODES and MPOL_F_RELATIVE_NODES exclude each other",
        ));
    }
    if !flags.is_empty() && matches!(p.mode(), M::MpolDefault | M::MpolLocal) {
        return Err(err(
            "linux.memoryPolicy.flags",
            format!("{mode_name} takes no flags"),
        ));
    }
    let mut mask = Vec::new();
    for n in &nodes {
        let w = (*n / 64) as usize;
        if mask.len() <= w {
            mask.resize(w + 1, 0u64);
        }
        mask[w] |= 1u64 << (n % 64);
    }
    let describe = if nodes_text.is_empty() {
        names.join("|")
    } else {
        format!("{} nodes {nodes_text:?}", names.join("|"))
    };
    Ok(Policy {
        mode,
        mask,
        describe,
    })
}

/// Parse the spec's node list: comma-separated node numbers and ranges
/// (`"0-3,7"`). Empty (or only blanks) is no nodes.
pub fn parse_nodes(text: &str) -> Result<Vec<u32>, String> {
    let mut out = Vec::new();
    if text.trim().is_empty() {
        return Ok(out);
    }
    let num = |s: &str| -> Result<u32, String> {
        let s = s.trim();
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "{text:?}: {s:?} is not a node number (expected a list like \"0-3,7\")"
            ));
        }
        let n: u32 = s
            .parse()
            .map_err(|_| format!("{text:?}: node {s} is too large"))?;
        if n > MAX_NODE {
            return Err(format!(
                "{text:?}: node {n} is too large (at most {MAX_NODE})"
            ));
        }
        Ok(n)
    };
    for part in text.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b)?);
                if a > b {
                    return Err(format!("{text:?}: range {a}-{b} is reversed"));
                }
                out.extend(a..=b);
            }
            None => out.push(num(part)?),
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

impl Policy {
    /// set_mempolicy(2) for the calling thread (init); inherited by its
    /// children and kept across execve.
    pub fn apply(&self) -> Result<()> {
        let (ptr, maxnode) = if self.mask.is_empty() {
            (std::ptr::null::<u64>(), 0u64)
        } else {
            // The kernel reads maxnode - 1 bits.
            (self.mask.as_ptr(), self.mask.len() as u64 * 64 + 1)
        };
        // SAFETY: `ptr` is null with maxnode 0, or points to self.mask, alive for the call,
        // whose len * 64 bits cover the maxnode - 1 bits the kernel reads.
        let r = unsafe {
            libc::syscall(
                libc::SYS_set_mempolicy,
                self.mode as libc::c_long,
                ptr,
                maxnode,
            )
        };
        if r == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        let why = match e.raw_os_error() {
            Some(libc::EINVAL) => {
                " (a node that is not online or not allowed to the container's cpuset, or a mode or flag this kernel does not support)"
            }
            Some(libc::ENOSYS) => " (this kernel has no NUMA support)",
            _ => "",
        };
        Err(Error::os(format!("linux.memoryPolicy: set_mempolicy {}{why}", self.describe), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(v: serde_json::Value) -> Result<Policy, PolicyError> {
        check(&serde_json::from_value(v).unwrap())
    }

    #[test]
    fn node_lists() {
        assert_eq!(parse_nodes("0-3,7").unwrap(), vec![0, 1, 2, 3, 7]);
        assert_eq!(parse_nodes(" 1 , 1-2").unwrap(), vec![1, 2]);
        assert_eq!(parse_nodes("").unwrap(), Vec::<u32>::new());
        for bad in ["a", "1-", "-1", "3-1", "1,,2", "99999999999", "40000"] {
            assert!(parse_nodes(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn modes_flags_and_masks() {
        let p = policy(serde_json::json!({"mode": "MPOL_BIND", "nodes": "0"})).unwrap();
        assert_eq!((p.mode, p.mask.clone()), (2, vec![1]));
        let p = policy(serde_json::json!({"mode": "MPOL_INTERLEAVE", "nodes": "0,65", "flags": ["MPOL_F_STATIC_NODES"]}))
            .unwrap();
        assert_eq!((p.mode, p.mask.clone()), (3 | 1 << 15, vec![1, 2]));
        assert_eq!(
            p.describe,
            "MPOL_INTERLEAVE|MPOL_F_STATIC_NODES nodes \"0,65\""
        );
        let p = policy(serde_json::json!({"mode": "MPOL_LOCAL"})).unwrap();
        assert_eq!((p.mode, p.mask.len()), (4, 0));
        let p = policy(serde_json::json!({"mode": "MPOL_PREFERRED"})).unwrap();
        assert_eq!(p.mode, 1);
    }

    #[test]
    fn refused_combinations_name_the_field() {
        let e = policy(serde_json::json!({"mode": "MPOL_BIND"})).unwrap_err();
        assert_eq!(e.path, "linux.memoryPolicy.nodes");
        let e = policy(serde_json::json!({"mode": "MPOL_DEFAULT", "nodes": "0"})).unwrap_err();
        assert_eq!(e.path, "linux.memoryPolicy.nodes");
        let e = policy(serde_json::json!({"mode": "MPOL_BIND", "nodes": "0-x"})).unwrap_err();
        assert_eq!(e.path, "linux.memoryPolicy.nodes");
        let e = policy(serde_json::json!({"mode": "MPOL_BIND", "nodes": "0",
            "flags": ["MPOL_F_STATIC_NODES", "MPOL_F_RELATIVE_NODES"]}))
        .unwrap_err();
        assert_eq!(e.path, "linux.memoryPolicy.flags");
        let e = policy(serde_json::json!({"mode": "MPOL_LOCAL", "flags": ["MPOL_F_STATIC_NODES"]}))
            .unwrap_err();
        assert_eq!(e.path, "linux.memoryPolicy.flags");
    }
}
