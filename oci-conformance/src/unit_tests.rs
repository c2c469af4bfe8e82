//! Unit tests of the runner's pure logic (the suite itself needs root and
//! runtimes: it runs through scripts/conformance.sh).

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::bundle::caps_from_mask;
use crate::ctx::{set_pointer, Kv};
use crate::report::{self, Outcome, Results};
use crate::runtime::{version_key, KillForm, Runtime};
use crate::suite::{self, util};

fn rt(name: &str, oci: &str) -> Runtime {
    Runtime {
        name: name.into(),
        path: "/bin/true".into(),
        version: "v".into(),
        oci_version: oci.into(),
        kill_form: KillForm::Positional,
        force_delete: true,
        broken: None,
    }
}

#[test]
fn kv_parses_payload_lines() {
    let kv = Kv::parse("pid=1\nenv=A=b\nenv=C=\nnoise\narg=x y\n");
    assert_eq!(kv.get("pid"), Some("1"));
    assert_eq!(kv.all("env"), ["A=b", "C="]);
    assert_eq!(kv.get("arg"), Some("x y"));
    assert!(kv.req("missing").is_err());
}

#[test]
fn set_pointer_creates_objects_and_indexes_arrays() {
    let mut v = json!({"linux": {"namespaces": [{"type": "pid"}]}});
    set_pointer(&mut v, "/process/user/uid", json!(5));
    set_pointer(&mut v, "/linux/namespaces/0/path", json!("/p"));
    assert_eq!(v["process"]["user"]["uid"], 5);
    assert_eq!(v["linux"]["namespaces"][0], json!({"type": "pid", "path": "/p"}));
}

#[test]
fn versions_compare_numerically() {
    assert!(version_key("1.0.2") < version_key("1.1.0"));
    assert!(version_key("1.10.0") > version_key("1.2.0"));
    assert!(rt("x", "1.1.0").older_than("1.2.0"));
    assert!(!rt("x", "1.3.0").older_than("1.2.0"));
}

#[test]
fn kill_forms() {
    let mut r = rt("x", "1.3.0");
    assert_eq!(r.kill_args("c", "KILL"), ["kill", "c", "KILL"]);
    r.kill_form = KillForm::SignalFlag;
    assert_eq!(r.kill_args("c", "KILL"), ["kill", "--signal", "KILL", "c"]);
    assert_eq!(r.args("/r".as_ref(), &["state", "c"]), ["--root", "/r", "state", "c"]);
}

#[test]
fn capability_masks() {
    assert_eq!(caps_from_mask("0000000000000001"), ["CAP_CHOWN"]);
    assert_eq!(caps_from_mask("0000000000002020"), ["CAP_KILL", "CAP_NET_RAW"]);
    assert!(caps_from_mask("0").is_empty());
}

#[test]
fn mountinfo_lines() {
    let kv = Kv::parse(
        "mi=90 80 0:50 / / rw,relatime shared:4 master:2 - tmpfs tmpfs rw,mode=755\n\
         mi=91 90 0:51 / /oc-m ro,nosuid,noatime - tmpfs tmpfs rw,sync,size=1024k\n",
    );
    let root = util::mount_at(&kv, "/").map_err(|_| "no /").unwrap();
    assert_eq!(root.optional, ["shared:4", "master:2"]);
    let m = util::mount_at(&kv, "/oc-m").map_err(|_| "no /oc-m").unwrap();
    assert!(m.has("ro") && m.has("noatime") && !m.has("nodev"));
    assert!(m.has_super("sync") && m.has_super("size=1024k"));
    assert_eq!(m.propagation(), "private");
    assert!(util::mount_at(&kv, "/nope").is_err());
}

#[test]
fn requirement_names_are_unique_and_well_formed() {
    let all = suite::all();
    let mut names: Vec<&str> = all.iter().map(|t| t.name.as_str()).collect();
    let n = names.len();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), n, "duplicate requirement names");
    for t in &all {
        let parts: Vec<&str> = t.name.split('/').collect();
        assert_eq!(parts.len(), 3, "{}: not FILE/SECTION/REQUIREMENT", t.name);
        assert!(
            ["config.md", "config-linux.md", "runtime.md", "runtime-linux.md"].contains(&parts[0]),
            "{}",
            t.name
        );
        assert!(parts.iter().all(|p| !p.is_empty() && !p.contains(' ')), "{}", t.name);
    }
}

#[test]
fn reports_count_and_scrub() {
    let tests: Vec<suite::Test> = suite::all().into_iter().take(3).collect();
    let rts = vec![Arc::new(rt("a", "1.3.0")), Arc::new(rt("b", "1.0.2"))];
    let mut r = Results::new(rts, tests);
    let d = Duration::ZERO;
    r.cells[0][0] = Some((Outcome::Pass, d));
    r.cells[1][0] = Some((Outcome::Fail("in /tmp/w/t-0-1 oc-ab12-0t1-0".into()), d));
    r.cells[2][0] = Some((Outcome::Skip("host lacks x".into()), d));
    r.cells[0][1] = Some((Outcome::Pass, d));
    let t = r.totals(0);
    assert_eq!((t.pass, t.fail, t.skip), (1, 1, 1));
    assert!(r.any_fail());
    let sum = report::summary(&r);
    assert!(
        sum.lines().all(|l| l.starts_with('#')),
        "summary lines are TAP comments"
    );
    assert!(sum.contains("host lacks x"));
    let scrub = vec![
        ("/tmp/w".to_string(), "$WORK".to_string()),
        ("oc-ab12-".to_string(), "oc-RUN-".to_string()),
    ];
    let md = report::markdown(&r, &["note".into()], "cmd", &scrub);
    assert!(md.contains("$WORK/t-0-1 oc-RUN-0t1-0") && !md.contains("/tmp/w"));
    assert!(md.contains("| **FAIL** |"));
}
