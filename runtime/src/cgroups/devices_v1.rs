//! Writing v1 device rules: devices.allow and devices.deny, each opened
//! once per container and written one rule per write(2).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

use super::fsutil::write_error;
use super::resources::FieldError;

pub struct RuleFiles<'a> {
    dir: &'a Path,
    allow: Option<File>,
    deny: Option<File>,
}

impl<'a> RuleFiles<'a> {
    pub fn new(dir: &'a Path) -> RuleFiles<'a> {
        RuleFiles { dir, allow: None, deny: None }
    }

    /// Write one rule `line` to devices.allow (`allow`) or devices.deny;
    /// errors name `field` and the file.
    pub fn write(&mut self, field: &str, allow: bool, line: &str) -> Result<(), FieldError> {
        let (slot, name) = if allow { (&mut self.allow, "devices.allow") } else { (&mut self.deny, "devices.deny") };
        let path = self.dir.join(name);
        if slot.is_none() {
            let f = OpenOptions::new().write(true).open(&path).map_err(|e| write_error(field, &path, line, &e))?;
            *slot = Some(f);
        }
        let f = slot.as_mut().expect("opened above");
        // One write(2) per rule: the kernel parses each write as one line.
        match f.write(line.as_bytes()) {
            Ok(n) if n == line.len() => Ok(()),
            Ok(_) => Err(write_error(field, &path, line, &std::io::Error::from(std::io::ErrorKind::WriteZero))),
            Err(e) => Err(write_error(field, &path, line, &e)),
        }
    }
}
