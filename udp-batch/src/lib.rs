//! Batched UDP system calls (Linux), shared by the switch's UDP driver and
//! the worker's transport. Per-packet system calls are this machine's budget
//! (DESIGN.md), so every call moves as many datagrams as it can:
//!
//! - [`RecvBatch`]: one `recvmmsg` fills many buffers; with `UDP_GRO` one
//!   buffer may hold a run of same-size datagrams ([`Received::datagrams`]).
//!   Each buffer records its sender, which a connected socket may ignore.
//! - [`send_runs`]: one `sendmmsg` sends many [`Run`]s; a run with a segment
//!   size is cut into datagrams by the kernel (`UDP_SEGMENT`, GSO). A run
//!   names its destination, or none on a connected socket.
//! - [`set_int_opt`], [`get_int_opt`]: `int` socket options (buffers, offloads).
//! - [`poll`]: `ppoll` with nanosecond timeouts.
//!
//! Detecting whether the kernel offers GRO/GSO, and falling back when it
//! does not, is the callers' policy. The `unsafe` system calls live in
//! `sockopt`, `recv`, `send` and `poll`, each allowed where it stands.
#![deny(unsafe_code)]

mod addr;
mod poll;
mod recv;
mod send;
mod sockopt;

pub use poll::poll;
pub use recv::{Received, RecvBatch, GRO_BUFFER, PLAIN_BUFFER};
pub use send::{send_runs, Run};
pub use sockopt::{get_int_opt, set_int_opt};

/// Bytes of ancillary data per message: room for one `int` cmsg, 8-aligned
/// (it is stored as `u64` words).
const CONTROL_LEN: usize = 64;

#[cfg(test)]
mod testutil;
