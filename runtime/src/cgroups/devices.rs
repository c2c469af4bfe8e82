//! Device access rules: the config's `linux.resources.devices` in order,
//! then runc's default allow list, exactly the list runc builds
//! (`linux.devices` adds no rule). A later rule wins over an earlier one.
//! v1 writes them to devices.allow/deny; v2 compiles them to an eBPF
//! program ([`super::devices_bpf`]).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    pub allow: bool,
    /// 'a' (all), 'b' or 'c'.
    pub typ: char,
    /// None: any.
    pub major: Option<i64>,
    pub minor: Option<i64>,
    /// Made of r, w, m.
    pub access: String,
}

const fn rule(typ: char, major: Option<i64>, minor: Option<i64>, access: &'static str) -> DefaultRule {
    DefaultRule { typ, major, minor, access }
}

impl Rule {
    /// The v1 devices.allow/deny line: `c 136:* rwm`, `a *:* rwm`.
    pub fn v1_line(&self) -> String {
        let n = |v: Option<i64>| v.map_or("*".to_string(), |v| v.to_string());
        if self.typ == 'a' && self.major.is_none() && self.minor.is_none() {
            return "a".into();
        }
        format!("{} {}:{} {}", self.typ, n(self.major), n(self.minor), self.access)
    }

    /// True for `a *:* rwm`-like rules that reset the whole list.
    #[cfg(test)]
    pub fn is_all(&self) -> bool {
        self.typ == 'a' && self.major.is_none() && self.minor.is_none() && access_bits(&self.access) == 7
    }
}

pub struct DefaultRule {
    typ: char,
    major: Option<i64>,
    minor: Option<i64>,
    access: &'static str,
}

/// runc's AllowedDevices: mknod of anything, the standard character
/// devices, /dev/pts/*, /dev/ptmx and /dev/net/tun.
const DEFAULTS: [DefaultRule; 10] = [
    rule('c', None, None, "m"),
    rule('b', None, None, "m"),
    rule('c', Some(1), Some(3), "rwm"),
    rule('c', Some(1), Some(8), "rwm"),
    rule('c', Some(1), Some(7), "rwm"),
    rule('c', Some(5), Some(0), "rwm"),
    rule('c', Some(1), Some(5), "rwm"),
    rule('c', Some(1), Some(9), "rwm"),
    rule('c', Some(136), None, "rwm"),
    rule('c', Some(5), Some(2), "rwm"),
];

const TUN: DefaultRule = rule('c', Some(10), Some(200), "rwm");

pub fn default_rules() -> impl Iterator<Item = Rule> {
    DEFAULTS.iter().chain(std::iter::once(&TUN)).map(|d| Rule {
        allow: true,
        typ: d.typ,
        major: d.major,
        minor: d.minor,
        access: d.access.to_string(),
    })
}

/// r=2, w=4, m=1: the BPF_DEVCG_ACC_* bits.
pub fn access_bits(access: &str) -> u32 {
    access.chars().fold(0, |b, c| {
        b | match c {
            'm' => 1,
            'r' => 2,
            'w' => 4,
            _ => 0,
        }
    })
}

/// Evaluate rules for one access the way the kernel (v1) and our BPF
/// program (v2) do: start from "deny all", let each matching rule add or
/// remove its access bits. Used by tests and as the program's reference.
#[cfg(test)]
pub fn allowed(rules: &[Rule], typ: char, major: i64, minor: i64, access: &str) -> bool {
    let mut acc = 0u32;
    for r in rules {
        let m = (r.typ == 'a' || r.typ == typ)
            && r.major.is_none_or(|v| v == major)
            && r.minor.is_none_or(|v| v == minor);
        if m {
            if r.allow {
                acc |= access_bits(&r.access);
            } else {
                acc &= !access_bits(&r.access);
            }
        }
    }
    access_bits(access) & !acc == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deny_all() -> Rule {
        Rule {
            allow: false,
            typ: 'a',
            major: None,
            minor: None,
            access: "rwm".into(),
        }
    }

    #[test]
    fn v1_lines_keep_wildcards() {
        let r = Rule {
            allow: true,
            typ: 'c',
            major: Some(136),
            minor: None,
            access: "rwm".into(),
        };
        assert_eq!(r.v1_line(), "c 136:* rwm");
        assert_eq!(deny_all().v1_line(), "a");
        assert!(deny_all().is_all());
    }

    #[test]
    fn defaults_allow_null_not_kmsg() {
        let mut rules = vec![deny_all()];
        rules.extend(default_rules());
        assert!(allowed(&rules, 'c', 1, 3, "rw"));
        assert!(allowed(&rules, 'c', 136, 7, "rw"));
        assert!(!allowed(&rules, 'c', 1, 11, "r"));
        assert!(allowed(&rules, 'c', 1, 11, "m"));
        assert!(!allowed(&rules, 'b', 8, 0, "r"));
        // a later deny of w keeps r
        rules.push(Rule {
            allow: false,
            typ: 'c',
            major: Some(1),
            minor: Some(3),
            access: "w".into(),
        });
        assert!(allowed(&rules, 'c', 1, 3, "r"));
        assert!(!allowed(&rules, 'c', 1, 3, "rw"));
    }
}
