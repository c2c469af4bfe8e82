//! The attack classes that hit runc and crun, each reproduced to show it
//! fails, and the AppArmor/SELinux fields on a host without them.
//! (Capability sets: `capabilities.rs`.) Each attack an unprivileged user
//! can mount runs twice (`root_and_rootless!`): with berth as root, and
//! rootless (berth run by a test user of its own, the container in the
//! user's user namespace). Left out rootless, each with its reason at the
//! test: the neighbour that joins another container's pid namespace, and
//! the image symlinks that would redirect a mount onto the host's.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use berth_integration::attacks::DEFAULT_CAPS;
use berth_integration::prelude::*;
use berth_integration::root_and_rootless;

// ---- AppArmor and SELinux on a host without them --------------------------

#[test]
fn apparmor_and_selinux_fields_are_refused_on_a_host_without_them() {
    let apparmor = fs::read("/sys/module/apparmor/parameters/enabled").is_ok_and(|b| b.first() == Some(&b'Y'));
    let selinux = Path::new("/sys/fs/selinux/enforce").exists();
    if apparmor || selinux {
        return skip(HOST, &format!("this host has AppArmor ({apparmor}) or SELinux ({selinux}); the test is for hosts without"));
    }
    for (name, pointer, value, needle) in [
        ("lsm_apparmor", "/process/apparmorProfile", "docker-default", "process.apparmorProfile"),
        ("lsm_selinux", "/process/selinuxLabel", "system_u:system_r:container_t:s0", "process.selinuxLabel"),
        ("lsm_mountlabel", "/linux/mountLabel", "system_u:object_r:container_file_t:s0", "linux.mountLabel"),
    ] {
        let mut env = Env::new(name);
        env.set(pointer, json!(value));
        let out = env.run();
        out.exits_with(1).fails_with(&["config.json", needle, "not enabled on this host"]);
        assert_no_leftovers(&env);
    }
    // Empty values mean "none", as in runc.
    let mut env = Env::new("lsm_empty");
    env.set("/process/apparmorProfile", json!(""));
    env.set("/process/selinuxLabel", json!(""));
    env.run_ok();
}

// ---- CVE-2019-5736: overwriting the runtime binary ------------------------

/// Copy the dynamic loader and libraries of `bin` into the rootfs, so that
/// the container could execute berth's binary if it ever reached it.
fn copy_libs(bin: &Path, rootfs: &Path) {
    let out = Command::new("ldd").arg(bin).output().expect("run ldd");
    for lib in String::from_utf8_lossy(&out.stdout).split_whitespace().filter(|w| w.starts_with('/')) {
        let dst = rootfs.join(lib.trim_start_matches('/'));
        fs::create_dir_all(dst.parent().unwrap()).unwrap();
        fs::copy(lib, &dst).unwrap_or_else(|e| panic!("copy {lib}: {e}"));
    }
}

fn proc_self_exe(who: &Who) {
    // The container's program is /proc/self/exe: with init a clone of
    // berth, that used to execute berth's host binary inside the container,
    // where another process could reopen it for writing once it exited.
    let mut env = Env::new_as("cve_2019_5736_exe", who);
    copy_libs(&berth_bin(), &env.rootfs());
    env.set_args(&["/proc/self/exe", "--version"]);
    let out = env.run();
    assert!(!out.stdout.contains("berth version"), "the container executed berth's binary:\n{out}");
    // Also through a symlink and a #! interpreter in the image.
    std::os::unix::fs::symlink("/proc/self/exe", env.rootfs().join("bin/evil")).unwrap();
    fs::write(env.rootfs().join("evil.sh"), "#!/proc/self/exe --version\n").unwrap();
    fs::set_permissions(env.rootfs().join("evil.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    for args in [["/bin/evil", "--version"], ["/evil.sh", "x"]] {
        env.set_args(&args);
        let out = env.run();
        assert!(!out.stdout.contains("berth version"), "{args:?} executed berth's binary:\n{out}");
        // The other entry points: create + start, and run -d.
        for detached_run in [false, true] {
            let out = if detached_run { env.run_detached() } else { env.create() };
            if !detached_run {
                env.start();
            }
            env.wait_status("stopped", SHORT);
            let text = fs::read_to_string(&out.stdout_path).unwrap_or_default();
            assert!(!text.contains("berth version"), "{args:?} (run -d: {detached_run}) executed berth's binary:\n{text}");
            env.delete().ok();
        }
    }
    assert_no_leftovers(&env);
}

/// Container A's script: wait for /go, open /proc/<pid>/exe of every
/// process whose cmdline has "bvictim" (berth's argv in B's init) for
/// reading (kept as fd 3) and writing; then wait for /go2 and, once no
/// process runs the file any more, try writing through the kept fd.
const PEEK: &str = "m=bvic; m=${m}tim; while [ ! -e /go ]; do sleep 0.05; done; \
    for p in /proc/[0-9]*; do if grep -q $m $p/cmdline 2>/dev/null; then \
       if ( exec 3< $p/exe ) 2>/dev/null; then exec 3< $p/exe; echo read-open; else echo read-denied; fi; \
       ( exec 4>> $p/exe ) 2>/dev/null && echo write-open || echo write-denied; fi; done > /result; \
    echo scanned >> /result; while [ ! -e /go2 ]; do sleep 0.05; done; \
    if [ -e /proc/self/fd/3 ]; then i=0; while [ $i -lt 100 ]; do \
       r=$( ( printf X >> /proc/self/fd/3 ) 2>&1 ) && { echo later-write-open >> /result; break; }; \
       case $r in *busy*) sleep 0.05; i=$((i+1));; *) echo \"later-write-denied: $r\" >> /result; break;; esac; done; fi; \
    echo done >> /result";

/// Run container A (`caps`: its capabilities, None = all) and create
/// container B in A's pid namespace with a private copy of berth; return
/// A's /result.
fn peek_at_init(name: &str, caps: Option<&[&str]>) -> String {
    let mut a = Env::sh(name, PEEK);
    if let Some(c) = caps {
        a.set("/process/capabilities", json!({"bounding": c, "permitted": c, "effective": c}));
    }
    a.run_detached();
    let a_pid = a.pid();
    // B runs a copy of berth: if the attack worked, the copy is what changes.
    let copy = a.file("berth-copy");
    fs::copy(berth_bin(), &copy).unwrap();
    let mut b = Env::sharing_root("bvictim", &a);
    b.set_args(&["sleep", "1"]);
    b.remove("/hostname");
    b.set("/linux/namespaces", json!([{"type": "pid", "path": format!("/proc/{a_pid}/ns/pid")}, {"type": "mount"}]));
    let root = a.root.display().to_string();
    let berth = |args: &[&str]| {
        let mut v = vec!["--root".to_string(), root.clone()];
        v.extend(args.iter().map(|s| s.to_string()));
        harness_run(&copy, &v, &b.file(&format!("copy-{}", args[0])))
    };
    berth(&["create", "--bundle", &b.bundle_str(), &b.id]).ok();
    fs::write(a.rootfs().join("go"), "").unwrap();
    a.wait_file("result", "scanned");
    berth(&["start", &b.id]).ok();
    b.wait_status("stopped", SHORT);
    berth(&["delete", &b.id]).ok();
    fs::write(a.rootfs().join("go2"), "").unwrap();
    let out = a.wait_file("result", "done");
    assert_eq!(fs::read(&copy).unwrap(), fs::read(berth_bin()).unwrap(), "berth's binary was changed:\n{out}");
    a.delete_force().ok();
    assert_no_leftovers(&b);
    assert_no_leftovers(&a);
    out
}

fn harness_run(prog: &Path, args: &[String], base: &Path) -> Output {
    berth_integration::harness::run_cmd(prog, args, base, None, CMD_TIMEOUT)
}

// Not rootless: container B joins A's pid namespace, which berth cannot do
// without root (setns of a pid namespace owned by another user namespace
// fails with EPERM, with or without A's user namespace joined too), so no
// container process can see another container's init run berth's code.

#[test]
fn cve_2019_5736_init_binary_is_not_reachable_from_the_container() {
    // Container A runs a shell; container B joins A's pid namespace and is
    // created: its init runs berth's code, waiting for start. Without
    // CAP_SYS_PTRACE, A cannot open B's init's /proc/<pid>/exe at all
    // (init is non-dumpable until execve).
    let out = peek_at_init("cve_2019_5736_a", Some(&DEFAULT_CAPS));
    assert!(out.contains("read-denied"), "B's init was not found from A:\n{out}");
    assert!(!out.contains("-open"), "berth's binary was reachable from A:\n{out}");
}

#[test]
fn cve_2019_5736_ptrace_capable_neighbour_cannot_write_berth() {
    // With every capability A can open B's init's exe (CAP_SYS_PTRACE
    // overrides non-dumpable) and keep it. A joined pid namespace is why
    // berth then re-executed itself from a read-only bind of its binary:
    // once B has started and berth is gone, writing through that handle
    // still fails (EROFS), where it used to rewrite berth on the host.
    let out = peek_at_init("cve_2019_5736_ptrace", None);
    assert!(out.contains("read-open"), "A could not open B's init's exe; the test did not set up the attack:\n{out}");
    assert!(!out.contains("write-open"), "berth's binary was writable from A:\n{out}");
    assert!(out.contains("later-write-denied"), "{out}");
}

fn trampoline_sealed(who: &Who) {
    // What init executes (and what /proc/self/exe names while the
    // container's program is being executed) is a sealed memfd: even the
    // host's root cannot write to it.
    let env = Env::sh_as("cve_2019_5736_seal", SLEEPER, who);
    env.create();
    let pid = env.pid();
    let mut found = 0;
    for e in fs::read_dir(format!("/proc/{pid}/fd")).unwrap() {
        let p = e.unwrap().path();
        let target = fs::read_link(&p).map(|t| t.display().to_string()).unwrap_or_default();
        if !target.contains("memfd:berth-exec") {
            continue;
        }
        found += 1;
        let elf = fs::read(&p).unwrap();
        assert_eq!(&elf[..4], b"\x7fELF");
        let w = fs::OpenOptions::new().append(true).open(&p).and_then(|mut f| std::io::Write::write_all(&mut f, b"X"));
        assert!(w.is_err(), "wrote to the exec trampoline");
        assert_eq!(fs::read(&p).unwrap(), elf);
    }
    let arch_has_trampoline = cfg!(target_arch = "x86_64");
    assert_eq!(found > 0, arch_has_trampoline, "exec trampoline fds in init");
    env.delete_force().ok();
    assert_no_leftovers(&env);
}

// ---- CVE-2024-21626: leaked fds and a cwd outside the rootfs --------------

fn only_stdio_and_preserved_fds(who: &Who) {
    let mut env = Env::sh_as("cve_2024_21626_fds", "cd /proc/self/fd && ls", who);
    let out = env.run_ok();
    // ls's own directory fd is 3.
    assert_eq!(squash(&out.stdout).split_whitespace().collect::<Vec<_>>(), ["0", "1", "2", "3"], "{out}");
    // --preserve-fds 2: fds 3 and 4 are passed, nothing above.
    env.set_script("ls /proc/self/fd | tr '\\n' ' '; cat <&3; cat <&4");
    let f3 = env.file("fd3");
    let f4 = env.file("fd4");
    fs::write(&f3, "three\n").unwrap();
    fs::write(&f4, "four\n").unwrap();
    let (f3, f4) = (fs::File::open(f3).unwrap(), fs::File::open(f4).unwrap());
    let (r3, r4) = (std::os::fd::AsRawFd::as_raw_fd(&f3), std::os::fd::AsRawFd::as_raw_fd(&f4));
    let mut cmd = Command::new(env.bin());
    cmd.args([
        "--root",
        env.root.to_str().unwrap(),
        "run",
        "--preserve-fds",
        "2",
        "--bundle",
        &env.bundle_str(),
        &env.id,
    ]);
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    if let Some(u) = env.user() {
        cmd.uid(u.uid).gid(u.gid).current_dir(&env.dir);
        cmd.env("XDG_RUNTIME_DIR", &u.run_dir).env("HOME", &u.dir);
    }
    // SAFETY: fcntl, dup2 and close are async-signal-safe and take integers.
    unsafe {
        cmd.pre_exec(move || {
            let (a, b) = (libc::fcntl(r3, libc::F_DUPFD, 100), libc::fcntl(r4, libc::F_DUPFD, 100));
            if a < 0 || b < 0 || libc::dup2(a, 3) < 0 || libc::dup2(b, 4) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::close(a);
            libc::close(b);
            Ok(())
        });
    }
    let out = cmd.output().expect("run berth");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(squash(&stdout), "0 1 2 3 4 5 three\nfour", "fds in the container");
    assert_no_leftovers(&env);
}

fn cwd_through_a_leaked_fd(who: &Who) {
    // init holds fds on host directories (the state dir, for exec.fifo,
    // after `create`; `run` has none) while it sets the cwd;
    // /proc/self/fd/N would put the container's cwd on the host.
    let mut refused = 0;
    for n in 3..=24 {
        let mut env = Env::sh_as(&format!("cve_2024_21626_cwd{n}"), "pwd; ls ../../../../../ | head -50", who);
        env.set("/process/cwd", json!(format!("/proc/self/fd/{n}")));
        let out = env.run();
        if out.success() {
            let pwd = out.stdout.lines().next().unwrap_or_default();
            assert!(pwd.starts_with('/') && !pwd.contains("unreachable"), "cwd fd {n} escaped:\n{out}");
        } else if out.stderr.contains("outside the container's root filesystem") {
            refused += 1;
        }
        assert_no_leftovers(&env);
        // create: init checks the cwd before Ready (create fails if so).
        let out = env.try_create();
        if out.success() {
            env.delete_force();
        } else if out.stderr.contains("outside the container's root filesystem") {
            refused += 1;
        }
        assert_no_leftovers(&env);
    }
    assert!(refused > 0, "no fd of init led to a host directory: the test did not exercise the attack");
}

fn program_through_a_leaked_fd(who: &Who) {
    // A program (or #! interpreter) path through /proc/self/fd/N reaching a
    // host file must not be executed.
    let mut env = Env::new_as("cve_2024_21626_exec", who);
    let host_prog = env.file("host-prog");
    fs::write(&host_prog, "#!/bin/sh\necho ESCAPED\n").unwrap();
    fs::set_permissions(&host_prog, fs::Permissions::from_mode(0o755)).unwrap();
    // The state dir is <root>/<id>; the program is two levels up. init
    // holds a handle on it after `create` (for exec.fifo), not in `run`:
    // both are tried.
    let create_start = |env: &Env| -> String {
        let c = env.try_create();
        if !c.success() {
            return c.stdout;
        }
        env.berth(&["start", &env.id]);
        env.wait_status("stopped", std::time::Duration::from_secs(10));
        env.delete_force();
        fs::read_to_string(&c.stdout_path).unwrap_or_default()
    };
    for n in 3..=24 {
        let prog = format!("/proc/self/fd/{n}/../../host-prog");
        env.set_args(&[&prog]);
        let out = env.run();
        assert!(!out.stdout.contains("ESCAPED"), "executed a host program through fd {n}:\n{out}");
        let out = create_start(&env);
        assert!(!out.contains("ESCAPED"), "executed a host program through fd {n} after create:\n{out}");
        fs::write(env.rootfs().join("interp.sh"), format!("#!{prog}\n")).unwrap();
        fs::set_permissions(env.rootfs().join("interp.sh"), fs::Permissions::from_mode(0o755)).unwrap();
        env.set_args(&["/interp.sh"]);
        let out = env.run();
        assert!(!out.stdout.contains("ESCAPED"), "a #! interpreter through fd {n} ran a host program:\n{out}");
        let out = create_start(&env);
        assert!(!out.contains("ESCAPED"), "a #! interpreter through fd {n} ran a host program after create:\n{out}");
    }
    assert_no_leftovers(&env);
}

// ---- CVE-2021-30465: mount destination swapped to a symlink ---------------

/// A createContainer hook (runs in the container's mount namespace, before
/// the pivot) that appends that namespace's mountinfo to `file`.
fn mountinfo_hook(env: &mut Env, file: &Path) {
    env.set(
        "/hooks",
        json!({"createContainer": [{"path": "/bin/sh",
        "args": ["sh", "-c", format!("cat /proc/self/mountinfo >> {}", file.display())]}]}),
    );
}

/// Mount points in the container's namespace at or under `dir`.
fn mounts_at(mountinfo: &str, dir: &Path) -> Vec<String> {
    host::parse_mountinfo(mountinfo)
        .into_iter()
        .map(|m| m.mount_point)
        .filter(|mp| Path::new(mp).starts_with(dir))
        .collect()
}

fn symlinked_mount_destination(who: &Who) {
    let mut env = Env::sh_as("cve_2021_30465", "echo x > /evil/written && echo wrote", who);
    let host_dir = env.file("host-target");
    fs::create_dir_all(&host_dir).unwrap();
    // Rootless: the user's, else writing into it could not fail anyway.
    env.give(&host_dir);
    let seen = env.file("mountinfo");
    mountinfo_hook(&mut env, &seen);
    env.set(
        "/mounts",
        json!([{"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/evil", "type": "tmpfs", "source": "tmpfs"}]),
    );
    // Absolute and relative escapes.
    for target in [host_dir.display().to_string(), format!("../../../../../../..{}", host_dir.display())] {
        let link = env.rootfs().join("evil");
        let _ = fs::remove_file(&link);
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let out = env.run_ok();
        assert!(out.stdout.contains("wrote"), "{out}");
        let info = fs::read_to_string(&seen).unwrap();
        assert!(mounts_at(&info, &host_dir).is_empty(), "mounted onto the host dir via {target}:\n{info}");
        assert!(!mounts_at(&info, &env.rootfs()).is_empty(), "hook saw no rootfs mounts:\n{info}");
        assert_eq!(fs::read_dir(&host_dir).unwrap().count(), 0, "wrote into the host dir via {target}");
        assert_no_leftovers(&env);
    }
}

fn destination_swapped_during_create(who: &Who) {
    // A host thread keeps swapping /evil between a directory and a symlink
    // to a host directory while containers are created.
    let mut env = Env::sh_as("cve_2021_30465_race", "echo x > /evil/f 2>/dev/null; true", who);
    let host_dir = env.file("host-target");
    fs::create_dir_all(&host_dir).unwrap();
    env.give(&host_dir);
    let seen = env.file("mountinfo");
    mountinfo_hook(&mut env, &seen);
    env.set(
        "/mounts",
        json!([{"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/evil", "type": "tmpfs", "source": "tmpfs"}]),
    );
    let link = env.rootfs().join("evil");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flipper = {
        let (stop, link, host_dir) = (stop.clone(), link.clone(), host_dir.clone());
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = fs::remove_file(&link).or_else(|_| fs::remove_dir(&link));
                let _ = fs::create_dir(&link);
                let _ = fs::remove_dir(&link);
                let _ = std::os::unix::fs::symlink(&host_dir, &link);
            }
        })
    };
    let mut ran = 0;
    for _ in 0..25 {
        ran += usize::from(env.run().success());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    flipper.join().unwrap();
    let info = fs::read_to_string(&seen).unwrap_or_default();
    assert!(mounts_at(&info, &host_dir).is_empty(), "a mount landed on the host dir:\n{info}");
    assert_eq!(fs::read_dir(&host_dir).unwrap().count(), 0, "a container wrote into the host dir");
    eprintln!("{ran} of 25 containers ran while /evil was being swapped");
    assert_no_leftovers(&env);
}

// ---- CVE-2025-31133 class: maskedPaths bind only the real /dev/null --------

fn masked_paths_real_dev_null(who: &Who) {
    // The image's /dev/null is a symlink to a host-writable procfs file, and
    // /dev is not a tmpfs (so the image's /dev is used).
    let script = "stat -c '%F %t:%T' /proc/keys /proc/timer_list /etc/masked; \
        echo changed > /proc/timer_list 2>/dev/null; echo changed > /etc/masked; cat /etc/masked; echo end";
    let mut env = Env::sh_as("cve_2025_31133", script, who);
    let dev = env.rootfs().join("dev");
    std::os::unix::fs::symlink("/proc/sys/kernel/core_pattern", dev.join("null")).unwrap();
    fs::write(env.rootfs().join("etc/masked"), "secret\n").unwrap();
    let mounts: Vec<Value> = env.config()["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| !m["destination"].as_str().unwrap().starts_with("/dev"))
        .cloned()
        .collect();
    env.set("/mounts", json!(mounts));
    env.push("/linux/maskedPaths", json!("/etc/masked"));
    let core_pattern = fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap();
    let out = env.run_ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(&lines[..3], ["character special file 1:3"; 3], "{out}");
    assert_eq!(&lines[3..], ["end"], "a masked file kept or took content:\n{out}");
    assert_eq!(fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap(), core_pattern, "host core_pattern changed");
    assert_eq!(fs::read_to_string(env.rootfs().join("etc/masked")).unwrap(), "secret\n");
    assert_no_leftovers(&env);
}

// ---- /dev/console, /dev/ptmx, /dev/null swapped during create -----------

/// A console socket in `env`'s dir that berth (rootless: the user) may use.
fn console_socket(env: &Env) -> berth_integration::tty::ConsoleSocket {
    let sock = berth_integration::tty::ConsoleSocket::bind(&env.file("console.sock"));
    env.give(&env.file("console.sock"));
    sock
}

/// A createContainer hook (in the container's mount namespace, after berth
/// made /dev, before the console and the masked paths) running `script`
/// with $R the rootfs.
fn swap_hook(env: &mut Env, script: &str) {
    let r = env.rootfs().display().to_string();
    env.set(
        "/hooks",
        json!({"createContainer": [{"path": "/bin/sh", "args": ["sh", "-c", format!("R={r}; {script}")]}]}),
    );
}

fn console_and_ptmx_swapped(who: &Who) {
    // The class of runc's CVE-2025-52565 / CVE-2026-41579: /dev/console
    // replaced by a symlink while the container is made would have the
    // pty bound onto what it names (here the host's core_pattern, through
    // the container's /proc); a /dev/ptmx swapped would hand out a file
    // that is no pty.
    let core_pattern = fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap();
    for (name, script, needle) in [
        ("swap_console", "rm -f $R/dev/console; ln -s /proc/sys/kernel/core_pattern $R/dev/console", "/dev/console"),
        ("swap_console_dev", "ln -s /proc/sys/kernel $R/kdir; rm -f $R/dev/console; ln -s /kdir/core_pattern $R/dev/console", "/dev/console"),
        ("swap_ptmx", "rm -f $R/dev/ptmx; ln -s /dev/null $R/dev/ptmx", "/dev/ptmx"),
        ("swap_ptmx_file", "rm -f $R/dev/ptmx; echo x > $R/dev/ptmx", "/dev/ptmx"),
    ] {
        let mut env = Env::sh_as(name, "echo ran", who);
        env.set("/process/terminal", json!(true));
        swap_hook(&mut env, script);
        let sock = console_socket(&env);
        let out = env.berth(&["create", "--console-socket", &sock.path_str(), "--bundle", &env.bundle_str(), &env.id]);
        assert!(!out.success(), "{name}: create went on with a swapped device:\n{out}");
        assert!(out.stderr.contains(needle) && out.stderr.contains("process.terminal"), "{name}: unclear error:\n{out}");
        assert_eq!(fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap(), core_pattern, "host core_pattern changed");
        assert_no_leftovers(&env);
    }
    // Not swapped: the console is bound on /dev/console.
    let mut env = Env::sh_as("console_ok", "echo ran", who);
    env.set("/process/terminal", json!(true));
    let sock = console_socket(&env);
    env.berth(&["create", "--console-socket", &sock.path_str(), "--bundle", &env.bundle_str(), &env.id]).ok();
    let mountinfo = fs::read_to_string(format!("/proc/{}/mountinfo", env.pid())).unwrap();
    assert!(mountinfo.lines().any(|l| l.split(' ').nth(4) == Some("/dev/console")), "{mountinfo}");
    env.delete_force();
    assert_no_leftovers(&env);
}

fn dev_null_swapped(who: &Who) {
    // maskedPaths are bound from the real /dev/null even when the
    // container's /dev/null became a symlink to a procfs file after berth
    // made it.
    let mut env = Env::sh_as("swap_null", "stat -c '%F %t:%T' /proc/keys /proc/timer_list; echo end", who);
    // (Rootless, /dev/null is a bind of the host's: unmounted first.)
    swap_hook(&mut env, "umount $R/dev/null 2>/dev/null; rm -f $R/dev/null; ln -s /proc/sys/kernel/core_pattern $R/dev/null");
    let core_pattern = fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap();
    let out = env.run_ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(&lines[..2], ["character special file 1:3"; 2], "{out}");
    assert_eq!(fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap(), core_pattern, "host core_pattern changed");
    assert_no_leftovers(&env);
}

// ---- writes to /proc ------------------------------------------------------

fn proc_writes(who: &Who) {
    // The image ships a fake /proc tree (and one through a symlinked
    // /proc/self); berth's sysctl and oom_score_adj writes go through the
    // host's /proc to the container's own process and namespace.
    let mut env = Env::sh_as("proc_writes", "cat /proc/sys/net/ipv4/ip_forward /proc/self/oom_score_adj", who);
    let fake = env.rootfs().join("proc");
    fs::create_dir_all(fake.join("sys/net/ipv4")).unwrap();
    fs::write(fake.join("sys/net/ipv4/ip_forward"), "fake\n").unwrap();
    fs::create_dir_all(fake.join("fakeself")).unwrap();
    fs::write(fake.join("fakeself/oom_score_adj"), "fake\n").unwrap();
    std::os::unix::fs::symlink("fakeself", fake.join("self")).unwrap();
    env.set("/linux/sysctl", json!({"net.ipv4.ip_forward": "1"}));
    env.set("/process/oomScoreAdj", json!(123));
    let host_forward = fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let out = env.run_ok();
    assert_eq!(squash(&out.stdout), "1\n123", "{out}");
    assert_eq!(fs::read_to_string(fake.join("sys/net/ipv4/ip_forward")).unwrap(), "fake\n");
    assert_eq!(fs::read_to_string(fake.join("fakeself/oom_score_adj")).unwrap(), "fake\n");
    assert_eq!(fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(), host_forward, "host sysctl changed");
    // exec's oomScoreAdj (--process) is written by berth's own child
    // through the host's /proc too (rootless as well: issue 16).
    env.set_script(SLEEPER);
    env.run_detached();
    let pf = env.file("process.json");
    let process = json!({"args": ["cat", "/proc/self/oom_score_adj"], "cwd": "/", "user": {"uid": 0, "gid": 0},
        "env": ["PATH=/bin"], "oomScoreAdj": 321});
    fs::write(&pf, process.to_string()).unwrap();
    let out = env.berth(&["exec", "--process", &pf.display().to_string(), &env.id]).ok();
    assert_eq!(squash(&out.stdout), "321", "{out}");
    assert_eq!(fs::read_to_string(fake.join("fakeself/oom_score_adj")).unwrap(), "fake\n");
    env.delete_force().ok();
    assert_no_leftovers(&env);
}

fn id_maps_by_berth(who: &Who) {
    // With a user namespace, uid_map/gid_map are written by berth through
    // the host's /proc/<pid> (rootless: by newuidmap and newgidmap, which
    // open them by pid too); a fake /proc in the image changes nothing.
    let mut env = Env::sh_as("proc_idmaps", "cat /proc/self/uid_map /proc/self/gid_map", who);
    fs::create_dir_all(env.rootfs().join("proc/self")).unwrap();
    fs::write(env.rootfs().join("proc/self/uid_map"), "fake\n").unwrap();
    env.give(&env.rootfs().join("proc"));
    let want = match env.user() {
        Some(u) => {
            let sub = format!("1 {} 65536", u.subid);
            format!("0 {} 1\n{sub}\n0 {} 1\n{sub}", u.uid, u.gid)
        }
        None => {
            let mut ns = env.config()["linux"]["namespaces"].as_array().unwrap().clone();
            ns.push(json!({"type": "user"}));
            env.set("/linux/namespaces", json!(ns));
            env.set("/linux/uidMappings", json!([{"containerID": 0, "hostID": 100000, "size": 65536}]));
            env.set("/linux/gidMappings", json!([{"containerID": 0, "hostID": 100000, "size": 65536}]));
            "0 100000 65536\n0 100000 65536".to_string()
        }
    };
    let out = env.run_ok();
    assert_eq!(squash(&out.stdout), want, "{out}");
    assert_eq!(fs::read_to_string(env.rootfs().join("proc/self/uid_map")).unwrap(), "fake\n");
    assert_no_leftovers(&env);
}

// ---- image /proc, /dev, /sys as symlinks -----------------------------------

// Not rootless: a rootless container's mounts are made in a mount namespace
// of the user's user namespace, whose mounts never propagate to the host's
// (the kernel makes them slaves there), so the host's mount table this test
// watches could not change whatever berth did.

#[test]
fn image_proc_dev_sys_symlinks_cannot_redirect_mounts() {
    // Where a redirected mount would land: the host's /, /proc, /dev, /sys,
    // and the directories above the rootfs. (Only these: other engineers'
    // tests mount elsewhere on a shared machine.)
    let watched = host::mounts_where_escapes_land;
    for dir in ["proc", "dev", "sys"] {
        for target in ["/", ".."] {
            let env = Env::sh(&format!("image_symlink_{dir}"), "echo ran");
            let p = env.rootfs().join(dir);
            fs::remove_dir_all(&p).unwrap();
            std::os::unix::fs::symlink(target, &p).unwrap();
            let host_before = watched(&env.rootfs());
            let out = env.run();
            if dir != "dev" {
                // As runc: proc and sysfs only on an ordinary directory.
                out.exits_with(1).fails_with(&["must be mounted on an ordinary directory"]);
            }
            let now = watched(&env.rootfs());
            let added: Vec<&String> = now.iter().filter(|m| !host_before.contains(m)).collect();
            let gone: Vec<&String> = host_before.iter().filter(|m| !now.contains(m)).collect();
            assert!(
                added.is_empty() && gone.is_empty(),
                "host mounts changed with /{dir} -> {target}: added {added:?}, gone {gone:?}\n{out}"
            );
            assert_no_leftovers(&env);
        }
    }
}

root_and_rootless! {
    proc_self_exe => cve_2019_5736_proc_self_exe_never_runs_berth, cve_2019_5736_proc_self_exe_never_runs_berth_rootless;
    trampoline_sealed => cve_2019_5736_exec_trampoline_is_sealed, cve_2019_5736_exec_trampoline_is_sealed_rootless;
    only_stdio_and_preserved_fds => cve_2024_21626_only_stdio_and_preserved_fds_are_open, cve_2024_21626_only_stdio_and_preserved_fds_are_open_rootless;
    cwd_through_a_leaked_fd => cve_2024_21626_cwd_through_a_leaked_fd_is_refused, cve_2024_21626_cwd_through_a_leaked_fd_is_refused_rootless;
    program_through_a_leaked_fd => cve_2024_21626_exec_through_a_leaked_fd_fails, cve_2024_21626_exec_through_a_leaked_fd_fails_rootless;
    symlinked_mount_destination => cve_2021_30465_symlinked_mount_destination_stays_inside, cve_2021_30465_symlinked_mount_destination_stays_inside_rootless;
    destination_swapped_during_create => cve_2021_30465_destination_swapped_during_create, cve_2021_30465_destination_swapped_during_create_rootless;
    masked_paths_real_dev_null => cve_2025_31133_masked_paths_use_the_real_dev_null, cve_2025_31133_masked_paths_use_the_real_dev_null_rootless;
    console_and_ptmx_swapped => dev_console_and_ptmx_swapped_during_create_are_refused, dev_console_and_ptmx_swapped_during_create_are_refused_rootless;
    dev_null_swapped => dev_null_swapped_during_create_does_not_redirect_masked_paths, dev_null_swapped_during_create_does_not_redirect_masked_paths_rootless;
    proc_writes => proc_writes_cannot_be_redirected_by_the_image, proc_writes_cannot_be_redirected_by_the_image_rootless;
    id_maps_by_berth => id_maps_are_written_by_berth_not_through_the_container, id_maps_are_written_by_berth_not_through_the_container_rootless;
}
