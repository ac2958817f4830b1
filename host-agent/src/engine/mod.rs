//! The worker's slot engine: a sans-IO state machine that turns a tensor into
//! contribution packets, matches results, retransmits on timeout and
//! assembles the sum. Time comes in as an argument; packets go out as bytes.
//!
//! CONTRACT (fixed; other modules are written against it):
//! ```ignore
//! pub struct EngineConfig {
//!     pub job_id: u16, pub key: u32, pub rank: u16, pub world: u16,
//!     pub slot_base: u16, pub window: u16, pub elements_per_packet: u16,
//!     pub retransmit_timeout: Duration,   // initial RTO per window position (default 2 ms)
//!     pub max_retransmit_timeout: Duration, // backoff cap (default 100 ms)
//!     pub stall_timeout: Duration,        // no result for this long -> Event::Stalled (default 5 s)
//! }
//! impl EngineConfig { pub fn from_params(p: &packet_format::control::JobParams, rank: u16) -> Self; }
//! impl Engine {
//!   pub fn new(config: EngineConfig) -> Result<Engine, EngineError>;
//!   pub fn start_i32(&mut self, now: Instant, data: &[i32]) -> Result<(), EngineError>;
//!   pub fn start_f32(&mut self, now: Instant, data: &[f32]) -> Result<(), EngineError>; // NonFinite { index }
//!   pub fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>) -> bool; // writes the next datagram into buf (cleared first)
//!   pub fn handle_packet(&mut self, now: Instant, datagram: &[u8]);          // foreign/duplicate results ignored and counted
//!   pub fn poll_timeout(&self) -> Option<Instant>;
//!   pub fn handle_timeout(&mut self, now: Instant);
//!   pub fn poll_event(&mut self) -> Option<Event>;   // Event::Done | Event::Stalled { slots: Vec<u16>, waited: Duration }
//!   pub fn is_busy(&self) -> bool;
//!   pub fn take_i32(&mut self, out: &mut [i32]) -> Result<(), EngineError>;  // after Event::Done
//!   pub fn take_f32(&mut self, out: &mut [f32]) -> Result<(), EngineError>;
//!   pub fn stats(&self) -> &EngineStats; // packets_sent, retransmissions, results_received, results_ignored, bytes_sent
//!   pub fn next_seq(&self) -> u32;      // sequence continues across calls
//! }
//! ```
