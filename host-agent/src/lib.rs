//! The worker side of in-network aggregation.
//!
//! A training job links this crate, joins a job on the switch and calls
//! allreduce; the result is the bitwise-identical sum on every worker.
#![deny(unsafe_code)]

pub mod engine;
pub mod quantize;
pub mod transport;
