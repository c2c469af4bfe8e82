//! The subcommands: each parses its arguments into the library's options,
//! calls the container API (`berth::Container`, `berth::run`), and prints.
//! The exit code or an error is returned; printing the error is main's job.
//!
//! * `options.rs`: `create`, `run` and `exec` flags as `CreateOptions`,
//!   `RunOptions`, `ExecOptions`.
//! * `resources.rs`: `update`'s flags and `--resources` as a LinuxResources;
//!   runc's sizes and Go durations (`events --interval`).
//! * `list.rs`, `ps.rs`, `state.rs`: the commands that only print.

mod list;
mod options;
mod ps;
mod resources;
mod state;

use std::path::Path;

use berth::error::{Error, Result};
use berth::{Container, Event, Watch};
use serde_json::json;

use crate::cli::{Cli, Command};

/// Run the parsed command line; returns the exit code.
pub fn dispatch(cli: Cli) -> Result<i32> {
    if let Some(c) = &cli.criu {
        return Err(Error::Usage(format!(
            "--criu {}: checkpoint and restore are not supported by berth",
            c.display()
        )));
    }
    let rootless = match cli.rootless.as_str() {
        "true" => true,
        "false" => false,
        "auto" => berth::host_is_rootless(),
        other => return Err(Error::Usage(format!("--rootless {other:?}: expected true, false or auto"))),
    };
    let host = berth::select_host(rootless)?;
    // An explicit --root wins over the host's default.
    let root = &cli.root.unwrap_or_else(|| host.default_state_root());
    let Some(cmd) = cli.command else {
        return Err(Error::Usage("no command given; see `berth --help`".into()));
    };
    match &cmd {
        Command::Create(a) => berth::check_inherited_fds(a.preserve_fds)?,
        Command::Run(a) => berth::check_inherited_fds(a.create.preserve_fds)?,
        _ => {}
    }
    if matches!(cmd, Command::Create(_) | Command::Run(_)) {
        // Before anything else: may re-execute berth (CVE-2019-5736).
        berth::seal::prepare()?;
    }
    if matches!(cmd, Command::Exec(_)) {
        // The exec'd process is visible in the container while it runs
        // berth's code: always from a sealed copy (CVE-2019-5736).
        berth::seal::ensure_sealed()?;
    }
    match cmd {
        Command::Create(a) => Container::create(&options::create(root, &a, cli.systemd_cgroup)).map(|_| 0),
        Command::Start { id } => start(root, &id).map(|_| 0),
        Command::Run(a) => berth::run(&options::create(root, &a.create, cli.systemd_cgroup), &options::run(&a)),
        Command::State { id } => state::state(root, &id).map(|_| 0),
        Command::Kill { all, id, signal } => {
            let sig = berth::parse_signal(signal.as_deref().unwrap_or("SIGTERM"))?;
            Container::load(root, &id)?.kill(sig, all).map(|_| 0)
        }
        Command::Delete { force, id } => match Container::load(root, &id) {
            Err(Error::NotFound(_)) if force => Ok(0),
            c => c?.delete(force).map(|_| 0),
        },
        Command::List { quiet, format } => list::list(root, quiet, format).map(|_| 0),
        Command::Exec(a) => {
            // Before berth opens anything that could take those numbers.
            berth::check_preserved_fds(a.preserve_fds)?;
            match Container::load(root, &a.id)?.exec(&options::exec(&a)?)? {
                berth::Executed::Exited(status) => Ok(status),
                berth::Executed::Running(_) => Ok(0),
            }
        }
        Command::Spec { bundle, rootless, seccomp_default } => {
            berth::write_default_spec(&bundle, rootless, seccomp_default).map(|_| 0)
        }
        Command::Features => {
            let f = serde_json::to_string_pretty(&berth::features_json()).expect("features serialize");
            println!("{f}");
            Ok(0)
        }
        Command::Ps { format, id, ps_args } => ps::ps(root, &id, format, &ps_args).map(|_| 0),
        Command::Update(a) => {
            let r = resources::from_args(&a)?;
            Container::load(root, &a.id)?.update(&r).map(|_| 0)
        }
        Command::Pause { id } => Container::load(root, &id)?.pause().map(|_| 0),
        Command::Resume { id } => Container::load(root, &id)?.resume().map(|_| 0),
        Command::Events { stats, interval, id } => events(root, &id, stats, &interval),
    }
}

/// `berth start`; with `NOTIFY_SOCKET`, bind the container's notify socket
/// first and, once it runs and its lock is released, wait for its READY=1
/// and pass it on (runc's `start` blocks the same way).
fn start(root: &Path, id: &str) -> Result<()> {
    let mut c = Container::load(root, id)?;
    let proxy = match options::notify_socket() {
        Some(host) => c.notify_proxy(&host)?,
        None => None,
    };
    c.start()?;
    let pid = c.pid();
    drop(c);
    match proxy {
        Some(p) => p.forward_ready(pid),
        None => Ok(()),
    }
}

/// `berth events`: runc's JSON lines. With `--stats`, one
/// `{"type":"stats","id":ID,"data":{...}}` and exit; otherwise a stats
/// event every `--interval` and `{"type":"oom","id":ID}` on each OOM, until
/// the container stops. The state lock is not held while it runs.
fn events(root: &Path, id: &str, stats_once: bool, interval: &str) -> Result<i32> {
    let every = resources::parse_duration(interval)?;
    let watch = if stats_once { Watch::StatsOnce } else { Watch::Every(every) };
    Container::load(root, id)?.events(watch, &mut |e| {
        match e {
            Event::Stats(s) => println!("{}", json!({"type": "stats", "id": id, "data": s})),
            Event::Oom => println!("{}", json!({"type": "oom", "id": id})),
        }
        Ok(())
    })?;
    Ok(0)
}
