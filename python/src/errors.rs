//! The Python exceptions of the package: one class per way an allreduce can
//! fail, all under `InaError`, each carrying the Rust error's message.

use host_agent::AgentError;
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;

create_exception!(
    ina_agent,
    InaError,
    PyException,
    "Base class of every error of the host agent."
);
create_exception!(
    ina_agent,
    SwitchUnreachable,
    InaError,
    "The switch's control plane could not be reached."
);
create_exception!(
    ina_agent,
    JoinRejected,
    InaError,
    "The switch refused the join (rank taken, parameters differ, no free slots...)."
);
create_exception!(
    ina_agent,
    JoinTimeout,
    InaError,
    "Not every rank joined within the join timeout."
);
create_exception!(
    ina_agent,
    PeerTimeout,
    InaError,
    "Results stopped arriving: some rank did not contribute; the message names it if the switch knows."
);
create_exception!(
    ina_agent,
    JobFailed,
    InaError,
    "The switch ended the job (a worker left, died or went silent)."
);
create_exception!(
    ina_agent,
    NonFiniteError,
    InaError,
    "The input holds NaN or an infinity; nothing was sent and the agent stays usable."
);
create_exception!(
    ina_agent,
    AgentEnded,
    InaError,
    "The agent left its job or an earlier error ended it; join again."
);

/// The Python exception for an agent error; its message is the Rust one.
pub fn to_py(error: AgentError) -> PyErr {
    let message = error.to_string();
    match error {
        AgentError::SwitchUnreachable { .. } => SwitchUnreachable::new_err(message),
        AgentError::JoinRejected(_) => JoinRejected::new_err(message),
        AgentError::JoinTimeout { .. } => JoinTimeout::new_err(message),
        AgentError::PeerTimeout { .. } => PeerTimeout::new_err(message),
        AgentError::JobFailed { .. } => JobFailed::new_err(message),
        AgentError::NonFinite { .. } => NonFiniteError::new_err(message),
        AgentError::Ended(_) => AgentEnded::new_err(message),
        AgentError::InvalidOptions(_) | AgentError::LengthMismatch { .. } => {
            PyValueError::new_err(message)
        }
        AgentError::Protocol(_)
        | AgentError::Engine(_)
        | AgentError::Internal(_)
        | AgentError::Io(_) => InaError::new_err(message),
    }
}

/// Adds the exception classes to the module.
pub fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = module.py();
    module.add("InaError", py.get_type::<InaError>())?;
    module.add("SwitchUnreachable", py.get_type::<SwitchUnreachable>())?;
    module.add("JoinRejected", py.get_type::<JoinRejected>())?;
    module.add("JoinTimeout", py.get_type::<JoinTimeout>())?;
    module.add("PeerTimeout", py.get_type::<PeerTimeout>())?;
    module.add("JobFailed", py.get_type::<JobFailed>())?;
    module.add("NonFiniteError", py.get_type::<NonFiniteError>())?;
    module.add("AgentEnded", py.get_type::<AgentEnded>())?;
    Ok(())
}
