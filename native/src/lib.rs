//! crosscheck's optional native core: the rules and the per-partition engine of
//! `streams/engine` in Rust, as the Python extension module `streams._native`.
//!
//! The Python modules stay the reference: this is the same processing model, function for
//! function (`engine.rs` mirrors `streams/engine/partition.py`, `catalog.rs`, `triggers.rs`
//! and `view.rs` mirror `streams/rules`), and the test suite runs against both (see
//! `streams/native.py`). Orders are held as `NativeOrder` objects, encoded byte for byte as
//! msgspec encodes `streams.engine.state.OrderState` (state format 2).

use pyo3::prelude::*;

/// The allocator of everything this module allocates: mimalloc, not glibc's malloc. An
/// order read is decoded into many small strings and vectors and encoded again at the flush,
/// and glibc's malloc and free (with its chunk unlinking and consolidation) were a quarter
/// of the in-process worker's time; with mimalloc the 1M-event bench's engine stage went
/// from 14.4 to 12.0 us a record and its state write from 7.5 to 6.4. Python
/// objects are still allocated by Python, RocksDB's by glibc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod catalog;
mod due;
mod early;
mod engine;
mod host;
mod ids;
mod model;
mod msgpack;
mod order;
mod overlay;
mod partition;
mod record;
mod spec;
mod state;
mod status;
mod table;
mod triggers;
mod view;
mod watermark;
mod work;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<engine::PartitionEngine>()?;
    m.add_class::<order::NativeOrder>()?;
    m.add_class::<order::NativeEvent>()?;
    m.add_class::<overlay::OrderOverlay>()?;
    m.add_class::<due::DueBuffer>()?;
    m.add_function(wrap_pyfunction!(due::py_due_key, m)?)?;
    m.add_function(wrap_pyfunction!(order::decode, m)?)?;
    m.add_function(wrap_pyfunction!(order::encode, m)?)?;
    m.add_function(wrap_pyfunction!(order::read_record, m)?)?;
    m.add_function(wrap_pyfunction!(partition::partition_for, m)?)?;
    // what the engine reads and writes of Python's objects, by name (checked by the tests)
    let fields = pyo3::types::PyDict::new(m.py());
    fields.set_item("streams.model.Event", host::EVENT_FIELDS.to_vec())?;
    fields.set_item("streams.model.Item", host::ITEM_FIELDS.to_vec())?;
    fields.set_item("streams.model.Mismatch", host::MISMATCH_FIELDS.to_vec())?;
    fields.set_item("streams.model.Command", host::COMMAND_FIELDS.to_vec())?;
    fields.set_item("streams.engine.state.PartitionMeta", watermark::META_FIELDS.to_vec())?;
    fields.set_item("streams.config.RuleConfig", engine::rule_settings())?;
    m.add("FIELDS", fields)?;
    // the rule table: (number, type, severity, command, reads, trigger source, trigger
    // types, delay setting, first, after, resolvable), compared with the Python table's
    let rules = pyo3::types::PyList::empty(m.py());
    for r in &table::RULES {
        let t = &r.trigger;
        let reads: Vec<&str> = r.reads.iter().map(|s| s.name()).collect();
        rules.append((r.number, r.kind, r.severity, r.command.as_ref().map(|c| c.kind), reads,
                      t.source.name(), t.types.to_vec(), t.delay, t.first, t.after,
                      r.resolvable))?;
    }
    m.add("RULES", rules)?;
    Ok(())
}
