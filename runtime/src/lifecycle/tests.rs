//! The container API on what needs no kernel help: a state root in a
//! temporary directory, containers whose create died early or whose init is
//! gone (pid 0, no cgroups), and creates refused before anything is made.
//! The real lifecycle runs in integration/tests (lifecycle, run, exec, the
//! shim's and berthctl's).

use std::fs;
use std::path::{Path, PathBuf};

use super::*;
use crate::cgroups::ContainerCgroups;
use crate::container::{rfc3339_now, Status};

/// A state root removed when the test ends, passed or not.
struct Root(PathBuf);

impl Root {
    fn new(name: &str) -> Root {
        let p = std::env::temp_dir().join(format!(
            "berth-unit-lifecycle-{name}-{}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        Root(p)
    }

    fn entries(&self) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The record of a container whose init is gone: pid 0, no cgroups.
fn stopped_record(root: &Path, id: &str) {
    let dir = StateDir::create(root, id).unwrap();
    dir.save(&State {
        id: id.into(),
        pid: 0,
        start_time: 0,
        bundle: "/b".into(),
        rootfs: "/b/rootfs".into(),
        created: rfc3339_now(),
        annotations: Default::default(),
        cgroups: ContainerCgroups::default(),
        poststart: Vec::new(),
        poststop: Vec::new(),
        paused: false,
        rootfs_bind: None,
    })
    .unwrap();
}

fn wrong_state(r: Result<()>) -> bool {
    matches!(r, Err(Error::WrongState(_)))
}

#[test]
fn load_of_a_missing_container_is_not_found() {
    let root = Root::new("missing");
    assert!(matches!(
        Container::load(&root.0, "nope"),
        Err(Error::NotFound(_))
    ));
    assert!(Container::load(&root.0, "../x").is_err());
    assert!(root.entries().is_empty());
}

#[test]
fn a_create_that_died_before_its_record() {
    let root = Root::new("unborn");
    fs::create_dir(root.0.join("c1")).unwrap();
    let c = Container::load(&root.0, "c1").unwrap();
    let st = c.state();
    assert_eq!(
        (st.id.as_str(), st.status, st.pid),
        ("c1", Status::Stopped, 0)
    );
    assert_eq!(c.pid(), 0);
    // Listed (so that it is seen and deleted); no record to act on.
    drop(c);
    assert_eq!(
        list(&root.0)
            .unwrap()
            .iter()
            .map(|s| s.id.as_str())
            .collect::<Vec<_>>(),
        ["c1"]
    );
    let mut c = Container::load(&root.0, "c1").unwrap();
    assert!(matches!(c.start(), Err(Error::NotFound(_))));
    assert!(matches!(
        c.kill(libc::SIGTERM, false),
        Err(Error::NotFound(_))
    ));
    assert!(matches!(c.pause(), Err(Error::NotFound(_))));
    assert!(c.pids().is_err() && c.stats().is_err() && c.cgroups().is_err());
    c.delete(false).unwrap();
    assert!(root.entries().is_empty());
}

#[test]
fn a_stopped_container_refuses_what_needs_init_and_is_deleted() {
    let root = Root::new("stopped");
    stopped_record(&root.0, "c2");
    let mut c = Container::load(&root.0, "c2").unwrap();
    assert_eq!(c.state().status, Status::Stopped);
    assert!(wrong_state(c.start()));
    assert!(wrong_state(c.kill(libc::SIGTERM, false)));
    // --all signals whatever is left in its cgroups: nothing here.
    c.kill(libc::SIGKILL, true).unwrap();
    assert!(wrong_state(c.pause()));
    assert!(wrong_state(c.resume()));
    assert!(wrong_state(c.update(&Default::default())));
    assert!(c.pids().unwrap().is_empty());
    assert!(c.cgroups().unwrap().dirs.is_empty());
    let exec = c.exec(&ExecOptions::new(ProcessSource::Args(vec!["true".into()])));
    assert!(exec.is_err());
    let c = Container::load(&root.0, "c2").unwrap();
    assert!(wrong_state(c.events(Watch::StatsOnce, &mut |_| Ok(()))));
    Container::load(&root.0, "c2")
        .unwrap()
        .delete(false)
        .unwrap();
    assert!(root.entries().is_empty());
    // destroy: the same without looking at the status.
    stopped_record(&root.0, "c3");
    Container::load(&root.0, "c3").unwrap().destroy().unwrap();
    assert!(root.entries().is_empty());
}

#[test]
fn the_lock_is_held_until_the_container_is_dropped() {
    let root = Root::new("lock");
    stopped_record(&root.0, "c4");
    let c = Container::load(&root.0, "c4").unwrap();
    let path = root.0.join("c4");
    let f = fs::File::open(&path).unwrap();
    // SAFETY: flock on the fd of `f`, which outlives the closure's calls.
    let try_lock = || unsafe {
        libc::flock(
            std::os::fd::AsRawFd::as_raw_fd(&f),
            libc::LOCK_EX | libc::LOCK_NB,
        )
    };
    assert_ne!(
        try_lock(),
        0,
        "the state dir is locked while the Container lives"
    );
    drop(c);
    assert_eq!(try_lock(), 0);
}

/// A bundle whose config passes every check before the state dir is made.
fn bundle(root: &Root) -> PathBuf {
    let b = root.0.join("bundle");
    fs::create_dir_all(b.join("rootfs")).unwrap();
    let mut spec = crate::spec::default_spec(false, (0, 0));
    spec["process"]["terminal"] = false.into();
    fs::write(b.join("config.json"), serde_json::to_vec(&spec).unwrap()).unwrap();
    b
}

#[test]
fn a_refused_create_leaves_nothing_behind() {
    let root = Root::new("refused");
    let states = root.0.join("states");
    // No bundle.
    let o = CreateOptions::new(&states, "c5", root.0.join("missing"));
    assert!(Container::create(&o).is_err());
    assert!(run(
        &o,
        &RunOptions {
            attach: Attach::Detached,
            after_exit: AfterExit::Delete,
            orphans: Orphans::Leave
        }
    )
    .is_err());
    assert!(!states.exists());
    // A bundle that loads, an id that cannot be a directory name (nor a
    // cgroup name: that check comes first).
    let o = CreateOptions::new(&states, "../c5", bundle(&root));
    let e = Container::create(&o)
        .err()
        .expect("an invalid id is refused");
    assert!(e.to_string().contains("../c5"), "{e}");
    assert!(!root.0.join("c5").exists() && !states.join("c5").exists());
    // A terminal with nobody to send it to (no --console-socket).
    let b = bundle(&root);
    let mut spec: serde_json::Value =
        serde_json::from_slice(&fs::read(b.join("config.json")).unwrap()).unwrap();
    spec["process"]["terminal"] = true.into();
    fs::write(b.join("config.json"), serde_json::to_vec(&spec).unwrap()).unwrap();
    let e = Container::create(&CreateOptions::new(&states, "c6", &b))
        .err()
        .expect("refused");
    assert!(e.to_string().contains("--console-socket"), "{e}");
    assert!(!states.join("c6").exists());
}

#[test]
fn options_default_to_berth_create_and_a_detached_exec() {
    let o = CreateOptions::new("/run/berth", "x", "/b");
    assert_eq!(
        (o.stdio, o.start, o.preserve_fds),
        (Stdio::Inherit, StartBy::Fifo, 0)
    );
    assert!(o.pid_file.is_none() && o.console_socket.is_none() && !o.no_pivot && !o.no_new_keyring);
    let e = ExecOptions::new(ProcessSource::File("/p.json".into()));
    assert_eq!(e.attach, Attach::Detached);
    assert!(e.env.is_empty() && e.cgroup.is_empty() && e.user.is_none() && !e.ignore_paused);
}
