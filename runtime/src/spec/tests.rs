//! Tests for `load_bundle`: parsing, pre-filtering, error paths, validation.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use oci_spec::runtime::{Capability, LinuxNamespaceType};
use serde_json::{json, Value};

use super::*;

/// A bundle directory with a `rootfs/` in the system temp dir, removed on drop.
struct TempBundle {
    dir: PathBuf,
}

impl TempBundle {
    fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "berth-spec-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("rootfs")).unwrap();
        TempBundle { dir }
    }

    fn write(&self, config: &Value) {
        self.write_raw(serde_json::to_string_pretty(config).unwrap().as_bytes());
    }

    fn write_raw(&self, data: &[u8]) {
        std::fs::write(self.dir.join("config.json"), data).unwrap();
    }

    fn load(&self) -> Result<Bundle, ConfigError> {
        load_bundle(&self.dir)
    }

    fn file(&self) -> String {
        self.dir.join("config.json").display().to_string()
    }
}

impl Drop for TempBundle {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What `runc spec` writes (rootful), trimmed of nothing.
fn runc_spec() -> Value {
    json!({
        "ociVersion": "1.2.0",
        "process": {
            "terminal": true,
            "user": { "uid": 0, "gid": 0 },
            "args": ["sh"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "ambient": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
            },
            "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 }],
            "noNewPrivileges": true
        },
        "root": { "path": "rootfs", "readonly": true },
        "hostname": "runc",
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            { "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
              "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
            { "destination": "/dev/pts", "type": "devpts", "source": "devpts",
              "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
            { "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
              "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
            { "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
              "options": ["nosuid", "noexec", "nodev"] },
            { "destination": "/sys", "type": "sysfs", "source": "sysfs",
              "options": ["nosuid", "noexec", "nodev", "ro"] },
            { "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
              "options": ["nosuid", "noexec", "nodev", "relatime", "ro"] }
        ],
        "linux": {
            "resources": {
                "devices": [{ "allow": false, "access": "rwm" }]
            },
            "namespaces": [
                { "type": "pid" },
                { "type": "network" },
                { "type": "ipc" },
                { "type": "uts" },
                { "type": "mount" },
                { "type": "cgroup" }
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    })
}

/// Load `config` from a fresh bundle and expect an error.
fn load_err(config: &Value) -> ConfigError {
    let b = TempBundle::new();
    b.write(config);
    let err = b.load().expect_err("config should have been rejected");
    assert_eq!(err.file, b.file(), "error must name the config file");
    err
}

/// Load `config` from a fresh bundle and expect success.
fn load_ok(config: &Value) {
    let b = TempBundle::new();
    b.write(config);
    if let Err(e) = b.load() {
        panic!("config should load: {e}");
    }
}

/// Expect an error at exactly `path` whose message contains `msg`.
#[track_caller]
fn assert_err(config: &Value, path: &str, msg: &str) {
    let err = load_err(config);
    assert_eq!(err.path, path, "wrong path in: {err}");
    assert!(err.msg.contains(msg), "{err:?} should contain {msg:?}");
}

#[track_caller]
fn assert_ok(config: &Value) -> Bundle {
    let b = TempBundle::new();
    b.write(config);
    b.load()
        .unwrap_or_else(|e| panic!("config should load: {e}"))
}

fn namespaces(list: &[Value]) -> Value {
    Value::Array(list.to_vec())
}

// ---- files and directories ----

#[test]
fn realistic_runc_spec_loads() {
    let b = TempBundle::new();
    b.write(&runc_spec());
    let bundle = b.load().unwrap();
    let canon = std::fs::canonicalize(&b.dir).unwrap();
    assert_eq!(bundle.dir, canon);
    assert_eq!(bundle.config_path, canon.join("config.json"));
    assert_eq!(bundle.rootfs, canon.join("rootfs"));
    assert!(bundle.rootfs.is_absolute());
    let process = bundle.spec.process().as_ref().unwrap();
    assert_eq!(process.args().as_ref().unwrap(), &["sh".to_string()]);
    assert_eq!(bundle.spec.mounts().as_ref().unwrap().len(), 7);
    assert_eq!(bundle.spec.hostname().as_deref(), Some("runc"));
}

#[test]
fn error_display_names_file_and_path() {
    let e = ConfigError::new(
        "/b/config.json",
        "linux.namespaces[2].type",
        "unknown namespace \"foo\"",
    );
    assert_eq!(
        e.to_string(),
        "/b/config.json: linux.namespaces[2].type: unknown namespace \"foo\""
    );
    let e = ConfigError::whole_file("/b/config.json", "boom");
    assert_eq!(e.to_string(), "/b/config.json: boom");
}

#[test]
fn missing_bundle_dir() {
    let b = TempBundle::new();
    let missing = b.dir.join("nope");
    let err = load_bundle(&missing).unwrap_err();
    assert_eq!(err.file, missing.display().to_string());
    assert!(err.msg.contains("No such file or directory"), "{err}");
}

#[test]
fn bundle_is_a_file() {
    let b = TempBundle::new();
    b.write(&runc_spec());
    let file = b.dir.join("config.json");
    let err = load_bundle(&file).unwrap_err();
    assert_eq!(err.file, file.display().to_string());
    assert!(err.msg.contains("not a directory"), "{err}");
}

#[test]
fn missing_config_json() {
    let b = TempBundle::new();
    let err = b.load().unwrap_err();
    assert_eq!(err.file, b.file());
    assert_eq!(err.path, "");
    assert!(err.msg.contains("No such file or directory"), "{err}");
}

#[test]
fn invalid_json_has_line_and_column() {
    let b = TempBundle::new();
    b.write_raw(b"{\n  \"ociVersion\": \"1.0.2\",\n  \"process\": {,\n}");
    let err = b.load().unwrap_err();
    assert!(err.msg.contains("invalid JSON"), "{err}");
    assert!(err.msg.contains("line 3 column"), "{err}");
}

#[test]
fn not_an_object() {
    let b = TempBundle::new();
    b.write_raw(b"[1, 2]");
    let err = b.load().unwrap_err();
    assert!(err.msg.contains("expected a JSON object"), "{err}");
}

// ---- ociVersion ----

#[test]
fn supported_versions_accepted() {
    for v in [
        "1.0.0",
        "1.0.2",
        "1.1.0",
        "1.2.0",
        "1.3.0",
        "1.0.2-dev",
        "1.1.0-rc.1",
        "1.2.1+build.7",
    ] {
        let mut c = runc_spec();
        c["ociVersion"] = json!(v);
        assert_ok(&c);
    }
}

#[test]
fn unsupported_versions_rejected() {
    for v in [
        "2.0.0", "0.9.0", "1.4.0", "1.0", "1.0.0.0", "01.0.0", "1.0.0-", "v1.0.0", "",
    ] {
        let mut c = runc_spec();
        c["ociVersion"] = json!(v);
        assert_err(&c, "ociVersion", &format!("unsupported version {v:?}"));
    }
    let mut c = runc_spec();
    c["ociVersion"] = json!("2.0.0");
    let err = load_err(&c);
    assert!(
        err.to_string()
            .ends_with("ociVersion: unsupported version \"2.0.0\" (berth supports 1.0.0 to 1.3.x)"),
        "{err}"
    );
}

#[test]
fn version_required_and_typed() {
    let mut c = runc_spec();
    c.as_object_mut().unwrap().remove("ociVersion");
    assert_err(&c, "ociVersion", "required");
    c["ociVersion"] = json!(1);
    assert_err(&c, "ociVersion", "expected a string");
}

// ---- pre-filter and serde errors ----

#[test]
fn unknown_fields_ignored() {
    let mut c = runc_spec();
    c["someFutureField"] = json!({"deep": [1, 2, 3]});
    c["process"]["fancyNewKnob"] = json!(true);
    c["linux"]["namespaces"][0]["flavour"] = json!("vanilla");
    c["mounts"][0]["extra"] = json!(null);
    c["linux"]["resources"]["somethingElse"] = json!({"a": 1});
    assert_ok(&c);
}

#[test]
fn unknown_capabilities_dropped_known_kept() {
    let mut c = runc_spec();
    c["process"]["capabilities"]["bounding"] = json!([
        "CAP_KILL",
        "CAP_DOES_NOT_EXIST",
        "CAP_CHOWN",
        "CAP_FUTURE_THING"
    ]);
    c["process"]["capabilities"]["inheritable"] = json!(["CAP_NOPE"]);
    let bundle = assert_ok(&c);
    let caps = bundle
        .spec
        .process()
        .as_ref()
        .unwrap()
        .capabilities()
        .as_ref()
        .unwrap();
    let bounding = caps.bounding().as_ref().unwrap();
    assert_eq!(bounding.len(), 2);
    assert!(bounding.contains(&Capability::Kill));
    assert!(bounding.contains(&Capability::Chown));
    assert!(caps.inheritable().as_ref().unwrap().is_empty());
    assert_eq!(caps.effective().as_ref().unwrap().len(), 3);
}

#[test]
fn non_string_capability_is_a_type_error() {
    let mut c = runc_spec();
    c["process"]["capabilities"]["effective"] = json!(["CAP_KILL", 7]);
    assert_err(&c, "process.capabilities.effective[1]", "invalid type");
}

#[test]
fn unknown_namespace_type() {
    let mut c = runc_spec();
    c["linux"]["namespaces"][2]["type"] = json!("foo");
    let err = load_err(&c);
    assert_eq!(err.path, "linux.namespaces[2].type");
    assert_eq!(err.msg, "unknown namespace \"foo\"");
    assert_eq!(
        err.to_string(),
        format!(
            "{}: linux.namespaces[2].type: unknown namespace \"foo\"",
            err.file
        )
    );
}

#[test]
fn unknown_rlimit_type() {
    let mut c = runc_spec();
    c["process"]["rlimits"][0]["type"] = json!("RLIMIT_FOO");
    assert_err(
        &c,
        "process.rlimits[0].type",
        "unknown rlimit \"RLIMIT_FOO\"",
    );
}

#[test]
fn other_unknown_enum_value() {
    let mut c = runc_spec();
    c["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_WHATEVER", "priority": 1});
    assert_err(
        &c,
        "process.ioPriority.class",
        "unknown value \"IOPRIO_CLASS_WHATEVER\", expected one of \"IOPRIO_CLASS_RT\", \"IOPRIO_CLASS_BE\", \"IOPRIO_CLASS_IDLE\"",
    );
}

#[test]
fn wrong_json_type_keeps_serde_message_with_path() {
    let mut c = runc_spec();
    c["process"]["user"]["uid"] = json!("root");
    assert_err(&c, "process.user.uid", "invalid type: string \"root\"");
    let mut c = runc_spec();
    c["mounts"][3]["options"] = json!("nosuid");
    assert_err(&c, "mounts[3].options", "invalid type");
}

#[test]
fn missing_required_field_path() {
    let mut c = runc_spec();
    c["process"].as_object_mut().unwrap().remove("cwd");
    assert_err(&c, "process.cwd", "required field is missing");
    let mut c = runc_spec();
    c["mounts"][2]
        .as_object_mut()
        .unwrap()
        .remove("destination");
    assert_err(&c, "mounts[2].destination", "required field is missing");
}

#[test]
fn friendly_error_unit() {
    let f = load::friendly_error(
        "linux.namespaces[10].type".into(),
        "unknown variant `x`, expected one of `a`, `b`",
    );
    assert_eq!(f.msg, "unknown namespace \"x\"");
    let f = load::friendly_error("a.b".into(), "unknown variant `x`, expected `a` or `b`");
    assert_eq!(f.msg, "unknown value \"x\", expected one of \"a\", \"b\"");
    let f = load::friendly_error("".into(), "missing field `process`");
    assert_eq!(
        (f.path.as_str(), f.msg.as_str()),
        ("process", "required field is missing")
    );
}

// ---- root ----

#[test]
fn root_required() {
    let mut c = runc_spec();
    c.as_object_mut().unwrap().remove("root");
    assert_err(&c, "root", "required");
}

#[test]
fn root_path_empty() {
    let mut c = runc_spec();
    c["root"]["path"] = json!("");
    assert_err(&c, "root.path", "must not be empty");
}

#[test]
fn rootfs_missing() {
    let mut c = runc_spec();
    c["root"]["path"] = json!("nothere");
    assert_err(&c, "root.path", "No such file or directory");
}

#[test]
fn rootfs_not_a_directory() {
    let b = TempBundle::new();
    std::fs::write(b.dir.join("afile"), b"x").unwrap();
    let mut c = runc_spec();
    c["root"]["path"] = json!("afile");
    b.write(&c);
    let err = b.load().unwrap_err();
    assert_eq!(err.path, "root.path");
    assert!(err.msg.contains("is not a directory"), "{err}");
}

#[test]
fn rootfs_absolute_path() {
    let b = TempBundle::new();
    let abs = b.dir.join("rootfs");
    let mut c = runc_spec();
    c["root"]["path"] = json!(abs.display().to_string());
    b.write(&c);
    let bundle = b.load().unwrap();
    assert_eq!(bundle.rootfs, std::fs::canonicalize(abs).unwrap());
}

#[test]
fn relative_bundle_dir_made_canonical() {
    let b = TempBundle::new();
    b.write(&runc_spec());
    // A path with `..` in it is made canonical.
    let odd = b.dir.join("rootfs").join("..");
    let bundle = load_bundle(&odd).unwrap();
    assert_eq!(bundle.dir, std::fs::canonicalize(&b.dir).unwrap());
    assert_eq!(bundle.rootfs, bundle.dir.join("rootfs"));
}

// ---- process ----

#[test]
fn process_required() {
    let mut c = runc_spec();
    c.as_object_mut().unwrap().remove("process");
    assert_err(&c, "process", "required");
}

#[test]
fn process_args_non_empty() {
    let mut c = runc_spec();
    c["process"]["args"] = json!([]);
    assert_err(&c, "process.args", "must not be empty");
    c["process"].as_object_mut().unwrap().remove("args");
    assert_err(&c, "process.args", "must not be empty");
    c["process"]["args"] = json!([""]);
    assert_err(&c, "process.args[0]", "must not be empty");
}

#[test]
fn process_cwd_absolute() {
    let mut c = runc_spec();
    c["process"]["cwd"] = json!("tmp");
    assert_err(&c, "process.cwd", "\"tmp\" is not an absolute path");
}

#[test]
fn duplicate_rlimit() {
    let mut c = runc_spec();
    c["process"]["rlimits"] = json!([
        { "type": "RLIMIT_NOFILE", "hard": 10, "soft": 10 },
        { "type": "RLIMIT_CORE", "hard": 0, "soft": 0 },
        { "type": "RLIMIT_NOFILE", "hard": 20, "soft": 20 }
    ]);
    assert_err(
        &c,
        "process.rlimits[2].type",
        "duplicate rlimit \"RLIMIT_NOFILE\"",
    );
    c["process"]["rlimits"].as_array_mut().unwrap().pop();
    assert_ok(&c);
}

#[test]
fn rlimit_soft_above_hard() {
    let mut c = runc_spec();
    c["process"]["rlimits"][0] = json!({ "type": "RLIMIT_NOFILE", "hard": 10, "soft": 20 });
    assert_err(&c, "process.rlimits[0]", "greater than hard limit");
}

#[test]
fn io_priority() {
    let mut c = runc_spec();
    for class in ["IOPRIO_CLASS_RT", "IOPRIO_CLASS_BE", "IOPRIO_CLASS_IDLE"] {
        for prio in [0, 7] {
            c["process"]["ioPriority"] = json!({"class": class, "priority": prio});
            assert_ok(&c);
        }
    }
    c["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 8});
    assert_err(
        &c,
        "process.ioPriority.priority",
        "8 is out of range (0 to 7)",
    );
    c["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": -1});
    assert_err(&c, "process.ioPriority.priority", "out of range");
}

#[test]
fn scheduler() {
    let mut c = runc_spec();
    c["process"]["scheduler"] = json!({"policy": "SCHED_FIFO", "priority": 10});
    assert_ok(&c);
    c["process"]["scheduler"] =
        json!({"policy": "SCHED_DEADLINE", "runtime": 10, "deadline": 20, "period": 30});
    assert_ok(&c);
    c["process"]["scheduler"] = json!({"policy": "SCHED_BOGUS"});
    assert_err(
        &c,
        "process.scheduler.policy",
        "unknown value \"SCHED_BOGUS\", expected one of \"SCHED_OTHER\"",
    );
    c["process"]["scheduler"] = json!({"policy": "SCHED_OTHER", "nice": 20});
    assert_err(&c, "process.scheduler.nice", "out of range");
    c["process"]["scheduler"] = json!({"policy": "SCHED_OTHER", "priority": 5});
    assert_err(&c, "process.scheduler.priority", "SCHED_FIFO or SCHED_RR");
    c["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "period": 5});
    assert_err(&c, "process.scheduler.period", "SCHED_DEADLINE");
}

#[test]
fn oom_score_adj_range() {
    let mut c = runc_spec();
    c["process"]["oomScoreAdj"] = json!(-1000);
    assert_ok(&c);
    c["process"]["oomScoreAdj"] = json!(1001);
    assert_err(&c, "process.oomScoreAdj", "out of range");
}

#[test]
fn umask_and_user_fields() {
    let mut c = runc_spec();
    c["process"]["user"] = json!({"uid": 1000, "gid": 1000, "umask": 18, "additionalGids": [5, 6]});
    let b = assert_ok(&c);
    let user = b.spec.process().as_ref().unwrap().user();
    assert_eq!(user.umask(), Some(18));
}

// ---- personality ----

#[test]
fn personality_domain() {
    let mut c = runc_spec();
    for d in ["LINUX", "LINUX32"] {
        c["linux"]["personality"] = json!({"domain": d});
        assert_ok(&c);
    }
    c["linux"]["personality"] = json!({"domain": "LINUX64"});
    assert_err(
        &c,
        "linux.personality.domain",
        "unknown value \"LINUX64\", expected one of \"LINUX\", \"LINUX32\"",
    );
}

// ---- namespaces ----

#[test]
fn duplicate_namespace() {
    let mut c = runc_spec();
    c["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "ipc"}));
    assert_err(
        &c,
        "linux.namespaces[6].type",
        "duplicate namespace \"ipc\"",
    );
}

#[test]
fn no_mount_namespace() {
    let mut c = runc_spec();
    c["linux"]["namespaces"] = namespaces(&[json!({"type": "pid"}), json!({"type": "uts"})]);
    assert_ok(&c);
    c["linux"]["rootfsPropagation"] = json!("rprivate");
    assert_err(&c, "linux.rootfsPropagation", "cannot be set without a mount namespace");
    c["linux"].as_object_mut().unwrap().remove("rootfsPropagation");
    c["linux"]["namespaces"] = namespaces(&[json!({"type": "pid"}), json!({"type": "user"})]);
    c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    assert_err(&c, "linux.namespaces", "a user namespace needs a mount namespace too");
    c["linux"].as_object_mut().unwrap().remove("namespaces");
    c.as_object_mut().unwrap().remove("hostname");
    c["linux"].as_object_mut().unwrap().remove("uidMappings");
    c["linux"].as_object_mut().unwrap().remove("gidMappings");
    assert_ok(&c);
}

#[test]
fn namespace_path_of_matching_type() {
    let mut c = runc_spec();
    c["linux"]["namespaces"][1] = json!({"type": "network", "path": "/proc/self/ns/net"});
    c["linux"]["namespaces"][2] = json!({"type": "ipc", "path": "/proc/self/ns/ipc"});
    assert_ok(&c);
}

#[test]
fn namespace_path_of_wrong_type() {
    let mut c = runc_spec();
    c["linux"]["namespaces"][1] = json!({"type": "network", "path": "/proc/self/ns/ipc"});
    let err = load_err(&c);
    assert_eq!(err.path, "linux.namespaces[1].path");
    assert_eq!(
        err.msg,
        "\"/proc/self/ns/ipc\" is an ipc namespace, not net"
    );
    c["linux"]["namespaces"][1] = json!({"type": "network", "path": "/proc/self/ns/uts"});
    assert_err(
        &c,
        "linux.namespaces[1].path",
        "is a uts namespace, not net",
    );
}

#[test]
fn namespace_path_missing_or_not_ns() {
    let mut c = runc_spec();
    c["linux"]["namespaces"][0] = json!({"type": "pid", "path": "/proc/self/ns/no-such"});
    assert_err(&c, "linux.namespaces[0].path", "No such file or directory");
    c["linux"]["namespaces"][0] = json!({"type": "pid", "path": "/etc/hostname"});
    assert_err(&c, "linux.namespaces[0].path", "is not a namespace file");
    c["linux"]["namespaces"][0] = json!({"type": "pid", "path": "/etc"});
    assert_err(&c, "linux.namespaces[0].path", "is not a namespace file");
}

#[test]
fn check_ns_file_all_types() {
    for (t, name) in [
        (LinuxNamespaceType::Mount, "mnt"),
        (LinuxNamespaceType::Cgroup, "cgroup"),
        (LinuxNamespaceType::Uts, "uts"),
        (LinuxNamespaceType::Ipc, "ipc"),
        (LinuxNamespaceType::User, "user"),
        (LinuxNamespaceType::Pid, "pid"),
        (LinuxNamespaceType::Network, "net"),
        (LinuxNamespaceType::Time, "time"),
    ] {
        let p = format!("/proc/self/ns/{name}");
        if Path::new(&p).exists() {
            validate::check_ns_file(Path::new(&p), t).unwrap();
        }
    }
}

// ---- uts ----

#[test]
fn hostname_needs_new_uts() {
    let mut c = runc_spec();
    c["linux"]["namespaces"].as_array_mut().unwrap().remove(3); // uts
    assert_err(&c, "hostname", "requires a new uts namespace");
    c["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "uts", "path": "/proc/self/ns/uts"}));
    assert_err(&c, "hostname", "requires a new uts namespace");
    c.as_object_mut().unwrap().remove("hostname");
    assert_ok(&c);
    c["domainname"] = json!("example.org");
    assert_err(&c, "domainname", "requires a new uts namespace");
}

#[test]
fn hostname_with_new_uts_ok() {
    let mut c = runc_spec();
    c["domainname"] = json!("example.org");
    assert_ok(&c);
}

// ---- user namespace ----

fn with_userns(mut c: Value) -> Value {
    c["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    c
}

#[test]
fn user_namespace_with_mappings_ok() {
    assert_ok(&with_userns(runc_spec()));
}

#[test]
fn mappings_need_user_namespace() {
    let mut c = runc_spec();
    c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
    assert_err(&c, "linux.uidMappings", "require a user namespace");
    let mut c = runc_spec();
    c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
    assert_err(&c, "linux.gidMappings", "require a user namespace");
}

#[test]
fn new_user_namespace_needs_mappings() {
    let mut c = with_userns(runc_spec());
    c["linux"].as_object_mut().unwrap().remove("uidMappings");
    assert_err(
        &c,
        "linux.uidMappings",
        "a new user namespace requires uid mappings",
    );
    let mut c = with_userns(runc_spec());
    c["linux"]["gidMappings"] = json!([]);
    assert_err(
        &c,
        "linux.gidMappings",
        "a new user namespace requires gid mappings",
    );
}

#[test]
fn mapping_size_zero() {
    let mut c = with_userns(runc_spec());
    c["linux"]["uidMappings"][0]["size"] = json!(0);
    assert_err(&c, "linux.uidMappings[0].size", "greater than zero");
}

#[test]
fn joined_user_namespace_without_mappings_ok() {
    let mut c = runc_spec();
    c["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user", "path": "/proc/self/ns/user"}));
    assert_ok(&c);
}

// ---- time namespace ----

#[test]
fn time_offsets_need_time_namespace() {
    let mut c = runc_spec();
    c["linux"]["timeOffsets"] = json!({"monotonic": {"secs": 10}});
    assert_err(
        &c,
        "linux.timeOffsets",
        "time offsets require a new time namespace",
    );
    c["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "time"}));
    assert_ok(&c);
    c["linux"]["timeOffsets"]["realtime"] = json!({"secs": 1});
    assert_err(
        &c,
        "linux.timeOffsets.realtime",
        "unknown clock \"realtime\"",
    );
}

// ---- sysctl ----

#[test]
fn sysctl_rules() {
    let ok = |key: &str, c: &Value| {
        let mut c = c.clone();
        c["linux"]["sysctl"] = json!({ key: "1" });
        assert_ok(&c);
    };
    let bad = |key: &str, c: &Value, msg: &str| {
        let mut c = c.clone();
        c["linux"]["sysctl"] = json!({ key: "1" });
        assert_err(&c, &format!("linux.sysctl.{key}"), msg);
    };
    let full = runc_spec();
    for k in [
        "net.ipv4.ip_forward",
        "kernel.msgmax",
        "kernel.shm_rmid_forced",
        "fs.mqueue.msg_max",
        "kernel.domainname",
    ] {
        ok(k, &full);
    }
    // Slash separator as sysctl(8).
    ok("net/ipv4/conf/eth0.100/rp_filter", &full);
    bad(
        "kernel.hostname",
        &full,
        "conflicts with the \"hostname\" field",
    );
    let mut no_hostname = full.clone();
    no_hostname.as_object_mut().unwrap().remove("hostname");
    ok("kernel.hostname", &no_hostname);
    bad(
        "vm.swappiness",
        &full,
        "sysctl \"vm.swappiness\" is not in a separate kernel namespace",
    );
    bad(
        "kernel.pid_max",
        &full,
        "is not in a separate kernel namespace",
    );

    // Without the namespaces.
    let mut host = full.clone();
    host.as_object_mut().unwrap().remove("hostname");
    host["linux"]["namespaces"] = json!([{"type": "mount"}]);
    bad(
        "net.ipv4.ip_forward",
        &host,
        "not allowed in the host's network namespace",
    );
    bad(
        "kernel.sem",
        &host,
        "not allowed in the host's ipc namespace",
    );
    bad(
        "fs.mqueue.queues_max",
        &host,
        "not allowed in the host's ipc namespace",
    );
    bad(
        "kernel.domainname",
        &host,
        "not allowed in the host's uts namespace",
    );

    // Joining the host's network namespace counts as the host's.
    let mut joined = full.clone();
    joined["linux"]["namespaces"][1] = json!({"type": "network", "path": "/proc/self/ns/net"});
    bad(
        "net.core.somaxconn",
        &joined,
        "not allowed in the host's network namespace",
    );
    // Joining an ipc namespace is enough for ipc sysctls.
    let mut joined = full.clone();
    joined["linux"]["namespaces"][2] = json!({"type": "ipc", "path": "/proc/self/ns/ipc"});
    ok("kernel.msgmnb", &joined);
}

#[test]
fn normalize_sysctl_keys() {
    assert_eq!(
        validate::normalize_sysctl("net.ipv4.ip_forward"),
        "net.ipv4.ip_forward"
    );
    assert_eq!(
        validate::normalize_sysctl("net/ipv4/conf/eno2.100/rp_filter"),
        "net.ipv4.conf.eno2/100.rp_filter"
    );
}

// ---- mounts and devices ----

#[test]
fn spec_scheduler_flag_names_load() {
    let mut c = runc_spec();
    c["process"]["scheduler"] = json!({"policy": "SCHED_OTHER", "flags": ["SCHED_FLAG_RESET_ON_FORK", "SCHED_FLAG_DL_OVERRUN"]});
    load_ok(&c);
}

#[test]
fn relative_mount_destination_is_accepted() {
    // config.md: relative is deprecated but allowed, taken relative to "/".
    let mut c = runc_spec();
    c["mounts"][3]["destination"] = json!("tmp");
    load_ok(&c);
}

#[test]
fn masked_and_readonly_paths_must_be_absolute() {
    let mut c = runc_spec();
    c["linux"]["maskedPaths"] = json!(["/proc/kcore", "secret"]);
    let err = load_err(&c);
    assert_eq!(err.path, "linux.maskedPaths[1]");
    let mut c = runc_spec();
    c["linux"]["readonlyPaths"] = json!(["ro"]);
    assert_eq!(load_err(&c).path, "linux.readonlyPaths[0]");
}

#[test]
fn empty_annotation_key_is_an_error() {
    let mut c = runc_spec();
    c["annotations"] = json!({"": "v"});
    assert_eq!(load_err(&c).path, "annotations");
}

#[test]
fn net_devices_and_memory_policy_are_checked() {
    let mut c = runc_spec();
    c["linux"]["netDevices"] = json!({"eth1": {"name": "in/valid"}});
    assert_eq!(load_err(&c).path, "linux.netDevices.eth1.name");
    c["linux"]["netDevices"] = json!({"eth1": {"name": "ceth1"}});
    c["linux"]["namespaces"] = json!([{"type": "mount"}, {"type": "uts"}]);
    assert_eq!(load_err(&c).path, "linux.netDevices");
    let mut c = runc_spec();
    c["linux"]["memoryPolicy"] = json!({"mode": "MPOL_BIND"});
    assert_eq!(load_err(&c).path, "linux.memoryPolicy.nodes");
    c["linux"]["memoryPolicy"] = json!({"mode": "MPOL_NOPE", "nodes": "0"});
    assert_eq!(load_err(&c).path, "linux.memoryPolicy.mode");
    c["linux"]["memoryPolicy"] = json!({"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_NOPE"]});
    assert_eq!(load_err(&c).path, "linux.memoryPolicy.flags[0]");
}

#[test]
fn intel_rdt_without_resctrl_is_an_error() {
    let mut c = runc_spec();
    c["linux"]["intelRdt"] = json!({"closID": "x"});
    assert_eq!(load_err(&c).path, "linux.intelRdt");
}

#[test]
fn devices() {
    let mut c = runc_spec();
    c["linux"]["devices"] = json!([
        {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438},
        {"path": "/dev/loop9", "type": "b", "major": 7, "minor": 9},
        {"path": "/dev/ttyX", "type": "u", "major": 4, "minor": 70},
        {"path": "/dev/myfifo", "type": "p"}
    ]);
    assert_ok(&c);
    c["linux"]["devices"][1]["type"] = json!("a");
    assert_err(&c, "linux.devices[1].type", "\"a\" is not a device type");
    c["linux"]["devices"][1]["type"] = json!("x");
    assert_err(&c, "linux.devices[1].type", "unknown device type \"x\"");
    c["linux"]["devices"][1]["type"] = json!("b");
    c["linux"]["devices"][2]["path"] = json!("dev/ttyX");
    assert_err(
        &c,
        "linux.devices[2].path",
        "\"dev/ttyX\" is not an absolute path",
    );
}

#[test]
fn cgroup_device_rule_type_a_is_fine() {
    let mut c = runc_spec();
    c["linux"]["resources"]["devices"] = json!([{"allow": false, "type": "a", "access": "rwm"}]);
    assert_ok(&c);
}

// ---- hooks ----

#[test]
fn hooks_validated() {
    let mut c = runc_spec();
    c["hooks"] = json!({
        "createRuntime": [{"path": "/bin/true", "timeout": 5}],
        "poststop": [{"path": "/bin/true"}, {"path": "bin/false"}]
    });
    assert_err(
        &c,
        "hooks.poststop[1].path",
        "\"bin/false\" is not an absolute path",
    );
    c["hooks"]["poststop"][1]["path"] = json!("/bin/false");
    assert_ok(&c);
    c["hooks"]["createRuntime"][0]["timeout"] = json!(0);
    assert_err(
        &c,
        "hooks.createRuntime[0].timeout",
        "must be greater than zero",
    );
}
