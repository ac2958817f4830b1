//! A userspace in-network aggregation switch.
//!
//! [`core`] is the aggregation state machine (sans-IO); [`control`] is the
//! job control plane (sans-IO); [`emulated`] lets the control plane program
//! the core; [`udp`] is the UDP driver that serves both on sockets.
#![deny(unsafe_code)]

pub mod control;
pub mod control_io;
pub mod core;
pub mod dataplane;
pub mod emulated;
pub mod l2;
pub mod metrics;
pub mod p4config;
pub mod pcap;
pub mod topo;
pub mod udp;
