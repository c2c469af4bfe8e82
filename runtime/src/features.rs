//! [`features_json`] (`berth features`): the runtime-spec Features structure (features.md),
//! built from the tables the code itself uses, so it cannot drift: the
//! accepted `ociVersion` range (spec::version_supported), hook kinds (hooks),
//! mount options (rootfs::options), namespace types (namespaces), capability
//! names (security::caps), memory policy modes and flags (mempolicy).

use oci_spec::runtime::LinuxNamespaceType;
use serde_json::{json, Value};

use crate::hooks::HookKind;

/// The lowest `ociVersion` berth accepts; the highest is [`crate::OCI_VERSION`].
const OCI_VERSION_MIN: &str = "1.0.0";

/// Every hook kind. The match below fails to compile when a kind is added
/// to `HookKind` and not here.
const HOOKS: [HookKind; 6] = [
    HookKind::Prestart,
    HookKind::CreateRuntime,
    HookKind::CreateContainer,
    HookKind::StartContainer,
    HookKind::Poststart,
    HookKind::Poststop,
];

#[allow(dead_code)]
fn all_hooks_listed(k: HookKind) {
    match k {
        HookKind::Prestart
        | HookKind::CreateRuntime
        | HookKind::CreateContainer
        | HookKind::StartContainer
        | HookKind::Poststart
        | HookKind::Poststop => {}
    }
}

/// Every namespace type (`namespaces::flag` maps each to its clone flag);
/// the match fails to compile when oci-spec adds one.
const NAMESPACES: [LinuxNamespaceType; 8] = [
    LinuxNamespaceType::Cgroup,
    LinuxNamespaceType::Ipc,
    LinuxNamespaceType::Mount,
    LinuxNamespaceType::Network,
    LinuxNamespaceType::Pid,
    LinuxNamespaceType::User,
    LinuxNamespaceType::Uts,
    LinuxNamespaceType::Time,
];

#[allow(dead_code)]
fn all_namespaces_listed(t: LinuxNamespaceType) {
    match t {
        LinuxNamespaceType::Cgroup
        | LinuxNamespaceType::Ipc
        | LinuxNamespaceType::Mount
        | LinuxNamespaceType::Network
        | LinuxNamespaceType::Pid
        | LinuxNamespaceType::User
        | LinuxNamespaceType::Uts
        | LinuxNamespaceType::Time => {}
    }
}

/// `linux.seccomp`: the filter compiler's own tables.
fn seccomp() -> Value {
    crate::security::seccomp::profile::features()
}

/// The Features document, as `berth features` prints it.
pub fn features_json() -> Value {
    let mut mount_options: Vec<&str> = crate::rootfs::options::known_options().collect();
    mount_options.sort_unstable();
    json!({
        "ociVersionMin": OCI_VERSION_MIN,
        "ociVersionMax": crate::OCI_VERSION,
        "hooks": HOOKS.iter().map(|k| k.name()).collect::<Vec<_>>(),
        "mountOptions": mount_options,
        "linux": {
            "namespaces": NAMESPACES.iter().map(|t| crate::namespaces::type_name(*t)).collect::<Vec<_>>(),
            "capabilities": crate::security::caps::names().collect::<Vec<_>>(),
            // One directory per mounted hierarchy, v1 and v2 alike, or a
            // systemd unit (--systemd-cgroup); not the user's systemd instance.
            "cgroup": {"v1": true, "v2": true, "systemd": true, "systemdUser": false},
            "seccomp": seccomp(),
            // exec refuses profiles and labels (lifecycle::exec::check_lsm).
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false},
            // rootfs::idmap: idmap, ridmap, uidMappings/gidMappings on binds.
            "mountExtensions": {"idmap": {"enabled": true}},
            // netdev::move_all; mempolicy's own tables.
            "netDevices": {"enabled": true},
            "memoryPolicy": {
                "modes": crate::mempolicy::MODES.iter().map(|m| m.1).collect::<Vec<_>>(),
                "flags": crate::mempolicy::FLAGS.iter().map(|f| f.1).collect::<Vec<_>>(),
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_range_is_accepted() {
        // features.md: the runtime MUST accept both as ociVersion.
        assert!(crate::spec::version_supported(OCI_VERSION_MIN));
        assert!(crate::spec::version_supported(crate::OCI_VERSION));
    }

    #[test]
    fn lists_come_from_the_code() {
        let f = features_json();
        assert_eq!(f["hooks"].as_array().unwrap().len(), 6);
        assert_eq!(f["linux"]["namespaces"].as_array().unwrap().len(), 8);
        let caps = f["linux"]["capabilities"].as_array().unwrap();
        assert!(caps
            .iter()
            .all(|c| crate::security::caps::number(c.as_str().unwrap()).is_some()));
        let opts = f["mountOptions"].as_array().unwrap();
        assert!(opts
            .iter()
            .all(|o| crate::rootfs::options::MountOptions::parse(&[o.as_str().unwrap()]).is_ok()));
        // Every memory policy mode and flag is one config.json accepts.
        for m in f["linux"]["memoryPolicy"]["modes"].as_array().unwrap() {
            let c = json!({"mode": m, "nodes": "0"});
            assert!(serde_json::from_value::<oci_spec::runtime::LinuxMemoryPolicy>(c).is_ok(), "{m}");
        }
        for fl in f["linux"]["memoryPolicy"]["flags"].as_array().unwrap() {
            let c = json!({"mode": "MPOL_BIND", "nodes": "0", "flags": [fl]});
            assert!(serde_json::from_value::<oci_spec::runtime::LinuxMemoryPolicy>(c).is_ok(), "{fl}");
        }
        // Every namespace name is one config.json accepts.
        for n in f["linux"]["namespaces"].as_array().unwrap() {
            let t: LinuxNamespaceType = serde_json::from_value(n.clone()).unwrap();
            assert_eq!(crate::namespaces::type_name(t), n.as_str().unwrap());
        }
    }
}
