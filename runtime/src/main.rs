//! The `berth` binary: parse runc's command line, run the command, print
//! the error (and log it) on failure with exit status 1:
//! `berth: error: MESSAGE` on stderr, a `level=error` line in `--log`.
//! The command line (`cli`, `cli_fast`, `commands/`) is the binary's own:
//! it parses, calls the library's container API (`berth::Container`), and
//! prints.

#![deny(clippy::undocumented_unsafe_blocks)]

mod cli;
mod cli_fast;
mod commands;

use std::io::Write;

use clap::Parser;

fn main() {
    // The hot commands skip clap (see cli_fast); everything else, errors
    // and help included, is clap's (all of it with BERTH_SLOW_PATHS=cli).
    let fast = if berth::fast::off("cli") { None } else { cli_fast::parse(std::env::args_os().skip(1)) };
    let cli = fast.unwrap_or_else(cli::Cli::parse);
    if cli.version {
        // runc's layout: dockerd reads the "version" and "commit:" lines.
        let seccomp = libseccomp::ScmpVersion::current().map(|v| format!("{}.{}.{}", v.major, v.minor, v.micro));
        println!("berth version {}\ncommit: {}\nspec: {}", berth::VERSION, berth::COMMIT, berth::OCI_VERSION);
        if let Ok(v) = seccomp {
            println!("libseccomp: {v}");
        }
        return;
    }
    let logged_to_file = berth::logging::init(cli.log.as_deref(), cli.log_format.into(), cli.debug);
    let slow = berth::fast::slow_ones();
    if !slow.is_empty() {
        log::debug!("slow twins of the fast paths ({}): {}", berth::fast::VAR, slow.join(", "));
    }
    match commands::dispatch(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            // What kind of failure (the shim maps the same to ttrpc codes).
            let errno = e.errno().map(|n| format!(", errno {n}")).unwrap_or_default();
            log::debug!("error kind {}{errno}", e.kind().name());
            // Config values are clipped where messages echo them; this
            // bounds whatever else grew long.
            let e = berth::error::bound_message(e.to_string(), 16 * 1024);
            if logged_to_file {
                log::error!("{e}");
            }
            // Marked as an error, as runc's `level=error` (tools match on it).
            let _ = writeln!(std::io::stderr(), "berth: error: {e}");
            std::process::exit(1);
        }
    }
}
