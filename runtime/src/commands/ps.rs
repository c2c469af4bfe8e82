//! `berth ps [--format table|json] ID [PS_OPTIONS...]`: the container's
//! processes, as runc: the pids as a JSON array, or ps(1)'s output (default
//! `ps -ef`) limited to the lines of those pids.

use std::path::Path;
use std::process::Command;

use berth::error::{Error, Result};
use berth::Container;

use crate::cli::ListFormat;

pub fn ps(root: &Path, id: &str, format: ListFormat, ps_args: &[String]) -> Result<()> {
    let pids = Container::load(root, id)?.pids()?;
    if format == ListFormat::Json {
        if !ps_args.is_empty() {
            return Err(Error::Usage(
                "ps: PS_OPTIONS are only for --format table".into(),
            ));
        }
        println!("{}", serde_json::to_string(&pids).expect("pids serialize"));
        return Ok(());
    }
    let args: Vec<&str> = if ps_args.is_empty() {
        vec!["-ef"]
    } else {
        ps_args.iter().map(String::as_str).collect()
    };
    let out = Command::new("ps")
        .args(&args)
        .output()
        .map_err(|e| Error::os("ps: run ps(1)", e))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Err(Error::os(format!("ps {}", args.join(" ")), std::io::Error::other(stderr)));
    }
    print!("{}", filter(&String::from_utf8_lossy(&out.stdout), &pids)?);
    Ok(())
}

/// The header and the lines whose PID column is one of `pids`.
fn filter(text: &str, pids: &[i32]) -> Result<String> {
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("");
    let col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .ok_or_else(|| Error::Usage("ps: the output has no PID column (PS_OPTIONS must keep it)".into()))?;
    let mut out = format!("{header}\n");
    for l in lines {
        let pid = l
            .split_whitespace()
            .nth(col)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            out.push_str(l);
            out.push('\n');
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn keeps_header_and_container_lines() {
        let t = "UID PID PPID C STIME TTY TIME CMD\nroot 1 0 0 10:00 ? 00:00:01 init\nroot 42 1 0 10:00 ? 00:00:00 sleep 9\n";
        assert_eq!(
            super::filter(t, &[42]).unwrap(),
            "UID PID PPID C STIME TTY TIME CMD\nroot 42 1 0 10:00 ? 00:00:00 sleep 9\n"
        );
        assert!(super::filter("USER CMD\n", &[1]).is_err());
    }
}
