//! The shim's launcher protocol (shim/src/launcher.rs, ops.rs): the JSON
//! request the launcher decodes, and the JSON reply the server decodes.
//! An update request's resources go on to berth's linux.resources parser
//! as `berth update` reads them.
#![no_main]

use berth_shim::launcher::parse_reply;
use berth_shim::launcher::child::{parse_request, Op};
use libfuzzer_sys::fuzz_target;

/// Update's resources: parsed, then merged as `berth update` merges them.
fn update(data: &[u8]) {
    if let Ok(r) = berth::commands::update::parse_resources("update: resources", data) {
        let _ = berth::cgroups::Resources::default().merge_spec(&r, true);
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = parse_request(data) {
        if let Op::Update { resources } = r.op {
            update(resources.as_bytes());
        }
    }
    if let Ok(v) = parse_reply(data) {
        let _ = v.get("pid").and_then(|p| p.as_i64());
    }
});
