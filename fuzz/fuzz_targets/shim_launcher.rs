//! The shim's launcher protocol (shim/src/launcher/protocol.rs): the
//! request the launcher's child decodes (an update's resources are decoded
//! as the child decodes them, then merged as `berth update` merges them),
//! and the reply frame the server decodes (length-prefixed JSON, then raw
//! stats bytes).
#![no_main]

use berth_shim::launcher::protocol::{
    encode_reply, encode_request, parse_reply, parse_request, resources_from_any, Answer, Op,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = parse_request(data) {
        // What decodes re-encodes, and decodes to the same request.
        let again = encode_request(&r).expect("a decoded request encodes");
        let back = parse_request(&again).expect("a re-encoded request decodes");
        assert_eq!(encode_request(&back).ok(), Some(again));
        if let Op::Update { resources } = &r.op {
            if let Ok(r) = resources_from_any(resources.get().as_bytes()) {
                let _ = berth::fuzzing::Resources::default().merge_spec(&r, true);
            }
        }
    }
    match parse_reply(data) {
        Ok(a) => {
            let again = encode_reply(&Ok(a.clone()));
            assert_eq!(parse_reply(&again).ok(), Some(a.clone()));
            if let Answer::Stats { value, .. } = a {
                let _ = value.len();
            }
        }
        Err(f) => {
            let _ = f.code();
        }
    }
});
