//! The command line: runc's commands and flags (clap derive). Options may
//! stand before or after the container id.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "berth",
    about = "berth: an OCI container runtime with runc's command line",
    disable_version_flag = true
)]
pub struct Cli {
    /// Directory for container state (tmpfs recommended) [default:
    /// /run/berth; rootless: $XDG_RUNTIME_DIR/berth].
    #[arg(long, global = true, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Write log messages to FILE instead of stderr.
    #[arg(long, global = true, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Log format.
    #[arg(long = "log-format", global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log debug messages.
    #[arg(long, global = true)]
    pub debug: bool,
    /// Have systemd make the cgroups (a transient scope per container;
    /// linux.cgroupsPath is slice:prefix:name).
    #[arg(long = "systemd-cgroup", global = true)]
    pub systemd_cgroup: bool,
    /// Path to criu for checkpoint/restore (not supported: berth has neither).
    /// Before the command, as in runc.
    #[arg(long, value_name = "PATH")]
    pub criu: Option<PathBuf>,
    /// Rootless mode: true, false or auto (auto: rootless when the
    /// effective uid is not 0). Before the command.
    #[arg(long, default_value = "auto", value_name = "true|false|auto")]
    pub rootless: String,
    /// Print the version.
    #[arg(short = 'v', long)]
    pub version: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl From<LogFormat> for berth::logging::LogFormat {
    fn from(f: LogFormat) -> Self {
        match f {
            LogFormat::Text => berth::logging::LogFormat::Text,
            LogFormat::Json => berth::logging::LogFormat::Json,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a container from a bundle; it waits for `start`.
    Create(CreateArgs),
    /// Start a created container.
    Start { id: String },
    /// Create and start a container; in the foreground, wait for it and exit with its status.
    Run(RunArgs),
    /// Print the state of a container as JSON.
    State { id: String },
    /// Send a signal to a container's init (or, with --all, to all its processes).
    Kill {
        /// Signal every process in the container.
        #[arg(short, long)]
        all: bool,
        id: String,
        /// Signal name (TERM, SIGTERM) or number; default SIGTERM.
        signal: Option<String>,
    },
    /// Delete a container and everything it holds.
    Delete {
        /// Kill a created or running container first.
        #[arg(short, long)]
        force: bool,
        id: String,
    },
    /// Run a process in a container (flags go before the container id; the
    /// command follows it).
    Exec(Box<ExecArgs>),
    /// Write a default config.json (like `runc spec`) into a bundle.
    Spec {
        /// Bundle directory to write config.json into.
        #[arg(short, long, default_value = ".", value_name = "DIR")]
        bundle: PathBuf,
        /// A config for an unprivileged user: a user namespace mapping the
        /// caller's ids, no network namespace, /sys bound, no cgroup limits.
        #[arg(long)]
        rootless: bool,
        /// Embed berth's default seccomp profile (seccomp-profiles/default.json)
        /// as linux.seccomp.
        #[arg(long = "seccomp-default")]
        seccomp_default: bool,
    },
    /// List the processes of a container: `ps` output (default `-ef`)
    /// limited to them, or their pids as JSON.
    Ps {
        #[arg(short, long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
        id: String,
        /// Options for ps(1) (table format only).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "PS_OPTIONS")]
        ps_args: Vec<String>,
    },
    /// Print the runtime-spec features this build of berth implements (JSON).
    Features,
    /// List containers.
    #[command(alias = "ls")]
    List {
        /// Print only the ids.
        #[arg(short, long)]
        quiet: bool,
        #[arg(short, long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
    },
    /// Change a container's resource limits (zero or absent values are left as they are).
    Update(Box<UpdateArgs>),
    /// Freeze every process of a container.
    Pause { id: String },
    /// Thaw a paused container.
    Resume { id: String },
    /// Print a container's stats and OOM events as JSON lines.
    Events {
        /// Print the stats once and exit.
        #[arg(long)]
        stats: bool,
        /// Time between stats events (Go duration: 5s, 500ms, 1m).
        #[arg(long, default_value = "5s", value_name = "D")]
        interval: String,
        id: String,
    },
}

/// `update`: runc's flags. Memory sizes take runc's units (512m, 1g) or -1.
#[derive(Debug, Args, Default)]
pub struct UpdateArgs {
    /// JSON resources (linux.resources form) from FILE, or `-` for stdin.
    #[arg(short, long, value_name = "FILE")]
    pub resources: Option<String>,
    #[arg(long = "blkio-weight", value_name = "N")]
    pub blkio_weight: Option<u16>,
    #[arg(long = "cpu-period", value_name = "US")]
    pub cpu_period: Option<u64>,
    #[arg(long = "cpu-quota", value_name = "US", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    #[arg(long = "cpu-burst", value_name = "US")]
    pub cpu_burst: Option<u64>,
    #[arg(long = "cpu-share", visible_alias = "cpu-shares", value_name = "N")]
    pub cpu_share: Option<u64>,
    #[arg(long = "cpu-rt-period", value_name = "US")]
    pub cpu_rt_period: Option<u64>,
    #[arg(long = "cpu-rt-runtime", value_name = "US", allow_hyphen_values = true)]
    pub cpu_rt_runtime: Option<i64>,
    #[arg(long = "cpuset-cpus", value_name = "LIST")]
    pub cpuset_cpus: Option<String>,
    #[arg(long = "cpuset-mems", value_name = "LIST")]
    pub cpuset_mems: Option<String>,
    #[arg(long = "cpu-idle", value_name = "0|1")]
    pub cpu_idle: Option<i64>,
    #[arg(long, value_name = "BYTES", allow_hyphen_values = true)]
    pub memory: Option<String>,
    #[arg(long = "memory-reservation", value_name = "BYTES", allow_hyphen_values = true)]
    pub memory_reservation: Option<String>,
    #[arg(long = "memory-swap", value_name = "BYTES", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    #[arg(long = "pids-limit", value_name = "N", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Obsolete in runc; refused.
    #[arg(long = "kernel-memory", hide = true)]
    pub kernel_memory: Option<String>,
    /// Obsolete in runc; refused.
    #[arg(long = "kernel-memory-tcp", hide = true)]
    pub kernel_memory_tcp: Option<String>,
    /// Intel RDT (not supported).
    #[arg(long = "l3-cache-schema")]
    pub l3_cache_schema: Option<String>,
    /// Intel RDT (not supported).
    #[arg(long = "mem-bw-schema")]
    pub mem_bw_schema: Option<String>,
    pub id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Bundle directory (holds config.json).
    #[arg(short, long, default_value = ".", value_name = "DIR")]
    pub bundle: PathBuf,
    /// Write init's pid to FILE.
    #[arg(long = "pid-file", value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Use MS_MOVE + chroot instead of pivot_root (for ramfs roots).
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Do not create a new session keyring for the container.
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Pass N extra fds (3 .. 3+N-1) to the container.
    #[arg(long = "preserve-fds", default_value_t = 0, value_name = "N")]
    pub preserve_fds: u32,
    /// Unix socket that receives the terminal's master fd (process.terminal).
    #[arg(long = "console-socket", value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    pub id: String,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub create: CreateArgs,
    /// Return once the container runs instead of waiting for it.
    #[arg(short, long)]
    pub detach: bool,
    /// Keep the container (stopped) after a foreground run ends; `delete`
    /// removes it.
    #[arg(long)]
    pub keep: bool,
    /// In the foreground, do not adopt the container's orphaned processes
    /// (berth still adopts init when it is its grandchild).
    #[arg(long = "no-subreaper")]
    pub no_subreaper: bool,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// A process.json (the config's `process` object) to run instead of a
    /// command line; the other flags still apply on top of it.
    #[arg(short, long, value_name = "FILE")]
    pub process: Option<PathBuf>,
    /// Add (or replace) an environment variable KEY=VALUE.
    #[arg(short, long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Working directory in the container (absolute).
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,
    /// User to run as: UID[:GID], numeric.
    #[arg(short, long, value_name = "UID[:GID]")]
    pub user: Option<String>,
    /// Additional group ids (repeat, or comma-separated).
    #[arg(short = 'g', long = "additional-gids", value_name = "GID", value_delimiter = ',')]
    pub additional_gids: Vec<u32>,
    /// Add a capability to the bounding, effective and permitted sets (and
    /// ambient, when the process has inheritable ones).
    #[arg(short, long, value_name = "CAP")]
    pub cap: Vec<String>,
    /// Set no_new_privs for the process.
    #[arg(long = "no-new-privs", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    pub no_new_privs: Option<bool>,
    /// AppArmor profile for the process.
    #[arg(long, value_name = "PROFILE")]
    pub apparmor: Option<String>,
    /// SELinux label for the process.
    #[arg(long = "process-label", value_name = "LABEL")]
    pub process_label: Option<String>,
    /// Give the process a terminal.
    #[arg(short, long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    pub tty: Option<bool>,
    /// Unix socket that receives the terminal's master fd (with -t and -d).
    #[arg(long = "console-socket", value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// Return once the process runs instead of waiting for it.
    #[arg(short, long)]
    pub detach: bool,
    /// Write the process's pid to FILE.
    #[arg(long = "pid-file", value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Pass N extra fds (3 .. 3+N-1) to the process.
    #[arg(long = "preserve-fds", default_value_t = 0, value_name = "N")]
    pub preserve_fds: u32,
    /// Run in a sub-cgroup of the container: [CONTROLLER[,CONTROLLER]:]PATH
    /// (repeat for several controllers).
    #[arg(long, value_name = "[CONTROLLER:]PATH")]
    pub cgroup: Vec<String>,
    /// Allow exec in a paused container.
    #[arg(long = "ignore-paused")]
    pub ignore_paused: bool,
    pub id: String,
    /// The command and its arguments (none with --process).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}
