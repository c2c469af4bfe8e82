//! `berth pause`: freeze every process of a created or running container
//! (v1 freezer.state, v2 cgroup.freeze), wait until the kernel reports it
//! frozen, then record `paused` in state.json.

use std::path::Path;

use crate::container::{StateDir, Status};
use crate::error::{Error, Result};

pub fn pause(root: &Path, id: &str) -> Result<()> {
    let dir = StateDir::open(root, id)?;
    let mut state = dir.load_required()?;
    match state.status(&dir.path) {
        Status::Created | Status::Running => {}
        s => return Err(Error::WrongState(format!("cannot pause container \"{id}\": it is {s}"))),
    }
    state.cgroups.driver().set_frozen(true)?;
    state.paused = true;
    if let Err(e) = dir.save(&state) {
        // Keep the record and the freezer in agreement.
        let _ = state.cgroups.driver().set_frozen(false);
        return Err(e);
    }
    Ok(())
}
