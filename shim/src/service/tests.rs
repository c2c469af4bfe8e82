//! The order of the service's task events, with the launcher and the
//! publisher injected: a fake launcher answers every request (its Start can
//! be held open), a recorder keeps the events in the order they were
//! queued, and exits are delivered as the reaper delivers them
//! (`Service::on_exit`). No containerd, no container.
//!
//! Pids handed out by the fake are above the kernel's largest pid
//! (PID_MAX_LIMIT, 2^22), so no real process is ever signalled or taken
//! for one of them.

use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use containerd_shim_protos::api;
use protobuf::well_known_types::any::Any;
use ttrpc::Code;

use super::Service;
use crate::launcher::{Answer, Cgroups, Failure, Launch, Op, Request};
use crate::oom::{OomSource, OomWatcher};
use crate::publish::Publish;

/// How long a test waits for an event that should come.
const WAIT: Duration = Duration::from_secs(10);

/// The events, by topic, in the order they were queued.
#[derive(Default)]
struct Recorder {
    events: Mutex<Vec<String>>,
    more: Condvar,
}

impl Publish for Recorder {
    fn send(&self, topic: &str, _: Any) {
        self.events.lock().unwrap().push(topic.to_string());
        self.more.notify_all();
    }
}

impl Recorder {
    /// The events once there are `n` of them (or all after [`WAIT`]).
    fn wait_for(&self, n: usize) -> Vec<String> {
        let g = self.events.lock().unwrap();
        let (g, _) = self
            .more
            .wait_timeout_while(g, WAIT, |e| e.len() < n)
            .unwrap();
        g.clone()
    }

    fn now(&self) -> Vec<String> {
        self.events.lock().unwrap().clone()
    }
}

/// A held Start: `entered` is told when Start is running, which then waits
/// for `release`.
struct Gate {
    entered: Sender<()>,
    release: Receiver<()>,
}

/// Run with an exec's new pid before the launcher answers.
type OnExec = Box<dyn FnOnce(i32) + Send>;

/// Answers every request as berth would when all goes well.
#[derive(Default)]
struct FakeLauncher {
    next_pid: AtomicI32,
    gate: Mutex<Option<Gate>>,
    /// Run with the new pid inside Exec, before it answers.
    on_exec: Mutex<Option<OnExec>>,
    ops: Mutex<Vec<String>>,
}

impl FakeLauncher {
    fn pid(&self) -> i32 {
        (1 << 22) + 1000 + self.next_pid.fetch_add(1, Ordering::SeqCst)
    }

    /// Hold the next Start until the returned sender sends (or drops); the
    /// receiver hears when Start is running.
    fn hold_start(&self) -> (Receiver<()>, Sender<()>) {
        let (entered, entered_rx) = channel();
        let (release_tx, release) = channel();
        *self.gate.lock().unwrap() = Some(Gate { entered, release });
        (entered_rx, release_tx)
    }
}

impl Launch for Arc<FakeLauncher> {
    fn call(&self, req: Request, fds: &[RawFd]) -> Result<(Answer, Option<OwnedFd>), Failure> {
        let name = format!("{:?}", req.op);
        self.ops
            .lock()
            .unwrap()
            .push(name.split([' ', '{']).next().unwrap().to_string());
        let answer = match req.op {
            Op::Create { .. } => {
                assert_eq!(fds.len(), 3, "create gets stdio");
                let cgroups = Cgroups::default();
                Answer::Created {
                    pid: self.pid(),
                    cgroups,
                }
            }
            Op::Exec { .. } => {
                assert_eq!(fds.len(), 3, "exec gets stdio");
                let pid = self.pid();
                if let Some(f) = self.on_exec.lock().unwrap().take() {
                    f(pid);
                }
                Answer::Spawned { pid }
            }
            Op::Start => {
                if let Some(g) = self.gate.lock().unwrap().take() {
                    g.entered.send(()).unwrap();
                    let _ = g.release.recv();
                }
                Answer::Done
            }
            Op::Stats => Answer::Stats {
                type_url: "t".into(),
                value: vec![0, 1, 2],
            },
            _ => Answer::Done,
        };
        Ok((answer, None))
    }

    fn owns(&self, _: i32) -> bool {
        false
    }
}

/// An OOM notifier as the kernel's: an eventfd the test writes to.
struct EventFd(OwnedFd);

impl EventFd {
    fn new() -> EventFd {
        // SAFETY: eventfd takes no pointers; the fd is checked and owned.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        assert!(fd >= 0, "eventfd: {}", std::io::Error::last_os_error());
        // SAFETY: a new fd nobody else owns.
        EventFd(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    /// A second handle on the same counter, for the test to signal.
    fn signaller(&self) -> OwnedFd {
        self.0.try_clone().unwrap()
    }
}

fn signal_oom(fd: &OwnedFd) {
    let one = 1u64.to_ne_bytes();
    // SAFETY: writes 8 bytes from a local buffer to an fd we own.
    let n = unsafe { libc::write(std::os::fd::AsRawFd::as_raw_fd(fd), one.as_ptr().cast(), 8) };
    assert_eq!(n, 8);
}

impl OomSource for EventFd {
    fn fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }

    fn take(&mut self) -> u64 {
        let mut b = [0u8; 8];
        // SAFETY: reads at most 8 bytes into a local buffer.
        let n = unsafe {
            libc::read(
                std::os::fd::AsRawFd::as_raw_fd(&self.0),
                b.as_mut_ptr().cast(),
                8,
            )
        };
        if n == 8 {
            u64::from_ne_bytes(b)
        } else {
            0
        }
    }
}

struct Fixture {
    svc: &'static Service,
    events: Arc<Recorder>,
    launcher: Arc<FakeLauncher>,
    oom: Arc<OomWatcher>,
    bundle: PathBuf,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.bundle);
    }
}

/// A service over the fakes. It is leaked, as the server never drops its
/// own (exit threads hold it). The OOM watcher has no thread of its own:
/// an OOM goes out only when the service asks for it before an exit.
fn fixture(name: &str) -> Fixture {
    let events = Arc::new(Recorder::default());
    let launcher = Arc::new(FakeLauncher::default());
    let oom = Arc::new(OomWatcher::new(events.clone()).unwrap());
    let (shutdown, _) = channel();
    let svc = Service::new(
        format!("berth-shim-test-{name}"),
        launcher.clone(),
        events.clone(),
        oom.clone(),
        shutdown,
    );
    let bundle =
        std::env::temp_dir().join(format!("berth-shim-test-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&bundle).unwrap();
    Fixture {
        svc: Box::leak(Box::new(svc)),
        events,
        launcher,
        oom,
        bundle,
    }
}

impl Fixture {
    fn create(&self, id: &str) -> i32 {
        let mut req = api::CreateTaskRequest::new();
        req.id = id.into();
        req.bundle = self.bundle.display().to_string();
        self.svc.do_create(&req).unwrap() as i32
    }

    fn delete(&self, id: &str) -> ttrpc::Result<api::DeleteResponse> {
        let mut req = api::DeleteRequest::new();
        req.id = id.into();
        self.svc.delete_init(req)
    }

    fn add_exec(&self, id: &str, exec_id: &str) {
        let mut req = api::ExecProcessRequest::new();
        req.id = id.into();
        req.exec_id = exec_id.into();
        let mut spec = Any::new();
        spec.value = br#"{"args":["true"],"cwd":"/"}"#.to_vec();
        req.spec = protobuf::MessageField::some(spec);
        self.svc.add_exec(req).unwrap();
    }

    /// Wait until the exit of `id`'s process `exec_id` is recorded.
    fn wait_exit_recorded(&self, id: &str, exec_id: &str) {
        let end = Instant::now() + WAIT;
        while self
            .svc
            .lock()
            .get(id, exec_id)
            .is_none_or(|p| p.exit.is_none())
        {
            assert!(
                Instant::now() < end,
                "the exit of {id}/{exec_id} was never recorded"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

fn code<T: std::fmt::Debug>(r: ttrpc::Result<T>) -> Code {
    match r.unwrap_err() {
        ttrpc::Error::RpcStatus(s) => s.code(),
        e => panic!("not a status: {e}"),
    }
}

#[test]
fn exit_during_start_waits_for_task_start() {
    let f = fixture("start");
    let pid = f.create("c");
    let (entered, release) = f.launcher.hold_start();
    let starting = std::thread::spawn(move || f.svc.start_init("c").map_err(|e| e.to_string()));
    entered
        .recv_timeout(WAIT)
        .expect("Start reaches the launcher");
    // init dies while berth's start is still running (e.g. killed at once).
    f.svc.on_exit(pid, 137);
    f.wait_exit_recorded("c", "");
    assert_eq!(f.events.now(), ["/tasks/create"], "the exit is held back");
    release.send(()).unwrap();
    assert_eq!(starting.join().unwrap(), Ok(pid as u32));
    assert_eq!(
        f.events.wait_for(3),
        ["/tasks/create", "/tasks/start", "/tasks/exit"]
    );
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(
        f.events.now().len(),
        3,
        "one TaskExit: {:?}",
        f.events.now()
    );
}

#[test]
fn oom_goes_out_before_the_exit_it_caused() {
    let f = fixture("oom");
    let pid = f.create("c");
    let notifier = EventFd::new();
    let kernel = notifier.signaller();
    f.oom.watch("c", Box::new(notifier)).unwrap();
    f.svc.start_init("c").unwrap();
    // The OOM killer: the notifier fires, then init dies of SIGKILL.
    signal_oom(&kernel);
    f.svc.on_exit(pid, 137);
    assert_eq!(
        f.events.wait_for(4),
        ["/tasks/create", "/tasks/start", "/tasks/oom", "/tasks/exit"]
    );
    f.delete("c").unwrap();
    assert_eq!(
        f.events.now().last().map(String::as_str),
        Some("/tasks/delete")
    );
}

#[test]
fn task_delete_comes_after_task_exit() {
    let f = fixture("delete");
    let pid = f.create("c");
    f.svc.start_init("c").unwrap();
    // Running: refused, and nothing is published.
    assert_eq!(code(f.delete("c")), Code::FAILED_PRECONDITION);
    assert_eq!(f.events.now(), ["/tasks/create", "/tasks/start"]);
    // Delete right behind the reaper: it waits for the exit to be recorded.
    f.svc.on_exit(pid, 3);
    let r = f.delete("c").unwrap();
    assert_eq!((r.pid, r.exit_status), (pid as u32, 3));
    assert_eq!(
        f.events.now(),
        [
            "/tasks/create",
            "/tasks/start",
            "/tasks/exit",
            "/tasks/delete"
        ]
    );
    assert_eq!(
        *f.launcher.ops.lock().unwrap(),
        ["Create", "Start", "Destroy"]
    );
    assert_eq!(code(f.delete("c")), Code::NOT_FOUND);
}

#[test]
fn exec_events_in_order() {
    let f = fixture("exec");
    let pid = f.create("c");
    f.svc.start_init("c").unwrap();
    f.add_exec("c", "e1");
    let exec_pid = f.svc.start_exec("c", "e1").unwrap() as i32;
    assert_eq!(
        f.events.now(),
        [
            "/tasks/create",
            "/tasks/start",
            "/tasks/exec-added",
            "/tasks/exec-started"
        ]
    );
    // The exec's process.json went to the launcher and was removed.
    assert_eq!(std::fs::read_dir(&f.bundle).unwrap().count(), 0);
    f.svc.on_exit(exec_pid, 0);
    f.events.wait_for(5);
    f.svc.delete_exec("c", "e1").unwrap();
    f.svc.on_exit(pid, 0);
    assert_eq!(
        f.events.wait_for(6),
        [
            "/tasks/create",
            "/tasks/start",
            "/tasks/exec-added",
            "/tasks/exec-started",
            "/tasks/exit",
            "/tasks/exit"
        ]
    );
}

#[test]
fn exec_exit_before_its_start_returns_comes_after_exec_started() {
    let f = fixture("exec-early");
    f.create("c");
    f.svc.start_init("c").unwrap();
    f.add_exec("c", "e1");
    // The process exits (and is reaped) before the launcher's answer is in.
    let svc = f.svc;
    *f.launcher.on_exec.lock().unwrap() = Some(Box::new(move |pid| svc.on_exit(pid, 5)));
    f.svc.start_exec("c", "e1").unwrap();
    assert_eq!(
        f.events.wait_for(5),
        [
            "/tasks/create",
            "/tasks/start",
            "/tasks/exec-added",
            "/tasks/exec-started",
            "/tasks/exit"
        ]
    );
    let g = f.svc.lock();
    let c = g.ctrs.get("c").unwrap();
    assert_eq!(c.execs["e1"].exit.as_ref().map(|e| e.0), Some(5));
}
