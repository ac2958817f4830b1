//! The aggregation header and its payload (layout in the crate docs).

use crate::{Error, Result, ELEMENT_LEN, HEADER_LEN, VERSION};

mod field {
    use core::ops::Range;
    pub const VERSION: usize = 0;
    pub const MSG_TYPE: usize = 1;
    pub const SET: usize = 2;
    pub const FLAGS: usize = 3;
    pub const JOB_ID: Range<usize> = 4..6;
    pub const RANK: Range<usize> = 6..8;
    pub const KEY: Range<usize> = 8..12;
    pub const SEQ: Range<usize> = 12..16;
    pub const SLOT: Range<usize> = 16..18;
    pub const ELEM_COUNT: Range<usize> = 18..20;
    pub const EXPONENT: Range<usize> = 20..22;
    pub const RESERVED: Range<usize> = 22..24;
    pub const PAYLOAD: usize = 24;
}

/// Byte ranges of every header field, for tools that check other
/// implementations (the P4 drift guard, the dissector test) against this one.
pub const FIELDS: &[(&str, usize, usize)] = &[
    ("version", field::VERSION, 1),
    ("msg_type", field::MSG_TYPE, 1),
    ("set", field::SET, 1),
    ("flags", field::FLAGS, 1),
    ("job_id", field::JOB_ID.start, 2),
    ("rank", field::RANK.start, 2),
    ("key", field::KEY.start, 4),
    ("seq", field::SEQ.start, 4),
    ("slot", field::SLOT.start, 2),
    ("elem_count", field::ELEM_COUNT.start, 2),
    ("exponent", field::EXPONENT.start, 2),
    ("reserved", field::RESERVED.start, 2),
];

/// Message type codepoint. Unknown values are kept so that a newer peer's
/// packets can be counted and reported rather than misread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MsgType {
    /// A worker's contribution to a slot (worker to switch).
    Contribution,
    /// A completed slot's sum (switch to worker).
    Result,
    /// Any other codepoint.
    Unknown(u8),
}

impl From<u8> for MsgType {
    fn from(value: u8) -> Self {
        match value {
            1 => MsgType::Contribution,
            2 => MsgType::Result,
            other => MsgType::Unknown(other),
        }
    }
}

impl From<MsgType> for u8 {
    fn from(value: MsgType) -> Self {
        match value {
            MsgType::Contribution => 1,
            MsgType::Result => 2,
            MsgType::Unknown(other) => other,
        }
    }
}

/// Header flag bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(pub u8);

impl Flags {
    /// The payload is block fixed point of float32 data (informational for
    /// the switch, which adds integers either way; used by tools).
    pub const FLOAT: Flags = Flags(0x01);

    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }
}

/// A read/write view of an aggregation header and payload in a buffer.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it; accessors may panic on a short buffer.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps a buffer after checking that it holds the header and the
    /// payload the header announces, so that no accessor can panic.
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks that the buffer holds the header and the announced payload.
    /// Trailing bytes after the payload are allowed (Ethernet padding).
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if len < HEADER_LEN + self.payload_len() {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Consumes the view, returning the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn u16_at(&self, range: core::ops::Range<usize>) -> u16 {
        let b = &self.buffer.as_ref()[range];
        u16::from_be_bytes([b[0], b[1]])
    }

    fn u32_at(&self, range: core::ops::Range<usize>) -> u32 {
        let b = &self.buffer.as_ref()[range];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    /// Protocol version.
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VERSION]
    }
    /// Message type.
    pub fn msg_type(&self) -> MsgType {
        MsgType::from(self.buffer.as_ref()[field::MSG_TYPE])
    }
    /// Raw set byte (valid values are 0 and 1).
    pub fn set(&self) -> u8 {
        self.buffer.as_ref()[field::SET]
    }
    /// Flag bits.
    pub fn flags(&self) -> Flags {
        Flags(self.buffer.as_ref()[field::FLAGS])
    }
    /// Job id.
    pub fn job_id(&self) -> u16 {
        self.u16_at(field::JOB_ID)
    }
    /// Sender's rank.
    pub fn rank(&self) -> u16 {
        self.u16_at(field::RANK)
    }
    /// Per-job key.
    pub fn key(&self) -> u32 {
        self.u32_at(field::KEY)
    }
    /// Chunk sequence number.
    pub fn seq(&self) -> u32 {
        self.u32_at(field::SEQ)
    }
    /// Slot index.
    pub fn slot(&self) -> u16 {
        self.u16_at(field::SLOT)
    }
    /// Number of payload elements.
    pub fn elem_count(&self) -> u16 {
        self.u16_at(field::ELEM_COUNT)
    }
    /// Block exponent ([`crate::NO_EXPONENT`] if none).
    pub fn exponent(&self) -> i16 {
        self.u16_at(field::EXPONENT) as i16
    }
    /// Payload length in bytes as announced by the header.
    pub fn payload_len(&self) -> usize {
        usize::from(self.elem_count()) * ELEMENT_LEN
    }
    /// The payload bytes (exactly `elem_count` elements).
    pub fn payload(&self) -> &[u8] {
        let end = field::PAYLOAD + self.payload_len();
        &self.buffer.as_ref()[field::PAYLOAD..end]
    }
    /// The payload as big-endian words; `i32::from_be_bytes` turns one into a value.
    pub fn payload_words(&self) -> &[[u8; 4]] {
        bytemuck::cast_slice(self.payload())
    }
    /// Payload element `index` converted to host order.
    pub fn element(&self, index: usize) -> Option<i32> {
        self.payload_words()
            .get(index)
            .map(|word| i32::from_be_bytes(*word))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    fn set_u16_at(&mut self, range: core::ops::Range<usize>, value: u16) {
        self.buffer.as_mut()[range].copy_from_slice(&value.to_be_bytes());
    }
    fn set_u32_at(&mut self, range: core::ops::Range<usize>, value: u32) {
        self.buffer.as_mut()[range].copy_from_slice(&value.to_be_bytes());
    }
    /// Sets the version byte.
    pub fn set_version(&mut self, value: u8) {
        self.buffer.as_mut()[field::VERSION] = value;
    }
    /// Sets the message type.
    pub fn set_msg_type(&mut self, value: MsgType) {
        self.buffer.as_mut()[field::MSG_TYPE] = value.into();
    }
    /// Sets the raw set byte.
    pub fn set_set(&mut self, value: u8) {
        self.buffer.as_mut()[field::SET] = value;
    }
    /// Sets the flag bits.
    pub fn set_flags(&mut self, value: Flags) {
        self.buffer.as_mut()[field::FLAGS] = value.0;
    }
    /// Sets the job id.
    pub fn set_job_id(&mut self, value: u16) {
        self.set_u16_at(field::JOB_ID, value)
    }
    /// Sets the rank.
    pub fn set_rank(&mut self, value: u16) {
        self.set_u16_at(field::RANK, value)
    }
    /// Sets the key.
    pub fn set_key(&mut self, value: u32) {
        self.set_u32_at(field::KEY, value)
    }
    /// Sets the sequence number.
    pub fn set_seq(&mut self, value: u32) {
        self.set_u32_at(field::SEQ, value)
    }
    /// Sets the slot index.
    pub fn set_slot(&mut self, value: u16) {
        self.set_u16_at(field::SLOT, value)
    }
    /// Sets the element count (the buffer must hold that many elements).
    pub fn set_elem_count(&mut self, value: u16) {
        self.set_u16_at(field::ELEM_COUNT, value)
    }
    /// Sets the exponent.
    pub fn set_exponent(&mut self, value: i16) {
        self.set_u16_at(field::EXPONENT, value as u16)
    }
    /// Zeroes the reserved bytes.
    pub fn clear_reserved(&mut self) {
        self.set_u16_at(field::RESERVED, 0)
    }
    /// Mutable payload bytes (exactly `elem_count` elements).
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = field::PAYLOAD + self.payload_len();
        &mut self.buffer.as_mut()[field::PAYLOAD..end]
    }
    /// Mutable payload words (big-endian).
    pub fn payload_words_mut(&mut self) -> &mut [[u8; 4]] {
        bytemuck::cast_slice_mut(self.payload_mut())
    }
    /// Writes host-order values into the payload in network order.
    /// Copies `min(values.len(), elem_count)` elements.
    pub fn write_elements(&mut self, values: &[i32]) {
        write_words(self.payload_words_mut(), values);
    }
}

/// Host-order values into payload words in network order (as many as both hold).
fn write_words(words: &mut [[u8; 4]], values: &[i32]) {
    for (word, value) in words.iter_mut().zip(values) {
        *word = value.to_be_bytes();
    }
}

/// A validated, high-level form of the header (the payload is separate,
/// as in `smoltcp::wire::UdpRepr`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Message type (never [`MsgType::Unknown`] after `parse`).
    pub msg_type: MsgType,
    /// Which copy of the slot: `false` is set 0, `true` is set 1.
    pub set: bool,
    /// Flag bits.
    pub flags: Flags,
    /// Job id.
    pub job_id: u16,
    /// Sender's rank.
    pub rank: u16,
    /// Per-job key.
    pub key: u32,
    /// Chunk sequence number.
    pub seq: u32,
    /// Slot index.
    pub slot: u16,
    /// Number of payload elements.
    pub elem_count: u16,
    /// Block exponent ([`crate::NO_EXPONENT`] if none).
    pub exponent: i16,
}

impl Repr {
    /// Parses and validates a header: version, message type and set must be known.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&T>) -> Result<Repr> {
        packet.check_len()?;
        if packet.version() != VERSION {
            return Err(Error::BadVersion(packet.version()));
        }
        let msg_type = packet.msg_type();
        if let MsgType::Unknown(_) = msg_type {
            return Err(Error::Malformed("msg_type"));
        }
        let set = match packet.set() {
            0 => false,
            1 => true,
            _ => return Err(Error::Malformed("set")),
        };
        Ok(Repr {
            msg_type,
            set,
            flags: packet.flags(),
            job_id: packet.job_id(),
            rank: packet.rank(),
            key: packet.key(),
            seq: packet.seq(),
            slot: packet.slot(),
            elem_count: packet.elem_count(),
            exponent: packet.exponent(),
        })
    }

    /// Length of the header plus the payload this header announces.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN + self.elem_count as usize * ELEMENT_LEN
    }

    /// Writes the header (not the payload) into a packet view.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        packet.set_version(VERSION);
        packet.set_msg_type(self.msg_type);
        packet.set_set(u8::from(self.set));
        packet.set_flags(self.flags);
        packet.set_job_id(self.job_id);
        packet.set_rank(self.rank);
        packet.set_key(self.key);
        packet.set_seq(self.seq);
        packet.set_slot(self.slot);
        packet.set_elem_count(self.elem_count);
        packet.set_exponent(self.exponent);
        packet.clear_reserved();
    }

    /// Appends header and payload to `out`: the one-call way to build a packet.
    /// `elements` must hold `elem_count` values.
    pub fn emit_to_vec(&self, elements: &[i32], out: &mut Vec<u8>) {
        debug_assert_eq!(elements.len(), usize::from(self.elem_count));
        self.emit_with(out, |words| write_words(words, elements));
    }

    /// Appends the packet to `out`, its payload written by `fill` (handed
    /// `elem_count` words, to be filled in network order), so that a caller
    /// producing the values (the quantizer) writes them in place. `fill`
    /// must write every word: a [`PacketSink`] other than `Vec` may hand
    /// out space that still holds an earlier packet's bytes.
    pub fn emit_with<S: PacketSink + ?Sized>(
        &self,
        out: &mut S,
        fill: impl FnOnce(&mut [[u8; 4]]),
    ) {
        let mut packet = Packet::new_unchecked(out.append(self.buffer_len()));
        self.emit(&mut packet);
        fill(packet.payload_words_mut());
    }
}

/// Where packets are written, back to back. A `Vec<u8>` appends zeroed
/// space; a driver's send queue can hand out space that already holds
/// bytes of datagrams it sent before, so that each packet is written once
/// instead of zeroed and then written.
pub trait PacketSink {
    /// `len` more bytes at the end of the sink, now part of it. Their
    /// contents are unspecified: the caller overwrites all of them.
    fn append(&mut self, len: usize) -> &mut [u8];
}

impl PacketSink for Vec<u8> {
    fn append(&mut self, len: usize) -> &mut [u8] {
        let start = self.len();
        self.resize(start + len, 0);
        &mut self[start..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NO_EXPONENT;

    // A contribution of job 0x0102 from rank 3, key 0xdeadbeef, seq 0x01020304,
    // slot 0x0010, set 1, float flag, exponent -2, two elements: 1 and -2.
    static PACKET_BYTES: [u8; 32] = [
        0x01, 0x01, 0x01, 0x01, // version, msg_type, set, flags
        0x01, 0x02, 0x00, 0x03, // job_id, rank
        0xde, 0xad, 0xbe, 0xef, // key
        0x01, 0x02, 0x03, 0x04, // seq
        0x00, 0x10, 0x00, 0x02, // slot, elem_count
        0xff, 0xfe, 0x00, 0x00, // exponent, reserved
        0x00, 0x00, 0x00, 0x01, // element 0 = 1
        0xff, 0xff, 0xff, 0xfe, // element 1 = -2
    ];

    fn packet_repr() -> Repr {
        Repr {
            msg_type: MsgType::Contribution,
            set: true,
            flags: Flags::FLOAT,
            job_id: 0x0102,
            rank: 3,
            key: 0xdead_beef,
            seq: 0x0102_0304,
            slot: 0x10,
            elem_count: 2,
            exponent: -2,
        }
    }

    #[test]
    fn deconstruct() {
        let packet = Packet::new_checked(&PACKET_BYTES[..]).unwrap();
        assert_eq!(packet.version(), 1);
        assert_eq!(packet.msg_type(), MsgType::Contribution);
        assert_eq!(packet.set(), 1);
        assert_eq!(packet.flags(), Flags::FLOAT);
        assert_eq!(packet.job_id(), 0x0102);
        assert_eq!(packet.rank(), 3);
        assert_eq!(packet.key(), 0xdead_beef);
        assert_eq!(packet.seq(), 0x0102_0304);
        assert_eq!(packet.slot(), 0x10);
        assert_eq!(packet.elem_count(), 2);
        assert_eq!(packet.exponent(), -2);
        assert_eq!(packet.element(0), Some(1));
        assert_eq!(packet.element(1), Some(-2));
        assert_eq!(packet.element(2), None);
    }

    #[test]
    fn construct() {
        let mut bytes = [0xa5u8; 32];
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        packet.set_version(1);
        packet.set_msg_type(MsgType::Contribution);
        packet.set_set(1);
        packet.set_flags(Flags::FLOAT);
        packet.set_job_id(0x0102);
        packet.set_rank(3);
        packet.set_key(0xdead_beef);
        packet.set_seq(0x0102_0304);
        packet.set_slot(0x10);
        packet.set_elem_count(2);
        packet.set_exponent(-2);
        packet.clear_reserved();
        packet.write_elements(&[1, -2]);
        assert_eq!(bytes, PACKET_BYTES);
    }

    #[test]
    fn parse() {
        let packet = Packet::new_checked(&PACKET_BYTES[..]).unwrap();
        assert_eq!(Repr::parse(&packet).unwrap(), packet_repr());
    }

    #[test]
    fn emit() {
        let mut out = Vec::new();
        packet_repr().emit_to_vec(&[1, -2], &mut out);
        assert_eq!(out, PACKET_BYTES);
        assert_eq!(packet_repr().buffer_len(), PACKET_BYTES.len());
    }

    #[test]
    fn truncated_header() {
        assert_eq!(
            Packet::new_checked(&PACKET_BYTES[..HEADER_LEN - 1]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(Packet::new_checked(&[][..]).unwrap_err(), Error::Truncated);
    }

    #[test]
    fn truncated_payload() {
        assert_eq!(
            Packet::new_checked(&PACKET_BYTES[..PACKET_BYTES.len() - 1]).unwrap_err(),
            Error::Truncated
        );
    }

    #[test]
    fn trailing_bytes_are_ignored() {
        let mut bytes = PACKET_BYTES.to_vec();
        bytes.extend_from_slice(&[0; 6]);
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(Repr::parse(&packet).unwrap(), packet_repr());
        assert_eq!(packet.payload().len(), 8);
    }

    #[test]
    fn bad_version() {
        let mut bytes = PACKET_BYTES;
        bytes[0] = 2;
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(Repr::parse(&packet).unwrap_err(), Error::BadVersion(2));
    }

    #[test]
    fn bad_set_and_unknown_type() {
        let mut bytes = PACKET_BYTES;
        bytes[2] = 2;
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(Repr::parse(&packet).unwrap_err(), Error::Malformed("set"));
        let mut bytes = PACKET_BYTES;
        bytes[1] = 9;
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.msg_type(), MsgType::Unknown(9));
        assert_eq!(
            Repr::parse(&packet).unwrap_err(),
            Error::Malformed("msg_type")
        );
    }

    #[test]
    fn no_exponent_round_trips() {
        let repr = Repr {
            exponent: NO_EXPONENT,
            elem_count: 0,
            ..packet_repr()
        };
        let mut out = Vec::new();
        repr.emit_to_vec(&[], &mut out);
        let packet = Packet::new_checked(&out[..]).unwrap();
        assert_eq!(Repr::parse(&packet).unwrap(), repr);
    }

    #[test]
    fn fields_table_is_contiguous() {
        let mut next = 0;
        for (_, offset, width) in FIELDS {
            assert_eq!(*offset, next);
            next += width;
        }
        assert_eq!(next, HEADER_LEN);
    }

    mod prop {
        use super::super::*;
        use proptest::prelude::*;

        fn any_repr() -> impl Strategy<Value = Repr> {
            (
                prop_oneof![Just(MsgType::Contribution), Just(MsgType::Result)],
                any::<bool>(),
                any::<u8>(),
                any::<(u16, u16, u32, u32, u16)>(),
                0u16..300,
                any::<i16>(),
            )
                .prop_map(
                    |(
                        msg_type,
                        set,
                        flags,
                        (job_id, rank, key, seq, slot),
                        elem_count,
                        exponent,
                    )| Repr {
                        msg_type,
                        set,
                        flags: Flags(flags),
                        job_id,
                        rank,
                        key,
                        seq,
                        slot,
                        elem_count,
                        exponent,
                    },
                )
        }

        proptest! {
            #[test]
            fn round_trip(repr in any_repr(), seed in any::<i32>()) {
                let elements: Vec<i32> = (0..repr.elem_count as i32).map(|i| seed.wrapping_mul(i + 1)).collect();
                let mut out = Vec::new();
                repr.emit_to_vec(&elements, &mut out);
                prop_assert_eq!(out.len(), repr.buffer_len());
                let packet = Packet::new_checked(&out[..]).unwrap();
                prop_assert_eq!(Repr::parse(&packet).unwrap(), repr);
                let back: Vec<i32> = (0..elements.len()).map(|i| packet.element(i).unwrap()).collect();
                prop_assert_eq!(back, elements);
            }

            #[test]
            fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
                if let Ok(packet) = Packet::new_checked(&bytes[..]) {
                    let _ = Repr::parse(&packet);
                    let _ = packet.payload_words();
                }
            }
        }
    }
}
