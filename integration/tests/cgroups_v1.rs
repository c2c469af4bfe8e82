//! `linux.resources` on cgroup v1: every field written at create is read
//! back from cgroupfs; what this host cannot apply fails create with the
//! field's name and leaves nothing behind.

mod cgroups_util;

use berth_integration::prelude::*;
use cgroups_util::*;

#[test]
fn memory_fields_read_back() {
    if !v1_host("memory_fields_read_back") {
        return;
    }
    let mut env = Env::sh("cg_memory", SLEEPER);
    set_resources(
        &mut env,
        json!({"memory": {
            "limit": 64 << 20, "reservation": 32 << 20, "swap": 96 << 20,
            "kernelTCP": 16 << 20, "swappiness": 10,
            "disableOOMKiller": true, "useHierarchy": true, "checkBeforeUpdate": true
        }}),
    );
    env.create();
    assert_eq!(read(&env, "memory", "memory.limit_in_bytes"), (64u64 << 20).to_string());
    assert_eq!(read(&env, "memory", "memory.soft_limit_in_bytes"), (32u64 << 20).to_string());
    assert_eq!(read(&env, "memory", "memory.memsw.limit_in_bytes"), (96u64 << 20).to_string());
    assert_eq!(read(&env, "memory", "memory.kmem.tcp.limit_in_bytes"), (16u64 << 20).to_string());
    assert_eq!(read(&env, "memory", "memory.swappiness"), "10");
    assert!(read(&env, "memory", "memory.oom_control").contains("oom_kill_disable 1"));
    assert_eq!(read(&env, "memory", "memory.use_hierarchy"), "1");
    env.delete_force().ok();
    assert_no_leftovers(&env);
}

/// memory.kernel is deprecated and Linux 5.16+ ignores it: applied where
/// the kernel does, else a warning and the container still runs, as with
/// runc (issue 13.7: berth refused the whole config). kernelTCP still applies.
#[test]
fn kernel_memory_limit_applies_or_is_ignored_with_a_warning() {
    if !v1_host("kernel_memory_limit_applies_or_is_ignored_with_a_warning") {
        return;
    }
    let mut env = Env::sh("cg_kmem", "echo ran");
    set_resources(&mut env, json!({"memory": {"limit": 256 << 20, "kernel": 128 << 20, "kernelTCP": 16 << 20}}));
    let out = env.run_ok();
    assert_eq!(out.stdout.trim(), "ran", "{out}");
    env.set("/process/args", json!(["sh", "-c", SLEEPER, env.marker.clone()]));
    let created = env.create();
    let kmem = read(&env, "memory", "memory.kmem.limit_in_bytes");
    if kmem != (128u64 << 20).to_string() {
        let why = "linux.resources.memory.kernel: ignored, this kernel does not apply kernel memory limits";
        assert!(created.stderr.contains(why) && out.stderr.contains(why), "no warning:\n{created}\n{out}");
    }
    assert_eq!(read(&env, "memory", "memory.kmem.tcp.limit_in_bytes"), (16u64 << 20).to_string());
    env.delete_force().ok();
    assert_no_leftovers(&env);
}

#[test]
fn memory_unlimited_sets_swap_unlimited() {
    if !v1_host("memory_unlimited_sets_swap_unlimited") {
        return;
    }
    let mut env = Env::sh("cg_memory_unlimited", SLEEPER);
    set_resources(&mut env, json!({"memory": {"limit": -1}}));
    env.create();
    let max = read(&env, "memory", "memory.limit_in_bytes");
    assert!(max.parse::<u64>().unwrap() > 1 << 60, "{max}");
    assert_eq!(read(&env, "memory", "memory.memsw.limit_in_bytes"), max);
    env.delete_force().ok();
}

#[test]
fn cpu_fields_read_back() {
    if !v1_host("cpu_fields_read_back") {
        return;
    }
    let mut env = Env::sh("cg_cpu", SLEEPER);
    set_resources(
        &mut env,
        json!({"cpu": {"shares": 512, "quota": 50000, "period": 200000, "burst": 10000, "cpus": "0", "mems": "0"}}),
    );
    env.create();
    assert_eq!(read(&env, "cpu", "cpu.shares"), "512");
    assert_eq!(read(&env, "cpu", "cpu.cfs_quota_us"), "50000");
    assert_eq!(read(&env, "cpu", "cpu.cfs_period_us"), "200000");
    assert_eq!(read(&env, "cpu", "cpu.cfs_burst_us"), "10000");
    assert_eq!(read(&env, "cpuset", "cpuset.cpus"), "0");
    assert_eq!(read(&env, "cpuset", "cpuset.mems"), "0");
    env.delete_force().ok();
    assert_no_leftovers(&env);
}

#[test]
fn cpu_idle_reads_back() {
    if !v1_host("cpu_idle_reads_back") {
        return;
    }
    let mut env = Env::sh("cg_cpu_idle", SLEEPER);
    set_resources(&mut env, json!({"cpu": {"idle": 1}}));
    env.create();
    assert_eq!(read(&env, "cpu", "cpu.idle"), "1");
    env.delete_force().ok();
}

#[test]
fn cpu_realtime_reads_back() {
    if !v1_host("cpu_realtime_reads_back") {
        return;
    }
    let mut env = Env::sh("cg_cpu_rt", SLEEPER);
    // A realtime budget needs one in every ancestor: give a private parent one.
    let parent = format!("/berth-rt-{}", env.id);
    let cpu = v1_mount("cpu").unwrap();
    let pdir = cpu.join(parent.trim_start_matches('/'));
    fs::create_dir_all(&pdir).unwrap();
    fs::write(pdir.join("cpu.rt_runtime_us"), "20000").unwrap();
    env.cgroups_path = format!("{parent}/c");
    env.set("/linux/cgroupsPath", json!(env.cgroups_path));
    set_resources(&mut env, json!({"cpu": {"realtimeRuntime": 10000, "realtimePeriod": 500000}}));
    let out = env.try_create();
    let got = out.success().then(|| (read(&env, "cpu", "cpu.rt_runtime_us"), read(&env, "cpu", "cpu.rt_period_us")));
    env.delete_force();
    for d in host::cgroup_dirs(&parent) {
        let _ = host::rmdir_cgroup(&d);
    }
    assert!(out.success(), "{out}");
    assert_eq!(got, Some(("10000".to_string(), "500000".to_string())));
}

#[test]
fn pids_limit_zero_is_a_limit_absent_is_not() {
    if !v1_host("pids_limit_zero_is_a_limit_absent_is_not") {
        return;
    }
    for (pids, want) in [(json!({"limit": 0}), "0"), (json!({}), "max"), (json!({"limit": -1}), "max"), (json!({"limit": 7}), "7")] {
        let mut env = Env::sh("cg_pids", SLEEPER);
        set_resources(&mut env, json!({ "pids": pids }));
        env.create();
        assert_eq!(read(&env, "pids", "pids.max"), want, "pids: {pids}");
        env.delete_force().ok();
        assert_no_leftovers(&env);
    }
}

/// A loop device of our own with the BFQ scheduler, removed on drop.
struct LoopDev {
    dev: String,
    file: PathBuf,
}

impl LoopDev {
    fn new(env: &Env) -> Option<LoopDev> {
        let file = env.file("loop.img");
        fs::write(&file, vec![0u8; 1 << 20]).ok()?;
        let out = std::process::Command::new("losetup").args(["-f", "--show"]).arg(&file).output().ok()?;
        let dev = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !out.status.success() || dev.is_empty() {
            eprintln!("losetup failed: {}", String::from_utf8_lossy(&out.stderr));
            return None;
        }
        let l = LoopDev { dev, file };
        let name = l.dev.trim_start_matches("/dev/");
        if fs::write(format!("/sys/block/{name}/queue/scheduler"), "bfq").is_err() {
            eprintln!("cannot select bfq for {}", l.dev);
            return None;
        }
        Some(l)
    }

    fn majmin(&self) -> (u64, u64) {
        let name = self.dev.trim_start_matches("/dev/");
        let s = fs::read_to_string(format!("/sys/block/{name}/dev")).unwrap();
        let (a, b) = s.trim().split_once(':').unwrap();
        (a.parse().unwrap(), b.parse().unwrap())
    }
}

impl Drop for LoopDev {
    fn drop(&mut self) {
        let _ = std::process::Command::new("losetup").args(["-d", &self.dev]).status();
        let _ = fs::remove_file(&self.file);
    }
}

#[test]
fn blkio_fields_read_back() {
    if !v1_host("blkio_fields_read_back") {
        return;
    }
    if v1_mount("blkio").is_none() {
        return skip(CGROUP_V1, "no blkio hierarchy");
    }
    let mut env = Env::sh("cg_blkio", SLEEPER);
    let Some(lo) = LoopDev::new(&env) else {
        return skip(HOST, "no loop device with the bfq scheduler");
    };
    let (ma, mi) = lo.majmin();
    set_resources(
        &mut env,
        json!({"blockIO": {
            "weight": 300,
            "weightDevice": [{"major": ma, "minor": mi, "weight": 200}],
            "throttleReadBpsDevice": [{"major": ma, "minor": mi, "rate": 1048576}],
            "throttleWriteBpsDevice": [{"major": ma, "minor": mi, "rate": 2097152}],
            "throttleReadIOPSDevice": [{"major": ma, "minor": mi, "rate": 100}],
            "throttleWriteIOPSDevice": [{"major": ma, "minor": mi, "rate": 200}]
        }}),
    );
    env.create();
    let weight = if dir(&env, "blkio").join("blkio.weight").exists() { "blkio.weight" } else { "blkio.bfq.weight" };
    assert!(read(&env, "blkio", weight).contains("300"), "{weight}");
    let wd = read(&env, "blkio", &format!("{weight}_device"));
    assert!(wd.contains(&format!("{ma}:{mi} 200")), "{wd}");
    for (file, v) in [("read_bps", 1048576), ("write_bps", 2097152), ("read_iops", 100), ("write_iops", 200)] {
        let got = read(&env, "blkio", &format!("blkio.throttle.{file}_device"));
        assert_eq!(got, format!("{ma}:{mi} {v}"), "{file}");
    }
    env.delete_force().ok();
    assert_no_leftovers(&env);
}

#[test]
fn blkio_leaf_weight_without_cfq_is_a_clear_error() {
    if !v1_host("blkio_leaf_weight") {
        return;
    }
    if v1_mount("blkio").is_none() {
        return skip(CGROUP_V1, "no blkio hierarchy");
    }
    let b = v1_mount("blkio").unwrap();
    if b.join("blkio.leaf_weight").exists() {
        return skip(HOST, "this host has CFQ's leaf_weight");
    }
    let mut env = Env::sh("cg_leaf", SLEEPER);
    set_resources(&mut env, json!({"blockIO": {"leafWeight": 300}}));
    create_fails(&env, &["config.json", "linux.resources.blockIO.leafWeight", "blkio.leaf_weight"]);
}

#[test]
fn unmounted_controllers_are_clear_errors() {
    if !v1_host("unmounted_controllers_are_clear_errors") {
        return;
    }
    let cases = [
        ("hugetlb", json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]}), "linux.resources.hugepageLimits[0]"),
        ("net_cls", json!({"network": {"classID": 1048577}}), "linux.resources.network.classID"),
        ("net_prio", json!({"network": {"priorities": [{"name": "lo", "priority": 5}]}}), "linux.resources.network.priorities[0]"),
        ("rdma", json!({"rdma": {"mlx5_0": {"hcaHandles": 3}}}), "linux.resources.rdma.mlx5_0"),
    ];
    for (ctrl, r, field) in cases {
        if v1_mount(ctrl).is_some() {
            skip(HOST, &format!("the {ctrl} case: this host mounts it (the VM test covers it)"));
            continue;
        }
        let mut env = Env::sh("cg_unmounted", SLEEPER);
        set_resources(&mut env, r);
        create_fails(&env, &[field, &format!("the {ctrl} controller is not mounted")]);
    }
}

#[test]
fn unified_keys_go_to_the_hybrid_cgroup2_dir() {
    if !v1_host("unified_keys_go_to_the_hybrid_cgroup2_dir") {
        return;
    }
    let Some(u) = unified_mount() else {
        return skip(CGROUP2, "no cgroup2 mount");
    };
    let mut env = Env::sh("cg_unified", SLEEPER);
    set_resources(&mut env, json!({"unified": {"cgroup.max.descendants": "5", "cgroup.max.depth": "2"}}));
    env.create();
    let d = u.join(env.cgroups_path.trim_start_matches('/'));
    assert_eq!(fs::read_to_string(d.join("cgroup.max.descendants")).unwrap().trim(), "5");
    assert_eq!(fs::read_to_string(d.join("cgroup.max.depth")).unwrap().trim(), "2");
    env.delete_force().ok();
    let mut env = Env::sh("cg_unified_bad", SLEEPER);
    set_resources(&mut env, json!({"unified": {"memory.high": "1000000"}}));
    create_fails(&env, &["linux.resources.unified.memory.high"]);
}

#[test]
fn devices_deny_kmsg_by_default_and_allow_by_rule() {
    if !v1_host("devices_deny_kmsg_by_default_and_allow_by_rule") {
        return;
    }
    let script = "mknod /tmp/kmsg c 1 11 && if dd if=/tmp/kmsg of=/dev/null bs=8k count=1 2>/tmp/err; then echo OPENED; else cat /tmp/err; fi; \
                  echo x > /dev/null && echo NULL-OK";
    let mut env = Env::sh("cg_dev_deny", script);
    set_resources(&mut env, json!({"devices": [{"allow": false, "access": "rwm"}]}));
    let out = env.run_ok();
    assert!(out.stdout.contains("Operation not permitted") && !out.stdout.contains("OPENED"), "{out}");
    assert!(out.stdout.contains("NULL-OK"), "{out}");
    let list = {
        let mut e2 = Env::sh("cg_dev_list", SLEEPER);
        set_resources(&mut e2, json!({"devices": [{"allow": false, "access": "rwm"}]}));
        e2.create();
        let l = read(&e2, "devices", "devices.list");
        e2.delete_force().ok();
        l
    };
    assert!(list.contains("c 1:3 rwm") && list.contains("c 136:* rwm") && !list.contains("a *:*"), "{list}");

    let mut env = Env::sh("cg_dev_allow", script);
    set_resources(
        &mut env,
        json!({"devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 11, "access": "r"}]}),
    );
    let out = env.run_ok();
    assert!(out.stdout.contains("OPENED"), "{out}");
    // A later deny wins over an earlier allow.
    let mut env = Env::sh("cg_dev_redeny", script);
    set_resources(
        &mut env,
        json!({"devices": [{"allow": true, "type": "c", "major": 1, "minor": 11, "access": "rwm"},
                           {"allow": false, "type": "c", "major": 1, "minor": 11, "access": "r"}]}),
    );
    let out = env.run_ok();
    assert!(out.stdout.contains("Operation not permitted"), "{out}");
}

#[test]
fn bad_values_fail_create_naming_the_field() {
    if !v1_host("bad_values_fail_create_naming_the_field") {
        return;
    }
    let cases = [
        (json!({"memory": {"swappiness": 101}}), vec!["linux.resources.memory.swappiness", "0-100"]),
        (json!({"cpu": {"quota": 500}}), vec!["linux.resources.cpu.quota", "cpu.cfs_quota_us", "refused"]),
        (json!({"memory": {"useHierarchy": false}}), vec!["linux.resources.memory.useHierarchy"]),
        (json!({"memory": {"limit": 64 << 20, "swap": 32 << 20}}), vec!["linux.resources.memory.swap"]),
        (json!({"cpu": {"shares": 1}}), vec!["linux.resources.cpu.shares", "minimum"]),
        (json!({"blockIO": {"weight": 5}}), vec!["linux.resources.blockIO.weight", "10-1000"]),
        (json!({"devices": [{"allow": true, "type": "c", "access": "rwx"}]}), vec!["linux.resources.devices[0]", "access"]),
        (json!({"hugepageLimits": [{"pageSize": "2XB", "limit": 1}]}), vec!["linux.resources.hugepageLimits[0].pageSize"]),
        (json!({"unified": {"../escape": "1"}}), vec!["linux.resources.unified"]),
        (json!({"cpu": {"cpus": "999"}}), vec!["linux.resources.cpu.cpus", "cpuset.cpus"]),
    ];
    for (r, needles) in cases {
        let mut env = Env::sh("cg_bad", SLEEPER);
        set_resources(&mut env, r);
        create_fails(&env, &needles);
    }
}

/// net_cls, net_prio and hugetlb have no v1 hierarchy on this host: mount
/// one in a private mount namespace (`unshare -m`), run the container's
/// lifecycle there and read the files back. Nothing of it is visible on
/// the host; the parents berth made are removed and the hierarchy is
/// mounted and unmounted again until the kernel releases it (hugetlb then
/// returns to the cgroup2 side).
#[test]
fn v1_controllers_mounted_privately_read_back() {
    if !v1_host("v1_controllers_mounted_privately_read_back") {
        return;
    }
    let cases = [
        ("net_cls", json!({"network": {"classID": 1048577}}), "net_cls.classid", "1048577"),
        ("net_prio", json!({"network": {"priorities": [{"name": "lo", "priority": 5}]}}), "net_prio.ifpriomap", "lo 5"),
        ("hugetlb", json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]}), "hugetlb.2MB.limit_in_bytes", "4194304"),
        ("hugetlb", json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]}), "hugetlb.2MB.rsvd.limit_in_bytes", "4194304"),
    ];
    for (ctrl, r, file, want) in cases {
        if v1_mount(ctrl).is_some() {
            skip(HOST, &format!("the private {ctrl} case: the host mounts {ctrl}; the main tests cover it"));
            continue;
        }
        let mut env = Env::sh("cg_private", SLEEPER);
        set_resources(&mut env, r);
        let mnt = env.file(ctrl);
        fs::create_dir_all(&mnt).unwrap();
        let bin = berth_bin();
        let root = env.root.display().to_string();
        let script = format!(
            "mount -t cgroup -o {ctrl} berth-test-{ctrl} {m} || exit 97; \
             {b} --root {root} run -d -b {bundle} {id} </dev/null >{out} 2>&1 || {{ cat {out}; umount {m}; exit 98; }}; \
             cat {m}{cg}/{file}; {b} --root {root} delete -f {id}; \
             [ -d {m}{cg} ] && echo LEFT; \
             find {m} -mindepth 1 -type d | sort -r | xargs -r rmdir; umount {m}",
            m = mnt.display(),
            b = bin.display(),
            bundle = env.bundle_str(),
            id = env.id,
            out = env.file("inner.out").display(),
            cg = env.cgroups_path,
        );
        let out = std::process::Command::new("unshare").args(["-m", "--propagation", "private", "sh", "-c", &script]).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.code() == Some(97) {
            skip(HOST, &format!("the private {ctrl} case: cannot mount a v1 {ctrl} hierarchy here: {stderr}"));
            continue;
        }
        assert!(out.status.success(), "{ctrl}: {stdout}\n{stderr}");
        assert!(stdout.lines().any(|l| l.trim() == want), "{ctrl}: {file} lacks {want:?}: {stdout}");
        assert!(!stdout.contains("LEFT"), "{ctrl}: cgroup left after delete: {stdout}");
        // The kernel keeps an unmounted hierarchy while references to it
        // remain; a later empty mount + umount releases it.
        let hierarchy = || {
            fs::read_to_string("/proc/cgroups")
                .unwrap_or_default()
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{ctrl}\t")).map(|r| r.split('\t').next().unwrap_or("").to_string()))
                .unwrap_or_default()
        };
        let cycle = format!("mount -t cgroup -o {ctrl} berth-test-{ctrl} {m} && umount {m}", m = mnt.display());
        let released = wait_until(Duration::from_secs(5), || {
            hierarchy() == "0" || {
                let _ = std::process::Command::new("unshare").args(["-m", "--propagation", "private", "sh", "-c", &cycle]).status();
                std::thread::sleep(Duration::from_millis(100));
                false
            }
        });
        assert!(released, "{ctrl}: the private v1 hierarchy outlived the test (hierarchy {})", hierarchy());
        assert_no_leftovers(&env);
    }
}
