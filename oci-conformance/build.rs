//! Builds the payload (src/payload/), the program the suite runs
//! inside containers, as a static executable: the test rootfs holds only
//! busybox, no C library. It is compiled with plain `rustc` (std only, no
//! crates) and `-C target-feature=+crt-static`, and embedded in the runner
//! with `include_bytes!`.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR")).join("oci-payload");
    let dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR")).join("src/payload");
    let src = dir.join("main.rs");
    println!("cargo:rerun-if-changed={}", dir.display());
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let status = Command::new(&rustc)
        .args(["--edition=2021", "--crate-name", "oci_payload", "--crate-type", "bin"])
        .args([
            "-C",
            "opt-level=1",
            "-C",
            "debuginfo=0",
            "-C",
            "strip=symbols",
            "-C",
            "panic=abort",
        ])
        .args(["-C", "target-feature=+crt-static"])
        .arg("-o")
        .arg(&out)
        .arg(&src)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {rustc:?} to build the payload: {e}"));
    assert!(
        status.success(),
        "building the static payload ({}) failed",
        src.display()
    );
}
