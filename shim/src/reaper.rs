//! Reaping: the shim is a child subreaper; SIGCHLD is blocked in every
//! thread (set before any thread starts) and one thread takes it with
//! sigwait, reaps every child with waitpid(-1, WNOHANG) and hands each exit
//! (pid, containerd exit status) to the service.

use nix::sys::signal::{SigSet, Signal};

/// Block SIGCHLD for this thread and all threads spawned after.
pub fn block_sigchld() {
    let mut set = SigSet::empty();
    set.add(Signal::SIGCHLD);
    let _ = set.thread_block();
}

/// containerd's exit status: the code, or 128 + the signal.
pub fn exit_status(status: i32) -> u32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status) as u32
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status) as u32
    } else {
        255
    }
}

pub fn start(on_exit: impl Fn(i32, u32) + Send + 'static) {
    std::thread::Builder::new()
        .name("reaper".into())
        .stack_size(128 << 10)
        .spawn(move || {
            let mut set = SigSet::empty();
            set.add(Signal::SIGCHLD);
            loop {
                loop {
                    let mut st = 0;
                    // SAFETY: `st` is a live i32 the kernel writes; WNOHANG never blocks.
                    let pid = unsafe { libc::waitpid(-1, &mut st, libc::WNOHANG) };
                    if pid <= 0 {
                        break;
                    }
                    on_exit(pid, exit_status(st));
                }
                let _ = set.wait();
            }
        })
        .expect("spawn the reaper thread");
}
