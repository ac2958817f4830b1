//! Transports that carry the engine's datagrams to the switch and its
//! results back. The engine is sans-IO; a transport only moves bytes.

mod group;
mod queue;
pub mod udp;

pub use group::GroupReceiver;
pub use queue::SendBytes;
pub use udp::{TransportOptions, TransportStats, UdpTransport};
