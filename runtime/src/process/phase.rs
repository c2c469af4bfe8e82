//! The sync protocol's order, enforced: where the parent is in it
//! ([`Phase`]), which messages the config calls for ([`Steps`]), and the one
//! rule (`received`, `sent`): a message is allowed only as the next step
//! the config calls for, so init cannot skip a step (no hooks run, no maps
//! written) or repeat one, and berth cannot answer a request never made.
//! An `Error` or `HookFailed` from init is allowed in every phase: init
//! sends it instead of its next message. The order is the one drawn in
//! the header of [`crate::process`]; youki's `InitPhase` does the same.
//!
//! The exec child has its own two phases ([`JoinPhase`], see
//! [`crate::process::join`]).

use std::fmt;

use super::sync::Msg;

/// Which optional steps a container's setup has, decided before the clone
/// from the same facts init decides by (so both sides agree).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Steps {
    /// init waits for its cgroups (it makes its network namespace itself
    /// meanwhile, or systemd places it by pid): berth sends `CgroupsReady`
    /// before init says anything but an error.
    pub cgroups_wait: bool,
    /// A new user namespace: `RequestMaps`, `MapsWritten`.
    pub maps: bool,
    /// Two stages with a new pid namespace: the pid namespace's init says
    /// `Hello`.
    pub hello: bool,
    /// linux.netDevices: `MoveNetDevices`, `NetDevicesMoved`.
    pub net_devices: bool,
    /// Hooks configured: `RunHooks`, `HooksDone`.
    pub hooks: bool,
    /// A seccomp filter with SCMP_ACT_NOTIFY: `SeccompListener`,
    /// `SeccompSent`.
    pub seccomp_listener: bool,
}

/// Where the parent is in init's setup: the last step done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// init is cloned and sets up its namespaces.
    Cloned,
    /// (deferred network namespace, systemd placement) the cgroups are ready.
    CgroupsReady,
    /// init is in its new user namespace and waits for its maps.
    MapsRequested,
    /// The uid and gid maps are written.
    Mapped,
    /// (two stages) the pid namespace's init said hello and is recorded.
    Adopted,
    /// init asks for linux.netDevices.
    NetDevicesRequested,
    /// The net devices are in init's network namespace.
    NetDevicesMoved,
    /// init's mounts are ready: prestart and createRuntime hooks run.
    HooksRequested,
    /// The hooks ran.
    HooksRun,
    /// init passed its seccomp listener.
    ListenerReceived,
    /// The listener reached the agent.
    ListenerSent,
    /// init is set up and waits for Detach or Start.
    Ready,
}

/// Who sends a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum From {
    Init,
    Berth,
}

impl Phase {
    /// Every phase, in protocol order.
    const ORDER: [Phase; 12] = [
        Phase::Cloned,
        Phase::CgroupsReady,
        Phase::MapsRequested,
        Phase::Mapped,
        Phase::Adopted,
        Phase::NetDevicesRequested,
        Phase::NetDevicesMoved,
        Phase::HooksRequested,
        Phase::HooksRun,
        Phase::ListenerReceived,
        Phase::ListenerSent,
        Phase::Ready,
    ];

    /// Whether a setup with `steps` passes through this phase.
    fn in_setup(self, s: &Steps) -> bool {
        match self {
            Phase::Cloned | Phase::Ready => true,
            Phase::CgroupsReady => s.cgroups_wait,
            Phase::MapsRequested | Phase::Mapped => s.maps,
            Phase::Adopted => s.hello,
            Phase::NetDevicesRequested | Phase::NetDevicesMoved => s.net_devices,
            Phase::HooksRequested | Phase::HooksRun => s.hooks,
            Phase::ListenerReceived | Phase::ListenerSent => s.seccomp_listener,
        }
    }

    /// The phase the next step of a setup with `steps` leads to (None
    /// once Ready).
    pub fn next(self, s: &Steps) -> Option<Phase> {
        Phase::ORDER.into_iter().find(|p| *p > self && p.in_setup(s))
    }

    /// The message that leads into this phase, and who sends it.
    fn entered_by(self) -> (&'static str, From) {
        match self {
            Phase::Cloned => ("(the clone)", From::Berth),
            Phase::CgroupsReady => ("CgroupsReady", From::Berth),
            Phase::MapsRequested => ("RequestMaps", From::Init),
            Phase::Mapped => ("MapsWritten", From::Berth),
            Phase::Adopted => ("Hello", From::Init),
            Phase::NetDevicesRequested => ("MoveNetDevices", From::Init),
            Phase::NetDevicesMoved => ("NetDevicesMoved", From::Berth),
            Phase::HooksRequested => ("RunHooks", From::Init),
            Phase::HooksRun => ("HooksDone", From::Berth),
            Phase::ListenerReceived => ("SeccompListener", From::Init),
            Phase::ListenerSent => ("SeccompSent", From::Berth),
            Phase::Ready => ("Ready", From::Init),
        }
    }

    /// The phase `m` leads to, if it is a setup step from `from`.
    fn of(m: &Msg, from: From) -> Option<Phase> {
        let name = m.name();
        Phase::ORDER.into_iter().skip(1).find(|p| p.entered_by() == (name, from))
    }

    /// init sent `m`: the phase it leads to, or why it is out of order.
    pub fn received(self, s: &Steps, m: &Msg) -> Result<Phase, Unexpected> {
        if matches!(m, Msg::Error { .. }) {
            return Ok(self);
        }
        self.step(s, m, From::Init)
    }

    /// berth is about to send `m`: the phase it leads to, or why it is
    /// out of order (a bug in berth; init is killed as for init's).
    pub fn sent(self, s: &Steps, m: &Msg) -> Result<Phase, Unexpected> {
        self.step(s, m, From::Berth)
    }

    fn step(self, s: &Steps, m: &Msg, from: From) -> Result<Phase, Unexpected> {
        let next = self.next(s);
        match Phase::of(m, from) {
            Some(p) if Some(p) == next => Ok(p),
            _ => Err(Unexpected {
                msg: m.name(),
                sender: if from == From::Init { "container init" } else { "berth" },
                phase: format!("{self:?}"),
                expected: next.map(|p| p.entered_by().0),
            }),
        }
    }
}

/// A message out of the protocol's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unexpected {
    /// The message's name (`Ready`, `RunHooks`).
    pub msg: &'static str,
    /// Who sent it: `container init`, `the exec process`, or `berth` (a
    /// bug in berth).
    pub sender: &'static str,
    /// Where the parent was (a [`Phase`] or [`JoinPhase`]).
    pub phase: String,
    /// The message the config called for next (None after Ready).
    pub expected: Option<&'static str>,
}

impl fmt::Display for Unexpected {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let verb = if self.sender == "berth" { "was about to send" } else { "sent" };
        write!(f, "sync protocol: {} {verb} {} out of order in phase {}", self.sender, self.msg, self.phase)?;
        match self.expected {
            Some(e) => write!(f, " (expected {e})"),
            None => write!(f, " (setup is over)"),
        }
    }
}

/// The exec parent's phases (see [`crate::process::join`]): stage 1 reports
/// the process's pid, then the process either execs (EOF) or fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinPhase {
    /// Stage 1 is joining the container; it sends `Spawned(pid)` or an
    /// error.
    Joining,
    /// Stage 2 runs in the container; only an error may come, EOF means
    /// execve succeeded.
    Spawned,
}

impl JoinPhase {
    /// The exec child sent `m`: the phase it leads to, or why it is out of
    /// order.
    pub fn received(self, m: &Msg) -> Result<JoinPhase, Unexpected> {
        match (self, m) {
            (_, Msg::Error { .. }) => Ok(self),
            (JoinPhase::Joining, Msg::Spawned { .. }) => Ok(JoinPhase::Spawned),
            _ => Err(Unexpected {
                msg: m.name(),
                sender: "the exec process",
                phase: format!("{self:?}"),
                expected: (self == JoinPhase::Joining).then_some("Spawned"),
            }),
        }
    }
}

#[cfg(test)]
#[path = "phase_tests.rs"]
mod tests;
