//! The container escapes through the shim's Create and Exec under a real
//! containerd (1.6 and 2.1): the same attacks as `exec_escapes.rs` (the
//! `berth exec` entry points) and `security.rs` (create/run), with the
//! shim's launcher in berth's place. The containers run as root with
//! containerd's default capabilities (Docker's set), plus CAP_SYS_PTRACE
//! for the ptrace class. Not run rootless (as exec_escapes.rs and
//! security.rs are): containerd and its shims run as root only.

use std::os::unix::fs::PermissionsExt;

use berth_integration::attacks::{host_objects_in, watcher};
use berth_integration::containerd::{make_oci_archive_images, Containerd, Version, SHIM};
use berth_integration::harness::find_bin;
use berth_integration::prelude::*;

berth_integration::each_containerd!(
    shim_never_runs_its_binary_in_the_container,
    shim_exec_holds_nothing_of_the_host_when_visible,
    shim_exec_cwd_and_program_through_a_leaked_fd,
    shim_create_keeps_image_symlinks_inside,
);

/// The container's root as the host reaches it.
fn root_of(c: &Containerd, id: &str) -> PathBuf {
    PathBuf::from(format!("/proc/{}/root", c.task_pid(id)))
}

fn executable(path: &Path, text: &str) {
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

fn shim_bytes() -> Vec<u8> {
    fs::read(find_bin(SHIM, "BERTH_SHIM_BIN")).unwrap()
}

fn shim_never_runs_its_binary_in_the_container(v: Version) {
    // /proc/self/exe as the program (Create), and behind a #! line and a
    // symlink in the container (Exec): the shim's binary must never be
    // what runs, and never be writable from the container.
    let c = Containerd::start(v, "esc5736");
    let before = shim_bytes();
    for (n, cmd) in [
        &["/proc/self/exe", "-v"][..],
        &["/proc/self/exe", "--version"][..],
    ]
    .iter()
    .enumerate()
    {
        let id = format!("c{n}");
        let o = c.run(&[], &id, cmd);
        assert!(
            !o.stdout.contains("containerd-shim") && !o.stdout.contains("version"),
            "Create {cmd:?}:\n{o}"
        );
        c.ctr(&["containers", "rm", &id]);
    }
    c.sleeper("x1");
    let root = root_of(&c, "x1");
    executable(&root.join("evil.sh"), "#!/proc/self/exe -v\n");
    fs::create_dir_all(root.join("usr/local/bin")).unwrap();
    std::os::unix::fs::symlink("/proc/self/exe", root.join("usr/local/bin/evil")).unwrap();
    // Exec works at all (else the attacks below prove nothing).
    let o = c.ctr(&[
        "tasks",
        "exec",
        "--exec-id",
        "ok",
        "x1",
        "echo",
        "exec-works",
    ]);
    assert!(o.success() && o.stdout.contains("exec-works"), "{o}");
    for (n, cmd) in [
        &["/evil.sh", "x"][..],
        &["/usr/local/bin/evil", "-v"][..],
        &["/proc/self/exe", "-v"][..],
    ]
    .iter()
    .enumerate()
    {
        let o = c.ctr(
            &[
                &["tasks", "exec", "--exec-id", &format!("e{n}"), "x1"][..],
                cmd,
            ]
            .concat(),
        );
        let text = format!("{}{}", o.stdout, o.stderr);
        assert!(
            !text.contains("containerd-shim") && !text.contains("version"),
            "Exec {cmd:?}:\n{o}"
        );
    }
    assert!(shim_bytes() == before, "the shim's binary was changed");
    c.remove("x1");
    c.assert_clean();
}

fn shim_exec_holds_nothing_of_the_host_when_visible(v: Version) {
    // While the exec'd process still runs the shim's code (it blocks on a
    // FIFO at /etc/passwd), a container process with CAP_SYS_PTRACE
    // finds no host fd, cwd or root in it, and its exe is not writable.
    let c = Containerd::start(v, "escptrace");
    let before = shim_bytes();
    // The exec'd process is the launcher's child: its command line is the
    // launcher's ("... launch").
    let script = watcher("launch");
    c.run(
        &["-d", "--cap-add", "CAP_SYS_PTRACE"],
        "x1",
        &["sh", "-c", &script],
    )
    .ok();
    c.wait_status("x1", "RUNNING");
    let root = root_of(&c, "x1");
    fs::write(root.join("go1"), "").unwrap();
    wait_for_file(&root.join("ready1"), "ok", SHORT);
    let o = c.ctr(&[
        "tasks",
        "exec",
        "--exec-id",
        "e1",
        "x1",
        "sh",
        "-c",
        "echo exec-ran",
    ]);
    assert!(o.success() && o.stdout.contains("exec-ran"), "{o}");
    fs::write(root.join("later1"), "").unwrap();
    let report = wait_for_file(&root.join("report1"), "done", SHORT);
    let bad = host_objects_in(&report);
    assert!(
        bad.is_empty(),
        "the exec'd process exposed host objects {bad:?}:\n{report}"
    );
    assert!(shim_bytes() == before, "the shim's binary was changed");
    c.remove("x1");
    c.assert_clean();
}

fn shim_exec_cwd_and_program_through_a_leaked_fd(v: Version) {
    // CVE-2024-21626 through the shim's Exec: a cwd through /proc/self/fd/N
    // (ctr's --cwd) and a program behind a symlink through it.
    let c = Containerd::start(v, "esc21626");
    c.sleeper("x1");
    let root = root_of(&c, "x1");
    fs::create_dir_all(root.join("escape")).unwrap();
    let check = "[ /proc/$$/exe -ef /bin/busybox ] || echo ESCAPED; echo ran";
    for n in 3..=12 {
        let cwd = format!("/proc/self/fd/{n}");
        let o = c.ctr(&[
            "tasks",
            "exec",
            "--exec-id",
            &format!("c{n}"),
            "--cwd",
            &cwd,
            "x1",
            "sh",
            "-c",
            "ls -a . .. ../..",
        ]);
        for host_file in [
            "state.json",
            "config.json",
            "log.json",
            "containerd.log",
            "address",
        ] {
            assert!(
                !o.stdout.contains(host_file),
                "--cwd {cwd} reached a host directory ({host_file}):\n{o}"
            );
        }
        let link = root.join("escape/sh");
        let _ = fs::remove_file(&link);
        std::os::unix::fs::symlink(
            format!("{cwd}/../../../../../../../../../../bin/busybox"),
            &link,
        )
        .unwrap();
        let o = c.ctr(&[
            "tasks",
            "exec",
            "--exec-id",
            &format!("p{n}"),
            "x1",
            "/escape/sh",
            "-c",
            check,
        ]);
        assert!(
            !o.stdout.contains("ESCAPED"),
            "ran the host's busybox through fd {n}:\n{o}"
        );
    }
    c.remove("x1");
    // The shim's Create: the container's own cwd through a leaked fd.
    for n in 3..=12 {
        let cwd = format!("/proc/self/fd/{n}");
        let id = format!("cw{n}");
        let o = c.run(&["--cwd", &cwd], &id, &["sh", "-c", "ls -a . .. ../.."]);
        for host_file in [
            "state.json",
            "config.json",
            "log.json",
            "containerd.log",
            "address",
        ] {
            assert!(
                !o.stdout.contains(host_file),
                "Create with cwd {cwd} reached a host directory ({host_file}):\n{o}"
            );
        }
        c.ctr(&["containers", "rm", &id]);
    }
    c.assert_clean();
}

/// Import an image named `name` made of `rootfs` (busybox's config).
fn import_image(c: &Containerd, rootfs: &Path, name: &str) {
    let work = rootfs.parent().unwrap();
    let out = work.join("image.tar");
    let config = json!({"Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["sh"]});
    make_oci_archive_images(rootfs, &work.join("layout"), &out, &[(name, config)]);
    c.ctr(&["images", "import", out.to_str().unwrap()]).ok();
}


fn shim_create_keeps_image_symlinks_inside(v: Version) {
    // Through the shim's Create: an image whose /proc is a symlink to `/`
    // is refused (CVE-2019-16884 class), and a bind mount whose
    // destination in the image is a symlink out of the rootfs lands inside
    // it (CVE-2021-30465 class); the host's mount table does not change.
    let c = Containerd::start(v, "escimg");
    let base = c.dir.join("evil-images");
    let proc_link = base.join("proc-link/rootfs");
    berth_integration::bundle::make_busybox_rootfs(&proc_link).unwrap();
    let _ = fs::remove_dir_all(proc_link.join("proc"));
    std::os::unix::fs::symlink("/", proc_link.join("proc")).unwrap();
    import_image(&c, &proc_link, "docker.io/library/evil-proc:latest");
    let data_link = base.join("data-link/rootfs");
    berth_integration::bundle::make_busybox_rootfs(&data_link).unwrap();
    std::os::unix::fs::symlink("../../../../../../../../..", data_link.join("data")).unwrap();
    import_image(&c, &data_link, "docker.io/library/evil-data:latest");
    let before = host::mounts_where_escapes_land(&c.dir);
    let o = c.ctr(&[
        "run",
        "--runtime",
        "io.containerd.berth.v2",
        "docker.io/library/evil-proc:latest",
        "p1",
        "true",
    ]);
    assert!(
        !o.success() && format!("{o}").contains("ordinary directory"),
        "an image /proc symlink was accepted:\n{o}"
    );
    c.ctr(&["containers", "rm", "p1"]);
    let src = c.dir.join("bind-src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("marker"), "bound\n").unwrap();
    let mount = format!("type=bind,src={},dst=/data,options=rbind:ro", src.display());
    let o = c.ctr(&[
        "run",
        "--runtime",
        "io.containerd.berth.v2",
        "--mount",
        &mount,
        "docker.io/library/evil-data:latest",
        "d1",
        "sh",
        "-c",
        "cat /data/marker; ls -d /data",
    ]);
    assert!(o.stdout.contains("bound") || !o.success(), "{o}");
    c.ctr(&["containers", "rm", "d1"]);
    assert_eq!(
        host::mounts_where_escapes_land(&c.dir),
        before,
        "the host's mount table changed"
    );
    c.assert_clean();
}
