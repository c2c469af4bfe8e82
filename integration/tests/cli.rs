//! The command line: global flags, option order, default root, versions
//! and config compatibility.

use berth_integration::prelude::*;

#[test]
fn version_prints_version_and_spec() {
    let env = Env::new("version");
    let out = env.berth(&["--version"]).ok();
    let text = out.stdout.to_lowercase();
    assert!(text.contains("spec"), "no spec version: {out}");
    let has_ver = text.split(|c: char| !(c.is_ascii_digit() || c == '.')).any(|w| w.matches('.').count() >= 2 && w.starts_with(|c: char| c.is_ascii_digit()));
    assert!(has_ver, "no x.y.z version: {out}");
    assert!(out.stdout.contains("1."), "spec version 1.x expected: {out}");
    // runc's layout, which dockerd parses for `docker info`: "NAME version
    // X" first, then "commit: ID" (the git commit; `unknown` outside git, or
    // what a packager put in BERTH_COMMIT).
    let lines = out.lines();
    assert!(lines[0].starts_with("berth version "), "{out}");
    let commit = lines.iter().find_map(|l| l.strip_prefix("commit: ")).unwrap_or_else(|| panic!("no commit: line: {out}"));
    assert!(!commit.is_empty() && !commit.contains(char::is_whitespace), "commit: {commit:?}");
    assert!(lines.iter().any(|l| l.starts_with("spec: 1.")), "{out}");
}

#[test]
fn fatal_errors_are_marked_as_errors() {
    // as runc's level=error: `berth: error: MESSAGE` on stderr
    let env = Env::new("error_marked");
    let out = env.berth(&["state", &env.id]);
    out.exits_with(1);
    assert_eq!(out.stderr, format!("berth: error: container \"{}\" does not exist\n", env.id), "{out}");
    // --log-format json keeps its lines (and stderr still says it)
    let log = env.file("log.json");
    let out = env.berth(&["--log", log.to_str().unwrap(), "--log-format", "json", "state", &env.id]);
    out.exits_with(1);
    assert!(out.stderr.starts_with("berth: error: container"), "{out}");
    let v: Value = serde_json::from_str(fs::read_to_string(&log).unwrap().trim()).unwrap();
    assert_eq!((v["level"].as_str(), v["msg"].as_str()), (Some("error"), Some(&*format!("container \"{}\" does not exist", env.id))));
    // a --log that cannot be opened: a warning, then the error once
    let out = env.berth(&["--log", "/nonexistent-berth-dir/log.json", "state", &env.id]);
    out.exits_with(1);
    assert_eq!(out.stderr.matches("berth: error: container").count(), 1, "{out}");
    assert!(out.stderr.starts_with("berth: warning: --log /nonexistent-berth-dir/log.json"), "{out}");
}

#[test]
fn log_json_records_errors() {
    let env = Env::new("log_json");
    fs::write(env.bundle_path().join("config.json"), "{ broken").unwrap();
    let log = env.file("log.json");
    let out = env.berth(&["--log", log.to_str().unwrap(), "--log-format", "json", "create", "--bundle", &env.bundle_str(), &env.id]);
    out.exits_with(1);
    let text = fs::read_to_string(&log).unwrap_or_else(|e| panic!("no log file ({e}):\n{out}"));
    let last = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_else(|| panic!("empty log:\n{out}"));
    let v: Value = serde_json::from_str(last).unwrap_or_else(|e| panic!("last log line not JSON ({e}): {last}"));
    assert_eq!(v["level"], "error", "{v}");
    assert!(v["msg"].as_str().is_some_and(|m| m.contains("config.json")), "{v}");
    assert!(v["time"].is_string(), "{v}");
    assert_no_leftovers(&env);
}

#[test]
fn log_text_records_errors() {
    let env = Env::new("log_text");
    let log = env.file("log.txt");
    let nowhere = env.file("no-bundle");
    let out = env.berth(&["--log", log.to_str().unwrap(), "--log-format", "text", "create", "--bundle", nowhere.to_str().unwrap(), &env.id]);
    out.exits_with(1);
    let text = fs::read_to_string(&log).unwrap_or_default();
    assert!(text.contains(nowhere.to_str().unwrap()), "text log lacks the error: {text:?}\n{out}");
    assert_no_leftovers(&env);
}

#[test]
fn debug_flag_is_accepted() {
    let env = Env::sh("debug_flag", "echo dbg");
    let log = env.file("debug.log");
    let out = env.berth(&["--debug", "--log", log.to_str().unwrap(), "run", "--bundle", &env.bundle_str(), &env.id]).ok();
    assert_eq!(out.stdout.trim(), "dbg", "{out}");
    assert_no_leftovers(&env);
}

#[test]
fn default_root_is_run_berth() {
    let env = Env::sh("default_root", SLEEPER);
    env.berth_raw(&["create", "--bundle", &env.bundle_str(), &env.id]).ok();
    assert!(Path::new("/run/berth").join(&env.id).is_dir(), "no state dir in /run/berth");
    let st = env.berth_raw(&["state", &env.id]).ok().json();
    assert_eq!(st["status"], "created", "{st}");
    env.berth_raw(&["delete", "--force", &env.id]).ok();
    assert_no_leftovers(&env);
}

#[test]
fn options_after_container_id() {
    let env = Env::sh("opts_after_id", SLEEPER);
    let pf = env.file("pid");
    env.berth(&["create", &env.id, "--bundle", &env.bundle_str(), "--pid-file", pf.to_str().unwrap()]).ok();
    assert_eq!(fs::read_to_string(&pf).unwrap().trim(), env.pid().to_string());
    env.berth(&["start", &env.id]).ok();
    env.berth(&["kill", &env.id, "KILL", "--all"]).ok();
    env.wait_status("stopped", SHORT);
    env.berth(&["delete", &env.id, "--force"]).ok();
    assert_no_leftovers(&env);
}

#[test]
fn short_options() {
    let env = Env::sh("short_opts", SLEEPER);
    env.berth(&["create", "-b", &env.bundle_str(), &env.id]).ok();
    env.berth(&["start", &env.id]).ok();
    assert_eq!(env.berth(&["list", "-q"]).ok().lines(), vec![env.id.clone()]);
    env.berth(&["kill", "-a", &env.id, "9"]).ok();
    env.wait_status("stopped", SHORT);
    env.berth(&["delete", "-f", &env.id]).ok();
    assert_no_leftovers(&env);
}

#[test]
fn list_empty_root() {
    let env = Env::new("list_empty");
    let q = env.berth(&["list", "-q"]).ok();
    assert_eq!(q.stdout.trim(), "", "{q}");
    let js = env.berth(&["list", "--format", "json"]).ok().json();
    assert_eq!(js, json!([]), "an empty list is an empty JSON array");
}

fn runs_with_version(name: &str, version: &str) {
    let mut env = Env::sh(name, "echo ok");
    env.set("/ociVersion", json!(version));
    let out = env.run_ok();
    assert_eq!(out.stdout.trim(), "ok", "{out}");
    assert_no_leftovers(&env);
}

#[test]
fn oci_version_1_0_0() {
    runs_with_version("oci_1_0_0", "1.0.0");
}

#[test]
fn oci_version_1_0_2() {
    runs_with_version("oci_1_0_2", "1.0.2");
}

#[test]
fn oci_version_1_1_0() {
    runs_with_version("oci_1_1_0", "1.1.0");
}

#[test]
fn oci_version_1_2_1() {
    runs_with_version("oci_1_2_1", "1.2.1");
}

#[test]
fn oci_version_1_3_0() {
    runs_with_version("oci_1_3_0", "1.3.0");
}

#[test]
fn unknown_fields_are_ignored() {
    let mut env = Env::sh("unknown_fields", "echo ok");
    env.set("/someFutureField", json!({"x": 1}));
    env.set("/process/futureProcessField", json!(true));
    env.set("/linux/futureLinuxField", json!([1, 2]));
    env.set("/root/futureRootField", json!("y"));
    let out = env.run_ok();
    assert_eq!(out.stdout.trim(), "ok", "{out}");
    assert_no_leftovers(&env);
}

#[test]
fn unknown_capabilities_are_ignored() {
    let mut env = Env::sh("unknown_caps", "grep CapBnd /proc/self/status");
    let caps = json!(["CAP_CHOWN", "CAP_NOT_A_REAL_CAP", "CAP_KILL"]);
    env.set(
        "/process/capabilities",
        json!({"bounding": caps, "effective": caps, "permitted": caps, "inheritable": [], "ambient": []}),
    );
    let out = env.run_ok();
    // CAP_CHOWN (bit 0) and CAP_KILL (bit 5): 0x21
    assert_eq!(squash(&out.stdout), "CapBnd: 0000000000000021", "{out}");
    assert_no_leftovers(&env);
}

#[test]
fn slow_paths_variable_selects_the_slow_twins() {
    // scripts/test.sh runs the runtime's tests again with
    // BERTH_SLOW_PATHS=all; berth must see it (runtime/src/fast.rs).
    let env = Env::sh("slow_twins", "echo ran-slow");
    let out = std::process::Command::new(berth_bin())
        .env("BERTH_SLOW_PATHS", "cli,net")
        .args(["--root", env.root.to_str().unwrap(), "--debug", "run", "--bundle", &env.bundle_str(), &env.id])
        .output()
        .expect("run berth");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && stdout.contains("ran-slow"), "{stdout}\n{stderr}");
    assert!(stderr.contains("slow twins of the fast paths (BERTH_SLOW_PATHS): cli, net"), "{stderr}");
    assert_no_leftovers(&env);
}
