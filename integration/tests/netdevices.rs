//! `linux.netDevices`: host interfaces moved into the container's network
//! namespace (renamed, addresses kept, up), and the errors that must leave
//! the host as it was. Each test makes its own veth pair with unique names
//! (`bt<pid>x<n>` and its peer `bt<pid>x<n>p`), removed on drop. (This
//! VM's kernel has no dummy driver; veth is virtual all the same, and the
//! peer stays on the host.)

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use berth_integration::prelude::*;

static N: AtomicUsize = AtomicUsize::new(0);

fn ip(args: &[&str]) -> Result<String, String> {
    let o = Command::new("ip").args(args).output().map_err(|e| format!("run ip {args:?}: {e}"))?;
    if o.status.success() {
        Ok(String::from_utf8_lossy(&o.stdout).into_owned())
    } else {
        Err(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&o.stderr).trim()))
    }
}

/// A host interface of this test (`ip link add NAME type KIND`; a veth
/// gets the peer NAMEp), deleted on drop if it is still on the host.
struct HostLink {
    name: String,
    peer: Option<String>,
}

impl HostLink {
    fn new(kind: &str) -> HostLink {
        let n = N.fetch_add(1, Ordering::SeqCst);
        let name = format!("bt{}x{n}", std::process::id() % 1_000_000);
        let peer = format!("{name}p");
        let mut args = vec!["link", "add", &name, "type", kind];
        if kind == "veth" {
            args.extend_from_slice(&["peer", "name", &peer]);
        }
        ip(&args).unwrap_or_else(|e| panic!("{e}"));
        HostLink { name, peer: (kind == "veth").then_some(peer) }
    }

    /// One end of a new veth pair.
    fn veth() -> HostLink {
        Self::new("veth")
    }

    fn addr(&self, args: &[&str]) {
        let mut a = vec!["addr", "add"];
        a.extend_from_slice(args);
        a.extend_from_slice(&["dev", &self.name]);
        ip(&a).unwrap_or_else(|e| panic!("{e}"));
    }

    fn on_host(&self) -> bool {
        Path::new("/sys/class/net").join(&self.name).exists()
    }

    /// `ip -o addr show dev NAME` on the host.
    fn host_addrs(&self) -> String {
        ip(&["-o", "addr", "show", "dev", &self.name]).unwrap_or_else(|e| panic!("{e}"))
    }
}

impl Drop for HostLink {
    fn drop(&mut self) {
        for n in std::iter::once(&self.name).chain(self.peer.as_ref()) {
            if Path::new("/sys/class/net").join(n).exists() {
                let _ = ip(&["link", "del", n]);
            }
        }
    }
}

/// A unique, non-overlapping IPv4 /24 for this test.
fn subnet() -> String {
    let n = N.fetch_add(1, Ordering::SeqCst);
    format!("10.{}.{}", 200 + (std::process::id() % 50), n % 250)
}

fn with_devices(env: &mut Env, devices: Value) {
    env.set("/ociVersion", json!("1.3.0"));
    env.set("/linux/netDevices", devices);
}

#[test]
fn device_is_moved_renamed_up_and_keeps_its_permanent_addresses() {
    let dev = HostLink::veth();
    let net = subnet();
    dev.addr(&[&format!("{net}.1/24")]);
    dev.addr(&["fd0b:e27::1/64", "nodad"]);
    // Not permanent (it has a lifetime): not carried over, per the spec.
    dev.addr(&[&format!("{net}.2/24"), "valid_lft", "300", "preferred_lft", "300"]);
    let mut env = Env::sh(
        "netdev_move",
        "echo links $(ls /sys/class/net); echo flags $(cat /sys/class/net/ceth0/flags); ip -o addr show dev ceth0",
    );
    with_devices(&mut env, json!({ dev.name.clone(): {"name": "ceth0"} }));
    let c = env.create();
    assert!(!dev.on_host(), "{} is still on the host after create", dev.name);
    env.start();
    env.wait_status("stopped", SHORT);
    let out = c.stdout_now();
    assert!(out.contains("links ceth0 lo\n"), "links in the container:\n{out}");
    let flags = out.lines().find_map(|l| l.strip_prefix("flags 0x")).unwrap_or_else(|| panic!("{out}"));
    assert_eq!(u32::from_str_radix(flags.trim(), 16).unwrap() & 1, 1, "ceth0 is not up (IFF_UP): {out}");
    assert!(out.contains(&format!("inet {net}.1/24")), "IPv4 address lost:\n{out}");
    assert!(out.contains("inet6 fd0b:e27::1/64"), "IPv6 address lost:\n{out}");
    assert!(!out.contains(&format!("{net}.2/")), "a non-permanent address was carried over:\n{out}");
    env.delete().ok();
    // The container's network namespace is gone: a virtual device goes with it.
    assert!(wait_until(SHORT, || !dev.on_host()), "{} came back to the host", dev.name);
    assert_no_leftovers(&env);
}

#[test]
fn device_keeps_its_name_when_none_is_given_and_template_names_are_filled_in() {
    let a = HostLink::veth();
    let b = HostLink::veth();
    let mut env = Env::sh("netdev_names", "echo links $(ls /sys/class/net)");
    with_devices(&mut env, json!({ a.name.clone(): {}, b.name.clone(): {"name": "cnet%d"} }));
    let out = env.run_ok();
    assert!(out.stdout.contains(&format!("links {} cnet0 lo\n", a.name)), "{out}");
    assert_no_leftovers(&env);
}

#[test]
fn missing_host_device_fails_create_naming_it() {
    let gone = format!("btno{}", std::process::id() % 1_000_000);
    let mut env = Env::new("netdev_missing");
    with_devices(&mut env, json!({ gone.clone(): {} }));
    env.try_create().fails_with(&[&format!("linux.netDevices.{gone}: there is no network device")]);
    assert_no_leftovers(&env);
}

#[test]
fn name_taken_in_the_container_fails_and_the_device_stays_on_the_host() {
    let dev = HostLink::veth();
    let net = subnet();
    dev.addr(&[&format!("{net}.1/24")]);
    let mut env = Env::new("netdev_taken");
    with_devices(&mut env, json!({ dev.name.clone(): {"name": "lo"} }));
    env.try_create().fails_with(&[&format!("linux.netDevices.{}", dev.name), "\"lo\" already exists"]);
    assert!(dev.on_host(), "{} left the host", dev.name);
    assert!(dev.host_addrs().contains(&format!("{net}.1/24")), "{}", dev.host_addrs());
    assert_no_leftovers(&env);
}

#[test]
fn a_failed_move_gives_the_devices_already_moved_back() {
    // Devices move in name order: the veth ("bt...") first, then the
    // bridge ("bu..."), which the kernel never lets leave its namespace.
    let dev = HostLink::veth();
    let net = subnet();
    dev.addr(&[&format!("{net}.1/24")]);
    ip(&["link", "set", &dev.name, "up"]).unwrap();
    let br = HostLink::new("bridge");
    let bridge = format!("bu{}", &br.name[2..]);
    ip(&["link", "set", &br.name, "name", &bridge]).unwrap();
    let br = HostLink { name: bridge, peer: None };
    let mut env = Env::new("netdev_rollback");
    with_devices(&mut env, json!({ dev.name.clone(): {"name": "ceth0"}, br.name.clone(): {} }));
    env.try_create().fails_with(&[&format!("linux.netDevices.{}: move the device", br.name)]);
    assert!(dev.on_host(), "{} was not given back to the host", dev.name);
    let addrs = dev.host_addrs();
    assert!(addrs.contains(&format!("{net}.1/24")), "address not restored: {addrs}");
    let flags = fs::read_to_string(format!("/sys/class/net/{}/flags", dev.name)).unwrap();
    assert_eq!(u32::from_str_radix(flags.trim().trim_start_matches("0x"), 16).unwrap() & 1, 1, "not up again");
    assert!(br.on_host());
    assert_no_leftovers(&env);
}

#[test]
fn without_a_network_namespace_of_its_own_it_is_a_config_error() {
    let dev = HostLink::veth();
    let mut env = Env::new("netdev_no_netns");
    env.set_namespaces(&["pid", "mount", "uts"]);
    with_devices(&mut env, json!({ dev.name.clone(): {} }));
    env.try_create().fails_with(&["config.json: linux.netDevices: moving network devices needs a network namespace"]);
    assert!(dev.on_host());
    assert_no_leftovers(&env);
}

#[test]
fn works_with_a_user_namespace() {
    let dev = HostLink::veth();
    let net = subnet();
    dev.addr(&[&format!("{net}.1/24")]);
    let mut env = Env::sh("netdev_userns", "ip -o addr show dev uveth0; cat /sys/class/net/uveth0/operstate");
    env.set_namespaces(&["pid", "network", "ipc", "uts", "mount", "user"]);
    env.set("/linux/uidMappings", json!([{"containerID": 0, "hostID": 100000, "size": 65536}]));
    env.set("/linux/gidMappings", json!([{"containerID": 0, "hostID": 100000, "size": 65536}]));
    with_devices(&mut env, json!({ dev.name.clone(): {"name": "uveth0"} }));
    let out = env.run_ok();
    assert!(out.stdout.contains(&format!("inet {net}.1/24")), "{out}");
    assert_no_leftovers(&env);
}
