//! `update`'s flags and `--resources FILE` (or `-` for stdin; the
//! linux.resources JSON form) as one LinuxResources for
//! `Container::update`, and the units runc's flags take: memory sizes and
//! Go durations (`events --interval`).

use std::io::Read;
use std::time::Duration;

use berth::error::{Error, Result};
use oci_spec::runtime::LinuxResources;
use serde_json::{json, Map, Value};

use crate::cli::UpdateArgs;

/// The resources `berth update` applies.
pub fn from_args(a: &UpdateArgs) -> Result<LinuxResources> {
    match &a.resources {
        Some(src) => {
            if flags_given(a) {
                return Err(Error::Usage(
                    "--resources: cannot be combined with other update flags".into(),
                ));
            }
            read_resources(src)
        }
        None => from_flags(a),
    }
}

fn flags_given(a: &UpdateArgs) -> bool {
    let b = UpdateArgs {
        id: a.id.clone(),
        resources: a.resources.clone(),
        ..Default::default()
    };
    format!("{a:?}") != format!("{b:?}")
}

fn read_resources(src: &str) -> Result<LinuxResources> {
    let (name, data) = if src == "-" {
        let mut d = Vec::new();
        std::io::stdin()
            .read_to_end(&mut d)
            .map_err(|e| Error::os("--resources -: read stdin", e))?;
        ("<stdin>".to_string(), d)
    } else {
        (
            src.to_string(),
            std::fs::read(src).map_err(|e| Error::path("--resources: read", src, e))?,
        )
    };
    berth::parse_resources(&format!("--resources {name}"), &data)
}

/// A decimal number with an optional fraction ("1.5") times `mult`, in
/// integers (no float parsing in the binary).
fn scaled(num: &str, mult: u128) -> Option<u128> {
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
        || frac.len() > 18
    {
        return None;
    }
    let i: u128 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let f: u128 = if frac.is_empty() {
        0
    } else {
        frac.parse().ok()?
    };
    i.checked_mul(mult)?
        .checked_add(f * mult / 10u128.pow(frac.len() as u32))
}

/// runc's memory sizes: bytes, or a number with b/k/m/g/t/p (and an
/// optional "b" or "ib"), case-insensitive, in 1024 steps; -1 = unlimited.
fn parse_size(flag: &str, s: &str) -> Result<i64> {
    if s == "-1" {
        return Ok(-1);
    }
    let bad = || {
        Error::Usage(format!(
            "--{flag}: invalid size {s:?} (like 512m, 1g, or -1)"
        ))
    };
    let lower = s.trim().to_ascii_lowercase();
    let split = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (num, unit) = lower.split_at(split);
    let unit = unit.trim();
    let unit = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b').filter(|u| !u.is_empty()))
        .unwrap_or(unit);
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
    let bytes = serde_json::to_vec(&r).map_err(|e| Error::encode("update: linux.resources", e))?;
    berth::parse_resources("update", &bytes)
}

/// Go's duration syntax for the values people pass: "5s", "500ms", "1m30s",
/// "1.5s", "100us", "2h".
pub fn parse_duration(s: &str) -> Result<Duration> {
    let bad = || {
        Error::Usage(format!(
            "--interval: invalid duration {s:?} (like 5s, 500ms, 1m)"
        ))
    };
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut nanos: u128 = 0;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let num = &rest[..n];
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult: u128 = match &rest[..u] {
            "ns" => 1,
            "us" | "µs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(bad()),
        };
        nanos += scaled(num, mult).ok_or_else(bad)?;
        rest = &rest[u..];
    }
    if nanos == 0 {
        return Err(Error::Usage(format!(
            "--interval: {s:?} must be above zero"
        )));
    }
    Ok(Duration::from_nanos(
        u64::try_from(nanos).map_err(|_| bad())?,
    ))
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

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("x").is_err());
    }
}
