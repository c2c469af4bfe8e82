//! Sealing berth's own binary against CVE-2019-5736.
//!
//! The container's init is a clone of berth, so its `/proc/self/exe` is the
//! berth binary on the host. A container whose program is `/proc/self/exe`
//! (directly, through a symlink, or as a `#!` interpreter) makes init
//! execute that binary inside the container; another process there can
//! keep a handle on `/proc/<pid>/exe` and, once that process exits, reopen
//! it for writing and replace berth on the host. Being non-dumpable until
//! execve does not help here: the new process is dumpable.
//!
//! Two defences, the cheaper first ([`prepare`], called by `create` and
//! `run` before anything else):
//!
//! * **Exec trampoline** (x86_64): init does not execve the container's
//!   program itself. It executes a 200-byte static program held in a sealed
//!   memfd (written by berth, see [`trampoline_elf`]), which executes the
//!   program. Whatever the container then finds behind `/proc/self/exe` is
//!   that sealed memfd, never berth's binary, and while init still runs
//!   berth's code it is non-dumpable. Cost: one memfd per container and
//!   one exec of a program with no dynamic loader (tens of microseconds).
//! * **Sealed re-execution** (other architectures, or when the memfd
//!   cannot be made; also when init joins an existing pid namespace or
//!   stays in the host's, see [`for_config`], and before every `berth
//!   exec`, whose process is visible in the container while it runs
//!   berth's code, see [`prepare_exec`]): berth re-executes itself from a read-only bind mount
//!   of its binary, made with `open_tree(2)` (`OPEN_TREE_CLONE`, a detached
//!   mount nobody else sees) and `mount_setattr(2)` (`MOUNT_ATTR_RDONLY`),
//!   else from a memfd copy sealed with `F_SEAL_WRITE | F_SEAL_GROW |
//!   F_SEAL_SHRINK | F_SEAL_SEAL`; init inherits that as its
//!   `/proc/self/exe`. Costs a full exec of berth (about 2 ms of CPU on the
//!   2-vCPU test VM, mostly the dynamic loader and glibc's CPU detection),
//!   which is why it is the fallback.
//!
//! Nothing is needed when berth already runs from a read-only mount or a
//! write-sealed memfd (which is also how a re-executed berth knows it is
//! done). A program that starts berth's code in a new process (the shim's
//! launcher) can execute it from such a copy at once: [`sealed_copy`].

use std::ffi::{CStr, CString, OsString};
use std::fs;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;
use std::sync::OnceLock;

use crate::error::{Error, Result};
use crate::sys::{self, cvt, MountAttr};

/// Whether the binary behind `fd` cannot be written: on a read-only mount,
/// or a memfd sealed against writes.
fn is_sealed(fd: &fs::File) -> bool {
    // SAFETY: statvfs is plain integers; all-zero is a valid value, overwritten below.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a live statvfs the kernel fills; the fd is open for the call.
    if unsafe { libc::fstatvfs(fd.as_raw_fd(), &mut st) } == 0 && st.f_flag & libc::ST_RDONLY != 0 {
        return true;
    }
    // SAFETY: F_GET_SEALS takes no pointer; on a file that is not a memfd it fails (EINVAL).
    let seals = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) };
    seals >= 0 && seals & libc::F_SEAL_WRITE != 0
}

/// The trampoline made by [`prepare`], for [`crate::process`] to use.
static TRAMPOLINE: OnceLock<OwnedFd> = OnceLock::new();

/// Before `create` or `run` does anything: make the exec trampoline, or
/// re-execute berth from a sealed copy of itself (see the module docs).
pub fn prepare() -> Result<()> {
    if try_trampoline() || self_is_sealed() {
        return Ok(());
    }
    log::debug!("exec trampoline unavailable; re-executing berth from a sealed copy");
    ensure_sealed()
}

/// [`prepare`] for library callers (the shim's `create`), which must never
/// re-execute (their argv is not berth's): the trampoline, else the caller
/// must already run from a sealed binary (the shim's launcher does).
pub fn prepare_library() -> Result<()> {
    if try_trampoline() || self_is_sealed() {
        return Ok(());
    }
    Err(Error::Unsupported(
        "create: no exec trampoline on this system and this process does not run from a sealed binary, \
         so init would expose it to the container (CVE-2019-5736)"
            .into(),
    ))
}

/// Make the trampoline unless there is one; whether there is one now.
fn try_trampoline() -> bool {
    if TRAMPOLINE.get().is_none() {
        match make_trampoline() {
            Ok(Some(fd)) => {
                let _ = TRAMPOLINE.set(fd);
            }
            Ok(None) => {}
            Err(e) => log::debug!("exec trampoline unavailable: {e}"),
        }
    }
    TRAMPOLINE.get().is_some()
}

/// After the config is loaded, before anything is created: the exec
/// trampoline protects from the moment init executes; before that, init is
/// non-dumpable, which keeps out every process without CAP_SYS_PTRACE (in
/// the host's user namespace) that can see it. With a new pid namespace
/// none can; when init joins an existing pid namespace, or stays in the
/// host's, a process there with CAP_SYS_PTRACE could open init's exe and
/// keep it: then berth re-executes itself from a sealed copy (costly, so
/// only then).
pub fn for_config(spec: &oci_spec::runtime::Spec) -> Result<()> {
    use oci_spec::runtime::LinuxNamespaceType;
    let new_pid_ns = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| ns.iter().any(|n| n.typ() == LinuxNamespaceType::Pid && n.path().is_none()));
    if new_pid_ns {
        return Ok(());
    }
    ensure_sealed()
}

/// Before `exec` (the CLI's and the shim's): the exec'd process is cloned
/// from the caller and is visible in the container's pid namespace while it
/// still runs the caller's code, so a process there with CAP_SYS_PTRACE
/// could open its `/proc/<pid>/exe`. The caller must therefore already run
/// from a sealed binary: the `berth` command re-executes itself first
/// ([`ensure_sealed`], called by the CLI before `exec`), the shim starts its
/// launcher from a sealed copy. Never re-executes here (a library caller's
/// argv is not berth's): an unsealed caller is an error. Also makes the exec
/// trampoline, through which the process executes its program.
pub fn prepare_exec() -> Result<()> {
    let exe = fs::File::open("/proc/self/exe").map_err(|e| Error::path("open", "/proc/self/exe", e))?;
    if !is_sealed(&exe) {
        return Err(Error::Internal(
            "exec: this process does not run from a sealed binary (a read-only bind or a sealed memfd), \
             so the exec'd process would expose it to the container (CVE-2019-5736); \
             call berth::security::seal::ensure_sealed first"
                .into(),
        ));
    }
    try_trampoline();
    Ok(())
}

/// Whether this process runs from a sealed binary.
pub fn self_is_sealed() -> bool {
    fs::File::open("/proc/self/exe").is_ok_and(|f| is_sealed(&f))
}

/// The trampoline's fd, if [`prepare`] made one.
pub fn trampoline() -> Option<&'static OwnedFd> {
    TRAMPOLINE.get()
}

/// A CLOEXEC duplicate of `fd` numbered `min` or higher.
pub fn dup_above(fd: &OwnedFd, min: i32) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC takes integer arguments only and returns a new fd or -1.
    let r = cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, min) } as libc::c_long)?;
    // SAFETY: r is the new fd fcntl just returned (cvt checked it); nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(r as i32) })
}

/// Re-execute berth from a sealed copy of itself unless it already runs
/// from one. Returns only when berth is sealed (or on error).
pub fn ensure_sealed() -> Result<()> {
    let exe = fs::File::open("/proc/self/exe").map_err(|e| Error::path("open", "/proc/self/exe", e))?;
    if is_sealed(&exe) {
        return Ok(());
    }
    let argv = cstrings(std::env::args_os())?;
    let envp = cstrings(std::env::vars_os().map(|(k, v)| {
        let mut kv = k;
        kv.push("=");
        kv.push(v);
        kv
    }))?;
    let bind_err = match ro_bind(c"/proc/self/exe") {
        Ok(fd) => exec(&fd, &argv, &envp),
        Err(e) => e,
    };
    log::debug!("seal berth binary: read-only bind failed ({bind_err}); using a sealed memfd copy");
    let memfd_err = match memfd_copy(&exe) {
        Ok(fd) => exec(&fd, &argv, &envp),
        Err(e) => e,
    };
    Err(Error::os(
        format!(
            "cannot seal the berth binary against overwrites from a container (CVE-2019-5736): \
             read-only bind: {bind_err}; sealed memfd"
        ),
        memfd_err,
    ))
}

fn cstrings(it: impl Iterator<Item = OsString>) -> Result<Vec<CString>> {
    it.map(|s| CString::new(s.into_vec()).map_err(|e| Error::os("seal berth: an argument or the environment", e)))
        .collect()
}

/// A sealed copy of the executable at `path`, to execute with
/// `execveat(fd, "", argv, envp, AT_EMPTY_PATH)`: a detached read-only bind
/// mount of it, else a memfd copy sealed against any change. The fd is
/// CLOEXEC. The process executed from it has a sealed `/proc/self/exe`, and
/// so has every process it forks ([`ensure_sealed`] returns at once there).
pub fn sealed_copy(path: &Path) -> Result<OwnedFd> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|e| Error::path("seal", path, e.into()))?;
    let bind_err = match ro_bind(&c) {
        Ok(fd) => return Ok(fd),
        Err(e) => e,
    };
    let file = fs::File::open(path).map_err(|e| Error::path("open", path, e))?;
    memfd_copy(&file).map_err(|memfd_err| {
        Error::os(
            format!(
                "cannot seal {} against overwrites (CVE-2019-5736): read-only bind: {bind_err}; sealed memfd",
                path.display()
            ),
            memfd_err,
        )
    })
}

/// A detached, read-only bind mount of the file at `path`.
fn ro_bind(path: &CStr) -> io::Result<OwnedFd> {
    let fd = sys::open_tree_clone(path, false)?;
    let ro = libc::MOUNT_ATTR_RDONLY | libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NODEV;
    sys::mount_setattr(fd.as_fd(), false, MountAttr::flags(ro, 0))?;
    Ok(fd)
}

/// A memfd holding a copy of the binary, sealed against any change.
fn memfd_copy(exe: &fs::File) -> io::Result<OwnedFd> {
    // SAFETY: a static NUL-terminated name; memfd_create returns a new fd or -1.
    let fd = cvt(unsafe {
        libc::memfd_create(c"berth".as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) as libc::c_long
    })?;
    // SAFETY: fd is the new fd memfd_create just returned (cvt checked it); nobody else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let len = exe.metadata()?.len();
    let mut copied = 0u64;
    while copied < len {
        // SAFETY: both fds are open for the call, a null offset means the file position,
        // and sendfile moves bytes between files without touching our memory.
        let n = cvt(unsafe {
            libc::sendfile(fd.as_raw_fd(), exe.as_raw_fd(), std::ptr::null_mut(), (len - copied) as usize)
                as libc::c_long
        })?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "binary shrank while being copied"));
        }
        copied += n as u64;
    }
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: F_ADD_SEALS takes an integer; it only restricts the memfd we own.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) } as libc::c_long)?;
    Ok(fd)
}

/// execveat(fd, "", AT_EMPTY_PATH): returns only on failure.
fn exec(fd: &OwnedFd, argv: &[CString], envp: &[CString]) -> io::Error {
    let mut a: Vec<*const libc::c_char> = argv.iter().map(|s| s.as_ptr()).collect();
    a.push(std::ptr::null());
    let mut e: Vec<*const libc::c_char> = envp.iter().map(|s| s.as_ptr()).collect();
    e.push(std::ptr::null());
    // SAFETY: `a` and `e` are NULL-terminated arrays of pointers into CStrings (argv,
    // envp) that outlive the call, and "" with AT_EMPTY_PATH names `fd` itself.
    // On success the process image is replaced; on failure nothing changed.
    unsafe {
        libc::syscall(libc::SYS_execveat, fd.as_raw_fd(), c"".as_ptr(), a.as_ptr(), e.as_ptr(), libc::AT_EMPTY_PATH)
    };
    io::Error::last_os_error()
}

/// A static x86_64 ELF executable, built here byte by byte (no assembler
/// at build time): `execve(argv[0], &argv[1], envp)`; on failure it writes
/// `berth: exec failed: errno N` to stderr and exits 127. Loaded at
/// 0x400000, one read+execute segment, no dynamic loader, no libc.
#[cfg(target_arch = "x86_64")]
pub fn trampoline_elf() -> Vec<u8> {
    const BASE: u64 = 0x40_0000;
    const CODE_OFF: u64 = 64 + 56; // ELF header + one program header
    const MSG: &[u8] = b"berth: exec failed: errno ";
    #[rustfmt::skip]
    let mut code: Vec<u8> = vec![
        0x48, 0x8b, 0x7c, 0x24, 0x08,       // 00 mov rdi, [rsp+8]        argv[0]: the path
        0x48, 0x8d, 0x74, 0x24, 0x10,       // 05 lea rsi, [rsp+16]       &argv[1]
        0x48, 0x8b, 0x04, 0x24,             // 0a mov rax, [rsp]          argc
        0x48, 0x8d, 0x54, 0xc4, 0x10,       // 0e lea rdx, [rsp+rax*8+16] envp
        0xb8, 0x3b, 0x00, 0x00, 0x00,       // 13 mov eax, 59             execve
        0x0f, 0x05,                         // 18 syscall
        0xf7, 0xd8,                         // 1a neg eax                 errno
        0xb9, 0x0a, 0x00, 0x00, 0x00,       // 1c mov ecx, 10
        0x4c, 0x8d, 0x44, 0x24, 0xff,       // 21 lea r8, [rsp-1]         digits, backwards
        0x41, 0xc6, 0x00, 0x0a,             // 26 mov byte [r8], '\n'
        0x31, 0xd2,                         // 2a xor edx, edx
        0xf7, 0xf1,                         // 2c div ecx
        0x80, 0xc2, 0x30,                   // 2e add dl, '0'
        0x49, 0xff, 0xc8,                   // 31 dec r8
        0x41, 0x88, 0x10,                   // 34 mov [r8], dl
        0x85, 0xc0,                         // 37 test eax, eax
        0x75, 0xef,                         // 39 jnz 2a
        0xbf, 0x02, 0x00, 0x00, 0x00,       // 3b mov edi, 2
        0x48, 0x8d, 0x35, 0x2d, 0x00, 0x00, 0x00, // 40 lea rsi, [rip+0x2d]  MSG at 74
        0xba, MSG.len() as u8, 0x00, 0x00, 0x00, // 47 mov edx, len(MSG)
        0xb8, 0x01, 0x00, 0x00, 0x00,       // 4c mov eax, 1              write
        0x0f, 0x05,                         // 51 syscall
        0xbf, 0x02, 0x00, 0x00, 0x00,       // 53 mov edi, 2
        0x4c, 0x89, 0xc6,                   // 58 mov rsi, r8
        0x48, 0x89, 0xe2,                   // 5b mov rdx, rsp
        0x4c, 0x29, 0xc2,                   // 5e sub rdx, r8
        0xb8, 0x01, 0x00, 0x00, 0x00,       // 61 mov eax, 1              write
        0x0f, 0x05,                         // 66 syscall
        0xbf, 0x7f, 0x00, 0x00, 0x00,       // 68 mov edi, 127
        0xb8, 0xe7, 0x00, 0x00, 0x00,       // 6d mov eax, 231            exit_group
        0x0f, 0x05,                         // 72 syscall
    ];
    debug_assert_eq!(code.len(), 0x74);
    code.extend_from_slice(MSG);
    let size = CODE_OFF + code.len() as u64;
    let mut elf = Vec::with_capacity(size as usize);
    elf.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    elf.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    elf.extend_from_slice(&0x3eu16.to_le_bytes()); // EM_X86_64
    elf.extend_from_slice(&1u32.to_le_bytes()); // EV_CURRENT
    elf.extend_from_slice(&(BASE + CODE_OFF).to_le_bytes()); // e_entry
    elf.extend_from_slice(&64u64.to_le_bytes()); // e_phoff
    elf.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
    elf.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    for v in [64u16, 56, 1, 0, 0, 0] {
        elf.extend_from_slice(&v.to_le_bytes()); // ehsize phentsize phnum shentsize shnum shstrndx
    }
    elf.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    elf.extend_from_slice(&5u32.to_le_bytes()); // PF_R | PF_X
    for v in [0u64, BASE, BASE, size, size, 0x1000] {
        elf.extend_from_slice(&v.to_le_bytes()); // offset vaddr paddr filesz memsz align
    }
    elf.extend_from_slice(&code);
    elf
}

/// The trampoline in a sealed memfd, or None on architectures without one.
fn make_trampoline() -> io::Result<Option<OwnedFd>> {
    #[cfg(target_arch = "x86_64")]
    {
        const MFD_EXEC: libc::c_uint = 0x10;
        let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
        // MFD_EXEC (Linux 6.3) asks for an executable memfd explicitly, as
        // vm.memfd_noexec=1 requires; older kernels reject the flag.
        // SAFETY: a static NUL-terminated name; memfd_create returns a new fd or -1.
        let mut fd = unsafe { libc::memfd_create(c"berth-exec".as_ptr(), flags | MFD_EXEC) };
        if fd < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
            // SAFETY: a static NUL-terminated name; memfd_create returns a new fd or -1.
            fd = unsafe { libc::memfd_create(c"berth-exec".as_ptr(), flags) };
        }
        // SAFETY: cvt checked fd is a new fd from memfd_create; nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(cvt(fd as libc::c_long)? as i32) };
        let elf = trampoline_elf();
        // SAFETY: `elf` is valid for elf.len() bytes; write only reads it.
        let n = cvt(unsafe { libc::write(fd.as_raw_fd(), elf.as_ptr().cast(), elf.len()) } as libc::c_long)?;
        if n as usize != elf.len() {
            return Err(io::Error::new(io::ErrorKind::WriteZero, "short write to the trampoline memfd"));
        }
        let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
        // SAFETY: F_ADD_SEALS takes an integer; it only restricts the memfd we own.
        cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) } as libc::c_long)?;
        Ok(Some(fd))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        Ok(None)
    }
}

/// In init, as its last act: execute `exe` through the trampoline `fd`.
/// Returns only on failure. Tries execveat(fd) first, then
/// execve("/proc/self/fd/N") for a seccomp profile that allows execve but
/// not execveat.
pub fn exec_via(fd: &OwnedFd, exe: &CString, argv: &[CString], envp: &[CString]) -> io::Error {
    let mut a: Vec<*const libc::c_char> = Vec::with_capacity(argv.len() + 2);
    a.push(exe.as_ptr());
    a.extend(argv.iter().map(|s| s.as_ptr()));
    a.push(std::ptr::null());
    let mut e: Vec<*const libc::c_char> = envp.iter().map(|s| s.as_ptr()).collect();
    e.push(std::ptr::null());
    // SAFETY: `a` and `e` are NULL-terminated arrays of pointers into CStrings that
    // outlive the call; "" with AT_EMPTY_PATH names `fd`. Returns only on failure.
    unsafe {
        libc::syscall(libc::SYS_execveat, fd.as_raw_fd(), c"".as_ptr(), a.as_ptr(), e.as_ptr(), libc::AT_EMPTY_PATH)
    };
    let first = io::Error::last_os_error();
    if let Ok(p) = CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())) {
        // SAFETY: `p` is a CString alive for the call, `a` and `e` as above.
        unsafe { libc::execve(p.as_ptr(), a.as_ptr(), e.as_ptr()) };
    }
    first
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    use std::process::Command;

    use super::trampoline_elf;

    #[test]
    fn trampoline_execs_its_first_argument_and_reports_failure() {
        let dir = std::env::temp_dir().join(format!("berth-trampoline-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let t = dir.join("t");
        std::fs::write(&t, trampoline_elf()).unwrap();
        std::fs::set_permissions(&t, std::fs::Permissions::from_mode(0o755)).unwrap();
        // argv[0] is the program, argv[1..] its argv (argv[0] included).
        let out = Command::new(&t)
            .arg0("/bin/sh")
            .args(["sh", "-c", "echo \"$0 $1 $FOO\"", "zero", "one"])
            .env("FOO", "env-kept")
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "zero one env-kept\n", "{out:?}");
        let out = Command::new(&t).arg0("/nonexistent").arg("x").output().unwrap();
        assert_eq!(out.status.code(), Some(127));
        assert_eq!(String::from_utf8_lossy(&out.stderr), "berth: exec failed: errno 2\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn ro_bind_is_a_read_only_copy_of_the_binary() {
        use std::os::unix::fs::MetadataExt;
        let fd = super::ro_bind(c"/proc/self/exe").expect("open_tree + mount_setattr of /proc/self/exe");
        let f = std::fs::File::from(fd);
        assert!(super::is_sealed(&f), "the detached bind is not read-only");
        let (bind, exe) = (f.metadata().unwrap(), std::fs::metadata("/proc/self/exe").unwrap());
        assert_eq!((bind.dev(), bind.ino()), (exe.dev(), exe.ino()));
    }

    #[test]
    fn sealed_copy_of_a_path_cannot_be_written() {
        let bin = std::path::Path::new("/bin/true");
        let f = std::fs::File::from(super::sealed_copy(bin).unwrap());
        assert!(super::is_sealed(&f));
        let copy = std::fs::read(format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&f))).unwrap();
        assert_eq!(copy, std::fs::read(bin).unwrap());
        let e = super::sealed_copy(std::path::Path::new("/nonexistent/berth")).unwrap_err().to_string();
        assert!(e.contains("/nonexistent/berth"), "{e}");
    }
}
