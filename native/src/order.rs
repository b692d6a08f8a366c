//! The order objects of the native engine (`NativeOrder`, encoded as state format 2), the
//! events it reads itself (`NativeEvent`, `read_record`), and their Python functions.

use pyo3::prelude::*;

use crate::model::{Event, OrderState, Source};
use crate::partition::murmur2;
use crate::record;
use crate::state::{decode_order, encode_order};

/// An order's state, as the stores hold it when the native engine runs.
#[pyclass(module = "streams._native")]
pub struct NativeOrder {
    pub state: OrderState,
}

#[pymethods]
impl NativeOrder {
    /// The state in format 2 (what `streams.engine.state.decode_order` reads).
    fn encode<'py>(&self, py: Python<'py>) -> Bound<'py, pyo3::types::PyBytes> {
        pyo3::types::PyBytes::new(py, &encode_order(&self.state))
    }

    #[getter]
    fn order_id(&self) -> &str {
        &self.state.order_id
    }

    /// The state as a Python `OrderState` (a copy: for documents and tests).
    fn to_python<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let state = py.import("streams.engine.state")?;
        state.getattr("decode_order")?.call1((self.encode(py),))
    }

    fn __repr__(&self) -> String {
        format!("NativeOrder({:?})", self.state.order_id)
    }
}

/// An input event read here (`read_record`): `on_event` applies it as the `Event` the
/// checked path gives for the same record (the replay orders them by `event_time`).
#[pyclass(module = "streams._native", frozen)]
pub struct NativeEvent {
    pub event: Event,
    pub order_id: String,
}

#[pymethods]
impl NativeEvent {
    #[getter]
    fn event_time(&self) -> i64 {
        self.event.step.event_time
    }

    #[getter]
    fn order_id(&self) -> &str {
        &self.order_id
    }
}

/// The event of an input record's value when it is framed with `schema_id`, certainly valid
/// (`record.rs`) and its order_id's murmur2 partition of `partitions` is `partition`.
pub fn read_home(source: Source, value: &[u8], schema_id: u32, partition: u32, partitions: u32)
    -> Option<(Event, String)> {
    let framed = value.len() >= 5 && value[0] == 0
        && u32::from_be_bytes([value[1], value[2], value[3], value[4]]) == schema_id;
    let (ev, order_id) = if framed { record::read_event(source, value, 5)? } else { return None };
    if partitions == 0
        || ((murmur2(order_id.as_bytes()) as u32) & 0x7FFF_FFFF) % partitions != partition {
        return None;
    }
    Some((ev, order_id))
}

/// `on_record`'s reading without the engine, for the replay, which orders events by time
/// before applying them: a `NativeEvent`, or None (the checked path decides). `source` is
/// the source's name (`streams.model.Source` value).
#[pyfunction]
pub fn read_record(source: &str, value: &[u8], schema_id: u32, partition: u32, partitions: u32)
    -> PyResult<Option<NativeEvent>> {
    let Some(source) = Source::ALL.iter().copied().find(|s| s.name() == source) else {
        return Err(pyo3::exceptions::PyValueError::new_err(format!("not a source: {source:?}")));
    };
    Ok(read_home(source, value, schema_id, partition, partitions)
        .map(|(event, order_id)| NativeEvent { event, order_id }))
}

/// Format-2 bytes (or format 1, upgraded through the Python decoder) -> NativeOrder.
#[pyfunction]
pub fn decode(py: Python<'_>, data: &[u8]) -> PyResult<NativeOrder> {
    let first = data.first().copied().unwrap_or(0);
    let is_map = (0x80..=0x8f).contains(&first) || first == 0xde || first == 0xdf;
    let state = if is_map {
        let module = py.import("streams.engine.state")?;
        let upgraded = module.getattr("decode_order")?.call1((pyo3::types::PyBytes::new(py, data),))?;
        let v2: Vec<u8> = module.getattr("encode_order")?.call1((upgraded,))?.extract()?;
        decode_order(&v2)
    } else {
        decode_order(data)
    };
    state.map(|state| NativeOrder { state })
        .map_err(|e| pyo3::exceptions::PyValueError::new_err(format!("order state: {e}")))
}

/// NativeOrder -> format-2 bytes, byte for byte what msgspec writes for the same state.
#[pyfunction]
pub fn encode<'py>(py: Python<'py>, order: PyRef<'_, NativeOrder>) -> Bound<'py, pyo3::types::PyBytes> {
    order.encode(py)
}

