//! `berthctl image import FILE` (manager/src/image/): the archive (plain
//! or gzip tar) copied into a scratch directory member by member, then the
//! OCI layout (oci-layout, index.json, manifests, config) or the
//! docker-archive manifest.json followed with every digest checked, then
//! each layer the archive names applied onto an empty rootfs.
//!
//! berthctl's image modules come from its library (`berthctl::image`).
#![no_main]


use berthctl::image::{archive, fsat, layer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let tmp = tempfile::Builder::new()
        .prefix("berth-fuzz-image")
        .tempdir()
        .unwrap();
    let file = tmp.path().join("image.tar");
    std::fs::write(&file, data).unwrap();
    let scratch = tmp.path().join("members");
    std::fs::create_dir(&scratch).unwrap();
    let Ok(members) = archive::Members::read(&file, &scratch) else {
        return;
    };
    let Ok(found) = members.images() else { return };
    for (i, img) in found.iter().enumerate() {
        let dir = tmp.path().join(format!("rootfs{i}"));
        std::fs::create_dir(&dir).unwrap();
        let root = fsat::open_root(&dir).unwrap();
        for l in &img.layers {
            if layer::apply(&root, &l.path).is_err() {
                break;
            }
        }
    }
});
