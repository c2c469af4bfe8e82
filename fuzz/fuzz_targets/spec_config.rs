//! A bundle's config.json as `berth create` reads it (runtime/src/spec/):
//! parse, validate (in a scratch bundle directory), then what is derived
//! from it before anything is created: cgroup resources, every mount's
//! options, rootfsPropagation and the seccomp profile's checks. The same
//! bytes are also tried as an `exec --process` process.json.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use berth::fuzzing::Resources;
use berth::fuzzing::{root_propagation, MountOptions};
use berth::fuzzing::profile;
use libfuzzer_sys::fuzz_target;

/// A bundle directory with an empty `rootfs/`, made once per process.
fn bundle() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = tempfile::Builder::new()
            .prefix("berth-fuzz-bundle")
            .tempdir()
            .unwrap()
            .keep();
        std::fs::create_dir(d.join("rootfs")).unwrap();
        d.canonicalize().unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = berth::fuzzing::parse_process("process.json", data);
    let Ok(spec) = berth::fuzzing::parse_spec("config.json", data) else {
        return;
    };
    let _ = berth::fuzzing::validate_spec("config.json", &spec, bundle());
    let linux = spec.linux().as_ref();
    let _ = Resources::from_spec(linux.and_then(|l| l.resources().as_ref()), true);
    for m in spec.mounts().iter().flatten() {
        let _ = MountOptions::parse(m.options().as_deref().unwrap_or_default());
    }
    let _ = root_propagation(linux.and_then(|l| l.rootfs_propagation().as_deref()));
    if let Some(s) = linux.and_then(|l| l.seccomp().as_ref()) {
        let _ = profile::check(s);
    }
});
