//! `mounts[].options` and `linux.rootfsPropagation` as berth parses them
//! (runtime/src/rootfs/options.rs). Input: options, one per line; the
//! first line is also tried as a rootfsPropagation value.
#![no_main]

use berth::fuzzing::{root_propagation, MountOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let opts: Vec<&str> = text.split('\n').collect();
    if let Ok(o) = MountOptions::parse(&opts) {
        let _ = (o.is_bind(), o.has_rec_attrs(), o.bind_remount_flags());
    }
    let _ = root_propagation(opts.first().copied());
});
