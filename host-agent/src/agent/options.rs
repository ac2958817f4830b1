//! What a worker needs to join a job.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use packet_format::{CONTROL_PORT, TOFINO_ELEMENTS_PER_PACKET};

use crate::engine::{DEFAULT_MAX_RETRANSMIT_TIMEOUT, DEFAULT_STALL_TIMEOUT};
use crate::transport::TransportOptions;

/// Default window (slots in flight per job).
///
/// The window must cover the bandwidth-delay product: throughput is at most
/// `window * elements * 4 bytes / round trip`. On loopback the round trip
/// through the switch process is dominated by scheduling of the switch and
/// worker processes (tens to hundreds of microseconds on 2 cores), so 64
/// slots of 256 bytes (16 KiB in flight) starve the pipe; 256 slots (64 KiB)
/// keep it full while the lease stays small (256 of the 8192 Tofino slots:
/// 32 such jobs fit). Measured with `switch-emu demo` (see the README).
pub const DEFAULT_WINDOW: u16 = 256;

/// Default initial retransmission timeout. Longer than the engine's 2 ms:
/// a busy 2-core host delays a round trip by whole scheduler slices, and a
/// spurious retransmission costs as much as a packet.
pub const DEFAULT_RETRANSMIT_TIMEOUT: Duration = Duration::from_millis(10);

/// Settings of [`super::Agent::join`]. Build with [`JoinOptions::new`] and
/// change fields as needed.
#[derive(Debug, Clone)]
pub struct JoinOptions {
    /// The switch's control plane (TCP). Default `127.0.0.1:48865`.
    pub control: SocketAddr,
    /// Where to send aggregation packets, overriding the data address the
    /// switch announces in its job parameters (e.g. when the switch is
    /// reached through another address than it believes it has).
    pub switch_data: Option<SocketAddrV4>,
    /// Local address for the data socket. `None`: the address this host uses
    /// to reach the switch (towards `switch_data` if given, else the
    /// control plane's), port chosen by the kernel. An unspecified IP
    /// (`0.0.0.0`) is replaced the same way; the port is kept.
    pub bind: Option<SocketAddrV4>,
    /// Job name; every rank of the job uses the same.
    pub job: String,
    /// This worker's rank, `0..world`.
    pub rank: u16,
    /// Number of workers.
    pub world: u16,
    /// Slots in flight (all ranks must agree); see [`DEFAULT_WINDOW`].
    pub window: u16,
    /// Int32 elements per packet (all ranks must agree; at most the switch's
    /// limit, 64 by default as on Tofino).
    pub elements_per_packet: u16,
    /// Time to connect to the control plane.
    pub connect_timeout: Duration,
    /// Time to wait for every rank to join.
    pub join_timeout: Duration,
    /// Initial retransmission timeout of a packet (doubles per retry).
    pub retransmit_timeout: Duration,
    /// Cap of the retransmission backoff.
    pub max_retransmit_timeout: Duration,
    /// A packet without its result this long ends the allreduce with
    /// [`super::AgentError::PeerTimeout`].
    pub stall_timeout: Duration,
    /// Socket settings of the data path.
    pub transport: TransportOptions,
}

impl JoinOptions {
    /// Defaults for `rank` of a `world`-worker job named `job` on a switch
    /// at `127.0.0.1:48865`.
    pub fn new(job: impl Into<String>, rank: u16, world: u16) -> Self {
        JoinOptions {
            control: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, CONTROL_PORT)),
            switch_data: None,
            bind: None,
            job: job.into(),
            rank,
            world,
            window: DEFAULT_WINDOW,
            elements_per_packet: TOFINO_ELEMENTS_PER_PACKET,
            connect_timeout: Duration::from_secs(5),
            join_timeout: Duration::from_secs(60),
            retransmit_timeout: DEFAULT_RETRANSMIT_TIMEOUT,
            max_retransmit_timeout: DEFAULT_MAX_RETRANSMIT_TIMEOUT,
            stall_timeout: DEFAULT_STALL_TIMEOUT,
            transport: TransportOptions::default(),
        }
    }

    /// Sets the control address (builder style).
    pub fn control(mut self, control: SocketAddr) -> Self {
        self.control = control;
        self
    }
}
