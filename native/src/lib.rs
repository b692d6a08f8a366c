//! crosscheck's optional native core: the rules and the per-partition engine of
//! `streams/engine` in Rust, as the Python extension module `streams._native`.
//!
//! The Python modules stay the reference: this is the same processing model, function for
//! function (`engine.rs` mirrors `streams/engine/partition.py`, `catalog.rs`, `triggers.rs`
//! and `view.rs` mirror `streams/rules`), and the test suite runs against both (see
//! `streams/native.py`). Orders are held as `NativeOrder` objects, encoded byte for byte as
//! msgspec encodes `streams.engine.state.OrderState` (state format 2).

use pyo3::prelude::*;

mod catalog;
mod due;
mod engine;
mod host;
mod model;
mod msgpack;
mod overlay;
mod partition;
mod record;
mod state;
mod triggers;
mod view;
mod watermark;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<engine::PartitionEngine>()?;
    m.add_class::<engine::NativeOrder>()?;
    m.add_class::<engine::NativeEvent>()?;
    m.add_class::<overlay::OrderOverlay>()?;
    m.add_class::<due::DueBuffer>()?;
    m.add_function(wrap_pyfunction!(due::py_due_key, m)?)?;
    m.add_function(wrap_pyfunction!(engine::decode, m)?)?;
    m.add_function(wrap_pyfunction!(engine::encode, m)?)?;
    m.add_function(wrap_pyfunction!(engine::read_record, m)?)?;
    m.add_function(wrap_pyfunction!(partition::partition_for, m)?)?;
    Ok(())
}
