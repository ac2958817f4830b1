//! A userspace in-network aggregation switch.
//!
//! [`core`] is the aggregation state machine (sans-IO); [`control`] is the
//! job control plane (sans-IO); [`emulated`] lets the control plane program
//! the core; [`udp`] is the UDP driver that serves both on sockets;
//! [`demo`] runs it with N in-process workers; [`taps`] are the capture
//! and metrics observers a driver feeds.
#![deny(unsafe_code)]

pub mod control;
pub mod control_io;
pub mod core;
pub mod dataplane;
pub mod demo;
pub mod emulated;
pub mod l2;
pub mod metrics;
pub mod p4config;
pub mod pcap;
pub mod taps;
pub mod topo;
pub mod udp;
