//! oci-payload: the static program the conformance suite runs inside
//! containers (and, for `hold-ns`, on the host). Standard library only, so
//! `build.rs` can compile it with a bare `rustc -C target-feature=+crt-static`.
//!
//! Usage: `oci-payload CMD [ARGS] [-- CMD [ARGS]]...`. Every command prints
//! `key=value` lines on stdout; the runner parses them. Arguments that start
//! with `ocmk` are the runner's cleanup markers and are ignored.
//!
//! Commands:
//!   report                 ids, groups, umask, cwd, uts names, caps, no_new_privs,
//!                          seccomp mode, oom_score_adj, rlimits, personality, ioprio,
//!                          scheduler, namespaces, open fds, ttys, cgroups, env, args,
//!                          uid/gid maps, time namespace offsets, memory policy
//!   stat PATH...           lstat: type, mode, owner, device numbers, link target
//!   read PATH...           read a file: length and first line, or the errno
//!   write PATH...          open for writing (creating) and write one byte
//!   mkdir PATH...          mkdir, or the errno
//!   mknod PATH...          mknod a char device 1:3, or the errno
//!   ls DIR...              directory entries
//!   devcheck               use /dev/null, zero, full, random, urandom, tty
//!   getpriority WHICH      getpriority(WHICH, 0): value or errno (seccomp probes)
//!   child-getpriority WHICH  the same in a child; prints how the child ended
//!   mountinfo              /proc/self/mountinfo, one `mi=` line per mount
//!   signals                print `ready`, then `signal=N` per signal; exit 0 on TERM
//!   sleep                  wait forever
//!   wait-file PATH         wait until PATH exists
//!   echo TEXT              print `echo=TEXT`
//!   drain                  read stdin to its end (hooks get the state there)
//!   to FILE                append the output of the following commands to FILE
//!   exit N                 exit with status N
//!   hold-ns KINDS          (host) unshare KINDS (comma list), fork a child that
//!                          waits forever, print `pid=CHILD`, wait for it

use std::ffi::CString;
use std::io::{Read, Write};
use std::os::raw::{c_char, c_int, c_long, c_ulong};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

mod report;
use report::report;

extern "C" {
    fn getrlimit(resource: c_int, rlim: *mut [u64; 2]) -> c_int;
    fn syscall(num: c_long, ...) -> c_long;
    fn umask(mask: u32) -> u32;
    fn getgroups(size: c_int, list: *mut u32) -> c_int;
    fn getresuid(r: *mut u32, e: *mut u32, s: *mut u32) -> c_int;
    fn getresgid(r: *mut u32, e: *mut u32, s: *mut u32) -> c_int;
    fn getpid() -> c_int;
    fn getppid() -> c_int;
    fn isatty(fd: c_int) -> c_int;
    fn ioctl(fd: c_int, req: c_ulong, ...) -> c_int;
    fn uname(buf: *mut [[c_char; 65]; 6]) -> c_int;
    fn personality(persona: c_ulong) -> c_int;
    fn getpriority(which: c_int, who: u32) -> c_int;
    fn fork() -> c_int;
    fn waitpid(pid: c_int, status: *mut c_int, options: c_int) -> c_int;
    fn _exit(code: c_int) -> !;
    fn mknod(path: *const c_char, mode: u32, dev: u64) -> c_int;
    fn unshare(flags: c_int) -> c_int;
    fn signal(sig: c_int, handler: usize) -> usize;
    fn pause() -> c_int;
    fn fcntl(fd: c_int, cmd: c_int, ...) -> c_int;
    fn prctl(option: c_int, ...) -> c_int;
    fn dup2(old: c_int, new: c_int) -> c_int;
    fn __errno_location() -> *mut c_int;
}

const SYS_IOPRIO_GET: c_long = 252;
const SYS_SCHED_GETATTR: c_long = 315;
const SYS_GET_MEMPOLICY: c_long = 239;

fn errno() -> i32 {
    // SAFETY: glibc's thread-local errno.
    unsafe { *__errno_location() }
}

fn set_errno(v: i32) {
    // SAFETY: as above.
    unsafe { *__errno_location() = v }
}

fn errname(e: i32) -> String {
    let n = match e {
        1 => "EPERM",
        2 => "ENOENT",
        5 => "EIO",
        6 => "ENXIO",
        9 => "EBADF",
        11 => "EAGAIN",
        13 => "EACCES",
        16 => "EBUSY",
        17 => "EEXIST",
        20 => "ENOTDIR",
        21 => "EISDIR",
        22 => "EINVAL",
        26 => "ETXTBSY",
        28 => "ENOSPC",
        30 => "EROFS",
        38 => "ENOSYS",
        _ => "E",
    };
    format!("{n}({e})")
}

fn io_err(e: &std::io::Error) -> String {
    errname(e.raw_os_error().unwrap_or(0))
}

fn out(key: &str, val: impl std::fmt::Display) {
    let mut o = std::io::stdout().lock();
    let _ = writeln!(o, "{key}={val}");
    let _ = o.flush();
}

fn one_line(s: &str) -> String {
    s.replace('\n', "\\n")
}

fn stat(path: &str) {
    let key = format!("stat.{path}");
    match std::fs::symlink_metadata(path) {
        Ok(m) => {
            let ft = m.file_type();
            let t = if ft.is_symlink() {
                "l"
            } else if ft.is_dir() {
                "d"
            } else if ft.is_char_device() {
                "c"
            } else if ft.is_block_device() {
                "b"
            } else if ft.is_fifo() {
                "p"
            } else if ft.is_socket() {
                "s"
            } else {
                "f"
            };
            let rdev = m.rdev();
            let (major, minor) = (
                ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff),
                (rdev & 0xff) | ((rdev >> 12) & !0xff),
            );
            let mut v = format!(
                "type={t} mode={:04o} uid={} gid={} rdev={major}:{minor} size={}",
                m.mode() & 0o7777,
                m.uid(),
                m.gid(),
                m.size()
            );
            if ft.is_symlink() {
                if let Ok(target) = std::fs::read_link(path) {
                    v.push_str(&format!(" link={}", target.display()));
                }
            }
            out(&key, v);
        }
        Err(e) => out(&key, format!("err={}", io_err(&e))),
    }
}

fn read(path: &str) {
    let key = format!("read.{path}");
    let mut buf = Vec::new();
    match std::fs::File::open(path).and_then(|mut f| f.read_to_end(&mut buf)) {
        Ok(n) => {
            let text = String::from_utf8_lossy(&buf);
            out(
                &key,
                format!("ok len={n} first={}", one_line(text.lines().next().unwrap_or(""))),
            );
        }
        Err(e) => out(&key, format!("err={}", io_err(&e))),
    }
}

fn write(path: &str) {
    let r = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .and_then(|mut f| f.write_all(b"x"));
    out(
        &format!("write.{path}"),
        r.map(|_| "ok".to_string())
            .unwrap_or_else(|e| format!("err={}", io_err(&e))),
    );
}

fn mkdir(path: &str) {
    let r = std::fs::create_dir(path);
    out(
        &format!("mkdir.{path}"),
        r.map(|_| "ok".to_string())
            .unwrap_or_else(|e| format!("err={}", io_err(&e))),
    );
}

fn do_mknod(path: &str) {
    let c = CString::new(path).unwrap_or_default();
    // SAFETY: mknod on a NUL-terminated path.
    let rc = unsafe { mknod(c.as_ptr(), 0o020666, (1 << 8) | 3) };
    out(
        &format!("mknod.{path}"),
        if rc == 0 {
            "ok".to_string()
        } else {
            format!("err={}", errname(errno()))
        },
    );
}

fn ls(dir: &str) {
    match std::fs::read_dir(dir) {
        Ok(rd) => {
            let mut names: Vec<String> = rd
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            out(&format!("ls.{dir}"), names.join(","));
        }
        Err(e) => out(&format!("ls.{dir}"), format!("err={}", io_err(&e))),
    }
}

fn devcheck() {
    let res = |r: std::io::Result<String>| r.unwrap_or_else(|e| format!("err={}", io_err(&e)));
    out(
        "dev./dev/null",
        res((|| {
            let mut f = std::fs::OpenOptions::new().read(true).write(true).open("/dev/null")?;
            f.write_all(b"x")?;
            let mut b = [0u8; 4];
            Ok(format!("ok read={}", f.read(&mut b)?))
        })()),
    );
    out(
        "dev./dev/zero",
        res((|| {
            let mut b = [1u8; 8];
            std::fs::File::open("/dev/zero")?.read_exact(&mut b)?;
            Ok(if b == [0u8; 8] { "ok".into() } else { "nonzero".into() })
        })()),
    );
    out(
        "dev./dev/full",
        res((|| {
            let mut f = std::fs::OpenOptions::new().write(true).open("/dev/full")?;
            Ok(match f.write_all(b"x") {
                Ok(()) => "wrote".into(),
                Err(e) => format!("ok write={}", io_err(&e)),
            })
        })()),
    );
    for p in ["/dev/random", "/dev/urandom"] {
        out(
            &format!("dev.{p}"),
            res((|| {
                let mut b = [0u8; 16];
                std::fs::File::open(p)?.read_exact(&mut b)?;
                Ok("ok".into())
            })()),
        );
    }
    // Without a controlling terminal, opening /dev/tty gives ENXIO: the
    // node works, there is just no terminal behind it.
    out(
        "dev./dev/tty",
        res(std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/tty")
            .map(|_| "ok".into())),
    );
}

fn prio_which(w: &str) -> c_int {
    w.parse().unwrap_or(0)
}

fn do_getpriority(which: &str) {
    set_errno(0);
    // SAFETY: getpriority on ourselves / our group / our user.
    let v = unsafe { getpriority(prio_which(which), 0) };
    let e = errno();
    out(
        &format!("getpriority.{which}"),
        if v == -1 && e != 0 {
            format!("err={}", errname(e))
        } else {
            format!("ok {v}")
        },
    );
}

fn child_getpriority(which: &str) {
    // SAFETY: fork; the child only calls async-signal-safe functions.
    unsafe {
        let pid = fork();
        if pid == 0 {
            set_errno(0);
            let v = getpriority(prio_which(which), 0);
            _exit(if v == -1 && errno() != 0 { 1 } else { 0 });
        }
        let mut st = 0;
        waitpid(pid, &mut st, 0);
        let v = if st & 0x7f == 0 {
            format!("exit={}", (st >> 8) & 0xff)
        } else {
            format!("signal={}", st & 0x7f)
        };
        out(&format!("child-getpriority.{which}"), v);
    }
}

fn mountinfo() {
    for l in std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
    {
        out("mi", l);
    }
}

static GOT: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(sig: c_int) {
    GOT.store(sig, Ordering::SeqCst);
}

fn signals() -> ! {
    for s in [1, 2, 10, 12, 15] {
        // SAFETY: installing a handler that only stores an atomic.
        unsafe { signal(s, on_signal as *const () as usize) };
    }
    out("ready", 1);
    loop {
        // SAFETY: pause returns after a handled signal.
        unsafe { pause() };
        let s = GOT.swap(0, Ordering::SeqCst);
        if s != 0 {
            out("signal", s);
        }
        if s == 15 {
            std::process::exit(0);
        }
    }
}

fn hold_ns(kinds: &str) -> ! {
    let mut flags = 0;
    for k in kinds.split(',') {
        flags |= match k {
            "mount" | "mnt" => 0x0002_0000,
            "uts" => 0x0400_0000,
            "ipc" => 0x0800_0000,
            "user" => 0x1000_0000,
            "pid" => 0x2000_0000,
            "network" | "net" => 0x4000_0000,
            "cgroup" => 0x0200_0000,
            "time" => 0x0000_0080,
            _ => {
                out("error", format!("unknown namespace kind {k}"));
                std::process::exit(2)
            }
        };
    }
    // SAFETY: unshare and fork in a single-threaded program.
    unsafe {
        if unshare(flags) != 0 {
            out("error", format!("unshare {kinds}: {}", errname(errno())));
            std::process::exit(1);
        }
        let pid = fork();
        if pid == 0 {
            loop {
                pause();
            }
        }
        out("pid", pid);
        let mut st = 0;
        waitpid(pid, &mut st, 0);
        _exit(0)
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("ocmk")).collect();
    for cmd in args.split(|a| a == "--") {
        let Some((name, rest)) = cmd.split_first() else {
            continue;
        };
        match name.as_str() {
            "report" => report(),
            "stat" => rest.iter().for_each(|p| stat(p)),
            "read" => rest.iter().for_each(|p| read(p)),
            "write" => rest.iter().for_each(|p| write(p)),
            "mkdir" => rest.iter().for_each(|p| mkdir(p)),
            "mknod" => rest.iter().for_each(|p| do_mknod(p)),
            "ls" => rest.iter().for_each(|p| ls(p)),
            "devcheck" => devcheck(),
            "getpriority" => rest.iter().for_each(|w| do_getpriority(w)),
            "child-getpriority" => rest.iter().for_each(|w| child_getpriority(w)),
            "mountinfo" => mountinfo(),
            "signals" => signals(),
            "sleep" => loop {
                std::thread::sleep(Duration::from_secs(3600));
            },
            "wait-file" => {
                let p = rest.first().map(String::as_str).unwrap_or("/go");
                while std::fs::symlink_metadata(p).is_err() {
                    std::thread::sleep(Duration::from_millis(10));
                }
                out("waited", p);
            }
            "echo" => out("echo", rest.join(" ")),
            "drain" => {
                let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
            }
            "to" => {
                use std::os::fd::IntoRawFd;
                let p = rest.first().map(String::as_str).unwrap_or("/dev/null");
                match std::fs::OpenOptions::new().append(true).create(true).open(p) {
                    // SAFETY: dup2 onto stdout; the new fd is ours.
                    Ok(f) => unsafe {
                        dup2(f.into_raw_fd(), 1);
                    },
                    Err(e) => out("error", format!("open {p}: {}", io_err(&e))),
                }
            }
            "exit" => std::process::exit(rest.first().and_then(|c| c.parse().ok()).unwrap_or(0)),
            "hold-ns" => hold_ns(rest.first().map(String::as_str).unwrap_or("")),
            other => {
                out("error", format!("unknown command {other}"));
                std::process::exit(2);
            }
        }
    }
}
