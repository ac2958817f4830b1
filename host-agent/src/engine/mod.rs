//! The worker's slot engine: a sans-IO state machine that turns a tensor into
//! contribution packets, matches results, retransmits on timeout and
//! assembles the sum. Time comes in as an argument; packets go out as bytes.
//!
//! CONTRACT (fixed; other modules are written against it):
//! ```ignore
//! pub struct EngineConfig {
//!     pub job_id: u16, pub key: u32, pub rank: u16, pub world: u16,
//!     pub slot_base: u16, pub window: u16, pub elements_per_packet: u16,
//!     pub retransmit_timeout: Duration,   // RTO before a round trip is measured, and its floor (default 2 ms)
//!     pub max_retransmit_timeout: Duration, // backoff cap (default 100 ms)
//!     pub stall_timeout: Duration,        // no result for this long -> Event::Stalled (default 5 s)
//! }
//! impl Default for EngineConfig;  // world 1, rank 0, job 0, slots 0..64, E = 64, default timeouts
//! impl EngineConfig { pub fn from_params(p: &packet_format::control::JobParams, rank: u16) -> Self;
//!                     pub fn validate(&self) -> Result<(), EngineError>; }
//! impl Engine {
//!   pub fn new(config: EngineConfig) -> Result<Engine, EngineError>;   // InvalidConfig
//!   pub fn config(&self) -> &EngineConfig;
//!   pub fn start_i32(&mut self, now: Instant, data: &[i32]) -> Result<(), EngineError>; // Busy
//!   pub fn start_f32(&mut self, now: Instant, data: &[f32]) -> Result<(), EngineError>; // Busy, NonFinite { index }
//!   pub fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>) -> bool; // writes the next datagram into buf (cleared first)
//!   pub fn poll_transmit_append<S: PacketSink>(&mut self, now: Instant, buf: &mut S) -> bool; // the same, appended (a Vec<u8>, or a driver's queue)
//!   pub fn handle_packet(&mut self, now: Instant, datagram: &[u8]);          // foreign/duplicate results ignored and counted
//!   pub fn poll_timeout(&self) -> Option<Instant>;
//!   pub fn handle_timeout(&mut self, now: Instant);
//!   pub fn poll_event(&mut self) -> Option<Event>;   // Event::Done | Event::Stalled { slots: Vec<u16>, waited: Duration }
//!   pub fn is_busy(&self) -> bool;                   // an operation is running (started, not Done, not aborted)
//!   pub fn is_done(&self) -> bool;                   // a finished result waits to be taken
//!   pub fn abort(&mut self);                         // drops the current operation (running or finished)
//!   pub fn take_i32(&mut self, out: &mut [i32]) -> Result<(), EngineError>;  // after Event::Done; NotDone, WrongType, LengthMismatch
//!   pub fn take_f32(&mut self, out: &mut [f32]) -> Result<(), EngineError>;
//!   // In place: the caller's buffer is the input (a block copied when first sent) and takes the results.
//!   pub fn start_i32_in_place(&mut self, now: Instant, data: &[i32]) -> Result<(), EngineError>;
//!   pub fn start_f32_in_place(&mut self, now: Instant, data: &[f32]) -> Result<(), EngineError>;
//!   pub fn poll_transmit_into<S: PacketSink>(&mut self, now: Instant, buf: &mut S, data: Output<'_>) -> bool; // appends, as poll_transmit_append
//!   pub fn handle_packet_into(&mut self, now: Instant, datagram: &[u8], out: Output<'_>); // Output::I32 | Output::F32, the operation's length
//!   pub fn finish_in_place(&mut self) -> Result<(), EngineError>; // after Event::Done, in place or out of place; NotDone, InPlaceMismatch
//!   pub fn input_i32(&self) -> Option<&[i32]>;   // input of the blocks copied so far (to restore the caller's buffer after a failure)
//!   pub fn input_f32(&self) -> Option<&[f32]>;
//!   // Out of place: packets are built from the caller's input (lent on every send call), results go to its output; nothing is copied.
//!   pub fn start_i32_out_of_place(&mut self, now: Instant, input: &[i32]) -> Result<(), EngineError>;
//!   pub fn start_f32_out_of_place(&mut self, now: Instant, input: &[f32]) -> Result<(), EngineError>;
//!   pub fn poll_transmit_from<S: PacketSink>(&mut self, now: Instant, buf: &mut S, input: Input<'_>) -> bool; // the operation's input; results through handle_packet_into
//!   pub fn stats(&self) -> &EngineStats; // packets_sent, retransmissions, early_retransmissions, results_received, results_ignored, bytes_sent, stalls
//!   pub fn next_seq(&self) -> u32;      // sequence continues across calls
//! }
//! ```
//!
//! # Packets of an operation
//! A tensor of N elements is cut into C = ceil(N/E) blocks (the last one
//! shorter). Every packet the engine ever sends has a global counter `c`
//! that continues across operations of either type; it is sent as
//! `seq = c mod 2^32` to slot `slot_base + c mod W`, set `(c / W) mod 2`.
//! (The counter is 64-bit internally so that the slot/set rotation stays
//! continuous when `seq` wraps; all workers derive the same sequence.)
//!
//! - i32: packet k carries block k (C packets).
//! - f32 (block fixed point, exponent one window ahead as SwitchML):
//!   L = min(W, C); packets k = 0..C+L; packet k carries the exponent of
//!   block k (if k < C, else `NO_EXPONENT`) and, if k >= L, block k-L
//!   quantized with the max exponent of block k-L, learned from the result
//!   of packet k-L. The first L packets carry no elements. The error bound
//!   of the result is derived in [`crate::quantize`].
//!
//! Gating: packet k leaves once the result of packet k-W is in (its window
//! position is free) and, for f32, the result of packet k-L is in. When a
//! packet's timer fires it is built again, byte-identical (what it is made
//! of, its block and that block's max exponent, changes only when its own
//! result arrives), and the timeout doubles up to the cap (it restarts at
//! the initial value for the position's next packet).
//!
//! Early retransmission: a round completes with its last contribution and
//! every worker's packets travel in order, so results come back in sending
//! order unless something was lost. When a result arrives for a packet at
//! least [`REORDER_THRESHOLD`] later than a packet still waiting that was
//! sent once (or for the operation's last packet, which nothing can
//! overtake), the waiting one is resent at once (its timeout not doubled):
//! a loss then costs about a round trip instead of a timeout. A worker
//! whose own packet did arrive resends it too; the switch drops or answers
//! the duplicate as any retransmission.
//!
//! Results are accepted when (msg_type, job_id, key, slot, set, seq) match a
//! packet still waiting, and elem_count (and, for f32, a valid exponent not
//! below this worker's own) fit it; everything else counts in `results_ignored`.
//!
//! If the oldest waiting packet has had no result for `stall_timeout`, one
//! [`Event::Stalled`] is emitted for it; the engine keeps retransmitting. A
//! later stall of another packet is reported again.

mod config;
mod error;
mod op;
mod timers;
mod window;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use packet_format::{MsgType, Packet, PacketSink, Repr};

pub use config::{
    EngineConfig, DEFAULT_MAX_RETRANSMIT_TIMEOUT, DEFAULT_RETRANSMIT_TIMEOUT, DEFAULT_STALL_TIMEOUT,
};
pub use error::EngineError;

use op::{Dtype, Identity, Op, Phase, Storage};
pub use op::{Input, Output};
use window::Window;

/// How many packets later than a waiting packet a result must be for the
/// waiting one to be resent at once instead of after its timeout (as TCP's
/// three duplicate acknowledgements): results come back in sending order
/// unless a packet or a result was lost.
pub const REORDER_THRESHOLD: u64 = 3;

/// Something the caller must hear about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Every result of the current operation is in; take it with
    /// [`Engine::take_i32`] or [`Engine::take_f32`].
    Done,
    /// A packet has waited `stall_timeout` for its result (the switch, a
    /// link or another worker is gone). The engine keeps retransmitting;
    /// the caller decides whether to [`Engine::abort`].
    Stalled {
        /// Absolute slots of all packets still waiting for results.
        slots: Vec<u16>,
        /// How long the oldest of them has waited.
        waited: Duration,
    },
}

/// Counters of one engine, over its whole life.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Datagrams handed out by `poll_transmit`, retransmissions included.
    pub packets_sent: u64,
    /// Of those, retransmissions.
    pub retransmissions: u64,
    /// Of those, sent before their timer fired because results of packets
    /// at least [`REORDER_THRESHOLD`] later were in (a loss, see
    /// the module docs).
    pub early_retransmissions: u64,
    /// Results accepted (one per packet).
    pub results_received: u64,
    /// Datagrams received that were not an awaited result: duplicates,
    /// other jobs, stale rounds, malformed bytes.
    pub results_ignored: u64,
    /// Bytes handed out by `poll_transmit`.
    pub bytes_sent: u64,
    /// `Event::Stalled` emitted.
    pub stalls: u64,
}

/// The worker slot engine of one rank (see the module docs).
#[derive(Debug)]
pub struct Engine {
    config: EngineConfig,
    /// Global counter of the first packet of the next operation.
    next_counter: u64,
    op: Op,
    window: Window,
    events: VecDeque<Event>,
    stats: EngineStats,
    /// Counter of the packet last reported in `Event::Stalled`.
    stall_reported: Option<u64>,
}

impl Engine {
    /// An idle engine; its sequence starts at 0.
    pub fn new(config: EngineConfig) -> Result<Engine, EngineError> {
        config.validate()?;
        Ok(Engine {
            window: Window::new(
                config.window,
                config.retransmit_timeout,
                config.max_retransmit_timeout,
            ),
            op: Op::new(config.world, config.elements_per_packet),
            config,
            next_counter: 0,
            events: VecDeque::new(),
            stats: EngineStats::default(),
            stall_reported: None,
        })
    }

    /// The configuration the engine was built with.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    fn window_size(&self) -> u64 {
        u64::from(self.config.window)
    }

    /// Starts an allreduce of i32 values (wrapping sum). A finished result
    /// not yet taken is discarded.
    pub fn start_i32(&mut self, now: Instant, data: &[i32]) -> Result<(), EngineError> {
        self.begin_i32(now, data, Storage::Owned)
    }

    /// Starts an allreduce of f32 values (block fixed point). Fails with
    /// [`EngineError::NonFinite`] naming the first NaN or infinity; then
    /// nothing starts, and a finished result not yet taken is discarded as
    /// by a successful start.
    pub fn start_f32(&mut self, now: Instant, data: &[f32]) -> Result<(), EngineError> {
        self.begin_f32(now, data, Storage::Owned)
    }

    /// [`Engine::start_i32`] for an operation on the caller's buffer: the
    /// engine copies each block when it first sends it, 64 KiB at a time
    /// (so the start makes no tensor-sized copy), results go straight into
    /// the buffer ([`Engine::handle_packet_into`]; no copy at the end), and
    /// packets come from [`Engine::poll_transmit_into`]. The engine keeps
    /// the input of every block it copied ([`Engine::input_i32`]) until the
    /// next start, so a caller can restore its buffer if the operation fails.
    pub fn start_i32_in_place(&mut self, now: Instant, data: &[i32]) -> Result<(), EngineError> {
        self.begin_i32(now, data, Storage::InPlace)
    }

    /// [`Engine::start_f32`] on the caller's buffer, as
    /// [`Engine::start_i32_in_place`]; the start reads the whole tensor once
    /// (exponents and finiteness) and copies nothing.
    pub fn start_f32_in_place(&mut self, now: Instant, data: &[f32]) -> Result<(), EngineError> {
        self.begin_f32(now, data, Storage::InPlace)
    }

    /// [`Engine::start_i32`] with input and output apart, both the
    /// caller's: packets are built from `input`, which the caller lends
    /// again (unchanged) on every [`Engine::poll_transmit_from`], and
    /// results go to the output given to [`Engine::handle_packet_into`].
    /// The engine copies nothing; the input stays as it was whatever
    /// happens, so there is nothing to restore after a failure.
    pub fn start_i32_out_of_place(
        &mut self,
        now: Instant,
        input: &[i32],
    ) -> Result<(), EngineError> {
        self.begin_i32(now, input, Storage::OutOfPlace)
    }

    /// [`Engine::start_f32`] out of place, as
    /// [`Engine::start_i32_out_of_place`]; the start reads the whole input
    /// once (exponents and finiteness).
    pub fn start_f32_out_of_place(
        &mut self,
        now: Instant,
        input: &[f32],
    ) -> Result<(), EngineError> {
        self.begin_f32(now, input, Storage::OutOfPlace)
    }

    fn begin_i32(
        &mut self,
        now: Instant,
        data: &[i32],
        storage: Storage,
    ) -> Result<(), EngineError> {
        self.check_idle()?;
        let base = self.next_counter;
        self.op.start_i32(data, base, self.window_size(), storage);
        self.began(now);
        Ok(())
    }

    fn begin_f32(
        &mut self,
        now: Instant,
        data: &[f32],
        storage: Storage,
    ) -> Result<(), EngineError> {
        self.check_idle()?;
        let base = self.next_counter;
        if let Err(index) = self.op.start_f32(data, base, self.window_size(), storage) {
            return Err(EngineError::NonFinite { index });
        }
        self.began(now);
        Ok(())
    }

    /// The input of the blocks copied so far (those sent, and up to 64 KiB
    /// more) by the operation started in place last (running, finished or
    /// aborted), if it was an i32 one: a prefix of the caller's buffer; the
    /// rest of the buffer was never written.
    pub fn input_i32(&self) -> Option<&[i32]> {
        (self.op.storage == Storage::InPlace && self.op.dtype == Dtype::I32)
            .then(|| self.op.values_i32())
    }

    /// As [`Engine::input_i32`], for an f32 operation.
    pub fn input_f32(&self) -> Option<&[f32]> {
        (self.op.storage == Storage::InPlace && self.op.dtype == Dtype::F32)
            .then(|| self.op.values_f32())
    }

    fn check_idle(&self) -> Result<(), EngineError> {
        if self.op.phase == Phase::Running {
            Err(EngineError::Busy)
        } else {
            Ok(())
        }
    }

    fn began(&mut self, now: Instant) {
        self.next_counter = self.op.base + self.op.packets as u64;
        self.window.begin(now);
        self.stall_reported = None;
        if self.op.phase == Phase::Done {
            self.events.push_back(Event::Done);
        }
    }

    /// Writes the next datagram to send into `buf` (cleared first): a due
    /// retransmission, else the next packet the gates allow. Returns false
    /// if there is nothing to send now.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>) -> bool {
        buf.clear();
        self.poll_transmit_append(now, buf)
    }

    /// [`Engine::poll_transmit`] appending to `buf` (which may hold earlier
    /// datagrams), so that a driver can build packets straight into its
    /// send queue. On false, `buf` is unchanged. For an operation started
    /// in place it only sends what needs no new block of the input; use
    /// [`Engine::poll_transmit_into`]. For one started out of place it
    /// sends nothing; use [`Engine::poll_transmit_from`].
    pub fn poll_transmit_append<S: PacketSink + ?Sized>(
        &mut self,
        now: Instant,
        buf: &mut S,
    ) -> bool {
        self.poll(now, buf, None)
    }

    /// [`Engine::poll_transmit_append`] for an operation started in place:
    /// `data` is the caller's buffer (the one results go to), from which a
    /// block is copied when its packet is first sent. Nothing is sent for
    /// an operation started otherwise, except what needs no input.
    pub fn poll_transmit_into<S: PacketSink + ?Sized>(
        &mut self,
        now: Instant,
        buf: &mut S,
        data: Output<'_>,
    ) -> bool {
        let input = (self.op.storage == Storage::InPlace).then(|| data.as_input());
        self.poll(now, buf, input)
    }

    /// [`Engine::poll_transmit_append`] for an operation started out of
    /// place: `input` is the one it was started with, unchanged (of
    /// another type or length, nothing is sent).
    pub fn poll_transmit_from<S: PacketSink + ?Sized>(
        &mut self,
        now: Instant,
        buf: &mut S,
        input: Input<'_>,
    ) -> bool {
        let input = (self.op.storage == Storage::OutOfPlace).then_some(input);
        self.poll(now, buf, input)
    }

    fn poll<S: PacketSink + ?Sized>(
        &mut self,
        now: Instant,
        buf: &mut S,
        input: Option<Input<'_>>,
    ) -> bool {
        if self.op.phase != Phase::Running || !self.op.can_read(input) {
            return false;
        }
        if let Some(counter) = self.window.next_retransmission(now) {
            self.build(counter, input, buf);
            self.stats.retransmissions += 1;
            return true;
        }
        let k = self.op.next_packet;
        if k >= self.op.packets {
            return false;
        }
        let counter = self.op.base + k as u64;
        if !self.window.is_free_for(counter) {
            return false;
        }
        if self.op.dtype == Dtype::F32
            && k >= self.op.lead
            && !self.window.has_result(counter - self.op.lead as u64)
        {
            return false;
        }
        if !self.op.copy_block(k, input) {
            // Only a missing or foreign buffer, never the operation's own:
            // blocks are copied in order, whole.
            return false;
        }
        self.window.occupy(counter, now);
        self.build(counter, input, buf);
        self.op.next_packet += 1;
        true
    }

    /// Appends packet `counter` of the running operation to `buf`.
    fn build<S: PacketSink + ?Sized>(
        &mut self,
        counter: u64,
        input: Option<Input<'_>>,
        buf: &mut S,
    ) {
        let id = Identity {
            job_id: self.config.job_id,
            key: self.config.key,
            rank: self.config.rank,
            slot_base: self.config.slot_base,
            window: self.window_size(),
        };
        let k = (counter - self.op.base) as usize;
        let len = self.op.build(k, counter, id, input, buf);
        self.count_sent(len);
    }

    fn count_sent(&mut self, len: usize) {
        self.stats.packets_sent += 1;
        self.stats.bytes_sent += len as u64;
    }

    /// Takes a datagram from the switch. Anything but an awaited result is
    /// ignored and counted.
    pub fn handle_packet(&mut self, now: Instant, datagram: &[u8]) {
        if !self.accept(now, datagram, None) {
            self.stats.results_ignored += 1;
        }
    }

    /// [`Engine::handle_packet`] for an operation started in place or out
    /// of place: a result is written into `out` (of the operation's type and length;
    /// otherwise the result is ignored and counted, as is any result handed
    /// to the wrong one of the two calls).
    pub fn handle_packet_into(&mut self, now: Instant, datagram: &[u8], out: Output<'_>) {
        if !self.accept(now, datagram, Some(out)) {
            self.stats.results_ignored += 1;
        }
    }

    fn accept(&mut self, now: Instant, datagram: &[u8], out: Option<Output<'_>>) -> bool {
        if self.op.phase != Phase::Running {
            return false;
        }
        let Ok(packet) = Packet::new_checked(datagram) else {
            return false;
        };
        let Ok(repr) = Repr::parse(&packet) else {
            return false;
        };
        if repr.msg_type != MsgType::Result
            || repr.job_id != self.config.job_id
            || repr.key != self.config.key
        {
            return false;
        }
        let position = usize::from(repr.slot.wrapping_sub(self.config.slot_base));
        let Some(counter) = self.window.waiting_at(position) else {
            return false;
        };
        let window = self.window_size();
        if counter as u32 != repr.seq || repr.set != ((counter / window) % 2 == 1) {
            return false;
        }
        let k = (counter - self.op.base) as usize;
        if !self.op.accept(k, &repr, &packet, out) {
            return false;
        }
        self.window.complete(position, now);
        self.stats.results_received += 1;
        while self.op.oldest < self.op.next_packet
            && self.window.has_result(self.op.base + self.op.oldest as u64)
        {
            self.op.oldest += 1;
        }
        let oldest = self.op.base + self.op.oldest as u64;
        if self.op.oldest < self.op.next_packet && counter > oldest {
            // The operation's last packet: no later result can come to
            // overtake the ones before it by the threshold.
            let last = self.op.base + self.op.packets as u64 - 1;
            let overtaken = if counter == last {
                Some(counter - 1)
            } else {
                counter.checked_sub(REORDER_THRESHOLD)
            };
            if let Some(overtaken) = overtaken.filter(|&o| o >= oldest) {
                self.stats.early_retransmissions += self.window.resend_overtaken(oldest, overtaken);
            }
        }
        if self.op.phase == Phase::Done {
            self.window.clear();
            self.events.push_back(Event::Done);
        }
        true
    }

    /// The oldest packet still waiting, and when it was first sent.
    fn oldest_waiting(&self) -> Option<(u64, Instant)> {
        if self.op.phase != Phase::Running || self.op.oldest >= self.op.next_packet {
            return None;
        }
        let counter = self.op.base + self.op.oldest as u64;
        self.window.first_sent(counter).map(|t| (counter, t))
    }

    /// When a stall is to be reported, if one is pending.
    fn stall_deadline(&self) -> Option<Instant> {
        let (counter, first_sent) = self.oldest_waiting()?;
        (self.stall_reported != Some(counter)).then(|| first_sent + self.config.stall_timeout)
    }

    /// The next instant at which [`Engine::handle_timeout`] has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.window.next_deadline(), self.stall_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Fires due retransmission timers (the packets then come out of
    /// `poll_transmit`) and reports a stall.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.op.phase != Phase::Running {
            return;
        }
        self.window.expire(now);
        if self
            .stall_deadline()
            .is_some_and(|deadline| deadline <= now)
        {
            if let Some((counter, first_sent)) = self.oldest_waiting() {
                self.stall_reported = Some(counter);
                self.stats.stalls += 1;
                self.events.push_back(Event::Stalled {
                    slots: self.window.waiting_slots(self.config.slot_base),
                    waited: now.saturating_duration_since(first_sent),
                });
            }
        }
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Whether an operation is running (started, not finished, not aborted).
    pub fn is_busy(&self) -> bool {
        self.op.phase == Phase::Running
    }

    /// Whether a finished result waits to be taken.
    pub fn is_done(&self) -> bool {
        self.op.phase == Phase::Done
    }

    /// Drops the current operation, running or finished. The sequence
    /// continues after all of its packets, so workers that abort the same
    /// operation stay in agreement; slots the switch still holds incomplete
    /// refuse newer rounds until the job's slots are reset (re-installed).
    pub fn abort(&mut self) {
        self.op.phase = Phase::Idle;
        self.window.clear();
        self.stall_reported = None;
        self.events.retain(|e| *e != Event::Done);
    }

    /// Copies the finished i32 result into `out` (as long as the input) and
    /// releases it.
    pub fn take_i32(&mut self, out: &mut [i32]) -> Result<(), EngineError> {
        self.check_take(Dtype::I32, out.len())?;
        out.copy_from_slice(self.op.values_i32());
        self.op.phase = Phase::Idle;
        Ok(())
    }

    /// Copies the finished f32 result into `out` (as long as the input) and
    /// releases it.
    pub fn take_f32(&mut self, out: &mut [f32]) -> Result<(), EngineError> {
        self.check_take(Dtype::F32, out.len())?;
        out.copy_from_slice(self.op.values_f32());
        self.op.phase = Phase::Idle;
        Ok(())
    }

    /// Ends a finished operation started in place or out of place: its
    /// result is already in the caller's buffer.
    pub fn finish_in_place(&mut self) -> Result<(), EngineError> {
        if self.op.phase != Phase::Done {
            return Err(EngineError::NotDone);
        }
        if self.op.storage == Storage::Owned {
            return Err(EngineError::InPlaceMismatch);
        }
        self.op.phase = Phase::Idle;
        Ok(())
    }

    fn check_take(&self, dtype: Dtype, got: usize) -> Result<(), EngineError> {
        if self.op.phase != Phase::Done {
            return Err(EngineError::NotDone);
        }
        if self.op.storage != Storage::Owned {
            return Err(EngineError::InPlaceMismatch);
        }
        if self.op.dtype != dtype {
            return Err(EngineError::WrongType);
        }
        if got != self.op.len() {
            return Err(EngineError::LengthMismatch {
                expected: self.op.len(),
                got,
            });
        }
        Ok(())
    }

    /// Counters since the engine was created.
    pub fn stats(&self) -> &EngineStats {
        &self.stats
    }

    /// The seq of the next operation's first packet.
    pub fn next_seq(&self) -> u32 {
        self.next_counter as u32
    }
}

#[cfg(test)]
mod tests;
