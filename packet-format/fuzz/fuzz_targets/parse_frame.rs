//! Any bytes as an Ethernet frame: the parser never panics, and a parsed
//! frame re-emits to one that parses to the same endpoints and payload.
#![no_main]

use libfuzzer_sys::fuzz_target;
use packet_format::frame::{emit_udp, parse_udp};

fuzz_target!(|data: &[u8]| {
    let Ok(frame) = parse_udp(data) else {
        return;
    };
    let mut out = Vec::new();
    emit_udp(frame.src, frame.dst, frame.payload, &mut out);
    let again = parse_udp(&out).expect("emitted frame parses");
    assert_eq!(again, frame);
});
