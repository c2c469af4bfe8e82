//! The rootless row (issue 16.8): every runtime run as a user the
//! benchmark makes for the run (`berth_integration::rootless::User`:
//! useradd, a subordinate id range, a private `$XDG_RUNTIME_DIR`; its drop
//! deletes the user's containers, kills what still runs as it and removes
//! the user, its ranges and its directory), on the same busybox bundle made
//! rootless as `runc spec --rootless` makes a config.

use std::path::Path;

use berth_integration::rootless::{chown_tree, User};
use serde_json::{json, Value};

use crate::runner::RunAs;

/// A new user for the run. `berth` is the binary the row times (the user
/// gets a copy in its directory as well, unused here).
pub fn make_user(berth: &Path) -> User {
    // User::create copies the berth it finds through $BERTH_BIN.
    std::env::set_var("BERTH_BIN", berth);
    User::create("bench")
}

/// How the runtimes run as `u`.
pub fn run_as(u: &User) -> RunAs {
    RunAs {
        uid: u.uid,
        gid: u.gid,
        env: vec![
            ("XDG_RUNTIME_DIR".into(), u.run_dir.display().to_string()),
            ("HOME".into(), u.dir.display().to_string()),
            ("USER".into(), u.name.clone()),
        ],
    }
}

/// Make `config` rootless for `u` as `runc spec --rootless` does: a user
/// namespace with the user's own uid and gid as 0 (a single mapping, no
/// newuidmap), no network namespace, /sys a read-only recursive bind (a
/// user may not mount sysfs without a network namespace of its own).
pub fn make_rootless(config: &mut Value, u: &User) {
    let ns = config["linux"]["namespaces"].as_array_mut().expect("linux.namespaces");
    ns.retain(|n| n["type"] != "network");
    ns.push(json!({"type": "user"}));
    config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": u.uid, "size": 1}]);
    config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": u.gid, "size": 1}]);
    for m in config["mounts"].as_array_mut().expect("mounts") {
        if m["destination"] == "/sys" {
            *m = json!({"destination": "/sys", "type": "none", "source": "/sys",
                        "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
        }
    }
}

/// Give the bundle at `dir` to `u` (its rootfs is the user's, as a user's
/// own image would be).
pub fn give(dir: &Path, u: &User) {
    chown_tree(dir, u.uid, u.gid);
}
