//! `OrderOverlay` of `streams/engine/overlay.py` in Rust: the orders a store read or changed
//! since its last drain, held as `NativeOrder` objects. The native engine reaches it without
//! a Python call (`host.rs`): an order costs one call to the store's loader when it is first
//! read in a batch, and none when it is read again or written back.

use std::collections::{HashMap, HashSet};

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};

use crate::order::{decode, NativeOrder};
use crate::state::encode_order;

/// What an overlay holds, by order_id: each order read or changed since the last drain (a
/// missing or deleted one as None), and the changed ones in the order of their first change.
pub struct Held<T> {
    held: HashMap<String, Option<T>>,
    changed: Vec<String>,
    changed_set: HashSet<String>,
}

impl<T> Held<T> {
    pub fn new() -> Self {
        Held { held: HashMap::new(), changed: Vec::new(), changed_set: HashSet::new() }
    }

    /// The order as held (None: not held; Some(None): held as missing or deleted).
    pub fn get(&self, order_id: &str) -> Option<&Option<T>> {
        self.held.get(order_id)
    }

    /// Hold the order as read from the store (not a change).
    pub fn hold(&mut self, order_id: &str, order: Option<T>) {
        self.held.insert(order_id.to_string(), order);
    }

    /// Change the order (None: delete it) until drained.
    pub fn store(&mut self, order_id: &str, order: Option<T>) {
        self.held.insert(order_id.to_string(), order);
        if self.changed_set.insert(order_id.to_string()) {
            self.changed.push(order_id.to_string());
        }
    }

    pub fn len(&self) -> usize {
        self.held.len()
    }

    pub fn changed(&self) -> usize {
        self.changed.len()
    }

    /// (order_id, its state or None for a deletion) of every changed order, in the order
    /// they were first changed; then nothing is held.
    pub fn drain(&mut self) -> Vec<(String, Option<T>)> {
        let mut held = std::mem::take(&mut self.held);
        self.changed_set.clear();
        std::mem::take(&mut self.changed).into_iter()
            .map(|order_id| {
                let order = held.remove(&order_id).flatten();
                (order_id, order)
            })
            .collect()
    }

    /// Forget every held order and change.
    pub fn clear(&mut self) {
        self.held.clear();
        self.changed.clear();
        self.changed_set.clear();
    }
}

/// Orders read from a backing store and changed in memory until `drain()`.
///
/// `load(order_id)` returns the stored bytes (state format 1 or 2) or None. Every order read
/// or written since the last drain is held (a missing or deleted one as None); only those
/// put or deleted are written back, in the order they were first changed.
#[pyclass(module = "streams._native")]
pub struct OrderOverlay {
    load: Py<PyAny>,
    held: Held<Py<NativeOrder>>,
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
        self.held.hold(order_id, order.as_ref().map(|o| o.clone().unbind()));
        Ok(order)
    }

    /// Change the order (None: delete it) until drained.
    pub fn store(&mut self, order_id: &str, order: Option<Py<NativeOrder>>) {
        self.held.store(order_id, order);
    }
}

#[pymethods]
impl OrderOverlay {
    #[new]
    fn new(load: Py<PyAny>) -> Self {
        OrderOverlay { load, held: Held::new() }
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
        self.held.changed()
    }

    /// (order_id, encoded state or None for a deletion) of every changed order, in the order
    /// they were first changed; then nothing is held.
    fn drain<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let rows = PyList::empty(py);
        for (order_id, order) in self.held.drain() {
            let value: Bound<'py, PyAny> = match order {
                Some(order) => PyBytes::new(py, &encode_order(&order.borrow(py).state)).into_any(),
                None => py.None().into_bound(py),
            };
            rows.append(PyTuple::new(py, [order_id.into_pyobject(py)?.into_any(), value])?)?;
        }
        Ok(rows)
    }

    /// Forget every held order and change.
    fn clear(&mut self) {
        self.held.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::Held;

    #[test]
    fn changes_drain_in_the_order_first_made() {
        let mut held: Held<u32> = Held::new();
        held.hold("read", Some(1));
        held.hold("missing", None);
        held.store("b", Some(2));
        held.store("a", Some(3));
        held.store("b", Some(4));
        held.store("read", None);
        assert_eq!((held.len(), held.changed()), (4, 3));
        assert_eq!(held.get("missing"), Some(&None));
        assert_eq!(held.get("b"), Some(&Some(4)));
        assert_eq!(held.get("never"), None);
        assert_eq!(held.drain(), vec![("b".to_string(), Some(4)), ("a".to_string(), Some(3)),
                                      ("read".to_string(), None)]);
        assert_eq!((held.len(), held.changed()), (0, 0));
        held.store("c", Some(5));
        held.clear();
        assert_eq!((held.len(), held.changed(), held.drain()), (0, 0, vec![]));
    }
}
