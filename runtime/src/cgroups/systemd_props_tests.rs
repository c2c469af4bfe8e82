//! The mapping against values worked out by hand from runc's code
//! (opencontainers/cgroups at 30a2293: systemd/v1.go genV1ResourcesProperties,
//! systemd/v2.go genV2ResourcesProperties, systemd/common.go addCPUQuota and
//! addCpuset, systemd/cpuset.go RangeToBits, devices/systemd.go
//! systemdProperties with devices/devices_emulator.go).

use oci_spec::runtime::LinuxResources;

use super::*;
use crate::cgroups::devices::allowed;

const NEW: u32 = 257;

fn res(v: serde_json::Value) -> Resources {
    let spec: LinuxResources = serde_json::from_value(v).unwrap();
    let mut r = Resources::from_spec(Some(&spec), true).unwrap();
    // The device properties have tests of their own.
    r.devices = None;
    r
}

fn props(r: &Resources, layout: Layout, version: u32) -> Vec<Property> {
    resource_properties(r, layout, version).unwrap()
}

fn t(name: &str, v: u64) -> Property {
    (name.to_string(), Value::U64(v))
}

fn ay(name: &str, bytes: &[u8]) -> Property {
    let v = bytes.iter().copied().map(Value::Byte).collect();
    (name.to_string(), Value::Array("y".into(), v))
}

#[test]
fn empty_resources_give_no_properties() {
    for layout in [Layout::V1, Layout::V2] {
        for version in [0, 239, 244, NEW] {
            assert_eq!(props(&Resources::default(), layout, version), vec![]);
        }
    }
    // Docker's zeros are "not set" too.
    let r = res(
        serde_json::json!({"memory": {"limit": 0, "swap": 0, "reservation": 0},
        "cpu": {"shares": 0, "quota": 0, "period": 0, "cpus": "", "mems": ""}, "blockIO": {"weight": 0}}),
    );
    assert_eq!(props(&r, Layout::V2, NEW), vec![]);
}

/// genV2ResourcesProperties: MemoryMax = memory, MemoryLow = reservation,
/// MemorySwapMax = ConvertMemorySwapToCgroupV2Value (swap - memory).
#[test]
fn v2_memory() {
    let r = res(
        serde_json::json!({"memory": {"limit": 1_073_741_824_i64, "reservation": 536_870_912, "swap": 1_610_612_736_i64}}),
    );
    assert_eq!(
        props(&r, Layout::V2, NEW),
        [
            t("MemoryMax", 1 << 30),
            t("MemoryLow", 1 << 29),
            t("MemorySwapMax", 1 << 29)
        ]
    );
    // -1 is infinity; memory -1 without swap: swap infinity too (runc's case 1).
    let r = res(serde_json::json!({"memory": {"limit": -1, "reservation": -1}}));
    assert_eq!(
        props(&r, Layout::V2, NEW),
        [
            t("MemoryMax", u64::MAX),
            t("MemoryLow", u64::MAX),
            t("MemorySwapMax", u64::MAX)
        ]
    );
    let r = res(serde_json::json!({"memory": {"limit": 1000, "swap": -1}}));
    assert_eq!(
        props(&r, Layout::V2, NEW),
        [t("MemoryMax", 1000), t("MemorySwapMax", u64::MAX)]
    );
    // swap == memory: no swap (0), where runc's systemd driver sets nothing.
    let r = res(serde_json::json!({"memory": {"limit": 1000, "swap": 1000}}));
    assert_eq!(
        props(&r, Layout::V2, NEW),
        [t("MemoryMax", 1000), t("MemorySwapMax", 0)]
    );
}

#[test]
fn v2_swap_errors_name_the_field() {
    for (memory, swap) in [(0, 1000), (2000, 1000)] {
        let r = Resources {
            memory,
            memory_swap: swap,
            ..Resources::default()
        };
        let e = resource_properties(&r, Layout::V2, NEW).unwrap_err();
        assert_eq!(e.field, "memory.swap", "{e}");
        assert!(
            e.to_string().starts_with("linux.resources.memory.swap: "),
            "{e}"
        );
    }
    // v1 has no swap property: nothing to check there.
    let r = Resources {
        memory_swap: 1000,
        ..Resources::default()
    };
    assert_eq!(props(&r, Layout::V1, NEW), vec![]);
}

/// genV1ResourcesProperties: MemoryLimit only (no reservation, no swap).
#[test]
fn v1_memory() {
    let r = res(
        serde_json::json!({"memory": {"limit": 1_073_741_824_i64, "reservation": 536_870_912, "swap": 2_147_483_648_i64}}),
    );
    assert_eq!(props(&r, Layout::V1, NEW), [t("MemoryLimit", 1 << 30)]);
    let r = res(serde_json::json!({"memory": {"limit": -1}}));
    assert_eq!(props(&r, Layout::V1, NEW), [t("MemoryLimit", u64::MAX)]);
}

/// v1: CPUShares as given; v2: CPUWeight of the cgroupfs driver's
/// conversion (1 + (shares - 2) * 9999 / 262142: 1024 -> 39).
#[test]
fn cpu_shares() {
    let r = res(serde_json::json!({"cpu": {"shares": 1024}}));
    assert_eq!(props(&r, Layout::V1, NEW), [t("CPUShares", 1024)]);
    assert_eq!(props(&r, Layout::V2, NEW), [t("CPUWeight", 39)]);
    for (shares, weight) in [(2, 1), (262_144, 10_000)] {
        let r = Resources {
            cpu_shares: shares,
            ..Resources::default()
        };
        assert_eq!(props(&r, Layout::V2, NEW), [t("CPUWeight", weight)]);
    }
    for shares in [1, 262_145] {
        let r = Resources {
            cpu_shares: shares,
            ..Resources::default()
        };
        let e = resource_properties(&r, Layout::V2, NEW).unwrap_err();
        assert_eq!(e.field, "cpu.shares", "{e}");
    }
}

/// genV2ResourcesProperties: cpu.idle 1 is CPUWeight 0 from systemd 252
/// on, and then the shares' weight is dropped.
#[test]
fn cpu_idle_is_weight_zero_from_252() {
    let r = res(serde_json::json!({"cpu": {"shares": 1024, "idle": 1}}));
    assert_eq!(props(&r, Layout::V2, 252), [t("CPUWeight", 0)]);
    assert_eq!(props(&r, Layout::V2, 251), [t("CPUWeight", 39)]);
    assert_eq!(props(&r, Layout::V1, 252), [t("CPUShares", 1024)]);
    let r = res(serde_json::json!({"cpu": {"idle": 0}}));
    assert_eq!(props(&r, Layout::V2, 252), vec![]);
}

/// addCPUQuota: the period from 242 on; quota * 1e6 / period, rounded up to
/// a multiple of 10000 us; the same for v1 and v2.
#[test]
fn cpu_quota_and_period() {
    for layout in [Layout::V1, Layout::V2] {
        let r = res(serde_json::json!({"cpu": {"quota": 50000, "period": 100_000}}));
        assert_eq!(
            props(&r, layout, 242),
            [
                t("CPUQuotaPeriodUSec", 100_000),
                t("CPUQuotaPerSecUSec", 500_000)
            ]
        );
        assert_eq!(props(&r, layout, 241), [t("CPUQuotaPerSecUSec", 500_000)]);
        // 12345 us of 100 ms: 123450 us/s, up to 130000.
        let r = res(serde_json::json!({"cpu": {"quota": 12345, "period": 100_000}}));
        assert_eq!(
            props(&r, layout, NEW),
            [
                t("CPUQuotaPeriodUSec", 100_000),
                t("CPUQuotaPerSecUSec", 130_000)
            ]
        );
        // No period: the kernel's 100 ms.
        let r = res(serde_json::json!({"cpu": {"quota": 20000}}));
        assert_eq!(props(&r, layout, NEW), [t("CPUQuotaPerSecUSec", 200_000)]);
        // Unlimited, and a period alone: infinity.
        let r = res(serde_json::json!({"cpu": {"quota": -1}}));
        assert_eq!(props(&r, layout, NEW), [t("CPUQuotaPerSecUSec", u64::MAX)]);
        let r = res(serde_json::json!({"cpu": {"period": 50000}}));
        assert_eq!(
            props(&r, layout, NEW),
            [
                t("CPUQuotaPeriodUSec", 50000),
                t("CPUQuotaPerSecUSec", u64::MAX)
            ]
        );
    }
}

#[test]
fn quota_rounding_gives_back_the_quota_to_write() {
    assert_eq!(cpu_quota_per_sec(50000, 100_000), (500_000, 50000));
    assert_eq!(cpu_quota_per_sec(12345, 100_000), (130_000, 13000));
    assert_eq!(cpu_quota_per_sec(20000, 0), (200_000, 20000));
    // 1 ms every 3 ms: 333333 us/s, up to 340000, quota 1020.
    assert_eq!(cpu_quota_per_sec(1000, 3000), (340_000, 1020));
    // 150 ms every 1 s: 150000 exactly.
    assert_eq!(cpu_quota_per_sec(150_000, 1_000_000), (150_000, 150_000));
    assert_eq!(cpu_quota_per_sec(-1, 100_000), (u64::MAX, -1));
    assert_eq!(cpu_quota_per_sec(0, 100_000), (u64::MAX, 0));
    // Too large for systemd's u64: infinity, the quota as it was (runc's
    // int64 product would overflow here).
    assert_eq!(cpu_quota_per_sec(i64::MAX, 1), (u64::MAX, i64::MAX));
}

/// TasksMax: negative is infinity, 0 is 1 (systemd refuses 0), as runc.
#[test]
fn pids_limit_is_tasks_max() {
    for layout in [Layout::V1, Layout::V2] {
        for (limit, want) in [(100, 100), (-1, u64::MAX), (-5, u64::MAX), (0, 1)] {
            let r = Resources {
                pids_limit: Some(limit),
                ..Resources::default()
            };
            assert_eq!(props(&r, layout, NEW), [t("TasksMax", want)], "{limit}");
        }
    }
}

/// v1: BlockIOWeight as given (genV1ResourcesProperties); v2: IOWeight of
/// the cgroupfs driver's blkio -> io conversion (1 + (w - 10) * 9999 / 990).
#[test]
fn blkio_weight() {
    let r = res(serde_json::json!({"blockIO": {"weight": 300}}));
    assert_eq!(props(&r, Layout::V1, NEW), [t("BlockIOWeight", 300)]);
    assert_eq!(props(&r, Layout::V2, NEW), [t("IOWeight", 2930)]);
    let r = res(serde_json::json!({"blockIO": {"weight": 10}}));
    assert_eq!(props(&r, Layout::V2, NEW), [t("IOWeight", 1)]);
}

/// RangeToBits: little-endian bytes, no trailing zero byte.
#[test]
fn bitmasks() {
    for (list, want) in [
        ("0-3,8", &[0x0f, 0x01][..]),
        ("0", &[0x01]),
        ("7", &[0x80]),
        ("8", &[0x00, 0x01]),
        (" 1 , 3-5 ,,", &[0x3a]),
        ("0-63", &[0xff; 8]),
        ("5-5", &[0x20]),
        ("16,0", &[0x01, 0x00, 0x01]),
    ] {
        assert_eq!(cpus_bitmask(list).as_deref(), Ok(want), "{list:?}");
    }
    for list in [
        "", ",", " , ", "3-1", "a", "-1", "1-", "0-65536", "0-3:2/4", "1 2", "0x1",
    ] {
        assert!(cpus_bitmask(list).is_err(), "{list:?}");
    }
}

/// addCpuset: AllowedCPUs / AllowedMemoryNodes from systemd 244 on.
#[test]
fn cpuset_masks_from_244() {
    let r = res(serde_json::json!({"cpu": {"cpus": "0-3,8", "mems": "0"}}));
    for layout in [Layout::V1, Layout::V2] {
        assert_eq!(
            props(&r, layout, 244),
            [
                ay("AllowedCPUs", &[0x0f, 0x01]),
                ay("AllowedMemoryNodes", &[0x01])
            ]
        );
        assert_eq!(props(&r, layout, 243), vec![]);
    }
    let r = res(serde_json::json!({"cpu": {"mems": "1"}}));
    assert_eq!(
        props(&r, Layout::V2, NEW),
        [ay("AllowedMemoryNodes", &[0x02])]
    );
}

#[test]
fn bad_cpuset_lists_name_their_field() {
    for (field, r) in [
        (
            "cpu.cpus",
            Resources {
                cpuset_cpus: "0-x".into(),
                ..Resources::default()
            },
        ),
        (
            "cpu.mems",
            Resources {
                cpuset_cpus: "0".into(),
                cpuset_mems: "2-1".into(),
                ..Resources::default()
            },
        ),
    ] {
        let e = resource_properties(&r, Layout::V2, NEW).unwrap_err();
        assert_eq!(e.field, field);
        assert!(
            e.to_string()
                .starts_with(&format!("linux.resources.{field}: \"")),
            "{e}"
        );
        // Below 244 the list is not systemd's business.
        assert!(resource_properties(&r, Layout::V2, 243).is_ok());
    }
}

/// What `update` has: only the values it sets, no devices.
#[test]
fn update_sets_only_what_is_set() {
    let r = Resources {
        memory: 1 << 20,
        pids_limit: Some(50),
        ..Resources::default()
    };
    assert_eq!(
        props(&r, Layout::V2, NEW),
        [t("MemoryMax", 1 << 20), t("TasksMax", 50)]
    );
}

/// The order of the properties and the D-Bus type of each, as systemd's
/// org.freedesktop.systemd1(5) has them.
#[test]
fn every_property_has_systemds_type() {
    let mut r = Resources {
        memory: 1000,
        memory_swap: 3000,
        memory_reservation: 500,
        cpu_shares: 512,
        cpu_quota: 1000,
        cpu_period: 10000,
        cpuset_cpus: "1".into(),
        cpuset_mems: "0".into(),
        pids_limit: Some(9),
        blkio_weight: 500,
        ..Resources::default()
    };
    r.devices = Some(crate::cgroups::devices::default_rules().collect());
    let sig = |p: &[Property]| -> Vec<(String, String)> {
        p.iter().map(|(n, v)| (n.clone(), v.signature())).collect()
    };
    let want = |l: &[(&str, &str)]| -> Vec<(String, String)> {
        l.iter()
            .map(|(n, s)| (n.to_string(), s.to_string()))
            .collect()
    };
    let dev = [
        ("DeviceAllow", "a(ss)"),
        ("DevicePolicy", "s"),
        ("DeviceAllow", "a(ss)"),
    ];
    let quota = [("CPUQuotaPeriodUSec", "t"), ("CPUQuotaPerSecUSec", "t")];
    let cpuset = [("AllowedCPUs", "ay"), ("AllowedMemoryNodes", "ay")];
    let v2 = [
        &dev[..],
        &[
            ("MemoryMax", "t"),
            ("MemoryLow", "t"),
            ("MemorySwapMax", "t"),
            ("CPUWeight", "t"),
        ],
        &quota,
        &[("IOWeight", "t"), ("TasksMax", "t")],
        &cpuset,
    ]
    .concat();
    assert_eq!(sig(&props(&r, Layout::V2, NEW)), want(&v2));
    // runc's v1 order: BlockIOWeight after the quota.
    let v1 = [
        &dev[..],
        &[("MemoryLimit", "t"), ("CPUShares", "t")],
        &quota,
        &[("BlockIOWeight", "t"), ("TasksMax", "t")],
        &cpuset,
    ]
    .concat();
    assert_eq!(sig(&props(&r, Layout::V1, NEW)), want(&v1));

    // They go on the wire in StartTransientUnit's a(sv) and come back whole.
    let list = props(&r, Layout::V2, NEW);
    let items = list
        .iter()
        .map(|(n, v)| Value::Struct(vec![Value::str(n), Value::variant(v.clone())]))
        .collect();
    let m = crate::dbus::Message::call(
        "d.e",
        "/",
        "i.f",
        "StartTransientUnit",
        vec![Value::Array("(sv)".into(), items)],
    );
    assert_eq!(crate::dbus::decode(&m.encode()).unwrap().body, m.body);
}

fn rule(allow: bool, typ: char, major: Option<i64>, minor: Option<i64>, access: &str) -> Rule {
    Rule {
        allow,
        typ,
        major,
        minor,
        access: access.into(),
    }
}

/// The config's rules (JSON), then runc's defaults, as create has them.
fn with_defaults(devices: serde_json::Value) -> Vec<Rule> {
    let spec: LinuxResources =
        serde_json::from_value(serde_json::json!({ "devices": devices })).unwrap();
    Resources::from_spec(Some(&spec), false)
        .unwrap()
        .devices
        .unwrap()
}

fn device_props(rules: Vec<Rule>, version: u32) -> Result<Vec<Property>, FieldError> {
    let r = Resources {
        devices: Some(rules),
        ..Resources::default()
    };
    resource_properties(&r, Layout::V2, version)
}

fn allow_list(entries: &[(&str, &str)]) -> Property {
    let items = entries
        .iter()
        .map(|(p, a)| Value::Struct(vec![Value::str(p), Value::str(a)]))
        .collect();
    (
        "DeviceAllow".to_string(),
        Value::Array("(ss)".into(), items),
    )
}

fn policy(p: &str) -> Property {
    ("DevicePolicy".to_string(), Value::str(p))
}

/// The usual list: deny all, then runc's defaults. Worked out through
/// systemdProperties: the emulator's entries sorted by major, minor, type
/// (wildcards first), `*:*` as char-*/block-*, `136:*` as char-136 (v240+),
/// the others as /dev/char/M:m.
#[test]
fn deny_all_then_runcs_defaults() {
    let rules = with_defaults(serde_json::json!([{"allow": false, "access": "rwm"}]));
    let rwm = |p| (p, "rwm");
    let list = [
        ("block-*", "m"),
        ("char-*", "m"),
        rwm("/dev/char/1:3"),
        rwm("/dev/char/1:5"),
        rwm("/dev/char/1:7"),
        rwm("/dev/char/1:8"),
        rwm("/dev/char/1:9"),
        rwm("/dev/char/5:0"),
        rwm("/dev/char/5:2"),
        rwm("/dev/char/10:200"),
        rwm("char-136"),
    ];
    assert_eq!(
        device_props(rules.clone(), 240).unwrap(),
        [allow_list(&[]), policy("strict"), allow_list(&list)]
    );
    // Before 240 systemd has no char-M: runc would look for the major's
    // group in /proc/devices; berth leaves it out.
    assert_eq!(
        device_props(rules.clone(), 239).unwrap(),
        [allow_list(&[]), policy("strict"), allow_list(&list[..10])]
    );
    // The same on v1.
    let r = Resources {
        devices: Some(rules),
        ..Resources::default()
    };
    assert_eq!(
        resource_properties(&r, Layout::V1, 240).unwrap()[2],
        allow_list(&list)
    );
}

/// What systemd allows with a strict DeviceAllow list, for one access.
fn systemd_allows(list: &Value, typ: char, major: i64, minor: i64, access: char) -> bool {
    let Value::Array(_, items) = list else {
        panic!("{list:?}")
    };
    let group = if typ == 'b' { "block" } else { "char" };
    items.iter().any(|item| {
        let Value::Struct(f) = item else {
            panic!("{item:?}")
        };
        let (path, perms) = (f[0].as_str().unwrap(), f[1].as_str().unwrap());
        let hit = path == format!("{group}-*")
            || path == format!("{group}-{major}")
            || path == format!("/dev/{group}/{major}:{minor}");
        hit && perms.contains(access)
    })
}

/// Rules systemd can express: its list allows exactly what the rules do
/// (devices::allowed, the reference of berth's own enforcement).
#[test]
fn the_allow_list_allows_what_the_rules_allow() {
    let rules = with_defaults(serde_json::json!([
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 4, "access": "rw"},
        {"allow": true, "type": "b", "major": 8, "minor": 0, "access": "r"},
        {"allow": true, "type": "b", "major": 8, "minor": 0, "access": "w"},
        {"allow": false, "type": "c", "major": 4, "access": "w"},
        {"allow": true, "type": "c", "major": 200, "minor": 5, "access": "rwm"},
        {"allow": false, "type": "c", "major": 200, "minor": 5, "access": "rm"},
        {"allow": true, "type": "b", "access": "r"}
    ]));
    let p = device_props(rules.clone(), NEW).unwrap();
    assert_eq!(p[..2], [allow_list(&[]), policy("strict")]);
    let mut checked = 0;
    for typ in ['b', 'c'] {
        for major in [1, 4, 5, 8, 10, 136, 200] {
            for minor in [0, 1, 2, 3, 5, 7, 8, 9, 200] {
                for access in ['r', 'w', 'm'] {
                    let want = allowed(&rules, typ, major, minor, &access.to_string());
                    let got = systemd_allows(&p[2].1, typ, major, minor, access);
                    assert_eq!(got, want, "{typ} {major}:{minor} {access}");
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 2 * 7 * 9 * 3);
}

/// Allows of one device merge; a later deny takes its bits away, and the
/// entry goes when none is left.
#[test]
fn allows_merge_and_denies_subtract() {
    let deny_all = rule(false, 'a', None, None, "rwm");
    let rules = vec![
        deny_all.clone(),
        rule(true, 'c', Some(4), Some(1), "r"),
        rule(true, 'c', Some(4), Some(1), "mw"),
        rule(false, 'c', Some(4), Some(1), "r"),
        rule(true, 'b', Some(8), Some(16), "rw"),
        rule(false, 'b', Some(8), Some(16), "rwm"),
        rule(true, 'b', Some(8), None, "r"),
    ];
    assert_eq!(
        device_props(rules, NEW).unwrap(),
        [
            allow_list(&[]),
            policy("strict"),
            allow_list(&[("/dev/char/4:1", "wm"), ("block-8", "r")])
        ]
    );
    // A deny-all with nothing after it: strict, an empty list.
    assert_eq!(
        device_props(vec![deny_all], NEW).unwrap(),
        [allow_list(&[]), policy("strict"), allow_list(&[])]
    );
}

/// allowAllDevices: an allow-all list is DevicePolicy=auto and an emptied
/// DeviceAllow; any `a` rule resets the list, whatever its numbers.
#[test]
fn allow_all_is_policy_auto() {
    let auto = [allow_list(&[]), policy("auto")];
    let rules = with_defaults(serde_json::json!([{"allow": true, "access": "rwm"}]));
    assert_eq!(device_props(rules, NEW).unwrap(), auto);
    let rules = with_defaults(serde_json::json!([
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
        {"allow": true, "type": "a", "major": 7, "access": "r"}
    ]));
    assert_eq!(device_props(rules, NEW).unwrap(), auto);
}

/// A deny list (allow all, then denies) is runc's "temporary deny-all":
/// strict and no entry; the cgroupfs driver's own rules follow.
#[test]
fn a_deny_list_is_strict_with_no_entry() {
    let rules = with_defaults(serde_json::json!([
        {"allow": true, "access": "rwm"},
        {"allow": false, "type": "c", "major": 5, "minor": 1, "access": "rwm"}
    ]));
    assert_eq!(
        device_props(rules, NEW).unwrap(),
        [allow_list(&[]), policy("strict")]
    );
}

/// runc leaves `*:M` rules out (systemd has no syntax for them).
#[test]
fn any_major_one_minor_is_left_out() {
    let rules = vec![
        rule(false, 'a', None, None, "rwm"),
        rule(true, 'c', None, Some(5), "rw"),
        rule(true, 'c', Some(1), Some(5), "r"),
    ];
    assert_eq!(
        device_props(rules, NEW).unwrap()[2],
        allow_list(&[("/dev/char/1:5", "r")])
    );
}

/// rmRule: a deny inside an earlier wildcard allow cannot be expressed; the
/// error names the config's rule, or says it is one of runc's defaults.
#[test]
fn a_hole_in_a_wildcard_is_an_error_naming_the_rule() {
    let rules = with_defaults(serde_json::json!([
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "access": "rw"},
        {"allow": false, "type": "c", "major": 1, "minor": 3, "access": "w"}
    ]));
    let e = device_props(rules, NEW).unwrap_err();
    assert_eq!(e.field, "devices[2]");
    assert!(
        e.msg.contains("deny c 1:3 w") && e.msg.contains("wildcard c 1:* rw"),
        "{e}"
    );
    // A deny of bits the wildcard does not grant is fine.
    let rules = with_defaults(serde_json::json!([
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "access": "r"},
        {"allow": false, "type": "c", "major": 1, "minor": 3, "access": "w"}
    ]));
    assert!(device_props(rules, NEW).is_ok());
    // In a deny list, runc's default allow of c 1:3 cuts into the config's
    // deny of c 1:*.
    let rules = with_defaults(serde_json::json!([
        {"allow": true, "access": "rwm"},
        {"allow": false, "type": "c", "major": 1, "access": "rwm"}
    ]));
    let e = device_props(rules, NEW).unwrap_err();
    assert_eq!(e.field, "devices");
    assert!(
        e.msg.starts_with("runc's default rule allow c 1:3 rwm"),
        "{e}"
    );
}
