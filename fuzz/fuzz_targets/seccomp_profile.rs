//! A seccomp profile (`linux.seccomp`, the format of seccomp-profiles/)
//! lowered to BPF as berth does it (runtime/src/security/seccomp/): check,
//! then compile with libseccomp; and the compiled-filter cache's file
//! format (cache::parse) on the same bytes.
#![no_main]

use berth::fuzzing::{cache, profile};
use libfuzzer_sys::fuzz_target;
use oci_spec::runtime::LinuxSeccomp;

fuzz_target!(|data: &[u8]| {
    let _ = cache::parse(data, &cache::key(b"{}"));
    let Ok(s) = serde_json::from_slice::<LinuxSeccomp>(data) else {
        return;
    };
    if profile::check(&s).is_ok() {
        if let Ok(bpf) = profile::compile(&s) {
            assert_eq!(bpf.len() % 8, 0, "BPF is a whole number of sock_filter");
        }
    }
});
