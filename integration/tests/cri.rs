//! berth under containerd's CRI plugin, driven as kubelet drives it
//! (runtime.v1 over containerd's socket), on containerd 1.6 and 2.1, with
//! both handlers: `berth` (berth's shim) and `berth-runc-shim` (runc's shim
//! with berth as its BinaryName). Pods use the host network; the images are
//! made here. Every test ends with no pod, container, shim, mount, cgroup or
//! berth state left.

use berth_integration::containerd::Version;
use berth_integration::cri::api::*;
use berth_integration::cri::{
    runtimes_v2, runtimes_v3, spec, Cri, Handler, CALL_TIMEOUT, PAUSE_MARKER, SLEEPER,
};
use berth_integration::prelude::*;

berth_integration::each_cri!(
    pod_with_two_containers,
    exec_sync,
    shared_pid_namespace,
    host_pid_namespace
);
berth_integration::each_containerd!(image_pulls_refused);

/// A pod of two containers through its whole life: logs, ContainerStats,
/// UpdateContainerResources, StopContainer, StopPodSandbox,
/// RemovePodSandbox.
fn pod_with_two_containers(v: Version, h: Handler) {
    let cri = Cri::start(v, h, "pod");
    let pod = cri.run_pod("two", NamespaceMode::Container);
    let a = cri.run_container(&pod, "a", &format!("echo a-up; {SLEEPER}"));
    let b = cri.run_container(&pod, "b", &format!("echo b-up; {SLEEPER}"));
    cri.wait_log(&pod, "a", "a-up");
    cri.wait_log(&pod, "b", "b-up");
    for id in [&a, &b] {
        assert_eq!(
            cri.container_status(id).state(),
            ContainerState::ContainerRunning,
            "{id}"
        );
    }
    assert_eq!(cri.pod_status(&pod).state(), PodSandboxState::SandboxReady);

    // ContainerStats: the container's cgroup figures.
    let mut c = cri.runtime();
    let req = ContainerStatsRequest {
        container_id: a.clone(),
    };
    let stats = cri
        .must(
            "ContainerStats",
            async move { c.container_stats(req).await },
        )
        .stats
        .expect("no stats");
    assert_eq!(
        stats.attributes.as_ref().map(|a| a.id.as_str()),
        Some(a.as_str()),
        "{stats:?}"
    );
    let cpu = stats
        .cpu
        .as_ref()
        .and_then(|c| c.usage_core_nano_seconds.as_ref())
        .map(|v| v.value);
    assert!(cpu.unwrap_or(0) > 0, "no CPU time: {stats:?}");
    let mem = stats
        .memory
        .as_ref()
        .and_then(|m| m.working_set_bytes.as_ref())
        .map(|v| v.value);
    assert!(mem.unwrap_or(0) > 0, "no working set: {stats:?}");

    // UpdateContainerResources reaches the cgroup.
    assert_eq!(
        cri.cgroup_file(&a, "memory.limit_in_bytes").as_deref(),
        Some("134217728")
    );
    let resources = LinuxContainerResources {
        memory_limit_in_bytes: 64 << 20,
        cpu_shares: 512,
        cpu_period: 100_000,
        cpu_quota: 50_000,
        ..Default::default()
    };
    let req = UpdateContainerResourcesRequest {
        container_id: a.clone(),
        linux: Some(resources),
        ..Default::default()
    };
    let mut c = cri.runtime();
    cri.must("UpdateContainerResources", async move {
        c.update_container_resources(req).await
    });
    for (file, want) in [
        ("memory.limit_in_bytes", "67108864"),
        ("cpu.shares", "512"),
        ("cpu.cfs_quota_us", "50000"),
    ] {
        assert_eq!(
            cri.cgroup_file(&a, file).as_deref(),
            Some(want),
            "{file} of {a}"
        );
    }

    // StopContainer: SIGTERM, and the script's exit status 0.
    let req = StopContainerRequest {
        container_id: b.clone(),
        timeout: 10,
    };
    let mut c = cri.runtime();
    cri.must("StopContainer", async move { c.stop_container(req).await });
    let st = cri.container_status(&b);
    assert_eq!(
        (st.state(), st.exit_code),
        (ContainerState::ContainerExited, 0),
        "{st:?}"
    );

    cri.stop_pod(&pod);
    assert_eq!(
        cri.pod_status(&pod).state(),
        PodSandboxState::SandboxNotready
    );
    assert_eq!(
        cri.container_status(&a).state(),
        ContainerState::ContainerExited
    );
    cri.remove_pod(&pod);
    cri.assert_clean();
}

/// ExecSync (kubectl exec without a terminal): output, exit code, and the
/// process runs in the container (its files, its pid namespace).
fn exec_sync(v: Version, h: Handler) {
    let cri = Cri::start(v, h, "exec");
    let pod = cri.run_pod("exec", NamespaceMode::Container);
    let a = cri.run_container(
        &pod,
        "a",
        &format!("echo a-data > /tmp/mark; echo a-up; {SLEEPER}"),
    );
    cri.wait_log(&pod, "a", "a-up");
    let r = cri.exec_sync(&a, &["sh", "-c", "echo out-$$; echo err >&2; exit 3"]);
    let out = String::from_utf8_lossy(&r.stdout);
    assert_eq!(r.exit_code, 3, "{}", show(&r));
    assert!(
        out.starts_with("out-") && out.trim() != "out-1",
        "{}",
        show(&r)
    );
    assert_eq!(String::from_utf8_lossy(&r.stderr), "err\n", "{}", show(&r));
    let r = cri.exec_sync(
        &a,
        &[
            "sh",
            "-c",
            "cat /tmp/mark; readlink /proc/1/ns/pid; readlink /proc/self/ns/pid",
        ],
    );
    let out = String::from_utf8_lossy(&r.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        r.exit_code == 0 && lines.len() == 3 && lines[0] == "a-data" && lines[1] == lines[2],
        "{}",
        show(&r)
    );
    cri.stop_pod(&pod);
    cri.remove_pod(&pod);
    cri.assert_clean();
}

/// shareProcessNamespace: the containers and the sandbox in one pid
/// namespace, the sandbox's process its pid 1.
fn shared_pid_namespace(v: Version, h: Handler) {
    let cri = Cri::start(v, h, "shpid");
    let pod = cri.run_pod("shared", NamespaceMode::Pod);
    cri.run_container(
        &pod,
        "a",
        "echo a-up; trap 'kill $!; exit 0' TERM; sleep 1001 & wait",
    );
    cri.wait_log(&pod, "a", "a-up");
    let b = cri.run_container(
        &pod,
        "b",
        &format!("echo pid1=$(tr '\\0' ' ' </proc/1/cmdline); ps -o args; echo b-up; {SLEEPER}"),
    );
    let log = cri.wait_log(&pod, "b", "b-up");
    assert!(
        log.contains("pid1=sh -c") && log.contains(PAUSE_MARKER),
        "pid 1 is not the sandbox's:\n{log}"
    );
    assert!(
        log.contains("sleep 1001"),
        "b does not see a's processes:\n{log}"
    );
    let r = cri.exec_sync(&b, &["ps", "-o", "args"]);
    let ps = String::from_utf8_lossy(&r.stdout);
    assert!(
        r.exit_code == 0 && ps.contains("sleep 1001") && ps.contains(PAUSE_MARKER),
        "{}",
        show(&r)
    );
    cri.stop_pod(&pod);
    cri.remove_pod(&pod);
    cri.assert_clean();
}

/// hostPID: the container in the host's pid namespace.
fn host_pid_namespace(v: Version, h: Handler) {
    let cri = Cri::start(v, h, "hostpid");
    let pod = cri.run_pod("hostpid", NamespaceMode::Node);
    let a = cri.run_container(&pod, "a", &format!("echo self=$$; {SLEEPER}"));
    let log = cri.wait_log(&pod, "a", "self=");
    let pid: i32 = log
        .split("self=")
        .nth(1)
        .and_then(|s| s.lines().next())
        .and_then(|s| s.trim().parse().ok())
        .expect(&log);
    assert_ne!(
        pid, 1,
        "the container has a pid namespace of its own:\n{log}"
    );
    assert_eq!(
        ns_link(&pid.to_string(), "pid"),
        ns_link("self", "pid"),
        "container pid {pid}"
    );
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    assert!(
        String::from_utf8_lossy(&cmdline).contains("echo self="),
        "host pid {pid} is not the container's shell"
    );
    // An exec'd process sees the host's pid 1.
    let r = cri.exec_sync(&a, &["cat", "/proc/1/cmdline"]);
    assert_eq!(
        (r.exit_code, r.stdout.clone()),
        (0, fs::read("/proc/1/cmdline").unwrap()),
        "{}",
        show(&r)
    );
    cri.stop_pod(&pod);
    cri.remove_pod(&pod);
    cri.assert_clean();
}

/// The harness's own guarantee: a pull goes nowhere (containerd's proxy is
/// a closed local port), so no test reaches a registry.
fn image_pulls_refused(v: Version) {
    let cri = Cri::start(v, Handler::RuncShim, "pull");
    let mut c = cri.images();
    let req = PullImageRequest {
        image: Some(spec("docker.io/library/busybox:1.36")),
        ..Default::default()
    };
    let r = cri.call(
        "PullImage",
        async move { c.pull_image(req).await },
        CALL_TIMEOUT,
    );
    let err = r.expect_err("a remote image was pulled");
    assert!(
        err.contains("127.0.0.1:9") || err.contains("proxy"),
        "{err}"
    );
}

/// The README's config.toml snippets are the handlers these tests run.
#[test]
fn readme_shows_the_tested_handlers() {
    let readme =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md")).unwrap();
    for (version, snippet) in [
        ("1.6", runtimes_v2("/usr/local/bin/berth", None)),
        ("2.x", runtimes_v3("/usr/local/bin/berth", None)),
    ] {
        assert!(
            readme.contains(&format!("```toml\n{snippet}```\n")),
            "README.md lacks the containerd {version} snippet:\n{snippet}"
        );
    }
}

/// An ExecSync answer, readable.
fn show(r: &ExecSyncResponse) -> String {
    format!(
        "exit code {}, stdout {:?}, stderr {:?}",
        r.exit_code,
        String::from_utf8_lossy(&r.stdout),
        String::from_utf8_lossy(&r.stderr)
    )
}
