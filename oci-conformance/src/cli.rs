//! The runner's command line.

use std::path::PathBuf;

use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "oci-conformance",
    about = "Run the OCI runtime-spec conformance suite against one or more runtime binaries",
    after_help = "Output: TAP on stdout, then a summary table (pass/fail/skip per requirement, \
                  a reason for every skip, totals). Exit status: 0 when no test failed (with \
                  --baseline: when no baseline requirement regressed), 1 otherwise, 2 on usage \
                  or setup errors. Run as root."
)]
pub struct Cli {
    /// Runtime to test: a path, a name on $PATH, or NAME=PATH. Repeatable, or a comma list.
    #[arg(
        long = "runtime",
        short = 'r',
        value_name = "PATH",
        value_delimiter = ',',
        required_unless_present = "list"
    )]
    pub runtimes: Vec<String>,
    /// Only run requirements whose name contains SUBSTR (repeatable: any of them).
    #[arg(long, short = 'f', value_name = "SUBSTR")]
    pub filter: Vec<String>,
    /// Parallel workers.
    #[arg(long, short = 'j', default_value_t = 4, value_name = "N")]
    pub jobs: usize,
    /// Time limit of one test, in seconds (every runtime command in it is bounded too).
    #[arg(long, default_value_t = 30, value_name = "SECS")]
    pub timeout: u64,
    /// Write the side-by-side results table as Markdown to FILE.
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// Compare with FILE (one passing requirement per line): exit 1 only if one
    /// of them does not pass now. Needs exactly one --runtime.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// Write the requirements that passed (one --runtime) to FILE.
    #[arg(long = "write-baseline", value_name = "FILE")]
    pub write_baseline: Option<PathBuf>,
    /// Scratch directory (a tmpfs is mounted on it for the run).
    #[arg(long, value_name = "DIR")]
    pub workdir: Option<PathBuf>,
    /// Keep the host's cgroup layout even when a runtime cannot create
    /// containers with it (see README: hybrid hosts and crun 1.8).
    #[arg(long = "host-cgroups")]
    pub host_cgroups: bool,
    /// List the requirements (name, level, area) and exit.
    #[arg(long)]
    pub list: bool,
    /// Print every runtime command a failing test ran.
    #[arg(long, short = 'v')]
    pub verbose: bool,
}
