//! cgroup v2 device control: the rules compiled to a BPF_PROG_TYPE_CGROUP_DEVICE
//! program, loaded and attached with raw bpf(2) (no libbpf).
//!
//! The program computes the access bits the rules grant to the device, in
//! rule order (an allow adds its bits, a deny removes them, a later rule
//! wins), then allows the access when every requested bit is granted:
//!
//! ```text
//! r2 = ctx->access_type & 0xffff   (1 block, 2 char)
//! r3 = ctx->access_type >> 16      (1 mknod, 2 read, 4 write)
//! r4 = ctx->major; r5 = ctx->minor; r6 = 0
//! per rule: if type/major/minor match: r6 |= bits  (or r6 &= ~bits)
//! r7 = ~r6 & r3; return r7 == 0
//! ```

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use super::devices::{access_bits, Rule};

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// One eBPF instruction (struct bpf_insn).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | (dst & 0xf),
        off,
        imm,
    }
}

// Opcodes: class | op | source.
const LDX_MEM_W: u8 = 0x61;
const ALU64_AND_K: u8 = 0x57;
const ALU64_AND_X: u8 = 0x5f;
const ALU64_OR_K: u8 = 0x47;
const ALU64_RSH_K: u8 = 0x77;
const ALU64_MOV_K: u8 = 0xb7;
const ALU64_MOV_X: u8 = 0xbf;
const ALU64_XOR_K: u8 = 0xa7;
const JMP_JNE_K: u8 = 0x55;
const JMP_EXIT: u8 = 0x95;

/// Compile `rules` (in order, a later one wins) to the program.
pub fn compile(rules: &[Rule]) -> Vec<Insn> {
    let mut p = vec![
        insn(LDX_MEM_W, 2, 1, 0, 0),
        insn(ALU64_AND_K, 2, 0, 0, 0xffff),
        insn(LDX_MEM_W, 3, 1, 0, 0),
        insn(ALU64_RSH_K, 3, 0, 0, 16),
        insn(LDX_MEM_W, 4, 1, 4, 0),
        insn(LDX_MEM_W, 5, 1, 8, 0),
        insn(ALU64_MOV_K, 6, 0, 0, 0),
    ];
    for r in rules {
        let mut checks = Vec::new();
        match r.typ {
            'b' => checks.push((2u8, 1i32)),
            'c' => checks.push((2, 2)),
            _ => {}
        }
        if let Some(m) = r.major {
            checks.push((4, m as i32));
        }
        if let Some(m) = r.minor {
            checks.push((5, m as i32));
        }
        let bits = access_bits(&r.access) as i32;
        let n = checks.len();
        for (i, (reg, val)) in checks.into_iter().enumerate() {
            // Skip the remaining checks and the one action on mismatch.
            p.push(insn(JMP_JNE_K, reg, 0, (n - i) as i16, val));
        }
        if r.allow {
            p.push(insn(ALU64_OR_K, 6, 0, 0, bits));
        } else {
            p.push(insn(ALU64_AND_K, 6, 0, 0, !bits));
        }
    }
    p.extend([
        insn(ALU64_MOV_X, 7, 6, 0, 0),
        insn(ALU64_XOR_K, 7, 0, 0, -1),
        insn(ALU64_AND_X, 7, 3, 0, 0),
        insn(ALU64_MOV_K, 0, 0, 0, 0),
        insn(JMP_JNE_K, 7, 0, 1, 0),
        insn(ALU64_MOV_K, 0, 0, 0, 1),
        insn(JMP_EXIT, 0, 0, 0, 0),
    ]);
    p
}

#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
    // Room for the fields newer kernels define; they must be zero.
    _rest: [u64; 12],
}

#[repr(C)]
#[derive(Default)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
    _rest: [u32; 11],
}

fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a live, exclusively borrowed repr(C) bpf_attr variant of
    // size_of::<T>() bytes, the one this private helper's callers build for `cmd`;
    // the pointers inside it (instructions, license, log) point to buffers the
    // callers keep alive across the call, and the kernel accesses at most their
    // stated lengths.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut T, std::mem::size_of::<T>()) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Load the program; on a verifier error, its log is in the message.
pub fn load(prog: &[Insn]) -> io::Result<OwnedFd> {
    let license = b"Apache\0";
    let mut log = vec![0u8; 4096];
    let mut name = [0u8; 16];
    name[..12].copy_from_slice(b"berth_device");
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: prog.len() as u32,
        insns: prog.as_ptr() as u64,
        license: license.as_ptr() as u64,
        prog_name: name,
        expected_attach_type: BPF_CGROUP_DEVICE,
        ..Default::default()
    };
    match bpf(BPF_PROG_LOAD, &mut attr) {
        // SAFETY: BPF_PROG_LOAD returned a new program fd (bpf() checked r >= 0) that nothing else owns.
        Ok(fd) => Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) }),
        Err(e) => {
            // Load again with the verifier log for the message.
            attr.log_level = 1;
            attr.log_size = log.len() as u32;
            attr.log_buf = log.as_mut_ptr() as u64;
            let _ = bpf(BPF_PROG_LOAD, &mut attr);
            let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
            let text = String::from_utf8_lossy(&log[..end]).trim().to_string();
            if text.is_empty() {
                Err(e)
            } else {
                Err(io::Error::new(e.kind(), format!("{e}; verifier: {text}")))
            }
        }
    }
}

/// Load the rules' program and attach it to the cgroup directory `dir`.
pub fn attach(dir: &Path, rules: &[Rule]) -> io::Result<()> {
    let prog = load(&compile(rules))?;
    let cg = std::fs::File::open(dir)?;
    let mut attr = AttachAttr {
        target_fd: cg.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        ..Default::default()
    };
    bpf(BPF_PROG_ATTACH, &mut attr).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::devices::default_rules;
    use crate::test_skip::{skip, CGROUP2, ROOT};

    fn rules() -> Vec<Rule> {
        let mut r = vec![Rule {
            allow: false,
            typ: 'a',
            major: None,
            minor: None,
            access: "rwm".into(),
        }];
        r.extend(default_rules());
        r
    }

    #[test]
    fn jumps_stay_in_the_program() {
        let p = compile(&rules());
        for (i, ins) in p.iter().enumerate() {
            if ins.code == JMP_JNE_K {
                assert!(i + 1 + (ins.off as usize) < p.len(), "jump at {i} leaves the program");
            }
        }
        assert_eq!(p.last().unwrap().code, JMP_EXIT);
    }

    /// Loads the program into the kernel (root only) and checks it runs
    /// against a real open in a child placed in a fresh cgroup2 directory.
    #[test]
    fn kernel_enforces_the_program() {
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            return skip(ROOT, "needs root to load BPF programs");
        }
        let Some(u) = crate::cgroups::hierarchies()
            .ok()
            .and_then(|hs| hs.into_iter().find(|h| h.unified))
        else {
            return skip(CGROUP2, "no cgroup2 hierarchy mounted");
        };
        let dir = u.mountpoint.join(format!("berth-unit-bpf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        attach(&dir, &rules()).expect("load and attach the device program");
        let procs = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.join("cgroup.procs"))
            .unwrap();
        let (null_path, kmsg_path) = (c"/dev/null", c"/dev/kmsg");
        // Fork a child that moves into the cgroup and tries the opens (no
        // allocation after the fork: the test binary is multi-threaded).
        // SAFETY: the child only makes raw system calls (write, open, close, _exit) and
        // allocates nothing, so no lock held by another thread of the test binary
        // at fork time can be needed in it.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: writes one byte from a static string to the open cgroup.procs file.
            let ok = unsafe { libc::write(procs.as_raw_fd(), b"0".as_ptr().cast(), 1) } == 1;
            let open = |c: &std::ffi::CStr| {
                // SAFETY: `c` is a NUL-terminated CStr alive for the call.
                let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDONLY) };
                let e = io::Error::last_os_error().raw_os_error();
                if fd >= 0 {
                    // SAFETY: fd is the fd open() just returned to this closure; nothing else owns it.
                    unsafe { libc::close(fd) };
                }
                (fd >= 0, e)
            };
            let null = open(null_path).0;
            let (kmsg, e) = open(kmsg_path);
            let code = if !ok {
                2
            } else if !null {
                3
            } else if kmsg || e != Some(libc::EPERM) {
                4
            } else {
                0
            };
            // SAFETY: _exit: the forked child must not run the test harness's destructors.
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        // SAFETY: `status` is a live i32 the kernel writes; `pid` is our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        let _ = std::fs::remove_dir(&dir);
        assert!(libc::WIFEXITED(status), "child died: {status}");
        let code = libc::WEXITSTATUS(status);
        assert_eq!(
            code, 0,
            "2: could not join, 3: /dev/null denied, 4: /dev/kmsg not denied with EPERM"
        );
    }
}
