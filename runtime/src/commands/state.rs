//! `berth state`: the spec's state JSON.

use std::path::Path;

use crate::container::StateDir;
use crate::error::Result;

pub fn state(root: &Path, id: &str) -> Result<()> {
    let dir = StateDir::open(root, id)?;
    let oci = match dir.load()? {
        Some(st) => st.oci(st.status(&dir.path)),
        // Its create died before writing state.json: nothing was made.
        None => crate::container::oci_unfinished(id),
    };
    println!("{}", serde_json::to_string_pretty(&oci).expect("state serializes"));
    Ok(())
}
