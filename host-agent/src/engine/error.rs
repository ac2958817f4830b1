//! Errors of the slot engine's API.

/// Why an engine call was refused. None of them changes the engine's state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// An allreduce is already in progress.
    #[error("an allreduce is already in progress")]
    Busy,
    /// There is no finished result to take (none started, still running,
    /// already taken or aborted).
    #[error("no finished allreduce result to take")]
    NotDone,
    /// `take_*` after an in-place or out-of-place start, or
    /// `finish_in_place` after a plain one.
    #[error("the result is taken with take_* after start_*, with finish_in_place after start_*_in_place or start_*_out_of_place")]
    InPlaceMismatch,
    /// The finished result has the other element type than the one asked for.
    #[error("the finished allreduce is of another element type")]
    WrongType,
    /// The input holds NaN or an infinity, which block fixed point cannot carry.
    #[error("non-finite value at index {index}")]
    NonFinite {
        /// Index of the first non-finite element.
        index: usize,
    },
    /// The output buffer's length differs from the input's.
    #[error("output holds {got} elements, the allreduce produced {expected}")]
    LengthMismatch {
        /// Elements of the allreduce.
        expected: usize,
        /// Elements of the buffer passed in.
        got: usize,
    },
    /// The configuration is unusable.
    #[error("invalid engine configuration: {0}")]
    InvalidConfig(String),
}
