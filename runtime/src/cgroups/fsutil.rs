//! Reading and writing cgroupfs files, with errors that name the spec field.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::resources::{FieldError, Refused};

/// Write `value` to `dir/file` in one write(2), as cgroupfs wants.
pub fn write(dir: &Path, file: &str, value: &str) -> io::Result<()> {
    let mut f = fs::OpenOptions::new().write(true).open(dir.join(file))?;
    f.write_all(value.as_bytes())
}

pub fn read(dir: &Path, file: &str) -> io::Result<String> {
    fs::read_to_string(dir.join(file))
}

pub fn read_u64(dir: &Path, file: &str) -> io::Result<u64> {
    let s = read(dir, file)?;
    let t = s.trim();
    if t == "max" {
        return Ok(u64::MAX);
    }
    t.parse().map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: not a number: {t:?}", dir.join(file).display()),
        )
    })
}

/// Writes for one spec field, errors naming it.
pub struct FieldWriter<'a> {
    pub dir: &'a Path,
}

impl FieldWriter<'_> {
    pub fn set(&self, field: &str, file: &str, value: &str) -> Result<(), FieldError> {
        write(self.dir, file, value).map_err(|e| write_error(field, &self.dir.join(file), value, &e))
    }

    pub fn exists(&self, file: &str) -> bool {
        self.dir.join(file).exists()
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }
}

pub fn write_error(field: &str, path: &Path, value: &str, e: &io::Error) -> FieldError {
    let why = match e.raw_os_error() {
        Some(libc::ENOENT) => format!("this host's cgroup has no such file (controller or feature missing: {e})"),
        Some(libc::EINVAL) | Some(libc::ERANGE) => format!("the kernel refused the value ({e})"),
        _ => e.to_string(),
    };
    FieldError {
        refused: Some(Box::new(Refused { file: path.to_path_buf(), value: value.to_string(), errno: e.raw_os_error() })),
        ..FieldError::new(field, format!("cannot write {value:?} to {}: {why}", path.display()))
    }
}
