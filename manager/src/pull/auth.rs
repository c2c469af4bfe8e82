//! Registry credentials as Docker keeps them: `$DOCKER_CONFIG/config.json`
//! (default `~/.docker/config.json`), `"auths": {"HOST": {"auth":
//! base64("user:password")}}`, Docker Hub under `https://index.docker.io/v1/`.
//! `berthctl login` writes there (mode 0600), so `docker login` and
//! `berthctl login` share their credentials. Credential helpers
//! (`credsStore`, `credHelpers`) are not run.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use base64::Engine;
use serde_json::{json, Value};

pub fn config_path() -> PathBuf {
    if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("config.json");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"));
    home.join(".docker/config.json")
}

/// The keys a registry's entry may have in `auths`.
fn keys(registry: &str) -> Vec<String> {
    match registry {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => vec![
            "https://index.docker.io/v1/".into(),
            "index.docker.io".into(),
            "docker.io".into(),
            "registry-1.docker.io".into(),
        ],
        r => vec![
            r.to_string(),
            format!("https://{r}"),
            format!("http://{r}"),
            format!("https://{r}/v1/"),
        ],
    }
}

fn read() -> Result<Value, String> {
    let p = config_path();
    match fs::read(&p) {
        Ok(d) => {
            serde_json::from_slice(&d).map_err(|e| format!("{}: invalid JSON: {e}", p.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(json!({})),
        Err(e) => Err(format!("{}: {e}", p.display())),
    }
}

/// The user and password saved for `registry`, if any.
pub fn lookup(registry: &str) -> Result<Option<(String, String)>, String> {
    let cfg = read()?;
    let p = config_path();
    for k in keys(registry) {
        let Some(auth) = cfg["auths"][&k]["auth"].as_str() else {
            continue;
        };
        let raw = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|e| format!("{}: .auths[{k:?}].auth: not base64: {e}", p.display()))?;
        let s = String::from_utf8(raw)
            .map_err(|_| format!("{}: .auths[{k:?}].auth: not UTF-8", p.display()))?;
        let (u, pw) = s.split_once(':').ok_or_else(|| {
            format!(
                "{}: .auths[{k:?}].auth: not base64 of USER:PASSWORD",
                p.display()
            )
        })?;
        return Ok(Some((u.to_string(), pw.to_string())));
    }
    Ok(None)
}

/// Save credentials for `registry`; returns the file written.
pub fn save(registry: &str, user: &str, password: &str) -> Result<PathBuf, String> {
    let mut cfg = read()?;
    if !cfg.is_object() {
        cfg = json!({});
    }
    if !cfg["auths"].is_object() {
        cfg["auths"] = json!({});
    }
    let key = keys(registry).remove(0);
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    cfg["auths"][key] = json!({ "auth": auth });
    write(&cfg)
}

/// Forget `registry`'s credentials; false if there were none.
pub fn erase(registry: &str) -> Result<bool, String> {
    let mut cfg = read()?;
    let Some(auths) = cfg["auths"].as_object_mut() else {
        return Ok(false);
    };
    let mut found = false;
    for k in keys(registry) {
        found |= auths.remove(&k).is_some();
    }
    if found {
        write(&cfg)?;
    }
    Ok(found)
}

fn write(cfg: &Value) -> Result<PathBuf, String> {
    let p = config_path();
    if let Some(d) = p.parent() {
        fs::create_dir_all(d).map_err(|e| format!("create {}: {e}", d.display()))?;
    }
    let tmp = p.with_extension(format!("tmp-{}", std::process::id()));
    let r = fs::write(&tmp, serde_json::to_vec_pretty(cfg).unwrap())
        .and_then(|_| fs::set_permissions(&tmp, fs::Permissions::from_mode(0o600)))
        .and_then(|_| fs::rename(&tmp, &p));
    if let Err(e) = r {
        let _ = fs::remove_file(&tmp);
        return Err(format!("write {}: {e}", p.display()));
    }
    Ok(p)
}
