//! `report`: everything the process sees about itself, as key=value lines.

use std::os::raw::{c_char, c_int, c_long, c_ulong};

use crate::{
    errname, errno, fcntl, getgroups, getpid, getppid, getpriority, getresgid, getresuid, getrlimit, io_err, ioctl,
    isatty, out, personality, prctl, set_errno, syscall, umask, uname, SYS_GET_MEMPOLICY, SYS_IOPRIO_GET,
    SYS_SCHED_GETATTR,
};

const RLIMITS: [&str; 16] = [
    "RLIMIT_CPU",
    "RLIMIT_FSIZE",
    "RLIMIT_DATA",
    "RLIMIT_STACK",
    "RLIMIT_CORE",
    "RLIMIT_RSS",
    "RLIMIT_NPROC",
    "RLIMIT_NOFILE",
    "RLIMIT_MEMLOCK",
    "RLIMIT_AS",
    "RLIMIT_LOCKS",
    "RLIMIT_SIGPENDING",
    "RLIMIT_MSGQUEUE",
    "RLIMIT_NICE",
    "RLIMIT_RTPRIO",
    "RLIMIT_RTTIME",
];

fn cstr(buf: &[c_char]) -> String {
    let bytes: Vec<u8> = buf.iter().take_while(|c| **c != 0).map(|c| *c as u8).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

pub fn report() {
    // SAFETY (whole function): plain libc/syscall queries on local buffers.
    unsafe {
        out("pid", getpid());
        out("ppid", getppid());
        let (mut r, mut e, mut s) = (0u32, 0u32, 0u32);
        getresuid(&mut r, &mut e, &mut s);
        out("uid", format!("{r} {e} {s}"));
        getresgid(&mut r, &mut e, &mut s);
        out("gid", format!("{r} {e} {s}"));
        let mut groups = [0u32; 256];
        let n = getgroups(256, groups.as_mut_ptr()).max(0) as usize;
        let mut g: Vec<u32> = groups[..n].to_vec();
        g.sort_unstable();
        out("groups", g.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(","));
        let m = umask(0);
        umask(m);
        out("umask", format!("{m:04o}"));
        let mut uts = [[0 as c_char; 65]; 6];
        uname(&mut uts);
        out("hostname", cstr(&uts[1]));
        out("machine", cstr(&uts[4]));
        out("domainname", cstr(&uts[5]));
        out("personality", format!("{:#x}", personality(0xffff_ffff)));
        set_errno(0);
        let io = syscall(SYS_IOPRIO_GET, 1 as c_long, 0 as c_long);
        if io < 0 {
            out("ioprio", format!("err={}", errname(errno())));
        } else {
            out("ioprio", format!("{} {}", io >> 13, io & 0xff));
        }
        let mut attr = [0u8; 56];
        if syscall(
            SYS_SCHED_GETATTR,
            0 as c_long,
            attr.as_mut_ptr(),
            56 as c_long,
            0 as c_long,
        ) == 0
        {
            let u32at = |o: usize| u32::from_ne_bytes(attr[o..o + 4].try_into().unwrap_or([0; 4]));
            let u64at = |o: usize| u64::from_ne_bytes(attr[o..o + 8].try_into().unwrap_or([0; 8]));
            out("sched.policy", u32at(4));
            out("sched.flags", u64at(8));
            out("sched.nice", u32at(16) as i32);
            out("sched.priority", u32at(20));
            out("sched.runtime", u64at(24));
            out("sched.deadline", u64at(32));
            out("sched.period", u64at(40));
        } else {
            out("sched", format!("err={}", errname(errno())));
        }
        set_errno(0);
        out("nice", getpriority(0, 0));
        for (i, name) in RLIMITS.iter().enumerate() {
            let mut rl = [0u64; 2];
            if getrlimit(i as c_int, &mut rl) == 0 {
                out(&format!("rlimit.{name}"), format!("{} {}", rl[0], rl[1]));
            }
        }
        let mut mode: c_int = 0;
        let mut mask = [0 as c_ulong; 16];
        if syscall(
            SYS_GET_MEMPOLICY,
            &mut mode as *mut c_int,
            mask.as_mut_ptr(),
            1024 as c_ulong,
            0 as c_long,
            0 as c_long,
        ) == 0
        {
            out("mempolicy", format!("{} {:#x}", mode, mask[0]));
        } else {
            out("mempolicy", format!("err={}", errname(errno())));
        }
        let mut fds = Vec::new();
        for fd in 0..1024 {
            if fcntl(fd, 1 /* F_GETFD */) >= 0 {
                fds.push(fd);
                if fd > 2 {
                    let t = std::fs::read_link(format!("/proc/self/fd/{fd}")).map(|p| p.display().to_string());
                    out(&format!("fd.{fd}"), t.unwrap_or_else(|e| io_err(&e)));
                }
            }
        }
        out("fds", fds.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(","));
        for fd in 0..3 {
            out(&format!("isatty.{fd}"), isatty(fd));
        }
        let mut ws = [0u16; 4];
        if ioctl(0, 0x5413 /* TIOCGWINSZ */, ws.as_mut_ptr()) == 0 {
            out("winsize", format!("{} {}", ws[0], ws[1]));
        }
        out("dumpable", prctl(3 /* PR_GET_DUMPABLE */));
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    for line in status.lines() {
        if let Some((k, v)) = line.split_once(':') {
            if matches!(
                k,
                "CapInh" | "CapPrm" | "CapEff" | "CapBnd" | "CapAmb" | "NoNewPrivs" | "Seccomp"
            ) {
                out(&format!("status.{k}"), v.trim());
            }
        }
    }
    for f in [
        "oom_score_adj",
        "uid_map",
        "gid_map",
        "setgroups",
        "timens_offsets",
        "cgroup",
    ] {
        match std::fs::read_to_string(format!("/proc/self/{f}")) {
            Ok(t) => {
                for l in t.lines() {
                    out(f, l.split_whitespace().collect::<Vec<_>>().join(" "));
                }
            }
            Err(e) => out(f, format!("err={}", io_err(&e))),
        }
    }
    for ns in ["cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"] {
        match std::fs::read_link(format!("/proc/self/ns/{ns}")) {
            Ok(t) => out(&format!("ns.{ns}"), t.display()),
            Err(e) => out(&format!("ns.{ns}"), format!("err={}", io_err(&e))),
        }
    }
    match std::env::current_dir() {
        Ok(d) => out("cwd", d.display()),
        Err(e) => out("cwd", format!("err={}", io_err(&e))),
    }
    for (k, v) in std::env::vars_os() {
        out("env", format!("{}={}", k.to_string_lossy(), v.to_string_lossy()));
    }
    for a in std::env::args() {
        out("arg", a);
    }
    for c in ["CLOCK_MONOTONIC", "CLOCK_BOOTTIME"] {
        let id = if c == "CLOCK_MONOTONIC" { 1 } else { 7 };
        let mut ts = [0i64; 2];
        // SAFETY: clock_gettime (228) fills a timespec.
        unsafe { syscall(228, id as c_long, ts.as_mut_ptr()) };
        out(&format!("clock.{c}"), ts[0]);
    }
}
