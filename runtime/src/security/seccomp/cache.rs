//! A cache of compiled filters under `<--root>/@seccomp-cache/` (the `@`
//! keeps it apart from container ids, which cannot contain one).
//!
//! Compiling a large profile with libseccomp takes milliseconds; the same
//! profile on the same host always compiles to the same BPF. An entry is
//! keyed by everything the BPF depends on: the profile (its canonical JSON),
//! the libseccomp version and API level (kernel features it detected), the
//! native architecture, berth's version and this file's format.
//!
//! File name: the FNV-1a hash of the key, in hex. The file holds the whole
//! key, and an entry is used only when the key matches byte for byte, so a
//! hash collision is a miss, never a wrong filter. Entries are written to a
//! temporary file and renamed into place; a short, truncated or otherwise
//! malformed entry is a miss and gets rewritten. Nothing read from the
//! cache is trusted further than "these bytes were compiled from this key".
//!
//! ```text
//! "BERTHBPF" | format u32 LE | key length u32 LE | BPF length u32 LE | key | BPF
//! ```

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"BERTHBPF";
/// Bump when the file layout or the profile-to-BPF conversion changes.
const FORMAT: u32 = 1;
/// The kernel's limit on a filter's length (BPF_MAXINSNS), in bytes.
const MAX_BPF: usize = 4096 * 8;
const HEADER: usize = 8 + 4 + 4 + 4;

pub const DIR_NAME: &str = "@seccomp-cache";

/// The cache key for a profile given as canonical JSON.
pub fn key(profile_json: &[u8]) -> Vec<u8> {
    let v = libseccomp::ScmpVersion::current().map(|v| format!("{}.{}.{}", v.major, v.minor, v.micro));
    let mut k = format!(
        "berth {} format {FORMAT} libseccomp {} api {} arch {:?}\n",
        crate::VERSION,
        v.unwrap_or_else(|_| "?".into()),
        libseccomp::get_api(),
        libseccomp::ScmpArch::native(),
    )
    .into_bytes();
    k.extend_from_slice(profile_json);
    k
}

fn fnv1a(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn entry_path(dir: &Path, key: &[u8]) -> PathBuf {
    dir.join(format!("{:016x}.bpf", fnv1a(key)))
}

fn u32_at(b: &[u8], at: usize) -> usize {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) as usize
}

/// Parse an entry; None unless it is well formed and made from `key`.
pub fn parse<'a>(data: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    if data.len() < HEADER || &data[..8] != MAGIC || u32_at(data, 8) != FORMAT as usize {
        return None;
    }
    let (klen, blen) = (u32_at(data, 12), u32_at(data, 16));
    if klen != key.len() || blen == 0 || blen % 8 != 0 || blen > MAX_BPF || data.len() != HEADER + klen + blen {
        return None;
    }
    if &data[HEADER..HEADER + klen] != key {
        return None;
    }
    Some(&data[HEADER + klen..])
}

/// The entry's bytes for `key` and `bpf`.
pub fn encode(key: &[u8], bpf: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + key.len() + bpf.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT.to_le_bytes());
    out.extend_from_slice(&(key.len() as u32).to_le_bytes());
    out.extend_from_slice(&(bpf.len() as u32).to_le_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(bpf);
    out
}

/// The cached BPF for `key` in `dir`, if there is a valid entry.
pub fn lookup(dir: &Path, key: &[u8]) -> Option<Vec<u8>> {
    let path = entry_path(dir, key);
    let mut f = fs::File::open(&path).ok()?;
    let mut data = Vec::with_capacity(HEADER + key.len() + MAX_BPF);
    // Read at most one byte past the largest valid entry.
    (&mut f).take((HEADER + key.len() + MAX_BPF + 1) as u64).read_to_end(&mut data).ok()?;
    match parse(&data, key) {
        Some(bpf) => Some(bpf.to_vec()),
        None => {
            log::debug!("seccomp cache: {} is not a valid entry for this profile; recompiling", path.display());
            None
        }
    }
}

/// Store `bpf` for `key` in `dir` (created 0700 if missing, with the state
/// root above it: the plan compiles before `create` makes the root),
/// atomically.
pub fn store(dir: &Path, key: &[u8], bpf: &[u8]) -> io::Result<()> {
    match fs::DirBuilder::new().recursive(true).mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let path = entry_path(dir, key);
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    // Left by a berth with the same pid that died mid-write.
    let _ = fs::remove_file(&tmp);
    let r = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| f.write_all(&encode(key, bpf)))
        .and_then(|()| fs::rename(&tmp, &path));
    if r.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    r
}
