//! `berth update`: change a container's resources. From `--resources FILE`
//! (or `-` for stdin; the linux.resources JSON form) or from runc's flags.
//! As in runc, zero or absent values leave a setting as it is (Docker sends
//! zeros), the new values are merged into those applied before (stored in
//! state.json), and devices are not touched. If the kernel refuses a value,
//! the previous settings are written back and the error names the field.

use std::io::Read;
use std::path::Path;

use oci_spec::runtime::LinuxResources;
use serde_json::{json, Map, Value};

use crate::cli::UpdateArgs;
use crate::container::{StateDir, Status};
use crate::error::{Error, Result};

pub fn update(root: &Path, a: &UpdateArgs) -> Result<()> {
    let r = match &a.resources {
        Some(src) => {
            if flags_given(a) {
                return Err(Error::Usage("--resources: cannot be combined with other update flags".into()));
            }
            read_resources(src)?
        }
        None => from_flags(a)?,
    };
    update_resources(root, &a.id, &r)
}

/// `update --resources` from a linux.resources JSON document (the
/// containerd shim's Update); `what` names the source in errors.
pub fn update_from_json(root: &Path, id: &str, what: &str, data: &[u8]) -> Result<()> {
    update_resources(root, id, &parse_resources(what, data)?)
}

/// A linux.resources JSON document as `update` reads it (no effect); `what`
/// names the source in errors. Public for the fuzz targets (fuzz/).
pub fn parse_resources(what: &str, data: &[u8]) -> Result<LinuxResources> {
    let v: Value = serde_json::from_slice(data)
        .map_err(|e| crate::spec::ConfigError::whole_file(what, format!("invalid JSON: {e}")))?;
    to_resources(what, v)
}

/// Merge `r` into the container's resources and apply them.
fn update_resources(root: &Path, id: &str, r: &LinuxResources) -> Result<()> {
    let dir = StateDir::open(root, id)?;
    let mut state = dir.load_required()?;
    if state.status(&dir.path) == Status::Stopped {
        return Err(Error::WrongState(format!("cannot update container \"{id}\": it is stopped")));
    }
    let old = state.cgroups.resources.clone();
    let mut new = old.clone();
    new.merge_spec(r, true).map_err(|error| Error::Cgroup { what: "update".into(), error })?;
    new.devices = None;
    if let Err(e) = state.cgroups.driver().apply(&new) {
        if let Err(undo) = state.cgroups.driver().apply(&old) {
            log::warn!("restoring the previous resources: {undo}");
        }
        return Err(Error::Cgroup { what: "update".into(), error: e });
    }
    state.cgroups.resources = new;
    dir.save(&state)
}

fn flags_given(a: &UpdateArgs) -> bool {
    let b = UpdateArgs { id: a.id.clone(), resources: a.resources.clone(), ..Default::default() };
    format!("{a:?}") != format!("{b:?}")
}

fn read_resources(src: &str) -> Result<LinuxResources> {
    let (name, data) = if src == "-" {
        let mut d = Vec::new();
        std::io::stdin().read_to_end(&mut d).map_err(|e| Error::os("--resources -: read stdin", e))?;
        ("<stdin>".to_string(), d)
    } else {
        (src.to_string(), std::fs::read(src).map_err(|e| Error::path("--resources: read", src, e))?)
    };
    let bad = |e| crate::spec::ConfigError::whole_file(format!("--resources {name}"), format!("invalid JSON: {e}"));
    let v: Value = serde_json::from_slice(&data).map_err(bad)?;
    to_resources(&format!("--resources {name}"), v)
}

/// Through the config loader (one LinuxResources deserializer in the
/// binary); errors read `WHAT: linux.resources.memory.limit: ...`.
fn to_resources(what: &str, v: Value) -> Result<LinuxResources> {
    let wrapped = json!({"ociVersion": crate::OCI_VERSION, "linux": {"resources": v}});
    let bytes = serde_json::to_vec(&wrapped).map_err(|e| Error::encode("linux.resources", e))?;
    let spec = crate::spec::parse_spec(what, &bytes)?;
    Ok(spec.linux().as_ref().and_then(|l| l.resources().clone()).unwrap_or_default())
}

/// A decimal number with an optional fraction ("1.5") times `mult`, in
/// integers (no float parsing in the binary).
pub fn scaled(num: &str, mult: u128) -> Option<u128> {
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    if int.is_empty() && frac.is_empty() || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) || frac.len() > 18 {
        return None;
    }
    let i: u128 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let f: u128 = if frac.is_empty() { 0 } else { frac.parse().ok()? };
    i.checked_mul(mult)?.checked_add(f * mult / 10u128.pow(frac.len() as u32))
}

/// runc's memory sizes: bytes, or a number with b/k/m/g/t/p (and an
/// optional "b" or "ib"), case-insensitive, in 1024 steps; -1 = unlimited.
pub fn parse_size(flag: &str, s: &str) -> Result<i64> {
    if s == "-1" {
        return Ok(-1);
    }
    let bad = || Error::Usage(format!("--{flag}: invalid size {s:?} (like 512m, 1g, or -1)"));
    let lower = s.trim().to_ascii_lowercase();
    let split = lower.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(lower.len());
    let (num, unit) = lower.split_at(split);
    let unit = unit.trim();
    let unit = unit.strip_suffix("ib").or_else(|| unit.strip_suffix('b').filter(|u| !u.is_empty())).unwrap_or(unit);
    let shift = match unit {
        "" | "b" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        "p" => 50,
        _ => return Err(bad()),
    };
    let v = scaled(num, 1u128 << shift).ok_or_else(bad)?;
    i64::try_from(v).map_err(|_| bad())
}

fn from_flags(a: &UpdateArgs) -> Result<LinuxResources> {
    for (flag, v) in [
        ("kernel-memory", &a.kernel_memory),
        ("kernel-memory-tcp", &a.kernel_memory_tcp),
        ("l3-cache-schema", &a.l3_cache_schema),
        ("mem-bw-schema", &a.mem_bw_schema),
    ] {
        if v.is_some() {
            return Err(Error::Usage(format!("--{flag}: not supported by berth")));
        }
    }
    let mut mem = Map::new();
    for (flag, key, v) in [
        ("memory", "limit", &a.memory),
        ("memory-reservation", "reservation", &a.memory_reservation),
        ("memory-swap", "swap", &a.memory_swap),
    ] {
        if let Some(v) = v {
            mem.insert(key.into(), json!(parse_size(flag, v)?));
        }
    }
    let mut cpu = Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            cpu.insert(k.into(), v);
        }
    };
    put("shares", a.cpu_share.map(|v| json!(v)));
    put("quota", a.cpu_quota.map(|v| json!(v)));
    put("period", a.cpu_period.map(|v| json!(v)));
    put("burst", a.cpu_burst.map(|v| json!(v)));
    put("realtimeRuntime", a.cpu_rt_runtime.map(|v| json!(v)));
    put("realtimePeriod", a.cpu_rt_period.map(|v| json!(v)));
    put("cpus", a.cpuset_cpus.clone().map(Value::from));
    put("mems", a.cpuset_mems.clone().map(Value::from));
    put("idle", a.cpu_idle.map(|v| json!(v)));
    let mut r = json!({ "memory": mem, "cpu": cpu });
    if let Some(w) = a.blkio_weight.filter(|w| *w != 0) {
        r["blockIO"] = json!({ "weight": w });
    }
    if let Some(p) = a.pids_limit {
        r["pids"] = json!({ "limit": p });
    }
    to_resources("update", r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_runc() {
        assert_eq!(parse_size("memory", "100").unwrap(), 100);
        assert_eq!(parse_size("memory", "512m").unwrap(), 512 << 20);
        assert_eq!(parse_size("memory", "1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("memory", "2kb").unwrap(), 2048);
        assert_eq!(parse_size("memory", "1MiB").unwrap(), 1 << 20);
        assert_eq!(parse_size("memory", "-1").unwrap(), -1);
        assert_eq!(parse_size("memory", "1.5g").unwrap(), 3 << 29);
        assert!(parse_size("memory", "1.2.3m").is_err());
        assert!(parse_size("memory", "99999999p").is_err());
        assert!(parse_size("memory", "12x").is_err());
        assert!(parse_size("memory", "").is_err());
    }
}
