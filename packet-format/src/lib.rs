//! Wire format of the in-network aggregation protocol.
//!
//! Every part of the system (the switch emulator, the host agent, the P4
//! program, the Wireshark dissector) speaks the format defined here, so it is
//! the one place where byte offsets are decided.
//!
//! A frame is Ethernet / IPv4 / UDP (destination port [`UDP_PORT`]) /
//! aggregation header / payload. The outer layers are handled with
//! `smoltcp::wire` (see [`frame`]); this crate only defines the aggregation
//! header and its payload (see [`agg`]), in the style of `smoltcp::wire`:
//! a typed view [`agg::Packet`] over a byte buffer whose accessors never
//! panic once [`agg::Packet::new_checked`] succeeded, and a validated
//! [`agg::Repr`] with `parse`/`emit`/`buffer_len`.
//!
//! # Aggregation header (version 1, 24 bytes, all fields big-endian)
//!
//! | offset | width | field        | meaning |
//! |-------:|------:|--------------|---------|
//! | 0      | 1     | `version`    | protocol version, [`VERSION`] |
//! | 1      | 1     | `msg_type`   | [`agg::MsgType`]: 1 contribution (worker to switch), 2 result (switch to worker) |
//! | 2      | 1     | `set`        | which of the two copies ("sets") of the slot: 0 or 1 |
//! | 3      | 1     | `flags`      | [`agg::Flags`]; bit 0: payload is block fixed point of float32 |
//! | 4      | 2     | `job_id`     | job the packet belongs to, issued by the control plane |
//! | 6      | 2     | `rank`       | sender's rank within the job (in results: the rank whose packet released it) |
//! | 8      | 4     | `key`        | per-job random key issued at join; the switch admits only the job's key |
//! | 12     | 4     | `seq`        | chunk sequence number, continuing across allreduce calls (serial-number arithmetic) |
//! | 16     | 2     | `slot`       | index of the switch slot (absolute, inside the job's lease) |
//! | 18     | 2     | `elem_count` | number of 32-bit elements in the payload |
//! | 20     | 2     | `exponent`   | signed block exponent carried one window ahead; [`NO_EXPONENT`] if none |
//! | 22     | 2     | `reserved`   | zero when sent, ignored when received |
//! | 24     | 4 × `elem_count` | payload | two's-complement `i32` elements, network byte order |
//!
//! The switch never swaps bytes: it adds the big-endian words as integers
//! (the host agent converts on both ends).
#![forbid(unsafe_code)]

pub mod agg;
pub mod control;
pub mod frame;

pub use agg::{Flags, MsgType, Packet, PacketSink, Repr};

/// Protocol version carried in every header; packets of another version are dropped.
pub const VERSION: u8 = 1;

/// UDP port of the switch's aggregation service (0xBEE0, as SwitchML).
pub const UDP_PORT: u16 = 48864;

/// TCP port of the switch's control plane (joins, leases, status), next to [`UDP_PORT`].
pub const CONTROL_PORT: u16 = 48865;

/// Length of the aggregation header in bytes.
pub const HEADER_LEN: usize = 24;

/// Width of one payload element in bytes.
pub const ELEMENT_LEN: usize = 4;

/// Exponent value meaning "this packet carries no exponent"; it is the
/// smallest `i16`, so taking the maximum over workers ignores it.
pub const NO_EXPONENT: i16 = i16::MIN;

/// Elements per packet on Tofino in a single pipeline pass (256 payload bytes).
pub const TOFINO_ELEMENTS_PER_PACKET: u16 = 64;

/// Elements per packet on Tofino with folded pipes (1024 payload bytes).
pub const TOFINO_FOLDED_ELEMENTS_PER_PACKET: u16 = 256;

/// Workers per job on Tofino: the width of the contribution bitmap register.
pub const TOFINO_MAX_WORKERS: u16 = 32;

/// Slots per Tofino pipe (register entries per set) in the reference P4 program.
pub const TOFINO_SLOTS: u16 = 8192;

/// Bytes that Ethernet (14), IPv4 (20) and UDP (8) add in front of the aggregation header.
pub const OUTER_HEADERS_LEN: usize = 14 + 20 + 8;

/// Bytes a frame costs on an Ethernet wire beyond its contents: FCS (4),
/// preamble and start delimiter (8), inter-frame gap (12).
pub const ETHERNET_WIRE_OVERHEAD: usize = 4 + 8 + 12;

/// Length of the Ethernet frame (without FCS) carrying `elements` elements:
/// what `tc` counts on a veth link, so the unit of the emulated wire bound.
pub const fn frame_len(elements: usize) -> usize {
    OUTER_HEADERS_LEN + HEADER_LEN + elements * ELEMENT_LEN
}

/// Bytes one aggregation packet occupies on a physical Ethernet wire,
/// FCS, preamble and inter-frame gap included.
pub const fn wire_bytes(elements: usize) -> usize {
    ETHERNET_WIRE_OVERHEAD + frame_len(elements)
}

/// Largest element count whose packet fits in one IP datagram of `mtu` bytes.
pub const fn max_elements_for_mtu(mtu: usize) -> usize {
    (mtu.saturating_sub(20 + 8 + HEADER_LEN)) / ELEMENT_LEN
}

/// Errors of this crate's parsers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The buffer is shorter than the header, or than the payload the header announces.
    #[error("packet truncated")]
    Truncated,
    /// The version byte is not [`VERSION`].
    #[error("unsupported protocol version {0}")]
    BadVersion(u8),
    /// A field holds a value the protocol forbids (e.g. set > 1).
    #[error("malformed field: {0}")]
    Malformed(&'static str),
    /// An outer (Ethernet/IPv4/UDP) layer is not what the protocol expects.
    #[error("not an aggregation frame: {0}")]
    NotAggregation(&'static str),
}

/// Result of this crate's parsers.
pub type Result<T> = core::result::Result<T, Error>;
