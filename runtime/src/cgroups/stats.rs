//! Usage figures in runc's `events --stats` JSON shape (runc's types.Stats):
//! cpu, cpuset, memory (with swap and kernel), pids, blkio, hugetlb.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use super::fsutil::{read, read_u64};
use super::v1::V1;
use crate::error::Result;

#[derive(Debug, Default, Serialize)]
pub struct Stats {
    pub cpu: Cpu,
    pub cpuset: CpuSet,
    pub memory: Memory,
    pub pids: Pids,
    pub blkio: Blkio,
    pub hugetlb: BTreeMap<String, Hugetlb>,
    pub intel_rdt: serde_json::Map<String, serde_json::Value>,
    pub network_interfaces: Option<Vec<()>>,
}

#[derive(Debug, Default, Serialize)]
pub struct Cpu {
    pub usage: CpuUsage,
    pub throttling: Throttling,
}

#[derive(Debug, Default, Serialize)]
pub struct CpuUsage {
    #[serde(skip_serializing_if = "is_zero")]
    pub total: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_kernel: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    pub kernel: u64,
    pub user: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct Throttling {
    #[serde(skip_serializing_if = "is_zero")]
    pub periods: u64,
    #[serde(rename = "throttledPeriods", skip_serializing_if = "is_zero")]
    pub throttled_periods: u64,
    #[serde(rename = "throttledTime", skip_serializing_if = "is_zero")]
    pub throttled_time: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct CpuSet {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cpus: Vec<u16>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mems: Vec<u16>,
}

#[derive(Debug, Default, Serialize)]
pub struct MemoryEntry {
    pub limit: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct Memory {
    #[serde(skip_serializing_if = "is_zero")]
    pub cache: u64,
    pub usage: MemoryEntry,
    pub swap: MemoryEntry,
    pub kernel: MemoryEntry,
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
}

#[derive(Debug, Default, Serialize)]
pub struct Pids {
    #[serde(skip_serializing_if = "is_zero")]
    pub current: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub limit: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct BlkioEntry {
    pub major: u64,
    pub minor: u64,
    pub op: String,
    pub value: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct Blkio {
    #[serde(rename = "ioServiceBytesRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    #[serde(rename = "ioServicedRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_serviced_recursive: Vec<BlkioEntry>,
}

#[derive(Debug, Default, Serialize)]
pub struct Hugetlb {
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

fn num(dir: &Path, file: &str) -> u64 {
    read_u64(dir, file).unwrap_or(0)
}

/// `key value` lines (memory.stat, cpu.stat, memory.events).
fn flat_keyed(dir: &Path, file: &str) -> BTreeMap<String, u64> {
    read(dir, file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

/// "0-2,4" -> [0, 1, 2, 4]
fn cpu_list(s: &str) -> Vec<u16> {
    let mut out = Vec::new();
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<u16>(), b.parse::<u16>()) {
                    out.extend(a..=b);
                }
            }
            None => out.extend(part.parse::<u16>().ok()),
        }
    }
    out
}

/// Page sizes the kernel offers, as the cgroup file names spell them
/// ("2MB", "1GB").
fn hugepage_sizes() -> Vec<String> {
    let Ok(rd) = std::fs::read_dir("/sys/kernel/mm/hugepages") else {
        return Vec::new();
    };
    let mut out: Vec<String> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let n = e.file_name().into_string().ok()?;
            let kb: u64 = n.strip_prefix("hugepages-")?.strip_suffix("kB")?.parse().ok()?;
            Some(if kb >= 1 << 20 {
                format!("{}GB", kb >> 20)
            } else if kb >= 1 << 10 {
                format!("{}MB", kb >> 10)
            } else {
                format!("{kb}KB")
            })
        })
        .collect();
    out.sort();
    out
}

/// "8:0 Read 123" lines of a v1 blkio file (the "Total" line skipped).
fn blkio_v1(dir: &Path, file: &str) -> Vec<BlkioEntry> {
    read(dir, file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let (dev, op, v) = (it.next()?, it.next()?, it.next()?);
            let (ma, mi) = dev.split_once(':')?;
            Some(BlkioEntry {
                major: ma.parse().ok()?,
                minor: mi.parse().ok()?,
                op: op.to_string(),
                value: v.parse().ok()?,
            })
        })
        .collect()
}

pub fn v1(d: &V1) -> Result<Stats> {
    let mut s = Stats::default();
    if let Some(dir) = d.controller_dir("cpuacct") {
        s.cpu.usage.total = num(dir, "cpuacct.usage");
        let list = |f: &str| -> Vec<u64> {
            read(dir, f)
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect()
        };
        s.cpu.usage.percpu = list("cpuacct.usage_percpu");
        s.cpu.usage.percpu_kernel = list("cpuacct.usage_percpu_sys");
        s.cpu.usage.percpu_user = list("cpuacct.usage_percpu_user");
        let st = flat_keyed(dir, "cpuacct.stat");
        // SAFETY: sysconf takes an integer name and reads no memory.
        let tick = 1_000_000_000 / (unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64);
        s.cpu.usage.user = st.get("user").copied().unwrap_or(0) * tick;
        s.cpu.usage.kernel = st.get("system").copied().unwrap_or(0) * tick;
    }
    if let Some(dir) = d.controller_dir("cpu") {
        let st = flat_keyed(dir, "cpu.stat");
        s.cpu.throttling.periods = st.get("nr_periods").copied().unwrap_or(0);
        s.cpu.throttling.throttled_periods = st.get("nr_throttled").copied().unwrap_or(0);
        s.cpu.throttling.throttled_time = st.get("throttled_time").copied().unwrap_or(0);
    }
    if let Some(dir) = d.controller_dir("cpuset") {
        s.cpuset.cpus = cpu_list(&read(dir, "cpuset.cpus").unwrap_or_default());
        s.cpuset.mems = cpu_list(&read(dir, "cpuset.mems").unwrap_or_default());
    }
    if let Some(dir) = d.controller_dir("memory") {
        s.memory.raw = flat_keyed(dir, "memory.stat");
        s.memory.cache = s.memory.raw.get("cache").copied().unwrap_or(0);
        let entry = |p: &str| MemoryEntry {
            limit: num(dir, &format!("{p}limit_in_bytes")),
            usage: num(dir, &format!("{p}usage_in_bytes")),
            max: num(dir, &format!("{p}max_usage_in_bytes")),
            failcnt: num(dir, &format!("{p}failcnt")),
        };
        s.memory.usage = entry("memory.");
        s.memory.swap = entry("memory.memsw.");
        s.memory.kernel = entry("memory.kmem.");
        s.memory.kernel_tcp = entry("memory.kmem.tcp.");
    }
    if let Some(dir) = d.controller_dir("pids") {
        s.pids.current = num(dir, "pids.current");
        s.pids.limit = read_u64(dir, "pids.max").ok().filter(|v| *v != u64::MAX).unwrap_or(0);
    }
    if let Some(dir) = d.controller_dir("blkio") {
        s.blkio.io_service_bytes_recursive = blkio_v1(dir, "blkio.throttle.io_service_bytes_recursive");
        s.blkio.io_serviced_recursive = blkio_v1(dir, "blkio.throttle.io_serviced_recursive");
    }
    if let Some(dir) = d.controller_dir("hugetlb") {
        for size in hugepage_sizes() {
            let p = format!("hugetlb.{size}.");
            s.hugetlb.insert(
                size,
                Hugetlb {
                    usage: num(dir, &format!("{p}usage_in_bytes")),
                    max: num(dir, &format!("{p}max_usage_in_bytes")),
                    failcnt: num(dir, &format!("{p}failcnt")),
                },
            );
        }
    }
    Ok(s)
}

pub fn v2(dir: &Path) -> Result<Stats> {
    let mut s = Stats::default();
    let cpu = flat_keyed(dir, "cpu.stat");
    let g = |m: &BTreeMap<String, u64>, k: &str| m.get(k).copied().unwrap_or(0);
    s.cpu.usage.total = g(&cpu, "usage_usec") * 1000;
    s.cpu.usage.user = g(&cpu, "user_usec") * 1000;
    s.cpu.usage.kernel = g(&cpu, "system_usec") * 1000;
    s.cpu.throttling.periods = g(&cpu, "nr_periods");
    s.cpu.throttling.throttled_periods = g(&cpu, "nr_throttled");
    s.cpu.throttling.throttled_time = g(&cpu, "throttled_usec") * 1000;
    s.cpuset.cpus = cpu_list(&read(dir, "cpuset.cpus.effective").unwrap_or_default());
    s.cpuset.mems = cpu_list(&read(dir, "cpuset.mems.effective").unwrap_or_default());
    s.memory.raw = flat_keyed(dir, "memory.stat");
    s.memory.cache = g(&s.memory.raw, "file");
    let events = flat_keyed(dir, "memory.events");
    let mem = num(dir, "memory.current");
    s.memory.usage = MemoryEntry {
        limit: read_u64(dir, "memory.max").unwrap_or(u64::MAX),
        usage: mem,
        max: num(dir, "memory.peak"),
        failcnt: g(&events, "max"),
    };
    // As runc: v2 swap figures include memory, like v1's memsw.
    if dir.join("memory.swap.current").exists() {
        let swap_max = read_u64(dir, "memory.swap.max").unwrap_or(u64::MAX);
        s.memory.swap = MemoryEntry {
            limit: if swap_max == u64::MAX || s.memory.usage.limit == u64::MAX {
                u64::MAX
            } else {
                swap_max + s.memory.usage.limit
            },
            usage: num(dir, "memory.swap.current") + mem,
            max: 0,
            failcnt: 0,
        };
    }
    s.pids.current = num(dir, "pids.current");
    s.pids.limit = read_u64(dir, "pids.max").ok().filter(|v| *v != u64::MAX).unwrap_or(0);
    for l in read(dir, "io.stat").unwrap_or_default().lines() {
        let mut it = l.split_whitespace();
        let Some((ma, mi)) = it.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (ma.parse::<u64>(), mi.parse::<u64>()) else {
            continue;
        };
        for kv in it {
            let Some((k, v)) = kv.split_once('=') else { continue };
            let Ok(value) = v.parse::<u64>() else { continue };
            let (list, op) = match k {
                "rbytes" => (&mut s.blkio.io_service_bytes_recursive, "Read"),
                "wbytes" => (&mut s.blkio.io_service_bytes_recursive, "Write"),
                "rios" => (&mut s.blkio.io_serviced_recursive, "Read"),
                "wios" => (&mut s.blkio.io_serviced_recursive, "Write"),
                _ => continue,
            };
            list.push(BlkioEntry {
                major,
                minor,
                op: op.into(),
                value,
            });
        }
    }
    for size in hugepage_sizes() {
        let p = format!("hugetlb.{size}.");
        if !dir.join(format!("{p}current")).exists() {
            continue;
        }
        let ev = flat_keyed(dir, &format!("{p}events"));
        s.hugetlb.insert(
            size,
            Hugetlb {
                usage: num(dir, &format!("{p}current")),
                max: 0,
                failcnt: g(&ev, "max"),
            },
        );
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(cpu_list("0-2,4\n"), vec![0, 1, 2, 4]);
        assert_eq!(cpu_list(""), Vec::<u16>::new());
    }

    #[test]
    fn stats_json_has_runc_keys() {
        let v = serde_json::to_value(Stats::default()).unwrap();
        for k in [
            "cpu",
            "cpuset",
            "memory",
            "pids",
            "blkio",
            "hugetlb",
            "intel_rdt",
            "network_interfaces",
        ] {
            assert!(v.get(k).is_some(), "{k} missing: {v}");
        }
        assert!(v["memory"].get("kernelTCP").is_some());
    }
}
