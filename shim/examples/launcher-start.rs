//! The launcher's start cost: the first call of an idle shim (spawn the
//! launcher, then one request) against a call to a running launcher, with
//! the request itself cheap (stats of a container that does not exist).
//!
//! Build with `cargo build --release -p containerd-shim-berth-v2 --example
//! launcher-start` and run the copy beside the shim binaries (the launcher
//! is found there): `cp target/*/release/examples/launcher-start
//! target/*/release/ && target/*/release/launcher-start [RUNS]`.

use std::path::Path;
use std::time::{Duration, Instant};

use berth_shim::launcher::{Launch, Launcher, IDLE};

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20);
    let l = Launcher::new("launcher-start", "/nonexistent/containerd.sock");
    let root = Path::new("/run/containerd-berth/launcher-start-bench");
    let ms = |t: Instant| t.elapsed().as_secs_f64() * 1000.0;
    let stats = |l: &Launcher| (l as &dyn Launch).stats(root, "none");
    let (mut cold, mut warm) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        // The idle launcher exits; reap it.
        std::thread::sleep(IDLE * 2 + Duration::from_millis(200));
        // SAFETY: a null status pointer is allowed (the status is discarded); WNOHANG never blocks.
        while unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) } > 0 {}
        let t = Instant::now();
        let _ = stats(&l);
        cold.push(ms(t));
        let t = Instant::now();
        let _ = stats(&l);
        warm.push(ms(t));
    }
    let (c, w) = (median(&mut cold), median(&mut warm));
    println!(
        "{runs} runs: first call (launcher start + request) median {c:.2} ms, \
         later call median {w:.2} ms, launcher start ~{:.2} ms",
        c - w
    );
}
