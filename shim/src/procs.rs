//! What the service keeps per container and per process (init and execs).

use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;

use containerd_shim_protos::api::{self, Status as TaskStatus};
use protobuf::well_known_types::timestamp::Timestamp;
use protobuf::MessageField;

use crate::io::Stdio;

/// A container's init or one of its exec processes.
#[derive(Default)]
pub struct Proc {
    /// 0 until started (execs).
    pub pid: i32,
    /// Its pidfd, from clone3 in the launcher: signals never reach a
    /// recycled pid.
    pub pidfd: Option<OwnedFd>,
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub terminal: bool,
    pub started: bool,
    /// Start is running: its exit (if any) waits for the start event.
    pub starting: bool,
    pub reaped: bool,
    pub exit: Option<(u32, Timestamp)>,
    pub exit_published: bool,
    pub io: Option<Stdio>,
    /// An exec's process.json, until Start.
    pub spec: Vec<u8>,
}

impl Proc {
    pub fn status(&self, paused: bool) -> TaskStatus {
        match (&self.exit, self.started) {
            (Some(_), _) => TaskStatus::STOPPED,
            (None, true) if paused => TaskStatus::PAUSED,
            (None, true) => TaskStatus::RUNNING,
            (None, false) => TaskStatus::CREATED,
        }
    }

    pub fn state(&self, id: &str, exec_id: &str, bundle: &str, paused: bool) -> api::StateResponse {
        let mut r = api::StateResponse::new();
        r.id = if exec_id.is_empty() { id } else { exec_id }.to_string();
        r.exec_id = exec_id.to_string();
        r.bundle = bundle.to_string();
        r.pid = self.pid as u32;
        r.stdin = self.stdin.clone();
        r.stdout = self.stdout.clone();
        r.stderr = self.stderr.clone();
        r.terminal = self.terminal;
        if let Some((code, at)) = &self.exit {
            r.exit_status = *code;
            r.exited_at = MessageField::some(at.clone());
        }
        r.status = self.status(paused).into();
        r
    }

    /// Has the process behind our pidfd exited (or is there none)?
    pub fn gone(&self) -> bool {
        let Some(fd) = &self.pidfd else {
            // SAFETY: kill with signal 0 only checks that the pid exists; it sends nothing.
            return unsafe { libc::kill(self.pid, 0) } != 0;
        };
        let mut p = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: `p` is a live pollfd and nfds is 1; a zero timeout never blocks.
        unsafe { libc::poll(&mut p, 1, 0) > 0 }
    }
}

pub struct Ctr {
    pub bundle: PathBuf,
    /// The container's cgroup directories (for Pids and Kill with all).
    pub cgroup_dirs: Vec<PathBuf>,
    pub init: Proc,
    pub execs: HashMap<String, Proc>,
    pub rootfs_mounted: bool,
    pub paused: bool,
}

impl Ctr {
    /// Every process in the container's cgroup.
    pub fn cgroup_pids(&self) -> Vec<i32> {
        cgroup_pids(&self.cgroup_dirs)
    }

    pub fn proc(&self, exec_id: &str) -> Option<&Proc> {
        if exec_id.is_empty() {
            Some(&self.init)
        } else {
            self.execs.get(exec_id)
        }
    }

    pub fn proc_mut(&mut self, exec_id: &str) -> Option<&mut Proc> {
        if exec_id.is_empty() {
            Some(&mut self.init)
        } else {
            self.execs.get_mut(exec_id)
        }
    }
}

pub struct Inner {
    pub ctrs: HashMap<String, Ctr>,
    /// Exits of children not (yet) known as a process of ours.
    pub unclaimed: HashMap<i32, u32>,
}

impl Inner {
    /// The live (unreaped) process with host pid `pid`: (container, exec id).
    pub fn find_pid(&self, pid: i32) -> Option<(String, String)> {
        for (id, c) in &self.ctrs {
            if c.init.pid == pid && !c.init.reaped {
                return Some((id.clone(), String::new()));
            }
            for (eid, p) in &c.execs {
                if p.pid == pid && !p.reaped {
                    return Some((id.clone(), eid.clone()));
                }
            }
        }
        None
    }

    pub fn get(&mut self, id: &str, exec_id: &str) -> Option<&mut Proc> {
        self.ctrs.get_mut(id).and_then(|c| c.proc_mut(exec_id))
    }
}

/// Every process in a container's cgroup (the first of its dirs that
/// lists any).
pub fn cgroup_pids(dirs: &[PathBuf]) -> Vec<i32> {
    for d in dirs {
        if let Ok(t) = std::fs::read_to_string(d.join("cgroup.procs")) {
            let v: Vec<i32> = t.lines().filter_map(|l| l.trim().parse().ok()).collect();
            if !v.is_empty() {
                return v;
            }
        }
    }
    Vec::new()
}

/// The processes to kill once a container's init has exited: all of its
/// cgroup when it has no pid namespace of its own (the host's or another
/// container's, as in a hostPID or shareProcessNamespace pod), where init's
/// death ends nothing else; what is left would live on and hold the
/// container's output open, so that containerd 2.x never sees it stop.
/// runc's shim does the same (shouldKillAllOnExit). With a pid namespace of
/// its own, the kernel kills the rest.
pub fn left_after_init(bundle: &std::path::Path, cgroup_dirs: &[PathBuf]) -> Vec<i32> {
    if shares_pid_ns(bundle) {
        cgroup_pids(cgroup_dirs)
    } else {
        Vec::new()
    }
}

/// Whether the bundle's config.json gives the container no pid namespace
/// of its own: no `pid` entry in linux.namespaces, or one with a path.
fn shares_pid_ns(bundle: &std::path::Path) -> bool {
    let Ok(text) = std::fs::read(bundle.join("config.json")) else {
        return false;
    };
    let Ok(spec) = serde_json::from_slice::<serde_json::Value>(&text) else {
        return false;
    };
    let nss = spec.pointer("/linux/namespaces").and_then(|n| n.as_array());
    let own = nss.is_some_and(|a| {
        a.iter().any(|n| {
            n.get("type").and_then(|t| t.as_str()) == Some("pid")
                && n.get("path")
                    .and_then(|p| p.as_str())
                    .is_none_or(str::is_empty)
        })
    });
    !own
}

#[cfg(test)]
mod tests {
    use super::shares_pid_ns;

    #[test]
    fn pid_namespace_of_its_own_or_not() {
        let dir = std::env::temp_dir().join(format!("berth-shim-procs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let case = |namespaces: &str| {
            let config = format!(r#"{{"linux": {{"namespaces": {namespaces}}}}}"#);
            std::fs::write(dir.join("config.json"), config).unwrap();
            shares_pid_ns(&dir)
        };
        assert!(!case(r#"[{"type": "pid"}, {"type": "mount"}]"#), "own pid namespace");
        assert!(!case(r#"[{"type": "pid", "path": ""}]"#), "empty path: its own");
        assert!(case(r#"[{"type": "mount"}]"#), "hostPID: no pid entry");
        assert!(case(r#"[{"type": "pid", "path": "/proc/42/ns/pid"}]"#), "joins a pod's");
        std::fs::remove_file(dir.join("config.json")).unwrap();
        assert!(!shares_pid_ns(&dir), "no config.json: nothing is killed");
        std::fs::remove_dir(&dir).unwrap();
    }
}
