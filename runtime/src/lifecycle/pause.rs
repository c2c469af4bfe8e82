//! [`Container::pause`] (`berth pause`): freeze every process of a created or running container
//! (v1 freezer.state, v2 cgroup.freeze), wait until the kernel reports it
//! frozen, then record `paused` in state.json.

use crate::container::{State, StateDir, Status};
use crate::error::{Error, Result};

use super::Container;

impl Container {
    /// Freeze every process of a created or running container.
    pub fn pause(&mut self) -> Result<()> {
        let (dir, state) = self.locked()?;
        let state = pause(dir, state.clone())?;
        self.state = Some(state);
        Ok(())
    }
}

fn pause(dir: &StateDir, mut state: State) -> Result<State> {
    let id = state.id.clone();
    match state.status(&dir.path) {
        Status::Created | Status::Running => {}
        s => return Err(Error::WrongState(format!("cannot pause container \"{id}\": it is {s}"))),
    }
    super::needs_cgroup(&state, "pause")?;
    state.cgroups.driver().set_frozen(true)?;
    state.paused = true;
    if let Err(e) = dir.save(&state) {
        // Keep the record and the freezer in agreement.
        let _ = state.cgroups.driver().set_frozen(false);
        return Err(e);
    }
    Ok(state)
}
