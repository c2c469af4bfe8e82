//! `linux.resources` in berth's own form: the spec's values with runc's
//! conventions (0 means "not set" for the numeric limits, -1 "unlimited"),
//! checked once, then applied by a driver ([`super::v1`], [`super::v2`]).
//! The form is stored in state.json so that `update` can merge into it: some
//! values depend on others (v2 swap = memory+swap - memory, cpu.max holds
//! quota and period together).

use std::collections::BTreeMap;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType, LinuxResources};
use serde::{Deserialize, Serialize};

use super::devices::{self, Rule};

/// A value at a spec field that cannot be used: `field` is the path under
/// `linux.resources` (`memory.swappiness`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub msg: String,
    /// Set when the kernel refused the write of a valid value (boxed: the
    /// crate error stays small).
    pub refused: Option<Box<Refused>>,
}

/// A cgroup file the kernel refused a value for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub file: std::path::PathBuf,
    pub value: String,
    pub errno: Option<i32>,
}

impl FieldError {
    pub fn new(field: impl Into<String>, msg: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            msg: msg.into(),
            refused: None,
        }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "linux.resources.{}: {}", self.field, self.msg)
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeightDevice {
    pub major: i64,
    pub minor: i64,
    pub weight: u16,
    pub leaf_weight: u16,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Throttle {
    pub major: i64,
    pub minor: i64,
    pub rate: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RdmaLimit {
    pub hca_handles: Option<u32>,
    pub hca_objects: Option<u32>,
}

/// The resources to apply. Numbers follow runc: 0 = leave as is, -1 =
/// unlimited ("max").
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Resources {
    pub memory: i64,
    /// Memory + swap (v1 semantics; converted for v2).
    pub memory_swap: i64,
    pub memory_reservation: i64,
    pub kernel_memory: i64,
    pub kernel_memory_tcp: i64,
    pub swappiness: Option<u64>,
    pub oom_kill_disable: bool,
    pub use_hierarchy: Option<bool>,
    pub check_before_update: bool,

    pub cpu_shares: u64,
    pub cpu_quota: i64,
    pub cpu_period: u64,
    pub cpu_burst: Option<u64>,
    pub cpu_rt_runtime: i64,
    pub cpu_rt_period: u64,
    pub cpuset_cpus: String,
    pub cpuset_mems: String,
    pub cpu_idle: Option<i64>,

    /// None: leave as is; 0 is a real limit; negative: "max".
    pub pids_limit: Option<i64>,

    pub blkio_weight: u16,
    pub blkio_leaf_weight: u16,
    pub blkio_weight_device: Vec<WeightDevice>,
    pub throttle_read_bps: Vec<Throttle>,
    pub throttle_write_bps: Vec<Throttle>,
    pub throttle_read_iops: Vec<Throttle>,
    pub throttle_write_iops: Vec<Throttle>,

    /// (page size as in the spec, "2MB"; limit in bytes)
    pub hugetlb: Vec<(String, u64)>,
    pub net_cls_classid: Option<u32>,
    pub net_prio: Vec<(String, u32)>,
    pub rdma: BTreeMap<String, RdmaLimit>,
    pub unified: BTreeMap<String, String>,

    /// Device rules in order, runc's defaults appended. None: leave the
    /// device controller alone (`update`, as runc). Not stored.
    #[serde(skip)]
    pub devices: Option<Vec<Rule>>,
}

impl Resources {
    /// From a config's `linux.resources`. `pids_limit_set`
    /// tells whether `pids.limit` was written in the file (oci-spec reads a
    /// missing one as 0, which is a real limit).
    pub fn from_spec(
        r: Option<&LinuxResources>,
        pids_limit_set: bool,
    ) -> Result<Resources, FieldError> {
        let mut out = Resources::default();
        let mut rules = Vec::new();
        if let Some(r) = r {
            out.merge_spec(r, false)?;
            if let Some(devs) = r.devices() {
                for (i, d) in devs.iter().enumerate() {
                    rules.push(rule_from_spec(d).map_err(|m| FieldError::new(format!("devices[{i}]"), m))?);
                }
            }
            if let Some(p) = r.pids() {
                out.pids_limit = if p.limit() != 0 || pids_limit_set {
                    Some(p.limit())
                } else {
                    None
                };
            }
        }
        // As runc: the config's rules, then the default allow list. The
        // nodes of `linux.devices` get no rule of their own: an implicit
        // allow after the config's rules would override a later deny
        // (config-linux.md: the rules apply in order, the last one wins).
        rules.extend(devices::default_rules());
        out.devices = Some(rules);
        Ok(out)
    }

    /// Merge spec values into `self`. `update` merges what runc's `update`
    /// merges, where zero means unchanged; `create` takes everything.
    pub fn merge_spec(&mut self, r: &LinuxResources, update: bool) -> Result<(), FieldError> {
        if let Some(m) = r.memory() {
            if let Some(v) = m.limit() {
                if !update || v != 0 {
                    self.memory = v;
                    if update && v == -1 && m.swap().is_none() {
                        self.memory_swap = -1;
                    }
                }
            }
            if let Some(v) = m.swap() {
                if !update || v != 0 {
                    self.memory_swap = v;
                }
            }
            if let Some(v) = m.reservation() {
                if !update || v != 0 {
                    self.memory_reservation = v;
                }
            }
            if let Some(v) = m.check_before_update() {
                self.check_before_update = v;
            }
            if !update {
                self.kernel_memory = m.kernel().unwrap_or(0);
                self.kernel_memory_tcp = m.kernel_tcp().unwrap_or(0);
                self.swappiness = m.swappiness();
                if let Some(s) = m.swappiness() {
                    // runc: -1 (read as u64::MAX here) means "default".
                    if s == u64::MAX {
                        self.swappiness = None;
                    } else if s > 100 {
                        return Err(FieldError::new(
                            "memory.swappiness",
                            format!("{s} is out of range 0-100"),
                        ));
                    }
                }
                self.oom_kill_disable = m.disable_oom_killer().unwrap_or(false);
                self.use_hierarchy = m.use_hierarchy();
            }
            for (name, v) in [
                ("limit", self.memory),
                ("swap", self.memory_swap),
                ("reservation", self.memory_reservation),
            ] {
                if v < -1 {
                    return Err(FieldError::new(
                        format!("memory.{name}"),
                        format!("{v} is invalid (bytes, or -1 for unlimited)"),
                    ));
                }
            }
        }
        if let Some(c) = r.cpu() {
            let nz = |v: u64| !update || v != 0;
            if let Some(v) = c.shares().filter(|v| nz(*v)) {
                self.cpu_shares = v;
            }
            if let Some(v) = c.quota().filter(|v| !update || *v != 0) {
                self.cpu_quota = v;
            }
            if let Some(v) = c.period().filter(|v| nz(*v)) {
                self.cpu_period = v;
            }
            if let Some(v) = c.burst() {
                self.cpu_burst = Some(v);
            }
            if let Some(v) = c.realtime_runtime().filter(|v| !update || *v != 0) {
                self.cpu_rt_runtime = v;
            }
            if let Some(v) = c.realtime_period().filter(|v| nz(*v)) {
                self.cpu_rt_period = v;
            }
            // runc's update always takes cpus/mems; empty leaves them.
            self.cpuset_cpus = c.cpus().clone().unwrap_or_default();
            self.cpuset_mems = c.mems().clone().unwrap_or_default();
            if let Some(v) = c.idle() {
                self.cpu_idle = Some(v);
            }
        } else if update {
            self.cpuset_cpus.clear();
            self.cpuset_mems.clear();
        }
        if update {
            // pids: 0 means unchanged (Docker sends zeros).
            if let Some(p) = r.pids() {
                if p.limit() != 0 {
                    self.pids_limit = Some(p.limit());
                }
            }
        }
        if let Some(b) = r.block_io() {
            // 0 is "not set", at create too (Docker sends it; runc skips it).
            if let Some(w) = b.weight().filter(|w| *w != 0) {
                check_weight("blockIO.weight", w)?;
                self.blkio_weight = w;
            }
            if !update {
                if let Some(w) = b.leaf_weight().filter(|w| *w != 0) {
                    check_weight("blockIO.leafWeight", w)?;
                    self.blkio_leaf_weight = w;
                }
                if let Some(ws) = b.weight_device() {
                    for (i, d) in ws.iter().enumerate() {
                        let (w, l) = (d.weight().unwrap_or(0), d.leaf_weight().unwrap_or(0));
                        if w != 0 {
                            check_weight(&format!("blockIO.weightDevice[{i}].weight"), w)?;
                        }
                        if l != 0 {
                            check_weight(&format!("blockIO.weightDevice[{i}].leafWeight"), l)?;
                        }
                        check_dev(&format!("blockIO.weightDevice[{i}]"), d.major(), d.minor())?;
                        self.blkio_weight_device.push(WeightDevice {
                            major: d.major(),
                            minor: d.minor(),
                            weight: w,
                            leaf_weight: l,
                        });
                    }
                }
                let conv = |name: &str,
                            v: &Option<Vec<oci_spec::runtime::LinuxThrottleDevice>>|
                 -> Result<Vec<Throttle>, FieldError> {
                    let mut out = Vec::new();
                    for (i, t) in v.iter().flatten().enumerate() {
                        check_dev(&format!("blockIO.{name}[{i}]"), t.major(), t.minor())?;
                        out.push(Throttle {
                            major: t.major(),
                            minor: t.minor(),
                            rate: t.rate(),
                        });
                    }
                    Ok(out)
                };
                self.throttle_read_bps = conv("throttleReadBpsDevice", b.throttle_read_bps_device())?;
                self.throttle_write_bps = conv("throttleWriteBpsDevice", b.throttle_write_bps_device())?;
                self.throttle_read_iops = conv("throttleReadIOPSDevice", b.throttle_read_iops_device())?;
                self.throttle_write_iops = conv("throttleWriteIOPSDevice", b.throttle_write_iops_device())?;
            }
        }
        if update {
            // runc's update replaces the unified map; nothing else below.
            self.unified = r.unified().clone().unwrap_or_default().into_iter().collect();
            check_unified(&self.unified)?;
            return Ok(());
        }
        for (i, h) in r.hugepage_limits().iter().flatten().enumerate() {
            let ps = h.page_size();
            // Bytes, not str slices: the value is untrusted and may hold
            // multi-byte characters (a fuzzer found "ȲB").
            let b = ps.as_bytes();
            let ok = b.len() > 2
                && b[b.len() - 1] == b'B'
                && matches!(b[b.len() - 2], b'K' | b'M' | b'G')
                && b[..b.len() - 2].iter().all(|c| c.is_ascii_digit());
            if !ok {
                return Err(FieldError::new(
                    format!("hugepageLimits[{i}].pageSize"),
                    format!("{ps:?} is not a size like \"2MB\" or \"1GB\""),
                ));
            }
            if h.limit() < 0 {
                return Err(FieldError::new(
                    format!("hugepageLimits[{i}].limit"),
                    format!("{} is negative", h.limit()),
                ));
            }
            self.hugetlb.push((ps.clone(), h.limit() as u64));
        }
        if let Some(n) = r.network() {
            self.net_cls_classid = n.class_id();
            for (i, p) in n.priorities().iter().flatten().enumerate() {
                let name = p.name();
                if name.is_empty() || name.contains(|c: char| c.is_whitespace() || c == '/') {
                    return Err(FieldError::new(
                        format!("network.priorities[{i}].name"),
                        format!("{name:?} is not an interface name"),
                    ));
                }
                self.net_prio.push((name.clone(), p.priority()));
            }
        }
        for (dev, l) in r.rdma().iter().flatten() {
            if dev.is_empty() || dev.contains(|c: char| c.is_whitespace()) {
                return Err(FieldError::new(format!("rdma.{dev}"), "not a device name"));
            }
            self.rdma.insert(
                dev.clone(),
                RdmaLimit {
                    hca_handles: l.hca_handles(),
                    hca_objects: l.hca_objects(),
                },
            );
        }
        self.unified = r.unified().clone().unwrap_or_default().into_iter().collect();
        check_unified(&self.unified)?;
        Ok(())
    }

    /// True when nothing but device rules is asked for.
    pub fn only_devices(&self) -> bool {
        let mut c = self.clone();
        c.devices = None;
        c == Resources::default()
    }
}

fn check_weight(field: &str, w: u16) -> Result<(), FieldError> {
    if (10..=1000).contains(&w) {
        Ok(())
    } else {
        Err(FieldError::new(field, format!("{w} is out of range 10-1000")))
    }
}

fn check_dev(field: &str, major: i64, minor: i64) -> Result<(), FieldError> {
    if (0..=u32::MAX as i64).contains(&major) && (0..=u32::MAX as i64).contains(&minor) {
        Ok(())
    } else {
        Err(FieldError::new(
            field,
            format!("{major}:{minor} is not a device number"),
        ))
    }
}

fn check_unified(u: &BTreeMap<String, String>) -> Result<(), FieldError> {
    for k in u.keys() {
        if k.is_empty() || k.contains('/') || k == "." || k == ".." || !k.contains('.') {
            return Err(FieldError::new(
                format!("unified.{k}"),
                "not a cgroup v2 file name (like \"memory.high\")",
            ));
        }
    }
    Ok(())
}

fn rule_from_spec(d: &LinuxDeviceCgroup) -> Result<Rule, String> {
    let typ = match d.typ() {
        None | Some(LinuxDeviceType::A) => 'a',
        Some(LinuxDeviceType::B) => 'b',
        Some(LinuxDeviceType::C) => 'c',
        Some(t) => return Err(format!("type {:?} is not a cgroup device type (a, b or c)", t.as_str())),
    };
    let access = d.access().clone().unwrap_or_else(|| "rwm".into());
    if access.is_empty() || !access.chars().all(|c| matches!(c, 'r' | 'w' | 'm')) {
        return Err(format!("access {access:?} must be made of r, w and m"));
    }
    for (name, v) in [("major", d.major()), ("minor", d.minor())] {
        if let Some(v) = v {
            if !(0..=i32::MAX as i64).contains(&v) {
                return Err(format!("{name} {v} is out of range"));
            }
        }
    }
    Ok(Rule {
        allow: d.allow(),
        typ,
        major: d.major(),
        minor: d.minor(),
        access,
    })
}

/// The resources of a loaded bundle (`linux.resources`).
pub fn from_bundle(b: &crate::spec::Bundle) -> Result<Resources, FieldError> {
    let linux = b.spec.linux().as_ref();
    let r = linux.and_then(|l| l.resources().as_ref());
    // oci-spec reads `"pids": {}` as limit 0, a real limit: look at the
    // file itself in that (rare) case.
    let pids_zero = r.and_then(|r| r.pids().as_ref()).is_some_and(|p| p.limit() == 0);
    let pids_set = pids_zero
        && std::fs::read(&b.config_path)
            .ok()
            .and_then(|d| serde_json::from_slice::<serde_json::Value>(&d).ok())
            .is_some_and(|v| v.pointer("/linux/resources/pids/limit").is_some());
    Resources::from_spec(r, pids_set)
}

/// runc's v1 -> v2 conversion of cpu.shares (2..262144) to cpu.weight (1..10000).
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + (shares.saturating_sub(2)) * 9999 / 262142
}

/// runc's conversion of blkio weight (10..1000) to io.weight (1..10000).
pub fn blkio_to_io_weight(w: u16) -> u64 {
    if w == 0 {
        return 0;
    }
    1 + (w as u64).saturating_sub(10) * 9999 / 990
}

/// runc's conversion of memory+swap (v1) to memory.swap.max (v2).
/// Ok(None) = leave as is; Some(-1) = "max".
pub fn swap_to_v2(memory_swap: i64, memory: i64) -> Result<Option<i64>, String> {
    if memory == -1 && memory_swap == 0 {
        return Ok(Some(-1));
    }
    if memory_swap == -1 {
        return Ok(Some(-1));
    }
    if memory_swap == 0 {
        return Ok(None);
    }
    if memory == 0 || memory == -1 {
        return Err("a swap limit needs a memory limit".into());
    }
    if memory_swap < memory {
        return Err(format!(
            "memory+swap ({memory_swap}) must not be below the memory limit ({memory})"
        ));
    }
    Ok(Some(memory_swap - memory))
}

/// `n` as a cgroup value: -1 (or any negative) is "max".
pub fn num_or_max(n: i64) -> String {
    if n < 0 {
        "max".into()
    } else {
        n.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(v: serde_json::Value) -> LinuxResources {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn runc_conversions() {
        assert_eq!(shares_to_weight(0), 0);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262144), 10000);
        assert_eq!(blkio_to_io_weight(10), 1);
        assert_eq!(blkio_to_io_weight(300), 2930);
        assert_eq!(blkio_to_io_weight(1000), 10000);
        assert_eq!(swap_to_v2(0, 0), Ok(None));
        assert_eq!(swap_to_v2(0, -1), Ok(Some(-1)));
        assert_eq!(swap_to_v2(-1, 100), Ok(Some(-1)));
        assert_eq!(swap_to_v2(300, 100), Ok(Some(200)));
        assert_eq!(swap_to_v2(100, 100), Ok(Some(0)));
        assert!(swap_to_v2(50, 100).is_err());
        assert!(swap_to_v2(100, 0).is_err());
        assert_eq!(num_or_max(-1), "max");
        assert_eq!(num_or_max(5), "5");
    }

    #[test]
    fn hugepage_sizes_are_checked_bytewise() {
        // Found by the spec_config fuzz target: a multi-byte character
        // before the final "B" panicked on a str slice.
        for (ps, ok) in [("2MB", true), ("1GB", true), ("64KB", true), ("\u{232}B", false), ("M\u{e9}B", false), ("MB", false), ("2mB", false), ("2M", false)] {
            let r = res(serde_json::json!({"hugepageLimits": [{"pageSize": ps, "limit": 1}]}));
            assert_eq!(Resources::from_spec(Some(&r), true).is_ok(), ok, "{ps:?}");
        }
    }

    #[test]
    fn pids_zero_is_a_limit_only_when_written() {
        let r = res(serde_json::json!({"pids": {"limit": 0}}));
        assert_eq!(Resources::from_spec(Some(&r), true).unwrap().pids_limit, Some(0));
        assert_eq!(Resources::from_spec(Some(&r), false).unwrap().pids_limit, None);
        let r = res(serde_json::json!({"pids": {"limit": -1}}));
        assert_eq!(Resources::from_spec(Some(&r), true).unwrap().pids_limit, Some(-1));
    }

    #[test]
    fn update_treats_zero_as_unchanged() {
        let create = res(serde_json::json!({"memory": {"limit": 100, "reservation": 50}, "cpu": {"shares": 512, "quota": 1000, "period": 2000}, "pids": {"limit": 9}}));
        let mut r = Resources::from_spec(Some(&create), true).unwrap();
        let upd = res(serde_json::json!({"memory": {"limit": 0, "swap": 300}, "cpu": {"shares": 0, "quota": 0, "period": 4000}, "pids": {"limit": 0}}));
        r.merge_spec(&upd, true).unwrap();
        assert_eq!((r.memory, r.memory_swap, r.memory_reservation), (100, 300, 50));
        assert_eq!((r.cpu_shares, r.cpu_quota, r.cpu_period), (512, 1000, 4000));
        assert_eq!(r.pids_limit, Some(9));
        // -1 memory without swap: swap unlimited too (runc).
        r.merge_spec(&res(serde_json::json!({"memory": {"limit": -1}})), true).unwrap();
        assert_eq!((r.memory, r.memory_swap), (-1, -1));
    }

    #[test]
    fn devices_are_spec_rules_then_defaults() {
        let r = res(serde_json::json!({"devices": [
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 42, "minor": 42, "access": "rwm"},
            {"allow": false, "type": "c", "major": 42, "minor": 42, "access": "rw"}]}));
        let out = Resources::from_spec(Some(&r), false).unwrap();
        let rules = out.devices.unwrap();
        assert!(rules[0].is_all() && !rules[0].allow);
        assert_eq!(rules.len(), 3 + crate::cgroups::devices::default_rules().count());
        // The later deny wins over the allow before it; linux.devices adds nothing.
        assert!(!crate::cgroups::devices::allowed(&rules, 'c', 42, 42, "r"));
        assert!(crate::cgroups::devices::allowed(&rules, 'c', 42, 42, "m"));
        assert!(crate::cgroups::devices::allowed(&rules, 'c', 1, 3, "rw"));
        assert!(!crate::cgroups::devices::allowed(&rules, 'c', 1, 11, "r"));
    }

    #[test]
    fn docker_zeros_at_create_are_unset() {
        let r = res(serde_json::json!({"blockIO": {"weight": 0, "leafWeight": 0}, "memory": {"limit": 0, "swap": 0},
            "cpu": {"shares": 0, "quota": 0, "period": 0, "cpus": "", "mems": ""}}));
        let out = Resources::from_spec(Some(&r), false).unwrap();
        let mut plain = out.clone();
        plain.devices = None;
        assert_eq!(plain, Resources::default());
    }

    #[test]
    fn bad_values_name_their_field() {
        let e = Resources::from_spec(Some(&res(serde_json::json!({"memory": {"swappiness": 200}}))), false).unwrap_err();
        assert_eq!(e.field, "memory.swappiness");
        let e = Resources::from_spec(Some(&res(serde_json::json!({"blockIO": {"weightDevice": [{"major": 8, "minor": 0, "weight": 5}]}}))), false)
            .unwrap_err();
        assert_eq!(e.field, "blockIO.weightDevice[0].weight");
        let e = Resources::from_spec(Some(&res(serde_json::json!({"devices": [{"allow": true, "type": "p"}]}))), false).unwrap_err();
        assert_eq!(e.field, "devices[0]");
        let e = Resources::from_spec(Some(&res(serde_json::json!({"unified": {"a/b.c": "1"}}))), false).unwrap_err();
        assert_eq!(e.field, "unified.a/b.c");
        assert_eq!(e.to_string(), "linux.resources.unified.a/b.c: not a cgroup v2 file name (like \"memory.high\")");
    }
}
