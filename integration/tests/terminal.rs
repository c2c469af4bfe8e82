//! Terminals: `process.terminal` with `--console-socket` (the pty master
//! arrives over the socket), foreground `run -t` and `exec -t` proxying a
//! pty the test gives berth as its stdio (raw mode set and restored,
//! SIGWINCH forwarded as a resize), `consoleSize`, and the flag rules.

use berth_integration::prelude::*;
use berth_integration::tty::{self, ConsoleSocket, Pty, Reader, Stdio3};

const LONG: Duration = Duration::from_secs(20);

fn with_terminal(name: &str, script: &str) -> Env {
    let mut env = Env::sh(name, script);
    env.set("/process/terminal", json!(true));
    env
}

/// berth `args` with `pty`'s slave as its terminal (stdin, stdout, stderr).
fn on_pty(env: &Env, args: &[&str], pty: &Pty) -> tty::Berth {
    tty::spawn(
        env,
        args,
        Stdio3 {
            pty: Some(pty),
            ..Default::default()
        },
    )
}

fn lflag(t: &libc::termios) -> libc::tcflag_t {
    t.c_lflag & (libc::ICANON | libc::ECHO | libc::ISIG)
}

#[test]
fn run_tty_proxies_the_terminal_and_restores_it() {
    let env = with_terminal(
        "run_tty_proxy",
        "tty; [ -t 0 ] && echo stdin-is-a-tty; read line; echo \"got:$line\"; exit 3",
    );
    let pty = Pty::open(24, 80);
    let before = pty.termios();
    let reader = Reader::start(&pty.master);
    let mut b = on_pty(&env, &["run", "--bundle", &env.bundle_str(), &env.id], &pty);
    let text = reader.wait_for("stdin-is-a-tty", LONG);
    assert!(
        text.contains("/dev/pts/0"),
        "the container's stdin is not its own pty: {text:?}"
    );
    // While the container runs, berth's terminal is raw: no echo, no
    // canonical mode, no signals from keys.
    assert_eq!(
        lflag(&pty.termios()),
        0,
        "berth's terminal is not in raw mode"
    );
    // A raw terminal sends CR for Enter; the container's pty turns it into NL.
    tty::write_all(&pty.master, b"hello\r");
    reader.wait_for("got:hello", LONG);
    assert_eq!(b.code(LONG), 3, "run -t exits with the container's status");
    assert_eq!(
        lflag(&pty.termios()),
        lflag(&before),
        "berth did not restore its terminal"
    );
    assert_no_leftovers(&env);
}

#[test]
fn run_tty_output_gets_crlf_from_the_container_pty() {
    let env = with_terminal("run_tty_crlf", "echo one; echo two");
    let pty = Pty::open(24, 80);
    let reader = Reader::start(&pty.master);
    let mut b = on_pty(&env, &["run", "--bundle", &env.bundle_str(), &env.id], &pty);
    assert_eq!(b.code(LONG), 0);
    reader.wait_for("one\r\ntwo\r\n", LONG);
    assert_no_leftovers(&env);
}

#[test]
fn run_tty_forwards_sigwinch_as_a_resize() {
    let env = with_terminal("run_tty_winch", "stty size; read x; stty size");
    let pty = Pty::open(30, 100);
    let reader = Reader::start(&pty.master);
    let mut b = on_pty(&env, &["run", "--bundle", &env.bundle_str(), &env.id], &pty);
    reader.wait_for("30 100", LONG);
    // berth's terminal changes size: the kernel sends berth SIGWINCH, berth
    // resizes the container's pty.
    pty.set_size(40, 120);
    tty::write_all(&pty.master, b"go\r");
    reader.wait_for("40 120", LONG);
    assert_eq!(b.code(LONG), 0);
    assert_no_leftovers(&env);
}

#[test]
fn run_tty_forwards_signals() {
    let env = with_terminal(
        "run_tty_signal",
        &format!(
            "trap 'echo got-usr1; exit 9' USR1; echo ready; {}",
            "while :; do sleep 0.05; done"
        ),
    );
    let pty = Pty::open(24, 80);
    let reader = Reader::start(&pty.master);
    let mut b = on_pty(&env, &["run", "--bundle", &env.bundle_str(), &env.id], &pty);
    reader.wait_for("ready", LONG);
    b.signal(libc::SIGUSR1);
    reader.wait_for("got-usr1", LONG);
    assert_eq!(b.code(LONG), 9);
    assert_no_leftovers(&env);
}

#[test]
fn run_tty_without_a_terminal_is_a_clear_error() {
    let env = with_terminal("run_tty_no_term", "true");
    // No terminal on stdio and no controlling terminal (new session).
    let mut b = tty::spawn(
        &env,
        &["run", "--bundle", &env.bundle_str(), &env.id],
        Stdio3::default(),
    );
    assert_eq!(b.code(LONG), 1);
    let err = b.stderr();
    assert!(
        err.contains("terminal") && err.contains("--console-socket"),
        "{err}"
    );
    assert_no_leftovers(&env);
}

#[test]
fn create_sends_the_master_over_the_console_socket() {
    let script =
        "tty; stty size; stat -c '%t,%T %a' /dev/console; cut -d' ' -f6,7 /proc/1/stat; echo end";
    let mut env = with_terminal("console_socket", script);
    env.set("/process/consoleSize", json!({"height": 25, "width": 90}));
    let sock = ConsoleSocket::bind(&env.file("console.sock"));
    env.berth(&[
        "create",
        "--console-socket",
        &sock.path_str(),
        "--bundle",
        &env.bundle_str(),
        &env.id,
    ])
    .ok();
    let (name, master) = sock.receive(SHORT);
    assert_eq!(name, "/dev/ptmx", "the fd's name, as runc sends it");
    let reader = Reader::start(&master);
    env.start();
    let text = reader.wait_for("end", LONG);
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    assert_eq!(lines[0], "/dev/pts/0", "{text:?}");
    assert_eq!(lines[1], "25 90", "consoleSize not applied: {text:?}");
    // /dev/console is the pty slave (char 136,N), mode 620 from devpts.
    assert!(
        lines[2].starts_with("88,0 "),
        "/dev/console is not /dev/pts/0: {text:?}"
    );
    // init (pid 1) leads its session and has the pty as controlling
    // terminal: tty_nr = makedev(136, 0) = 34816.
    assert_eq!(
        lines[3], "1 34816",
        "session / controlling terminal: {text:?}"
    );
    env.wait_status("stopped", SHORT);
    env.delete().ok();
    assert_no_leftovers(&env);
}

#[test]
fn console_socket_terminal_belongs_to_the_process_user() {
    let mut env = with_terminal("console_owner", "stat -c %u $(tty); echo end");
    env.set("/process/user", json!({"uid": 1000, "gid": 1000}));
    let sock = ConsoleSocket::bind(&env.file("console.sock"));
    env.berth(&[
        "run",
        "-d",
        "--console-socket",
        &sock.path_str(),
        "--bundle",
        &env.bundle_str(),
        &env.id,
    ])
    .ok();
    let (_, master) = sock.receive(SHORT);
    let reader = Reader::start(&master);
    let text = reader.wait_for("end", LONG);
    assert_eq!(text.lines().next().map(str::trim), Some("1000"), "{text:?}");
    env.wait_status("stopped", SHORT);
    env.delete().ok();
    assert_no_leftovers(&env);
}

#[test]
fn terminal_without_console_socket_is_refused_when_detached() {
    let env = with_terminal("tty_no_socket", "true");
    let bundle = env.bundle_str();
    for cmd in ["create", "run"] {
        let mut args = vec![cmd, "--bundle", &bundle, &env.id];
        if cmd == "run" {
            args.insert(1, "-d");
        }
        env.berth(&args)
            .fails_with(&["config.json", "process.terminal", "--console-socket"]);
        assert_no_leftovers(&env);
    }
}

#[test]
fn console_socket_without_terminal_is_refused() {
    let env = Env::sh("socket_no_tty", "true");
    let sock = ConsoleSocket::bind(&env.file("console.sock"));
    env.berth(&[
        "create",
        "--console-socket",
        &sock.path_str(),
        "--bundle",
        &env.bundle_str(),
        &env.id,
    ])
    .fails_with(&["--console-socket", "no terminal"]);
    assert_no_leftovers(&env);
}

#[test]
fn console_socket_with_foreground_run_is_refused() {
    let env = with_terminal("socket_fg_run", "true");
    let sock = ConsoleSocket::bind(&env.file("console.sock"));
    env.berth(&[
        "run",
        "--console-socket",
        &sock.path_str(),
        "--bundle",
        &env.bundle_str(),
        &env.id,
    ])
    .fails_with(&["--console-socket", "foreground"]);
    assert_no_leftovers(&env);
}

#[test]
fn console_socket_that_does_not_exist_is_a_clear_error() {
    let env = with_terminal("socket_missing", "true");
    let nowhere = env.file("no.sock");
    let nowhere = nowhere.to_str().unwrap();
    env.berth(&[
        "create",
        "--console-socket",
        nowhere,
        "--bundle",
        &env.bundle_str(),
        &env.id,
    ])
    .fails_with(&["--console-socket", nowhere]);
    assert_no_leftovers(&env);
}

#[test]
fn exec_tty_in_the_foreground() {
    let env = Env::sh("exec_tty_fg", SLEEPER);
    env.run_detached();
    let pty = Pty::open(33, 111);
    let before = pty.termios();
    let reader = Reader::start(&pty.master);
    let script = "tty; stty size; read x; echo \"got:$x\"; exit 4";
    let mut b = on_pty(&env, &["exec", "-t", &env.id, "sh", "-c", script], &pty);
    let text = reader.wait_for("33 111", LONG);
    assert!(text.contains("/dev/pts/"), "{text:?}");
    tty::write_all(&pty.master, b"typed\r");
    reader.wait_for("got:typed", LONG);
    assert_eq!(b.code(LONG), 4);
    assert_eq!(
        lflag(&pty.termios()),
        lflag(&before),
        "berth did not restore its terminal"
    );
    env.delete_force().ok();
    assert_no_leftovers(&env);
}

#[test]
fn exec_detached_tty_goes_to_the_console_socket() {
    let env = Env::sh("exec_tty_socket", SLEEPER);
    env.run_detached();
    let sock = ConsoleSocket::bind(&env.file("exec.sock"));
    let pf = env.file("exec.pid");
    env.berth(&[
        "exec",
        "-d",
        "-t",
        "-u",
        "1000",
        "--console-socket",
        &sock.path_str(),
        "--pid-file",
        pf.to_str().unwrap(),
        &env.id,
        "sh",
        "-c",
        "tty; stat -c %u $(tty); cut -d' ' -f6,7 /proc/self/stat; read x; echo \"got:$x\"",
    ])
    .ok();
    let (_, master) = sock.receive(SHORT);
    let reader = Reader::start(&master);
    let text = reader.wait_for("\n", LONG);
    assert!(text.starts_with("/dev/pts/"), "{text:?}");
    tty::write_all(&master, b"hi\n");
    let text = reader.wait_for("got:hi", LONG);
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    assert_eq!(
        lines[1], "1000",
        "the exec pty is not owned by the process user: {text:?}"
    );
    // The process leads its own session, with the pty as its terminal.
    let mut f = lines[2].split(' ');
    let (sid, tty_nr) = (f.next().unwrap(), f.next().unwrap());
    assert_ne!(tty_nr, "0", "no controlling terminal: {text:?}");
    let pid: i64 = fs::read_to_string(&pf).unwrap().trim().parse().unwrap();
    wait_until(SHORT, || !pid_alive(pid));
    assert!(!sid.is_empty());
    env.delete_force().ok();
    assert_no_leftovers(&env);
}

#[test]
fn exec_tty_rules() {
    let env = Env::sh("exec_tty_rules", SLEEPER);
    env.run_detached();
    env.berth(&["exec", "-d", "-t", &env.id, "true"])
        .fails_with(&["terminal", "--console-socket"]);
    let sock = ConsoleSocket::bind(&env.file("x.sock"));
    env.berth(&[
        "exec",
        "-d",
        "--console-socket",
        &sock.path_str(),
        &env.id,
        "true",
    ])
    .fails_with(&["--console-socket"]);
    env.delete_force().ok();
    assert_no_leftovers(&env);
}
