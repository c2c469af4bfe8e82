//! The container's filesystem: masked and readonly paths, readonly root,
//! mounts and their propagation, devices, /dev symlinks, --no-pivot.

use berth_integration::prelude::*;

fn run_script(name: &str, script: &str, edit: impl FnOnce(&mut Env)) -> String {
    let mut env = Env::sh(name, script);
    edit(&mut env);
    let out = env.run_ok();
    assert_no_leftovers(&env);
    out.stdout
}

/// The mountinfo line (inside) whose mount point is `mp`.
fn mount_line<'a>(mountinfo: &'a str, mp: &str) -> &'a str {
    mountinfo
        .lines()
        .rev()
        .find(|l| l.split(' ').nth(4) == Some(mp))
        .unwrap_or_else(|| panic!("no mount at {mp} in\n{mountinfo}"))
}

#[test]
fn masked_file_reads_empty() {
    // /proc/timer_list is in the default maskedPaths (and exists on this kernel)
    let out = run_script("masked_file", "wc -c < /etc/secret; cat /etc/secret; wc -c < /proc/timer_list", |e| {
        fs::write(e.rootfs().join("etc/secret"), "topsecret").unwrap();
        e.push("/linux/maskedPaths", json!("/etc/secret"));
    });
    assert!(!out.contains("topsecret"), "masked file readable: {out}");
    assert_eq!(squash(&out), "0\n0", "masked /etc/secret and /proc/timer_list should read empty");
}

#[test]
fn masked_dir_is_empty() {
    // /sys/firmware is in the default maskedPaths
    let out = run_script("masked_dir", "ls -A /secret-dir /sys/firmware; echo end", |e| {
        fs::create_dir_all(e.rootfs().join("secret-dir")).unwrap();
        fs::write(e.rootfs().join("secret-dir/key"), "k").unwrap();
        e.push("/linux/maskedPaths", json!("/secret-dir"));
    });
    assert_eq!(squash(&out), "/secret-dir:\n/sys/firmware:\nend", "masked dir lists files: {out}");
}

#[test]
fn readonly_path_not_writable() {
    let script = "for d in data data2; do if touch /$d/x 2>/dev/null; then echo $d=rw; else echo $d=ro; fi; done";
    let mut env = Env::sh("readonly_path", script);
    fs::create_dir_all(env.rootfs().join("data")).unwrap();
    fs::create_dir_all(env.rootfs().join("data2")).unwrap();
    env.push("/linux/readonlyPaths", json!("/data"));
    let out = env.run_ok();
    assert_eq!(squash(&out.stdout), "data=ro\ndata2=rw", "{out}");
    assert!(!env.rootfs().join("data/x").exists());
    assert_no_leftovers(&env);
}

#[test]
fn default_readonly_proc_sys() {
    let out = run_script("ro_proc_sys", "cat /proc/self/mountinfo", |_| {});
    let line = mount_line(&out, "/proc/sys");
    assert!(line.split(' ').nth(5).unwrap().split(',').any(|o| o == "ro"), "/proc/sys not ro: {line}");
}

#[test]
fn readonly_root() {
    let script = "if touch /x 2>/dev/null; then echo root=rw; else echo root=ro; fi; \
                  if touch /dev/shm/x; then echo shm=rw; fi; cat /proc/self/mountinfo";
    let mut env = Env::sh("readonly_root", script);
    env.set("/root/readonly", json!(true));
    let out = env.run_ok();
    let lines = out.lines();
    assert_eq!(&lines[..2], ["root=ro", "shm=rw"], "{out}");
    let root = mount_line(&out.stdout, "/");
    assert!(root.split(' ').nth(5).unwrap().split(',').any(|o| o == "ro"), "/ not mounted ro: {root}");
    assert!(!env.rootfs().join("x").exists());
    assert_no_leftovers(&env);
}

#[test]
fn writable_root_by_default() {
    let env = Env::sh("writable_root", "touch /x && echo ok");
    let out = env.run_ok();
    assert_eq!(out.stdout.trim(), "ok", "{out}");
    assert!(env.rootfs().join("x").exists());
}

#[test]
fn bind_mount_and_readonly_bind() {
    let script = "cat /in/hello; if touch /in/new 2>/dev/null; then echo in=rw; else echo in=ro; fi; \
                  if touch /rw/new 2>/dev/null; then echo rw=rw; else echo rw=ro; fi";
    let mut env = Env::sh("bind_mounts", script);
    let host_ro = env.file("host-ro");
    let host_rw = env.file("host-rw");
    fs::create_dir_all(&host_ro).unwrap();
    fs::create_dir_all(&host_rw).unwrap();
    fs::write(host_ro.join("hello"), "from-host\n").unwrap();
    env.add_bind(&host_ro, "/in", &["ro"]);
    env.add_bind(&host_rw, "/rw", &["rw"]);
    let out = env.run_ok();
    assert_eq!(squash(&out.stdout), "from-host\nin=ro\nrw=rw", "{out}");
    assert!(host_rw.join("new").exists() && !host_ro.join("new").exists());
    assert_no_leftovers(&env);
}

#[test]
fn tmpfs_mount_with_options() {
    let out = run_script("tmpfs_opts", "stat -c %a /scratch; cat /proc/self/mountinfo", |e| {
        e.push("/mounts", json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
                                 "options": ["nosuid", "nodev", "mode=1777", "size=1m"]}));
    });
    assert!(out.starts_with("1777\n"), "{out}");
    let line = mount_line(&out, "/scratch");
    assert!(line.contains(" - tmpfs ") && line.contains("size=1024k"), "{line}");
    assert!(line.split(' ').nth(5).unwrap().contains("nosuid"), "{line}");
}

/// A host dir, bind-mounted on itself and made shared, bound into the
/// container with `prop`; after the container started the host mounts a
/// tmpfs below it. Returns whether the container saw it.
fn propagation_seen(name: &str, prop: &str) -> bool {
    let script = format!(
        "echo r > /ready; {WAIT_GO}; if [ -e /prop/sub/flag ]; then echo RESULT=yes > /result; else echo RESULT=no > /result; fi; {SLEEPER}"
    );
    let mut env = Env::sh(name, &script);
    let shared = env.file("prop");
    fs::create_dir_all(shared.join("sub")).unwrap();
    host::bind_mount(&shared, &shared).expect("bind prop dir");
    host::mount(None, &shared, None, libc::MS_SHARED, None).expect("make prop dir shared");
    env.push("/mounts", json!({"destination": "/prop", "type": "bind", "source": shared, "options": ["rbind", prop]}));

    env.run_detached();
    env.wait_file("ready", "r");
    host::mount(Some(Path::new("tmpfs")), &shared.join("sub"), Some("tmpfs"), 0, Some("size=64k")).expect("mount tmpfs on host");
    fs::write(shared.join("sub/flag"), "x").unwrap();
    fs::write(env.rootfs().join("go"), "").unwrap();
    let res = env.wait_file("result", "RESULT=");
    env.delete_force().ok();
    assert_no_leftovers(&env);
    host::umount_below(&shared);
    res.contains("RESULT=yes")
}

#[test]
fn propagation_rslave_sees_host_mounts() {
    assert!(propagation_seen("prop_rslave", "rslave"), "a host mount made after start did not reach an rslave bind");
}

#[test]
fn propagation_private_does_not_see_host_mounts() {
    assert!(!propagation_seen("prop_private", "private"), "a host mount reached a private bind");
}

#[test]
fn rootfs_propagation_private() {
    let out = run_script("rootfs_prop_private", "cat /proc/self/mountinfo", |e| {
        e.set("/linux/rootfsPropagation", json!("private"));
    });
    let line = mount_line(&out, "/");
    assert!(!line.contains("shared:") && !line.contains("master:"), "root not private: {line}");
}

/// (r)unbindable applies to the container's "/" at the end, and masking
/// still finds a /dev/null to bind (issue 13.4: "mount bind /dev/null over
/// /proc/keys: Invalid argument"; crun fails with runbindable).
#[test]
fn rootfs_propagation_unbindable_with_masked_paths() {
    for prop in ["unbindable", "runbindable"] {
        let out = run_script(&format!("rootfs_prop_{prop}"), "wc -c < /proc/keys; echo --; cat /proc/self/mountinfo", |e| {
            e.set("/linux/rootfsPropagation", json!(prop));
        });
        let (masked, mountinfo) = out.split_once("--").unwrap_or_else(|| panic!("{prop}: {out}"));
        assert_eq!(masked.trim(), "0", "{prop}: /proc/keys not masked: {out}");
        assert!(mount_line(mountinfo, "/").contains(" unbindable "), "{prop}: root not unbindable:\n{mountinfo}");
        let proc = mount_line(mountinfo, "/proc");
        assert_eq!(proc.contains(" unbindable "), prop == "runbindable", "{prop}: /proc: {proc}");
    }
}

#[test]
fn rootfs_propagation_shared() {
    let out = run_script("rootfs_prop_shared", "cat /proc/self/mountinfo", |e| {
        e.set("/linux/rootfsPropagation", json!("shared"));
    });
    let line = mount_line(&out, "/");
    assert!(line.contains("shared:"), "root not shared: {line}");
}

#[test]
fn default_devices() {
    let script = "for d in null zero full random urandom tty; do echo $d $(stat -c '%t:%T %F' /dev/$d); done; \
                  echo ptmx $(stat -L -c '%t:%T' /dev/ptmx); \
                  echo x > /dev/null && echo null-ok; echo zero $(head -c 4 /dev/zero | wc -c); \
                  echo urandom $(head -c 8 /dev/urandom | wc -c); echo x 2>/dev/null > /dev/full || echo full-enospc";
    let out = run_script("default_devices", script, |_| {});
    let want = "null 1:3 character special file\nzero 1:5 character special file\nfull 1:7 character special file\n\
                random 1:8 character special file\nurandom 1:9 character special file\ntty 5:0 character special file\n\
                ptmx 5:2\nnull-ok\nzero 4\nurandom 8\nfull-enospc";
    assert_eq!(squash(&out), want);
}

#[test]
fn custom_devices() {
    let script = "stat -c '%n %t:%T %F %a %u:%g' /dev/mydev /dev/sub/myblk";
    let out = run_script("custom_devices", script, |e| {
        e.set(
            "/linux/devices",
            json!([
                {"path": "/dev/mydev", "type": "c", "major": 1, "minor": 3, "fileMode": 0o640, "uid": 1000, "gid": 1001},
                {"path": "/dev/sub/myblk", "type": "b", "major": 7, "minor": 200, "fileMode": 0o600, "uid": 0, "gid": 0}
            ]),
        );
    });
    assert_eq!(
        squash(&out),
        "/dev/mydev 1:3 character special file 640 1000:1001\n/dev/sub/myblk 7:c8 block special file 600 0:0"
    );
}

#[test]
fn dev_symlinks() {
    let out = run_script("dev_symlinks", "for l in fd stdin stdout stderr; do echo $l $(readlink /dev/$l); done", |_| {});
    assert_eq!(squash(&out), "fd /proc/self/fd\nstdin /proc/self/fd/0\nstdout /proc/self/fd/1\nstderr /proc/self/fd/2");
}

#[test]
fn no_pivot_runs_in_rootfs() {
    let mut env = Env::sh("no_pivot", "cat /only-in-rootfs; ls /");
    fs::write(env.rootfs().join("only-in-rootfs"), "inside\n").unwrap();
    env.set("/root/readonly", json!(false));
    let out = env.berth(&["run", "--no-pivot", "--bundle", &env.bundle_str(), &env.id]).ok();
    assert!(out.stdout.starts_with("inside\n"), "{out}");
    assert!(!out.stdout.contains("berth-it"), "{out}");
    assert_no_leftovers(&env);

    // create --no-pivot, options after the id
    let c = env.berth(&["create", &env.id, "--no-pivot", "--bundle", &env.bundle_str()]).ok();
    env.start();
    env.wait_status("stopped", SHORT);
    assert!(c.stdout_now().starts_with("inside\n"), "{}", c.stdout_now());
    env.delete().ok();
    assert_no_leftovers(&env);
}

#[test]
fn rootfs_relative_and_absolute_path() {
    // root.path may be absolute too
    let mut env = Env::sh("rootfs_abs", "cat /only-in-rootfs");
    fs::write(env.rootfs().join("only-in-rootfs"), "abs\n").unwrap();
    let abs = env.rootfs();
    env.set("/root/path", json!(abs));
    let out = env.run_ok();
    assert_eq!(out.stdout.trim(), "abs", "{out}");
    assert_no_leftovers(&env);
}

/// The image's tree under `dir` for the tmpcopyup test: nested directories,
/// modes and owners, a setuid file, a fifo, an xattr, an old mtime and a
/// symlink that points outside "/" from the host's point of view.
fn copyup_tree(dir: &Path) {
    use std::os::unix::fs::{chown, symlink, PermissionsExt};
    let mode = |p: &Path, m: u32| fs::set_permissions(p, fs::Permissions::from_mode(m)).unwrap();
    fs::create_dir_all(dir.join("ssl/certs")).unwrap();
    fs::write(dir.join("hostname"), "image-host\n").unwrap();
    fs::write(dir.join("ssl/certs/ca.pem"), "CERT\n").unwrap();
    fs::write(dir.join("suid"), "#!/bin/sh\n").unwrap();
    symlink("../../../../../../../etc/shadow", dir.join("escape")).unwrap();
    let fifo = std::ffi::CString::new(dir.join("fifo").to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o620) }, 0, "mkfifo");
    for (p, m, uid, gid) in [
        ("", 0o751, 7, 8),
        ("hostname", 0o640, 1000, 1001),
        ("ssl", 0o750, 12, 13),
        ("ssl/certs", 0o711, 0, 0),
        ("suid", 0o4755, 0, 0),
        ("fifo", 0o620, 5, 6),
    ] {
        let p = dir.join(p);
        chown(&p, Some(uid), Some(gid)).unwrap();
        mode(&p, m);
    }
    let f = fs::File::options().write(true).open(dir.join("hostname")).unwrap();
    f.set_modified(std::time::UNIX_EPOCH + Duration::from_secs(1_000_000_000)).unwrap();
    let path = std::ffi::CString::new(dir.join("hostname").to_str().unwrap()).unwrap();
    let r = unsafe { libc::setxattr(path.as_ptr(), c"user.berth".as_ptr(), b"kept".as_ptr().cast(), 4, 0) };
    assert_eq!(r, 0, "setxattr: {}", std::io::Error::last_os_error());
}

#[test]
fn tmpfs_tmpcopyup() {
    let script = "cd /conf && stat -c '%n %a %u:%g %F' . hostname ssl ssl/certs ssl/certs/ca.pem suid fifo escape; \
                  readlink escape; cat ssl/certs/ca.pem; stat -c %Y hostname; \
                  echo changed > hostname && touch newfile && cat hostname; \
                  cat /ro-conf/hostname; if touch /ro-conf/x 2>/dev/null; then echo ro-conf=rw; else echo ro-conf=ro; fi; \
                  ls -A /missing | wc -l; grep -c ' /conf [^-]* - tmpfs ' /proc/self/mountinfo; echo r > /ready; ";
    let mut env = Env::sh("tmpcopyup", &format!("{script}{SLEEPER}"));
    copyup_tree(&env.rootfs().join("conf"));
    fs::create_dir_all(env.rootfs().join("ro-conf")).unwrap();
    fs::write(env.rootfs().join("ro-conf/hostname"), "ro-host\n").unwrap();
    for (dest, opts) in
        [("/conf", json!(["nosuid", "nodev", "tmpcopyup"])), ("/ro-conf", json!(["ro", "tmpcopyup"])), ("/missing", json!(["tmpcopyup"]))]
    {
        env.push("/mounts", json!({"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": opts}));
    }
    let run = env.run_detached();
    env.wait_file("ready", "r");
    // The xattr, seen from the host through the container's root.
    let copied = std::ffi::CString::new(format!("/proc/{}/root/conf/hostname", env.pid())).unwrap();
    let mut buf = [0u8; 16];
    let n = unsafe { libc::getxattr(copied.as_ptr(), c"user.berth".as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    let xattr = if n < 0 { Err(std::io::Error::last_os_error()) } else { Ok(String::from_utf8_lossy(&buf[..n as usize]).into_owned()) };
    let stdout = run.stdout_now();
    env.delete_force().ok();
    assert_no_leftovers(&env);
    let want = ". 751 7:8 directory\nhostname 640 1000:1001 regular file\nssl 750 12:13 directory\n\
                ssl/certs 711 0:0 directory\nssl/certs/ca.pem 644 0:0 regular file\nsuid 4755 0:0 regular file\n\
                fifo 620 5:6 fifo\nescape 777 0:0 symbolic link\n../../../../../../../etc/shadow\nCERT\n1000000000\n\
                changed\nro-host\nro-conf=ro\n0\n1";
    assert_eq!(squash(&stdout), want, "stderr: {}", run.stderr_now());
    assert_eq!(xattr.ok().as_deref(), Some("kept"), "user.berth xattr not copied");
    // Writes stayed in the tmpfs.
    assert_eq!(fs::read_to_string(env.rootfs().join("conf/hostname")).unwrap(), "image-host\n");
    assert!(!env.rootfs().join("conf/newfile").exists());
    assert!(!env.rootfs().join("missing").read_dir().unwrap().any(|_| true));
}

#[test]
fn tmpcopyup_in_a_user_namespace() {
    // Owners are copied as the container sees them; device nodes, which a
    // user namespace may not make, are left out with one warning.
    let mut env = Env::sh("tmpcopyup_userns", "stat -c '%n %u:%g %F' /conf/f /conf/fifo; ls /conf");
    let conf = env.rootfs().join("conf");
    fs::create_dir_all(&conf).unwrap();
    fs::write(conf.join("f"), "x").unwrap();
    for (name, mode, dev) in [
        ("fifo", libc::S_IFIFO | 0o644, 0),
        ("null", libc::S_IFCHR | 0o666, libc::makedev(1, 3)),
        ("zero", libc::S_IFCHR | 0o666, libc::makedev(1, 5)),
    ] {
        let p = std::ffi::CString::new(conf.join(name).to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mknod(p.as_ptr(), mode, dev) }, 0, "mknod {name}: {}", std::io::Error::last_os_error());
    }
    for p in [&conf, &conf.join("f"), &conf.join("fifo")] {
        std::os::unix::fs::chown(p, Some(100_007), Some(100_008)).unwrap();
    }
    env.push("/linux/namespaces", json!({"type": "user"}));
    env.set("/linux/uidMappings", json!([{"containerID": 0, "hostID": 100000, "size": 65536}]));
    env.set("/linux/gidMappings", json!([{"containerID": 0, "hostID": 100000, "size": 65536}]));
    env.push("/mounts", json!({"destination": "/conf", "type": "tmpfs", "source": "tmpfs", "options": ["tmpcopyup"]}));
    let out = env.run_ok();
    assert_eq!(squash(&out.stdout), "/conf/f 7:8 regular file\n/conf/fifo 7:8 fifo\nf\nfifo", "{out}");
    assert_eq!(out.stderr.matches("berth: warning:").count(), 1, "{out}");
    assert!(out.stderr.contains("tmpcopyup: mknod /conf/") && out.stderr.contains("and 1 more"), "{out}");
    assert_no_leftovers(&env);
}
