//! `berth-bench`: times berth, runc and crun side by side on the same
//! busybox bundle (a benchmark, not a test). See `--help` and README.md.
//!
//! Every runtime gets its own private `--root` in one temp dir, and every
//! container a unique id. Runtimes are interleaved: within each iteration
//! each runtime runs once, starting from a different one each time, so
//! that drift in the machine's state (page cache, frequency, other load)
//! spreads evenly over all of them.

mod cli;
mod hostenv;
mod report;
mod rootless;
mod runner;

use std::path::Path;
use std::time::Duration;

use berth_integration::bundle::Bundle;
use report::Metric;
use runner::{Placement, Runtime, Timed, Workspace};
use serde_json::json;

/// How long `wait_stopped` polls before calling the runtime broken.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

fn main() {
    let code = match real_main() {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("berth-bench: {e}");
            1
        }
    };
    // The workspace guard has been dropped (containers and temp dir
    // cleaned up) by the time real_main returns.
    std::process::exit(code);
}

fn real_main() -> Result<(), String> {
    let opts = match cli::parse(std::env::args().skip(1))? {
        cli::Parsed::Help => {
            print!("{}", cli::USAGE);
            return Ok(());
        }
        cli::Parsed::Run(o) => o,
    };
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("must run as root (the runtimes create namespaces, mounts and cgroups)".into());
    }

    let mut chosen = Vec::new();
    for spec in &opts.runtimes {
        match cli::resolve(spec, opts.berth.as_deref()) {
            Ok(path) => chosen.push((spec.name.clone(), path)),
            Err(why) if opts.skip_missing => println!("skipping {}: {why}", spec.name),
            Err(why) => return Err(format!("{}: {why} (--skip-missing skips it)", spec.name)),
        }
    }
    if chosen.is_empty() {
        return Err("no runtime left to benchmark".into());
    }

    let cgroup_note = match hostenv::hybrid_v2_controllers() {
        Some(c) if !opts.host_cgroups => {
            hostenv::hide_unified_hierarchy()?;
            Some(format!(
                "hybrid cgroups with [{c}] on cgroup2 (crun 1.8.1 refuses that): all runtimes run \
                 in a private mount namespace without /sys/fs/cgroup/unified (--host-cgroups: keep it)"
            ))
        }
        Some(c) => Some(format!("hybrid cgroups with [{c}] on cgroup2, kept visible (--host-cgroups)")),
        None => None,
    };
    runner::install_signal_handlers();
    // Declared before the workspace, so dropped after its containers.
    let user = match (opts.rootless, chosen.iter().find(|(n, _)| n == "berth")) {
        (false, _) => None,
        (true, Some((_, berth))) => Some(rootless::make_user(berth)),
        (true, None) => Some(rootless::make_user(&berth_integration::harness::berth_bin())),
    };
    let mut ws = Workspace::new()?;
    let bundle = ws.dir.join("bundle");
    let mut b = Bundle::create(&bundle, &["/bin/true"])
        .map_err(|e| format!("making the busybox bundle in {}: {e}", bundle.display()))?;
    if let Some(u) = &user {
        rootless::make_rootless(&mut b.config, u);
        b.write_config().map_err(|e| format!("write the bundle's config.json: {e}"))?;
    }
    if let Some(f) = &opts.seccomp {
        let text = std::fs::read_to_string(f).map_err(|e| format!("--seccomp: read {}: {e}", f.display()))?;
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("--seccomp: {}: invalid JSON: {e}", f.display()))?;
        b.config["linux"]["seccomp"] = v;
        b.write_config().map_err(|e| format!("--seccomp: write the bundle's config.json: {e}"))?;
        println!("  bundle: linux.seccomp from {}", f.display());
    }
    for (name, path) in chosen {
        let placement = match () {
            _ if opts.systemd.is_empty() => Placement::Default,
            _ if opts.systemd.contains(&name) => Placement::Systemd,
            _ => Placement::Cgroupfs,
        };
        let mut rt = Runtime::new(&name, path, &ws.dir, placement)?;
        if let Some(u) = &user {
            rt.run_as(rootless::run_as(u))?;
        }
        ws.runtimes.push(rt);
    }

    let mut runtimes_meta = Vec::new();
    println!(
        "berth-bench: {} runs per metric, runtimes interleaved; busybox bundle running /bin/true",
        opts.runs
    );
    if let Some(note) = &cgroup_note {
        println!("  note: {note}");
    }
    if let Some(u) = &user {
        println!("  rootless: every runtime runs as {} (uid {}), the bundle in its user namespace", u.name, u.uid);
    }
    for rt in &ws.runtimes {
        let version = rt.version();
        println!("  {:<6} {} ({})", rt.name, rt.path.display(), version.as_deref().unwrap_or("no --version"));
        if rt.placement != Placement::Default {
            println!("         {}", rt.placement.describe());
        }
        runtimes_meta.push(json!({"name": rt.name, "path": rt.path, "version": version,
                                  "cgroups": rt.placement.describe()}));
    }

    // For exec: a container that runs until it is deleted.
    let sleeper = ws.dir.join("sleeper");
    let mut s = Bundle::create(&sleeper, &["sleep", "100000"])
        .map_err(|e| format!("making the busybox bundle in {}: {e}", sleeper.display()))?;
    if let Some(u) = &user {
        rootless::make_rootless(&mut s.config, u);
        s.write_config().map_err(|e| format!("write the sleeper's config.json: {e}"))?;
        rootless::give(&bundle, u);
        rootless::give(&sleeper, u);
    }
    let metrics = measure(&mut ws.runtimes, &bundle, &sleeper, &opts)?;
    let names: Vec<String> = ws.runtimes.iter().map(|r| r.name.clone()).collect();
    println!();
    print!("{}", report::table(&metrics, &names));

    if let Some(path) = &opts.json {
        let meta = json!({
            "date_utc": utc_now(),
            "kernel": kernel_release(),
            "cpus": std::thread::available_parallelism().map(|n| n.get()).ok(),
            "runs": opts.runs,
            "idle_ms": opts.idle_ms,
            "warmup_rounds": opts.warmup,
            "cgroup_note": cgroup_note,
            "rootless": user.as_ref().map(|u| json!({"user": u.name, "uid": u.uid})),
            "bundle": "busybox-static rootfs, args [\"/bin/true\"], ociVersion 1.0.2",
            "runtimes": runtimes_meta,
        });
        let doc = report::json(&metrics, &names, meta);
        let text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
        std::fs::write(path, text + "\n").map_err(|e| format!("writing {}: {e}", path.display()))?;
        println!("\nJSON results written to {}", path.display());
    }
    Ok(())
}

/// All measurements. Returns the metrics in display order.
fn measure(rts: &mut [Runtime], bundle: &Path, sleeper: &Path, opts: &cli::Options) -> Result<Vec<Metric>, String> {
    let k = rts.len();
    let mut cold = Metric::new("run_cold", "run /bin/true, cold (idle before)", "ms", k);
    let mut warm = Metric::new("run_warm", "run /bin/true, back to back", "ms", k);
    let mut create = Metric::new("create", "create", "ms", k);
    let mut start = Metric::new("start", "start", "ms", k);
    let mut delete = Metric::new("delete", "delete (stopped container)", "ms", k);
    let mut exec = Metric::new("exec", "exec /bin/true (running container)", "ms", k);
    let mut rss = Metric::new("run_peak_rss", "run: peak RSS of runtime", "MiB", k);
    let mut ids = Ids::default();

    // Untimed runs (one round by default): fail fast on a broken runtime
    // and warm the page cache for every binary alike.
    eprintln!("warm-up: {} untimed round(s) of run", opts.warmup);
    for i in 0..opts.warmup {
        for j in order(i, k) {
            let id = ids.next(&rts[j].name);
            rts[j].run(bundle, &id)?;
        }
    }
    if opts.groups.run {
        measure_run(rts, bundle, opts, &mut ids, [&mut cold, &mut warm, &mut rss])?;
    }
    if opts.groups.lifecycle {
        measure_lifecycle(rts, bundle, opts, &mut ids, [&mut create, &mut start, &mut delete])?;
    }
    if opts.groups.exec {
        measure_exec(rts, sleeper, opts, &mut ids, &mut exec)?;
    }
    Ok(vec![cold, warm, create, start, delete, exec, rss])
}

fn ms(t: Timed) -> f64 {
    t.wall.as_secs_f64() * 1e3
}

/// `run` after an idle pause ("cold") and back to back, and the peak RSS
/// of both.
fn measure_run(
    rts: &mut [Runtime],
    bundle: &Path,
    opts: &cli::Options,
    ids: &mut Ids,
    [cold, warm, rss]: [&mut Metric; 3],
) -> Result<(), String> {
    let k = rts.len();
    let idle = Duration::from_millis(opts.idle_ms);
    let mib = |t: Timed| t.maxrss_kib as f64 / 1024.0;

    eprintln!("run, cold: {} iterations, {} ms idle before each run", opts.runs, opts.idle_ms);
    for i in 0..opts.runs {
        for j in order(i, k) {
            std::thread::sleep(idle);
            let id = ids.next(&rts[j].name);
            let t = rts[j].run(bundle, &id)?;
            cold.samples[j].push(ms(t));
            rss.samples[j].push(mib(t));
        }
    }

    eprintln!("run, back to back: {} iterations", opts.runs);
    for i in 0..opts.runs {
        for j in order(i, k) {
            let id = ids.next(&rts[j].name);
            let t = rts[j].run(bundle, &id)?;
            warm.samples[j].push(ms(t));
            rss.samples[j].push(mib(t));
        }
    }
    Ok(())
}

/// `create`, `start` and `delete` of one container, timed separately.
fn measure_lifecycle(
    rts: &mut [Runtime],
    bundle: &Path,
    opts: &cli::Options,
    ids: &mut Ids,
    [create, start, delete]: [&mut Metric; 3],
) -> Result<(), String> {
    let k = rts.len();
    eprintln!("create / start / delete: {} iterations", opts.runs);
    for i in 0..opts.runs {
        for j in order(i, k) {
            let rt = &mut rts[j];
            let id = ids.next(&rt.name);
            create.samples[j].push(ms(rt.create(bundle, &id)?));
            start.samples[j].push(ms(rt.start(&id)?));
            rt.wait_stopped(&id, STOP_TIMEOUT)?;
            delete.samples[j].push(ms(rt.delete(&id)?));
        }
    }
    Ok(())
}

/// `exec /bin/true` into a running container of each runtime.
fn measure_exec(
    rts: &mut [Runtime],
    sleeper: &Path,
    opts: &cli::Options,
    ids: &mut Ids,
    exec: &mut Metric,
) -> Result<(), String> {
    let k = rts.len();
    eprintln!("exec: {} iterations", opts.runs);
    let running: Vec<String> = rts.iter().map(|rt| ids.next(&rt.name)).collect();
    for (rt, id) in rts.iter_mut().zip(&running) {
        rt.run_detached(sleeper, id)?;
    }
    for i in 0..opts.runs {
        for j in order(i, k) {
            exec.samples[j].push(ms(rts[j].exec(&running[j], &["/bin/true"])?));
        }
    }
    for (rt, id) in rts.iter_mut().zip(&running) {
        rt.delete_force(id)?;
    }
    Ok(())
}

/// Round-robin order of the runtimes for iteration `i`, rotated so that
/// each runtime goes first equally often.
fn order(i: usize, k: usize) -> impl Iterator<Item = usize> {
    (0..k).map(move |n| (i + n) % k)
}

/// Unique container ids: pid of this benchmark, runtime, counter.
#[derive(Default)]
struct Ids(u64);

impl Ids {
    fn next(&mut self, runtime: &str) -> String {
        self.0 += 1;
        format!("bench-{}-{runtime}-{}", std::process::id(), self.0)
    }
}

fn kernel_release() -> Option<String> {
    // SAFETY: utsname is plain data; uname fills it.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut u) } != 0 {
        return None;
    }
    // SAFETY: uname NUL-terminates its fields.
    let r = unsafe { std::ffi::CStr::from_ptr(u.release.as_ptr()) };
    Some(r.to_string_lossy().into_owned())
}

/// Current time as `YYYY-MM-DDTHH:MM:SSZ` (civil-from-days, no chrono).
fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    #[test]
    fn order_rotates() {
        let v: Vec<usize> = super::order(1, 3).collect();
        assert_eq!(v, [1, 2, 0]);
    }
}
