//! Tests of the hooks module: real hook processes.

use super::*;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A scratch directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "berth-hooks-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path(name)).unwrap()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn hook(v: serde_json::Value) -> Hook {
    serde_json::from_value(v).unwrap()
}

/// `/bin/sh -c SCRIPT` with `$1` = `arg`. Running the shell, not a script
/// file, avoids ETXTBSY races with other tests forking.
fn sh(script: &str, arg: &Path) -> Hook {
    hook(json!({
        "path": "/bin/sh",
        "args": ["sh", "-c", script, "sh", arg.display().to_string()],
    }))
}

#[test]
fn runs_in_order_and_stops_at_first_failure() {
    let s = Scratch::new();
    let log = s.path("log");
    let hooks = vec![
        sh("echo one >> \"$1\"", &log),
        sh("echo two >> \"$1\"", &log),
        sh("echo three >> \"$1\"", &log),
    ];
    run_hooks(HookKind::CreateRuntime, &hooks, b"{}").unwrap();
    assert_eq!(s.read("log"), b"one\ntwo\nthree\n");

    std::fs::remove_file(&log).unwrap();
    let hooks = vec![
        sh("echo one >> \"$1\"", &log),
        sh("echo failing >&2; exit 3", &log),
        sh("echo three >> \"$1\"", &log),
    ];
    let err = run_hooks(HookKind::Poststart, &hooks, b"{}").unwrap_err();
    assert_eq!(err.kind, "poststart");
    assert_eq!(err.index, 1);
    assert_eq!(err.path, "/bin/sh");
    assert!(err.msg.starts_with("exited with status 3"), "{err}");
    assert!(err.msg.contains("failing"), "{err}");
    assert_eq!(s.read("log"), b"one\n");
    assert!(err
        .to_string()
        .starts_with("poststart hook #1 (/bin/sh): exited with status 3"));
}

#[test]
fn state_on_stdin_byte_exact() {
    let s = Scratch::new();
    let out = s.path("state");
    let state =
        b"{\"ociVersion\":\"1.2.0\",\"id\":\"c1\",\n\"status\":\"creating\"}\x00\xff tail";
    run_hooks(HookKind::CreateRuntime, &[sh("cat > \"$1\"", &out)], state).unwrap();
    assert_eq!(s.read("state"), state);

    // Larger than a pipe buffer, so the write loop must interleave.
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    run_hooks(HookKind::CreateRuntime, &[sh("cat > \"$1\"", &out)], &big).unwrap();
    assert_eq!(s.read("state"), big);

    // Empty state: stdin is at EOF at once.
    run_hooks(HookKind::CreateRuntime, &[sh("cat > \"$1\"", &out)], b"").unwrap();
    assert_eq!(s.read("state"), b"");
}

#[test]
fn hook_not_reading_large_state() {
    let big = vec![b'x'; 4 << 20];
    let start = Instant::now();
    let hooks = vec![
        hook(json!({"path": "/bin/true"})),
        hook(json!({"path": "/bin/sh", "args": ["sh", "-c", "exec 0<&-; sleep 0.2"]})),
    ];
    run_hooks(HookKind::Poststop, &hooks, &big).unwrap();
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn args_and_env_exact() {
    let s = Scratch::new();
    let h = hook(json!({
        "path": "/bin/sh",
        "args": ["my-argv0", "-c",
                 "/usr/bin/tr '\\0' '\\n' < /proc/$$/cmdline > \"$1\"; /usr/bin/tr '\\0' '\\n' < /proc/$$/environ > \"$2\"",
                 "zero", s.path("argv").display().to_string(), s.path("env").display().to_string(),
                 "with space", ""],
        "env": ["FOO=bar", "EMPTY=", "WITH_EQ=a=b", "PATH=/nowhere"],
    }));
    run_hooks(HookKind::StartContainer, &[h], b"{}").unwrap();
    let argv = String::from_utf8(s.read("argv")).unwrap();
    let argv: Vec<&str> = argv.split('\n').collect();
    assert_eq!(argv[0], "my-argv0");
    assert_eq!(argv[1], "-c");
    assert_eq!(
        &argv[3..],
        [
            "zero",
            s.path("argv").to_str().unwrap(),
            s.path("env").to_str().unwrap(),
            "with space",
            "",
            ""
        ]
    );
    let env = String::from_utf8(s.read("env")).unwrap();
    let mut env: Vec<&str> = env.lines().collect();
    env.sort();
    assert_eq!(env, ["EMPTY=", "FOO=bar", "PATH=/nowhere", "WITH_EQ=a=b"]);
}

#[test]
fn no_args_means_argv_is_path_and_no_env() {
    let s = Scratch::new();
    // /bin/sh with no arguments reads its script from stdin.
    let script = format!(
        "tr '\\0' '\\n' < /proc/$$/cmdline > {0}/argv; tr '\\0' '\\n' < /proc/$$/environ > {0}/env",
        s.0.display()
    );
    run_hooks(
        HookKind::Prestart,
        &[hook(json!({"path": "/bin/sh"}))],
        script.as_bytes(),
    )
    .unwrap();
    assert_eq!(s.read("argv"), b"/bin/sh\n");
    assert_eq!(s.read("env"), b"");
}

#[test]
fn non_zero_exit_and_stderr_truncated() {
    let h = hook(
        json!({"path": "/bin/sh", "args": ["sh", "-c", "echo out; echo '  oops  ' >&2; exit 42"]}),
    );
    let err = run_hooks(HookKind::CreateContainer, &[h], b"{}").unwrap_err();
    assert_eq!(err.kind, "createContainer");
    assert_eq!(err.index, 0);
    assert_eq!(err.msg, "exited with status 42, stderr: oops");

    let h = hook(json!({"path": "/bin/sh", "args": ["sh", "-c",
        "i=0; while [ $i -lt 3000 ]; do echo line-$i >&2; i=$((i+1)); done; exit 1"]}));
    let err = run_hooks(HookKind::CreateContainer, &[h], b"{}").unwrap_err();
    assert!(
        err.msg.starts_with("exited with status 1, stderr: ..."),
        "{}",
        &err.msg[..80]
    );
    assert!(err.msg.len() < STDERR_IN_MESSAGE + 100);
    assert!(err.msg.ends_with("line-2999"));
}

#[test]
fn killed_by_signal() {
    let h = hook(json!({"path": "/bin/sh", "args": ["sh", "-c", "kill -TERM $$"]}));
    let err = run_hooks(HookKind::Poststop, &[h], b"").unwrap_err();
    assert_eq!(err.msg, "killed by signal 15");
}

#[test]
fn timeout_kills_and_reaps() {
    let s = Scratch::new();
    let pidfile = s.path("pid");
    let mut h = sh("echo $$ > \"$1\"; exec sleep 100", &pidfile);
    h.set_timeout(Some(1));
    let start = Instant::now();
    let err = run_hooks(HookKind::CreateRuntime, &[h], b"{}").unwrap_err();
    let took = start.elapsed();
    assert_eq!(err.msg, "timed out after 1s");
    assert!(
        took >= Duration::from_millis(950) && took < Duration::from_secs(3),
        "{took:?}"
    );
    let pid = String::from_utf8(s.read("pid")).unwrap();
    let pid = pid.trim();
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "hook {pid} still exists"
    );

    // Plain sleep, no shell.
    let h = hook(json!({"path": "/bin/sleep", "args": ["sleep", "100"], "timeout": 1}));
    let start = Instant::now();
    let err = run_hooks(HookKind::CreateRuntime, &[h], b"{}").unwrap_err();
    assert_eq!(err.msg, "timed out after 1s");
    assert!(start.elapsed() < Duration::from_secs(3));
}

#[test]
fn fast_hook_with_timeout_succeeds() {
    let h = hook(json!({"path": "/bin/true", "timeout": 10}));
    let start = Instant::now();
    run_hooks(HookKind::CreateRuntime, &[h], b"{}").unwrap();
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[test]
fn invalid_timeout() {
    let h = hook(json!({"path": "/bin/true", "timeout": 0}));
    let err = run_hooks(HookKind::CreateRuntime, &[h], b"{}").unwrap_err();
    assert!(err.msg.contains("must be greater than zero"), "{err}");
}

#[test]
fn missing_executable() {
    let h = hook(json!({"path": "/nonexistent/berth-hook"}));
    let err = run_hooks(HookKind::Prestart, &[h], b"{}").unwrap_err();
    assert_eq!(err.path, "/nonexistent/berth-hook");
    assert!(err.msg.starts_with("cannot execute: "), "{err}");
    assert!(err.msg.contains("No such file or directory"), "{err}");
}

#[test]
fn not_executable() {
    let s = Scratch::new();
    let p = s.path("hook.sh");
    std::fs::write(&p, b"#!/bin/sh\nexit 0\n").unwrap();
    let h = hook(json!({"path": p.display().to_string()}));
    let err = run_hooks(HookKind::Prestart, &[h], b"{}").unwrap_err();
    assert!(err.msg.contains("Permission denied"), "{err}");
}

#[test]
fn relative_path_rejected() {
    let h = hook(json!({"path": "bin/true"}));
    let err = run_hooks(HookKind::Prestart, &[h], b"{}").unwrap_err();
    assert!(err.msg.contains("absolute"), "{err}");
}

#[test]
fn hook_gets_default_signal_mask_and_sigpipe() {
    let s = Scratch::new();
    let out = s.path("status");
    // Block a few signals on this thread, as a caller might.
    // SAFETY: sigset_t is plain data; all-zero is a valid value, reset by sigemptyset.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: sigset_t is plain data; all-zero is a valid value, filled by pthread_sigmask.
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` and `old` are live sigset_ts on this frame; blocking signals in this
    // test thread only (pthread_sigmask) affects no other test.
    unsafe {
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGUSR1);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
    }
    let res = run_hooks(
        HookKind::CreateRuntime,
        &[sh(
            "exec grep -E '^Sig(Blk|Ign):' /proc/self/status > \"$1\"",
            &out,
        )],
        b"{}",
    );
    // SAFETY: `old` is the mask saved above; restoring it touches this thread only.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
    res.unwrap();
    let status = String::from_utf8(s.read("status")).unwrap();
    let field = |name: &str| {
        let line = status.lines().find(|l| l.starts_with(name)).unwrap();
        u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
    };
    assert_eq!(field("SigBlk:"), 0, "{status}");
    let sigpipe_bit = 1u64 << (libc::SIGPIPE - 1);
    assert_eq!(
        field("SigIgn:") & sigpipe_bit,
        0,
        "SIGPIPE ignored in hook: {status}"
    );
}

#[test]
fn runs_in_a_single_threaded_process_without_threads() {
    // Like the container init: a forked, single-threaded process. The
    // hook counts its parent's threads while run_hooks is polling.
    let s = Scratch::new();
    let out = s.path("threads");
    let hooks = vec![
        sh("ls /proc/$PPID/task | wc -l > \"$1\"", &out),
        hook(json!({"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1})),
    ];
    // SAFETY: the child only runs run_hooks (glibc's fork keeps malloc
    // usable) and then _exit()s.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let r =
            std::panic::catch_unwind(|| run_hooks(HookKind::CreateContainer, &hooks, b"{}"));
        let code = match r {
            Ok(Err(e)) if e.index == 1 && e.msg == "timed out after 1s" => 0,
            _ => 1,
        };
        // SAFETY: _exit: the forked child must not run the test harness's destructors.
        unsafe { libc::_exit(code) };
    }
    let start = Instant::now();
    let mut status = 0;
    loop {
        // SAFETY: `status` is a live i32 and `pid` our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            break;
        }
        if start.elapsed() > Duration::from_secs(20) {
            // SAFETY: `pid` is our own unreaped child, so the pid cannot have been reused.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            // SAFETY: `status` is a live i32 and `pid` our own child.
            unsafe { libc::waitpid(pid, &mut status, 0) };
            panic!("forked run_hooks hung");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "status {status:#x}"
    );
    assert_eq!(String::from_utf8(s.read("threads")).unwrap().trim(), "1");
}

#[test]
fn without_pidfd() {
    let s = Scratch::new();
    let out = s.path("state");
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    run_hook_with(&sh("cat > \"$1\"", &out), &big, false).unwrap();
    assert_eq!(s.read("state"), big);
    let h = hook(json!({"path": "/bin/sh", "args": ["sh", "-c", "echo bad >&2; exit 7"]}));
    assert_eq!(
        run_hook_with(&h, b"{}", false).unwrap_err(),
        "exited with status 7, stderr: bad"
    );
    let h = hook(json!({"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}));
    let start = Instant::now();
    assert_eq!(
        run_hook_with(&h, b"{}", false).unwrap_err(),
        "timed out after 1s"
    );
    assert!(start.elapsed() < Duration::from_secs(3));
}

#[test]
fn sigpipe_mask_restored() {
    // After feeding a hook that closed stdin, SIGPIPE is neither left
    // blocked nor pending on this thread.
    let big = vec![b'y'; 1 << 20];
    let h = hook(json!({"path": "/bin/sh", "args": ["sh", "-c", "exec 0<&-; sleep 0.1"]}));
    run_hooks(HookKind::Poststop, &[h], &big).unwrap();
    // SAFETY: `cur` is a zeroed (valid) sigset_t that pthread_sigmask fills; a null new
    // mask only reads this thread's mask.
    unsafe {
        let mut cur: libc::sigset_t = std::mem::zeroed();
        libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut cur);
        assert_eq!(libc::sigismember(&cur, libc::SIGPIPE), 0);
    }
}
