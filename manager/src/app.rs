//! berthctl's command line (the `cli` feature, on by default): parse,
//! dispatch to the modules, exit with the code.

use crate::{cli, ctl, events, image, pull, run, store};

use clap::Parser;

use cli::{Cli, Cmd, ImageCmd};
use store::Store;

/// berthctl's command line: parse, run, exit with the code.
pub fn main() {
    let cli = Cli::parse();
    let code = match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("berthctl: {e}");
            // 125 as docker: berthctl itself failed, not the container.
            125
        }
    };
    std::process::exit(code);
}

fn dispatch(cli: Cli) -> Result<i32, String> {
    if let Cmd::Publish { topic, namespace } = &cli.cmd {
        events::publish(cli.address.as_deref(), topic, namespace)?;
        return Ok(0);
    }
    match &cli.cmd {
        Cmd::Login { username, password, password_stdin, conn, registry } => {
            let registry = registry.as_deref().unwrap_or("docker.io");
            let (user, pass) = login_creds(username.clone(), password.clone(), *password_stdin)?;
            println!("{}", pull::login(registry, &user, &pass, &conn.conn())?);
            return Ok(0);
        }
        Cmd::Logout { registry } => {
            let registry = registry.as_deref().unwrap_or("docker.io");
            if !pull::auth::erase(registry)? {
                return Err(format!("not logged in to {registry}"));
            }
            println!("removed the credentials for {registry}");
            return Ok(0);
        }
        _ => {}
    }
    let store = Store::open(&cli.root)?;
    match cli.cmd {
        Cmd::Pull { quiet, conn, image } => {
            let id = pull::pull(&store, &image, &conn.conn(), quiet)?;
            println!("pulled {} (sha256:{id})", image::normalize(&image));
        }
        Cmd::Image(ImageCmd::Prune) => println!("{}", image::prune(&store)?),
        Cmd::Image(ImageCmd::Import { file, name }) => {
            for line in image::import(&store, &file, name.as_deref())? {
                println!("{line}");
            }
        }
        Cmd::Image(ImageCmd::Ls) => {
            println!("{:<40} {:<14} {:<16} {:>8}", "NAME", "ID", "CREATED", "SIZE");
            for img in image::list(&store)? {
                let size = image::human(image::du(&img.rootfs()));
                let names = if img.meta.names.is_empty() { vec!["<none>".to_string()] } else { img.meta.names.clone() };
                for n in names {
                    println!("{:<40} {:<14} {:<16} {:>8}", n, &img.meta.id[..12], store::age(img.meta.created), size);
                }
            }
        }
        Cmd::Image(ImageCmd::Rm { images }) => {
            let mut failed = None;
            for r in images {
                match image::remove(&store, &r) {
                    Ok(line) => println!("{line}"),
                    Err(e) => {
                        eprintln!("berthctl: {e}");
                        failed = Some(125);
                    }
                }
            }
            return Ok(failed.unwrap_or(0));
        }
        Cmd::Run(a) => return run::run(&store, *a),
        Cmd::Ps { quiet, json } => ctl::ps(&store, quiet, json)?,
        Cmd::Exec(a) => return ctl::exec(&store, a),
        Cmd::Kill { signal, name } => ctl::kill(&store, &name, &signal)?,
        Cmd::Stop { time, names } => {
            for n in names {
                ctl::stop(&store, &n, time)?;
                println!("{n}");
            }
        }
        Cmd::Rm { force, names } => {
            let mut failed = None;
            for n in names {
                match ctl::remove(&store, &n, force) {
                    Ok(()) => println!("{n}"),
                    Err(e) => {
                        eprintln!("berthctl: {e}");
                        failed = Some(125);
                    }
                }
            }
            return Ok(failed.unwrap_or(0));
        }
        Cmd::Logs { follow, name } => ctl::logs(&store, &name, follow)?,
        Cmd::Stats { json, name } => ctl::stats(&store, &name, json)?,
        Cmd::Publish { .. } | Cmd::Login { .. } | Cmd::Logout { .. } => unreachable!(),
    }
    Ok(0)
}

/// The user and password for `login`: flags, stdin, or asked on the terminal.
fn login_creds(user: Option<String>, password: Option<String>, stdin: bool) -> Result<(String, String), String> {
    use std::io::{BufRead, Write};
    let user = match user {
        Some(u) => u,
        None => {
            eprint!("Username: ");
            let _ = std::io::stderr().flush();
            let mut u = String::new();
            std::io::stdin().lock().read_line(&mut u).map_err(|e| format!("read the user name: {e}"))?;
            u.trim().to_string()
        }
    };
    if user.is_empty() || user.contains(':') {
        return Err("--username: give a user name (without ':')".into());
    }
    let password = match (password, stdin) {
        (Some(_), true) => return Err("--password and --password-stdin: give one".into()),
        (Some(p), false) => p,
        (None, _) => read_password(!stdin)?,
    };
    if password.is_empty() {
        return Err("--password: empty".into());
    }
    Ok((user, password))
}

/// A line from stdin; on a terminal (and `ask`), prompted and not echoed.
fn read_password(ask: bool) -> Result<String, String> {
    use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};
    use std::io::{BufRead, IsTerminal, Write};
    let stdin = std::io::stdin();
    let saved = (ask && stdin.is_terminal()).then(|| tcgetattr(&stdin).ok()).flatten();
    if let Some(t) = &saved {
        eprint!("Password: ");
        let _ = std::io::stderr().flush();
        let mut quiet = t.clone();
        quiet.local_flags.remove(LocalFlags::ECHO);
        let _ = tcsetattr(&stdin, SetArg::TCSANOW, &quiet);
    }
    let mut p = String::new();
    let r = stdin.lock().read_line(&mut p);
    if let Some(t) = &saved {
        let _ = tcsetattr(&stdin, SetArg::TCSANOW, t);
        eprintln!();
    }
    r.map_err(|e| format!("read the password from stdin: {e}"))?;
    Ok(p.trim_end_matches(['\n', '\r']).to_string())
}
