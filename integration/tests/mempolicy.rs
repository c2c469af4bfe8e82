//! `linux.memoryPolicy`: the NUMA policy the container's process runs
//! with, read back from /proc/self/numa_maps (which shows the task's
//! policy on every mapping without one of its own), and the errors for
//! bad values. Works on a one-node host: node 0 is always there.

use berth_integration::prelude::*;

/// The policy column of the container's first numa_maps line.
const SHOW: &str = "head -n 1 /proc/self/numa_maps | cut -d' ' -f2";

fn with_policy(env: &mut Env, policy: Value) {
    env.set("/ociVersion", json!("1.3.0"));
    env.set("/linux/memoryPolicy", policy);
}

/// A node number that is not online on this host.
fn offline_node() -> u32 {
    let online = fs::read_to_string("/sys/devices/system/node/online").unwrap_or_else(|_| "0".into());
    let max = online
        .trim()
        .split([',', '-'])
        .filter_map(|n| n.parse::<u32>().ok())
        .max()
        .unwrap_or(0);
    max + 1
}

#[test]
fn default_is_default() {
    let env = Env::sh("mempolicy_none", SHOW);
    assert_eq!(env.run_ok().stdout.trim(), "default");
    assert_no_leftovers(&env);
}

#[test]
fn bind_to_node_0() {
    let mut env = Env::sh("mempolicy_bind", SHOW);
    with_policy(&mut env, json!({"mode": "MPOL_BIND", "nodes": "0"}));
    assert_eq!(env.run_ok().stdout.trim(), "bind:0");
    assert_no_leftovers(&env);
}

#[test]
fn interleave_with_static_nodes() {
    let mut env = Env::sh("mempolicy_interleave", SHOW);
    with_policy(&mut env, json!({"mode": "MPOL_INTERLEAVE", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES"]}));
    assert_eq!(env.run_ok().stdout.trim(), "interleave=static:0");
    assert_no_leftovers(&env);
}

#[test]
fn preferred_relative_and_local() {
    let mut env = Env::sh("mempolicy_preferred", SHOW);
    with_policy(&mut env, json!({"mode": "MPOL_PREFERRED", "nodes": "0", "flags": ["MPOL_F_RELATIVE_NODES"]}));
    assert_eq!(env.run_ok().stdout.trim(), "prefer=relative:0");
    assert_no_leftovers(&env);
    let mut env = Env::sh("mempolicy_local", SHOW);
    with_policy(&mut env, json!({"mode": "MPOL_LOCAL"}));
    assert_eq!(env.run_ok().stdout.trim(), "local");
    assert_no_leftovers(&env);
}

#[test]
fn policy_is_inherited_by_children_of_the_process() {
    let mut env = Env::sh("mempolicy_child", &format!("sh -c \"{SHOW}\""));
    with_policy(&mut env, json!({"mode": "MPOL_BIND", "nodes": "0"}));
    assert_eq!(env.run_ok().stdout.trim(), "bind:0");
    assert_no_leftovers(&env);
}

#[test]
fn a_node_that_is_not_online_fails_create() {
    let node = offline_node();
    let mut env = Env::sh("mempolicy_offline", SHOW);
    with_policy(&mut env, json!({"mode": "MPOL_BIND", "nodes": node.to_string()}));
    env.try_create().fails_with(&[&format!("linux.memoryPolicy: set_mempolicy MPOL_BIND nodes \"{node}\"")]);
    assert_no_leftovers(&env);
}

#[test]
fn bad_values_are_config_errors_naming_the_field() {
    for (policy, needle) in [
        (json!({"mode": "MPOL_BOGUS"}), "config.json: linux.memoryPolicy.mode: unknown value \"MPOL_BOGUS\""),
        (json!({"nodes": "0"}), "config.json: linux.memoryPolicy.mode: required field is missing"),
        (json!({"mode": "MPOL_BIND"}), "config.json: linux.memoryPolicy.nodes: MPOL_BIND needs at least one node"),
        (json!({"mode": "MPOL_BIND", "nodes": "0-x"}), "config.json: linux.memoryPolicy.nodes: \"0-x\""),
        (json!({"mode": "MPOL_LOCAL", "nodes": "0"}), "config.json: linux.memoryPolicy.nodes: MPOL_LOCAL takes no nodes"),
        (json!({"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_NOPE"]}), "config.json: linux.memoryPolicy.flags[0]"),
        (
            json!({"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES", "MPOL_F_RELATIVE_NODES"]}),
            "config.json: linux.memoryPolicy.flags: MPOL_F_STATIC_NODES and MPOL_F_RELATIVE_NODES exclude each other",
        ),
    ] {
        let mut env = Env::new("mempolicy_bad");
        with_policy(&mut env, policy);
        env.try_create().fails_with(&[needle]);
        assert_no_leftovers(&env);
    }
}

#[test]
fn exec_processes_get_the_policy_too() {
    let mut env = Env::sh("mempolicy_exec", SLEEPER);
    with_policy(&mut env, json!({"mode": "MPOL_BIND", "nodes": "0"}));
    env.run_detached();
    let out = env.berth(&["exec", &env.id, "sh", "-c", SHOW]).ok();
    assert_eq!(out.stdout.trim(), "bind:0", "{out}");
    env.kill("TERM").ok();
    env.wait_status("stopped", SHORT);
    env.delete().ok();
    assert_no_leftovers(&env);
}
