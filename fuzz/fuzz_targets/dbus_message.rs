//! D-Bus messages as berth's client reads them from the system bus
//! (runtime/src/dbus/: systemd's replies, errors and JobRemoved signals):
//! the frame length from the first 16 bytes, then the whole frame decoded.
//! What decodes must encode to a frame that decodes to the same message.
#![no_main]

use berth::fuzzing::{dbus_decode, dbus_frame_len};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(head) = data.get(..16).and_then(|h| <&[u8; 16]>::try_from(h).ok()) else {
        return;
    };
    let Ok(len) = dbus_frame_len(head) else {
        return;
    };
    let Some(frame) = data.get(..len) else {
        return;
    };
    if let Ok(m) = dbus_decode(frame) {
        let again = m.encode();
        let back = dbus_decode(&again).expect("a decoded message re-encodes to a valid frame");
        assert_eq!(back, m, "re-encoding changed the message");
    }
});
