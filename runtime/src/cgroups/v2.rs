//! The cgroup v2 driver (unified hierarchy only): runc's v1 -> v2
//! conversions (cpu.shares -> cpu.weight, blkio weight -> io.weight,
//! memory+swap -> memory.swap.max), devices through an eBPF program, and
//! the freezer through cgroup.freeze.

use std::path::Path;
use std::time::{Duration, Instant};

use super::fsutil::{self, FieldWriter};
use super::resources::{blkio_to_io_weight, num_or_max, shares_to_weight, swap_to_v2, FieldError, Resources};
use super::Driver;
use crate::error::{Error, Result};

pub struct V2<'a> {
    pub dir: &'a Path,
}

fn unsupported(field: &str, what: &str) -> FieldError {
    FieldError::new(field, format!("{what} does not exist on cgroup v2"))
}

impl V2<'_> {
    fn w(&self) -> FieldWriter<'_> {
        FieldWriter { dir: self.dir }
    }

    fn memory(&self, r: &Resources) -> Result<(), FieldError> {
        let w = self.w();
        // Deprecated (runtime-spec 1.3: runtimes may ignore them), as runc.
        if r.kernel_memory != 0 {
            log::warn!("linux.resources.memory.kernel: ignored, cgroup v2 has no kernel memory limit");
        }
        if r.kernel_memory_tcp != 0 {
            log::warn!("linux.resources.memory.kernelTCP: ignored, cgroup v2 has no kernel TCP memory limit");
        }
        if r.swappiness.is_some() {
            return Err(unsupported("memory.swappiness", "a per-cgroup swappiness"));
        }
        if r.oom_kill_disable {
            return Err(unsupported("memory.disableOOMKiller", "disabling the OOM killer"));
        }
        if r.use_hierarchy == Some(false) {
            return Err(FieldError::new(
                "memory.useHierarchy",
                "cgroup v2 accounting is always hierarchical",
            ));
        }
        let swap = swap_to_v2(r.memory_swap, r.memory).map_err(|m| FieldError::new("memory.swap", m))?;
        if r.memory > 0 && r.check_before_update {
            if let Ok(cur) = fsutil::read_u64(self.dir, "memory.current") {
                if cur > r.memory as u64 {
                    return Err(FieldError::new(
                        "memory.limit",
                        format!("{} is below the current usage {cur} (checkBeforeUpdate)", r.memory),
                    ));
                }
            }
        }
        let swap_str = match swap {
            Some(v) => Some(num_or_max(v)),
            // memory == memory+swap: no swap at all.
            None if r.memory_swap > 0 => Some("0".into()),
            None => None,
        };
        if let Some(s) = swap_str {
            if let Err(e) = fsutil::write(self.dir, "memory.swap.max", &s) {
                // No swap accounting: "max" and "0" are already true.
                if !(e.raw_os_error() == Some(libc::ENOENT) && (s == "max" || s == "0")) {
                    return Err(fsutil::write_error("memory.swap", &w.path("memory.swap.max"), &s, &e));
                }
            }
        }
        if r.memory != 0 {
            let v = num_or_max(r.memory);
            fsutil::write(self.dir, "memory.max", &v).map_err(|e| {
                let mut err = fsutil::write_error("memory.limit", &w.path("memory.max"), &v, &e);
                if e.raw_os_error() == Some(libc::EBUSY) {
                    let usage = fsutil::read_u64(self.dir, "memory.current").unwrap_or(0);
                    err.msg = format!("{}: current usage is {usage}", err.msg);
                }
                err
            })?;
        }
        if r.memory_reservation != 0 {
            w.set("memory.reservation", "memory.low", &num_or_max(r.memory_reservation))?;
        }
        Ok(())
    }

    fn cpu(&self, r: &Resources) -> Result<(), FieldError> {
        let w = self.w();
        if r.cpu_rt_runtime != 0 {
            return Err(unsupported("cpu.realtimeRuntime", "a realtime runtime limit"));
        }
        if r.cpu_rt_period != 0 {
            return Err(unsupported("cpu.realtimePeriod", "a realtime period"));
        }
        if let Some(i) = r.cpu_idle {
            w.set("cpu.idle", "cpu.idle", &i.to_string())?;
        }
        if r.cpu_shares != 0 {
            let weight = shares_to_weight(r.cpu_shares);
            if !(1..=10000).contains(&weight) || r.cpu_shares < 2 || r.cpu_shares > 262144 {
                return Err(FieldError::new(
                    "cpu.shares",
                    format!("{} is out of range 2-262144", r.cpu_shares),
                ));
            }
            w.set("cpu.shares", "cpu.weight", &weight.to_string())?;
        }
        let max = if r.cpu_quota != 0 || r.cpu_period != 0 {
            let mut s = if r.cpu_quota > 0 {
                r.cpu_quota.to_string()
            } else {
                "max".to_string()
            };
            if r.cpu_period != 0 {
                s.push_str(&format!(" {}", r.cpu_period));
            }
            Some(s)
        } else {
            None
        };
        let field = if r.cpu_quota != 0 { "cpu.quota" } else { "cpu.period" };
        match (r.cpu_burst, max) {
            (Some(b), Some(m)) => {
                // The burst may not exceed the quota: order the writes.
                if fsutil::write(self.dir, "cpu.max.burst", &b.to_string()).is_err() {
                    w.set(field, "cpu.max", &m)?;
                    w.set("cpu.burst", "cpu.max.burst", &b.to_string())?;
                } else {
                    w.set(field, "cpu.max", &m)?;
                }
            }
            (Some(b), None) => w.set("cpu.burst", "cpu.max.burst", &b.to_string())?,
            (None, Some(m)) => w.set(field, "cpu.max", &m)?,
            (None, None) => {}
        }
        if !r.cpuset_cpus.is_empty() {
            w.set("cpu.cpus", "cpuset.cpus", &r.cpuset_cpus)?;
        }
        if !r.cpuset_mems.is_empty() {
            w.set("cpu.mems", "cpuset.mems", &r.cpuset_mems)?;
        }
        Ok(())
    }

    fn io(&self, r: &Resources) -> Result<(), FieldError> {
        let w = self.w();
        if r.blkio_leaf_weight != 0 {
            return Err(unsupported("blockIO.leafWeight", "a leaf weight"));
        }
        let bfq = w.exists("io.bfq.weight");
        if r.blkio_weight != 0 {
            if bfq {
                w.set("blockIO.weight", "io.bfq.weight", &r.blkio_weight.to_string())?;
            } else {
                w.set(
                    "blockIO.weight",
                    "io.weight",
                    &blkio_to_io_weight(r.blkio_weight).to_string(),
                )?;
            }
        }
        for (i, d) in r.blkio_weight_device.iter().enumerate() {
            if d.leaf_weight != 0 {
                return Err(unsupported(
                    &format!("blockIO.weightDevice[{i}].leafWeight"),
                    "a leaf weight",
                ));
            }
            if d.weight == 0 {
                continue;
            }
            let field = format!("blockIO.weightDevice[{i}].weight");
            if bfq {
                w.set(
                    &field,
                    "io.bfq.weight",
                    &format!("{}:{} {}", d.major, d.minor, d.weight),
                )?;
            } else {
                w.set(
                    &field,
                    "io.weight",
                    &format!("{}:{} {}", d.major, d.minor, blkio_to_io_weight(d.weight)),
                )?;
            }
        }
        for (list, name, key) in [
            (&r.throttle_read_bps, "throttleReadBpsDevice", "rbps"),
            (&r.throttle_write_bps, "throttleWriteBpsDevice", "wbps"),
            (&r.throttle_read_iops, "throttleReadIOPSDevice", "riops"),
            (&r.throttle_write_iops, "throttleWriteIOPSDevice", "wiops"),
        ] {
            for (i, t) in list.iter().enumerate() {
                let v = format!("{}:{} {key}={}", t.major, t.minor, t.rate);
                w.set(&format!("blockIO.{name}[{i}]"), "io.max", &v)?;
            }
        }
        Ok(())
    }

    fn others(&self, r: &Resources) -> Result<(), FieldError> {
        let w = self.w();
        if let Some(p) = r.pids_limit {
            w.set("pids.limit", "pids.max", &num_or_max(p))?;
        }
        for (i, (size, limit)) in r.hugetlb.iter().enumerate() {
            let field = format!("hugepageLimits[{i}]");
            let file = format!("hugetlb.{size}.max");
            if !w.exists(&file) {
                let why = if w.exists("hugetlb.2MB.max") || w.exists("hugetlb.1GB.max") {
                    format!("this host has no {size} huge pages")
                } else {
                    "the hugetlb controller is not enabled for this cgroup".to_string()
                };
                return Err(FieldError::new(format!("{field}.pageSize"), why));
            }
            w.set(&format!("{field}.limit"), &file, &limit.to_string())?;
            let rsvd = format!("hugetlb.{size}.rsvd.max");
            if w.exists(&rsvd) {
                w.set(&format!("{field}.limit"), &rsvd, &limit.to_string())?;
            }
        }
        if r.net_cls_classid.is_some() {
            return Err(unsupported("network.classID", "net_cls"));
        }
        if !r.net_prio.is_empty() {
            return Err(unsupported("network.priorities", "net_prio"));
        }
        for (dev, l) in &r.rdma {
            w.set(&format!("rdma.{dev}"), "rdma.max", &super::rdma_line(dev, l))?;
        }
        for (k, v) in &r.unified {
            let field = format!("unified.{k}");
            if let Err(e) = fsutil::write(self.dir, k, v) {
                if e.raw_os_error() == Some(libc::ENOENT) {
                    let ctrl = k.split('.').next().unwrap_or("");
                    let avail = fsutil::read(self.dir, "cgroup.controllers").unwrap_or_default();
                    let why = if ctrl != "cgroup" && !avail.split_whitespace().any(|c| c == ctrl) {
                        format!(
                            "the {ctrl} controller is not available to this cgroup (it has: {})",
                            avail.trim()
                        )
                    } else {
                        format!("this cgroup has no file {k}")
                    };
                    return Err(FieldError::new(field, why));
                }
                return Err(fsutil::write_error(&field, &self.dir.join(k), v, &e));
            }
        }
        Ok(())
    }
}

impl Driver for V2<'_> {
    fn apply(&self, r: &Resources) -> Result<(), FieldError> {
        if let Some(rules) = &r.devices {
            super::devices_bpf::attach(self.dir, rules).map_err(|e| {
                FieldError::new(
                    "devices",
                    format!("load the eBPF device program into {}: {e}", self.dir.display()),
                )
            })?;
        }
        self.memory(r)?;
        self.cpu(r)?;
        self.io(r)?;
        self.others(r)
    }

    fn set_frozen(&self, frozen: bool) -> Result<()> {
        let want = if frozen { "1" } else { "0" };
        fsutil::write(self.dir, "cgroup.freeze", want)
            .map_err(|e| Error::path("write", self.dir.join("cgroup.freeze"), e))?;
        let start = Instant::now();
        loop {
            if self.frozen()? == frozen {
                return Ok(());
            }
            if start.elapsed() > Duration::from_secs(10) {
                if frozen {
                    let _ = fsutil::write(self.dir, "cgroup.freeze", "0");
                }
                return Err(Error::os(
                    format!("{}: not {} after 10s", self.dir.display(), if frozen { "frozen" } else { "thawed" }),
                    std::io::Error::from_raw_os_error(libc::ETIMEDOUT),
                ));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn frozen(&self) -> Result<bool> {
        let ev = fsutil::read(self.dir, "cgroup.events")
            .map_err(|e| Error::path("read", self.dir.join("cgroup.events"), e))?;
        Ok(ev.lines().any(|l| l.trim() == "frozen 1"))
    }

    fn stats(&self) -> Result<super::stats::Stats> {
        super::stats::v2(self.dir)
    }

    fn oom_watch(&self) -> Result<super::events::OomWatch> {
        super::events::OomWatch::v2(self.dir)
    }
}
