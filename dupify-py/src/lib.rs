//! Python bindings for Dupify: conversions only, every piece of logic lives in the Rust crates.
use pyo3::prelude::*;

/// What LibTorch sees in this process, as a JSON object string.
#[pyfunction]
fn device_report() -> PyResult<String> {
    serde_json::to_string(&dupify_core::device_report())
        .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(e.to_string()))
}

#[pymodule]
fn _dupify(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(device_report, m)?)?;
    Ok(())
}
