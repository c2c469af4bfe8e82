//! The cgroup v1 driver (cgroupfs; legacy and hybrid hosts): one directory
//! per mounted hierarchy, each controller's files in its own hierarchy
//! (cpu and cpuacct mounted apart or together). On a hybrid host the
//! `unified` key/values go to the container's directory in the cgroup2
//! hierarchy, as runc does.

use std::path::Path;
use std::time::{Duration, Instant};

use super::fsutil::{self, FieldWriter};
use super::resources::{num_or_max, FieldError, Resources};
use super::{ContainerCgroups, Driver};
use crate::error::{Error, Result};

pub struct V1<'a> {
    pub cg: &'a ContainerCgroups,
}

impl V1<'_> {
    /// The container's directory in the hierarchy that has `controller`.
    fn dir(&self, controller: &str) -> Option<&Path> {
        self.cg
            .mounts
            .iter()
            .find(|m| !m.unified && m.subsystems.iter().any(|s| s == controller))
            .map(|m| m.dir.as_path())
    }

    fn need(&self, controller: &str, field: &str) -> Result<FieldWriter<'_>, FieldError> {
        self.dir(controller).map(|dir| FieldWriter { dir }).ok_or_else(|| {
            FieldError::new(
                field,
                format!("the {controller} controller is not mounted on this host (cgroup v1)"),
            )
        })
    }

    fn memory(&self, r: &Resources) -> Result<(), FieldError> {
        let any = r.memory != 0
            || r.memory_swap != 0
            || r.memory_reservation != 0
            || r.kernel_memory != 0
            || r.kernel_memory_tcp != 0
            || r.swappiness.is_some()
            || r.oom_kill_disable
            || r.use_hierarchy.is_some();
        if !any {
            return Ok(());
        }
        let w = self.need("memory", "memory")?;
        const LIMIT: &str = "memory.limit_in_bytes";
        const SWAP: &str = "memory.memsw.limit_in_bytes";
        let has_swap = w.exists(SWAP);
        let mut swap = r.memory_swap;
        if r.memory == -1 && swap == 0 && has_swap {
            swap = -1;
        }
        if swap == -1 && !has_swap {
            swap = 0; // unlimited already: nothing to do without swap accounting
        }
        let set_limit = |v: i64| -> Result<(), FieldError> {
            if v == 0 {
                return Ok(());
            }
            let s = v.to_string();
            fsutil::write(w.dir, LIMIT, &s).map_err(|e| {
                let mut err = fsutil::write_error("memory.limit", &w.path(LIMIT), &s, &e);
                if e.raw_os_error() == Some(libc::EBUSY) {
                    let usage = fsutil::read_u64(w.dir, "memory.usage_in_bytes").unwrap_or(0);
                    let peak = fsutil::read_u64(w.dir, "memory.max_usage_in_bytes").unwrap_or(0);
                    err.msg = format!("{}: current usage is {usage}, peak {peak}", err.msg);
                }
                err
            })
        };
        let set_swap = |v: i64| {
            if v == 0 {
                Ok(())
            } else {
                w.set("memory.swap", SWAP, &v.to_string())
            }
        };
        let mut done = false;
        if r.memory != 0 && swap != 0 {
            // The kernel wants memory <= memory+swap at every step: raise
            // memsw first when it grows, last when it shrinks.
            let cur = fsutil::read_u64(w.dir, LIMIT).unwrap_or(u64::MAX);
            if swap == -1 || cur < swap as u64 {
                set_swap(swap)?;
                set_limit(r.memory)?;
                done = true;
            }
        }
        if !done {
            set_limit(r.memory)?;
            set_swap(swap)?;
        }
        kernel_limits(&w, r)?;
        if r.memory_reservation != 0 {
            w.set(
                "memory.reservation",
                "memory.soft_limit_in_bytes",
                &r.memory_reservation.to_string(),
            )?;
        }
        if r.oom_kill_disable {
            w.set("memory.disableOOMKiller", "memory.oom_control", "1")?;
        }
        if let Some(s) = r.swappiness {
            w.set("memory.swappiness", "memory.swappiness", &s.to_string())?;
        }
        if let Some(h) = r.use_hierarchy {
            w.set("memory.useHierarchy", "memory.use_hierarchy", if h { "1" } else { "0" })?;
        }
        Ok(())
    }

    fn cpu(&self, r: &Resources) -> Result<(), FieldError> {
        let any = r.cpu_shares != 0
            || r.cpu_quota != 0
            || r.cpu_period != 0
            || r.cpu_burst.is_some()
            || r.cpu_rt_runtime != 0
            || r.cpu_rt_period != 0
            || r.cpu_idle.is_some();
        if !any {
            return Ok(());
        }
        let w = self.need("cpu", "cpu")?;
        // Realtime: period and runtime depend on each other; on EINVAL for
        // the period, set the runtime first and the period again.
        let mut rt_period_pending = false;
        if r.cpu_rt_period != 0 {
            let v = r.cpu_rt_period.to_string();
            match fsutil::write(w.dir, "cpu.rt_period_us", &v) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) && r.cpu_rt_runtime != 0 => rt_period_pending = true,
                Err(e) => {
                    return Err(fsutil::write_error(
                        "cpu.realtimePeriod",
                        &w.path("cpu.rt_period_us"),
                        &v,
                        &e,
                    ))
                }
            }
        }
        if r.cpu_rt_runtime != 0 {
            w.set(
                "cpu.realtimeRuntime",
                "cpu.rt_runtime_us",
                &r.cpu_rt_runtime.to_string(),
            )?;
            if rt_period_pending {
                w.set("cpu.realtimePeriod", "cpu.rt_period_us", &r.cpu_rt_period.to_string())?;
            }
        }
        if r.cpu_shares != 0 {
            w.set("cpu.shares", "cpu.shares", &r.cpu_shares.to_string())?;
            // The kernel clamps silently: read back and say so.
            let got = fsutil::read_u64(w.dir, "cpu.shares").unwrap_or(r.cpu_shares);
            if got != r.cpu_shares {
                let which = if r.cpu_shares > got { "maximum" } else { "minimum" };
                return Err(FieldError::new(
                    "cpu.shares",
                    format!("{} is out of range: the {which} is {got}", r.cpu_shares),
                ));
            }
        }
        let mut period_pending = false;
        if r.cpu_period != 0 {
            let v = r.cpu_period.to_string();
            match fsutil::write(w.dir, "cpu.cfs_period_us", &v) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) && r.cpu_quota != 0 => period_pending = true,
                Err(e) => return Err(fsutil::write_error("cpu.period", &w.path("cpu.cfs_period_us"), &v, &e)),
            }
        }
        if r.cpu_quota != 0 {
            w.set("cpu.quota", "cpu.cfs_quota_us", &r.cpu_quota.to_string())?;
            if period_pending {
                w.set("cpu.period", "cpu.cfs_period_us", &r.cpu_period.to_string())?;
            }
        }
        if let Some(b) = r.cpu_burst {
            w.set("cpu.burst", "cpu.cfs_burst_us", &b.to_string())?;
        }
        if let Some(i) = r.cpu_idle {
            w.set("cpu.idle", "cpu.idle", &i.to_string())?;
        }
        Ok(())
    }

    fn blkio(&self, r: &Resources) -> Result<(), FieldError> {
        let throttles = [
            (
                &r.throttle_read_bps,
                "throttleReadBpsDevice",
                "blkio.throttle.read_bps_device",
            ),
            (
                &r.throttle_write_bps,
                "throttleWriteBpsDevice",
                "blkio.throttle.write_bps_device",
            ),
            (
                &r.throttle_read_iops,
                "throttleReadIOPSDevice",
                "blkio.throttle.read_iops_device",
            ),
            (
                &r.throttle_write_iops,
                "throttleWriteIOPSDevice",
                "blkio.throttle.write_iops_device",
            ),
        ];
        let any = r.blkio_weight != 0
            || r.blkio_leaf_weight != 0
            || !r.blkio_weight_device.is_empty()
            || throttles.iter().any(|t| !t.0.is_empty());
        if !any {
            return Ok(());
        }
        let w = self.need("blkio", "blockIO")?;
        // CFQ's files, else BFQ's (runc's order).
        let (weight, weight_device) = if w.exists("blkio.weight") {
            ("blkio.weight", "blkio.weight_device")
        } else {
            ("blkio.bfq.weight", "blkio.bfq.weight_device")
        };
        if r.blkio_weight != 0 {
            w.set("blockIO.weight", weight, &r.blkio_weight.to_string())?;
        }
        if r.blkio_leaf_weight != 0 {
            w.set(
                "blockIO.leafWeight",
                "blkio.leaf_weight",
                &r.blkio_leaf_weight.to_string(),
            )?;
        }
        for (i, d) in r.blkio_weight_device.iter().enumerate() {
            if d.weight != 0 {
                let f = format!("blockIO.weightDevice[{i}].weight");
                w.set(&f, weight_device, &format!("{}:{} {}", d.major, d.minor, d.weight))?;
            }
            if d.leaf_weight != 0 {
                let f = format!("blockIO.weightDevice[{i}].leafWeight");
                w.set(
                    &f,
                    "blkio.leaf_weight_device",
                    &format!("{}:{} {}", d.major, d.minor, d.leaf_weight),
                )?;
            }
        }
        for (list, name, file) in throttles {
            for (i, t) in list.iter().enumerate() {
                w.set(
                    &format!("blockIO.{name}[{i}]"),
                    file,
                    &format!("{}:{} {}", t.major, t.minor, t.rate),
                )?;
            }
        }
        Ok(())
    }

    fn others(&self, r: &Resources) -> Result<(), FieldError> {
        if !r.cpuset_cpus.is_empty() {
            self.need("cpuset", "cpu.cpus")?
                .set("cpu.cpus", "cpuset.cpus", &r.cpuset_cpus)?;
        }
        if !r.cpuset_mems.is_empty() {
            self.need("cpuset", "cpu.mems")?
                .set("cpu.mems", "cpuset.mems", &r.cpuset_mems)?;
        }
        if let Some(p) = r.pids_limit {
            self.need("pids", "pids.limit")?
                .set("pids.limit", "pids.max", &num_or_max(p))?;
        }
        for (i, (size, limit)) in r.hugetlb.iter().enumerate() {
            let field = format!("hugepageLimits[{i}]");
            let w = self.need("hugetlb", &field)?;
            let file = format!("hugetlb.{size}.limit_in_bytes");
            if !w.exists(&file) {
                return Err(FieldError::new(
                    format!("{field}.pageSize"),
                    format!("this host has no {size} huge pages"),
                ));
            }
            w.set(&format!("{field}.limit"), &file, &limit.to_string())?;
            let rsvd = format!("hugetlb.{size}.rsvd.limit_in_bytes");
            if w.exists(&rsvd) {
                w.set(&format!("{field}.limit"), &rsvd, &limit.to_string())?;
            }
        }
        if let Some(id) = r.net_cls_classid {
            self.need("net_cls", "network.classID")?
                .set("network.classID", "net_cls.classid", &id.to_string())?;
        }
        for (i, (name, prio)) in r.net_prio.iter().enumerate() {
            let field = format!("network.priorities[{i}]");
            self.need("net_prio", &field)?
                .set(&field, "net_prio.ifpriomap", &format!("{name} {prio}"))?;
        }
        for (dev, l) in &r.rdma {
            let field = format!("rdma.{dev}");
            self.need("rdma", &field)?
                .set(&field, "rdma.max", &super::rdma_line(dev, l))?;
        }
        if !r.unified.is_empty() {
            let Some(u) = self.cg.mounts.iter().find(|m| m.unified) else {
                return Err(FieldError::new(
                    "unified",
                    "needs cgroup v2; this host mounts no cgroup2 hierarchy",
                ));
            };
            let w = FieldWriter { dir: &u.dir };
            for (k, v) in &r.unified {
                w.set(&format!("unified.{k}"), k, v)?;
            }
        }
        Ok(())
    }

    fn devices(&self, r: &Resources) -> Result<(), FieldError> {
        let Some(rules) = &r.devices else { return Ok(()) };
        let Some(dir) = self.dir("devices") else {
            return Err(FieldError::new(
                "devices",
                "the devices controller is not mounted on this host (cgroup v1)",
            ));
        };
        // Start from "deny everything", then replay the rules in order. Each
        // write(2) is one rule: one open file per list serves them all.
        let mut files = super::devices_v1::RuleFiles::new(dir);
        files.write("devices", false, "a")?;
        for (i, rule) in rules.iter().enumerate() {
            files.write(&format!("devices[{i}]"), rule.allow, &rule.v1_line())?;
        }
        Ok(())
    }

    fn freezer(&self) -> Result<&Path> {
        self.dir("freezer")
            .ok_or_else(|| Error::Unsupported("the freezer controller is not mounted on this host (cgroup v1)".into()))
    }
}

impl Driver for V1<'_> {
    fn apply(&self, r: &Resources) -> Result<(), FieldError> {
        // runc's order: cpuset before anything joins, rt before cpu.
        self.devices(r)?;
        self.memory(r)?;
        self.cpu(r)?;
        self.blkio(r)?;
        self.others(r)
    }

    fn set_frozen(&self, frozen: bool) -> Result<()> {
        let dir = self.freezer()?;
        let want = if frozen { "FROZEN" } else { "THAWED" };
        let start = Instant::now();
        let mut n = 0u32;
        loop {
            // Writing again helps a freeze that raced with new tasks.
            if n.is_multiple_of(50) {
                fsutil::write(dir, "freezer.state", want)
                    .map_err(|e| Error::path("write", dir.join("freezer.state"), e))?;
            }
            let got =
                fsutil::read(dir, "freezer.state").map_err(|e| Error::path("read", dir.join("freezer.state"), e))?;
            if got.trim() == want {
                return Ok(());
            }
            if start.elapsed() > Duration::from_secs(10) {
                if frozen {
                    let _ = fsutil::write(dir, "freezer.state", "THAWED");
                }
                return Err(Error::os(
                    format!("{}: still {} after 10s", dir.join("freezer.state").display(), got.trim()),
                    std::io::Error::from_raw_os_error(libc::ETIMEDOUT),
                ));
            }
            n += 1;
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn frozen(&self) -> Result<bool> {
        let dir = self.freezer()?;
        let s = fsutil::read(dir, "freezer.state").map_err(|e| Error::path("read", dir.join("freezer.state"), e))?;
        Ok(s.trim() != "THAWED")
    }

    fn stats(&self) -> Result<super::stats::Stats> {
        super::stats::v1(self)
    }

    fn oom_watch(&self) -> Result<super::events::OomWatch> {
        let dir = self
            .dir("memory")
            .ok_or_else(|| Error::Unsupported("the memory controller is not mounted".into()))?;
        super::events::OomWatch::v1(dir)
    }
}

impl<'a> V1<'a> {
    /// The container's directory for a controller, for stats.
    pub fn controller_dir(&self, controller: &str) -> Option<&'a Path> {
        self.cg
            .mounts
            .iter()
            .find(|m| !m.unified && m.subsystems.iter().any(|s| s == controller))
            .map(|m| m.dir.as_path())
    }
}

/// memory.kernel and memory.kernelTCP. Both are deprecated (runtime-spec
/// 1.3: runtimes may ignore them): Linux 5.16+ accepts a kernel memory
/// limit and ignores it, later kernels may lack the files. What this kernel
/// does not apply is a warning, not an error, as with runc; a kernelTCP
/// value the kernel refuses is still an error.
fn kernel_limits(w: &FieldWriter, r: &Resources) -> Result<(), FieldError> {
    if r.kernel_memory != 0 {
        const KMEM: &str = "memory.kmem.limit_in_bytes";
        // SAFETY: sysconf takes an integer name and reads no memory.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
        let applied = match fsutil::write(w.dir, KMEM, &r.kernel_memory.to_string()) {
            Err(e) => Err(e.to_string()),
            Ok(()) => match fsutil::read_u64(w.dir, KMEM) {
                Ok(got) if r.kernel_memory < 0 || got == r.kernel_memory as u64 / page * page => Ok(()),
                Ok(got) => Err(format!("it reads {got} after writing {}", r.kernel_memory)),
                Err(e) => Err(e.to_string()),
            },
        };
        if let Err(why) = applied {
            log::warn!(
                "linux.resources.memory.kernel: ignored, this kernel does not apply kernel memory limits ({}: {why})",
                w.path(KMEM).display()
            );
        }
    }
    if r.kernel_memory_tcp != 0 {
        const TCP: &str = "memory.kmem.tcp.limit_in_bytes";
        if w.exists(TCP) {
            w.set("memory.kernelTCP", TCP, &r.kernel_memory_tcp.to_string())?;
        } else {
            log::warn!("linux.resources.memory.kernelTCP: ignored, this kernel has no {}", w.path(TCP).display());
        }
    }
    Ok(())
}
