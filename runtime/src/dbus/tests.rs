//! The marshalling against bytes written out by hand from the
//! specification, malformed input, and calls on a real dbus-daemon the
//! test starts (a private bus in a temp dir), with a peer that plays
//! systemd on it and sockets that never answer.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::message::{decode, frame_len};
use super::*;
use crate::test_skip;

/// Hex bytes, spaces ignored.
fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// A string's bytes with its NUL.
fn z(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

fn start_call() -> Message {
    let props = vec![
        Value::Struct(vec![
            Value::str("Delegate"),
            Value::variant(Value::Bool(true)),
        ]),
        Value::Struct(vec![
            Value::str("PIDs"),
            Value::variant(Value::Array("u".into(), vec![Value::U32(7)])),
        ]),
    ];
    let body = vec![
        Value::str("a.scope"),
        Value::str("fail"),
        Value::Array("(sv)".into(), props),
        Value::Array("(sa(sv))".into(), vec![]),
    ];
    let mut m = Message::call(
        "org.freedesktop.systemd1",
        "/org/freedesktop/systemd1",
        "org.freedesktop.systemd1.Manager",
        "StartTransientUnit",
        body,
    );
    m.serial = 7;
    m
}

#[test]
fn start_transient_unit_bytes() {
    let header = [
        hex("6c 01 00 01  58 00 00 00  07 00 00 00  b6 00 00 00"), // 'l', call, flags, v1, body 88, serial 7, fields 182
        hex("01 01 6f 00  19 00 00 00"),                           // PATH, "o", 25 bytes
        z("/org/freedesktop/systemd1"),
        hex("00 00 00 00 00 00  02 01 73 00  20 00 00 00"), // pad to 56; INTERFACE, "s", 32
        z("org.freedesktop.systemd1.Manager"),
        hex("00 00 00 00 00 00 00  03 01 73 00  12 00 00 00"), // pad to 104; MEMBER, 18
        z("StartTransientUnit"),
        hex("00 00 00 00 00  06 01 73 00  18 00 00 00"), // pad to 136; DESTINATION, 24
        z("org.freedesktop.systemd1"),
        hex("00 00 00 00 00 00 00  08 01 67 00  10"), // pad to 176; SIGNATURE, "g", 16
        z("ssa(sv)a(sa(sv))"),
        hex("00 00"), // pad to 200: the body
    ]
    .concat();
    let body = [
        hex("07 00 00 00"),
        z("a.scope"),
        hex("04 00 00 00"),
        z("fail"),
        hex("00 00 00  30 00 00 00  00 00 00 00"), // pad to 24; a(sv) of 48 bytes; pad to 32
        hex("08 00 00 00"),
        z("Delegate"),
        hex("01 62 00  01 00 00 00  00 00 00 00"), // "b", true, pad to 56
        hex("04 00 00 00"),
        z("PIDs"),
        hex("02 61 75 00  00 00 00  04 00 00 00  07 00 00 00"), // "au", pad, 4 bytes, 7
        hex("00 00 00 00  00 00 00 00"), // empty a(sa(sv)), padded to its structs' 8
    ]
    .concat();
    assert_eq!(header.len(), 200);
    assert_eq!(body.len(), 88);
    let want = [header, body].concat();
    let got = start_call().encode();
    assert_eq!(got, want, "\ngot  {got:02x?}\nwant {want:02x?}");
    let head: [u8; 16] = got[..16].try_into().unwrap();
    assert_eq!(frame_len(&head), Ok(288));
    assert_eq!(decode(&got), Ok(start_call()));
}

#[test]
fn reply_and_error_decode() {
    let reply = [hex("6c 02 01 01  07 00 00 00  09 00 00 00  0f 00 00 00  05 01 75 00  07 00 00 00  08 01 67 00  01 6f 00  00"), hex("02 00 00 00"), z("/a")].concat();
    let m = decode(&reply).unwrap();
    assert_eq!(
        (m.kind, m.serial, m.reply_serial),
        (Kind::Return, 9, Some(7))
    );
    assert_eq!(m.body, vec![Value::Path("/a".into())]);

    let name = "org.freedesktop.systemd1.NoSuchUnit";
    let err = [
        hex("6c 03 01 01  07 00 00 00  0a 00 00 00  3f 00 00 00  04 01 73 00  23 00 00 00"),
        z(name),
        hex("00 00 00 00  05 01 75 00  07 00 00 00  08 01 67 00  01 73 00  00"),
        hex("02 00 00 00"),
        z("no"),
    ]
    .concat();
    let m = decode(&err).unwrap();
    assert_eq!(
        (m.kind, m.error_name.as_deref(), m.first_str()),
        (Kind::Error, Some(name), "no")
    );

    // The same reply big-endian.
    let big = [hex("42 02 01 01  00 00 00 07  00 00 00 09  00 00 00 0f  05 01 75 00  00 00 00 07  08 01 67 00  01 6f 00  00"), hex("00 00 00 02"), z("/a")].concat();
    assert_eq!(decode(&big).unwrap().body, vec![Value::Path("/a".into())]);
}

/// Found by the dbus_message fuzz target: a variant whose signature is
/// a multi-byte character panicked (a split inside the character).
#[test]
fn a_signature_that_is_not_ascii_is_an_error() {
    let frame = hex("6c020801010000000000001d01000000210428d8827d000000");
    let e = crate::dbus::decode(&frame).unwrap_err();
    assert!(e.0.contains("not ASCII"), "{e:?}");
}

#[test]
fn malformed_messages_are_errors() {
    let good = start_call().encode();
    // Every truncation and every single-byte change: an error or a
    // message, never a panic.
    for n in 0..good.len() {
        assert!(decode(&good[..n]).is_err());
    }
    for i in 0..good.len() {
        for b in [0x00, 0x01, 0x28, 0x61, 0x7f, 0xff] {
            let mut bad = good.clone();
            bad[i] = b;
            let _ = decode(&bad);
        }
    }
    let mut big = good.clone();
    big[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    let head: [u8; 16] = big[..16].try_into().unwrap();
    assert!(frame_len(&head).unwrap_err().0.contains("limit"));
    // A boolean of 2.
    let mut m = start_call();
    m.body = vec![Value::U32(2)];
    let mut bytes = m.encode();
    let sig_at = bytes.windows(3).position(|w| w == [1, b'u', 0]).unwrap();
    bytes[sig_at + 1] = b'b';
    assert!(decode(&bytes).unwrap_err().0.contains("boolean"));
}

/// A dbus-daemon on a socket in a temp dir, killed and removed on drop.
struct Bus {
    child: Child,
    dir: PathBuf,
    sock: PathBuf,
}

fn temp_dir(tag: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("berth-dbus-{tag}-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

impl Bus {
    /// None (the test skipped) without dbus-daemon.
    fn start() -> Option<Bus> {
        if Command::new("dbus-daemon")
            .arg("--version")
            .output()
            .is_err()
        {
            test_skip::skip(
                test_skip::TOOLS,
                "dbus-daemon is not installed (scripts/setup-deps.sh installs it)",
            );
            return None;
        }
        let dir = temp_dir("bus");
        let sock = dir.join("bus");
        let conf = dir.join("bus.conf");
        let policy = r#"<allow user="*"/><allow own="*"/><allow send_destination="*"/><allow receive_sender="*"/>"#;
        let text = format!(
            "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\" \
             \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n<busconfig><type>system</type>\
             <listen>unix:path={}</listen><auth>EXTERNAL</auth><policy context=\"default\">{policy}</policy></busconfig>\n",
            sock.display()
        );
        std::fs::write(&conf, text).unwrap();
        let mut child = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", conf.display()))
            .args(["--nofork", "--print-address"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // The address is printed once the socket listens.
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let bus = Bus { child, dir, sock };
        assert!(
            line.starts_with("unix:path="),
            "dbus-daemon printed {line:?}"
        );
        Some(bus)
    }

    fn open(&self) -> Connection {
        Connection::open(&self.sock, Duration::from_secs(5)).unwrap()
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn bus_call(member: &str, body: Vec<Value>) -> Message {
    Message::call(
        "org.freedesktop.DBus",
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus",
        member,
        body,
    )
}

#[test]
fn calls_on_a_real_bus() {
    let Some(bus) = Bus::start() else { return };
    let mut c = bus.open();
    assert!(
        c.unique_name.starts_with(':'),
        "unique name {:?}",
        c.unique_name
    );
    let id = c.call(bus_call("GetId", vec![]), "GetId").unwrap();
    assert_eq!(id.first_str().len(), 32, "GetId answered {:?}", id.body);
    let names = c.call(bus_call("ListNames", vec![]), "ListNames").unwrap();
    let Some(Value::Array(_, names)) = names.body.first() else {
        panic!("ListNames answered {:?}", names.body)
    };
    assert!(names.contains(&Value::Str(c.unique_name.clone())));

    // A name nobody owns: the bus's error, naming the call.
    let m = Message::call(
        "org.example.Nobody",
        "/",
        "org.example.Nobody",
        "Ping",
        vec![],
    );
    let e = c.call(m, "Ping(nobody)").unwrap_err();
    assert_eq!(
        e.remote_name(),
        Some("org.freedesktop.DBus.Error.ServiceUnknown"),
        "{e}"
    );
    assert!(e.to_string().contains("Ping(nobody)"), "{e}");
    // An error reply leaves the connection usable.
    c.call(bus_call("GetId", vec![]), "GetId").unwrap();
}

#[test]
fn silent_peer_times_out() {
    // A socket that accepts (the kernel does, from the backlog) and never says a word.
    let dir = temp_dir("silent");
    let path = dir.join("sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let t0 = Instant::now();
    let e = Connection::open(&path, Duration::from_millis(300))
        .err()
        .expect("a silent peer must fail");
    let took = t0.elapsed();
    drop(listener);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(matches!(e, DbusError::Timeout { .. }), "{e}");
    assert!(e.to_string().contains("Hello"), "{e}");
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(3),
        "took {took:?}"
    );
}

#[test]
fn peer_that_closes_or_talks_garbage() {
    for (tag, answer) in [
        ("closes", &b""[..]),
        (
            "garbage",
            &b"OK 0123\r\nthis is not a D-Bus message at all"[..],
        ),
    ] {
        let dir = temp_dir(tag);
        let path = dir.join("sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let peer = std::thread::spawn(move || {
            use std::io::{Read, Write};
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 64];
            let _ = s.read(&mut buf);
            let _ = s.write_all(answer);
            std::thread::sleep(Duration::from_millis(100));
        });
        let t0 = Instant::now();
        let e = Connection::open(&path, Duration::from_secs(5))
            .err()
            .expect("must fail");
        peer.join().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let kind_ok = match tag {
            "closes" => matches!(e, DbusError::Closed { .. }),
            _ => matches!(e, DbusError::Garbage { .. }),
        };
        assert!(
            kind_ok && t0.elapsed() < Duration::from_secs(4),
            "{tag}: {e} after {:?}",
            t0.elapsed()
        );
    }
}

/// The Version strings the fake systemd answers Properties.Get with, in turn.
const VERSIONS: [&str; 3] = ["252.33-1~deb12u1", "v245.4-1.fc32", "unknown"];

/// A peer on the bus that owns systemd's name and answers as systemd does:
/// Subscribe, StartTransientUnit (a job, then JobRemoved "done"), GetUnit
/// (NoSuchUnit), ResetFailedUnit (nothing; NoSuchUnit for "gone.scope"),
/// Properties.Get of the Manager's Version ([`VERSIONS`] in turn; a `u` for
/// anything else); StopUnit it never answers. Returns the calls it got.
fn fake_systemd(
    mut c: Connection,
    ready: mpsc::Sender<()>,
    done: mpsc::Receiver<()>,
) -> Vec<Message> {
    let r = c
        .call(
            bus_call(
                "RequestName",
                vec![Value::str("org.freedesktop.systemd1"), Value::U32(0)],
            ),
            "RequestName",
        )
        .unwrap();
    assert_eq!(r.body, vec![Value::U32(1)], "RequestName");
    ready.send(()).unwrap();
    let mut got = Vec::new();
    let mut versions = VERSIONS.iter();
    loop {
        let m = c
            .wait_for("fake systemd", &|m| m.kind == Kind::Call)
            .unwrap();
        got.push(m.clone());
        let job = "/org/freedesktop/systemd1/job/42";
        match m.member.as_deref().unwrap() {
            "Subscribe" => c
                .send(Message::reply_to(&m, None, vec![]), "reply")
                .unwrap(),
            "StartTransientUnit" => {
                c.send(
                    Message::reply_to(&m, None, vec![Value::Path(job.into())]),
                    "reply",
                )
                .unwrap();
                let mut sig = Message::call(
                    "",
                    "/org/freedesktop/systemd1",
                    "org.freedesktop.systemd1.Manager",
                    "JobRemoved",
                    vec![],
                );
                (sig.kind, sig.destination) = (Kind::Signal, None);
                sig.body = vec![
                    Value::U32(42),
                    Value::Path(job.into()),
                    m.body[0].clone(),
                    Value::str("done"),
                ];
                c.send(sig, "signal").unwrap();
            }
            "ResetFailedUnit" if m.body == [Value::str("gone.scope")] => {
                let e = Message::reply_to(
                    &m,
                    Some("org.freedesktop.systemd1.NoSuchUnit"),
                    vec![Value::str("Unit gone.scope not loaded.")],
                );
                c.send(e, "reply").unwrap();
            }
            "ResetFailedUnit" => c
                .send(Message::reply_to(&m, None, vec![]), "reply")
                .unwrap(),
            "Get" if m.body.get(1) == Some(&Value::str("ControlGroup")) => {
                let cg = Value::str("/user.slice/user-1000.slice/user@1000.service");
                c.send(Message::reply_to(&m, None, vec![Value::variant(cg)]), "reply")
                    .unwrap();
            }
            "Get" => {
                let version = m.interface.as_deref() == Some("org.freedesktop.DBus.Properties")
                    && m.body
                        == [
                            Value::str("org.freedesktop.systemd1.Manager"),
                            Value::str("Version"),
                        ];
                let v = match version.then(|| versions.next()).flatten() {
                    Some(text) => Value::str(text),
                    None => Value::U32(7),
                };
                c.send(
                    Message::reply_to(&m, None, vec![Value::variant(v)]),
                    "reply",
                )
                .unwrap();
            }
            "GetUnit" => {
                let e = Message::reply_to(
                    &m,
                    Some("org.freedesktop.systemd1.NoSuchUnit"),
                    vec![Value::str("Unit x.scope not loaded.")],
                );
                c.send(e, "reply").unwrap();
            }
            _ => {
                // StopUnit: silence, until the test is over.
                done.recv_timeout(Duration::from_secs(10)).unwrap();
                return got;
            }
        }
    }
}

#[test]
fn systemd_calls_through_a_real_bus() {
    let Some(bus) = Bus::start() else { return };
    let peer = bus.open();
    let (ready_tx, ready) = mpsc::channel();
    let (done, done_rx) = mpsc::channel();
    let fake = std::thread::spawn(move || fake_systemd(peer, ready_tx, done_rx));
    ready.recv_timeout(Duration::from_secs(10)).unwrap();

    let mut s = Systemd::connect_at(&bus.sock, Duration::from_millis(500)).unwrap();
    let props = vec![
        ("Delegate".to_string(), Value::Bool(true)),
        (
            "PIDs".to_string(),
            Value::Array("u".into(), vec![Value::U32(7)]),
        ),
    ];
    let job = s.start_transient_unit("a.scope", "fail", props).unwrap();
    assert_eq!(job, "/org/freedesktop/systemd1/job/42");
    s.wait_job(&job, "StartTransientUnit(a.scope)").unwrap();

    let e = s.get_unit("x.scope").unwrap_err();
    assert_eq!(
        e.remote_name(),
        Some("org.freedesktop.systemd1.NoSuchUnit"),
        "{e}"
    );
    assert!(e.to_string().contains("GetUnit(x.scope)"), "{e}");

    s.reset_failed_unit("a.scope").unwrap();
    let e = s.reset_failed_unit("gone.scope").unwrap_err();
    assert_eq!(
        e.remote_name(),
        Some("org.freedesktop.systemd1.NoSuchUnit"),
        "{e}"
    );
    assert!(e.to_string().contains("ResetFailedUnit(gone.scope)"), "{e}");

    // The manager's own cgroup (a user instance's, here).
    assert_eq!(s.control_group().unwrap(), "/user.slice/user-1000.slice/user@1000.service");
    // Version: Debian's and Fedora's strings, then one without a number.
    assert_eq!(s.version().unwrap(), 252);
    assert_eq!(s.version().unwrap(), 245);
    let e = s.version().unwrap_err();
    assert!(
        matches!(e, DbusError::Garbage { .. })
            && e.to_string().contains("Get(Manager.Version)")
            && e.to_string().contains("\"unknown\""),
        "{e}"
    );
    // A Version that is not a string (the fake answers a u32 once the
    // strings are used up).
    let e = s.version().unwrap_err();
    assert!(
        matches!(e, DbusError::Garbage { .. }) && e.to_string().contains("variant of \"s\""),
        "{e}"
    );

    // A systemd that does not answer: the call ends within its bound and names the unit.
    let t0 = Instant::now();
    let e = s.stop_unit("a.scope", "replace").unwrap_err();
    assert!(
        matches!(e, DbusError::Timeout { .. }) && e.to_string().contains("StopUnit(a.scope)"),
        "{e}"
    );
    assert!(
        t0.elapsed() < Duration::from_secs(3),
        "took {:?}",
        t0.elapsed()
    );
    // The connection is spent after a timeout.
    assert!(matches!(
        s.get_unit("a.scope").unwrap_err(),
        DbusError::Spent { .. }
    ));

    done.send(()).unwrap();
    let got = fake.join().unwrap();
    // What the peer received went through dbus-daemon, which checks every
    // message it routes: the call arrived whole, as sent.
    let start = got
        .iter()
        .find(|m| m.member.as_deref() == Some("StartTransientUnit"))
        .unwrap();
    assert_eq!(start.signature(), "ssa(sv)a(sa(sv))");
    assert_eq!(start.body, start_call().body);
    let reset: Vec<_> = got
        .iter()
        .filter(|m| m.member.as_deref() == Some("ResetFailedUnit"))
        .map(|m| (m.interface.as_deref(), m.path.as_deref(), m.body.clone()))
        .collect();
    let manager = (
        Some("org.freedesktop.systemd1.Manager"),
        Some("/org/freedesktop/systemd1"),
    );
    assert_eq!(
        reset,
        [
            (manager.0, manager.1, vec![Value::str("a.scope")]),
            (manager.0, manager.1, vec![Value::str("gone.scope")])
        ]
    );
    let gets = got
        .iter()
        .filter(|m| m.member.as_deref() == Some("Get"))
        .inspect(|m| assert_eq!(m.path.as_deref(), Some("/org/freedesktop/systemd1")))
        .count();
    assert_eq!(gets, 5);
}

#[test]
fn version_numbers() {
    use super::systemd::version_number;
    // runc's systemdVersionAtoi cases, and Debian's.
    for (text, want) in [
        ("252.33-1~deb12u1", Some(252)),
        ("v245.4-1.fc32", Some(245)),
        ("\"v245-1.fc32\"", Some(245)),
        ("245", Some(245)),
        ("257~rc1", Some(257)),
        ("", None),
        ("v", None),
        ("unknown", None),
        (".252", None),
        ("99999999999", None),
    ] {
        assert_eq!(version_number(text), want, "{text:?}");
    }
}

#[test]
fn bus_address() {
    assert_eq!(
        parse_address("unix:path=/run/dbus/system_bus_socket").unwrap(),
        PathBuf::from("/run/dbus/system_bus_socket")
    );
    assert_eq!(
        parse_address("tcp:host=x;unix:guid=1,path=/tmp/a%20b").unwrap(),
        PathBuf::from("/tmp/a b")
    );
    assert!(parse_address("unix:abstract=/tmp/x")
        .unwrap_err()
        .to_string()
        .contains("unix:path="));
}

#[test]
fn the_bus_sees_the_uid_a_user_namespace_maps_to() {
    let map = "         0       1000          1\n         1     100000      65536\n";
    assert_eq!(outer_uid(map, 0), Some(1000));
    assert_eq!(outer_uid(map, 1), Some(100000));
    assert_eq!(outer_uid(map, 65536), Some(165535));
    assert_eq!(outer_uid(map, 65537), None);
    assert_eq!(outer_uid("0 0 4294967295\n", 1234), Some(1234));
    assert_eq!(outer_uid("", 0), None);
    assert_eq!(outer_uid("garbage\n", 0), None);
    // An id past u32 (a bad map) is no answer, not a wrap.
    assert_eq!(outer_uid("0 4294967295 2\n", 1), None);
}

#[test]
fn the_user_bus_is_found_as_runc_finds_it() {
    // Only this test reads these variables (the others name the socket).
    let saved: Vec<_> = ["DBUS_SESSION_BUS_ADDRESS", "XDG_RUNTIME_DIR"]
        .iter()
        .map(|k| (*k, std::env::var_os(k)))
        .collect();
    std::env::set_var("DBUS_SESSION_BUS_ADDRESS", "unix:path=/tmp/x/bus");
    std::env::set_var("XDG_RUNTIME_DIR", "/run/user/1000");
    let a = session_bus_path();
    std::env::remove_var("DBUS_SESSION_BUS_ADDRESS");
    let b = session_bus_path();
    std::env::remove_var("XDG_RUNTIME_DIR");
    let c = session_bus_path();
    for (k, v) in saved {
        match v {
            Some(v) => std::env::set_var(k, v),
            None => std::env::remove_var(k),
        }
    }
    assert_eq!(a.unwrap(), PathBuf::from("/tmp/x/bus"));
    assert_eq!(b.unwrap(), PathBuf::from("/run/user/1000/bus"));
    assert_eq!(c.unwrap(), PathBuf::from(format!("/run/user/{}/bus", bus_uid())));
}

/// The variable that makes [`hello_from_a_user_namespace`] do its part.
const USERNS_BUS: &str = "BERTH_TEST_USERNS_BUS";

/// Run by [`berth_in_a_user_namespace_authenticates_as_its_host_uid`] in a
/// user namespace whose root is uid 1000 outside: SASL EXTERNAL with the
/// namespace's own euid (0) is refused by the bus, the translated one works.
#[test]
#[ignore = "run by berth_in_a_user_namespace_authenticates_as_its_host_uid"]
fn hello_from_a_user_namespace() {
    let Some(sock) = std::env::var_os(USERNS_BUS) else { return };
    let sock = PathBuf::from(sock);
    assert_eq!(nix::unistd::geteuid().as_raw(), 0);
    assert_eq!(bus_uid(), 1000);
    // The euid as is: the bus compares it with the peer's uid it sees (1000).
    let mut raw = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    std::io::Write::write_all(&mut raw, b"\0AUTH EXTERNAL 30\r\n").unwrap();
    let mut line = String::new();
    BufReader::new(&raw).read_line(&mut line).unwrap();
    assert!(line.starts_with("REJECTED"), "AUTH EXTERNAL 0: {line:?}");
    // berth's client: Hello goes through.
    let c = Connection::open(&sock, Duration::from_secs(5)).unwrap();
    assert!(c.unique_name.starts_with(':'), "{}", c.unique_name);
    println!("userns-hello-ok {}", c.unique_name);
}

/// A real user namespace whose root is uid 1000 outside (util-linux's
/// setpriv to uid 1000, then `unshare --map-root-user`) connects to a real
/// dbus-daemon with berth's client.
#[test]
fn berth_in_a_user_namespace_authenticates_as_its_host_uid() {
    // SAFETY: geteuid takes no argument.
    if unsafe { libc::geteuid() } != 0 {
        return test_skip::skip(test_skip::ROOT, "mapping uid 1000 in a new user namespace needs root");
    }
    let Some(bus) = Bus::start() else { return };
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&bus.dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("setpriv")
        .args(["--reuid=1000", "--regid=1000", "--clear-groups", "unshare", "--user", "--map-root-user", "--"])
        .arg(&exe)
        .args(["--exact", "dbus::tests::hello_from_a_user_namespace", "--ignored", "--nocapture"])
        .env(USERNS_BUS, &bus.sock)
        .output();
    let out = match out {
        Ok(o) => o,
        Err(e) => return test_skip::skip(test_skip::TOOLS, &format!("util-linux setpriv: {e}")),
    };
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && text.contains("userns-hello-ok :"), "{text}");
}
