//! One image layer (plain or gzip tar) applied onto an empty rootfs as
//! `berthctl image import` does (manager/src/image/layer.rs): member names
//! cleaned, whiteouts and opaque directories, links, devices, owners and
//! modes, every path resolved inside the rootfs. Afterwards nothing may
//! exist outside the rootfs directory.
#![no_main]

// berthctl's image modules, from its library (`berthctl::image`).

use berthctl::image::{fsat, layer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let tmp = tempfile::Builder::new()
        .prefix("berth-fuzz-layer")
        .tempdir()
        .unwrap();
    let blob = tmp.path().join("layer");
    std::fs::write(&blob, data).unwrap();
    let dir = tmp.path().join("rootfs");
    std::fs::create_dir(&dir).unwrap();
    let root = fsat::open_root(&dir).unwrap();
    let _ = layer::apply(&root, &blob);
    let mut names: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["layer", "rootfs"],
        "the layer wrote outside the rootfs"
    );
});
