//! The Python side the engine talks to: the store, the partition meta, the clock, the output
//! records and the input events (objects of `streams.model` and the stores of
//! `streams/engine` and `streams/worker`).

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};
use pyo3::IntoPyObjectExt;

use crate::spec::CommandSpec;
use crate::engine::NativeOrder;
use crate::model::{Event, Item, LedgerEntry, Source, Step};
use crate::due::DueBuffer;
use crate::overlay::OrderOverlay;

/// Python objects the engine builds outputs with, looked up once per engine.
pub struct Host {
    pub store: Py<PyAny>,
    pub clock: Py<PyAny>,
    mismatch: Py<PyAny>,
    command: Py<PyAny>,
    mismatch_type: Py<PyAny>,
    command_type: Py<PyAny>,
    severity: Py<PyAny>,
    status: Py<PyAny>,
    partition_meta: Py<PyAny>,
    sources: [Py<PyAny>; 4],
    /// msgspec.structs.astuple: a Struct's fields in one call
    astuple: Py<PyAny>,
    /// the store's methods, bound once
    get_order: Py<PyAny>,
    put_order: Py<PyAny>,
    delete_order: Py<PyAny>,
    add_due: Py<PyAny>,
    pop_due: Py<PyAny>,
    get_meta: Py<PyAny>,
    put_meta: Py<PyAny>,
    /// the store's orders when it keeps them in a native `OrderOverlay` (its attribute
    /// `native_orders`): read and written without a Python call
    overlay: Option<Py<OrderOverlay>>,
    /// the store's due-index buffer when it is a native `DueBuffer` (its attribute
    /// `native_dues`): entries added and popped without a Python call
    dues: Option<Py<DueBuffer>>,
}

impl Host {
    pub fn new(py: Python<'_>, store: Py<PyAny>, clock: Py<PyAny>) -> PyResult<Self> {
        let model = py.import("streams.model")?;
        let state = py.import("streams.engine.state")?;
        let source = model.getattr("Source")?;
        let sources = [
            source.getattr("ORDERS")?.unbind(),
            source.getattr("PAYMENTS")?.unbind(),
            source.getattr("INVENTORY")?.unbind(),
            source.getattr("SHIPPING")?.unbind(),
        ];
        let method = |name: &str| -> PyResult<Py<PyAny>> {
            Ok(store.bind(py).getattr(name)?.unbind())
        };
        let overlay = match store.bind(py).getattr_opt("native_orders")? {
            Some(found) if !found.is_none() => Some(found.cast_into::<OrderOverlay>()?.unbind()),
            _ => None,
        };
        let dues = match store.bind(py).getattr_opt("native_dues")? {
            Some(found) if !found.is_none() => Some(found.cast_into::<DueBuffer>()?.unbind()),
            _ => None,
        };
        Ok(Host {
            overlay,
            dues,
            get_order: method("get_order")?,
            put_order: method("put_order")?,
            delete_order: method("delete_order")?,
            add_due: method("add_due")?,
            pop_due: method("pop_due")?,
            get_meta: method("get_meta")?,
            put_meta: method("put_meta")?,
            store,
            clock,
            mismatch: model.getattr("Mismatch")?.unbind(),
            command: model.getattr("Command")?.unbind(),
            mismatch_type: model.getattr("MismatchType")?.unbind(),
            command_type: model.getattr("CommandType")?.unbind(),
            severity: model.getattr("Severity")?.unbind(),
            status: model.getattr("Status")?.unbind(),
            partition_meta: state.getattr("PartitionMeta")?.unbind(),
            sources,
            astuple: py.import("msgspec.structs")?.getattr("astuple")?.unbind(),
        })
    }

    pub fn source_of(&self, obj: &Bound<'_, PyAny>) -> PyResult<Source> {
        for (i, s) in self.sources.iter().enumerate() {
            if obj.is(s) {
                return Ok(Source::ALL[i]);
            }
        }
        let value: String = obj.getattr("value")?.extract()?;
        Source::ALL.iter().copied().find(|s| s.name() == value)
            .ok_or_else(|| PyValueError::new_err(format!("not a source: {value:?}")))
    }

    /// An input `streams.model.Event` as the engine needs it, and its order_id.
    pub fn event(&self, ev: &Bound<'_, PyAny>) -> PyResult<(Event, String)> {
        let py = ev.py();
        // the fields in one call, in streams.model.Event's order
        let fields = self.astuple.bind(py).call1((ev,))?;
        let f = fields.cast::<PyTuple>()?;
        let source = self.source_of(&f.get_item(0)?)?;
        let event_id: String = f.get_item(1)?.extract()?;
        let kind: String = f.get_item(3)?.extract()?;
        let Some(rank) = source.rank_of(&kind) else {
            return Err(PyValueError::new_err(format!(
                "{} event {:?} has an unknown type {:?}", source.name(), event_id, kind)));
        };
        let mut items = Vec::new();
        for item in f.get_item(11)?.try_iter()? {
            let item = self.astuple.bind(py).call1((item?,))?;
            let (sku, quantity, unit_price): (String, i64, Option<i64>) = item.extract()?;
            items.push(Item { sku, quantity, unit_price });
        }
        let step = Step {
            event_time: f.get_item(4)?.extract()?,
            rank,
            event_id,
            amount: f.get_item(6)?.extract()?,
            currency: f.get_item(7)?.extract()?,
            channel: f.get_item(8)?.extract()?,
            sku: f.get_item(9)?.extract()?,
            quantity: f.get_item(10)?.extract()?,
            items,
            user_id: f.get_item(12)?.extract()?,
            total_amount: f.get_item(13)?.extract()?,
        };
        let event = Event { source, entity_id: f.get_item(5)?.extract()?, kind, step };
        Ok((event, f.get_item(2)?.extract()?))
    }

    pub fn now(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        Ok(self.clock.bind(py).call0()?.unbind())
    }

    /// The Mismatch record of a ledger entry in its current status.
    pub fn mismatch<'py>(&self, py: Python<'py>, order_id: &str, e: &LedgerEntry,
                         detected_at: &Py<PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let details = PyDict::new(py);
        for (k, v) in &e.details {
            details.set_item(k, v)?;
        }
        let args = PyTuple::new(py, [
            e.mismatch_id.as_str().into_bound_py_any(py)?,
            self.mismatch_type.bind(py).call1((e.kind.as_str(),))?,
            self.status.bind(py).call1((e.status.as_str(),))?,
            order_id.into_bound_py_any(py)?,
            e.subject_id.as_str().into_bound_py_any(py)?,
            self.severity.bind(py).call1((e.severity.as_str(),))?,
            e.decided_at.into_bound_py_any(py)?,
            detected_at.bind(py).clone(),
            PyTuple::new(py, &e.evidence)?.into_any(),
            e.command_id.as_deref().into_bound_py_any(py)?,
            details.into_any(),
            e.resolved_at.into_bound_py_any(py)?,
            e.resolved_by.as_deref().into_bound_py_any(py)?,
        ])?;
        self.mismatch.bind(py).call1(args)
    }

    /// The Command record of a finding's command.
    pub fn command<'py>(&self, py: Python<'py>, order_id: &str, c: &CommandSpec,
                        mismatch_id: &str, issued_at: &Py<PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let args = PyTuple::new(py, [
            c.command_id().into_bound_py_any(py)?,
            self.command_type.bind(py).call1((c.kind,))?,
            order_id.into_bound_py_any(py)?,
            c.target_id.as_str().into_bound_py_any(py)?,
            mismatch_id.into_bound_py_any(py)?,
            issued_at.bind(py).clone(),
            c.amount.into_bound_py_any(py)?,
            c.currency.as_deref().into_bound_py_any(py)?,
            c.sku.as_deref().into_bound_py_any(py)?,
            c.quantity.into_bound_py_any(py)?,
        ])?;
        self.command.bind(py).call1(args)
    }

    // -- the store -------------------------------------------------------------------------

    pub fn get_order<'py>(&self, py: Python<'py>, order_id: &str)
        -> PyResult<Option<Bound<'py, NativeOrder>>> {
        if let Some(overlay) = &self.overlay {
            return overlay.bind(py).borrow_mut().fetch(py, order_id);
        }
        let found = self.get_order.bind(py).call1((order_id,))?;
        Ok(if found.is_none() { None } else { Some(found.cast_into::<NativeOrder>()?) })
    }

    pub fn put_order(&self, py: Python<'_>, order_id: &str, order: &Bound<'_, NativeOrder>)
        -> PyResult<()> {
        if let Some(overlay) = &self.overlay {
            overlay.bind(py).borrow_mut().store(order_id, Some(order.clone().unbind()));
            return Ok(());
        }
        self.put_order.bind(py).call1((order_id, order))?;
        Ok(())
    }

    pub fn delete_order(&self, py: Python<'_>, order_id: &str) -> PyResult<()> {
        if let Some(overlay) = &self.overlay {
            overlay.bind(py).borrow_mut().store(order_id, None);
            return Ok(());
        }
        self.delete_order.bind(py).call1((order_id,))?;
        Ok(())
    }

    pub fn add_due(&self, py: Python<'_>, due: i64, order_id: &str) -> PyResult<()> {
        if let Some(dues) = &self.dues {
            dues.bind(py).borrow_mut().add_entry(due, order_id);
            return Ok(());
        }
        self.add_due.bind(py).call1((due, order_id))?;
        Ok(())
    }

    pub fn pop_due(&self, py: Python<'_>, up_to: i64) -> PyResult<Vec<(i64, String)>> {
        if let Some(dues) = &self.dues {
            return dues.bind(py).borrow_mut().pop_entries(py, up_to);
        }
        let found = self.pop_due.bind(py).call1((up_to,))?;
        let list = found.cast::<PyList>()?;
        let mut out = Vec::with_capacity(list.len());
        for entry in list.iter() {
            out.push(entry.extract::<(i64, String)>()?);
        }
        Ok(out)
    }

    /// The partition's meta (a new PartitionMeta when the store has none).
    pub fn meta<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let meta = self.get_meta.bind(py).call0()?;
        if meta.is_none() {
            return self.partition_meta.bind(py).call0();
        }
        Ok(meta)
    }

    pub fn put_meta(&self, py: Python<'_>, meta: &Bound<'_, PyAny>) -> PyResult<()> {
        self.put_meta.bind(py).call1((meta,))?;
        Ok(())
    }
}

