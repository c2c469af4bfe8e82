//! Command-line flags of `berth-bench`, parsed by hand (no clap: the
//! benchmark should build fast and stay small).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

pub const USAGE: &str = "\
berth-bench: time berth, runc and crun side by side on one busybox bundle

USAGE (as root):
    berth-bench [--runs N] [--runtimes LIST] [--berth PATH] [--skip-missing]
                [--idle-ms MS] [--json FILE] [--systemd-cgroup LIST]
                [--only GROUPS] [--warmup N]

OPTIONS:
    --runs N          iterations per metric and runtime (default 50)
    --runtimes LIST   comma-separated runtimes, each NAME or NAME=/path
                      (default berth,runc,crun; NAME alone is looked up on PATH,
                      except berth, which is --berth)
    --berth PATH      the berth binary (default: beside berth-bench, else target/release/berth, from the
                      current directory, else from this workspace)
    --skip-missing    skip a runtime whose binary is missing, saying why
    --idle-ms MS      idle time before each cold run (default 100)
    --host-cgroups    keep a hybrid host's cgroup2 mount visible to the
                      runtimes (by default, when cgroup2 there has controllers,
                      which crun 1.8.1 refuses, the benchmark runs in a private
                      mount namespace without /sys/fs/cgroup/unified)
    --json FILE       also write the results (with every sample) as JSON
    --seccomp FILE    put the JSON object in FILE (an OCI linux.seccomp, e.g.
                      seccomp-profiles/default.json) into the bundle's config
    --rootless        the rootless row: every runtime runs as a user the
                      benchmark makes for the run (useradd, a subordinate id
                      range, removed after), on a bundle with a user
                      namespace mapping that user to root (as `runc spec
                      --rootless`: no network namespace, /sys bound read-only)
    --systemd-cgroup LIST
                      comma-separated runtime names (from --runtimes) that run
                      with --systemd-cgroup and a cgroupsPath
                      system.slice:berth-bench-NAME:ID (a systemd host); the
                      other runtimes then get the cgroupfs path
                      /berth-bench/ID. Without it the bundle has no cgroupsPath
    --only GROUPS     comma-separated metric groups to run: run (cold and back
                      to back, with peak RSS), lifecycle (create, start,
                      delete), exec (default: all three)
    --warmup N        untimed rounds of run per runtime before timing
                      (default 1)
    -h, --help        show this help

Runtimes run interleaved (round-robin within each iteration). Metrics:
run of /bin/true cold and back to back; create, start and delete timed
separately; exec of /bin/true into a running container; peak RSS (wait4's
ru_maxrss) of the runtime process during run.
";

/// One entry of `--runtimes`: a name and maybe an explicit path.
#[derive(Debug, Clone)]
pub struct RuntimeSpec {
    pub name: String,
    pub path: Option<PathBuf>,
}

#[derive(Debug)]
pub struct Options {
    pub runs: usize,
    pub runtimes: Vec<RuntimeSpec>,
    pub berth: Option<PathBuf>,
    pub skip_missing: bool,
    pub idle_ms: u64,
    pub host_cgroups: bool,
    pub json: Option<PathBuf>,
    pub seccomp: Option<PathBuf>,
    pub rootless: bool,
    /// Runtimes (by name) that use systemd's cgroup driver.
    pub systemd: Vec<String>,
    pub groups: Groups,
    pub warmup: usize,
}

/// Which metric groups to measure (`--only`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Groups {
    pub run: bool,
    pub lifecycle: bool,
    pub exec: bool,
}

fn parse_groups(list: &str) -> Result<Groups, String> {
    let mut g = Groups { run: false, lifecycle: false, exec: false };
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match item {
            "run" => g.run = true,
            "lifecycle" => g.lifecycle = true,
            "exec" => g.exec = true,
            _ => return Err(format!("--only: unknown group {item:?} (run, lifecycle, exec)")),
        }
    }
    if g == (Groups { run: false, lifecycle: false, exec: false }) {
        return Err("--only: empty list".into());
    }
    Ok(g)
}

/// What parsing asked for: run the benchmark, or print help.
pub enum Parsed {
    Run(Options),
    Help,
}

pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Parsed, String> {
    let mut o = Options {
        runs: 50,
        runtimes: parse_runtimes("berth,runc,crun")?,
        berth: None,
        skip_missing: false,
        idle_ms: 100,
        host_cgroups: false,
        json: None,
        seccomp: None,
        rootless: false,
        systemd: Vec::new(),
        groups: Groups { run: true, lifecycle: true, exec: true },
        warmup: 1,
    };
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        // Accept both `--flag value` and `--flag=value`.
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => it.next().ok_or_else(|| format!("{name} needs a value")),
            }
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Parsed::Help),
            "--runs" => {
                let v = value("--runs")?;
                o.runs = v.parse().map_err(|_| format!("--runs: not a number: {v:?}"))?;
                if o.runs == 0 {
                    return Err("--runs must be at least 1".into());
                }
            }
            "--runtimes" => o.runtimes = parse_runtimes(&value("--runtimes")?)?,
            "--berth" => o.berth = Some(PathBuf::from(value("--berth")?)),
            "--idle-ms" => {
                let v = value("--idle-ms")?;
                o.idle_ms = v.parse().map_err(|_| format!("--idle-ms: not a number: {v:?}"))?;
            }
            "--json" => o.json = Some(PathBuf::from(value("--json")?)),
            "--seccomp" => o.seccomp = Some(PathBuf::from(value("--seccomp")?)),
            "--systemd-cgroup" => {
                o.systemd = value("--systemd-cgroup")?
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect();
                if o.systemd.is_empty() {
                    return Err("--systemd-cgroup: empty list".into());
                }
            }
            "--only" => o.groups = parse_groups(&value("--only")?)?,
            "--warmup" => {
                let v = value("--warmup")?;
                o.warmup = v.parse().map_err(|_| format!("--warmup: not a number: {v:?}"))?;
            }
            "--skip-missing" if inline.is_none() => o.skip_missing = true,
            "--host-cgroups" if inline.is_none() => o.host_cgroups = true,
            "--rootless" if inline.is_none() => o.rootless = true,
            _ => return Err(format!("unknown argument {arg:?} (see --help)")),
        }
    }
    if let Some(n) = o.systemd.iter().find(|n| !o.runtimes.iter().any(|r| &r.name == *n)) {
        return Err(format!("--systemd-cgroup: {n} is not in --runtimes"));
    }
    Ok(Parsed::Run(o))
}

fn parse_runtimes(list: &str) -> Result<Vec<RuntimeSpec>, String> {
    let mut out: Vec<RuntimeSpec> = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let spec = match item.split_once('=') {
            Some((n, p)) => RuntimeSpec { name: n.to_string(), path: Some(PathBuf::from(p)) },
            None => RuntimeSpec { name: item.to_string(), path: None },
        };
        let ok_name = !spec.name.is_empty()
            && spec.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !ok_name {
            return Err(format!("--runtimes: bad runtime name {:?}", spec.name));
        }
        if out.iter().any(|r| r.name == spec.name) {
            return Err(format!("--runtimes: {} given twice", spec.name));
        }
        out.push(spec);
    }
    if out.is_empty() {
        return Err("--runtimes: empty list".into());
    }
    Ok(out)
}

/// Find the binary for `spec`, or say why there is none.
pub fn resolve(spec: &RuntimeSpec, berth: Option<&Path>) -> Result<PathBuf, String> {
    let candidate = match (&spec.path, spec.name.as_str()) {
        (Some(p), _) => p.clone(),
        (None, "berth") => match berth {
            Some(p) => p.to_path_buf(),
            None => default_berth(),
        },
        (None, name) => match search_path(name) {
            Some(p) => p,
            None => return Err(format!("{name} not found on PATH (or in /usr/sbin, /sbin)")),
        },
    };
    if !is_executable(&candidate) {
        let hint = if spec.name == "berth" { " (build it: cargo build --release)" } else { "" };
        return Err(format!("{} is not an executable file{hint}", candidate.display()));
    }
    Ok(std::fs::canonicalize(&candidate).unwrap_or(candidate))
}

/// `berth` beside this bench binary (both are built into
/// `target/<triple>/release/`), else `target/release/berth` from the current
/// directory, else from the workspace this bench was built in.
fn default_berth() -> PathBuf {
    if let Some(beside) = std::env::current_exe().ok().and_then(|e| Some(e.parent()?.join("berth"))) {
        if is_executable(&beside) {
            return beside;
        }
    }
    let local = PathBuf::from("target/release/berth");
    if is_executable(&local) {
        return local;
    }
    let ws = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/berth");
    if is_executable(&ws) {
        ws
    } else {
        local
    }
}

fn search_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    std::fs::metadata(p).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Options, String> {
        match parse(args.iter().map(|s| s.to_string()))? {
            Parsed::Run(o) => Ok(o),
            Parsed::Help => Err("help".into()),
        }
    }

    #[test]
    fn defaults_and_overrides() {
        let o = run(&[]).unwrap();
        assert_eq!(o.runs, 50);
        assert_eq!(o.runtimes.len(), 3);
        let o = run(&["--runs=7", "--runtimes", "runc,crun=/opt/crun", "--skip-missing"]).unwrap();
        assert_eq!(o.runs, 7);
        assert!(o.skip_missing);
        assert_eq!(o.runtimes[1].name, "crun");
        assert_eq!(o.runtimes[1].path.as_deref(), Some(Path::new("/opt/crun")));
        assert!(run(&["--runs", "0"]).is_err());
        assert!(run(&["--runtimes", "runc,runc"]).is_err());
        assert!(run(&["--bogus"]).is_err());
        assert!(run(&["--rootless"]).unwrap().rootless && !run(&[]).unwrap().rootless);
        assert_eq!(o.warmup, 1);
        assert!(o.systemd.is_empty());
    }

    #[test]
    fn systemd_list_and_groups() {
        let o = run(&["--runtimes", "berth,crun,berth-fs=/b", "--systemd-cgroup", "berth,crun", "--only", "run"])
            .unwrap();
        assert_eq!(o.systemd, ["berth", "crun"]);
        assert_eq!(o.groups, Groups { run: true, lifecycle: false, exec: false });
        assert!(run(&["--runtimes", "berth", "--systemd-cgroup", "runc"]).is_err());
        assert!(run(&["--only", "run,bogus"]).is_err());
        assert!(run(&["--only", ""]).is_err());
        assert_eq!(run(&["--warmup=3"]).unwrap().warmup, 3);
    }
}
