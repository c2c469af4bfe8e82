//! process and personality.

use super::*;

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
