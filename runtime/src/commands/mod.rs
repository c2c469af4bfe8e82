//! One small module per subcommand. Each takes parsed arguments and returns
//! the process exit code or an error; printing the error is main's job.

pub mod create;
pub mod delete;
pub mod events;
pub mod exec;
pub mod features;
pub mod kill;
pub mod list;
pub mod pause;
pub mod ps;
pub mod resume;
pub mod run;
pub mod spec;
pub mod start;
pub mod state;
pub mod update;

use crate::cli::{Cli, Command};
use crate::error::{Error, Result};

/// Run the parsed command line; returns the exit code.
pub fn dispatch(cli: Cli) -> Result<i32> {
    if cli.systemd_cgroup {
        return Err(Error::Usage(
            "--systemd-cgroup: the systemd cgroup driver is not supported; berth manages cgroupfs itself".into(),
        ));
    }
    if let Some(c) = &cli.criu {
        return Err(Error::Usage(format!(
            "--criu {}: checkpoint and restore are not supported by berth",
            c.display()
        )));
    }
    let rootless = match cli.rootless.as_str() {
        "true" => true,
        "false" => false,
        // SAFETY: geteuid has no preconditions and cannot fail.
        "auto" => (unsafe { libc::geteuid() }) != 0,
        other => return Err(Error::Usage(format!("--rootless {other:?}: expected true, false or auto"))),
    };
    if rootless {
        return Err(Error::Usage(
            "--rootless: berth runs containers as root only (rootless mode is not supported)".into(),
        ));
    }
    let root = &cli.root;
    let Some(cmd) = cli.command else {
        return Err(Error::Usage("no command given; see `berth --help`".into()));
    };
    match &cmd {
        Command::Create(a) => create::check_inherited_fds(a)?,
        Command::Run(a) => create::check_inherited_fds(&a.create)?,
        _ => {}
    }
    if matches!(cmd, Command::Create(_) | Command::Run(_)) {
        // Before anything else: may re-execute berth (CVE-2019-5736).
        crate::security::seal::prepare()?;
    }
    if matches!(cmd, Command::Exec(_)) {
        // The exec'd process is visible in the container while it runs
        // berth's code: always from a sealed copy (CVE-2019-5736).
        crate::security::seal::ensure_sealed()?;
    }
    match cmd {
        Command::Create(a) => create::create(root, &a).map(|_| 0),
        Command::Start { id } => start::start(root, &id).map(|_| 0),
        Command::Run(a) => run::run(root, &a),
        Command::State { id } => state::state(root, &id).map(|_| 0),
        Command::Kill { all, id, signal } => kill::kill(root, &id, signal.as_deref(), all).map(|_| 0),
        Command::Delete { force, id } => delete::delete(root, &id, force).map(|_| 0),
        Command::List { quiet, format } => list::list(root, quiet, format).map(|_| 0),
        Command::Exec(a) => exec::exec(root, &a),
        Command::Spec { bundle, rootless, seccomp_default } => spec::spec(&bundle, rootless, seccomp_default).map(|_| 0),
        Command::Features => features::features().map(|_| 0),
        Command::Ps { format, id, ps_args } => ps::ps(root, &id, format, &ps_args).map(|_| 0),
        Command::Update(a) => update::update(root, &a).map(|_| 0),
        Command::Pause { id } => pause::pause(root, &id).map(|_| 0),
        Command::Resume { id } => resume::resume(root, &id).map(|_| 0),
        Command::Events { stats, interval, id } => events::events(root, &id, stats, &interval),
    }
}
