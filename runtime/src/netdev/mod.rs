//! `linux.netDevices`: moving host network interfaces into the container's
//! network namespace (config-linux.md, "Network Devices").
//!
//! Only configs that list devices pay anything: init asks for the move
//! (`Msg::MoveNetDevices`) once it is in its final network namespace and
//! before sysctl (so `net.*.conf.<dev>.*` keys find the device), and the
//! parent, still in the host's namespace, does it over rtnetlink
//! ([`rtnl`]):
//!
//! 1. look up every listed device in berth's namespace (error naming
//!    `linux.netDevices.<name>` when it is missing) and read its
//!    permanent, global-scope addresses (moving drops them);
//! 2. refuse a new name already taken in the container's namespace
//!    (unless it is a `%d` template, which the kernel fills in);
//! 3. per device: one RTM_NEWLINK with IFLA_NET_NS_FD and IFLA_IFNAME
//!    (move and rename together, as runc does), then, through a netlink
//!    socket opened inside the container's namespace, add the addresses
//!    back and set the link up.
//!
//! If a step fails, the devices already moved are moved back under their
//! host names with their addresses, so a failed `create` leaves the host
//! as it was. After that berth never touches them again: when the
//! container's network namespace goes away (the container stopped and no
//! one holds the namespace), the kernel moves physical devices back to the
//! host's initial namespace under the name they had in the container and
//! destroys virtual ones (veth, dummy, macvlan...), as network_namespaces(7)
//! and the spec describe.

pub mod rtnl;

use std::collections::BTreeMap;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;

use oci_spec::runtime::{LinuxNamespaceType, LinuxNetDevice, Spec};

use crate::error::{Error, Result};
use rtnl::{Addr, Link, Rtnl};

/// IFNAMSIZ - 1.
const MAX_NAME: usize = 15;

/// Bring `lo` up in the network namespace init has just made, as runc and
/// crun do (a new namespace's loopback is down: 127.0.0.1 unreachable).
/// Two ioctls on a datagram socket, no netlink round trip: the kernel's
/// dev_ioctl acts on the socket's namespace.
pub fn loopback_up() -> Result<()> {
    let fail = |op: &str| {
        Error::os(format!("bring up lo in the new network namespace: {op}"), std::io::Error::last_os_error())
    };
    // SAFETY: socket takes integer arguments and returns a new fd or -1, checked below.
    let sock = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if sock < 0 {
        return Err(fail("socket"));
    }
    // SAFETY: sock is the non-negative fd socket just returned; nothing else owns it.
    let sock = unsafe { OwnedFd::from_raw_fd(sock) };
    // SAFETY: ifreq is plain data (a name and a union of integers); all-zero is valid.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in ifr.ifr_name.iter_mut().zip(b"lo\0") {
        *d = *s as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads the name and writes the flags of the live `ifr`.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut ifr) } != 0 {
        return Err(fail("SIOCGIFFLAGS"));
    }
    // SAFETY: every member of the ifr_ifru union is plain integers, and SIOCGIFFLAGS just
    // wrote ifru_flags, so reading it is reading initialised bytes.
    let flags = unsafe { ifr.ifr_ifru.ifru_flags };
    if flags & libc::IFF_UP as libc::c_short == 0 {
        ifr.ifr_ifru.ifru_flags = flags | libc::IFF_UP as libc::c_short;
        // SAFETY: SIOCSIFFLAGS only reads the live `ifr`.
        if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &ifr) } != 0 {
            return Err(fail("SIOCSIFFLAGS"));
        }
    }
    Ok(())
}

/// Whether the config lists any device to move.
pub fn wanted(spec: &Spec) -> bool {
    devices(spec).is_some_and(|d| !d.is_empty())
}

fn devices(spec: &Spec) -> Option<&std::collections::HashMap<String, LinuxNetDevice>> {
    spec.linux().as_ref().and_then(|l| l.net_devices().as_ref())
}

/// The devices in a fixed order: host name -> name in the container.
fn plan(spec: &Spec) -> BTreeMap<&str, &str> {
    devices(spec)
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            (
                k.as_str(),
                v.name()
                    .as_deref()
                    .filter(|n| !n.is_empty())
                    .unwrap_or(k.as_str()),
            )
        })
        .collect()
}

/// Why `name` cannot name a network device (the kernel's dev_valid_name),
/// or None.
fn bad_name(name: &str, template_ok: bool) -> Option<String> {
    if name.is_empty() {
        return Some("a device name must not be empty".into());
    }
    if name.len() > MAX_NAME {
        return Some(format!("{name:?} is longer than {MAX_NAME} bytes"));
    }
    if name == "." || name == ".." {
        return Some(format!("{name:?} is not a valid device name"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| *c == '/' || *c == ':' || c.is_whitespace())
    {
        return Some(format!(
            "{name:?} contains {c:?}, which device names cannot"
        ));
    }
    if name.contains('%') {
        let ok = template_ok && name.matches('%').count() == 1 && name.contains("%d");
        if !ok {
            return Some(format!(
                "{name:?}: '%' is only allowed as one \"%d\" template"
            ));
        }
    }
    None
}

/// Config-time checks: valid names, no two devices with the same name in
/// the container, and a network namespace of the container's own (new, or
/// joined by a path that is not berth's own namespace). `Err((path, msg))`.
pub fn validate(spec: &Spec) -> std::result::Result<(), (String, String)> {
    if !wanted(spec) {
        return Ok(());
    }
    let plan = plan(spec);
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for (host, inner) in &plan {
        if let Some(m) = bad_name(host, false) {
            return Err((format!("linux.netDevices.{host}"), m));
        }
        if let Some(m) = bad_name(inner, true) {
            return Err((format!("linux.netDevices.{host}.name"), m));
        }
        if !inner.contains('%') {
            if let Some(other) = seen.insert(inner, host) {
                return Err((
                    format!("linux.netDevices.{host}"),
                    format!(
                        "{other:?} and {host:?} would both be named {inner:?} in the container"
                    ),
                ));
            }
        }
    }
    let ns = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .and_then(|v| {
            v.iter()
                .position(|n| n.typ() == LinuxNamespaceType::Network)
                .map(|i| (i, &v[i]))
        });
    let need = "moving network devices needs a network namespace of the container's own: \
                add {\"type\": \"network\"} to linux.namespaces";
    match ns {
        None => Err(("linux.netDevices".into(), need.into())),
        Some((i, n)) => match n.path().as_ref().filter(|p| !p.as_os_str().is_empty()) {
            None => Ok(()),
            Some(p) => {
                let (ours, theirs) = (std::fs::metadata("/proc/self/ns/net"), std::fs::metadata(p));
                match (ours, theirs) {
                    (Ok(a), Ok(b)) if a.dev() == b.dev() && a.ino() == b.ino() => Err((
                        "linux.netDevices".into(),
                        format!("linux.namespaces[{i}].path {} is berth's own network namespace; {need}", p.display()),
                    )),
                    // A path that cannot be read fails later with its own error.
                    _ => Ok(()),
                }
            }
        },
    }
}

/// One device on the host, before the move.
struct HostDevice<'a> {
    host: &'a str,
    inner: &'a str,
    link: Link,
    addrs: Vec<Addr>,
}

/// A device moved into the container, for a rollback.
struct Moved<'a> {
    dev: &'a HostDevice<'a>,
    index: i32,
}

fn field(host: &str) -> String {
    format!("linux.netDevices.{host}")
}

/// The config's devices (checked by [`validate`]), owned: host name ->
/// name in the container, for [`move_all`].
pub fn planned(spec: &Spec) -> BTreeMap<String, String> {
    plan(spec).into_iter().map(|(h, i)| (h.to_string(), i.to_string())).collect()
}

/// Move the devices [`planned`] into the network namespace of process
/// `pid` (the container's init, stopped in its setup until this returns).
pub fn move_all(plan: &BTreeMap<String, String>, pid: i32) -> Result<()> {
    let home: OwnedFd = File::open("/proc/thread-self/ns/net")
        .map_err(|e| Error::path("open", "/proc/thread-self/ns/net", e))?
        .into();
    let ns_path = format!("/proc/{pid}/ns/net");
    let target: OwnedFd = File::open(&ns_path)
        .map_err(|e| Error::path("open", ns_path.clone(), e))?
        .into();
    let mut host =
        Rtnl::open().map_err(|e| Error::os("linux.netDevices: open a netlink socket", e))?;

    let mut found = Vec::new();
    for (h, inner) in plan {
        let link = host
            .link_by_name(h)
            .map_err(|e| Error::os(format!("{}: look up the device", field(h)), e))?
            .ok_or_else(|| {
                Error::config(field(h), format!("there is no network device {h:?} on the host"))
            })?;
        let addrs = host
            .addrs(link.index)
            .map_err(|e| Error::os(format!("{}: read the device's addresses", field(h)), e))?
            .into_iter()
            .filter(Addr::is_permanent_global)
            .collect();
        found.push(HostDevice {
            host: h,
            inner,
            link,
            addrs,
        });
    }

    let mut ctr = Rtnl::open_in(target.as_fd(), home.as_fd()).map_err(|e| {
        Error::os(
            "linux.netDevices: open a netlink socket in the container's network namespace",
            e,
        )
    })?;
    let existing = ctr
        .links()
        .map_err(|e| Error::os("linux.netDevices: list the container's network devices", e))?;
    for d in &found {
        if !d.inner.contains('%') && existing.iter().any(|l| l.name == d.inner) {
            return Err(exists(d));
        }
    }

    let mut known: Vec<String> = existing.into_iter().map(|l| l.name).collect();
    let mut moved: Vec<Moved> = Vec::new();
    for d in &found {
        match move_one(&mut host, &mut ctr, &target, d, &mut known) {
            Ok(index) => moved.push(Moved { dev: d, index }),
            Err((index, e)) => {
                if let Some(index) = index {
                    moved.push(Moved { dev: d, index });
                }
                roll_back(&mut host, &mut ctr, &home, &moved);
                return Err(e);
            }
        }
    }
    log::debug!(
        "linux.netDevices: moved {}",
        found
            .iter()
            .map(|d| format!("{} as {}", d.host, d.inner))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

fn exists(d: &HostDevice) -> Error {
    Error::config(
        field(d.host),
        format!("a network device named {:?} already exists in the container's network namespace", d.inner),
    )
}

/// Move, re-address and bring up one device. On error: the index in the
/// container if the move itself was done, and the error.
fn move_one(
    host: &mut Rtnl,
    ctr: &mut Rtnl,
    target: &OwnedFd,
    d: &HostDevice,
    known: &mut Vec<String>,
) -> std::result::Result<i32, (Option<i32>, Error)> {
    host.move_link(d.link.index, d.inner, target.as_fd())
        .map_err(|e| {
            let err = match e.raw_os_error() {
                Some(libc::EEXIST) => exists(d),
                _ => Error::os(
                    format!(
                        "{}: move the device into the container's network namespace",
                        field(d.host)
                    ),
                    e,
                ),
            };
            (None, err)
        })?;
    let now = if d.inner.contains('%') {
        // The kernel chose the name: the one link that was not there before.
        ctr.links()
            .map(|all| all.into_iter().find(|l| !known.contains(&l.name)))
    } else {
        ctr.link_by_name(d.inner)
    };
    let link = match now {
        Ok(Some(l)) => {
            known.push(l.name.clone());
            l
        }
        Ok(None) => {
            let e = Error::os(
                format!("{}: the device is not in the container's namespace after the move", field(d.host)),
                std::io::Error::from_raw_os_error(libc::ENODEV),
            );
            return Err((None, e));
        }
        Err(e) => {
            return Err((
                None,
                Error::os(format!("{}: find the moved device", field(d.host)), e),
            ))
        }
    };
    for a in &d.addrs {
        ctr.add_addr(link.index, a, d.host, &link.name)
            .map_err(|e| {
                (
                    Some(link.index),
                    Error::os(
                        format!(
                            "{}: add address {} in the container",
                            field(d.host),
                            a.display()
                        ),
                        e,
                    ),
                )
            })?;
    }
    ctr.set_up(link.index, true).map_err(|e| {
        (
            Some(link.index),
            Error::os(
                format!("{}: set the device up in the container", field(d.host)),
                e,
            ),
        )
    })?;
    Ok(link.index)
}

/// Best effort: give the moved devices back to the host under their
/// names, with their addresses and up/down state.
fn roll_back(host: &mut Rtnl, ctr: &mut Rtnl, home: &OwnedFd, moved: &[Moved]) {
    for m in moved.iter().rev() {
        let d = m.dev;
        if let Err(e) = ctr.move_link(m.index, d.host, home.as_fd()) {
            log::warn!(
                "{}: cannot move the device back to the host: {e}",
                field(d.host)
            );
            continue;
        }
        let Ok(Some(link)) = host.link_by_name(d.host) else {
            continue;
        };
        for a in &d.addrs {
            if let Err(e) = host.add_addr(link.index, a, d.inner, d.host) {
                log::warn!(
                    "{}: cannot restore address {} on the host: {e}",
                    field(d.host),
                    a.display()
                );
            }
        }
        if d.link.is_up() {
            let _ = host.set_up(link.index, true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(linux: serde_json::Value) -> Spec {
        serde_json::from_value(serde_json::json!({"ociVersion": "1.3.0", "linux": linux})).unwrap()
    }

    #[test]
    fn names_are_checked() {
        let ns = serde_json::json!([{"type": "network"}]);
        let ok = spec(
            serde_json::json!({"namespaces": ns, "netDevices": {"eth1": {}, "eth2": {"name": "c%d"}}}),
        );
        assert_eq!(validate(&ok), Ok(()));
        for (devs, path) in [
            (
                serde_json::json!({"bad/name": {}}),
                "linux.netDevices.bad/name",
            ),
            (
                serde_json::json!({"eth1": {"name": "a-very-long-device-name"}}),
                "linux.netDevices.eth1.name",
            ),
            (
                serde_json::json!({"eth1": {"name": "x"}, "eth2": {"name": "x"}}),
                "linux.netDevices.eth2",
            ),
            (
                serde_json::json!({"eth1": {"name": "c%s"}}),
                "linux.netDevices.eth1.name",
            ),
        ] {
            let s = spec(serde_json::json!({"namespaces": ns, "netDevices": devs}));
            assert_eq!(validate(&s).unwrap_err().0, path, "{devs}");
        }
    }

    #[test]
    fn needs_a_network_namespace_of_its_own() {
        let s = spec(
            serde_json::json!({"namespaces": [{"type": "mount"}], "netDevices": {"eth1": {}}}),
        );
        assert_eq!(validate(&s).unwrap_err().0, "linux.netDevices");
        let s = spec(serde_json::json!({
            "namespaces": [{"type": "network", "path": "/proc/self/ns/net"}],
            "netDevices": {"eth1": {}}
        }));
        let e = validate(&s).unwrap_err();
        assert!(e.1.contains("berth's own network namespace"), "{}", e.1);
    }
}
