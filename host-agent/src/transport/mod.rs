//! Transports that carry the engine's datagrams to the switch and its
//! results back. The engine is sans-IO; a transport only moves bytes.

pub mod udp;

pub use udp::{TransportOptions, TransportStats, UdpTransport};
