//! The one interface between the job control plane and a switch that
//! aggregates: the emulator's own core, a BMv2 `simple_switch` running the
//! v1model twin, or (as a generated script) a Tofino.
//!
//! CONTRACT (fixed; other modules are written against it):
//! the control plane decides joins, leases and expiry, then calls
//! `install_job` once every rank has joined and `remove_job` when the job
//! ends or expires. Implementations only translate.
//!
//! The provided methods [`Dataplane::activity`] and [`Dataplane::counters`]
//! let a target that can see its registers report liveness and counters
//! (for silence expiry and `status`); targets that cannot keep the defaults,
//! and then jobs on them expire only by disconnect.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::core::{JobSpec, SlotView};

/// A switch that the control plane can program.
pub trait Dataplane {
    /// Registers a job: admission entries for each rank, result multicast,
    /// and a reset of the leased slots' registers.
    fn install_job(&mut self, spec: &JobSpec) -> Result<(), DataplaneError>;
    /// Removes a job's entries; its slots may then be leased again.
    fn remove_job(&mut self, job: u16) -> Result<(), DataplaneError>;
    /// What the target knows of an installed job's liveness; `None` if it
    /// cannot tell (then the job is never expired for silence).
    fn activity(&self, _job: u16) -> Option<JobActivity> {
        None
    }
    /// Switch-wide counters, if the target keeps them.
    fn counters(&self) -> Option<CounterSet> {
        None
    }
}

/// Liveness and progress of one installed job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobActivity {
    /// Per rank, when a packet with the rank's source address and the job's
    /// key last arrived (`None`: never).
    pub last_heard: Vec<Option<Instant>>,
    /// Rounds started and not completed.
    pub incomplete: Vec<SlotView>,
    /// The job's counters.
    pub counters: CounterSet,
}

/// Named counters, with drops per reason kept apart so that tools can sum them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CounterSet {
    /// Everything that is not a drop (packets, bytes, results...).
    pub totals: BTreeMap<String, u64>,
    /// Drops, by snake_case reason name.
    pub drops: BTreeMap<String, u64>,
}

/// Why a dataplane refused or failed a change.
#[derive(Debug, thiserror::Error)]
pub enum DataplaneError {
    /// The job description is invalid for this target (e.g. too many workers).
    #[error("job rejected by the dataplane: {0}")]
    Rejected(String),
    /// The target could not be reached or answered with an error.
    #[error("dataplane target failed: {0}")]
    Target(String),
}
