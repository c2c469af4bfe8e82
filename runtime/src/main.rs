//! The `berth` binary: parse runc's command line, run the command, print
//! the error (and log it) on failure with exit status 1.

use std::io::Write;

use clap::Parser;

fn main() {
    // The hot commands skip clap (see cli_fast); everything else, errors
    // and help included, is clap's.
    let cli = berth::cli_fast::parse(std::env::args_os().skip(1)).unwrap_or_else(berth::cli::Cli::parse);
    if cli.version {
        println!("berth version {}\nspec: {}", berth::VERSION, berth::OCI_VERSION);
        return;
    }
    berth::logging::init(cli.log.as_deref(), cli.log_format, cli.debug);
    let logged_to_file = cli.log.is_some();
    match berth::commands::dispatch(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            if logged_to_file {
                log::error!("{e}");
            }
            let _ = writeln!(std::io::stderr(), "berth: {e}");
            std::process::exit(1);
        }
    }
}
