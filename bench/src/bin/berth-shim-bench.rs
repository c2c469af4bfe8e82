//! `berth-shim-bench`: containerd-shim-berth-v2 against the stock
//! containerd-shim-runc-v2 (with runc) under a private containerd 1.6:
//!
//! * latency of `ctr run --rm IMAGE ID /bin/true`, interleaved runs, median
//!   and p90;
//! * memory per container: RSS and PSS of every shim process (for berth:
//!   the server, and its launcher while one runs) with N containers running
//!   `sleep`, 0.5 s after the last `ctr run -d` and again once berth's
//!   on-demand launchers have exited.
//!
//! Usage: berth-shim-bench [--runs N] [--containers N] [--version 1.6|2.1]
//! Run the release build (`cargo build --release -p berth-bench -p
//! containerd-shim-berth-v2`): the shim is taken from beside this binary.

use std::fs;
use std::time::{Duration, Instant};

use berth_integration::containerd::{Containerd, Version, IMAGE, RUNTIME};
use berth_integration::harness::wait_until;

const RUNC: &str = "io.containerd.runc.v2";

fn arg(name: &str, default: usize) -> usize {
    let a: Vec<String> = std::env::args().collect();
    a.iter()
        .position(|x| x == name)
        .and_then(|i| a.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// Shim processes of `c` whose command line names `bin`.
fn shims(c: &Containerd, bin: &str) -> Vec<i32> {
    let needle = format!("-address\0{}\0", c.sock.display());
    let mut pids = Vec::new();
    for e in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&fs::read(e.path().join("cmdline")).unwrap_or_default())
            .into_owned();
        if cmd.contains(bin) && cmd.contains(&needle) {
            pids.push(pid);
        }
    }
    pids
}

fn kb(path: String, key: &str) -> u64 {
    let text = fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// RSS and PSS (KiB) of `pids`, summed.
fn sample(pids: &[i32]) -> (u64, u64) {
    let rss = pids
        .iter()
        .map(|p| kb(format!("/proc/{p}/status"), "VmRSS:"))
        .sum();
    let pss = pids
        .iter()
        .map(|p| kb(format!("/proc/{p}/smaps_rollup"), "Pss:"))
        .sum();
    (rss, pss)
}

/// Per container for `runtime`: (RSS KiB, PSS KiB, process count) 0.5 s
/// after the last `ctr run -d` (berth's on-demand launcher still alive),
/// and again once it has exited (berth) or 3 s later (runc's shim).
type Mem = [(f64, f64, usize); 2];

fn memory(c: &Containerd, runtime: &str, bin: &str, n: usize) -> Result<Mem, String> {
    let ids: Vec<String> = (0..n)
        .map(|i| format!("mem-{}-{i}", if runtime == RUNC { "runc" } else { "berth" }))
        .collect();
    for id in &ids {
        let o = c.ctr(&[
            "run",
            "-d",
            "--runtime",
            runtime,
            IMAGE,
            id,
            "sleep",
            "1000",
        ]);
        if !o.success() {
            return Err(format!("{runtime}: {o}"));
        }
    }
    let per = |pids: &[i32]| {
        let (rss, pss) = sample(pids);
        (rss as f64 / n as f64, pss as f64 / n as f64, pids.len())
    };
    std::thread::sleep(Duration::from_millis(500));
    let busy = per(&shims(c, bin));
    if runtime == RUNC {
        std::thread::sleep(Duration::from_secs(3));
    } else {
        let launchers = || {
            shims(c, bin).into_iter().any(|p| {
                fs::read(format!("/proc/{p}/cmdline"))
                    .map(|c| c.ends_with(b"\0launch\0"))
                    .unwrap_or(false)
            })
        };
        if !wait_until(Duration::from_secs(10), || !launchers()) {
            return Err("berth's launchers did not exit when idle".into());
        }
    }
    let idle = per(&shims(c, bin));
    for id in &ids {
        c.ctr(&["tasks", "kill", "-s", "KILL", id]);
    }
    for id in &ids {
        wait_until(Duration::from_secs(10), || {
            c.ctr(&["tasks", "rm", id]).success()
        });
        c.ctr(&["containers", "rm", id]);
    }
    Ok([busy, idle])
}

fn main() {
    let runs = arg("--runs", 20);
    let n = arg("--containers", 10);
    let version = if std::env::args().any(|a| a == "2.1") {
        Version::V21
    } else {
        Version::V16
    };
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("berth-shim-bench: must run as root");
        std::process::exit(1);
    }
    // The shim beside this binary (release), unless BERTH_SHIM_BIN says.
    if std::env::var_os("BERTH_SHIM_BIN").is_none() {
        if let Some(dir) = std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(|p| p.to_path_buf()))
        {
            let shim = dir.join("containerd-shim-berth-v2");
            if !shim.is_file() {
                eprintln!(
                    "berth-shim-bench: no {} (cargo build --release -p containerd-shim-berth-v2)",
                    shim.display()
                );
                std::process::exit(1);
            }
            std::env::set_var("BERTH_SHIM_BIN", shim);
        }
    }
    println!(
        "shim: {}",
        std::env::var("BERTH_SHIM_BIN").unwrap_or_default()
    );
    let c = Containerd::start(version, "bench");
    let r = measure(&c, version, runs, n);
    // Stop containerd and remove everything (Drop) before exiting.
    drop(c);
    if let Err(e) = r {
        eprintln!("berth-shim-bench: {e}");
        std::process::exit(1);
    }
}

fn measure(c: &Containerd, version: Version, runs: usize, n: usize) -> Result<(), String> {
    let rt = [
        (RUNTIME, "containerd-shim-berth-v2"),
        (RUNC, "containerd-shim-runc-v2"),
    ];
    let mut times: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for i in 0..runs + 2 {
        for k in 0..2 {
            let k = (k + i) % 2;
            let id = format!("lat-{k}-{i}");
            let t = Instant::now();
            let o = c.ctr(&["run", "--rm", "--runtime", rt[k].0, IMAGE, &id, "/bin/true"]);
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            if !o.success() {
                return Err(o.to_string());
            }
            if i >= 2 {
                times[k].push(ms); // the first two rounds warm up
            }
        }
    }
    println!("containerd {version:?}, `ctr run --rm {IMAGE} ID /bin/true`, {runs} runs each (interleaved):");
    for k in 0..2 {
        let med = percentile(&mut times[k], 0.5);
        let p90 = percentile(&mut times[k], 0.9);
        println!("  {:<26} median {med:7.1} ms   p90 {p90:7.1} ms", rt[k].1);
    }
    println!("memory per container, {n} containers running `sleep` (all shim processes):");
    let mems = [memory(c, rt[0].0, rt[0].1, n)?, memory(c, rt[1].0, rt[1].1, n)?];
    for (when, i) in [
        ("0.5 s after the last run (berth's launchers alive)", 0),
        ("idle (berth's launchers exited; runc: 3 s later)", 1),
    ] {
        println!("  {when}:");
        for (k, m) in mems.iter().enumerate() {
            let (rss, pss, procs) = m[i];
            println!(
                "    {:<26} RSS {:6.2} MiB   PSS {:6.2} MiB   ({procs} shim processes)",
                rt[k].1,
                rss / 1024.0,
                pss / 1024.0
            );
        }
    }
    Ok(())
}
