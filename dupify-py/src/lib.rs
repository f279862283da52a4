//! Python bindings for Dupify: conversions only, every piece of logic lives in the Rust crates.
//!
//! The native module `dupify._dupify` sits under the small pure-Python package `dupify`
//! (`python/dupify/`), which re-exports it and defines the `DupifyError` hierarchy.
//! Conversions live in `convert.rs`, error mapping in `error.rs`; heavy calls release the GIL.

mod catalog;
mod convert;
mod error;
mod extractor;
mod keys;
mod results;

use pyo3::prelude::*;

#[pymodule]
fn _dupify(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(extractor::device_report, m)?)?;
    m.add_function(wrap_pyfunction!(extractor::default_model_dir, m)?)?;
    m.add_function(wrap_pyfunction!(extractor::decode, m)?)?;
    m.add_function(wrap_pyfunction!(extractor::palette_distance, m)?)?;
    m.add_function(wrap_pyfunction!(extractor::delta_e2000, m)?)?;
    m.add_function(wrap_pyfunction!(extractor::shape_similarity, m)?)?;
    m.add_function(wrap_pyfunction!(keys::py_parse_key, m)?)?;
    m.add_function(wrap_pyfunction!(error::error_codes, m)?)?;
    m.add_class::<convert::Base64>()?;
    m.add_class::<extractor::PyExtractor>()?;
    m.add_class::<extractor::PyCancelToken>()?;
    m.add_class::<results::PyFeatures>()?;
    m.add_class::<results::PyColorReport>()?;
    m.add_class::<results::PyDominantColor>()?;
    m.add_class::<results::PySilhouette>()?;
    m.add_class::<results::PyBoundingBox>()?;
    m.add_class::<results::PyQualityScore>()?;
    m.add_class::<results::PyAttributeReport>()?;
    m.add_class::<results::PyAttributePrediction>()?;
    m.add_class::<results::PyLabelScore>()?;
    m.add_class::<catalog::PyNamespace>()?;
    m.add_class::<catalog::PyCatalog>()?;
    m.add_class::<catalog::PyProduct>()?;
    m.add_class::<catalog::PySearchHit>()?;
    m.add_class::<catalog::PyChannelScores>()?;
    m.add_class::<catalog::PyListPage>()?;
    m.add_class::<catalog::PyIndexReport>()?;
    m.add_class::<catalog::PyIngestReport>()?;
    m.add_class::<catalog::PyIngestFailure>()?;
    m.add_class::<keys::PyKeyStore>()?;
    m.add_class::<keys::PyLimits>()?;
    m.add_class::<keys::PyManualClock>()?;
    m.add_class::<keys::PyKeyRecord>()?;
    m.add_class::<keys::PyPrincipal>()?;
    m.add_class::<keys::PyCreatedKey>()?;
    m.add_class::<keys::PyRateDecision>()?;
    m.add_class::<keys::PyRateHeaders>()?;
    m.add_class::<keys::PyUsageCounts>()?;
    m.add_class::<keys::PyKeyUsage>()?;
    m.add_class::<keys::PyParsedKey>()?;
    Ok(())
}
