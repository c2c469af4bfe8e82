//! Mount options: the table runc uses, turned into mount(2) flags,
//! propagation changes, recursive attributes for mount_setattr(2), and the
//! filesystem-specific data string.

use libc::c_ulong;

/// How one option string changes the mount(2) flags.
enum Op {
    Set(c_ulong),
    Clear(c_ulong),
    /// A propagation change, applied with its own mount(2) call after the mount.
    Propagation(c_ulong),
    /// A recursive attribute (mount_setattr with AT_RECURSIVE): set, clear.
    Rec(u64, u64),
    /// `tmpcopyup`: a tmpfs starts with a copy of what it covers.
    CopyUp,
    Ignore,
}

const ATIME: u64 = libc::MOUNT_ATTR__ATIME;

/// The option table (sorted by name for binary search).
const TABLE: &[(&str, Op)] = &[
    ("async", Op::Clear(libc::MS_SYNCHRONOUS)),
    ("atime", Op::Clear(libc::MS_NOATIME)),
    ("bind", Op::Set(libc::MS_BIND)),
    ("defaults", Op::Ignore),
    ("dev", Op::Clear(libc::MS_NODEV)),
    ("diratime", Op::Clear(libc::MS_NODIRATIME)),
    ("dirsync", Op::Set(libc::MS_DIRSYNC)),
    ("exec", Op::Clear(libc::MS_NOEXEC)),
    ("iversion", Op::Set(libc::MS_I_VERSION)),
    ("lazytime", Op::Set(libc::MS_LAZYTIME)),
    ("loud", Op::Clear(libc::MS_SILENT)),
    ("mand", Op::Set(libc::MS_MANDLOCK)),
    ("noatime", Op::Set(libc::MS_NOATIME)),
    ("nodev", Op::Set(libc::MS_NODEV)),
    ("nodiratime", Op::Set(libc::MS_NODIRATIME)),
    ("noexec", Op::Set(libc::MS_NOEXEC)),
    ("noiversion", Op::Clear(libc::MS_I_VERSION)),
    ("nolazytime", Op::Clear(libc::MS_LAZYTIME)),
    ("nomand", Op::Clear(libc::MS_MANDLOCK)),
    ("norelatime", Op::Clear(libc::MS_RELATIME)),
    ("nostrictatime", Op::Clear(libc::MS_STRICTATIME)),
    ("nosuid", Op::Set(libc::MS_NOSUID)),
    ("nosymfollow", Op::Set(libc::MS_NOSYMFOLLOW)),
    ("private", Op::Propagation(libc::MS_PRIVATE)),
    // Clearing one atime mode resets the mount to the default (relatime):
    // mount_setattr only accepts MOUNT_ATTR__ATIME as a whole in attr_clr.
    ("ratime", Op::Rec(0, ATIME)),
    ("rbind", Op::Set(libc::MS_BIND | libc::MS_REC)),
    ("rdev", Op::Rec(0, libc::MOUNT_ATTR_NODEV)),
    ("rdiratime", Op::Rec(0, libc::MOUNT_ATTR_NODIRATIME)),
    ("relatime", Op::Set(libc::MS_RELATIME)),
    ("remount", Op::Set(libc::MS_REMOUNT)),
    ("rexec", Op::Rec(0, libc::MOUNT_ATTR_NOEXEC)),
    ("rnoatime", Op::Rec(libc::MOUNT_ATTR_NOATIME, ATIME)),
    ("rnodev", Op::Rec(libc::MOUNT_ATTR_NODEV, 0)),
    ("rnodiratime", Op::Rec(libc::MOUNT_ATTR_NODIRATIME, 0)),
    ("rnoexec", Op::Rec(libc::MOUNT_ATTR_NOEXEC, 0)),
    ("rnorelatime", Op::Ignore),
    ("rnostrictatime", Op::Rec(0, ATIME)),
    ("rnosuid", Op::Rec(libc::MOUNT_ATTR_NOSUID, 0)),
    ("rnosymfollow", Op::Rec(libc::MOUNT_ATTR_NOSYMFOLLOW, 0)),
    ("ro", Op::Set(libc::MS_RDONLY)),
    ("rprivate", Op::Propagation(libc::MS_PRIVATE | libc::MS_REC)),
    ("rrelatime", Op::Rec(libc::MOUNT_ATTR_RELATIME, ATIME)),
    ("rro", Op::Rec(libc::MOUNT_ATTR_RDONLY, 0)),
    ("rrw", Op::Rec(0, libc::MOUNT_ATTR_RDONLY)),
    ("rshared", Op::Propagation(libc::MS_SHARED | libc::MS_REC)),
    ("rslave", Op::Propagation(libc::MS_SLAVE | libc::MS_REC)),
    ("rstrictatime", Op::Rec(libc::MOUNT_ATTR_STRICTATIME, ATIME)),
    ("rsuid", Op::Rec(0, libc::MOUNT_ATTR_NOSUID)),
    ("rsymfollow", Op::Rec(0, libc::MOUNT_ATTR_NOSYMFOLLOW)),
    ("runbindable", Op::Propagation(libc::MS_UNBINDABLE | libc::MS_REC)),
    ("rw", Op::Clear(libc::MS_RDONLY)),
    ("shared", Op::Propagation(libc::MS_SHARED)),
    ("silent", Op::Set(libc::MS_SILENT)),
    ("slave", Op::Propagation(libc::MS_SLAVE)),
    ("strictatime", Op::Set(libc::MS_STRICTATIME)),
    ("suid", Op::Clear(libc::MS_NOSUID)),
    ("symfollow", Op::Clear(libc::MS_NOSYMFOLLOW)),
    ("sync", Op::Set(libc::MS_SYNCHRONOUS)),
    ("tmpcopyup", Op::CopyUp),
    ("unbindable", Op::Propagation(libc::MS_UNBINDABLE)),
];

/// Every option name berth understands besides filesystem data (for `features`).
pub fn known_options() -> impl Iterator<Item = &'static str> {
    TABLE.iter().map(|(n, _)| *n)
}

/// `idmap` / `ridmap`: the id mapping of a bind mount (see `rootfs::idmap`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Idmap {
    #[default]
    None,
    /// `idmap`: the top mount only.
    Top,
    /// `ridmap`: every mount of the tree.
    Recursive,
}

/// The parsed `options` of one mount.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// mount(2) flags, including MS_BIND / MS_REC / MS_REMOUNT.
    pub flags: c_ulong,
    /// Propagation changes in the order given.
    pub propagation: Vec<c_ulong>,
    /// Recursive attributes: (attr_set, attr_clr), both 0 when none.
    pub rec_set: u64,
    pub rec_clr: u64,
    /// Everything else, comma-joined, for mount(2)'s data argument.
    pub data: String,
    /// `idmap` or `ridmap` (never passed to mount(2)).
    pub idmap: Idmap,
    /// `tmpcopyup` (tmpfs only): copy the covered directory's tree into
    /// the new tmpfs (see `rootfs::copyup`).
    pub tmpcopyup: bool,
}

impl MountOptions {
    /// Parse `options`. Fails, naming the option, on what berth refuses.
    pub fn parse<S: AsRef<str>>(options: &[S]) -> Result<MountOptions, String> {
        let mut o = MountOptions::default();
        for opt in options {
            let opt = opt.as_ref();
            match TABLE.binary_search_by(|(n, _)| n.cmp(&opt)) {
                Ok(i) => match TABLE[i].1 {
                    Op::Set(f) => o.flags |= f,
                    Op::Clear(f) => o.flags &= !f,
                    Op::Propagation(f) => o.propagation.push(f),
                    Op::Rec(set, clr) => {
                        o.rec_set = (o.rec_set & !clr) | set;
                        o.rec_clr = (o.rec_clr & !set) | clr;
                    }
                    Op::CopyUp => o.tmpcopyup = true,
                    Op::Ignore => {}
                },
                Err(_) => match opt {
                    "idmap" => o.idmap = Idmap::Top,
                    "ridmap" => o.idmap = Idmap::Recursive,
                    "" => {}
                    _ => {
                        if !o.data.is_empty() {
                            o.data.push(',');
                        }
                        o.data.push_str(opt);
                    }
                },
            }
        }
        Ok(o)
    }

    pub fn is_bind(&self) -> bool {
        self.flags & libc::MS_BIND != 0
    }

    pub fn has_rec_attrs(&self) -> bool {
        self.rec_set != 0 || self.rec_clr != 0
    }

    /// Flags that need a remount after a bind (the bind ignores them).
    pub fn bind_remount_flags(&self) -> c_ulong {
        self.flags & !(libc::MS_BIND | libc::MS_REC | libc::MS_REMOUNT)
    }
}

/// `linux.rootfsPropagation` to mount(2) flags (None when unset).
pub fn root_propagation(v: Option<&str>) -> Result<Option<c_ulong>, String> {
    let f = match v.unwrap_or("") {
        "" => return Ok(None),
        "private" => libc::MS_PRIVATE,
        "rprivate" => libc::MS_PRIVATE | libc::MS_REC,
        "slave" => libc::MS_SLAVE,
        "rslave" => libc::MS_SLAVE | libc::MS_REC,
        "shared" => libc::MS_SHARED,
        "rshared" => libc::MS_SHARED | libc::MS_REC,
        "unbindable" => libc::MS_UNBINDABLE,
        "runbindable" => libc::MS_UNBINDABLE | libc::MS_REC,
        other => {
            return Err(format!(
                "\"{other}\" is not a valid propagation (private, rprivate, slave, rslave, shared, rshared, unbindable, runbindable)"
            ))
        }
    };
    Ok(Some(f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted() {
        assert!(TABLE.windows(2).all(|w| w[0].0 < w[1].0), "TABLE must stay sorted");
    }

    #[test]
    fn flags_set_and_clear_in_order() {
        let o = MountOptions::parse(&["rbind", "ro", "nosuid", "nodev", "rw", "size=65536k", "mode=755"]).unwrap();
        assert_eq!(o.flags, libc::MS_BIND | libc::MS_REC | libc::MS_NOSUID | libc::MS_NODEV);
        assert_eq!(o.data, "size=65536k,mode=755");
        assert!(o.is_bind());
        assert_eq!(o.bind_remount_flags(), libc::MS_NOSUID | libc::MS_NODEV);
    }

    #[test]
    fn propagation_and_recursive_attrs() {
        let o = MountOptions::parse(&["rprivate", "shared", "rro", "rnoatime", "rnosuid", "rsuid"]).unwrap();
        assert_eq!(o.propagation, vec![libc::MS_PRIVATE | libc::MS_REC, libc::MS_SHARED]);
        assert_eq!(o.rec_set, libc::MOUNT_ATTR_RDONLY | libc::MOUNT_ATTR_NOATIME);
        assert_eq!(o.rec_clr, libc::MOUNT_ATTR__ATIME | libc::MOUNT_ATTR_NOSUID);
        assert_eq!(o.flags, 0);
        assert!(o.data.is_empty());
    }

    #[test]
    fn idmap_options_are_not_mount_data() {
        let o = MountOptions::parse(&["rbind", "idmap"]).unwrap();
        assert_eq!((o.idmap, o.data.as_str()), (Idmap::Top, ""));
        assert_eq!(MountOptions::parse(&["ridmap"]).unwrap().idmap, Idmap::Recursive);
    }

    #[test]
    fn tmpcopyup_is_not_mount_data() {
        let o = MountOptions::parse(&["nosuid", "tmpcopyup", "size=1m"]).unwrap();
        assert!(o.tmpcopyup);
        assert_eq!((o.flags, o.data.as_str()), (libc::MS_NOSUID, "size=1m"));
        assert!(!MountOptions::parse(&["nosuid"]).unwrap().tmpcopyup);
    }

    #[test]
    fn root_propagation_values() {
        assert_eq!(root_propagation(None).unwrap(), None);
        assert_eq!(root_propagation(Some("rslave")).unwrap(), Some(libc::MS_SLAVE | libc::MS_REC));
        assert_eq!(root_propagation(Some("shared")).unwrap(), Some(libc::MS_SHARED));
        assert!(root_propagation(Some("bogus")).unwrap_err().contains("bogus"));
    }
}
