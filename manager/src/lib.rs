//! berthctl: a small manager that imports images, makes bundles and runs
//! them through `containerd-shim-berth-v2` over the ttrpc Task API v2, the
//! way containerd does, without containerd. No daemon: each container's
//! shim is the daemon, found again through the address saved on disk.
//!
//! The library is the whole of berthctl; the `berthctl` binary
//! (`main.rs`) calls `main`. [`image`] is public for the fuzz targets
//! (fuzz/fuzz_targets/image_*.rs: archive members, layers, paths resolved
//! inside the rootfs), which build the library without its default `cli`
//! feature: only `image` and `store`, without the command line, the shim
//! client and the registry client (oci-client, tokio, rustls).

#![deny(clippy::undocumented_unsafe_blocks)]

pub mod image;
// Without `cli`, only what `image` uses of it.
#[cfg_attr(not(feature = "cli"), allow(dead_code))]
mod store;

#[cfg(feature = "cli")]
mod app;
#[cfg(feature = "cli")]
mod cli;
#[cfg(feature = "cli")]
mod ctl;
#[cfg(feature = "cli")]
mod events;
#[cfg(feature = "cli")]
mod pull;
#[cfg(feature = "cli")]
mod rootfs;
#[cfg(feature = "cli")]
mod run;
#[cfg(feature = "cli")]
mod shim;
#[cfg(feature = "cli")]
mod spec;
#[cfg(feature = "cli")]
mod stream;

#[cfg(feature = "cli")]
pub use app::main;
