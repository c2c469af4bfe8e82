//! `berth ps`: the container's processes, as JSON pids or as ps(1)'s table
//! filtered to the container (runc's behaviour; ps args default to `-ef`;
//! ps's errors go to our stderr).

use std::ffi::CString;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use crate::cli::ListFormat;
use crate::container::{StateDir, Status};
use crate::error::{Error, Result};
use crate::sys::{self, Forked};

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
    let out = run_ps(&args)?;
    print!("{}", filter(&out, &pids)?);
    Ok(())
}

/// fork + execvp("ps") with stdout to a pipe (berth is single-threaded).
fn run_ps(args: &[String]) -> Result<String> {
    let argv: Vec<CString> = std::iter::once("ps")
        .chain(args.iter().map(String::as_str))
        .map(|a| CString::new(a).map_err(|_| Error::Usage("ps: an argument holds a NUL byte".into())))
        .collect::<Result<_>>()?;
    let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    let mut fds = [0; 2];
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(Error::os("pipe", std::io::Error::last_os_error()));
    }
    let (rd, wr) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let pid = match unsafe { sys::clone_fork(0, None) }.map_err(|e| Error::os("fork ps", e))? {
        Forked::Child => unsafe {
            libc::dup2(wr.as_raw_fd(), 1);
            libc::execvp(ptrs[0], ptrs.as_ptr());
            libc::_exit(127)
        },
        Forked::Parent { pid, .. } => pid,
    };
    drop(wr);
    let mut out = Vec::new();
    let read = std::fs::File::from(rd).read_to_end(&mut out);
    let mut st = 0;
    unsafe { libc::waitpid(pid, &mut st, 0) };
    read.map_err(|e| Error::os("read ps output", e))?;
    if !(libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0) {
        let how = if libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 127 {
            "could not be run (is procps installed?)".to_string()
        } else {
            format!("failed (status {st:#x})")
        };
        return Err(Error::Other(format!("ps {} {how}", args.join(" "))));
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
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
