//! `berth state`: the spec's state JSON.

use std::path::Path;

use berth::error::Result;
use berth::Container;

pub fn state(root: &Path, id: &str) -> Result<()> {
    let oci = Container::load(root, id)?.state();
    println!(
        "{}",
        serde_json::to_string_pretty(&oci).expect("state serializes")
    );
    Ok(())
}
