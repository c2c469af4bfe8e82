//! Stats: berth's cgroup figures ([`berth::stats::Stats`], runc's
//! shape) as containerd's metrics types, which `ctr task metrics` and the
//! CRI plugin decode by type URL:
//!
//! * cgroup v1: `io.containerd.cgroups.v1.Metrics`, the message
//!   containerd-shim-protos generates;
//! * cgroup v2: `io.containerd.cgroups.v2.Metrics` (containerd/cgroups
//!   cgroup2/stats/metrics.proto), which containerd-shim-protos 0.10 does
//!   not include: encoded here field by field ([`Pb`]).

use berth::stats::{BlkioEntry, Stats};
use containerd_shim_protos::cgroups::metrics as v1;
use protobuf::well_known_types::any::Any;
use protobuf::{Message, MessageField};

/// The container's metrics, ready for StatsResponse.
pub fn collect(c: &berth::Container) -> Result<Any, String> {
    let s = c.stats().map_err(|e| e.to_string())?;
    let mut any = Any::new();
    if c.cgroups().map_err(|e| e.to_string())?.v2 {
        any.type_url = "io.containerd.cgroups.v2.Metrics".into();
        any.value = v2_metrics(&s);
    } else {
        any.type_url = "io.containerd.cgroups.v1.Metrics".into();
        any.value = v1_metrics(&s)
            .write_to_bytes()
            .map_err(|e| format!("encode metrics: {e}"))?;
    }
    Ok(any)
}

fn raw(s: &Stats, k: &str) -> u64 {
    s.memory.raw.get(k).copied().unwrap_or(0)
}

fn v1_entry(e: &berth::stats::MemoryEntry) -> MessageField<v1::MemoryEntry> {
    let mut m = v1::MemoryEntry::new();
    m.limit = e.limit;
    m.usage = e.usage;
    m.max = e.max;
    m.failcnt = e.failcnt;
    MessageField::some(m)
}

fn v1_blkio(list: &[BlkioEntry]) -> Vec<v1::BlkIOEntry> {
    list.iter()
        .map(|e| {
            let mut b = v1::BlkIOEntry::new();
            b.op = e.op.clone();
            b.major = e.major;
            b.minor = e.minor;
            b.value = e.value;
            b
        })
        .collect()
}

pub fn v1_metrics(s: &Stats) -> v1::Metrics {
    let mut m = v1::Metrics::new();
    for (size, h) in &s.hugetlb {
        let mut e = v1::HugetlbStat::new();
        e.usage = h.usage;
        e.max = h.max;
        e.failcnt = h.failcnt;
        e.pagesize = size.clone();
        m.hugetlb.push(e);
    }
    let mut pids = v1::PidsStat::new();
    pids.current = s.pids.current;
    pids.limit = s.pids.limit;
    m.pids = MessageField::some(pids);

    let mut usage = v1::CPUUsage::new();
    usage.total = s.cpu.usage.total;
    usage.kernel = s.cpu.usage.kernel;
    usage.user = s.cpu.usage.user;
    usage.per_cpu = s.cpu.usage.percpu.clone();
    let mut thr = v1::Throttle::new();
    thr.periods = s.cpu.throttling.periods;
    thr.throttled_periods = s.cpu.throttling.throttled_periods;
    thr.throttled_time = s.cpu.throttling.throttled_time;
    let mut cpu = v1::CPUStat::new();
    cpu.usage = MessageField::some(usage);
    cpu.throttling = MessageField::some(thr);
    m.cpu = MessageField::some(cpu);

    let mut mem = v1::MemoryStat::new();
    mem.cache = s.memory.cache;
    mem.rss = raw(s, "rss");
    mem.rss_huge = raw(s, "rss_huge");
    mem.mapped_file = raw(s, "mapped_file");
    mem.dirty = raw(s, "dirty");
    mem.writeback = raw(s, "writeback");
    mem.pg_pg_in = raw(s, "pgpgin");
    mem.pg_pg_out = raw(s, "pgpgout");
    mem.pg_fault = raw(s, "pgfault");
    mem.pg_maj_fault = raw(s, "pgmajfault");
    mem.inactive_anon = raw(s, "inactive_anon");
    mem.active_anon = raw(s, "active_anon");
    mem.inactive_file = raw(s, "inactive_file");
    mem.active_file = raw(s, "active_file");
    mem.unevictable = raw(s, "unevictable");
    mem.hierarchical_memory_limit = raw(s, "hierarchical_memory_limit");
    mem.hierarchical_swap_limit = raw(s, "hierarchical_memsw_limit");
    mem.total_cache = raw(s, "total_cache");
    mem.total_rss = raw(s, "total_rss");
    mem.total_rss_huge = raw(s, "total_rss_huge");
    mem.total_mapped_file = raw(s, "total_mapped_file");
    mem.total_dirty = raw(s, "total_dirty");
    mem.total_writeback = raw(s, "total_writeback");
    mem.total_pg_pg_in = raw(s, "total_pgpgin");
    mem.total_pg_pg_out = raw(s, "total_pgpgout");
    mem.total_pg_fault = raw(s, "total_pgfault");
    mem.total_pg_maj_fault = raw(s, "total_pgmajfault");
    mem.total_inactive_anon = raw(s, "total_inactive_anon");
    mem.total_active_anon = raw(s, "total_active_anon");
    mem.total_inactive_file = raw(s, "total_inactive_file");
    mem.total_active_file = raw(s, "total_active_file");
    mem.total_unevictable = raw(s, "total_unevictable");
    mem.usage = v1_entry(&s.memory.usage);
    mem.swap = v1_entry(&s.memory.swap);
    mem.kernel = v1_entry(&s.memory.kernel);
    mem.kernel_tcp = v1_entry(&s.memory.kernel_tcp);
    m.memory = MessageField::some(mem);

    let mut blkio = v1::BlkIOStat::new();
    blkio.io_service_bytes_recursive = v1_blkio(&s.blkio.io_service_bytes_recursive);
    blkio.io_serviced_recursive = v1_blkio(&s.blkio.io_serviced_recursive);
    m.blkio = MessageField::some(blkio);
    m
}

/// A minimal protobuf writer: proto3 scalars (zero values left out, as
/// proto3 encoders do), strings and nested messages.
#[derive(Default)]
pub struct Pb(pub Vec<u8>);

impl Pb {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    pub fn u64(&mut self, field: u32, v: u64) -> &mut Self {
        if v != 0 {
            self.varint((field as u64) << 3);
            self.varint(v);
        }
        self
    }

    pub fn bytes(&mut self, field: u32, b: &[u8]) -> &mut Self {
        self.varint(((field as u64) << 3) | 2);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
        self
    }

    pub fn msg(&mut self, field: u32, m: Pb) -> &mut Self {
        self.bytes(field, &m.0)
    }
}

/// io.containerd.cgroups.v2.Metrics. berth's v2 figures are runc's
/// (nanoseconds; swap including memory); the v2 message wants the kernel's
/// own units (microseconds; swap alone).
pub fn v2_metrics(s: &Stats) -> Vec<u8> {
    let mut m = Pb::default();
    // PidsStat pids = 1
    let mut p = Pb::default();
    p.u64(1, s.pids.current).u64(2, s.pids.limit);
    m.msg(1, p);
    // CPUStat cpu = 2
    let mut c = Pb::default();
    c.u64(1, s.cpu.usage.total / 1000)
        .u64(2, s.cpu.usage.user / 1000)
        .u64(3, s.cpu.usage.kernel / 1000)
        .u64(4, s.cpu.throttling.periods)
        .u64(5, s.cpu.throttling.throttled_periods)
        .u64(6, s.cpu.throttling.throttled_time / 1000);
    m.msg(2, c);
    // MemoryStat memory = 4: memory.stat's keys in the proto's order.
    const KEYS: [&str; 31] = [
        "anon",
        "file",
        "kernel_stack",
        "slab",
        "sock",
        "shmem",
        "file_mapped",
        "file_dirty",
        "file_writeback",
        "anon_thp",
        "inactive_anon",
        "active_anon",
        "inactive_file",
        "active_file",
        "unevictable",
        "slab_reclaimable",
        "slab_unreclaimable",
        "pgfault",
        "pgmajfault",
        "workingset_refault",
        "workingset_activate",
        "workingset_nodereclaim",
        "pgrefill",
        "pgscan",
        "pgsteal",
        "pgactivate",
        "pgdeactivate",
        "pglazyfree",
        "pglazyfreed",
        "thp_fault_alloc",
        "thp_collapse_alloc",
    ];
    let mut mem = Pb::default();
    for (i, k) in KEYS.iter().enumerate() {
        mem.u64(i as u32 + 1, raw(s, k));
    }
    let u = &s.memory.usage;
    let swap_usage = s.memory.swap.usage.saturating_sub(u.usage);
    let swap_limit = if s.memory.swap.limit == u64::MAX {
        u64::MAX
    } else {
        s.memory.swap.limit.saturating_sub(u.limit)
    };
    mem.u64(32, u.usage)
        .u64(33, u.limit)
        .u64(34, swap_usage)
        .u64(35, swap_limit)
        .u64(36, u.max);
    m.msg(4, mem);
    // IOStat io = 6: one IOEntry per device.
    let mut devs: std::collections::BTreeMap<(u64, u64), [u64; 4]> = Default::default();
    for (list, base) in [
        (&s.blkio.io_service_bytes_recursive, 0),
        (&s.blkio.io_serviced_recursive, 2),
    ] {
        for e in list {
            let slot = devs.entry((e.major, e.minor)).or_default();
            match e.op.as_str() {
                "Read" => slot[base] = e.value,
                "Write" => slot[base + 1] = e.value,
                _ => {}
            }
        }
    }
    let mut io = Pb::default();
    for ((major, minor), [rb, wb, ri, wi]) in devs {
        let mut e = Pb::default();
        e.u64(1, major)
            .u64(2, minor)
            .u64(3, rb)
            .u64(4, wb)
            .u64(5, ri)
            .u64(6, wi);
        io.msg(1, e);
    }
    m.msg(6, io);
    // repeated HugeTlbStat hugetlb = 7
    for (size, h) in &s.hugetlb {
        let mut e = Pb::default();
        e.u64(1, h.usage).u64(2, h.max).bytes(3, size.as_bytes());
        m.msg(7, e);
    }
    // MemoryEvents memory_events = 8: the failure count berth keeps (max).
    let mut ev = Pb::default();
    ev.u64(3, s.memory.usage.failcnt);
    m.msg(8, ev);
    m.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_fields() {
        let mut p = Pb::default();
        p.u64(1, 0).u64(2, 300).bytes(3, b"2MB");
        // field 1 left out (zero); 2: tag 0x10, 300 = ac 02; 3: tag 0x1a.
        assert_eq!(p.0, [0x10, 0xac, 0x02, 0x1a, 3, b'2', b'M', b'B']);
    }

    #[test]
    fn v2_units() {
        let mut s = Stats::default();
        s.cpu.usage.total = 5_000_000;
        s.pids.current = 3;
        s.memory.usage.usage = 4096;
        let b = v2_metrics(&s);
        // pids {current: 3}
        assert_eq!(&b[..4], &[0x0a, 2, 0x08, 3]);
        // cpu {usage_usec: 5000}
        assert_eq!(&b[4..9], &[0x12, 3, 0x08, 0x88, 0x27]);
    }

    #[test]
    fn v1_fields() {
        let mut s = Stats::default();
        s.memory.raw.insert("rss".into(), 77);
        s.memory.usage.limit = 1 << 20;
        let m = v1_metrics(&s);
        assert_eq!(m.memory.rss, 77);
        assert_eq!(m.memory.usage.limit, 1 << 20);
        let back = v1::Metrics::parse_from_bytes(&m.write_to_bytes().unwrap()).unwrap();
        assert_eq!(back.memory.rss, 77);
    }
}
