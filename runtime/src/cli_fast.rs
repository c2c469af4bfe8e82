//! A fast path for the command lines that start and stop containers.
//!
//! Building clap's parser for all of berth's commands faults in about a
//! megabyte of code and tables, which is most of the difference between a
//! `berth run` that uses less memory than crun and one that uses more (see
//! README, Performance). containerd's runc shim, dockerd and podman call
//! `create`, `start`, `state`, `kill` and `delete` (and people `run`) with a
//! handful of plain flags: those are parsed here, by hand, into the same
//! [`Cli`] value clap would produce.
//!
//! The fast path only accepts what it is sure of. Anything else (another
//! command, `--help`, an unknown or repeated flag, `--flag=value` on a
//! boolean, bundled short flags, a value that starts with `-`, a missing or
//! extra argument, non-UTF-8) returns `None`, and `main` hands the whole
//! command line to clap, which parses it or prints its usual error or help.
//! The tests check that every line the fast path accepts parses to the same
//! value with clap.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::cli::{Cli, Command, CreateArgs, LogFormat, RunArgs};

/// Parse `args` (without argv[0]) if the fast path covers it.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Option<Cli> {
    let args: Vec<String> = args.into_iter().map(|a| a.into_string().ok()).collect::<Option<_>>()?;
    let mut p = Parser { args: &args, pos: 0, seen: Vec::new() };
    let mut g = Globals::default();
    // Global flags before the command.
    let name = loop {
        let a = p.next()?;
        if !g.flag(a, &mut p)? {
            if a.starts_with('-') {
                return None;
            }
            break a;
        }
    };
    let command = match name {
        "create" => Command::Create(p.create_args(&mut g, &mut |_, _| Some(false))?),
        "run" => {
            let (mut detach, mut keep, mut no_subreaper) = (false, false, false);
            let create = p.create_args(&mut g, &mut |a, p| {
                let (f, name) = match a {
                    "-d" | "--detach" => (&mut detach, "--detach"),
                    "--keep" => (&mut keep, "--keep"),
                    "--no-subreaper" => (&mut no_subreaper, "--no-subreaper"),
                    _ => return Some(false),
                };
                p.once(name)?;
                *f = true;
                Some(true)
            })?;
            Command::Run(RunArgs { create, detach, keep, no_subreaper })
        }
        "start" => Command::Start { id: p.ids(&mut g, 1, &mut |_, _| Some(false))?.remove(0) },
        "state" => Command::State { id: p.ids(&mut g, 1, &mut |_, _| Some(false))?.remove(0) },
        "delete" => {
            let mut force = false;
            let id = p.ids(&mut g, 1, &mut |a, p| bool_flag(a, p, &["-f", "--force"], &mut force))?.remove(0);
            Command::Delete { force, id }
        }
        "kill" => {
            let mut all = false;
            let mut pos = p.ids(&mut g, 2, &mut |a, p| bool_flag(a, p, &["-a", "--all"], &mut all))?.into_iter();
            let id = pos.next()?;
            Command::Kill { all, id, signal: pos.next() }
        }
        _ => return None,
    };
    Some(Cli {
        root: g.root,
        log: g.log,
        log_format: g.log_format.unwrap_or(LogFormat::Text),
        debug: g.debug,
        systemd_cgroup: false,
        criu: None,
        rootless: "auto".into(),
        version: false,
        command: Some(command),
    })
}

fn bool_flag(a: &str, p: &mut Parser, names: &[&'static str], out: &mut bool) -> Option<bool> {
    if !names.contains(&a) {
        return Some(false);
    }
    p.once(names[names.len() - 1])?;
    *out = true;
    Some(true)
}

struct Parser<'a> {
    args: &'a [String],
    pos: usize,
    /// Flags given so far (by long name): a repeat goes to clap.
    seen: Vec<&'static str>,
}

/// A command's own flags: `Some(true)` taken, `Some(false)` not one of
/// them, `None` give up.
type Extra<'f> = dyn FnMut(&str, &mut Parser) -> Option<bool> + 'f;

impl<'a> Parser<'a> {
    fn next(&mut self) -> Option<&'a str> {
        let a = self.args.get(self.pos)?;
        self.pos += 1;
        Some(a.as_str())
    }

    /// The value of `flag`: inline (`--flag=v`) or the next argument. Empty
    /// values and values that look like flags go to clap.
    fn value(&mut self, inline: Option<&str>) -> Option<String> {
        let v = match inline {
            Some(v) => v,
            None => self.next()?,
        };
        (!v.is_empty() && !v.starts_with('-')).then(|| v.to_string())
    }

    /// Record `name` as given; None if it was given before.
    fn once(&mut self, name: &'static str) -> Option<()> {
        if self.seen.contains(&name) {
            return None;
        }
        self.seen.push(name);
        Some(())
    }

    /// Positional ids (at least one, at most `max`), with global flags and
    /// the command's flags (`extra`) anywhere among them.
    fn ids(&mut self, g: &mut Globals, max: usize, extra: &mut Extra) -> Option<Vec<String>> {
        let mut pos = Vec::new();
        while let Some(a) = self.next() {
            if a.starts_with('-') {
                if !g.flag(a, self)? && !extra(a, self)? {
                    return None;
                }
            } else if pos.len() < max {
                pos.push(a.to_string());
            } else {
                return None;
            }
        }
        (!pos.is_empty()).then_some(pos)
    }

    fn create_args(&mut self, g: &mut Globals, extra: &mut Extra) -> Option<CreateArgs> {
        let mut c = CreateArgs {
            bundle: PathBuf::from("."),
            pid_file: None,
            no_pivot: false,
            no_new_keyring: false,
            preserve_fds: 0,
            console_socket: None,
            id: String::new(),
        };
        let id = self
            .ids(g, 1, &mut |a, p| {
                let (flag, inline) = split_inline(a);
                match flag {
                    "-b" | "--bundle" => {
                        p.once("--bundle")?;
                        c.bundle = PathBuf::from(p.value(inline)?);
                    }
                    "--pid-file" => {
                        p.once("--pid-file")?;
                        c.pid_file = Some(PathBuf::from(p.value(inline)?));
                    }
                    "--console-socket" => {
                        p.once("--console-socket")?;
                        c.console_socket = Some(PathBuf::from(p.value(inline)?));
                    }
                    "--preserve-fds" => {
                        p.once("--preserve-fds")?;
                        let v = p.value(inline)?;
                        // Digits only: clap's u32 parser takes "+3" too, this does not.
                        if !v.bytes().all(|b| b.is_ascii_digit()) {
                            return None;
                        }
                        c.preserve_fds = v.parse().ok()?;
                    }
                    "--no-pivot" if inline.is_none() => {
                        p.once("--no-pivot")?;
                        c.no_pivot = true;
                    }
                    "--no-new-keyring" if inline.is_none() => {
                        p.once("--no-new-keyring")?;
                        c.no_new_keyring = true;
                    }
                    _ => return extra(a, p),
                }
                Some(true)
            })?
            .remove(0);
        c.id = id;
        Some(c)
    }
}

/// `--flag=value` into (`--flag`, Some(value)); anything else unchanged.
fn split_inline(a: &str) -> (&str, Option<&str>) {
    match a.split_once('=') {
        Some((f, v)) if f.starts_with("--") => (f, Some(v)),
        _ => (a, None),
    }
}

/// The global flags the fast path knows.
#[derive(Default)]
struct Globals {
    root: Option<PathBuf>,
    log: Option<PathBuf>,
    log_format: Option<LogFormat>,
    debug: bool,
}

impl Globals {
    /// `Some(true)` if `a` was a global flag (its value consumed),
    /// `Some(false)` if it is not one, `None` to give up.
    fn flag(&mut self, a: &str, p: &mut Parser) -> Option<bool> {
        let (flag, inline) = split_inline(a);
        match flag {
            "--root" => {
                p.once("--root")?;
                self.root = Some(PathBuf::from(p.value(inline)?));
            }
            "--log" => {
                p.once("--log")?;
                self.log = Some(PathBuf::from(p.value(inline)?));
            }
            "--log-format" => {
                p.once("--log-format")?;
                self.log_format = Some(match p.value(inline)?.as_str() {
                    "text" => LogFormat::Text,
                    "json" => LogFormat::Json,
                    _ => return None,
                });
            }
            "--debug" if inline.is_none() => {
                p.once("--debug")?;
                self.debug = true;
            }
            _ => return Some(false),
        }
        Some(true)
    }
}

#[cfg(test)]
mod tests;
