//! [`Container::update`] (`berth update`): change a container's resources,
//! given as linux.resources (decoded once by the caller: [`parse_resources`]).
//! As in runc, zero or absent values leave a setting as it is (Docker sends
//! zeros), the new values are merged into those applied before (stored in
//! state.json), and devices are not touched. If the kernel refuses a value,
//! the previous settings are written back and the error names the field.
//! With the systemd placement, the unit's properties are set too
//! (SetUnitProperties), after the files.

use oci_spec::runtime::LinuxResources;
use serde_json::{json, Value};

use crate::container::{State, StateDir, Status};
use crate::error::{Error, Result};

use super::Container;

impl Container {
    /// Merge `r` into the container's resources and apply them.
    pub fn update(&mut self, r: &LinuxResources) -> Result<()> {
        let (dir, state) = self.locked()?;
        let state = update_resources(dir, state.clone(), r)?;
        self.state = Some(state);
        Ok(())
    }
}

/// A linux.resources JSON document as `update` reads it (no effect); `what`
/// names the source in errors (the shim's Update; `berth update --resources`).
pub fn parse_resources(what: &str, data: &[u8]) -> Result<LinuxResources> {
    let v: Value = serde_json::from_slice(data)
        .map_err(|e| crate::spec::ConfigError::whole_file(what, format!("invalid JSON: {e}")))?;
    to_resources(what, v)
}

fn update_resources(dir: &StateDir, mut state: State, r: &LinuxResources) -> Result<State> {
    let id = state.id.clone();
    if state.status(&dir.path) == Status::Stopped {
        return Err(Error::WrongState(format!("cannot update container \"{id}\": it is stopped")));
    }
    super::needs_cgroup(&state, "update")?;
    let old = state.cgroups.resources.clone();
    let mut new = old.clone();
    new.merge_spec(r, true).map_err(|error| Error::Cgroup { what: "update".into(), error })?;
    new.devices = None;
    state.cgroups.placement().adjust(&mut new);
    if let Err(e) = state.cgroups.driver().apply(&new) {
        if let Err(undo) = state.cgroups.driver().apply(&old) {
            log::warn!("restoring the previous resources: {undo}");
        }
        return Err(Error::Cgroup { what: "update".into(), error: e });
    }
    // systemd's unit properties (systemd placement), once the kernel took
    // the values: else systemd would re-apply the old ones later.
    if let Err(e) = state.cgroups.placement().update(&new) {
        if let Err(undo) = state.cgroups.driver().apply(&old) {
            log::warn!("restoring the previous resources: {undo}");
        }
        return Err(e);
    }
    state.cgroups.resources = new;
    dir.save(&state)?;
    Ok(state)
}

/// Through the config loader (one LinuxResources deserializer in the
/// binary); errors read `WHAT: linux.resources.memory.limit: ...`.
fn to_resources(what: &str, v: Value) -> Result<LinuxResources> {
    let wrapped = json!({"ociVersion": crate::OCI_VERSION, "linux": {"resources": v}});
    let bytes = serde_json::to_vec(&wrapped).map_err(|e| Error::encode("linux.resources", e))?;
    let spec = crate::spec::parse_spec(what, &bytes)?;
    Ok(spec.linux().as_ref().and_then(|l| l.resources().clone()).unwrap_or_default())
}
