//! config-linux.md "Seccomp" (with "The Container Process State" sent to
//! a seccomp agent), "Masked Paths", "Readonly Paths", "Mount Label".
//!
//! Seccomp probes use getpriority(2), which the payload calls on request
//! and nothing else in a runtime's exec path uses: `getpriority 0|1|2`
//! (PRIO_PROCESS, PRIO_PGRP, PRIO_USER). Rules that kill are limited to
//! PRIO_USER by an argument filter and tried in a child process.

use std::fs;
use std::io::Read;
use std::os::unix::net::UnixListener;
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{json, Value};

use super::{must, Test};
use crate::ctx::{Ctx, Kv, Res};
use crate::{ensure, skip};

pub fn tests() -> Vec<Test> {
    let s = "config-linux.md/seccomp";
    vec![
        must(format!("{s}/filter-applied"), |cx| {
            let kv = seccomp(cx, rule("SCMP_ACT_ERRNO", None, None), &["getpriority", "0"])?;
            ensure!(kv.get("status.Seccomp") == Some("2"), "Seccomp mode {:?}, want 2 (filter)", kv.get("status.Seccomp"));
            Ok(())
        }),
        must(format!("{s}/errno-default-eperm"), |cx| {
            let kv = seccomp(cx, rule("SCMP_ACT_ERRNO", None, None), &["getpriority", "0"])?;
            expect(&kv, "getpriority.0", "err=EPERM(1)")
        }),
        must(format!("{s}/errno-ret"), |cx| {
            let kv = seccomp(cx, rule("SCMP_ACT_ERRNO", Some(99), None), &["getpriority", "0"])?;
            expect(&kv, "getpriority.0", "(99)")
        })
        .since("1.1.0"),
        must(format!("{s}/default-errno-ret"), default_errno_ret).since("1.1.0"),
        must(format!("{s}/args-filter"), |cx| {
            let kv = seccomp(cx, rule("SCMP_ACT_ERRNO", None, Some(1)), &["getpriority", "0", "1"])?;
            expect(&kv, "getpriority.0", "ok")?;
            expect(&kv, "getpriority.1", "err=EPERM(1)")
        }),
        must(format!("{s}/action-kill"), |cx| killed(cx, "SCMP_ACT_KILL")),
        must(format!("{s}/action-kill-process"), |cx| killed(cx, "SCMP_ACT_KILL_PROCESS")).since("1.1.0"),
        must(format!("{s}/action-kill-thread"), |cx| killed(cx, "SCMP_ACT_KILL_THREAD")).since("1.1.0"),
        must(format!("{s}/action-trap"), |cx| killed(cx, "SCMP_ACT_TRAP")),
        must(format!("{s}/action-log"), |cx| {
            let kv = seccomp(cx, rule("SCMP_ACT_LOG", None, None), &["getpriority", "0"])?;
            expect(&kv, "getpriority.0", "ok")
        }),
        must(format!("{s}/architectures"), |cx| {
            let mut c = cx.ctr();
            c.set(
                "/linux/seccomp",
                json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"], "syscalls": [rule("SCMP_ACT_ERRNO", None, None)]}),
            );
            c.payload(&["getpriority", "0"]);
            expect(&c.run()?, "getpriority.0", "err=EPERM(1)")
        }),
        must(format!("{s}/errno-ret-unsupported-action-error"), |cx| {
            let mut c = cx.ctr();
            c.set("/linux/seccomp", json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getpriority"], "action": "SCMP_ACT_KILL", "errnoRet": 5}]}));
            c.expect_error().map(|_| ())
        })
        .since("1.1.0"),
        must(format!("{s}/default-errno-ret-unsupported-action-error"), |cx| {
            let mut c = cx.ctr();
            c.set("/linux/seccomp", json!({"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 5}));
            c.expect_error().map(|_| ())
        })
        .since("1.1.0"),
        must(format!("{s}/names-required"), |cx| {
            let mut c = cx.ctr();
            c.set("/linux/seccomp", json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [], "action": "SCMP_ACT_ERRNO"}]}));
            c.expect_error().map(|_| ())
        }),
        must(format!("{s}/listener-metadata-needs-path-error"), |cx| {
            let mut c = cx.ctr();
            c.set("/linux/seccomp", json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerMetadata": "oc", "syscalls": [rule("SCMP_ACT_ERRNO", None, None)]}));
            c.expect_error().map(|_| ())
        })
        .since("1.1.0"),
        must(format!("{s}/listener-send-failure-error"), |cx| {
            let mut c = cx.ctr();
            c.set(
                "/linux/seccomp",
                json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": cx.file("no-such.sock"), "syscalls": [rule("SCMP_ACT_NOTIFY", None, Some(2))]}),
            );
            c.expect_error().map(|_| ())
        })
        .since("1.1.0"),
        must(format!("{s}/listener-container-process-state"), |cx| {
            let (st, _, _) = notify(cx)?;
            ensure!(st["ociVersion"].is_string(), "no ociVersion: {st}");
            ensure!(st["pid"].as_i64().is_some_and(|p| p > 0), "no pid: {st}");
            ensure!(st["metadata"] == "oc-meta", "metadata {:?}, want \"oc-meta\"", st["metadata"]);
            ensure!(st["state"]["id"].as_str().is_some_and(|i| i.starts_with("oc-")) && st["state"]["status"].is_string(), "no container state: {st}");
            Ok(())
        })
        .since("1.1.0"),
        must(format!("{s}/listener-seccomp-fd-scm-rights"), |cx| {
            let (st, fd_kind, _) = notify(cx)?;
            ensure!(st["fds"] == json!(["seccompFd"]), "fds {:?}, want [\"seccompFd\"]", st["fds"]);
            ensure!(fd_kind.contains("seccomp"), "the fd sent with SCM_RIGHTS is {fd_kind:?}, not a seccomp notify fd");
            Ok(())
        })
        .since("1.1.0"),
        must(format!("{s}/listener-one-state-per-connection"), |cx| {
            let (_, _, raw) = notify(cx)?;
            let n = serde_json::Deserializer::from_slice(&raw).into_iter::<Value>().count();
            ensure!(n == 1, "the connection carried {n} JSON documents before it was closed, want exactly 1");
            Ok(())
        })
        .since("1.1.0"),
        must("config-linux.md/masked-paths/file", |cx| masked(cx, false)),
        must("config-linux.md/masked-paths/directory", |cx| masked(cx, true)),
        must("config-linux.md/masked-paths/absolute", |cx| {
            let mut c = cx.ctr();
            c.set("/linux/maskedPaths", json!(["oc-secret"]));
            c.expect_create_error()
        }),
        must("config-linux.md/readonly-paths/file", |cx| readonly(cx, false)),
        must("config-linux.md/readonly-paths/directory", |cx| readonly(cx, true)),
        must("config-linux.md/readonly-paths/absolute", |cx| {
            let mut c = cx.ctr();
            c.set("/linux/readonlyPaths", json!(["oc-ro"]));
            c.expect_create_error()
        }),
        must("config-linux.md/mount-label/applied", |_cx| {
            if !std::path::Path::new("/sys/fs/selinux/enforce").exists() {
                skip!("SELinux is not enabled on this host");
            }
            skip!("SELinux mount labels are not checked by this suite yet")
        }),
    ]
}

/// A getpriority rule; `arg0` limits it to that `which` value.
fn rule(action: &str, errno: Option<u32>, arg0: Option<u64>) -> Value {
    let mut r = json!({"names": ["getpriority"], "action": action});
    if let Some(e) = errno {
        r["errnoRet"] = json!(e);
    }
    if let Some(a) = arg0 {
        r["args"] = json!([{"index": 0, "value": a, "op": "SCMP_CMP_EQ"}]);
    }
    r
}

fn seccomp(cx: &Ctx, r: Value, args: &[&str]) -> Res<Kv> {
    let mut c = cx.ctr();
    c.set(
        "/linux/seccomp",
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [r]}),
    );
    let mut a = args.to_vec();
    a.extend(["--", "report"]);
    c.payload(&a);
    c.run()
}

fn expect(kv: &Kv, key: &str, want: &str) -> Res {
    let got = kv.req(key)?;
    let ok = if want == "ok" {
        got.starts_with("ok")
    } else {
        got.contains(want)
    };
    ensure!(ok, "{key}: {got}, want {want}");
    Ok(())
}

fn killed(cx: &Ctx, action: &str) -> Res {
    let kv = seccomp(cx, rule(action, None, Some(2)), &["child-getpriority", "2"])?;
    expect(&kv, "child-getpriority.2", "signal=31")
}

/// Everything but getpriority allowed explicitly; the default denies with 42.
fn default_errno_ret(cx: &Ctx) -> Res {
    let mut c = cx.ctr();
    let allowed: Vec<&str> = ALLOW.split_whitespace().collect();
    c.set(
        "/linux/seccomp",
        json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 42, "syscalls": [{"names": allowed, "action": "SCMP_ACT_ALLOW"}]}),
    );
    c.payload(&["getpriority", "0"]);
    let kv = c.run()?;
    expect(&kv, "getpriority.0", "(42)")
}

/// Every x86_64 system call up to number 449 except getpriority (from the
/// kernel's unistd_64.h), so that whatever a runtime does after loading
/// the filter still works.
const ALLOW: &str =
    "read write open close stat fstat lstat poll lseek mmap mprotect munmap brk rt_sigaction rt_sigprocmask \
rt_sigreturn ioctl pread64 pwrite64 readv writev access pipe select sched_yield mremap msync mincore madvise \
shmget shmat shmctl dup dup2 pause nanosleep getitimer alarm setitimer getpid sendfile socket connect accept \
sendto recvfrom sendmsg recvmsg shutdown bind listen getsockname getpeername socketpair setsockopt getsockopt \
clone fork vfork execve exit wait4 kill uname semget semop semctl shmdt msgget msgsnd msgrcv msgctl fcntl \
flock fsync fdatasync truncate ftruncate getdents getcwd chdir fchdir rename mkdir rmdir creat link unlink \
symlink readlink chmod fchmod chown fchown lchown umask gettimeofday getrlimit getrusage sysinfo times ptrace \
getuid syslog getgid setuid setgid geteuid getegid setpgid getppid getpgrp setsid setreuid setregid getgroups \
setgroups setresuid getresuid setresgid getresgid getpgid setfsuid setfsgid getsid capget capset \
rt_sigpending rt_sigtimedwait rt_sigqueueinfo rt_sigsuspend sigaltstack utime mknod uselib personality ustat \
statfs fstatfs sysfs setpriority sched_setparam sched_getparam sched_setscheduler sched_getscheduler \
sched_get_priority_max sched_get_priority_min sched_rr_get_interval mlock munlock mlockall munlockall vhangup \
modify_ldt pivot_root _sysctl prctl arch_prctl adjtimex setrlimit chroot sync acct settimeofday mount umount2 \
swapon swapoff reboot sethostname setdomainname iopl ioperm create_module init_module delete_module \
get_kernel_syms query_module quotactl nfsservctl getpmsg putpmsg afs_syscall tuxcall security gettid \
readahead setxattr lsetxattr fsetxattr getxattr lgetxattr fgetxattr listxattr llistxattr flistxattr \
removexattr lremovexattr fremovexattr tkill time futex sched_setaffinity sched_getaffinity set_thread_area \
io_setup io_destroy io_getevents io_submit io_cancel get_thread_area lookup_dcookie epoll_create \
epoll_ctl_old epoll_wait_old remap_file_pages getdents64 set_tid_address restart_syscall semtimedop fadvise64 \
timer_create timer_settime timer_gettime timer_getoverrun timer_delete clock_settime clock_gettime \
clock_getres clock_nanosleep exit_group epoll_wait epoll_ctl tgkill utimes vserver mbind set_mempolicy \
get_mempolicy mq_open mq_unlink mq_timedsend mq_timedreceive mq_notify mq_getsetattr kexec_load waitid \
add_key request_key keyctl ioprio_set ioprio_get inotify_init inotify_add_watch inotify_rm_watch \
migrate_pages openat mkdirat mknodat fchownat futimesat newfstatat unlinkat renameat linkat symlinkat \
readlinkat fchmodat faccessat pselect6 ppoll unshare set_robust_list get_robust_list splice tee \
sync_file_range vmsplice move_pages utimensat epoll_pwait signalfd timerfd_create eventfd fallocate \
timerfd_settime timerfd_gettime accept4 signalfd4 eventfd2 epoll_create1 dup3 pipe2 inotify_init1 preadv \
pwritev rt_tgsigqueueinfo perf_event_open recvmmsg fanotify_init fanotify_mark prlimit64 name_to_handle_at \
open_by_handle_at clock_adjtime syncfs sendmmsg setns getcpu process_vm_readv process_vm_writev kcmp \
finit_module sched_setattr sched_getattr renameat2 seccomp getrandom memfd_create kexec_file_load bpf \
execveat userfaultfd membarrier mlock2 copy_file_range preadv2 pwritev2 pkey_mprotect pkey_alloc pkey_free \
statx io_pgetevents rseq pidfd_send_signal io_uring_setup io_uring_enter io_uring_register open_tree \
move_mount fsopen fsconfig fsmount fspick pidfd_open clone3 close_range openat2 pidfd_getfd faccessat2 \
process_madvise epoll_pwait2 mount_setattr quotactl_fd landlock_create_ruleset landlock_add_rule \
landlock_restrict_self memfd_secret process_mrelease futex_waitv";

/// Run a container whose getpriority(PRIO_USER) goes to a seccomp agent
/// at a socket we serve. Returns the container process state, what the
/// received fd is, and every byte read on the connection until EOF.
fn notify(cx: &Ctx) -> Res<(Value, String, Vec<u8>)> {
    let sock = cx.file("agent.sock");
    let l = UnixListener::bind(&sock).map_err(|e| format!("bind {}: {e}", sock.display()))?;
    let (tx, rx) = mpsc::channel();
    let limit = cx.remaining();
    std::thread::spawn(move || {
        let r = (|| -> Result<(Vec<u8>, String), String> {
            l.set_nonblocking(true).map_err(|e| e.to_string())?;
            let start = std::time::Instant::now();
            let (mut conn, _) = loop {
                match l.accept() {
                    Ok(c) => break c,
                    Err(_) if start.elapsed() < limit => std::thread::sleep(Duration::from_millis(10)),
                    Err(e) => return Err(format!("the runtime never connected to the seccomp agent socket: {e}")),
                }
            };
            conn.set_nonblocking(false).map_err(|e| e.to_string())?;
            let (fd, mut data) = crate::console::recv_fd(&conn)?;
            let kind = fs::read_link(format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd)))
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            conn.set_read_timeout(Some(Duration::from_secs(3)))
                .map_err(|e| e.to_string())?;
            let mut rest = Vec::new();
            match conn.read_to_end(&mut rest) {
                Ok(_) => data.extend(rest),
                Err(e) => {
                    return Err(format!(
                        "the runtime did not close the agent connection after the state: {e}"
                    ))
                }
            }
            // Dropping the notify fd makes the container's getpriority fail with ENOSYS.
            drop(fd);
            Ok((data, kind))
        })();
        let _ = tx.send(r);
    });
    let mut c = cx.ctr();
    c.set(
        "/linux/seccomp",
        json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": sock, "listenerMetadata": "oc-meta", "syscalls": [rule("SCMP_ACT_NOTIFY", None, Some(2))]}),
    );
    c.payload(&["getpriority", "2"]);
    c.create_ok()?;
    c.start_ok()?;
    let (raw, kind) = rx
        .recv_timeout(cx.remaining())
        .map_err(|_| "no seccomp agent connection".to_string())??;
    let st: Value = serde_json::Deserializer::from_slice(&raw)
        .into_iter::<Value>()
        .next()
        .and_then(|r| r.ok())
        .ok_or_else(|| format!("the agent socket received no JSON: {:?}", String::from_utf8_lossy(&raw)))?;
    Ok((st, kind, raw))
}

fn masked(cx: &Ctx, dir: bool) -> Res {
    let mut c = cx.ctr();
    c.make()?;
    let (path, probe) = if dir {
        ("/oc-secret-dir", "/oc-secret-dir/file")
    } else {
        ("/oc-secret", "/oc-secret")
    };
    if dir {
        fs::create_dir_all(c.rootfs().join("oc-secret-dir")).map_err(|e| format!("{e}"))?;
    }
    fs::write(c.rootfs().join(probe.trim_start_matches('/')), "secret").map_err(|e| format!("{e}"))?;
    c.set("/linux/maskedPaths", json!([path]));
    c.payload(&["read", probe]);
    let kv = c.run()?;
    let r = kv.req(&format!("read.{probe}"))?;
    ensure!(
        !r.contains("first=secret"),
        "{probe} is readable under the masked path {path}: {r}"
    );
    Ok(())
}

fn readonly(cx: &Ctx, dir: bool) -> Res {
    let mut c = cx.ctr();
    c.make()?;
    let (path, probe) = if dir {
        ("/oc-ro-dir", "/oc-ro-dir/new")
    } else {
        ("/oc-ro-file", "/oc-ro-file")
    };
    if dir {
        fs::create_dir_all(c.rootfs().join("oc-ro-dir")).map_err(|e| format!("{e}"))?;
    } else {
        fs::write(c.rootfs().join("oc-ro-file"), "x").map_err(|e| format!("{e}"))?;
    }
    c.set("/linux/readonlyPaths", json!([path]));
    c.payload(&["write", probe, "--", "write", "/tmp/oc-rw"]);
    let kv = c.run()?;
    expect(&kv, "write./tmp/oc-rw", "ok")?;
    let r = kv.req(&format!("write.{probe}"))?;
    ensure!(
        r.contains("EROFS"),
        "writing {probe} under the read-only path {path}: {r}, want EROFS"
    );
    Ok(())
}
