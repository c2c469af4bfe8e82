//! Generates the CRI (Kubernetes runtime.v1) gRPC client used by
//! tests/cri.rs from proto/runtime/v1/api.proto (kubernetes/cri-api v0.26.0,
//! unchanged): the gogoproto import and options, which only gogo's Go
//! generator understands and which change nothing on the wire, are dropped
//! into a copy under OUT_DIR first. Needs `protoc` (Debian's
//! protobuf-compiler, installed by scripts/setup-deps.sh) or $PROTOC.
//! Also builds helpers/sd_notify.rs as a static program (plain rustc, std
//! only) for the notify tests' containers, whose rootfs has no C library.

use std::path::PathBuf;

fn main() {
    sd_notify();
    let src = "proto/runtime/v1/api.proto";
    println!("cargo:rerun-if-changed={src}");
    println!("cargo:rerun-if-env-changed=PROTOC");
    let text = std::fs::read_to_string(src).unwrap_or_else(|e| panic!("{src}: {e}"));
    let kept: Vec<&str> = text.lines().filter(|l| !l.contains("gogoproto")).collect();
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    let dir = out.join("cri-proto");
    std::fs::create_dir_all(&dir).unwrap();
    let proto = dir.join("api.proto");
    let kept = kept.join("\n") + "\n";
    // Rewritten only when it changes: a file written during the run would
    // count as changed on every later build.
    if std::fs::read_to_string(&proto).ok().as_deref() != Some(kept.as_str()) {
        std::fs::write(&proto, kept).unwrap();
    }
    if std::env::var_os("PROTOC").is_none() && which("protoc").is_none() {
        panic!(
            "protoc not found on PATH (needed to generate the CRI client of the integration tests): \
             install Debian's protobuf-compiler (`sudo scripts/setup-deps.sh`) or set PROTOC"
        );
    }
    // The proto's comments hold indented text that rustdoc would take for
    // doctests: none are copied.
    let mut config = tonic_prost_build::Config::new();
    config.disable_comments(["."]);
    tonic_prost_build::configure()
        .build_server(false)
        .emit_rerun_if_changed(false)
        .disable_comments(["."])
        .compile_with_config(config, &[&proto], &[&dir])
        .unwrap_or_else(|e| panic!("generate the CRI client from {src}: {e}"));
}

/// helpers/sd_notify.rs -> $OUT_DIR/sd-notify, static (as oci-conformance's payload).
fn sd_notify() {
    let src = "helpers/sd_notify.rs";
    println!("cargo:rerun-if-changed={src}");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR")).join("sd-notify");
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let status = std::process::Command::new(&rustc)
        .args([
            "--edition=2021",
            "--crate-name",
            "sd_notify",
            "--crate-type",
            "bin",
        ])
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
        .args(["-C", "target-feature=+crt-static", "-o"])
        .arg(&out)
        .arg(src)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {rustc:?} to build {src}: {e}"));
    assert!(status.success(), "building the static {src} failed");
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}
