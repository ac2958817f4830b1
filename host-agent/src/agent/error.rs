//! Errors of the allreduce API.

use std::net::SocketAddr;
use std::time::Duration;

use packet_format::control::ControlError;

use crate::control_client::ControlClientError;
use crate::engine::EngineError;

/// Why joining or an allreduce failed.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The switch's control plane could not be reached (nothing listens,
    /// no route, or the connection timed out).
    #[error("switch unreachable at {addr}: {source}")]
    SwitchUnreachable {
        /// The control address tried.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The switch refused the join (rank taken, parameters differ, pool exhausted...).
    #[error("join rejected: {0}")]
    JoinRejected(ControlError),
    /// Not every rank joined within the join timeout.
    #[error("not every rank joined within {waited:?}")]
    JoinTimeout {
        /// How long this worker waited.
        waited: Duration,
    },
    /// Results stopped arriving: some rank did not contribute to these slots.
    #[error("no result for {waited:?} on slots {slots:?}; ranks that did not contribute: {}",
        if missing_ranks.is_empty() { "unknown".to_string() } else { format!("{missing_ranks:?}") })]
    PeerTimeout {
        /// Slots of the packets still waiting.
        slots: Vec<u16>,
        /// Ranks the switch reports missing on those slots (empty if it could not say).
        missing_ranks: Vec<u16>,
        /// How long the oldest packet waited.
        waited: Duration,
    },
    /// The switch ended the job (a worker left or went silent, or the
    /// switch closed the control connection).
    #[error("job failed: {reason} (ranks {ranks:?})")]
    JobFailed {
        /// Why, as the switch put it.
        reason: String,
        /// Ranks at fault, where known.
        ranks: Vec<u16>,
    },
    /// The input holds NaN or an infinity (nothing was sent; the agent stays usable).
    #[error("non-finite value at index {index}")]
    NonFinite {
        /// Index of the first non-finite element.
        index: usize,
    },
    /// An out-of-place allreduce's buffers differ in length (nothing was
    /// sent; the agent stays usable).
    #[error("input holds {input} elements, output {output}")]
    LengthMismatch {
        /// Elements of the input.
        input: usize,
        /// Elements of the output.
        output: usize,
    },
    /// The options cannot work (e.g. an IPv6 address, a zero timeout).
    #[error("invalid options: {0}")]
    InvalidOptions(String),
    /// The switch answered outside the protocol.
    #[error("control protocol: {0}")]
    Protocol(String),
    /// The engine refused a call (a bug in the caller of the engine).
    #[error("engine: {0}")]
    Engine(EngineError),
    /// The agent's own state cannot go on (a bug, reported instead of
    /// waiting forever); the job ends for this agent.
    #[error("internal error: {0}")]
    Internal(String),
    /// An earlier error ended this agent's job; join again.
    #[error("the agent's job has ended: {0}")]
    Ended(String),
    /// A socket operation failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

impl AgentError {
    /// Whether the agent can still be used after this error.
    pub fn is_recoverable(&self) -> bool {
        matches!(
            self,
            AgentError::NonFinite { .. } | AgentError::LengthMismatch { .. }
        )
    }
}

impl From<ControlClientError> for AgentError {
    fn from(e: ControlClientError) -> Self {
        match e {
            ControlClientError::Connect { addr, source } => {
                AgentError::SwitchUnreachable { addr, source }
            }
            ControlClientError::Io(e) => AgentError::Io(e),
            ControlClientError::Closed => AgentError::JobFailed {
                reason: "the switch closed the control connection".into(),
                ranks: Vec::new(),
            },
            ControlClientError::Protocol(m) => AgentError::Protocol(m),
        }
    }
}

impl From<EngineError> for AgentError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::NonFinite { index } => AgentError::NonFinite { index },
            EngineError::InvalidConfig(m) => AgentError::InvalidOptions(m),
            other => AgentError::Engine(other),
        }
    }
}
