//! The UDP driver: the switch core and the control plane on sockets.
//!
//! One thread runs a `poll` loop over the data socket (UDP, default
//! `127.0.0.1:48864`), the control listener (TCP, default
//! `127.0.0.1:48865`, protocol in [`crate::control`]), the control
//! connections and the control plane's timers. Datagrams are received with
//! `recvmmsg` (with UDP GRO where the kernel offers it, so one buffer may
//! hold many datagrams) and results sent with `sendmmsg`, same-size results
//! to one destination merged into one UDP GSO message. Both offloads are
//! detected at startup and logged; a GSO send the kernel refuses later
//! switches to plain sends. Loss injection (`drop`, `seed`) happens here, on
//! received datagrams, before the core sees them: the core must not know.
//! [`Server::with_taps`] adds a packet capture (every datagram as it
//! arrives, before loss injection, and every result the core releases, with
//! the real addresses) and the metrics endpoint, refreshed by this loop at
//! most every [`crate::taps::METRICS_INTERVAL`] and whenever a scrape asks.
//!
//! ```no_run
//! use switch_emu::udp::{Server, ServerConfig};
//! let server = Server::bind(ServerConfig { log: false, ..ServerConfig::loopback_ephemeral() })?;
//! let addrs = server.local_addrs();
//! let handle = server.spawn()?;
//! // ... workers join at addrs.control and send to addrs.data ...
//! handle.shutdown();
//! let report = handle.join()?;
//! println!("{}", report.render());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use crate::control::ControlConfigError;
use crate::core::{Config, ConfigError};

pub mod client;
pub mod control_server;
mod offload;
mod outq;
mod server;

pub use server::{Controls, Offloads, Server, ServerAddrs, ServerHandle};

/// Settings of a UDP switch.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Data socket address.
    pub bind: SocketAddrV4,
    /// Control listener address.
    pub control: SocketAddrV4,
    /// Limits of the core (slots, workers, elements per packet).
    pub core: Config,
    /// Largest lease (window) one job may hold.
    pub job_quota: u16,
    /// Silence after which a job with waiting slots expires.
    pub worker_timeout: Duration,
    /// Time a job may take to gather all its joins.
    pub join_timeout: Duration,
    /// Probability of dropping each received datagram (loss injection).
    pub drop: f64,
    /// Seed of the loss injection.
    pub seed: u64,
    /// Messages per `recvmmsg` call.
    pub batch: usize,
    /// Use UDP GRO if the kernel offers it.
    pub gro: bool,
    /// Use UDP GSO if the kernel offers it.
    pub gso: bool,
    /// Log startup facts and offload fallbacks to stderr.
    pub log: bool,
    /// Multicast results: job `id` gets the group `result_groups + id` (at
    /// the data port), which its workers join; each result then leaves the
    /// switch once and the network (or the kernel, on one host) copies it
    /// to the members. `None`: one unicast datagram per member.
    pub result_groups: Option<Ipv4Addr>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: SocketAddrV4::new(Ipv4Addr::LOCALHOST, packet_format::UDP_PORT),
            control: SocketAddrV4::new(Ipv4Addr::LOCALHOST, packet_format::CONTROL_PORT),
            core: Config::default(),
            job_quota: 1024,
            worker_timeout: Duration::from_secs(3),
            join_timeout: Duration::from_secs(30),
            drop: 0.0,
            seed: 1,
            batch: 64,
            gro: true,
            gso: true,
            log: true,
            result_groups: None,
        }
    }
}

impl ServerConfig {
    /// The defaults on loopback with ports chosen by the kernel (tests, demos).
    pub fn loopback_ephemeral() -> Self {
        ServerConfig {
            bind: SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0),
            control: SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0),
            ..ServerConfig::default()
        }
    }
}

/// Why a server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A socket could not be bound.
    #[error("cannot bind the {what} to {addr}: {source}")]
    Bind {
        /// Which socket.
        what: &'static str,
        /// The address.
        addr: SocketAddrV4,
        /// The OS error.
        source: std::io::Error,
    },
    /// The core's limits are invalid.
    #[error(transparent)]
    Core(#[from] ConfigError),
    /// The control plane's settings are invalid.
    #[error(transparent)]
    Control(#[from] ControlConfigError),
    /// Another invalid setting.
    #[error("{0}")]
    Invalid(String),
    /// A socket operation failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
