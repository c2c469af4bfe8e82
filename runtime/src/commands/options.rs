//! `create`, `run` and `exec` flags as the container API's options.

use std::path::Path;

use berth::error::{Error, Result};
use berth::{
    AfterExit, Attach, CgroupManager, CreateOptions, ExecOptions, Orphans, ProcessSource, RunOptions, StartBy,
    Stdio, User,
};

use crate::cli::{CreateArgs, ExecArgs, RunArgs};

/// `create` (and the create half of `run`, which sets its own start).
pub fn create(root: &Path, a: &CreateArgs, systemd_cgroup: bool) -> CreateOptions {
    CreateOptions {
        root: root.to_path_buf(),
        id: a.id.clone(),
        bundle: a.bundle.clone(),
        pid_file: a.pid_file.clone(),
        no_pivot: a.no_pivot,
        no_new_keyring: a.no_new_keyring,
        preserve_fds: a.preserve_fds,
        console_socket: a.console_socket.clone(),
        stdio: Stdio::Inherit,
        start: StartBy::Fifo,
        notify_socket: notify_socket(),
        cgroup_manager: if systemd_cgroup { CgroupManager::Systemd } else { CgroupManager::Cgroupfs },
    }
}

/// `NOTIFY_SOCKET` from berth's environment (sd-notify), when set and not empty.
pub fn notify_socket() -> Option<std::path::PathBuf> {
    std::env::var_os("NOTIFY_SOCKET").filter(|s| !s.is_empty()).map(Into::into)
}

pub fn run(a: &RunArgs) -> RunOptions {
    RunOptions {
        attach: if a.detach {
            Attach::Detached
        } else {
            Attach::Foreground
        },
        after_exit: if a.keep {
            AfterExit::Keep
        } else {
            AfterExit::Delete
        },
        orphans: if a.no_subreaper {
            Orphans::Leave
        } else {
            Orphans::Adopt
        },
    }
}

pub fn exec(a: &ExecArgs) -> Result<ExecOptions> {
    let process = match &a.process {
        Some(file) if !a.command.is_empty() => {
            return Err(Error::Usage(format!(
                "--process {}: no command may follow the container id as well",
                file.display()
            )))
        }
        Some(file) => ProcessSource::File(file.clone()),
        None => ProcessSource::Args(a.command.clone()),
    };
    Ok(ExecOptions {
        process,
        env: a.env.clone(),
        cwd: a.cwd.clone(),
        user: a.user.as_deref().map(parse_user).transpose()?,
        additional_gids: a.additional_gids.clone(),
        cap: a.cap.clone(),
        no_new_privs: a.no_new_privs,
        apparmor: a.apparmor.clone(),
        process_label: a.process_label.clone(),
        tty: a.tty,
        console_socket: a.console_socket.clone(),
        attach: if a.detach {
            Attach::Detached
        } else {
            Attach::Foreground
        },
        pid_file: a.pid_file.clone(),
        preserve_fds: a.preserve_fds,
        cgroup: a.cgroup.clone(),
        ignore_paused: a.ignore_paused,
    })
}

/// `UID[:GID]`, decimal digits only (as runc; names are not looked up).
/// 4294967295 is refused: to setresuid/setresgid it means "unchanged",
/// which would leave the process running as root (the class of crun's
/// CVE-2026-30892).
fn parse_user(s: &str) -> Result<User> {
    let bad = |why: &str| Error::Usage(format!("--user {s:?}: {why}"));
    let id = |v: &str| -> Result<u32> {
        if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("expected UID[:GID] with numeric ids"));
        }
        match v.parse::<u32>() {
            Ok(n) if n != u32::MAX => Ok(n),
            _ => Err(bad("ids must be below 4294967295")),
        }
    };
    let (u, g) = match s.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (s, None),
    };
    Ok(User {
        uid: id(u)?,
        gid: g.map(id).transpose()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(s: &str) -> Result<(u32, Option<u32>)> {
        parse_user(s).map(|u| (u.uid, u.gid))
    }

    #[test]
    fn users() {
        assert_eq!(user("1000").unwrap(), (1000, None));
        assert_eq!(user("1000:10").unwrap(), (1000, Some(10)));
        assert!(user("abc").is_err());
        assert!(user("1:x").is_err());
        for bad in [
            "",
            ":",
            "1:",
            ":1",
            "+1",
            "-1",
            " 1",
            "1 ",
            "0x10",
            "root",
            "1:1:1",
            "4294967295",
            "1:4294967295",
            "4294967296",
            "99999999999999999999",
        ] {
            assert!(user(bad).is_err(), "--user {bad:?} was accepted");
        }
        assert_eq!(user("4294967294:0").unwrap(), (4294967294, Some(0)));
    }
}
