//! Start init on another CPU than berth's own while both have work.
//!
//! Right after the clone, berth makes the v1 cgroups while init makes its
//! network namespace (see `defers_net`): that only overlaps if init runs
//! on another CPU. The scheduler often queues a new child on its parent's
//! CPU (measured: 43 of 60 back-to-back runs on this 2-vCPU VM, where the
//! child then waited 0.57 ms median for berth to block, against 0.05 ms
//! when placed on the other CPU). So berth narrows init's affinity to the
//! CPUs other than its current one right after the clone, and gives init
//! back the mask it inherited before telling it the cgroups are ready
//! (init joins the cgroups, cpuset included, only after that message).
//! Nothing changes if berth may run on one CPU only, and a failure of
//! either call only costs the overlap.

use std::mem;

pub struct Spread {
    inherited: libc::cpu_set_t,
}

impl Spread {
    /// Init's inherited mask (berth's own), if it has more than one CPU.
    pub fn new() -> Option<Spread> {
        // SAFETY: cpu_set_t is plain data; sched_getaffinity fills it.
        let mut set: libc::cpu_set_t = unsafe { mem::zeroed() };
        // SAFETY: `set` is a live cpu_set_t and the size passed is its size.
        let r = unsafe { libc::sched_getaffinity(0, mem::size_of::<libc::cpu_set_t>(), &mut set) };
        // SAFETY: CPU_COUNT only reads the initialised `set`.
        (r == 0 && unsafe { libc::CPU_COUNT(&set) } > 1).then_some(Spread { inherited: set })
    }

    /// Move `pid` off the CPU berth runs on now.
    pub fn push(&self, pid: libc::pid_t) {
        // SAFETY: sched_getcpu takes no argument; the masks are local.
        let cpu = unsafe { libc::sched_getcpu() };
        if cpu < 0 {
            return;
        }
        let mut set = self.inherited;
        // SAFETY: CPU_CLR writes one bit of `set`; `cpu` came from sched_getcpu, below
        // CPU_SETSIZE, so the index is inside the set.
        unsafe { libc::CPU_CLR(cpu as usize, &mut set) };
        // SAFETY: CPU_COUNT only reads the initialised `set`.
        if unsafe { libc::CPU_COUNT(&set) } == 0 {
            return;
        }
        // SAFETY: `set` is a live cpu_set_t and the size passed is its size.
        let r = unsafe { libc::sched_setaffinity(pid, mem::size_of::<libc::cpu_set_t>(), &set) };
        if r != 0 {
            log::debug!(
                "init {pid}: narrow affinity: {}",
                std::io::Error::last_os_error()
            );
        }
    }

    /// Give `pid` back the inherited mask.
    pub fn release(&self, pid: libc::pid_t) {
        // SAFETY: sets the affinity of our own child from a local mask.
        let r = unsafe {
            libc::sched_setaffinity(pid, mem::size_of::<libc::cpu_set_t>(), &self.inherited)
        };
        if r != 0 {
            log::debug!(
                "init {pid}: restore affinity: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}
