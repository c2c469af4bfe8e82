//! [`Container::resume`] (`berth resume`): thaw a paused container, wait until the kernel reports
//! it thawed, then clear `paused` in state.json.

use crate::container::{State, StateDir, Status};
use crate::error::{Error, Result};

use super::Container;

impl Container {
    /// Thaw a paused container.
    pub fn resume(&mut self) -> Result<()> {
        let (dir, state) = self.locked()?;
        let state = resume(dir, state.clone())?;
        self.state = Some(state);
        Ok(())
    }
}

fn resume(dir: &StateDir, mut state: State) -> Result<State> {
    let id = state.id.clone();
    match state.status(&dir.path) {
        Status::Paused => {}
        s => return Err(Error::WrongState(format!("cannot resume container \"{id}\": it is {s}, not paused"))),
    }
    state.cgroups.driver().set_frozen(false)?;
    state.paused = false;
    dir.save(&state)?;
    Ok(state)
}
