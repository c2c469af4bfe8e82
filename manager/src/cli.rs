//! berthctl's command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "berthctl",
    version,
    about = "Run OCI images with berth, through containerd-shim-berth-v2 (no containerd needed)"
)]
pub struct Cli {
    /// State directory (images, containers).
    #[arg(long, global = true, default_value = "/var/lib/berthctl")]
    pub root: PathBuf,
    /// Set by the shim when it runs berthctl as its publish binary.
    #[arg(long, global = true, hide = true)]
    pub address: Option<String>,
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Pull an image from a registry (busybox, library/busybox:1.36, HOST:PORT/REPO@sha256:...).
    Pull {
        /// No progress output.
        #[arg(short, long)]
        quiet: bool,
        #[command(flatten)]
        conn: ConnArgs,
        image: String,
    },
    /// Log in to a registry: check the credentials, save them in ~/.docker/config.json.
    Login {
        #[arg(short, long)]
        username: Option<String>,
        #[arg(short, long)]
        password: Option<String>,
        /// Read the password from stdin.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        conn: ConnArgs,
        /// HOST[:PORT] (default docker.io).
        registry: Option<String>,
    },
    /// Forget a registry's credentials.
    Logout { registry: Option<String> },
    /// Manage images: import, ls, rm, prune.
    #[command(subcommand)]
    Image(ImageCmd),
    /// Run a command in a new container.
    Run(Box<RunArgs>),
    /// List containers.
    Ps {
        /// Only names.
        #[arg(short, long)]
        quiet: bool,
        /// JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Run a command in a running container.
    Exec(ExecArgs),
    /// Send a signal to a container's init (default KILL).
    Kill {
        #[arg(short, long, default_value = "KILL")]
        signal: String,
        name: String,
    },
    /// Stop a container: TERM, then KILL after --time seconds.
    Stop {
        #[arg(short, long, default_value_t = 10)]
        time: u64,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove containers (-f: kill running ones first).
    Rm {
        #[arg(short, long)]
        force: bool,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Print a container's output (-f: follow until it stops).
    Logs {
        #[arg(short, long)]
        follow: bool,
        name: String,
    },
    /// Resource usage of a container (cgroup metrics from the shim).
    Stats {
        /// The metrics as JSON.
        #[arg(long)]
        json: bool,
        name: String,
    },
    /// (internal) the shim's event publisher.
    #[command(hide = true)]
    Publish {
        #[arg(long)]
        topic: String,
        #[arg(long)]
        namespace: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum ImageCmd {
    /// Import an OCI image layout archive or a docker-archive (docker save).
    Import {
        file: PathBuf,
        /// Name the image (else the archive's name).
        #[arg(long)]
        name: Option<String>,
    },
    /// List images.
    #[command(alias = "list")]
    Ls,
    /// Remove an image (a name of an image with several names: untag).
    Rm {
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Remove the blobs, unpacked layers and interrupted downloads no image uses.
    Prune,
}

/// How to reach a registry.
#[derive(Args, Debug, Default, Clone)]
pub struct ConnArgs {
    /// PEM file of a CA to trust for the registry (besides the system's).
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// A registry (HOST[:PORT]) that may be reached over plain HTTP (loopback ones may anyway).
    #[arg(long, value_name = "HOST")]
    pub insecure_registry: Vec<String>,
}

impl ConnArgs {
    pub fn conn(&self) -> crate::pull::registry::Conn {
        crate::pull::registry::Conn { ca: self.ca.clone(), insecure: self.insecure_registry.clone() }
    }
}

#[derive(Args, Debug, Default, Clone)]
pub struct RunArgs {
    /// Remove the container when it exits.
    #[arg(long)]
    pub rm: bool,
    /// Detach: print the name and leave it running (output in `logs`).
    #[arg(short, long)]
    pub detach: bool,
    /// Allocate a terminal.
    #[arg(short, long)]
    pub tty: bool,
    /// Keep stdin open (pass berthctl's stdin to the container).
    #[arg(short, long)]
    pub interactive: bool,
    #[arg(long)]
    pub name: Option<String>,
    /// Environment: K=V (or K: the value from berthctl's environment).
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    /// Bind mount: SRC:DST[:ro] (SRC an absolute host path).
    #[arg(short, long = "volume")]
    pub volume: Vec<String>,
    /// Memory limit: bytes or with a unit (k, m, g).
    #[arg(short, long)]
    pub memory: Option<String>,
    /// CPUs (a fraction is fine: 0.5).
    #[arg(long)]
    pub cpus: Option<String>,
    #[arg(long)]
    pub pids_limit: Option<i64>,
    /// Mount the root filesystem read-only.
    #[arg(long)]
    pub read_only: bool,
    /// UID[:GID] or a user name from the image's /etc/passwd.
    #[arg(short, long)]
    pub user: Option<String>,
    #[arg(long)]
    pub cap_add: Vec<String>,
    #[arg(long)]
    pub cap_drop: Vec<String>,
    /// A seccomp profile (OCI linux.seccomp JSON), or "unconfined".
    #[arg(long)]
    pub seccomp: Option<String>,
    #[arg(long)]
    pub hostname: Option<String>,
    /// Working directory inside the container.
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Pull the image: missing (when not here), always, never.
    #[arg(long, default_value = "missing", value_parser = ["missing", "always", "never"])]
    pub pull: String,
    /// No pull progress output.
    #[arg(short, long)]
    pub quiet: bool,
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Run a bundle (config.json + rootfs) instead of an image.
    #[arg(long)]
    pub bundle: Option<PathBuf>,
    /// IMAGE [CMD...] (with --bundle: CMD... only).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub image: Vec<String>,
}

#[derive(Args, Debug, Clone)]
pub struct ExecArgs {
    #[arg(short, long)]
    pub tty: bool,
    #[arg(short, long)]
    pub interactive: bool,
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    #[arg(short, long)]
    pub user: Option<String>,
    #[arg(short, long)]
    pub workdir: Option<String>,
    pub name: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub cmd: Vec<String>,
}
