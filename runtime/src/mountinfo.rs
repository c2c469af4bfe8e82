//! `/proc/self/mountinfo` (proc(5)): the one parser of its lines, used by
//! `cgroups` (which hierarchies are mounted where) and `rootfs` (the host's
//! proc and sysfs mounts for `--no-pivot`, the private rootfs bind of a
//! container without a mount namespace).
//!
//! A line is `ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] -
//! FSTYPE SOURCE SUPER_OPTIONS`; paths escape space, tab, newline and
//! backslash as octal (`\040`). Parsing borrows from the text and allocates
//! only for a path that has an escape (cgroup resolution reads this file on
//! every create).

use std::borrow::Cow;
use std::io;

/// Where the kernel lists this mount namespace's mounts.
pub const PATH: &str = "/proc/self/mountinfo";

/// One mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount<'a> {
    /// The mount id (`statx`'s `STATX_MNT_ID`).
    pub id: u64,
    pub parent: u64,
    /// The directory of the filesystem that is the root of this mount (unescaped).
    pub root: Cow<'a, str>,
    /// Where it is mounted (unescaped).
    pub mountpoint: Cow<'a, str>,
    /// The per-mount options (`rw,nosuid,relatime`).
    pub options: &'a str,
    /// The optional fields, space separated (`shared:9 master:1`).
    pub optional: &'a str,
    pub fstype: &'a str,
    pub source: &'a str,
    /// The per-superblock options (for cgroup v1: the controllers).
    pub super_options: &'a str,
}

impl Mount<'_> {
    /// Is the mount in a shared peer group (propagates to its peers)?
    pub fn shared(&self) -> bool {
        self.optional.split(' ').any(|f| f.starts_with("shared:"))
    }
}

/// One line; None when it is malformed.
pub fn parse_line(line: &str) -> Option<Mount<'_>> {
    let (left, right) = line.split_once(" - ")?;
    let mut l = left.splitn(7, ' ');
    let id = l.next()?.parse().ok()?;
    let parent = l.next()?.parse().ok()?;
    let _dev = l.next()?;
    let root = unescape(l.next()?);
    let mountpoint = unescape(l.next()?);
    let options = l.next()?;
    let optional = l.next().unwrap_or("");
    let mut r = right.splitn(3, ' ');
    let fstype = r.next()?;
    let source = r.next().unwrap_or("");
    let super_options = r.next().unwrap_or("");
    Some(Mount { id, parent, root, mountpoint, options, optional, fstype, source, super_options })
}

/// Every well-formed line of `text`, in the kernel's order (parents before
/// their children).
pub fn parse(text: &str) -> impl Iterator<Item = Mount<'_>> {
    text.lines().filter_map(parse_line)
}

/// The text of [`PATH`].
pub fn read() -> io::Result<String> {
    std::fs::read_to_string(PATH)
}

/// Undo mountinfo's octal escapes (`\040` is a space); other bytes, and a
/// backslash not followed by three octal digits, stay as they are.
pub fn unescape(s: &str) -> Cow<'_, str> {
    if !s.contains('\\') {
        return Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_field() {
        let m = parse_line("36 35 98:0 /mnt1 /mnt\\0402 rw,noatime shared:9 master:1 - ext3 /dev/root rw,errors=continue")
            .unwrap();
        assert_eq!((m.id, m.parent), (36, 35));
        assert_eq!((m.root.as_ref(), m.mountpoint.as_ref()), ("/mnt1", "/mnt 2"));
        assert_eq!((m.options, m.optional), ("rw,noatime", "shared:9 master:1"));
        assert_eq!((m.fstype, m.source, m.super_options), ("ext3", "/dev/root", "rw,errors=continue"));
        assert!(m.shared());
    }

    #[test]
    fn no_optional_fields_and_malformed_lines() {
        let m = parse_line("31 30 0:27 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu").unwrap();
        assert_eq!((m.optional, m.super_options), ("", "rw,cpu"));
        assert!(!m.shared());
        assert_eq!(parse_line("31 30 0:27 / /x rw"), None, "no separator");
        assert_eq!(parse_line("x 30 0:27 / /x rw - tmpfs t rw"), None, "a bad id");
        assert_eq!(parse("garbage\n1 0 0:1 / / rw - rootfs rootfs rw\n").count(), 1);
    }

    #[test]
    fn unescapes_octal_only() {
        assert!(matches!(unescape("/plain"), Cow::Borrowed("/plain")));
        assert_eq!(unescape("/a\\040b\\011c\\134d"), "/a b\tc\\d");
        assert_eq!(unescape("/a\\09x\\"), "/a\\09x\\");
    }

    #[test]
    fn this_namespace_has_a_root() {
        let text = read().unwrap();
        assert!(parse(&text).any(|m| m.mountpoint == "/"));
    }
}
