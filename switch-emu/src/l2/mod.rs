//! The switch on real interfaces: an L2 learning switch whose own IP address
//! serves in-network aggregation.
//!
//! - [`logic`]: the sans-IO switch (MAC learning, flooding, ARP/ICMP for its
//!   own IP, aggregation frames handed to the one [`crate::core::SwitchCore`]).
//! - [`table`]: the MAC and neighbour tables it keeps.
//! - [`heads`]: result headers per member or group, kept for one instant.
//! - [`port`]: AF_PACKET port I/O (`recvmmsg` or a TPACKET_V3 receive ring, batched send).
//! - [`offload`]: the offload header of every frame on a port, UDP GSO super-frames.
//! - [`staging`]: a port's frames of one round; results to a worker merged into super-frames.
//! - [`run`]: the event loop tying ports, the core and a [`run::Companion`] together.
//! - [`serve`]: `switch-emu serve` in L2 mode (the control plane as companion).

pub mod cli;
pub mod heads;
pub mod logic;
pub mod offload;
pub mod port;
pub mod run;
pub mod serve;
pub mod staging;
pub mod table;

pub use logic::{Decision, L2Config, L2Counters, L2Switch, PortMask, TxFrames, MAX_PORTS};
