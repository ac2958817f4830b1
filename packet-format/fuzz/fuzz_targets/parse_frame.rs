//! Any bytes as an Ethernet frame: neither parser panics; whatever the
//! verifying parser accepts the switch's parser (no UDP checksum) accepts
//! alike; and a parsed frame re-emits to one that parses to the same
//! endpoints and payload.
#![no_main]

use libfuzzer_sys::fuzz_target;
use packet_format::frame::{emit_udp, parse_udp, parse_udp_no_checksum};

fuzz_target!(|data: &[u8]| {
    let unverified = parse_udp_no_checksum(data);
    let Ok(frame) = parse_udp(data) else {
        return;
    };
    assert_eq!(unverified, Ok(frame));
    let mut out = Vec::new();
    emit_udp(frame.src, frame.dst, frame.payload, &mut out);
    let again = parse_udp(&out).expect("emitted frame parses");
    assert_eq!(again, frame);
});
