//! The extension module `ina_agent._native`: the host agent for Python.
//!
//! - `agent`: `Agent` (join, allreduce in place or into `out=`, async, stats, leave).
//! - `work`: `Work`, the handle of an asynchronous allreduce.
//! - `lent`: a NumPy array's memory lent to the agent's thread (the only
//!   `unsafe` of the crate).
//! - `errors`: the exception classes, one per agent error.
//!
//! The pure-Python part of the package (`ina_agent/`) re-exports these and
//! adds the PyTorch DDP communication hook.

mod agent;
mod errors;
mod lent;
mod work;

use host_agent::quantize;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// The per-element bound on |float32 result - exact sum| for `world`
/// workers whose inputs are all at most `max_abs` in magnitude and whose
/// exact sum at that element is `exact` (see the host agent's quantize
/// module for the derivation).
#[pyfunction]
#[pyo3(signature = (world, max_abs, exact = 0.0))]
fn float32_error_bound(world: u16, max_abs: f32, exact: f64) -> PyResult<f64> {
    if world == 0 || !max_abs.is_finite() {
        return Err(PyValueError::new_err(
            "world must be positive and max_abs finite",
        ));
    }
    let e_max = quantize::block_exponent(&[max_abs]);
    Ok(quantize::error_bound(world, e_max, exact))
}

#[pymodule]
fn _native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<agent::PyAgent>()?;
    module.add_class::<work::Work>()?;
    module.add_function(wrap_pyfunction!(float32_error_bound, module)?)?;
    module.add("__version__", env!("CARGO_PKG_VERSION"))?;
    module.add(
        "DEFAULT_CONTROL",
        format!("127.0.0.1:{}", packet_format::CONTROL_PORT),
    )?;
    errors::register(module)
}
