//! containerd-shim-berth-v2, the binary containerd runs:
//!
//! * `... -id ID start` (cwd = bundle): start or reuse the shim server
//!   (`containerd-shim-berth-v2-server`, beside this binary) for the
//!   container's group, write `address`, print the address.
//! * `... -id ID -bundle DIR delete`: force-delete a container whose shim is
//!   gone, unmount its rootfs, print a `DeleteResponse`.
//! * `... launch` (run by the server, socket on fd 3): the launcher, see
//!   [`berth_shim::launcher`].

#![deny(clippy::undocumented_unsafe_blocks)]

use std::fs;
use std::io::Write;
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use berth_shim::{berth_root, fnv, mounts, parse_flags, Flags};
use protobuf::Message;

fn main() {
    let flags = match parse_flags() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("containerd-shim-berth-v2: {e}");
            std::process::exit(1);
        }
    };
    let r = match flags.action.as_str() {
        "start" => start(&flags),
        "delete" => delete(&flags),
        "launch" => berth_shim::launcher::child::launcher_main(),
        "" => Err("no action given (start, delete)".to_string()),
        a => Err(format!("unknown action {a:?} (start, delete)")),
    };
    if let Err(e) = r {
        eprintln!("containerd-shim-berth-v2: {e}");
        std::process::exit(1);
    }
}

/// The group a container's shim serves: CRI's sandbox id, or
/// `io.containerd.runc.v2.group`, else the container itself.
fn group_of(bundle: &Path, id: &str) -> String {
    let Ok(text) = fs::read(bundle.join("config.json")) else {
        return id.to_string();
    };
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&text) else {
        return id.to_string();
    };
    for key in [
        "io.kubernetes.cri.sandbox-id",
        "io.containerd.runc.v2.group",
    ] {
        if let Some(g) = v
            .pointer(&format!("/annotations/{}", key.replace('/', "~1")))
            .and_then(|g| g.as_str())
        {
            if !g.is_empty() {
                return g.to_string();
            }
        }
    }
    id.to_string()
}

fn start(f: &Flags) -> Result<(), String> {
    let bundle = std::env::current_dir().map_err(|e| format!("current directory: {e}"))?;
    let group = group_of(&bundle, &f.id);
    let dir = Path::new("/run/containerd-berth/s");
    fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let sock = dir.join(format!("{:016x}", fnv(&[&f.address, &f.namespace, &group])));
    let address = format!("unix://{}", sock.display());
    let reuse = UnixStream::connect(&sock).is_ok();
    if !reuse {
        let _ = fs::remove_file(&sock);
        let listener =
            UnixListener::bind(&sock).map_err(|e| format!("listen on {}: {e}", sock.display()))?;
        spawn_server(f, listener.into(), &bundle)?;
    }
    fs::write(bundle.join("address"), &address).map_err(|e| format!("write address file: {e}"))?;
    let mut out = std::io::stdout();
    out.write_all(address.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| format!("stdout: {e}"))?;
    Ok(())
}

/// Run the server binary as the daemon, in its own session, with the
/// listener on fd 3 and stderr on the bundle's `log` fifo when containerd
/// reads it.
fn spawn_server(f: &Flags, listener: OwnedFd, bundle: &Path) -> Result<(), String> {
    let exe = berth_shim::sibling(berth_shim::SERVER_BIN)?;
    if !exe.exists() {
        return Err(format!(
            "{} not found: install it beside {}",
            exe.display(),
            berth_shim::MAIN_BIN
        ));
    }
    let mut cmd = Command::new(exe);
    cmd.args([
        "-namespace",
        &f.namespace,
        "-address",
        &f.address,
        "-publish-binary",
        &f.publish_binary,
        "-id",
        &f.id,
    ]);
    if f.debug {
        cmd.arg("-debug");
    }
    cmd.arg("serve")
        .current_dir(bundle)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    let log = fs::OpenOptions::new()
        .write(true)
        .custom_flags_nonblock()
        .open(bundle.join("log"))
        .ok();
    match log {
        Some(l) => cmd.stderr(l),
        None => cmd.stderr(Stdio::null()),
    };
    let fd = listener.into_raw_fd();
    // SAFETY: the pre_exec closure runs in the forked child before execve and only makes
    // async-signal-safe calls (setsid, fcntl, dup2); it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // dup2 onto itself would keep CLOEXEC: go through a high fd.
            let hi = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 10);
            if hi < 0 || libc::dup2(hi, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let r = cmd
        .spawn()
        .map_err(|e| format!("start the shim server: {e}"));
    // SAFETY: `fd` came from listener.into_raw_fd() above and nothing else owns it; the
    // child got its own copy through fork.
    drop(unsafe { OwnedFd::from_raw_fd(fd) });
    r.map(|_| ())
}

trait NonBlock {
    fn custom_flags_nonblock(&mut self) -> &mut Self;
}

impl NonBlock for fs::OpenOptions {
    fn custom_flags_nonblock(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.custom_flags(libc::O_NONBLOCK)
    }
}

/// `delete`: the shim is gone; kill and remove what is left of the
/// container and unmount its rootfs.
fn delete(f: &Flags) -> Result<(), String> {
    let bundle = match &f.bundle {
        Some(b) => b.clone(),
        None => std::env::current_dir().map_err(|e| format!("current directory: {e}"))?,
    };
    let root = berth_root(&f.namespace);
    let mut pid = 0;
    match berth::Container::load(&root, &f.id) {
        Ok(c) => {
            pid = c.pid() as u32;
            c.delete(true).map_err(|e| format!("delete {}: {e}", f.id))?;
        }
        Err(berth::Error::NotFound(_)) => {}
        // An unreadable record: reported, as delete reported it.
        Err(e) => return Err(format!("delete {}: {e}", f.id)),
    }
    mounts::unmount_rootfs(&bundle.join("rootfs"))?;
    // The dead server's socket, unless a server (of a group) still listens.
    if let Ok(addr) = fs::read_to_string(bundle.join("address")) {
        if let Some(path) = addr.trim().strip_prefix("unix://") {
            if path.starts_with("/run/containerd-berth/s/") && UnixStream::connect(path).is_err() {
                let _ = fs::remove_file(path);
            }
        }
    }
    let mut resp = containerd_shim_protos::api::DeleteResponse::new();
    resp.pid = pid;
    resp.exit_status = 128 + libc::SIGKILL as u32;
    resp.exited_at =
        protobuf::MessageField::some(protobuf::well_known_types::timestamp::Timestamp::now());
    let bytes = resp
        .write_to_bytes()
        .map_err(|e| format!("encode DeleteResponse: {e}"))?;
    let mut out = std::io::stdout();
    out.write_all(&bytes)
        .and_then(|()| out.flush())
        .map_err(|e| format!("stdout: {e}"))?;
    Ok(())
}
