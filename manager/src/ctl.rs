//! The commands on existing containers: ps, kill, stop, rm, logs, exec,
//! stats. Each finds the container's shim through the address saved in
//! container.json, so they work from any berthctl process, at any time.

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::time::Duration;

use containerd_shim_protos::api::Status;
use protobuf::Message;
use serde_json::json;

use crate::cli::ExecArgs;
use crate::shim::{self, rpc_err, Shim};
use crate::store::{age, random_hex, Container, Store};
use crate::{rootfs, spec, stream};

/// Status text of a container, and whether it runs.
fn status(c: &Container) -> (String, u32, bool) {
    let shim = match Shim::connect(&c.address, &c.name) {
        Ok(s) => s,
        Err(_) => return ("unknown (shim gone)".into(), 0, false),
    };
    match shim.state() {
        Ok(st) => match st.status.enum_value_or_default() {
            Status::RUNNING => ("running".into(), st.pid, true),
            Status::CREATED => ("created".into(), st.pid, true),
            Status::PAUSED | Status::PAUSING => ("paused".into(), st.pid, true),
            Status::STOPPED => (format!("exited ({})", st.exit_status), st.pid, false),
            _ => ("unknown".into(), st.pid, false),
        },
        Err(e) if shim::is_not_found(&e) => ("deleted".into(), 0, false),
        Err(e) => (format!("unknown ({})", rpc_err("state", e)), 0, false),
    }
}

pub fn ps(store: &Store, quiet: bool, as_json: bool) -> Result<(), String> {
    let names = store.container_names()?;
    if quiet {
        for n in names {
            println!("{n}");
        }
        return Ok(());
    }
    let mut rows = Vec::new();
    for n in &names {
        let Ok(c) = store.load_container(n) else { continue };
        let (st, pid, _) = status(&c);
        if as_json {
            println!(
                "{}",
                json!({"name": c.name, "image": c.image, "status": st, "pid": pid, "command": c.command,
                       "created": c.created, "rootfs": c.rootfs, "address": c.address})
            );
            continue;
        }
        let image = if c.image.is_empty() { format!("(bundle {})", c.bundle.display()) } else { c.image.clone() };
        let mut cmd = c.command.join(" ");
        if cmd.len() > 30 {
            cmd.truncate(27);
            cmd.push_str("...");
        }
        rows.push([c.name.clone(), image, st, if pid > 0 { pid.to_string() } else { "-".into() }, cmd, age(c.created)]);
    }
    if as_json {
        return Ok(());
    }
    let head = ["NAME", "IMAGE", "STATUS", "PID", "COMMAND", "CREATED"];
    let mut w = head.map(str::len);
    for r in &rows {
        for (i, f) in r.iter().enumerate() {
            w[i] = w[i].max(f.len());
        }
    }
    let line = |f: [&str; 6]| {
        let mut s = String::new();
        for (i, v) in f.iter().enumerate() {
            if i < 5 {
                s.push_str(&format!("{v:<width$}   ", width = w[i]));
            } else {
                s.push_str(v);
            }
        }
        println!("{}", s.trim_end());
    };
    line(head);
    for r in &rows {
        line([&r[0], &r[1], &r[2], &r[3], &r[4], &r[5]]);
    }
    Ok(())
}

fn connect(store: &Store, name: &str) -> Result<(Container, Shim), String> {
    let c = store.load_container(name)?;
    let s = Shim::connect(&c.address, &c.name)?;
    Ok((c, s))
}

pub fn kill(store: &Store, name: &str, signal: &str) -> Result<(), String> {
    let sig = berth::parse_signal(signal).map_err(|e| format!("--signal {signal}: {e}"))?;
    let (_, s) = connect(store, name)?;
    s.kill("", sig as u32, false).map_err(|e| {
        if shim::is_not_found(&e) {
            format!("container {name} is not running")
        } else {
            rpc_err("kill", e)
        }
    })
}

/// TERM, then KILL (every process) after `secs`.
pub fn stop(store: &Store, name: &str, secs: u64) -> Result<(), String> {
    let (c, s) = connect(store, name)?;
    if !status(&c).2 {
        return Ok(());
    }
    match s.kill("", libc::SIGTERM as u32, false) {
        Err(e) if shim::is_not_found(&e) => return Ok(()),
        Err(e) => return Err(rpc_err("stop", e)),
        Ok(()) => {}
    }
    if s.wait("", (secs.max(1) * 1_000_000_000) as i64).is_ok() {
        return Ok(());
    }
    let _ = s.kill("", libc::SIGKILL as u32, true);
    s.wait("", 30_000_000_000).map(|_| ()).map_err(|e| rpc_err(&format!("stop {name}: wait after SIGKILL"), e))
}

/// Remove a container: its task and shim, rootfs mount, directory.
pub fn remove(store: &Store, name: &str, force: bool) -> Result<(), String> {
    let c = store.load_container(name)?;
    let cdir = store.container_dir(name);
    match Shim::connect(&c.address, name) {
        Ok(s) => {
            let (st, _, running) = status(&c);
            if running {
                if !force {
                    return Err(format!("container {name} is {st}: stop it first, or use rm -f"));
                }
                let _ = s.kill("", libc::SIGKILL as u32, true);
                let _ = s.wait("", 30_000_000_000);
            }
            match s.delete("") {
                Ok(_) => {}
                Err(e) if shim::is_not_found(&e) => {}
                Err(e) => return Err(rpc_err(&format!("rm {name}"), e)),
            }
            s.shutdown();
        }
        Err(_) => {
            // The shim is gone: its `delete` action clears berth's state, as
            // containerd does then.
            let out = std::process::Command::new(shim::binary()?)
                .args(["-namespace", &shim::namespace(&store.root), "-id", name, "-bundle"])
                .arg(&c.bundle)
                .arg("delete")
                .current_dir(&c.bundle)
                .output()
                .map_err(|e| format!("rm {name}: run the shim's delete: {e}"))?;
            if !out.status.success() {
                return Err(format!("rm {name}: {}", String::from_utf8_lossy(&out.stderr).trim()));
            }
        }
    }
    rootfs::release(&cdir)?;
    fs::remove_dir_all(&cdir).map_err(|e| format!("rm {name}: remove {}: {e}", cdir.display()))?;
    crate::run::cleanup_namespace(store);
    Ok(())
}

pub fn logs(store: &Store, name: &str, follow: bool) -> Result<(), String> {
    let c = store.load_container(name)?;
    let path = store.container_dir(name).join("output.log");
    let mut f = File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = std::io::stdout();
    let mut buf = vec![0u8; 1 << 16];
    let mut pos = 0u64;
    loop {
        f.seek(SeekFrom::Start(pos)).map_err(|e| e.to_string())?;
        loop {
            let n = f.read(&mut buf).map_err(|e| format!("{}: {e}", path.display()))?;
            if n == 0 {
                break;
            }
            pos += n as u64;
            out.write_all(&buf[..n]).and_then(|_| out.flush()).map_err(|e| format!("stdout: {e}"))?;
        }
        if !follow {
            return Ok(());
        }
        if !status(&c).2 {
            // One last read: output written just before the exit.
            follow_last(&mut f, pos, &mut out)?;
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn follow_last(f: &mut File, pos: u64, out: &mut std::io::Stdout) -> Result<(), String> {
    f.seek(SeekFrom::Start(pos)).map_err(|e| e.to_string())?;
    std::io::copy(f, out).map(|_| ()).map_err(|e| e.to_string())
}

pub fn exec(store: &Store, a: ExecArgs) -> Result<i32, String> {
    let sigs = stream::block_signals();
    let (c, s) = connect(store, &a.name)?;
    let (st, _, running) = status(&c);
    if !running || st == "created" {
        return Err(format!("container {} is {st}, not running", a.name));
    }
    let cfg_path = c.bundle.join("config.json");
    let cfg: serde_json::Value = serde_json::from_slice(&fs::read(&cfg_path).map_err(|e| format!("{}: {e}", cfg_path.display()))?)
        .map_err(|e| format!("{}: {e}", cfg_path.display()))?;
    let rootfs = c.bundle.join("rootfs");
    let process = spec::exec_process(&cfg, &a.cmd, a.tty, &a.env, a.user.as_deref(), a.workdir.as_deref(), Some(&rootfs))?;
    let exec_id = format!("exec-{}", random_hex(4));
    let cdir = store.container_dir(&a.name);
    let mut fifos = stream::Fifos::make(&cdir, &exec_id, a.interactive, a.tty)?;
    let uris = fifos.uris();
    if let Err(e) = s.exec(&exec_id, &process, a.tty, [&uris[0], &uris[1], &uris[2]]) {
        fifos.remove();
        return Err(e);
    }
    let s = std::sync::Arc::new(s);
    let result = (|| {
        let copies = fifos.attach(None)?;
        let raw = a.tty.then(stream::RawTerm::enter);
        s.start(&exec_id)?;
        stream::forward_signals(sigs, s.clone(), exec_id.clone(), a.tty);
        if a.tty {
            if let Some((cols, rows)) = stream::term_size() {
                let _ = s.resize(&exec_id, cols, rows);
            }
        }
        let status = s.wait(&exec_id, 0).map_err(|e| rpc_err("exec: wait", e))?;
        copies.drain(Duration::from_secs(2));
        drop(raw);
        Ok(status as i32)
    })();
    let _ = s.delete(&exec_id);
    fifos.remove();
    result
}

pub fn stats(store: &Store, name: &str, as_json: bool) -> Result<(), String> {
    use containerd_shim_protos::cgroups::metrics::Metrics;
    let (_, s) = connect(store, name)?;
    let any = s.stats()?;
    if !any.type_url.ends_with("io.containerd.cgroups.v1.Metrics") {
        return Err(format!("stats: metrics of type {:?} cannot be shown (berthctl reads cgroup v1 metrics)", any.type_url));
    }
    let m = Metrics::parse_from_bytes(&any.value).map_err(|e| format!("stats: decode: {e}"))?;
    let (cpu_ns, mem, mem_limit, pids, pids_limit) = (
        m.cpu.usage.total,
        m.memory.usage.usage,
        m.memory.usage.limit,
        m.pids.current,
        m.pids.limit,
    );
    if as_json {
        println!(
            "{}",
            json!({"name": name, "cpu_usage_ns": cpu_ns, "memory_usage": mem, "memory_limit": mem_limit,
                   "pids": pids, "pids_limit": pids_limit})
        );
        return Ok(());
    }
    let lim = |v: u64| if v == 0 || v >= i64::MAX as u64 / 2 { "unlimited".to_string() } else { crate::image::human(v) };
    println!("NAME   CPU TIME   MEM USAGE / LIMIT   PIDS");
    println!(
        "{name}   {:.2}s   {} / {}   {}{}",
        cpu_ns as f64 / 1e9,
        crate::image::human(mem),
        lim(mem_limit),
        pids,
        if pids_limit > 0 { format!(" / {pids_limit}") } else { String::new() }
    );
    Ok(())
}
