//! The Python side the engine talks to: the store, the partition meta, the clock, the output
//! records and the input events (objects of `streams.model` and the stores of
//! `streams/engine` and `streams/worker`).

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};
use pyo3::IntoPyObjectExt;

use crate::spec::CommandSpec;
use crate::order::NativeOrder;
use crate::model::{Event, Item, LedgerEntry, Source, Step};
use crate::due::DueBuffer;
use crate::overlay::OrderOverlay;

/// The fields of `streams.model.Event` the engine reads, by name (never by position: a
/// field moved or added there changes nothing here; one renamed is an error at the first
/// event, and `tests/unit/test_native.py` checks every name exists).
pub const EVENT_FIELDS: [&str; 14] = ["source", "event_id", "order_id", "type", "event_time",
    "entity_id", "amount", "currency", "channel", "sku", "quantity", "items", "user_id",
    "total_amount"];
/// The fields of `streams.model.Item` the engine reads.
pub const ITEM_FIELDS: [&str; 3] = ["sku", "quantity", "unit_price"];
/// The fields of `streams.model.Mismatch` the engine fills, in the order `mismatch` gives them.
pub const MISMATCH_FIELDS: [&str; 13] = ["mismatch_id", "type", "status", "order_id",
    "subject_id", "severity", "decided_at", "detected_at", "evidence", "command_id", "details",
    "resolved_at", "resolved_by"];
/// The fields of `streams.model.Command` the engine fills, in the order `command` gives them.
pub const COMMAND_FIELDS: [&str; 12] = ["command_id", "type", "order_id", "target_id",
    "mismatch_id", "issued_at", "amount", "currency", "sku", "quantity", "payment_id", "shadow"];

/// A msgspec Struct class the engine makes objects of from values given in the order of
/// `names`: each name's position among the class's fields, found once, so the call passes
/// them where the class has them (and, for a field with a default among them that the
/// engine does not fill, its default).
struct Maker {
    class: Py<PyAny>,
    /// for each of `names`, its position in the class's fields
    positions: Vec<usize>,
    /// the arguments of a call before the engine's values go in: the defaults of the fields
    /// it does not fill, None where it does (the fields after the last of them keep theirs)
    template: Vec<Option<Py<PyAny>>>,
}

impl Maker {
    fn new(class: Bound<'_, PyAny>, names: &[&str]) -> PyResult<Self> {
        let py = class.py();
        let fields: Vec<String> = class.getattr("__struct_fields__")?.extract()?;
        let what = || class.getattr("__qualname__").map(|n| n.to_string()).unwrap_or_default();
        let mut positions = Vec::with_capacity(names.len());
        for name in names {
            let at = fields.iter().position(|f| f == name).ok_or_else(|| {
                PyValueError::new_err(format!("the native engine fills {}.{name}, which it does \
                                               not have (fields: {fields:?})", what()))
            })?;
            positions.push(at);
        }
        let arity = positions.iter().max().map_or(0, |m| m + 1);
        let infos = py.import("msgspec.structs")?.getattr("fields")?.call1((&class,))?;
        let no_default = py.import("msgspec")?.getattr("NODEFAULT")?;
        let mut template = Vec::with_capacity(arity);
        for (at, field) in fields[..arity].iter().enumerate() {
            if positions.contains(&at) {
                template.push(None);
                continue;
            }
            let default = infos.get_item(at)?.getattr("default")?;
            if default.is(&no_default) {
                return Err(PyValueError::new_err(format!(
                    "{}.{field} comes before fields the native engine fills, and it has no \
                     default to give it", what())));
            }
            template.push(Some(default.unbind()));
        }
        Ok(Maker { class: class.unbind(), positions, template })
    }

    fn make<'py>(&self, py: Python<'py>, values: Vec<Bound<'py, PyAny>>) -> PyResult<Bound<'py, PyAny>> {
        let mut args: Vec<Option<Bound<'py, PyAny>>> = self.template.iter()
            .map(|d| d.as_ref().map(|d| d.bind(py).clone())).collect();
        for (value, &at) in values.into_iter().zip(&self.positions) {
            args[at] = Some(value);
        }
        let args: Vec<Bound<'py, PyAny>> = args.into_iter().map(|a| a.expect("every position filled"))
            .collect();
        self.class.bind(py).call1(PyTuple::new(py, args)?)
    }
}

fn interned<const N: usize>(py: Python<'_>, names: [&str; N]) -> [Py<PyString>; N] {
    names.map(|n| PyString::intern(py, n).unbind())
}

/// A msgspec Struct class the engine reads fields of, by name: an object of the class
/// itself is read in one call (`msgspec.structs.astuple`), each field at its position found
/// by name once; any other object field by field (getattr of interned names).
struct Reader<const N: usize> {
    class: Py<PyAny>,
    positions: [usize; N],
    names: [Py<PyString>; N],
}

impl<const N: usize> Reader<N> {
    fn new(class: Bound<'_, PyAny>, names: [&str; N]) -> PyResult<Self> {
        let fields: Vec<String> = class.getattr("__struct_fields__")?.extract()?;
        let mut positions = [0; N];
        for (slot, name) in positions.iter_mut().zip(names) {
            *slot = fields.iter().position(|f| f == name).ok_or_else(|| {
                PyValueError::new_err(format!("the native engine reads {}.{name}, which it does \
                                               not have (fields: {fields:?})",
                                              class.getattr("__qualname__")
                                                  .map(|n| n.to_string()).unwrap_or_default()))
            })?;
        }
        Ok(Reader { positions, names: interned(class.py(), names), class: class.unbind() })
    }

    /// The fields of `obj`, in the order of the names.
    fn read<'py>(&self, obj: &Bound<'py, PyAny>, astuple: &Py<PyAny>)
        -> PyResult<[Bound<'py, PyAny>; N]> {
        let py = obj.py();
        if obj.get_type().is(self.class.bind(py)) {
            let values = astuple.bind(py).call1((obj,))?;
            let values = values.cast::<PyTuple>()?;
            return every(std::array::from_fn(|i| values.get_item(self.positions[i])));
        }
        every(std::array::from_fn(|i| obj.getattr(self.names[i].bind(py))))
    }
}

/// The values, or the first error.
fn every<T, const N: usize>(got: [PyResult<T>; N]) -> PyResult<[T; N]> {
    let mut error = None;
    let values = got.map(|r| r.map_err(|e| { error.get_or_insert(e); }).ok());
    match error {
        Some(e) => Err(e),
        None => Ok(values.map(|v| v.expect("no error"))),
    }
}

/// Python objects the engine builds outputs with, looked up once per engine.
pub struct Host {
    pub store: Py<PyAny>,
    pub clock: Py<PyAny>,
    mismatch: Maker,
    command: Maker,
    mismatch_type: Py<PyAny>,
    command_type: Py<PyAny>,
    severity: Py<PyAny>,
    status: Py<PyAny>,
    partition_meta: Py<PyAny>,
    sources: [Py<PyAny>; 4],
    /// `streams.model.Event` and `Item`, read by the names of `EVENT_FIELDS`, `ITEM_FIELDS`
    event: Reader<14>,
    item: Reader<3>,
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
            mismatch: Maker::new(model.getattr("Mismatch")?, &MISMATCH_FIELDS)?,
            command: Maker::new(model.getattr("Command")?, &COMMAND_FIELDS)?,
            mismatch_type: model.getattr("MismatchType")?.unbind(),
            command_type: model.getattr("CommandType")?.unbind(),
            severity: model.getattr("Severity")?.unbind(),
            status: model.getattr("Status")?.unbind(),
            partition_meta: state.getattr("PartitionMeta")?.unbind(),
            sources,
            event: Reader::new(model.getattr("Event")?, EVENT_FIELDS)?,
            item: Reader::new(model.getattr("Item")?, ITEM_FIELDS)?,
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
        let [source, event_id, order_id, kind, event_time, entity_id, amount, currency, channel,
             sku, quantity, items, user_id, total_amount] = self.event.read(ev, &self.astuple)?;
        let source = self.source_of(&source)?;
        let event_id: String = event_id.extract()?;
        let kind: String = kind.extract()?;
        let Some(rank) = source.rank_of(&kind) else {
            return Err(PyValueError::new_err(format!(
                "{} event {:?} has an unknown type {:?}", source.name(), event_id, kind)));
        };
        let mut found = Vec::new();
        for item in items.try_iter()? {
            let [sku, quantity, unit_price] = self.item.read(&item?, &self.astuple)?;
            found.push(Item { sku: sku.extract()?, quantity: quantity.extract()?,
                              unit_price: unit_price.extract()? });
        }
        let step = Step {
            event_time: event_time.extract()?,
            rank,
            event_id,
            amount: amount.extract()?,
            currency: currency.extract()?,
            channel: channel.extract()?,
            sku: sku.extract()?,
            quantity: quantity.extract()?,
            items: found,
            user_id: user_id.extract()?,
            total_amount: total_amount.extract()?,
        };
        let event = Event { source, entity_id: entity_id.extract()?, kind, step };
        Ok((event, order_id.extract()?))
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
        self.mismatch.make(py, vec![
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
        ])
    }

    /// The Command record of a finding's command.
    pub fn command<'py>(&self, py: Python<'py>, order_id: &str, c: &CommandSpec,
                        mismatch_id: &str, issued_at: &Py<PyAny>, shadow: bool)
        -> PyResult<Bound<'py, PyAny>> {
        self.command.make(py, vec![
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
            c.payment_id.as_deref().into_bound_py_any(py)?,
            shadow.into_bound_py_any(py)?,
        ])
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

