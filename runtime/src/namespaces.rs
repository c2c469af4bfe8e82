//! Namespace planning: which namespaces init gets new, which it joins by
//! path, and in what order, so that the clone can be done in one step
//! whenever the kernel allows it.

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use nix::sched::{setns, unshare, CloneFlags};
use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType, Spec};

use crate::error::{Error, Result};

/// The CLONE_NEW* flag of a namespace type.
pub fn flag(t: LinuxNamespaceType) -> CloneFlags {
    match t {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

/// A namespace to join, opened by the parent before the clone.
#[derive(Debug)]
pub struct Join {
    pub typ: LinuxNamespaceType,
    pub path: PathBuf,
    pub fd: OwnedFd,
}

/// What init does with namespaces.
#[derive(Debug)]
pub struct Plan {
    /// Namespaces created new (all of them, including user, pid, cgroup, time).
    pub new: CloneFlags,
    /// Namespaces joined by path, user first.
    pub joins: Vec<Join>,
}

impl Plan {
    pub fn from_spec(spec: &Spec) -> Result<Plan> {
        let mut plan = Plan { new: CloneFlags::empty(), joins: Vec::new() };
        let nss: &[LinuxNamespace] = spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().as_deref())
            .unwrap_or(&[]);
        for (i, ns) in nss.iter().enumerate() {
            match ns.path() {
                Some(p) if !p.as_os_str().is_empty() => {
                    let f = File::open(p).map_err(|e| {
                        Error::os(format!("linux.namespaces[{i}].path: open {}", p.display()), e)
                    })?;
                    plan.joins.push(Join { typ: ns.typ(), path: p.clone(), fd: f.into() });
                }
                _ => plan.new |= flag(ns.typ()),
            }
        }
        // Join the user namespace first: the others may be owned by it.
        plan.joins.sort_by_key(|j| j.typ != LinuxNamespaceType::User);
        Ok(plan)
    }

    pub fn has_new(&self, t: LinuxNamespaceType) -> bool {
        self.new.contains(flag(t))
    }

    pub fn joins(&self, t: LinuxNamespaceType) -> Option<&Join> {
        self.joins.iter().find(|j| j.typ == t)
    }

    /// Is `t` in the container at all (new or joined)?
    pub fn has(&self, t: LinuxNamespaceType) -> bool {
        self.has_new(t) || self.joins(t).is_some()
    }

    /// Joins other than user and pid (pid is joined by the parent before the
    /// clone; user first by init).
    pub fn other_joins(&self) -> impl Iterator<Item = &Join> {
        self.joins
            .iter()
            .filter(|j| !matches!(j.typ, LinuxNamespaceType::User | LinuxNamespaceType::Pid))
    }

    /// Does init need a second fork? Yes when a new user namespace must be
    /// created after joining other namespaces (so they are joined with the
    /// host's privileges), or when a joined user namespace must own a new
    /// pid namespace: then namespaces are entered with setns/unshare in the
    /// first child and the pid namespace's init is its child.
    pub fn two_stage(&self) -> bool {
        let user_new = self.has_new(LinuxNamespaceType::User);
        let user_join = self.joins(LinuxNamespaceType::User).is_some();
        let pid_new = self.has_new(LinuxNamespaceType::Pid);
        (user_new && self.other_joins().next().is_some()) || (user_join && pid_new)
    }

    /// Flags for the clone itself in the one-stage case: everything new
    /// except cgroup (unshared after init joined its cgroup, so the
    /// namespace root is the container's cgroup) and time (its offsets must
    /// be written before any process enters it; the parent unshares it).
    pub fn clone_flags(&self) -> CloneFlags {
        if self.two_stage() || self.joins(LinuxNamespaceType::User).is_some() {
            return CloneFlags::empty();
        }
        self.new - CloneFlags::CLONE_NEWCGROUP - flag(LinuxNamespaceType::Time)
    }

    /// Flags init unshares itself after its joins (and after its user
    /// namespace exists), in the one-stage case with a joined user ns, or in
    /// the first child of the two-stage case. Excludes user (handled apart),
    /// cgroup and time.
    pub fn unshare_flags(&self) -> CloneFlags {
        self.new - CloneFlags::CLONE_NEWUSER - CloneFlags::CLONE_NEWCGROUP - flag(LinuxNamespaceType::Time)
    }
}

/// setns into a joined namespace, naming its path on failure.
pub fn enter(j: &Join) -> Result<()> {
    setns(j.fd.as_fd(), flag(j.typ)).map_err(|e| {
        Error::os(format!("join {} namespace {}", type_name(j.typ), j.path.display()), e)
    })
}

pub fn unshare_flags(flags: CloneFlags) -> Result<()> {
    if flags.is_empty() {
        return Ok(());
    }
    unshare(flags).map_err(|e| Error::os(format!("unshare namespaces {flags:?}"), e))
}

pub fn type_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mount",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "network",
        LinuxNamespaceType::Time => "time",
    }
}
