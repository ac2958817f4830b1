//! The worker side of in-network aggregation.
//!
//! A training job links this crate, joins a job on the switch and calls
//! allreduce; the result is the bitwise-identical sum on every worker.
//!
//! - [`Agent`]: join a job ([`JoinOptions`]), `allreduce_i32`/`allreduce_f32`,
//!   or [`Agent::spawn`] for the non-blocking form; typed [`AgentError`]s.
//! - [`bench`](mod@bench): the benchmark of `host-agent bench` and `switch-emu demo`.
//! - [`engine`]: the sans-IO slot engine the agent drives.
//! - [`quantize`]: block fixed point for float32, with its error bound.
//! - [`transport`]: the batched UDP socket (sendmmsg/GSO, recvmmsg/GRO).
//! - [`control_client`]: the control protocol (JSON lines over TCP).
#![deny(unsafe_code)]

pub mod agent;
pub mod bench;
pub mod control_client;
pub mod engine;
pub mod quantize;
pub mod transport;

pub use agent::{Agent, AgentError, AgentHandle, AgentStats, JoinOptions, Pending};
