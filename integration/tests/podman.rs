//! berth under Podman 4.3: `podman --runtime /path/to/berth`, driven
//! through conmon. One private storage and configuration for the whole
//! file (see `clients::podman`). `BERTH_CLIENT_RUNTIME=/usr/sbin/runc`
//! runs the same scenarios on runc. Scenarios whose runtime feature is
//! missing are skipped with the reason.

use berth_integration::clients::podman::{podman, Ctr};
use berth_integration::clients::probe::{require, Feature};
use berth_integration::clients::tty::PtyRun;
use berth_integration::clients::{runtime_name, runtime_under_test, unique_name, IMAGE};
use berth_integration::prelude::*;

/// Runs until stopped; TERM ends it with status 3.
const SLEEPER: &str = "trap 'exit 3' TERM; echo ready; while :; do sleep 0.1; done";

#[test]
fn run() {
    let p = podman();
    let out = p.run(&[], &["sh", "-c", "echo hello from $(hostname); exit 5"]);
    out.exits_with(5);
    assert!(out.stdout.starts_with("hello from "), "{out}");
    // the default ulimits of the test's containers.conf
    let out = p.run(&[], &["sh", "-c", "ulimit -n"]).ok();
    assert_eq!(out.stdout, "1024\n");
}

#[test]
fn run_tty() {
    if !require(&[Feature::Terminal]) {
        return;
    }
    let p = podman();
    let name = unique_name("tty");
    let _guard = Ctr { podman: p, name: name.clone() };
    let opts = p.container_opts();
    let mut args = vec!["run", "-t", "--rm", "--name", &name];
    args.extend(opts.iter().map(String::as_str));
    args.extend([IMAGE, "sh", "-c", "tty; exit 4"]);
    let (prog, args, envs) = p.command(&args);
    let mut t = PtyRun::start(&prog, &args, &envs);
    t.expect("/dev/pts/", Duration::from_secs(30));
    let (status, text) = t.wait(Duration::from_secs(30));
    assert_eq!(status.code(), Some(4), "podman run -t exit status; terminal output: {text:?}");
}

#[test]
fn exec() {
    if !require(&[Feature::Exec]) {
        return;
    }
    let p = podman();
    let c = p.start(&["--hostname", "pm-exec"], &["sh", "-c", SLEEPER]);
    c.wait_log("ready");
    let out = p.cli(&["exec", &c.name, "sh", "-c", "echo exec:$(hostname)"]).ok();
    assert_eq!(out.stdout, "exec:pm-exec\n");
    p.cli(&["exec", &c.name, "sh", "-c", "exit 6"]).exits_with(6);
}

#[test]
fn ps() {
    let p = podman();
    let c = p.start(&[], &["sh", "-c", SLEEPER]);
    let out = p.cli(&["ps", "--format", "{{.Names}} {{.Status}}"]).ok();
    let line = out.lines().into_iter().find(|l| l.starts_with(&format!("{} ", c.name)));
    assert!(line.as_deref().is_some_and(|l| l.contains("Up")), "{} not listed as up:\n{out}", c.name);
}

#[test]
fn stop() {
    let p = podman();
    let c = p.start(&[], &["sh", "-c", SLEEPER]);
    c.wait_log("ready");
    let t0 = std::time::Instant::now();
    p.cli(&["stop", "-t", "20", &c.name]).ok();
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "stop waited for the timeout: SIGTERM was lost ({:?})",
        t0.elapsed()
    );
    assert_eq!(c.inspect("{{.State.Status}}"), "exited");
    assert_eq!(c.inspect("{{.State.ExitCode}}"), "3", "the TERM trap's exit status");
}

#[test]
fn rm() {
    let p = podman();
    let c = p.start(&[], &["sh", "-c", SLEEPER]);
    let id = c.id();
    c.wait_log("ready");
    p.cli(&["rm", "-f", &c.name]).ok();
    let all = p.cli(&["ps", "-a", "--format", "{{.ID}}"]).ok();
    assert!(!all.stdout.contains(&id[..12]), "{} still listed:\n{all}", c.name);
    // conmon runs the runtime with its default --root
    let rt = runtime_under_test();
    let mut st = None;
    assert!(
        wait_until(Duration::from_secs(10), || {
            let o = std::process::Command::new(&rt).args(["state", &id]).output().expect("run runtime state");
            let done = !o.status.success();
            st = Some(o);
            done
        }),
        "the runtime still has container {id} after podman rm: {st:?}"
    );
}

#[test]
fn runtime_from_containers_conf() {
    let p = podman();
    let c = Ctr { podman: p, name: unique_name("conf") };
    let opts = p.container_opts();
    let mut args = vec!["run", "-d", "--name", &c.name];
    args.extend(opts.iter().map(String::as_str));
    args.extend([IMAGE, "sh", "-c", SLEEPER]);
    p.cli_runtime_from_conf(&args).ok();
    assert_eq!(c.inspect("{{.OCIRuntime}}"), runtime_name());
    let st = std::process::Command::new(runtime_under_test()).args(["state", &c.id()]).output().unwrap();
    assert!(st.status.success(), "the runtime does not know the container: {st:?}");
    assert!(String::from_utf8_lossy(&st.stdout).contains("\"running\""), "{st:?}");
}

#[test]
fn stop_escalates_to_kill() {
    // TERM is dropped for a pid-namespace init without a handler
    let p = podman();
    let c = p.start(&[], &["sleep", "1000"]);
    p.cli(&["stop", "-t", "1", &c.name]).ok();
    assert_eq!(c.inspect("{{.State.Status}} {{.State.ExitCode}}"), "exited 137");
}

#[test]
fn runtime_error_reaches_client() {
    // conmon passes --log FILE --log-format=json; podman shows the error
    // and maps "no such file" to status 127
    let out = podman().run(&[], &["/no/such/cmd"]);
    out.exits_with(127);
    assert!(out.stderr.contains("/no/such/cmd"), "{out}");
}

#[test]
fn tmpfs_copies_up_the_image_dir() {
    // podman adds tmpcopyup to every --tmpfs mount: /etc starts with the
    // image's /etc (and podman's /etc/hosts binds go on top of it)
    let p = podman();
    let script = "grep -c ' /tmp [^-]* - tmpfs ' /proc/self/mountinfo; echo x > /tmp/f && cat /tmp/f; \
                  grep -c ' /etc [^-]* - tmpfs ' /proc/self/mountinfo; grep ^root: /etc/passwd; echo e > /etc/new && cat /etc/new";
    let out = p.run(&["--tmpfs", "/tmp", "--tmpfs", "/etc"], &["sh", "-c", script]).ok();
    assert_eq!(out.stdout, "1\nx\n1\nroot:x:0:0:root:/root:/bin/sh\ne\n", "{out}");
}

#[test]
fn read_only() {
    // --read-only: a read-only root with tmpfs (tmpcopyup) on /tmp, /var/tmp, /run
    let p = podman();
    let script = "if touch /x 2>/dev/null; then echo root=rw; else echo root=ro; fi; \
                  for d in /tmp /var/tmp /run; do touch $d/y && echo $d=rw; done; cat /etc/passwd | wc -l";
    let out = p.run(&["--read-only"], &["sh", "-c", script]).ok();
    assert_eq!(out.stdout, "root=ro\n/tmp=rw\n/var/tmp=rw\n/run=rw\n2\n", "{out}");
}

#[test]
fn network_none_has_a_working_loopback() {
    // runc and crun bring `lo` up in a new network namespace; podman
    // --network none (which the file's containers all use) relies on it:
    // no CNI/netavark does it.
    let p = podman();
    assert!(p.container_opts().join(" ").contains("--network none"), "{:?}", p.container_opts());
    let out = p
        .run(
            &["--cap-add", "NET_RAW"],
            &["sh", "-c", "ip -o link show lo | grep -q '[<,]UP[,>]' && echo UP; ping -c 1 -W 2 127.0.0.1 >/dev/null && echo ping-ok"],
        )
        .ok();
    assert_eq!(out.stdout, "UP\nping-ok\n", "{out}");
}

#[test]
fn run_interactive_tty() {
    // podman run -it: input typed on podman's terminal reaches the
    // container's shell through conmon and berth's pty.
    if !require(&[Feature::Terminal]) {
        return;
    }
    let p = podman();
    let name = unique_name("it");
    let _guard = Ctr { podman: p, name: name.clone() };
    let opts = p.container_opts();
    let mut args = vec!["run", "-it", "--rm", "--name", &name];
    args.extend(opts.iter().map(String::as_str));
    args.extend([IMAGE, "sh", "-c", "[ -t 0 ] && echo stdin-tty; read line; echo \"got:$line\"; exit 4"]);
    let (prog, args, envs) = p.command(&args);
    let mut t = PtyRun::start(&prog, &args, &envs);
    t.expect("stdin-tty", Duration::from_secs(30));
    t.send("typed-in\n");
    t.expect("got:typed-in", Duration::from_secs(30));
    let (status, text) = t.wait(Duration::from_secs(30));
    assert_eq!(status.code(), Some(4), "podman run -it exit status; terminal output: {text:?}");
}
