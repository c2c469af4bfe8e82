//! `berth state`: the spec's state JSON.

use std::path::Path;

use crate::container::StateDir;
use crate::error::Result;

pub fn state(root: &Path, id: &str) -> Result<()> {
    let dir = StateDir::open(root, id)?;
    let st = dir.load_required()?;
    let oci = st.oci(st.status(&dir.path));
    println!("{}", serde_json::to_string_pretty(&oci).expect("state serializes"));
    Ok(())
}
