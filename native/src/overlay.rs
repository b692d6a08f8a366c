//! `OrderOverlay` of `streams/engine/overlay.py` in Rust: the orders a store read or changed
//! since its last drain, held as `NativeOrder` objects. The native engine reaches it without
//! a Python call (`host.rs`): an order costs one call to the store's loader when it is first
//! read in a batch, and none when it is read again or written back.

use std::collections::{HashMap, HashSet};

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};

use crate::engine::{decode, NativeOrder};
use crate::state::encode_order;

/// Orders read from a backing store and changed in memory until `drain()`.
///
/// `load(order_id)` returns the stored bytes (state format 1 or 2) or None. Every order read
/// or written since the last drain is held (a missing or deleted one as None); only those
/// put or deleted are written back, in the order they were first changed.
#[pyclass(module = "streams._native")]
pub struct OrderOverlay {
    load: Py<PyAny>,
    held: HashMap<String, Option<Py<NativeOrder>>>,
    changed: Vec<String>,
    changed_set: HashSet<String>,
}

impl OrderOverlay {
    /// The order's current state, or None (read through `load` the first time).
    pub fn fetch<'py>(&mut self, py: Python<'py>, order_id: &str)
        -> PyResult<Option<Bound<'py, NativeOrder>>> {
        if let Some(held) = self.held.get(order_id) {
            return Ok(held.as_ref().map(|o| o.bind(py).clone()));
        }
        let raw = self.load.bind(py).call1((order_id,))?;
        let order = if raw.is_none() {
            None
        } else {
            let order = match raw.cast::<PyBytes>() {
                Ok(bytes) => decode(py, bytes.as_bytes())?,
                Err(_) => {
                    let copy = py.import("builtins")?.getattr("bytes")?.call1((raw,))?;
                    decode(py, copy.cast::<PyBytes>()?.as_bytes())?
                }
            };
            Some(Bound::new(py, order)?)
        };
        self.held.insert(order_id.to_string(), order.as_ref().map(|o| o.clone().unbind()));
        Ok(order)
    }

    /// Change the order (None: delete it) until drained.
    pub fn store(&mut self, order_id: &str, order: Option<Py<NativeOrder>>) {
        self.held.insert(order_id.to_string(), order);
        if self.changed_set.insert(order_id.to_string()) {
            self.changed.push(order_id.to_string());
        }
    }
}

#[pymethods]
impl OrderOverlay {
    #[new]
    fn new(load: Py<PyAny>) -> Self {
        OrderOverlay { load, held: HashMap::new(), changed: Vec::new(), changed_set: HashSet::new() }
    }

    /// The order's current state, or None.
    fn get<'py>(&mut self, py: Python<'py>, order_id: &str) -> PyResult<Option<Bound<'py, NativeOrder>>> {
        self.fetch(py, order_id)
    }

    /// Change the order (until drained): a `NativeOrder`, or a Python `OrderState` (held
    /// as the `NativeOrder` of its encoding, as `streams.engine.core.dump_order` accepts both).
    fn put(&mut self, py: Python<'_>, order_id: &str, state: Bound<'_, PyAny>) -> PyResult<()> {
        let order = match state.cast_into::<NativeOrder>() {
            Ok(order) => order.unbind(),
            Err(err) => {
                let encoded = py.import("streams.engine.state")?.getattr("encode_order")?
                    .call1((err.into_inner(),))?;
                Py::new(py, decode(py, encoded.cast::<PyBytes>()?.as_bytes())?)?
            }
        };
        self.store(order_id, Some(order));
        Ok(())
    }

    /// Delete the order (until drained).
    fn delete(&mut self, order_id: &str) {
        self.store(order_id, None);
    }

    /// How many orders are held in memory (read or changed).
    fn __len__(&self) -> usize {
        self.held.len()
    }

    /// How many orders `drain` would write.
    #[getter]
    fn changed(&self) -> usize {
        self.changed.len()
    }

    /// (order_id, encoded state or None for a deletion) of every changed order, in the order
    /// they were first changed; then nothing is held.
    fn drain<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let held = std::mem::take(&mut self.held);
        let changed = std::mem::take(&mut self.changed);
        self.changed_set.clear();
        let rows = PyList::empty(py);
        for order_id in changed {
            let value: Bound<'py, PyAny> = match held.get(&order_id) {
                Some(Some(order)) => PyBytes::new(py, &encode_order(&order.borrow(py).state)).into_any(),
                _ => py.None().into_bound(py),
            };
            rows.append(PyTuple::new(py, [order_id.into_pyobject(py)?.into_any(), value])?)?;
        }
        Ok(rows)
    }

    /// Forget every held order and change.
    fn clear(&mut self) {
        self.held.clear();
        self.changed.clear();
        self.changed_set.clear();
    }
}
