//! The aggregation core: a sans-IO state machine with the semantics of the
//! Tofino program (see `p4/`). Drivers (UDP, L2, simulator) feed it datagrams
//! and time and carry out the [`Verdict`] it returns; it owns no socket,
//! clock or thread.
//!
//! CONTRACT (fixed; other modules are written against it):
//! ```ignore
//! pub struct Config { pub max_workers: u16 /*32*/, pub slots: u16 /*TOFINO_SLOTS*/,
//!                     pub max_elements_per_packet: u16 /*64*/ }   // Config::validate() -> Result<(), ConfigError>
//! pub struct JobSpec { pub id: u16, pub key: u32, pub slot_base: u16, pub slot_count: u16,
//!                      pub world: u16, pub members: Vec<SocketAddrV4> /* index = rank */ }
//! impl SwitchCore {
//!   pub fn new(config: Config) -> Result<Self, ConfigError>;
//!   pub fn config(&self) -> &Config;
//!   pub fn install_job(&mut self, spec: JobSpec) -> Result<(), JobError>; // resets the leased slots
//!   pub fn remove_job(&mut self, id: u16) -> Option<JobSpec>;
//!   pub fn members(&self, job: u16) -> Option<&[SocketAddrV4]>;
//!   pub fn handle_packet(&mut self, now: Instant, src: SocketAddrV4, datagram: &[u8], out: &mut Vec<u8>) -> Verdict;
//!   pub fn handle_packet_append(&mut self, now: Instant, src: SocketAddrV4, datagram: &[u8], out: &mut Vec<u8>) -> Verdict; // the result appended, out kept
//!   pub fn counters(&self) -> &Counters;                 // global drops per reason, packets, bytes
//!   pub fn job_counters(&self, job: u16) -> Option<&JobCounters>;
//!   pub fn last_heard(&self, job: u16) -> Option<&[Option<Instant>]>;   // per rank
//!   pub fn incomplete_slots(&self, job: u16) -> Vec<SlotView>;          // slot, set, seq, contributed bitmap, since
//!   // additions (read-only):
//!   pub fn jobs(&self) -> impl Iterator<Item = &JobSpec>;
//!   pub fn job(&self, id: u16) -> Option<&JobSpec>;
//!   pub fn slot_state(&self, slot: u16, set: bool) -> Option<SlotState<'_>>; // None outside the pool
//! }
//! pub enum DropReason { Truncated, BadVersion, Malformed, NotContribution, UnknownJob, UnknownRank,
//!     WrongSource, BadKey, SlotOutsideLease, TooManyElements, LengthMismatch, StaleSequence,
//!     DuplicateIncomplete }   // DropReason::ALL, DropReason::name() -> "unknown_job" etc.
//! ```
//! Usage:
//! ```ignore
//! let mut core = SwitchCore::new(Config::default())?;          // Config::validate
//! core.install_job(JobSpec { id, key, slot_base, slot_count, world, members })?;
//! let mut out = Vec::new();
//! match core.handle_packet(now, src, &datagram, &mut out) {
//!     Verdict::Multicast { job } => for dst in core.members(job).unwrap() { send(dst, &out) },
//!     Verdict::Unicast { to } => send(to, &out),
//!     Verdict::Absorbed => {}
//!     Verdict::Drop(reason) => {}            // already counted in core.counters()
//! }
//! core.remove_job(id);                        // frees nothing itself: leases are the control plane's
//! ```
//!
//! Rules (the P4 program implements the same; `tests/model.rs` transcribes
//! them into a reference model). Per (slot, set): sums, bitmap (bit = rank),
//! count, max exponent, element count, seq, valid.
//! 1. Parse: `Truncated`, `BadVersion`, `Malformed`, `NotContribution`.
//! 2. Admit, in this order: `UnknownJob`, `UnknownRank`, `WrongSource`
//!    (IPv4 and port), `BadKey`, `SlotOutsideLease`, `TooManyElements`.
//! 3. With `st` = (slot, set) and `bit` = 1 << rank:
//!    - bit set (retransmission, changes nothing): same seq and complete ->
//!      `Unicast` of the stored result; other seq -> `StaleSequence`; else
//!      `DuplicateIncomplete`.
//!    - round in progress (bitmap != 0): other seq, or the round already
//!      complete -> `StaleSequence`; other element count -> `LengthMismatch`;
//!      else add (wrapping i32), max exponent, count += 1, set bit.
//!    - bitmap empty: if valid and seq is not serially after st.seq ->
//!      `StaleSequence` (an old copy never starts a round); else a new round
//!      overwrites the slot.
//!    - accepted: clear the bit in the other set; count == world ->
//!      `Multicast`, else `Absorbed`.
//!
//! "Or the round already complete" amends the protocol notes: a rank whose
//! bit was cleared in a complete round has moved on to the other set, so its
//! packet is a delayed copy. Added, it would push count past world (the slot
//! would never answer a retransmission again) and clear the rank's bit in the
//! other set, where its retransmission would then count twice.

use std::net::SocketAddrV4;

mod config;
mod counters;
mod state;

pub use config::{Config, ConfigError};
pub use counters::{Counters, DropReason, JobCounters};
pub use state::{JobError, JobSpec, SlotState, SlotView, SwitchCore};

#[cfg(test)]
mod tests;

/// What a driver must do with a datagram after the core has seen it. When a
/// result is to be sent, its bytes (aggregation header and payload) have been
/// written into the `out` buffer passed to [`SwitchCore::handle_packet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The contribution was added; nothing to send.
    Absorbed,
    /// The slot completed: send `out` to every member of `job`, each exactly once.
    Multicast {
        /// Job whose members receive the result.
        job: u16,
    },
    /// A retransmission reached a complete slot: send `out` to this worker only.
    Unicast {
        /// The retransmitting worker's registered address.
        to: SocketAddrV4,
    },
    /// The datagram changed nothing; the reason has been counted.
    Drop(DropReason),
}
