//! Loading a bundle: files and directories, ociVersion, the pre-filter and
//! serde errors, root.

use super::*;

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
