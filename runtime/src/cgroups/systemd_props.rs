//! The container's resources as systemd unit properties, for the systemd
//! cgroup driver: what StartTransientUnit gets at create and
//! SetUnitProperties at update. The mapping is runc's (opencontainers/cgroups
//! systemd/{v1,v2,common,cpuset}.go and devices/systemd.go); the driver
//! still writes every value to cgroupfs after systemd, as runc does, so
//! systemd holds the same values and does not undo them when it re-applies
//! its own (daemon-reload, another unit's change).
//!
//! | `linux.resources`    | v1 (and hybrid)    | v2                   |
//! |----------------------|--------------------|----------------------|
//! | memory.limit         | MemoryLimit        | MemoryMax            |
//! | memory.reservation   |                    | MemoryLow            |
//! | memory.swap          |                    | MemorySwapMax        |
//! | cpu.shares           | CPUShares          | CPUWeight            |
//! | cpu.idle = 1         |                    | CPUWeight 0 (>= 252) |
//! | cpu.quota, period    | CPUQuotaPerSecUSec, CPUQuotaPeriodUSec (>= 242) | same |
//! | cpu.cpus, cpu.mems   | AllowedCPUs, AllowedMemoryNodes (>= 244) | same |
//! | pids.limit           | TasksMax           | TasksMax             |
//! | blockIO.weight       | BlockIOWeight      | IOWeight             |
//! | devices              | DevicePolicy, DeviceAllow | same          |
//!
//! Every number is a `t`; -1 ("unlimited") is u64::MAX, systemd's
//! "infinity". Where berth departs from runc, on purpose:
//!
//! * v2 `IOWeight` from blockIO.weight (runc sets none): with IOAccounting
//!   on, systemd writes io.weight itself, the default 100 when it has no
//!   IOWeight, over the value berth's cgroupfs driver wrote;
//! * v2 `MemorySwapMax` 0 when memory.swap equals memory.limit (runc's
//!   systemd driver skips a 0; its cgroupfs driver writes it, and so does
//!   berth's);
//! * the conversions are berth's cgroupfs ones from [`super::resources`]:
//!   cpu.weight is runc's linear one (runc since mid-2025 uses a curve),
//!   and a swap limit with an unlimited memory is an error, so that systemd
//!   and cgroupfs get the same numbers.
//!
//! Nothing else is a property: hugetlb, rdma, net_cls/net_prio, unified,
//! swappiness, kernel memory, oom_kill_disable, cpu burst and realtime,
//! blockIO weight devices and throttles. The cgroupfs driver writes them
//! (runc converts a few `unified` keys; berth leaves `unified` to
//! cgroupfs).
//!
//! `update` needs no mode of its own: [`Resources`] holds 0 for "not set"
//! (runc's convention), so the properties are those of what is set, and the
//! device properties only come when `devices` is Some (None at update, as
//! runc leaves devices alone there).
//!
//! Devices. runc replays the rules (the config's, then its defaults) from
//! "deny all", merging the allows per type:major:minor. The result is
//! `DeviceAllow=` (empty: systemd appends to the list otherwise, so this
//! clears it), `DevicePolicy=strict`, then `DeviceAllow=` of the allowed
//! entries: `char-*`/`block-*` for `*:*`, `char-M`/`block-M` for `M:*`
//! (systemd >= 240) and `/dev/char/M:m`/`/dev/block/M:m` for one device.
//! What systemd cannot express, berth handles as runc does:
//!
//! * an allow-all list (the last `a` rule allows, no deny after it):
//!   `DevicePolicy=auto` with the empty `DeviceAllow=` only;
//! * a deny list (allow-all, then denies): `DevicePolicy=strict` and no
//!   entry (runc's "temporary deny-all"; the cgroupfs driver's rules follow);
//! * a `*:M` rule (any major, one minor): left out of the list;
//! * an `M:*` rule with systemd < 240: left out (runc looks the major up in
//!   /proc/devices for a group name; this module reads no file);
//! * a deny that would cut a hole in an earlier wildcard allow (`c 1:* rw`
//!   then deny `c 1:3 w`): an error naming the rule, as runc's.
//!
//! The device properties do not replace berth's own enforcement: on v2
//! systemd attaches a program of its own next to berth's (berth attaches
//! with BPF_F_ALLOW_MULTI and detaches nothing, runc replaces systemd's),
//! and both must allow an access; on v1 the last list written wins.

use crate::dbus::{Property, Value};

use super::devices::{self, access_bits, Rule};
use super::resources::{blkio_to_io_weight, shares_to_weight, swap_to_v2, FieldError, Resources};

/// Which hierarchy the host has: properties differ (v1/hybrid:
/// MemoryLimit, CPUShares, BlockIOWeight; v2: MemoryMax, CPUWeight,
/// IOWeight...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    V1,
    V2,
}

/// systemd's USEC_INFINITY / CGROUP_LIMIT_MAX: "no limit".
pub const INFINITY: u64 = u64::MAX;
/// The kernel's default CFS period (us), for a quota without a period.
const DEFAULT_PERIOD: u64 = 100_000;
/// The largest CPU or memory node number a bitmask takes (the kernel's
/// NR_CPUS is at most 8192; this bounds the array an untrusted list makes).
const MAX_BIT: u32 = 65_535;

/// The properties systemd gets for `r` at create (StartTransientUnit) and
/// at update (SetUnitProperties): only what `r` sets (0 is "not set");
/// devices only when `r.devices` is Some. Properties that need a newer
/// systemd than `systemd_version` are left out (0: unknown, the oldest).
pub fn resource_properties(
    r: &Resources,
    layout: Layout,
    systemd_version: u32,
) -> Result<Vec<Property>, FieldError> {
    let mut p = Vec::new();
    if let Some(rules) = &r.devices {
        p.extend(device_properties(rules, systemd_version)?);
    }
    match layout {
        Layout::V1 => v1_properties(r, &mut p),
        Layout::V2 => v2_properties(r, systemd_version, &mut p)?,
    }
    add_cpu_quota(r, systemd_version, &mut p);
    if r.blkio_weight != 0 {
        p.push(match layout {
            Layout::V1 => prop("BlockIOWeight", u64::from(r.blkio_weight)),
            Layout::V2 => prop("IOWeight", blkio_to_io_weight(r.blkio_weight)),
        });
    }
    if let Some(limit) = r.pids_limit {
        p.push(prop("TasksMax", tasks_max(limit)));
    }
    add_cpuset(r, systemd_version, &mut p)?;
    Ok(p)
}

fn prop(name: &str, v: u64) -> Property {
    (name.to_string(), Value::U64(v))
}

/// A limit in runc's convention: negative (-1) is "unlimited".
fn limit(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(INFINITY)
}

/// runc's genV1ResourcesProperties, less what all layouts share.
fn v1_properties(r: &Resources, p: &mut Vec<Property>) {
    if r.memory != 0 {
        p.push(prop("MemoryLimit", limit(r.memory)));
    }
    if r.cpu_shares != 0 {
        p.push(prop("CPUShares", r.cpu_shares));
    }
}

/// runc's genV2ResourcesProperties, less what all layouts share.
fn v2_properties(r: &Resources, version: u32, p: &mut Vec<Property>) -> Result<(), FieldError> {
    if r.memory != 0 {
        p.push(prop("MemoryMax", limit(r.memory)));
    }
    if r.memory_reservation != 0 {
        p.push(prop("MemoryLow", limit(r.memory_reservation)));
    }
    let swap =
        swap_to_v2(r.memory_swap, r.memory).map_err(|m| FieldError::new("memory.swap", m))?;
    if let Some(swap) = swap {
        p.push(prop("MemorySwapMax", limit(swap)));
    }
    // systemd >= 252 writes cpu.idle 1 for CPUWeight=0; runc then drops
    // the weight of the shares (both cannot be had through systemd).
    if r.cpu_idle == Some(1) && version >= 252 {
        p.push(prop("CPUWeight", 0));
    } else if r.cpu_shares != 0 {
        // The cgroupfs driver's range; systemd refuses a weight above 10000.
        if !(2..=262_144).contains(&r.cpu_shares) {
            return Err(FieldError::new(
                "cpu.shares",
                format!("{} is out of range 2-262144", r.cpu_shares),
            ));
        }
        p.push(prop("CPUWeight", shares_to_weight(r.cpu_shares)));
    }
    Ok(())
}

/// systemd's TasksMax for a pids.limit: negative is "infinity"; 0 is 1,
/// because systemd refuses 0 (runc; the cgroupfs driver then writes 0).
fn tasks_max(limit: i64) -> u64 {
    match limit {
        ..=-1 => INFINITY,
        0 => 1,
        n => n as u64,
    }
}

/// runc's addCPUQuota: CPUQuotaPeriodUSec when a period is set (systemd
/// >= 242), CPUQuotaPerSecUSec when a quota or a period is set.
fn add_cpu_quota(r: &Resources, version: u32, p: &mut Vec<Property>) {
    if r.cpu_period != 0 && version >= 242 {
        p.push(prop("CPUQuotaPeriodUSec", r.cpu_period));
    }
    if r.cpu_quota != 0 || r.cpu_period != 0 {
        p.push(prop(
            "CPUQuotaPerSecUSec",
            cpu_quota_per_sec(r.cpu_quota, r.cpu_period).0,
        ));
    }
}

/// The CPUQuotaPerSecUSec of `quota` us every `period` us (0: the kernel's
/// 100 ms), and the quota the driver should write to cgroupfs with it.
/// systemd keeps the quota as a whole percentage of a CPU, so runc rounds
/// the time per second up to a multiple of 10 ms and writes the quota that
/// gives back (50000/100000: 500000 us/s, quota 50000; 12345/100000:
/// 130000 us/s, quota 13000). A quota of 0 or less is "infinity" and stays
/// as it is, as does one too large for a u64 per second.
pub fn cpu_quota_per_sec(quota: i64, period: u64) -> (u64, i64) {
    let Ok(q) = u64::try_from(quota) else {
        return (INFINITY, quota);
    };
    if q == 0 {
        return (INFINITY, quota);
    }
    let period = if period == 0 { DEFAULT_PERIOD } else { period };
    let per_sec = u128::from(q) * 1_000_000 / u128::from(period);
    if per_sec % 10_000 == 0 {
        return u64::try_from(per_sec).map_or((INFINITY, quota), |s| (s, quota));
    }
    let up = (per_sec / 10_000 + 1) * 10_000;
    let Ok(up64) = u64::try_from(up) else {
        return (INFINITY, quota);
    };
    let new_quota = up * u128::from(period) / 1_000_000;
    (up64, i64::try_from(new_quota).unwrap_or(i64::MAX))
}

/// runc's addCpuset: AllowedCPUs and AllowedMemoryNodes (systemd >= 244).
fn add_cpuset(r: &Resources, version: u32, p: &mut Vec<Property>) -> Result<(), FieldError> {
    if version < 244 {
        return Ok(());
    }
    for (field, name, list) in [
        ("cpu.cpus", "AllowedCPUs", &r.cpuset_cpus),
        ("cpu.mems", "AllowedMemoryNodes", &r.cpuset_mems),
    ] {
        if list.is_empty() {
            continue;
        }
        let bits =
            cpus_bitmask(list).map_err(|m| FieldError::new(field, format!("{list:?}: {m}")))?;
        let bytes = bits.into_iter().map(Value::Byte).collect();
        p.push((name.to_string(), Value::Array("y".into(), bytes)));
    }
    Ok(())
}

/// A cpuset list ("0-3,8") as the bitmask systemd takes for AllowedCPUs
/// and AllowedMemoryNodes: bit n of byte n/8 for CPU n, as short as it can
/// be ("0-3,8" -> [0x0f, 0x01]). As runc's RangeToBits: spaces around an
/// item and empty items are allowed; an empty set, a range that runs
/// backwards or anything but decimal numbers is an error.
pub fn cpus_bitmask(list: &str) -> Result<Vec<u8>, String> {
    let mut bytes: Vec<u8> = Vec::new();
    let num = |s: &str| -> Result<u32, String> {
        let n: u32 = s
            .parse()
            .map_err(|_| format!("{s:?} is not a CPU or node number"))?;
        if n > MAX_BIT {
            return Err(format!("{n} is above {MAX_BIT}"));
        }
        Ok(n)
    };
    for item in list.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (start, end) = match item.split_once('-') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => (num(item)?, num(item)?),
        };
        if start > end {
            return Err(format!("range {item:?} runs backwards"));
        }
        let need = end as usize / 8 + 1;
        if bytes.len() < need {
            bytes.resize(need, 0);
        }
        for n in start..=end {
            bytes[n as usize / 8] |= 1 << (n % 8);
        }
    }
    if bytes.is_empty() {
        return Err("the list is empty".into());
    }
    Ok(bytes)
}

/// A device rule's "major:minor" key; None is the wildcard, which sorts
/// first (runc sorts its entries by major, minor, type, the wildcard -1).
type Key = (Option<i64>, Option<i64>, char);

/// runc's device emulator: the state the rules leave, from "deny all".
#[derive(Default)]
struct Emulated {
    /// Everything allowed but the entries (a deny list).
    allow_by_default: bool,
    /// The exceptions to the default, with their r/w/m bits.
    entries: std::collections::BTreeMap<Key, u32>,
}

impl Emulated {
    fn replay(rules: &[Rule]) -> Result<Emulated, FieldError> {
        let mut e = Emulated::default();
        let config = config_len(rules);
        for (i, rule) in rules.iter().enumerate() {
            if rule.typ == 'a' {
                // Any `a` rule resets the whole list (runc, the kernel).
                e = Emulated {
                    allow_by_default: rule.allow,
                    ..Emulated::default()
                };
                continue;
            }
            let key = (rule.major, rule.minor, rule.typ);
            let bits = access_bits(&rule.access);
            if rule.allow != e.allow_by_default {
                if bits != 0 {
                    *e.entries.entry(key).or_default() |= bits;
                }
                continue;
            }
            e.check_no_hole(key, bits).map_err(|m| {
                let field = if i < config {
                    format!("devices[{i}]")
                } else {
                    "devices".to_string()
                };
                let what = if i < config {
                    ""
                } else {
                    "runc's default rule "
                };
                FieldError::new(field, format!("{what}{}: {m}", describe(rule)))
            })?;
            if let Some(have) = e.entries.get_mut(&key) {
                *have &= !bits;
                if *have == 0 {
                    e.entries.remove(&key);
                }
            }
        }
        Ok(e)
    }

    /// runc's rmRule check: taking bits from one entry while a wildcard
    /// entry of the same type still grants them cannot be expressed.
    fn check_no_hole(&self, key: Key, bits: u32) -> Result<(), String> {
        let (major, minor, typ) = key;
        for wide in [(None, minor, typ), (major, None, typ), (None, None, typ)] {
            if wide == key {
                continue;
            }
            let have = self.entries.get(&wide).copied().unwrap_or(0);
            if have & bits != 0 {
                return Err(format!(
                    "systemd's device list cannot cut it out of the earlier wildcard {typ} {}:{} {}",
                    num_or_star(wide.0),
                    num_or_star(wide.1),
                    perms(have)
                ));
            }
        }
        Ok(())
    }
}

/// How many rules came from the config: the list ends with runc's default
/// rules, which [`Resources::from_spec`] appends.
fn config_len(rules: &[Rule]) -> usize {
    let defaults: Vec<Rule> = devices::default_rules().collect();
    if rules.ends_with(&defaults) {
        rules.len() - defaults.len()
    } else {
        rules.len()
    }
}

fn num_or_star(n: Option<i64>) -> String {
    n.map_or("*".to_string(), |n| n.to_string())
}

fn describe(rule: &Rule) -> String {
    let verb = if rule.allow { "allow" } else { "deny" };
    format!(
        "{verb} {} {}:{} {}",
        rule.typ,
        num_or_star(rule.major),
        num_or_star(rule.minor),
        rule.access
    )
}

/// r, w, m bits as systemd's (and runc's) "rwm" order.
fn perms(bits: u32) -> String {
    [(2, 'r'), (4, 'w'), (1, 'm')]
        .iter()
        .filter(|(b, _)| bits & b != 0)
        .map(|(_, c)| *c)
        .collect()
}

fn device_allow(entries: Vec<(String, String)>) -> Property {
    let items = entries
        .into_iter()
        .map(|(path, perms)| Value::Struct(vec![Value::Str(path), Value::Str(perms)]))
        .collect();
    (
        "DeviceAllow".to_string(),
        Value::Array("(ss)".into(), items),
    )
}

/// runc's systemdProperties (devices/systemd.go).
fn device_properties(rules: &[Rule], version: u32) -> Result<Vec<Property>, FieldError> {
    let e = Emulated::replay(rules)?;
    let policy = |p: &str| ("DevicePolicy".to_string(), Value::str(p));
    if e.allow_by_default {
        let p = if e.entries.is_empty() {
            "auto"
        } else {
            "strict"
        };
        return Ok(vec![device_allow(vec![]), policy(p)]);
    }
    let mut allow = Vec::new();
    for ((major, minor, typ), bits) in e.entries {
        let group = if typ == 'b' { "block" } else { "char" };
        let path = match (major, minor) {
            (None, None) => format!("{group}-*"),
            (None, Some(_)) => continue,
            (Some(m), None) if version >= 240 => format!("{group}-{m}"),
            (Some(_), None) => continue,
            (Some(m), Some(n)) => format!("/dev/{group}/{m}:{n}"),
        };
        allow.push((path, perms(bits)));
    }
    Ok(vec![
        device_allow(vec![]),
        policy("strict"),
        device_allow(allow),
    ])
}

#[cfg(test)]
#[path = "systemd_props_tests.rs"]
mod tests;
