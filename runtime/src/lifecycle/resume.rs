//! `berth resume`: thaw a paused container, wait until the kernel reports
//! it thawed, then clear `paused` in state.json.

use std::path::Path;

use crate::container::{StateDir, Status};
use crate::error::{Error, Result};

pub fn resume(root: &Path, id: &str) -> Result<()> {
    let dir = StateDir::open(root, id)?;
    let mut state = dir.load_required()?;
    match state.status(&dir.path) {
        Status::Paused => {}
        s => return Err(Error::WrongState(format!("cannot resume container \"{id}\": it is {s}, not paused"))),
    }
    state.cgroups.driver().set_frozen(false)?;
    state.paused = false;
    dir.save(&state)
}
