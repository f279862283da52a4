//! Python bindings for Dupify: conversions only, every piece of logic lives in the Rust crates.
use pyo3::prelude::*;

/// What LibTorch sees in this process, as a dict-like JSON string.
#[pyfunction]
fn device_report() -> String {
    serde_json_string(&dupify_core::device_report())
}

fn serde_json_string(r: &dupify_core::DeviceReport) -> String {
    format!(
        "{{\"cuda_available\":{},\"cuda_device_count\":{},\"auto_device\":\"{}\"}}",
        r.cuda_available, r.cuda_device_count, r.auto_device
    )
}

#[pymodule]
fn _dupify(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(device_report, m)?)?;
    Ok(())
}
