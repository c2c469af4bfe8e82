//! sd-notify (runc's notify socket proxy): with NOTIFY_SOCKET in berth's
//! environment the container gets /run/notify/notify.sock, and `start` /
//! `run` pass its READY=1 on to the caller's socket with MAINPID and a
//! BARRIER=1, then return. The caller here is a datagram socket the test
//! binds; the container sends with a small static helper (helpers/sd_notify.rs).

use std::os::unix::net::UnixDatagram;
use std::sync::mpsc;
use std::thread;
use std::time::Instant;

use berth_integration::prelude::*;

/// The static sd-notify sender built by build.rs.
const SD_NOTIFY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/sd-notify"));

/// A container running `script` with /bin/sd-notify in its rootfs.
fn env_with_sender(name: &str, script: &str) -> Env {
    let env = Env::sh(name, script);
    let bin = env.rootfs().join("bin/sd-notify");
    fs::write(&bin, SD_NOTIFY).expect("write sd-notify");
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).expect("chmod sd-notify");
    env
}

/// The caller's NOTIFY_SOCKET: a datagram socket in the test's dir whose
/// messages a thread collects, each with the time it arrived.
struct Listener {
    path: PathBuf,
    rx: mpsc::Receiver<(Instant, String)>,
}

impl Listener {
    fn bind(env: &Env) -> Listener {
        let path = env.dir.join("host-notify.sock");
        let sock = UnixDatagram::bind(&path).expect("bind the test's notify socket");
        sock.set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // A plain recv: the fd sent with BARRIER=1 is closed by the
            // kernel (no room for it), which answers the barrier.
            while let Ok(n) = sock.recv(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                if tx.send((Instant::now(), msg)).is_err() {
                    break;
                }
            }
        });
        Listener { path, rx }
    }

    fn env(&self) -> Vec<(String, String)> {
        vec![("NOTIFY_SOCKET".into(), self.path.display().to_string())]
    }

    /// The messages that arrive within `wait`.
    fn messages(&self, wait: Duration) -> Vec<(Instant, String)> {
        let end = Instant::now() + wait;
        let mut v = Vec::new();
        while let Ok(m) = self
            .rx
            .recv_timeout(end.saturating_duration_since(Instant::now()))
        {
            v.push(m);
        }
        v
    }
}

fn texts(msgs: &[(Instant, String)]) -> Vec<&str> {
    msgs.iter().map(|(_, m)| m.as_str()).collect()
}

fn berth_with(env: &Env, l: &Listener, args: &[&str]) -> Output {
    env.berth_opts(
        args,
        &SpawnOpts {
            env: &l.env(),
            ..Default::default()
        },
    )
}

#[test]
fn create_start_passes_ready_on_after_start() {
    let script = "echo \"$NOTIFY_SOCKET\" > /seen; grep ' /run/notify ' /proc/self/mountinfo > /mnt-notify; \
                  sleep 1; sd-notify 'STATUS=almost' 'STATUS=up\\nREADY=1'; exec sleep 100";
    let env = env_with_sender("notify_create_start", script);
    let l = Listener::bind(&env);
    berth_with(
        &env,
        &l,
        &["create", "--bundle", &env.bundle_str(), &env.id],
    )
    .ok();
    assert!(
        env.root.join(&env.id).join("notify").is_dir(),
        "create made no <state>/notify"
    );
    // init waits for start: nothing may arrive before it.
    assert_eq!(
        texts(&l.messages(Duration::from_millis(300))),
        Vec::<&str>::new()
    );
    let t0 = Instant::now();
    berth_with(&env, &l, &["start", &env.id]).ok();
    let took = t0.elapsed();
    // start blocked until READY (sent 1 s after the program began).
    assert!(
        took >= Duration::from_millis(900),
        "start returned after {took:?}, before READY"
    );
    let msgs = l.messages(Duration::from_millis(300));
    let pid = env.pid();
    assert_eq!(
        texts(&msgs),
        vec![
            "READY=1\n".to_string(),
            format!("MAINPID={pid}\n"),
            "BARRIER=1".into()
        ]
    );
    assert!(msgs[0].0 > t0, "READY arrived before start");
    assert_eq!(
        fs::read_to_string(env.rootfs().join("seen"))
            .unwrap()
            .trim(),
        "/run/notify/notify.sock"
    );
    let mnt = fs::read_to_string(env.rootfs().join("mnt-notify")).unwrap();
    assert!(
        mnt.contains(" ro,") && mnt.contains("nosuid") && mnt.contains("nodev"),
        "mount: {mnt}"
    );
    assert_eq!(env.status(), "running");
}

#[test]
fn run_detached_passes_ready_on_with_init_as_mainpid() {
    let env = env_with_sender(
        "notify_run_d",
        "sleep 0.5; sd-notify READY=1; exec sleep 100",
    );
    let l = Listener::bind(&env);
    let t0 = Instant::now();
    berth_with(
        &env,
        &l,
        &["run", "-d", "--bundle", &env.bundle_str(), &env.id],
    )
    .ok();
    assert!(
        t0.elapsed() >= Duration::from_millis(400),
        "run -d did not wait for READY"
    );
    let msgs = l.messages(Duration::from_millis(300));
    assert_eq!(
        texts(&msgs),
        vec![
            "READY=1\n".to_string(),
            format!("MAINPID={}\n", env.pid()),
            "BARRIER=1".into()
        ]
    );
    assert_eq!(env.status(), "running");
}

#[test]
fn run_foreground_passes_ready_on_with_berth_as_mainpid() {
    let env = env_with_sender("notify_run_fg", "sd-notify READY=1; sleep 0.5; exit 3");
    let l = Listener::bind(&env);
    let mut args = vec!["--root".to_string(), env.root.display().to_string()];
    args.extend(["run", "--bundle", &env.bundle_str(), &env.id].map(String::from));
    let opts = SpawnOpts {
        env: &l.env(),
        ..Default::default()
    };
    let run = Spawned::start_with(&berth_bin(), &args, &env.dir.join("run-fg"), &opts);
    let berth_pid = run.pid();
    let msgs = l.messages(Duration::from_secs(5));
    run.wait(CMD_TIMEOUT).exits_with(3);
    assert_eq!(
        texts(&msgs),
        vec![
            "READY=1\n".to_string(),
            format!("MAINPID={berth_pid}\n"),
            "BARRIER=1".into()
        ]
    );
    assert_no_leftovers(&env);
}

/// runc's `start` waits for READY until the container's init exits, then
/// returns 0 having sent nothing; berth does the same.
#[test]
fn never_ready_start_waits_for_init_exit_and_sends_nothing() {
    let env = env_with_sender("notify_never", "sleep 1; exit 0");
    let l = Listener::bind(&env);
    berth_with(
        &env,
        &l,
        &["create", "--bundle", &env.bundle_str(), &env.id],
    )
    .ok();
    let t0 = Instant::now();
    berth_with(&env, &l, &["start", &env.id]).ok();
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(900),
        "start returned after {took:?}, while the container ran"
    );
    assert!(took < Duration::from_secs(20), "start took {took:?}");
    assert_eq!(
        texts(&l.messages(Duration::from_millis(300))),
        Vec::<&str>::new()
    );
    assert_eq!(env.status(), "stopped");
    // A foreground run that never gets READY exits with the container.
    let env2 = env_with_sender("notify_never_fg", "sleep 0.5; exit 4");
    let l2 = Listener::bind(&env2);
    berth_with(
        &env2,
        &l2,
        &["run", "--bundle", &env2.bundle_str(), &env2.id],
    )
    .exits_with(4);
    assert_eq!(
        texts(&l2.messages(Duration::from_millis(300))),
        Vec::<&str>::new()
    );
    assert_no_leftovers(&env2);
}

/// Only NOTIFY_SOCKET makes the socket, the mount and the variable.
#[test]
fn notify_socket_only_with_notify_socket() {
    let script = "echo \"[$NOTIFY_SOCKET]\" > /seen; grep -c ' /run/notify ' /proc/self/mountinfo > /mnt-notify";
    let without = Env::sh("notify_without", &format!("{script}; exec sleep 100"));
    without.create();
    assert!(
        !without.root.join(&without.id).join("notify").exists(),
        "a notify dir without NOTIFY_SOCKET"
    );
    without.start();
    let done =
        || fs::read_to_string(without.rootfs().join("mnt-notify")).is_ok_and(|s| s.ends_with('\n'));
    assert!(
        wait_until(SHORT, done),
        "the container did not write /mnt-notify"
    );
    assert_eq!(
        fs::read_to_string(without.rootfs().join("seen"))
            .unwrap()
            .trim(),
        "[]"
    );
    assert_eq!(
        fs::read_to_string(without.rootfs().join("mnt-notify"))
            .unwrap()
            .trim(),
        "0"
    );

    let with = env_with_sender(
        "notify_with",
        &format!("{script}; sd-notify READY=1; exec sleep 100"),
    );
    let l = Listener::bind(&with);
    berth_with(
        &with,
        &l,
        &["run", "-d", "--bundle", &with.bundle_str(), &with.id],
    )
    .ok();
    assert_eq!(
        fs::read_to_string(with.rootfs().join("seen"))
            .unwrap()
            .trim(),
        "[/run/notify/notify.sock]"
    );
    assert_eq!(
        fs::read_to_string(with.rootfs().join("mnt-notify"))
            .unwrap()
            .trim(),
        "1"
    );
}

/// A NOTIFY_SOCKET nobody listens on: the container runs (as with runc, whose
/// `start` also fails only after releasing it), and `start` fails naming
/// the variable and the path.
#[test]
fn start_fails_naming_an_unreachable_notify_socket() {
    let env = env_with_sender("notify_unreachable", "sd-notify READY=1; exec sleep 100");
    let absent = env.dir.join("nobody.sock").display().to_string();
    let opts = SpawnOpts {
        env: &[("NOTIFY_SOCKET".into(), absent.clone())],
        ..Default::default()
    };
    env.berth_opts(&["create", "--bundle", &env.bundle_str(), &env.id], &opts)
        .ok();
    let out = env.berth_opts(&["start", &env.id], &opts);
    out.fails_with(&["NOTIFY_SOCKET", &absent]);
    assert_eq!(env.status(), "running");
}
