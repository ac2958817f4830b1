//! The one interface between the job control plane and a switch that
//! aggregates: the emulator's own core, a BMv2 `simple_switch` running the
//! v1model twin, or (as a generated script) a Tofino.
//!
//! CONTRACT (fixed; other modules are written against it):
//! the control plane decides joins, leases and expiry, then calls
//! `install_job` once every rank has joined and `remove_job` when the job
//! ends or expires. Implementations only translate.

use crate::core::JobSpec;

/// A switch that the control plane can program.
pub trait Dataplane {
    /// Registers a job: admission entries for each rank, result multicast,
    /// and a reset of the leased slots' registers.
    fn install_job(&mut self, spec: &JobSpec) -> Result<(), DataplaneError>;
    /// Removes a job's entries; its slots may then be leased again.
    fn remove_job(&mut self, job: u16) -> Result<(), DataplaneError>;
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
