//! Shared helpers for berth's black-box tests and benchmarks: busybox
//! bundles, and (in `harness`) running the built binaries.

pub mod bundle;
