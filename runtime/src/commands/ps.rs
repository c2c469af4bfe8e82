//! `berth ps`: the container's processes, as JSON pids or as ps(1)'s table
//! filtered to the container (runc's behaviour; ps args default to `-ef`).

use std::path::Path;
use std::process::Command;

use crate::cli::ListFormat;
use crate::container::{StateDir, Status};
use crate::error::{Error, Result};

pub fn ps(root: &Path, id: &str, format: ListFormat, args: &[String]) -> Result<()> {
    let dir = StateDir::open(root, id)?;
    let state = dir.load_required()?;
    drop(dir);
    if state.status(&root.join(id)) == Status::Stopped {
        return Err(Error::WrongState(format!("container \"{id}\" is not running")));
    }
    let pids = state.cgroups.pids();
    if format == ListFormat::Json {
        if !args.is_empty() {
            return Err(Error::Usage("ps: arguments for ps(1) only apply to --format table".into()));
        }
        println!("{}", serde_json::to_string(&pids).expect("serializes"));
        return Ok(());
    }
    let args: Vec<String> = if args.is_empty() { vec!["-ef".into()] } else { args.to_vec() };
    let out = Command::new("ps").args(&args).output().map_err(|e| Error::os("run ps", e))?;
    if !out.status.success() {
        return Err(Error::Other(format!(
            "ps {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    print!("{}", filter(&String::from_utf8_lossy(&out.stdout), &pids)?);
    Ok(())
}

/// Keep ps's header and the lines whose PID column is one of `pids`.
fn filter(text: &str, pids: &[i32]) -> Result<String> {
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("");
    let col = header
        .split_whitespace()
        .position(|f| f == "PID")
        .ok_or_else(|| Error::Other("ps output has no PID column".into()))?;
    let mut out = format!("{header}\n");
    for l in lines {
        if let Some(p) = l.split_whitespace().nth(col).and_then(|p| p.parse::<i32>().ok()) {
            if pids.contains(&p) {
                out.push_str(l);
                out.push('\n');
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn filters_by_pid_column() {
        let t = "UID PID PPID C STIME TTY TIME CMD\nroot 1 0 0 10:00 ? 00:00:01 init\nroot 42 1 0 10:00 ? 00:00:00 sh\n";
        assert_eq!(super::filter(t, &[42]).unwrap(), "UID PID PPID C STIME TTY TIME CMD\nroot 42 1 0 10:00 ? 00:00:00 sh\n");
        assert!(super::filter("UID CMD\n", &[1]).is_err());
    }
}
