//! `Agent`: a worker's membership of one job, as a Python class.

use std::net::{SocketAddr, SocketAddrV4, ToSocketAddrs};
use std::time::Duration;

use host_agent::{Agent, AgentHandle, AgentStats, JoinOptions};
use numpy::{PyArrayDyn, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::{self, AgentEnded};
use crate::lent::{lend_pair, LentArray};
use crate::work::{PendingArray, Work};

/// Joins `job` as `rank` of `world` workers on the switch whose control
/// plane is at `control` ("host:port", None for `DEFAULT_CONTROL`) and waits until every rank has
/// joined. Durations are in seconds; None keeps the library's default.
/// `window` and `elements_per_packet` must agree on every rank.
///
/// Allreduces run one after another on the agent's own thread, in the
/// order they were submitted; every rank must submit the same sequence
/// (same lengths and dtypes). Use it as a context manager, or call
/// `leave()`, so that the switch frees the job when every rank is done.
#[pyclass(module = "ina_agent", name = "Agent")]
#[derive(Debug)]
pub struct PyAgent {
    /// `None` once the agent has left.
    handle: Option<AgentHandle>,
    job: String,
}

#[pymethods]
impl PyAgent {
    #[new]
    #[pyo3(signature = (
        job, rank, world, *,
        control = None,
        window = None,
        elements_per_packet = None,
        join_timeout = None,
        connect_timeout = None,
        retransmit_timeout = None,
        stall_timeout = None,
        switch_data = None,
        bind = None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        job: String,
        rank: u16,
        world: u16,
        control: Option<&str>,
        window: Option<u16>,
        elements_per_packet: Option<u16>,
        join_timeout: Option<f64>,
        connect_timeout: Option<f64>,
        retransmit_timeout: Option<f64>,
        stall_timeout: Option<f64>,
        switch_data: Option<&str>,
        bind: Option<&str>,
    ) -> PyResult<PyAgent> {
        let mut options = JoinOptions::new(job.clone(), rank, world);
        if let Some(control) = control {
            options.control = resolve(control)?;
        }
        if let Some(w) = window {
            options.window = w;
        }
        if let Some(e) = elements_per_packet {
            options.elements_per_packet = e;
        }
        set_duration(&mut options.join_timeout, join_timeout, "join_timeout")?;
        set_duration(
            &mut options.connect_timeout,
            connect_timeout,
            "connect_timeout",
        )?;
        set_duration(
            &mut options.retransmit_timeout,
            retransmit_timeout,
            "retransmit_timeout",
        )?;
        set_duration(&mut options.stall_timeout, stall_timeout, "stall_timeout")?;
        options.switch_data = switch_data.map(resolve_v4).transpose()?;
        options.bind = bind.map(resolve_v4).transpose()?;
        // Joining waits for the other ranks: let this process's other threads run.
        let agent = py.detach(|| Agent::join(options)).map_err(errors::to_py)?;
        Ok(PyAgent {
            handle: Some(agent.spawn()),
            job,
        })
    }

    /// Sums `array` (numpy float32 or int32, C-contiguous, any shape) over
    /// all workers, in place. int32 wraps; float32 is block fixed point,
    /// identical on every worker and within `float32_error_bound` of the exact sum.
    /// If it fails (the exception says why), the array holds its input again.
    ///
    /// With `out` (an array of the same dtype and number of elements whose
    /// memory does not overlap `array`'s), the sum goes to `out` and `array`
    /// is only read: the agent keeps no copy of it, the fastest form. If it
    /// fails, `out` holds some of the sum.
    #[pyo3(signature = (array, out = None))]
    fn allreduce(
        &self,
        py: Python<'_>,
        array: &Bound<'_, PyAny>,
        out: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let mut work = self.allreduce_async(array, out)?;
        work.wait(py, None)
    }

    /// Starts the same allreduce and returns a `Work` at once; the arrays
    /// are read-only until `Work.wait()` returns, and the one being written
    /// (`out`, or `array` without it) must not be read until then.
    #[pyo3(signature = (array, out = None))]
    fn allreduce_async(
        &self,
        array: &Bound<'_, PyAny>,
        out: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Work> {
        let handle = self.handle()?;
        let elements = element_count(array)?;
        let out = out.filter(|o| !o.is(array));
        let pending = match out {
            None => {
                if let Ok(a) = array.cast::<PyArrayDyn<f32>>() {
                    PendingArray::F32(handle.allreduce_f32(LentArray::lend(a)?))
                } else if let Ok(a) = array.cast::<PyArrayDyn<i32>>() {
                    PendingArray::I32(handle.allreduce_i32(LentArray::lend(a)?))
                } else {
                    return Err(unsupported_dtype(array));
                }
            }
            Some(out) => {
                let out_elements = element_count(out)?;
                if out_elements != elements {
                    return Err(PyValueError::new_err(format!(
                        "out holds {out_elements} elements, the array {elements}"
                    )));
                }
                let f32_in = array.cast::<PyArrayDyn<f32>>();
                let i32_in = array.cast::<PyArrayDyn<i32>>();
                if f32_in.is_err() && i32_in.is_err() {
                    return Err(unsupported_dtype(array));
                }
                if let (Ok(a), Ok(o)) = (f32_in, out.cast::<PyArrayDyn<f32>>()) {
                    let (input, output) = lend_pair(a, o)?;
                    PendingArray::F32Into(handle.allreduce_f32_into(input, output))
                } else if let (Ok(a), Ok(o)) = (i32_in, out.cast::<PyArrayDyn<i32>>()) {
                    let (input, output) = lend_pair(a, o)?;
                    PendingArray::I32Into(handle.allreduce_i32_into(input, output))
                } else {
                    return Err(PyTypeError::new_err(format!(
                        "out has dtype {}, the array {}: they must be the same",
                        dtype_name(out),
                        dtype_name(array)
                    )));
                }
            }
        };
        let mut arrays = vec![array.clone().unbind()];
        arrays.extend(out.map(|o| o.clone().unbind()));
        Ok(Work::new(pending, arrays, elements))
    }

    /// The agent's counters, once the allreduces submitted before are done.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let pending = self.handle()?.stats();
        let stats = py.detach(|| pending.wait()).map_err(errors::to_py)?;
        stats_dict(py, &stats)
    }

    /// Waits for the submitted allreduces, leaves the job (the switch keeps
    /// it until every rank has left) and returns the final counters.
    fn leave<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let handle = self.handle.take().ok_or_else(left)?;
        let stats = py.detach(|| handle.leave()).map_err(errors::to_py)?;
        stats_dict(py, &stats)
    }

    /// This worker's rank.
    #[getter]
    fn rank(&self) -> PyResult<u16> {
        Ok(self.handle()?.rank())
    }

    /// Number of workers in the job.
    #[getter]
    fn world(&self) -> PyResult<u16> {
        Ok(self.handle()?.params().world)
    }

    /// The job's name.
    #[getter]
    fn job(&self) -> &str {
        &self.job
    }

    /// The job's parameters as the switch assigned them.
    #[getter]
    fn params<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let p = self.handle()?.params();
        let d = PyDict::new(py);
        d.set_item("job_id", p.job_id)?;
        d.set_item("world", p.world)?;
        d.set_item("slot_base", p.slot_base)?;
        d.set_item("window", p.window)?;
        d.set_item("elements_per_packet", p.elements_per_packet)?;
        d.set_item("switch_data_addr", p.switch_data_addr.to_string())?;
        // None when results come by unicast.
        d.set_item("result_group", p.result_group.map(|g| g.to_string()))?;
        Ok(d)
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// Leaves the job; an error inside the block is not masked.
    #[pyo3(signature = (*_exc))]
    fn __exit__(&mut self, py: Python<'_>, _exc: &Bound<'_, PyAny>) -> PyResult<bool> {
        if self.handle.is_some() {
            self.leave(py)?;
        }
        Ok(false)
    }

    fn __repr__(&self) -> String {
        match &self.handle {
            Some(h) => format!(
                "<ina_agent.Agent job={:?} rank {} of {}>",
                self.job,
                h.rank(),
                h.params().world
            ),
            None => format!("<ina_agent.Agent job={:?}, left>", self.job),
        }
    }
}

impl PyAgent {
    fn handle(&self) -> PyResult<&AgentHandle> {
        self.handle.as_ref().ok_or_else(left)
    }
}

fn left() -> PyErr {
    AgentEnded::new_err("the agent has left its job")
}

fn set_duration(field: &mut Duration, seconds: Option<f64>, name: &str) -> PyResult<()> {
    if let Some(s) = seconds {
        *field = Duration::try_from_secs_f64(s)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| PyValueError::new_err(format!("{name} must be positive, got {s}")))?;
    }
    Ok(())
}

/// An IPv4 socket address from "host:port".
fn resolve(addr: &str) -> PyResult<SocketAddr> {
    resolve_v4(addr).map(SocketAddr::V4)
}

fn resolve_v4(addr: &str) -> PyResult<SocketAddrV4> {
    let found = addr
        .to_socket_addrs()
        .map_err(|e| PyValueError::new_err(format!("address {addr:?}: {e}")))?
        .find_map(|a| match a {
            SocketAddr::V4(v4) => Some(v4),
            SocketAddr::V6(_) => None,
        });
    found.ok_or_else(|| PyValueError::new_err(format!("address {addr:?} has no IPv4 form")))
}

fn stats_dict<'py>(py: Python<'py>, s: &AgentStats) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("allreduces", s.allreduces)?;
    d.set_item("elements", s.elements)?;
    d.set_item("busy_seconds", s.busy.as_secs_f64())?;
    let e = &s.engine;
    d.set_item("packets_sent", e.packets_sent)?;
    d.set_item("retransmissions", e.retransmissions)?;
    d.set_item("early_retransmissions", e.early_retransmissions)?;
    d.set_item("results_received", e.results_received)?;
    d.set_item("results_ignored", e.results_ignored)?;
    d.set_item("bytes_sent", e.bytes_sent)?;
    d.set_item("stalls", e.stalls)?;
    let t = &s.transport;
    d.set_item("datagrams_sent", t.datagrams_sent)?;
    d.set_item("datagrams_received", t.datagrams_received)?;
    d.set_item("bytes_received", t.bytes_received)?;
    d.set_item("send_calls", t.send_calls)?;
    d.set_item("recv_calls", t.recv_calls)?;
    d.set_item("group_datagrams_received", t.group_datagrams_received)?;
    d.set_item("gso_messages", t.gso_messages)?;
    d.set_item("refused", t.refused)?;
    d.set_item("send_blocked", t.send_blocked)?;
    Ok(d)
}

/// The number of elements of a numpy array, or a TypeError for anything else.
fn element_count(array: &Bound<'_, PyAny>) -> PyResult<usize> {
    let array = array.cast::<PyUntypedArray>().map_err(|_| {
        PyTypeError::new_err(format!(
            "expected a numpy.ndarray, got {}",
            array
                .get_type()
                .name()
                .map_or("?".into(), |n| n.to_string())
        ))
    })?;
    Ok(array.len())
}

fn unsupported_dtype(array: &Bound<'_, PyAny>) -> PyErr {
    PyTypeError::new_err(format!(
        "dtype {} is not supported: use float32 or int32",
        dtype_name(array)
    ))
}

/// An array's dtype as numpy prints it ("?" if it has none).
fn dtype_name(array: &Bound<'_, PyAny>) -> String {
    array
        .getattr("dtype")
        .and_then(|d| d.str())
        .map_or("?".into(), |d| d.to_string())
}
