//! The container's config.json: berth's default spec (the runtime's
//! `berth spec`), the image config (Env, Entrypoint, Cmd, WorkingDir,
//! User), then the run flags. Every flag is checked here, before anything
//! is made on disk.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::cli::RunArgs;
use crate::image::fsat;

/// Docker's default capability set.
const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// "512m" -> bytes.
pub fn parse_size(flag: &str, s: &str) -> Result<i64, String> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mul) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    let n: f64 = num.parse().map_err(|_| format!("{flag} {s:?}: not a size (e.g. 64m, 1g, 1048576)"))?;
    let v = (n * mul as f64) as i64;
    if n.is_nan() || n <= 0.0 || v < 4 << 20 {
        return Err(format!("{flag} {s:?}: must be at least 4m"));
    }
    Ok(v)
}

fn cap_name(flag: &str, c: &str) -> Result<String, String> {
    let up = c.to_ascii_uppercase();
    if up == "ALL" {
        return Ok(up);
    }
    let full = if up.starts_with("CAP_") { up } else { format!("CAP_{up}") };
    if berth::capability_number(&full).is_none() {
        return Err(format!("{flag} {c}: unknown capability"));
    }
    Ok(full)
}

fn caps(a: &RunArgs) -> Result<Vec<String>, String> {
    let mut set: Vec<String> = DEFAULT_CAPS.iter().map(|s| s.to_string()).collect();
    let all: Vec<String> = berth::capability_names().collect();
    for c in &a.cap_drop {
        match cap_name("--cap-drop", c)?.as_str() {
            "ALL" => set.clear(),
            n => set.retain(|x| x != n),
        }
    }
    for c in &a.cap_add {
        match cap_name("--cap-add", c)?.as_str() {
            "ALL" => set = all.clone(),
            n if !set.iter().any(|x| x == n) => set.push(n.to_string()),
            _ => {}
        }
    }
    Ok(set)
}

/// Set K=V in env (replacing K).
fn set_env(env: &mut Vec<String>, kv: &str) {
    let k = kv.split('=').next().unwrap_or(kv);
    env.retain(|e| e.split('=').next() != Some(k));
    env.push(kv.to_string());
}

/// A line of the rootfs's /etc/passwd or /etc/group, read inside the rootfs.
fn lookup_db(rootfs: Option<&Path>, file: &str, name: &str) -> Option<Vec<String>> {
    use std::io::Read;
    let root = fsat::open_root(rootfs?).ok()?;
    let fd = fsat::open_in_root(std::os::fd::AsRawFd::as_raw_fd(&root), Path::new(file), libc::O_RDONLY).ok()?;
    let mut text = String::new();
    std::fs::File::from(fd).take(1 << 20).read_to_string(&mut text).ok()?;
    text.lines()
        .map(|l| l.split(':').map(String::from).collect::<Vec<_>>())
        .find(|f| f.len() >= 3 && (f[0] == name || f[2] == name))
}

/// "uid[:gid]" or names from the rootfs; returns (uid, gid, home).
pub fn parse_user(flag: &str, u: &str, rootfs: Option<&Path>) -> Result<(u32, u32, Option<String>), String> {
    let (user, group) = match u.split_once(':') {
        Some((a, b)) => (a, Some(b)),
        None => (u, None),
    };
    let pw = lookup_db(rootfs, "etc/passwd", user);
    let uid = match user.parse::<u32>() {
        Ok(n) => n,
        Err(_) => pw
            .as_ref()
            .and_then(|f| f[2].parse().ok())
            .ok_or_else(|| format!("{flag} {u}: no user {user:?} in the image's /etc/passwd"))?,
    };
    let gid = match group {
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => lookup_db(rootfs, "etc/group", g)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| format!("{flag} {u}: no group {g:?} in the image's /etc/group"))?,
        },
        None => pw.as_ref().and_then(|f| f.get(3)?.parse().ok()).unwrap_or(if uid == 0 { 0 } else { uid }),
    };
    let home = pw.and_then(|f| f.get(5).cloned()).filter(|h| !h.is_empty());
    Ok((uid, gid, home))
}

pub struct Volume {
    pub src: PathBuf,
    pub dst: String,
    pub ro: bool,
}

pub fn parse_volume(v: &str) -> Result<Volume, String> {
    let parts: Vec<&str> = v.split(':').collect();
    let (src, dst, ro) = match parts.as_slice() {
        [s, d] => (*s, *d, false),
        [s, d, "ro"] => (*s, *d, true),
        [s, d, "rw"] => (*s, *d, false),
        [_, _, o] => return Err(format!("-v {v}: unknown option {o:?} (ro or rw)")),
        _ => return Err(format!("-v {v}: expected SRC:DST[:ro]")),
    };
    if !src.starts_with('/') || !dst.starts_with('/') {
        return Err(format!("-v {v}: SRC and DST must be absolute paths"));
    }
    let src = std::fs::canonicalize(src).map_err(|e| format!("-v {v}: {src}: {e}"))?;
    Ok(Volume { src, dst: dst.to_string(), ro })
}

/// The process args: CMD replaces the image's Cmd; the Entrypoint stays.
fn args(img: &Value, cmd: &[String]) -> Vec<String> {
    let strs = |v: &Value| -> Vec<String> {
        v.as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(String::from)).collect()).unwrap_or_default()
    };
    let mut out = strs(&img["Entrypoint"]);
    if cmd.is_empty() {
        out.extend(strs(&img["Cmd"]));
    } else {
        out.extend(cmd.iter().cloned());
    }
    out
}

/// Build config.json for an image (`img` = its config object, `rootfs` its
/// unpacked root, for user names) or over an existing bundle's config
/// (`base`). `cgroup` is the container's cgroup path.
pub fn build(
    a: &RunArgs,
    name: &str,
    img: &Value,
    base: Option<Value>,
    rootfs: Option<&Path>,
    cmd: &[String],
    cgroup: &str,
) -> Result<Value, String> {
    let from_image = base.is_none();
    let mut spec = base.unwrap_or_else(|| berth::default_spec(false, (0, 0)));
    let p = &mut spec["process"];
    if from_image {
        let argv = args(img, cmd);
        if argv.is_empty() {
            return Err("no command: the image has no Entrypoint or Cmd; give one after the image name".into());
        }
        p["args"] = json!(argv);
        let mut env = vec![PATH_ENV.to_string()];
        for e in img["Env"].as_array().into_iter().flatten().filter_map(Value::as_str) {
            set_env(&mut env, e);
        }
        p["env"] = json!(env);
        p["cwd"] = json!(img["WorkingDir"].as_str().filter(|s| !s.is_empty()).unwrap_or("/"));
        let c = caps(a)?;
        p["capabilities"] = json!({"bounding": c, "effective": c, "permitted": c});
        spec["root"] = json!({"path": "rootfs", "readonly": a.read_only});
        spec["hostname"] = json!(a.hostname.clone().unwrap_or_else(|| name.to_string()));
        let seccomp = match a.seccomp.as_deref() {
            Some("unconfined") => Value::Null,
            Some(f) => load_seccomp(f)?,
            None => serde_json::from_str(berth::default_seccomp_profile_json())
                .map_err(|e| format!("berth's default seccomp profile: {e}"))?,
        };
        if !seccomp.is_null() {
            spec["linux"]["seccomp"] = seccomp;
        }
    } else {
        if !cmd.is_empty() {
            spec["process"]["args"] = json!(cmd);
        }
        if a.read_only {
            spec["root"]["readonly"] = json!(true);
        }
        if let Some(h) = &a.hostname {
            spec["hostname"] = json!(h);
        }
        if !a.cap_add.is_empty() || !a.cap_drop.is_empty() {
            let c = caps(a)?;
            spec["process"]["capabilities"] = json!({"bounding": c, "effective": c, "permitted": c});
        }
        if let Some(f) = a.seccomp.as_deref() {
            match f {
                "unconfined" => {
                    if let Some(l) = spec["linux"].as_object_mut() {
                        l.remove("seccomp");
                    }
                }
                f => spec["linux"]["seccomp"] = load_seccomp(f)?,
            }
        }
    }
    let p = &mut spec["process"];
    p["terminal"] = json!(a.tty);
    if let Some(w) = &a.workdir {
        if !w.starts_with('/') {
            return Err(format!("--workdir {w}: must be an absolute path"));
        }
        p["cwd"] = json!(w);
    }
    let user = a.user.clone().or_else(|| {
        if from_image {
            img["User"].as_str().filter(|s| !s.is_empty()).map(String::from)
        } else {
            None
        }
    });
    let mut home = None;
    if let Some(u) = &user {
        let flag = if a.user.is_some() { "--user" } else { "the image's User" };
        let (uid, gid, h) = parse_user(flag, u, rootfs)?;
        p["user"] = json!({"uid": uid, "gid": gid});
        home = h;
    }
    let mut env: Vec<String> = p["env"].as_array().into_iter().flatten().filter_map(|v| v.as_str().map(String::from)).collect();
    if from_image {
        if !env.iter().any(|e| e.starts_with("HOME=")) {
            let uid0 = p["user"]["uid"].as_u64().unwrap_or(0) == 0;
            set_env(&mut env, &format!("HOME={}", home.unwrap_or_else(|| if uid0 { "/root".into() } else { "/".into() })));
        }
        env.retain(|e| !e.starts_with("TERM="));
        if a.tty {
            set_env(&mut env, "TERM=xterm");
        }
        set_env(&mut env, &format!("HOSTNAME={}", spec_hostname(&spec, name)));
    }
    for e in &a.env {
        if e.is_empty() || e.starts_with('=') {
            return Err(format!("-e {e:?}: expected K=V or K"));
        }
        if e.contains('=') {
            set_env(&mut env, e);
        } else if let Ok(v) = std::env::var(e) {
            set_env(&mut env, &format!("{e}={v}"));
        }
    }
    spec["process"]["env"] = json!(env);
    for v in &a.volume {
        let vol = parse_volume(v)?;
        let mut opts = vec!["rbind", "rprivate"];
        if vol.ro {
            opts.push("ro");
        }
        let m = json!({"destination": vol.dst, "type": "bind", "source": vol.src, "options": opts});
        match spec["mounts"].as_array_mut() {
            Some(ms) => ms.push(m),
            None => spec["mounts"] = json!([m]),
        }
    }
    resources(a, &mut spec)?;
    spec["linux"]["cgroupsPath"] = json!(cgroup);
    Ok(spec)
}

fn spec_hostname(spec: &Value, name: &str) -> String {
    spec["hostname"].as_str().unwrap_or(name).to_string()
}

fn load_seccomp(f: &str) -> Result<Value, String> {
    let data = std::fs::read(f).map_err(|e| format!("--seccomp {f}: {e}"))?;
    let v: Value = serde_json::from_slice(&data).map_err(|e| format!("--seccomp {f}: invalid JSON: {e}"))?;
    if !v["defaultAction"].is_string() {
        return Err(format!("--seccomp {f}: .defaultAction: missing (expected an OCI linux.seccomp object)"));
    }
    Ok(v)
}

fn resources(a: &RunArgs, spec: &mut Value) -> Result<(), String> {
    let r = &mut spec["linux"]["resources"];
    if let Some(m) = &a.memory {
        let limit = parse_size("--memory", m)?;
        r["memory"]["limit"] = json!(limit);
        // No swap beyond the limit, where the host accounts swap.
        let v1 = Path::new("/sys/fs/cgroup/memory").is_dir();
        if !v1 || Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists() {
            r["memory"]["swap"] = json!(limit);
        }
    }
    if let Some(c) = &a.cpus {
        let n: f64 = c.parse().map_err(|_| format!("--cpus {c}: not a number"))?;
        let max = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) as f64;
        if n.is_nan() || n <= 0.0 || n > max {
            return Err(format!("--cpus {c}: must be more than 0 and at most {max} (this machine's CPUs)"));
        }
        r["cpu"]["period"] = json!(100_000u64);
        r["cpu"]["quota"] = json!((n * 100_000.0) as i64);
    }
    if let Some(p) = a.pids_limit {
        if p <= 0 {
            return Err(format!("--pids-limit {p}: must be positive"));
        }
        r["pids"]["limit"] = json!(p);
    }
    Ok(())
}

/// The `process` object for an exec, from the container's config.
pub fn exec_process(config: &Value, cmd: &[String], tty: bool, env: &[String], user: Option<&str>, cwd: Option<&str>, rootfs: Option<&Path>) -> Result<Value, String> {
    let mut p = config["process"].clone();
    if !p.is_object() {
        return Err("the container's config.json has no process".into());
    }
    p["args"] = json!(cmd);
    p["terminal"] = json!(tty);
    if let Some(o) = p.as_object_mut() {
        o.remove("consoleSize");
    }
    if tty {
        if let Some((cols, rows)) = crate::stream::term_size() {
            p["consoleSize"] = json!({"height": rows, "width": cols});
        }
    }
    let mut e: Vec<String> = p["env"].as_array().into_iter().flatten().filter_map(|v| v.as_str().map(String::from)).collect();
    for kv in env {
        if !kv.contains('=') {
            return Err(format!("-e {kv:?}: expected K=V"));
        }
        set_env(&mut e, kv);
    }
    p["env"] = json!(e);
    if let Some(u) = user {
        let (uid, gid, _) = parse_user("--user", u, rootfs)?;
        p["user"] = json!({"uid": uid, "gid": gid});
    }
    if let Some(c) = cwd {
        p["cwd"] = json!(c);
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("--memory", "16m").unwrap(), 16 << 20);
        assert_eq!(parse_size("--memory", "1g").unwrap(), 1 << 30);
        assert!(parse_size("--memory", "1k").is_err());
        assert!(parse_size("--memory", "lots").is_err());
    }

    #[test]
    fn image_cmd_and_entrypoint() {
        let img = json!({"Entrypoint": ["/bin/sh", "-c"], "Cmd": ["echo hi"], "Env": ["A=1", "PATH=/bin"], "WorkingDir": "/tmp"});
        let a = RunArgs::default();
        let s = build(&a, "n", &img, None, None, &[], "/berth/x").unwrap();
        assert_eq!(s["process"]["args"], json!(["/bin/sh", "-c", "echo hi"]));
        assert_eq!(s["process"]["cwd"], "/tmp");
        assert!(s["process"]["env"].as_array().unwrap().contains(&json!("PATH=/bin")));
        let s = build(&a, "n", &img, None, None, &["date".into()], "/berth/x").unwrap();
        assert_eq!(s["process"]["args"], json!(["/bin/sh", "-c", "date"]));
        assert!(build(&a, "n", &json!({}), None, None, &[], "/x").is_err());
    }

    #[test]
    fn caps_add_drop() {
        let a = RunArgs { cap_drop: vec!["ALL".into()], cap_add: vec!["net_admin".into()], ..Default::default() };
        assert_eq!(caps(&a).unwrap(), vec!["CAP_NET_ADMIN"]);
        let a = RunArgs { cap_add: vec!["BOGUS".into()], ..Default::default() };
        assert!(caps(&a).unwrap_err().contains("--cap-add BOGUS"));
    }
}
