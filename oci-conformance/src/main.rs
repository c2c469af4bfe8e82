//! oci-conformance: the OCI runtime-spec conformance suite, run against
//! any runtime binary through its command line (create, start, state,
//! kill, delete with a global --root). See README.md in this crate.

mod bfq;
mod bundle;
mod cleanup;
mod cli;
mod console;
mod ctx;
mod host;
mod hostenv;
mod kv;
mod proc;
mod report;
mod runtime;
mod suite;
#[cfg(test)]
mod unit_tests;

use std::collections::VecDeque;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;

use ctx::{Ctx, RunInfo, Track, Verdict};
use report::{Outcome, Results};
use runtime::Runtime;
use suite::Test;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_interrupt(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let tests: Vec<Test> = suite::all()
        .into_iter()
        .filter(|t| cli.filter.is_empty() || cli.filter.iter().any(|f| t.name.contains(f.as_str())))
        .collect();
    if cli.list {
        let mut areas: std::collections::BTreeMap<String, (usize, usize)> = Default::default();
        for t in &tests {
            println!("{}\t{}\t{}", t.name, t.level.as_str(), t.since.unwrap_or("-"));
            let e = areas.entry(t.area()).or_default();
            match t.level {
                suite::Level::Must => e.0 += 1,
                suite::Level::Should => e.1 += 1,
            }
        }
        let musts = tests.iter().filter(|t| t.level == suite::Level::Must).count();
        println!(
            "# {} requirements ({} MUST, {} SHOULD), by area (MUST+SHOULD):",
            tests.len(),
            musts,
            tests.len() - musts
        );
        for (a, (m, s)) in areas {
            println!("#   {a}: {m}+{s}");
        }
        return ExitCode::SUCCESS;
    }
    match run(cli, tests) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("oci-conformance: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: cli::Cli, tests: Vec<Test>) -> Result<ExitCode, String> {
    if tests.is_empty() {
        return Err(format!("no requirement matches --filter {:?}", cli.filter));
    }
    if (cli.baseline.is_some() || cli.write_baseline.is_some()) && cli.runtimes.len() != 1 {
        return Err("--baseline and --write-baseline need exactly one --runtime".into());
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("run as root: the suite creates real containers".into());
    }
    let specs = runtime::resolve(&cli.runtimes)?;
    let baseline = match &cli.baseline {
        Some(p) => Some(read_baseline(p)?),
        None => None,
    };
    // Fail now, not after the run, if an output file cannot be written.
    for (flag, p) in [("--markdown", &cli.markdown), ("--write-baseline", &cli.write_baseline)] {
        if let Some(p) = p {
            if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| format!("{flag} {}: {e}", p.display()))?;
            }
            std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(p)
                .map_err(|e| format!("{flag} {}: {e}", p.display()))?;
        }
    }
    // Before any thread exists: a mount namespace of our own.
    hostenv::enter_private_mount_ns()?;
    // SAFETY: installing a handler that only stores an atomic.
    unsafe {
        libc::signal(libc::SIGINT, on_interrupt as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_interrupt as *const () as libc::sighandler_t);
    }
    let run_id = format!("{:x}", std::process::id());
    let work = cli
        .workdir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join(format!("oci-conformance-{run_id}")));
    hostenv::mount_tmpfs(&work)?;
    let result = run_in(&cli, tests, specs, baseline, &work, &run_id);
    let left = cleanup::final_sweep(&run_id);
    for l in left {
        eprintln!("oci-conformance: cleanup: {l}");
    }
    berth_integration::host::umount_below(&work);
    let _ = std::fs::remove_dir(&work);
    result
}

fn read_baseline(p: &PathBuf) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(p).map_err(|e| format!("--baseline {}: {e}", p.display()))?;
    Ok(text
        .lines()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect())
}

fn run_in(
    cli: &cli::Cli,
    tests: Vec<Test>,
    specs: Vec<(String, PathBuf)>,
    baseline: Option<Vec<String>>,
    work: &std::path::Path,
    run_id: &str,
) -> Result<ExitCode, String> {
    let tpl =
        bundle::make_template(work).map_err(|e| format!("making the rootfs template in {}: {e}", work.display()))?;
    let probe_all = |tpl: &bundle::Template, specs: &[(String, PathBuf)], round: usize| -> Vec<Runtime> {
        specs
            .iter()
            .enumerate()
            .map(|(i, (name, path))| runtime::probe(name, path, tpl, &work.join(format!("probe{round}-{i}")), run_id))
            .collect()
    };
    let mut rts = probe_all(&tpl, &specs, 0);
    let mut notes = vec![format!(
        "kernel {}, run as root in a private mount namespace",
        host::kernel()
    )];
    if let Some(ctrls) = hostenv::hybrid_v2_controllers() {
        let broken: Vec<String> = rts
            .iter()
            .filter(|r| r.broken.is_some())
            .map(|r| r.name.clone())
            .collect();
        if !broken.is_empty() && !cli.host_cgroups {
            // What the first probes left on the cgroup2 side goes before it is hidden.
            for l in cleanup::final_sweep(run_id) {
                eprintln!("oci-conformance: cleanup: {l}");
            }
            hostenv::hide_unified()?;
            notes.push(format!(
                "{} could not create containers on this hybrid cgroup host (cgroup2 at {} has controllers: {ctrls}); \
                 every runtime ran with {} unmounted in the suite's private mount namespace (the host is unchanged; --host-cgroups turns this off)",
                broken.join(", "),
                hostenv::UNIFIED,
                hostenv::UNIFIED
            ));
            rts = probe_all(&tpl, &specs, 1);
        }
    }
    let host = host::Host::detect();
    notes.push(format!("cgroups: {}", host.describe_cgroups()));
    let rts: Vec<Arc<Runtime>> = rts.into_iter().map(Arc::new).collect();
    let total = tests.len() * rts.len();
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "TAP version 13");
    let _ = writeln!(
        stdout,
        "# oci-conformance: {} requirements x {} runtime(s)",
        tests.len(),
        rts.len()
    );
    for rt in &rts {
        let kill = match rt.kill_form {
            runtime::KillForm::Positional => "kill ID SIGNAL",
            runtime::KillForm::SignalFlag => "kill --signal SIGNAL ID",
        };
        let _ = writeln!(
            stdout,
            "# runtime {}: {} ({}); ociVersion {}; {kill}",
            rt.name,
            rt.path.display(),
            rt.version,
            rt.oci_version
        );
        if let Some(b) = &rt.broken {
            let _ = writeln!(stdout, "# runtime {} is unusable, every test fails: {b}", rt.name);
        }
    }
    for n in &notes {
        let _ = writeln!(stdout, "# note: {n}");
    }
    let _ = writeln!(stdout, "1..{total}");
    let _ = stdout.flush();

    let run = Arc::new(RunInfo {
        id: run_id.to_string(),
        work: work.to_path_buf(),
        tpl,
        host,
    });
    let tests = Arc::new(tests);
    let mut jobs: VecDeque<(usize, usize)> = VecDeque::new();
    for ti in 0..tests.len() {
        for ri in 0..rts.len() {
            jobs.push_back((ti, ri));
        }
    }
    let jobs = Arc::new(Mutex::new(jobs));
    let (tx, rx) = mpsc::channel::<(usize, usize, Outcome, Duration, Vec<String>)>();
    let timeout = Duration::from_secs(cli.timeout.max(1));
    let mut workers = Vec::new();
    for _ in 0..cli.jobs.max(1) {
        let (jobs, tx, tests, rts, run) = (jobs.clone(), tx.clone(), tests.clone(), rts.clone(), run.clone());
        workers.push(std::thread::spawn(move || loop {
            if INTERRUPTED.load(Ordering::SeqCst) {
                break;
            }
            let Some((ti, ri)) = jobs.lock().ok().and_then(|mut j| j.pop_front()) else {
                break;
            };
            let (o, el, log) = run_one(&tests[ti], ti, &rts[ri], ri, &run, timeout);
            if tx.send((ti, ri, o, el, log)).is_err() {
                break;
            }
        }));
    }
    drop(tx);
    let mut results = Results::new(rts.clone(), (*tests).clone());
    let mut n = 0;
    loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok((ti, ri, o, el, log)) => {
                n += 1;
                let _ = write!(
                    stdout,
                    "{}",
                    report::tap_line(n, &rts[ri], &tests[ti], &o, el, &log, cli.verbose)
                );
                let _ = stdout.flush();
                results.cells[ti][ri] = Some((o, el));
            }
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    for w in workers {
        let _ = w.join();
    }
    if INTERRUPTED.load(Ordering::SeqCst) {
        let _ = writeln!(stdout, "Bail out! interrupted after {n} of {total} tests");
        return Ok(ExitCode::from(130));
    }
    let _ = write!(stdout, "{}", report::summary(&results));
    if let Some(p) = &cli.markdown {
        let mut header = notes.clone();
        for rt in &rts {
            if let Some(b) = &rt.broken {
                header.push(format!("{} is unusable: {b}", rt.name));
            }
        }
        let cmd = std::env::var("OC_DOCS_COMMAND").unwrap_or_else(|_| "oci-conformance --markdown FILE".into());
        let mut scrub = vec![
            (work.display().to_string(), "$WORK".to_string()),
            (format!("oc-{run_id}-"), "oc-RUN-".to_string()),
            (format!("/{run_id}-"), "/RUN-".to_string()),
        ];
        scrub.extend(rts.iter().map(|rt| (rt.path.display().to_string(), rt.name.clone())));
        std::fs::write(p, report::markdown(&results, &header, &cmd, &scrub))
            .map_err(|e| format!("--markdown {}: {e}", p.display()))?;
        let _ = writeln!(stdout, "# wrote {}", p.display());
    }
    if let Some(p) = &cli.write_baseline {
        let mut text = format!(
            "# Requirements {} passes (written by oci-conformance --write-baseline).\n",
            rts[0].name
        );
        for (ti, t) in tests.iter().enumerate() {
            if matches!(results.cells[ti][0], Some((Outcome::Pass, _))) {
                text.push_str(&t.name);
                text.push('\n');
            }
        }
        std::fs::write(p, text).map_err(|e| format!("--write-baseline {}: {e}", p.display()))?;
        let _ = writeln!(stdout, "# wrote {}", p.display());
    }
    if let Some(base) = baseline {
        return Ok(compare_baseline(&results, &base, &cli.filter, &mut stdout));
    }
    Ok(if results.any_fail() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Regressions: baseline requirements that no longer pass. New passes
/// only print a note.
fn compare_baseline(r: &Results, base: &[String], filter: &[String], out: &mut impl Write) -> ExitCode {
    let mut regressions = Vec::new();
    let mut skipped = Vec::new();
    for name in base {
        let Some(ti) = r.tests.iter().position(|t| &t.name == name) else {
            let filtered_out = !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str()));
            if !filtered_out && !suite::all().iter().any(|t| &t.name == name) {
                regressions.push(format!(
                    "{name}: listed in the baseline but no such requirement (renamed or removed? update the baseline)"
                ));
            }
            continue;
        };
        match &r.cells[ti][0] {
            Some((Outcome::Pass, _)) | None => {}
            Some((Outcome::Fail(m), _)) => regressions.push(format!("{name}: {}", proc::squeeze(m, 300))),
            Some((Outcome::Skip(m), _)) => skipped.push(format!("{name}: {}", proc::squeeze(m, 300))),
        }
    }
    let new: Vec<&str> = r
        .tests
        .iter()
        .enumerate()
        .filter(|(ti, t)| matches!(r.cells[*ti][0], Some((Outcome::Pass, _))) && !base.contains(&t.name))
        .map(|(_, t)| t.name.as_str())
        .collect();
    for s in &skipped {
        let _ = writeln!(out, "# baseline: skipped here (not counted as a regression): {s}");
    }
    for n in &new {
        let _ = writeln!(out, "# baseline: newly passing, add it to the baseline: {n}");
    }
    if regressions.is_empty() {
        let _ = writeln!(
            out,
            "# baseline: no regression ({} baseline requirements, {} newly passing)",
            base.len(),
            new.len()
        );
        ExitCode::SUCCESS
    } else {
        for g in &regressions {
            let _ = writeln!(out, "# REGRESSION: {g}");
        }
        let _ = writeln!(out, "# baseline: {} regression(s)", regressions.len());
        ExitCode::from(1)
    }
}

/// Run one test in its own thread under a watchdog, then clean up.
fn run_one(
    test: &Test,
    ti: usize,
    rt: &Arc<Runtime>,
    ri: usize,
    run: &Arc<RunInfo>,
    timeout: Duration,
) -> (Outcome, Duration, Vec<String>) {
    let start = Instant::now();
    if let Some(b) = &rt.broken {
        return (
            Outcome::Fail(format!("runtime unusable: {b}")),
            Duration::ZERO,
            Vec::new(),
        );
    }
    let tag = format!("{}-{ri}t{ti}", run.id);
    let dir = run.work.join(format!("t-{ri}-{ti}"));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        return (
            Outcome::Fail(format!("create {}: {e}", dir.display())),
            Duration::ZERO,
            Vec::new(),
        );
    }
    let track = Arc::new(Track::default());
    let cx = Ctx::new(rt.clone(), run.clone(), dir, tag, start + timeout, track.clone());
    let (tx, rx) = mpsc::channel();
    let f = test.f.clone();
    let cx2 = cx.clone();
    let spawned = std::thread::Builder::new().name(test.name.clone()).spawn(move || {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&cx2)));
        let _ = tx.send(r);
    });
    let outcome = match spawned {
        Err(e) => Outcome::Fail(format!("cannot start the test thread: {e}")),
        Ok(_) => match rx.recv_timeout(timeout + Duration::from_secs(5)) {
            Ok(Ok(Ok(()))) => Outcome::Pass,
            Ok(Ok(Err(Verdict::Fail(m)))) => Outcome::Fail(m),
            Ok(Ok(Err(Verdict::Skip(m)))) => Outcome::Skip(m),
            Ok(Err(p)) => {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()));
                Outcome::Fail(format!("test panicked: {}", msg.unwrap_or_default()))
            }
            Err(_) => Outcome::Fail(format!(
                "timed out after {}s (test abandoned, its containers killed)",
                timeout.as_secs()
            )),
        },
    };
    let outcome = match outcome {
        Outcome::Fail(m) => match test.since {
            Some(v) if rt.older_than(v) => Outcome::Fail(format!(
                "{m} (the requirement is from runtime-spec {v}; this runtime accepts configs up to ociVersion {})",
                rt.oci_version
            )),
            _ => Outcome::Fail(m),
        },
        o => o,
    };
    let left = cleanup::after_test(&cx.0);
    for l in &left {
        eprintln!("oci-conformance: {} {}: cleanup: {l}", rt.name, test.name);
    }
    let log = track.log.lock().map(|l| l.clone()).unwrap_or_default();
    (outcome, start.elapsed(), log)
}
