//! vm-cri: a small Kubernetes CRI (runtime.v1) client for the systemd VM
//! (scripts/systemd-vm/cases/50-cri.sh and bench/'s CRI row). It talks to
//! a containerd that is already running (the VM's system service) on the
//! socket given with `--socket`; it starts nothing of its own.
//!
//! ```text
//! vm-cri pod   --handler H --image IMG --sandbox-image IMG [--check CMD]
//! vm-cri bench --handler H[,H2...] --n N [--warmup W] --image IMG [--container true|sleeper]
//! common: [--socket PATH] [--timeout SECS] [--cgroup-parent NAME]
//! ```
//!
//! `pod` goes through a pod's life the way kubelet drives it with the
//! systemd cgroup driver: RunPodSandbox with the cgroup parent kubelet
//! sends (`kubepods-besteffort-pod<uid with underscores>.slice`),
//! CreateContainer and StartContainer of a sleeper, ContainerStatus
//! (verbose: the pid and the cgroupsPath containerd gave the runtime, and
//! the pid's /proc/PID/cgroup on this host), ExecSync `cat
//! /proc/self/cgroup`, ContainerStats, the optional `--check` command (`sh
//! -c CMD` with VM_CRI_* variables naming the pod while it runs), then
//! StopContainer, RemoveContainer, StopPodSandbox, RemovePodSandbox. One
//! line per step; every call is bounded (`--timeout`, default 60 s) and a
//! failure names the call; exit 0 only if every step went well. After a
//! failure the pod is stopped and removed (best effort) before exiting 1.
//!
//! `bench` times RunPodSandbox + CreateContainer + StartContainer of a
//! one-container pod, round-robin over the handlers (the first handler of
//! a round changes every round), and removes each pod (and stops its
//! slice, as kubelet does, unless `--cgroup-parent` was given) outside the
//! timed part; it prints every round's milliseconds and, per handler, the
//! median, p10 and p90 of the rounds after the warm-up.

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use berth_integration::cri::api::image_service_client::ImageServiceClient;
use berth_integration::cri::api::runtime_service_client::RuntimeServiceClient;
use berth_integration::cri::api::*;
use berth_integration::cri::{bounded_call, connect_unix, spec, SLEEPER};
use tonic::transport::Channel;

const USAGE: &str = "usage:
  vm-cri pod   --handler H --image IMG --sandbox-image IMG [--check CMD]
  vm-cri bench --handler H[,H2...] --n N [--warmup W] --image IMG [--container true|sleeper]
common options: [--socket PATH (default /run/containerd/containerd.sock)]
                [--timeout SECS (each CRI call; default 60)] [--cgroup-parent NAME]";

/// The command line.
struct Opts {
    socket: PathBuf,
    handlers: Vec<String>,
    image: String,
    sandbox_image: Option<String>,
    timeout: Duration,
    n: usize,
    warmup: usize,
    /// The container runs /bin/true instead of a sleeper (bench).
    run_true: bool,
    check: Option<String>,
    cgroup_parent: Option<String>,
}

fn parse(args: &[String]) -> Result<Opts, String> {
    let mut o = Opts {
        socket: PathBuf::from("/run/containerd/containerd.sock"),
        handlers: Vec::new(),
        image: String::new(),
        sandbox_image: None,
        timeout: Duration::from_secs(60),
        n: 0,
        warmup: 0,
        run_true: false,
        check: None,
        cgroup_parent: None,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        let number = |v: String| {
            v.parse::<usize>()
                .map_err(|_| format!("{flag}: not a number: {v}"))
        };
        match flag.as_str() {
            "--socket" => o.socket = PathBuf::from(value()?),
            "--handler" => o.handlers.extend(
                value()?
                    .split(',')
                    .filter(|h| !h.is_empty())
                    .map(String::from),
            ),
            "--image" => o.image = value()?,
            "--sandbox-image" => o.sandbox_image = Some(value()?),
            "--timeout" => o.timeout = Duration::from_secs(number(value()?)? as u64),
            "--n" => o.n = number(value()?)?,
            "--warmup" => o.warmup = number(value()?)?,
            "--container" => {
                o.run_true = match value()?.as_str() {
                    "true" => true,
                    "sleeper" => false,
                    v => return Err(format!("--container: true or sleeper, not {v}")),
                }
            }
            "--check" => o.check = Some(value()?),
            "--cgroup-parent" => o.cgroup_parent = Some(value()?),
            f => return Err(format!("unknown option {f}")),
        }
    }
    let mut seen = std::collections::HashSet::new();
    o.handlers.retain(|h| seen.insert(h.clone()));
    if o.handlers.is_empty() {
        return Err("--handler is required".into());
    }
    if o.image.is_empty() {
        return Err("--image is required".into());
    }
    Ok(o)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let opts = match parse(&args[1..]) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("vm-cri: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let result = match cmd.as_str() {
        "pod" => pod(&opts),
        "bench" => bench(&opts),
        c => {
            eprintln!("vm-cri: unknown command {c}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            println!("vm-cri: FAIL {e}");
            ExitCode::FAILURE
        }
    }
}

/// A connection to the CRI server; every call bounded by `timeout`.
struct Client {
    rt: tokio::runtime::Runtime,
    rs: RuntimeServiceClient<Channel>,
    is: ImageServiceClient<Channel>,
    timeout: Duration,
}

/// A pod made by [`Client::run_pod`].
struct Pod {
    id: String,
    config: PodSandboxConfig,
}

impl Client {
    fn connect(o: &Opts) -> Result<Client, String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("tokio runtime: {e}"))?;
        let ch = connect_unix(&rt, &o.socket)?;
        Ok(Client {
            rt,
            rs: RuntimeServiceClient::new(ch.clone()),
            is: ImageServiceClient::new(ch),
            timeout: o.timeout,
        })
    }

    fn call<T>(
        &self,
        what: &str,
        fut: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T, String> {
        bounded_call(&self.rt, what, fut, self.timeout)
    }

    fn version(&self) -> Result<String, String> {
        let mut c = self.rs.clone();
        let req = VersionRequest {
            version: "v1".into(),
        };
        let v = self.call("Version", async move { c.version(req).await })?;
        Ok(format!(
            "{} {} (CRI {})",
            v.runtime_name, v.runtime_version, v.runtime_api_version
        ))
    }

    fn image_present(&self, image: &str) -> Result<String, String> {
        let mut c = self.is.clone();
        let req = ImageStatusRequest {
            image: Some(spec(image)),
            verbose: false,
        };
        let r = self.call("ImageStatus", async move { c.image_status(req).await })?;
        match r.image {
            Some(i) => Ok(i.id),
            None => Err(format!(
                "ImageStatus: image {image} is not in containerd's k8s.io namespace"
            )),
        }
    }

    /// RunPodSandbox `name` on `handler` under cgroup parent `parent`
    /// (kubelet's systemd form unless given): host network (the VM has no
    /// CNI), its own pid namespace per container, a pod ipc namespace.
    fn run_pod(&self, handler: &str, name: &str, parent: Option<&str>) -> Result<Pod, String> {
        let uid = new_uid();
        let cgroup_parent = match parent {
            Some(p) => p.to_string(),
            None => format!("kubepods-besteffort-pod{}.slice", uid.replace('-', "_")),
        };
        let ns = NamespaceOption {
            network: NamespaceMode::Node as i32,
            pid: NamespaceMode::Container as i32,
            ipc: NamespaceMode::Pod as i32,
            ..Default::default()
        };
        let config = PodSandboxConfig {
            metadata: Some(PodSandboxMetadata {
                name: name.into(),
                uid,
                namespace: "vm-cri".into(),
                attempt: 0,
            }),
            linux: Some(LinuxPodSandboxConfig {
                cgroup_parent,
                security_context: Some(LinuxSandboxSecurityContext {
                    namespace_options: Some(ns),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let req = RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: handler.into(),
        };
        let mut c = self.rs.clone();
        let id = self
            .call("RunPodSandbox", async move { c.run_pod_sandbox(req).await })?
            .pod_sandbox_id;
        Ok(Pod { id, config })
    }

    /// CreateContainer `name` in `pod`: `image` running `command`, the
    /// pod's namespaces (as kubelet passes them).
    fn create(
        &self,
        pod: &Pod,
        name: &str,
        image: &str,
        command: &[&str],
    ) -> Result<String, String> {
        let ns = pod
            .config
            .linux
            .as_ref()
            .and_then(|l| l.security_context.as_ref())
            .and_then(|s| s.namespace_options.clone());
        let config = ContainerConfig {
            metadata: Some(ContainerMetadata {
                name: name.into(),
                attempt: 0,
            }),
            image: Some(spec(image)),
            command: command.iter().map(|s| s.to_string()).collect(),
            linux: Some(LinuxContainerConfig {
                resources: Some(LinuxContainerResources::default()),
                security_context: Some(LinuxContainerSecurityContext {
                    namespace_options: ns,
                    ..Default::default()
                }),
            }),
            ..Default::default()
        };
        let req = CreateContainerRequest {
            pod_sandbox_id: pod.id.clone(),
            config: Some(config),
            sandbox_config: Some(pod.config.clone()),
        };
        let mut c = self.rs.clone();
        Ok(self
            .call(
                "CreateContainer",
                async move { c.create_container(req).await },
            )?
            .container_id)
    }

    fn start(&self, id: &str) -> Result<(), String> {
        let mut c = self.rs.clone();
        let req = StartContainerRequest {
            container_id: id.into(),
        };
        self.call(
            "StartContainer",
            async move { c.start_container(req).await },
        )
        .map(drop)
    }

    /// ContainerStatus, verbose: the state and containerd's info (pid,
    /// runtime spec).
    fn status(&self, id: &str) -> Result<(i32, serde_json::Value), String> {
        let mut c = self.rs.clone();
        let req = ContainerStatusRequest {
            container_id: id.into(),
            verbose: true,
        };
        let r = self.call(
            "ContainerStatus",
            async move { c.container_status(req).await },
        )?;
        let state = r.status.map(|s| s.state).unwrap_or(-1);
        let info = r
            .info
            .get("info")
            .and_then(|i| serde_json::from_str(i).ok())
            .unwrap_or(serde_json::Value::Null);
        Ok((state, info))
    }

    fn exec_sync(&self, id: &str, cmd: &[&str]) -> Result<ExecSyncResponse, String> {
        let mut c = self.rs.clone();
        let req = ExecSyncRequest {
            container_id: id.into(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            timeout: self.timeout.as_secs() as i64,
        };
        self.call("ExecSync", async move { c.exec_sync(req).await })
    }

    fn stats(&self, id: &str) -> Result<ContainerStats, String> {
        let mut c = self.rs.clone();
        let req = ContainerStatsRequest {
            container_id: id.into(),
        };
        self.call(
            "ContainerStats",
            async move { c.container_stats(req).await },
        )?
        .stats
        .ok_or_else(|| "ContainerStats: no stats in the answer".to_string())
    }

    fn stop_container(&self, id: &str) -> Result<(), String> {
        let mut c = self.rs.clone();
        let req = StopContainerRequest {
            container_id: id.into(),
            timeout: 10,
        };
        self.call("StopContainer", async move { c.stop_container(req).await })
            .map(drop)
    }

    fn remove_container(&self, id: &str) -> Result<(), String> {
        let mut c = self.rs.clone();
        let req = RemoveContainerRequest {
            container_id: id.into(),
        };
        self.call(
            "RemoveContainer",
            async move { c.remove_container(req).await },
        )
        .map(drop)
    }

    fn stop_pod(&self, id: &str) -> Result<(), String> {
        let mut c = self.rs.clone();
        let req = StopPodSandboxRequest {
            pod_sandbox_id: id.into(),
        };
        self.call(
            "StopPodSandbox",
            async move { c.stop_pod_sandbox(req).await },
        )
        .map(drop)
    }

    fn remove_pod(&self, id: &str) -> Result<(), String> {
        let mut c = self.rs.clone();
        let req = RemovePodSandboxRequest {
            pod_sandbox_id: id.into(),
        };
        self.call("RemovePodSandbox", async move {
            c.remove_pod_sandbox(req).await
        })
        .map(drop)
    }

    /// StopPodSandbox and RemovePodSandbox (which removes its containers).
    fn stop_remove_pod(&self, id: &str) -> Result<(), String> {
        self.stop_pod(id)?;
        self.remove_pod(id)
    }
}

/// A pod id for kubelet's metadata: the kernel's random UUID.
fn new_uid() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/uuid")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| format!("{:x}-{}", std::process::id(), now_ns()))
}

fn now_ns() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Run one step: print "vm-cri: NAME ok (T ms): WHAT" or return the error
/// (which names the call).
fn step<T>(
    name: &str,
    f: impl FnOnce() -> Result<T, String>,
    what: impl FnOnce(&T) -> String,
) -> Result<T, String> {
    let start = Instant::now();
    let v = f()?;
    println!(
        "vm-cri: {name} ok ({:.0} ms): {}",
        ms(start.elapsed()),
        what(&v)
    );
    Ok(v)
}

/// One line of a command's output: lines joined with " | ".
fn one_line(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b);
    s.trim().lines().collect::<Vec<_>>().join(" | ")
}

/// The `pod` command: one pod's life; on failure the pod is removed
/// (best effort) and the first error returned.
fn pod(o: &Opts) -> Result<(), String> {
    let handler = &o.handlers[0];
    let c = step(
        "connect",
        || Client::connect(o),
        |_| o.socket.display().to_string(),
    )?;
    step("Version", || c.version(), |v| v.clone())?;
    step(
        "ImageStatus",
        || c.image_present(&o.image),
        |id| format!("{} is {id}", o.image),
    )?;
    if let Some(s) = &o.sandbox_image {
        step(
            "ImageStatus",
            || c.image_present(s),
            |id| format!("sandbox image {s} is {id}"),
        )?;
    }
    let name = format!("vm-cri-{handler}-{}", std::process::id());
    let p = step(
        "RunPodSandbox",
        || c.run_pod(handler, &name, o.cgroup_parent.as_deref()),
        |p| {
            let parent = p
                .config
                .linux
                .as_ref()
                .map(|l| l.cgroup_parent.as_str())
                .unwrap_or("");
            format!("pod {} on handler {handler}, cgroup parent {parent}", p.id)
        },
    )?;
    let r = pod_containers(o, &c, &p);
    let r = r.and_then(|()| {
        step("StopPodSandbox", || c.stop_pod(&p.id), |_| p.id.clone())?;
        step("RemovePodSandbox", || c.remove_pod(&p.id), |_| p.id.clone()).map(drop)
    });
    if r.is_err() {
        match c.stop_remove_pod(&p.id) {
            Ok(()) => println!("vm-cri: cleanup: pod {} stopped and removed", p.id),
            Err(e) => println!("vm-cri: cleanup of pod {} failed: {e}", p.id),
        }
    }
    r
}

/// The container part of `pod`: create, start, inspect, exec, stats,
/// check, stop, remove.
fn pod_containers(o: &Opts, c: &Client, p: &Pod) -> Result<(), String> {
    let id = step(
        "CreateContainer",
        || c.create(p, "sleeper", &o.image, &["sh", "-c", SLEEPER]),
        |id| format!("container {id}"),
    )?;
    step("StartContainer", || c.start(&id), |_| id.clone())?;
    let (state, info) = step(
        "ContainerStatus",
        || c.status(&id),
        |(s, i)| describe_status(*s, i),
    )?;
    if state != ContainerState::ContainerRunning as i32 {
        return Err(format!(
            "ContainerStatus: container {id} is in state {state}, not running"
        ));
    }
    let pid = info["pid"].as_u64().unwrap_or(0);
    let host_cgroup = std::fs::read(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    println!(
        "vm-cri: host cgroup of pid {pid}: {}",
        one_line(&host_cgroup)
    );
    let out = step(
        "ExecSync",
        || c.exec_sync(&id, &["cat", "/proc/self/cgroup"]),
        |r| {
            format!(
                "exit {}: {}{}",
                r.exit_code,
                one_line(&r.stdout),
                one_line(&r.stderr)
            )
        },
    )?;
    if out.exit_code != 0 {
        return Err(format!(
            "ExecSync: cat /proc/self/cgroup exited {}",
            out.exit_code
        ));
    }
    let stats = step("ContainerStats", || c.stats(&id), describe_stats)?;
    let mem = stats
        .memory
        .as_ref()
        .and_then(|m| m.working_set_bytes.as_ref());
    let cpu = stats
        .cpu
        .as_ref()
        .and_then(|c| c.usage_core_nano_seconds.as_ref());
    if mem.is_none() || cpu.is_none() {
        return Err(format!(
            "ContainerStats: memory or cpu missing: {}",
            describe_stats(&stats)
        ));
    }
    if let Some(cmd) = &o.check {
        let env = [
            ("VM_CRI_POD_ID", p.id.clone()),
            ("VM_CRI_CONTAINER_ID", id.clone()),
            ("VM_CRI_PID", pid.to_string()),
            (
                "VM_CRI_CGROUP_PARENT",
                p.config
                    .linux
                    .as_ref()
                    .map(|l| l.cgroup_parent.clone())
                    .unwrap_or_default(),
            ),
        ];
        step(
            "check",
            || run_check(cmd, &env, o.timeout),
            |_| "--check exited 0".into(),
        )?;
    }
    step("StopContainer", || c.stop_container(&id), |_| id.clone())?;
    step(
        "RemoveContainer",
        || c.remove_container(&id),
        |_| id.clone(),
    )?;
    Ok(())
}

fn describe_status(state: i32, info: &serde_json::Value) -> String {
    let state = ContainerState::try_from(state)
        .map(|s| s.as_str_name().to_string())
        .unwrap_or_else(|_| state.to_string());
    let path = &info["runtimeSpec"]["linux"]["cgroupsPath"];
    format!(
        "{state}, pid {}, cgroupsPath {}, runtime {}",
        info["pid"],
        path.as_str().unwrap_or("(none)"),
        info["runtimeType"].as_str().unwrap_or("?")
    )
}

fn describe_stats(s: &ContainerStats) -> String {
    let v = |x: Option<&UInt64Value>| x.map(|v| v.value.to_string()).unwrap_or_else(|| "-".into());
    let m = s.memory.as_ref();
    let c = s.cpu.as_ref();
    format!(
        "memory working_set_bytes={} usage_bytes={} rss_bytes={}; cpu usage_core_nano_seconds={}",
        v(m.and_then(|m| m.working_set_bytes.as_ref())),
        v(m.and_then(|m| m.usage_bytes.as_ref())),
        v(m.and_then(|m| m.rss_bytes.as_ref())),
        v(c.and_then(|c| c.usage_core_nano_seconds.as_ref())),
    )
}

/// `sh -c cmd` with `env`, its output passed through, killed after `t`.
fn run_check(cmd: &str, env: &[(&str, String)], t: Duration) -> Result<(), String> {
    let mut c = Command::new("sh");
    c.args(["-c", cmd])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    run_bounded(c, "check", t)
}

/// Run `c` (stdin /dev/null) for at most `t`; the error is named `what`.
fn run_bounded(mut c: Command, what: &str, t: Duration) -> Result<(), String> {
    let mut child = c
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| format!("{what}: cannot run {:?}: {e}", c.get_program()))?;
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(s)) if s.success() => return Ok(()),
            Ok(Some(s)) => return Err(format!("{what}: failed ({s})")),
            Ok(None) if start.elapsed() > t => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{what}: did not end within {t:?} (killed)"));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("{what}: wait: {e}")),
        }
    }
}

/// The `bench` command.
fn bench(o: &Opts) -> Result<(), String> {
    if o.n == 0 {
        return Err("bench: --n must be at least 1".into());
    }
    let c = Client::connect(o)?;
    println!("vm-cri: bench on {}: {}", o.socket.display(), c.version()?);
    c.image_present(&o.image)?;
    let command: &[&str] = if o.run_true {
        &["/bin/true"]
    } else {
        &["sh", "-c", SLEEPER]
    };
    let mut times: HashMap<&str, Vec<f64>> = HashMap::new();
    let k = o.handlers.len();
    for round in 0..o.warmup + o.n {
        for j in 0..k {
            let h = o.handlers[(round + j) % k].as_str();
            let t = bench_round(o, &c, h, round, command)?;
            if round < o.warmup {
                println!("vm-cri: bench {h} warm-up {}: {t:.1} ms", round + 1);
            } else {
                println!(
                    "vm-cri: bench {h} round {}: {t:.1} ms",
                    round - o.warmup + 1
                );
            }
            if round >= o.warmup {
                times.entry(h).or_default().push(t);
            }
        }
    }
    let first = median(
        times
            .get(o.handlers[0].as_str())
            .cloned()
            .unwrap_or_default(),
    );
    for h in &o.handlers {
        let v = times.get(h.as_str()).cloned().unwrap_or_default();
        let m = median(v.clone());
        println!(
            "vm-cri: bench {h}: n={} median {m:.1} ms p10 {:.1} ms p90 {:.1} ms (x{:.2} of {})",
            v.len(),
            percentile(v.clone(), 10),
            percentile(v, 90),
            m / first,
            o.handlers[0]
        );
    }
    Ok(())
}

/// One timed round: RunPodSandbox + CreateContainer + StartContainer,
/// then (not timed) the pod stopped and removed.
fn bench_round(
    o: &Opts,
    c: &Client,
    h: &str,
    round: usize,
    command: &[&str],
) -> Result<f64, String> {
    let name = format!("vm-cri-bench-{h}-{}-{round}", std::process::id());
    let start = Instant::now();
    let p = c
        .run_pod(h, &name, o.cgroup_parent.as_deref())
        .map_err(|e| format!("bench {h} round {round}: {e}"))?;
    let timed = c
        .create(&p, "c", &o.image, command)
        .and_then(|id| c.start(&id));
    let t = ms(start.elapsed());
    let mut cleanup = c.stop_remove_pod(&p.id);
    // The pod's own slice (made here, not given): stopped as kubelet does
    // once the pod is gone, so that slices do not pile up over the rounds.
    if o.cgroup_parent.is_none() && cleanup.is_ok() {
        if let Some(slice) = p.config.linux.as_ref().map(|l| l.cgroup_parent.clone()) {
            let mut cmd = Command::new("systemctl");
            cmd.args(["stop", &slice]);
            cleanup = run_bounded(cmd, &format!("systemctl stop {slice}"), o.timeout);
        }
    }
    timed.map_err(|e| format!("bench {h} round {round}: {e}"))?;
    cleanup.map_err(|e| format!("bench {h} round {round}: cleanup: {e}"))?;
    Ok(t)
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The nearest-rank `p`th percentile.
fn percentile(mut v: Vec<f64>, p: usize) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let rank = (p * v.len()).div_ceil(100).max(1);
    v[rank - 1]
}
