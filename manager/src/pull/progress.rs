//! Pull progress on stderr: a bar per layer (bytes, speed) on a terminal
//! while it downloads, then a line that stays; only the lines when stderr
//! is not a terminal; nothing with --quiet.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::image::human;

#[derive(Clone)]
pub enum Progress {
    Bars(MultiProgress),
    Lines,
    Quiet,
}

impl Progress {
    pub fn new(quiet: bool) -> Progress {
        if quiet {
            Progress::Quiet
        } else if std::io::stderr().is_terminal() {
            Progress::Bars(MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))
        } else {
            Progress::Lines
        }
    }

    /// A message of its own (above the bars on a terminal).
    pub fn say(&self, msg: &str) {
        match self {
            Progress::Bars(m) => {
                let _ = m.println(msg);
            }
            Progress::Lines => eprintln!("{msg}"),
            Progress::Quiet => {}
        }
    }

    /// A bar for blob `what` of `size` bytes.
    pub fn blob(&self, what: &str, size: u64) -> Bar {
        let pb = match self {
            Progress::Bars(m) => {
                let pb = m.add(ProgressBar::new(size));
                let style = ProgressStyle::with_template(
                    "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {msg}",
                )
                .unwrap()
                .progress_chars("=> ");
                pb.set_style(style);
                pb.set_prefix(what.to_string());
                pb.enable_steady_tick(Duration::from_millis(200));
                Some(pb)
            }
            _ => None,
        };
        Bar {
            pb,
            out: self.clone(),
            what: what.to_string(),
            size,
            start: Instant::now(),
            resumed: 0,
        }
    }
}

pub struct Bar {
    pb: Option<ProgressBar>,
    out: Progress,
    what: String,
    size: u64,
    start: Instant,
    resumed: u64,
}

impl Bar {
    pub fn inc(&self, n: u64) {
        if let Some(pb) = &self.pb {
            pb.inc(n);
        }
    }

    /// `have` bytes of an interrupted download are kept: go on from there.
    pub fn resume(&mut self, have: u64) {
        self.resumed = have;
        if let Some(pb) = &self.pb {
            pb.set_position(have);
            pb.reset_eta();
            pb.set_message(format!("resuming at {}", human(have)));
        }
    }

    /// The server sent the whole blob again: start over.
    pub fn restart(&mut self) {
        self.resumed = 0;
        if let Some(pb) = &self.pb {
            pb.set_position(0);
        }
    }

    /// The blob is there: the bar gives way to a line that stays.
    pub fn done(self, how: &str) {
        let line = if how == "downloaded" {
            let secs = self.start.elapsed().as_secs_f64();
            let rate = (self.size - self.resumed) as f64 / secs.max(0.001);
            let extra = if self.resumed > 0 {
                format!(", resumed at {}", human(self.resumed))
            } else {
                String::new()
            };
            format!(
                "{}: downloaded {} in {secs:.1}s ({}/s{extra})",
                self.what,
                human(self.size),
                human(rate as u64)
            )
        } else {
            format!("{}: {how}", self.what)
        };
        if let Some(pb) = &self.pb {
            pb.finish_and_clear();
        }
        self.out.say(&line);
    }

    pub fn failed(self) {
        if let Some(pb) = &self.pb {
            pb.abandon_with_message("failed");
        }
    }
}
