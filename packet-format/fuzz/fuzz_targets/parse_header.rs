//! Any bytes: the checked view and the parser never panic, and whatever
//! parses re-emits to the same bytes (reserved field zeroed).
#![no_main]

use libfuzzer_sys::fuzz_target;
use packet_format::{Packet, Repr, HEADER_LEN};

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = Packet::new_checked(data) else {
        return;
    };
    let words = packet.payload_words();
    assert_eq!(words.len(), usize::from(packet.elem_count()));
    let Ok(repr) = Repr::parse(&packet) else {
        return;
    };
    let elements: Vec<i32> = words.iter().map(|w| i32::from_be_bytes(*w)).collect();
    let mut out = Vec::new();
    repr.emit_to_vec(&elements, &mut out);
    assert_eq!(out.len(), repr.buffer_len());
    let mut expected = data[..repr.buffer_len()].to_vec();
    expected[HEADER_LEN - 2..HEADER_LEN].fill(0);
    assert_eq!(out, expected);
    let again = Packet::new_checked(&out[..]).expect("emitted packet is complete");
    assert_eq!(Repr::parse(&again), Ok(repr));
});
