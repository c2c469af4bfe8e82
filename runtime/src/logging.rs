//! runc-compatible logging: `--log FILE` and `--log-format text|json`.
//! JSON lines are `{"level":"error","msg":"...","time":"..."}` (containerd
//! shows the last error line of log.json to users). Without `--log`,
//! warnings and errors go to stderr.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Mutex;

use log::{Level, LevelFilter, Log, Metadata, Record};

use crate::container::rfc3339_now;

/// How log lines are written (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// logrus's text form, as runc: `time="..." level=error msg="..."`.
    Text,
    /// One JSON object per line, as containerd reads log.json.
    Json,
}

struct Logger {
    file: Option<Mutex<File>>,
    format: LogFormat,
    level: LevelFilter,
}

fn level_name(l: Level) -> &'static str {
    match l {
        Level::Error => "error",
        Level::Warn => "warning",
        Level::Info => "info",
        Level::Debug => "debug",
        Level::Trace => "trace",
    }
}

/// One log line in `format`.
pub(crate) fn format_line(format: LogFormat, level: Level, msg: &str) -> String {
    let time = rfc3339_now();
    match format {
        LogFormat::Json => {
            let v = serde_json::json!({"level": level_name(level), "msg": msg, "time": time});
            format!("{v}\n")
        }
        LogFormat::Text => format!("time={time:?} level={} msg={msg:?}\n", level_name(level)),
    }
}

impl Log for Logger {
    fn enabled(&self, m: &Metadata) -> bool {
        m.level() <= self.level
    }

    fn log(&self, r: &Record) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let msg = r.args().to_string();
        match &self.file {
            Some(f) => {
                let line = format_line(self.format, r.level(), &msg);
                if let Ok(mut f) = f.lock() {
                    let _ = f.write_all(line.as_bytes());
                }
            }
            None => {
                let _ = writeln!(std::io::stderr(), "berth: {}: {msg}", level_name(r.level()));
            }
        }
    }

    fn flush(&self) {}
}

/// The `--log` file's fd, -1 without one (see [`file_fd`]).
static FILE_FD: AtomicI32 = AtomicI32::new(-1);

/// The fd of the `--log` file, if any: the container's init keeps it
/// (CLOEXEC) when it closes berth's other fds, as it may still log until
/// execve.
pub(crate) fn file_fd() -> Option<RawFd> {
    Some(FILE_FD.load(Ordering::Relaxed)).filter(|fd| *fd >= 0)
}

/// Install the logger. A log file that can't be opened is reported on
/// stderr and logging falls back to stderr. Returns whether messages go to
/// a file (else they already reach stderr).
pub fn init(path: Option<&Path>, format: LogFormat, debug: bool) -> bool {
    let file = path.and_then(|p| match OpenOptions::new().create(true).append(true).open(p) {
        Ok(f) => Some(Mutex::new(f)),
        Err(e) => {
            eprintln!("berth: warning: --log {}: {e}; logging to stderr", p.display());
            None
        }
    });
    let fd = file.as_ref().and_then(|f| f.lock().ok().map(|f| f.as_raw_fd())).unwrap_or(-1);
    let level = if debug { LevelFilter::Debug } else if file.is_some() { LevelFilter::Info } else { LevelFilter::Warn };
    let to_file = file.is_some();
    let logger = Logger { file, format, level };
    if log::set_boxed_logger(Box::new(logger)).is_ok() {
        FILE_FD.store(fd, Ordering::Relaxed);
        log::set_max_level(level);
    }
    to_file
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_line_has_level_msg_time() {
        let l = format_line(LogFormat::Json, Level::Error, "container \"x\" does not exist");
        let v: serde_json::Value = serde_json::from_str(l.trim()).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "container \"x\" does not exist");
        assert!(v["time"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn text_line_quotes_msg() {
        let l = format_line(LogFormat::Text, Level::Warn, "a \"b\"");
        assert!(l.contains("level=warning msg=\"a \\\"b\\\"\""), "{l}");
    }
}
