//! A userspace in-network aggregation switch.
//!
//! [`core`] is the aggregation state machine (sans-IO); the drivers move
//! bytes and time in and out of it.
#![deny(unsafe_code)]

pub mod core;
pub mod dataplane;
pub mod l2;
pub mod metrics;
pub mod p4config;
pub mod pcap;
pub mod topo;
