//! rtnetlink replies as berth's netlink client reads them
//! (runtime/src/netdev/rtnl.rs): one datagram split into messages, then
//! every data payload read as a link and as an address. The first four
//! bytes of the input are the request's sequence number.
#![no_main]

use berth::fuzzing::{parse_addr, parse_link, parse_reply};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let seq = u32::from_ne_bytes(data[..4].try_into().unwrap());
    let mut out = Vec::new();
    let _ = parse_reply(&data[4..], seq, &mut out);
    for p in &out {
        if let Some(l) = parse_link(p) {
            let _ = l.is_up();
        }
        if let Some(a) = parse_addr(p, 1) {
            let _ = (a.display(), a.is_permanent_global());
        }
    }
});
