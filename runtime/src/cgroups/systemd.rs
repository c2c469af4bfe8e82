//! The systemd placement's names: linux.cgroupsPath as `slice:prefix:name`
//! read as runc reads it (libcontainer/specconv and the systemd cgroup
//! manager), the unit berth asks systemd for, and where its cgroup is.
//!
//! * no cgroupsPath (or an empty one): slice `system.slice`, prefix `runc`
//!   (runc's; kept, so tooling that looks for `runc-<id>.scope` finds
//!   berth's containers too), name the container id;
//! * `slice:prefix:name`, exactly three parts: an empty slice is
//!   `system.slice`; `-.slice` is the root slice;
//! * the unit is `prefix-name.scope` (runc joins them even when the prefix
//!   is empty), or `name` itself when it ends in `.slice`.
//!
//! The placement itself (the unit started with init's pid) is `scope.rs`.

use crate::error::{Error, Result};

const FIELD: &str = "linux.cgroupsPath";
/// runc's default slice (as root).
pub const DEFAULT_SLICE: &str = "system.slice";
/// runc's default slice rootless, in the user's systemd instance.
pub const USER_SLICE: &str = "user.slice";
/// runc's default unit prefix.
pub const DEFAULT_PREFIX: &str = "runc";

/// A container's place in systemd's tree (state.json's `cgroups.systemd`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SystemdPath {
    /// The parent slice (`system.slice`, `-.slice`, `machine-x.slice`).
    pub slice: String,
    /// The unit: `prefix-name.scope`, or a slice.
    pub unit: String,
    /// The unit is the user's systemd instance's (berth rootless), not
    /// the system manager's.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub user: bool,
}

impl SystemdPath {
    /// linux.cgroupsPath (None or empty: runc's defaults for `id`).
    pub fn parse(cgroups_path: Option<&str>, id: &str) -> Result<SystemdPath> {
        SystemdPath::parse_for(cgroups_path, id, false)
    }

    /// As [`SystemdPath::parse`], for the user's systemd instance when
    /// `user` (an empty slice is then `user.slice`, as runc rootless).
    pub fn parse_for(cgroups_path: Option<&str>, id: &str, user: bool) -> Result<SystemdPath> {
        let (slice, prefix, name) = match cgroups_path {
            None | Some("") => ("", DEFAULT_PREFIX, id),
            Some(p) => {
                let parts: Vec<&str> = p.split(':').collect();
                let [slice, prefix, name] = parts[..] else {
                    return Err(Error::config(
                        FIELD,
                        format!("expected cgroupsPath to be of format \"slice:prefix:name\" for systemd cgroups, got {p:?} instead"),
                    ));
                };
                (slice, prefix, name)
            }
        };
        let slice = if slice.is_empty() {
            if user {
                USER_SLICE
            } else {
                DEFAULT_SLICE
            }
        } else {
            slice
        };
        expand_slice(slice)?;
        if name.is_empty() {
            return Err(Error::config(
                FIELD,
                format!("{cgroups_path:?}: the unit name (the third part) is empty"),
            ));
        }
        let unit = if name.ends_with(".slice") {
            expand_slice(name)?;
            name.to_string()
        } else {
            format!("{prefix}-{name}.scope")
        };
        if !valid_unit_name(&unit) {
            return Err(Error::config(
                FIELD,
                format!("{unit:?} is not a valid systemd unit name"),
            ));
        }
        Ok(SystemdPath {
            slice: slice.to_string(),
            unit,
            user,
        })
    }

    /// Whether the unit is a slice (systemd makes a slice, not a scope).
    pub fn is_slice(&self) -> bool {
        self.unit.ends_with(".slice")
    }

    /// The unit's cgroup relative to the hierarchy's root:
    /// `/system.slice/runc-abc.scope`, `/machine.slice/machine-x.slice/...`.
    pub fn cgroup(&self) -> String {
        let parent = expand_slice(&self.slice).expect("checked by parse");
        let parent = parent.trim_end_matches('/');
        format!("{parent}/{}", self.unit)
    }
}

/// A slice's cgroup path: `a-b-c.slice` is `/a.slice/a-b.slice/a-b-c.slice`,
/// `-.slice` is `/` (systemd writes the hierarchy into the name).
pub fn expand_slice(slice: &str) -> Result<String> {
    let bad = || Error::config(FIELD, format!("invalid slice name {slice:?}"));
    let stem = slice
        .strip_suffix(".slice")
        .filter(|s| !s.is_empty() && !slice.contains('/'))
        .ok_or_else(bad)?;
    if stem == "-" {
        return Ok("/".into());
    }
    let mut path = String::new();
    let mut prefix = String::new();
    for part in stem.split('-') {
        if part.is_empty() {
            return Err(bad());
        }
        path += &format!("/{prefix}{part}.slice");
        prefix += &format!("{part}-");
    }
    Ok(path)
}

/// systemd's unit name rules (unit_name_is_valid): at most 255 bytes, the
/// characters `[A-Za-z0-9:_.\-\\@]`, a type suffix after the last dot.
fn valid_unit_name(unit: &str) -> bool {
    unit.len() <= 255
        && unit
            .rsplit_once('.')
            .is_some_and(|(stem, _)| !stem.is_empty())
        && unit
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":_.-\\@".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(p: Option<&str>) -> Result<SystemdPath> {
        SystemdPath::parse(p, "abc")
    }

    #[test]
    fn defaults_as_runc() {
        for p in [None, Some("")] {
            let s = parse(p).unwrap();
            assert_eq!(
                (s.slice.as_str(), s.unit.as_str()),
                ("system.slice", "runc-abc.scope")
            );
            assert_eq!(s.cgroup(), "/system.slice/runc-abc.scope");
        }
        let s = parse(Some("::abc")).unwrap();
        assert_eq!(
            (s.slice.as_str(), s.unit.as_str()),
            ("system.slice", "-abc.scope")
        );
    }

    #[test]
    fn slice_prefix_name() {
        let s = parse(Some("system.slice:docker:1234")).unwrap();
        assert_eq!(s.cgroup(), "/system.slice/docker-1234.scope");
        assert!(!s.is_slice());
        let s = parse(Some("kubepods-besteffort-pod1.slice:cri-containerd:c1")).unwrap();
        assert_eq!(
            s.cgroup(),
            "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice/cri-containerd-c1.scope"
        );
        let s = parse(Some("-.slice:p:n")).unwrap();
        assert_eq!(s.cgroup(), "/p-n.scope");
        // A name that is a slice: the prefix is ignored.
        let s = parse(Some("machine.slice:ignored:machine-x.slice")).unwrap();
        assert_eq!((s.unit.as_str(), s.is_slice()), ("machine-x.slice", true));
        assert_eq!(s.cgroup(), "/machine.slice/machine-x.slice");
    }

    #[test]
    fn the_user_instance_defaults_to_user_slice() {
        let s = SystemdPath::parse_for(None, "abc", true).unwrap();
        assert_eq!((s.slice.as_str(), s.unit.as_str(), s.user), ("user.slice", "runc-abc.scope", true));
        assert_eq!(s.cgroup(), "/user.slice/runc-abc.scope");
        let s = SystemdPath::parse_for(Some(":libpod:abc"), "abc", true).unwrap();
        assert_eq!(s.cgroup(), "/user.slice/libpod-abc.scope");
        // Recorded only when set: a system unit's record is as before.
        let json = serde_json::to_string(&parse(None).unwrap()).unwrap();
        assert_eq!(json, r#"{"slice":"system.slice","unit":"runc-abc.scope"}"#);
        let user = serde_json::to_string(&s).unwrap();
        assert!(user.ends_with(r#""user":true}"#), "{user}");
        assert!(serde_json::from_str::<SystemdPath>(&user).unwrap().user);
    }

    #[test]
    fn bad_paths_name_the_field() {
        for (p, want) in [
            ("/kubepods/besteffort/pod1/c1", "slice:prefix:name"),
            ("a:b", "slice:prefix:name"),
            ("a.slice:b:c:d", "slice:prefix:name"),
            ("system:docker:1", "invalid slice name"),
            ("a/b.slice:docker:1", "invalid slice name"),
            ("a--b.slice:docker:1", "invalid slice name"),
            ("-a.slice:docker:1", "invalid slice name"),
            (".slice:docker:1", "invalid slice name"),
            ("system.slice:docker:", "unit name"),
            ("system.slice:docker:a/b", "not a valid systemd unit name"),
            ("system.slice:x:a--.slice", "invalid slice name"),
        ] {
            let e = parse(Some(p)).unwrap_err().to_string();
            assert!(
                e.contains("linux.cgroupsPath") && e.contains(want),
                "{p}: {e}"
            );
        }
    }

    #[test]
    fn expand() {
        assert_eq!(
            expand_slice("test-a-b.slice").unwrap(),
            "/test.slice/test-a.slice/test-a-b.slice"
        );
        assert_eq!(expand_slice("-.slice").unwrap(), "/");
        assert!(expand_slice("test").is_err());
    }
}
