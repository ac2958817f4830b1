//! `Work`: an allreduce submitted with `Agent.allreduce_async`, to wait for.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use host_agent::{AgentError, Pending};
use pyo3::exceptions::{PyRuntimeError, PyTimeoutError};
use pyo3::prelude::*;

use crate::errors;
use crate::lent::{give_back, LentArray};

/// How long a wait blocks before looking for Ctrl-C (KeyboardInterrupt).
const SIGNAL_CHECK: Duration = Duration::from_millis(100);

/// The agent's promise for the lent arrays of one allreduce.
#[derive(Debug)]
pub enum PendingArray {
    F32(Pending<LentArray<f32>>),
    I32(Pending<LentArray<i32>>),
    /// Out of place: the input and the output.
    F32Into(Pending<(LentArray<f32>, LentArray<f32>)>),
    I32Into(Pending<(LentArray<i32>, LentArray<i32>)>),
}

impl PendingArray {
    fn wait_timeout(&mut self, timeout: Duration) -> bool {
        match self {
            PendingArray::F32(p) => p.wait_timeout(timeout),
            PendingArray::I32(p) => p.wait_timeout(timeout),
            PendingArray::F32Into(p) => p.wait_timeout(timeout),
            PendingArray::I32Into(p) => p.wait_timeout(timeout),
        }
    }

    fn is_ready(&mut self) -> bool {
        match self {
            PendingArray::F32(p) => p.is_ready(),
            PendingArray::I32(p) => p.is_ready(),
            PendingArray::F32Into(p) => p.is_ready(),
            PendingArray::I32Into(p) => p.is_ready(),
        }
    }

    /// The outcome; the lent memory is released here.
    fn outcome(self) -> Result<(), AgentError> {
        match self {
            PendingArray::F32(p) => p.wait().map(drop),
            PendingArray::I32(p) => p.wait().map(drop),
            PendingArray::F32Into(p) => p.wait().map(drop),
            PendingArray::I32Into(p) => p.wait().map(drop),
        }
    }
}

#[derive(Debug)]
enum State {
    Running {
        pending: PendingArray,
        /// The lent arrays, to make writeable again.
        arrays: Vec<Py<PyAny>>,
    },
    /// Done; the error (if any) is raised by every `wait`.
    Finished(Option<PyErr>),
}

/// An allreduce in progress. `wait()` returns once the array (or `out`)
/// holds the sum (or raises the agent's error); until then the arrays are
/// read-only and the one being written must not be read.
#[pyclass(module = "ina_agent", name = "Work")]
#[derive(Debug)]
pub struct Work {
    /// A mutex only to make the class shareable between threads; `&mut self`
    /// methods already serialize access, so it is never contended.
    state: Mutex<State>,
    elements: usize,
}

impl Work {
    pub fn new(pending: PendingArray, arrays: Vec<Py<PyAny>>, elements: usize) -> Work {
        Work {
            state: Mutex::new(State::Running { pending, arrays }),
            elements,
        }
    }

    fn state(&mut self) -> &mut State {
        self.state
            .get_mut()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Moves a completed operation to `Finished`, giving the arrays back.
    fn finish(&mut self, py: Python<'_>) {
        let state = self.state();
        let State::Running { .. } = state else { return };
        let State::Running { pending, arrays } = std::mem::replace(state, State::Finished(None))
        else {
            unreachable!("checked above")
        };
        let mut error = pending.outcome().err().map(errors::to_py);
        for array in arrays {
            if let Err(e) = give_back(array.bind(py)) {
                error.get_or_insert(e);
            }
        }
        *self.state() = State::Finished(error);
    }

    /// Blocks (without holding the interpreter) until done or `deadline`.
    fn block(&mut self, py: Python<'_>, deadline: Option<Instant>) -> PyResult<bool> {
        loop {
            let State::Running { pending, .. } = self.state() else {
                return Ok(true);
            };
            let slice = deadline.map_or(SIGNAL_CHECK, |d| {
                d.saturating_duration_since(Instant::now())
                    .min(SIGNAL_CHECK)
            });
            if py.detach(|| pending.wait_timeout(slice)) {
                self.finish(py);
                return Ok(true);
            }
            py.check_signals()?;
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(false);
            }
        }
    }
}

#[pymethods]
impl Work {
    /// Waits until the array (or `out`) holds the result; raises the agent's error if
    /// the allreduce failed, TimeoutError if `timeout` seconds pass first
    /// (the work then still runs; wait again).
    #[pyo3(signature = (timeout=None))]
    pub fn wait(&mut self, py: Python<'_>, timeout: Option<f64>) -> PyResult<()> {
        let deadline = timeout
            .map(|t| Duration::try_from_secs_f64(t).map(|d| Instant::now() + d))
            .transpose()
            .map_err(|e| pyo3::exceptions::PyValueError::new_err(format!("timeout: {e}")))?;
        if !self.block(py, deadline)? {
            return Err(PyTimeoutError::new_err(format!(
                "allreduce of {} elements not done within {:.3} s",
                self.elements,
                timeout.unwrap_or_default()
            )));
        }
        match self.state() {
            State::Finished(None) => Ok(()),
            State::Finished(Some(e)) => Err(e.clone_ref(py)),
            State::Running { .. } => Err(PyRuntimeError::new_err("work still running")),
        }
    }

    /// Whether the work has finished (successfully or not); never blocks.
    fn is_completed(&mut self, py: Python<'_>) -> bool {
        if let State::Running { pending, .. } = self.state() {
            if !pending.is_ready() {
                return false;
            }
            self.finish(py);
        }
        true
    }

    fn __repr__(&mut self, py: Python<'_>) -> String {
        let state = if self.is_completed(py) {
            match self.state() {
                State::Finished(Some(_)) => "failed",
                _ => "done",
            }
        } else {
            "running"
        };
        format!("<ina_agent.Work {} elements, {state}>", self.elements)
    }
}

impl Drop for Work {
    /// A work dropped before it finished still owns read-only arrays: wait
    /// for the agent (it never needs the interpreter, so this cannot
    /// deadlock) and make the array writeable again.
    fn drop(&mut self) {
        if let State::Running { .. } = self.state() {
            Python::attach(|py| {
                if let State::Running { pending, .. } = self.state() {
                    py.detach(|| while !pending.wait_timeout(SIGNAL_CHECK) {});
                }
                self.finish(py);
            });
        }
    }
}
