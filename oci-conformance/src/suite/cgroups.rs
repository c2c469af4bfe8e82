//! config-linux.md "Control groups": cgroupsPath, ownership, the device
//! allowlist and every resource controller, checked in the host's
//! cgroupfs after `create` (v1 files, or their v2 equivalents on a
//! unified host). A controller or file the host's kernel lacks is a skip
//! with that reason.

use std::fs;

use serde_json::{json, Value};

use super::{must, should, Test};
use crate::ctx::{Ctx, Kv, Res};
use crate::host;
use crate::{ensure, skip};

/// Expectation on one cgroup file: (controller, v1 file and value, v2 file and value).
struct Check {
    ctrl: &'static str,
    v1: Option<(&'static str, String)>,
    v2: Option<(&'static str, String)>,
}

fn ck(ctrl: &'static str, v1: Option<(&'static str, &str)>, v2: Option<(&'static str, &str)>) -> Check {
    Check {
        ctrl,
        v1: v1.map(|(f, v)| (f, v.to_string())),
        v2: v2.map(|(f, v)| (f, v.to_string())),
    }
}

pub fn tests() -> Vec<Test> {
    let cg = "config-linux.md/control-groups";
    let m = "config-linux.md/memory";
    let cpu = "config-linux.md/cpu";
    let b = "config-linux.md/block-io";
    vec![
        must(format!("{cg}/cgroups-path-absolute"), path_absolute),
        must(format!("{cg}/cgroups-path-consistent"), path_consistent),
        should("config-linux.md/cgroup-ownership/v1-unchanged", ownership_v1),
        must("config-linux.md/allowed-device-list/allow", |cx| {
            device_rules(cx, false)
        }),
        must("config-linux.md/allowed-device-list/listed-order", |cx| {
            device_rules(cx, true)
        }),
        must(format!("{m}/limit"), |cx| {
            resources(
                cx,
                json!({"memory": {"limit": 67108864}}),
                vec![ck(
                    "memory",
                    Some(("memory.limit_in_bytes", "67108864")),
                    Some(("memory.max", "67108864")),
                )],
            )
        }),
        must(format!("{m}/limit-unlimited"), |cx| {
            resources(
                cx,
                json!({"memory": {"limit": -1}}),
                vec![ck(
                    "memory",
                    Some(("memory.limit_in_bytes", "9223372036854771712")),
                    Some(("memory.max", "max")),
                )],
            )
        }),
        must(format!("{m}/reservation"), |cx| {
            resources(
                cx,
                json!({"memory": {"reservation": 33554432}}),
                vec![ck(
                    "memory",
                    Some(("memory.soft_limit_in_bytes", "33554432")),
                    Some(("memory.low", "33554432")),
                )],
            )
        }),
        must(format!("{m}/swap"), |cx| {
            resources(
                cx,
                json!({"memory": {"limit": 67108864, "swap": 134217728}}),
                vec![ck(
                    "memory",
                    Some(("memory.memsw.limit_in_bytes", "134217728")),
                    Some(("memory.swap.max", "67108864")),
                )],
            )
        }),
        must(format!("{m}/swappiness"), |cx| {
            resources(
                cx,
                json!({"memory": {"swappiness": 30}}),
                vec![ck("memory", Some(("memory.swappiness", "30")), None)],
            )
        }),
        must(format!("{m}/disable-oom-killer"), |cx| {
            resources(
                cx,
                json!({"memory": {"disableOOMKiller": true}}),
                vec![ck("memory", Some(("memory.oom_control", "oom_kill_disable 1")), None)],
            )
        }),
        must(format!("{cpu}/shares"), |cx| {
            // v2: runc's conversion of shares to weight, 1 + (s - 2) * 9999 / 262142.
            resources(
                cx,
                json!({"cpu": {"shares": 512}}),
                vec![ck("cpu", Some(("cpu.shares", "512")), Some(("cpu.weight", "20")))],
            )
        }),
        must(format!("{cpu}/quota-period"), |cx| {
            resources(
                cx,
                json!({"cpu": {"quota": 50000, "period": 100000}}),
                vec![
                    ck(
                        "cpu",
                        Some(("cpu.cfs_quota_us", "50000")),
                        Some(("cpu.max", "50000 100000")),
                    ),
                    ck("cpu", Some(("cpu.cfs_period_us", "100000")), None),
                ],
            )
        }),
        must(format!("{cpu}/burst"), |cx| {
            resources(
                cx,
                json!({"cpu": {"quota": 50000, "period": 100000, "burst": 10000}}),
                vec![ck(
                    "cpu",
                    Some(("cpu.cfs_burst_us", "10000")),
                    Some(("cpu.max.burst", "10000")),
                )],
            )
        })
        .since("1.1.0"),
        must(format!("{cpu}/realtime"), realtime),
        must(format!("{cpu}/cpus"), |cx| {
            resources(
                cx,
                json!({"cpu": {"cpus": "0"}}),
                vec![ck("cpuset", Some(("cpuset.cpus", "0")), Some(("cpuset.cpus", "0")))],
            )
        }),
        must(format!("{cpu}/mems"), |cx| {
            resources(
                cx,
                json!({"cpu": {"mems": "0"}}),
                vec![ck("cpuset", Some(("cpuset.mems", "0")), Some(("cpuset.mems", "0")))],
            )
        }),
        must(format!("{cpu}/idle"), |cx| {
            resources(
                cx,
                json!({"cpu": {"idle": 1}}),
                vec![ck("cpu", Some(("cpu.idle", "1")), Some(("cpu.idle", "1")))],
            )
        })
        .since("1.1.0"),
        must(format!("{b}/weight"), |cx| {
            let f = if host_file("blkio", "blkio.weight") {
                "blkio.weight"
            } else {
                "blkio.bfq.weight"
            };
            resources(
                cx,
                json!({"blockIO": {"weight": 500}}),
                vec![ck("blkio", Some((f, "500")), Some(("io.bfq.weight", "default 500")))],
            )
        }),
        must(format!("{b}/leaf-weight"), |cx| {
            resources(
                cx,
                json!({"blockIO": {"leafWeight": 500}}),
                vec![ck("blkio", Some(("blkio.leaf_weight", "500")), None)],
            )
        }),
        must(format!("{b}/weight-device"), |cx| {
            // CFQ's blkio.weight_device (old kernels) takes any disk; BFQ's
            // files only a device BFQ schedules (EOPNOTSUPP otherwise).
            let (f, (maj, min)) = if host_file("blkio", "blkio.weight_device") {
                let Some(d) = host::root_block_device() else {
                    skip!("no block device behind / to use")
                };
                ("blkio.weight_device", d)
            } else {
                ("blkio.bfq.weight_device", crate::bfq::device(cx)?)
            };
            let want = format!("{maj}:{min} 300");
            resources(
                cx,
                json!({"blockIO": {"weightDevice": [{"major": maj, "minor": min, "weight": 300}]}}),
                vec![ck("blkio", Some((f, &want)), Some(("io.bfq.weight", &want)))],
            )
        }),
        must(format!("{b}/throttle-read-bps"), |cx| {
            throttle(cx, "throttleReadBpsDevice", "blkio.throttle.read_bps_device", "rbps")
        }),
        must(format!("{b}/throttle-write-bps"), |cx| {
            throttle(cx, "throttleWriteBpsDevice", "blkio.throttle.write_bps_device", "wbps")
        }),
        must(format!("{b}/throttle-read-iops"), |cx| {
            throttle(cx, "throttleReadIOPSDevice", "blkio.throttle.read_iops_device", "riops")
        }),
        must(format!("{b}/throttle-write-iops"), |cx| {
            throttle(
                cx,
                "throttleWriteIOPSDevice",
                "blkio.throttle.write_iops_device",
                "wiops",
            )
        }),
        must("config-linux.md/huge-page-limits/limit", |cx| {
            resources(
                cx,
                json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]}),
                vec![ck(
                    "hugetlb",
                    Some(("hugetlb.2MB.limit_in_bytes", "4194304")),
                    Some(("hugetlb.2MB.max", "4194304")),
                )],
            )
        }),
        must("config-linux.md/network/class-id", |cx| {
            resources(
                cx,
                json!({"network": {"classID": 1048577}}),
                vec![ck("net_cls", Some(("net_cls.classid", "1048577")), None)],
            )
        }),
        must("config-linux.md/network/priorities", |cx| {
            resources(
                cx,
                json!({"network": {"priorities": [{"name": "lo", "priority": 5}]}}),
                vec![ck("net_prio", Some(("net_prio.ifpriomap", "lo 5")), None)],
            )
        }),
        must("config-linux.md/pids/limit", |cx| {
            resources(
                cx,
                json!({"pids": {"limit": 50}}),
                vec![ck("pids", Some(("pids.max", "50")), Some(("pids.max", "50")))],
            )
        }),
        should("config-linux.md/pids/zero-limit", |cx| {
            resources(
                cx,
                json!({"pids": {"limit": 0}}),
                vec![ck("pids", Some(("pids.max", "0")), Some(("pids.max", "0")))],
            )
        }),
        must("config-linux.md/rdma/limit", |cx| {
            let devs = fs::read_dir("/sys/class/infiniband").map(|d| d.count()).unwrap_or(0);
            if devs == 0 {
                skip!("no RDMA device on this host");
            }
            let dev = fs::read_dir("/sys/class/infiniband")
                .ok()
                .and_then(|mut d| d.next())
                .and_then(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .unwrap_or_default();
            let want = format!("{dev} hca_handle=3 hca_object=max");
            resources(
                cx,
                json!({"rdma": {dev.clone(): {"hcaHandles": 3}}}),
                vec![ck("rdma", Some(("rdma.max", &want)), Some(("rdma.max", &want)))],
            )
        }),
        must("config-linux.md/unified/absent-controller-error", unified_absent),
        must("config-linux.md/unified/written", |cx| {
            let Some(u) = &cx.host().unified else {
                skip!("no cgroup2 hierarchy on this host")
            };
            let ctrls = fs::read_to_string(u.join("cgroup.controllers")).unwrap_or_default();
            if !ctrls.split_whitespace().any(|c| c == "pids") {
                skip!(
                    "the pids controller is not on cgroup v2 here ({})",
                    cx.host().describe_cgroups()
                );
            }
            resources(
                cx,
                json!({"unified": {"pids.max": "42"}}),
                vec![ck("pids", None, Some(("pids.max", "42")))],
            )
        }),
        must("config-linux.md/intel-rdt/no-resctrl-error", |cx| {
            let mounted = berth_integration::host::host_mounts()
                .iter()
                .any(|m| m.fstype == "resctrl");
            if mounted {
                skip!("resctrl is mounted here; the test needs a host without it");
            }
            let mut c = cx.ctr();
            c.set("/linux/intelRdt", json!({"closID": "oc-clos"}));
            c.expect_create_error()
        }),
    ]
}

/// Whether cgroups of the hierarchy at `root` have `file` (some files,
/// like pids.max, exist only below the root: a probe cgroup tells).
fn kernel_has(cx: &Ctx, root: &std::path::Path, file: &str) -> bool {
    if root.join(file).exists() {
        return true;
    }
    let probe = root
        .join(crate::cleanup::CGROUP_PARENT)
        .join(format!("{}-probe{}", cx.0.tag, cx.next()));
    if fs::create_dir_all(&probe).is_err() {
        return false;
    }
    let has = probe.join(file).exists();
    let _ = fs::remove_dir(&probe);
    has
}

/// Whether the host's `ctrl` hierarchy root has `file`.
fn host_file(ctrl: &str, file: &str) -> bool {
    host::Host::detect()
        .controller_root(ctrl)
        .is_some_and(|r| r.join(file).exists())
}

/// Set `linux.resources`, create, and compare each cgroup file.
fn resources(cx: &Ctx, res: Value, checks: Vec<Check>) -> Res {
    resources_at(cx, res, checks, None)
}

/// As [`resources`], with the container at `cgroups_path`.
fn resources_at(cx: &Ctx, res: Value, checks: Vec<Check>, cgroups_path: Option<String>) -> Res {
    let h = cx.host();
    let mut plan = Vec::new();
    for chk in &checks {
        let v1 = h.v1.iter().any(|(c, _)| c.iter().any(|x| x == chk.ctrl));
        let (file, want) = if v1 {
            match &chk.v1 {
                Some(x) => x.clone(),
                None => skip!("cgroup v1 has no file for this setting"),
            }
        } else if h.cgroup_dir(chk.ctrl, "/").is_some() {
            if !h.unified_only {
                skip!(
                    "{} is only on the cgroup2 side of this hybrid host, where runtimes do not manage controllers",
                    chk.ctrl
                );
            }
            match &chk.v2 {
                Some(x) => x.clone(),
                None => skip!("cgroup v2 has no equivalent of this setting"),
            }
        } else if unmounted_v1(chk.ctrl) {
            // Mounting a v1 hierarchy for it is possible, in the suite's
            // mount namespace too, but the hierarchy is global: one leftover
            // child cgroup would pin it and keep the controller from the
            // host's cgroup2 side until reboot. berth's own integration
            // tests (cgroups_v1.rs) do that with their own cleanup.
            skip!(
                "the {} controller is in the kernel but no v1 hierarchy of it is mounted on this host, and the suite does not mount one ({})",
                chk.ctrl,
                h.describe_cgroups()
            );
        } else {
            skip!(
                "the {} controller is not available on this host ({})",
                chk.ctrl,
                h.describe_cgroups()
            );
        };
        let root = h.controller_root(chk.ctrl).unwrap_or_default();
        if v1 && !kernel_has(cx, &root, file) {
            skip!(
                "this kernel has no {file} ({} hierarchy at {})",
                chk.ctrl,
                root.display()
            );
        }
        plan.push((chk.ctrl, file, want));
    }
    let mut c = cx.ctr();
    if let Some(p) = cgroups_path {
        c.set("/linux/cgroupsPath", json!(p));
        c.cgroups_path = p;
    }
    c.set("/linux/resources", res.clone());
    c.payload(&["sleep"]);
    c.create_ok()?;
    let mut bad = Vec::new();
    for (ctrl, file, want) in plan {
        let Some(dir) = c.cgroup_dir(ctrl) else {
            continue;
        };
        let p = dir.join(file);
        let got = fs::read_to_string(&p).unwrap_or_else(|e| format!("<{e}>"));
        let ok = got.trim() == want || got.lines().any(|l| l.trim() == want);
        if !ok {
            bad.push(format!("{} is {:?}, want {want:?}", p.display(), got.trim()));
        }
    }
    ensure!(bad.is_empty(), "linux.resources {res}: {}", bad.join("; "));
    Ok(())
}

/// Real-time budgets need budgets in every ancestor (new cgroups get 0):
/// the test gives the suite's parent and its own parent some first.
fn realtime(cx: &Ctx) -> Res {
    let Some(root) = cx
        .host()
        .controller_root("cpu")
        .filter(|r| r.join("cpu.rt_runtime_us").exists())
    else {
        skip!("this kernel has no cpu.rt_runtime_us (no CONFIG_RT_GROUP_SCHED) or no cpu hierarchy");
    };
    if cx.host().unified_only {
        skip!("real-time budgets are a cgroup v1 setting");
    }
    let top = root.join(crate::cleanup::CGROUP_PARENT);
    let parent = top.join(format!("{}-rt", cx.0.tag));
    // 1% of each second per test (what the leaf asks: 1000us of 100000us),
    // room for many tests running at once in the suite's parent.
    for (d, budget) in [(&top, 300_000u64), (&parent, 10_000)] {
        fs::create_dir_all(d).map_err(|e| format!("mkdir {}: {e}", d.display()))?;
        let f = d.join("cpu.rt_runtime_us");
        let cur: u64 = fs::read_to_string(&f)
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        if cur < budget {
            if let Err(e) = fs::write(&f, budget.to_string()) {
                skip!(
                    "the host cannot give {} a real-time budget of {budget}us (cpu.rt_runtime_us: {e})",
                    d.display()
                );
            }
        }
    }
    resources_at(
        cx,
        json!({"cpu": {"realtimeRuntime": 1000, "realtimePeriod": 100000}}),
        vec![
            ck("cpu", Some(("cpu.rt_runtime_us", "1000")), None),
            ck("cpu", Some(("cpu.rt_period_us", "100000")), None),
        ],
        Some(format!("/{}/{}-rt/leaf", crate::cleanup::CGROUP_PARENT, cx.0.tag)),
    )
}

fn throttle(cx: &Ctx, field: &str, v1file: &'static str, v2key: &str) -> Res {
    let Some((maj, min)) = host::root_block_device() else {
        skip!("no block device behind / to use")
    };
    let rate = 1048576u64;
    let v1 = format!("{maj}:{min} {rate}");
    let v2 = format!("{maj}:{min} {v2key}={rate}");
    let mut res = json!({"blockIO": {}});
    res["blockIO"][field] = json!([{"major": maj, "minor": min, "rate": rate}]);
    let mut chk = ck("blkio", Some((v1file, &v1)), None);
    chk.v2 = Some(("io.max", v2));
    resources(cx, res, vec![chk])
}

fn path_absolute(cx: &Ctx) -> Res {
    let mut c = cx.ctr();
    c.cgroups_path = format!("/oci-conformance/{}-abs/nested", cx.0.tag);
    c.set("/linux/cgroupsPath", json!(c.cgroups_path));
    let kv = c.run()?;
    let lines = kv.all("cgroup");
    let v1: Vec<&str> = lines.iter().copied().filter(|l| !l.starts_with("0::")).collect();
    let bad: Vec<&str> = v1.iter().copied().filter(|l| !l.ends_with(&c.cgroups_path)).collect();
    ensure!(
        !v1.is_empty() || lines.iter().any(|l| l.ends_with(&c.cgroups_path)),
        "/proc/self/cgroup in the container: {lines:?}"
    );
    ensure!(
        bad.is_empty(),
        "cgroupsPath {} not used in every hierarchy: {bad:?}",
        c.cgroups_path
    );
    Ok(())
}

fn path_consistent(cx: &Ctx) -> Res {
    let path = format!("/oci-conformance/{}-same", cx.0.tag);
    let mut seen = Vec::new();
    for _ in 0..2 {
        let mut c = cx.ctr();
        c.cgroups_path = path.clone();
        c.set("/linux/cgroupsPath", json!(path));
        let kv = c.run()?;
        let d = c.delete();
        ensure!(d.ok(), "delete: {}", d.describe());
        let mut l: Vec<String> = kv.all("cgroup").into_iter().map(String::from).collect();
        l.sort();
        seen.push(l);
    }
    ensure!(
        seen[0] == seen[1],
        "the same cgroupsPath gave different cgroups: {:?} vs {:?}",
        seen[0],
        seen[1]
    );
    ensure!(
        seen[0].iter().any(|l| l.ends_with(&path)),
        "cgroupsPath {path} not used: {:?}",
        seen[0]
    );
    Ok(())
}

fn ownership_v1(cx: &Ctx) -> Res {
    if cx.host().unified_only {
        skip!("this host uses cgroup v2; the requirement is about v1");
    }
    let mut c = cx.ctr();
    c.namespaces(&["pid", "network", "ipc", "uts", "mount", "user", "cgroup"]);
    let m = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    c.set("/linux/uidMappings", m.clone());
    c.set("/linux/gidMappings", m);
    c.set("/process/user", json!({"uid": 1000, "gid": 1000}));
    c.add_mount(json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["rw", "nosuid", "noexec", "nodev"]}));
    c.payload(&["sleep"]);
    c.create_ok()?;
    use std::os::unix::fs::MetadataExt;
    let mut changed = Vec::new();
    for (_, mp) in &cx.host().v1 {
        let d = mp.join(c.cgroups_path.trim_start_matches('/'));
        if let Ok(m) = fs::metadata(&d) {
            if m.uid() != 0 {
                changed.push(format!("{} owned by {}", d.display(), m.uid()));
            }
        }
    }
    ensure!(
        changed.is_empty(),
        "cgroup v1 ownership changed: {}",
        changed.join(", ")
    );
    Ok(())
}

/// Device allowlist on a device without a driver (c 42:42): a permitted
/// open fails with ENXIO (the driver), a denied one with EPERM (the cgroup).
fn device_rules(cx: &Ctx, deny_last: bool) -> Res {
    let mut c = cx.ctr();
    c.set(
        "/linux/devices",
        json!([{"path": "/dev/oc-dev", "type": "c", "major": 42, "minor": 42, "fileMode": 0o666}]),
    );
    let mut rules = vec![
        json!({"allow": false, "access": "rwm"}),
        json!({"allow": true, "type": "c", "major": 42, "minor": 42, "access": "rwm"}),
    ];
    if deny_last {
        rules.push(json!({"allow": false, "type": "c", "major": 42, "minor": 42, "access": "rw"}));
    }
    c.set("/linux/resources/devices", json!(rules));
    c.payload(&["read", "/dev/oc-dev"]);
    let kv: Kv = c.run()?;
    let r = kv.req("read./dev/oc-dev")?;
    if deny_last {
        ensure!(r.contains("EPERM"), "after deny all, allow c 42:42 rwm, deny c 42:42 rw, reading /dev/oc-dev gave {r} (want EPERM: rules apply in order)");
    } else {
        ensure!(
            r.contains("ENXIO"),
            "after deny all, allow c 42:42 rwm, reading /dev/oc-dev gave {r} (want ENXIO: allowed, no driver)"
        );
    }
    Ok(())
}

fn unified_absent(cx: &Ctx) -> Res {
    let h = cx.host();
    if h.unified.as_ref().is_some_and(|u| {
        fs::read_to_string(u.join("cgroup.controllers"))
            .unwrap_or_default()
            .split_whitespace()
            .any(|c| c == "memory")
    }) {
        skip!("memory is a cgroup v2 controller here; the test needs a host where it is absent from v2");
    }
    let mut c = cx.ctr();
    c.set("/linux/resources/unified", json!({"memory.max": "67108864"}));
    c.expect_create_error()
}

/// True when /proc/cgroups lists `ctrl` enabled on no v1 hierarchy
/// (hierarchy 0: unmounted, or on the cgroup2 side).
fn unmounted_v1(ctrl: &str) -> bool {
    fs::read_to_string("/proc/cgroups").unwrap_or_default().lines().any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() >= 4 && f[0] == ctrl && f[1] == "0" && f[3] == "1"
    })
}
