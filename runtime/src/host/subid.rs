//! The subordinate id ranges of /etc/subuid and /etc/subgid (shadow's
//! `subuid(5)`): `USER:FIRST:COUNT` lines, USER a name or a numeric uid.
//! newuidmap and newgidmap allow a mapping of the caller's own id (count 1)
//! or of ids inside the caller's ranges; the plan stage checks the same
//! rule ([`allows`]) so that a mapping the user is not allowed fails before
//! anything is created.

use std::path::Path;

/// One `FIRST:COUNT` range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub first: u64,
    pub count: u64,
}

/// The ranges `text` (a subuid or subgid file) gives the user named `name`
/// with uid `uid`. Lines that do not parse are ignored, as shadow does.
pub fn parse(text: &str, name: Option<&str>, uid: u32) -> Vec<Range> {
    let uid_s = uid.to_string();
    text.lines()
        .filter_map(|l| {
            let mut f = l.trim().splitn(3, ':');
            let (who, first, count) = (f.next()?, f.next()?, f.next()?);
            if who != uid_s && Some(who) != name {
                return None;
            }
            Some(Range {
                first: first.trim().parse().ok()?,
                count: count.trim().parse().ok()?,
            })
        })
        .collect()
}

/// The ranges of the caller (`uid`) in `file`; a missing file gives none.
pub fn read(file: &Path, uid: u32) -> Vec<Range> {
    let name = user_name(uid);
    let text = std::fs::read_to_string(file).unwrap_or_default();
    parse(&text, name.as_deref(), uid)
}

/// The name of `uid` in /etc/passwd. Read as a file, not through NSS
/// (getpwuid): berth is a static binary, and glibc's NSS modules loaded
/// into it crash it.
pub fn user_name(uid: u32) -> Option<String> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd_name(&text, uid)
}

fn passwd_name(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 3 && f[2].parse() == Ok(uid) && !f[0].is_empty()).then(|| f[0].to_string())
    })
}

/// Whether host ids `first`..`first+size` may be mapped by the caller
/// whose own id is `own`: its own id alone, or inside one of `ranges`.
pub fn allows(ranges: &[Range], own: u32, first: u32, size: u32) -> bool {
    if first == own && size == 1 {
        return true;
    }
    let (lo, hi) = (first as u64, first as u64 + size as u64);
    ranges
        .iter()
        .any(|r| r.first <= lo && hi <= r.first + r.count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_by_name_or_uid() {
        let text = "alice:100000:65536\n# junk\nbob:200000:10\n1001:300000:5\nalice:bad:1\n";
        let r = parse(text, Some("alice"), 1000);
        assert_eq!(
            r,
            [Range {
                first: 100000,
                count: 65536
            }]
        );
        let r = parse(text, Some("carol"), 1001);
        assert_eq!(
            r,
            [Range {
                first: 300000,
                count: 5
            }]
        );
        assert!(parse(text, None, 7).is_empty());
    }

    #[test]
    fn names_from_passwd() {
        let text = "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\nbad\n";
        assert_eq!(passwd_name(text, 1000).as_deref(), Some("alice"));
        assert_eq!(passwd_name(text, 0).as_deref(), Some("root"));
        assert_eq!(passwd_name(text, 7), None);
    }

    #[test]
    fn own_id_or_inside_a_range() {
        let r = [Range {
            first: 100000,
            count: 65536,
        }];
        assert!(allows(&r, 1000, 1000, 1));
        assert!(!allows(&r, 1000, 1000, 2));
        assert!(allows(&r, 1000, 100000, 65536));
        assert!(allows(&r, 1000, 100010, 10));
        assert!(!allows(&r, 1000, 99999, 2));
        assert!(!allows(&r, 1000, 165535, 2));
        assert!(!allows(&[], 1000, 0, 1));
    }
}
