//! Whole-system test support: the deterministic simulator, and helpers
//! for tests on emulated clusters ([`netns`]).
//!
//! [`sim::Sim`] connects n worker engines and one switch core in memory,
//! with a simulated clock and seeded faults on every link, so that a whole
//! allreduce under loss, duplication and reordering runs in milliseconds and
//! replays exactly from its seed.
//!
//! [`procs`] runs the real binaries on loopback for the system tests;
//! [`pcapfile`] reads the switch's captures; [`jobs`] runs jobs of
//! in-process agents with checked results; [`python`] builds the Python
//! package and runs its test scripts.
#![deny(unsafe_code)]

pub mod jobs;
pub mod link;
pub mod netns;
pub mod pcapfile;
pub mod procs;
pub mod python;
pub mod sim;

pub use link::LinkFaults;
pub use sim::{Sim, SimConfig, SimError, SimStats};
